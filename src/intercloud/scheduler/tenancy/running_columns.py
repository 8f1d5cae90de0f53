"""The running jobs a tenant ledger loads, as columns in start order, kept across loads.

``TenantLedger.load_running`` is a function of the running set: a live loop rebuilds
its ledger every cycle from thousands of running jobs of which a handful changed. Most
of a load's time was Python over every job: taking the ``RunningStart`` tuples apart,
putting them in start order, coding tenants and GPU types, and making one ledger record
per job. ``RunningColumns`` holds all of that as numpy columns in start order
(``start_s`` clamped to the load's clock, then job id), with tenants and types as codes;
``updated`` gives the columns of the next running set from the jobs that left and
those that came (numpy over the rows, Python over the changed jobs only), and
``TenantLedger.load_columns`` loads them. The columns also keep the ledger record made
for each row, which the next load reuses (its two mutable fields set again where they
differ): the ledger of an earlier load from the same columns must no longer be used.

What a load makes of the columns is what it makes of the jobs they were taken from:
``updated`` equals ``of`` on the new running set, row for row (a test holds them to
it), so the ledger is bit for bit the one a fresh load builds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from intercloud.scheduler.tenancy.ledger import RunningStart

__all__ = ["RunningColumns"]


@dataclass(slots=True)
class RunningColumns:
    """One load's running jobs as columns (module docstring). ``tenant`` and ``gtype``
    are codes into ``names`` and ``types`` (``""``: a job without a typed GPU, whose
    ``gpus`` is then 0); ``records`` the ledger's record of each row (None until a load
    made it), made with start ``record_start``."""

    now_s: float
    ids: np.ndarray
    starts: np.ndarray  # min(start_s, now_s)
    raw: np.ndarray  # start_s as given
    gpus: np.ndarray
    usd: np.ndarray
    dur: np.ndarray  # expected duration (UNKNOWN_DURATION_S when not given)
    tenant: np.ndarray
    gtype: np.ndarray
    names: list[str]
    types: list[str]
    name_code: dict[str, int]
    type_code: dict[str, int]
    records: np.ndarray  # object: the ledger's record per row, or None
    record_start: np.ndarray  # the start its record was made with (NaN: none)

    @classmethod
    def of(cls, jobs: Sequence[RunningStart], now_s: float, unknown_s: float) -> RunningColumns:
        """The columns of ``jobs`` (any order) at ``now_s``; ``unknown_s`` stands for a
        duration not given."""
        empty = cls._empty(now_s)
        return empty.updated((), jobs, now_s, unknown_s) if jobs else empty

    @classmethod
    def _empty(cls, now_s: float) -> RunningColumns:
        f, i = np.empty(0, np.float64), np.empty(0, np.int64)
        return cls(
            now_s, i, f, f, i, f, f, i, i, [], [], {}, {}, np.empty(0, object), f
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)

    def _order(self, keep: np.ndarray, ids: np.ndarray, starts: np.ndarray, n: int) -> Any:
        """The start order (start, then id) of the kept rows followed by ``n`` new ones:
        the kept rows' own order when no kept start moved with the clock and the new
        rows, in their order, all come after them (the usual case: jobs that just
        started), else a sort."""
        k = len(starts) - n
        if k and not np.array_equal(starts[:k], self.starts[keep]):
            return np.lexsort((ids, starts))
        new = np.lexsort((ids[k:], starts[k:])) + k
        if k and n:
            last, first = k - 1, int(new[0])
            if (float(starts[first]), int(ids[first])) < (float(starts[last]), int(ids[last])):
                return np.lexsort((ids, starts))
        return np.concatenate([np.arange(k, dtype=np.int64), new])

    def updated(
        self,
        gone: Collection[int],
        came: Sequence[RunningStart],
        now_s: float,
        unknown_s: float,
    ) -> RunningColumns:
        """The columns at ``now_s`` of these jobs less those with ids in ``gone``, plus
        ``came`` (a job both gone and come is the new one; ValueError for a job that
        came twice or is still here and not gone). ``now_s`` must not be before these
        columns' clock (ValueError): a record made at a clamped start is remade when the
        clamp moves."""
        if now_s < self.now_s:
            raise ValueError(f"columns at {self.now_s} cannot move back to {now_s}")
        keep = (
            ~np.isin(self.ids, np.fromiter(gone, np.int64, len(gone)))
            if len(gone) and len(self.ids)
            else np.ones(len(self.ids), np.bool_)
        )
        n = len(came)
        names, types = list(self.names), list(self.types)
        name_code, type_code = dict(self.name_code), dict(self.type_code)
        if n:
            ids_, tenants_, types_, gpus_, usd_, raw_, durs_ = zip(*came, strict=True)
            typed = [(g or "") if k > 0 else "" for g, k in zip(types_, gpus_, strict=True)]
            for t in dict.fromkeys(tenants_):
                if t not in name_code:
                    name_code[t] = len(names)
                    names.append(t)
            for g in dict.fromkeys(typed):
                if g not in type_code:
                    type_code[g] = len(types)
                    types.append(g)
            ids_n = np.array(ids_, dtype=np.int64)
            raw_n = np.array(raw_, dtype=np.float64)
            gpus_n = np.array(gpus_, dtype=np.int64)
            gpus_n[np.array([not g for g in typed], dtype=np.bool_)] = 0
            usd_n = np.array(usd_, dtype=np.float64)
            dur_n = np.array([unknown_s if d is None else d for d in durs_], np.float64)
            ten_n = np.fromiter(map(name_code.__getitem__, tenants_), np.int64, n)
            typ_n = np.fromiter(map(type_code.__getitem__, typed), np.int64, n)
        else:
            ids_n = gpus_n = ten_n = typ_n = np.empty(0, np.int64)
            raw_n = usd_n = dur_n = np.empty(0, np.float64)
        kept_ids = self.ids[keep]
        if n and (len(set(ids_n.tolist())) != n or np.isin(ids_n, kept_ids).any()):
            raise ValueError(f"a job id is given twice among {len(kept_ids) + n} jobs")
        ids = np.concatenate([kept_ids, ids_n])
        raw = np.concatenate([self.raw[keep], raw_n])
        starts = np.minimum(raw, now_s)
        order = self._order(keep, ids, starts, n)

        def cat(old: np.ndarray, new: np.ndarray) -> Any:
            return np.concatenate([old[keep], new])[order]

        return RunningColumns(
            now_s=now_s,
            ids=ids[order],
            starts=starts[order],
            raw=raw[order],
            gpus=cat(self.gpus, gpus_n),
            usd=cat(self.usd, usd_n),
            dur=cat(self.dur, dur_n),
            tenant=cat(self.tenant, ten_n),
            gtype=cat(self.gtype, typ_n),
            names=names,
            types=types,
            name_code=name_code,
            type_code=type_code,
            records=cat(self.records, np.full(n, None, object)),
            record_start=cat(self.record_start, np.full(n, np.nan)),
        )
