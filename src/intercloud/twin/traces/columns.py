"""A trace as numpy columns: what the synthetic generator fits and emits, and what an
engine at 1M jobs wants instead of 1M ``TraceJob`` objects.

Text fields (tenant, GPU type) are stored as integer codes into a tuple of names, so the
columns stay plain arrays. ``duration_s`` is NaN where the trace does not say.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from intercloud.twin.traces.base import TraceJob, get_reader, not_text

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
BOOL = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class TraceColumns:
    """``n`` jobs, one array entry each (all arrays have length ``n``).

    ``tenant[i]`` indexes ``tenant_names``; ``gpu_type[i]`` indexes ``gpu_type_names``,
    -1 meaning any. ``priority`` and ``spot_allowed`` as in ``TraceJob``.
    """

    submit_s: F64
    duration_s: F64
    gpus: I64
    tenant: I32
    gpu_type: I32
    priority: I64
    spot_allowed: BOOL
    tenant_names: tuple[str, ...]
    gpu_type_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.submit_s)
        for name in ("duration_s", "gpus", "tenant", "gpu_type", "priority", "spot_allowed"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, not {n}")

    def __len__(self) -> int:
        return len(self.submit_s)

    @property
    def gpu_seconds(self) -> float:
        """Total GPU-seconds of the jobs whose duration is known."""
        d = np.nan_to_num(self.duration_s, nan=0.0)
        return float(np.dot(self.gpus.astype(np.float64), d))

    def jobs(self, prefix: str = "job") -> Iterator[TraceJob]:
        """The rows as ``TraceJob``s (``job_id`` is ``PREFIX-i``)."""
        for i in range(len(self)):
            d = float(self.duration_s[i])
            t = int(self.gpu_type[i])
            yield TraceJob(
                submit_time=float(self.submit_s[i]),
                tenant=self.tenant_names[int(self.tenant[i])] if self.tenant_names else "",
                gpus=int(self.gpus[i]),
                gpu_type=self.gpu_type_names[t] if t >= 0 else None,
                duration=None if np.isnan(d) else d,
                job_id=f"{prefix}-{i}",
                priority=int(self.priority[i]),
                spot_allowed=bool(self.spot_allowed[i]),
            )

    @classmethod
    def from_jobs(cls, jobs: Iterable[TraceJob]) -> TraceColumns:
        """Collect a stream of jobs (one pass, typed arrays, no list of objects)."""
        nan = math.nan
        return columns_from_rows(
            (
                j.submit_time,
                nan if j.duration is None else j.duration,
                j.gpus,
                j.tenant,
                j.gpu_type,
                j.priority,
                j.spot_allowed,
            )
            for j in jobs
        )


# submit_s, duration_s (NaN: unknown), gpus, tenant, gpu_type (None: any), priority, spot
Row = tuple[float, float, int, str, str | None, int, bool]


def columns_from_rows(rows: Iterable[Row]) -> TraceColumns:
    """``TraceColumns`` from row tuples, in one pass into typed arrays."""
    submit, duration = array("d"), array("d")
    gpus, tenant, gpu_type, prio = (array("q") for _ in range(4))
    spot = bytearray()
    tenants: dict[str, int] = {}
    types: dict[str, int] = {}
    add_submit, add_duration, add_gpus = submit.append, duration.append, gpus.append
    add_tenant, add_type, add_prio, add_spot = (
        tenant.append, gpu_type.append, prio.append, spot.append
    )  # fmt: skip
    for t, d, g, te, ty, p, s in rows:
        add_submit(t)
        add_duration(d)
        add_gpus(g)
        code = tenants.get(te)
        if code is None:
            code = tenants[te] = len(tenants)
        add_tenant(code)
        if ty is None:
            add_type(-1)
        else:
            code = types.get(ty)
            if code is None:
                code = types[ty] = len(types)
            add_type(code)
        add_prio(p)
        add_spot(1 if s else 0)
    return TraceColumns(
        submit_s=np.frombuffer(submit, dtype=np.float64).copy(),
        duration_s=np.frombuffer(duration, dtype=np.float64).copy(),
        gpus=np.frombuffer(gpus, dtype=np.int64).copy(),
        tenant=np.frombuffer(tenant, dtype=np.int64).astype(np.int32),
        gpu_type=np.frombuffer(gpu_type, dtype=np.int64).astype(np.int32),
        priority=np.frombuffer(prio, dtype=np.int64).copy(),
        spot_allowed=np.frombuffer(bytes(spot), dtype=np.uint8).astype(np.bool_),
        tenant_names=tuple(tenants),
        gpu_type_names=tuple(types),
    )


@runtime_checkable
class ColumnarReader(Protocol):
    """A reader with a fast path straight to columns (no ``TraceJob`` per row)."""

    def read_columns(self, path: str | Path, limit: int | None = None) -> TraceColumns: ...


def read_columns(path: str | Path, fmt: str, limit: int | None = None) -> TraceColumns:
    """The trace at ``path`` as columns: the reader's fast path where it has one, else
    ``TraceColumns.from_jobs`` over its jobs. Same jobs, same order, same errors (a file
    that is not UTF-8 text: ``TraceError`` naming it)."""
    reader = get_reader(fmt)
    try:
        if isinstance(reader, ColumnarReader):
            return reader.read_columns(path, limit)
        return TraceColumns.from_jobs(reader.read(path, limit))
    except UnicodeDecodeError as exc:
        raise not_text(path, exc) from None
