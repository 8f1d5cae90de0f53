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

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from intercloud.scheduler import reasons
from intercloud.scheduler.backfill import Reservation, reserve
from intercloud.scheduler.cost.caps import DiversificationCaps
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
    pick_nodes,
    slots_needed,
)
from intercloud.scheduler.preemption import find_victims, jobs_on_nodes, requeued
from intercloud.scheduler.queue_order import QueueOrder, get_policy
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest
from intercloud.scheduler.tenancy import TenantLedger

__all__ = ["Scheduler", "requeue"]

_PLACE = DecisionKind.PLACE
_HOLD = DecisionKind.HOLD


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the scheduler keeps per request shape: its candidate pools, the rows of its
    accelerators in the state's change counters, and the free slots a member needs."""

    cands: Candidates
    acc_rows: tuple[int, ...]
    g: int


@dataclass(slots=True)
class _Cycle:
    """What one ``schedule`` call learns as it goes."""

    now_s: float
    reservation: Reservation | None = None
    reserved_tried: bool = False
    placed: set[int] = field(default_factory=set)
    still_blocked: dict[Hashable, bool] = field(default_factory=dict)
    order: dict[Hashable, list[int]] = field(default_factory=dict)
    node_price: list[float] | None = None


class Scheduler:
    """The fleet scheduler's policies; ``schedule`` is the cycle (module docstring).

    ``queue_order``: a policy name or object (``scheduler/queue_order``). ``ledger``:
    the tenants' quotas, budgets and usage (None: no limits); when given, every
    completion must go through ``finished`` so that it learns of it. ``costs``: pool
    prices and contracts (None: list prices, reserved free). ``caps``: diversification
    caps (None: none). ``backfill``/``preemption``/``provisioning`` switch those steps;
    ``reservation_pools`` bounds the pools the head's reservation is searched in and
    ``preemption_pools`` the pools with possible victims that preemption compares.
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
        self._state: FleetState | None = None
        self._shapes: dict[Hashable, _Shape] = {}
        self._static_order: dict[Hashable, list[int]] = {}
        # Exact memos across cycles (they never change a decision): a shape that fits no
        # pool stays so until a node of its accelerators rises to the slots it needs;
        # a (shape, priority, tenant) without victims stays so until then or until a
        # job of its accelerators is placed.
        self._blocked: dict[Hashable, tuple[tuple[int, ...], str]] = {}
        self._no_victims: dict[Hashable, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        # per pool: the version at which it had no victims for a shape (find_victims)
        self._victim_memo: dict[tuple[int, int, bool, int], dict[int, int]] = {}
        # per ranking key: (PoolCosts.rank's array, the candidate pools in its order)
        self._rank_memo: dict[Hashable, tuple[object, list[int]]] = {}
        # per queued job: (request, shape key, shape, its HOLD while its shape is blocked)
        self._jobs: dict[int, tuple[GangRequest, Hashable, _Shape, Decision | None]] = {}

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
            self._jobs.clear()
        state.advance(now_s)
        cyc = _Cycle(now_s)
        out: list[Decision] = []
        for i in self.queue_order.order(queue, self._order_ledger, now_s):
            self._one(state, queue[i], cyc, out)
        if len(self._jobs) > 2 * len(queue) + 1024:
            ids = {r.job_id for r in queue}
            self._jobs = {j: e for j, e in self._jobs.items() if j in ids}
        return out

    def _shape(self, state: FleetState, key: Hashable, r: GangRequest) -> _Shape:
        sh = self._shapes.get(key)
        if sh is None:
            cands = candidate_pools(state, r)
            if r.accelerators:
                rows = tuple(i for i in map(state.accelerator_index, r.accelerators) if i >= 0)
            else:
                rows = (state.accelerator_index(None),)
            g = r.gpus_per_node if r.gpus_per_node > 0 else 1
            sh = self._shapes[key] = _Shape(cands, rows, g)
        return sh

    @staticmethod
    def _rise(state: FleetState, sh: _Shape) -> tuple[int, ...]:
        return tuple(state.rise_epoch[a][sh.g] for a in sh.acc_rows)

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
                if len(self._rank_memo) >= 4096:
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

    def _admit(self, state: FleetState, r: GangRequest, p: int, cyc: _Cycle) -> str | None:
        spec = state.pools[p]
        if self.ledger is not None:
            why = self.ledger.admit(
                r, spec.accelerator, self._usd_per_hour(state, r, p, cyc), cyc.now_s
            )
            if why is not None:
                return why
        if self.caps is not None and state._capped[p] and r.gpus:
            by = state.capped_gpus_by_provider()
            total = state.allocated_gpus()
            why = self.caps.reason(spec.provider, r.gpus, by, total)
            if why:
                return why
        return None

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
        self._jobs.pop(r.job_id, None)
        cyc.placed.add(r.job_id)
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
        ent = self._jobs.get(r.job_id)
        if ent is not None and ent[0] is r:
            key, sh = ent[1], ent[2]
            held = ent[3]
            if held is not None and (cyc.reserved_tried or not self.backfill):
                ok = cyc.still_blocked.get(key)
                if ok is None:
                    memo = self._blocked.get(key)
                    ok = cyc.still_blocked[key] = memo is not None and memo[0] == self._rise(
                        state, sh
                    )
                if ok and not self._may_preempt(state, r, key, sh):
                    out.append(held)
                    return
        else:
            key = shape_key(r)
            sh = self._shape(state, key, r)
            self._jobs[r.job_id] = (r, key, sh, None)
        cands = sh.cands
        if not cands.pools:
            out.append(Decision(DecisionKind.REJECT, r.job_id, reason=cands.reason))
            return
        blocked: str | None = None
        memo = self._blocked.get(key)
        if memo is not None:
            if memo[0] == self._rise(state, sh):
                blocked = memo[1]
                if (cyc.reserved_tried or not self.backfill) and not self._may_preempt(
                    state, r, key, sh
                ):
                    d = Decision(_HOLD, r.job_id, reason=blocked)
                    self._jobs[r.job_id] = (r, key, sh, d)
                    out.append(d)
                    return
            else:
                del self._blocked[key]
        pools = self._ordered(state, key, r, cands, cyc)
        res = cyc.reservation
        why: str | None = None
        any_fit = False
        behind = False
        if blocked is None:
            # Refusals by (accelerator, price, capped provider): the ledger and the caps
            # answer alike for pools alike, and a repeat call changes nothing, so a known
            # refusal is reused; once ``why`` is set, a pool it refuses needs no pick.
            refused: dict[tuple[str | None, float, str | None], str] = {}
            # nothing below changes the state before a return: filter all pools at once
            for p in fitting_pools(state, pools, r):
                any_fit = True
                spec = state.pools[p]
                akey = (
                    spec.accelerator,
                    self._usd_per_hour(state, r, p, cyc) if self.ledger is not None else 0.0,
                    spec.provider if self.caps is not None and state._capped[p] else None,
                )
                known = refused.get(akey)
                if known is not None and why is not None:
                    continue
                excl = None
                if res is not None and res.pool == p and not res.allows(r, cyc.now_s):
                    excl = res.nodes
                nodes = pick_nodes(state, p, r, excl)
                if nodes is None:
                    behind = behind or excl is not None
                    continue
                w = known if known is not None else self._admit(state, r, p, cyc)
                if w is not None:
                    refused[akey] = w
                    why = why or w
                    continue
                self._bind(state, r, p, nodes, cyc, out)
                return
        capacity = blocked or self._capacity_reason(r)
        if not any_fit and blocked is None:
            self._blocked[key] = (self._rise(state, sh), capacity)
        # PostFilter: preemption, then elastic growth, then the head's reservation
        if self._may_preempt(state, r, key, sh) and self._preempt(
            state, r, key, sh, pools, cyc, out
        ):
            return
        if self.provisioning and why is None:
            grown = self._provision(state, r, pools, cyc, out)
            if grown == "":
                return
            if grown is not None:
                out.append(Decision(_HOLD, r.job_id, reason=grown))
                return
        if why is None and self.backfill and not cyc.reserved_tried:
            cyc.reserved_tried = True
            res = reserve(state, r, pools, cyc.now_s, self.reservation_pools)
            if res is not None:
                cyc.reservation = res
                label = reasons.gang_label(r.accelerators, r.gpus_per_node, r.nodes)
                reason = reasons.reserved_at(label, state.pools[res.pool].key, res.start_s)
                out.append(Decision(_HOLD, r.job_id, pool=res.pool, reason=reason))
                return
        if why is None and behind and res is not None:
            why = reasons.behind_reservation(res.job_id)
        out.append(Decision(_HOLD, r.job_id, reason=why or capacity))

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
        if self.ledger is None:
            q = r.priority
            if not any(p < q for a in sh.acc_rows for p in state.acc_prio[a]):
                return False
        memo = self._no_victims.get((key, r.priority, r.tenant))
        if memo is None:
            return True
        return memo != (self._rise(state, sh), tuple(state.place_epoch[a] for a in sh.acc_rows))

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
        reclaim: set[int] = set()
        if self.ledger is not None and r.gpus:
            for acc in r.accelerators:
                reclaim.update(self.ledger.reclaimable(r.tenant, acc, r.gpus))
        found = find_victims(
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
            if not reclaim:
                self._no_victims[(key, r.priority, r.tenant)] = (
                    self._rise(state, sh),
                    tuple(state.place_epoch[a] for a in sh.acc_rows),
                )
            return False
        p = found.pool
        gone = [state.release(j, cyc.now_s, evicted=True) for j in found.jobs]
        res = cyc.reservation
        excl = None
        if res is not None and res.pool == p and not res.allows(r, cyc.now_s):
            excl = res.nodes
        nodes = pick_nodes(state, p, r, excl)
        if nodes is not None and self.ledger is not None:
            for a in gone:
                self.ledger.on_stop(a.job_id, cyc.now_s)
        w = None if nodes is None else self._admit(state, r, p, cyc)
        if nodes is None or w is not None:
            for a in gone:  # undo: the gang still would not start
                state.restore(a)
                if self.ledger is not None and nodes is not None:
                    self._ledger_start(state, a.request, a.pool, cyc)
            return False
        for a in gone:
            reason = reasons.preempted_for(r.job_id, r.priority)
            out.append(
                Decision(DecisionKind.PREEMPT, a.job_id, a.pool, a.nodes, r.job_id, reason=reason)
            )
        self._bind(state, r, p, nodes, cyc, out)
        return True

    def _ledger_start(self, state: FleetState, r: GangRequest, p: int, cyc: _Cycle) -> None:
        assert self.ledger is not None
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

    def _provision(
        self, state: FleetState, r: GangRequest, pools: list[int], cyc: _Cycle, out: list[Decision]
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
        self, state: FleetState, jobs: Iterable[int], now_s: float, reason: str
    ) -> list[Decision]:
        out = []
        for j in jobs:
            a = state.release(j, now_s, evicted=True)
            if self.ledger is not None:
                self.ledger.on_stop(j, now_s)
            out.append(Decision(DecisionKind.PREEMPT, j, a.pool, a.nodes, reason=reason))
        return out

    def spot_reclaimed(
        self, state: FleetState, nodes: Sequence[int], now_s: float
    ) -> list[Decision]:
        """The provider took ``nodes`` back: their gangs are evicted (``PREEMPT``, to
        requeue) and the nodes leave the fleet."""
        out = self._evict(state, jobs_on_nodes(state, nodes), now_s, reasons.SPOT_RECLAIMED)
        state.remove_nodes(nodes)
        return out

    def node_failed(self, state: FleetState, node: int, now_s: float) -> list[Decision]:
        """``node`` failed: every gang with a member on it is evicted; the node stays
        unhealthy until ``state.set_healthy([node], True)``."""
        out = self._evict(state, jobs_on_nodes(state, [node]), now_s, reasons.NODE_FAILED)
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
        out = self._evict(state, jobs_on_nodes(state, rows), now_s, reasons.REGION_LOST)
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
