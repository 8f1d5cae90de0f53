from __future__ import annotations

import csv
import importlib.util
import random
from collections import Counter
from pathlib import Path

import pytest

from intercloud.catalog import Catalog
from intercloud.catalog.errors import CatalogError
from intercloud.catalog.loader import load_catalog
from intercloud.catalog.skypilot import (
    REQUIRED,
    gcp_host_gpus,
    load_skypilot_dir,
    n1_min_vcpus,
)
from intercloud.model import Offering

MINI = Path(__file__).parent / "fixtures" / "skypilot_mini"


def _one(cat: Catalog, **fields: object) -> Offering:
    hits = [o for o in cat.offerings if all(getattr(o, k) == v for k, v in fields.items())]
    assert len(hits) == 1, (fields, hits)
    return hits[0]


def _none(cat: Catalog, **fields: object) -> None:
    assert not [o for o in cat.offerings if all(getattr(o, k) == v for k, v in fields.items())]


# --- the real subset (../shared/data) ---------------------------------------------------


@pytest.fixture(scope="module")
def subset(skypilot_subset: Path) -> Catalog:
    return load_skypilot_dir(skypilot_subset)


def test_subset_counts_per_provider(subset: Catalog) -> None:
    # gcp: 16 n4-standard-16 CPU rows + a3-highgpu-8g joined with H100:8 in 3 zones;
    # its 19 a2-highgpu-8g hosts have no A100 rows in the subset and are dropped.
    assert Counter(o.provider for o in subset.offerings) == {
        "aws": 157,
        "oci": 131,
        "gcp": 19,
        "lambda": 10,
    }
    _none(subset, instance_type="a2-highgpu-8g")
    assert len(subset.sources) == 4


def test_subset_gcp_h100_join(subset: Catalog) -> None:
    o = _one(subset, provider="gcp", zone="us-west1-a", accelerator="H100")
    assert o.instance_type == "a3-highgpu-8g"
    assert o.accelerator_count == 8
    assert o.on_demand_price == pytest.approx(9.46006 + 33.60609)
    assert o.on_demand_price == 43.06615
    assert o.spot_price == pytest.approx(2.88933 + 23.9408)
    assert (o.vcpus, o.memory_gib, o.region) == (208.0, 1872.0, "us-west1")
    assert (o.nvlink_domain_gpus, o.instances_per_domain) == (8, 1)
    assert o.egress_usd_per_gb == 0.12
    gcp_gpu = [x for x in subset.offerings if x.provider == "gcp" and x.is_gpu]
    assert sorted(x.zone for x in gcp_gpu) == ["us-west1-a", "us-west1-b", "us-west4-a"]


def test_subset_p5_all_regions(subset: Catalog, skypilot_subset: Path) -> None:
    with (skypilot_subset / "aws" / "vms.csv").open(newline="") as fh:
        raw = [r for r in csv.DictReader(fh) if r["InstanceType"] == "p5.48xlarge"]
    p5 = [o for o in subset.offerings if o.instance_type == "p5.48xlarge"]
    assert len(p5) == len(raw) == 33
    assert {o.region for o in p5} == {r["Region"] for r in raw}
    assert {(o.region, o.zone) for o in p5} == {(r["Region"], r["AvailabilityZone"]) for r in raw}
    for o in p5:
        assert (o.accelerator, o.accelerator_count) == ("H100", 8)
        assert (o.nvlink_domain_gpus, o.instances_per_domain) == (8, 1)
        assert (o.network_gbps, o.fabric) == (3200.0, "EFA")
        assert o.egress_usd_per_gb == 0.09


def test_subset_oci_gb200_domain(subset: Catalog) -> None:
    gb200 = [o for o in subset.offerings if o.instance_type == "BM.GPU.GB200.4"]
    assert len(gb200) == 2
    for o in gb200:
        assert (o.accelerator, o.accelerator_count) == ("GB200", 4)
        assert (o.nvlink_domain_gpus, o.instances_per_domain) == (72, 18)
        assert o.spot_price is None
        assert o.fabric == "RoCE"


