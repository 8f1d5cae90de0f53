"""Named leases with expiry in the store (a mixin of ``Store``): the primitive that lets
several processes on one database agree on which of them runs the reconcile loop.

One conditional statement per call, so two contenders never both win: ``acquire_lease``
takes the lease when it is free, expired, or already the caller's (a renewal), and
changes nothing otherwise. Times are the callers' clocks (``now``): hosts sharing a
lease need synchronised clocks, with a skew well under the lease's time to live.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intercloud.store.errors import InvalidRequest
from intercloud.store.records import LeaseRecord
from intercloud.store.tables import LeaseModel

if TYPE_CHECKING:
    from intercloud.store.db import Database

__all__ = ["LeaseRepo"]

L = LeaseModel


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _lease(row: RowMapping) -> LeaseRecord:
    return LeaseRecord(
        name=row["name"],
        holder=row["holder"],
        epoch=row["epoch"],
        acquired_at=_aware(row["acquired_at"]),
        expires_at=_aware(row["expires_at"]),
    )


class LeaseRepo:
    if TYPE_CHECKING:
        _db: Database

        def _now(self, now: datetime | None) -> datetime: ...

        def _insert_ignore(self, model: type[Any], keys: list[str]) -> sa.Insert: ...

    def acquire_lease(
        self, name: str, holder: str, ttl_s: float, now: datetime | None = None
    ) -> LeaseRecord | None:
        """Take or renew lease ``name`` for ``holder`` until ``now + ttl_s``: the lease
        as it stands after, or None when another holder has it unexpired (nothing
        changed). Taking it from another holder (expired) or for the first time bumps
        its ``epoch``; a renewal keeps it."""
        if not name or not holder or len(name) > 64 or len(holder) > 128:
            raise InvalidRequest("lease: name (1-64 characters) and holder (1-128) required")
        if not 0 < ttl_s <= 3600:
            raise InvalidRequest(f"ttl_s: must be above 0 and at most 3600, not {ttl_s}")
        t = self._now(now)
        until = t + timedelta(seconds=ttl_s)
        with self._db.write() as conn:
            fresh = {"name": name, "holder": holder, "epoch": 1, "acquired_at": t,
                     "expires_at": until}  # fmt: skip
            if conn.execute(self._insert_ignore(L, ["name"]).values(fresh)).rowcount == 1:
                return self._lease(conn, name)
            mine = L.holder == holder
            stmt = (
                sa.update(L)
                .where(L.name == name, sa.or_(mine, L.expires_at <= t))
                .values(
                    holder=holder,
                    expires_at=until,
                    epoch=sa.case((mine, L.epoch), else_=L.epoch + 1),
                    acquired_at=sa.case((mine, L.acquired_at), else_=t),
                )
            )
            if conn.execute(stmt).rowcount != 1:
                return None
            return self._lease(conn, name)

    def release_lease(self, name: str, holder: str, now: datetime | None = None) -> bool:
        """Let lease ``name`` go at once if ``holder`` has it (another contender may take
        it at its next try); whether it was the holder's."""
        t = self._now(now)
        stmt = (
            sa.update(L)
            .where(L.name == name, L.holder == holder, L.expires_at > t)
            .values(expires_at=t)
        )
        with self._db.write() as conn:
            return bool(conn.execute(stmt).rowcount == 1)

    def lease(self, name: str) -> LeaseRecord | None:
        """Lease ``name`` as stored (held or expired), None if never taken."""
        with self._db.read() as conn:
            return self._lease(conn, name)

    def _lease(self, conn: Connection, name: str) -> LeaseRecord | None:
        row = conn.execute(sa.select(L).where(L.name == name)).mappings().one_or_none()
        return None if row is None else _lease(row)
