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
    RUNNING     --decide: Preempt--> RECOVERING (its reason code stored) -> the
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

The work of each state is in ``control.jobs`` (one module per state, each with the recipe
load, provider work outside the store, guarded apply); this class owns the caches and
runs the loop's steps in order (``Reconciler.steps``).

Restart policy: the store's ``max_restarts`` (the submitter copies it from the spec's
``restart.max_restarts``) bounds ``restarts``; a node that exited non-zero is restarted
only if its exit code is in the spec's ``restart.on_exit_codes`` (empty: any); a lost
node (no exit code) is always restartable while restarts are left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from intercloud.control.crashpoints import Crashpoint, no_crash
from intercloud.control.decide import Decider
from intercloud.control.jobs import cancelling, placing, provisioning, recovering, running
from intercloud.control.jobs.context import JobContext, JobHandler, TrackedNodes
from intercloud.control.jobs.nodes import NodeLookup, observe, reattach
from intercloud.control.jobs.pending import HOLDING, place
from intercloud.control.jobs.walk import JobWalk
from intercloud.control.states import JobState
from intercloud.model import Offering, Workload
from intercloud.providers.base import FreeCapacity, OfferingKey, Provider, ProviderError
from intercloud.store import Desired, NodeState, Store, WorkloadRecord

__all__ = ["HOLDING", "NON_TERMINAL", "NodeLookup", "Reconciler"]

log = logging.getLogger("intercloud.control")

S = JobState
NON_TERMINAL: tuple[JobState, ...] = tuple(s for s in JobState if not s.terminal)
_NODE_RUNNING = NodeState.RUNNING

#: The handler of each non-terminal state but PENDING (placed in one batch, after them);
#: a job whose cancel was requested goes to ``cancelling`` whatever its state.
HANDLERS: Mapping[JobState, JobHandler] = {
    S.PLACING: placing.handle,
    S.PROVISIONING: provisioning.handle,
    S.RUNNING: running.handle,
    S.RECOVERING: recovering.handle,
    S.CANCELLING: cancelling.handle,
}

#: One step of the loop: True if it changed anything.
LoopStep = Callable[[], bool]