@pytest.mark.parametrize("cloud", ["aws", "oci", "lambda"])
def test_subset_rows_match_the_file(subset: Catalog, skypilot_subset: Path, cloud: str) -> None:
    """Outside GCP every priced row is one offering, prices and spot taken verbatim."""
    with (skypilot_subset / cloud / "vms.csv").open(newline="") as fh:
        raw = [r for r in csv.DictReader(fh) if r["Price"]]
    got = [o for o in subset.offerings if o.provider == cloud]
    assert len(got) == len(raw)
    for o, r in zip(got, raw, strict=True):
        assert o.instance_type == r["InstanceType"]
        assert o.on_demand_price == float(r["Price"])
        assert o.spot_price == (float(r["SpotPrice"]) if r["SpotPrice"] else None)
        assert o.zone == r.get("AvailabilityZone", "")


def test_subset_lambda_without_zone_column(subset: Catalog) -> None:
    lam = [o for o in subset.offerings if o.provider == "lambda"]
    assert {o.zone for o in lam} == {""}
    assert all(o.spot_price is None for o in lam)
    v100 = _one(subset, provider="lambda", instance_type="gpu_8x_v100", region="us-east-1")
    assert (v100.accelerator, v100.accelerator_count) == ("V100", 8)
    a6000 = _one(subset, provider="lambda", instance_type="gpu_4x_a6000", region="us-west-1")
    assert a6000.accelerator == "A6000"  # unknown to intercloud: SkyPilot's spelling kept


def test_subset_cheapest_cpu_8_matches_skypilot(subset: Catalog) -> None:
    cpu8 = [o for o in subset.offerings if not o.is_gpu and o.vcpus >= 8]
    best = min(cpu8, key=lambda o: o.on_demand_price)
    assert (best.provider, best.instance_type, best.on_demand_price) == (
        "oci",
        "VM.Standard.E4.Flex$_8_32",
        0.148,
    )


# --- the mini fixture (invented rows) ----------------------------------------------------


@pytest.fixture(scope="module")
def mini() -> Catalog:
    return load_skypilot_dir(MINI)


def test_mini_providers_and_common_passed_over(mini: Catalog) -> None:
    assert Counter(o.provider for o in mini.offerings) == {
        "aws": 4,
        "azure": 4,
        "gcp": 12,
        "lambda": 2,
        "oci": 2,
    }
    assert not any("common" in s for s in mini.sources)


def test_mini_skips_unpriced_and_fractional(mini: Catalog) -> None:
    for name in ("tst.frac", "tst.noprice", "tst.nanprice"):
        _none(mini, instance_type=name)


def test_mini_fields(mini: Catalog) -> None:
    p5 = _one(mini, instance_type="p5.48xlarge")
    assert p5.spot_price is None
    assert p5.arch == "x86_64"
    west = _one(mini, instance_type="tst.cpu4", region="us-west-2")
    assert (west.spot_price, west.arch, west.accelerator, west.accelerator_count) == (
        None,
        "x86_64",  # empty Arch cell
        None,
        0,
    )
    gb = _one(mini, instance_type="u-p6e-gb200x72")
    assert (gb.arch, gb.nvlink_domain_gpus, gb.instances_per_domain) == ("arm64", 72, 18)
    nd = _one(mini, instance_type="Standard_ND96isr_H100_v5")
    assert (nd.provider, nd.zone, nd.fabric, nd.network_gbps) == ("azure", "", "InfiniBand", 3200.0)
    assert nd.egress_usd_per_gb == 0.087
    assert nd.arch == "x86_64"  # no Arch column
    assert _one(mini, instance_type="Standard_TST_Z9").accelerator == "Z9000"
    assert _one(mini, instance_type="Standard_TST_A80").accelerator == "A100-80GB"
    assert _one(mini, instance_type="BM.GPU.GB200.4").instances_per_domain == 18


