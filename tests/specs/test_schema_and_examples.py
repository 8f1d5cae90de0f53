"""The committed JSON Schema is current, and every example spec loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from intercloud.specs import json_schema, load_spec_file
from intercloud.specs.schema_gen import SCHEMA_PATH, render

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _is_workload_spec(path: Path) -> bool:
    """Workload specs (native kinds or SkyPilot tasks); other examples (contracts...) skip."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return True
    return data.get("kind", "training") in ("training", "service", "batch")


SPEC_EXAMPLES = sorted(p for p in EXAMPLES.glob("*.y*ml") if _is_workload_spec(p))


def test_committed_schema_is_current() -> None:
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert json.loads(committed) == json_schema(), "run: python -m intercloud.specs.schema_gen"
    assert committed == render()


def test_schema_documents_every_field() -> None:
    schema = json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"TrainingSpec", "ServiceSpec", "BatchSpec"} <= set(schema["$defs"])
    for name, definition in schema["$defs"].items():
        for field, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"
        assert definition.get("additionalProperties") is False, name


def test_examples_exist() -> None:
    names = {p.name for p in SPEC_EXAMPLES}
    assert {"train-llama-gang.yaml", "train-nvl72.yaml", "serve-llm.yaml"} <= names
    assert {"batch-cpu.yaml", "skypilot-task.yaml"} <= names


@pytest.mark.parametrize("path", SPEC_EXAMPLES, ids=lambda p: p.stem)
def test_example_loads(path: Path) -> None:
    loaded = load_spec_file(path)
    assert loaded.workload.name
    try:
        from intercloud.catalog.bundled import load_bundled
    except ImportError:
        return
    assert load_spec_file(path, load_bundled()).workload == loaded.workload
