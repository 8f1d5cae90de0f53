"""``$INTERCLOUD_HOME/config.yaml``: which providers are enabled, and the fleet's knobs.

The file (or the one ``INTERCLOUD_CONFIG`` names) is optional; without it intercloud runs
the ``local`` provider only, configured from the environment as before. Example::

    providers:
      local: {}                      # listed: enabled (its settings from the environment)
      aws:
        regions: [us-east-1, us-west-2]
      gcp: {enabled: false}          # listed but off (its settings still validated)
    failover:
      cooldown_s: {first: 60, max: 3600}   # an offering that refused capacity, growing
      down_after_s: 300                    # a provider failing every call this long is down
    pools:
      idle_s: 300                    # an idle instance is released after this
      max_instances: 8               # per offering, unless said below
      providers: {aws: {max_instances: 32}}
      offerings: {aws/us-east-1/p4d.24xlarge: {max_instances: 2, idle_s: 60}}
    caps: {aws: 0.6}                 # at most this share of the fleet's GPUs per provider
    agent: {listen: "0.0.0.0:8470", public_url: "https://ic.example.com:8470"}
    contracts: [contracts.yaml]      # reserved blocks become pools (contracts/spec.py)
    checkpoint_dir: /mnt/shared/checkpoints   # storage every provider's nodes reach:
                                     # a job resumes from <dir>/<job id> wherever it runs

A ``providers:`` mapping enables exactly the providers it lists (each unless it says
``enabled: false``); without the key, ``local`` alone is enabled. Each provider's section
is validated by its plugin's ``settings_model`` (``providers.registry``).

Every problem is ``ConfigError``: one line ``<file>: <field path>: <problem>``, as specs
report theirs. A provider whose plugin cannot be imported is not a config error: its
entry carries the error, ``intercloud check`` shows it and the others keep working.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from intercloud.providers.registry import (
    PluginLoadError,
    ProviderContext,
    ProviderPlugin,
    UnknownProvider,
    load_plugin,
)
from intercloud.specs.errors import ROOT, SpecError, SpecProblem, problem_from_validation, suggest

CONFIG_ENV = "INTERCLOUD_CONFIG"  # read by settings.config_path
DEFAULT_PROVIDER = "local"
_OFFERING_KEY = re.compile(r"^[a-z][a-z0-9-]*/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")
_LISTEN = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
_WEEK_S = 7 * 24 * 3600.0


class ConfigError(SpecError):
    """A configuration intercloud cannot use: ``"{file}: {field}: {problem}"``."""


# -- the file's sections ---------------------------------------------------------------
class Cooldown(BaseModel):
    """How long an offering that refused capacity is avoided: ``first`` seconds, doubling
    on each refusal in a row, at most ``max``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    first: float = Field(default=60.0, gt=0, le=_WEEK_S, allow_inf_nan=False)
    max: float = Field(default=3600.0, gt=0, le=_WEEK_S, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Cooldown:
        if self.first > self.max:
            raise ValueError(f"first ({self.first:g}) is larger than max ({self.max:g})")
        return self


class FailoverConfig(BaseModel):
    """Offering cool-downs, and when a provider whose calls all fail counts as down."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    cooldown_s: Cooldown = Field(default_factory=Cooldown)
    down_after_s: float = Field(default=300.0, gt=0, le=_WEEK_S, allow_inf_nan=False)


class PoolLimit(BaseModel):
    """Overrides for one offering's pool; None: the pools' default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_instances: int | None = Field(default=None, ge=0, le=100_000)
    idle_s: float | None = Field(default=None, ge=0, le=_WEEK_S, allow_inf_nan=False)


class ProviderPoolLimit(BaseModel):
    """All of one provider's instances together."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_instances: int = Field(ge=0, le=1_000_000)


@dataclass(frozen=True, slots=True)
class PoolRule:
    """What applies to one offering's pool: at most ``max_instances`` live instances,
    an idle one released after ``idle_s``."""

    max_instances: int
    idle_s: float


class PoolsConfig(BaseModel):
    """Elastic (instance-backed) pools: defaults, per provider, per offering
    (``provider/region/instance_type``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    idle_s: float = Field(default=300.0, ge=0, le=_WEEK_S, allow_inf_nan=False)
    max_instances: int = Field(default=8, ge=0, le=100_000)
    providers: dict[str, ProviderPoolLimit] = Field(default_factory=dict)
    offerings: dict[str, PoolLimit] = Field(default_factory=dict)

    @field_validator("offerings")
    @classmethod
    def _keys(cls, value: dict[str, PoolLimit]) -> dict[str, PoolLimit]:
        for key in value:
            if not _OFFERING_KEY.match(key):
                raise ValueError(f"{key!r} is not provider/region/instance_type")
        return value

    def rule(self, provider: str, region: str, instance_type: str) -> PoolRule:
        """The limits of the pool of (provider, region, instance_type)."""
        over = self.offerings.get(f"{provider}/{region}/{instance_type}")
        return PoolRule(
            max_instances=self.max_instances
            if over is None or over.max_instances is None
            else over.max_instances,
            idle_s=self.idle_s if over is None or over.idle_s is None else over.idle_s,
        )

    def provider_max(self, provider: str) -> int | None:
        """The most live instances of ``provider`` together (None: no limit)."""
        limit = self.providers.get(provider)
        return None if limit is None else limit.max_instances


class AgentConfig(BaseModel):
    """The node agents' endpoint in the daemon: where it listens (``host:port``, port 0:
    any free port) and the URL agents on instances use (None: ``http://`` + listen)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    listen: str = "127.0.0.1:0"
    public_url: str | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        found = _LISTEN.match(value)
        if found is None or int(found["port"]) > 65535:
            raise ValueError(f"expected host:port with a port of 0-65535, got {value!r}")
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.listen}"


Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class ConfigFile(BaseModel):
    """The file's top level. Provider sections stay raw here: their plugins validate
    them (``load_config``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    providers: dict[str, dict[str, Any] | None] | None = None
    failover: FailoverConfig = Field(default_factory=FailoverConfig)
    pools: PoolsConfig = Field(default_factory=PoolsConfig)
    caps: dict[str, Share] = Field(default_factory=dict)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    contracts: list[str] = Field(default_factory=list)
    checkpoint_dir: str | None = None

    @field_validator("checkpoint_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("/") and value.strip() == value):
            raise ValueError(f"expected an absolute path every node can reach, got {value!r}")
        return value


# -- the result ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """One provider the config names. ``settings`` is its validated section (None when
    its plugin could not be loaded: ``error`` says why)."""

    name: str
    enabled: bool
    plugin: ProviderPlugin[Any] | None = None
    settings: BaseModel | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class IntercloudConfig:
    """The validated configuration. ``source`` is the file read (None: none, defaults)."""

    providers: Mapping[str, ProviderEntry]
    failover: FailoverConfig = field(default_factory=FailoverConfig)
    pools: PoolsConfig = field(default_factory=PoolsConfig)
    caps: Mapping[str, float] = field(default_factory=dict)
    agent: AgentConfig = field(default_factory=AgentConfig)
    #: where every provider's nodes keep checkpoints (shared storage), None: their own
    checkpoint_dir: str | None = None
    source: Path | None = None
    #: contract files (``contracts/spec.py``): their reserved blocks are pools of the
    #: live loop (paths relative to the config file's folder)
    contracts: tuple[Path, ...] = ()

    @property
    def enabled(self) -> list[str]:
        """Names of the enabled providers (as the config names them), sorted."""
        return sorted(n for n, e in self.providers.items() if e.enabled)


def load_config(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> IntercloudConfig:
    """Read and validate the configuration (see the module docstring).

    A missing default file means the defaults (``local`` only); a missing file named by
    ``INTERCLOUD_CONFIG`` is an error. Raises ``ConfigError`` (one line).
    """
    from intercloud import settings

    env = dict(os.environ if environ is None else environ)
    home = home if home is not None else settings.home(env)
    path = settings.config_path(env, home)
    ctx = ProviderContext(home=home, environ=env)
    if not settings.config_given(env, home):
        return _defaults(ctx)
    source = str(path)
    from intercloud.specs.loader import parse_yaml, read_spec_text

    try:
        data = parse_yaml(read_spec_text(path))
    except SpecError as exc:
        raise ConfigError(exc.field, exc.problem, source) from None
    except SpecProblem as exc:
        raise ConfigError(exc.field, exc.problem, source) from None
    if data is None:
        return _defaults(ctx, path)
    if not isinstance(data, dict):
        raise ConfigError(ROOT, "expected a mapping (providers, failover, pools, ...)", source)
    try:
        top = ConfigFile.model_validate(data)
    except ValidationError as exc:
        problem = problem_from_validation(exc, ConfigFile)
        raise ConfigError(problem.field, problem.problem, source) from None
    if top.providers is None:
        entries = _defaults(ctx).providers
    else:
        entries = {
            name: _entry(name, section or {}, source) for name, section in top.providers.items()
        }
    posed = _poses(entries, ctx, source)
    for key in top.caps:
        _known_provider(key, posed, f"caps.{key}", source)
    for key in top.pools.providers:
        _known_provider(key, posed, f"pools.providers.{key}", source)
    for key in top.pools.offerings:
        _known_provider(key.split("/")[0], posed, f"pools.offerings.{key}", source)
    return IntercloudConfig(
        providers=entries,
        failover=top.failover,
        pools=top.pools,
        caps=dict(top.caps),
        agent=top.agent,
        checkpoint_dir=top.checkpoint_dir,
        source=path,
        contracts=_contract_files(top.contracts, path, source),
    )


def _contract_files(names: list[str], path: Path, source: str) -> tuple[Path, ...]:
    """The ``contracts`` entries as paths (relative to the config's folder), each an
    existing file."""
    out = []
    for i, name in enumerate(names):
        file = Path(name).expanduser()
        if not file.is_absolute():
            file = path.parent / file
        if not file.is_file():
            raise ConfigError(f"contracts[{i}]", f"no such file: {file}", source)
        out.append(file)
    return tuple(out)


def _defaults(ctx: ProviderContext, source: Path | None = None) -> IntercloudConfig:
    entry = _entry(DEFAULT_PROVIDER, {}, str(source or "config.yaml"))
    _poses({DEFAULT_PROVIDER: entry}, ctx, str(source or "config.yaml"))
    return IntercloudConfig(providers={DEFAULT_PROVIDER: entry}, source=source)


def _entry(name: str, section: dict[str, Any], source: str) -> ProviderEntry:
    where = f"providers.{name}"
    body = dict(section)
    enabled = body.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled", "expected true or false", source)
    try:
        plugin = load_plugin(name)
    except UnknownProvider as exc:
        raise ConfigError(where, str(exc), source) from None
    except PluginLoadError as exc:
        return ProviderEntry(name, enabled, error=exc.reason)
    try:
        settings = plugin.parse(body)
    except ValidationError as exc:
        problem = problem_from_validation(exc, plugin.settings_model)
        path = where if problem.field == ROOT else f"{where}.{problem.field}"
        raise ConfigError(path, problem.problem, source) from None
    except ValueError as exc:
        raise ConfigError(where, str(exc), source) from None
    return ProviderEntry(name, enabled, plugin=plugin, settings=settings)


def _poses(entries: Mapping[str, ProviderEntry], ctx: ProviderContext, source: str) -> set[str]:
    """Every provider name the enabled entries serve; two serving one name is an error
    naming both (a local site posing as ``aws`` while ``aws`` itself is enabled)."""
    owner: dict[str, str] = {}
    for name, entry in sorted(entries.items()):
        if not entry.enabled or entry.plugin is None or entry.settings is None:
            if entry.enabled:
                owner.setdefault(name, name)
            continue
        try:
            served = entry.plugin.poses_as(entry.settings, ctx)
        except ValueError as exc:  # a bad INTERCLOUD_LOCAL_* the section defers to
            raise ConfigError(f"providers.{name}", " ".join(str(exc).split()), source) from None
        for posed in sorted(served):
            other = owner.get(posed)
            if other is not None and other != name:
                first, second = sorted((other, name))
                raise ConfigError(
                    f"providers.{second}",
                    f"provider name {posed!r} is served by both providers.{first} and "
                    f"providers.{second} (a local site posing as an enabled provider?); "
                    "rename the site's provider or disable one",
                    source,
                )
            owner[posed] = name
    return set(owner) | set(entries)


def _known_provider(name: str, known: set[str], where: str, source: str) -> None:
    if name not in known:
        raise ConfigError(
            where,
            f"{name!r} is not a configured provider{suggest(name, known)} "
            f"(configured: {', '.join(sorted(known))})",
            source,
        )


__all__ = [
    "CONFIG_ENV",
    "AgentConfig",
    "ConfigError",
    "ConfigFile",
    "Cooldown",
    "FailoverConfig",
    "IntercloudConfig",
    "PoolLimit",
    "PoolRule",
    "PoolsConfig",
    "ProviderEntry",
    "load_config",
]
