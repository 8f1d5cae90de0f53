"""Spec errors: one line each, naming the field that is wrong.

``SpecError`` is what callers see. ``SpecProblem`` is raised inside the package before
the source name is known; ``FieldValueError`` is raised inside pydantic validators when
the problem sits deeper than the field being validated (``subpath`` like ``[1]``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

ROOT = "(root)"
YAML = "(yaml)"
FILE = "(file)"


def one_line(text: str) -> str:
    """Collapse whitespace runs (newlines included) into single spaces."""
    return " ".join(text.split())


class SpecError(ValueError):
    """A spec that cannot be accepted. ``str(err)`` is ``"{source}: {field}: {problem}"``.

    ``field`` is a dotted path into the spec (``resources.accelerators[1]``) or one of
    ``(yaml)``, ``(file)``, ``(root)``; ``problem`` is one line.
    """

    def __init__(self, field: str, problem: str, source: str = "<string>") -> None:
        self.field = field
        self.problem = one_line(problem)
        self.source = source
        super().__init__(f"{source}: {field}: {self.problem}")


class SpecProblem(Exception):
    """Internal: a problem at ``field`` whose source is not known yet."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class FieldValueError(ValueError):
    """Raised by a validator; ``subpath`` is appended to the field's path (``[2]``, ``.x``)."""

    def __init__(self, problem: str, subpath: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.subpath = subpath


def join_path(parts: Iterable[str | int]) -> str:
    """``("resources", "accelerators", 1)`` -> ``resources.accelerators[1]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or ROOT


def suggest(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest of ``choices`` (case-insensitive), else ``""``."""
    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(c.lower(), c)
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


_SENSITIVE = ("envs", "secrets")


def describe(value: Any, path: str = "") -> str:
    """A short, safe rendering of an input value for an error message."""
    if path.split(".")[0].split("[")[0] in _SENSITIVE:
        return f"a {_type_name(value)}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    return f"a {_type_name(value)}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _number(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc[-1]``."""
    current: type[BaseModel] = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        found = _find_model(field.annotation)
        if found is None:
            return None
        current = found
    return current


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def problem_from_validation(
    exc: ValidationError, root: type[BaseModel], hints: dict[str, str] | None = None
) -> SpecProblem:
    """Turn the first pydantic error into a one-line ``SpecProblem``.

    ``hints`` maps a dotted path of an unknown field to a better explanation.
    """
    errors = exc.errors(include_url=False)
    # An unknown field is usually a misspelt known one; report it before the "missing"
    # error it causes. Otherwise the first error in field order.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    path = join_path(loc)
    kind = err["type"]
    ctx: dict[str, Any] = {k: _number(v) for k, v in (err.get("ctx") or {}).items()}
    got = describe(err.get("input"), path)
    if kind == "value_error" and isinstance(ctx.get("error"), FieldValueError):
        fve: FieldValueError = ctx["error"]
        sub = fve.subpath
        full = path + sub if path != ROOT else (sub.lstrip(".") or ROOT)
        return SpecProblem(full, fve.problem)
    if kind == "extra_forbidden":
        if hints and path in hints:
            return SpecProblem(path, hints[path])
        model = _model_at(root, loc)
        allowed = sorted(model.model_fields) if model else []
        tip = suggest(str(loc[-1]), allowed) if loc else ""
        return SpecProblem(path, f"unknown field{tip}")
    messages = {
        "missing": "required field is missing",
        "int_type": f"expected an integer, got {got}",
        "int_from_float": f"expected an integer, got {got}",
        "float_type": f"expected a number, got {got}",
        "string_type": f"expected a string, got {got}",
        "bool_type": f"expected true or false, got {got}",
        "list_type": f"expected a list, got {got}",
        "dict_type": f"expected a mapping, got {got}",
        "model_type": f"expected a mapping, got {got}",
        "model_attributes_type": f"expected a mapping, got {got}",
        "literal_error": f"expected {ctx.get('expected')}, got {got}",
        "greater_than": f"must be greater than {ctx.get('gt')}, got {got}",
        "greater_than_equal": f"must be at least {ctx.get('ge')}, got {got}",
        "less_than": f"must be less than {ctx.get('lt')}, got {got}",
        "less_than_equal": f"must be at most {ctx.get('le')}, got {got}",
        "string_too_short": "must not be empty",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "finite_number": f"must be a finite number, got {got}",
    }
    if kind in messages:
        return SpecProblem(path, messages[kind])
    msg = err["msg"]
    if kind == "value_error" and msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return SpecProblem(path, msg)
