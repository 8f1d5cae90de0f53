"""Alibaba GPU cluster pod lists (``openb_pod_list_*.csv``, FGD, USENIX ATC'23).

Columns used: ``name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec, qos,
pod_phase, creation_time, deletion_time``. Per the upstream README: ``num_gpu`` is whole
GPUs (0 to 8), ``gpu_milli`` the share of one GPU a GPU-sharing pod (``num_gpu == 1``)
uses, in thousandths; ``gpu_spec`` the allowed GPU types ("V100M16|V100M32", empty: any);
times are seconds. ``duration = deletion_time - creation_time`` (None when the pod has no
deletion time). ``tenant`` is the ``qos`` class (LS, BE, Burstable, ...): the trace has no
users, and QoS is the closest grouping it records.
"""

from __future__ import annotations

import math
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

REQUIRED = ("name", "num_gpu", "gpu_milli", "creation_time", "deletion_time")


class AlibabaOpenbReader:
    name = "alibaba_openb"
    description = (
        "Alibaba openb pod list CSV: num_gpu, gpu_milli, gpu_spec, creation/deletion time (s)"
    )

    def read(self, path: str | Path, limit: int | None = None) -> Iterator[TraceJob]:
        check_limit(limit)
        p = open_trace(path)
        for c in islice(csv_cells(p, REQUIRED), limit):
            has = c.columns
            gpus = c.integer("num_gpu")
            milli = c.integer("gpu_milli")
            if milli > 1000:
                raise c.fail("gpu_milli", "must be <= 1000 (thousandths of one GPU)")
            created = c.number("creation_time")
            deleted = c.number("deletion_time", optional=True)
            duration: float | None = None
            if not math.isnan(deleted):
                if deleted < created:
                    raise c.fail("deletion_time", f"is before creation_time {created:g}")
                duration = deleted - created
            spec = c.text("gpu_spec") if "gpu_spec" in has else ""
            yield TraceJob(
                submit_time=created,
                tenant=c.text("qos") if "qos" in has else "",
                gpus=gpus,
                gpu_type=spec if spec and spec.lower() != "nan" else None,
                duration=duration,
                job_id=c.text("name"),
                gpu_share=(milli / 1000.0) if gpus else 0.0,
                cpus=c.number("cpu_milli") / 1000.0 if "cpu_milli" in has else 0.0,
                memory_gib=c.number("memory_mib") / 1024.0 if "memory_mib" in has else 0.0,
                status=c.text("pod_phase") if "pod_phase" in has else "",
            )


register(AlibabaOpenbReader())
