"""The tenant ledger: who runs what, who has used how much, who has spent how much.

The scheduler core asks it two questions per gang decision — may this tenant start this
request now (:meth:`TenantLedger.admit`), and whose borrowed work may a tenant within its
guarantee take back (:meth:`TenantLedger.reclaimable`) — and tells it what happened
(:meth:`TenantLedger.on_start`, :meth:`TenantLedger.on_stop`). Queue-order policies read
:meth:`TenantLedger.dominant_shares` once per scheduling cycle.

Everything is a dict lookup and a few float operations: decayed usage and spend are
updated lazily, on access, from the ``now_s`` the caller passes. The ledger reads no clock.

Time
    ``now_s`` is seconds on the caller's clock and never goes backwards: an earlier
    ``now_s`` than the latest seen is treated as the latest seen (so replaying a call is
    harmless and results stay deterministic).

Quota rule (per tenant ``t`` and GPU type ``g``)
    ``G[t,g]`` is the tenant's guarantee, ``own[t,g]`` the running GPUs counted against
    it, ``borrowed[t,g]`` the running GPUs beyond it; ``pool[g] = max(capacity[g],
    sum_t G[t,g])`` and ``running[g] = sum_t (own + borrowed)[t,g]``.

    * A request for ``n`` GPUs is within guarantee when ``own[t,g] + n <= G[t,g]``: always
      admitted by quota, whoever is borrowing the capacity (the core reclaims it).
    * Otherwise the tenant must borrow: admitted only if ``can_borrow`` and
      ``n <= pool[g] - running[g]`` — the GPUs of the type that nobody's running work holds,
      i.e. the unreserved capacity plus the guaranteed-but-unused GPUs of every tenant
      (the requester's own unused guarantee is used first and counts as idle).
    * On start, the part of the gang that fits in the tenant's remaining guarantee counts
      as ``own``, the rest as ``borrowed``; a job with any borrowed GPU is reclaimable.
      When a tenant's own work stops, its borrowed jobs of that type are promoted into the
      freed guarantee, oldest first, so ``own[t,g] <= G[t,g]`` always holds and borrowing
      is never larger than it has to be.
    * Types neither in ``capacity_by_type`` nor guaranteed to anyone are unmanaged: the
      quota does not limit them (the budget still does), and they count in no share.
    * CPU-only requests (0 GPUs) are never limited by quota.

Budget rule (per tenant with ``monthly_budget_usd``)
    ``spent`` is the cost accrued this month by the tenant's running and finished work
    (``usd_per_hour`` × hours run). ``committed`` is what its running work is still
    expected to cost: ``usd_per_hour`` × the time left until its expected end (start +
    ``expected_duration_s``, or start + 1 h when unknown; nothing once past it). A request
    is held when ``spent + committed + usd_per_hour × expected hours`` would exceed the
    budget, where expected hours are ``req.duration_s / 3600``, or 1 when unknown. So the
    budget holds for all admitted work that ends by its estimate; work that outlives its
    estimate keeps accruing and can overrun it (nothing is stopped by the ledger).
    Committed cost counts fully in the month of admission; at a month boundary ``spent``
    restarts at 0.

Months
    With ``month_start_s=None`` (default) months are UTC calendar months of ``now_s`` read
    as Unix time. With a number, accounting periods are ``month_length_s`` long starting
    at ``month_start_s`` (the twin's simulated clock).

Decayed usage and dominant share
    Usage of type ``g`` is GPU-seconds decayed with half-life ``half_life_s``:
    ``dU/dt = running - λU`` with ``λ = ln 2 / half_life_s`` (``half_life_s=inf``: no decay).
    The (weighted) dominant share of a tenant is ``max_g (U[t,g] / pool[g]) / weight[t]``
    over types with a pool > 0: seconds of the whole type's capacity it has (recently)
    used, per unit of weight. Steady work of ``r`` GPUs tends to ``r / λ`` GPU-seconds, so a
    tenant's share is proportional to its recent fraction of the type; being an integral
    of service, it lets fair share correct past imbalance instead of only the present one.

Unknown tenants
    A tenant not among ``tenants`` is served with ``default_tenant`` under its own name
    (default :data:`DEFAULT_TENANT`: weight 1, no guarantee, may borrow, no budget),
    registered on first sight. With ``default_tenant=None`` unknown tenants are refused:
    ``admit`` answers ``unknown tenant: NAME`` and ``on_start`` raises ``KeyError``.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np

from intercloud.scheduler import reasons
from intercloud.scheduler.reasons import Reason, ReasonCode
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy.running_columns import RunningColumns

DEFAULT_TENANT = TenantSpec(name="*", weight=1.0, guaranteed_gpus={}, can_borrow=True)
"""What an unknown tenant gets: weight 1, no guarantee, may borrow, no budget."""

UNKNOWN_DURATION_S = 3600.0
"""Expected run time assumed for budget purposes when a request does not give one."""

_MONTH_30D_S = 30 * 24 * 3600.0


@dataclass(slots=True)
class _Job:
    job_id: int
    tenant: str
    gpu_type: str
    gpus: int
    borrowed: int  # GPUs beyond the tenant's guarantee (0..gpus)
    usd_per_hour: float
    start_s: float
    end_s: float  # expected end (for the budget's committed cost)
    committed: bool  # still counted in its tenant's committed cost


_BORROWED = attrgetter("borrowed")
_COMMITTED = attrgetter("committed")


class RunningStart(NamedTuple):
    """A job already running, as ``TenantLedger.load_running`` takes it: ``on_start``'s
    arguments (``start_s`` for its ``now_s``)."""

    job_id: int
    tenant: str
    gpu_type: str | None
    gpus: int
    usd_per_hour: float
    start_s: float
    expected_duration_s: float | None = None


class Reclaimable(AbstractSet[int]):
    """Borrowing jobs of some types, less the asking tenant's own (``reclaimable_ids``)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: list[tuple[dict[int, _Job], Mapping[int, _Job]]]) -> None:
        self._parts = parts

    def __contains__(self, j: object) -> bool:
        # a loop, not any(): asked per job of a pool, per preemption turn
        for every, mine in self._parts:  # noqa: SIM110
            if j in every and j not in mine:
                return True
        return False

    def __iter__(self) -> Iterator[int]:
        seen: set[int] = set()
        for every, mine in self._parts:
            for j in every:
                if j not in mine and j not in seen:
                    seen.add(j)
                    yield j

    def __bool__(self) -> bool:
        # the asking tenant's borrowing jobs of a type are among the type's
        return any(len(every) > len(mine) for every, mine in self._parts)

    def among(self, ids: Mapping[int, object]) -> set[int]:
        """The members that are keys of ``ids`` (a pool's jobs): intersections of key
        views, done in C, not a ``__contains__`` call per job of the pool."""
        out: set[int] = set()
        for every, mine in self._parts:
            hit = ids.keys() & every.keys()  # (CPython walks the smaller of the two)
            if hit and mine:
                # not ``hit -= mine.keys()``: that walks all of the asking tenant's
                # borrowing jobs (thousands), where a pool holds a few of them
                hit = {j for j in hit if j not in mine}
            out |= hit
        return out

    def __len__(self) -> int:
        if len(self._parts) == 1:  # the usual case: O(1)
            every, mine = self._parts[0]
            return len(every) - len(mine)
        return sum(1 for _ in self)


