"""``InstancePoolProvider``: an asynchronous provider's instances as a job-level provider.

The job reconciler speaks only the synchronous ``providers.base.Provider`` contract. This
bridge answers it from the instance rows in the store, which the instance reconcile step
(``control.instances``) keeps in line with the cloud:

- ``provision`` binds idle RUNNING instances of the requested offering and pricing to the
  job's attempt (all or nothing, ranks 0..n-1, one zone when it can) and returns them as
  an ``Allocation`` (``extra={"instances": [ids]}``); ``CapacityError`` when too few are
  idle: the scheduler grows the pool by requesting instances, the job waits for them.
  Idempotent by allocation id ``"{job}-a{attempt}"``: the instances bound before.
- ``start_node`` writes the command into the instance's ``assignment`` (state
  ``assigned``); the instance's node agent picks it up, reports ``started`` and then
  ``exited`` with the exit code.
- ``poll`` turns exited assignments into EXITED events and the loss of an instance under a
  started node (reclaimed, lost, terminated) into PREEMPTED or LOST, each once per process.
- ``kill`` asks the agent to stop (the assignment's ``kill`` flag) and returns once it
  confirmed (``killed``) or the node ended anyway; until then it raises
  ``ProviderError("... still stopping")`` and the reconciler calls again on its next
  step. An agent that has not confirmed after ``kill_timeout_s`` gets its instance
  ended (TERMINATING, cause KILL_TIMEOUT).
- ``release`` gives the instances back to their pool (idle). An instance whose node may
  still run is drained instead of reused (the instance step terminates it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from itertools import compress
from operator import is_not

from intercloud.control.agent_assignment import assignment_for
from intercloud.control.instances.transitions import (
    PREEMPTING,
    EndCause,
    end_cause,
    with_cause,
)
from intercloud.model import Offering
from intercloud.providers.base import (
    Allocation,
    Capability,
    CapacityError,
    NodeAlreadyStarted,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    NodeHandle,
    NodeSlot,
    Provider,
    ProviderError,
    ProvisionRequest,
)
from intercloud.providers.contract import AsyncProvider, InstanceState
from intercloud.store import Store, utc_now
from intercloud.store.records import AssignmentState, InstanceRecord

S = InstanceState
A = AssignmentState
#: Assignment states in which the node's command may still run on the instance.
_MAY_RUN = (A.ASSIGNED, A.STARTED)


def parse_allocation_id(allocation_id: str) -> tuple[int, int]:
    """``"{job}-a{attempt}"`` -> (job id, attempt); ValueError for anything else."""
    job, sep, attempt = allocation_id.rpartition("-a")
    if not sep or not job.isdigit() or not attempt.isdigit():
        raise ValueError(f"allocation id {allocation_id!r} is not '<job>-a<attempt>'")
    return int(job), int(attempt)


class InstancePoolProvider(Provider):
    """The instances of ``provider`` (an ``AsyncProvider``) in ``store``, as a job-level
    ``Provider`` of the same name. Also answers the reconciler's ``NodeLookup``."""

    def __init__(
        self,
        store: Store,
        provider: AsyncProvider,
        *,
        clock: Callable[[], datetime] = utc_now,
        kill_timeout_s: float = 60.0,
        grace_s: float = 10.0,
        notify: Callable[[int], None] | None = None,
    ) -> None:
        self.name = provider.name
        self.capabilities = provider.capabilities | {Capability.ADOPT}
        self.provider = provider
        self.store = store
        self.clock = clock
        self.kill_timeout_s = kill_timeout_s
        self.grace_s = grace_s
        #: wakes the instance's agent at once (``AgentServer.notify``); None: it polls
        self.notify = notify
        self._reported: set[tuple[int, int, int, int]] = set()  # (instance, job, attempt, rank)
        # the records the last poll looked at, in the store's order (it hands back an
        # unchanged row as the same object): ``poll`` skips those it has judged, but
        # the ids in ``_rejudge`` (``adopt``)
        self._polled: list[InstanceRecord] | None = None
        self._rejudge: set[int] = set()
        self._kill_asked: dict[int, datetime] = {}

    # -- what it sells -----------------------------------------------------------------

    def offerings(self) -> list[Offering]:
        return self.provider.offerings()

    def free_capacity(self) -> None:
        """Unknown: a pool grows by launching instances, not by what is free now."""
        return None

    # -- allocations -------------------------------------------------------------------

    def provision(self, request: ProvisionRequest) -> Allocation:
        """Bind ``request.nodes`` idle running instances; see the module docstring."""
        job, attempt = self._ids(request.request_id)
        bound = self._bound(job, attempt)
        if bound:
            if len(bound) != request.nodes:
                raise ProviderError(
                    f"{request.request_id}: {len(bound)} instance(s) bound, {request.nodes} asked"
                )
            return self._allocation(request.request_id, bound)
        off = request.offering
        if request.instance_ids:
            # The scheduler chose these nodes: bind exactly them, or wait for the next cycle.
            if len(request.instance_ids) != request.nodes:
                raise ProviderError(
                    f"{request.request_id}: {len(request.instance_ids)} instance(s) chosen, "
                    f"{request.nodes} asked"
                )
            recs = self.store.bind_instances(
                job, attempt, list(request.instance_ids), now=self.clock()
            )
            if recs is None:
                raise CapacityError(
                    f"instances {', '.join(map(str, request.instance_ids))} are no longer "
                    "idle and running"
                )
            return self._allocation(request.request_id, recs)
        idle = [
            r
            for r in self.store.instances(states=[S.RUNNING], provider=self.name, bound=False)
            if r.region == off.region
            and r.instance_type == off.instance_type
            and r.pricing == request.pricing.value
            and (not off.zone or r.zone == off.zone)
        ]
        by_zone: dict[str, list[InstanceRecord]] = defaultdict(list)
        for r in sorted(idle, key=lambda r: (r.idle_since or r.created_at, r.id)):
            by_zone[r.zone].append(r)
        # A gang stays in one zone when one zone has enough (its nodes talk to each other).
        pick = next((rows for rows in by_zone.values() if len(rows) >= request.nodes), None)
        where = off.zone or off.region
        if pick is None:
            raise CapacityError(
                f"{len(idle)} of {request.nodes} {request.pricing.value} {off.instance_type} "
                f"instance(s) idle and running in {where} (in one zone)"
            )
        chosen = [r.id for r in pick[: request.nodes]]
        recs = self.store.bind_instances(job, attempt, chosen, now=self.clock())
        if recs is None:
            raise CapacityError(f"{off.instance_type} instances in {where} were taken meanwhile")
        return self._allocation(request.request_id, recs)

    def release(self, allocation_id: str) -> None:
        """Idempotent. Instances whose node may still run are drained, not reused."""
        job, attempt = self._ids(allocation_id)
        now = self.clock()
        for r in self._bound(job, attempt):
            if r.assignment_state in _MAY_RUN and r.state == S.RUNNING:
                self.store.transition_instance(
                    r.id,
                    S.RUNNING,
                    S.DRAINING,
                    f"released while node {r.rank} of job {job} may still run",
                    expected_version=r.version,
                    now=now,
                )
        self.store.unbind_instances(job, attempt, now=now)

    # -- nodes -------------------------------------------------------------------------

    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        """Write the node's assignment; NodeAlreadyStarted (with the handle) when the
        instance has one for this node already."""
        if command.workdir or command.file_mounts:
            raise ProviderError(f"{self.name} cannot copy workdir or file_mounts to instances")
        job, attempt, rank = self._node_key(command.job_id, command.attempt, command.rank)
        inst = self._serving(job, attempt, rank)
        if inst is None:
            raise ProviderError(f"no instance serves node {rank} of job {job} attempt {attempt}")
        handle = self._handle(inst, command.job_id)
        if inst.assignment_state is not None:
            raise NodeAlreadyStarted(f"instance {inst.id} has node {rank} already", handle)
        if inst.state not in (S.RUNNING, S.DRAINING):
            raise ProviderError(f"instance {inst.id} serving node {rank} is {inst.state}")
        try:
            work = assignment_for(
                allocation,
                command,
                checkpoint_dir=command.checkpoint_dir or None,
                grace_s=self.grace_s,
            )
        except ValueError as exc:
            raise ProviderError(str(exc)) from None
        rec = self.store.assign(inst.id, job, attempt, rank, work.to_json(), now=self.clock())
        if rec is None:
            again = self._serving(job, attempt, rank)
            if again is not None and again.assignment_state is not None:
                raise NodeAlreadyStarted(f"instance {inst.id} has node {rank} already", handle)
            raise ProviderError(f"instance {inst.id} changed while assigning node {rank}")
        if self.notify is not None:
            self.notify(inst.id)
        return handle

    def kill(self, handle: NodeHandle) -> None:
        """Stop the node; see the module docstring. Idempotent."""
        inst = self._instance_of(handle)
        if inst is None:
            return
        state = S(inst.state)
        if state.is_final or inst.assignment_state not in _MAY_RUN:
            self._kill_asked.pop(inst.id, None)
            return
        now = self.clock()
        if inst.assignment_state is A.ASSIGNED:
            # Not picked up yet: withdraw it. If the agent takes it meanwhile, ask it below.
            if self.store.set_assignment_state(
                inst.id, A.ASSIGNED, A.KILLED, reason="withdrawn before it started", now=now
            ):
                return
            inst = self.store.get_instance(inst.id) or inst
        if inst.assignment_state is A.STARTED and inst.assignment is not None:
            # The agent sees the kill flag on its next poll and confirms with ``killed``.
            self.store.agent_request_kill(inst.id, str(inst.assignment.get("key")), now=now)
            if self.notify is not None:
                self.notify(inst.id)
            inst = self.store.get_instance(inst.id) or inst
        if inst.assignment_state is A.KILLED or inst.assignment_state is A.EXITED:
            self._kill_asked.pop(inst.id, None)
            return
        asked = self._kill_asked.setdefault(inst.id, now)
        waited = (now - asked).total_seconds()
        if waited > self.kill_timeout_s and state in (S.RUNNING, S.DRAINING, S.ALLOCATED):
            self.store.transition_instance(
                inst.id,
                state,
                S.TERMINATING,
                f"no kill confirmation after {waited:.0f} s",
                expected_version=inst.version,
                now=now,
                extra=with_cause(inst.extra, EndCause.KILL_TIMEOUT),
            )
        raise ProviderError(
            f"node {handle.rank} of job {handle.job_id} on instance {inst.id} still stopping"
        )

    def adopt(self, handle: NodeHandle) -> bool:
        """True while the instance still serves the node (or recorded its exit)."""
        inst = self._instance_of(handle)
        if inst is None:
            return False
        alive = inst.assignment_state is A.EXITED or (
            not S(inst.state).is_final and inst.state != S.TERMINATING
        )
        if alive:  # poll reports what happens to it from now on, its exit included
            self._reported = {k for k in self._reported if k[0] != inst.id}
            self._rejudge.add(inst.id)
        return alive

    def poll(self) -> list[NodeEvent]:
        """Exits and losses of assigned nodes since the last poll, each once."""
        out: list[NodeEvent] = []
        rows = self.store.instances(provider=self.name, bound=True)
        last, self._polled = self._polled, rows
        if last is not None and len(last) == len(rows):
            # the records that are not the very objects at the same place last time (in
            # C: a bound fleet is thousands of rows, a step changes a few)
            look = [rows[k] for k in compress(range(len(rows)), map(is_not, rows, last))]
        else:
            prev = {r.id: r for r in last or ()}
            look = [r for r in rows if prev.get(r.id) is not r]
        if self._rejudge:
            ids, self._rejudge = self._rejudge, set()
            ids -= {r.id for r in look}
            if ids:
                look = sorted([*look, *(r for r in rows if r.id in ids)], key=lambda r: r.id)
        for inst in look:
            if inst.assignment_state is None or inst.assignment_state is A.KILLED:
                continue
            key = (inst.id, inst.workload_id or 0, inst.attempt or 0, inst.rank or 0)
            if key in self._reported:
                continue
            event = self._event_of(inst)
            if event is not None:
                self._reported.add(key)
                out.append(event)
        return out

    def _event_of(self, inst: InstanceRecord) -> NodeEvent | None:
        job, attempt, rank = str(inst.workload_id), inst.attempt or 0, inst.rank or 0
        if inst.assignment_state is A.EXITED:
            return NodeEvent(
                NodeEventKind.EXITED,
                job,
                attempt,
                rank,
                exit_code=inst.exit_code,
                ended_at=inst.updated_at.timestamp(),
            )
        if inst.state in (S.TERMINATED, S.FAILED):
            # Only once the instance has ended: while it is terminating (EC2's
            # "shutting-down") its processes may still run, and the gang's next attempt
            # must not start elsewhere while they do.
            cause = end_cause(inst.extra) or EndCause.LOST
            kind = NodeEventKind.PREEMPTED if cause in PREEMPTING else NodeEventKind.LOST
            ended = inst.ended_at or inst.updated_at
            reason = f"instance {inst.id} {inst.state}: {inst.reason or cause.value}"
            return NodeEvent(kind, job, attempt, rank, reason=reason, ended_at=ended.timestamp())
        return None

    # -- NodeLookup (for a loop that died between claiming and starting a node) --------

    def node_handle(self, job_id: str, attempt: int, rank: int) -> NodeHandle | None:
        job, attempt, rank = self._node_key(job_id, attempt, rank)
        inst = self._serving(job, attempt, rank)
        if inst is None or inst.assignment_state is None:
            return None
        return self._handle(inst, job_id)

    def node_alive(self, job_id: str, attempt: int, rank: int) -> bool:
        """Never: a node runs only through its assignment, which ``node_handle`` finds."""
        return False

    # -- helpers -----------------------------------------------------------------------

    def _ids(self, allocation_id: str) -> tuple[int, int]:
        try:
            return parse_allocation_id(allocation_id)
        except ValueError as exc:
            raise ProviderError(str(exc)) from None

    def _node_key(self, job_id: str, attempt: int, rank: int) -> tuple[int, int, int]:
        if not job_id.isdigit():
            raise ProviderError(f"job id {job_id!r} is not a stored job's id")
        return int(job_id), attempt, rank

    def _bound(self, job: int, attempt: int) -> list[InstanceRecord]:
        rows = self.store.instances(workload_id=job, provider=self.name)
        return sorted((r for r in rows if r.attempt == attempt), key=lambda r: r.rank or 0)

    def _serving(self, job: int, attempt: int, rank: int) -> InstanceRecord | None:
        return next((r for r in self._bound(job, attempt) if r.rank == rank), None)

    def _instance_of(self, handle: NodeHandle) -> InstanceRecord | None:
        """The handle's instance while it still serves the handle's node, else None."""
        iid = handle.extra.get("instance_id")
        if not isinstance(iid, int) or not handle.job_id.isdigit():
            return None
        inst = self.store.get_instance(iid)
        if inst is None or (inst.workload_id, inst.attempt, inst.rank) != (
            int(handle.job_id),
            handle.attempt,
            handle.rank,
        ):
            return None
        return inst

    def _handle(self, inst: InstanceRecord, job_id: str) -> NodeHandle:
        assert inst.attempt is not None and inst.rank is not None
        return NodeHandle(
            job_id=job_id,
            attempt=inst.attempt,
            rank=inst.rank,
            provider=self.name,
            extra={"instance_id": inst.id},
        )

    def _allocation(self, allocation_id: str, rows: list[InstanceRecord]) -> Allocation:
        first = rows[0]
        slots = tuple(
            NodeSlot(rank=r.rank or 0, host=r.address or r.provider_instance_id or f"i{r.id}")
            for r in sorted(rows, key=lambda r: r.rank or 0)
        )
        return Allocation(
            allocation_id=allocation_id,
            provider=self.name,
            region=first.region,
            zone=first.zone,
            instance_type=first.instance_type,
            nodes=slots,
            extra={"instances": [r.id for r in rows]},
        )
