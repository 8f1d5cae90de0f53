"""The ``fleet:`` section of ``$INTERCLOUD_HOME/config.yaml``: capacity and failover
settings as typed values (``FleetSettings``), validated with the same one-line errors
as specs (``config.yaml: fleet.cooldown.first_s: must be greater than 0, got 0``).

```yaml
fleet:
  default_max_instances: 8        # per pool of an instance-backed offering
  max_instances:                  # per offering: provider/region/zone/instance_type
    aws/us-east-1/us-east-1a/p5.48xlarge: 4
  idle_release_s: 600             # an idle instance is released after that long
  provision_delay_s: 120          # expected launch-to-usable time
  caps: {aws: 0.6}                # most share of the fleet's GPUs per provider (or one number)
  caps_min_fleet_gpus: 64         # caps bind only above this many GPUs
  cooldown: {first_s: 60, max_s: 3600, factor: 2}
  down_after_s: 300               # a provider whose calls all fail that long is down
```

Every field is optional; no section at all gives the defaults. The store's cool-downs
and down providers are added each cycle (``snapshot.with_store_state``), contracts by
the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intercloud.control.failover import CooldownPolicy
from intercloud.control.snapshot import DEFAULT_MAX_INSTANCES, FleetPolicy
from intercloud.providers.base import OfferingKey
from intercloud.specs.errors import FieldValueError, SpecError, problem_from_validation

__all__ = ["FleetSettings", "parse_fleet_settings"]

_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Cooldown(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_s: _Seconds = 60.0
    max_s: _Seconds = 3600.0
    factor: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 2.0


class _Fleet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_max_instances: Annotated[int, Field(ge=0, le=100_000)] = DEFAULT_MAX_INSTANCES
    max_instances: dict[str, Annotated[int, Field(ge=0, le=100_000)]] = {}
    idle_release_s: _Seconds = 600.0
    provision_delay_s: _Seconds = 120.0
    caps: Any = None  # a share for every provider, or provider -> share (``_caps``)
    caps_min_fleet_gpus: Annotated[int, Field(ge=0)] = 0
    cooldown: _Cooldown = _Cooldown()
    down_after_s: _Seconds = 300.0

    @field_validator("max_instances")
    @classmethod
    def _keys(cls, v: dict[str, int]) -> dict[str, int]:
        for k in v:
            if len(_key(k)) != 4 or not all(_key(k)[i] for i in (0, 1, 3)):
                raise FieldValueError(
                    "expected provider/region/zone/instance_type (zone may be empty)", f".{k}"
                )
        return v

    @field_validator("caps")
    @classmethod
    def _caps(cls, v: Any) -> dict[str, float] | float | None:
        if v is None:
            return None
        if isinstance(v, Mapping):
            return {str(k): _share(x, f".{k}") for k, x in v.items()}
        return _share(v, "")

    @field_validator("cooldown")
    @classmethod
    def _order(cls, v: _Cooldown) -> _Cooldown:
        if v.max_s < v.first_s:
            raise FieldValueError(f"must be at least first_s ({v.first_s:g})", ".max_s")
        return v


def _share(v: Any, subpath: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise FieldValueError(f"expected a share in (0, 1], got {v!r}", subpath)
    return float(v)


def _key(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("/"))


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The ``fleet:`` section as typed values: the snapshot's policy (without the
    store's state and contracts), the cool-down growth and the provider-down time."""

    policy: FleetPolicy = field(default_factory=FleetPolicy)
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    down_after_s: float = 300.0


def parse_fleet_settings(data: Any, source: str = "config.yaml") -> FleetSettings:
    """``data`` (the ``fleet`` mapping, None: absent) as ``FleetSettings``; raises
    ``SpecError`` (``{source}: fleet.<field>: <problem>``) on the first bad field."""
    if data is None:
        return FleetSettings()
    if not isinstance(data, Mapping):
        raise SpecError("fleet", f"expected a mapping, got {type(data).__name__}", source)
    try:
        m = _Fleet.model_validate(dict(data))
    except ValidationError as exc:
        p = problem_from_validation(exc, _Fleet)
        raise SpecError(f"fleet.{p.field}", p.problem, source) from None
    max_instances: dict[OfferingKey, int] = {}
    for k, n in m.max_instances.items():
        provider, region, zone, instance_type = _key(k)
        max_instances[(provider, region, zone, instance_type)] = n
    policy = FleetPolicy(
        max_instances=max_instances,
        default_max_instances=m.default_max_instances,
        idle_release_s=m.idle_release_s,
        provision_delay_s=m.provision_delay_s,
        caps=m.caps,
        caps_min_fleet_gpus=m.caps_min_fleet_gpus,
    )
    cooldown = CooldownPolicy(m.cooldown.first_s, m.cooldown.max_s, m.cooldown.factor)
    return FleetSettings(policy, cooldown, m.down_after_s)
