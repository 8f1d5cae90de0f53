"""The reconcile loop: desired state in the store -> decisions -> providers -> events.

``Reconciler.step()`` is one pass over every non-terminal job. It is level-triggered: it
looks at what the store says (state, desired, nodes) and what the providers report, and
does the next idempotent thing. Nothing it needs lives only in memory, so the process can
be SIGKILLed at any instant; a new ``Reconciler`` on the same store and provider state
calls ``recover()`` once and converges.

Passive transitions (what was observed)::

    poll: node exited / lost          -> record_node_ended
    all ranks exited 0                -> RUNNING -> SUCCEEDED (release, end attempt first)
    a rank exited non-zero or lost    -> RUNNING/PROVISIONING -> RECOVERING (exit code kept)

Active transitions (what the loop does)::

    PENDING     --decide: Place-->  PLACING (placement, attempt >= 1 stored)
    PENDING     --decide: Reject--> PLACING -> FAILED (the planner's reason)
    PENDING     --decide: Hold-->   stays, ``reason`` updated (no transition)
    RUNNING     --decide: Preempt--> RECOVERING (reason "preempted for job N ...") -> the
                  RECOVERING path below, which requeues it as a new attempt whatever its
                  restart policy, without counting a restart
    PLACING     --provision(request_id=f"{job}-a{attempt}")--> PROVISIONING
                  (CapacityError / unknown offering -> PENDING with the reason, retried
                  after a back-off)
    PROVISIONING--per rank: claim (record_node_starting), start_node, record_node_started
                  --> RUNNING once every rank has started
    RECOVERING  --kill every live node, release, end attempt--> PENDING (attempt + 1,
                  restarts + 1) if the restart policy allows, else FAILED
    desired=cancel: PENDING/PLACING -> CANCELLED (PLACING releases first);
                  others -> CANCELLING --kill, release, end attempt--> CANCELLED

Invariants:

- a node (job, attempt, rank) is claimed in the store before it is started; the claim is
  unique, so no loop ever starts it twice. A claimed node whose start is unknown (the loop
  died in between) is started again only if the provider proves it never started
  (``NodeLookup``: no recorded run and nobody holds its lock); otherwise it is adopted;
- a new attempt begins (RECOVERING -> PENDING) only after every node of the old one is
  recorded as ended, and a node is recorded ``killed`` only after ``kill`` returned (the
  provider guarantees it is gone), so two runs of one node never overlap;
- every transition is guarded by the state it expects (and, where a user request could
  race with it, by the version read), and recorded as an event with its reason;
- terminal transitions happen last: resources are released and the attempt ended before.

Restart policy: the store's ``max_restarts`` (the submitter copies it from the spec's
``restart.max_restarts``) bounds ``restarts``; a node that exited non-zero is restarted
only if its exit code is in the spec's ``restart.on_exit_codes`` (empty: any); a lost
node (no exit code) is always restartable while restarts are left.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from intercloud.control.crashpoints import Crashpoint, no_crash
from intercloud.control.decide import (
    Decider,
    FleetAwareDecider,
    Hold,
    PendingJob,
    Place,
    Preempt,
    Reject,
    RunningJob,
)
from intercloud.control.job_context import job_env, job_files
from intercloud.control.states import JobState
from intercloud.model import BatchJob, Offering, PricingKind, TrainingJob, Workload
from intercloud.providers.base import (
    Allocation,
    CapacityError,
    FreeCapacity,
    NodeAlreadyRunning,
    NodeAlreadyStarted,
    NodeCommand,
    NodeEventKind,
    NodeHandle,
    OfferingKey,
    Provider,
    ProviderError,
    ProvisionRequest,
)
from intercloud.store import (
    Desired,
    InvalidRequest,
    NodeRecord,
    NodeState,
    Store,
    WorkloadRecord,
)
from intercloud.store.errors import NodeAlreadyStarted as NodeAlreadyClaimed

log = logging.getLogger("intercloud.control")

S = JobState
NON_TERMINAL: tuple[JobState, ...] = tuple(s for s in JobState if not s.terminal)
NodeKey = tuple[int, int, int]  # (job, attempt, rank)
#: states in which a job holds (or is about to hold) provider capacity
HOLDING: tuple[JobState, ...] = (S.PLACING, S.PROVISIONING, S.RUNNING, S.RECOVERING, S.CANCELLING)
#: how the scheduler's PREEMPT reasons begin (``scheduler.reasons.preempted_for``)
PREEMPTED_PREFIX = "preempted for job"


@runtime_checkable
class NodeLookup(Protocol):
    """What a provider must answer for a loop to resume a node whose start is unknown.

    ``node_handle``: the recorded run of this node, None if it never started (or has not
    recorded itself yet). ``node_alive``: some process of a run of this node exists now.
    """

    def node_handle(self, job_id: str, attempt: int, rank: int) -> NodeHandle | None: ...

    def node_alive(self, job_id: str, attempt: int, rank: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How the nodes of one attempt stand."""

    failed_rank: int | None = None  # a rank that exited non-zero or was lost
    exit_code: int | None = None
    why: str = ""
    succeeded: bool = False  # every rank exited 0
    started: bool = False  # every rank has left ``starting``


