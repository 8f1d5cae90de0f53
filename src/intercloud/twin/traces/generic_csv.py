"""The generic CSV trace: intercloud's own documented format for any job log.

One header line, then one job per line; columns are found by name (any order). Columns
(the README's "Generic CSV trace" table says the same):

==================  ==========  ========  ==============================================
column              type        default   meaning
==================  ==========  ========  ==============================================
``submit_time``     number      required  seconds since the trace starts, >= 0
``duration``        number      required  run time in seconds on the GPUs asked for, >= 0
``gpus``            integer     required  whole GPUs (0: a CPU-only job)
``gpu_type``        text        any       accelerator name (``H100``); empty: any
``tenant``          text        ""        team or user the job belongs to
``priority``        integer     0         higher is scheduled first; may be negative
``spot_allowed``    boolean     false     ``true/false``, ``1/0``, ``yes/no``; empty: false
``job_id``          text        FILE:LINE the job's name in the trace
==================  ==========  ========  ==============================================

A column not in this table is an error (a misspelt ``spot_alowed`` would otherwise be
ignored silently). A bad value raises ``TraceError`` naming the file, the line (the
header is line 1) and the column: ``jobs.csv:7: column 'gpus': must be >= 0 (got '-2')``.

Rows are parsed with the ``csv`` module and plain ``float``/``int`` on the fast path;
only a row that fails is re-read field by field to name the bad column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from intercloud.twin.traces.base import (
    Cell,
    TraceError,
    TraceJob,
    check_header,
    check_limit,
    open_trace,
    register,
)
from intercloud.twin.traces.columns import TraceColumns, columns_from_rows

REQUIRED = ("submit_time", "duration", "gpus")
OPTIONAL = ("gpu_type", "tenant", "priority", "spot_allowed", "job_id")
COLUMNS = REQUIRED + OPTIONAL
_TRUE = frozenset(("true", "1", "yes", "y", "t"))
_FALSE = frozenset(("false", "0", "no", "n", "f", ""))
_INF = float("inf")
_PRIORITY_MIN = -(2**31)
# A ``columns.Row`` plus the job id ("" when the file has none) and the line number.
_Row = tuple[float, float, int, str, str | None, int, bool, str, int]


def parse_bool(c: Cell, column: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no`` (any case); empty is false."""
    raw = c.raw(column).lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise c.fail(column, "must be true or false")


class GenericCsvReader:
    name = "generic_csv"
    description = (
        "intercloud generic CSV: submit_time (s), duration (s), gpus; optional gpu_type, "
        "tenant, priority, spot_allowed, job_id"
    )

    def read(self, path: str | Path, limit: int | None = None) -> Iterator[TraceJob]:
        stem = Path(path).stem
        for t, d, g, te, ty, p, s, job_id, line in self._rows(path, limit):
            yield TraceJob(
                submit_time=t,
                tenant=te,
                gpus=g,
                gpu_type=ty,
                duration=d,
                job_id=job_id or f"{stem}:{line}",
                priority=p,
                spot_allowed=s,
            )

    def read_columns(self, path: str | Path, limit: int | None = None) -> TraceColumns:
        """The same jobs as ``read``, straight into columns (about 3x faster)."""
        return columns_from_rows(r[:7] for r in self._rows(path, limit))  # ids unused

    def _rows(self, path: str | Path, limit: int | None) -> Iterator[_Row]:
        check_limit(limit)
        p = open_trace(path)
        with p.open(newline="") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None:
                raise TraceError(f"{p.name}: empty file (expected a header line)")
            cols = check_header(p, header, REQUIRED)
            unknown = [h for h in cols if h not in COLUMNS]
            if unknown:
                raise TraceError(
                    f"{p.name}:1: unknown column(s) {', '.join(unknown)} "
                    f"(known: {', '.join(COLUMNS)})"
                )
            width = len(header)
            i_sub, i_dur, i_gpu = (cols[c] for c in REQUIRED)
            i_type, i_tenant, i_prio, i_spot, i_id = (cols.get(c, -1) for c in OPTIONAL)
            n = 0
            for line, fields in enumerate(rows, start=2):
                if limit is not None and n >= limit:
                    return
                if not fields or not "".join(fields).strip():
                    continue
                if len(fields) != width:
                    raise TraceError(f"{p.name}:{line}: expected {width} fields, got {len(fields)}")
                try:
                    submit = float(fields[i_sub])
                    duration = float(fields[i_dur])
                    gpus = int(fields[i_gpu])
                    prio = int(fields[i_prio]) if i_prio >= 0 and fields[i_prio].strip() else 0
                    fast = 0.0 <= submit < _INF and 0.0 <= duration < _INF and gpus >= 0
                    fast = fast and prio >= _PRIORITY_MIN
                except ValueError:
                    fast = False
                if not fast:
                    # Slow path: either a value the fast path does not take ("4.0") or
                    # a bad one, which the Cell getters name.
                    c = Cell(p, line, cols, fields)
                    submit = c.number("submit_time")
                    duration = c.number("duration")
                    gpus = c.integer("gpus")
                    prio = (
                        c.integer("priority", minimum=_PRIORITY_MIN)
                        if i_prio >= 0 and c.raw("priority")
                        else 0
                    )
                spot = False
                if i_spot >= 0:
                    raw = fields[i_spot].strip().lower()
                    if raw in _TRUE:
                        spot = True
                    elif raw not in _FALSE:
                        spot = parse_bool(Cell(p, line, cols, fields), "spot_allowed")
                gpu_type = fields[i_type].strip() if i_type >= 0 else ""
                job_id = fields[i_id].strip() if i_id >= 0 else ""
                yield (
                    submit,
                    duration,
                    gpus,
                    fields[i_tenant].strip() if i_tenant >= 0 else "",
                    gpu_type or None,
                    prio,
                    spot,
                    job_id,
                    line,
                )
                n += 1


register(GenericCsvReader())
