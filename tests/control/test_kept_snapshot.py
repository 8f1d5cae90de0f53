"""The fleet snapshot kept across cycles (``control.kept_snapshot``) equals a fresh
``build_snapshot`` after every cycle, node by node (rows matched by instance), and a
decider keeping it decides exactly as one that rebuilds, over random sequences of
changes: instances launched, coming up, bound, drained, terminated or failed; jobs
placed on named instances, started, ended, preempted; new pending jobs; tenants'
budgets and spend."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from snapshot_helpers import AWS, AWS_KEY, GCP, GCP_KEY, NOW, NOW_DT, SPOT, instance

from intercloud.control.decide import (
    PendingJob,
    Place,
    Preempt,
    Provision,
    Reject,
    Release,
    RunningJob,
    TenantLimits,
)
from intercloud.control.decision_reuse import DecisionReuse
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.kept_snapshot import SnapshotKeeper
from intercloud.control.snapshot import Fleet, FleetPolicy, SnapshotInputs, build_snapshot
from intercloud.model import Offering, PricingKind
from intercloud.providers.contract import InstanceState
from intercloud.specs import load_spec_text
from intercloud.store.records import InstanceRecord

S = InstanceState
AWS_B = Offering("aws", "us-east-1", "us-east-1b", "p5.48xlarge", "H100", 8, vcpus=192,
                 memory_gib=2048, on_demand_price=99.0, spot_price=41.0)  # fmt: skip
AWS_B_KEY = ("aws", "us-east-1", "us-east-1b", "p5.48xlarge")
OFFERINGS = [AWS, AWS_B, GCP]
BACKED = frozenset({"aws", "gcp"})
POLICY = FleetPolicy(
    max_instances={AWS_KEY: 7, AWS_B_KEY: 6, GCP_KEY: 6},
    idle_release_s=900.0,
    provision_delay_s=60.0,
)


def _nonzero(d: dict[int, int]) -> dict[int, int]:
    return {k: v for k, v in d.items() if v}


def differences(a: Fleet, b: Fleet, ledger: bool = True) -> list[str]:
    """What differs between two snapshots of the same inputs: pools, every instance's
    node (matched by instance id, not row), the allocations, the aggregates the core
    reads, the idle nodes' order, and what the decider reads besides the state (the
    replay and the tenant ledger's figures unless ``ledger`` is False: a cycle adds
    its own gangs to the ledger it is given, and the next cycle's is built afresh)."""
    out: list[str] = []
    sa, sb = a.state, b.state
    if a.pools != b.pools:
        out.append("pools")
    if sa.pools != sb.pools:
        return [*out, "specs"]
    ia = {inst.id: n for n, inst in a.node_instance.items()}
    ib = {inst.id: n for n, inst in b.node_instance.items()}
    if set(ia) != set(ib):
        return [*out, f"instances {sorted(set(ia) ^ set(ib))}"]
    if any(a.node_instance[ia[i]] is not b.node_instance[ib[i]] for i in ia):
        out.append("instance records")
    inst_a = {n: a.node_instance[n].id for n in a.node_instance}
    inst_b = {n: b.node_instance[n].id for n in b.node_instance}

    def ids(fleet_rows: Any, m: dict[int, int]) -> tuple[int, ...]:
        return tuple(m.get(n, -1 - n) for n in fleet_rows)

    for i, na in ia.items():
        nb = ib[i]
        ja, jb = int(sa.job[na]), int(sb.job[nb])
        got = (bool(sa.present[na]), bool(sa.healthy[na]), sa.usable(na), float(sa.ready_at[na]),
               float(sa.idle_since[na]), int(sa.free_gpus[na]), float(sa.free_vcpu[na]),
               ja, int(sa.pool[na]))  # fmt: skip
        want = (bool(sb.present[nb]), bool(sb.healthy[nb]), sb.usable(nb), float(sb.ready_at[nb]),
                float(sb.idle_since[nb]), int(sb.free_gpus[nb]), float(sb.free_vcpu[nb]),
                jb, int(sb.pool[nb]))  # fmt: skip
        if got != want:
            out.append(f"instance {i}: {got} != {want}")
    for p in range(sa.n_pools):
        g = sa.pool_slots[p]
        for k in range(g + 1):
            if ids(sa.bucket(p, k), inst_a) != ids(sb.bucket(p, k), inst_b) and k == g:
                out.append(f"pool {p}: idle order {sa.bucket(p, k)} vs {sb.bucket(p, k)}")
            elif sorted(ids(sa.bucket(p, k), inst_a)) != sorted(ids(sb.bucket(p, k), inst_b)):
                out.append(f"pool {p}: level {k} nodes")
        if len(sa.absent_rows(p)) != len(sb.absent_rows(p)):
            out.append(f"pool {p}: absent rows")
        if sa.domain_histogram(p) != sb.domain_histogram(p):
            out.append(f"pool {p}: domains")
        if sorted(sa.pool_jobs(p)) != sorted(sb.pool_jobs(p)):
            out.append(f"pool {p}: jobs")
    for name in ("pool_present_nodes", "pool_alloc_gpus", "provider_alloc_gpus",
                 "provider_capped_gpus", "accelerator_alloc_gpus"):  # fmt: skip
        if getattr(sa, name).tolist() != getattr(sb, name).tolist():
            out.append(name)
    if sa.pool_nodes_by_free.tolist() != sb.pool_nodes_by_free.tolist():
        out.append("pool_nodes_by_free")
    if sa.elastic_absent != sb.elastic_absent:
        out.append("elastic_absent")
    for name in ("pool_prio", "acc_prio", "acc_prio_gpus"):
        if [_nonzero(x) for x in getattr(sa, name)] != [_nonzero(x) for x in getattr(sb, name)]:
            out.append(name)
    ta = {k: _nonzero(v) for k, v in sa.tenant_prio_gpus.items() if _nonzero(v)}
    tb = {k: _nonzero(v) for k, v in sb.tenant_prio_gpus.items() if _nonzero(v)}
    if ta != tb:
        out.append("tenant_prio_gpus")
    if sa.now_s != sb.now_s or sa.evicted or sb.evicted or sa.provisioning or sb.provisioning:
        out.append("clock, evicted or provisioning")
    if set(sa.allocations) != set(sb.allocations):
        out.append(f"allocated jobs {sorted(set(sa.allocations) ^ set(sb.allocations))}")
    for j in set(sa.allocations) & set(sb.allocations):
        x, y = sa.allocations[j], sb.allocations[j]
        fx = (x.pool, ids(x.nodes, inst_a), x.request, x.slots, x.vcpus, x.start_s, x.end_s)
        fy = (y.pool, ids(y.nodes, inst_b), y.request, y.slots, y.vcpus, y.start_s, y.end_s)
        if fx != fy or x.last_checkpoint_s != y.last_checkpoint_s:
            out.append(f"allocation of job {j}")
    if a.held != b.held or a.held_requests != b.held_requests:
        out.append("held")
    wa = {j: (p, ids(r, inst_a), t) for j, (p, r, t) in a.waiting.items()}
    wb = {j: (p, ids(r, inst_b), t) for j, (p, r, t) in b.waiting.items()}
    if wa != wb:
        out.append(f"waiting {wa} != {wb}")
    if a.unbacked_reserved != b.unbacked_reserved or a.by_key != b.by_key:
        out.append("unbacked or by_key")
    if a.pools_of != b.pools_of or a.contracts != b.contracts:
        out.append("pools_of or contracts")
    if not ledger:
        return out
    # (the replay in job order: the ledger's columns and the quota caps take it in any)
    if sorted(a.replay, key=lambda r: r.job_id) != sorted(b.replay, key=lambda r: r.job_id):
        out.append("replay")
    la, lb = a.ledger, b.ledger
    if (la is None) != (lb is None):
        out.append("ledger")
    elif la is not None and lb is not None:
        figures_a = [(t, la.budget_key(t, sa.now_s), la.weight(t)) for t in la.tenants]
        figures_b = [(t, lb.budget_key(t, sb.now_s), lb.weight(t)) for t in lb.tenants]
        for g in ("H100",):
            figures_a.append((g, la.capacity(g), la.idle(g)))  # type: ignore[arg-type]
            figures_b.append((g, lb.capacity(g), lb.idle(g)))  # type: ignore[arg-type]
        # the ledger's figures, bit for bit (a kept snapshot loads it from kept columns;
        # these reads change nothing at the load's own clock)
        for fig, led, s in ((figures_a, la, sa), (figures_b, lb, sb)):
            now = s.now_s
            for t in led.tenants:
                fig.append((t, led.spent(t, now), led.committed(t, now), led.usage(t, now),
                            led.running(t, "H100"), led.borrowed(t, "H100"),
                            led.reclaimable(t, "H100", 1)))  # type: ignore[arg-type]  # fmt: skip
            fig.append(led.dominant_shares(now))  # type: ignore[arg-type]
        if figures_a != figures_b:
            out.append(f"ledger figures {figures_a} != {figures_b}")
    return out


