"""Where a workload lands and what it costs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from intercloud.model.pricing import PricingKind


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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pricing"] = self.pricing.value
        d["gpus"] = self.gpus
        if self.option is None:
            del d["option"]
        return d


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why a provider (or a narrower scope) could not take the workload."""

    provider: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "reason": self.reason}
