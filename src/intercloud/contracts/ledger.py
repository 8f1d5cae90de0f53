"""The spend ledger: every node-hour that ran, accrued to a contract or pricing kind, a
tenant and a calendar month (UTC).

Input is a plain sequence of ``model.usage.UsageInterval`` (the store builds it from its
instances and attempts, ``store/usage.py``; the digital twin from its simulated run),
the contracts, and the instant ``at`` the ledger is drawn up to. Accrual rules:

- ``spot``: list price, never toward a commitment.
- ``on_demand`` or ``committed`` at a provider with a commitment (a contract with
  ``committed_usd``) whose term covers the hour: kind ``committed``, toward that contract;
  an on-demand hour costs ``usd_per_hour x (1 - discount)``, a committed hour its
  recorded (already contracted) rate. An interval naming a contract goes to that one;
  others to the provider's first commitment (in the order given) covering the hour.
  Hours outside every commitment keep their own kind at their own rate.
- ``reserved`` under a known contract: the contract's blocks of that region and
  instance type form a pool; the pool costs its blocks' price for every paid node-hour,
  used or not. A tenant is charged the pool's average rate of the month for the
  node-hours it used; what nobody used goes to ``UNASSIGNED``. Use with no paid block
  that month (or under an unknown contract) costs the interval's own ``usd_per_hour``.

Two views of money: ``accruals`` spread every cost over the hours it buys (chargeback);
``contract_cash`` is what each contract is billed month by month (upfront blocks in the
month they start, monthly blocks pro rata by hour, committed hours as they run), the
burn-down's input. Month arithmetic is vectorised: one (intervals x months) overlap
matrix, grouped per key with one sort and ``numpy.add.reduceat``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from intercloud.model.contract import Contract, Payment, ReservedBlock
from intercloud.model.pricing import PricingKind
from intercloud.model.usage import UNASSIGNED, UsageInterval

HOUR_S = 3600.0
#: How far back the spend rate used for projections is measured.
DEFAULT_RATE_WINDOW = timedelta(days=30)

Floats = npt.NDArray[np.float64]
_Key = tuple[str, str | None, PricingKind, str]


def month_start(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def next_month(t: datetime) -> datetime:
    return datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)


def overlap_hours(starts: Floats, ends: Floats, edges: Floats) -> Floats:
    """``(n, m)``: hours of ``[starts[i], ends[i])`` inside ``[edges[j], edges[j+1])``
    (all POSIX seconds)."""
    lo = np.maximum(starts[:, None], edges[None, :-1])
    hi = np.minimum(ends[:, None], edges[None, 1:])
    hi -= lo
    np.maximum(hi, 0.0, out=hi)
    hi /= HOUR_S
    out: Floats = hi
    return out


def group_sum(inv: npt.NDArray[np.int64], groups: int, rows: Floats) -> Floats:
    """``(groups, m)``: the sum of ``rows[i]`` per group ``inv[i]`` (faster than
    ``numpy.add.at`` for 2-D rows: one stable sort, one ``reduceat``)."""
    out: Floats = np.zeros((groups, rows.shape[1]))
    if len(inv) == 0:
        return out
    order = np.argsort(inv, kind="stable")
    sorted_inv = inv[order]
    starts = np.flatnonzero(np.r_[True, sorted_inv[1:] != sorted_inv[:-1]])
    out[sorted_inv[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


def block_rate(contract: Contract, block: ReservedBlock) -> float:
    """USD per node-hour of the block (its own price, else the contract's)."""
    return (
        contract.usd_per_node_hour if block.usd_per_node_hour is None else block.usd_per_node_hour
    )


def block_cash(contract: Contract, block: ReservedBlock, t0: datetime, t1: datetime) -> float:
    """What the block is billed within ``[t0, t1)``: an upfront block all of it at its
    start, a monthly one pro rata by hour of its paid window."""
    start, end = contract.window(block)
    if block.payment is Payment.UPFRONT:
        return contract.block_usd(block) if t0 <= start < t1 else 0.0
    hours = max(0.0, (min(end, t1) - max(start, t0)).total_seconds() / HOUR_S)
    return block.nodes * hours * block_rate(contract, block)


@dataclass(frozen=True, slots=True)
class Accrual:
    """``node_hours`` and ``usd`` of one month, provider, contract (None: none), pricing
    kind and tenant (``UNASSIGNED``: idle capacity)."""

    month: date
    provider: str
    contract: str | None
    kind: PricingKind
    tenant: str
    node_hours: float
    usd: float


@dataclass(frozen=True, slots=True)
class ReservedUse:
    """A contract's reserved pool (its blocks of one region and instance type) up to
    the ledger's instant: node-hours paid, running (any reserved instance up) and used
    (serving a workload), and what the pool cost."""

    contract: str
    region: str
    instance_type: str
    paid_node_hours: float
    running_node_hours: float
    used_node_hours: float
    usd: float

    @property
    def utilisation(self) -> float:
        """Node-hours that served a workload over node-hours paid (0 when nothing was
        paid yet). Running but idle nodes do not count."""
        return self.used_node_hours / self.paid_node_hours if self.paid_node_hours > 0 else 0.0


@dataclass(frozen=True)
class Ledger:
    """The accruals up to ``at``. ``months[j]`` is the j-th month of ``contract_cash``
    series; ``recent_usd_per_hour[c]`` is contract ``c``'s committed (non-reserved)
    spend rate over the ``window`` before ``at`` (within its term)."""

    at: datetime
    window: timedelta
    months: tuple[date, ...]
    accruals: tuple[Accrual, ...]
    reserved: tuple[ReservedUse, ...]
    contract_cash: Mapping[str, tuple[float, ...]]
    recent_usd_per_hour: Mapping[str, float]

    def spent(self, contract: str) -> float:
        """What ``contract`` has been billed up to ``at``."""
        return float(sum(self.contract_cash.get(contract, ())))

    def chargeback(self) -> dict[str, dict[date, float]]:
        """USD per tenant and month (reserved use at its pool's rate, idle capacity and
        unused reservations under ``UNASSIGNED``)."""
        out: dict[str, dict[date, float]] = {}
        for a in self.accruals:
            per = out.setdefault(a.tenant, {})
            per[a.month] = per.get(a.month, 0.0) + a.usd
        return out

    def by_kind(self) -> dict[PricingKind, float]:
        """USD per pricing kind."""
        out: dict[PricingKind, float] = {}
        for a in self.accruals:
            out[a.kind] = out.get(a.kind, 0.0) + a.usd
        return out

    @property
    def total_usd(self) -> float:
        return float(sum(a.usd for a in self.accruals))


class _Sums:
    """Per-key month vectors of node-hours and USD."""

    def __init__(self, months: int) -> None:
        self.m = months
        self.hours: dict[_Key, Floats] = {}
        self.usd: dict[_Key, Floats] = {}

    def add(self, keys: Sequence[_Key], hours: Floats, rates: Floats) -> None:
        """Add rows ``hours[i]`` (node-hours per month) at ``rates[i]`` USD under ``keys[i]``."""
        if not keys:
            return
        index: dict[_Key, int] = {}
        inv = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))
        h = group_sum(inv, len(index), hours)
        u = group_sum(inv, len(index), hours * rates[:, None])
        for k, i in index.items():
            self.add_row(k, h[i], u[i])

    def add_row(self, key: _Key, hours: Floats, usd: Floats) -> None:
        if key in self.hours:
            self.hours[key] = self.hours[key] + hours
            self.usd[key] = self.usd[key] + usd
        else:
            self.hours[key], self.usd[key] = hours.copy(), usd.copy()