def test_mini_gcp_fixed_family_join(mini: Catalog) -> None:
    h100 = _one(mini, provider="gcp", accelerator="H100")
    assert (h100.instance_type, h100.zone) == ("a3-highgpu-8g", "us-central1-a")
    assert (h100.on_demand_price, h100.spot_price) == (40.0, 23.0)
    # host without a GPU row in its zone (a3 in -b, a2 with no A100 rows): dropped;
    # GPU row without a host (H100 in -c): dropped.
    _none(mini, instance_type="a3-highgpu-8g", zone="us-central1-b")
    _none(mini, instance_type="a2-highgpu-8g")
    _none(mini, provider="gcp", zone="us-central1-c")
    l4 = sorted(
        (o.instance_type, o.accelerator_count, o.on_demand_price, o.spot_price)
        for o in mini.offerings
        if o.accelerator == "L4"
    )
    assert l4 == [
        ("g2-standard-24", 2, 1.6, 0.7),
        ("g2-standard-4", 1, 0.7, 0.3),
        ("g2-standard-8", 1, 0.8, 0.35),
    ]
    assert all(o.instance_type for o in mini.offerings)


def test_mini_gcp_n1_hosts(mini: Catalog) -> None:
    # T4:1 needs 4 vCPUs and 16 GiB: n1-standard-4 (15 GiB) is too small, n1-standard-8
    # is the cheapest fit. V100:1 needs 8 vCPUs and 32 GiB: n1-highmem-8. V100:2 needs
    # 16 vCPUs and 64 GiB: nothing fits, dropped.
    t4 = _one(mini, accelerator="T4")
    assert (t4.instance_type, t4.on_demand_price, t4.spot_price) == ("n1-standard-8", 0.73, None)
    v100 = _one(mini, accelerator="V100")
    assert (v100.instance_type, v100.accelerator_count) == ("n1-highmem-8", 1)
    assert (v100.on_demand_price, v100.spot_price) == (2.97, 1.1)
    # n1 hosts stay CPU offerings too; TPU rows are skipped
    n1_cpu = [o for o in mini.offerings if o.instance_type.startswith("n1-") and not o.is_gpu]
    assert len(n1_cpu) == 5
    assert not any((o.accelerator or "").lower().startswith("tpu") for o in mini.offerings)


def test_gcp_host_gpus_and_n1_rule() -> None:
    assert gcp_host_gpus("a2-highgpu-4g") == ("A100", 4)
    assert gcp_host_gpus("a2-megagpu-16g") == ("A100", 16)
    assert gcp_host_gpus("a2-ultragpu-2g") == ("A100-80GB", 2)
    assert gcp_host_gpus("a3-megagpu-8g") == ("H100-MEGA", 8)
    assert gcp_host_gpus("a3-edgegpu-8g") == ("H100", 8)
    assert gcp_host_gpus("a3-ultragpu-8g") == ("H200", 8)
    assert gcp_host_gpus("a4-highgpu-8g") == ("B200", 8)
    assert gcp_host_gpus("a4x-highgpu-4g") == ("GB200", 4)
    assert gcp_host_gpus("g2-standard-48") == ("L4", 4)
    assert gcp_host_gpus("g2-standard-96") == ("L4", 8)
    assert gcp_host_gpus("g2-standard-6") == ("L4", 0)  # not a G2 shape: matches nothing
    assert gcp_host_gpus("n4-standard-16") is None
    assert gcp_host_gpus("n1-standard-8") is None
    assert n1_min_vcpus("T4", 4) == 48
    assert n1_min_vcpus("P100", 2) == 16
    assert n1_min_vcpus("P4", 1) == 8


