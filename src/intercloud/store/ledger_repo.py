"""The persisted spend ledger (a mixin of ``Store``): the live loop adds each increment
of ``contracts.ledger.accrue`` and moves the mark in one transaction, so an increment is
either wholly in the store or not at all (a loop killed mid-write accrues it again,
never twice).

Every write is conditional on the mark the writer read (``expected``): a second writer
with the same stale mark (a daemon that lost its lease, a retry after a commit whose
answer was lost) changes nothing. ``replace=True`` swaps the whole ledger (the contracts
changed, so the history is accrued again under the new ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intercloud.contracts.ledger import Accrual, Ledger, ReservedUse
from intercloud.model.pricing import PricingKind
from intercloud.store.tables import (
    LedgerAccrualModel,
    LedgerCashModel,
    LedgerMarkModel,
    LedgerPoolModel,
)

if TYPE_CHECKING:
    from intercloud.store.db import Database

__all__ = ["LedgerMark", "LedgerRepo"]

LA, LC, LP, LM = LedgerAccrualModel, LedgerCashModel, LedgerPoolModel, LedgerMarkModel
_MARK = "ledger"


@dataclass(frozen=True, slots=True)
class LedgerMark:
    """The persisted ledger runs up to ``accrued_until`` under the contracts whose
    digest is ``contracts_key``."""

    accrued_until: datetime
    contracts_key: str


def _month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _date(s: str) -> date:
    return date(int(s[:4]), int(s[5:7]), 1)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class LedgerRepo:
    if TYPE_CHECKING:
        _db: Database

        def _insert_ignore(self, model: type[Any], keys: list[str]) -> sa.Insert: ...

    def ledger_mark(self) -> LedgerMark | None:
        """How far the persisted ledger runs (None: nothing accrued yet)."""
        with self._db.read() as conn:
            return self._mark(conn)

    @staticmethod
    def _mark(conn: Connection) -> LedgerMark | None:
        row = conn.execute(sa.select(LM).where(LM.name == _MARK)).mappings().one_or_none()
        if row is None:
            return None
        return LedgerMark(_aware(row["accrued_until"]), row["contracts_key"])

    def add_ledger(
        self,
        part: Ledger,
        contracts_key: str,
        expected: LedgerMark | None,
        replace: bool = False,
    ) -> bool:
        """Add ``part`` (accrued from ``expected.accrued_until``, or from the start when
        ``expected`` is None or ``replace``) and move the mark to ``part.at`` under
        ``contracts_key``, if the mark is still ``expected``; whether it was written."""
        values = {"accrued_until": part.at, "contracts_key": contracts_key}
        with self._db.write() as conn:
            # the mark moves first, conditionally: one statement, so of two writers
            # holding the same mark (PostgreSQL's row lock serialises them) one wins
            if expected is None:
                # (RETURNING: an ignored insert's rowcount is not portable)
                stmt: sa.Executable = (
                    self._insert_ignore(LM, ["name"])
                    .values(name=_MARK, **values)
                    .returning(LM.name)
                )
            else:
                stmt = (
                    sa.update(LM)
                    .where(
                        LM.name == _MARK,
                        LM.accrued_until == expected.accrued_until,
                        LM.contracts_key == expected.contracts_key,
                    )
                    .values(**values)
                    .returning(LM.name)
                )
            if conn.execute(stmt).first() is None:
                return False
            if replace:
                for model in (LA, LC, LP):
                    conn.execute(sa.delete(model))
            self._add_accruals(conn, part.accruals)
            self._add_cash(conn, part)
            self._add_pools(conn, part.reserved)
            return True

    @staticmethod
    def _add_accruals(conn: Connection, accruals: Iterable[Accrual]) -> None:
        rows = {
            (_month(a.month), a.provider, a.contract or "", a.kind.value, a.tenant): (
                a.node_hours,
                a.usd,
            )
            for a in accruals
        }
        if not rows:
            return
        months = sorted({k[0] for k in rows})
        old = {
            (r.month, r.provider, r.contract, r.kind, r.tenant): (r.node_hours, r.usd)
            for r in conn.execute(sa.select(LA).where(LA.month.in_(months)))
        }
        for k, (h, u) in rows.items():
            key = dict(zip(("month", "provider", "contract", "kind", "tenant"), k, strict=True))
            if k in old:
                oh, ou = old[k]
                where = [getattr(LA, c) == v for c, v in key.items()]
                conn.execute(sa.update(LA).where(*where).values(node_hours=oh + h, usd=ou + u))
            else:
                conn.execute(sa.insert(LA).values(**key, node_hours=h, usd=u))

    @staticmethod
    def _add_cash(conn: Connection, part: Ledger) -> None:
        old = {(r.contract, r.month): r.usd for r in conn.execute(sa.select(LC))}
        for name, series in part.contract_cash.items():
            for m, x in zip(part.months, series, strict=True):
                k = (name, _month(m))
                if k in old:
                    if x:
                        conn.execute(
                            sa.update(LC)
                            .where(LC.contract == k[0], LC.month == k[1])
                            .values(usd=old[k] + x)
                        )
                elif x:
                    conn.execute(sa.insert(LC).values(contract=k[0], month=k[1], usd=x))

    @staticmethod
    def _add_pools(conn: Connection, pools: Iterable[ReservedUse]) -> None:
        cols = ("paid_node_hours", "running_node_hours", "used_node_hours", "usd")
        old = {(r.contract, r.region, r.instance_type): r for r in conn.execute(sa.select(LP))}
        for p in pools:
            k = (p.contract, p.region, p.instance_type)
            add = {c: float(getattr(p, c)) for c in cols}
            if k in old:
                was = old[k]
                conn.execute(
                    sa.update(LP)
                    .where(LP.contract == k[0], LP.region == k[1], LP.instance_type == k[2])
                    .values(**{c: getattr(was, c) + add[c] for c in cols})
                )
            else:
                conn.execute(
                    sa.insert(LP).values(contract=k[0], region=k[1], instance_type=k[2], **add)
                )

    def persisted_ledger(self) -> tuple[LedgerMark, Ledger] | None:
        """The persisted ledger as a ``Ledger`` up to its mark (no spend rate: that is
        measured on the usage itself), None when nothing was accrued yet."""
        with self._db.read() as conn:
            mark = self._mark(conn)
            if mark is None:
                return None
            acc = list(conn.execute(sa.select(LA)))
            cash = list(conn.execute(sa.select(LC)))
            pools = list(conn.execute(sa.select(LP).order_by(*LP.__table__.primary_key)))
        months = sorted({_date(r.month) for r in acc} | {_date(r.month) for r in cash})
        if months:  # contiguous, as ``accrue`` draws them
            first, last = months[0], months[-1]
            months = []
            y, m = first.year, first.month
            while (y, m) <= (last.year, last.month):
                months.append(date(y, m, 1))
                y, m = y + m // 12, m % 12 + 1
        per: dict[str, dict[date, float]] = {}
        for r in cash:
            per.setdefault(r.contract, {})[_date(r.month)] = float(r.usd)
        ledger = Ledger(
            at=mark.accrued_until,
            window=timedelta(0),
            months=tuple(months),
            accruals=tuple(
                Accrual(
                    _date(r.month),
                    r.provider,
                    r.contract or None,
                    PricingKind(r.kind),
                    r.tenant,
                    float(r.node_hours),
                    float(r.usd),
                )
                for r in acc
            ),
            reserved=tuple(
                ReservedUse(
                    r.contract,
                    r.region,
                    r.instance_type,
                    float(r.paid_node_hours),
                    float(r.running_node_hours),
                    float(r.used_node_hours),
                    float(r.usd),
                )
                for r in pools
            ),
            contract_cash={name: tuple(v.get(m, 0.0) for m in months) for name, v in per.items()},
            recent_usd_per_hour={},
        )
        return mark, ledger
