"""The ``services`` section of a fleet file: inference services the twin autoscales.

Validated with the rest of the fleet file (``fleet_spec.load_fleet``); every problem is
one line naming the field (``services[0].accelerator: no pool of the fleet has B200
GPUs ...``). ``build_services`` turns the entries into ``service_load.ServiceSpec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import TenantSpec
from intercloud.specs.errors import SpecProblem, join_path
from intercloud.twin.service_load import ServiceSpec

__all__ = ["ServiceConfig", "build_services"]

_Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.\-]*$")]
_Rate = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
_Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
_Replicas = Annotated[int, Field(ge=0, le=1_000_000)]


class ServiceConfig(BaseModel):
    """An inference service: its request rate, and the replicas that serve it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: _Name = Field(description="The service's name (unique in the fleet).")
    tenant: _Name = Field(
        "serving", description="Team it runs for (one of tenants, when the fleet has any)."
    )
    accelerator: _Name = Field(description="GPU model of a replica (a pool of the fleet has it).")
    gpus_per_replica: Annotated[int, Field(ge=1, le=64)] = Field(
        description="GPUs of one replica (one node; some pool's nodes have that many)."
    )
    requests_per_s_per_replica: _Rate = Field(description="Most requests/s one replica serves.")
    peak_requests_per_s: _Rate = Field(
        description="Mean request rate of a weekday's busiest hour (the rate pattern's scale)."
    )
    profile: Literal["azure_conv", "azure_code", "flat"] = Field(
        "azure_conv",
        description=(
            "One-hour request-rate shape, repeated every hour: the Azure LLM inference "
            "trace 2023's conversation or code service, or flat."
        ),
    )
    daily_trough: _Share = Field(
        0.35, description="Rate twelve hours from the peak, as a share of the peak."
    )
    peak_hour_utc: Annotated[float, Field(ge=0, lt=24, allow_inf_nan=False)] = Field(
        15.0, description="Hour of the daily peak (UTC)."
    )
    weekend_factor: _Share = Field(0.7, description="Saturday and Sunday rate over a weekday's.")
    min_replicas: _Replicas = Field(1, description="Fewest replicas, whatever the rate.")
    max_replicas: _Replicas = Field(1000, description="Most replicas the autoscaler asks for.")
    target_utilization: _Share = Field(
        0.8, description="Share of a replica's capacity the autoscaler sizes for."
    )
    priority: Annotated[int, Field(ge=-1000, le=1000)] = Field(
        100,
        description="Scheduling priority of replicas: above training's, they preempt it.",
    )
    autoscale_interval_s: Annotated[float, Field(ge=10, le=86_400, allow_inf_nan=False)] = Field(
        300.0, description="Seconds between autoscaler looks (twin run --autoscale-interval)."
    )
    scale_down_window_s: Annotated[float, Field(ge=0, le=7 * 86_400, allow_inf_nan=False)] = Field(
        1800.0,
        description="Scale down only to the highest target of this many seconds past.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ServiceConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas {self.max_replicas} is below min_replicas {self.min_replicas}"
            )
        return self


def build_services(
    configs: Sequence[ServiceConfig], pools: Sequence[PoolSpec], tenants: Sequence[TenantSpec]
) -> tuple[ServiceSpec, ...]:
    """Check ``configs`` against the fleet's pools and tenants (SpecProblem naming the
    field) and build the services."""
    out = []
    names: set[str] = set()
    tenant_names = {t.name for t in tenants}
    for i, c in enumerate(configs):
        at = ("services", i)
        if c.name in names:
            raise SpecProblem(join_path((*at, "name")), f"duplicate service {c.name!r}")
        names.add(c.name)
        if tenant_names and c.tenant not in tenant_names:
            raise SpecProblem(
                join_path((*at, "tenant")),
                f"no tenant {c.tenant!r} (tenants: {', '.join(sorted(tenant_names))})",
            )
        sizes = [p.gpus_per_node for p in pools if p.accelerator == c.accelerator]
        if not sizes:
            have = sorted({p.accelerator for p in pools if p.accelerator})
            raise SpecProblem(
                join_path((*at, "accelerator")),
                f"no pool of the fleet has {c.accelerator} GPUs (it has: "
                f"{', '.join(have) or 'none'})",
            )
        if max(sizes) < c.gpus_per_replica:
            raise SpecProblem(
                join_path((*at, "gpus_per_replica")),
                f"{c.gpus_per_replica} GPUs do not fit one {c.accelerator} node "
                f"(at most {max(sizes)})",
            )
        out.append(ServiceSpec(**c.model_dump()))
    return tuple(out)
