"""A read-only index over a catalog, built once, that lets the planner skip the scan.

Rows are grouped by accelerator configuration, ``(accelerator, per-instance count)``
(CPU-only rows form the group ``("", 0)``), and each group holds contiguous copies of
the columns the planner reads, sorted by vCPUs so that a ``cpus`` minimum (or exact
count) is a ``searchsorted`` slice. String columns stay integer codes; look-up tables
map the user's (case-insensitive) names to codes, and rank arrays give the
lexicographic order of the names so ties break on names without touching strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from intercloud.catalog import Catalog
from intercloud.model import Offering, canonical_accelerator
from intercloud.scheduler.reasons import Stage

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

CPU_GROUP = ("", 0)


@dataclass(frozen=True, slots=True, eq=False)
class RowGroup:
    """The rows of one accelerator configuration, sorted by vCPUs (ties: catalog order).

    Every array has one entry per row of the group; ``rows`` maps back to catalog rows.
    ``provider_rows`` and ``provider_max_domain`` are per provider code.
    """

    accelerator: str
    count: int
    rows: I64
    provider: I32
    region: I32
    zone: I32
    instance_type: I32
    location: I32
    vcpus: F64
    memory_gib: F64
    on_demand: F64
    spot: F64
    domain_gpus: I32
    instances_per_domain: I32
    provider_rows: I64
    provider_max_domain: I64
    has_spot: Bool  # spot price is not NaN
    funnel_base: I64  # provider code x number of funnel stages (bincount key base)

    @property
    def label(self) -> str:
        """``H100:8`` or ``CPU``."""
        return f"{self.accelerator}:{self.count}" if self.accelerator else "CPU"

    def __len__(self) -> int:
        return int(self.rows.size)

    def cpu_slice(self, cpus: float | None, exact: bool) -> tuple[int, int]:
        """``[lo, hi)``: the rows with at least (``exact``: exactly) ``cpus`` vCPUs."""
        n = int(self.rows.size)
        if cpus is None:
            return 0, n
        lo = int(np.searchsorted(self.vcpus, cpus, side="left"))
        hi = int(np.searchsorted(self.vcpus, cpus, side="right")) if exact else n
        return lo, hi


def _name_table(names: Sequence[str]) -> dict[str, I32]:
    """Lower-cased name -> the codes spelled that way (case-insensitive look-up)."""
    by_lower: dict[str, list[int]] = defaultdict(list)
    for code, name in enumerate(names):
        by_lower[name.lower()].append(code)
    return {k: np.asarray(v, np.int32) for k, v in by_lower.items()}


def _rank(names: Sequence[str]) -> I32:
    """``rank[code]``: position of ``names[code]`` in sorted order."""
    rank = np.empty(len(names), np.int32)
    rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names), dtype=np.int32)
    return rank


class PlanIndex:
    """Everything the planner needs from a catalog, precomputed. Immutable after build."""

    def __init__(self, catalog: Catalog) -> None:
        c = catalog.columns
        self.offerings: tuple[Offering, ...] = catalog.offerings
        self.providers: tuple[str, ...] = c.provider.names
        self.regions: tuple[str, ...] = c.region.names
        self.zones: tuple[str, ...] = c.zone.names
        self.instance_types: tuple[str, ...] = c.instance_type.names
        n_prov = len(self.providers)
        self.provider_code: dict[str, int] = {p: i for i, p in enumerate(self.providers)}
        self.region_codes = _name_table(self.regions)
        self.zone_codes = _name_table(self.zones)
        self.instance_type_codes = _name_table(self.instance_types)
        self.provider_rank = _rank(self.providers)
        self.region_rank = _rank(self.regions)
        self.zone_rank = _rank(self.zones)
        self.instance_type_rank = _rank(self.instance_types)

        # Global columns, read only for the handful of candidates that make the top-k.
        self.provider = c.provider.codes
        self.region = c.region.codes
        self.zone = c.zone.codes
        self.instance_type = c.instance_type.codes

        # Locations (provider, region) for per-location egress tables.
        n_reg = max(len(self.regions), 1)
        loc_key = c.provider.codes.astype(np.int64) * n_reg + c.region.codes
        uniq, inverse = np.unique(loc_key, return_inverse=True)
        location = inverse.astype(np.int32).reshape(-1)
        self.location: npt.NDArray[np.int32] = location
        self.location_names: tuple[tuple[str, str], ...] = tuple(
            (self.providers[int(k) // n_reg], self.regions[int(k) % n_reg]) for k in uniq
        )

        # Groups by (accelerator, count), each sorted by vCPUs.
        acc_names = c.accelerator.names
        # A row is a GPU row only with a name and a count; anything else is CPU-only (-1).
        is_gpu = c.accelerator_count > 0
        if "" in acc_names:
            is_gpu &= c.accelerator.codes != acc_names.index("")
        acc_eff = np.where(is_gpu, c.accelerator.codes, -1)
        cnt_eff = np.where(is_gpu, c.accelerator_count, 0)
        order = np.lexsort((c.vcpus, cnt_eff, acc_eff))
        acc_sorted = acc_eff[order]
        cnt_sorted = cnt_eff[order]
        if order.size:
            change = (acc_sorted[1:] != acc_sorted[:-1]) | (cnt_sorted[1:] != cnt_sorted[:-1])
            bounds = np.concatenate(([0], np.flatnonzero(change) + 1, [order.size]))
        else:
            bounds = np.zeros(1, np.int64)
        self.groups: dict[tuple[str, int], RowGroup] = {}
        for lo, hi in pairwise(bounds.tolist()):
            rows = order[lo:hi].astype(np.int64)
            code = int(acc_sorted[lo])
            name, count = (acc_names[code], int(cnt_sorted[lo])) if code >= 0 else CPU_GROUP
            prov = c.provider.codes[rows]
            dom = c.nvlink_domain_gpus[rows]
            max_dom = np.zeros(n_prov, np.int64)
            np.maximum.at(max_dom, prov, dom.astype(np.int64))
            group = RowGroup(
                accelerator=name,
                count=count,
                rows=rows,
                provider=prov,
                region=c.region.codes[rows],
                zone=c.zone.codes[rows],
                instance_type=c.instance_type.codes[rows],
                location=location[rows],
                vcpus=c.vcpus[rows],
                memory_gib=c.memory_gib[rows],
                on_demand=c.on_demand_price[rows],
                spot=c.spot_price[rows],
                domain_gpus=dom,
                instances_per_domain=c.instances_per_domain[rows],
                provider_rows=np.bincount(prov, minlength=n_prov).astype(np.int64),
                provider_max_domain=max_dom,
                has_spot=~np.isnan(c.spot_price[rows]),
                funnel_base=prov.astype(np.int64) * len(Stage),
            )
            self.groups[(name, count)] = group

        # Accelerator names (case-insensitive, aliases) -> catalog spelling.
        self.accelerator_names: dict[str, str] = {}
        for name, _ in self.groups:
            if name:
                self.accelerator_names[name.lower()] = name
                canon = canonical_accelerator(name)
                if canon:
                    self.accelerator_names.setdefault(canon.lower(), name)

        # Instance type code -> groups holding it (a request by instance type alone).
        self.groups_by_instance_type: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for key, group in self.groups.items():
            for it_code in np.unique(group.instance_type).tolist():
                self.groups_by_instance_type[it_code].append(key)

        # Per provider, its accelerator configurations (for "offers no X (has: ...)").
        configs: list[set[tuple[str, int]]] = [set() for _ in range(n_prov)]
        for (name, count), group in self.groups.items():
            if name:
                for pcode in np.flatnonzero(group.provider_rows).tolist():
                    configs[pcode].add((name, count))
        self.provider_configs: tuple[tuple[str, ...], ...] = tuple(
            tuple(f"{a}:{k}" for a, k in sorted(s)) for s in configs
        )

    def group(self, accelerator: str, count: int) -> RowGroup | None:
        """The group for ``accelerator:count`` (name matched case-insensitively), or None."""
        name = self.accelerator_names.get(accelerator.lower())
        if name is None:
            canon = canonical_accelerator(accelerator)
            name = self.accelerator_names.get(canon.lower()) if canon else None
        return self.groups.get((name, count)) if name else None

    def lookup(self, table: dict[str, I32], size: int, names: frozenset[str]) -> Bool:
        """Boolean table over codes: True for the codes of ``names`` (case-insensitive)."""
        ok = np.zeros(size, np.bool_)
        for name in names:
            codes = table.get(name.lower())
            if codes is not None:
                ok[codes] = True
        return ok
