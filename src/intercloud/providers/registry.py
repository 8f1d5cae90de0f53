"""Providers found by name: the entry-point group ``intercloud.providers``.

A provider is one module (in intercloud or an outside package) exposing a
``ProviderPlugin`` through an entry point::

    [project.entry-points."intercloud.providers"]
    myprov = "my_package.plugin:PLUGIN"

The plugin says how its section of ``config.yaml`` looks (``settings_model``, a pydantic
model with ``extra="forbid"``), builds the provider from validated settings (``create``)
and says whether it can be used here (``check``: enabled, reachable, credentials found,
offerings by region, why not). Callers never name a provider's module.

The built-in plugins (``BUILTIN``) are also declared as entry points in
``pyproject.toml``; they are resolved without scanning the installed distributions, so
commands on the default configuration stay fast. Any other name is looked up among the
entry points (scanned once per process; ``forget_discovered`` scans again).

A plugin that fails to import is reported as ``PluginLoadError`` (one line, the import
error), never a crash: ``check`` shows it and ``enabled_providers`` leaves that provider
out while the others keep working.
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from intercloud.providers.base import Provider
from intercloud.providers.contract import AsyncProvider
from intercloud.specs.errors import one_line, suggest

if TYPE_CHECKING:
    from intercloud.config import IntercloudConfig

log = logging.getLogger(__name__)

GROUP = "intercloud.providers"
#: Plugins shipped with intercloud (the same targets as pyproject's entry points).
BUILTIN: Mapping[str, str] = {
    "local": "intercloud.providers.local_plugin:PLUGIN",
    "aws": "intercloud.providers.aws.plugin:PLUGIN",
    "sim": "intercloud.providers.sim_plugin:PLUGIN",
    "ray": "intercloud.providers.ray_plugin:PLUGIN",
    "slurm": "intercloud.providers.slurm_plugin:PLUGIN",
}
#: How many offering names ``ProviderCheck`` keeps per region (the counts are complete).
EXAMPLES_PER_REGION = 3

AnyProvider = Provider | AsyncProvider
S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Where a provider is built: the state folder, the environment to read settings'
    defaults from, and the store it serves (``store_id`` None: no store yet, e.g.
    ``intercloud check``; ``database`` is the store's name, ``Store.name``)."""

    home: Path
    environ: Mapping[str, str]
    store_id: str | None = None
    database: str = ""


@dataclass(frozen=True, slots=True)
class RegionOfferings:
    """What a provider sells in one region: how many offerings (one per zone and type),
    how many distinct names among them, and the first few names."""

    count: int
    distinct: int
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "distinct": self.distinct, "examples": list(self.examples)}


@dataclass(frozen=True, slots=True)
class ProviderCheck:
    """Whether a provider can be used here, as ``intercloud check`` shows it.

    ``reachable``/``credentials`` are None when not tried (disabled, or an earlier step
    failed). ``reason`` says why the provider is not usable (None when it is).
    """

    name: str
    enabled: bool
    reachable: bool | None = None
    credentials: bool | None = None
    offerings: Mapping[str, RegionOfferings] = field(default_factory=dict)
    reason: str | None = None

    @property
    def usable(self) -> bool:
        """Enabled, and nothing stands in the way."""
        return self.enabled and self.reason is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "enabled": self.enabled,
            "usable": self.usable,
            "reachable": self.reachable,
            "credentials": self.credentials,
            "offerings": {r: o.to_dict() for r, o in sorted(self.offerings.items())},
            "reason": self.reason,
        }


def offerings_by_region(names: Mapping[str, list[str]]) -> dict[str, RegionOfferings]:
    """Region -> offering names (one per offering, the most telling first; a name may
    repeat, e.g. once per zone) as counts and the first few distinct names."""
    out: dict[str, RegionOfferings] = {}
    for region, items in sorted(names.items()):
        unique = list(dict.fromkeys(items))
        out[region] = RegionOfferings(len(items), len(unique), tuple(unique[:EXAMPLES_PER_REGION]))
    return out


class ProviderPlugin(ABC, Generic[S]):
    """How intercloud finds, configures, builds and checks one provider.

    ``name`` is the provider's name in ``config.yaml`` and in offerings;
    ``settings_model`` validates its section (``enabled`` is taken out before). Plugins
    hold no state: ``create`` and ``check`` may be called any number of times.
    """

    name: str
    settings_model: type[S]

    @abstractmethod
    def create(self, settings: S, ctx: ProviderContext) -> AnyProvider:
        """Build the provider. Raises ``ValueError`` (one line) for settings it cannot
        use here, anything else for a provider that cannot start."""

    @abstractmethod
    def check(self, settings: S, ctx: ProviderContext) -> ProviderCheck:
        """Whether the provider is usable here (never raises for an expected problem:
        missing SDK, no credentials, unreachable endpoint are a ``reason``). Bounded
        in time: network calls use short timeouts and no retries."""

    def create_all(self, settings: S, ctx: ProviderContext) -> dict[str, AnyProvider]:
        """The adapters this plugin contributes, by the provider name each serves.
        One (``name``) unless the plugin poses as several providers (``local``)."""
        return {self.name: self.create(settings, ctx)}

    def poses_as(self, settings: S, ctx: ProviderContext) -> frozenset[str]:
        """The provider names ``create_all`` will use."""
        return frozenset({self.name})

    def parse(self, data: Mapping[str, Any]) -> S:
        """Validate a settings section (``pydantic.ValidationError`` when bad)."""
        return self.settings_model.model_validate(dict(data))


