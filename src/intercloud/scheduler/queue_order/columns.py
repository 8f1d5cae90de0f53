"""Per-request columns that fair-share ordering reads, kept across cycles.

A queued request is an immutable ``GangRequest`` that the caller hands back, the same
object, cycle after cycle until it starts. Reading its fields again every cycle is most of
what ordering a long queue costs in Python, so :class:`RequestColumns` reads them once per
object and answers each later cycle with a gather by row. Rows are keyed by ``id(r)``; the
cache holds ``r`` itself, so the id cannot be reused by another object while cached.
Rows of requests gone from the queue are dropped when the cache reaches twice the queue's
size (a compaction that is linear in the cache, rare).

The columns are exactly the straightforward ones (:func:`fresh_columns` reads them anew,
the oracle of the tests): the same Python values converted to numpy the same way; the
tenant codes are numbered by first sight in this cache and renumbered per call by first
appearance in ``pending``, as the straightforward path numbers them (accelerator codes
keep the cache's numbering: which number an accelerator list has changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from intercloud.scheduler.queue_order.base import neg_priority, tie_keys
from intercloud.scheduler.requests import GangRequest
from intercloud.scheduler.tenancy.ledger import UNKNOWN_DURATION_S

try:  # the compiled row lookup (optional; the same rows as the map in ``columns``)
    from intercloud.scheduler._walkc import rows_by_id as _compiled_rows

    _ROWS: Callable[[list[Any], dict[int, int], object], None] | None = _compiled_rows
except ImportError:  # not built here
    _ROWS = None

_TENANT = attrgetter("tenant")
_ACCELERATORS = attrgetter("accelerators")


def gpu_seconds(r: GangRequest) -> float:
    """GPUs × expected seconds (one hour when the duration is unknown)."""
    d = r.duration_s
    return r.nodes * r.gpus_per_node * (UNKNOWN_DURATION_S if d is None else d)


@dataclass(frozen=True, slots=True)
class Columns:
    """The columns of ``pending`` in its order. ``tenant``: codes into ``tenants``,
    numbered by first appearance in ``pending`` (the order of tenants' groups in the
    fair-share key's sums, hence its rounding); ``acc``: codes into ``accs`` (any
    numbering: only ``accs[acc[i]]`` is read)."""

    submit: npt.NDArray[np.float64]
    job_id: npt.NDArray[np.int64]
    neg_prio: npt.NDArray[np.int64]
    gpu_s: npt.NDArray[np.float64]
    tenant: npt.NDArray[np.int64]
    tenants: list[str]
    acc: npt.NDArray[np.int64]
    accs: list[tuple[str, ...]]


def _codes(values: list[object]) -> tuple[npt.NDArray[np.int64], list[object]]:
    names = list(dict.fromkeys(values))
    code = {v: i for i, v in enumerate(names)}
    arr = np.fromiter(map(code.__getitem__, values), dtype=np.int64, count=len(values))
    return arr, names


def fresh_columns(pending: Sequence[GangRequest]) -> Columns:
    """The columns read from every request anew (the straightforward path)."""
    n = len(pending)
    tenant, tenants = _codes(list(map(_TENANT, pending)))
    acc, accs = _codes(list(map(_ACCELERATORS, pending)))
    submit, job_id = tie_keys(pending)
    return Columns(
        submit,
        job_id,
        neg_priority(pending),
        np.fromiter(map(gpu_seconds, pending), dtype=np.float64, count=n),
        tenant, tenants,  # type: ignore[arg-type]
        acc, accs,  # type: ignore[arg-type]
    )  # fmt: skip


def _first_seen(codes: npt.NDArray[np.int64], size: int) -> tuple[npt.NDArray[np.int64], list[int]]:
    """``codes`` (each < ``size``) renumbered by first appearance, and the old code of
    each new one."""
    n = len(codes)
    first = np.full(size, n, dtype=np.int64)
    np.minimum.at(first, codes, np.arange(n, dtype=np.int64))  # first position per code
    present = np.flatnonzero(first < n)
    old = present[np.argsort(first[present])]
    lut = np.empty(size, dtype=np.int64)
    lut[old] = np.arange(len(old), dtype=np.int64)
    return lut[codes], old.tolist()


_FIELDS = (np.float64, np.int64, np.int64, np.float64, np.int64, np.int64)


class RequestColumns:
    """The cache (module docstring); :meth:`columns` equals :func:`fresh_columns`."""

    def __init__(self) -> None:
        self._row: dict[int, int] = {}  # id(request) -> row
        self._objs: list[GangRequest] = []  # holds every cached request (so its id)
        # submit, job id, -priority, GPU-seconds, tenant code, accelerators code; rows
        # past len(self._objs) are spare capacity
        self._cols: list[npt.NDArray[np.generic]] = [np.empty(64, dtype=t) for t in _FIELDS]
        self._tenant_code: dict[str, int] = {}
        self._tenants: list[str] = []
        self._acc_code: dict[tuple[str, ...], int] = {}
        self._accs: list[tuple[str, ...]] = []

    def __len__(self) -> int:
        return len(self._objs)

    def _add(self, r: GangRequest) -> int:
        row = len(self._objs)
        if row == len(self._cols[0]):
            self._cols = [np.concatenate((c, np.empty_like(c))) for c in self._cols]
        self._row[id(r)] = row
        self._objs.append(r)
        t = self._tenant_code.get(r.tenant)
        if t is None:
            t = self._tenant_code[r.tenant] = len(self._tenants)
            self._tenants.append(r.tenant)
        a = self._acc_code.get(r.accelerators)
        if a is None:
            a = self._acc_code[r.accelerators] = len(self._accs)
            self._accs.append(r.accelerators)
        for col, v in zip(
            self._cols, (r.submit_s, r.job_id, -r.priority, gpu_seconds(r), t, a), strict=True
        ):
            col[row] = v
        return row

    def _compact(self, keep: Sequence[GangRequest]) -> None:
        """Keep the rows of ``keep`` only (codes of tenants and accelerators stay)."""
        rows = np.array(sorted({self._row[id(r)] for r in keep}), dtype=np.int64)
        self._objs = [self._objs[i] for i in rows.tolist()]
        self._row = {id(r): i for i, r in enumerate(self._objs)}
        cap = max(64, 2 * len(rows))
        cols = [np.empty(cap, dtype=c.dtype) for c in self._cols]
        for new, old in zip(cols, self._cols, strict=True):
            new[: len(rows)] = old[rows]
        self._cols = cols

    def columns(self, pending: Sequence[GangRequest]) -> Columns:
        n = len(pending)
        if _ROWS is not None and isinstance(pending, list):
            rows = np.empty(n, dtype=np.int64)
            _ROWS(pending, self._row, rows)
        else:
            rows = np.fromiter(map(self._row.get, map(id, pending), repeat(-1)), np.int64, n)
        for i in np.flatnonzero(rows < 0).tolist():
            r = pending[i]
            got = self._row.get(id(r))  # the same object twice in pending: one row
            rows[i] = self._add(r) if got is None else got
        if len(self._objs) > 2 * n + 1024:
            self._compact(pending)
            rows = np.fromiter(map(self._row.__getitem__, map(id, pending)), np.int64, n)
        submit, job_id, neg_prio, gpu_s, tcode, acode = (c[rows] for c in self._cols)
        tenant, t_old = _first_seen(tcode, len(self._tenants))  # type: ignore[arg-type]
        return Columns(
            submit, job_id, neg_prio, gpu_s,  # type: ignore[arg-type]
            tenant, [self._tenants[i] for i in t_old],
            acode, self._accs.copy(),  # type: ignore[arg-type]
        )  # fmt: skip
