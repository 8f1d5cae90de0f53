"""Value syntaxes shared by every spec format: accelerators, quantities, durations.

Each ``parse_*`` function takes raw YAML data and returns a plain value or raises
``FieldValueError``; the ``Annotated`` types wrap them for pydantic and carry the JSON
schema that documents the syntax.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

from intercloud.model import AcceleratorChoice
from intercloud.specs.errors import FieldValueError, describe
from intercloud.specs.limits import (
    MAX_ACCELERATORS_PER_NODE,
    MAX_DURATION_HOURS,
    MAX_QUANTITY,
)

# --- accelerators -------------------------------------------------------------------

_ACC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class AcceleratorItem:
    """One ``NAME:COUNT`` as written (name not yet resolved); ``path`` is relative to the field."""

    name: str
    count: int
    path: str = ""


@dataclass(frozen=True, slots=True)
class ParsedAccelerators:
    choice: AcceleratorChoice
    items: tuple[AcceleratorItem, ...]


def _count(value: Any, name: str, subpath: str) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise FieldValueError(
                f"count of {name} must be a positive integer, got {describe(value)}", subpath
            )
    count: int = value
    if count <= 0:
        raise FieldValueError(f"count of {name} must be a positive integer, got {count}", subpath)
    if count > MAX_ACCELERATORS_PER_NODE:
        raise FieldValueError(
            f"count of {name} must be at most {MAX_ACCELERATORS_PER_NODE} per node, got {count}",
            subpath,
        )
    return count


def parse_accelerator_item(value: Any, subpath: str = "") -> AcceleratorItem:
    """``"H100:8"``, ``"H100"`` (count 1), ``{H100: 8}`` or ``{H100:8: null}`` (YAML's
    reading of the set ``{H100:8}``) -> ``AcceleratorItem``."""
    if isinstance(value, dict):
        if len(value) != 1:
            raise FieldValueError(
                f"expected one NAME: COUNT pair, got a mapping with {len(value)} keys",
                subpath,
            )
        ((name, count),) = value.items()
        if count is None and isinstance(name, str) and ":" in name:
            return parse_accelerator_item(name, subpath)
        if not isinstance(name, str) or not _ACC_NAME.match(name):
            raise FieldValueError(f"bad accelerator name {describe(name)}", subpath)
        return AcceleratorItem(name, _count(count, name, subpath), subpath)
    if not isinstance(value, str):
        raise FieldValueError(
            f"expected an accelerator like 'H100:8', got {describe(value)}", subpath
        )
    text = value.strip()
    parts = text.split(":")
    if len(parts) > 2:
        raise FieldValueError(
            f"expected NAME:COUNT (e.g. 'H100:8'), got {describe(value)}", subpath
        )
    name = parts[0].strip()
    if not name:
        raise FieldValueError(f"missing accelerator name in {describe(value)}", subpath)
    if not _ACC_NAME.match(name):
        raise FieldValueError(f"bad accelerator name {describe(name)}", subpath)
    if len(parts) == 1:
        return AcceleratorItem(name, 1, subpath)
    raw = parts[1].strip()
    if not raw:
        raise FieldValueError(f"missing count after ':' in {describe(value)}", subpath)
    if not re.fullmatch(r"[+-]?\d{1,18}", raw):
        raise FieldValueError(f"count of {name} must be a positive integer, got {raw!r}", subpath)
    return AcceleratorItem(name, _count(int(raw), name, subpath), subpath)


def _parse_list(value: Any, prefix: str) -> tuple[AcceleratorItem, ...]:
    if not isinstance(value, list):
        raise FieldValueError(f"expected a list of accelerators, got {describe(value)}", prefix)
    if not value:
        raise FieldValueError("must list at least one accelerator", prefix)
    items: list[AcceleratorItem] = []
    seen: set[tuple[str, int]] = set()
    for i, raw in enumerate(value):
        item = parse_accelerator_item(raw, f"{prefix}[{i}]")
        key = (item.name.lower(), item.count)
        if key in seen:
            raise FieldValueError(f"duplicate accelerator '{item.name}:{item.count}'", item.path)
        seen.add(key)
        items.append(item)
    return tuple(items)


def parse_accelerators(value: Any) -> ParsedAccelerators:
    """The native ``resources.accelerators`` forms.

    ``"H100:8"`` | ``[H100:8, H200:8]`` (any_of) | ``{any_of: [...]}`` |
    ``{ordered: [...]}`` | ``{H100: 8}`` | the set ``{H100:8, V100:8}`` (any_of; YAML
    reads it as a mapping with null values; ``{A100:8}`` is A100:8).
    """
    if isinstance(value, ParsedAccelerators):
        return value
    if isinstance(value, list):
        return ParsedAccelerators(AcceleratorChoice.ANY_OF, _parse_list(value, ""))
    if isinstance(value, dict) and set(value) & {"any_of", "ordered"}:
        if len(value) != 1:
            extra = sorted(str(k) for k in value if k not in ("any_of", "ordered"))
            what = f"unexpected key(s) {', '.join(extra)}" if extra else "both any_of and ordered"
            raise FieldValueError(f"give exactly one of any_of or ordered ({what})")
        ((key, items),) = value.items()
        return ParsedAccelerators(AcceleratorChoice(key), _parse_list(items, f".{key}"))
    if isinstance(value, dict) and len(value) > 1:
        # SkyPilot's set syntax {H100:8, V100:8} (or {H100: 8, V100: 8}): any of them.
        pairs = [{k: v} for k, v in value.items()]
        items = tuple(
            parse_accelerator_item(pair, f".{k}") for pair, k in zip(pairs, value, strict=True)
        )
        names = {(i.name.lower(), i.count) for i in items}
        if len(names) < len(items):
            raise FieldValueError("duplicate accelerator in the set")
        return ParsedAccelerators(AcceleratorChoice.ANY_OF, items)
    return ParsedAccelerators(AcceleratorChoice.ANY_OF, (parse_accelerator_item(value),))


_ACC_ITEM_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[1-9][0-9]*)?$",
    "description": "NAME:COUNT per node, e.g. H100:8 (count defaults to 1).",
}
_ACC_LIST_SCHEMA: dict[str, Any] = {"type": "array", "items": _ACC_ITEM_SCHEMA, "minItems": 1}
ACCELERATORS_SCHEMA: dict[str, Any] = {
    "description": (
        "Accelerators per node: 'H100:8'; a list of alternatives [H100:8, H200:8] "
        "(any_of: the cheapest for the work wins); {any_of: [...]}; or {ordered: [...]} "
        "(preferences: the first alternative that can be placed wins); {H100: 8}; or the "
        "set {H100:8, V100:8} (any_of)."
    ),
    "anyOf": [
        _ACC_ITEM_SCHEMA,
        _ACC_LIST_SCHEMA,
        {
            "type": "object",
            "properties": {"any_of": _ACC_LIST_SCHEMA},
            "required": ["any_of"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"ordered": _ACC_LIST_SCHEMA},
            "required": ["ordered"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "description": (
                "{NAME: COUNT} or a set {H100:8, V100:8} (YAML: NAME:COUNT keys with null "
                "values); several entries are any_of."
            ),
            "minProperties": 1,
            "additionalProperties": {
                "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]
            },
        },
    ],
}

Accelerators = Annotated[
    ParsedAccelerators, PlainValidator(parse_accelerators), WithJsonSchema(ACCELERATORS_SCHEMA)
]

# --- quantities: cpus and memory ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quantity:
    """``value`` with ``at_least`` True for ``"N+"``."""

    value: float
    at_least: bool


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)(\+?)$")


def parse_quantity(value: Any) -> Quantity:
    """``32`` / ``"32"`` (exactly 32), ``"32+"`` (at least 32); must be > 0."""
    if isinstance(value, Quantity):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldValueError(f"expected N or N+ (e.g. 32+), got {describe(value)}")
    if isinstance(value, str):
        m = _QUANTITY.match(value.strip())
        if not m:
            raise FieldValueError(f"expected N or N+ (e.g. 32+), got {describe(value)}")
        number, at_least = float(m.group(1)), m.group(2) == "+"
    else:
        number, at_least = _as_float(value), False
    if not math.isfinite(number) or number <= 0:
        raise FieldValueError(f"must be greater than 0, got {describe(value)}")
    if number > MAX_QUANTITY:
        raise FieldValueError(f"must be at most {MAX_QUANTITY:g}, got {describe(value)}")
    return Quantity(number, at_least)


def _as_float(value: int | float) -> float:
    """``float(value)``, inf for an integer too large for a float (no OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^(\d+(\.\d+)?|\.\d+)\+?$"},
    ]
}
QuantityField = Annotated[Quantity, PlainValidator(parse_quantity), WithJsonSchema(QUANTITY_SCHEMA)]