@dataclass(slots=True)
class _Checkpoint:
    """A ledger's state for ``TenantLedger.rollback``."""

    tenants: list[
        tuple[
            _Tenant,
            tuple[Any, ...],
            dict[str, tuple[OrderedDict[int, _Job], list[tuple[_Job, int]]]],
        ]
    ]
    flags: list[tuple[_Job, bool, int]]
    jobs: dict[int, _Job]
    running: dict[str, int]
    bver: dict[str, int]


@dataclass(slots=True)
class _Tenant:
    spec: TenantSpec
    weight: float
    guaranteed: dict[str, int]
    budget: float | None
    own: dict[str, int] = field(default_factory=dict)
    borrowed: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    # Borrowing jobs per type, in start order (promotion takes the oldest first; an
    # OrderedDict because a dict's first key is O(deleted keys) to find).
    borrowing: dict[str, OrderedDict[int, _Job]] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)
    usage_s: dict[str, float] = field(default_factory=dict)
    # Spend: accrued up to spend_s at usd_rate (USD per hour of all running work).
    spent: float = 0.0
    spend_s: float = 0.0
    usd_rate: float = 0.0
    jobs: int = 0
    last_month_spent: float = 0.0
    # Committed: sum over committed jobs of rate·end/3600 and rate/3600 (USD, USD/s).
    c_area: float = 0.0
    c_rate: float = 0.0
    c_jobs: int = 0
    c_heap: list[tuple[float, int]] = field(default_factory=list)
    # commitments loaded at once (``load_columns``): ends and job ids sorted by (end,
    # id), taken from ``c_next`` on; together with ``c_heap`` one queue by (end, id)
    c_ends: Any = None
    c_ids: Any = None
    c_next: int = 0
    # grows with every on_start/on_stop of the tenant (its spend and commitments)
    version: int = 0