def _validate(intervals: Sequence[UsageInterval], at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("at: must be timezone-aware (UTC)")
    for i, u in enumerate(intervals):
        if u.start.tzinfo is None or (u.end is not None and u.end.tzinfo is None):
            raise ValueError(f"intervals[{i}]: start and end must be timezone-aware")
        if u.end is not None and u.end < u.start:
            raise ValueError(f"intervals[{i}].end: before its start")
        if not u.usd_per_hour >= 0:
            raise ValueError(f"intervals[{i}].usd_per_hour: must be >= 0")
        if not u.nodes > 0:
            raise ValueError(f"intervals[{i}].nodes: must be above 0")


def accrue(
    intervals: Sequence[UsageInterval],
    contracts: Sequence[Contract],
    at: datetime,
    window: timedelta = DEFAULT_RATE_WINDOW,
    since: datetime | None = None,
) -> Ledger:
    """The ledger of ``intervals`` under ``contracts`` up to ``at`` (see the module
    docstring for the rules). Intervals still running (``end`` None) run to ``at``;
    time after ``at`` is not accrued. ``since``: accrue only ``[since, at)`` (the
    increment the store adds to its persisted ledger; ``months`` then starts with
    ``since``'s month, and a reserved pool's rate is that of its blocks paid within the
    increment). ValueError naming the field for a naive time, an end before its start,
    a negative price or a node count not above zero."""
    _validate(intervals, at)
    at = at.astimezone(UTC)
    if since is not None:
        if since.tzinfo is None:
            raise ValueError("since: must be timezone-aware (UTC)")
        since = min(since.astimezone(UTC), at)
    known = {c.name: c for c in contracts}
    first = (
        since
        if since is not None
        else min(
            [u.start.astimezone(UTC) for u in intervals if u.start < at]
            + [c.start for c in contracts if c.start < at],
            default=at,
        )
    )
    starts_dt = [month_start(first)]
    while next_month(starts_dt[-1]) < at:
        starts_dt.append(next_month(starts_dt[-1]))
    months = tuple(d.date() for d in starts_dt)
    m = len(months)
    w0 = at - window
    # Month columns (the first from ``since`` when given), then one column for the rate
    # window (its own edges).
    edges = np.array([d.timestamp() for d in starts_dt] + [at.timestamp()])
    if since is not None:
        edges[0] = since.timestamp()
    n = len(intervals)
    s = np.fromiter((u.start.timestamp() for u in intervals), np.float64, n)
    e = np.fromiter(((u.end or at).timestamp() for u in intervals), np.float64, n)
    e = np.minimum(e, at.timestamp())
    nodes = np.fromiter((u.nodes for u in intervals), np.float64, n)
    price = np.fromiter((u.usd_per_hour for u in intervals), np.float64, n)
    hours = (
        np.hstack(
            [overlap_hours(s, e, edges), overlap_hours(s, e, np.array([w0.timestamp(), edges[-1]]))]
        )
        * nodes[:, None]
    )
    pricing = [PricingKind(u.pricing) for u in intervals]
    tenant = [u.tenant or UNASSIGNED for u in intervals]
    provider = [u.provider for u in intervals]
    sums = _Sums(m)
    cash = {c.name: np.zeros(m) for c in contracts}
    recent: dict[str, float] = {}

    def keys(rows: npt.NDArray[np.int64], contract: str | None, kind: PricingKind) -> list[_Key]:
        return [(provider[i], contract, kind, tenant[i]) for i in rows]

    # Commitments take the on-demand and committed hours they cover: an interval naming
    # one over its whole term, the others over the stretches each one owns.
    left = hours.copy()
    eligible = np.array(
        [p in (PricingKind.ON_DEMAND, PricingKind.COMMITTED) for p in pricing], dtype=bool
    )
    named = np.array([u.contract if u.contract in known else "" for u in intervals], dtype=object)
    prov = np.array(provider, dtype=object)
    owned = _owned_stretches(contracts)
    window_edges = np.array([w0.timestamp(), at.timestamp()])
    for c in contracts:
        if c.committed_usd <= 0:
            continue
        at_provider = eligible & (prov == c.provider)
        inside = np.zeros((n, m + 1))
        for rows, stretches in (
            (np.flatnonzero(at_provider & (named == c.name)), [(c.start, c.end)]),
            (np.flatnonzero(at_provider & (named == "")), owned[c.name]),
        ):
            for a, b in stretches:
                lo, hi = a.timestamp(), b.timestamp()
                inside[rows] += (
                    np.hstack(
                        [
                            overlap_hours(s[rows], e[rows], np.clip(edges, lo, hi)),
                            overlap_hours(s[rows], e[rows], np.clip(window_edges, lo, hi)),
                        ]
                    )
                    * nodes[rows, None]
                )
        rows = np.flatnonzero(inside.any(axis=1))
        take = inside[rows]
        left[rows] -= take
        rate = np.where(
            np.array([pricing[i] is PricingKind.ON_DEMAND for i in rows], dtype=bool),
            price[rows] * (1.0 - c.discount),
            price[rows],
        )
        sums.add(keys(rows, c.name, PricingKind.COMMITTED), take[:, :m], rate)
        cash[c.name] += (take[:, :m] * rate[:, None]).sum(axis=0)
        term_w = np.clip(window_edges, c.start.timestamp(), c.end.timestamp())
        window_h = (term_w[1] - term_w[0]) / HOUR_S
        recent[c.name] = float((take[:, m] * rate).sum() / window_h) if window_h > 0 else 0.0
    np.maximum(left, 0.0, out=left)  # float noise only
    for kind in (PricingKind.ON_DEMAND, PricingKind.COMMITTED, PricingKind.SPOT):
        rows = np.flatnonzero(np.array([p is kind for p in pricing], dtype=bool))
        sums.add(keys(rows, None, kind), left[rows, :m], price[rows])

    reserved = _reserved(intervals, contracts, hours[:, :m], edges, sums, cash)
    accruals = tuple(
        Accrual(months[j], k[0], k[1], k[2], k[3], float(sums.hours[k][j]), float(sums.usd[k][j]))
        for k in sorted(sums.hours, key=lambda k: (k[0], k[1] or "", k[2].value, k[3]))
        for j in range(m)
        if sums.hours[k][j] > 0 or sums.usd[k][j] > 0
    )
    for c in contracts:
        recent.setdefault(c.name, 0.0)
    return Ledger(
        at=at,
        window=window,
        months=months,
        accruals=accruals,
        reserved=reserved,
        contract_cash={name: tuple(float(x) for x in v) for name, v in cash.items()},
        recent_usd_per_hour=recent,
    )


def _owned_stretches(contracts: Sequence[Contract]) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per commitment, the stretches of time in which it is the first (in the order
    given) commitment of its provider whose term covers them: disjoint across a
    provider's commitments, so overlapping terms never count an hour twice."""
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    commitments = [c for c in contracts if c.committed_usd > 0]
    for c in commitments:
        out[c.name] = []
    for p in {c.provider for c in commitments}:
        mine = [c for c in commitments if c.provider == p]
        cuts = sorted({t for c in mine for t in (c.start, c.end)})
        for a, b in pairwise(cuts):
            owner = next((c for c in mine if c.start <= a and b <= c.end), None)
            if owner is not None:
                stretches = out[owner.name]
                if stretches and stretches[-1][1] == a:
                    stretches[-1] = (stretches[-1][0], b)
                else:
                    stretches.append((a, b))
    return out


def _reserved(
    intervals: Sequence[UsageInterval],
    contracts: Sequence[Contract],
    hours: Floats,
    edges: Floats,
    sums: _Sums,
    cash: dict[str, Floats],
) -> tuple[ReservedUse, ...]:
    """Accrue reserved use and the reserved pools' cost; bill each block's cash."""
    m = hours.shape[1]
    known = {c.name: c for c in contracts}
    at = datetime.fromtimestamp(float(edges[-1]), UTC)
    month_dt = [datetime.fromtimestamp(float(x), UTC) for x in edges[:-1]]
    pools: dict[tuple[str, str, str], tuple[Floats, Floats]] = {}  # paid hours, pro-rata usd
    for c in contracts:
        for b in c.blocks:
            start, end = c.window(b)
            paid = overlap_hours(np.array([start.timestamp()]), np.array([end.timestamp()]), edges)[
                0
            ] * float(b.nodes)
            key = (c.name, b.region, b.instance_type)
            ph, pu = pools.get(key, (np.zeros(m), np.zeros(m)))
            pools[key] = (ph + paid, pu + paid * block_rate(c, b))
            bounds = [*month_dt, at]
            cash[c.name] += np.array([block_cash(c, b, bounds[j], bounds[j + 1]) for j in range(m)])
    running: dict[tuple[str, str, str], Floats] = {}
    used: dict[tuple[str, str, str], Floats] = {}
    rows_by: dict[tuple[str, str, str] | None, list[int]] = {}
    for i, u in enumerate(intervals):
        if PricingKind(u.pricing) is not PricingKind.RESERVED:
            continue
        pool = (u.contract, u.region, u.instance_type) if u.contract in known else None
        rows_by.setdefault(pool, []).append(i)
    for pool, rows in rows_by.items():
        idx = np.array(rows, np.int64)
        price = np.array([intervals[i].usd_per_hour for i in rows])
        h = hours[idx]
        ks: list[_Key] = [
            (
                intervals[i].provider,
                pool[0] if pool else None,
                PricingKind.RESERVED,
                intervals[i].tenant or UNASSIGNED,
            )
            for i in rows
        ]
        if pool is None or pool not in pools:
            sums.add(ks, h, price)
            continue
        paid_h, paid_usd = pools[pool]
        avg = np.divide(paid_usd, paid_h, out=np.zeros(m), where=paid_h > 0)
        # Hours in months with no paid block cost the interval's own price.
        usd = np.where(paid_h[None, :] > 0, h * avg[None, :], h * price[:, None])
        index: dict[_Key, int] = {}
        inv = np.fromiter((index.setdefault(k, len(index)) for k in ks), np.int64, len(ks))
        gh, gu = group_sum(inv, len(index), h), group_sum(inv, len(index), usd)
        for k, j in index.items():
            sums.add_row(k, gh[j], gu[j])
        running[pool] = h.sum(axis=0)
        served = np.array([intervals[i].tenant is not None for i in rows], dtype=bool)
        used[pool] = h[served].sum(axis=0)
    out: list[ReservedUse] = []
    for (name, region, itype), (paid_h, paid_usd) in sorted(pools.items()):
        r_h = running.get((name, region, itype), np.zeros(m))
        u_h = used.get((name, region, itype), np.zeros(m))
        avg = np.divide(paid_usd, paid_h, out=np.zeros(m), where=paid_h > 0)
        # Idle instances were charged to UNASSIGNED above; here what no instance ran.
        idle_h = np.clip(paid_h - r_h, 0.0, None)
        provider = known[name].provider
        if idle_h.any():
            sums.add_row((provider, name, PricingKind.RESERVED, UNASSIGNED), idle_h, idle_h * avg)
        out.append(
            ReservedUse(
                name,
                region,
                itype,
                float(paid_h.sum()),
                float(r_h.sum()),
                float(u_h.sum()),
                float(paid_usd.sum()),
            )
        )
    return tuple(out)


def _accrual_order(k: tuple[date, str, str | None, PricingKind, str]) -> tuple[str, ...]:
    """``accrue``'s order: provider, contract, kind, tenant, then month."""
    return (k[1], k[2] or "", k[3].value, k[4], k[0].isoformat())


def merge(
    parts: Sequence[Ledger],
    at: datetime,
    window: timedelta,
    recent_usd_per_hour: Mapping[str, float],
    first: date | None = None,
) -> Ledger:
    """One ledger from ``parts`` that accrued disjoint stretches of time (the store's
    persisted increments and the tail since): accruals, reserved pools and contract
    cash summed per key and month; instant, window and spend rate as given. ``months``
    runs without a gap from the earliest month of the parts (or ``first``, when
    earlier) to the latest."""
    acc: dict[tuple[date, str, str | None, PricingKind, str], list[float]] = {}
    pools: dict[tuple[str, str, str], list[float]] = {}
    cash: dict[str, dict[date, float]] = {}
    months: set[date] = set() if first is None else {first.replace(day=1)}
    for led in parts:
        months.update(led.months)
        for a in led.accruals:
            row = acc.setdefault((a.month, a.provider, a.contract, a.kind, a.tenant), [0.0, 0.0])
            row[0] += a.node_hours
            row[1] += a.usd
        for r in led.reserved:
            p = pools.setdefault((r.contract, r.region, r.instance_type), [0.0] * 4)
            for i, x in enumerate(
                (r.paid_node_hours, r.running_node_hours, r.used_node_hours, r.usd)
            ):
                p[i] += x
        for name, series in led.contract_cash.items():
            per = cash.setdefault(name, {})
            for mo, x in zip(led.months, series, strict=True):
                per[mo] = per.get(mo, 0.0) + x
    if months:  # contiguous, as ``accrue`` draws them
        first, last = min(months), max(months)
        t = datetime(first.year, first.month, 1, tzinfo=UTC)
        while t.date() <= last:
            months.add(t.date())
            t = next_month(t)
    order = tuple(sorted(months))
    return Ledger(
        at=at,
        window=window,
        months=order,
        accruals=tuple(
            Accrual(k[0], k[1], k[2], k[3], k[4], v[0], v[1])
            for k, v in sorted(acc.items(), key=lambda kv: _accrual_order(kv[0]))
        ),
        reserved=tuple(ReservedUse(k[0], k[1], k[2], *v) for k, v in sorted(pools.items())),
        contract_cash={name: tuple(per.get(mo, 0.0) for mo in order) for name, per in cash.items()},
        recent_usd_per_hour=dict(recent_usd_per_hour),
    )
