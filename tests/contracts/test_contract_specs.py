"""Contract specs: the seed example loads; every bad input is one line naming its field."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from intercloud.catalog import load_bundled
from intercloud.contracts.spec import load_contracts, load_contracts_text
from intercloud.model import Contract, ReservedBlock
from intercloud.specs.errors import SpecError

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "contracts" / "seed.yaml"


def test_seed_scenario_loads_with_the_catalog() -> None:
    pf = load_contracts(SEED, load_bundled())
    assert pf.preference == ("azure", "aws", "gcp", "oci")
    assert pf.primary == "azure"
    aws = next(c for c in pf.contracts if c.provider == "aws")
    assert aws.committed_usd == 38.0e9
    assert aws.end - aws.start >= timedelta(days=7 * 365)
    assert aws.ramp_gpus(date(2025, 10, 1)) is None
    assert aws.ramp_gpus(date(2026, 8, 1)) == 100000
    assert aws.ramp_gpus(date(2027, 1, 1)) == 150000
    blocks = [b for b in aws.blocks if b.capacity_block]
    assert len(blocks) == 4 and all(b.payment == "upfront" for b in blocks)
    b0 = blocks[0]
    assert aws.usable_end(b0) == datetime(2026, 3, 15, tzinfo=UTC) - timedelta(minutes=30)
    # The early end is paid for: 64 instances x 42 days x 24 h x price.
    assert aws.block_usd(b0) == pytest.approx(64 * 42 * 24 * 31.46)


def _base() -> dict:
    return {
        "contracts": [
            {
                "name": "c",
                "provider": "aws",
                "term": {"start": "2026-01-01", "end": "2027-01-01"},
                "commitment": {"total_usd": 1.0e9},
                "reserved_blocks": [
                    {
                        "instance_type": "p5.48xlarge",
                        "region": "us-east-1",
                        "count": 10,
                        "start": "2026-01-01",
                        "end": "2026-07-01",
                        "usd_per_node_hour": 40.0,
                    }
                ],
                "capacity_blocks": [
                    {
                        "instance_type": "p5.48xlarge",
                        "region": "us-east-1",
                        "count": 64,
                        "start": "2026-02-01",
                        "end": "2026-02-15",
                        "usd_per_node_hour": 31.46,
                    }
                ],
            }
        ]
    }


def _load(doc: dict) -> None:
    load_contracts_text(yaml.safe_dump(doc), load_bundled(), "x.yaml")


def test_base_document_is_valid() -> None:
    _load(_base())


def _set(doc: dict, path: str, value: object) -> dict:
    keys = path.split(".")
    node = doc
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return doc


CASES = [
    ("contracts.0.provider", "amazn", "contracts[0].provider", "unknown provider"),
    ("contracts.0.term.end", "2025-12-01", "contracts[0].term.end", "after start"),
    ("contracts.0.commitment.total_usd", -5, "contracts[0].commitment.total_usd", "greater than 0"),
    ("contracts.0.commitment.total_usd", 0, "contracts[0].commitment.total_usd", "greater than 0"),
    ("contracts.0.discount", 1.5, "contracts[0].discount", "less than 1"),
    (
        "contracts.0.reserved_blocks.0.count",
        0,
        "contracts[0].reserved_blocks[0].count",
        "greater than 0",
    ),
    (
        "contracts.0.reserved_blocks.0.instance_type",
        "p5.48xlarg",
        "contracts[0].reserved_blocks[0].instance_type",
        "did you mean 'p5.48xlarge'",
    ),
    (
        "contracts.0.reserved_blocks.0.region",
        "mars-1",
        "contracts[0].reserved_blocks[0].region",
        "not offered in 'mars-1'",
    ),
    (
        "contracts.0.reserved_blocks.0.end",
        "2027-06-01",
        "contracts[0].reserved_blocks[0].start",
        "outside the contract term",
    ),
    (
        "contracts.0.capacity_blocks.0.count",
        65,
        "contracts[0].capacity_blocks[0].count",
        "at most 64",
    ),
    (
        "contracts.0.capacity_blocks.0.end",
        "2026-09-01",
        "contracts[0].capacity_blocks[0].end",
        "1 to 182 days",
    ),
    (
        "contracts.0.capacity_blocks.0.payment",
        "monthly",
        "contracts[0].capacity_blocks[0].payment",
        "unknown field",
    ),
    ("contracts.0.surprise", 1, "contracts[0].surprise", "unknown field"),
]


@pytest.mark.parametrize(("path", "value", "field", "words"), CASES)
def test_bad_value_names_its_field(path: str, value: object, field: str, words: str) -> None:
    with pytest.raises(SpecError) as exc:
        _load(_set(_base(), path, value))
    assert exc.value.field == field
    assert words in exc.value.problem
    assert "\n" not in str(exc.value)


def test_overlapping_reserved_blocks_are_refused() -> None:
    doc = _base()
    rb = dict(doc["contracts"][0]["reserved_blocks"][0])
    rb["start"], rb["end"] = "2026-06-01", "2026-09-01"
    doc["contracts"][0]["reserved_blocks"].append(rb)
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "contracts[0].reserved_blocks[1]"
    assert "overlaps reserved_blocks[0]" in exc.value.problem


def test_more_than_256_capacity_block_instances_at_once() -> None:
    doc = _base()
    cb = doc["contracts"][0]["capacity_blocks"][0]
    for _ in range(4):  # Capacity Blocks of one type and place may overlap
        doc["contracts"][0]["capacity_blocks"].append(dict(cb))
    doc["contracts"][0]["capacity_blocks"][4]["count"] = 1  # 257
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "contracts[0].capacity_blocks[4].count"
    assert "257 instances" in exc.value.problem
    # Back to back (one ends as the next starts) is not "at once".
    doc["contracts"][0]["capacity_blocks"][4].update(start="2026-02-15", end="2026-02-20")
    _load(doc)


def test_yearly_minimums_above_the_total() -> None:
    doc = _base()
    doc["contracts"][0]["commitment"]["yearly_minimums_usd"] = [2.0e9]
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "contracts[0].commitment.yearly_minimums_usd"


def test_ramp_months_must_increase_and_lie_in_the_term() -> None:
    doc = _base()
    doc["contracts"][0]["ramp"] = [
        {"month": "2026-05", "gpus": 10},
        {"month": "2026-03", "gpus": 5},
    ]
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "contracts[0].ramp[1].month"
    doc["contracts"][0]["ramp"] = [{"month": "2026-13", "gpus": 10}]
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "contracts[0].ramp[0].month"


def test_duplicate_names_and_preference() -> None:
    doc = _base()
    doc["contracts"].append(doc["contracts"][0])
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "contracts[1].name"
    doc = _base()
    doc["preference"] = ["aws", "amazon"]
    with pytest.raises(SpecError) as exc:
        _load(doc)
    assert exc.value.field == "preference[1]"


def test_minimal_contract_of_the_scheduler_keeps_its_meaning() -> None:
    """Blocks without their own window or price take the contract's (the scheduler's use)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    c = Contract(
        "c",
        "aws",
        (ReservedBlock("us-east-1", "", "p5.48xlarge", 2),),
        start,
        start + timedelta(hours=10),
        30.0,
    )
    assert c.total_usd == pytest.approx(2 * 10 * 30.0)
    assert c.usable_end(c.blocks[0]) == c.end
    assert c.active(start) and not c.active(c.end)