class World:
    """The store's rows as a control loop would hand them to the decider, changed at
    random between cycles (the module docstring's changes) and by the decisions."""

    def __init__(self, rng: random.Random, tenants: bool) -> None:
        self.rng = rng
        self.now = NOW
        self.ids = iter(range(10_000, 1_000_000))
        self.instances: dict[int, InstanceRecord] = {}
        self.running: dict[int, RunningJob] = {}
        self.pending: dict[int, PendingJob] = {}
        self.spent = 0.0
        self.tenants = tenants
        self.next_job = 1
        for o, n in ((AWS, 5), (AWS_B, 4), (GCP, 3)):
            for _ in range(n):
                self._add(o, S.RUNNING)
        for _ in range(6):
            self.submit()

    # -- rows -------------------------------------------------------------------------
    def _add(self, o: Offering, st: InstanceState, **kw: Any) -> InstanceRecord:
        inst = instance(o, st, **kw)
        inst = replace(inst, id=next(self.ids), idle_since=NOW_DT if st is S.RUNNING else None)
        self.instances[inst.id] = inst
        return inst

    def _set(self, inst: InstanceRecord, **kw: Any) -> None:
        self.instances[inst.id] = replace(inst, version=inst.version + 1, **kw)

    def _dt(self) -> Any:
        return NOW_DT + timedelta(seconds=self.now - NOW)

    def submit(self) -> None:
        j = self.next_job
        self.next_job += 1
        nodes = self.rng.choice((1, 1, 2, 3, 9))  # 9: more than any pool has (rejected)
        spot = self.rng.choice(("", "", ", spot: only", ", spot: never"))
        text = (
            f"kind: training\nname: g{j}\nnum_nodes: {nodes}\n"
            f"resources: {{accelerators: H100:8{spot}}}\nrun: 'true'\nduration: 2h\n"
        )
        w = load_spec_text(text, source=f"job {j}").workload
        tenant = self.rng.choice(("default", "research", "prod"))
        prio = self.rng.choice((0, 0, 5))
        self.pending[j] = PendingJob(j, prio, w, tenant, self.now - 1)

    def _start(self, j: int, p: PendingJob, o: Offering, pricing: str, iids: tuple[int, ...],
               bind: bool) -> None:  # fmt: skip
        placement = {"provider": o.provider, "region": o.region, "zone": o.zone,
                     "instance_type": o.instance_type, "ranks": len(iids),
                     "accelerator_count": 8, "pricing": pricing, "instances": list(iids),
                     "hourly_usd": o.on_demand_price * len(iids)}  # fmt: skip
        duration = self.rng.choice((None, 3600.0))
        self.running[j] = RunningJob(j, p.priority, p.tenant, placement, self.now, duration,
                                     preemptible=p.priority == 0)  # fmt: skip
        if bind:
            for rank, iid in enumerate(iids):
                self._set(self.instances[iid], workload_id=j, attempt=1, rank=rank,
                          idle_since=None)  # fmt: skip

    def _end(self, j: int) -> None:
        self.running.pop(j)
        for inst in list(self.instances.values()):
            if inst.workload_id == j:
                self._set(inst, workload_id=None, attempt=None, rank=None,
                          idle_since=self._dt())  # fmt: skip

    # -- what the decider does ------------------------------------------------------------
    def apply(self, out: Any) -> None:
        for d in out.jobs:
            if isinstance(d, Place) and d.job_id in self.pending:
                p = self.pending.pop(d.job_id)
                first = self.instances[d.instances[0]]
                o = next(o for o in OFFERINGS if o.zone == first.zone)
                self._start(d.job_id, p, o, first.pricing, tuple(d.instances),
                            bind=self.rng.random() < 0.5)  # fmt: skip
            elif isinstance(d, Reject):
                self.pending.pop(d.job_id, None)
            elif isinstance(d, Preempt) and d.job_id in self.running and self.rng.random() < 0.5:
                # (else: a real loop stops it over a few steps, and until then it runs,
                # its ledger record as the cycle that preempted it left it)
                self._end(d.job_id)
        for c in out.capacity:
            if isinstance(c, Provision):
                o = next(o for o in OFFERINGS if o.zone == c.offering[2])
                for _ in range(c.count):
                    extra = {"for_job": c.for_job} if c.for_job is not None else None
                    self._add(o, S.REQUESTED, pricing=PricingKind(c.pricing), extra=extra)
            elif isinstance(c, Release):
                for iid in c.instance_ids:
                    inst = self.instances.get(iid)
                    if inst is not None and inst.workload_id is None:
                        self._set(inst, state=S.TERMINATING.value)

    # -- what happens meanwhile -----------------------------------------------------------
    def change(self) -> None:
        rng = self.rng
        self.now += rng.choice((0.0, 1.0, 5.0, 30.0, 200.0))
        for _ in range(rng.randint(1, 4)):
            live = list(self.instances.values())
            what = rng.randrange(11)
            if what == 0:
                self.submit()
            elif what == 1 and self.running:
                self._end(rng.choice(sorted(self.running)))
            elif what == 2:
                coming = [i for i in live if i.state in (S.REQUESTED.value, S.ALLOCATED.value)]
                if coming:
                    i = rng.choice(coming)
                    nxt = S.ALLOCATED if i.state == S.REQUESTED.value and rng.random() < 0.3 \
                        else S.RUNNING  # fmt: skip
                    kw: dict[str, Any] = {"state": nxt.value}
                    if nxt is S.RUNNING:
                        kw.update(running_at=self._dt(), idle_since=self._dt())
                    self._set(i, **kw)
            elif what == 3:
                # an instance ends under whatever it runs (reclaimed, failed)
                if live:
                    i = rng.choice(live)
                    self._set(i, state=rng.choice((S.FAILED, S.TERMINATED, S.DRAINING)).value)
            elif what == 4:
                going = [i for i in live if i.state in (S.DRAINING.value, S.TERMINATING.value)]
                if going:
                    i = rng.choice(going)
                    nxt = S.TERMINATING if i.state == S.DRAINING.value else S.TERMINATED
                    self._set(i, state=nxt.value)
            elif what == 5:
                # a job placed on named instances gets them bound
                unbound = [j for j, r in self.running.items()
                           if all(self.instances.get(i) is None
                                  or self.instances[i].workload_id != j
                                  for i in r.placement["instances"])]  # fmt: skip
                if unbound:
                    j = rng.choice(unbound)
                    for rank, iid in enumerate(self.running[j].placement["instances"]):
                        inst = self.instances.get(iid)
                        if inst is not None and inst.workload_id is None:
                            self._set(inst, workload_id=j, attempt=1, rank=rank,
                                      idle_since=None)  # fmt: skip
            elif what == 6 and self.pending:
                # a job started outside this decider's choice (another loop's placement)
                j = rng.choice(sorted(self.pending))
                idle = [i for i in live if i.state == S.RUNNING.value and i.workload_id is None]
                if idle:
                    i = rng.choice(idle)
                    o = next(o for o in OFFERINGS if o.zone == i.zone)
                    self._start(j, self.pending.pop(j), o, i.pricing, (i.id,), bind=True)
            elif what == 7:
                # an instance launched elsewhere (another loop), within the pool's maximum
                # (a pool past it is rebuilt: ``test_a_pool_outgrowing_...``)
                o = rng.choice(OFFERINGS)
                key = (o.provider, o.region, o.zone, o.instance_type)
                rows = [i for i in live if i.offering == key and i.pricing == "on_demand"
                        and i.state not in (S.TERMINATED.value, S.FAILED.value)]  # fmt: skip
                if len(rows) < POLICY.max_of(key):
                    self._add(o, rng.choice((S.REQUESTED, S.RUNNING)))
            elif what == 8:
                self.spent += rng.choice((0.0, 50.0, 400.0))
            elif what == 9 and self.running:
                # a running job's record changes (a new attempt's placement, its priority)
                j = rng.choice(sorted(self.running))
                r = self.running[j]
                self.running[j] = replace(r, priority=r.priority + 1)
            elif what == 10:
                # an idle instance's own idle time moves (a row rewritten by the store)
                idle = [i for i in live if i.state == S.RUNNING.value and i.workload_id is None]
                if idle:
                    self._set(rng.choice(idle), idle_since=self._dt() - timedelta(seconds=30))
        self.instances = {
            k: v for k, v in self.instances.items() if v.state != S.TERMINATED.value or
            self.rng.random() < 0.5
        }  # fmt: skip

    def inputs(self) -> SnapshotInputs:
        tenants = None
        if self.tenants:
            tenants = [
                TenantLimits("research", 1.0, {"H100": 16}, {}, True, 5_000.0, self.spent),
                TenantLimits("prod", 2.0, {"H100": 24}, {}, False, None, 0.0),
            ]
        insts = sorted(self.instances.values(), key=lambda i: i.id)
        self.rng.shuffle(insts)  # the store's order is no order the snapshot may rely on
        return SnapshotInputs(OFFERINGS, self.now, None, list(self.running.values()), insts,
                              BACKED, SPOT, tenants, POLICY)  # fmt: skip


