"""The ``local`` provider's plugin: its ``config.yaml`` section, builder and check.

Section ``providers.local`` (every field optional)::

    local:
      sites:                 # instead of INTERCLOUD_LOCAL_SITES
        - {provider: local, region: local, cpu_slots: 8}
        - {provider: gcp, region: us-central1, gpu_type: A100, gpu_slots: 8, on_demand_price: 3.5}
      cpus: 8                # the default site's CPU slots (instead of INTERCLOUD_LOCAL_CPUS)
      gpus: H100:8           # the default site's GPUs (instead of INTERCLOUD_LOCAL_GPUS)
      kill_grace_s: 10

What the section does not say comes from the environment as before
(``LocalConfig.from_env``): ``sites`` replaces every ``INTERCLOUD_LOCAL_*`` variable;
``cpus``/``gpus`` describe the one default site (the other of the two still from its
variable). Site fields are those of ``LocalSite`` (the sites-file format).
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intercloud.providers.local_config import LocalConfig, LocalSite
from intercloud.providers.registry import (
    AnyProvider,
    ProviderCheck,
    ProviderContext,
    ProviderPlugin,
    offerings_by_region,
)
from intercloud.settings import (
    HOME,
    LOCAL_CPUS,
    LOCAL_GPUS,
    LOCAL_SITES,
    MAX_LOCAL_CPUS,
    MAX_LOCAL_GPUS,
)

_NAME = r"^[a-z][a-z0-9-]{0,39}$"


def _gpus(value: str) -> tuple[str, int]:
    from intercloud.settings import SettingError, parse_gpus

    try:
        return parse_gpus("gpus", value)
    except SettingError:
        raise ValueError(
            f"expected NAME:COUNT with a known accelerator and 1 <= COUNT <= {MAX_LOCAL_GPUS}, "
            f"got {value!r}"
        ) from None


class LocalSiteSettings(BaseModel):
    """One site, as in a sites file (``LocalSite`` fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = Field(default="local", pattern=_NAME)
    region: str = Field(default="local", min_length=1, max_length=64)
    zone: str = Field(default="", max_length=64)
    cpu_slots: float | None = Field(default=None, gt=0, le=MAX_LOCAL_CPUS, allow_inf_nan=False)
    memory_gib: float | None = Field(default=None, gt=0, le=MAX_LOCAL_CPUS, allow_inf_nan=False)
    gpu_type: str | None = None
    gpu_slots: int = Field(default=0, ge=0, le=MAX_LOCAL_GPUS)
    instance_type: str = Field(default="", max_length=64)
    on_demand_price: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    spot_price: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("gpu_type")
    @classmethod
    def _known_gpu(cls, value: str | None) -> str | None:
        return None if value is None else _gpus(f"{value}:1")[0]

    @model_validator(mode="after")
    def _gpu_pair(self) -> LocalSiteSettings:
        if self.gpu_slots and not self.gpu_type:
            raise ValueError("gpu_slots needs a gpu_type")
        return self

    def site(self) -> LocalSite:
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        return LocalSite(**given)


class LocalSettings(BaseModel):
    """The ``providers.local`` section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: list[LocalSiteSettings] | None = Field(default=None, min_length=1)
    cpus: float | None = Field(default=None, gt=0, le=MAX_LOCAL_CPUS, allow_inf_nan=False)
    gpus: str | None = None
    kill_grace_s: float = Field(default=10.0, ge=0, le=3600)

    @field_validator("gpus")
    @classmethod
    def _check_gpus(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name, count = _gpus(value)
        return f"{name}:{count}"

    @model_validator(mode="after")
    def _one_way(self) -> LocalSettings:
        if self.sites is not None and (self.cpus is not None or self.gpus is not None):
            raise ValueError("give cpus/gpus per site under sites, or drop sites")
        keys = [s.site().key for s in self.sites or ()]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a site is listed twice ({', '.join(keys)})")
        return self


def local_config(settings: LocalSettings, ctx: ProviderContext) -> LocalConfig:
    """The ``LocalConfig`` of ``settings`` under ``ctx.home`` (no store folder yet); what
    the section leaves out comes from ``ctx.environ`` (``LocalConfig.from_env``)."""
    root = ctx.home / "local"
    if settings.sites is not None:
        config = LocalConfig(root=root, sites=tuple(s.site() for s in settings.sites))
    else:
        env = {**ctx.environ, HOME: str(ctx.home)}
        if settings.cpus is not None or settings.gpus is not None:
            env.pop(LOCAL_SITES, None)  # the section describes the one default site
            if settings.cpus is not None:
                env[LOCAL_CPUS] = str(settings.cpus)
            if settings.gpus is not None:
                env[LOCAL_GPUS] = settings.gpus
        config = LocalConfig.from_env(env)
    return replace(config, kill_grace_s=settings.kill_grace_s)


class LocalPlugin(ProviderPlugin[LocalSettings]):
    """Processes on this machine, one adapter per provider name its sites pose as."""

    name = "local"
    settings_model = LocalSettings

    def _config(self, settings: LocalSettings, ctx: ProviderContext) -> LocalConfig:
        from intercloud.providers.local import store_config

        config = local_config(settings, ctx)
        if ctx.store_id is not None:
            config = store_config(config, ctx.store_id, ctx.database)
        return config

    def create(self, settings: LocalSettings, ctx: ProviderContext) -> AnyProvider:
        from intercloud.providers.local import LocalProvider

        return LocalProvider(self._config(settings, ctx))

    def create_all(self, settings: LocalSettings, ctx: ProviderContext) -> dict[str, AnyProvider]:
        from intercloud.providers.local import LocalProvider

        config = self._config(settings, ctx)
        names = sorted({s.provider for s in config.sites})
        return {name: LocalProvider(config.for_provider(name)) for name in names}

    def poses_as(self, settings: LocalSettings, ctx: ProviderContext) -> frozenset[str]:
        return frozenset(s.provider for s in local_config(settings, ctx).sites)

    def check(self, settings: LocalSettings, ctx: ProviderContext) -> ProviderCheck:
        """This machine is always reachable and needs no credentials; the offerings are
        its sites (region ``provider/region`` when a site poses as another provider)."""
        try:
            config = local_config(settings, ctx)
        except ValueError as exc:  # a bad INTERCLOUD_LOCAL_* variable
            return ProviderCheck(self.name, enabled=True, reason=" ".join(str(exc).split()))
        names: dict[str, list[str]] = {}
        for site in config.sites:
            region = site.region if site.provider == self.name else f"{site.provider}/{site.region}"
            names.setdefault(region, []).append(site.instance_type)
        return ProviderCheck(
            self.name,
            enabled=True,
            reachable=True,
            credentials=True,
            offerings=offerings_by_region(names),
        )


PLUGIN = LocalPlugin()

__all__ = ["PLUGIN", "LocalPlugin", "LocalSettings", "LocalSiteSettings", "local_config"]
