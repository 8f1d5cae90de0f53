"""Gavel (OSDI'20) job traces derived from Microsoft's Philly cluster: tab-separated
``.trace`` files without a header.

Two layouts exist upstream, told apart by the number of fields:

* 7 fields (``traces/msr/seed=*/``): ``job_type, command, num_steps_arg, needs_data_dir,
  total_steps, arrival_time, scale_factor``;
* 10 fields (``traces/physical_cluster/``): ``job_type, command, working_directory,
  num_steps_arg, needs_data_dir, total_steps, scale_factor, priority_weight, SLO,
  arrival_time``.

``scale_factor`` is the job's number of GPUs; ``arrival_time`` seconds. The files hold no
run time: Gavel's simulator turns ``total_steps`` into time with its measured
per-(model, scale factor, GPU type) throughput table, which is not part of the traces.
So ``duration`` is None unless the caller passes ``steps_per_second`` (job_type → steps/s
on one GPU, scaled linearly with ``scale_factor``); ``total_steps`` is always given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from intercloud.twin.traces.base import (
    Cell,
    TraceError,
    TraceJob,
    check_limit,
    open_trace,
    register,
)

MSR = ("job_type", "command", "num_steps_arg", "needs_data_dir", "total_steps",
       "arrival_time", "scale_factor")  # fmt: skip
PHYSICAL = ("job_type", "command", "working_directory", "num_steps_arg", "needs_data_dir",
            "total_steps", "scale_factor", "priority_weight", "SLO", "arrival_time")  # fmt: skip
LAYOUTS = {len(MSR): MSR, len(PHYSICAL): PHYSICAL}


class PhillyGavelReader:
    name = "philly_gavel"
    description = (
        "Gavel .trace (tab-separated, Philly-derived): scale_factor = #GPUs, arrival_time (s), "
        "total_steps; duration only with a steps/s table"
    )

    def __init__(self, steps_per_second: Mapping[str, float] | None = None) -> None:
        self.steps_per_second = dict(steps_per_second or {})

    def read(self, path: str | Path, limit: int | None = None) -> Iterator[TraceJob]:
        check_limit(limit)
        p = open_trace(path)
        n = 0
        with p.open() as f:
            for line, text in enumerate(f, start=1):
                if limit is not None and n >= limit:
                    return
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue
                fields = text.split("\t")
                layout = LAYOUTS.get(len(fields))
                if layout is None:
                    raise TraceError(
                        f"{p.name}:{line}: expected {len(MSR)} or {len(PHYSICAL)} "
                        f"tab-separated fields, got {len(fields)}"
                    )
                c = Cell(p, line, {name: i for i, name in enumerate(layout)}, fields)
                job_type = c.text("job_type")
                if not job_type:
                    raise c.fail("job_type", "must not be empty")
                steps = c.integer("total_steps")
                gpus = c.integer("scale_factor", minimum=1)
                rate = self.steps_per_second.get(job_type)
                yield TraceJob(
                    submit_time=c.number("arrival_time"),
                    tenant="",
                    gpus=gpus,
                    gpu_type=None,
                    duration=steps / (rate * gpus) if rate else None,
                    job_id=f"{p.stem}:{line}",
                    name=job_type,
                    total_steps=steps,
                    priority_weight=(c.number("priority_weight") if layout is PHYSICAL else 1.0),
                )
                n += 1


register(PhillyGavelReader())
