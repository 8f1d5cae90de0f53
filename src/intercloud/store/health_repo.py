"""Offering cool-downs and provider health in the store (a mixin of ``Store``).

The rules are ``control.failover``'s (pure); these methods keep their state durable so
that a restarted control loop still knows which offerings are cooling down and which
providers are down. Same contract as every ``Store`` method: one short transaction,
times injected (``now``, timezone-aware), records back as frozen dataclasses. A change
of state (an offering blocked, a provider going down or coming back up) writes an
``events`` row in the same transaction (``offering_blocked``, ``provider_down``,
``provider_up``), so ``status`` and ``queue`` can tell the story.

Both are read-modify-write on one row: the row is created if missing (insert that
ignores a conflict), then read ``FOR UPDATE`` (PostgreSQL; SQLite's write transaction
already holds the database lock) and updated, so two loops never lose a failure.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intercloud.control.failover import (
    CooldownPolicy,
    HealthState,
    next_cooldown,
    next_health,
)
from intercloud.providers.base import OfferingKey
from intercloud.providers.contract import FailureKind
from intercloud.store.records import OfferingBlock, ProviderHealth
from intercloud.store.tables import EventModel, OfferingBlockModel, ProviderHealthModel

if TYPE_CHECKING:
    from intercloud.store.db import Database

__all__ = ["HealthRepo"]

OB = OfferingBlockModel
PH = ProviderHealthModel

#: Longest error text kept (a provider's message can be a page of XML).
MAX_ERROR_CHARS = 2000


def _aware(t: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; every stored time is UTC
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=UTC)


def _block(row: RowMapping) -> OfferingBlock:
    until = _aware(row["until"])
    updated = _aware(row["updated_at"])
    assert until is not None and updated is not None
    return OfferingBlock(
        provider=row["provider"],
        region=row["region"],
        zone=row["zone"],
        instance_type=row["instance_type"],
        pricing=row["pricing"],
        kind=row["kind"],
        reason=row["reason"],
        failures=row["failures"],
        until=until,
        updated_at=updated,
    )


def _health(row: RowMapping) -> ProviderHealth:
    updated = _aware(row["updated_at"])
    assert updated is not None
    return ProviderHealth(
        name=row["name"],
        last_ok_at=_aware(row["last_ok_at"]),
        last_error_at=_aware(row["last_error_at"]),
        first_error_at=_aware(row["first_error_at"]),
        error=row["error"],
        error_kind=row["error_kind"],
        down_since=_aware(row["down_since"]),
        updated_at=updated,
    )


class HealthRepo:
    """Cool-downs (``offering_blocks``) and provider health (``provider_health``)."""

    if TYPE_CHECKING:
        _db: Database

        def _now(self, now: datetime | None) -> datetime: ...

        def _insert_ignore(self, model: type[Any], keys: list[str]) -> sa.Insert: ...

    # -- cool-downs ------------------------------------------------------------------

    def block_offering(
        self,
        key: OfferingKey,
        pricing: str,
        kind: FailureKind,
        reason: str | None,
        now: datetime | None = None,
        *,
        first_s: float = 60.0,
        max_s: float = 3600.0,
        factor: float = 2.0,
    ) -> OfferingBlock:
        """Put offering ``key`` at ``pricing`` in a cool-down after a refusal of ``kind``
        at ``now`` (``failover.next_cooldown``: the block grows with refusals in a
        row, ``first_s`` times ``factor`` per refusal, at most ``max_s``); returns the
        block. The caller decides whether ``kind`` blocks at all
        (``failover.blocks_offering``)."""
        t = self._now(now)
        policy = CooldownPolicy(first_s=first_s, max_s=max_s, factor=factor)
        provider, region, zone, instance_type = key
        where = [
            OB.provider == provider,
            OB.region == region,
            OB.zone == zone,
            OB.instance_type == instance_type,
            OB.pricing == pricing,
        ]
        with self._db.write() as conn:
            conn.execute(
                self._insert_ignore(
                    OB, ["provider", "region", "zone", "instance_type", "pricing"]
                ).values(
                    provider=provider, region=region, zone=zone, instance_type=instance_type,
                    pricing=pricing, kind=kind.value, reason=reason, failures=0, until=t,
                    updated_at=t,
                )
            )  # fmt: skip
            row = conn.execute(sa.select(OB).where(*where).with_for_update()).mappings().one()
            prev = _block(row)
            prev_until = prev.until if prev.failures > 0 else None
            failures, until = next_cooldown(prev.failures, prev_until, t, policy)
            conn.execute(
                sa.update(OB)
                .where(*where)
                .values(
                    kind=kind.value, reason=reason, failures=failures, until=until, updated_at=t
                )
            )
            data = {"provider": provider, "region": region, "zone": zone,
                    "instance_type": instance_type, "pricing": pricing, "kind": kind.value,
                    "failures": failures, "until": until.isoformat()}  # fmt: skip
            self._health_event(conn, "offering_blocked", t, reason or kind.value, data)
            row = conn.execute(sa.select(OB).where(*where)).mappings().one()
        return _block(row)

    def active_blocks(self, now: datetime | None = None) -> list[OfferingBlock]:
        """The cool-downs still running at ``now``, by offering."""
        t = self._now(now)
        stmt = (
            sa.select(OB)
            .where(OB.until > t)
            .order_by(OB.provider, OB.region, OB.zone, OB.instance_type, OB.pricing)
        )
        with self._db.read() as conn:
            return [_block(r) for r in conn.execute(stmt).mappings()]

    # -- provider health -------------------------------------------------------------

    def record_provider_call(
        self,
        name: str,
        ok: bool,
        error: str | None = None,
        kind: FailureKind | None = None,
        now: datetime | None = None,
        *,
        down_after_s: float = 300.0,
    ) -> ProviderHealth:
        """Record one call to provider ``name`` (``failover.next_health``): a failure
        extends its failure streak and marks it down once the streak has lasted
        ``down_after_s``; a success brings it back up. Returns the new health."""
        t = self._now(now)
        if error is not None:
            error = " ".join(error.split())[:MAX_ERROR_CHARS]
        with self._db.write() as conn:
            conn.execute(self._insert_ignore(PH, ["name"]).values(name=name, updated_at=t))
            row = conn.execute(sa.select(PH).where(PH.name == name).with_for_update())
            prev = _health(row.mappings().one())
            new = next_health(
                HealthState(
                    last_ok_at=prev.last_ok_at,
                    last_error_at=prev.last_error_at,
                    first_error_at=prev.first_error_at,
                    error=prev.error,
                    error_kind=prev.error_kind,
                    down_since=prev.down_since,
                ),
                ok,
                t,
                down_after_s,
                error,
                kind,
            )
            conn.execute(
                sa.update(PH)
                .where(PH.name == name)
                .values(
                    last_ok_at=new.last_ok_at,
                    last_error_at=new.last_error_at,
                    first_error_at=new.first_error_at,
                    error=new.error,
                    error_kind=new.error_kind,
                    down_since=new.down_since,
                    updated_at=t,
                )
            )
            if new.down and not prev.down:
                why = f"every call has failed since {new.first_error_at}: {error or kind}"
                self._health_event(conn, "provider_down", t, why, {"provider": name})
            elif prev.down and not new.down:
                self._health_event(conn, "provider_up", t, "a call succeeded", {"provider": name})
            out = conn.execute(sa.select(PH).where(PH.name == name)).mappings().one()
        return _health(out)

    def provider_health(self) -> list[ProviderHealth]:
        """Every provider's recorded health, by name."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(PH).order_by(PH.name)).mappings()
            return [_health(r) for r in rows]

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _health_event(
        conn: Connection, kind: str, t: datetime, reason: str, data: dict[str, Any]
    ) -> None:
        conn.execute(
            sa.insert(EventModel).values(
                workload_id=None, time=t, kind=kind, reason=reason, data=data
            )
        )
