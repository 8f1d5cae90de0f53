"""Tiresias (NSDI'19) job traces: ``60_job.csv``-style CSV files.

Columns (header required; order free): ``job_id, num_gpu, submit_time, duration`` and
optionally ``model_name``, ``iterations``. ``submit_time`` and ``duration`` are seconds
(the simulator's README: "the time value starts from 0, and in second-scale"). Other
columns (``interval``, ``start_time``, ...) are ignored. The trace has no users.
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

REQUIRED = ("job_id", "num_gpu", "submit_time", "duration")


class TiresiasReader:
    name = "tiresias"
    description = "Tiresias CSV: job_id, num_gpu, submit_time (s), duration (s)"

    def read(self, path: str | Path, limit: int | None = None) -> Iterator[TraceJob]:
        check_limit(limit)
        p = open_trace(path)
        with p.open(newline="") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None:
                raise TraceError(f"{p.name}: empty file (expected a header line)")
            cols = check_header(p, header, REQUIRED)
            n = 0
            for line, fields in enumerate(rows, start=2):
                if limit is not None and n >= limit:
                    return
                if not fields or not "".join(fields).strip():
                    continue
                if len(fields) < len(header):
                    raise TraceError(
                        f"{p.name}:{line}: expected {len(header)} fields, got {len(fields)}"
                    )
                c = Cell(p, line, cols, fields)
                steps = c.integer("iterations") if "iterations" in cols else None
                yield TraceJob(
                    submit_time=c.number("submit_time"),
                    tenant="",
                    gpus=c.integer("num_gpu"),
                    gpu_type=None,
                    duration=c.number("duration"),
                    job_id=c.text("job_id"),
                    name=c.text("model_name") if "model_name" in cols else "",
                    total_steps=steps,
                )
                n += 1


register(TiresiasReader())
