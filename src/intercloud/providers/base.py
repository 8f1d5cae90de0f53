"""The small interface every provider implements (local, ray, aws, sim).

Contract, as in Ray autoscaler v2's cloud interface:
- calls are idempotent by id: ``provision`` with a ``request_id`` it has seen returns the
  same allocation; ``release``/``kill`` of something already gone is a no-op;
- the world is eventually consistent: ``poll`` reports what happened since the last poll
  for every node the provider knows (started here or re-attached with ``adopt``);
- a provider never decides anything: the scheduler core decides, the control loop calls.

What a provider can do is declared in ``capabilities``; callers check a capability, never a
provider's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from intercloud.model import Offering, PricingKind


class Capability(StrEnum):
    SPOT = "spot"  # sells preemptible capacity
    MULTI_NODE = "multi_node"  # can run a gang of several nodes
    RESERVATIONS = "reservations"  # holds reserved blocks under contracts
    GPUS = "gpus"  # has (real or emulated) accelerators
    ADOPT = "adopt"  # can re-attach to running nodes after a control-loop restart
    FILE_SYNC = "file_sync"  # copies local-path workdir/file_mounts onto each node
    #: keeps its own queue (Slurm): a gang may be handed to it before its nodes are free
    #: and waits in the engine's queue (``queue_capacity``, ``queued``, ``withdraw``)
    QUEUE = "queue"


class ProviderError(RuntimeError):
    """A provider call failed for a reason that is not the caller's input."""


class CapacityError(ProviderError):
    """Not enough capacity for the request right now (retry later or elsewhere)."""


class NodeAlreadyStarted(ProviderError):
    """This node of this attempt was started before; ``handle`` is that run (if known).
    A restarted control loop adopts that run instead of starting a second one."""

    def __init__(self, message: str, handle: NodeHandle | None) -> None:
        super().__init__(message)
        self.handle = handle


class NodeAlreadyRunning(NodeAlreadyStarted):
    """A run of this node is alive right now."""


@dataclass(frozen=True, slots=True)
class FreeCapacity:
    """Unreserved capacity of one offering (all its nodes together). ``machines``: how
    many of an offering's ``machines`` are wholly free (None: not told; one machine is
    free when the sums cover it)."""

    cpus: float
    gpus: int
    memory_gib: float
    machines: int | None = None


OfferingKey = tuple[str, str, str, str]  # provider, region, zone, instance_type


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    """Bring up ``nodes`` instances of one offering for one attempt of one job."""

    request_id: str  # idempotency key, e.g. f"{job_id}-a{attempt}"
    job_id: str
    offering: Offering
    nodes: int
    pricing: PricingKind = PricingKind.ON_DEMAND
    accelerators_per_node: int = 0
    cpus_per_node: float = 1.0
    memory_gib_per_node: float = 0.0
    #: the instances the scheduler chose, rank 0 first (instance-backed providers; empty:
    #: the provider picks)
    instance_ids: tuple[int, ...] = ()
    #: the expected run time (the placement's duration; None: unknown), for providers
    #: that bound a job's time (Slurm's ``--time``)
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class NodeSlot:
    """One provisioned node: where it is and which accelerators it owns."""

    rank: int
    host: str
    accelerator_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Allocation:
    allocation_id: str  # == request_id
    provider: str
    region: str
    zone: str
    instance_type: str
    nodes: tuple[NodeSlot, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)  # JSON-able provider state


@dataclass(frozen=True, slots=True)
class NodeCommand:
    """What to run on one node of one attempt.

    ``env`` is the job's own part of the environment (spec ``envs``, the submitter's
    variables, ``SKYPILOT_*``); the provider adds its minimal base below it and its own
    variables above it, never the caller's environment. ``workdir`` (an absolute local
    folder) is copied to the node's working directory and ``file_mounts`` (``(DEST,
    absolute SOURCE)``) onto the node before ``setup``; only a provider with
    ``Capability.FILE_SYNC`` accepts them.
    """

    job_id: str
    attempt: int
    rank: int
    num_nodes: int
    setup: str | None
    run: str
    env: Mapping[str, str]
    log_dir: str
    checkpoint_dir: str
    workdir: str | None = None
    file_mounts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NodeHandle:
    """A started node, durable enough to re-attach to after a restart: provider-neutral
    identity (job, attempt, rank, provider) plus the provider's own JSON-able ``extra``
    (the local provider: its supervisor's ``pid`` and process ``start_time``, so a
    reused pid is never mistaken for the job; an instance-backed one: ``instance_id``).
    """

    job_id: str
    attempt: int
    rank: int
    provider: str
    extra: Mapping[str, Any] = field(default_factory=dict)