class CheckedKeeper(SnapshotKeeper):
    """A keeper whose every snapshot, as lent to the cycle, is checked against a fresh
    build of the same inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[int, list[str]]] = []

    def snapshot(self, inp: SnapshotInputs) -> Fleet:
        fleet = super().snapshot(inp)
        diff = differences(fleet, build_snapshot(inp))
        if diff:
            self.found.append((self.applied + self.rebuilds, diff))
        return fleet


def _decider(keep: bool) -> FleetDecider:
    d = FleetDecider()
    d.reuse = DecisionReuse(resync_s=0)  # every cycle decided, so every cycle compared
    d.keeper = CheckedKeeper() if keep else SnapshotKeeper(rebuild_every=0)
    return d


@pytest.mark.parametrize("seed", range(12))
def test_the_kept_snapshot_is_a_fresh_one_and_decides_alike(seed: int) -> None:
    rng = random.Random(seed)
    world = World(rng, tenants=seed % 2 == 0)
    kept, fresh = _decider(True), _decider(False)
    for step in range(60):
        inp = world.inputs()
        pending = [world.pending[j] for j in sorted(world.pending)]
        got = kept.decide_fleet(pending, inp)
        want = fresh.decide_fleet(pending, inp)
        assert got.jobs == want.jobs, f"step {step}"
        assert got.capacity == want.capacity, f"step {step}"
        assert got.requeue == want.requeue, f"step {step}"
        fleet, used = kept.keeper.kept_fleet, kept.keeper.kept_inputs
        assert isinstance(kept.keeper, CheckedKeeper) and kept.keeper.found == [], f"step {step}"
        # rebuilt only when the deltas cannot say, never after an error applying them
        why = kept.keeper.why_rebuilt
        assert why in ("", "inputs the deltas do not cover") or why.startswith("_Rebuild"), why
        if fleet is not None:  # after the cycle: as the inputs say again
            assert used is not None and used.now_s == inp.now_s
            assert differences(fleet, build_snapshot(used), ledger=False) == [], f"step {step}"
        world.apply(got)
        world.change()
    # the deltas served most cycles (the rest: the first, and cycles that rebuilt)
    assert kept.keeper.applied > 30, (kept.keeper.applied, kept.keeper.rebuilds)
    assert fresh.keeper.applied == 0


def test_a_pool_outgrowing_its_rows_or_a_new_policy_rebuilds() -> None:
    world = World(random.Random(99), tenants=False)
    keeper = SnapshotKeeper()
    keeper.snapshot(world.inputs())
    keeper.settle()
    world.now += 1
    keeper.snapshot(world.inputs())
    keeper.settle()
    assert (keeper.rebuilds, keeper.applied) == (1, 1)
    for _ in range(3):  # AWS_B holds 6 instances: 4 running, now 3 more
        world._add(AWS_B, S.REQUESTED)
    fleet = keeper.snapshot(world.inputs())
    keeper.settle()
    assert (keeper.rebuilds, keeper.applied) == (2, 1)
    assert differences(fleet, build_snapshot(world.inputs())) == []
    grown = replace(world.inputs(), policy=replace(POLICY, idle_release_s=60.0))
    keeper.snapshot(grown)
    keeper.settle()
    assert keeper.rebuilds == 3


def test_the_safety_net_rebuilds_every_so_many_cycles() -> None:
    world = World(random.Random(5), tenants=False)
    keeper = SnapshotKeeper(rebuild_every=4)
    for _ in range(9):
        keeper.snapshot(world.inputs())
        keeper.settle()
        world.now += 1
    assert keeper.rebuilds == 3 and keeper.applied == 6


def test_rows_the_cycle_took_are_given_back() -> None:
    """A cycle that places gangs and provisions rows leaves the kept state as the
    inputs say (nothing placed, nothing provisioned), so a decider that saw no change
    decides the same again."""
    world = World(random.Random(3), tenants=False)
    for _ in range(4):
        world.submit()
    kept = _decider(True)
    inp = world.inputs()
    pending = [world.pending[j] for j in sorted(world.pending)]
    first = kept.decide_fleet(pending, inp)
    assert any(isinstance(d, Place) for d in first.jobs)
    assert kept.keeper.kept_fleet is not None
    after = build_snapshot(kept.keeper.kept_inputs)
    assert differences(kept.keeper.kept_fleet, after, ledger=False) == []
    again = kept.decide_fleet(pending, replace(inp, now_s=inp.now_s + 1))
    assert again.jobs == first.jobs and kept.keeper.applied == 1
    assert isinstance(kept.keeper, CheckedKeeper) and kept.keeper.found == []
