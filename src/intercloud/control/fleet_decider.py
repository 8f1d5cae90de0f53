"""The fleet scheduler as the control loop's decider (``FleetDecider``).

Each call rebuilds a ``FleetState`` from what it is given — the enabled providers'
offerings, their free capacity, and the jobs the store says hold capacity — and asks
the scheduler core (``scheduler/core.py``) for decisions on the pending jobs. Nothing
is kept across calls but caches of pure functions (planners per offering list), so a
control loop killed at any instant and restarted decides from the store and the
providers alone.

Pool mapping (one pool per offering, pricing on-demand; the pool's ``provider`` is a
tag ``<provider>#<i>`` unique to offering ``i``, so that a gang can be restricted to the
exact offerings the planner found feasible for its spec — instance type, zones, memory,
deny lists, spot and price caps are all the planner's business — and reasons are written
back with the offering's real name):

- **sliced** — a CPU-only offering whose provider knows its free capacity (a local
  site): one node per CPU slot (``unit`` = 1 CPU, or the site's CPUs if fewer), nodes
  taken whole. A rank of ``c`` CPUs takes ``ceil(c / unit)`` nodes, so a gang of ``n``
  ranks is a gang of ``n * ceil(c / unit)`` nodes, all or nothing — exactly the local
  provider's accounting (``cpus_per_node * nodes`` CPU slots of the site), up to
  rounding fractional CPUs up.
- **one instance** — a GPU offering whose provider knows its free capacity (a local
  site with emulated GPUs: the site is one instance of ``G`` GPUs and ``C`` CPUs, and
  the planner only places ranks of exactly ``G`` GPUs on it): one node of ``G`` GPUs.
  A gang of several such ranks can never run there and is rejected with that reason
  (the planner alone would hold it forever).
- **instances** — an offering of unknown capacity (a cloud: ``provision`` is the judge):
  as many nodes as the running jobs hold plus all pending gangs could need, so such a
  pool never holds a job (as with ``PlannerDecider`` when capacity is unknown).

Held capacity: every job in PLACING, PROVISIONING, RUNNING, RECOVERING or CANCELLING
(``RunningJob``) is allocated on its stored placement's pool. The free nodes of a known
pool are the smaller of what the store leaves and what the provider reports free, so
capacity held outside the store (another root user, a leaked allocation) is never
offered. Memory is not a column of the fleet state: a placement whose memory the
provider's free capacity cannot take is held (the check ``PlannerDecider`` makes).

Decisions: ``PLACE`` -> ``Place`` (the planner's placement on that offering),
``HOLD`` -> ``Hold`` (the scheduler's reason, plus the offering's shortfall when known),
``REJECT`` -> ``Reject``, ``PREEMPT`` -> ``Preempt`` (only with ``preemption=True``; the
reconciler stops the victim and requeues it as a new attempt). ``PROVISION`` is off:
providers of unknown capacity are sized to fit, as above.

Selection (``make_decider``): ``INTERCLOUD_DECIDER`` = ``fleet`` (default) or
``planner``; the queue order policy is ``INTERCLOUD_QUEUE_POLICY``, else the store
setting ``scheduler.queue_policy``, else ``priority`` (names: ``scheduler/queue_order``:
``priority``, ``fair_share``, ``fifo``); preemption is ``INTERCLOUD_PREEMPTION``
(``1``/``0``), else the store setting ``scheduler.preemption``, else on.

Tenants (``tenants``, passed in by the reconciler from the store each cycle; None: no
tenant limits, as before tenants had any): the scheduler runs with a tenant ledger built
for the cycle (``control.tenancy.build_ledger``: weights for fair share, guarantees,
borrowing, monthly budgets, with the running jobs replayed from their start and the
month's finished spend added), so a gang over its tenant's guarantee that may not borrow,
or over its budget, holds with the ledger's reason (``over quota: …``, ``over budget:
…``). Per-type ``quotas`` are applied around the cycle (``control.tenancy.QuotaCaps``):
a gang is offered only the GPU types its tenant's quota still allows (it holds before
the cycle when there is none), and a PLACE that
would cross one becomes a hold (``over quota: research runs 4 of its 4 H100 quota``),
the cycle then running again without it (at most once per such hold).
The ledger's capacity per GPU type is the fleet's (pools of unknown capacity as sized).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from intercloud.control.decide import (
    Decider,
    Decision,
    Demand,
    Hold,
    PendingJob,
    Place,
    PlannerCache,
    PlannerDecider,
    Preempt,
    Reject,
    RunningJob,
    TenantLimits,
    demand_of,
    offering_key,
    plan_or_reject,
)
from intercloud.control.tenancy import QuotaCaps, build_ledger
from intercloud.model import (
    BatchJob,
    Offering,
    Placement,
    PricingKind,
    Topology,
)
from intercloud.providers.base import FreeCapacity, OfferingKey
from intercloud.scheduler import reasons
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement.pick import pick_nodes
from intercloud.scheduler.reasons import Reason, ReasonCode
from intercloud.scheduler.requests import DecisionKind, GangRequest

__all__ = [
    "DECIDERS",
    "DECIDER_ENV",
    "PREEMPTION_ENV",
    "PREEMPTION_SETTING",
    "QUEUE_POLICY_ENV",
    "QUEUE_POLICY_SETTING",
    "Fleet",
    "FleetDecider",
    "PoolOf",
    "build_fleet",
    "make_decider",
]

DECIDERS = ("fleet", "planner")
DECIDER_ENV = "INTERCLOUD_DECIDER"
QUEUE_POLICY_ENV = "INTERCLOUD_QUEUE_POLICY"
QUEUE_POLICY_SETTING = "scheduler.queue_policy"
PREEMPTION_ENV = "INTERCLOUD_PREEMPTION"
PREEMPTION_SETTING = "scheduler.preemption"

_EPS = 1e-9


class _Settings(Protocol):
    def get_setting(self, key: str, default: Any = None) -> Any: ...


def make_decider(
    name: str | None = None,
    *,
    store: _Settings | None = None,
    environ: Mapping[str, str] | None = None,
) -> Decider:
    """The decider chosen by ``name`` (else ``$INTERCLOUD_DECIDER``, else ``fleet``), with
    its queue policy and preemption from the environment or the store's settings."""
    from intercloud import settings

    env = os.environ if environ is None else environ
    chosen = (name or settings.decider(env) or "fleet").strip().lower()
    if chosen == "planner":
        return PlannerDecider()
    if chosen != "fleet":
        raise ValueError(f"unknown decider {chosen!r} (known: {', '.join(DECIDERS)})")
    policy = settings.queue_policy(env)
    if policy is None and store is not None:
        stored = store.get_setting(QUEUE_POLICY_SETTING)
        if stored is not None:
            policy = settings.check_queue_policy(str(stored), QUEUE_POLICY_SETTING)
    preempt: Any = settings.preemption(env)
    if preempt is None and store is not None:
        preempt = store.get_setting(PREEMPTION_SETTING)
    return FleetDecider(
        queue_policy=str(policy or "priority"),
        preemption=_truthy(preempt, default=True),
    )


