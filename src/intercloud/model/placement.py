"""Where a workload lands and what it costs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast

from intercloud.model.pricing import PricingKind

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Placement:
    """A chosen (or candidate) placement of a whole workload.

    ``nodes`` counts instances; ``accelerator_count`` is GPUs per instance.
    ``hourly_usd`` is for all nodes together; ``total_usd`` = hourly x ``duration_hours``
    (the expected duration on this accelerator) + ``egress_usd``. ``option`` is the index
    of the ``ResourceRequest.alternatives`` item it places (None: no alternatives).
    """

    provider: str
    region: str
    zone: str
    instance_type: str
    nodes: int
    accelerator: str | None
    accelerator_count: int
    pricing: PricingKind
    hourly_usd: float
    total_usd: float
    duration_hours: float
    egress_usd: float = 0.0
    nvlink_domain_gpus: int = 0
    vcpus: float = 0.0
    memory_gib: float = 0.0
    option: int | None = None

    @property
    def gpus(self) -> int:
        return self.nodes * self.accelerator_count

    @property
    def where(self) -> str:
        """``provider/region/zone instance_type`` (empty parts left out), for reasons."""
        loc = "/".join(x for x in (self.provider, self.region, self.zone) if x)
        return f"{loc} {self.instance_type}".strip()

    def to_dict(self) -> dict[str, Any]:
        # field by field: ``asdict``'s recursive deep copy costs more than the rest of
        # a submission's bookkeeping, and every field here is a scalar
        d = {name: getattr(self, name) for name in _PLACEMENT_FIELDS}
        d["pricing"] = self.pricing.value
        d["gpus"] = self.gpus
        if self.option is None:
            del d["option"]
        return d

    def to_stored(self) -> dict[str, Any]:
        """The JSON the store keeps (``to_dict``; ``from_stored`` reads it back)."""
        return self.to_dict()

    @classmethod
    def from_stored(cls, d: Mapping[str, Any]) -> Placement:
        """The placement ``to_stored`` wrote. Keys it does not know (``gpus``, what a
        ``JobPlacement`` adds) are ignored; optional ones missing take their defaults.
        ValueError naming the field when one is missing or of the wrong kind."""
        option = _stored(d, "option", _optional_int, None)
        return cls(
            provider=_stored(d, "provider", str),
            region=_stored(d, "region", str),
            zone=_stored(d, "zone", _optional_str, ""),
            instance_type=_stored(d, "instance_type", str),
            nodes=_stored(d, "nodes", int, 1),
            accelerator=_stored(d, "accelerator", _optional_str, None) or None,
            accelerator_count=_stored(d, "accelerator_count", int, 0),
            pricing=_stored(d, "pricing", PricingKind, PricingKind.ON_DEMAND),
            hourly_usd=_stored(d, "hourly_usd", float, 0.0),
            total_usd=_stored(d, "total_usd", float, 0.0),
            duration_hours=_stored(d, "duration_hours", float, 0.0),
            egress_usd=_stored(d, "egress_usd", float, 0.0),
            nvlink_domain_gpus=_stored(d, "nvlink_domain_gpus", int, 0),
            vcpus=_stored(d, "vcpus", float, 0.0),
            memory_gib=_stored(d, "memory_gib", float, 0.0),
            option=option,
        )


_REQUIRED: Any = object()


def _stored(
    d: Mapping[str, Any], name: str, conv: Callable[[Any], T], default: Any = _REQUIRED
) -> T:
    """Field ``name`` of a stored placement through ``conv``; ValueError naming it."""
    if name not in d:
        if default is _REQUIRED:
            raise ValueError(f"stored placement: missing field {name!r}")
        return cast(T, default)
    try:
        return conv(d[name])
    except (TypeError, ValueError):
        raise ValueError(f"stored placement: {name} {d[name]!r} is not valid") from None


def _optional_str(x: Any) -> str:
    return "" if x is None else str(x)


def _optional_int(x: Any) -> int | None:
    return None if x is None else int(x)


_PLACEMENT_FIELDS = tuple(f.name for f in fields(Placement))


@dataclass(frozen=True, slots=True)
class JobPlacement:
    """Where a job's current attempt runs, as the control loop stores it in
    ``workloads.placement``: the chosen ``placement`` and the gang it runs there
    (``ranks`` nodes of ``cpus_per_node`` CPUs and ``memory_gib_per_node`` GiB each).
    The stored JSON is the placement's own (``Placement.to_stored``) plus those three
    keys, so readers of the plain placement keep working."""

    placement: Placement
    ranks: int
    cpus_per_node: float = 1.0
    memory_gib_per_node: float = 0.0
    #: the instances the scheduler chose for the gang, rank 0 first (instance-backed
    #: providers; empty: the provider picks)
    instances: tuple[int, ...] = ()

    def to_stored(self) -> dict[str, Any]:
        out = {
            **self.placement.to_stored(),
            "ranks": self.ranks,
            "cpus_per_node": self.cpus_per_node,
            "memory_gib_per_node": self.memory_gib_per_node,
        }
        if self.instances:
            out["instances"] = list(self.instances)
        return out

    @classmethod
    def from_stored(cls, d: Mapping[str, Any]) -> JobPlacement:
        """What ``to_stored`` wrote; ValueError naming the field when it is malformed."""
        return cls(
            placement=Placement.from_stored(d),
            ranks=_stored(d, "ranks", int),
            cpus_per_node=_stored(d, "cpus_per_node", float, 1.0),
            memory_gib_per_node=_stored(d, "memory_gib_per_node", float, 0.0),
            instances=_instances(d.get("instances")),
        )


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why a provider (or a narrower scope) could not take the workload."""

    provider: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "reason": self.reason}


def _instances(value: Any) -> tuple[int, ...]:
    """The stored ``instances`` list; ValueError naming the field when malformed."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        raise ValueError(f"placement.instances: expected a list of instance ids, got {value!r}")
    return tuple(value)