class UnknownProvider(ValueError):
    """A provider name no plugin serves; one line with the known names."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(
            f"unknown provider {name!r}{suggest(name, known)} (known: {', '.join(known)})"
        )


class PluginLoadError(RuntimeError):
    """A plugin that exists but could not be imported or is not a ``ProviderPlugin``."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = one_line(problem)
        self.reason = f"plugin cannot be loaded: {self.problem}"
        super().__init__(f"provider {name!r}: {self.reason}")


@cache
def _entry_points() -> dict[str, str]:
    """Name -> ``module:attr`` of every installed entry point of the group."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def forget_discovered() -> None:
    """Scan the installed distributions again on the next lookup (tests, new installs)."""
    _entry_points.cache_clear()
    _load.cache_clear()


def known_names() -> list[str]:
    """Every provider name a plugin serves, sorted (scans the entry points)."""
    return sorted({*BUILTIN, *_entry_points()})


def target_of(name: str) -> str:
    """``module:attr`` of the plugin named ``name``; ``UnknownProvider`` if none."""
    if name in BUILTIN:
        return BUILTIN[name]
    found = _entry_points().get(name)
    if found is None:
        raise UnknownProvider(name, known_names())
    return found


def load_plugin(name: str) -> ProviderPlugin[Any]:
    """The plugin serving ``name``. ``UnknownProvider`` for a name nobody serves,
    ``PluginLoadError`` for one whose module fails to import or is not a plugin."""
    return _load(target_of(name), name)


@cache
def _load(target: str, name: str) -> ProviderPlugin[Any]:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
    except Exception as exc:  # whatever the module raises while importing
        raise PluginLoadError(name, f"{type(exc).__name__}: {exc}") from None
    if isinstance(obj, type) and issubclass(obj, ProviderPlugin):
        obj = obj()
    if not isinstance(obj, ProviderPlugin):
        raise PluginLoadError(name, f"{target} is not a ProviderPlugin")
    if obj.name != name:
        raise PluginLoadError(name, f"{target} serves {obj.name!r}, not {name!r}")
    return obj


# -- what the config enables ---------------------------------------------------------------
def check_providers(config: IntercloudConfig, ctx: ProviderContext) -> list[ProviderCheck]:
    """One check per provider the config names (enabled or not), in name order. A
    provider whose section or plugin is broken is a check with that reason."""
    out: list[ProviderCheck] = []
    for name, entry in sorted(config.providers.items()):
        if not entry.enabled:
            out.append(ProviderCheck(name, enabled=False))
            continue
        if entry.error is not None or entry.plugin is None or entry.settings is None:
            out.append(ProviderCheck(name, enabled=True, reason=entry.error or "not loaded"))
            continue
        try:
            out.append(entry.plugin.check(entry.settings, ctx))
        except Exception as exc:  # a plugin's bug must not hide the other providers
            out.append(ProviderCheck(name, enabled=True, reason=f"check failed: {_one_line(exc)}"))
    return out


def enabled_providers(
    config: IntercloudConfig,
    ctx: ProviderContext,
    *,
    on_error: Callable[[str, str], None] | None = None,
) -> dict[str, AnyProvider]:
    """The enabled providers, built, by name (``local`` contributes one adapter per
    provider name its sites pose as). A provider that cannot be built (broken plugin,
    ``create`` failing) is left out and reported to ``on_error(name, one_line)``
    (default: logged as an error), so the others keep working."""
    report = on_error or (lambda name, why: log.error("provider %s left out: %s", name, why))
    out: dict[str, AnyProvider] = {}
    for name, entry in sorted(config.providers.items()):
        if not entry.enabled:
            continue
        if entry.error is not None or entry.plugin is None or entry.settings is None:
            report(name, entry.error or "not loaded")
            continue
        try:
            built = entry.plugin.create_all(entry.settings, ctx)
        except Exception as exc:
            report(name, _one_line(exc))
            continue
        out.update(built)
    return out


def build_providers(
    config: IntercloudConfig,
    ctx: ProviderContext,
    *,
    wrap_async: Callable[[str, AsyncProvider], Provider] | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> dict[str, Provider]:
    """The enabled providers as the job reconciler drives them: job-level ``Provider``
    objects. Asynchronous (instance) providers go through ``wrap_async(name, provider)``
    (the instance-pool bridge); without it they are left out, reported to ``on_error``
    and closed."""
    report = on_error or (lambda name, why: log.warning("provider %s left out: %s", name, why))
    out: dict[str, Provider] = {}
    for name, provider in enabled_providers(config, ctx, on_error=on_error).items():
        if isinstance(provider, Provider):
            out[name] = provider
        elif wrap_async is not None:
            out[name] = wrap_async(name, provider)
        else:
            provider.close()
            report(name, "asynchronous providers need the instance bridge (not wired yet)")
    return out


def _one_line(exc: BaseException) -> str:
    text = one_line(str(exc)) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = [
    "BUILTIN",
    "GROUP",
    "AnyProvider",
    "PluginLoadError",
    "ProviderCheck",
    "ProviderContext",
    "ProviderPlugin",
    "RegionOfferings",
    "UnknownProvider",
    "build_providers",
    "check_providers",
    "enabled_providers",
    "forget_discovered",
    "known_names",
    "load_plugin",
    "offerings_by_region",
]
