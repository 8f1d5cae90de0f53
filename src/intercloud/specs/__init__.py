"""Workload specs: YAML -> validated ``intercloud.model`` workloads.

Two formats are read: the native one (``kind: training | service | batch``, schema in
``specs/schema/workload.schema.json``) and SkyPilot task YAML (no ``kind``). Every
problem is a one-line ``SpecError`` naming the field. Importing this package loads
pydantic and PyYAML only (the catalog type is referenced for typing, not imported).
"""

from typing import Any

from intercloud.specs.errors import SpecError
from intercloud.specs.loader import LoadedSpec, load_spec_file, load_spec_text, read_spec_text


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the native spec format."""
    from intercloud.specs.schema_gen import json_schema as build

    return build()


__all__ = [
    "LoadedSpec",
    "SpecError",
    "json_schema",
    "load_spec_file",
    "load_spec_text",
    "read_spec_text",
]