def test_header_order_does_not_matter(tmp_path: Path, mini: Catalog) -> None:
    rng = random.Random(7)
    for cloud in ("aws", "gcp", "lambda"):
        with (MINI / cloud / "vms.csv").open(newline="") as fh:
            reader = csv.DictReader(fh)
            fields = list(reader.fieldnames or [])
            rows = list(reader)
        rng.shuffle(fields)
        (tmp_path / cloud).mkdir()
        with (tmp_path / cloud / "vms.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fields)
            writer.writeheader()
            writer.writerows(rows)
    shuffled = load_skypilot_dir(tmp_path)
    expected = [o for o in mini.offerings if o.provider in ("aws", "gcp", "lambda")]
    assert list(shuffled.offerings) == expected


def test_clouds_argument(mini: Catalog) -> None:
    only = load_skypilot_dir(MINI, clouds=["oci", "lambda"])
    assert only.providers == ("oci", "lambda")
    assert len(only) == 4


# --- errors ------------------------------------------------------------------------------

HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region"
GOOD = "t.small,,,2,8,0.1,0.05,r1"


def _write(root: Path, text: str, cloud: str = "aws") -> Path:
    (root / cloud).mkdir(parents=True, exist_ok=True)
    (root / cloud / "vms.csv").write_text(text, encoding="utf-8")
    return root


def _error(root: Path, clouds: list[str] | None = None) -> str:
    with pytest.raises(CatalogError) as info:
        load_skypilot_dir(root, clouds)
    msg = str(info.value)
    assert "\n" not in msg
    assert isinstance(info.value, ValueError)
    return msg


def test_error_missing_folder(tmp_path: Path) -> None:
    assert str(tmp_path / "nope") in _error(tmp_path / "nope")


def test_error_folder_without_catalog(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    assert "no <cloud>/vms.csv" in _error(tmp_path)


def test_error_requested_cloud_missing(tmp_path: Path) -> None:
    _write(tmp_path, f"{HEADER}\n{GOOD}\n")
    msg = _error(tmp_path, clouds=["aws", "gcp"])
    assert str(tmp_path / "gcp" / "vms.csv") in msg


def test_error_empty_file(tmp_path: Path) -> None:
    assert "vms.csv:1: empty file" in _error(_write(tmp_path, ""))


@pytest.mark.parametrize("column", REQUIRED)
def test_error_missing_column(tmp_path: Path, column: str) -> None:
    header = [c for c in HEADER.split(",") if c != column]
    msg = _error(_write(tmp_path, ",".join(header) + "\n"))
    assert msg.endswith(f"aws/vms.csv:1: missing required column {column!r}")


@pytest.mark.parametrize(
    ("column", "row"),
    [
        ("Price", "t.small,,,2,8,abc,0.05,r1"),
        ("SpotPrice", "t.small,,,2,8,0.1,n/a,r1"),
        ("AcceleratorCount", "t.gpu,H100,eight,2,8,0.1,0.05,r1"),
        ("AcceleratorCount", "t.gpu,H100,inf,2,8,0.1,0.05,r1"),
        ("vCPUs", "t.small,,,two,8,0.1,0.05,r1"),
        ("MemoryGiB", "t.small,,,2,8GB,0.1,0.05,r1"),
    ],
)
def test_error_unreadable_number(tmp_path: Path, column: str, row: str) -> None:
    msg = _error(_write(tmp_path, f"{HEADER}\n{GOOD}\n{row}\n"))
    bad = row.split(",")[HEADER.split(",").index(column)]
    assert msg.endswith(f"aws/vms.csv:3: column {column!r}: cannot read {bad!r} as a number")


def test_error_line_number_counts_quoted_newlines(tmp_path: Path) -> None:
    header = HEADER + ",GpuInfo"
    text = f'{header}\n{GOOD},"two\nlines"\nt.small,,,2,8,x,,r1,\n'
    assert "aws/vms.csv:4: column 'Price'" in _error(_write(tmp_path, text))


def test_error_short_row(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, f"{HEADER}\n{GOOD}\nt.small,,,2\n"))
    assert msg.endswith("aws/vms.csv:3: expected 8 fields, found 4")


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    cat = load_skypilot_dir(_write(tmp_path, f"{HEADER}\n\n{GOOD}\n\n"))
    assert len(cat) == 1


def test_error_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "vms.csv").write_bytes(HEADER.encode() + b"\nt\xff,,,2,8,1,,r\n")
    assert "not UTF-8" in _error(tmp_path)


# --- load_catalog ------------------------------------------------------------------------


def test_load_catalog_from_dir() -> None:
    cat = load_catalog(MINI)
    sky = load_skypilot_dir(MINI)
    assert cat.offerings[: len(sky)] == sky.offerings
    assert {o.provider for o in cat.offerings[len(sky) :]} <= {"local"}


def test_load_catalog_bad_dir(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        load_catalog(tmp_path / "missing")


@pytest.mark.skipif(
    importlib.util.find_spec("intercloud.catalog.bundled") is None,
    reason="intercloud.catalog.bundled not written yet",
)
def test_load_catalog_bundled() -> None:
    cat = load_catalog()
    assert isinstance(cat, Catalog)
    assert len(cat) > 0
