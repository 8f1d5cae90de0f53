"""The bundled catalog: required families and topology, price sanity, sources, loader errors,
and the ``local`` offering."""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from intercloud.catalog import Catalog, CatalogError, load_bundled, local_offerings
from intercloud.catalog.bundled import (
    COLUMNS,
    OFFERINGS_CSV,
    SOURCES_MD,
    bundled_row_sources,
    read_offerings_csv,
)
from intercloud.catalog.egress import internet_egress
from intercloud.catalog.local import parse_local_gpus
from intercloud.model import ACCELERATORS, Offering

# instance type -> (provider, accelerator, GPUs per instance, NVLink domain GPUs,
#                   instances per domain)
REQUIRED_GPU: dict[str, tuple[str, str, int, int, int]] = {
    "p4d.24xlarge": ("aws", "A100", 8, 8, 1),
    "p4de.24xlarge": ("aws", "A100-80GB", 8, 8, 1),
    "p5.48xlarge": ("aws", "H100", 8, 8, 1),
    "p5e.48xlarge": ("aws", "H200", 8, 8, 1),
    "p5en.48xlarge": ("aws", "H200", 8, 8, 1),
    "p6-b200.48xlarge": ("aws", "B200", 8, 8, 1),
    "u-p6e-gb200x72": ("aws", "GB200", 4, 72, 18),
    "u-p6e-gb200x36": ("aws", "GB200", 4, 36, 9),
    "g5.xlarge": ("aws", "A10G", 1, 1, 1),
    "g5.12xlarge": ("aws", "A10G", 4, 4, 1),
    "g5.48xlarge": ("aws", "A10G", 8, 8, 1),
    "g6.xlarge": ("aws", "L4", 1, 1, 1),
    "g6.12xlarge": ("aws", "L4", 4, 4, 1),
    "g6.48xlarge": ("aws", "L4", 8, 8, 1),
    "g6e.xlarge": ("aws", "L40S", 1, 1, 1),
    "Standard_ND96asr_v4": ("azure", "A100", 8, 8, 1),
    "Standard_ND96amsr_A100_v4": ("azure", "A100-80GB", 8, 8, 1),
    "Standard_ND96isr_H100_v5": ("azure", "H100", 8, 8, 1),
    "Standard_ND96isr_H200_v5": ("azure", "H200", 8, 8, 1),
    "Standard_ND128isr_NDR_GB200_v6": ("azure", "GB200", 4, 72, 18),
    "Standard_NC24ads_A100_v4": ("azure", "A100-80GB", 1, 1, 1),
    "Standard_NC40ads_H100_v5": ("azure", "H100", 1, 1, 1),
    "Standard_NC4as_T4_v3": ("azure", "T4", 1, 1, 1),
    "Standard_NV36ads_A10_v5": ("azure", "A10", 1, 1, 1),
    "a2-highgpu-1g": ("gcp", "A100", 1, 1, 1),
    "a2-highgpu-8g": ("gcp", "A100", 8, 8, 1),
    "a2-ultragpu-8g": ("gcp", "A100-80GB", 8, 8, 1),
    "a3-highgpu-8g": ("gcp", "H100", 8, 8, 1),
    "a3-megagpu-8g": ("gcp", "H100", 8, 8, 1),
    "a3-ultragpu-8g": ("gcp", "H200", 8, 8, 1),
    "a4-highgpu-8g": ("gcp", "B200", 8, 8, 1),
    "a4x-highgpu-4g": ("gcp", "GB200", 4, 72, 18),
    "g2-standard-4": ("gcp", "L4", 1, 1, 1),
    "g2-standard-48": ("gcp", "L4", 4, 4, 1),
    "BM.GPU.A100-v2.8": ("oci", "A100-80GB", 8, 8, 1),
    "BM.GPU4.8": ("oci", "A100", 8, 8, 1),
    "BM.GPU.H100.8": ("oci", "H100", 8, 8, 1),
    "BM.GPU.H200.8": ("oci", "H200", 8, 8, 1),
    "BM.GPU.B200.8": ("oci", "B200", 8, 8, 1),
    "BM.GPU.GB200.4": ("oci", "GB200", 4, 72, 18),
    "BM.GPU.MI300X.8": ("oci", "MI300X", 8, 8, 1),
    "VM.GPU.A10.1": ("oci", "A10", 1, 1, 1),
}
REQUIRED_CPU_PREFIXES: dict[str, tuple[str, ...]] = {
    "aws": ("m7i.", "c7i.", "m7g.", "c7g.", "m8g."),
    "azure": ("Standard_D", ),
    "gcp": ("n2-standard-", "c3-standard-", "n4-standard-"),
    "oci": ("VM.Standard.E5.Flex",),
}  # fmt: skip
FABRICS = {"EFA", "InfiniBand", "RoCE", "GPUDirect-TCPX", "GPUDirect-TCPXO", "ethernet"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_bundled()


def by_type(catalog: Catalog) -> dict[str, list[Offering]]:
    out: dict[str, list[Offering]] = {}
    for o in catalog.offerings:
        out.setdefault(o.instance_type, []).append(o)
    return out


def test_loads_and_is_cached(catalog: Catalog) -> None:
    assert 300 <= len(catalog) <= 2500
    assert load_bundled() is catalog
    assert set(catalog.providers) == {"aws", "azure", "gcp", "oci"}


def test_required_gpu_families_and_topology(catalog: Catalog) -> None:
    types = by_type(catalog)
    for itype, (provider, acc, n, domain, per_domain) in REQUIRED_GPU.items():
        rows = types.get(itype)
        assert rows, f"{itype} missing from the bundled catalog"
        for o in rows:
            got = (o.provider, o.accelerator, o.accelerator_count, o.nvlink_domain_gpus)
            assert got == (provider, acc, n, domain), itype
            assert o.instances_per_domain == per_domain, itype


def test_required_cpu_families(catalog: Catalog) -> None:
    for provider, prefixes in REQUIRED_CPU_PREFIXES.items():
        cpu = [o for o in catalog.offerings if o.provider == provider and not o.is_gpu]
        for prefix in prefixes:
            assert any(o.instance_type.startswith(prefix) for o in cpu), (provider, prefix)


def test_regions_per_family(catalog: Catalog) -> None:
    regions = {t: {o.region for o in rows} for t, rows in by_type(catalog).items()}
    assert len(regions["p5.48xlarge"]) >= 10
    assert len(regions["p4d.24xlarge"]) >= 10
    assert {"us-east-1", "us-west-2"} <= regions["p5.48xlarge"]
    assert "us-central1" in regions["a3-highgpu-8g"]
    assert len(regions["m7i.xlarge"]) >= 10


def test_ultraserver_shape(catalog: Catalog) -> None:
    for o in by_type(catalog)["u-p6e-gb200x72"]:
        assert o.arch == "arm64" and o.spot_price is None
        assert o.accelerator_count * o.instances_per_domain == 72


def test_topology_invariants(catalog: Catalog) -> None:
    for o in catalog.offerings:
        if o.is_gpu:
            assert o.nvlink_domain_gpus == o.accelerator_count * o.instances_per_domain, o
            if o.instances_per_domain == 1:
                assert o.nvlink_domain_gpus == o.accelerator_count, o
        else:
            assert o.accelerator is None and o.accelerator_count == 0, o
            assert o.nvlink_domain_gpus == 0 and o.instances_per_domain == 1, o


def test_prices_sane(catalog: Catalog) -> None:
    for o in catalog.offerings:
        assert o.on_demand_price > 0, o
        if o.spot_price is not None:
            assert 0 < o.spot_price < o.on_demand_price, o
        assert o.vcpus > 0 and o.memory_gib > 0, o
        assert o.egress_usd_per_gb == internet_egress(o.provider), o
        assert o.fabric in FABRICS, o
        assert o.arch in {"x86_64", "arm64"}, o


def test_known_price_points(catalog: Catalog) -> None:
    """README 'Facts worth building in': per-GPU list prices in the cheapest region."""

    def per_gpu(itype: str, region: str) -> float:
        (o,) = [o for o in by_type(catalog)[itype] if o.region == region]
        return o.on_demand_price / o.accelerator_count

    assert per_gpu("p5.48xlarge", "us-east-1") == pytest.approx(6.88)
    assert per_gpu("p5en.48xlarge", "us-east-1") == pytest.approx(7.91, abs=0.01)
    assert per_gpu("p6-b200.48xlarge", "us-east-1") == pytest.approx(14.24, abs=0.01)
    assert per_gpu("Standard_ND96isr_H100_v5", "eastus") == pytest.approx(12.29)
    assert per_gpu("a3-highgpu-8g", "us-central1") == pytest.approx(10.98, abs=0.01)
    assert per_gpu("a3-ultragpu-8g", "us-central1") == pytest.approx(10.44, abs=0.01)
    for itype, price in (("BM.GPU.H100.8", 10.0), ("BM.GPU.H200.8", 10.0),
                         ("BM.GPU.B200.8", 14.0), ("BM.GPU.GB200.4", 16.0)):  # fmt: skip
        assert per_gpu(itype, "us-ashburn-1") == pytest.approx(price)


def test_p5_spot_discount(catalog: Catalog) -> None:
    spot = [o for o in by_type(catalog)["p5.48xlarge"] if o.spot_price is not None]
    assert len(spot) >= 5
    for o in spot:
        assert o.spot_price is not None and o.spot_price <= 0.7 * o.on_demand_price, o


def test_accelerator_names_canonical(catalog: Catalog) -> None:
    assert catalog.accelerators <= set(ACCELERATORS)


def test_no_duplicate_places() -> None:
    with OFFERINGS_CSV.open(newline="") as f:
        keys = [(r["provider"], r["region"], r["zone"], r["instance_type"]) for r in
                csv.DictReader(f)]  # fmt: skip
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes


def test_every_source_key_is_documented(catalog: Catalog) -> None:
    documented = set(re.findall(r"^## `([a-z0-9-]+)`", SOURCES_MD.read_text(), re.M))
    used = set(bundled_row_sources().values())
    assert used and used <= documented, used - documented
    assert set(catalog.sources) == used
    assert len(bundled_row_sources()) == len(catalog)


def test_load_time_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Parse the whole file uncached; the time is printed, not asserted (machines vary)."""
    start = time.perf_counter()
    offerings, _ = read_offerings_csv(OFFERINGS_CSV)
    elapsed_ms = (time.perf_counter() - start) * 1000
    with capsys.disabled():
        print(f"\nbundled catalog: {len(offerings)} rows parsed in {elapsed_ms:.1f} ms")
    assert offerings


# --- loader errors ------------------------------------------------------------------------

GOOD = ("aws,us-east-1,,p5.48xlarge,H100,8,192,2048,55.04,19.25,8,1,3200,EFA,0.09,"
        "x86_64,aws-p5-2026-10")  # fmt: skip


def write(tmp_path: Path, *lines: str, header: str = ",".join(COLUMNS)) -> Path:
    path = tmp_path / "offerings.csv"
    path.write_text("\n".join((header, *lines)) + "\n")
    return path


def test_good_row_parses(tmp_path: Path) -> None:
    (o,), sources = read_offerings_csv(write(tmp_path, GOOD))
    assert o.instance_type == "p5.48xlarge" and o.spot_price == 19.25
    assert sources == ["aws-p5-2026-10"]


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("provider", "amazon", "unknown provider"),
        ("accelerator", "h100", "canonical"),
        ("accelerator_count", "eight", "whole number"),
        ("vcpus", "-1", ">"),
        ("on_demand_price", "abc", "number"),
        ("on_demand_price", "nan", "finite"),
        ("spot_price", "0", "> 0"),
        ("nvlink_domain_gpus", "72", "accelerator_count x instances_per_domain"),
        ("instances_per_domain", "0", ">= 1"),
        ("fabric", "NVLink", "unknown fabric"),
        ("arch", "sparc", "expected one of"),
        ("source", "", "must not be empty"),
        ("region", " us-east-1", "spaces"),
    ],
)
def test_bad_row_names_file_line_column(tmp_path: Path, column: str, value: str, why: str) -> None:
    fields = GOOD.split(",")
    fields[COLUMNS.index(column)] = value
    path = write(tmp_path, GOOD.replace("us-east-1", "us-east-2"), ",".join(fields))
    with pytest.raises(CatalogError) as err:
        read_offerings_csv(path)
    msg = str(err.value)
    assert msg.startswith("offerings.csv:3: column ") and f"'{column}'" in msg, msg
    assert why in msg, msg


def test_cpu_row_with_gpus_is_rejected(tmp_path: Path) -> None:
    row = "aws,us-east-1,,m7i.xlarge,,2,4,16,0.2,,0,1,12.5,ethernet,0.09,x86_64,k"
    with pytest.raises(CatalogError, match=r"offerings.csv:2: column 'accelerator_count'"):
        read_offerings_csv(write(tmp_path, row))


def test_duplicate_row_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r":3: column 'instance_type': duplicate of line 2"):
        read_offerings_csv(write(tmp_path, GOOD, GOOD))


def test_bad_header_and_width(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"offerings.csv:1: header"):
        read_offerings_csv(write(tmp_path, GOOD, header="provider,region"))
    with pytest.raises(CatalogError, match=r"offerings.csv:2: expected 17 columns, found 3"):
        read_offerings_csv(write(tmp_path, "aws,us-east-1,x"))
    with pytest.raises(CatalogError, match="cannot open"):
        read_offerings_csv(tmp_path / "missing.csv")


# --- local --------------------------------------------------------------------------------


def test_local_offering_describes_this_machine() -> None:
    (o,) = local_offerings(env={})
    # the same names as the local provider's default site
    assert (o.provider, o.region, o.zone, o.instance_type) == ("local", "local", "", "local-cpu")
    assert o.vcpus >= 1 and o.memory_gib > 0
    assert o.on_demand_price == 0.0 and o.spot_price is None and o.egress_usd_per_gb == 0.0
    assert not o.is_gpu and o.nvlink_domain_gpus == 0
    assert o.arch in {"x86_64", "arm64"}


def test_local_emulated_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERCLOUD_LOCAL_GPUS", "h100:8")
    (o,) = local_offerings()
    assert (o.accelerator, o.accelerator_count, o.nvlink_domain_gpus) == ("H100", 8, 8)
    assert o.instance_type == "local-H100x8"
    assert o.instances_per_domain == 1


@pytest.mark.parametrize("value", ["H100", "H100:0", "H100:x", "NoSuchGPU:8", ":8"])
def test_local_bad_gpu_spec(value: str) -> None:
    with pytest.raises(CatalogError, match="INTERCLOUD_LOCAL_GPUS"):
        local_offerings(env={"INTERCLOUD_LOCAL_GPUS": value})
    assert parse_local_gpus("") is None
