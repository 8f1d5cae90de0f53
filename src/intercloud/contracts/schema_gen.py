"""Published JSON Schemas of the contracts, demand and offers files.

``python -m intercloud.contracts.schema_gen`` rewrites ``contracts/schema/*.schema.json``;
a test asserts the committed files equal ``json_schemas()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from intercloud.contracts.planner_input import DemandFile, OffersFile
from intercloud.contracts.spec import ContractsFileSpec

SCHEMA_DIR = Path(__file__).with_name("schema")

_FILES: dict[str, tuple[type[BaseModel], str, str]] = {
    "contracts": (
        ContractsFileSpec,
        "intercloud contracts",
        "Contracts with cloud providers: commitments, discounts, ramps, reserved blocks and "
        "Capacity Blocks, and the provider preference (first: the primary partner).",
    ),
    "demand": (
        DemandFile,
        "intercloud capacity demand",
        "Monthly GPU-hour forecast by accelerator type and kind (training, inference).",
    ),
    "offers": (
        OffersFile,
        "intercloud capacity offers",
        "Pricing options per provider and accelerator type (USD per GPU-hour), availability "
        "ramps, committed-spend tiers and the diversification policy.",
    ),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Name -> JSON Schema (draft 2020-12)."""
    out: dict[str, dict[str, Any]] = {}
    for name, (model, title, text) in _FILES.items():
        out[name] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://intercloud.dev/schema/{name}.schema.json",
            "title": title,
            "description": text,
            **model.model_json_schema(),
        }
    return out


def render(name: str) -> str:
    """One schema file's exact text."""
    return json.dumps(json_schemas()[name], indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in _FILES:
        path = directory / f"{name}.schema.json"
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)