def _outcome(nodes: Sequence[NodeRecord], ranks: int) -> _Outcome:
    """The gang's standing; with several failed ranks, the one that ended first is the
    cause (the others usually died of it: a peer vanishing breaks their collectives)."""
    by_rank = {n.rank: n for n in nodes}
    never = datetime.max.replace(tzinfo=UTC)
    for n in sorted(nodes, key=lambda n: (n.ended_at or never, n.rank)):
        if n.state is NodeState.EXITED and n.exit_code != 0:
            return _Outcome(n.rank, n.exit_code, f"rank {n.rank} exited {n.exit_code}")
        if n.state in (NodeState.LOST, NodeState.KILLED):
            return _Outcome(n.rank, None, f"rank {n.rank} {n.state.value}")
    complete = all(r in by_rank for r in range(ranks))
    started = complete and all(by_rank[r].state is not NodeState.STARTING for r in range(ranks))
    succeeded = complete and all(by_rank[r].state is NodeState.EXITED for r in range(ranks))
    return _Outcome(succeeded=succeeded, started=started)


def _handle_of(n: NodeRecord) -> NodeHandle:
    return NodeHandle(
        job_id=str(n.workload_id),
        attempt=n.attempt,
        rank=n.rank,
        provider=n.provider,
        pid=n.pid or 0,
        start_time=n.start_time or 0,
        extra=dict(n.extra or {}),
    )


def _where(p: Mapping[str, Any]) -> str:
    loc = "/".join(str(p[k]) for k in ("provider", "region", "zone") if p.get(k))
    return f"{loc} {p.get('instance_type', '')}".strip()


