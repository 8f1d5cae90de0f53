"""The fleet scheduler's core: fleet state and queue in, decisions out, time injected.

One scheduling cycle (``Scheduler.schedule``), in kube-scheduler's words:

1. **QueueSort** — the queue is ordered by a policy chosen by name
   (``scheduler/queue_order``: ``priority``, ``fair_share``, ``fifo``).
2. For each gang in that order:

   - **PreFilter** — the pools that could ever take it (``placement.filter``, cached per
     request shape); none: ``REJECT`` with the planner's reason;
   - **Filter/Score** — candidate pools cheapest first (``scheduler/cost``'s
     ``PoolCosts`` when given, else list price with reserved first); per pool, the
     aggregates say whether it fits now, the tenant ledger whether the tenant may start
     it (quota, budget), the diversification caps whether the provider may grow, and
     ``placement.pick`` takes best-fit nodes, all or nothing;
   - **Reserve/Bind** — the first pool that passes gets it: ``PLACE``; the state and the
     ledger are updated at once, so the next gang sees the capacity taken;
   - **PostFilter** — otherwise: preemption (``scheduler/preemption``: fewest, cheapest,
     inclusion-minimal victims of lower priority, or borrowed quota the tenant reclaims):
     ``PREEMPT`` decisions then ``PLACE``; else elastic growth: ``PROVISION`` nodes of the
     cheapest elastic pool with headroom and ``HOLD`` until they are ready; else the first
     such gang of the cycle gets the EASY **reservation** (``scheduler/backfill``), later
     gangs must not delay it; ``HOLD`` with the reason in ``scheduler/reasons``' words.

Every queued gang gets exactly one ``PLACE``, ``HOLD`` or ``REJECT``; ``PREEMPT`` and
``PROVISION`` decisions come before the ``PLACE``/``HOLD`` they serve.

Purity: ``schedule`` reads nothing but its arguments and the scheduler's configuration,
and changes nothing but the ``FleetState`` it is given (and the tenant ledger, when one is
configured): placements are allocated, victims released (kept in ``state.evicted`` for the
caller to requeue with ``requeued``), provisioned rows added. The same state, queue and
time always give the same decisions.

Provider events enter through ``spot_reclaimed``, ``node_failed`` and ``region_lost``;
completions through ``finished``; idle elastic nodes leave through ``release_idle``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import ModuleType

from intercloud.scheduler import reasons
from intercloud.scheduler.backfill import Reservation, reserve
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.plan import CapTracker, GangClass, Plan, plan
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement.filter import (
    Candidates,
    candidate_pools,
    needs_domain,
    shape_key,
)
from intercloud.scheduler.placement.order import list_price_order, marginal_usd_per_hour
from intercloud.scheduler.placement.pick import (
    fitting_pools,
    iter_fitting_pools,
    pick_nodes,
    slots_needed,
)
from intercloud.scheduler.preemption import (
    find_victims,
    find_victims_scan,
    jobs_on_nodes,
    requeued,
)
from intercloud.scheduler.queue_order import QueueOrder, get_policy
from intercloud.scheduler.reasons import Reason, ReasonCode
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest
from intercloud.scheduler.tenancy import TenantLedger

try:  # the compiled walk over held gangs (optional; the same decisions as ``_one``)
    from intercloud.scheduler import _walkc as _walk_mod

    _WALK: ModuleType | None = _walk_mod
except ImportError:  # not built here: the walk stays in Python
    _WALK = None

__all__ = ["Scheduler", "requeue"]

_PLACE = DecisionKind.PLACE
_HOLD = DecisionKind.HOLD
_WAIT = ReasonCode.WAITING_FOR_CAPACITY
_NEVER = ReasonCode.NEVER_FITS
_RESERVED = ReasonCode.RESERVED
_UNSEEN = object()  # a ``dict.get`` default no value can be
# entries of a cross-cycle memo (``_rank_memo``, ``_price_memo``) before it is cleared
_MEMO_MAX = 4096


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the scheduler keeps per request shape: its candidate pools, the rows of its
    accelerators in the state's change counters, and the ``(row, level)`` entries of
    ``rise_epoch`` that must move before a gang of the shape that fits no pool can fit:
    the member's slots for a gang that shares nodes, but each candidate pool's whole
    node for one that needs whole nodes (an NVLink-domain gang, or ``gpus_per_node`` 0):
    a node going from partly to wholly free does not move the counter at fewer slots."""

    cands: Candidates
    acc_rows: tuple[int, ...]
    watch: tuple[tuple[int, int], ...]
    pool_set: frozenset[int]
    capped_providers: tuple[str, ...]


class _Job:
    """What the scheduler keeps per queued job between cycles: its request (the entry
    holds while the queue hands back the same object), shape key and shape; its last
    HOLD and what that HOLD was computed from (``_inputs``; None when it cannot be
    replayed); ``acc_version`` of its accelerators after its last turn; small ints for
    its interchangeability classes (``fast``: shape, priority, tenant; ``same``: the
    cost plan's, or -1 when it has none), so a cycle's lookups hash an int, not the
    shape key; and the HOLD last handed out by the fast path, reused while its reason
    is the same."""

    __slots__ = ("acc", "fast", "held", "hold", "key", "r", "same", "seen", "sh")

    def __init__(self, r: GangRequest, key: Hashable, sh: _Shape, fast: int, same: int) -> None:
        self.r = r
        self.key = key
        self.sh = sh
        self.held: Decision | None = None
        self.seen: tuple[object, ...] | None = None
        self.acc: tuple[int, ...] | None = None
        self.fast = fast
        self.same = same
        self.hold: Decision | None = None


@dataclass(slots=True)
class _Cycle:
    """What one ``schedule`` call learns as it goes."""

    now_s: float
    reservation: Reservation | None = None
    reserved_tried: bool = False
    placed: set[int] = field(default_factory=set)
    placed_in: dict[int, list[int]] = field(default_factory=dict)  # pool -> jobs placed
    # shapes whose ``_blocked`` memo a gang of this cycle has checked or set: a scheduler
    # built afresh for this cycle has the memo then, not before (see ``_fast_hold``)
    blocked_seen: set[Hashable] = field(default_factory=set)
    order: dict[Hashable, list[int]] = field(default_factory=dict)
    node_price: list[float] | None = None
    # the cycle's cost plan (``cost.plan``) and each planned job's class in it
    plan: Plan | None = None
    plan_key: dict[int, Hashable] = field(default_factory=dict)
    # Interchangeable gangs (``Scheduler._one``): per (shape key, priority, tenant)
    # (``_Job.fast``), the HOLD reason and accelerator versions of its last fast HOLD,
    # with the mutation count (``Scheduler._mut``) it was taken at
    fast: dict[int, tuple[int, str, tuple[int, ...]]] = field(default_factory=dict)


