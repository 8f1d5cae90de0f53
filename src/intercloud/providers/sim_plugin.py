"""The ``sim`` provider's plugin: section ``providers.sim`` of ``config.yaml``.

    sim:
      poses_as: [aws, oci]       # provider names it simulates (default: [sim])
      launch_delay_s: 30         # from launch to RUNNING
      instances: 16              # per offering and pricing kind alive at once (null: no limit)
      refuse_probability: 0.0    # seeded random capacity refusals
      seed: 0

It sells the bundled catalog's offerings of each name it poses as (``sim`` itself sells
those of every provider, renamed ``sim``), on the wall clock: the live loop can run
against it end to end with nothing real behind. The digital twin builds its
``SimProvider``s itself, on its simulated clock.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from intercloud.catalog.bundled import load_bundled
from intercloud.model import Offering
from intercloud.providers.registry import (
    AnyProvider,
    ProviderCheck,
    ProviderContext,
    ProviderPlugin,
    offerings_by_region,
)
from intercloud.providers.sim import SimCapacity, SimProvider

NAME = "sim"


class SimSettings(BaseModel):
    """The ``providers.sim`` section (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    poses_as: list[str] = Field(default_factory=lambda: [NAME], min_length=1)
    launch_delay_s: float = Field(default=30.0, ge=0, le=86_400, allow_inf_nan=False)
    instances: int | None = Field(default=16, ge=0)
    refuse_probability: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    seed: int = 0


def sim_offerings(name: str) -> list[Offering]:
    """The bundled catalog's offerings sold under ``name`` (all of them for ``sim``)."""
    rows = load_bundled().offerings
    if name == NAME:
        return [replace(o, provider=NAME) for o in rows]
    return [o for o in rows if o.provider == name]


class SimPlugin(ProviderPlugin[SimSettings]):
    """Simulated clouds behind the asynchronous contract."""

    name = NAME
    settings_model = SimSettings

    def create(self, settings: SimSettings, ctx: ProviderContext) -> AnyProvider:
        return self._make(settings.poses_as[0], settings)

    def _make(self, name: str, settings: SimSettings) -> SimProvider:
        cap = SimCapacity(settings.instances, settings.launch_delay_s)
        return SimProvider(
            name, sim_offerings(name), default=cap,
            refuse_probability=settings.refuse_probability, seed=settings.seed,
        )  # fmt: skip

    def create_all(self, settings: SimSettings, ctx: ProviderContext) -> dict[str, AnyProvider]:
        return {n: self._make(n, settings) for n in sorted(set(settings.poses_as))}

    def poses_as(self, settings: SimSettings, ctx: ProviderContext) -> frozenset[str]:
        return frozenset(settings.poses_as)

    def check(self, settings: SimSettings, ctx: ProviderContext) -> ProviderCheck:
        """Always reachable, no credentials; the offerings of the names it poses as."""
        names: dict[str, list[str]] = {}
        for n in sorted(set(settings.poses_as)):
            for o in sim_offerings(n):
                names.setdefault(f"{n}/{o.region}" if n != NAME else o.region, []).append(
                    o.instance_type
                )
        if not names:
            why = f"no bundled offerings for {', '.join(settings.poses_as)}"
            return ProviderCheck(NAME, enabled=True, reachable=True, credentials=True, reason=why)
        return ProviderCheck(
            NAME, enabled=True, reachable=True, credentials=True,
            offerings=offerings_by_region(names),
        )  # fmt: skip


PLUGIN = SimPlugin()

__all__ = ["PLUGIN", "SimPlugin", "SimSettings", "sim_offerings"]
