"""Tiresias (NSDI'19) job traces: ``60_job.csv``-style CSV files.

Columns (header required; order free): ``job_id, num_gpu, submit_time, duration`` and
optionally ``model_name``, ``iterations``. ``submit_time`` and ``duration`` are seconds
(the simulator's README: "the time value starts from 0, and in second-scale"). Other
columns (``interval``, ``start_time``, ...) are ignored. The trace has no users.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from intercloud.twin.traces.base import (
    TraceJob,
    check_limit,
    csv_cells,
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
        for c in islice(csv_cells(p, REQUIRED), limit):
            steps = c.integer("iterations") if "iterations" in c.columns else None
            yield TraceJob(
                submit_time=c.number("submit_time"),
                tenant="",
                gpus=c.integer("num_gpu"),
                gpu_type=None,
                duration=c.number("duration"),
                job_id=c.text("job_id"),
                name=c.text("model_name") if "model_name" in c.columns else "",
                total_steps=steps,
            )


register(TiresiasReader())
