"""The in-memory catalog: offerings plus the same data as numpy columns.

Loaders (bundled CSV, SkyPilot v8 directories, synthetic benchmark catalogs) build a
``Catalog`` from ``Offering`` rows. Consumers that must be fast (the planner's index)
read the columnar view; everything else iterates ``offerings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from intercloud.model import Offering


@dataclass(frozen=True, slots=True)
class Codes:
    """A string column stored as integer codes into ``names``."""

    names: tuple[str, ...]
    codes: npt.NDArray[np.int32]

    def code(self, name: str) -> int:
        """Code of ``name``, or -1 if it never occurs."""
        try:
            return self.names.index(name)
        except ValueError:
            return -1


def _encode(values: Sequence[str]) -> Codes:
    names: dict[str, int] = {}
    codes = np.fromiter((names.setdefault(v, len(names)) for v in values), np.int32, len(values))
    return Codes(tuple(names), codes)


@dataclass(frozen=True, slots=True)
class Columns:
    """Columnar copy of a catalog; row i is ``Catalog.offerings[i]``.

    ``spot_price`` is NaN where no spot is sold. ``accelerator`` code -1 never occurs:
    CPU-only rows carry the name "" (and ``accelerator_count`` 0).
    """

    provider: Codes
    region: Codes
    zone: Codes
    instance_type: Codes
    accelerator: Codes
    accelerator_count: npt.NDArray[np.int32]
    vcpus: npt.NDArray[np.float64]
    memory_gib: npt.NDArray[np.float64]
    on_demand_price: npt.NDArray[np.float64]
    spot_price: npt.NDArray[np.float64]
    nvlink_domain_gpus: npt.NDArray[np.int32]
    instances_per_domain: npt.NDArray[np.int32]
    egress_usd_per_gb: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Catalog:
    """An immutable set of offerings with a lazily built columnar view."""

    offerings: tuple[Offering, ...]
    sources: tuple[str, ...] = field(default=())

    @classmethod
    def from_offerings(cls, rows: Iterable[Offering], sources: Iterable[str] = ()) -> Catalog:
        return cls(tuple(rows), tuple(sources))

    def __len__(self) -> int:
        return len(self.offerings)

    def merged(self, other: Catalog) -> Catalog:
        return Catalog(self.offerings + other.offerings, self.sources + other.sources)

    def filter(self, provider: str | None = None, accelerator: str | None = None) -> Catalog:
        """A sub-catalog (used by ``intercloud catalog``); matching is case-insensitive."""
        p = provider.lower() if provider else None
        a = accelerator.lower() if accelerator else None
        rows = [
            o
            for o in self.offerings
            if (p is None or o.provider == p) and (a is None or (o.accelerator or "").lower() == a)
        ]
        return Catalog(tuple(rows), self.sources)

    @cached_property
    def providers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.provider for o in self.offerings))

    @cached_property
    def instance_types(self) -> frozenset[str]:
        return frozenset(o.instance_type for o in self.offerings)

    @cached_property
    def regions(self) -> frozenset[str]:
        return frozenset(o.region for o in self.offerings)

    @cached_property
    def accelerators(self) -> frozenset[str]:
        return frozenset(o.accelerator for o in self.offerings if o.accelerator)

    @cached_property
    def columns(self) -> Columns:
        rows = self.offerings
        n = len(rows)

        def f64(values: Iterable[float]) -> npt.NDArray[np.float64]:
            return np.fromiter(values, np.float64, n)

        def i32(values: Iterable[int]) -> npt.NDArray[np.int32]:
            return np.fromiter(values, np.int32, n)

        return Columns(
            provider=_encode([o.provider for o in rows]),
            region=_encode([o.region for o in rows]),
            zone=_encode([o.zone for o in rows]),
            instance_type=_encode([o.instance_type for o in rows]),
            accelerator=_encode([o.accelerator or "" for o in rows]),
            accelerator_count=i32(o.accelerator_count for o in rows),
            vcpus=f64(o.vcpus for o in rows),
            memory_gib=f64(o.memory_gib for o in rows),
            on_demand_price=f64(o.on_demand_price for o in rows),
            spot_price=f64(np.nan if o.spot_price is None else o.spot_price for o in rows),
            nvlink_domain_gpus=i32(o.nvlink_domain_gpus for o in rows),
            instances_per_domain=i32(o.instances_per_domain for o in rows),
            egress_usd_per_gb=f64(o.egress_usd_per_gb for o in rows),
        )
