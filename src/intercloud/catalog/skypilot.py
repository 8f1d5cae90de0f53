"""Read catalogs in SkyPilot's format (schema v8): ``<dir>/<cloud>/vms.csv``.

Contract of ``load_skypilot_dir``:

- Every ``<cloud>/vms.csv`` under the folder is read (or only ``clouds``, folder names);
  the folder name gives the provider through ``canonical_provider``. Folders without a
  ``vms.csv`` (SkyPilot's ``common/``) are passed over.
- Columns are found by header name; their order differs between clouds. Required:
  ``InstanceType, vCPUs, MemoryGiB, AcceleratorName, AcceleratorCount, Region, Price``.
  Optional: ``AvailabilityZone`` (missing: zone ""), ``SpotPrice`` (missing or empty:
  no spot), ``Arch`` (missing or empty: "x86_64"). ``GpuInfo`` is not read.
- Rows without a price (empty or NaN) are skipped, as SkyPilot does. Empty ``vCPUs`` or
  ``MemoryGiB`` read as 0. Rows with a fractional ``AcceleratorCount`` (0.5 x a GPU, a
  time-sliced share) are skipped: an offering sells whole GPUs to gang-scheduled work.
- Accelerator names become intercloud's canonical names; unknown ones keep SkyPilot's
  spelling so users can still ask for them.
- Google Cloud rows are joined host + GPU (see ``GcpJoin``).
- Egress comes from ``catalog.egress``; NVLink domain and fabric from ``catalog.topology``.
- A missing folder or file, a missing required column, a short row or an unreadable
  number raises ``CatalogError`` with a one-line message naming file, line and column.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from intercloud.catalog.catalog import Catalog
from intercloud.catalog.egress import internet_egress
from intercloud.catalog.errors import CatalogError
from intercloud.catalog.topology import domain_for, network_for
from intercloud.model import (
    KNOWN_PROVIDERS,
    Offering,
    canonical_accelerator,
    canonical_provider,
)

REQUIRED = (
    "InstanceType",
    "vCPUs",
    "MemoryGiB",
    "AcceleratorName",
    "AcceleratorCount",
    "Region",
    "Price",
)
OPTIONAL = ("AvailabilityZone", "SpotPrice", "Arch")
_NUMERIC = ("Price", "SpotPrice", "AcceleratorCount", "vCPUs", "MemoryGiB")
DEFAULT_ARCH = "x86_64"
#: Upper bounds of a row's figures (beyond them a row is a typo or hostile, and plans
#: would overflow to infinity): USD per instance-hour, vCPUs or GiB per instance, GPUs
#: per instance. The same bounds as a spec's (``specs.limits``).
_MAX_PRICE = 1e12
_MAX_QUANTITY = 1e6
_MAX_COUNT = 1024
_MAX = {
    "Price": _MAX_PRICE,
    "SpotPrice": _MAX_PRICE,
    "AcceleratorCount": _MAX_COUNT,
    "vCPUs": _MAX_QUANTITY,
    "MemoryGiB": _MAX_QUANTITY,
}
#: Cloud folder names of SkyPilot's catalog (``catalogs/v8/<cloud>``); a folder with
#: another name is refused rather than turned into a provider nobody can select.
SKYPILOT_CLOUDS = frozenset(
    {
        "aws",
        "azure",
        "gcp",
        "oci",
        "lambda",
        "ibm",
        "scp",
        "runpod",
        "fluidstack",
        "paperspace",
        "cudo",
        "do",
        "vast",
        "nebius",
        "hyperbolic",
        "vsphere",
        "kubernetes",
        "seeweb",
        "shadeform",
        "primeintellect",
    }
)


def load_skypilot_dir(path: Path, clouds: Iterable[str] | None = None) -> Catalog:
    """All offerings of the SkyPilot catalog folder ``path`` (e.g. ``.../catalogs/v8``)."""
    path = Path(path)
    if not path.is_dir():
        raise CatalogError(f"{path}: catalog folder not found")
    if clouds is None:
        names = sorted(d.name for d in path.iterdir() if (d / "vms.csv").is_file())
        if not names:
            raise CatalogError(f"{path}: no <cloud>/vms.csv in this folder")
    else:
        names = list(clouds)
    files = [path / name / "vms.csv" for name in names]
    for name, f in zip(names, files, strict=True):
        provider = canonical_provider(name)
        if provider not in SKYPILOT_CLOUDS and provider not in KNOWN_PROVIDERS:
            known = ", ".join(sorted(SKYPILOT_CLOUDS | set(KNOWN_PROVIDERS)))
            raise CatalogError(f"{path / name}: unknown provider {name!r} (known: {known})")
        if not f.is_file():
            raise CatalogError(f"{f}: file not found")
    offerings: list[Offering] = []
    for name, f in zip(names, files, strict=True):
        offerings.extend(load_vms_csv(f, canonical_provider(name)))
    return Catalog(tuple(offerings), tuple(str(f) for f in files))


def load_vms_csv(file: Path, provider: str) -> list[Offering]:
    """Offerings of one ``vms.csv`` of ``provider`` (a canonical provider name)."""
    rows = read_rows(file, provider)
    if provider == "gcp":
        join = GcpJoin()
        for row in rows:
            join.add(row)
        return join.offerings()
    return [o for o in rows if o.instance_type]  # elsewhere a GPU-only row has no host


def read_rows(file: Path, provider: str) -> Iterator[Offering]:
    """Every priced row of ``file`` as an ``Offering``, in file order.

    Rows without an instance type (Google Cloud's GPU rows) come out with
    ``instance_type`` "" and still need a host; ``load_vms_csv`` resolves them.
    """
    try:
        with file.open(newline="", encoding="utf-8") as fh:
            yield from _parse(fh, file, provider)
    except OSError as e:
        raise CatalogError(f"{file}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CatalogError(f"{file}: not UTF-8 text ({e.reason})") from e
    except csv.Error as e:  # a field over csv's size limit, a NUL byte: not a catalog
        raise CatalogError(f"{file}: not a CSV catalog ({e})") from None


def _parse(fh: TextIO, file: Path, provider: str) -> Iterator[Offering]:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise CatalogError(f"{file}:1: empty file, no header")
    col = {name.strip(): i for i, name in enumerate(header)}
    for name in REQUIRED:
        if name not in col:
            raise CatalogError(f"{file}:1: missing required column {name!r}")
    width = len(header)
    i_type, i_vcpu, i_mem, i_acc, i_cnt, i_reg, i_price = (col[c] for c in REQUIRED)
    i_zone, i_spot, i_arch = (col.get(c, -1) for c in OPTIONAL)
    egress = internet_egress(provider)
    names: dict[str, str] = {}  # SkyPilot accelerator spelling -> intercloud's
    extras: dict[tuple[str, int], tuple[int, int, float, str]] = {}  # topology, fabric
    for r in reader:
        if len(r) < width:
            if not r:
                continue  # blank line
            line = reader.line_num
            raise CatalogError(f"{file}:{line}: expected {width} fields, found {len(r)}")
        try:
            price_s = r[i_price]
            if not price_s:
                continue
            price = float(price_s)
            if price != price:  # NaN: SkyPilot skips unpriced rows
                continue
            spot_s = r[i_spot] if i_spot >= 0 else ""
            spot = float(spot_s) if spot_s else None
            if spot is not None and spot != spot:
                spot = None
            acc = r[i_acc]
            cnt_s = r[i_cnt]
            count = 0
            if acc and cnt_s:
                cnt = float(cnt_s)
                if cnt != cnt:
                    cnt = 0.0
                count = int(cnt)
                if count != cnt:
                    continue  # a fractional GPU share
            vcpu_s, mem_s = r[i_vcpu], r[i_mem]
            vcpus = float(vcpu_s) if vcpu_s else 0.0
            mem = float(mem_s) if mem_s else 0.0
        except (ValueError, OverflowError):
            raise _number_error(file, reader.line_num, r, col) from None
        # One chained comparison on the hot path; NaN fails it too (NaN prices and spot
        # prices were skipped above, as SkyPilot does).
        if not (
            0.0 <= price <= _MAX_PRICE
            and 0.0 <= vcpus <= _MAX_QUANTITY
            and 0.0 <= mem <= _MAX_QUANTITY
            and 0 <= count <= _MAX_COUNT
            and (spot is None or 0.0 <= spot <= _MAX_PRICE)
        ):
            raise _range_error(file, reader.line_num, r, col)
        accelerator: str | None = None
        if count > 0:
            accelerator = names.get(acc)
            if accelerator is None:
                accelerator = names[acc] = canonical_accelerator(acc) or acc.strip()
        itype = r[i_type]
        extra = extras.get((itype, count))
        if extra is None:
            extra = extras[(itype, count)] = (*domain_for(itype, count), *network_for(itype))
        yield Offering(
            provider,
            r[i_reg],
            r[i_zone] if i_zone >= 0 else "",
            itype,
            accelerator,
            count,
            vcpus,
            mem,
            price,
            spot,
            extra[0],
            extra[1],
            extra[2],
            extra[3],
            egress,
            (r[i_arch] if i_arch >= 0 else "") or DEFAULT_ARCH,
        )


def _number_error(file: Path, line: int, r: list[str], col: dict[str, int]) -> CatalogError:
    """The error for the first numeric cell of ``r`` that does not parse (slow path)."""
    for name in _NUMERIC:
        i = col.get(name, -1)
        cell = r[i] if i >= 0 else ""
        try:
            value = float(cell) if cell else 0.0
        except ValueError:
            bad = True
        else:
            bad = name == "AcceleratorCount" and math.isinf(value)
        if bad:
            return CatalogError(f"{file}:{line}: column {name!r}: cannot read {cell!r} as a number")
    return CatalogError(f"{file}:{line}: unreadable row")  # pragma: no cover - defensive


def _range_error(file: Path, line: int, r: list[str], col: dict[str, int]) -> CatalogError:
    """The error for the first numeric cell of ``r`` that is negative, too large or NaN."""
    for name in _NUMERIC:
        i = col.get(name, -1)
        cell = r[i] if i >= 0 else ""
        value = float(cell) if cell else 0.0
        if name in ("Price", "SpotPrice") and value != value:
            continue  # an unpriced row or no spot price: skipped, not an error
        high = _MAX[name]
        if not 0.0 <= value <= high:
            return CatalogError(
                f"{file}:{line}: column {name!r}: {cell!r} must be a number from 0 to {high:g}"
            )
    return CatalogError(f"{file}:{line}: a number out of range")  # pragma: no cover


# --- Google Cloud: GPUs are rows of their own, priced on top of a host VM -------------
#
# A host of a GPU family (a2, a3, a4, a4x, g2) comes with a fixed GPU: the offering in a
# zone is that host row plus the GPU row of the same accelerator and count in the same
# zone (price = host + GPU; spot = host spot + GPU spot when both exist). Hosts with no
# such GPU row are dropped: they are not CPU offerings. Other GPUs (T4, V100, P100, P4,
# K80, ...) attach to n1 hosts, following SkyPilot's rule (sky/catalog/gcp_catalog.py,
# ``list_accelerators``): the cheapest n1-standard/highmem/highcpu host in the zone with
# at least the GPU count's vCPU minimum and 4 GiB of memory per such vCPU. n1 hosts are
# also CPU offerings. TPU rows (``tpu-*``) are skipped: their names count TensorCores,
# not chips, and they need no host. GPU rows that find no host are dropped.

_GCP_GPU_FAMILIES: dict[str, str] = {
    "a2-highgpu": "A100",
    "a2-megagpu": "A100",
    "a2-ultragpu": "A100-80GB",
    "a3-highgpu": "H100",
    "a3-edgegpu": "H100",
    "a3-megagpu": "H100-MEGA",
    "a3-ultragpu": "H200",
    "a4-highgpu": "B200",
    "a4x-highgpu": "GB200",
    "g2-standard": "L4",
}
_GCP_FIXED_ACCELERATORS = frozenset(_GCP_GPU_FAMILIES.values())
# g2-standard-<vCPUs> -> L4 count (GCP's fixed G2 shapes)
_G2_L4: dict[int, int] = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
_GCP_TYPE = re.compile(r"([a-z0-9]+-[a-z]+)-(\d+)(g?)$")
_N1_PREFIXES = ("n1-standard-", "n1-highmem-", "n1-highcpu-")
# accelerator -> GPU count -> least host vCPUs; others: 8 per GPU
_N1_MIN_VCPUS: dict[str, dict[int, int]] = {
    "T4": {1: 4, 2: 8, 4: 48},
    "K80": {1: 4, 2: 8, 4: 16, 8: 32, 16: 64},
}
_N1_MEMORY_PER_VCPU = 4.0
_DIGITS = 8  # host + GPU sums are rounded to this many decimals (no 44.260960000000004)


def gcp_host_gpus(instance_type: str) -> tuple[str, int] | None:
    """The fixed (accelerator, count) of a GCP GPU-family host; None for other types.

    A GPU-family name whose count cannot be read gives count 0 (it matches no GPU row).
    """
    m = _GCP_TYPE.match(instance_type)
    if m is None:
        return None
    family, number, g = m.groups()
    acc = _GCP_GPU_FAMILIES.get(family)
    if acc is None:
        return None
    if family == "g2-standard":
        return acc, _G2_L4.get(int(number), 0)
    return acc, int(number) if g else 0


def n1_min_vcpus(accelerator: str, count: int) -> int:
    """Least vCPUs of the n1 host SkyPilot pairs with ``count`` x ``accelerator``."""
    return _N1_MIN_VCPUS.get(accelerator, {}).get(count, 8 * count)


class GcpJoin:
    """Collects the rows of one GCP vms.csv and joins hosts with GPU rows."""

    def __init__(self) -> None:
        self._plain: list[Offering] = []
        self._gpu_rows: list[Offering] = []
        self._fixed_hosts: dict[tuple[str, str, str, int], list[Offering]] = defaultdict(list)
        self._n1_hosts: dict[tuple[str, str], list[Offering]] = defaultdict(list)

    def add(self, row: Offering) -> None:
        """Take one row of the file (as ``read_rows`` yields it)."""
        if not row.instance_type:
            if row.accelerator and not row.accelerator.lower().startswith("tpu"):
                self._gpu_rows.append(row)
            return
        fixed = None if row.accelerator else gcp_host_gpus(row.instance_type)
        if fixed is not None:
            self._fixed_hosts[(row.region, row.zone, *fixed)].append(row)
            return
        self._plain.append(row)
        if row.accelerator is None and row.instance_type.startswith(_N1_PREFIXES):
            self._n1_hosts[(row.region, row.zone)].append(row)

    def offerings(self) -> list[Offering]:
        """CPU rows (and self-describing GPU rows) in file order, then the joined ones."""
        out = list(self._plain)
        for gpu in self._gpu_rows:
            acc = gpu.accelerator
            assert acc is not None
            if acc in _GCP_FIXED_ACCELERATORS:
                key = (gpu.region, gpu.zone, acc, gpu.accelerator_count)
                hosts = self._fixed_hosts.get(key, [])
            else:
                host = self._n1_host(gpu)
                hosts = [] if host is None else [host]
            out.extend(_joined(host, gpu) for host in hosts)
        return out

    def _n1_host(self, gpu: Offering) -> Offering | None:
        assert gpu.accelerator is not None
        cpus = n1_min_vcpus(gpu.accelerator, gpu.accelerator_count)
        fits = [
            h
            for h in self._n1_hosts.get((gpu.region, gpu.zone), [])
            if h.vcpus >= cpus and h.memory_gib >= cpus * _N1_MEMORY_PER_VCPU
        ]
        return min(fits, key=lambda h: h.on_demand_price, default=None)


def _joined(host: Offering, gpu: Offering) -> Offering:
    """``host`` carrying ``gpu``: prices added, NVLink domain of the host with its GPUs."""
    spot = None
    if host.spot_price is not None and gpu.spot_price is not None:
        spot = round(host.spot_price + gpu.spot_price, _DIGITS)
    domain, per_domain = domain_for(host.instance_type, gpu.accelerator_count)
    return dataclasses.replace(
        host,
        accelerator=gpu.accelerator,
        accelerator_count=gpu.accelerator_count,
        on_demand_price=round(host.on_demand_price + gpu.on_demand_price, _DIGITS),
        spot_price=spot,
        nvlink_domain_gpus=domain,
        instances_per_domain=per_domain,
    )
