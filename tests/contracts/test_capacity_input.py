"""Demand and offers files: one-line errors naming the file and field; the published
JSON Schemas match the models and accept the examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from intercloud.contracts import schema_gen
from intercloud.contracts.planner_input import MAX_MONTHS, load_problem_text
from intercloud.specs.errors import SpecError

REPO = Path(__file__).resolve().parents[2]


def _demand() -> dict:
    return {
        "start": "2026-01",
        "demand": [
            {"accelerator": "H100", "kind": "training", "gpu_hours": [1.0, 2.0]},
            {"accelerator": "H100", "kind": "inference", "gpu_hours": [1.0, 2.0]},
        ],
    }


def _offers() -> dict:
    return {
        "providers": [
            {"provider": "aws", "offers": [{"accelerator": "H100", "on_demand": 4.0}]},
            {"provider": "gcp", "offers": [{"accelerator": "H100", "on_demand": 5.0}]},
        ],
        "policy": {"max_share": 0.6, "primary": "gcp", "primary_min_share": 0.3},
    }


def _load(demand: dict, offers: dict) -> None:
    load_problem_text(yaml.safe_dump(demand), yaml.safe_dump(offers), "d.yaml", "o.yaml")


def test_base_is_valid() -> None:
    _load(_demand(), _offers())


def _err(demand: dict, offers: dict) -> SpecError:
    with pytest.raises(SpecError) as exc:
        _load(demand, offers)
    assert "\n" not in str(exc.value)
    return exc.value


def test_demand_errors() -> None:
    d = _demand()
    d["start"] = "2026-13"
    e = _err(d, _offers())
    assert (e.source, e.field) == ("d.yaml", "start")
    d = _demand()
    d["demand"][1]["gpu_hours"] = [1.0]
    e = _err(d, _offers())
    assert e.field == "demand[1].gpu_hours" and "1 months, but demand[0] has 2" in e.problem
    d = _demand()
    d["demand"][0]["gpu_hours"] = [-1.0, 2.0]
    assert _err(d, _offers()).field == "demand[0].gpu_hours[0]"
    d = _demand()
    d["demand"][0]["accelerator"] = "H1000"
    e = _err(d, _offers())
    assert e.field == "demand[0].accelerator" and "unknown accelerator" in e.problem
    d = _demand()
    d["demand"][0]["gpu_hours"] = [1.0] * (MAX_MONTHS + 1)
    assert _err(d, _offers()).field == "demand[0].gpu_hours"
    d = _demand()
    d["demand"][1]["kind"] = "training"
    assert _err(d, _offers()).field == "demand[1]"
    d = _demand()
    d["demand"][0]["accelerator"] = d["demand"][1]["accelerator"] = "B200"
    e = _err(d, _offers())
    assert e.field == "demand[0].accelerator" and "no provider offers B200" in e.problem


def test_offers_errors() -> None:
    o = _offers()
    o["providers"][0]["offers"][0]["on_demand"] = 0
    e = _err(_demand(), o)
    assert (e.source, e.field) == ("o.yaml", "providers[0].offers[0].on_demand")
    o = _offers()
    o["providers"][0]["offers"][0]["spot"] = {"usd": 1.0, "availability": 1.5}
    assert _err(_demand(), o).field == "providers[0].offers[0].spot.availability"
    o = _offers()
    o["providers"][1]["provider"] = "aws"
    assert _err(_demand(), o).field == "providers[1].provider"
    o = _offers()
    o["providers"][0]["offers"][0] = {"accelerator": "H100"}
    e = _err(_demand(), o)
    assert e.field == "providers[0].offers[0]" and "no pricing option" in e.problem
    o = _offers()
    o["providers"][0]["commit_tiers"] = [
        {"commit_usd": 10.0, "discount": 0.2},
        {"commit_usd": 20.0, "discount": 0.1},
    ]
    assert _err(_demand(), o).field == "providers[0].commit_tiers[1]"
    o = _offers()
    o["providers"][0]["max_gpus"] = [
        {"month": "2026-05", "gpus": 1},
        {"month": "2026-02", "gpus": 2},
    ]
    assert _err(_demand(), o).field == "providers[0].max_gpus[1].month"
    o = _offers()
    o["policy"]["primary"] = "oci"
    e = _err(_demand(), o)
    assert e.field == "policy.primary" and "not among the providers" in e.problem
    o = _offers()
    o["policy"]["max_share"] = 0.4
    e = _err(_demand(), o)
    assert e.field == "policy.max_share" and "0.4 x 2 provider(s) is below 1" in e.problem
    o = _offers()
    o["policy"]["primary_min_share"] = 0.7
    assert _err(_demand(), o).field == "policy.primary_min_share"
    o = _offers()
    o["providers"][0]["offers"][0]["capacity_block"] = {"usd": 1.0, "gpus_per_instance": 0}
    assert _err(_demand(), o).field == "providers[0].offers[0].capacity_block.gpus_per_instance"


def test_schemas_are_current_and_accept_the_examples() -> None:
    for name in schema_gen.json_schemas():
        path = schema_gen.SCHEMA_DIR / f"{name}.schema.json"
        assert path.read_text(encoding="utf-8") == schema_gen.render(name), (
            f"{path} is stale: python -m intercloud.contracts.schema_gen"
        )
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
    examples = {
        "contracts": REPO / "examples" / "contracts" / "seed.yaml",
        "demand": REPO / "examples" / "capacity" / "demand.yaml",
        "offers": REPO / "examples" / "capacity" / "offers.yaml",
    }
    schemas = schema_gen.json_schemas()
    for name, path in examples.items():
        doc = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        jsonschema.validate(doc, schemas[name])