# --- durations ------------------------------------------------------------------------

_UNIT_HOURS = {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration_hours(value: Any) -> float:
    """``"90m"``, ``"36h"``, ``"2d"``, ``"1d12h"``, ``"1w"`` or a number of hours -> hours (> 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldValueError(f"expected a duration like '36h' or '90m', got {describe(value)}")
    if isinstance(value, str):
        text = value.strip().lower()
        if not _DURATION.match(text):
            raise FieldValueError(
                f"expected a duration like '90m', '36h', '2d' or '1d12h', got {describe(value)}"
            )
        hours = sum(float(n) * _UNIT_HOURS[u] for n, u in _DURATION_PART.findall(text))
    else:
        hours = _as_float(value)
    if not math.isfinite(hours) or hours <= 0:
        raise FieldValueError(f"must be longer than zero, got {describe(value)}")
    if hours > MAX_DURATION_HOURS:
        raise FieldValueError(f"must be at most 10 years, got {describe(value)}")
    return hours


DURATION_SCHEMA: dict[str, Any] = {
    "description": "A duration: '90m', '36h', '2d', '1d12h', '1w' (units s m h d w), or hours.",
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "string", "pattern": r"^(\d+(\.\d+)?[smhdwSMHDW])+$"},
    ],
}
DurationHours = Annotated[
    float, PlainValidator(parse_duration_hours), WithJsonSchema(DURATION_SCHEMA)
]

# --- timestamps -----------------------------------------------------------------------


def parse_deadline(value: Any) -> str:
    """ISO 8601 timestamp (or date) -> normalised UTC ``YYYY-MM-DDTHH:MM:SSZ``.

    A timestamp without an offset, or a bare date (midnight), is read as UTC.
    """
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):
        stamp = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            stamp = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise FieldValueError(
                f"expected an ISO 8601 timestamp like 2026-12-31T00:00:00Z, got {describe(value)}"
            ) from None
    else:
        raise FieldValueError(f"expected an ISO 8601 timestamp, got {describe(value)}")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    try:
        utc = stamp.astimezone(dt.UTC)
    except (OverflowError, ValueError):  # the offset moves it past year 1 or 9999
        raise FieldValueError(f"out of range, got {describe(value)}") from None
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


Deadline = Annotated[
    str,
    PlainValidator(parse_deadline),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601; without an offset it is UTC.",
        }
    ),
]

# --- names and environment ------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_PATTERN = _NAME.pattern


def parse_name(value: Any) -> str:
    """Workload and tenant names: letters, digits, '.', '_', '-'; 1-128 characters."""
    if not isinstance(value, str):
        raise FieldValueError(f"expected a string, got {describe(value)}")
    if not _NAME.match(value):
        raise FieldValueError(
            "must start with a letter or digit and use only letters, digits, '.', '_', '-' "
            f"(at most 128), got {describe(value)}"
        )
    return value


Name = Annotated[
    str, PlainValidator(parse_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})
]

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env_value(value: Any) -> str:
    """Environment values: strings, numbers and booleans (``true``/``false``) as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise FieldValueError(f"expected a string, number or boolean, got a {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return "list" if isinstance(value, list) else "mapping"


EnvValue = Annotated[
    str,
    PlainValidator(parse_env_value),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
