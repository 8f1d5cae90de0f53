"""SkyPilot-format catalogs with figures no plan can use (negative, infinite, NaN, or so
large that a plan's cost overflows) or a folder of an unknown provider are refused with
file, line and column named."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercloud.catalog.errors import CatalogError
from intercloud.catalog.skypilot import SKYPILOT_CLOUDS, load_skypilot_dir

HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region"
GOOD = "t.small,,,2,8,0.1,0.05,r1"


def _write(root: Path, text: str, cloud: str = "aws") -> Path:
    (root / cloud).mkdir(parents=True, exist_ok=True)
    (root / cloud / "vms.csv").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("row", "column", "cell"),
    [
        ("t.x,,,2,8,-0.1,0.05,r1", "Price", "-0.1"),
        ("t.x,,,2,8,inf,0.05,r1", "Price", "inf"),
        ("t.x,,,2,8,1e309,0.05,r1", "Price", "1e309"),
        ("t.x,,,2,8,0.1,-0.01,r1", "SpotPrice", "-0.01"),
        ("t.x,,,2,8,0.1,Infinity,r1", "SpotPrice", "Infinity"),
        ("t.x,,,-2,8,0.1,0.05,r1", "vCPUs", "-2"),
        ("t.x,,,nan,8,0.1,0.05,r1", "vCPUs", "nan"),
        ("t.x,,,2,-inf,0.1,0.05,r1", "MemoryGiB", "-inf"),
        ("t.x,,,2,NaN,0.1,0.05,r1", "MemoryGiB", "NaN"),
        ("t.g,H100,-8,2,8,0.1,0.05,r1", "AcceleratorCount", "-8"),
        # finite, but a plan multiplies them by nodes and hours: inf USD, "Infinity" JSON
        ("t.x,,,2,8,1.7e308,0.05,r1", "Price", "1.7e308"),
        ("t.x,,,2,8,0.1,1e13,r1", "SpotPrice", "1e13"),
        ("t.x,,,1e300,8,0.1,0.05,r1", "vCPUs", "1e300"),
        ("t.x,,,2,1000001,0.1,0.05,r1", "MemoryGiB", "1000001"),
        ("t.g,H100,1e300,2,8,0.1,0.05,r1", "AcceleratorCount", "1e300"),
        ("t.g,H100,1025,2,8,0.1,0.05,r1", "AcceleratorCount", "1025"),
    ],
)
def test_figures_out_of_range(tmp_path: Path, row: str, column: str, cell: str) -> None:
    with pytest.raises(CatalogError) as info:
        load_skypilot_dir(_write(tmp_path, f"{HEADER}\n{GOOD}\n{row}\n"))
    assert f"aws/vms.csv:3: column {column!r}: {cell!r} must be a number from 0 to " in str(
        info.value
    )


def test_largest_figures_are_read(tmp_path: Path) -> None:
    row = "t.g,H100,1024,1000000,1000000,1e12,1e12,r1"
    (o,) = load_skypilot_dir(_write(tmp_path, f"{HEADER}\n{row}\n")).offerings
    assert (o.accelerator_count, o.vcpus, o.on_demand_price) == (1024, 1e6, 1e12)


def test_a_field_over_the_csv_limit_is_one_line(tmp_path: Path) -> None:
    """A field over csv's size limit (50 MB of NUL bytes, say): CatalogError naming the file."""
    text = f"{HEADER}\nt.x,,,2,8,0.1,0.05,{'r' * 200_000}\n"
    with pytest.raises(CatalogError, match=r"aws/vms\.csv: not a CSV catalog \(") as info:
        load_skypilot_dir(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_unpriced_rows_are_still_skipped(tmp_path: Path) -> None:
    text = f"{HEADER}\n{GOOD}\nt.x,,,2,8,nan,0.05,r1\nt.y,,,2,8,,0.05,r1\nt.z,,,2,8,0.2,nan,r1\n"
    cat = load_skypilot_dir(_write(tmp_path, text))
    assert [(o.instance_type, o.spot_price) for o in cat.offerings] == [
        ("t.small", 0.05),
        ("t.z", None),
    ]


def test_unknown_provider_folder(tmp_path: Path) -> None:
    _write(tmp_path, f"{HEADER}\n{GOOD}\n")
    _write(tmp_path, f"{HEADER}\n{GOOD}\n", cloud="mycloud")
    with pytest.raises(CatalogError, match=r"mycloud: unknown provider 'mycloud' \(known: "):
        load_skypilot_dir(tmp_path)
    with pytest.raises(CatalogError, match="unknown provider 'nope'"):
        load_skypilot_dir(tmp_path, clouds=["nope"])


def test_skypilot_cloud_names_and_aliases_are_known(tmp_path: Path) -> None:
    assert {"aws", "gcp", "azure", "oci", "lambda", "runpod", "nebius"} <= SKYPILOT_CLOUDS
    _write(tmp_path, f"{HEADER}\n{GOOD}\n", cloud="runpod")
    _write(tmp_path, f"{HEADER}\n{GOOD}\n", cloud="Google")
    assert load_skypilot_dir(tmp_path).providers == ("gcp", "runpod")