class Reconciler:
    """Drives every non-terminal job one step towards its desired state.

    ``providers`` maps provider name (as in placements and node records) to the adapter.
    ``clock`` (monotonic seconds) only times back-offs; store times come from the store's
    own clock. ``crashpoint(name)`` is called at every phase boundary (see
    ``crashpoints``). ``decider`` chooses placements (default: ``make_decider``: the
    fleet scheduler unless ``$INTERCLOUD_DECIDER`` says ``planner``); a fleet-aware
    decider also gets the jobs holding capacity, ``wall_clock()`` (unix seconds) and the
    store's tenants with their limits (``control.tenancy.load_tenant_limits``).

    Single-writer: run at most one Reconciler per store at a time (the daemon's lock
    ensures it). Not thread-safe.
    """

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
        crashpoint: Crashpoint = no_crash,
        decider: Decider | None = None,
        retry_backoff_s: tuple[float, float] = (0.5, 30.0),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.clock = clock
        self.crashpoint = crashpoint
        if decider is None:
            from intercloud.control.fleet_decider import make_decider

            decider = make_decider(store=store)
        self.decider: Decider = decider
        self.wall_clock = wall_clock
        self.retry_backoff_s = retry_backoff_s
        #: jobs that were non-terminal when the last step began
        self.active_jobs = 0
        self._workloads: dict[int, Workload | str] = {}
        self._tracked: set[NodeKey] = set()  # nodes some provider polls for us
        self._retry_at: dict[int, float] = {}
        self._retries: dict[int, int] = {}

    # -- recovery ------------------------------------------------------------------------
    def recover(self) -> int:
        """Rebuild the in-memory view from the store and the providers; return how many
        nodes were re-attached or found gone.

        Every node the store says is ``running`` is adopted (``adopt`` False: recorded
        ``lost``, which fails or restarts its job on the next step); a ``starting`` node
        whose run the provider has recorded gets its pid stored and is adopted. Starting
        nodes that provably never ran are left to ``step`` (it starts them, or gives them
        up when the job is being torn down). Jobs in PLACING/PROVISIONING simply repeat
        their idempotent step. Safe to call at any time.
        """
        self._tracked.clear()
        self._workloads.clear()
        self._retry_at.clear()
        self._retries.clear()
        done = 0
        for node in self.store.live_nodes():
            done += self._reattach(node)
        return done

    def _reattach(self, n: NodeRecord) -> int:
        provider = self.providers.get(n.provider)
        key = (n.workload_id, n.attempt, n.rank)
        if provider is None:
            log.warning("node %s: provider %s is not enabled", key, n.provider)
            return 0
        if n.state is NodeState.RUNNING:
            handle = _handle_of(n)
        else:
            if not isinstance(provider, NodeLookup):
                return 0
            found = provider.node_handle(str(n.workload_id), n.attempt, n.rank)
            if found is None:
                return 0
            handle = found
            self.store.record_node_started(
                n.workload_id,
                n.attempt,
                n.rank,
                n.host or "",
                handle.pid,
                handle.start_time,
                extra=dict(handle.extra),
            )
            self.crashpoint("adopting")
        if provider.adopt(handle):
            self._tracked.add(key)
        else:
            self.store.record_node_ended(
                n.workload_id, n.attempt, n.rank, NodeState.LOST, reason="gone after a restart"
            )
        self.crashpoint("adopting")
        return 1

    # -- the step ------------------------------------------------------------------------
    def step(self) -> bool:
        """One pass over every non-terminal job; True if anything changed. Provider
        failures of one job are logged and retried on a later step; store failures
        (``StoreError``) propagate (the caller retries the step)."""
        changed = self._observe()
        jobs = self.store.list_workloads(states=NON_TERMINAL)
        live: dict[int, list[NodeRecord]] = defaultdict(list)
        for n in self.store.live_nodes():
            live[n.workload_id].append(n)
            if n.state is NodeState.RUNNING and (n.workload_id, n.attempt, n.rank) not in (
                self._tracked
            ):
                changed |= bool(self._reattach(n))
        active = {w.id for w in jobs}
        for cache in (self._workloads, self._retry_at, self._retries):
            for job_id in [j for j in cache if j not in active]:
                del cache[job_id]
        pending: list[WorkloadRecord] = []
        for w in jobs:
            try:
                if w.desired is Desired.CANCEL or w.state is S.CANCELLING:
                    changed |= self._cancel(w)
                elif w.state is S.PENDING:
                    pending.append(w)
                elif w.state is S.PLACING:
                    changed |= self._provision(w)
                elif w.state is S.PROVISIONING:
                    changed |= self._start(w)
                elif w.state is S.RUNNING:
                    changed |= self._check(w, live.get(w.id, []))
                elif w.state is S.RECOVERING:
                    changed |= self._recover_job(w)
            except ProviderError as exc:
                log.warning("job %s (%s): %s", w.id, w.state.value, exc)
        if pending:
            changed |= self._place(pending)
        self.active_jobs = len(jobs)
        return changed

    # -- observe (passive) ---------------------------------------------------------------
    def _observe(self) -> bool:
        changed = False
        for provider in self.providers.values():
            for ev in provider.poll():
                try:
                    job_id = int(ev.job_id)
                except ValueError:
                    continue  # not one of ours
                key = (job_id, ev.attempt, ev.rank)
                self._tracked.discard(key)
                if ev.kind is NodeEventKind.EXITED:
                    state, reason = NodeState.EXITED, None
                else:
                    state, reason = NodeState.LOST, ev.reason or ev.kind.value
                # The node's own end time, when known, orders failures (first = cause).
                ended = None
                if ev.ended_at is not None:
                    ended = datetime.fromtimestamp(ev.ended_at, UTC)
                rec = self.store.record_node_ended(
                    job_id, ev.attempt, ev.rank, state, ev.exit_code, reason=reason, now=ended
                )
                changed |= rec is not None
                self.crashpoint("exited")
        return changed

    # -- place ---------------------------------------------------------------------------
    def _workload(self, w: WorkloadRecord) -> Workload | str:
        cached = self._workloads.get(w.id)
        if cached is None:
            from intercloud.specs import SpecError, load_spec_text

            try:
                cached = load_spec_text(w.spec_text, source=f"job {w.id}").workload
            except SpecError as exc:
                cached = f"invalid spec: {exc}"
            self._workloads[w.id] = cached
        return cached

    def offerings(self) -> list[Offering]:
        """Every offering of every enabled provider."""
        return [o for p in self.providers.values() for o in p.offerings()]

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity] | None:
        """Free capacity per offering, for the providers that can tell."""
        free: dict[OfferingKey, FreeCapacity] = {}
        for p in self.providers.values():
            free.update(p.free_capacity() or {})
        return free or None

    def _place(self, pending: Sequence[WorkloadRecord]) -> bool:
        now = self.clock()
        by_id = {w.id: w for w in pending if self._retry_at.get(w.id, 0.0) <= now}
        queue: list[PendingJob] = []
        changed = False
        for w in by_id.values():
            wl = self._workload(w)
            if isinstance(wl, str):
                changed |= self._reject(w, wl)
            else:
                queue.append(PendingJob(w.id, w.priority, wl, w.tenant, w.created_at.timestamp()))
        if not queue:
            return changed
        if getattr(self.decider, "fleet_aware", False):
            fleet_decider: FleetAwareDecider = self.decider  # type: ignore[assignment]
            from intercloud.control.tenancy import load_tenant_limits

            decisions = fleet_decider.decide(
                queue,
                self.offerings(),
                self.free_capacity(),
                running=self._holding(),
                now_s=self.wall_clock(),
                tenants=load_tenant_limits(self.store),
            )
        else:
            decisions = self.decider.decide(queue, self.offerings(), self.free_capacity())
        for d in decisions:
            if isinstance(d, Preempt):
                changed |= self._preempt(d)
                continue
            w = by_id[d.job_id]
            if isinstance(d, Reject):
                changed |= self._reject(w, d.reason)
            elif isinstance(d, Hold):
                if w.reason != d.reason:
                    changed |= self.store.set_fields(w.id, w.version, reason=d.reason) is not None
            elif isinstance(d, Place):
                p = d.placement
                placement = {
                    **p.to_dict(),
                    "ranks": d.demand.ranks,
                    "cpus_per_node": d.demand.cpus_per_node,
                    "memory_gib_per_node": d.demand.memory_gib_per_node,
                }
                reason = (
                    f"placed on {_where(placement)}: {d.demand.ranks} node(s), "
                    f"{p.pricing.value}, {p.hourly_usd:.2f} USD/h"
                )
                rec = self.store.transition(
                    w.id,
                    S.PENDING,
                    S.PLACING,
                    reason,
                    expected_version=w.version,
                    placement=placement,
                    attempt=max(w.attempt, 1),
                )
                if rec is None:
                    continue
                changed = True
                self.crashpoint("placing")
                try:
                    self._provision(rec)
                except ProviderError as exc:
                    log.warning("job %s (PLACING): %s", w.id, exc)
        return changed

    def _holding(self) -> list[RunningJob]:
        """The jobs holding capacity, as the store says now (read again: jobs may have
        finished earlier in this step). Only RUNNING jobs not being cancelled may be
        preempted."""
        out = []
        for w in self.store.list_workloads(states=HOLDING):
            if not w.placement or w.attempt < 1:
                continue
            wl = self._workload(w)
            hours = wl.duration_hours if not isinstance(wl, str) else None
            out.append(
                RunningJob(
                    job_id=w.id,
                    priority=w.priority,
                    tenant=w.tenant,
                    placement=w.placement,
                    since_s=w.updated_at.timestamp(),
                    duration_s=hours * 3600.0 if hours else None,
                    preemptible=w.state is S.RUNNING and w.desired is not Desired.CANCEL,
                )
            )
        return out

    def _preempt(self, d: Preempt) -> bool:
        """Stop a running job for ``d.for_job`` and requeue it (``_recover_job``)."""
        w = self.store.get(d.job_id)
        if w.state is not S.RUNNING or w.desired is Desired.CANCEL:
            return False
        rec = self.store.transition(
            w.id, S.RUNNING, S.RECOVERING, d.reason, expected_version=w.version
        )
        if rec is None:
            return False
        self.crashpoint("recovering")
        try:
            self._recover_job(rec)
        except ProviderError as exc:
            log.warning("job %s (RECOVERING): %s", w.id, exc)
        return True

    def _reject(self, w: WorkloadRecord, reason: str) -> bool:
        rec = self.store.transition(
            w.id, S.PENDING, S.PLACING, "placing", expected_version=w.version
        )
        if rec is None:
            return False
        self.crashpoint("placing")
        self.store.transition(w.id, S.PLACING, S.FAILED, reason, expected_version=rec.version)
        self.crashpoint("placing")
        return True

    # -- provision -----------------------------------------------------------------------
    def _request(self, w: WorkloadRecord) -> tuple[Provider, ProvisionRequest]:
        p = w.placement or {}
        provider = self.providers.get(str(p.get("provider")))
        if provider is None:
            raise ProviderError(f"provider {p.get('provider')!r} is not enabled")
        key = (p["provider"], p["region"], p["zone"], p["instance_type"])
        offering = next(
            (
                o
                for o in provider.offerings()
                if (o.provider, o.region, o.zone, o.instance_type) == key
            ),
            None,
        )
        if offering is None:
            raise ProviderError(f"{_where(p)} is no longer offered")
        return provider, ProvisionRequest(
            request_id=f"{w.id}-a{w.attempt}",
            job_id=str(w.id),
            offering=offering,
            nodes=int(p["ranks"]),
            pricing=PricingKind(p.get("pricing", PricingKind.ON_DEMAND.value)),
            accelerators_per_node=int(p.get("accelerator_count", 0)),
            cpus_per_node=float(p.get("cpus_per_node", 1.0)),
            memory_gib_per_node=float(p.get("memory_gib_per_node", 0.0)),
        )

    def _provision(self, w: WorkloadRecord) -> bool:
        """PLACING: reserve the nodes (idempotent by request id) -> PROVISIONING."""
        try:
            provider, request = self._request(w)
            allocation = provider.provision(request)
        except (CapacityError, ProviderError) as exc:
            return self._back_to_pending(w, f"waiting for capacity: {exc}")
        self.crashpoint("provisioning")
        self.store.begin_attempt(w.id, w.attempt, allocation=_allocation_dict(allocation))
        self.crashpoint("provisioning")
        rec = self.store.transition(
            w.id,
            S.PLACING,
            S.PROVISIONING,
            f"allocated {allocation.allocation_id} on {allocation.provider}",
            expected_version=w.version,
        )
        if rec is None:
            return True
        self.crashpoint("provisioning")
        self._start(rec, provider, allocation)
        return True

    def _back_to_pending(self, w: WorkloadRecord, reason: str) -> bool:
        n = self._retries.get(w.id, 0)
        self._retries[w.id] = n + 1
        first, cap = self.retry_backoff_s
        self._retry_at[w.id] = self.clock() + min(cap, first * 2**n)
        rec = self.store.transition(w.id, S.PLACING, S.PENDING, reason, expected_version=w.version)
        self.crashpoint("placing")
        return rec is not None

    # -- start ---------------------------------------------------------------------------
    def _start(
        self,
        w: WorkloadRecord,
        provider: Provider | None = None,
        allocation: Allocation | None = None,
    ) -> bool:
        """PROVISIONING: claim and start every rank not yet started -> RUNNING."""
        ranks = int((w.placement or {})["ranks"])
        nodes = self.store.nodes(w.id, w.attempt)
        out = _outcome(nodes, ranks)
        if out.failed_rank is not None:
            return self._fail(w, out)
        if provider is None or allocation is None:
            provider, request = self._request(w)
            allocation = provider.provision(request)  # the existing one: same request id
        wl = self._workload(w)
        if isinstance(wl, str):
            raise ProviderError(wl)  # cannot happen: it was parsed to be placed
        by_rank = {n.rank: n for n in nodes}
        changed = False
        for rank in range(ranks):
            node = by_rank.get(rank)
            if node is None:
                try:
                    self.store.record_node_starting(w.id, w.attempt, rank, provider.name)
                except NodeAlreadyClaimed:
                    continue  # claimed meanwhile: resolved on a later step
                self.crashpoint("starting")
                changed |= self._launch(w, wl, provider, allocation, rank, ranks)
            elif node.state is NodeState.STARTING:
                changed |= self._resume_starting(w, wl, provider, allocation, node, ranks)
        nodes = self.store.nodes(w.id, w.attempt)
        out = _outcome(nodes, ranks)
        if out.failed_rank is not None:
            return self._fail(w, out) or changed
        if out.started:
            rec = self.store.transition(
                w.id,
                S.PROVISIONING,
                S.RUNNING,
                f"all {ranks} node(s) started",
                expected_version=w.version,
            )
            if rec is not None:
                changed = True
                self.crashpoint("running")
        return changed

    def _command(
        self, w: WorkloadRecord, wl: Workload, allocation: Allocation, rank: int, ranks: int
    ) -> NodeCommand:
        assert isinstance(wl, TrainingJob | BatchJob) and wl.run
        return NodeCommand(
            job_id=str(w.id),
            attempt=w.attempt,
            rank=rank,
            num_nodes=ranks,
            setup=wl.setup,
            run=wl.run,
            env=job_env(w, wl, allocation, rank, ranks),
            log_dir="",
            checkpoint_dir="",
            **job_files(w, wl),
        )

    def _launch(
        self,
        w: WorkloadRecord,
        wl: Workload,
        provider: Provider,
        allocation: Allocation,
        rank: int,
        ranks: int,
    ) -> bool:
        """Start a claimed node (or adopt the run the provider already has of it)."""
        adopted = False
        try:
            handle = provider.start_node(allocation, self._command(w, wl, allocation, rank, ranks))
        except NodeAlreadyStarted as exc:
            if exc.handle is not None:
                handle, adopted = exc.handle, True
            elif isinstance(exc, NodeAlreadyRunning):
                return False  # its supervisor is being born: look again next step
            else:
                self.store.record_node_ended(
                    w.id, w.attempt, rank, NodeState.LOST, reason=f"unknown earlier run: {exc}"
                )
                return True
        except ProviderError as exc:
            self.store.record_node_ended(
                w.id, w.attempt, rank, NodeState.LOST, reason=f"did not start: {exc}"
            )
            self.crashpoint("starting")
            return True
        self.crashpoint("starting")
        self._record_started(w, allocation, rank, handle, adopt=adopted, provider=provider)
        return True

    def _record_started(
        self,
        w: WorkloadRecord,
        allocation: Allocation,
        rank: int,
        handle: NodeHandle,
        *,
        adopt: bool,
        provider: Provider,
    ) -> None:
        slot = next((s for s in allocation.nodes if s.rank == rank), None)
        self.store.record_node_started(
            w.id,
            w.attempt,
            rank,
            slot.host if slot else "",
            handle.pid,
            handle.start_time,
            extra=dict(handle.extra),
        )
        self.crashpoint("started")
        key = (w.id, w.attempt, rank)
        if not adopt or provider.adopt(handle):
            self._tracked.add(key)
        else:
            self.store.record_node_ended(
                w.id, w.attempt, rank, NodeState.LOST, reason="gone after a restart"
            )

    def _resume_starting(
        self,
        w: WorkloadRecord,
        wl: Workload,
        provider: Provider,
        allocation: Allocation,
        node: NodeRecord,
        ranks: int,
    ) -> bool:
        """A claimed node whose start is unknown (the previous loop died in between)."""
        if not isinstance(provider, NodeLookup):
            # Cannot tell whether it runs: starting it again could run it twice.
            self.store.record_node_ended(
                w.id, w.attempt, node.rank, NodeState.LOST, reason="start unknown after restart"
            )
            return True
        job = str(w.id)
        handle = provider.node_handle(job, w.attempt, node.rank)
        if handle is not None:
            self._record_started(w, allocation, node.rank, handle, adopt=True, provider=provider)
            return True
        if provider.node_alive(job, w.attempt, node.rank):
            return False  # its supervisor is being born: look again next step
        return self._launch(w, wl, provider, allocation, node.rank, ranks)  # never started

    # -- running -------------------------------------------------------------------------
    def _check(self, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
        """RUNNING: all ranks exited 0 -> SUCCEEDED; a rank failed -> RECOVERING."""
        ranks = int((w.placement or {})["ranks"])
        if sum(1 for n in live if n.attempt == w.attempt) >= ranks:
            return False
        out = _outcome(self.store.nodes(w.id, w.attempt), ranks)
        if out.failed_rank is not None:
            return self._fail(w, out)
        if not out.succeeded:
            return False
        self._release(w)
        self.crashpoint("finishing")
        self.store.end_attempt(w.id, w.attempt, "succeeded")
        self.crashpoint("finishing")
        rec = self.store.transition(
            w.id,
            S.RUNNING,
            S.SUCCEEDED,
            f"all {ranks} node(s) exited 0",
            expected_version=w.version,
            exit_code=0,
        )
        if rec is not None:
            self.crashpoint("finishing")
        return True

    def _may_restart(self, w: WorkloadRecord, exit_code: int | None) -> tuple[bool, str]:
        if w.restarts >= w.max_restarts:
            return False, f"no restarts left ({w.restarts} of {w.max_restarts} used)"
        wl = self._workload(w)
        codes = wl.restart.on_exit_codes if isinstance(wl, TrainingJob | BatchJob) else ()
        if exit_code is not None and codes and exit_code not in codes:
            listed = ", ".join(map(str, codes))
            return False, f"exit code {exit_code} is not in restart.on_exit_codes ({listed})"
        return True, f"restart {w.restarts + 1} of {w.max_restarts}"

    def _fail(self, w: WorkloadRecord, out: _Outcome) -> bool:
        _, verdict = self._may_restart(w, out.exit_code)
        rec = self.store.transition(
            w.id,
            w.state,
            S.RECOVERING,
            f"{out.why}; {verdict}",
            expected_version=w.version,
            exit_code=out.exit_code,
        )
        if rec is None:
            return False
        self.crashpoint("recovering")
        self._recover_job(rec)
        return True

    def _recover_job(self, w: WorkloadRecord) -> bool:
        """RECOVERING: stop what is left of the attempt, then restart or fail."""
        if not self._teardown(w, "recovering"):
            return False
        self._release(w)
        self.crashpoint("recovering")
        preempted = _preempted(w)
        ended = "preempted" if preempted else "failed"
        self.store.end_attempt(w.id, w.attempt, ended, reason=w.reason)
        self.crashpoint("recovering")
        restart, _ = (True, "") if preempted else self._may_restart(w, w.exit_code)
        if restart:
            rec = self.store.transition(
                w.id,
                S.RECOVERING,
                S.PENDING,
                (w.reason or PREEMPTED_PREFIX)
                if preempted
                else f"restarting as attempt {w.attempt + 1}",
                expected_version=w.version,
                attempt=w.attempt + 1,
                restarts=w.restarts if preempted else w.restarts + 1,
                placement=None,
            )
        else:
            rec = self.store.transition(
                w.id, S.RECOVERING, S.FAILED, w.reason, expected_version=w.version
            )
        if rec is not None:
            self.crashpoint("recovering")
        return True

    # -- cancel --------------------------------------------------------------------------
    def _cancel(self, w: WorkloadRecord) -> bool:
        if w.state is S.PENDING:
            rec = self.store.transition(w.id, S.PENDING, S.CANCELLED, "cancelled before placement")
        elif w.state is S.PLACING:
            self._release(w)  # provision may have run before the loop died
            self.crashpoint("cancelling")
            rec = self.store.transition(w.id, S.PLACING, S.CANCELLED, "cancelled while placing")
        elif w.state is S.CANCELLING:
            return self._finish_cancel(w)
        else:
            rec = self.store.transition(w.id, w.state, S.CANCELLING, "cancel requested")
            if rec is not None:
                self.crashpoint("cancelling")
                self._finish_cancel(rec)
                return True
        if rec is not None:
            self.crashpoint("cancelling")
        return rec is not None

    def _finish_cancel(self, w: WorkloadRecord) -> bool:
        if not self._teardown(w, "cancelling"):
            return False
        self._release(w)
        self.crashpoint("cancelling")
        if w.attempt > 0:
            with contextlib.suppress(InvalidRequest):  # cancelled before it was begun
                self.store.end_attempt(w.id, w.attempt, "cancelled", reason="cancel requested")
        rec = self.store.transition(w.id, S.CANCELLING, S.CANCELLED, "cancelled: all nodes stopped")
        if rec is not None:
            self.crashpoint("cancelling")
        return True

    # -- teardown ------------------------------------------------------------------------
    def _teardown(self, w: WorkloadRecord, phase: str) -> bool:
        """Stop every live node of the job (any attempt) and record it ``killed``; True
        when none is left. A node is recorded only after ``kill`` returned (it is gone)."""
        done = True
        for n in self.store.nodes(w.id):
            if not n.state.live:
                continue
            provider = self.providers.get(n.provider)
            if provider is None:
                log.warning("job %s: provider %s of rank %s not enabled", w.id, n.provider, n.rank)
                done = False
                continue
            if n.state is NodeState.RUNNING:
                handle: NodeHandle | None = _handle_of(n)
            elif isinstance(provider, NodeLookup):
                handle = provider.node_handle(str(w.id), n.attempt, n.rank)
                if handle is None and provider.node_alive(str(w.id), n.attempt, n.rank):
                    done = False  # its supervisor is being born: look again next step
                    continue
            else:
                handle = None  # cannot look: a start that was never confirmed
            reason = phase
            if handle is not None:
                provider.kill(handle)
            else:
                reason = f"{phase}: never started"
            self.store.record_node_ended(w.id, n.attempt, n.rank, NodeState.KILLED, reason=reason)
            self._tracked.discard((w.id, n.attempt, n.rank))
            self.crashpoint(phase)
        return done

    def _release(self, w: WorkloadRecord) -> None:
        p = w.placement
        if not p or w.attempt < 1:
            return
        provider = self.providers.get(str(p.get("provider")))
        if provider is not None:
            provider.release(f"{w.id}-a{w.attempt}")


def _preempted(w: WorkloadRecord) -> bool:
    """Whether the job is RECOVERING because the scheduler preempted it (the reason of
    that transition is stored with it, so this survives a crash)."""
    return (w.reason or "").startswith(PREEMPTED_PREFIX)


def _allocation_dict(a: Allocation) -> dict[str, Any]:
    return {
        "allocation_id": a.allocation_id,
        "provider": a.provider,
        "region": a.region,
        "zone": a.zone,
        "instance_type": a.instance_type,
        "nodes": [
            {"rank": n.rank, "host": n.host, "gpus": list(n.accelerator_ids)} for n in a.nodes
        ],
    }
