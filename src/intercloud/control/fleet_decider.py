"""The fleet scheduler as the control loop's decider (``FleetDecider``).

Each call takes the fleet snapshot (``control.snapshot.build_snapshot``; kept across
calls and brought up to date with what changed: ``control.kept_snapshot``) of what it
is given — the enabled providers' offerings, their free capacity, the jobs the store
says hold capacity, the store's instance rows, contracts, cool-downs and down providers
(``SnapshotInputs``) — and asks the scheduler core (``scheduler/core.py``) for
decisions on the pending jobs, with the snapshot's pool costs (contracts' reserved
pools at zero marginal cost), diversification caps and tenant ledger. Nothing is kept
across calls but caches of pure functions (planners per offering list, plans per
parsed workload), the snapshot (equal to a fresh build of the call's inputs) and the
last cycle of holds, handed back while its inputs stay the same
(``control.decision_reuse``), so a control loop killed at any instant and restarted
decides from the store and the providers alone.

Pools: ``control.snapshot`` says how offerings map to pools (sliced and one-instance
local sites, sized-to-fit clouds of job-level providers, elastic pools of instances,
reserved pools of contracts). A gang is offered the pools of every offering the
planner found feasible for its spec, of the pricing kinds its ``spot`` policy allows
(``never``: no spot pool; ``only``: only spot pools), minus those of down providers; a
gang only down providers could run holds with ``provider X is down since ...``.

Held capacity: every job in PLACING, PROVISIONING, RUNNING, RECOVERING or CANCELLING
(``RunningJob``) is allocated on its stored placement's pool, or on the instance rows
bound to it. The free nodes of a known pool are the smaller of what the store leaves
and what the provider reports free, so capacity held outside the store (another root
user, a leaked allocation) is never offered. Memory is not a column of the fleet state:
a placement whose memory the provider's free capacity cannot take is held (the check
``PlannerDecider`` makes).

Decisions (``decide_fleet`` -> ``FleetDecisions``; ``decide`` returns the job ones):
``PLACE`` -> ``Place`` (the planner's placement on that offering, at the pool's pricing
and price; on a pool of instances with ``instances``, the ids to bind, rank 0 first),
``HOLD`` -> ``Hold`` (the scheduler's reason, plus the offering's shortfall when known,
or ``waiting for 2 new nodes of aws/... p5.48xlarge`` for a gang whose nodes are being
launched), ``REJECT`` -> ``Reject``, ``PREEMPT`` -> ``Preempt`` (only with
``preemption=True``; the reconciler stops the victim and requeues it as a new attempt).
Provisioning is on where some pool is made of instances: ``PROVISION`` -> ``Provision``
(new REQUESTED instance rows for that pool, ``for_job`` the held gang; the core holds
the gang for them on later cycles rather than launching again), the instances a running
contract still lacks -> ``Provision`` (reserved), ``RELEASE`` of elastic nodes idle for
``FleetPolicy.idle_release_s`` -> ``Release`` (with the versions seen, the guard), and
idle reserved instances of an ended contract -> ``Release``. A PLACE on rows with no
running instance yet (a provisioning delay of zero) is a hold. Pools of unknown
capacity of job-level providers are sized to fit and never provisioned.

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

import operator
import os
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from intercloud.control.decide import (
    CAPACITY_TEXT,
    CapacityDecision,
    CapacityReason,
    Decider,
    Decision,
    Demand,
    Hold,
    PendingJob,
    Place,
    PlannerCache,
    PlannerDecider,
    Preempt,
    Provision,
    Reject,
    Release,
    RunningJob,
    TenantLimits,
    demand_of,
    offering_key,
    plan_or_reject,
)
from intercloud.control.decision_reuse import DecisionReuse
from intercloud.control.failover import Requeue, provider_down_reason, requeue_on_down
from intercloud.control.kept_snapshot import SnapshotKeeper
from intercloud.control.snapshot import Fleet, PoolOf, SnapshotInputs, build_snapshot
from intercloud.control.tenancy import QuotaCaps
from intercloud.model import (
    BatchJob,
    Offering,
    Placement,
    PricingKind,
    SpotPolicy,
    Topology,
    TrainingJob,
)
from intercloud.providers.base import FreeCapacity, OfferingKey
from intercloud.providers.contract import InstanceState
from intercloud.scheduler import reasons
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.planner import Planner, plan_key
from intercloud.scheduler.reasons import Reason, ReasonCode
from intercloud.scheduler.requests import DecisionKind, GangRequest
from intercloud.store.records import InstanceRecord

__all__ = [
    "DECIDERS",
    "DECIDER_ENV",
    "PREEMPTION_ENV",
    "PREEMPTION_SETTING",
    "QUEUE_POLICY_ENV",
    "QUEUE_POLICY_SETTING",
    "Fleet",
    "FleetDecider",
    "FleetDecisions",
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
#: Most plans kept by ``plan_key`` for new jobs (then forgotten all at once).
_MAX_SHARED_PLANS = 4096


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


# -- the snapshot -------------------------------------------------------------------------
def build_fleet(
    offerings: Sequence[Offering],
    free: Mapping[OfferingKey, FreeCapacity] | None,
    running: Sequence[RunningJob],
    now_s: float,
    spare_nodes: int = 1,
) -> Fleet:
    """The fleet snapshot without instance-backed providers, contracts or tenants
    (``control.snapshot.build_snapshot`` with those left out): pools of ``offerings``,
    the capacity of ``running`` allocated, nodes the provider reports taken by others
    left out. ``spare_nodes``: free nodes given to each pool of unknown capacity."""
    return build_snapshot(SnapshotInputs(offerings, now_s, free, running, spare_nodes=spare_nodes))


# -- the decider ---------------------------------------------------------------------------
@dataclass(slots=True)
class FleetDecisions:
    """One cycle's decisions: ``jobs`` (one per pending job, and the ``Preempt``s),
    ``capacity`` (``Provision`` and ``Release``, for ``control.capacity``) and
    ``requeue`` (running jobs of down providers to move: ``control.failover``; the
    reconciler takes them the way it takes a ``Preempt``)."""

    jobs: list[Decision] = field(default_factory=list)
    capacity: list[CapacityDecision] = field(default_factory=list)
    requeue: list[Requeue] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Cand:
    pool: int
    placement: Placement
    demand: Demand


_TAG_RE = re.compile(r"[A-Za-z0-9_.-]+#(\d+)")
_T_RE = re.compile(r"\bt=(\d{9,}(?:\.\d+)?)")


_RESERVED = PricingKind.RESERVED.value
_PRICING = operator.attrgetter("pricing")
_RUNNING = InstanceState.RUNNING.value


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
        # job id -> (workload, planner, enabled, its plan): ``_plans_for``
        self._plans: dict[int, tuple[object, object, tuple[str, ...], Any]] = {}
        # (planner, enabled, placements by ``plan_key``) for new jobs: ``_plans_for``
        self._shared: tuple[object, tuple[str, ...], dict[Hashable, tuple[Placement, ...]]] = (
            None,
            (),
            {},
        )
        # the last cycle's pools, and per job (its plan, priority, tenant and submit
        # time; its candidates on those pools): ``_decide_fleet``
        self._layout: list[PoolOf] = []
        self._gangs: dict[int, tuple[Any, _Gangs]] = {}
        # the last cycle, while nothing it read changes (``control.decision_reuse``)
        self.reuse = DecisionReuse()
        # the fleet snapshot, kept across cycles and updated by what changed
        self.keeper = SnapshotKeeper()
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
        """The job decisions over a fleet without instance-backed providers (the
        ``FleetAwareDecider`` seam; ``decide_fleet`` is the whole of it)."""
        inputs = SnapshotInputs(offerings, now_s, free, running, tenants=tenants)
        return self.decide_fleet(pending, inputs).jobs

    def decide_fleet(self, pending: Sequence[PendingJob], inputs: SnapshotInputs) -> FleetDecisions:
        """Decisions for ``pending`` on the fleet of ``inputs`` (``control.snapshot``):
        one job decision per pending job, and the capacity decisions (``Provision``
        before the holds they serve, ``Release`` of idle instances last). A function of
        its arguments: a cycle of holds only is handed back while its inputs stay the
        same (``self.reuse``)."""
        spare = max(1, sum(max(1, _ranks_hint(j)) for j in pending))
        inputs = replace(inputs, spare_nodes=spare)
        again = self.reuse.get(pending, inputs)
        if again is not None:
            return again
        decisions = self._decide_fleet(pending, inputs)
        self.reuse.keep(pending, inputs, decisions)
        return decisions

    def _decide_fleet(
        self, pending: Sequence[PendingJob], inputs: SnapshotInputs
    ) -> FleetDecisions:
        out: list[Decision] = []
        capacity: list[CapacityDecision] = []
        fleet = self.keeper.snapshot(inputs)
        try:
            return self._decide_on(fleet, pending, inputs, out, capacity)
        except BaseException:
            self.keeper.drop()
            raise
        finally:
            self.keeper.settle()

    def _decide_on(
        self,
        fleet: Fleet,
        pending: Sequence[PendingJob],
        inputs: SnapshotInputs,
        out: list[Decision],
        capacity: list[CapacityDecision],
    ) -> FleetDecisions:
        now_s = inputs.now_s
        tenants = inputs.tenants
        offerings = inputs.offerings
        planner = self._planner_for(offerings) if offerings else None
        enabled = sorted({o.provider for o in offerings})
        by_shape = _zones_by_shape(offerings)
        caps = QuotaCaps(tenants or ())
        scheduler = self._scheduler(fleet, caps)
        queue: list[GangRequest] = []
        cands: dict[int, list[_Cand]] = {}
        labels: dict[int, tuple[str, str]] = {}
        plans = self._plans_for(pending, planner, enabled, by_shape)
        # a job's pools depend on its plan and the fleet's pools only: while the pools
        # are the same as last cycle's, a job with the same plan keeps its candidates
        layout = list(fleet.pools)
        same_pools = layout == self._layout
        last = self._gangs if same_pools else {}
        gangs: dict[int, tuple[Any, _Gangs]] = {}
        for job in pending:
            planned = plans[job.job_id]
            if isinstance(planned, Reject):
                out.append(planned)
                continue
            key = (planned, job.priority, job.tenant, job.submitted_s)
            hit = last.get(job.job_id)
            if hit is not None and hit[0] == key and job.submitted_s:
                got = hit[1]
            else:
                got = _candidates(job, planned, fleet, now_s)
            gangs[job.job_id] = (key, got)
            if not isinstance(got, tuple):
                out.append(got)
                continue
            feasible, gang = got
            if caps:
                # only the offerings whose GPU type its tenant's quota still allows
                why_not = [caps.why(job.tenant, c.placement.accelerator, c.demand.gpus)
                           for c in feasible]  # fmt: skip
                if all(why_not):
                    out.append(Hold(job.job_id, str(why_not[0]), ReasonCode.OVER_QUOTA))
                    continue
                if any(why_not):
                    feasible = [c for c, no in zip(feasible, why_not, strict=True) if no is None]
                    gang = _gang(job, feasible, fleet, now_s)
            req, kept, label = gang
            cands[job.job_id] = kept
            labels[job.job_id] = label
            queue.append(req)
        self._layout, self._gangs = layout, gangs
        if queue:
            self._cycle(inputs, fleet, scheduler, caps, queue, cands, labels, out, capacity)
        if inputs.instance_backed or inputs.instances:
            self._capacity(inputs, fleet, scheduler, capacity)
        requeue = requeue_on_down(inputs.running, inputs.policy.down)
        return FleetDecisions(out, capacity, requeue)

    def _plans_for(
        self,
        pending: Sequence[PendingJob],
        planner: Planner | None,
        enabled: list[str],
        by_shape: Mapping[tuple[str, str, str], list[Offering]],
    ) -> dict[int, tuple[TrainingJob | BatchJob, list[Placement]] | Reject]:
        """``plan_or_reject`` of every pending job with its placements' sibling zones
        (``_with_zone_siblings``), reusing the last cycle's result for a job whose
        workload object, planner (offerings: ``by_shape`` is made of the same ones) and
        enabled providers are the same: a plan is a pure function of those, and the loop
        keeps one parsed workload per job. Only the jobs of this call are kept."""
        names = tuple(enabled)
        last = self._plans
        plans: dict[int, tuple[TrainingJob | BatchJob, list[Placement]] | Reject] = {}
        kept: dict[int, tuple[object, object, tuple[str, ...], Any]] = {}
        owner, owner_names, shared = self._shared
        if owner is not planner or owner_names != names:
            shared = {}
            self._shared = (planner, names, shared)
        for job in pending:
            hit = last.get(job.job_id)
            if hit is not None and hit[0] is job.workload and hit[1] is planner and hit[2] == names:
                planned = hit[3]
            else:
                planned = _plan_new(job, planner, enabled, by_shape, shared)
            plans[job.job_id] = planned
            kept[job.job_id] = (job.workload, planner, names, planned)
        self._plans = kept
        return plans

    def _cycle(
        self,
        inputs: SnapshotInputs,
        fleet: Fleet,
        scheduler: Scheduler,
        caps: QuotaCaps,
        queue: list[GangRequest],
        cands: dict[int, list[_Cand]],
        labels: dict[int, tuple[str, str]],
        out: list[Decision],
        capacity: list[CapacityDecision],
    ) -> None:
        """The scheduler's cycle over ``queue``; its decisions in the decider's types."""
        now_s = inputs.now_s
        left = _with_queue(inputs.free, inputs.queue)
        by_id: dict[int, RunningJob] | None = None  # (made for the first PREEMPT)
        requests = {r.job_id: r for r in queue}
        self._waiting(fleet, requests)
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
            assert inputs.tenants is not None  # (caps come from tenants)
            fleet = build_snapshot(inputs)
            caps = QuotaCaps(inputs.tenants)
            scheduler = self._scheduler(fleet, caps)
            self._waiting(fleet, {r.job_id: r for r in queue})
            decisions = scheduler.schedule(fleet.state, queue, now_s) if queue else []
        new_nodes: dict[int, tuple[int, int]] = {}  # job -> (pool, nodes) launched for it
        # a held gang's words, per (core's reason, label): the same for many gangs
        words: dict[tuple[str, tuple[str, str] | None], str] = {}
        frozen = any(p.frozen is not None for p in fleet.pools)
        for dec in decisions:
            job_id = dec.job_id
            if dec.kind == DecisionKind.PROVISION:
                pool = fleet.pools[dec.pool]
                if not pool.backed:
                    continue  # a pool of unknown capacity is sized to fit: nothing to launch
                capacity.append(_provision_for(pool, dec.count, job_id))
                new_nodes[job_id] = (dec.pool, dec.count)
            elif dec.kind == DecisionKind.PLACE:
                pool = fleet.pools[dec.pool]
                if not pool.backed:
                    out.append(self._place(job_id, dec.pool, cands[job_id], fleet, left))
                    continue
                ids = fleet.instance_ids(dec.node_ids)
                c = next(x for x in cands[job_id] if x.pool == dec.pool)
                if ids is None:
                    # rows launched this cycle (no provisioning delay): not usable yet
                    short = sum(1 for n in dec.node_ids if n not in fleet.node_instance)
                    out.append(Hold(job_id, _waiting_for(short or len(dec.node_ids), pool)))
                    continue
                out.append(Place(job_id, _priced(c.placement, pool), c.demand, ids))
            elif dec.kind == DecisionKind.HOLD:
                got = new_nodes.get(job_id)
                wait = fleet.waiting.get(job_id)
                if got is None and wait is not None:
                    got = (wait[0], len(wait[1]))
                if got is not None:
                    out.append(Hold(job_id, _waiting_for(got[1], fleet.pools[got[0]])))
                    continue
                label = labels.get(job_id)
                why = words.get((dec.reason, label))
                if why is None:
                    why = words[(dec.reason, label)] = self._words(dec.reason, fleet, label)
                limit = _tenant_limit(scheduler, requests[job_id], cands[job_id], now_s)
                if limit is not None:
                    out.append(Hold(job_id, limit.text, limit.code))
                    continue
                detail = _shortfall(cands[job_id], fleet, left)
                if not detail and frozen:
                    detail = _frozen(cands[job_id], fleet)
                code = dec.code or ReasonCode.WAITING_FOR_CAPACITY
                out.append(Hold(job_id, f"{why}; {detail}" if detail else why, code))
            elif dec.kind == DecisionKind.REJECT:
                why = self._words(dec.reason, fleet, labels.get(job_id))
                code = dec.code or ReasonCode.NEVER_FITS
                out.append(Reject(job_id, f"no enabled provider can run it ({why})", code))
            elif dec.kind == DecisionKind.PREEMPT and self.preemption:
                if by_id is None:
                    by_id = {r.job_id: r for r in inputs.running}
                if job_id not in by_id:
                    continue
                why = self._words(dec.reason, fleet, None)
                out.append(Preempt(job_id, dec.for_job, why, dec.code or ReasonCode.PREEMPTED))
                _give_back(left, by_id[job_id].placement)

    @staticmethod
    def _waiting(fleet: Fleet, requests: Mapping[int, GangRequest]) -> None:
        """Instances launched for a queued gang and not ready yet: the core holds it
        for them rather than launching again (``state.provisioning``)."""
        for job_id, entry in fleet.waiting.items():
            if job_id in requests:
                fleet.state.provisioning[job_id] = entry

    def _capacity(
        self,
        inputs: SnapshotInputs,
        fleet: Fleet,
        scheduler: Scheduler,
        capacity: list[CapacityDecision],
    ) -> None:
        """Reserved instances a contract still lacks; idle instances to release."""
        for p, missing in sorted(fleet.unbacked_reserved.items()):
            pool = fleet.pools[p]
            contract = next(c for c in fleet.contracts if c.name == pool.contract)
            capacity.append(
                Provision(
                    offering_key(pool.offering), PricingKind.RESERVED, missing,
                    CapacityReason.RESERVED_WARM,
                    CAPACITY_TEXT[CapacityReason.RESERVED_WARM].format(contract=contract.name),
                    contract.name, contract.usd_per_node_hour,
                )
            )  # fmt: skip
        idle_s = inputs.policy.idle_release_s
        text = CAPACITY_TEXT[CapacityReason.IDLE].format(seconds=idle_s)
        # a pool growing for a held gang keeps its idle nodes: the gang counts on them
        growing = {p for p, _rows, _t in fleet.state.provisioning.values()}
        growing |= {p for p, _rows, _t in fleet.waiting.values()}
        for dec in scheduler.release_idle(fleet.state, inputs.now_s, idle_s):
            if dec.pool in growing:
                continue
            # in instance order: a kept snapshot's rows are not in that order (a fresh
            # one's idle rows are)
            idle = sorted(
                (
                    inst
                    for n in dec.node_ids
                    if (inst := fleet.node_instance.get(n)) is not None
                    and inst.idle
                    and inst.state == InstanceState.RUNNING.value
                ),
                key=lambda i: i.id,
            )
            if idle:
                capacity.append(_release(idle, CapacityReason.IDLE, text))
        # reserved instances outlive their contract's window (or their block's: no pool
        # holds them any more) only until they are idle
        reserved_idle = (
            [
                inst
                for inst in inputs.instances
                if inst.pricing == _RESERVED
                and inst.contract is not None
                and inst.idle
                and inst.state == _RUNNING
            ]
            if _RESERVED in map(_PRICING, inputs.instances)  # (a pass in C: most have none)
            else []
        )
        ended: dict[str, list[InstanceRecord]] = {}
        if reserved_idle:  # (most fleets' cycles: none, and no walk of every node)
            open_ = {c.name for c in fleet.contracts}
            pooled = {inst.id for inst in fleet.node_instance.values()}
            for inst in sorted(reserved_idle, key=lambda i: i.id):
                if inst.contract is not None and (
                    inst.contract not in open_ or inst.id not in pooled
                ):
                    ended.setdefault(inst.contract, []).append(inst)
        for name, insts in sorted(ended.items()):
            why = CAPACITY_TEXT[CapacityReason.CONTRACT_ENDED].format(contract=name)
            capacity.append(_release(insts, CapacityReason.CONTRACT_ENDED, why))

    def _scheduler(self, fleet: Fleet, caps: QuotaCaps) -> Scheduler:
        """A scheduler for this cycle: the snapshot's tenant ledger (the running jobs'
        GPUs counted in ``caps``), costs and caps; provisioning on where some pool is
        made of instances."""
        if caps:  # (without quotas nothing reads what runs)
            for start in fleet.replay:
                caps.running(start.tenant, start.gpu_type, start.gpus)
        return Scheduler(
            queue_order=self.queue_policy,
            ledger=fleet.ledger,
            costs=fleet.costs,
            caps=fleet.caps,
            preemption=self.preemption,
            provisioning=any(p.backed for p in fleet.pools),
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
        """The scheduler's reason with pools, tags and times in the user's words: a
        pool's key (``aws#3/us-east-1/...``) becomes its label, a bare tag its provider.
        Only the tags the reason names are looked at (a tag's number is its pool)."""
        if "#" in reason:
            parts: list[str] = []
            pos = 0
            for m in _TAG_RE.finditer(reason):
                p = int(m.group(1))
                if m.start() < pos or p >= len(fleet.pools) or fleet.pools[p].tag != m.group(0):
                    continue
                pool = fleet.pools[p]
                parts.append(reason[pos : m.start()])
                key = fleet.spec_of(p).key
                if reason.startswith(key, m.start()):
                    parts.append(pool.label)
                    pos = m.start() + len(key)
                else:
                    parts.append(pool.offering.provider)
                    pos = m.end()
            parts.append(reason[pos:])
            reason = "".join(parts)
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


def _zones_by_shape(offerings: Sequence[Offering]) -> dict[tuple[str, str, str], list[Offering]]:
    """Offerings by (provider, region, instance type): the zones that sell each."""
    out: dict[tuple[str, str, str], list[Offering]] = {}
    for o in offerings:
        out.setdefault((o.provider, o.region, o.instance_type), []).append(o)
    return out


def _plan_new(
    job: PendingJob,
    planner: Planner | None,
    enabled: list[str],
    by_shape: Mapping[tuple[str, str, str], list[Offering]],
    shared: dict[Hashable, tuple[Placement, ...]],
) -> tuple[TrainingJob | BatchJob, list[Placement]] | Reject:
    """``plan_or_reject`` with zone siblings; a job with the same ``plan_key`` (what the
    planner and the siblings read) as one planned before on this planner gets its
    placements from ``shared`` (a burst of like jobs plans once)."""
    w = job.workload
    runnable = planner is not None and isinstance(w, TrainingJob | BatchJob) and w.run
    key = plan_key(w) if runnable else None
    same = shared.get(key) if key is not None else None
    if same is not None:
        return cast(TrainingJob | BatchJob, w), list(same)
    planned = plan_or_reject(job, planner, enabled)
    if isinstance(planned, Reject):
        return planned
    w, placements = planned
    placements = _with_zone_siblings(w, placements, by_shape)
    if key is not None:
        if len(shared) >= _MAX_SHARED_PLANS:
            shared.clear()
        shared[key] = tuple(placements)
    return w, placements


def _with_zone_siblings(
    w: TrainingJob | BatchJob,
    placements: list[Placement],
    by_shape: Mapping[tuple[str, str, str], list[Offering]],
) -> list[Placement]:
    """``placements`` followed by the same placements in the other zones that sell the
    same instance type in the same region (the planner keeps the best zone of each), at
    those zones' prices, within the spec's ``zones``: a zone that refused capacity (a
    cool-down) or filled up then has siblings the scheduler may use instead."""
    allowed = w.resources.zones
    out = list(placements)
    seen = {(c.provider, c.region, c.zone, c.instance_type, c.pricing) for c in placements}
    for c in placements:
        if not c.zone:
            continue
        for o in by_shape.get((c.provider, c.region, c.instance_type), ()):
            key = (o.provider, o.region, o.zone, o.instance_type, c.pricing)
            if not o.zone or key in seen or (allowed is not None and o.zone not in allowed):
                continue
            old = _unit_price(c.pricing, by_shape, c)
            new = o.spot_price if c.pricing is PricingKind.SPOT else o.on_demand_price
            if new is None or old is None or old <= 0:
                continue
            factor = new / old
            out.append(
                replace(
                    c, zone=o.zone, hourly_usd=c.hourly_usd * factor, total_usd=c.total_usd * factor
                )
            )
            seen.add(key)
    return out


def _unit_price(
    pricing: PricingKind,
    by_shape: Mapping[tuple[str, str, str], list[Offering]],
    c: Placement,
) -> float | None:
    o = next(
        (o for o in by_shape.get((c.provider, c.region, c.instance_type), ()) if o.zone == c.zone),
        None,
    )
    if o is None:
        return None
    return o.spot_price if pricing is PricingKind.SPOT else o.on_demand_price


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ranks_hint(job: PendingJob) -> int:
    w = job.workload
    if isinstance(w, BatchJob):
        return w.count
    return w.resources.num_nodes


_Gang = tuple[GangRequest, list[_Cand], tuple[str, str]]
#: a job's candidates and gang on the fleet's pools, or why it has none
_Gangs = tuple[list[_Cand], _Gang] | Hold | Reject


def _candidates(
    job: PendingJob,
    planned: tuple[TrainingJob | BatchJob, list[Placement]],
    fleet: Fleet,
    now_s: float,
) -> _Gangs:
    """The pools of the fleet that can take ``job`` by its plan, and its gang over them
    (before tenant quotas); or the hold (only down providers could) or the reject (no
    pool is big enough) instead. A function of the plan and ``fleet.pools`` (and of
    ``now_s`` for a job with no submit time)."""
    w, placements = planned
    feasible: list[_Cand] = []
    too_big: list[str] = []
    down: list[PoolOf] = []
    for c in placements:
        for p in fleet.pools_of.get(offering_key(c), ()):
            if any(x.pool == p for x in feasible):
                continue
            pool = fleet.pools[p]
            if pool.backed and not _spot_allows(w.resources.spot, pool.pricing):
                continue
            d = demand_of(w, c)
            big = pool.too_big(d)
            if big is not None:
                if big not in too_big:
                    too_big.append(big)
                continue
            if pool.down_since is not None:
                down.append(pool)  # takes nothing new
                continue
            feasible.append(_Cand(p, c, d))
    if not feasible and down:
        gone = down[0]
        since = datetime.fromtimestamp(gone.down_since or now_s, UTC)
        return Hold(
            job.job_id,
            provider_down_reason(gone.offering.provider, since),
            ReasonCode.PROVIDER_DOWN,
        )
    if not feasible:
        why = "; ".join(too_big) or "no offering of an enabled provider"
        return Reject(job.job_id, f"no enabled provider can run it ({why})")
    return feasible, _gang(job, feasible, fleet, now_s)


def _gang(
    job: PendingJob, feasible: list[_Cand], fleet: Fleet, now_s: float
) -> tuple[GangRequest, list[_Cand], tuple[str, str]]:
    """The gang request of ``job`` over the pools of ``feasible`` that take the same
    gang as the planner's choice (same demand: alternatives of ``resources.any_of``/
    ``ordered`` of another shape never join it; those of the same shape do, in the
    planner's order, which for ``ordered`` is the user's); the label the scheduler will
    use and the user's one."""
    # The gang takes the shape of the first candidate that can still grow: one whose
    # pool cools down after a refusal must not hide the alternatives of another shape
    # (a sliced local site counts a 2-CPU rank as 2 nodes, an instance as 1).
    first = next((c for c in feasible if fleet.pools[c.pool].frozen is None), feasible[0])
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
    every = getattr(w, "checkpoint_interval_minutes", None)  # training jobs only
    req = GangRequest(
        job_id=job.job_id,
        tenant=job.tenant,
        nodes=nodes,
        gpus_per_node=gpus,
        accelerators=accs,
        priority=job.priority,
        submit_s=job.submitted_s or now_s,
        topology=topology,
        # the pools (``providers``) are those the spec's spot policy allows already
        spot=SpotPolicy.ALLOWED,
        providers=frozenset(fleet.pools[c.pool].tag for c in kept),
        provider_preference=tuple(fleet.pools[c.pool].tag for c in kept),
        duration_s=duration,
        checkpoint_interval_s=every * 60.0 if every else None,
    )
    ours = reasons.gang_label(accs, gpus, nodes)
    if accs:
        theirs = reasons.gang_label(accs, gpus, d0.ranks)
    elif nodes != d0.ranks:
        theirs = f"{d0.ranks} × {d0.cpus_per_node:g} CPUs"
    else:
        theirs = ours
    return req, kept, (ours, theirs)


def _provision_for(pool: PoolOf, count: int, job_id: int) -> Provision:
    text = CAPACITY_TEXT[CapacityReason.GANG_WAITING].format(job=job_id)
    return Provision(
        offering_key(pool.offering), pool.pricing, count, CapacityReason.GANG_WAITING, text,
        pool.contract, pool.usd_per_node_hour, job_id,
    )  # fmt: skip


def _spot_allows(policy: SpotPolicy, pricing: PricingKind) -> bool:
    if pricing is PricingKind.SPOT:
        return policy is not SpotPolicy.NEVER
    return policy is not SpotPolicy.ONLY


def _release(insts: Sequence[InstanceRecord], code: CapacityReason, text: str) -> Release:
    return Release(tuple(i.id for i in insts), code, text, tuple(i.version for i in insts))


def _waiting_for(nodes: int, pool: PoolOf) -> str:
    """``waiting for 2 new nodes of aws/us-east-1/us-east-1a p5.48xlarge (spot)``."""
    return f"waiting for {nodes} new node{'s' if nodes != 1 else ''} of {pool.label}"


def _priced(placement: Placement, pool: PoolOf) -> Placement:
    """The planner's placement at the pool's pricing and price (spot, reserved)."""
    if placement.pricing is pool.pricing:
        return placement
    hourly = pool.usd_per_node_hour * placement.nodes
    return replace(
        placement,
        pricing=pool.pricing,
        hourly_usd=hourly,
        total_usd=hourly * placement.duration_hours + placement.egress_usd,
    )


def _frozen(kept: list[_Cand], fleet: Fleet) -> str:
    """Why the gang's pools cannot grow ("" when some can): a cool-down, a cap of 0."""
    whys = [fleet.pools[c.pool].frozen for c in kept]
    if not whys or any(w is None for w in whys):
        return ""
    return str(whys[0])


def _with_queue(
    free: Mapping[OfferingKey, FreeCapacity] | None,
    queue: Mapping[OfferingKey, FreeCapacity] | None,
) -> dict[OfferingKey, FreeCapacity] | None:
    """What a placement may take per offering: its free capacity plus what its engine
    may queue beyond it (``SnapshotInputs.queue``)."""
    if free is None:
        return None
    left = dict(free)
    for key, q in (queue or {}).items():
        fc = left.get(key)
        if fc is not None:
            left[key] = FreeCapacity(fc.cpus + q.cpus, fc.gpus + q.gpus,
                                     fc.memory_gib + q.memory_gib)  # fmt: skip
    return left


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
