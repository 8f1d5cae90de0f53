"""The native spec format: pydantic models (the published schema) and their conversion.

Three kinds share one shape. ``kind: training`` is a gang of ``num_nodes`` nodes (GPU
nodes, or CPU nodes when it gives ``resources.cpus`` and no accelerators);
``kind: service`` is a set of replicas of ``num_nodes`` nodes each; ``kind: batch`` is
``count`` independent CPU tasks. pydantic checks each field's shape and type; the
conversion (``to_workload``) checks rules that span fields and resolves names, naming
the field at fault in every error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intercloud.model import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    DataLocation,
    ResourceRequest,
    RestartPolicy,
    Service,
    SpotPolicy,
    Topology,
    TrainingJob,
    Workload,
)
from intercloud.specs.errors import FieldValueError, SpecProblem, problem_from_validation
from intercloud.specs.fields import (
    ENV_NAME,
    Accelerators,
    Deadline,
    DurationHours,
    EnvValue,
    Name,
    ParsedAccelerators,
    Quantity,
    QuantityField,
)
from intercloud.specs.limits import (
    INT32_MAX,
    INT32_MIN,
    MAX_AMOUNT,
    MAX_ARG_BYTES,
    MAX_BATCH_TASKS,
    MAX_NODES,
    MAX_REPLICAS,
)
from intercloud.specs.validate_catalog import ResourcePaths, Vocabulary

_TOO_LONG = "longer than 128 KiB, the most one argument or variable of a process can hold"
NonEmpty = Annotated[str, Field(min_length=1)]
Positive = Annotated[float, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1)]
NodeCount = Annotated[int, Field(ge=1, le=MAX_NODES)]
Restarts = Annotated[int, Field(ge=0, le=INT32_MAX)]
Priority = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
ReplicaCount = Annotated[int, Field(ge=1, le=MAX_REPLICAS)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- resources ------------------------------------------------------------------------


class _PlacementSpec(_Spec):
    """Per-node shape and where it may run (shared by every kind)."""

    cpus: QuantityField | None = Field(
        None,
        description=(
            "vCPUs per node: N (exactly N) or 'N+' (at least N), SkyPilot semantics. "
            "Note that a bare number means exactly."
        ),
    )
    memory: QuantityField | None = Field(
        None, description="Memory per node in GiB: N or 'N+'; both mean at least N GiB."
    )
    instance_type: NonEmpty | None = Field(
        None,
        description="A provider instance type (e.g. p5.48xlarge); must carry the accelerators.",
    )
    spot: Literal["never", "allowed", "only"] | None = Field(
        None,
        description=(
            "Spot capacity: never (default), allowed (spot or on-demand, cheapest wins), "
            "only. For services the default follows spot_share."
        ),
    )
    providers: Annotated[list[NonEmpty], Field(min_length=1)] | None = Field(
        None,
        description=(
            "Allowed providers (aws, azure, gcp, oci, ...; aliases like google ok). Omit for all."
        ),
    )
    deny_providers: list[NonEmpty] = Field(
        default_factory=list, description="Providers never to use."
    )
    provider_preference: list[NonEmpty] = Field(
        default_factory=list,
        description="Providers in order of preference; used to break ties between equal offers.",
    )
    regions: Annotated[list[NonEmpty], Field(min_length=1)] | None = Field(
        None, description="Allowed regions (provider spelling, e.g. us-east-1). Omit for all."
    )
    deny_regions: list[NonEmpty] = Field(default_factory=list, description="Regions never to use.")
    zones: Annotated[list[NonEmpty], Field(min_length=1)] | None = Field(
        None,
        description=(
            "Allowed zones: names (us-east-1a) or AWS zone ids (use1-az6). Catalog rows "
            "that do not name a zone stand for every zone of their region. Omit for all."
        ),
    )
    max_hourly_usd: Positive | None = Field(
        None,
        description=(
            "Price cap in USD per hour for the whole gang (training), one replica "
            "(service) or one instance (batch)."
        ),
    )


class ResourceOption(_PlacementSpec):
    """One item of ``resources.any_of``/``resources.ordered``: fields that override the
    base ``resources`` for this alternative (SkyPilot semantics)."""

    accelerators: Accelerators | None = Field(
        None, description="Accelerators per node for this alternative."
    )


_OPTIONS_DOC = (
    "Alternatives, each a set of overrides of these resources (accelerators, providers, "
    "regions, zones, spot, instance_type, cpus, memory, max_hourly_usd, ...), kept "
    "together: {accelerators: H100:8, providers: [oci]} is H100 on OCI only."
)


class _Options(_Spec):
    any_of: Annotated[list[ResourceOption], Field(min_length=1)] | None = Field(
        None, description=_OPTIONS_DOC + " any_of: the cheapest placement of any item wins."
    )
    ordered: Annotated[list[ResourceOption], Field(min_length=1)] | None = Field(
        None,
        description=_OPTIONS_DOC
        + " ordered: the first item with any feasible placement wins (cheapest within it).",
    )


class GangResources(_PlacementSpec, _Options):
    """Resources of a training gang or of one service replica (per node)."""

    num_nodes: NodeCount | None = Field(
        None,
        description=(
            "Nodes in the gang (training) or per replica (service), default 1. May "
            "instead sit at the top level, as in SkyPilot; not both."
        ),
    )

    accelerators: Accelerators | None = Field(
        None, description="Accelerators per node; required for training."
    )
    topology: Literal["nvlink_domain", "zone", "region", "any"] = Field(
        "any",
        description=(
            "How close the nodes must be: nvlink_domain (all GPUs in one NVLink domain, "
            "e.g. a GB200 NVL72 rack), zone, region, or any (default)."
        ),
    )


class BatchResources(_PlacementSpec, _Options):
    """Resources of one batch task (CPU only)."""


class DataSpec(_Spec):
    """Where the input data lives; reading it from another provider or region costs egress.

    Give ``provider`` and ``region``, or a ``uri`` (s3://, gs://, az://, oci://) and
    ``region``; plus ``size_gb``.
    """

    uri: NonEmpty | None = Field(
        None,
        description="Storage URI; its scheme names the provider (s3 aws, gs gcp, az azure, oci).",
    )
    provider: NonEmpty | None = Field(None, description="Provider holding the data.")
    region: NonEmpty | None = Field(None, description="Region holding the data.")
    size_gb: Positive | None = Field(None, description="GB read per run (for egress cost).")


class RestartSpec(_Spec):
    """Restarts after a failure (preemptions are handled by the scheduler, not counted)."""

    max_restarts: Restarts = Field(0, description="Restarts after failures.")
    on_exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(
        default_factory=list, description="Restart only on these exit codes; empty: any non-zero."
    )


class ReplicasSpec(_Spec):
    """Replica count range for autoscaling."""

    min: ReplicaCount = Field(1, description="Fewest replicas (at least 1).")
    max: ReplicaCount | None = Field(None, description="Most replicas; default min.")


class _Common(_Spec):
    name: Name = Field(description="Workload name: letters, digits, '.', '_', '-'.")
    tenant: Name = Field("default", description="Tenant that owns and pays for the workload.")
    priority: Priority = Field(
        0, description="Higher runs first and may preempt lower (default 0)."
    )
    setup: str | None = Field(None, description="Shell commands run once per node before run.")
    run: str | None = Field(None, description="Shell commands of the workload.")
    envs: dict[str, EnvValue] = Field(
        default_factory=dict, description="Environment variables (values as strings)."
    )
    duration: DurationHours | None = Field(
        None,
        description=(
            "Expected run time: '90m', '36h', '2d', '1d12h' or a number of hours. For "
            "training, on reference_accelerator."
        ),
    )

    workdir: NonEmpty | None = Field(
        None,
        description=(
            "Local folder copied to each node's working directory before setup. Relative: "
            "to the spec file's folder; ~ is the submitter's home."
        ),
    )
    file_mounts: dict[str, NonEmpty] = Field(
        default_factory=dict,
        description=(
            "DEST: SOURCE pairs copied onto each node before setup. DEST is absolute, ~/... "
            "(the node's home) or relative to the working directory; SOURCE a local file "
            "or folder (relative: to the spec file's folder). Storage URIs are not "
            "supported yet."
        ),
    )

    @field_validator("envs")
    @classmethod
    def _env_names(cls, envs: dict[str, str]) -> dict[str, str]:
        for key, value in envs.items():
            if not ENV_NAME.match(key):
                raise FieldValueError(f"invalid variable name {key!r}", f".{key}")
            if len(f"{key}={value}".encode()) > MAX_ARG_BYTES:
                raise FieldValueError(_TOO_LONG + "; pass a file path instead", f".{key}")
        return envs

    @field_validator("workdir")
    @classmethod
    def _workdir_path(cls, workdir: str | None) -> str | None:
        if workdir is not None and "\0" in workdir:
            raise FieldValueError("the path holds a NUL byte")
        return workdir

    @field_validator("file_mounts", mode="before")
    @classmethod
    def _mount_keys(cls, mounts: Any) -> Any:
        if isinstance(mounts, dict):
            for dest in mounts:
                if not isinstance(dest, str):
                    raise FieldValueError(f"destination {dest!r} is not a path (a string)")
        return mounts

    @field_validator("file_mounts")
    @classmethod
    def _mount_paths(cls, mounts: dict[str, str]) -> dict[str, str]:
        for dest, src in mounts.items():
            if not dest.strip() or "\0" in dest:
                raise FieldValueError(f"invalid destination {dest!r}")
            if "\0" in src:
                raise FieldValueError("the path holds a NUL byte", f".{dest}")
        return mounts

    @field_validator("setup", "run")
    @classmethod
    def _command_size(cls, text: str | None) -> str | None:
        # The commands reach `bash -c` as one argument: past the kernel's bound the job
        # would be accepted and then fail to start.
        if text is not None and len(text.encode()) > MAX_ARG_BYTES:
            raise FieldValueError(_TOO_LONG + "; put the commands in a script and run that")
        return text


class TrainingSpec(_Common):
    """A gang-scheduled training job: ``num_nodes`` nodes that start and stop together."""

    kind: Literal["training"] = Field(description="training")
    num_nodes: NodeCount | None = Field(
        None, description="Nodes in the gang, default 1 (or resources.num_nodes; not both)."
    )
    resources: GangResources = Field(description="Per-node resources and placement rules.")
    data: DataSpec | None = Field(None, description="Input data location.")
    reference_accelerator: NonEmpty | None = Field(
        None, description="Accelerator that duration was measured on; default the first listed."
    )
    deadline: Deadline | None = Field(None, description="Finish by this time (ISO 8601).")
    checkpoint_interval: DurationHours | None = Field(
        None, description="How often the job checkpoints ('30m'); bounds work lost to preemption."
    )
    restart: RestartSpec = Field(default_factory=RestartSpec, description="Restart policy.")


class ServiceSpec(_Common):
    """An inference service: replicas of ``num_nodes`` nodes each, autoscaled in a range."""

    kind: Literal["service"] = Field(description="service")
    num_nodes: NodeCount | None = Field(
        None, description="Nodes per replica, default 1 (or resources.num_nodes; not both)."
    )
    resources: GangResources = Field(description="Per-node resources of one replica.")
    replicas: ReplicasSpec = Field(default_factory=ReplicasSpec, description="{min, max}.")
    target_rps_per_replica: Positive | None = Field(
        None, description="Requests per second one replica serves (drives autoscaling)."
    )
    spot_share: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None,
        description=(
            "Fraction of replicas that may run on spot, 0..1. Default: 0 with spot never, "
            "0.5 with spot allowed, 1 with spot only."
        ),
    )


class BatchSpec(_Common):
    """``count`` independent CPU tasks, packed onto instances."""

    kind: Literal["batch"] = Field(description="batch")
    count: Annotated[int, Field(ge=1, le=MAX_BATCH_TASKS)] = Field(
        1, description="Number of independent tasks."
    )
    resources: BatchResources = Field(
        description="Per-task resources (cpus required unless instance_type is given)."
    )
    data: DataSpec | None = Field(None, description="Input data location.")
    restart: RestartSpec = Field(
        default_factory=RestartSpec, description="Restart policy per task."
    )


SPEC_MODELS: dict[str, type[TrainingSpec] | type[ServiceSpec] | type[BatchSpec]] = {
    "training": TrainingSpec,
    "service": ServiceSpec,
    "batch": BatchSpec,
}

_HINTS: dict[str, dict[str, str]] = {
    "batch": {
        "resources.accelerators": "batch jobs are CPU-only; use kind: training for accelerators",
        "resources.topology": "batch tasks are independent; topology applies to training/service",
        "num_nodes": (
            "batch tasks are single-node; use count for more tasks, or kind: training "
            "with resources.cpus for a gang of CPU nodes"
        ),
        "resources.num_nodes": (
            "batch tasks are single-node; use count for more tasks, or kind: training "
            "with resources.cpus for a gang of CPU nodes"
        ),
    },
}
_COMMON_HINTS = {
    "resources.gpus": "unknown field; GPUs are requested as accelerators: NAME:COUNT",
    "spot_share": "spot_share applies to services; use resources.spot",
}


# --- conversion -----------------------------------------------------------------------


def validate(data: dict[str, Any], kind: str) -> TrainingSpec | ServiceSpec | BatchSpec:
    """pydantic validation of a native spec mapping whose ``kind`` is known to be valid."""
    model = SPEC_MODELS[kind]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        hints = {**_COMMON_HINTS, **_HINTS.get(kind, {})}
        raise problem_from_validation(exc, model, hints) from None


def to_workload(spec: TrainingSpec | ServiceSpec | BatchSpec, vocab: Vocabulary) -> Workload:
    """Cross-field checks and name resolution; returns the plain model object."""
    envs = tuple(spec.envs.items())
    if isinstance(spec, TrainingSpec):
        res = _resources(spec.resources, _num_nodes(spec), vocab)
        for one, prefix in _each_request(res, spec.resources):
            if one.accelerators or one.instance_type is not None:
                continue
            # A CPU-only gang (e.g. Gloo data parallel) is fine, but it must say its size.
            if one.cpus is None:
                raise SpecProblem(
                    f"{prefix}.accelerators",
                    "required for training jobs, or give resources.instance_type or "
                    "resources.cpus for a CPU-only gang",
                )
            if one.topology == Topology.NVLINK_DOMAIN:
                raise SpecProblem(
                    "resources.topology", "nvlink_domain needs resources.accelerators"
                )
        reference = None
        if spec.reference_accelerator is not None:
            reference = vocab.accelerator(spec.reference_accelerator, "reference_accelerator")
        checkpoint = spec.checkpoint_interval
        return TrainingJob(
            name=spec.name,
            resources=res,
            tenant=spec.tenant,
            data=_data(spec.data, vocab),
            duration_hours=spec.duration,
            reference_accelerator=reference,
            deadline=spec.deadline,
            checkpoint_interval_minutes=None if checkpoint is None else checkpoint * 60,
            priority=spec.priority,
            setup=spec.setup,
            run=spec.run,
            envs=envs,
            restart=_restart(spec.restart),
            **_files(spec),
        )
    if isinstance(spec, ServiceSpec):
        res = _resources(spec.resources, _num_nodes(spec), vocab)
        res, share = _service_spot(res, spec.resources.spot, spec.spot_share)
        options = _option_list(spec.resources)
        if options is not None:
            alts = []
            for alt, item in zip(res.alternatives, options[1], strict=True):
                spot = item.spot if "spot" in item.model_fields_set else spec.resources.spot
                # spot_share applies where spot is allowed; an item's own spot rules it
                alts.append(_service_spot(alt, None, share)[0] if spot is None else alt)
            res = replace(res, alternatives=tuple(alts))
        high = spec.replicas.max if spec.replicas.max is not None else spec.replicas.min
        if spec.replicas.min > high:
            raise SpecProblem(
                "replicas.max", f"must be at least replicas.min ({spec.replicas.min}), got {high}"
            )
        return Service(
            name=spec.name,
            resources=res,
            min_replicas=spec.replicas.min,
            max_replicas=high,
            target_rps_per_replica=spec.target_rps_per_replica,
            spot_share=share,
            tenant=spec.tenant,
            duration_hours=spec.duration,
            priority=spec.priority,
            setup=spec.setup,
            run=spec.run,
            envs=envs,
            **_files(spec),
        )
    res = _resources(spec.resources, 1, vocab)
    for one, prefix in _each_request(res, spec.resources):
        if one.cpus is None and one.instance_type is None:
            raise SpecProblem(
                f"{prefix}.cpus", "required for batch jobs (or give resources.instance_type)"
            )
    return BatchJob(
        name=spec.name,
        resources=res,
        count=spec.count,
        tenant=spec.tenant,
        duration_hours=spec.duration,
        data=_data(spec.data, vocab),
        priority=spec.priority,
        setup=spec.setup,
        run=spec.run,
        envs=envs,
        restart=_restart(spec.restart),
        **_files(spec),
    )


def _each_request(res: ResourceRequest, spec: _PlacementSpec) -> list[tuple[ResourceRequest, str]]:
    """Each request the planner will plan (the alternatives, else ``res``) and its path."""
    options = _option_list(spec)
    if options is None:
        return [(res, "resources")]
    key = options[0]
    return [(alt, f"resources.{key}[{i}]") for i, alt in enumerate(res.alternatives)]


def _files(spec: TrainingSpec | ServiceSpec | BatchSpec) -> dict[str, Any]:
    """``workdir`` and ``file_mounts`` as written (resolved at submission)."""
    return {"workdir": spec.workdir, "file_mounts": tuple(spec.file_mounts.items())}


def _num_nodes(spec: TrainingSpec | ServiceSpec) -> int:
    inner = spec.resources.num_nodes
    if spec.num_nodes is not None and inner is not None:
        raise SpecProblem("resources.num_nodes", "also given at the top level; keep one")
    return spec.num_nodes or inner or 1


def resource_paths(spec: TrainingSpec | ServiceSpec | BatchSpec) -> ResourcePaths:
    """Paths of the regions as written, for catalog errors."""
    r = spec.resources
    paths = _paths(r, _base_path)
    options = _option_list(r)
    if options is None:
        return paths
    key, items = options
    per = tuple(
        _paths(_merged(r, item), _option_where(key, i, item)) for i, item in enumerate(items)
    )
    return replace(paths, options=per)


def _paths(r: _PlacementSpec, where: Callable[[str], str]) -> ResourcePaths:
    return ResourcePaths(
        accelerators=where("accelerators"),
        instance_type=where("instance_type"),
        cpus=where("cpus"),
        memory=where("memory"),
        regions={name: f"{where('regions')}[{i}]" for i, name in enumerate(r.regions or [])},
    )


def _accelerators(
    parsed: ParsedAccelerators | None, vocab: Vocabulary, where: str = "resources.accelerators"
) -> tuple[AcceleratorRequest, ...]:
    if parsed is None:
        return ()
    out: list[AcceleratorRequest] = []
    for item in parsed.items:
        path = where + item.path
        req = AcceleratorRequest(vocab.accelerator(item.name, path), item.count)
        if req in out:
            raise SpecProblem(path, f"duplicate accelerator '{req}'")
        out.append(req)
    return tuple(out)


def _providers(names: list[str] | None, path: str, vocab: Vocabulary) -> list[str] | None:
    if names is None:
        return None
    out: list[str] = []
    for i, name in enumerate(names):
        canon = vocab.provider(name, f"{path}[{i}]")
        if canon not in out:
            out.append(canon)
    return out


def _base_path(name: str) -> str:
    return f"resources.{name}"


def _option_list(spec: _PlacementSpec) -> tuple[str, list[ResourceOption]] | None:
    """``("any_of" | "ordered", items)`` of a resources mapping, or None."""
    if not isinstance(spec, _Options):
        return None
    if spec.any_of is not None and spec.ordered is not None:
        raise SpecProblem("resources.ordered", "give any_of or ordered, not both")
    if spec.any_of is not None:
        return "any_of", spec.any_of
    if spec.ordered is not None:
        return "ordered", spec.ordered
    return None


def _option_where(key: str, i: int, item: ResourceOption) -> Callable[[str], str]:
    """Path of each field of alternative ``i``: the item's own, else the base's."""
    own = item.model_fields_set

    def where(name: str) -> str:
        return f"resources.{key}[{i}].{name}" if name in own else f"resources.{name}"

    return where


def _merged(spec: _PlacementSpec, item: ResourceOption) -> _PlacementSpec:
    updates = {name: getattr(item, name) for name in item.model_fields_set}
    if not isinstance(spec, GangResources) and "accelerators" in updates:
        updates.pop("accelerators")
    return spec.model_copy(update={**updates, "any_of": None, "ordered": None})


def _resources(spec: _PlacementSpec, num_nodes: int, vocab: Vocabulary) -> ResourceRequest:
    """The request of ``resources``, with ``alternatives`` for any_of/ordered items."""
    base = _one_resources(spec, num_nodes, vocab, _base_path)
    options = _option_list(spec)
    if options is None:
        return base
    key, items = options
    alts: list[ResourceRequest] = []
    for i, item in enumerate(items):
        where = _option_where(key, i, item)
        if not isinstance(spec, GangResources) and item.accelerators is not None:
            raise SpecProblem(where("accelerators"), _HINTS["batch"]["resources.accelerators"])
        alts.append(_one_resources(_merged(spec, item), num_nodes, vocab, where))
    return replace(base, alternatives=tuple(alts), alternatives_choice=AcceleratorChoice(key))


def _one_resources(
    spec: _PlacementSpec, num_nodes: int, vocab: Vocabulary, where: Callable[[str], str]
) -> ResourceRequest:
    accs: tuple[AcceleratorRequest, ...] = ()
    choice = None
    topology = Topology.ANY
    if isinstance(spec, GangResources):
        accs = _accelerators(spec.accelerators, vocab, where("accelerators"))
        if spec.accelerators is not None:
            choice = spec.accelerators.choice
        topology = Topology(spec.topology)
    allowed = _providers(spec.providers, where("providers"), vocab)
    denied = _providers(spec.deny_providers, where("deny_providers"), vocab) or []
    preference = _providers(spec.provider_preference, where("provider_preference"), vocab) or []
    for i, name in enumerate(denied):
        if allowed is not None and name in allowed:
            raise SpecProblem(
                f"{where('deny_providers')}[{i}]", f"'{name}' is also listed in resources.providers"
            )
    for i, name in enumerate(preference):
        if name in denied or (allowed is not None and name not in allowed):
            raise SpecProblem(
                f"{where('provider_preference')}[{i}]", f"'{name}' is not an allowed provider"
            )
    regions = spec.regions
    for i, name in enumerate(spec.deny_regions):
        if regions is not None and name in regions:
            raise SpecProblem(
                f"{where('deny_regions')}[{i}]", f"'{name}' is also listed in resources.regions"
            )
    zones = None
    if spec.zones is not None:
        zones, zone_regions = vocab.zones(
            spec.zones, where("zones"), None if allowed is None else frozenset(allowed)
        )
        if regions is None and zone_regions:
            regions = sorted(zone_regions)  # rows without zones match in these regions only
        elif regions is not None:
            _zones_in_regions(spec.zones, regions, vocab, where("zones"), allowed)
    cpus: Quantity | None = spec.cpus
    kwargs: dict[str, Any] = {} if choice is None else {"accelerator_choice": choice}
    return ResourceRequest(
        accelerators=accs,
        num_nodes=num_nodes,
        cpus=None if cpus is None else cpus.value,
        cpus_exact=cpus is not None and not cpus.at_least,
        memory_gib=None if spec.memory is None else spec.memory.value,
        instance_type=spec.instance_type,
        topology=topology,
        spot=SpotPolicy(spec.spot or "never"),
        providers=None if allowed is None else frozenset(allowed),
        deny_providers=frozenset(denied),
        regions=None if regions is None else frozenset(regions),
        deny_regions=frozenset(spec.deny_regions),
        zones=zones,
        provider_preference=tuple(preference),
        max_hourly_usd=spec.max_hourly_usd,
        **kwargs,
    )


def _zones_in_regions(
    zones: list[str],
    regions: list[str],
    vocab: Vocabulary,
    path: str,
    allowed: list[str] | None,
) -> None:
    """Each zone must lie in one of ``regions`` (as SkyPilot requires): a zone of another
    region would otherwise be dropped silently and the job placed in the region alone."""
    wanted = {r.lower() for r in regions}
    providers = None if allowed is None else frozenset(allowed)
    for i, zone in enumerate(zones):
        _, lies_in = vocab.zones([zone], f"{path}[{i}]", providers)
        if lies_in and not {r.lower() for r in lies_in} & wanted:
            raise SpecProblem(
                f"{path}[{i}]",
                f"zone '{zone}' is in {', '.join(sorted(lies_in))}, "
                f"not in the region asked for ({', '.join(regions)})",
            )


_SHARE_DEFAULT = {SpotPolicy.NEVER: 0.0, SpotPolicy.ALLOWED: 0.5, SpotPolicy.ONLY: 1.0}


def _service_spot(
    res: ResourceRequest, spot: str | None, share: float | None
) -> tuple[ResourceRequest, float]:
    """Reconcile ``resources.spot`` with ``spot_share``; either one implies the other."""
    if spot is None:
        if share is None:
            return res, 0.0
        policy = (
            SpotPolicy.NEVER
            if share == 0
            else SpotPolicy.ONLY
            if share == 1
            else SpotPolicy.ALLOWED
        )
        return _replace_spot(res, policy), share
    policy = SpotPolicy(spot)
    if share is None:
        return res, _SHARE_DEFAULT[policy]
    if policy is SpotPolicy.NEVER and share != 0:
        raise SpecProblem("spot_share", f"must be 0 when resources.spot is never, got {share:g}")
    if policy is SpotPolicy.ONLY and share != 1:
        raise SpecProblem("spot_share", f"must be 1 when resources.spot is only, got {share:g}")
    if policy is SpotPolicy.ALLOWED and share == 0:
        raise SpecProblem("spot_share", "is 0 but resources.spot is allowed; use spot: never")
    return res, share


def _replace_spot(res: ResourceRequest, policy: SpotPolicy) -> ResourceRequest:
    from dataclasses import replace

    return replace(res, spot=policy)


_SCHEMES = {
    "s3": "aws",
    "s3a": "aws",
    "gs": "gcp",
    "gcs": "gcp",
    "az": "azure",
    "azure": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "wasb": "azure",
    "wasbs": "azure",
    "oci": "oci",
    "file": "local",
}


def _data(spec: DataSpec | None, vocab: Vocabulary) -> DataLocation | None:
    if spec is None:
        return None
    provider = None
    if spec.uri is not None:
        scheme, sep, _ = spec.uri.partition("://")
        if not sep or scheme.lower() not in _SCHEMES:
            known = ", ".join(sorted(_SCHEMES))
            raise SpecProblem("data.uri", f"expected SCHEME://..., scheme one of {known}")
        provider = _SCHEMES[scheme.lower()]
    if spec.provider is not None:
        named = vocab.provider(spec.provider, "data.provider")
        if provider is not None and named != provider:
            raise SpecProblem("data.provider", f"'{named}' contradicts data.uri (a {provider} URI)")
        provider = named
    if provider is None:
        if spec.region is None and spec.size_gb is not None:
            raise SpecProblem(
                "data", "size_gb given without a location: set provider (or uri) and region"
            )
        raise SpecProblem("data.provider", "required (or give data.uri)")
    if spec.region is None:
        raise SpecProblem("data.region", "required (the region holding the data)")
    if spec.size_gb is None:
        raise SpecProblem("data.size_gb", "required (GB read per run, for egress cost)")
    return DataLocation(provider=provider, region=spec.region, size_gb=spec.size_gb)


def _restart(spec: RestartSpec) -> RestartPolicy:
    return RestartPolicy(max_restarts=spec.max_restarts, on_exit_codes=tuple(spec.on_exit_codes))
