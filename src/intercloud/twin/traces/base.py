"""What every trace reader yields, the reader protocol, and the registry by format name.

A reader turns one trace file into an iterator of ``TraceJob``. Readers stream (a file is
never held in memory as rows) and stop after ``limit`` jobs when one is given. A file that
cannot be read raises ``TraceError`` with a one-line message naming the file, and where it
applies the line and column, e.g. ``60_job.csv:4: column 'num_gpu': cannot read it as a
whole number (got 'x')``.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class TraceError(ValueError):
    """A trace file that cannot be read; the message is one line naming file/line/column."""


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace, in the trace's own units made uniform.

    ``submit_time`` and ``duration`` are seconds (``duration`` None: the trace does not
    say). ``tenant`` is the trace's user or virtual cluster ("" when it has none). ``gpus``
    is whole GPUs requested (0: CPU only); ``gpu_share`` is the fraction of each GPU used
    by GPU-sharing jobs (1.0 for whole GPUs). ``gpu_type`` is the trace's GPU constraint
    verbatim (None: any). ``name`` is the model or job type; ``status`` the final state
    where the trace records one; ``total_steps`` the iterations/steps where it does.
    ``priority`` is the scheduler's integer priority (higher first; 0 where the trace has
    none); ``spot_allowed`` whether the job may run on spot capacity (False where the
    trace does not say).
    """

    submit_time: float
    tenant: str
    gpus: int
    gpu_type: str | None
    duration: float | None
    job_id: str = ""
    gpu_share: float = 1.0
    cpus: float = 0.0
    memory_gib: float = 0.0
    name: str = ""
    status: str = ""
    total_steps: int | None = None
    priority_weight: float = 1.0
    priority: int = 0
    spot_allowed: bool = False

    @property
    def gpu_seconds(self) -> float | None:
        if self.duration is None:
            return None
        return self.gpus * self.gpu_share * self.duration


@runtime_checkable
class TraceReader(Protocol):
    """One trace format: ``name`` is its registry key, ``read`` streams its jobs."""

    name: str
    description: str

    def read(self, path: str | Path, limit: int | None = None) -> Iterator[TraceJob]: ...


_REGISTRY: dict[str, TraceReader] = {}


def register(reader: TraceReader) -> TraceReader:
    """Add ``reader`` under ``reader.name`` (a second reader of the same name is an error)."""
    if reader.name in _REGISTRY and _REGISTRY[reader.name] is not reader:
        raise ValueError(f"trace format {reader.name!r} is already registered")
    _REGISTRY[reader.name] = reader
    return reader


def get_reader(name: str) -> TraceReader:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown trace format {name!r} (known: {known})") from None


def formats() -> list[str]:
    return sorted(_REGISTRY)


def read_trace(path: str | Path, fmt: str, limit: int | None = None) -> Iterator[TraceJob]:
    """``get_reader(fmt).read(path, limit)``; a file that is not UTF-8 text is a
    ``TraceError`` naming it."""
    return _decoded(get_reader(fmt).read(path, limit), path)


def _decoded(jobs: Iterator[TraceJob], path: str | Path) -> Iterator[TraceJob]:
    try:
        yield from jobs
    except UnicodeDecodeError as exc:
        raise not_text(path, exc) from None


def not_text(path: str | Path, exc: UnicodeDecodeError) -> TraceError:
    """The one-line error for a trace that is not UTF-8 text (a binary or archive)."""
    return TraceError(f"{Path(path).name}: not a UTF-8 text trace (byte {exc.start}: {exc.reason})")


# ---------------------------------------------------------------------- parsing helpers
class Cell:
    """Field access for one line of a file; each getter raises ``TraceError`` naming the
    file, the line (1-based, header included) and the column."""

    __slots__ = ("columns", "fields", "line", "path")

    def __init__(self, path: Path, line: int, columns: dict[str, int], fields: list[str]):
        self.path, self.line, self.columns, self.fields = path, line, columns, fields

    def fail(self, column: str, why: str) -> TraceError:
        return TraceError(
            f"{self.path.name}:{self.line}: column '{column}': {why} (got {self.raw(column)!r})"
        )

    def raw(self, column: str) -> str:
        i = self.columns[column]
        return self.fields[i].strip() if i < len(self.fields) else ""

    def text(self, column: str) -> str:
        return self.raw(column)

    def number(self, column: str, *, minimum: float = 0.0, optional: bool = False) -> float:
        raw = self.raw(column)
        if optional and raw in ("", "nan", "NaN"):
            return math.nan
        try:
            value = float(raw)
        except ValueError:
            raise self.fail(column, "cannot read it as a number") from None
        if not math.isfinite(value) or value < minimum:
            raise self.fail(column, f"must be a finite number >= {minimum:g}")
        return value

    def integer(self, column: str, *, minimum: int = 0) -> int:
        raw = self.raw(column)
        try:
            value = int(raw)
        except ValueError:
            try:
                f = float(raw)
            except ValueError:
                raise self.fail(column, "cannot read it as a whole number") from None
            if not f.is_integer():
                raise self.fail(column, "cannot read it as a whole number") from None
            value = int(f)
        if value < minimum:
            raise self.fail(column, f"must be >= {minimum}")
        return value


def open_trace(path: str | Path) -> Path:
    """``path`` as a Path, checked to be a readable file (TraceError otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"{p}: no such trace file")
    return p


def check_header(path: Path, header: list[str], required: tuple[str, ...]) -> dict[str, int]:
    """Column name → index; TraceError naming missing or duplicate columns."""
    columns = {name.strip(): i for i, name in enumerate(header)}
    if len(columns) < len(header):
        counts = Counter(h.strip() for h in header)
        twice = sorted(name for name, k in counts.items() if k > 1)
        raise TraceError(f"{path.name}:1: duplicate column(s) {', '.join(twice)}")
    missing = [c for c in required if c not in columns]
    if missing:
        raise TraceError(
            f"{path.name}:1: missing column(s) {', '.join(missing)} "
            f"(header: {','.join(h.strip() for h in header) or 'empty'})"
        )
    return columns


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 (got {limit})")


def csv_cells(path: Path, required: tuple[str, ...]) -> Iterator[Cell]:
    """One ``Cell`` per non-blank data row of the CSV at ``path`` (read by header name);
    TraceError for an empty file, missing required columns or a short row."""
    with path.open(newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            raise TraceError(f"{path.name}: empty file (expected a header line)")
        cols = check_header(path, header, required)
        for line, fields in enumerate(rows, start=2):
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) < len(header):
                raise TraceError(
                    f"{path.name}:{line}: expected {len(header)} fields, got {len(fields)}"
                )
            yield Cell(path, line, cols, fields)
