"""Configuration of the local provider: where its files live and which sites it offers.

A *site* is a slice of this machine that poses as one provider location (``aws`` /
``us-east-1`` / ``us-east-1a``), so multi-provider placement and failover can be exercised
on one host. Each site has its own CPU, memory and (emulated) GPU slots; the slots of all
sites are independent budgets, not a partition of the real machine (oversubscription is
the operator's choice).

Environment (``LocalConfig.from_env``):

- ``INTERCLOUD_HOME``: state root; the provider uses ``$INTERCLOUD_HOME/local``
  (default ``~/.intercloud/local``).
- ``INTERCLOUD_LOCAL_GPUS``: emulated GPUs of the default site, ``TYPE:COUNT`` (``H100:8``).
- ``INTERCLOUD_LOCAL_CPUS``: CPU slots of the default site (default ``os.cpu_count()``).
- ``INTERCLOUD_LOCAL_SITES``: several sites instead of the default one. Either a path to a
  YAML file (a list of mappings with the ``LocalSite`` field names) or the compact form:
  sites separated by ``;``, each ``provider/region[/zone]`` followed by ``,key=value``
  fields among ``cpus``, ``memory`` (GiB), ``gpus`` (``TYPE:COUNT``), ``price`` (USD per
  hour), ``spot`` (USD per hour), ``instance``. Example::

      aws/us-east-1/us-east-1a,cpus=16,gpus=H100:8,price=2.5;gcp/us-central1,cpus=8
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil


def _default_cpus() -> int:
    return os.cpu_count() or 1


def _default_memory_gib() -> float:
    return round(float(psutil.virtual_memory().total) / 2**30, 1)


@dataclass(frozen=True, slots=True)
class LocalSite:
    """One provider location emulated on this machine.

    ``cpu_slots``/``memory_gib``/``gpu_slots`` are the budgets that ``provision`` reserves
    from; ``gpu_type`` names the emulated accelerator (None: CPU only).
    """

    provider: str = "local"
    region: str = "local"
    zone: str = ""
    cpu_slots: float = field(default_factory=_default_cpus)
    memory_gib: float = field(default_factory=_default_memory_gib)
    gpu_type: str | None = None
    gpu_slots: int = 0
    instance_type: str = ""
    on_demand_price: float = 0.0
    spot_price: float | None = None

    def __post_init__(self) -> None:
        if self.cpu_slots <= 0:
            raise ValueError(f"site {self.key}: cpu_slots must be positive")
        if self.gpu_slots < 0 or (self.gpu_slots > 0 and not self.gpu_type):
            raise ValueError(f"site {self.key}: gpu_slots needs a gpu_type and must be >= 0")
        if not self.instance_type:
            name = f"local-{self.gpu_type}x{self.gpu_slots}" if self.gpu_slots else "local-cpu"
            object.__setattr__(self, "instance_type", name)

    @property
    def key(self) -> str:
        """Stable identifier ``provider/region/zone`` (used in the allocation ledger)."""
        return f"{self.provider}/{self.region}/{self.zone}"


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """Where the local provider keeps its state and which sites it offers.

    ``kill_grace_s``: how long ``kill`` waits after SIGTERM before SIGKILL. Nodes never
    inherit this process's environment (see ``intercloud.submission.job_env``).
    """

    root: Path
    sites: tuple[LocalSite, ...] = field(default_factory=lambda: (LocalSite(),))
    kill_grace_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.sites:
            raise ValueError("a local provider needs at least one site")
        keys = [s.key for s in self.sites]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate local sites: {keys}")

    def for_provider(self, provider: str) -> LocalConfig:
        """The same root restricted to the sites posing as ``provider``.

        Use one ``LocalProvider`` per posed provider name when the control loop maps
        allocations to providers by name.
        """
        sites = tuple(s for s in self.sites if s.provider == provider)
        if not sites:
            raise ValueError(f"no local site poses as provider {provider!r}")
        return replace(self, sites=sites)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LocalConfig:
        """Build the configuration from ``INTERCLOUD_*`` variables (see module docstring)."""
        env = dict(os.environ) if environ is None else environ
        home = env.get("INTERCLOUD_HOME") or str(Path.home() / ".intercloud")
        root = Path(home).expanduser() / "local"
        spec = env.get("INTERCLOUD_LOCAL_SITES", "").strip()
        if spec:
            return cls(root=root, sites=parse_sites(spec))
        site_kwargs: dict[str, Any] = {}
        if env.get("INTERCLOUD_LOCAL_CPUS"):
            from intercloud.settings import local_cpus

            site_kwargs["cpu_slots"] = local_cpus(env)
        if env.get("INTERCLOUD_LOCAL_GPUS"):
            site_kwargs["gpu_type"], site_kwargs["gpu_slots"] = parse_gpus(
                env["INTERCLOUD_LOCAL_GPUS"]
            )
        return cls(root=root, sites=(LocalSite(**site_kwargs),))


def parse_gpus(text: str) -> tuple[str, int]:
    """``"H100:8"`` -> ``("H100", 8)``; a bare type means one GPU."""
    name, _, count = text.strip().partition(":")
    if not name:
        raise ValueError(f"bad GPU spec {text!r}: expected TYPE:COUNT")
    try:
        n = int(count) if count else 1
    except ValueError as exc:
        raise ValueError(f"bad GPU count in {text!r}") from exc
    if n < 0:
        raise ValueError(f"bad GPU count in {text!r}")
    return name, n


_COMPACT_KEYS = {
    "cpus": ("cpu_slots", float),
    "memory": ("memory_gib", float),
    "price": ("on_demand_price", float),
    "spot": ("spot_price", float),
    "instance": ("instance_type", str),
}


def parse_sites(spec: str) -> tuple[LocalSite, ...]:
    """Sites from a YAML file path or the compact ``;``-separated form."""
    path = Path(spec).expanduser()
    if spec.endswith((".yaml", ".yml")) or path.is_file():
        return _sites_from_yaml(path)
    sites: list[LocalSite] = []
    for chunk in filter(None, (c.strip() for c in spec.split(";"))):
        location, *fields = (f.strip() for f in chunk.split(","))
        parts = location.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise ValueError(f"bad site {chunk!r}: expected provider/region[/zone]")
        kwargs: dict[str, Any] = {"provider": parts[0], "region": parts[1]}
        if len(parts) == 3:
            kwargs["zone"] = parts[2]
        for item in fields:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"bad field {item!r} in site {chunk!r}: expected key=value")
            if key == "gpus":
                kwargs["gpu_type"], kwargs["gpu_slots"] = parse_gpus(value)
            elif key in _COMPACT_KEYS:
                name, conv = _COMPACT_KEYS[key]
                try:
                    kwargs[name] = conv(value)
                except ValueError as exc:
                    raise ValueError(f"bad value {item!r} in site {chunk!r}") from exc
            else:
                raise ValueError(
                    f"unknown key {key!r} in site {chunk!r}; known: gpus, "
                    + ", ".join(_COMPACT_KEYS)
                )
        sites.append(LocalSite(**kwargs))
    if not sites:
        raise ValueError("INTERCLOUD_LOCAL_SITES names no site")
    return tuple(sites)


def _sites_from_yaml(path: Path) -> tuple[LocalSite, ...]:
    # Read and parsed as spec files are: a regular file of at most 1 MiB (never blocking
    # on a FIFO), YAML of bounded depth and size.
    from intercloud.specs.errors import SpecProblem
    from intercloud.specs.loader import parse_yaml, read_spec_text

    try:
        data = parse_yaml(read_spec_text(path))
    except SpecProblem as exc:
        raise ValueError(f"{path}: {exc.field}: {exc.problem}") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of sites")
    allowed = set(LocalSite.__dataclass_fields__)
    sites = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: site {i} is not a mapping")
        unknown = set(item) - allowed
        if unknown:
            raise ValueError(f"{path}: site {i} has unknown keys {sorted(unknown)}")
        sites.append(LocalSite(**item))
    return tuple(sites)