def test_a_provider_the_catalog_does_not_describe_is_not_checked_against_it() -> None:
    """The daemon and ``contracts status`` load with the catalog: a plugin's own provider
    (``sim`` here: no catalog rows) keeps its own instance types, a catalog provider not."""
    doc = _base()
    c = doc["contracts"][0]
    c["provider"] = "sim"
    c["capacity_blocks"] = []
    c["reserved_blocks"][0]["instance_type"] = "sim.gpu8"
    pf = load_contracts_text(yaml.safe_dump(doc), load_bundled(), "x.yaml", ["sim"])
    assert pf.contracts[0].blocks[0].instance_type == "sim.gpu8"
    c["provider"] = "aws"
    with pytest.raises(SpecError, match=r"reserved_blocks\[0\]\.instance_type: aws has no"):
        load_contracts_text(yaml.safe_dump(doc), load_bundled(), "x.yaml")


@pytest.mark.parametrize("value", [2025, "2025", "1700000000", True, 2025.5, "next year", None])
def test_a_date_is_a_date_not_seconds_since_1970(value: object) -> None:
    """pydantic's lax dates read a number as a Unix time: ``start: 2025`` was 1970-01-01."""
    for where in ("term", "block"):
        doc = _base()
        c = doc["contracts"][0]
        target = c["term"] if where == "term" else c["reserved_blocks"][0]
        target["start"] = value
        field = "term.start" if where == "term" else "reserved_blocks[0].start"
        with pytest.raises(SpecError, match=re.escape(field)) as exc:
            _load(doc)
        assert exc.value.field == f"contracts[0].{field}"
        assert "date" in exc.value.problem or "null" in exc.value.problem


def test_dates_and_iso_strings_still_parse() -> None:
    doc = _base()
    doc["contracts"][0]["term"]["start"] = "2026-01-01T00:00:00Z"
    doc["contracts"][0]["reserved_blocks"][0]["end"] = datetime(2026, 7, 1, tzinfo=UTC)
    _load(doc)