def _truthy(value: Any, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("0", "false", "no", "off")


# -- the pool mapping --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PoolOf:
    """How offering ``offering`` maps to a pool: ``unit_cpus`` is the CPU slots of one
    node of a sliced pool (None: a node is an instance); ``known`` whether its provider
    tells its free capacity; ``total`` its nodes."""

    offering: Offering
    tag: str
    unit_cpus: float | None
    known: bool
    total: int

    @property
    def where(self) -> str:
        o = self.offering
        loc = "/".join(x for x in (o.provider, o.region, o.zone) if x)
        return f"{loc} {o.instance_type}"

    def nodes_per_rank(self, cpus_per_rank: float) -> int:
        if self.unit_cpus is None:
            return 1
        return max(1, math.ceil(cpus_per_rank / self.unit_cpus - _EPS))

    def too_big(self, d: Demand) -> str | None:
        """Why a gang of demand ``d`` can never run here (None: it can)."""
        if not self.known:
            return None
        o = self.offering
        if self.unit_cpus is not None:
            nodes = d.ranks * self.nodes_per_rank(d.cpus_per_node)
            if nodes > self.total:
                return f"{self.where}: the gang needs {d.cpus:g} CPUs, it has {o.vcpus:g} in all"
        else:
            if d.ranks > 1:
                return (
                    f"{self.where}: one instance of {o.accelerator}:{o.accelerator_count} "
                    f"cannot run a gang of {d.ranks} nodes"
                )
            if d.cpus > o.vcpus + _EPS:
                return f"{self.where}: the gang needs {d.cpus:g} CPUs, it has {o.vcpus:g} in all"
        if d.memory_gib > o.memory_gib + _EPS:
            return (
                f"{self.where}: the gang needs {d.memory_gib:g} GiB, it has {o.memory_gib:g} in all"
            )
        return None


@dataclass(slots=True)
class Fleet:
    """A fleet snapshot: the state, and the offering behind each pool."""

    state: FleetState
    pools: list[PoolOf]
    by_key: dict[OfferingKey, int]
    held: dict[int, int]  # job id -> pool, for the running jobs that were allocated
    # job id -> the gang it holds (what the tenant ledger replays)
    held_requests: dict[int, GangRequest] = field(default_factory=dict)

    def spec_of(self, p: int) -> PoolSpec:
        return self.state.pools[p]


def _held_nodes(pool: PoolOf, placement: Mapping[str, Any]) -> int:
    ranks = int(placement.get("ranks", placement.get("nodes", 1)) or 1)
    return ranks * pool.nodes_per_rank(float(placement.get("cpus_per_node", 1.0) or 1.0))


def _held_request(job: RunningJob, pool: PoolOf, nodes: int) -> GangRequest:
    o = pool.offering
    gpus = int(job.placement.get("accelerator_count", 0) or 0) if o.is_gpu else 0
    return GangRequest(
        job_id=job.job_id,
        tenant=job.tenant,
        nodes=nodes,
        gpus_per_node=min(gpus, o.accelerator_count),
        accelerators=(o.accelerator,) if o.is_gpu and o.accelerator else (),
        priority=job.priority,
        submit_s=job.since_s,
        providers=frozenset({pool.tag}),
        duration_s=job.duration_s,
        preemptible=job.preemptible,
    )


def build_fleet(
    offerings: Sequence[Offering],
    free: Mapping[OfferingKey, FreeCapacity] | None,
    running: Sequence[RunningJob],
    now_s: float,
    spare_nodes: int = 1,
) -> Fleet:
    """The fleet snapshot (module docstring): pools of ``offerings``, the capacity of
    ``running`` allocated, nodes the provider reports taken by others left out.
    ``spare_nodes``: free nodes given to each pool of unknown capacity."""
    pools: list[PoolOf] = []
    by_key: dict[OfferingKey, int] = {}
    for o in offerings:
        key = offering_key(o)
        if key in by_key:
            continue
        i = len(pools)
        known = free is not None and key in free
        unit: float | None = None
        if known and not o.is_gpu:
            unit = min(1.0, o.vcpus) if o.vcpus > 0 else 1.0
            total = max(1, math.floor(o.vcpus / unit + _EPS))
        elif known:
            total = 1
        else:
            total = 0  # sized below
        pools.append(PoolOf(o, f"{o.provider}#{i}", unit, known, total))
        by_key[key] = i
    # what the store says each pool holds
    holds: list[tuple[RunningJob, int, int]] = []
    held_nodes = [0] * len(pools)
    for job in sorted(running, key=lambda j: j.job_id):
        pl = job.placement
        key = (str(pl.get("provider")), str(pl.get("region")), str(pl.get("zone") or ""),
               str(pl.get("instance_type")))  # fmt: skip
        p = by_key.get(key)
        if p is None:
            continue  # its offering is gone: nothing to schedule around
        n = _held_nodes(pools[p], pl)
        holds.append((job, p, n))
        held_nodes[p] += n
    present: dict[int, int] = {}
    for p, pool in enumerate(pools):
        if not pool.known:
            pools[p] = PoolOf(
                pool.offering, pool.tag, None, False, held_nodes[p] + max(1, spare_nodes)
            )
            present[p] = pools[p].total
            continue
        assert free is not None
        fc = free[offering_key(pool.offering)]
        o = pool.offering
        if pool.unit_cpus is not None:
            reported = math.floor(max(0.0, fc.cpus) / pool.unit_cpus + _EPS)
        else:
            whole = fc.gpus >= o.accelerator_count and fc.cpus + _EPS >= o.vcpus
            reported = 1 if whole else 0
        free_nodes = max(0, min(pool.total - held_nodes[p], reported))
        present[p] = min(pool.total, held_nodes[p] + free_nodes)
    specs = [
        PoolSpec(
            provider=pool.tag,
            region=pool.offering.region,
            zone=pool.offering.zone,
            instance_type=pool.offering.instance_type,
            pricing=PricingKind.ON_DEMAND,
            accelerator=pool.offering.accelerator if pool.offering.is_gpu else None,
            gpus_per_node=pool.offering.accelerator_count if pool.offering.is_gpu else 0,
            vcpus_per_node=pool.unit_cpus if pool.unit_cpus is not None else pool.offering.vcpus,
            memory_gib_per_node=(
                pool.offering.memory_gib * pool.unit_cpus / pool.offering.vcpus
                if pool.unit_cpus is not None and pool.offering.vcpus > 0
                else pool.offering.memory_gib
            ),
            nodes_per_domain=max(1, pool.offering.instances_per_domain)
            if pool.unit_cpus is None
            else 1,
            max_nodes=max(1, pool.total),
            usd_per_node_hour=(
                pool.offering.on_demand_price * pool.unit_cpus / pool.offering.vcpus
                if pool.unit_cpus is not None and pool.offering.vcpus > 0
                else pool.offering.on_demand_price
            ),
        )
        for pool in pools
    ]
    state = FleetState(specs, initial_nodes=present, now_s=now_s)
    held: dict[int, int] = {}
    held_requests: dict[int, GangRequest] = {}
    for job, p, n in holds:
        req = _held_request(job, pools[p], n)
        nodes = pick_nodes(state, p, req)
        if nodes is None:
            continue  # more held than the pool has (it shrank): nothing left to offer
        end = job.since_s + job.duration_s if job.duration_s is not None else None
        state.allocate(req, p, nodes, job.since_s, end_s=end)
        held[job.job_id] = p
        held_requests[job.job_id] = req
    return Fleet(state, pools, by_key, held, held_requests)


# -- the decider ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Cand:
    pool: int
    placement: Placement
    demand: Demand


_T_RE = re.compile(r"\bt=(\d{9,}(?:\.\d+)?)")


class FleetDecider(PlannerCache):
    """The fleet scheduler core behind the ``Decider`` seam (module docstring).

    ``queue_policy``: a ``scheduler/queue_order`` name. ``preemption``: let a gang
    preempt running lower-priority gangs (``Preempt`` decisions). ``backfill``: EASY
    backfill around the head's reservation (needs expected durations).
    """

    fleet_aware = True

    def __init__(
        self, queue_policy: str = "priority", *, preemption: bool = True, backfill: bool = True
    ) -> None:
        self.queue_policy = queue_policy
        self.preemption = preemption
        self.backfill = backfill
        self.scheduler = Scheduler(
            queue_order=queue_policy,
            preemption=preemption,
            provisioning=False,
            backfill=backfill,
        )
        super().__init__()

    def decide(
        self,
        pending: Sequence[PendingJob],
        offerings: Sequence[Offering],
        free: Mapping[OfferingKey, FreeCapacity] | None = None,
        *,
        running: Sequence[RunningJob] = (),
        now_s: float = 0.0,
        tenants: Sequence[TenantLimits] | None = None,
    ) -> list[Decision]:
        out: list[Decision] = []
        planner = self._planner_for(offerings) if offerings else None
        enabled = sorted({o.provider for o in offerings})
        spare = sum(max(1, _ranks_hint(j)) for j in pending)
        fleet = build_fleet(offerings, free, running, now_s, spare_nodes=max(1, spare))
        scheduler = self.scheduler
        caps = QuotaCaps(tenants or ())
        if tenants is not None:
            scheduler = self._with_tenants(fleet, running, tenants, caps, now_s)
        queue: list[GangRequest] = []
        cands: dict[int, list[_Cand]] = {}
        labels: dict[int, tuple[str, str]] = {}
        for job in pending:
            planned = plan_or_reject(job, planner, enabled)
            if isinstance(planned, Reject):
                out.append(planned)
                continue
            w, placements = planned
            feasible: list[_Cand] = []
            too_big: list[str] = []
            for c in placements:
                p = fleet.by_key.get(offering_key(c))
                if p is None or any(x.pool == p for x in feasible):
                    continue
                d = demand_of(w, c)
                big = fleet.pools[p].too_big(d)
                if big is not None:
                    if big not in too_big:
                        too_big.append(big)
                    continue
                feasible.append(_Cand(p, c, d))
            if not feasible:
                why = "; ".join(too_big) or "no offering of an enabled provider"
                out.append(Reject(job.job_id, f"no enabled provider can run it ({why})"))
                continue
            if caps:
                # only the offerings whose GPU type its tenant's quota still allows
                why_not = [caps.why(job.tenant, c.placement.accelerator, c.demand.gpus)
                           for c in feasible]  # fmt: skip
                if all(why_not):
                    out.append(Hold(job.job_id, str(why_not[0]), ReasonCode.OVER_QUOTA))
                    continue
                feasible = [c for c, no in zip(feasible, why_not, strict=True) if no is None]
            req, kept, label = _gang(job, feasible, fleet, now_s)
            cands[job.job_id] = kept
            labels[job.job_id] = label
            queue.append(req)
        if not queue:
            return out
        left = dict(free) if free is not None else None
        by_id = {r.job_id: r for r in running}
        requests = {r.job_id: r for r in queue}
        decisions = scheduler.schedule(fleet.state, queue, now_s)
        while caps:
            # PLACEs over a tenant's quota become holds; the cycle runs again without
            # them on a fresh snapshot, so what they would have taken goes to others now
            accs = [p.accelerator for p in fleet.state.pools]
            decisions, over = caps.apply(decisions, {r.job_id: r for r in queue}, accs)
            if not over:
                break
            out.extend(Hold(j, why, ReasonCode.OVER_QUOTA) for j, why in over.items())
            queue = [r for r in queue if r.job_id not in over]
            assert tenants is not None  # (caps come from tenants)
            fleet = build_fleet(offerings, free, running, now_s, spare_nodes=max(1, spare))
            caps = QuotaCaps(tenants)
            scheduler = self._with_tenants(fleet, running, tenants, caps, now_s)
            decisions = scheduler.schedule(fleet.state, queue, now_s) if queue else []
        for dec in decisions:
            job_id = dec.job_id
            if dec.kind == DecisionKind.PLACE:
                out.append(self._place(job_id, dec.pool, cands[job_id], fleet, left))
            elif dec.kind == DecisionKind.HOLD:
                why = self._words(dec.reason, fleet, labels.get(job_id))
                limit = _tenant_limit(scheduler, requests[job_id], cands[job_id], now_s)
                if limit is not None:
                    out.append(Hold(job_id, limit.text, limit.code))
                    continue
                detail = _shortfall(cands[job_id], fleet, left)
                code = dec.code or ReasonCode.WAITING_FOR_CAPACITY
                out.append(Hold(job_id, f"{why}; {detail}" if detail else why, code))
            elif dec.kind == DecisionKind.REJECT:
                why = self._words(dec.reason, fleet, labels.get(job_id))
                code = dec.code or ReasonCode.NEVER_FITS
                out.append(Reject(job_id, f"no enabled provider can run it ({why})", code))
            elif dec.kind == DecisionKind.PREEMPT and self.preemption and job_id in by_id:
                why = self._words(dec.reason, fleet, None)
                out.append(Preempt(job_id, dec.for_job, why, dec.code or ReasonCode.PREEMPTED))
                _give_back(left, by_id[job_id].placement)
        return out

    def _with_tenants(
        self,
        fleet: Fleet,
        running: Sequence[RunningJob],
        tenants: Sequence[TenantLimits],
        caps: QuotaCaps,
        now_s: float,
    ) -> Scheduler:
        """A scheduler for this cycle with the tenants' ledger (module docstring); the
        running jobs' GPUs counted in ``caps``."""
        capacity: dict[str, int] = {}
        for spec in fleet.state.pools:
            if spec.accelerator and spec.gpus_per_node:
                gpus = spec.max_nodes * spec.gpus_per_node
                capacity[spec.accelerator] = capacity.get(spec.accelerator, 0) + gpus
        replay = []
        for job in running:
            req = fleet.held_requests.get(job.job_id)
            if req is None:
                continue
            gpu_type = fleet.state.pools[fleet.held[job.job_id]].accelerator
            usd = float(job.placement.get("hourly_usd") or 0.0)
            replay.append((job, gpu_type, req.gpus, usd))
            caps.running(job.tenant, gpu_type, req.gpus)
        return Scheduler(
            queue_order=self.queue_policy,
            ledger=build_ledger(tenants, capacity, replay, now_s),
            preemption=self.preemption,
            provisioning=False,
            backfill=self.backfill,
        )

    def _place(
        self,
        job_id: int,
        pool: int,
        kept: list[_Cand],
        fleet: Fleet,
        left: dict[OfferingKey, FreeCapacity] | None,
    ) -> Decision:
        c = next(x for x in kept if x.pool == pool)
        key = offering_key(c.placement)
        fc = left.get(key) if left is not None else None
        if fc is not None and fleet.pools[pool].known:
            short = _short(c.demand, fc)
            if short:
                # the fleet state has no memory column; the provider has the last word
                where = fleet.pools[pool].where
                return Hold(job_id, f"waiting for capacity on {where}: needs {short}")
            assert left is not None
            d = c.demand
            left[key] = FreeCapacity(
                fc.cpus - d.cpus, fc.gpus - d.gpus, fc.memory_gib - d.memory_gib
            )
        return Place(job_id, c.placement, c.demand)

    @staticmethod
    def _words(reason: str, fleet: Fleet, label: tuple[str, str] | None) -> str:
        """The scheduler's reason with pools, tags and times in the user's words."""
        for p in sorted(range(len(fleet.pools)), key=lambda i: -len(fleet.pools[i].tag)):
            pool = fleet.pools[p]
            reason = reason.replace(fleet.spec_of(p).key, pool.where)
            reason = reason.replace(pool.tag, pool.offering.provider)
        if label is not None and label[0] != label[1]:
            reason = reason.replace(label[0], label[1])
        return _T_RE.sub(lambda m: "t=" + _utc(float(m.group(1))), reason)


def _tenant_limit(
    scheduler: Scheduler, req: GangRequest, kept: list[_Cand], now_s: float
) -> Reason | None:
    """Why the tenant ledger refuses ``req`` whatever capacity frees (None: it does not,
    or there is no ledger): the reason a held gang shows rather than the core's (it
    says "waiting for capacity" first when the fleet is full), since capacity alone
    would not start it. Such refusals: a quota the tenant's own work fills without the
    right to borrow (``refuses_whatever_stops``), or the budget where the quota admits.
    A quota refusal that freed capacity could lift (nothing idle to borrow) leaves the
    core's reason. Each accelerator is asked at the cheapest price of its candidates;
    the gang is refused only if every one is. Reads the ledger as the cycle left it
    (``admit`` changes nothing but its clock)."""
    ledger = scheduler.ledger
    if ledger is None or not kept:
        return None
    accs: tuple[str | None, ...] = req.accelerators or (None,)
    whys = []
    for acc in accs:
        if (
            acc is not None
            and ledger.quota_refuses(req.tenant, acc, req.gpus)
            and not ledger.refuses_whatever_stops(req.tenant, acc, req.gpus, 0)
        ):
            return None
        prices = [
            c.placement.hourly_usd for c in kept if acc is None or c.placement.accelerator == acc
        ]
        why = ledger.admit_reason(req, acc, min(prices, default=0.0), now_s)
        if why is None:
            return None
        whys.append(why)
    return whys[0]


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ranks_hint(job: PendingJob) -> int:
    w = job.workload
    if isinstance(w, BatchJob):
        return w.count
    return w.resources.num_nodes


def _gang(
    job: PendingJob, feasible: list[_Cand], fleet: Fleet, now_s: float
) -> tuple[GangRequest, list[_Cand], tuple[str, str]]:
    """The gang request of ``job`` over the pools of ``feasible`` that take the same
    gang as the planner's choice (same demand: alternatives of ``resources.any_of``/
    ``ordered`` of another shape never join it; those of the same shape do, in the
    planner's order, which for ``ordered`` is the user's); the label the scheduler will
    use and the user's one."""
    first = feasible[0]
    d0 = first.demand
    nodes = d0.ranks * fleet.pools[first.pool].nodes_per_rank(d0.cpus_per_node)
    kept = [
        c
        for c in feasible
        if c.demand == d0
        and c.demand.ranks * fleet.pools[c.pool].nodes_per_rank(c.demand.cpus_per_node) == nodes
    ]
    w = job.workload
    accs = tuple(sorted({c.placement.accelerator for c in kept if c.placement.accelerator}))
    gpus = d0.gpus_per_node if accs else 0
    topology = w.resources.topology if accs else Topology.ANY
    if topology in (Topology.ZONE, Topology.REGION):
        topology = Topology.ANY  # a gang always lies in one pool: one zone, one region
    duration = w.duration_hours * 3600.0 if w.duration_hours else None
    req = GangRequest(
        job_id=job.job_id,
        tenant=job.tenant,
        nodes=nodes,
        gpus_per_node=gpus,
        accelerators=accs,
        priority=job.priority,
        submit_s=job.submitted_s or now_s,
        topology=topology,
        providers=frozenset(fleet.pools[c.pool].tag for c in kept),
        provider_preference=tuple(fleet.pools[c.pool].tag for c in kept),
        duration_s=duration,
    )
    ours = reasons.gang_label(accs, gpus, nodes)
    if accs:
        theirs = reasons.gang_label(accs, gpus, d0.ranks)
    elif nodes != d0.ranks:
        theirs = f"{d0.ranks} × {d0.cpus_per_node:g} CPUs"
    else:
        theirs = ours
    return req, kept, (ours, theirs)


def _give_back(left: dict[OfferingKey, FreeCapacity] | None, p: Mapping[str, Any]) -> None:
    """Count a preempted job's capacity as free again (the reconciler releases it before
    it provisions the gang that preempted it)."""
    key = (str(p.get("provider")), str(p.get("region")), str(p.get("zone") or ""),
           str(p.get("instance_type")))  # fmt: skip
    fc = left.get(key) if left is not None else None
    if left is None or fc is None:
        return
    ranks = int(p.get("ranks", 1) or 1)
    left[key] = FreeCapacity(
        fc.cpus + ranks * float(p.get("cpus_per_node", 1.0) or 1.0),
        fc.gpus + ranks * int(p.get("accelerator_count", 0) or 0),
        fc.memory_gib + ranks * float(p.get("memory_gib_per_node", 0.0) or 0.0),
    )


def _short(d: Demand, free: FreeCapacity) -> str:
    short = []
    if d.cpus > free.cpus + _EPS:
        short.append(f"{d.cpus:g} CPUs (free {max(free.cpus, 0.0):g})")
    if d.gpus > free.gpus:
        short.append(f"{d.gpus} GPUs (free {max(free.gpus, 0)})")
    if d.memory_gib > free.memory_gib + _EPS:
        short.append(f"{d.memory_gib:g} GiB (free {max(free.memory_gib, 0.0):g})")
    return ", ".join(short)


def _shortfall(
    kept: list[_Cand], fleet: Fleet, left: Mapping[OfferingKey, FreeCapacity] | None
) -> str:
    """``local/local local-cpu: needs 2 CPUs (free 0)`` for the first offering of the gang
    whose provider reports too little free capacity ("" when none does)."""
    if left is None:
        return ""
    for c in kept:
        fc = left.get(offering_key(c.placement))
        if fc is None:
            continue
        short = _short(c.demand, fc)
        if short:
            return f"{fleet.pools[c.pool].where}: needs {short}"
    return ""
