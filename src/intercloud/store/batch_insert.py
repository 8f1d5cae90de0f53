"""``Store.write_batch`` (and ``Store.set_reasons``) on PostgreSQL: one statement of a
fixed shape for any batch.

A multi-row ``INSERT ... VALUES`` has as many parameters as rows times columns, so each
batch size is a new statement for psycopg to convert (past 50 parameters it does not
cache the conversion) and for PostgreSQL to parse and plan. Here every column travels
as one array (``unnest``), so the text and the parameter count never change: psycopg
converts it once and, after a few uses, PostgreSQL runs it as a prepared statement.
The workloads, their ``submitted`` events and the audit rows go in one statement (data-
modifying CTEs), one round trip instead of three.

``set_reasons`` is the same idea for the control loop's holds of a burst of new jobs:
one guarded ``UPDATE ... FROM unnest`` with the events in a CTE, instead of one
``UPDATE`` round trip per job.

Ids come back in the submissions' order: the rows are inserted ``ORDER BY`` their
ordinal, so the sequence hands out ascending ids in that order (SQLAlchemy's
``sort_by_parameter_order`` relies on the same), and the ids are returned sorted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

#: ``(column, SQL array type)`` of each submission, in ``unnest``'s order.
_WORKLOAD_COLUMNS = (
    ("tenant_id", "int8"),
    ("name", "text"),
    ("kind", "text"),
    ("spec_text", "text"),
    ("spec_format", "text"),
    ("state", "text"),
    ("desired", "text"),
    ("priority", "int8"),
    ("attempt", "int8"),
    ("restarts", "int8"),
    ("max_restarts", "int8"),
    ("version", "int8"),
    ("submission", "text"),  # JSON text, cast to json below
)
_AUDIT_COLUMNS = (
    ("token_id", "int8"),
    ("tenant", "text"),
    ("role", "text"),
    ("method", "text"),
    ("path", "text"),
    ("target", "text"),
    ("status", "int8"),
    ("code", "text"),
    ("client", "text"),
    ("target_of", "int8"),  # the 0-based index of the submission it audits, or NULL
)


def _unnest(prefix: str, columns: Sequence[tuple[str, str]]) -> str:
    arrays = ", ".join(f"%({prefix}{c})b::{t}[]" for c, t in columns)  # binary: cheaper to dump
    names = ", ".join(c for c, _ in columns)
    return f"unnest({arrays}) WITH ORDINALITY AS {prefix[0]}({names}, ord)"


def _select(alias: str, columns: Sequence[tuple[str, str]], override: Mapping[str, str]) -> str:
    return ", ".join(override.get(c, f"{alias}.{c}") for c, _ in columns)


_W_NAMES = ", ".join(c for c, _ in _WORKLOAD_COLUMNS)
_A_NAMES = ", ".join(c for c, _ in _AUDIT_COLUMNS if c != "target_of")

SQL = f"""
WITH w AS (
    INSERT INTO workloads ({_W_NAMES}, created_at, updated_at)
    SELECT {_select("u", _WORKLOAD_COLUMNS, {"submission": "u.submission::json"})},
        %(t)s, %(t)s
    FROM {_unnest("u_", _WORKLOAD_COLUMNS)}
    ORDER BY u.ord
    RETURNING id
), numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM w
), e AS (
    INSERT INTO events (workload_id, instance_id, time, kind, from_state, to_state, reason,
        data)
    SELECT id, NULL, %(t)s, 'transition', NULL, %(pending)s, 'submitted', NULL FROM w
), au AS (
    INSERT INTO audit_log (time, {_A_NAMES})
    SELECT %(t)s, {
    _select(
        "a",
        [c for c in _AUDIT_COLUMNS if c[0] != "target_of"],
        {"target": "COALESCE('workload ' || numbered.id, a.target)"},
    )
}
    FROM {_unnest("a_", _AUDIT_COLUMNS)}
    LEFT JOIN numbered ON numbered.i = a.target_of
    ORDER BY a.ord
)
SELECT id FROM w ORDER BY id
"""


def write_batch(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    audits: Sequence[Mapping[str, Any]],
    t: datetime,
    pending: str,
) -> list[int]:
    """Insert ``rows`` (workload columns, ``tenant_id`` resolved), a ``submitted`` event
    for each, and ``audits`` (audit columns; ``target_of``: the index of the row it
    audits) in one statement; the new ids in ``rows``' order."""
    params: dict[str, Any] = {"t": t, "pending": pending}
    for c, _ in _WORKLOAD_COLUMNS:
        if c == "submission":
            params["u_" + c] = [
                None if r[c] is None else json.dumps(r[c], separators=(",", ":")) for r in rows
            ]
        else:
            params["u_" + c] = [r[c] for r in rows]
    for c, _ in _AUDIT_COLUMNS:
        params["a_" + c] = [a.get(c) for a in audits]
    result = conn.exec_driver_sql(SQL, params)
    return [int(r[0]) for r in result]


SET_REASONS_SQL = """
WITH h AS (
    SELECT * FROM unnest(%(ids)b::int8[], %(versions)b::int8[], %(reasons)b::text[],
        %(codes)b::text[], %(data)b::text[]) WITH ORDINALITY AS h(id, version, reason, code,
        data, ord)
), u AS (
    UPDATE workloads AS w
    SET version = w.version + 1, updated_at = %(t)s, reason = h.reason, reason_code = h.code
    FROM h
    WHERE w.id = h.id AND w.version = h.version
    RETURNING w.id, h.reason, h.data, h.ord
), e AS (
    INSERT INTO events (workload_id, instance_id, time, kind, from_state, to_state, reason,
        data)
    SELECT id, NULL, %(t)s, 'updated', NULL, NULL, reason, data::json FROM u ORDER BY ord
)
SELECT id FROM u ORDER BY ord
"""


def set_reasons(
    conn: Connection,
    holds: Sequence[tuple[int, int, str, str | None, Mapping[str, Any] | None]],
    t: datetime,
) -> list[int]:
    """``Store.set_reasons`` in one statement: ``holds`` are ``(id, expected_version,
    reason, code, event data)`` with distinct ids; the ids changed, in ``holds``' order
    (their ``updated`` events too)."""
    params = {
        "t": t,
        "ids": [h[0] for h in holds],
        "versions": [h[1] for h in holds],
        "reasons": [h[2] for h in holds],
        "codes": [h[3] for h in holds],
        "data": [None if h[4] is None else json.dumps(h[4]) for h in holds],
    }
    return [int(r[0]) for r in conn.exec_driver_sql(SET_REASONS_SQL, params)]
