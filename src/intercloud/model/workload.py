"""Workloads as the scheduler sees them: plain, typed, immutable.

Every kind may carry ``workdir`` (a local folder synced to each node's working directory
before ``setup``) and ``file_mounts`` (``(DEST, SOURCE)`` pairs copied onto each node),
as written in the spec; ``intercloud.submission`` checks and resolves them.

The YAML layer (``intercloud.specs``) validates user input and builds these; nothing in
here parses or validates text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Topology(StrEnum):
    """How close the nodes of a gang must be.

    ``nvlink_domain``: every GPU of the gang inside one NVLink domain.
    ``zone``/``region``: all nodes in one zone/region. ``any``: no constraint.
    """

    NVLINK_DOMAIN = "nvlink_domain"
    ZONE = "zone"
    REGION = "region"
    ANY = "any"


class SpotPolicy(StrEnum):
    NEVER = "never"
    ALLOWED = "allowed"
    ONLY = "only"


class AcceleratorChoice(StrEnum):
    """How a list of accelerator alternatives is read.

    ``any_of``: the cheapest for the work wins. ``ordered``: the first alternative that
    can be placed at all wins (cheapest within it).
    """

    ANY_OF = "any_of"
    ORDERED = "ordered"


@dataclass(frozen=True, slots=True)
class AcceleratorRequest:
    """``name:count``: ``count`` accelerators of type ``name`` per node."""

    name: str
    count: int

    def __str__(self) -> str:
        return f"{self.name}:{self.count}"


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """What one gang (or one service replica) needs, and where it may go.

    ``accelerators`` empty means CPU only. ``cpus``/``memory_gib`` are per-node minimums
    (``cpus_exact`` makes ``cpus`` an exact vCPU count). ``max_hourly_usd`` caps the
    hourly price of the whole gang. Provider/region sets are lower-case names; None
    means no restriction.

    ``alternatives`` (SkyPilot's resource-level ``any_of``/``ordered``): when non-empty,
    each is a whole request (this base with one item's overrides merged in; same
    ``num_nodes`` and ``topology``), read by ``alternatives_choice``: ``any_of`` = the
    cheapest feasible placement of any alternative, ``ordered`` = the first alternative
    with any feasible placement (cheapest within it). The planner then plans the
    alternatives, not the base fields, which only keep what the items share. An
    alternative never has alternatives of its own.
    """

    accelerators: tuple[AcceleratorRequest, ...] = ()
    accelerator_choice: AcceleratorChoice = AcceleratorChoice.ANY_OF
    num_nodes: int = 1
    cpus: float | None = None
    cpus_exact: bool = False
    memory_gib: float | None = None
    instance_type: str | None = None
    topology: Topology = Topology.ANY
    spot: SpotPolicy = SpotPolicy.NEVER
    providers: frozenset[str] | None = None
    deny_providers: frozenset[str] = frozenset()
    regions: frozenset[str] | None = None
    deny_regions: frozenset[str] = frozenset()
    zones: frozenset[str] | None = None
    provider_preference: tuple[str, ...] = ()
    max_hourly_usd: float | None = None
    alternatives: tuple[ResourceRequest, ...] = ()
    alternatives_choice: AcceleratorChoice = AcceleratorChoice.ANY_OF

    def option(self, index: int | None) -> ResourceRequest:
        """Alternative ``index`` (a ``Placement.option``), or this request for None."""
        return self if index is None or not self.alternatives else self.alternatives[index]


@dataclass(frozen=True, slots=True)
class DataLocation:
    """Where a workload's input data lives; reading it from elsewhere costs egress."""

    provider: str
    region: str
    size_gb: float


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    max_restarts: int = 0
    on_exit_codes: tuple[int, ...] = ()  # empty: restart on any non-zero exit


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """A gang-scheduled training job.

    ``duration_hours`` is the expected run time on ``reference_accelerator`` (default:
    the first requested accelerator); other accelerators scale it by relative throughput.
    """

    name: str
    resources: ResourceRequest
    tenant: str = "default"
    data: DataLocation | None = None
    duration_hours: float | None = None
    reference_accelerator: str | None = None
    deadline: str | None = None
    checkpoint_interval_minutes: float | None = None
    priority: int = 0
    setup: str | None = None
    run: str | None = None
    envs: tuple[tuple[str, str], ...] = ()
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    workdir: str | None = None
    file_mounts: tuple[tuple[str, str], ...] = ()

    kind = "training"


@dataclass(frozen=True, slots=True)
class Service:
    """An inference service: ``resources`` is one replica (``num_nodes`` nodes each)."""

    name: str
    resources: ResourceRequest
    min_replicas: int = 1
    max_replicas: int = 1
    target_rps_per_replica: float | None = None
    spot_share: float = 0.0
    tenant: str = "default"
    duration_hours: float | None = None
    priority: int = 0
    setup: str | None = None
    run: str | None = None
    envs: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    file_mounts: tuple[tuple[str, str], ...] = ()

    kind = "service"


@dataclass(frozen=True, slots=True)
class BatchJob:
    """``count`` independent CPU tasks of ``resources.cpus``/``memory_gib`` each.

    Tasks are packed onto instances (as many per instance as vCPU and memory allow).
    """

    name: str
    resources: ResourceRequest
    count: int = 1
    tenant: str = "default"
    duration_hours: float | None = None
    data: DataLocation | None = None
    priority: int = 0
    setup: str | None = None
    run: str | None = None
    envs: tuple[tuple[str, str], ...] = ()
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    workdir: str | None = None
    file_mounts: tuple[tuple[str, str], ...] = ()

    kind = "batch"


Workload = TrainingJob | Service | BatchJob