class Scheduler:
    """The fleet scheduler's policies; ``schedule`` is the cycle (module docstring).

    ``queue_order``: a policy name or object (``scheduler/queue_order``). ``ledger``:
    the tenants' quotas, budgets and usage (None: no limits); when given, every
    completion must go through ``finished`` so that it learns of it. ``costs``: pool
    prices and contracts (None: list prices, reserved free). ``caps``: diversification
    caps (None: none). ``backfill``/``preemption``/``provisioning`` switch those steps;
    ``reservation_pools`` bounds the pools the head's reservation is searched in and
    ``preemption_pools`` the pools with possible victims that preemption compares.
    ``cost_plan`` (with ``costs``): each cycle first plans where its gangs should go when
    they compete for the same cheap pools (``cost.plan``); the walk then tries a gang's
    planned pools first. It changes where gangs go, never whether they start.
    """

    def __init__(
        self,
        *,
        queue_order: str | QueueOrder = "priority",
        ledger: TenantLedger | None = None,
        costs: PoolCosts | None = None,
        caps: DiversificationCaps | None = None,
        backfill: bool = True,
        preemption: bool = True,
        provisioning: bool = True,
        reservation_pools: int = 8,
        preemption_pools: int = 8,
        cost_plan: bool = True,
    ) -> None:
        self.queue_order = get_policy(queue_order) if isinstance(queue_order, str) else queue_order
        self.ledger = ledger
        self._order_ledger = ledger if ledger is not None else TenantLedger([], {})
        self.costs = costs
        self.caps = caps
        self.backfill = backfill
        self.preemption = preemption
        self.provisioning = provisioning
        self.reservation_pools = reservation_pools
        self.preemption_pools = preemption_pools
        self.cost_plan = cost_plan
        self._state: FleetState | None = None
        self._shapes: dict[Hashable, _Shape] = {}
        self._static_order: dict[Hashable, list[int]] = {}
        # Exact memos across cycles (they never change a decision): a shape that fits no
        # pool stays so until a node of its accelerators rises to the slots it needs
        # (``_Shape.watch``); a (shape, priority, tenant) without victims stays so while
        # no pool of its accelerators changes (``acc_version``) and the ledger's quota
        # state for it is the same (what ``reclaimable`` reads).
        self._blocked: dict[Hashable, tuple[tuple[int, ...], str]] = {}
        self._no_victims: dict[Hashable, tuple[object, ...]] = {}
        # per pool: the version at which it had no victims for a shape (find_victims)
        self._victim_memo: dict[tuple[int, int, bool, int], dict[int, int]] = {}
        # per ranking key: (PoolCosts.rank's array, the candidate pools in its order)
        self._rank_memo: dict[Hashable, tuple[object, list[int]]] = {}
        # per ranking's price array (identity): (the array, pool -> USD per unit-hour)
        self._price_memo: dict[int, tuple[object, dict[int, float]]] = {}
        # per queued job (``_Job``), and the ints of its interchangeability classes
        self._jobs: dict[int, _Job] = {}
        self._class_ids: dict[Hashable, int] = {}
        # set while a gang's turn does something a replay of its HOLD would not redo
        # (evict and undo, a fast HOLD that skipped provisioning, a search that the
        # cycle's protected placements may have narrowed)
        self._unsafe = False
        self._fast = False  # set by a turn that the ``_blocked`` memo held at once
        self._admits = 0  # calls of ``_admit`` (did a turn consult the ledger and caps?)
        # bumped by every turn that may have changed what a fast HOLD reads (any turn but
        # a fast HOLD or a replayed HOLD): equal counts, the same fleet, ledger and memos
        self._mut = 0
        # exact in-turn shortcuts (per-accelerator quota and per-provider caps refusals,
        # no-victims without lower priorities or reclaim); off only in tests, to compare
        self._shortcuts = True
        # interchangeable gangs decided once per class in a cycle (the cost plan's
        # grouping, fast HOLDs: exact); off only in tests, to compare
        self._aggregate = True
        # preemption's candidates from the indexes (``find_victims``); off only in tests,
        # where the former scan (``find_victims_scan``) is the oracle
        self._victim_index = True
        # the compiled walk over held gangs (``_walkc``) where it was built; off only in
        # tests, to compare
        self._compiled_walk = True

    # ----------------------------------------------------------------- the cycle ----
    def schedule(
        self, state: FleetState, queue: Sequence[GangRequest], now_s: float
    ) -> list[Decision]:
        """Decisions for ``queue`` (pending gangs, none of them running) at ``now_s``."""
        if state is not self._state:
            self._state = state
            self._shapes.clear()
            self._static_order.clear()
            self._blocked.clear()
            self._no_victims.clear()
            self._victim_memo.clear()
            self._rank_memo.clear()
            self._price_memo.clear()
            self._jobs.clear()
            self._class_ids.clear()
        state.advance(now_s)
        if self.ledger is not None:
            # the ledger's clock (month rolls) must not depend on which turns ran
            self.ledger.advance(now_s)
        cyc = _Cycle(now_s)
        out: list[Decision] = []
        order = self.queue_order.order(queue, self._order_ledger, now_s)
        if self.cost_plan and self.costs is not None and len(order) > 1:
            self._plan(state, queue, order, cyc)
        walk = _WALK if self._compiled_walk and self._aggregate else None
        if walk is None:
            for i in order:
                self._one(state, queue[i], cyc, out)
        else:
            # the gangs ``_one``'s fast path holds, in C; every other turn in Python
            order = order if isinstance(order, list) else list(order)
            q = queue if isinstance(queue, list) else list(queue)
            allocs = state.allocations
            at, n = 0, len(order)
            while True:
                at = walk.fast_holds(order, q, self._jobs, cyc.fast, self._mut, allocs, out, at)
                if at >= n:
                    break
                self._one(state, q[order[at]], cyc, out)
                at += 1
        if len(self._jobs) > 2 * len(queue) + 1024:
            ids = {r.job_id for r in queue}
            self._jobs = {j: e for j, e in self._jobs.items() if j in ids}
        return out

    def _plan(
        self, state: FleetState, queue: Sequence[GangRequest], order: Sequence[int], cyc: _Cycle
    ) -> None:
        """The cycle's cost plan (``cost.plan``) over the queued gangs that fit some pool
        now, grouped by class: shape and ranking (the same candidate list, cheapest
        first). Capacity per pool: free slots (GPUs; CPU pools: nodes) and, per class,
        how many of its gangs the pool's counters say fit (nodes with enough free slots,
        domains with enough free nodes)."""
        assert self.costs is not None
        classes: dict[Hashable, GangClass] = {}
        class_ids: dict[Hashable, int] = {}
        dead: set[Hashable] = set()
        keys = cyc.plan_key
        jobs = self._jobs
        ledger = self.ledger
        # Interchangeable gangs: what the steps below decide for a gang depends on its
        # shape, tenant, preference and whether its duration is known (the ranking's
        # inputs without data to move), and on nothing that changes during the loop
        same: dict[int, Hashable | None] = {}
        agg = self._aggregate
        # the compiled counting of gangs of seen classes (``_walkc.plan_counts``): the
        # loop below does the same for each, and every other gang
        walk = _WALK if self._compiled_walk and agg else None
        if walk is not None:
            order = order if isinstance(order, list) else list(order)
            queue = queue if isinstance(queue, list) else list(queue)
        at, n_order = 0, len(order)
        while at < n_order:
            if walk is not None:
                at = walk.plan_counts(order, queue, jobs, same, classes, keys, at)
                if at >= n_order:
                    break
            pos = at
            at += 1
            r = queue[order[pos]]
            ent = jobs.get(r.job_id)
            if ent is None or ent.r is not r:
                ent = self._job(state, r)
            sk: int | None = ent.same if agg and ent.same >= 0 else None
            if sk is not None:
                # a later gang of a class: counted (a shape without candidates never
                # enters ``same``, so its gangs all come past here to the check below)
                ck0 = same.get(sk, _UNSEEN)
                if ck0 is not _UNSEEN:
                    if ck0 is not None:
                        c = classes.get(ck0)
                        if c is not None:
                            c.count += 1
                            keys[r.job_id] = ck0
                    continue
            key, sh = ent.key, ent.sh
            if not sh.cands.pools:
                continue
            if sk is not None:
                same[sk] = None
            if (
                ledger is not None
                and r.gpus
                and all(ledger.quota_refuses(r.tenant, a, r.gpus) for a in r.accelerators)
            ):
                continue  # held by its quota at its turn whatever the pool: not planned
            pools = self._ordered(state, key, r, sh.cands, cyc)
            # the class: the shape and what its ranking reads (hence the same pools, in
            # the same order, at the same prices); not the ranked list's identity, which
            # depends on when the memos (``_rank_memo``, the costs' own) were last cleared.
            # Numbered in order of first sight: the turns look classes up by a cheap key.
            ck = class_ids.setdefault((key, self.costs.rank_key(r)), len(class_ids))
            if sk is not None:
                same[sk] = ck
            c = classes.get(ck)
            if c is not None:
                c.count += 1
                keys[r.job_id] = ck
                continue
            if ck in dead:
                continue
            fit = fitting_pools(state, pools, r)
            if not fit:
                dead.add(ck)
                continue
            units = r.gpus if r.accelerators else r.nodes
            price = self._unit_prices(r, cyc.now_s)
            n = r.nodes
            if needs_domain(r):
                row = state.pools_with_free_domain(n)
                limit = [row[p] for p in fit]
            elif r.gpus_per_node > 0:  # the same slots in every pool: one counter row
                row = state.pools_with_at_least(r.gpus_per_node)
                limit = [row[p] // n for p in fit]
            else:
                limit = [state.nodes_with_at_least(p, slots_needed(state, p, r)) // n for p in fit]
            # priced as ranked: a lagging commitment's pools at their burn-weighted price
            factor = self.costs.rank_factor
            classes[ck] = GangClass(
                ck, fit, [price[p] * float(factor[p]) * max(units, 1) for p in fit], units,
                r.gpus, 1, pos, needs_domain(r), limit,
            )  # fmt: skip
            keys[r.job_id] = ck
        if len(classes) < 2:
            cyc.plan_key.clear()
            return  # one class: cheapest first is its plan already
        n = state.n_pools
        free = [0.0] * n
        for p in {p for c in classes.values() for p in c.ids}:
            free[p] = float(state.pool_free_slots(p))
        caps = CapTracker(
            self.caps, state.providers, state._pool_prov, state._capped,
            float(state.allocated_gpus()), list(state.capped_gpus_by_provider().values()),
        )  # fmt: skip
        # domains are counted per class (``limit``), not per pool
        cyc.plan = plan(list(classes.values()), free, [math.inf] * n, caps)

    def _unit_prices(self, r: GangRequest, now_s: float) -> dict[int, float]:
        """Pool -> USD per unit-hour of ``r``'s ranking (memoised per ranking array)."""
        assert self.costs is not None
        ids, unit = self.costs.ranked_unit_usd_per_hour(r, now_s)
        got = self._price_memo.get(id(unit))
        if got is None or got[0] is not unit:
            if len(self._price_memo) >= _MEMO_MAX:
                self._price_memo.clear()
            got = self._price_memo[id(unit)] = (
                unit,
                dict(zip(ids.tolist(), unit.tolist(), strict=True)),
            )
        return got[1]

    def _shape(self, state: FleetState, key: Hashable, r: GangRequest) -> _Shape:
        sh = self._shapes.get(key)
        if sh is None:
            cands = candidate_pools(state, r)
            if r.accelerators:
                rows = tuple(i for i in map(state.accelerator_index, r.accelerators) if i >= 0)
            else:
                rows = (state.accelerator_index(None),)
            if r.gpus_per_node > 0 and not needs_domain(r):
                watch = tuple((a, r.gpus_per_node) for a in rows)
            else:
                # whole nodes: a node of pool p fits once it reaches all its slots
                watch = tuple(
                    sorted(
                        {
                            (
                                state.accelerator_index(state.pools[p].accelerator),
                                state.pool_slots[p],
                            )
                            for p in cands.pools
                        }
                    )
                )
            capped = tuple(
                sorted({state.pools[p].provider for p in cands.pools if state._capped[p]})
            )
            sh = self._shapes[key] = _Shape(cands, rows, watch, frozenset(cands.pools), capped)
        return sh

    @staticmethod
    def _rise(state: FleetState, sh: _Shape) -> tuple[int, ...]:
        return tuple(state.rise_epoch[a][k] for a, k in sh.watch)

    def _can_provision(self, state: FleetState, r: GangRequest, sh: _Shape) -> bool:
        """Whether ``_provision`` might do anything for ``r`` (conservative)."""
        if not self.provisioning:
            return False
        return r.job_id in state.provisioning or any(state.elastic_absent[a] for a in sh.acc_rows)

    def _fast_hold(
        self, state: FleetState, r: GangRequest, key: Hashable, sh: _Shape, cyc: _Cycle
    ) -> bool:
        """May a gang whose shape is blocked (valid ``_blocked`` memo) be held at once?
        The full turn would find no fit, no victims (``_may_preempt``: exact), try no
        reservation (already tried this cycle), and then try provisioning: a fresh
        scheduler skips that only for a later gang of the shape in the same cycle, so a
        memo from an earlier cycle may only skip it when provisioning cannot act."""
        if not (cyc.reserved_tried or not self.backfill):
            return False
        if key not in cyc.blocked_seen and self._can_provision(state, r, sh):
            return False
        if self._may_preempt(state, r, key, sh):
            return False
        if self._can_provision(state, r, sh):
            self._unsafe = True  # a replay could come first in its shape next cycle
        return True

    def _inputs(
        self,
        state: FleetState,
        r: GangRequest,
        key: Hashable,
        sh: _Shape,
        cyc: _Cycle,
        admitted: bool,
    ) -> tuple[object, ...]:
        """Everything a HOLD turn of ``r`` read, when it changed nothing (no decision but
        the HOLD, no eviction, no reservation tried, no provisioning): equal values at a
        later turn give the same HOLD. The fleet: the versions of its accelerators'
        pools (``acc_version``: its candidates' jobs and free, usable and absent nodes;
        coarser than the candidates' own versions, but O(1) where summing hundreds of
        them costs what the turn does); the ranking (the same memoised list: the same
        contract epoch, hence the same prices); the reservation when it lies in a
        candidate pool, and whether ``r`` may use its nodes; the ledger's quota state
        for the tenant (``quota_key``); when the turn consulted ``_admit``: the budget
        state (``budget_key``, the clock included) and the caps' answer for each capped
        provider of its candidates (caps are not monotone: the answers, not a counter).
        Other tenants' jobs and other accelerators never enter a turn; the cycle's
        protected placements and ``_blocked``'s skipped provisioning make a turn
        ``_unsafe`` instead."""
        res = cyc.reservation
        out: list[object] = [
            admitted,
            tuple(state.acc_version[a] for a in sh.acc_rows),
            self._ordered(state, key, r, sh.cands, cyc),
            None
            if res is None or res.pool not in sh.pool_set
            else (res.job_id, res.pool, res.start_s, res.nodes, res.allows(r, cyc.now_s)),
        ]
        if self.ledger is not None:
            out.append(self.ledger.quota_key(r.tenant, r.accelerators, r.gpus))
            if admitted:
                out.append(self.ledger.budget_key(r.tenant, cyc.now_s))
        if admitted and self.caps is not None and r.gpus and sh.capped_providers:
            by = state.capped_gpus_by_provider()
            total = state.allocated_gpus()
            out.append(tuple(self.caps.reason(v, r.gpus, by, total) for v in sh.capped_providers))
        return tuple(out)

    def _replay(
        self,
        state: FleetState,
        r: GangRequest,
        key: Hashable,
        sh: _Shape,
        cyc: _Cycle,
        old: tuple[object, ...],
    ) -> bool:
        """Whether ``_inputs`` now equal ``old`` (whose last item says whether the turn
        found no pool fitting); the fleet first, it changes most."""
        if tuple(state.acc_version[a] for a in sh.acc_rows) != old[1]:
            return False
        new = self._inputs(state, r, key, sh, cyc, bool(old[0]))
        return new[2] is old[2] and new[3:] == old[3:-1]

    def _ordered(
        self, state: FleetState, key: Hashable, r: GangRequest, cands: Candidates, cyc: _Cycle
    ) -> list[int]:
        if self.costs is None:
            skey = (key, r.provider_preference)
            got = self._static_order.get(skey)
            if got is None:
                got = self._static_order[skey] = list_price_order(state, r, cands.pools, 0.0)
            return got
        okey = (key, r.provider_preference, r.data_provider, r.data_region, r.data_gb, r.duration_s)
        got = cyc.order.get(okey)
        if got is None:
            ranked_ids = self.costs.rank(r, cyc.now_s)
            # PoolCosts hands back its memoised (read-only) array while its ranking holds:
            # the same array gives the same filtered list as last cycle.
            mkey = (key, id(ranked_ids))
            last = self._rank_memo.get(mkey)
            if last is not None and last[0] is ranked_ids:
                got = last[1]
            else:
                allowed = set(cands.pools)
                got = [p for p in ranked_ids.tolist() if p in allowed]
                if len(self._rank_memo) >= _MEMO_MAX:
                    self._rank_memo.clear()
                self._rank_memo[mkey] = (ranked_ids, got)
            cyc.order[okey] = got
        return got

    def _usd_per_hour(self, state: FleetState, r: GangRequest, p: int, cyc: _Cycle) -> float:
        spec = state.pools[p]
        if self.costs is None:
            node = marginal_usd_per_hour(spec, 1)
        else:
            if cyc.node_price is None:
                cyc.node_price = self.costs.marginal_usd_per_node_hour(cyc.now_s).tolist()
            node = cyc.node_price[p]
        share = r.gpus_per_node / spec.gpus_per_node if spec.gpus_per_node > 0 else 1.0
        return node * r.nodes * share

    def _admit(
        self, state: FleetState, r: GangRequest, p: int, cyc: _Cycle, freed: int = 0
    ) -> Reason | None:
        """Why the ledger or the caps refuse ``r`` on pool ``p`` (None: admitted);
        ``freed``: GPUs of pool ``p`` to count as released (preemption's victims)."""
        self._admits += 1
        spec = state.pools[p]
        if self.ledger is not None:
            why = self.ledger.admit_reason(
                r, spec.accelerator, self._usd_per_hour(state, r, p, cyc), cyc.now_s
            )
            if why is not None:
                return why
        if self.caps is not None and state._capped[p] and r.gpus:
            capped = self._caps_reason(state, r, spec.provider, freed)
            if capped:
                return Reason(ReasonCode.OVER_PROVIDER_CAP, capped)
        return None

    def _caps_reason(self, state: FleetState, r: GangRequest, provider: str, freed: int = 0) -> str:
        """The caps' answer for ``r`` on a capped pool of ``provider`` ("": allowed)."""
        assert self.caps is not None
        by = state.capped_gpus_by_provider()
        total = state.allocated_gpus() - freed
        if freed:
            by[provider] -= freed
        return self.caps.reason(provider, r.gpus, by, total)

    def _bind(
        self,
        state: FleetState,
        r: GangRequest,
        p: int,
        nodes: list[int],
        cyc: _Cycle,
        out: list[Decision],
    ) -> None:
        state.allocate(r, p, nodes, cyc.now_s)
        state.provisioning.pop(r.job_id, None)
        if cyc.plan:
            ck = cyc.plan_key.get(r.job_id)
            if ck is not None:
                cyc.plan.placed(ck, p)
        cyc.placed.add(r.job_id)
        cyc.placed_in.setdefault(p, []).append(r.job_id)
        if self.ledger is not None:
            self.ledger.on_start(
                r.job_id,
                r.tenant,
                state.pools[p].accelerator,
                r.gpus,
                self._usd_per_hour(state, r, p, cyc),
                None,
                cyc.now_s,
                r.duration_s,
            )
        out.append(Decision(_PLACE, r.job_id, p, tuple(nodes)))

    def _one(self, state: FleetState, r: GangRequest, cyc: _Cycle, out: list[Decision]) -> None:
        if r.job_id in state.allocations:
            raise ValueError(f"job {r.job_id} is queued but already running")
        # With the reservation tried, a held gang whose inputs did not change since its
        # last turn is held again for the same reason without redoing the turn (the
        # "unschedulable queue"; ``_inputs`` says why that is exact).
        quiet = cyc.reserved_tried or not self.backfill
        ent = self._jobs.get(r.job_id)
        if ent is not None and ent.r is r:
            key, sh, held, seen = ent.key, ent.sh, ent.held, ent.seen
            # (``acc`` None: no turn yet, the entry made by the cost plan)
            if seen is None and self._aggregate and ent.acc is not None:
                # A gang interchangeable with one that this cycle's ``_fast_hold`` held,
                # with no turn since that could change what it read (``_mut``): its turn
                # would be the same fast HOLD (what that reads of the gang: its shape,
                # priority and tenant; of the cycle: ``blocked_seen``, which holds the
                # key, and ``reserved_tried``, which stays set).
                got = cyc.fast.get(ent.fast)
                if got is not None and got[0] == self._mut:
                    d = ent.hold
                    if d is None or d.reason != got[1]:
                        d = ent.hold = Decision(_HOLD, r.job_id, reason=got[1], code=_WAIT)
                    out.append(d)
                    ent.held = None
                    ent.acc = got[2]
                    return
            if (
                quiet
                and held is not None
                and seen is not None
                and r.job_id not in state.provisioning
                # a recorded turn walked the plain order (a plan-first walk is
                # ``_unsafe``): where this cycle's plan puts pools first, the refusal met
                # first, hence the HOLD's reason, may differ from the recorded one
                and not self._plan_first_pools(r, cyc)
                and self._replay(state, r, key, sh, cyc, seen)
            ):
                if seen[-1] is True:
                    # the turn found no pool fitting: a fresh scheduler would hold the
                    # shape's ``_blocked`` memo now, at the current counters
                    self._blocked[key] = (self._rise(state, sh), self._capacity_reason(r))
                    cyc.blocked_seen.add(key)
                out.append(held)
                return
        else:
            ent = self._job(state, r)
            key, sh = ent.key, ent.sh
        last_acc = ent.acc
        n0 = len(out)
        self._unsafe = self._fast = False
        admits = self._admits
        blocked = self._turn(state, r, key, sh, cyc, out)
        if r.job_id in state.allocations:
            self._mut += 1
            self._jobs.pop(r.job_id, None)
            return
        d = out[n0] if len(out) == n0 + 1 else None
        acc = tuple(state.acc_version[a] for a in sh.acc_rows)
        if self._fast and self._aggregate:
            assert d is not None and d.reason is not None
            cyc.fast[ent.fast] = (self._mut, d.reason, acc)
        else:
            self._mut += 1
        if (
            quiet
            and d is not None
            and d.kind is _HOLD
            and not self._unsafe
            and not self._fast
            and r.job_id not in state.provisioning
            # Recording costs about what a turn does: only for a gang whose accelerators'
            # pools did not change since its last turn (where a replay may then hit).
            # Recording less never changes a decision.
            and acc == last_acc
        ):
            ent.seen = (*self._inputs(state, r, key, sh, cyc, self._admits != admits), blocked)
            ent.held = d
        else:
            ent.seen = ent.held = None
        ent.acc = acc

    def _job(self, state: FleetState, r: GangRequest) -> _Job:
        """A new ``_Job`` for ``r`` (kept in ``_jobs``)."""
        key = shape_key(r)
        ids = self._class_ids
        fk = ("fast", key, r.priority, r.tenant)
        fast = ids.setdefault(fk, len(ids))
        same = -1
        if r.data_provider is None or r.data_gb <= 0:
            sk = ("same", key, r.tenant, r.provider_preference, bool(r.duration_s))
            same = ids.setdefault(sk, len(ids))
        ent = self._jobs[r.job_id] = _Job(r, key, self._shape(state, key, r), fast, same)
        return ent

    def _turn(
        self,
        state: FleetState,
        r: GangRequest,
        key: Hashable,
        sh: _Shape,
        cyc: _Cycle,
        out: list[Decision],
    ) -> bool:
        """One gang's turn (module docstring); True when no pool fit it (its shape's
        ``_blocked`` memo is then set)."""
        cands = sh.cands
        if not cands.pools:
            out.append(Decision(DecisionKind.REJECT, r.job_id, reason=cands.reason, code=_NEVER))
            return False
        blocked: str | None = None
        memo = self._blocked.get(key)
        if memo is not None:
            if memo[0] == self._rise(state, sh):
                blocked = memo[1]
                fast = self._fast_hold(state, r, key, sh, cyc)
                cyc.blocked_seen.add(key)
                if fast:
                    # the blocked memo is this gang's finer "unschedulable queue": a
                    # replay (``_inputs``) would only cost more to check
                    self._fast = True
                    out.append(Decision(_HOLD, r.job_id, reason=blocked, code=_WAIT))
                    return True
            else:
                del self._blocked[key]
        pools = self._ordered(state, key, r, cands, cyc)
        block_why: Reason | None = None
        if self.costs is not None and self.costs.any_hard_end:
            pools, block_why = self._before_block_ends(state, r, pools, cyc.now_s)
        res = cyc.reservation
        why: Reason | None = None
        any_fit = False
        behind = False
        if blocked is None:
            # Refusals by (accelerator, price, capped provider): the ledger and the caps
            # answer alike for pools alike, and a repeat call changes nothing, so a known
            # refusal is reused; once ``why`` is set, a pool it refuses needs no pick.
            refused: dict[tuple[str | None, float, str | None], Reason] = {}
            # Once ``why`` is set, a pool whose accelerator the ledger's quota refuses
            # (``quota_refuses``: the same answer whatever the pool's price) or whose
            # provider the caps refuse (the same for every capped pool of the provider)
            # is refused by ``_admit`` whatever else: it needs no pick either. The answers
            # hold for the whole turn (nothing changes the state or the ledger before a
            # return).
            quota_no: dict[str | None, bool] = {}
            caps_no: dict[str, bool] = {}
            ledger = self.ledger
            has_caps = self.caps is not None
            caps_apply = has_caps and r.gpus > 0
            capped = state._capped
            specs = state.pools
            now = cyc.now_s
            shortcuts = self._shortcuts
            akey: tuple[str | None, float, str | None] | None
            # nothing below changes the state before a return: the fit is read lazily
            fitting: Iterable[int] = iter_fitting_pools(state, pools, r)
            if cyc.plan:
                first = self._plan_first_pools(r, cyc)
                if block_why is not None:
                    kept = set(pools)
                    first = [p for p in first if p in kept]
                if first:
                    # the plan's pools first; the refusal met first may then differ from
                    # the plain order's, so a replay of this turn's HOLD is not exact
                    self._unsafe = True
                    fitting = _plan_first(state, first, pools, r)
            for p in fitting:
                any_fit = True
                spec = specs[p]
                akey = None
                if why is not None:
                    if shortcuts:
                        if ledger is not None:
                            g = spec.accelerator
                            qn = quota_no.get(g)
                            if qn is None:
                                qn = quota_no[g] = ledger.quota_refuses(r.tenant, g, r.gpus)
                            if qn:
                                continue
                        if caps_apply and capped[p]:
                            v = spec.provider
                            cn = caps_no.get(v)
                            if cn is None:
                                cn = caps_no[v] = bool(self._caps_reason(state, r, v))
                            if cn:
                                continue
                    akey = (
                        spec.accelerator,
                        self._usd_per_hour(state, r, p, cyc) if ledger is not None else 0.0,
                        spec.provider if has_caps and capped[p] else None,
                    )
                    if akey in refused:
                        continue
                excl = None
                if res is not None and res.pool == p and not res.allows(r, now):
                    excl = res.nodes
                nodes = pick_nodes(state, p, r, excl)
                if nodes is None:
                    behind = behind or excl is not None
                    continue
                w = self._admit(state, r, p, cyc)
                if w is None:
                    self._bind(state, r, p, nodes, cyc, out)
                    return False
                if akey is None:
                    akey = (
                        spec.accelerator,
                        self._usd_per_hour(state, r, p, cyc) if ledger is not None else 0.0,
                        spec.provider if has_caps and capped[p] else None,
                    )
                refused[akey] = w
                if why is None:
                    why = w
                    if shortcuts and ledger is not None and self._quota_refuses_all(r, quota_no):
                        break  # every pool left is of an accelerator the quota refuses
        capacity = blocked
        # a gang kept off a Capacity Block by its end may fit it where a shorter one of
        # its shape fits: its "no pool fits" must not be the shape's memo
        if not any_fit and blocked is None and block_why is None:
            capacity = self._capacity_reason(r)
            self._blocked[key] = (self._rise(state, sh), capacity)
            cyc.blocked_seen.add(key)
        # PostFilter: preemption, then elastic growth, then the head's reservation
        if self._may_preempt(state, r, key, sh) and self._preempt(
            state, r, key, sh, pools, cyc, out
        ):
            return False
        if self.provisioning and why is None:
            grown = self._provision(state, r, pools, cyc, out, sh.acc_rows)
            if grown == "":
                return False
            if grown is not None:
                out.append(Decision(_HOLD, r.job_id, reason=grown, code=ReasonCode.PROVISIONING))
                return not any_fit
        if why is None and self.backfill and not cyc.reserved_tried:
            cyc.reserved_tried = True
            res = reserve(state, r, pools, cyc.now_s, self.reservation_pools)
            if res is not None:
                cyc.reservation = res
                label = reasons.gang_label(r.accelerators, r.gpus_per_node, r.nodes)
                reason = reasons.reserved_at(label, state.pools[res.pool].key, res.start_s)
                out.append(Decision(_HOLD, r.job_id, pool=res.pool, reason=reason, code=_RESERVED))
                return not any_fit
        if why is None and behind and res is not None:
            why = Reason(ReasonCode.BEHIND_RESERVATION, reasons.behind_reservation(res.job_id))
        why = why or block_why
        if why is not None:
            out.append(Decision(_HOLD, r.job_id, reason=why.text, code=why.code))
        else:
            out.append(
                Decision(_HOLD, r.job_id, reason=capacity or self._capacity_reason(r), code=_WAIT)
            )
        return not any_fit and block_why is None

    @staticmethod
    def _plan_first_pools(r: GangRequest, cyc: _Cycle) -> list[int]:
        """The pools this cycle's cost plan has ``r`` try first ([]: the plain order)."""
        if not cyc.plan:
            return []
        ck = cyc.plan_key.get(r.job_id)
        return cyc.plan.first(ck) if ck is not None else []

    def _before_block_ends(
        self, state: FleetState, r: GangRequest, pools: list[int], now_s: float
    ) -> tuple[list[int], Reason | None]:
        """``pools`` without those that end hard (Capacity Blocks) before ``r`` can
        finish or checkpoint there, and why the first one left out was (None: none)."""
        assert self.costs is not None
        costs = self.costs
        kept: list[int] = []
        why: Reason | None = None
        for p in pools:
            left, need = costs.block_fit(r, p, now_s)
            if need is not None and need <= left:
                kept.append(p)
            elif why is None:
                label = reasons.gang_label(r.accelerators, r.gpus_per_node, r.nodes)
                text = reasons.block_ends_too_soon(label, state.pools[p].key, left, need)
                why = Reason(ReasonCode.BLOCK_ENDS_TOO_SOON, text)
        return (pools, None) if why is None else (kept, why)

    def _quota_refuses_all(self, r: GangRequest, quota_no: dict[str | None, bool]) -> bool:
        """Whether the ledger's quota refuses ``r`` on every accelerator its candidate
        pools can have (``quota_no`` caches the answers for the turn)."""
        assert self.ledger is not None
        for g in r.accelerators or (None,):
            qn = quota_no.get(g)
            if qn is None:
                qn = quota_no[g] = self.ledger.quota_refuses(r.tenant, g, r.gpus)
            if not qn:
                return False
        return True

    @staticmethod
    def _capacity_reason(r: GangRequest) -> str:
        label = reasons.gang_label(r.accelerators, r.gpus_per_node, r.nodes)
        if needs_domain(r):
            return reasons.no_free_domain(r.gpus, label)
        return reasons.no_capacity(label)

    # --------------------------------------------------------------- PostFilter -----
    def _may_preempt(self, state: FleetState, r: GangRequest, key: Hashable, sh: _Shape) -> bool:
        if not self.preemption:
            return False
        q = r.priority
        acc_prio = state.acc_prio
        if not any(p < q for a in sh.acc_rows for p in acc_prio[a]) and (
            # no job of a lower priority on its accelerators, and none it may reclaim:
            # ``find_victims`` finds none (nor any the cycle's placements protect)
            self.ledger is None
            or (
                self._shortcuts
                and (not r.gpus or not self.ledger.may_reclaim(r.tenant, r.accelerators, r.gpus))
            )
        ):
            return False
        memo = self._no_victims.get((key, r.priority, r.tenant))
        if memo is None:
            return True
        return memo != self._victims_key(state, r, sh)

    def _victims_key(self, state: FleetState, r: GangRequest, sh: _Shape) -> tuple[object, ...]:
        """What ``find_victims`` (unprotected) reads: the candidate pools (through their
        accelerators' versions: releases too, a freed node may need fewer victims) and
        the ledger's quota state for the tenant (``reclaimable``)."""
        acc = tuple(state.acc_version[a] for a in sh.acc_rows)
        if self.ledger is None:
            return (acc, None)
        return (acc, self.ledger.quota_key(r.tenant, r.accelerators, r.gpus))

    @staticmethod
    def _protected(
        state: FleetState, r: GangRequest, sh: _Shape, cyc: _Cycle, reclaim: AbstractSet[int]
    ) -> bool:
        """Whether a job placed this cycle (protected from preemption) could have been a
        victim of ``r``: next cycle it no longer is, with no counter moved since."""
        allocs = state.allocations
        placed_in = cyc.placed_in
        pools = sh.pool_set if len(sh.pool_set) < len(placed_in) else placed_in
        for p in pools:
            if p not in placed_in or p not in sh.pool_set:
                continue
            for j in placed_in[p]:
                a = allocs.get(j)
                if a is None:
                    continue
                q = a.request
                if (q.preemptible and q.priority < r.priority) or j in reclaim:
                    return True
        return False

    def _preempt(
        self,
        state: FleetState,
        r: GangRequest,
        key: Hashable,
        sh: _Shape,
        pools: list[int],
        cyc: _Cycle,
        out: list[Decision],
    ) -> bool:
        if self._quota_refuses_any_victims(state, r, sh):
            return False
        reclaim: AbstractSet[int] = frozenset()
        if self.ledger is not None and r.gpus:
            reclaim = self.ledger.reclaimable_ids(r.tenant, r.accelerators, r.gpus)
        search = find_victims if self._victim_index else find_victims_scan
        found = search(
            state,
            r,
            pools,
            cyc.now_s,
            cyc.placed,
            reclaim,
            self.preemption_pools,
            self._victim_memo,
        )
        if found is None:
            if self._protected(state, r, sh, cyc, reclaim):
                self._unsafe = True
            else:
                self._no_victims[(key, r.priority, r.tenant)] = self._victims_key(state, r, sh)
            return False
        p = found.pool
        # Admission first, as it would be with the victims gone: the ledger stops them on
        # trial and rolls back exactly, the caps count without their GPUs. A refusal then
        # changes nothing, so a held gang's turn stays a pure HOLD that the next cycle
        # may replay (``_inputs``). (It used to evict, ask, and undo: the undo reordered
        # the pool's node buckets and restarted the victims in the ledger at ``now``.)
        if self._refused_without(state, r, p, found.jobs, cyc):
            return False
        gone = [state.release(j, cyc.now_s, evicted=True) for j in found.jobs]
        res = cyc.reservation
        excl = None
        if res is not None and res.pool == p and not res.allows(r, cyc.now_s):
            excl = res.nodes
        nodes = pick_nodes(state, p, r, excl)
        if nodes is None:
            self._unsafe = True  # the undo reorders the pool's node buckets
            for a in gone:  # undo: the gang still would not start (vCPUs, reservation)
                state.restore(a)
            return False
        if self.ledger is not None:
            for a in gone:
                self.ledger.on_stop(a.job_id, cyc.now_s)
        for a in gone:
            reason = reasons.preempted_for(r.job_id, r.priority)
            out.append(
                Decision(
                    DecisionKind.PREEMPT,
                    a.job_id,
                    a.pool,
                    a.nodes,
                    r.job_id,
                    reason=reason,
                    code=ReasonCode.PREEMPTED,
                )
            )
        self._bind(state, r, p, nodes, cyc, out)
        return True

    def _quota_refuses_any_victims(self, state: FleetState, r: GangRequest, sh: _Shape) -> bool:
        """Whether the ledger would refuse ``r`` on every candidate accelerator whatever
        victims were stopped (``refuses_whatever_stops``): the search for victims, which
        could only end in that refusal, is skipped (same outcome, no side effects)."""
        if self.ledger is None or not r.gpus or not sh.acc_rows:
            return False
        q = r.priority
        tp = state.tenant_prio_gpus
        ag = state.acc_prio_gpus
        for a in sh.acc_rows:
            if a >= len(state.accelerators):
                return False
            low = tp.get((r.tenant, a))
            mine = sum(v for k, v in low.items() if k < q) if low else 0
            # victims: preemptible jobs of a lower priority (reclaimable ones only when
            # within the guarantee, where the ledger does not refuse anyway)
            every = sum(v for k, v in ag[a].items() if k < q) if self._shortcuts else None
            if not self.ledger.refuses_whatever_stops(
                r.tenant, state.accelerators[a], r.gpus, mine, every
            ):
                return False
        return True

    def _refused_without(
        self, state: FleetState, r: GangRequest, p: int, jobs: Sequence[int], cyc: _Cycle
    ) -> bool:
        """Whether ``_admit`` refuses ``r`` on pool ``p`` once ``jobs`` (running there)
        have stopped; changes nothing."""
        allocs = state.allocations
        freed = sum(allocs[j].request.gpus_per_node * len(allocs[j].nodes) for j in jobs)
        if self.ledger is None:
            return self._admit(state, r, p, cyc, freed) is not None
        cp = self.ledger.checkpoint(jobs, r.tenant)
        try:
            for j in jobs:
                self.ledger.on_stop(j, cyc.now_s)
            return self._admit(state, r, p, cyc, freed) is not None
        finally:
            self.ledger.rollback(cp)

    def _provision(
        self,
        state: FleetState,
        r: GangRequest,
        pools: list[int],
        cyc: _Cycle,
        out: list[Decision],
        acc_rows: tuple[int, ...],
    ) -> str | None:
        """Grow the cheapest elastic pool that can take ``r`` once grown; the reason to
        hold ``r`` meanwhile; ``""`` when the new nodes were ready at once and ``r`` is
        placed; None when no pool can grow enough."""
        inflight = state.provisioning.get(r.job_id)
        if inflight is not None:
            p, held_rows, ready = inflight
            if ready > cyc.now_s:
                return reasons.provisioning(len(held_rows), state.pools[p].key, ready)
            del state.provisioning[r.job_id]
        if not any(state.elastic_absent[a] for a in acc_rows):
            return None  # no elastic pool of its accelerators has a row to grow into
        for p in pools:
            spec = state.pools[p]
            if not state.elastic[p] or state.absent_nodes(p) == 0:
                continue
            rows = _rows_to_grow(state, p, r)
            if rows is None or self._admit(state, r, p, cyc) is not None:
                continue
            state.provision_rows(p, rows, cyc.now_s)
            ready = cyc.now_s + spec.provision_delay_s
            state.provisioning[r.job_id] = (p, tuple(rows), ready)
            out.append(Decision(DecisionKind.PROVISION, r.job_id, p, tuple(rows), count=len(rows)))
            state.advance(cyc.now_s)  # zero delay: usable at once
            if ready <= cyc.now_s:
                nodes = pick_nodes(state, p, r)
                if nodes is not None:
                    self._bind(state, r, p, nodes, cyc, out)
                    return ""
            return reasons.provisioning(len(rows), spec.key, ready)
        return None

    # ----------------------------------------------------------- events and others --
    def finished(self, state: FleetState, job_id: int, now_s: float) -> None:
        """Job ``job_id`` ended on its own (completed, cancelled, failed in user code)."""
        state.release(job_id, now_s)
        if self.ledger is not None:
            self.ledger.on_stop(job_id, now_s)

    def _evict(
        self, state: FleetState, jobs: Iterable[int], now_s: float, reason: str, code: ReasonCode
    ) -> list[Decision]:
        out = []
        for j in jobs:
            a = state.release(j, now_s, evicted=True)
            if self.ledger is not None:
                self.ledger.on_stop(j, now_s)
            out.append(Decision(DecisionKind.PREEMPT, j, a.pool, a.nodes, reason=reason, code=code))
        return out

    def spot_reclaimed(
        self, state: FleetState, nodes: Sequence[int], now_s: float
    ) -> list[Decision]:
        """The provider took ``nodes`` back: their gangs are evicted (``PREEMPT``, to
        requeue) and the nodes leave the fleet."""
        out = self._evict(
            state,
            jobs_on_nodes(state, nodes),
            now_s,
            reasons.SPOT_RECLAIMED,
            ReasonCode.SPOT_RECLAIMED,
        )
        state.remove_nodes(nodes)
        return out

    def node_failed(self, state: FleetState, node: int, now_s: float) -> list[Decision]:
        """``node`` failed: every gang with a member on it is evicted; the node stays
        unhealthy until ``state.set_healthy([node], True)``."""
        out = self._evict(
            state, jobs_on_nodes(state, [node]), now_s, reasons.NODE_FAILED, ReasonCode.NODE_FAILED
        )
        state.set_healthy([node], False)
        return out

    def region_lost(
        self, state: FleetState, provider: str, region: str, now_s: float
    ) -> list[Decision]:
        """A whole region of ``provider`` is gone: its gangs are evicted and its nodes
        marked unhealthy (``state.set_healthy`` brings them back)."""
        rows: list[int] = []
        for p, spec in enumerate(state.pools):
            if spec.provider == provider and spec.region == region:
                rows.extend(state.pool_rows(p))
        out = self._evict(
            state, jobs_on_nodes(state, rows), now_s, reasons.REGION_LOST, ReasonCode.REGION_LOST
        )
        state.set_healthy(rows, False)
        return out

    def release_idle(self, state: FleetState, now_s: float, min_idle_s: float) -> list[Decision]:
        """``RELEASE`` the elastic nodes idle for at least ``min_idle_s`` (not those
        provisioned for a held gang)."""
        held = {n for _, rows, _ in state.provisioning.values() for n in rows}
        out = []
        for p, spec in enumerate(state.pools):
            if not spec.elastic:
                continue
            idle = [n for n in state.idle_nodes(p, now_s, min_idle_s) if n not in held]
            if idle:
                state.remove_nodes(idle)
                out.append(
                    Decision(DecisionKind.RELEASE, pool=p, node_ids=tuple(idle), count=len(idle))
                )
        return out


def _plan_first(
    state: FleetState, first: list[int], pools: list[int], r: GangRequest
) -> Iterator[int]:
    """The fitting pools of ``r``: its plan's pools first, then the rest in order."""
    yield from iter_fitting_pools(state, first, r)
    seen = set(first)
    for p in iter_fitting_pools(state, pools, r):
        if p not in seen:
            yield p


def _rows_to_grow(state: FleetState, p: int, r: GangRequest) -> list[int] | None:
    """Absent rows of pool ``p`` to add so that ``r`` fits once they are ready."""
    absent = state.absent_rows(p)
    if needs_domain(r):
        best: tuple[int, int] | None = None
        by_dom: dict[int, list[int]] = {}
        for x in absent:
            by_dom.setdefault(int(state.domain[x]), []).append(x)
        for d, xs in sorted(by_dom.items()):
            need = r.nodes - state.domain_free_count(d)
            if 0 < need <= len(xs) and (best is None or need < best[0]):
                best = (need, d)
        return None if best is None else by_dom[best[1]][: best[0]]
    need = r.nodes - state.nodes_with_at_least(p, slots_needed(state, p, r))
    return absent[:need] if 0 < need <= len(absent) else None


def requeue(state: FleetState, decisions: Iterable[Decision]) -> list[GangRequest]:
    """The requests to queue again for the ``PREEMPT`` decisions among ``decisions``
    (each resumes from its last checkpoint); takes them out of ``state.evicted``."""
    out = []
    for d in decisions:
        if d.kind == DecisionKind.PREEMPT and d.job_id in state.evicted:
            out.append(requeued(state.evicted.pop(d.job_id)))
    return out
