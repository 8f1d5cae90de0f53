"""The fleet snapshot kept across the fleet decider's cycles (``SnapshotKeeper``).

``build_snapshot`` makes the ``FleetState`` of every instance and allocates every
running job from scratch: with 10,000 instances and 6,000 running jobs that is most of
a live-loop step in which anything changed (a job ended, one arrived, an instance came
up). The keeper builds it once and then applies what changed in the inputs since the
last cycle to the state it kept, through ``FleetState``'s public operations:

- an instance added, ended, or moved between ready (RUNNING), coming (REQUESTED,
  ALLOCATED) and leaving (DRAINING, TERMINATING): its row is emptied (the jobs on it
  released) and given back in its new form (a new instance takes the pool's lowest
  absent row);
- a running job whose record or instance rows changed: released and allocated again as
  the fresh build would (its bound RUNNING instances by rank, else the idle ones its
  placement names); a job gone: released;
- what the fresh build derives from the clock (a ready node's ``ready_at``, an idle
  node's ``idle_since``, a coming node's readiness ``provision_delay_s`` from now) set
  again when the clock moved; the idle nodes of every pool touched put back in
  instance order (``snapshot.canonical_free``, which the fresh build applies too).

What changed is found without a Python pass over the 10,000 instances and 6,000 running
jobs: the inputs' lists hold the very objects of the last cycle for unchanged rows, in
the same order, and ``identity_runs.identity_delta`` finds the others in C (a full
pass when too much moved).

The tenant ledger is rebuilt each cycle (a function of the running set), from each
running job's ``RunningStart``, kept while its inputs are the same objects: loaded from
the last cycle's columns and the jobs that changed (``snapshot.finish_fleet``, which on
a kept cycle looks only at the jobs the deltas touched, ``RunningColumns.updated``,
``TenantLedger.load_columns``), the same ledger as a load of them all.

A cycle's scheduler mutates the state it is given (the gangs it places, the nodes it
provisions, the jobs it preempts): ``settle`` undoes that after the cycle (releases
what it placed, restores what it preempted, empties the rows it provisioned), so the
kept state is again the inputs' snapshot.

Exact or rebuilt: the keeper applies deltas only to a fleet of elastic instance pools
(no local sites, sized pools, contracts, cool-downs or down providers: their shapes
move with inputs the deltas do not cover) whose offerings, free capacity, backed and
spot providers and policy are those of the kept snapshot, on a clock
that does not go back, while every pool's rows still hold its instances; otherwise,
after any error, and every ``rebuild_every`` cycles as a safety net, it builds afresh.
``tests/control/test_kept_snapshot.py`` checks the kept snapshot against a fresh
build node by node (by instance), and the decisions against a decider that rebuilds,
over random sequences of changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intercloud.control.decide import RunningJob, offering_key
from intercloud.control.identity_runs import identity_delta
from intercloud.control.snapshot import (
    LEAVING_STATES,
    LIVE_STATES,
    Fleet,
    PoolKind,
    SnapshotInputs,
    build_snapshot,
    canonical_free,
    finish_fleet,
)
from intercloud.control.snapshot import _epoch as epoch_of
from intercloud.control.snapshot import _held_request as held_request
from intercloud.control.snapshot import _placement_key as placement_key
from intercloud.providers.contract import InstanceState
from intercloud.scheduler.fleet.state import FREE, Allocation
from intercloud.store.records import InstanceRecord

__all__ = ["REBUILD_EVERY", "SnapshotKeeper"]

#: cycles between two fresh builds, whatever changed (the safety net)
REBUILD_EVERY = 200

_RUNNING = InstanceState.RUNNING.value
_READY, _COMING, _LEAVING = 0, 1, 2


def _kind(state: str) -> int | None:
    st = InstanceState(state)
    if st is InstanceState.RUNNING:
        return _READY
    if st in LIVE_STATES:
        return _COMING
    if st in LEAVING_STATES:
        return _LEAVING
    return None


def _same(a: Sequence[Any], b: Sequence[Any]) -> bool:
    if a is b:
        return True
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))


@dataclass(slots=True)
class _Kept:
    fleet: Fleet
    inputs: SnapshotInputs
    pool_of: dict[tuple[Any, str], int]  # (offering key, pricing) -> pool
    rows: dict[int, int] = field(default_factory=dict)  # instance id -> row
    kinds: dict[int, int] = field(default_factory=dict)  # instance id -> _READY/...
    insts: dict[int, InstanceRecord] = field(default_factory=dict)
    # job -> {instance id: (rank, row, pool)}: its bound RUNNING instances
    bound_rows: dict[int, dict[int, tuple[int, int, int]]] = field(default_factory=dict)
    jobs: dict[int, RunningJob] = field(default_factory=dict)  # backed running jobs
    allocs: dict[int, Allocation] = field(default_factory=dict)  # what the inputs hold
    named: dict[int, set[int]] = field(default_factory=dict)  # instance id -> jobs naming it
    mapped: Any = None  # numpy bool per row: has an instance
    row_kind: Any = None  # numpy int8 per row: its instance's kind (-1: none)
    # the jobs whose ``RunningJob`` or held gang this cycle's deltas changed
    touched: set[int] = field(default_factory=set)
    cycles: int = 0


class SnapshotKeeper:
    """``snapshot(inputs)`` equals ``build_snapshot(inputs)`` (module docstring);
    ``settle()`` after the cycle that used it. ``rebuilds`` / ``applied`` count the
    fresh builds and the cycles served from the kept state (for tests and stats)."""

    def __init__(self, rebuild_every: int = REBUILD_EVERY) -> None:
        self.rebuild_every = rebuild_every
        self.rebuilds = 0
        self.applied = 0
        self._kept: _Kept | None = None
        self._lent = False
        #: why the last fresh build after the first was made (for tests and stats)
        self.why_rebuilt = ""

    # -- the cycle's snapshot ----------------------------------------------------------
    def snapshot(self, inp: SnapshotInputs) -> Fleet:
        kept = self._kept
        self._kept = None  # until the deltas are applied in full
        if kept is not None and self._may_apply(kept, inp):
            try:
                self._apply(kept, inp)
            except Exception as exc:  # anything unforeseen: a fresh build is always right
                self.why_rebuilt = f"{type(exc).__name__}: {exc}"
                kept = None
            else:
                self.applied += 1
                kept.cycles += 1
                self._kept = kept
                self._lent = True
                return kept.fleet
        elif kept is not None:
            self.why_rebuilt = "inputs the deltas do not cover"
        fleet = build_snapshot(inp)
        self.rebuilds += 1
        self._kept = self._adopt(fleet, inp) if self.rebuild_every > 0 else None
        self._lent = self._kept is not None
        return fleet

    @property
    def kept_fleet(self) -> Fleet | None:
        """The kept snapshot (after ``settle``: the last inputs' snapshot), if any."""
        return self._kept.fleet if self._kept is not None else None

    @property
    def kept_inputs(self) -> SnapshotInputs | None:
        return self._kept.inputs if self._kept is not None else None

    def drop(self) -> None:
        """Forget the kept snapshot (the next cycle builds afresh)."""
        self._kept = None
        self._lent = False

    def settle(self) -> None:
        """Undo what the cycle's scheduler did to the lent snapshot's state."""
        kept = self._kept
        if kept is None or not self._lent:
            return
        self._lent = False
        try:
            self._settle(kept)
        except Exception:
            self._kept = None

    # -- when deltas apply ---------------------------------------------------------------
    def _may_apply(self, kept: _Kept, inp: SnapshotInputs) -> bool:
        last = kept.inputs
        return (
            kept.cycles + 1 < self.rebuild_every
            and inp.now_s >= last.now_s
            and inp.free is None
            and last.free is None
            and inp.instance_backed == last.instance_backed
            and inp.spot_providers == last.spot_providers
            and inp.policy == last.policy
            and _same(inp.offerings, last.offerings)
        )

    def _adopt(self, fleet: Fleet, inp: SnapshotInputs) -> _Kept | None:
        """Keep a fresh snapshot if its shape is one the deltas cover."""
        policy = inp.policy
        if policy.blocks or policy.down or policy.contracts:
            return None
        pools = fleet.pools
        if not pools or any(
            p.kind is not PoolKind.INSTANCES or p.frozen is not None or p.contract is not None
            for p in pools
        ):
            return None
        state = fleet.state
        kept = _Kept(fleet, inp, {})
        for p, pool in enumerate(pools):
            key = offering_key(pool.offering)
            if pool.total != policy.max_of(key):
                return None  # grown past its configured size: its rows move with its instances
            kept.pool_of[(key, pool.pricing.value)] = p
        kept.mapped = np.zeros(state.n_nodes, dtype=np.bool_)
        kept.row_kind = np.full(state.n_nodes, -1, dtype=np.int8)
        for n, inst in fleet.node_instance.items():
            kind = _kind(inst.state)
            if kind is None:
                return None
            kept.rows[inst.id] = n
            kept.kinds[inst.id] = kind
            kept.insts[inst.id] = inst
            kept.mapped[n] = True
            kept.row_kind[n] = kind
            self._bind(kept, inst, n)
        for job in inp.running:
            if job.job_id in fleet.held or self._backed_job(kept, job):
                kept.jobs[job.job_id] = job
                self._name(kept, job)
        kept.allocs = dict(state.allocations)
        return kept

    # -- bookkeeping of instances and jobs ----------------------------------------------
    @staticmethod
    def _bind(kept: _Kept, inst: InstanceRecord, n: int) -> None:
        j = inst.workload_id
        if j is not None and inst.state == _RUNNING:
            p = int(kept.fleet.state.pool[n])
            kept.bound_rows.setdefault(j, {})[inst.id] = (inst.rank or 0, n, p)

    @staticmethod
    def _unbind(kept: _Kept, inst: InstanceRecord) -> None:
        j = inst.workload_id
        if j is not None:
            got = kept.bound_rows.get(j)
            if got is not None:
                got.pop(inst.id, None)
                if not got:
                    del kept.bound_rows[j]

    @staticmethod
    def _hold(kept: _Kept, j: int, a: Allocation) -> None:
        """Job ``j`` holds ``a`` in the inputs' snapshot: in ``allocs`` and the fleet's
        ``held`` and ``held_requests`` (kept equal to what ``allocs`` gives, in its
        order, as a fresh build makes them)."""
        kept.allocs[j] = a
        kept.fleet.held[j] = a.pool
        kept.fleet.held_requests[j] = a.request
        kept.touched.add(j)

    @staticmethod
    def _unhold(kept: _Kept, j: int) -> None:
        kept.allocs.pop(j, None)
        kept.fleet.held.pop(j, None)
        kept.fleet.held_requests.pop(j, None)
        kept.touched.add(j)

    @staticmethod
    def _backed_job(kept: _Kept, job: RunningJob) -> bool:
        cands = kept.fleet.pools_of.get(placement_key(job.placement))
        return cands is not None

    @staticmethod
    def _name(kept: _Kept, job: RunningJob) -> None:
        named = job.placement.get("instances") or ()
        if isinstance(named, list | tuple):
            for iid in named:
                if isinstance(iid, int):
                    kept.named.setdefault(iid, set()).add(job.job_id)

    @staticmethod
    def _unname(kept: _Kept, job: RunningJob) -> None:
        named = job.placement.get("instances") or ()
        if isinstance(named, list | tuple):
            for iid in named:
                got = kept.named.get(iid) if isinstance(iid, int) else None
                if got is not None:
                    got.discard(job.job_id)
                    if not got:
                        del kept.named[iid]

    # -- applying the deltas ----------------------------------------------------------
    def _apply(self, kept: _Kept, inp: SnapshotInputs) -> None:
        fleet = kept.fleet
        state = fleet.state
        now = inp.now_s
        moved = now != kept.inputs.now_s
        state.now_s = max(state.now_s, now)
        dirty_jobs: set[int] = set()
        dirty_pools: set[int] = set()
        kept.touched = set()

        # instances: what changed since the kept inputs (only the records that are not
        # the very objects at the same places of the last inputs' list, when they are few)
        seen: set[int] = set()
        changed: list[tuple[int, InstanceRecord | None, int | None, int | None]] = []
        insts = kept.insts
        # (too much moved: every record of both lists)
        gone_insts, look = identity_delta(kept.inputs.instances, inp.instances) or (
            kept.inputs.instances,
            inp.instances,
        )
        for inst in look:
            old = insts.get(inst.id)
            if old is inst:
                seen.add(inst.id)
                continue
            if inst.contract is not None:
                p = None
            else:
                p = kept.pool_of.get((inst.offering, inst.pricing))
            kind = _kind(inst.state) if p is not None else None
            if kind is None:
                continue  # not a node of any pool (gone, or not pooled): as if absent
            seen.add(inst.id)
            if old is not None and old == inst:
                insts[inst.id] = inst
                fleet.node_instance[kept.rows[inst.id]] = inst
                self._unbind(kept, old)
                self._bind(kept, inst, kept.rows[inst.id])
                continue
            changed.append((inst.id, inst, p, kind))
        # a record left out of the list, unless its row came back in another
        gone = [r.id for r in gone_insts if r.id not in seen and insts.get(r.id) is r]
        changed.extend((iid, None, None, None) for iid in gone)
        if changed:
            # the pool's row count after the changes must fit its rows (else rebuild):
            # the rows holding an instance now (``mapped``), by pool
            counts = np.bincount(state.pool[kept.mapped], minlength=state.n_pools).tolist()
            for iid, _i, p, _k in changed:
                if iid in insts:
                    counts[int(state.pool[kept.rows[iid]])] -= 1
                if p is not None:
                    counts[p] += 1
            if any(c > spec.max_nodes for c, spec in zip(counts, state.pools, strict=True)):
                raise _Rebuild("a pool outgrew its rows")
        # rows to empty: release the jobs on them first
        for iid, _inst, _p, _k in changed:
            n = kept.rows.get(iid)
            if n is not None and int(state.job[n]) != FREE:
                for j in state.jobs_on(n):
                    dirty_pools.add(state.release(j, now).pool)
                    self._unhold(kept, j)
                    dirty_jobs.add(j)
        for iid, now_inst, p, kind in changed:
            old = insts.get(iid)
            n = kept.rows.get(iid)
            if old is not None:
                self._unbind(kept, old)
                dirty_jobs.update(kept.named.get(iid, ()))
                if old.workload_id is not None:
                    dirty_jobs.add(old.workload_id)
            if n is not None and (
                now_inst is None or kept.kinds[iid] != kind or p != state.pool[n]
            ):
                # emptied: given back below in its new form, or left absent
                state.remove_nodes([n])
                state.set_healthy([n], True)
                dirty_pools.add(int(state.pool[n]))
                del fleet.node_instance[n]
                kept.mapped[n] = False
                kept.row_kind[n] = -1
                del kept.rows[iid]
                n = None
            if now_inst is None:
                insts.pop(iid, None)
                kept.kinds.pop(iid, None)
                continue
            assert p is not None and kind is not None
            if n is None:
                absent = state.absent_rows(p)
                if not absent:
                    raise _Rebuild("a pool has no row left for a new instance")
                n = absent[0]
                self._add_row(state, p, n, kind, now)
                kept.rows[iid] = n
                kept.mapped[n] = True
                dirty_pools.add(p)
            insts[iid] = now_inst
            kept.kinds[iid] = kind
            kept.row_kind[n] = kind
            fleet.node_instance[n] = now_inst
            self._bind(kept, now_inst, n)
            dirty_jobs.update(kept.named.get(iid, ()))
            if now_inst.workload_id is not None:
                dirty_jobs.add(now_inst.workload_id)

        # running jobs (as the instances: only those not the very objects of last time)
        left, came = identity_delta(kept.inputs.running, inp.running) or (
            kept.inputs.running,
            inp.running,
        )
        self._jobs_changed(kept, left, came, dirty_jobs)
        kept.touched.update(job.job_id for part in (left, came) for job in part)
        running = kept.jobs

        # the clock: coming and leaving rows are ready ``provision_delay_s`` from now
        if moved and bool((kept.row_kind > _READY).any()):
            later = [(iid, k) for iid, k in kept.kinds.items() if k != _READY]
            for iid, k in later:
                n = kept.rows[iid]
                p = int(state.pool[n])
                state.remove_nodes([n])
                state.set_healthy([n], True)
                self._add_row(state, p, n, k, now)

        # allocations the inputs now make, for the jobs whose inputs changed
        for j in sorted(dirty_jobs):
            want = self._wanted(kept, running.get(j))
            have = kept.allocs.get(j)
            if have is not None and want is not None and self._same_alloc(have, want):
                continue
            if have is not None:
                state.release(j, now)
                self._unhold(kept, j)
                dirty_pools.add(have.pool)
            if want is not None:
                p, nodes, req, since, end = want
                self._hold(kept, j, state.allocate(req, p, nodes, since, end_s=end))
                dirty_pools.add(p)

        # what the fresh build derives from the clock, on the ready rows
        self._clock(kept, now, moved, dirty_pools)
        for p in sorted(dirty_pools):
            canonical_free(state, p, fleet.node_instance)
        fleet.waiting = self._waiting(kept, now)
        kept.inputs = inp
        finish_fleet(fleet, inp, kept.touched, kept.jobs)

    def _jobs_changed(
        self,
        kept: _Kept,
        removed: Sequence[RunningJob],
        added: Sequence[RunningJob],
        dirty: set[int],
    ) -> None:
        """``kept.jobs`` (the backed running jobs) after the jobs that left the inputs'
        list and those new in it (``identity_delta``, or every job of both lists); the
        jobs whose record changed (or that left) are ``dirty``. A job not backed by a
        pool stays out of ``kept.jobs`` while its record is the same, so only these can
        change it."""
        jobs = kept.jobs
        back = {job.job_id for job in added}
        for job in removed:
            j = job.job_id
            if j not in back and jobs.get(j) is job:
                del jobs[j]
                self._unname(kept, job)
                dirty.add(j)
        for job in added:
            j = job.job_id
            old_job = jobs.get(j)
            if old_job is job or (old_job is not None and old_job == job):
                jobs[j] = job
                continue
            if old_job is not None:
                self._unname(kept, old_job)
                del jobs[j]
            if self._backed_job(kept, job):
                jobs[j] = job
                self._name(kept, job)
            dirty.add(j)

    @staticmethod
    def _add_row(state: Any, p: int, n: int, kind: int, now: float) -> None:
        if kind == _READY:
            state.provision_rows(p, [n], now, ready_at=now)
        else:
            state.provision_rows(p, [n], now)
            if kind == _LEAVING:
                state.set_healthy([n], False)

    def _wanted(
        self, kept: _Kept, job: RunningJob | None
    ) -> tuple[int, tuple[int, ...], Any, float, float | None] | None:
        """The allocation the fresh build gives ``job`` (None: none)."""
        if job is None:
            return None
        fleet = kept.fleet
        state = fleet.state
        found = sorted(kept.bound_rows.get(job.job_id, {}).values())
        if not found:
            named = job.placement.get("instances") or ()
            for rank, iid in enumerate(named if isinstance(named, list | tuple) else ()):
                row = kept.rows.get(iid) if isinstance(iid, int) else None
                if row is not None and fleet.node_instance[row].idle and state.usable(row):
                    found.append((rank, row, int(state.pool[row])))
            if not found or any(f[2] != found[0][2] for f in found):
                return None
            found.sort()
        p = found[0][2]
        nodes = tuple(n for _, n, q in found if q == p)
        req = held_request(job, fleet.pools[p], len(nodes))
        end = job.since_s + job.duration_s if job.duration_s is not None else None
        return p, nodes, req, job.since_s, end

    @staticmethod
    def _same_alloc(a: Allocation, want: tuple[int, tuple[int, ...], Any, float, Any]) -> bool:
        p, nodes, req, since, end = want
        ends = float("inf") if end is None else end
        return (
            a.pool == p
            and a.nodes == nodes
            and a.start_s == since
            and a.end_s == ends
            and a.request == req
        )

    @staticmethod
    def _clock(kept: _Kept, now: float, moved: bool, dirty_pools: set[int]) -> None:
        """Ready rows: ``ready_at`` now; free ones ``idle_since`` as the fresh build
        sets it (an idle instance's own idle time, a bound one's now)."""
        state = kept.fleet.state
        idx = np.flatnonzero(kept.row_kind == _READY)  # (in any order: each row alone)
        if not len(idx):
            return
        if moved:
            state.ready_at[idx] = now
        free = idx[state.job[idx] == FREE]
        node_instance = kept.fleet.node_instance
        for n in free.tolist():
            inst = node_instance[n]
            if inst.workload_id is None:
                t = epoch_of(inst.idle_since) or epoch_of(inst.running_at) or now
                state.idle_since[n] = min(t, now)
            else:
                state.idle_since[n] = now

    @staticmethod
    def _waiting(kept: _Kept, now: float) -> dict[int, tuple[int, tuple[int, ...], float]]:
        """Pending job -> (pool, rows, ready at) of the coming instances launched for it
        (as ``build_snapshot``: rows in the order of the pool's rows of instances)."""
        state = kept.fleet.state
        by: dict[int, dict[int, list[tuple[int, int]]]] = {}
        if not bool((kept.row_kind == _COMING).any()):
            return {}
        for iid, k in kept.kinds.items():
            if k != _COMING:
                continue
            inst = kept.insts[iid]
            j = (inst.extra or {}).get("for_job")
            if isinstance(j, int) and inst.workload_id is None:
                n = kept.rows[iid]
                p = int(state.pool[n])
                by.setdefault(j, {}).setdefault(p, []).append((iid, n))
        out: dict[int, tuple[int, tuple[int, ...], float]] = {}
        for j, per_pool in sorted(by.items()):
            # the fresh build's last pool wins (pools in order)
            p = max(per_pool)
            rows = tuple(n for _, n in sorted(per_pool[p]))
            out[j] = (p, rows, now + state.pools[p].provision_delay_s)
        return out

    # -- after the cycle -------------------------------------------------------------------
    def _settle(self, kept: _Kept) -> None:
        fleet = kept.fleet
        state = fleet.state
        now = kept.inputs.now_s
        dirty: set[int] = set()
        for j in [j for j in state.allocations if j not in kept.allocs]:
            dirty.add(state.allocations[j].pool)
            state.release(j, now)  # placed by the cycle
        for j, a in kept.allocs.items():
            if state.allocations.get(j) is not a:
                if j in state.allocations:
                    state.release(j, now)
                state.restore(a)  # preempted by the cycle
                dirty.add(a.pool)
        state.evicted.clear()
        state.provisioning.clear()
        odd = np.nonzero(state.present != kept.mapped)[0]
        if len(odd):
            gone = [int(n) for n in odd if state.present[n]]
            back = [int(n) for n in odd if not state.present[n]]
            if gone:  # rows the cycle provisioned
                state.remove_nodes(gone)
                dirty.update(int(state.pool[n]) for n in gone)
            for n in back:
                # an idle node the cycle released (``release_idle``): its instance is there
                p = int(state.pool[n])
                state.set_healthy([n], True)
                self._add_row(state, p, n, kept.kinds[fleet.node_instance[n].id], now)
                dirty.add(p)
        # nodes the cycle released are idle since now; the fresh build says otherwise
        self._clock(kept, now, False, dirty)
        for p in sorted(dirty):
            canonical_free(state, p, fleet.node_instance)


class _Rebuild(Exception):
    """The deltas cannot be applied exactly: build afresh."""
