"""The published JSON Schema of the native spec format.

``python -m intercloud.specs.schema_gen`` rewrites ``specs/schema/workload.schema.json``;
a test asserts the committed file equals ``json_schema()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from intercloud.specs.native import BatchSpec, ServiceSpec, TrainingSpec

SCHEMA_PATH = Path(__file__).with_name("schema") / "workload.schema.json"
SCHEMA_ID = "https://intercloud.dev/schema/workload.schema.json"


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a native spec: one of training, service, batch by kind."""
    adapter: TypeAdapter[TrainingSpec | ServiceSpec | BatchSpec] = TypeAdapter(
        Annotated[TrainingSpec | ServiceSpec | BatchSpec, Field(discriminator="kind")]
    )
    body = adapter.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "intercloud workload spec",
        "description": (
            "A workload for the intercloud scheduler: kind training (a gang), service "
            "(autoscaled replicas) or batch (independent CPU tasks)."
        ),
        **body,
    }


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