class Reconciler:
    """Drives every non-terminal job one step towards its desired state.

    ``providers`` maps provider name (as in placements and node records) to the adapter.
    ``clock`` (monotonic seconds) only times back-offs; store times come from the store's
    own clock. ``crashpoint(name)`` is called at every phase boundary (see
    ``crashpoints``). ``decider`` chooses placements (default: ``make_decider``: the
    fleet scheduler unless ``$INTERCLOUD_DECIDER`` says ``planner``); a fleet-aware
    decider also gets the jobs holding capacity, ``wall_clock()`` (unix seconds) and the
    store's tenants with their limits (``control.tenancy.load_tenant_limits``).

    ``steps`` is the ordered list of what one ``step()`` runs, by name: ``nodes``
    (record the node ends the providers report), then ``jobs`` (every non-terminal job
    through its state's handler, then placement of the pending ones). Further steps
    (e.g. the instances' reconcile step) are inserted here, before ``jobs`` when jobs
    should see their result in the same pass.

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
        if decider is None:
            from intercloud.control.fleet_decider import make_decider

            decider = make_decider(store=store)
        self.ctx = JobContext(
            store,
            providers,
            clock=clock,
            crashpoint=crashpoint,
            decider=decider,
            retry_backoff_s=retry_backoff_s,
            wall_clock=wall_clock,
        )
        #: jobs that were non-terminal when the last step began
        self.active_jobs = 0
        #: which jobs and nodes each step looks at (``jobs.walk``)
        self.walk = JobWalk()
        self.steps: list[tuple[str, LoopStep]] = [
            ("nodes", self._observe_nodes),
            ("jobs", self._step_jobs),
        ]
        #: what else keeps the loop busy besides its jobs (e.g. live instances to watch
        #: and release): each returns a count; ``busy`` sums them with ``active_jobs``
        self.activity: list[Callable[[], int]] = []
        #: called once by ``close`` (servers and providers the steps own)
        self.closers: list[Callable[[], None]] = []

    @property
    def busy(self) -> int:
        """Active jobs plus whatever ``activity`` reports (0: the loop may idle out)."""
        return self.active_jobs + sum(f() for f in self.activity)

    def close(self) -> None:
        """Stop what the loop's steps own (agent server, provider clients). Idempotent."""
        closers, self.closers = self.closers, []
        for close in closers:
            close()

    # -- what the handlers share (read through the context) --------------------------------
    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def providers(self) -> dict[str, Provider]:
        return self.ctx.providers

    @property
    def decider(self) -> Decider:
        return self.ctx.decider

    @property
    def clock(self) -> Callable[[], float]:
        return self.ctx.clock

    @property
    def wall_clock(self) -> Callable[[], float]:
        return self.ctx.wall_clock

    @property
    def crashpoint(self) -> Crashpoint:
        return self.ctx.crashpoint

    @property
    def retry_backoff_s(self) -> tuple[float, float]:
        return self.ctx.retry_backoff_s

    @property
    def _tracked(self) -> TrackedNodes:
        """The nodes some provider polls for us."""
        return self.ctx.tracked

    @property
    def _workloads(self) -> dict[int, Workload | str]:
        return self.ctx.workloads

    def offerings(self) -> list[Offering]:
        """Every offering of every enabled provider."""
        return self.ctx.offerings()

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity] | None:
        """Free capacity per offering, for the providers that can tell."""
        return self.ctx.free_capacity()

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
        self.ctx.reset()
        self.walk.reset()
        done = 0
        for node in self.store.live_nodes():
            done += reattach(self.ctx, node)
        return done

    # -- the step ------------------------------------------------------------------------
    def step(self) -> bool:
        """One pass of every step in ``steps``, in order; True if anything changed.
        Provider failures of one job are logged and retried on a later step; store
        failures (``StoreError``) propagate (the caller retries the step). The step's
        reads of live rows are coalesced (``Store.coalesced_reads``): a row image is read
        from the database again only after this store wrote."""
        changed = False
        with self.store.coalesced_reads():
            for _name, run in self.steps:
                changed |= run()
        return changed

    def _observe_nodes(self) -> bool:
        return observe(self.ctx)

    def _step_jobs(self) -> bool:
        """Every non-terminal job through its state's handler, then placement of the
        pending ones (in one batch: the decider sees the whole queue). A RUNNING job
        whose record and nodes did not change since it was last found with every rank
        live is skipped: its handler would do nothing (``jobs.walk``)."""
        ctx = self.ctx
        walk = self.walk
        changed = False
        step = walk.begin(self.store, ctx.tracked)
        jobs = step.jobs
        tracked = ctx.tracked
        unadopted: set[int] = set()
        for n in walk.to_adopt(step):
            key = (n.workload_id, n.attempt, n.rank)
            if n.state is _NODE_RUNNING and key not in tracked:
                changed |= bool(reattach(ctx, n))
                if key not in tracked:
                    unadopted.add(n.workload_id)
        walk.unadopted(unadopted)
        walk.forget(ctx, step)
        pending: list[WorkloadRecord] = []
        live = step.live
        looks_at = walk.looks_at
        for w in jobs:
            if not looks_at(w.id):
                continue  # RUNNING, every rank live, nothing changed: nothing to do
            try:
                if w.desired is Desired.CANCEL or w.state is S.CANCELLING:
                    changed |= cancelling.handle(ctx, w, live(w.id))
                elif w.state is S.PENDING:
                    pending.append(w)
                elif w.state is S.RUNNING:
                    mine = live(w.id)
                    # (most of a fleet's jobs: every rank live, nothing to do)
                    still = running.quiet(ctx, w, mine)
                    walk.judge(w.id, still)
                    if not still:
                        changed |= running.handle(ctx, w, mine)
                else:
                    changed |= HANDLERS[w.state](ctx, w, live(w.id))
            except ProviderError as exc:
                log.warning("job %s (%s): %s", w.id, w.state.value, exc)
        walk.finish()
        if pending or ctx.capacity is not None:
            # with instance-backed pools, idle capacity is released even with no queue
            changed |= place(ctx, pending)
        if ctx.queued_reasons:  # (no placement this step: written on their own)
            changed |= bool(self.store.set_reasons(ctx.queued_reasons))
            ctx.queued_reasons = []
        self.active_jobs = len(jobs)
        return changed