class NodeEventKind(StrEnum):
    EXITED = "exited"  # the node's command finished; exit_code says how
    LOST = "lost"  # the node vanished without an exit code (crash, host gone)
    PREEMPTED = "preempted"  # the provider took it back (spot reclaim)


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """Something that happened to one node. ``ended_at`` (unix seconds) is when the node
    ended if the provider knows, so the first failure of a gang can be told from the
    ones it caused. ``capacity_lost``: a LOST node whose machine went away (a cluster's
    node died, its head is gone), not the job's failure: the job is requeued from its
    checkpoint without counting a restart, as for a lost instance."""

    kind: NodeEventKind
    job_id: str
    attempt: int
    rank: int
    exit_code: int | None = None
    reason: str = ""
    ended_at: float | None = None
    capacity_lost: bool = False


class Provider(ABC):
    """One place work can run. Subclasses set ``name`` and ``capabilities``."""

    name: str = ""
    capabilities: frozenset[Capability] = frozenset()

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity] | None:
        """Unreserved capacity per offering, for providers that know it; None when
        unknown (a cloud: treat as available, ``provision`` may raise CapacityError)."""
        return None

    def queue_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """``Capability.QUEUE``: per offering, how much more than its free capacity may
        be handed to the engine to wait in its own queue (the configured depth)."""
        return {}

    def queued(self, request_id: str) -> str | None:
        """``Capability.QUEUE``: why request ``request_id`` (provisioning, not running
        yet) waits in the engine's queue, e.g. "queued in slurm partition debug behind
        2"; None when it is not waiting there (starting, running, unknown)."""
        return None

    def withdraw(self, request_id: str) -> bool:
        """``Capability.QUEUE``: take the request back out of the engine's queue if it
        still waits there. True: withdrawn, nothing of it runs (its folder is kept,
        a later ``try_provision`` submits it again); False: it started (or the engine
        cannot say), leave it be."""
        return False

    def unreachable(self) -> str | None:
        """Why the provider does not answer now (its last call failed for want of it),
        or None. The control loop records it as a failed provider call every step, so
        a provider unreachable for ``failover.down_after_s`` is down."""
        return None

    @abstractmethod
    def offerings(self) -> list[Offering]:
        """What this provider can sell right now (shapes and prices)."""

    @abstractmethod
    def provision(self, request: ProvisionRequest) -> Allocation:
        """Reserve/launch the nodes; raise CapacityError if they are not available."""

    def try_provision(self, request: ProvisionRequest) -> Allocation | None:
        """``provision`` without waiting: the allocation once it is ready, None while the
        provider is still bringing it up (ask again with the same request later; the
        control loop keeps the job placing meanwhile, so one slow gang does not hold
        up the others). Raises as ``provision``. By default ``provision`` itself, for
        providers whose ``provision`` answers promptly."""
        return self.provision(request)

    @abstractmethod
    def release(self, allocation_id: str) -> None:
        """Give the nodes back. Idempotent."""

    @abstractmethod
    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        """Start one node's command; returns once the node is running (or raises)."""

    @abstractmethod
    def kill(self, handle: NodeHandle) -> None:
        """Stop a node and everything it started. Idempotent."""

    @abstractmethod
    def adopt(self, handle: NodeHandle) -> bool:
        """Re-attach to a node started before a restart (possibly by another process).

        True if the node still runs or finished with a recorded exit code (the next
        ``poll`` reports that exit); False if it is gone without trace (report it LOST).
        """

    @abstractmethod
    def poll(self) -> list[NodeEvent]:
        """Events since the last poll for every node started or adopted here."""
