"""The small tables every fleet cycle reads, in one round trip (``CycleReads``).

Each cycle of the fleet decider reads the tenants (their limits), the providers'
health (which are down) and the cool-downs in force: three tables of a few rows, three
statements, and on PostgreSQL three round trips of a loop step that makes a few dozen.
``cycle_state`` reads the three as one statement there: each row as JSON
(``row_to_json``), tagged with its table, decoded as the table's own reads decode it
(times back to aware UTC datetimes, floats as floats), so it equals
``(tenants(), provider_health(), active_blocks(now))`` read at one moment (a test holds
the two to it). SQLite, in this process's file, makes the three reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from intercloud.store.health_repo import _block, _health
from intercloud.store.records import OfferingBlock, ProviderHealth, TenantRecord
from intercloud.store.tables import (
    OfferingBlockModel,
    ProviderHealthModel,
    TenantModel,
    UTCDateTime,
)

if TYPE_CHECKING:
    from intercloud.store.db import Database

__all__ = ["CycleReads", "CycleState"]


@dataclass(frozen=True, slots=True)
class CycleState:
    """What one fleet cycle reads of the small tables."""

    tenants: list[TenantRecord]
    health: list[ProviderHealth]
    blocks: list[OfferingBlock]


_TABLES = (
    cast(sa.Table, TenantModel.__table__),
    cast(sa.Table, ProviderHealthModel.__table__),
    cast(sa.Table, OfferingBlockModel.__table__),
)


def _one_statement() -> sa.TextualSelect:
    tenants, health, blocks = (t.name for t in _TABLES)
    # each table's rows numbered in the order its own read sorts them (the database's
    # collation, not Python's)
    return sa.text(
        f"SELECT 0 AS k, row_number() OVER (ORDER BY t.id) AS o, row_to_json(t) AS r "
        f"FROM {tenants} t "
        f"UNION ALL SELECT 1, row_number() OVER (ORDER BY h.name), row_to_json(h) "
        f"FROM {health} h "
        f"UNION ALL SELECT 2, row_number() OVER (ORDER BY b.provider, b.region, b.zone, "
        f"b.instance_type, b.pricing), row_to_json(b) FROM {blocks} b WHERE b.until > :now"
    ).columns(sa.column("k", sa.Integer), sa.column("o", sa.Integer), sa.column("r", sa.JSON))


_STATEMENT = _one_statement()


def _decoder(table: sa.Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A JSON row of ``table`` as its columns read back: times as aware UTC datetimes
    (``UTCDateTime``), floats as floats (JSON writes 1.0 as 1)."""
    times = [c.name for c in table.columns if isinstance(c.type, UTCDateTime)]
    floats = [c.name for c in table.columns if isinstance(c.type, sa.Float)]

    def decode(row: dict[str, Any]) -> dict[str, Any]:
        for name in times:
            v = row.get(name)
            if v is not None:
                t = datetime.fromisoformat(v)
                row[name] = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        for name in floats:
            v = row.get(name)
            if v is not None:
                row[name] = float(v)
        return row

    return decode


_DECODERS = [_decoder(t) for t in _TABLES]


class CycleReads:
    """Mixin of ``Store``: ``cycle_state``."""

    if TYPE_CHECKING:
        _db: Database

        def _now(self, now: datetime | None) -> datetime: ...
        def tenants(self) -> list[TenantRecord]: ...
        def provider_health(self) -> list[ProviderHealth]: ...
        def active_blocks(self, now: datetime | None = None) -> list[OfferingBlock]: ...

    def cycle_state(self, now: datetime | None = None) -> CycleState:
        """The tenants (by id), every provider's health (by name) and the cool-downs in
        force at ``now`` (by offering), as ``tenants``, ``provider_health`` and
        ``active_blocks`` give them: one statement on PostgreSQL (module docstring)."""
        t = self._now(now)
        if self._db.is_sqlite:
            return CycleState(self.tenants(), self.provider_health(), self.active_blocks(t))
        from intercloud.store.repository import _tenant

        with self._db.read() as conn:
            got = sorted(conn.execute(_STATEMENT, {"now": t}), key=lambda x: (x[0], x[1]))
        parts: list[list[Any]] = [[], [], []]
        for k, _o, r in got:
            parts[k].append(_DECODERS[k](dict(r)))
        return CycleState(
            [_tenant(r) for r in parts[0]],
            [_health(r) for r in parts[1]],
            [_block(r) for r in parts[2]],
        )