def _first_seen(codes: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """``codes`` renumbered 0, 1, ... in order of first appearance, and the original
    code of each new one (as a dict filled in that order would number them)."""
    u, first = np.unique(codes, return_index=True)
    seen = u[np.argsort(first)]
    renumber = np.empty(int(u[-1]) + 1, dtype=np.int64)
    renumber[seen] = np.arange(len(seen), dtype=np.int64)
    return renumber[codes], seen.tolist()


def _records(
    cols: RunningColumns, ends: np.ndarray, borrowed: np.ndarray, live: np.ndarray
) -> list[_Job]:
    """The ledger's record of each row of ``cols`` as a fresh load makes it: the one kept
    in ``cols`` where it was made at the same start, its ``borrowed`` and ``committed``
    set again where they differ (the last ledger's cycle may have changed them), else a
    new one (kept in ``cols``)."""
    recs = cols.records
    made_at = cols.record_start
    starts = cols.starts
    same = made_at == starts  # (NaN: never made)
    fresh = np.flatnonzero(~same)
    if len(fresh) < len(recs):
        at = np.flatnonzero(same)
        kept = recs[at].tolist()
        b, c = borrowed[at], live[at]
        now_b = np.fromiter(map(_BORROWED, kept), np.int64, len(kept))
        now_c = np.fromiter(map(_COMMITTED, kept), np.bool_, len(kept))
        for k in np.flatnonzero((now_b != b) | (now_c != c)).tolist():
            job = kept[k]
            job.borrowed = int(b[k])
            job.committed = bool(c[k])
    if len(fresh):
        names, types = cols.names, cols.types
        new = np.empty(len(fresh), dtype=object)
        new[:] = [
            _Job(j, t, g, n, b, u, s, e, c)
            for j, t, g, n, b, u, s, e, c in zip(
                cols.ids[fresh].tolist(), [names[k] for k in cols.tenant[fresh].tolist()],
                [types[k] for k in cols.gtype[fresh].tolist()], cols.gpus[fresh].tolist(),
                borrowed[fresh].tolist(), cols.usd[fresh].tolist(), starts[fresh].tolist(),
                ends[fresh].tolist(), live[fresh].tolist(), strict=True,
            )
        ]  # fmt: skip
        recs[fresh] = new
        made_at[fresh] = starts[fresh]
    made: list[_Job] = recs.tolist()
    return made


def _next_calendar_month_s(now_s: float) -> tuple[float, float]:
    """(start, end) in Unix seconds of the UTC calendar month containing ``now_s``."""
    d = datetime.fromtimestamp(now_s, UTC)
    start = datetime(d.year, d.month, 1, tzinfo=UTC)
    end = datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


class TenantLedger:
    """Running GPUs, decayed usage and monthly spend per tenant; quota and budget checks.

    ``tenants``: the known tenants (names unique, weights > 0, guarantees >= 0).
    ``capacity_by_type``: fleet GPUs per accelerator type (see :meth:`set_capacity`).
    The rules are in the module docstring. Not thread-safe; one scheduler owns it.
    """

    def __init__(
        self,
        tenants: Sequence[TenantSpec],
        capacity_by_type: Mapping[str, int],
        half_life_s: float = 3600.0 * 24,
        month_start_s: float | None = None,
        month_length_s: float = _MONTH_30D_S,
        default_tenant: TenantSpec | None = DEFAULT_TENANT,
    ) -> None:
        if not half_life_s > 0:
            raise ValueError(f"half_life_s must be > 0 (inf: no decay), got {half_life_s}")
        if month_length_s <= 0:
            raise ValueError(f"month_length_s must be > 0, got {month_length_s}")
        self._lam = math.log(2) / half_life_s  # 0.0 for an infinite half-life
        self._now = -math.inf
        self._calendar = month_start_s is None
        self._month_length = month_length_s
        self._month_start = 0.0 if month_start_s is None else float(month_start_s)
        self._month_end = -math.inf if self._calendar else self._month_start + month_length_s
        self._default = default_tenant
        if default_tenant is not None:
            self._check_spec(default_tenant)
        self._tenants: dict[str, _Tenant] = {}
        self._guaranteed_total: dict[str, int] = {}
        self._capacity: dict[str, int] = {}
        self._pool: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._jobs: dict[int, _Job] = {}
        self._borrowing: dict[str, dict[int, _Job]] = {}
        # per type: grows whenever ``_borrowing[type]`` gains or loses a job (what
        # ``reclaimable`` reads besides the tenant's own GPUs); see ``quota_key``
        self._bver: dict[str, int] = {}
        for spec in tenants:
            if spec.name in self._tenants:
                raise ValueError(f"tenant {spec.name!r} given twice")
            self._add(spec)
        for g, c in capacity_by_type.items():
            self.set_capacity(g, c)

    # ----------------------------------------------------------------- tenants and capacity

    @staticmethod
    def _check_spec(spec: TenantSpec) -> None:
        if not spec.weight > 0 or not math.isfinite(spec.weight):
            raise ValueError(f"tenant {spec.name!r}: weight must be > 0, got {spec.weight}")
        for g, n in spec.guaranteed_gpus.items():
            if n < 0:
                raise ValueError(f"tenant {spec.name!r}: guaranteed {g} must be >= 0, got {n}")
        if spec.monthly_budget_usd is not None and spec.monthly_budget_usd < 0:
            raise ValueError(f"tenant {spec.name!r}: monthly_budget_usd must be >= 0")

    def _add(self, spec: TenantSpec) -> _Tenant:
        self._check_spec(spec)
        guaranteed = {g: int(n) for g, n in spec.guaranteed_gpus.items() if n > 0}
        st = _Tenant(spec, float(spec.weight), guaranteed, spec.monthly_budget_usd)
        st.spend_s = self._now
        self._tenants[spec.name] = st
        for g, n in guaranteed.items():
            self._guaranteed_total[g] = self._guaranteed_total.get(g, 0) + n
            self._pool[g] = max(self._capacity.get(g, 0), self._guaranteed_total[g])
        return st

    def _tenant(self, name: str) -> _Tenant | None:
        st = self._tenants.get(name)
        if st is None and self._default is not None:
            st = self._add(replace(self._default, name=name))
        return st

    def set_capacity(self, gpu_type: str, gpus: int) -> None:
        """Set the fleet's GPUs of ``gpu_type`` (elastic pools grow and shrink). Running
        work is not touched; a smaller capacity only limits later borrowing and shares."""
        if gpus < 0:
            raise ValueError(f"capacity of {gpu_type} must be >= 0, got {gpus}")
        self._capacity[gpu_type] = int(gpus)
        self._pool[gpu_type] = max(int(gpus), self._guaranteed_total.get(gpu_type, 0))

    @property
    def tenants(self) -> list[str]:
        """Known tenant names (including defaulted ones seen so far), in registration order."""
        return list(self._tenants)

    def spec(self, tenant: str) -> TenantSpec | None:
        """The tenant's spec (a defaulted tenant's is the default under its name)."""
        st = self._tenant(tenant)
        return None if st is None else st.spec

    def weight(self, tenant: str) -> float:
        """Fair-share weight; an unknown tenant gets the default's (1.0 if refused)."""
        st = self._tenants.get(tenant)
        if st is not None:
            return st.weight
        return self._default.weight if self._default is not None else 1.0

    def capacity(self, gpu_type: str) -> int:
        """The quota pool of a type: ``max(capacity, sum of guarantees)``; 0 if unmanaged."""
        return self._pool.get(gpu_type, 0)

    # ---------------------------------------------------------------------------- time

    def _advance(self, now_s: float) -> float:
        """Clamp ``now_s`` to the latest seen and roll months over; return the clock."""
        if now_s > self._now:
            self._now = now_s
        now = self._now
        if now >= self._month_end:
            self._roll(now)
        return now

    def _roll(self, now: float) -> None:
        """Close the month (or months) that ended at or before ``now``. Spend accrued in
        months wholly skipped over is dropped (those months are over)."""
        old_end = self._month_end
        if self._calendar:
            start, end = _next_calendar_month_s(now)
        else:
            k = math.floor((now - self._month_start) / self._month_length)
            start = self._month_start + k * self._month_length
            end = start + self._month_length
        for st in self._tenants.values():
            if math.isfinite(old_end):
                self._accrue(st, old_end)
                st.last_month_spent = st.spent
            st.spent = 0.0
            st.spend_s = max(st.spend_s, start)
        self._month_start, self._month_end = start, end

    @staticmethod
    def _accrue(st: _Tenant, now: float) -> None:
        dt = now - st.spend_s
        if dt > 0:
            if st.usd_rate:
                st.spent += st.usd_rate * dt / 3600.0
            st.spend_s = now

    def _decay(self, st: _Tenant, g: str, now: float) -> float:
        """Bring ``usage[g]`` to ``now`` (GPU-seconds, decayed) and return it."""
        u = st.usage.get(g, 0.0)
        dt = now - st.usage_s.get(g, now)
        if dt > 0:
            r = st.running.get(g, 0)
            if self._lam:
                d = math.exp(-self._lam * dt)
                u = u * d + (r * (1.0 - d) / self._lam if r else 0.0)
            else:
                u += r * dt
        st.usage[g] = u
        st.usage_s[g] = now
        return u

    def _committed(self, st: _Tenant, now: float) -> float:
        heap = st.c_heap
        ends, ids = st.c_ends, st.c_ids
        k = st.c_next
        n = 0 if ends is None else len(ends)
        # the commitments ended by ``now``, in (end, id) order from the heap and the
        # sorted arrays together
        while True:
            a = heap[0] if heap and heap[0][0] <= now else None
            b = (float(ends[k]), int(ids[k])) if k < n and ends[k] <= now else None
            if a is None and b is None:
                break
            if b is None or (a is not None and a < b):
                _, jid = heapq.heappop(heap)
            else:
                jid = b[1]
                k += 1
            job = self._jobs.get(jid)
            if job is not None and job.committed and job.end_s <= now:
                self._uncommit(st, job)
        st.c_next = k
        if st.c_jobs == 0:
            return 0.0
        return max(0.0, st.c_area - now * st.c_rate)

    @staticmethod
    def _uncommit(st: _Tenant, job: _Job) -> None:
        job.committed = False
        st.c_jobs -= 1
        if st.c_jobs == 0:
            st.c_area = st.c_rate = 0.0
        else:
            rate = job.usd_per_hour / 3600.0
            st.c_area -= rate * job.end_s
            st.c_rate -= rate

    # ----------------------------------------------------------------------- admission

    def borrow_needed(self, tenant: str, gpu_type: str, gpus: int) -> int:
        """How many of ``gpus`` would be borrowed (beyond the guarantee) if started now."""
        st = self._tenant(tenant)
        if st is None or gpus <= 0:
            return 0
        slack = st.guaranteed.get(gpu_type, 0) - st.own.get(gpu_type, 0)
        return max(0, gpus - max(0, slack))

    def idle(self, gpu_type: str) -> int:
        """GPUs of the type's quota pool that no running work holds (may be borrowed)."""
        return max(0, self._pool.get(gpu_type, 0) - self._running.get(gpu_type, 0))

    def admit(
        self, req: GangRequest, gpu_type: str | None, usd_per_hour: float, now_s: float
    ) -> str | None:
        """None if ``req`` may start now on ``gpu_type`` at ``usd_per_hour`` (the whole
        gang's price), else why it is held (``over quota: …``, ``over budget: …``,
        ``unknown tenant: …``). Checks quota, then budget; changes nothing but the clock.
        ``gpu_type`` None (or a CPU-only request) skips the quota check."""
        why = self.admit_reason(req, gpu_type, usd_per_hour, now_s)
        return None if why is None else why.text

    def admit_reason(
        self, req: GangRequest, gpu_type: str | None, usd_per_hour: float, now_s: float
    ) -> Reason | None:
        """``admit`` with the refusal's code (``OVER_QUOTA``, ``OVER_BUDGET``,
        ``UNKNOWN_TENANT``) beside its words."""
        now = self._advance(now_s)
        st = self._tenant(req.tenant)
        if st is None:
            return Reason(ReasonCode.UNKNOWN_TENANT, reasons.unknown_tenant(req.tenant))
        n = req.nodes * req.gpus_per_node
        if n > 0 and gpu_type is not None:
            why = self._quota(st, gpu_type, n)
            if why is not None:
                return Reason(ReasonCode.OVER_QUOTA, why)
        if st.budget is not None:
            hours = (req.duration_s if req.duration_s is not None else UNKNOWN_DURATION_S) / 3600.0
            needs = usd_per_hour * hours
            self._accrue(st, now)
            committed = self._committed(st, now)
            if st.spent + committed + needs > st.budget:
                return Reason(
                    ReasonCode.OVER_BUDGET,
                    reasons.over_monthly_budget(req.tenant, st.spent, committed, st.budget, needs),
                )
        return None

    def quota_refuses(self, tenant: str, gpu_type: str | None, gpus: int) -> bool:
        """Whether ``admit`` refuses ``gpus`` GPUs of ``gpu_type`` to ``tenant`` before its
        budget check, whatever the price: an unknown tenant that is refused, or the quota.
        Changes nothing (but may register a defaulted tenant, as ``admit`` does)."""
        st = self._tenant(tenant)
        if st is None:
            return True
        if gpus <= 0 or gpu_type is None:
            return False
        g = gpu_type
        if st.own.get(g, 0) + gpus <= st.guaranteed.get(g, 0):
            return False
        pool = self._pool.get(g)
        if pool is None:
            return False
        return not (st.spec.can_borrow and gpus <= pool - self._running.get(g, 0))

    def may_reclaim(self, tenant: str, gpu_types: Iterable[str], gpus: int) -> bool:
        """Whether ``reclaimable_ids`` would name any job (O(types))."""
        st = self._tenants.get(tenant)
        if st is None:
            st = self._tenant(tenant)
            if st is None:
                return False
        for g in gpu_types:
            if st.own.get(g, 0) + gpus > st.guaranteed.get(g, 0):
                continue
            every = self._borrowing.get(g)
            if every and len(every) > len(st.borrowing.get(g) or ()):
                return True
        return False

    def _quota(self, st: _Tenant, g: str, n: int) -> str | None:
        guaranteed = st.guaranteed.get(g, 0)
        if st.own.get(g, 0) + n <= guaranteed:
            return None
        pool = self._pool.get(g)
        if pool is None:
            return None  # unmanaged type
        idle = pool - self._running.get(g, 0)
        if st.spec.can_borrow and n <= idle:
            return None
        return reasons.over_quota(
            st.spec.name, g, st.running.get(g, 0), guaranteed, n, idle, st.spec.can_borrow
        )

    # ----------------------------------------------------------------------- bookkeeping

    def on_start(
        self,
        job_id: int,
        tenant: str,
        gpu_type: str | None,
        gpus: int,
        usd_per_hour: float,
        borrowed: bool | None,
        now_s: float,
        expected_duration_s: float | None = None,
    ) -> int:
        """Record that ``job_id`` started; return how many of its GPUs are borrowed.

        The ledger records, it never refuses (call :meth:`admit` first): the part of the
        gang beyond the tenant's remaining guarantee is borrowed and the job reclaimable.
        ``borrowed`` is the caller's expectation, checked when given: True when no GPU
        would be borrowed, or False when some would, raises ``ValueError``.
        ``expected_duration_s`` feeds the budget's committed cost (None: 1 h); pass the
        request's ``duration_s``, as :meth:`admit` assumed.
        Raises ``ValueError`` for a job already running, ``KeyError`` for a refused tenant.
        """
        now = self._advance(now_s)
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} is already running")
        st = self._tenant(tenant)
        if st is None:
            raise KeyError(reasons.unknown_tenant(tenant))
        g = gpu_type if gpu_type is not None and gpus > 0 else ""
        n = gpus if g else 0
        b = 0
        if n:
            self._decay(st, g, now)
            slack = max(0, st.guaranteed.get(g, 0) - st.own.get(g, 0))
            b = max(0, n - slack)
            if borrowed is not None and borrowed != (b > 0):
                raise ValueError(
                    f"job {job_id}: caller says borrowed={borrowed}, ledger borrows {b} GPUs"
                )
        dur = expected_duration_s if expected_duration_s is not None else UNKNOWN_DURATION_S
        job = _Job(job_id, tenant, g, n, b, usd_per_hour, now, now + max(0.0, dur), False)
        self._jobs[job_id] = job
        if n:
            st.own[g] = st.own.get(g, 0) + n - b
            st.running[g] = st.running.get(g, 0) + n
            self._running[g] = self._running.get(g, 0) + n
            if b:
                st.borrowed[g] = st.borrowed.get(g, 0) + b
                st.borrowing.setdefault(g, OrderedDict())[job_id] = job
                self._borrowing.setdefault(g, {})[job_id] = job
                self._bver[g] = self._bver.get(g, 0) + 1
        st.version += 1
        self._accrue(st, now)
        st.spend_s = now
        st.usd_rate += usd_per_hour
        st.jobs += 1
        if usd_per_hour > 0 and job.end_s > now:
            self._committed(st, now)
            job.committed = True
            rate = usd_per_hour / 3600.0
            st.c_area += rate * job.end_s
            st.c_rate += rate
            st.c_jobs += 1
            heapq.heappush(st.c_heap, (job.end_s, job_id))
        return b

    def load_running(self, jobs: Sequence[RunningStart], now_s: float) -> RunningColumns:
        """Record ``jobs`` as running, each since its ``start_s`` (at most ``now_s``),
        and move the clock to ``now_s``: the state ``on_start`` of each in start order
        (``start_s``, then ``job_id``) followed by ``advance(now_s)`` leaves, computed
        in bulk. Counts, borrowing and promotion order are exactly the replay's; the
        float figures are its closed forms summed over the jobs in start order (decayed
        usage ``sum n (1 - e^(-λ (now - start))) / λ``, this month's spend accrued to
        ``now_s``, the commitments not yet expired), so they are a function of the set
        of jobs alone and may differ from a step-by-step replay in the last bits. A live
        loop rebuilding the ledger each cycle calls this instead of thousands of
        ``on_start`` calls. Only on a ledger with nothing running (ValueError); KeyError
        for a refused tenant, ValueError for a job id given twice. Returns the jobs as
        columns (``RunningColumns``), from which the next cycle's ledger loads faster
        (``load_columns``)."""
        cols = RunningColumns.of(jobs, now_s, UNKNOWN_DURATION_S)
        self.load_columns(cols, now_s)
        return cols

    def load_columns(self, cols: RunningColumns, now_s: float) -> None:
        """``load_running`` of the jobs ``cols`` holds (``RunningColumns.of`` or
        ``updated`` at ``now_s``; ValueError for columns of another clock). Reuses the
        ledger records kept in ``cols`` and keeps the ones it makes there: a ledger
        loaded earlier from the same columns must no longer be used."""
        if self._jobs:
            raise ValueError("load_running needs a ledger with nothing running")
        if cols.now_s != now_s:
            raise ValueError(f"columns of clock {cols.now_s} loaded at {now_s}")
        m = len(cols)
        if not m:
            self._advance(now_s)
            return
        starts = cols.starts
        self._advance(float(starts[0]))  # the month of the first start
        now = self._advance(now_s)
        ids = cols.ids.tolist()
        gpus, usd = cols.gpus, cols.usd
        ends = starts + np.maximum(cols.dur, 0.0)

        # tenants, registered in order of first start (as the replay meets them); types
        # coded in order of first start too (the order of each tenant's per-type dicts)
        t_idx, t_first = _first_seen(cols.tenant)
        sts: list[_Tenant] = []
        for c in t_first:
            name = cols.names[c]
            st = self._tenant(name)
            if st is None:
                raise KeyError(reasons.unknown_tenant(name))
            sts.append(st)
        g_idx, g_first = _first_seen(cols.gtype)
        gnames = [cols.types[c] for c in g_first]
        ng = len(gnames)
        pair = t_idx * ng + g_idx

        # own and borrowed in start order, per (tenant, type): what fits the guarantee
        by_pair = np.argsort(pair, kind="stable")
        sorted_pair = pair[by_pair]
        csum = np.cumsum(gpus[by_pair])
        first = np.ones(m, dtype=np.bool_)
        first[1:] = sorted_pair[1:] != sorted_pair[:-1]
        base = (csum - gpus[by_pair])[first]
        cum = np.empty(m, dtype=np.int64)
        cum[by_pair] = csum - np.repeat(base, np.diff(np.append(np.flatnonzero(first), m)))
        guar = np.array([st.guaranteed.get(g, 0) for st in sts for g in gnames], dtype=np.int64)[
            pair
        ]
        borrowed = gpus - (np.minimum(guar, cum) - np.minimum(guar, cum - gpus))

        live = (usd > 0) & (ends > now)  # counted in their tenant's committed cost
        made = _records(cols, ends, borrowed, live)
        self._jobs = dict(zip(ids, made, strict=True))
        # the borrowers in start order, by (tenant, type) and by type: each group's
        # dict built at once (the same insertion order as one on_start after another)
        lenders = np.flatnonzero(borrowed)
        if len(lenders):
            made_a = cols.records
            ids_a = cols.ids
            by_q = pair[lenders]
            for q in np.unique(by_q).tolist():
                ks = lenders[by_q == q]
                one_q = zip(ids_a[ks].tolist(), made_a[ks].tolist(), strict=True)
                sts[q // ng].borrowing[gnames[q % ng]] = OrderedDict(one_q)
            by_g = g_idx[lenders]
            for c in np.unique(by_g).tolist():
                ks = lenders[by_g == c]
                g = gnames[c]
                self._borrowing[g] = dict(zip(ids_a[ks].tolist(), made_a[ks].tolist(), strict=True))
                self._bver[g] = self._bver.get(g, 0) + len(ks)

        # per (tenant, type) GPU counts, per tenant counts and float sums (bincount sums
        # in start order)
        npairs = len(sts) * ng
        run = np.bincount(pair, gpus, npairs).astype(np.int64).tolist()
        bor = np.bincount(pair, borrowed, npairs).astype(np.int64).tolist()
        lam = self._lam
        age = now - starts
        per_gpu = (-np.expm1(-lam * age)) / lam if lam else age
        usage = np.bincount(pair, gpus * per_gpu, npairs).tolist()
        for q in np.unique(pair[gpus > 0]).tolist():
            st, g = sts[q // ng], gnames[q % ng]
            st.running[g] = run[q]
            if bor[q]:
                st.borrowed[g] = bor[q]
            st.own[g] = run[q] - bor[q]
            st.usage[g] = usage[q]
            st.usage_s[g] = now
            self._running[g] = self._running.get(g, 0) + run[q]
        month_start = self._month_start
        nt = len(sts)
        rate = usd / 3600.0
        spent = np.bincount(t_idx, rate * (now - np.maximum(starts, month_start)), nt)
        earlier = starts < month_start
        any_earlier = bool(earlier.any())
        if any_earlier:  # the last month's spend of the jobs that ran in it
            prev_start = (
                _next_calendar_month_s(month_start - 1.0)[0]
                if self._calendar
                else month_start - self._month_length
            )
            ran = np.where(earlier, rate * (month_start - np.maximum(starts, prev_start)), 0.0)
            last = np.bincount(t_idx, ran, nt)
        usd_rate = np.bincount(t_idx, usd, nt)
        c_area = np.bincount(t_idx, np.where(live, rate * ends, 0.0), nt)
        c_rate = np.bincount(t_idx, np.where(live, rate, 0.0), nt)
        c_jobs = np.bincount(t_idx[live], minlength=nt)
        count = np.bincount(t_idx, minlength=nt)
        for c, st in enumerate(sts):
            st.version += int(count[c])
            st.jobs = int(count[c])
            st.spent = float(spent[c])
            st.spend_s = now
            st.usd_rate = float(usd_rate[c])
            if any_earlier:
                st.last_month_spent = float(last[c])
            if c_jobs[c]:
                st.c_area, st.c_rate, st.c_jobs = float(c_area[c]), float(c_rate[c]), int(c_jobs[c])
        live_k = np.flatnonzero(live)
        if len(live_k):  # each tenant's commitments sorted by (end, id): a queue
            by_t = t_idx[live_k]
            ends_l = ends[live_k]
            for c in np.unique(by_t).tolist():
                sel = by_t == c
                st = sts[c]
                own = cols.ids[live_k[sel]]
                if st.c_heap or st.c_ends is not None:  # (a ledger that ran before)
                    st.c_heap.extend(zip(ends_l[sel].tolist(), own.tolist(), strict=True))
                    heapq.heapify(st.c_heap)
                    continue
                order = np.lexsort((own, ends_l[sel]))
                st.c_ends, st.c_ids, st.c_next = ends_l[sel][order], own[order], 0

    def add_spend(self, tenant: str, usd: float, now_s: float) -> None:
        """Count ``usd`` more as spent this month by ``tenant``: work the ledger never saw
        run (a control loop rebuilding the ledger adds the month's finished work this
        way; running work goes through ``on_start``). Bumps the tenant's change counter
        (``budget_key``). ValueError for a negative or non-finite amount, KeyError for a
        refused tenant."""
        if not 0.0 <= usd < math.inf:
            raise ValueError(f"spend must be a finite number >= 0, got {usd}")
        now = self._advance(now_s)
        st = self._tenant(tenant)
        if st is None:
            raise KeyError(reasons.unknown_tenant(tenant))
        self._accrue(st, now)
        st.spent += usd
        st.version += 1

    def on_stop(self, job_id: int, now_s: float) -> bool:
        """Record that ``job_id`` stopped (finished, failed or preempted); False (and no
        change but the clock) if it is not running. Guarantee it frees is handed to the
        tenant's borrowed jobs of the type, oldest first (they stop being reclaimable)."""
        now = self._advance(now_s)
        job = self._jobs.pop(job_id, None)
        if job is None:
            return False
        st = self._tenants[job.tenant]
        st.version += 1
        self._accrue(st, now)
        st.spend_s = now
        st.jobs -= 1
        st.usd_rate = st.usd_rate - job.usd_per_hour if st.jobs else 0.0
        if job.committed:
            self._uncommit(st, job)
        g, n = job.gpu_type, job.gpus
        if not n:
            return True
        self._decay(st, g, now)
        st.running[g] -= n
        self._running[g] -= n
        if job.borrowed:
            st.borrowed[g] -= job.borrowed
            del st.borrowing[g][job_id]
            del self._borrowing[g][job_id]
            self._bver[g] = self._bver.get(g, 0) + 1
        own_freed = n - job.borrowed
        if own_freed:
            st.own[g] -= own_freed
            self._promote(st, g)
        return True

    def _promote(self, st: _Tenant, g: str) -> None:
        slack = st.guaranteed.get(g, 0) - st.own.get(g, 0)
        queue = st.borrowing.get(g)
        while slack > 0 and queue:
            jid = next(iter(queue))
            job = queue[jid]
            m = min(slack, job.borrowed)
            job.borrowed -= m
            st.borrowed[g] -= m
            st.own[g] += m
            slack -= m
            if job.borrowed == 0:
                del queue[jid]
                del self._borrowing[g][jid]
                self._bver[g] = self._bver.get(g, 0) + 1

    # ------------------------------------------------------------ trial and rollback

    def advance(self, now_s: float) -> None:
        """Move the clock to ``now_s`` (month rolls included), as every call does first.
        The core calls it once per cycle so that the ledger's clock does not depend on
        which of the cycle's turns happened to consult it."""
        self._advance(now_s)

    def checkpoint(self, job_ids: Iterable[int], tenant: str) -> _Checkpoint:
        """What ``rollback`` needs to undo, exactly, ``on_stop`` of ``job_ids`` and
        ``admit`` for ``tenant`` at the current clock (``advance`` first, so that no
        month rolls in between): a trial that leaves the ledger as it was, to the last
        float, flag and queue order. Only what those calls touch is saved: the tenants'
        counters and small per-type dicts, the stopped jobs' tenants' borrowing queues
        of the jobs' types (promotion), and the requester's expired commitments are
        retired first (``admit`` would retire them at this clock anyway)."""
        stopped = {j: self._jobs[j] for j in job_ids if j in self._jobs}
        st_t = self._tenant(tenant)
        if st_t is not None and st_t.budget is not None:
            self._committed(st_t, self._now)
        names = dict.fromkeys([tenant, *(job.tenant for job in stopped.values())])
        sts = []
        for name in names:
            st = self._tenants.get(name)
            if st is None:
                continue
            queues = {
                job.gpu_type: st.borrowing.get(job.gpu_type)
                for job in stopped.values()
                if job.tenant == name
            }
            saved = {
                g: (OrderedDict(q), [(job, job.borrowed) for job in q.values()])
                for g, q in queues.items()
                if q is not None
            }
            sts.append(
                (
                    st,
                    (
                        st.version,
                        st.spent,
                        st.spend_s,
                        st.usd_rate,
                        st.jobs,
                        st.c_area,
                        st.c_rate,
                        st.c_jobs,
                        dict(st.own),
                        dict(st.borrowed),
                        dict(st.running),
                        dict(st.usage),
                        dict(st.usage_s),
                    ),
                    saved,
                )
            )
        flags = [(job, job.committed, job.borrowed) for job in stopped.values()]
        return _Checkpoint(sts, flags, stopped, dict(self._running), dict(self._bver))

    def rollback(self, cp: _Checkpoint) -> None:
        """Undo everything since ``checkpoint`` (see there)."""
        for st, v, saved in cp.tenants:
            (
                st.version,
                st.spent,
                st.spend_s,
                st.usd_rate,
                st.jobs,
                st.c_area,
                st.c_rate,
                st.c_jobs,
                st.own,
                st.borrowed,
                st.running,
                st.usage,
                st.usage_s,
            ) = v
            for g, (q, jobs) in saved.items():
                st.borrowing[g] = q
                every = self._borrowing.setdefault(g, {})
                for job, borrowed in jobs:
                    job.borrowed = borrowed
                    # (``reclaimable`` sorts these: their order is immaterial)
                    every[job.job_id] = job
        for job, committed, borrowed in cp.flags:
            job.committed = committed
            job.borrowed = borrowed
        self._jobs.update(cp.jobs)  # (looked up by id only: their order is immaterial)
        self._running = cp.running
        self._bver = cp.bver

    def refuses_whatever_stops(
        self,
        tenant: str,
        gpu_type: str,
        gpus: int,
        own_stoppable: int,
        stoppable: int | None = None,
    ) -> bool:
        """Whether ``admit`` refuses ``gpus`` GPUs of ``gpu_type`` to ``tenant`` by quota
        whatever running work stops first, given that at most ``own_stoppable`` of the
        tenant's own running GPUs of the type are among it (preemption's victims: other
        tenants' work only grows what is idle). Only a tenant that may not borrow can be
        sure: stopping its jobs leaves it at least ``own - own_stoppable`` own GPUs (a
        promotion only adds), so ``own - own_stoppable + gpus > guaranteed`` refuses.
        ``stoppable`` (None: unbounded), at most how many running GPUs of the type stop
        in all: then a tenant that may borrow is sure too when, besides, ``gpus`` exceeds
        what is idle plus ``stoppable``."""
        st = self._tenants.get(tenant)
        if st is None or gpus <= 0 or gpu_type not in self._pool:
            return False
        if st.spec.can_borrow and (
            stoppable is None
            or gpus <= self._pool[gpu_type] - self._running.get(gpu_type, 0) + stoppable
        ):
            return False
        return st.own.get(gpu_type, 0) - own_stoppable + gpus > st.guaranteed.get(gpu_type, 0)

    # ------------------------------------------------------- change keys (memoisation)

    def quota_key(self, tenant: str, gpu_types: Iterable[str], gpus: int) -> tuple[object, ...]:
        """What ``admit``'s quota check and ``reclaimable`` answer for ``gpus`` GPUs of
        each of ``gpu_types`` to ``tenant``, as a key: equal keys, equal answers (and
        reasons). Per type: within the guarantee, the answer is yes and the reclaimable
        jobs are the type's borrowing jobs (a counter bumped on every start or stop of a
        borrowing job and every promotion that ends one's borrowing); beyond it, nothing
        is reclaimable and the answer reads whether the type is managed, the tenant's
        running GPUs and, for a tenant that may borrow, what is idle (as the reason
        shows it). Guarantees and ``can_borrow`` are fixed per tenant. The budget check
        also reads the clock: see ``budget_key``."""
        st = self._tenants.get(tenant)
        if st is None:
            return (tenant in self._tenants, self._default is None)
        if gpus <= 0:
            return ()
        out: list[object] = []
        for g in gpu_types:
            if st.own.get(g, 0) + gpus <= st.guaranteed.get(g, 0):
                out.append((True, self._bver.get(g, 0)))
                continue
            pool = self._pool.get(g)
            if pool is None:
                out.append(None)
                continue
            idle: object = None
            if st.spec.can_borrow:
                free = pool - self._running.get(g, 0)
                idle = "ok" if gpus <= free else max(free, 0)
            out.append((False, st.running.get(g, 0), idle))
        return tuple(out)

    def budget_key(self, tenant: str, now_s: float) -> tuple[float, int] | None:
        """What ``admit``'s budget check reads beyond the request: None for a tenant
        without a budget; else the clock (as ``admit`` would clamp it) and the tenant's
        change counter (bumped by every ``on_start``/``on_stop`` of its jobs; accrual,
        expiring commitments and month rolls are functions of the clock)."""
        st = self._tenants.get(tenant)
        if st is None or st.budget is None:
            return None
        return (max(now_s, self._now), st.version)

    # ------------------------------------------------------------------------ reclaim

    def reclaimable(self, tenant_needing: str, gpu_type: str, gpus: int = 1) -> list[int]:
        """Running jobs of *other* tenants on ``gpu_type`` that hold borrowed GPUs, which
        ``tenant_needing`` may preempt to start ``gpus`` GPUs within its guarantee; newest
        first (they lose the least work), ties by higher job id. Empty when the request is
        not within the tenant's guarantee. The core takes a prefix that frees enough."""
        st = self._tenant(tenant_needing)
        if st is None or st.own.get(gpu_type, 0) + gpus > st.guaranteed.get(gpu_type, 0):
            return []
        jobs = [j for j in self._borrowing.get(gpu_type, {}).values() if j.tenant != st.spec.name]
        jobs.sort(key=lambda j: (-j.start_s, -j.job_id))
        return [j.job_id for j in jobs]

    def reclaimable_ids(
        self, tenant_needing: str, gpu_types: Iterable[str], gpus: int
    ) -> AbstractSet[int]:
        """The jobs ``reclaimable`` lists for each of ``gpu_types``, as one set, without
        sorting them: a read-only view, valid until the ledger next changes (the core
        asks membership of the few jobs in a pool, not the order of them all)."""
        st = self._tenant(tenant_needing)
        parts: list[tuple[dict[int, _Job], Mapping[int, _Job]]] = []
        if st is not None:
            for g in dict.fromkeys(gpu_types):
                if st.own.get(g, 0) + gpus > st.guaranteed.get(g, 0):
                    continue
                every = self._borrowing.get(g)
                if every:
                    parts.append((every, st.borrowing.get(g) or {}))
        return Reclaimable(parts)

    # ---------------------------------------------------------------------- read side

    def running(self, tenant: str, gpu_type: str) -> int:
        """The tenant's running GPUs of the type, borrowed ones included."""
        st = self._tenants.get(tenant)
        return 0 if st is None else st.running.get(gpu_type, 0)

    def borrowed(self, tenant: str, gpu_type: str) -> int:
        """The tenant's running GPUs of the type beyond its guarantee."""
        st = self._tenants.get(tenant)
        return 0 if st is None else st.borrowed.get(gpu_type, 0)

    def guaranteed(self, tenant: str, gpu_type: str) -> int:
        st = self._tenants.get(tenant)
        return 0 if st is None else st.guaranteed.get(gpu_type, 0)

    def total_running(self, gpu_type: str) -> int:
        return self._running.get(gpu_type, 0)

    def is_running(self, job_id: int) -> bool:
        return job_id in self._jobs

    def spent(self, tenant: str, now_s: float) -> float:
        """USD accrued by the tenant's work so far this month."""
        now = self._advance(now_s)
        st = self._tenants.get(tenant)
        if st is None:
            return 0.0
        self._accrue(st, now)
        return st.spent

    def committed(self, tenant: str, now_s: float) -> float:
        """USD its running work is still expected to cost (see the budget rule)."""
        now = self._advance(now_s)
        st = self._tenants.get(tenant)
        return 0.0 if st is None else self._committed(st, now)

    def last_month_spent(self, tenant: str) -> float:
        st = self._tenants.get(tenant)
        return 0.0 if st is None else st.last_month_spent

    def month(self, now_s: float) -> tuple[float, float]:
        """(start, end) of the accounting month containing the clock."""
        self._advance(now_s)
        return self._month_start, self._month_end

    def usage(self, tenant: str, now_s: float) -> dict[str, float]:
        """Decayed GPU-seconds per type."""
        now = self._advance(now_s)
        st = self._tenants.get(tenant)
        if st is None:
            return {}
        return {g: self._decay(st, g, now) for g in self._types(st)}

    @staticmethod
    def _types(st: _Tenant) -> Iterable[str]:
        return list(st.running.keys() | st.usage.keys())

    def dominant_shares(self, now_s: float) -> dict[str, float]:
        """Weighted dominant share of every known tenant at ``now_s``:
        ``max_g (U[t,g] / pool[g]) / weight[t]`` over types with a pool > 0, in seconds
        (0 for a tenant with no usage). Costs O(tenants × types they used)."""
        now = self._advance(now_s)
        pool = self._pool
        out: dict[str, float] = {}
        for name, st in self._tenants.items():
            best = 0.0
            for g in self._types(st):
                cap = pool.get(g, 0)
                if cap > 0:
                    best = max(best, self._decay(st, g, now) / cap)
            out[name] = best / st.weight
        return out

    def share_increment(self, gpu_types: Sequence[str], gpu_seconds: float) -> float:
        """The unweighted dominant-share step of using ``gpu_seconds`` more of the first of
        ``gpu_types`` with a pool > 0 (0 if none): ``gpu_seconds / pool[g]``."""
        for g in gpu_types:
            cap = self._pool.get(g, 0)
            if cap > 0:
                return gpu_seconds / cap
        return 0.0
