"""The catalog shipped with intercloud: ``data/offerings.csv``, sources in ``data/SOURCES.md``.

``load_bundled()`` reads the CSV once per process (cached) with the stdlib ``csv`` module
and validates every row. The columns are the fields of ``intercloud.model.Offering`` plus
``source``, a key into SOURCES.md saying where the row's figures come from; the keys in
file order become ``Catalog.sources``, and ``bundled_row_sources()`` maps each row to its
key. A bad row raises ``CatalogError`` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from intercloud.catalog.catalog import Catalog
from intercloud.catalog.errors import CatalogError
from intercloud.model import KNOWN_PROVIDERS, Offering, canonical_accelerator

DATA_DIR = Path(__file__).resolve().parent / "data"
OFFERINGS_CSV = DATA_DIR / "offerings.csv"
SOURCES_MD = DATA_DIR / "SOURCES.md"

COLUMNS: tuple[str, ...] = (
    "provider", "region", "zone", "instance_type", "accelerator", "accelerator_count",
    "vcpus", "memory_gib", "on_demand_price", "spot_price", "nvlink_domain_gpus",
    "instances_per_domain", "network_gbps", "fabric", "egress_usd_per_gb", "arch", "source",
)  # fmt: skip
FABRICS = frozenset({"", "EFA", "InfiniBand", "RoCE", "GPUDirect-TCPX", "GPUDirect-TCPXO",
                     "ethernet"})  # fmt: skip
ARCHS = frozenset({"x86_64", "arm64"})
_INF = math.inf

RowKey = tuple[str, str, str, str]  # provider, region, zone, instance_type


class _Row:
    """One CSV line being parsed; each getter raises CatalogError naming line and column."""

    __slots__ = ("fields", "line", "path")

    def __init__(self, path: Path, line: int, fields: list[str]) -> None:
        self.path, self.line, self.fields = path, line, fields

    def fail(self, column: str, why: str) -> CatalogError:
        value = self.fields[COLUMNS.index(column)]
        return CatalogError(
            f"{self.path.name}:{self.line}: column '{column}': {why} (got {value!r})"
        )

    def text(self, column: str, *, required: bool = True) -> str:
        value = self.fields[COLUMNS.index(column)]
        if value != value.strip():
            raise self.fail(column, "must not start or end with spaces")
        if required and not value:
            raise self.fail(column, "must not be empty")
        return value

    def number(self, column: str, *, minimum: float = 0.0, strict: bool = False) -> float:
        raw = self.fields[COLUMNS.index(column)]
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(column, "cannot read it as a number") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise self.fail(column, f"must be a finite number {bound}")
        return value

    def integer(self, column: str, *, minimum: int = 0) -> int:
        raw = self.fields[COLUMNS.index(column)]
        try:
            value = int(raw)
        except ValueError:
            raise self.fail(column, "cannot read it as a whole number") from None
        if value < minimum:
            raise self.fail(column, f"must be >= {minimum}")
        return value


def _parse(row: _Row) -> Offering:
    provider = row.text("provider")
    if provider not in KNOWN_PROVIDERS:
        raise row.fail(
            "provider", f"unknown provider; expected one of {', '.join(KNOWN_PROVIDERS)}"
        )
    accelerator = row.text("accelerator", required=False) or None
    if accelerator is not None and canonical_accelerator(accelerator) != accelerator:
        raise row.fail("accelerator", "not a canonical accelerator name")
    count = row.integer("accelerator_count")
    domain = row.integer("nvlink_domain_gpus")
    per_domain = row.integer("instances_per_domain", minimum=1)
    if accelerator is None and (count or domain):
        raise row.fail("accelerator_count", "CPU-only rows need count 0 and nvlink_domain_gpus 0")
    if accelerator is not None and count == 0:
        raise row.fail("accelerator_count", "a GPU row needs at least one accelerator")
    if domain != count * per_domain:
        raise row.fail("nvlink_domain_gpus", "must equal accelerator_count x instances_per_domain")
    on_demand = row.number("on_demand_price", strict=True)
    spot = row.number("spot_price", strict=True) if row.text("spot_price", required=False) else None
    fabric = row.text("fabric", required=False)
    if fabric not in FABRICS:
        raise row.fail("fabric", f"unknown fabric; expected one of {sorted(FABRICS - {''})}")
    arch = row.text("arch")
    if arch not in ARCHS:
        raise row.fail("arch", f"expected one of {sorted(ARCHS)}")
    row.text("source")
    return Offering(
        provider=provider,
        region=row.text("region"),
        zone=row.text("zone", required=False),
        instance_type=row.text("instance_type"),
        accelerator=accelerator,
        accelerator_count=count,
        vcpus=row.number("vcpus", strict=True),
        memory_gib=row.number("memory_gib", strict=True),
        on_demand_price=on_demand,
        spot_price=spot,
        nvlink_domain_gpus=domain,
        instances_per_domain=per_domain,
        network_gbps=row.number("network_gbps"),
        fabric=fabric,
        egress_usd_per_gb=row.number("egress_usd_per_gb"),
        arch=arch,
    )


def _fast(f: list[str]) -> Offering | None:
    """``_parse`` without error reporting: the Offering if the row is valid, else None.

    Checks exactly what ``_parse`` checks, so a None sends the row to ``_parse``, which
    raises the precise error. Kept separate because it is about twice as fast.
    """
    try:
        (
            provider,
            region,
            zone,
            itype,
            acc,
            cnt,
            vcpus_s,
            mem_s,
            od_s,
            spot_s,
            dom_s,
            ipd_s,
            gbps_s,
            fabric,
            egress_s,
            arch,
            source,
        ) = f
        count, domain, per_domain = int(cnt), int(dom_s), int(ipd_s)
        vcpus, mem, od, gbps, egress = (
            float(vcpus_s),
            float(mem_s),
            float(od_s),
            float(gbps_s),
            float(egress_s),
        )
        spot = float(spot_s) if spot_s else None
    except ValueError:
        return None
    accelerator = acc or None
    ok = (
        provider in KNOWN_PROVIDERS
        and region
        and itype
        and source
        and arch in ARCHS
        and fabric in FABRICS
        and count >= 0
        and per_domain >= 1
        and domain == count * per_domain
        and ((accelerator is None and count == 0) or (accelerator is not None and count > 0))
        and (accelerator is None or canonical_accelerator(accelerator) == accelerator)
        and 0 < vcpus < _INF
        and 0 < mem < _INF
        and 0 < od < _INF
        and 0 <= gbps < _INF
        and 0 <= egress < _INF
        and (spot is None or 0 < spot < _INF)
        and all(v == v.strip() for v in f)
    )
    if not ok:
        return None
    return Offering(
        provider,
        region,
        zone,
        itype,
        accelerator,
        count,
        vcpus,
        mem,
        od,
        spot,
        domain,
        per_domain,
        gbps,
        fabric,
        egress,
        arch,
    )


def _rows(path: Path) -> Iterator[tuple[Offering, str]]:
    """(offering, source key) for every data row of ``path``; raises CatalogError."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"{path}: cannot open the bundled catalog: {e.strerror}") from e
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise CatalogError(f"{path.name}:1: header must be exactly {','.join(COLUMNS)}")
        seen: dict[RowKey, int] = {}
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != len(COLUMNS):
                raise CatalogError(
                    f"{path.name}:{line}: expected {len(COLUMNS)} columns, found {len(fields)}"
                )
            offering = _fast(fields) or _parse(_Row(path, line, fields))
            key = (offering.provider, offering.region, offering.zone, offering.instance_type)
            if key in seen:
                raise _Row(path, line, fields).fail(
                    "instance_type", f"duplicate of line {seen[key]} for this place"
                )
            seen[key] = line
            yield offering, fields[-1].strip()


def read_offerings_csv(path: Path) -> tuple[list[Offering], list[str]]:
    """Parse a CSV in the bundled format (uncached): offerings and their source keys."""
    offerings: list[Offering] = []
    sources: list[str] = []
    for offering, source in _rows(path):
        offerings.append(offering)
        sources.append(source)
    return offerings, sources


@lru_cache(maxsize=1)
def _bundled() -> tuple[Catalog, tuple[str, ...]]:
    offerings, sources = read_offerings_csv(OFFERINGS_CSV)
    return Catalog(tuple(offerings), tuple(dict.fromkeys(sources))), tuple(sources)


def load_bundled() -> Catalog:
    """The bundled catalog (AWS, Azure, GCP, OCI), read once per process."""
    return _bundled()[0]


def bundled_row_sources() -> dict[RowKey, str]:
    """Source key of every bundled row, keyed by (provider, region, zone, instance_type)."""
    catalog, sources = _bundled()
    return {
        (o.provider, o.region, o.zone, o.instance_type): s
        for o, s in zip(catalog.offerings, sources, strict=True)
    }
