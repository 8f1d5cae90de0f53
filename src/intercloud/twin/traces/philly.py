"""Microsoft Philly (ATC'19) job log, processed to CSV.

Columns (header required; order free; other columns are ignored, processed dumps vary):

* ``timestamp``: submission, ``YYYY-MM-DD HH:MM:SS`` (the log's wall clock, no zone);
* ``duration``: run time in seconds, >= 0;
* ``num_gpus``: whole GPUs, >= 0;
* ``gpu_time``: GPU-seconds, >= 0; checked to be a number, not used (``duration x
  num_gpus`` is what the twin runs, and processed dumps round it differently);
* ``cluster``: the virtual cluster, which becomes the job's ``tenant`` (Philly's VCs are
  its teams).

``submit_time`` is seconds since ``origin``: by default the first row's timestamp (the
processed trace is sorted by submission). A row before the origin is an error naming it;
pass ``PhillyReader(origin=...)`` to read an unsorted file. ``job_id`` is the ``job_id``
(or ``jobid``) column where there is one, else ``FILE:LINE``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime, timedelta
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

REQUIRED = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
_INF = float("inf")
_FORMAT = "YYYY-MM-DD HH:MM:SS"


def parse_timestamp(c: Cell, column: str = "timestamp") -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` exactly (``fromisoformat`` is fast but takes more forms,
    so the shape is checked first)."""
    raw = c.raw(column)
    if len(raw) != 19 or raw[4] != "-" or raw[7] != "-" or raw[10] != " " or raw[13] != ":":
        raise c.fail(column, f"must be {_FORMAT}")
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise c.fail(column, f"must be a valid date and time {_FORMAT}") from None


def _abs_seconds(when: datetime) -> int:
    """Whole seconds since 0001-01-01 00:00:00 (naive: the log's own clock)."""
    return (when.toordinal() - 1) * 86_400 + when.hour * 3600 + when.minute * 60 + when.second


def _seconds(raw: str, days: dict[str, int]) -> int | None:
    """``_abs_seconds`` of ``YYYY-MM-DD HH:MM:SS``, or None when ``raw`` is not exactly
    that (the caller then names the problem). Dates are cached: a trace has few days and
    many jobs a day."""
    if len(raw) != 19 or raw[10] != " " or raw[13] != ":" or raw[16] != ":":
        return None
    day = days.get(raw[:10])
    if day is None:
        if raw[4] != "-" or raw[7] != "-":
            return None
        try:
            day = days[raw[:10]] = (date.fromisoformat(raw[:10]).toordinal() - 1) * 86_400
        except ValueError:
            return None
    digits = raw[11:13] + raw[14:16] + raw[17:19]
    if not (digits.isascii() and digits.isdigit()):
        return None
    h, m, s = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if h > 23 or m > 59 or s > 59:
        return None
    return day + h * 3600 + m * 60 + s


class PhillyReader:
    name = "philly"
    description = (
        "Microsoft Philly processed CSV: timestamp (YYYY-MM-DD HH:MM:SS), duration (s), "
        "num_gpus, gpu_time, cluster (= tenant)"
    )

    def __init__(self, origin: datetime | None = None) -> None:
        self.origin = origin

    def read(self, path: str | Path, limit: int | None = None) -> Iterator[TraceJob]:
        stem = Path(path).stem
        for t, d, g, te, job_id, line in self._rows(path, limit):
            yield TraceJob(
                submit_time=t,
                tenant=te,
                gpus=g,
                gpu_type=None,
                duration=d,
                job_id=job_id or f"{stem}:{line}",
            )

    def read_columns(self, path: str | Path, limit: int | None = None) -> TraceColumns:
        """The same jobs as ``read``, straight into columns."""
        return columns_from_rows(
            (t, d, g, te, None, 0, False) for t, d, g, te, _, _ in self._rows(path, limit)
        )

    def _rows(
        self, path: str | Path, limit: int | None
    ) -> Iterator[tuple[float, float, int, str, str, int]]:
        """(submit_s, duration_s, gpus, tenant, job_id or "", line) per job."""
        check_limit(limit)
        p = open_trace(path)
        with p.open(newline="") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None:
                raise TraceError(f"{p.name}: empty file (expected a header line)")
            cols = check_header(p, header, REQUIRED)
            width = len(header)
            i_dur, i_gpus, i_gt, i_cluster = (cols[c] for c in REQUIRED[1:])
            i_id = cols.get("job_id", cols.get("jobid", -1))
            i_time = cols["timestamp"]
            start = None if self.origin is None else _abs_seconds(self.origin)
            days: dict[str, int] = {}
            n = 0
            for line, fields in enumerate(rows, start=2):
                if limit is not None and n >= limit:
                    return
                if not fields or not "".join(fields).strip():
                    continue
                if len(fields) != width:
                    raise TraceError(f"{p.name}:{line}: expected {width} fields, got {len(fields)}")
                raw = fields[i_time]
                stamp = _seconds(raw, days)
                if stamp is None:  # not the exact shape: name the problem
                    stamp = _abs_seconds(parse_timestamp(Cell(p, line, cols, fields)))
                if start is None:
                    start = stamp
                submit = float(stamp - start)
                if submit < 0:
                    c = Cell(p, line, cols, fields)
                    origin = datetime.min + timedelta(seconds=start)
                    raise c.fail(
                        "timestamp",
                        f"is before the trace's origin {origin:%Y-%m-%d %H:%M:%S} (sort the "
                        "file by timestamp, or give the reader an origin)",
                    )
                try:
                    duration = float(fields[i_dur])
                    gpus = int(fields[i_gpus])
                    gpu_time = float(fields[i_gt])
                    fast = 0.0 <= duration < _INF and gpus >= 0 and 0.0 <= gpu_time < _INF
                except ValueError:
                    fast = False
                if not fast:
                    c = Cell(p, line, cols, fields)
                    duration = c.number("duration")
                    gpus = c.integer("num_gpus")
                    c.number("gpu_time")
                cluster = fields[i_cluster].strip()
                if not cluster:
                    raise Cell(p, line, cols, fields).fail(
                        "cluster", "must not be empty (it names the tenant)"
                    )
                job_id = fields[i_id].strip() if i_id >= 0 else ""
                yield submit, duration, gpus, cluster, job_id, line
                n += 1


register(PhillyReader())
