"""Store methods for instances (issue 10): a mixin that ``Store`` inherits.

Same contract as every ``Store`` method (see ``repository``): one short transaction per
call; state changes are compare-and-set on ``(id, state[, version])`` and return None
when the guard no longer holds (nothing changed: re-read and decide again); every change
bumps ``version`` and writes an ``events`` row of kind ``instance`` naming the instance
(``instance_id``) and, when the instance serves one, its workload. Legal moves are
``control.instances.transitions.TRANSITIONS``.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, RowMapping

from intercloud.control.instances.transitions import LIVE, check_instance_transition
from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState
from intercloud.store.errors import InvalidRequest
from intercloud.store.prepared import (
    EVENT_COLUMNS,
    EVENT_FROM_ROW,
    event_params,
    guarded_row,
    guarded_update,
    prepared,
)
from intercloud.store.records import AssignmentState, EventRecord, InstanceRecord
from intercloud.store.row_cache import RowCache
from intercloud.store.row_image import RowImage
from intercloud.store.tables import EventModel, InstanceModel, RowDeletionModel
from intercloud.store.write_journal import note_rows

if TYPE_CHECKING:
    from enum import StrEnum

    from intercloud.store.db import Database

IM = InstanceModel
E = EventModel

#: Instance columns that ``transition_instance`` and ``set_instance_fields`` may set.
INSTANCE_FIELDS: frozenset[str] = frozenset(
    {
        "provider_instance_id",
        "address",
        "zone",
        "failure_kind",
        "extra",
        "heartbeat_at",
        "secret_hash",
        "usd_per_hour",
    }
)
#: Longest request id (the column is 128 wide; providers take at most 64).
MAX_REQUEST_ID = 64
#: Most instances one request may bring up.
MAX_REQUEST_COUNT = 10_000
_LIVE_VALUES = [s.value for s in LIVE]
_LIVE_SET = frozenset(_LIVE_VALUES)


def instance_from_row(row: RowMapping) -> InstanceRecord:
    """A stored ``instances`` row as its record."""
    d = dict(row)
    d.pop("change_seq", None)
    if d["assignment_state"] is not None:
        d["assignment_state"] = AssignmentState(d["assignment_state"])
    return InstanceRecord(**d)


#: What says an instance row changed (``RowCache``): its version, plus the columns a
#: writer may change without bumping it (heartbeats set ``heartbeat_at`` and ``address``;
#: state, binding and assignment are compared too, so a direct write is seen).
_KEY_COLUMNS = (
    IM.version,
    IM.state,
    IM.workload_id,
    IM.assignment_state,
    IM.heartbeat_at,
    IM.address,
)


def _instance_key(rec: InstanceRecord) -> tuple[Any, ...]:
    a = rec.assignment_state
    return (
        rec.version, rec.state, rec.workload_id, None if a is None else a.value,
        rec.heartbeat_at, rec.address,
    )  # fmt: skip


def instance_row_image() -> RowImage[InstanceRecord]:
    """The live instance rows and the bound ones (ended too: the node bridge reports
    their end), by id (``row_image``)."""
    return RowImage(
        IM.__table__,  # type: ignore[arg-type]
        sa.select(IM),
        instance_from_row,
        _LIVE_VALUES,
        lambda r: r.id,
        also=(IM.workload_id.is_not(None), lambda row: row["workload_id"] is not None),
        stamps=RowDeletionModel.__table__,  # type: ignore[arg-type]
    )


def instance_row_cache() -> RowCache[InstanceRecord]:
    """The cache ``Store.instances`` reads through (one per store)."""
    return RowCache(instance_from_row, _instance_key)


def _check_instance_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - INSTANCE_FIELDS
    if unknown:
        raise TypeError(f"cannot set instance field(s) {', '.join(sorted(unknown))}")


class _BindConflict(Exception):
    """One instance of a bind was not idle and running any more (rolls the bind back)."""


class InstanceStoreMixin:
    """Instances: requested, observed, bound to job nodes, assigned, ended."""

    if TYPE_CHECKING:
        _db: Database
        _instance_rows: RowCache[InstanceRecord]
        _instance_image: RowImage[InstanceRecord]

        def _now(self, now: datetime | None) -> datetime: ...

        def _read_token(self) -> Hashable | None: ...

        def _event(
            self,
            conn: Connection,
            workload_id: int | None,
            kind: str,
            time: datetime,
            *,
            from_state: StrEnum | None = None,
            to_state: StrEnum | None = None,
            reason: str | None = None,
            data: Mapping[str, Any] | None = None,
            instance_id: int | None = None,
        ) -> int: ...

        def _insert_ignore(self, model: type[Any], keys: list[str]) -> sa.Insert: ...

    # -- reads -----------------------------------------------------------------------

    def instances(
        self,
        states: Collection[InstanceState | str] | None = None,
        provider: str | None = None,
        workload_id: int | None = None,
        request_id: str | None = None,
        bound: bool | None = None,
    ) -> list[InstanceRecord]:
        """Instances (by id), filtered by any of: states, provider, the workload they
        serve, their launch request, whether they serve a job node (``bound``). Rows
        unchanged since an earlier call are not decoded again (``row_cache``); a read of
        live states only fetches the rows changed since the last one (``row_image``)."""
        wanted = None if states is None else {InstanceState(s).value for s in states}
        # the image holds every live row and every row bound to a job (in any state)
        if (
            (wanted is not None and self._instance_image.covers(wanted))
            or bound is True
            or workload_id is not None
        ):
            image = self._instance_image
            image.refresh(self._db.read, self._read_token())
            # filters and the rows by job over the image, kept and patched with the
            # changed rows (``RowImage.filtered``, ``RowImage.group``)
            if workload_id is not None:
                rows = image.group("by_job", _job_of, workload_id)
            else:
                key = None if wanted is None else frozenset(wanted)
                test = partial(_keeps, key, bound, provider)
                rows = image.filtered(("rows", key, bound, provider), test)
                if request_id is None:
                    return rows
            return [
                r
                for r in rows
                if (wanted is None or r.state in wanted)
                and (provider is None or r.provider == provider)
                and (request_id is None or r.request_id == request_id)
                and (bound is None or (r.workload_id is not None) == bound)
            ]
        stmt = sa.select(IM.id, *_KEY_COLUMNS)
        if states is not None:
            stmt = stmt.where(IM.state.in_([InstanceState(s).value for s in states]))
        if provider is not None:
            stmt = stmt.where(IM.provider == provider)
        if workload_id is not None:
            stmt = stmt.where(IM.workload_id == workload_id)
        if request_id is not None:
            stmt = stmt.where(IM.request_id == request_id)
        if bound is not None:
            stmt = stmt.where(IM.workload_id.is_not(None) if bound else IM.workload_id.is_(None))
        with self._db.read() as conn:
            return self._instance_rows.read(
                conn, stmt.order_by(IM.id), lambda ids: sa.select(IM).where(IM.id.in_(ids))
            )

    def get_instance(self, instance_id: int) -> InstanceRecord | None:
        """The instance, or None when there is no such row."""
        with self._db.read() as conn:
            return self._get_instance(conn, instance_id)

    @staticmethod
    def _updated_instance(
        conn: Connection,
        values: Mapping[str, Any],
        guards: Mapping[str, Any],
        kind: str = "",
        extra: Mapping[str, Any] | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> InstanceRecord | None:
        """Set ``values`` on the instance row matching every ``guards`` column (and the
        conditions of ``kind``: ``_instance_update``), its version bumped; the row as it
        wrote it (RETURNING: no second statement to read it back), or None when the
        guards matched nothing. The statement is ``prepared`` once per shape.
        ``event``: written with it (``guarded_row``)."""
        row = guarded_row(
            conn,
            ("instance", kind),
            values,
            guards,
            partial(_instance_update, kind),
            extra,
            event=event,
        )
        return None if row is None else instance_from_row(row)

    def _get_instance(self, conn: Connection, instance_id: int) -> InstanceRecord | None:
        row = conn.execute(sa.select(IM).where(IM.id == instance_id)).mappings().one_or_none()
        return None if row is None else instance_from_row(row)

    def owned_request_ids(self, provider: str) -> set[str]:
        """Request ids of this provider's instances that are not final: what a sweep must
        leave alone."""
        stmt = sa.select(IM.request_id).where(IM.provider == provider, IM.state.in_(_LIVE_VALUES))
        with self._db.read() as conn:
            return {str(r) for r in conn.execute(stmt.distinct()).scalars()}

    def instance_events(self, instance_id: int) -> list[EventRecord]:
        """The instance's history, oldest first."""
        stmt = sa.select(E).where(E.instance_id == instance_id).order_by(E.id)
        with self._db.read() as conn:
            return [EventRecord(**r) for r in conn.execute(stmt).mappings()]

    # -- request ---------------------------------------------------------------------

    def request_instances(
        self,
        request_id: str,
        count: int,
        offering: tuple[str, str, str, str],
        pricing: PricingKind | str,
        usd_per_hour: float,
        contract: str | None = None,
        extra: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> list[InstanceRecord]:
        """Record ``count`` REQUESTED instances of one launch request (slots 0..count-1)
        and return every row of the request, by slot.

        Idempotent by ``(request_id, slot)``: asking again inserts nothing new. The
        instance reconcile step launches them. InvalidRequest (naming the field) for a
        bad id, count, offering, pricing or price.
        """
        if not request_id or len(request_id) > MAX_REQUEST_ID or not request_id.isprintable():
            raise InvalidRequest(f"request_id: must be 1-{MAX_REQUEST_ID} printable characters")
        if not 1 <= count <= MAX_REQUEST_COUNT:
            raise InvalidRequest(f"count: must be 1-{MAX_REQUEST_COUNT}, got {count}")
        provider, region, zone, instance_type = offering
        if not provider or not region or not instance_type:
            raise InvalidRequest("offering: provider, region and instance type are required")
        try:
            kind = PricingKind(pricing)
        except ValueError:
            raise InvalidRequest(f"pricing: unknown pricing kind {pricing!r}") from None
        if not usd_per_hour >= 0:
            raise InvalidRequest(f"usd_per_hour: must be >= 0, got {usd_per_hour}")
        t = self._now(now)
        with self._db.write() as conn:
            for slot in range(count):
                values = {
                    "request_id": request_id,
                    "slot": slot,
                    "provider": provider,
                    "region": region,
                    "zone": zone,
                    "instance_type": instance_type,
                    "pricing": kind.value,
                    "contract": contract,
                    "usd_per_hour": float(usd_per_hour),
                    "state": InstanceState.REQUESTED.value,
                    "version": 1,
                    "created_at": t,
                    "updated_at": t,
                    "extra": dict(extra) if extra is not None else None,
                }
                stmt = self._insert_ignore(IM, ["request_id", "slot"]).values(values)
                result = conn.execute(stmt.returning(IM.id))
                new_id = result.scalar_one_or_none()
                if new_id is not None:
                    self._event(
                        conn,
                        None,
                        "instance",
                        t,
                        to_state=InstanceState.REQUESTED,
                        reason=f"requested {kind.value} {instance_type} in {region}",
                        data={"request_id": request_id, "slot": slot},
                        instance_id=int(new_id),
                    )
            rows = conn.execute(
                sa.select(IM).where(IM.request_id == request_id).order_by(IM.slot)
            ).mappings()
            return [instance_from_row(r) for r in rows]

    # -- state -----------------------------------------------------------------------

    def transition_instance(
        self,
        instance_id: int,
        expected_state: InstanceState | str,
        new_state: InstanceState | str,
        reason: str | None = None,
        expected_version: int | None = None,
        now: datetime | None = None,
        **fields: Any,
    ) -> InstanceRecord | None:
        """Move the instance ``expected_state -> new_state`` if it is still there (and at
        ``expected_version`` when given); return the new record or None (guard failed or
        no such instance).

        Also sets ``reason`` and any ``INSTANCE_FIELDS`` in ``fields``; ``running_at``
        (and ``idle_since`` when idle) on entering RUNNING; ``ended_at`` on entering a
        final state. IllegalInstanceTransition for a move the machine forbids (a bug:
        nothing is written), TypeError for an unknown field.
        """
        src, dst = InstanceState(expected_state), InstanceState(new_state)
        check_instance_transition(src, dst)
        _check_instance_fields(fields)
        t = self._now(now)
        values: dict[str, Any] = {**fields, "state": dst.value, "reason": reason, "updated_at": t}
        kind, extra = "", None
        if dst is InstanceState.RUNNING:
            values["running_at"] = t
            # idle from now unless it serves a job (``_instance_update``)
            kind, extra = "running", {_IDLE_FROM: t}
        if dst.is_final:
            values["ended_at"] = t
        guards: dict[str, Any] = {"id": instance_id, "state": src.value}
        if expected_version is not None:
            guards["version"] = expected_version
        data = {k: v for k, v in fields.items() if k not in ("secret_hash",)}
        event = event_params(
            EVENT_FROM_ROW,
            "instance",
            t,
            from_state=src,
            to_state=dst,
            reason=reason,
            data=_jsonable(data) or None,
            instance_id=instance_id,
        )
        with self._db.write(one_statement=True) as conn:
            return self._updated_instance(conn, values, guards, kind, extra, event)

    def set_instance_fields(
        self,
        instance_id: int,
        expected_version: int,
        reason: str | None = None,
        now: datetime | None = None,
        **fields: Any,
    ) -> InstanceRecord | None:
        """Change non-state columns (``INSTANCE_FIELDS``) if the instance is still at
        ``expected_version``; the new record, or None (guard failed)."""
        _check_instance_fields(fields)
        t = self._now(now)
        values: dict[str, Any] = {**fields, "updated_at": t}
        if reason is not None:
            values["reason"] = reason
        guards = {"id": instance_id, "version": expected_version}
        data = {k: v for k, v in fields.items() if k not in ("secret_hash",)}
        event = event_params(
            EVENT_FROM_ROW,
            "instance",
            t,
            reason=reason or "updated",
            data=_jsonable(data) or None,
            instance_id=instance_id,
        )
        with self._db.write(one_statement=True) as conn:
            return self._updated_instance(conn, values, guards, event=event)

    # -- binding to job nodes --------------------------------------------------------

    def bind_instances(
        self,
        workload_id: int,
        attempt: int,
        instance_ids: list[int],
        now: datetime | None = None,
    ) -> list[InstanceRecord] | None:
        """Give the instances to one attempt of a job, ranks 0..n-1 in the order given.

        All or nothing: only instances that are RUNNING and idle are taken; if any of
        them is not (any more), nothing changes and None is returned.
        """
        if len(set(instance_ids)) != len(instance_ids) or not instance_ids:
            raise InvalidRequest("instance_ids: must be distinct and not empty")
        t = self._now(now)
        if not self._db.is_sqlite:
            return self._bind_in_one_statement(workload_id, attempt, instance_ids, t)
        try:
            with self._db.write() as conn:
                out: list[InstanceRecord] = []
                for rank, iid in enumerate(instance_ids):
                    values = {
                        "workload_id": workload_id,
                        "attempt": attempt,
                        "rank": rank,
                        "assignment": None,
                        "assignment_state": None,
                        "exit_code": None,
                        "idle_since": None,
                        "updated_at": t,
                    }
                    guards = {"id": iid, "state": InstanceState.RUNNING.value}
                    event = event_params(
                        workload_id,
                        "instance",
                        t,
                        reason=f"bound to job {workload_id} attempt {attempt} rank {rank}",
                        data={"attempt": attempt, "rank": rank},
                        instance_id=iid,
                    )
                    rec = self._updated_instance(conn, values, guards, "idle", event=event)
                    if rec is None:
                        raise _BindConflict
                    out.append(rec)
                return out
        except _BindConflict:
            return None

    def _bind_in_one_statement(
        self, workload_id: int, attempt: int, instance_ids: list[int], t: datetime
    ) -> list[InstanceRecord] | None:
        """``bind_instances`` on PostgreSQL: one statement (``_bind_all``) binds every
        instance and writes their events, or, when any of them is not RUNNING and idle
        once locked, binds none."""
        n = len(instance_ids)
        params: dict[str, Any] = {"ids": list(instance_ids), "ranks": list(range(n)), "n": n}
        params.update(
            workload_id=workload_id, attempt=attempt, updated_at=t, assignment=None,
            assignment_state=None, exit_code=None, idle_since=None,
        )  # fmt: skip
        stmt = prepared(("instance", "bind all"), _bind_all)
        with self._db.write(one_statement=True) as conn:
            rows = list(conn.execute(stmt, params).mappings())
            note_rows(conn, "instances", rows)
        if not rows:
            return None
        assert len(rows) == n, (len(rows), n)  # (all or nothing: the count guards it)
        return [instance_from_row(r) for r in sorted(rows, key=lambda r: r["rank"])]

    def _unbind_in_one_statement(
        self, workload_id: int, attempt: int, t: datetime
    ) -> list[InstanceRecord]:
        """``unbind_instances`` on PostgreSQL: one statement (``_unbind_all``)."""
        params: dict[str, Any] = {
            "workload_id": workload_id, "attempt": attempt, "updated_at": t,
            "e_reason": f"released by job {workload_id} attempt {attempt}",
            "none_workload_id": None, "none_attempt": None, "assignment": None,
            "assignment_state": None,
        }  # fmt: skip
        stmt = prepared(("instance", "unbind all"), _unbind_all)
        with self._db.write(one_statement=True) as conn:
            rows = list(conn.execute(stmt, params).mappings())
            note_rows(conn, "instances", rows)
        return [instance_from_row(r) for r in sorted(rows, key=lambda r: r["id"])]

    def unbind_instances(
        self, workload_id: int, attempt: int, now: datetime | None = None
    ) -> list[InstanceRecord]:
        """Take the instances of one attempt back into their pools (idle, idle_since =
        now, assignment cleared); final ones just forget the job. Idempotent; returns
        the instances changed."""
        t = self._now(now)
        if not self._db.is_sqlite:
            return self._unbind_in_one_statement(workload_id, attempt, t)
        with self._db.write() as conn:
            rows = list(
                conn.execute(
                    sa.select(IM.id, IM.state, IM.rank).where(
                        IM.workload_id == workload_id, IM.attempt == attempt
                    )
                ).mappings()
            )
            out: list[InstanceRecord] = []
            for row in rows:
                live = InstanceState(row["state"]) in LIVE
                values = {
                    "workload_id": None,
                    "attempt": None,
                    "rank": None,
                    "assignment": None,
                    "assignment_state": None,
                    "idle_since": t if live else None,
                    "updated_at": t,
                }
                event = event_params(
                    workload_id,
                    "instance",
                    t,
                    reason=f"released by job {workload_id} attempt {attempt}",
                    data={"attempt": attempt, "rank": row["rank"]},
                    instance_id=int(row["id"]),
                )
                rec = self._updated_instance(conn, values, {"id": row["id"]}, event=event)
                assert rec is not None  # (the row, read above in this transaction)
                out.append(rec)
            return out

    def assign(
        self,
        instance_id: int,
        workload_id: int,
        attempt: int,
        rank: int,
        assignment: Mapping[str, Any],
        now: datetime | None = None,
    ) -> InstanceRecord | None:
        """Write the command the instance's node agent is to run (assignment_state
        ``assigned``), if the instance is bound to exactly this node, live, and has no
        assignment yet; else None."""
        t = self._now(now)
        values = {
            "assignment": dict(assignment),
            "assignment_state": AssignmentState.ASSIGNED.value,
            "exit_code": None,
            "updated_at": t,
        }
        guards = {"id": instance_id, "workload_id": workload_id, "attempt": attempt, "rank": rank}
        event = event_params(
            workload_id,
            "instance",
            t,
            reason=f"assigned job {workload_id} attempt {attempt} rank {rank}",
            data={"attempt": attempt, "rank": rank, "assignment_state": "assigned"},
            instance_id=instance_id,
        )
        with self._db.write(one_statement=True) as conn:
            return self._updated_instance(conn, values, guards, "assign", event=event)

    def set_assignment_state(
        self,
        instance_id: int,
        expected: AssignmentState,
        new: AssignmentState,
        exit_code: int | None = None,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> InstanceRecord | None:
        """Move the assignment ``expected -> new`` (with ``exit_code`` for EXITED) if it
        is still ``expected``; the new record or None (guard failed)."""
        t = self._now(now)
        values = {"assignment_state": new.value, "exit_code": exit_code, "updated_at": t}
        guards = {"id": instance_id, "assignment_state": expected.value}
        with self._db.write() as conn:
            rec = self._updated_instance(conn, values, guards)
            if rec is None:
                return None
            data: dict[str, Any] = {"assignment_state": new.value, "rank": rec.rank}
            if exit_code is not None:
                data["exit_code"] = exit_code
            self._event(
                conn,
                rec.workload_id,
                "instance",
                t,
                reason=reason or f"assignment {expected.value} -> {new.value}",
                data=data,
                instance_id=instance_id,
            )
            return rec


#: The parameter of the time an instance entering RUNNING is idle from.
_IDLE_FROM = "idle_from"


def _instance_update(kind: str, sets: tuple[str, ...], where: tuple[str, ...]) -> sa.Update:
    """The guarded UPDATE of one instance (``InstanceStoreMixin._updated_instance``), its
    version bumped; by ``kind``: ``idle``, only an instance serving no job; ``assign``,
    only a live one with no assignment yet; ``running``, ``idle_since`` set to the
    ``_IDLE_FROM`` parameter unless it serves a job."""
    table = IM.__table__
    c = table.c
    computed: dict[str, Any] = {"version": c.version + 1}
    also: tuple[sa.ColumnElement[bool], ...] = ()
    if kind == "idle":
        also = (c.workload_id.is_(None),)
    elif kind == "assign":
        live = [InstanceState.RUNNING.value, InstanceState.DRAINING.value]
        also = (c.assignment_state.is_(None), c.state.in_(live))
    elif kind == "running":
        idle_from = sa.bindparam(_IDLE_FROM, type_=c.idle_since.type)
        computed["idle_since"] = sa.case((c.workload_id.is_(None), idle_from), else_=c.idle_since)
    elif kind:
        raise ValueError(f"unknown instance update kind {kind!r}")
    return guarded_update(table, sets, where, also=also, computed=computed, returning=c)


def _bind_all() -> sa.Select[Any]:
    """``bind_instances`` as one PostgreSQL statement: the wanted (id, rank) pairs; their
    rows, locked (``FOR UPDATE``: a row another transaction changed meanwhile is read
    again, at READ COMMITTED, once its lock is free); the UPDATE of them all, only if
    every one is RUNNING and idle (``:n`` of them); and one event per row it bound, in
    rank order: ``WITH want, locked, u AS (UPDATE ... RETURNING), e AS (INSERT INTO
    events ...) SELECT * FROM u``.

    The rows are found by primary key only, the state and idleness tested on the locked
    rows: PostgreSQL plans a statement prepared after five runs once for any ids, and
    with ``state`` among the conditions that generic plan walked the state index over
    every RUNNING instance (10,000: ~2 ms, twice) when the statistics were young."""
    table = cast(sa.Table, IM.__table__)
    c = table.c
    ids = sa.bindparam("ids", type_=postgresql.ARRAY(sa.Integer))
    ranks = sa.bindparam("ranks", type_=postgresql.ARRAY(sa.Integer))
    want = sa.select(sa.func.unnest(ids).label("id"), sa.func.unnest(ranks).label("rank")).cte(
        "want"
    )
    by_id = c.id == sa.any_(ids)
    locked = (sa.select(c.id, c.state, c.workload_id).where(by_id).with_for_update(of=table)).cte(
        "locked"
    )
    bindable = (locked.c.state == InstanceState.RUNNING.value, locked.c.workload_id.is_(None))
    every = sa.select(sa.func.count()).select_from(locked).where(
        *bindable
    ).scalar_subquery() == sa.bindparam("n")
    sets: dict[str, Any] = {
        k: sa.bindparam(k, type_=c[k].type)
        for k in ("workload_id", "attempt", "assignment", "assignment_state", "exit_code",
                  "idle_since", "updated_at")
    }  # fmt: skip
    rank = sa.select(want.c.rank).where(want.c.id == c.id).scalar_subquery()
    u = (
        sa.update(table)
        .where(by_id, every)
        .values(rank=rank, version=c.version + 1, **sets)
        .returning(*c)
        .cte("u")
    )
    events = cast(sa.Table, EventModel.__table__)
    reason = sa.func.concat(
        "bound to job ", u.c.workload_id, " attempt ", u.c.attempt, " rank ", u.c.rank
    )
    data = sa.func.json_build_object("attempt", u.c.attempt, "rank", u.c.rank)
    rows = sa.select(
        u.c.workload_id, u.c.id, u.c.updated_at, sa.literal("instance"), sa.null(), sa.null(),
        reason, data,
    ).order_by(u.c.rank)  # fmt: skip
    insert = sa.insert(events).from_select(list(EVENT_COLUMNS), rows)
    return sa.select(*u.c).add_cte(insert.cte("e"))


def _unbind_all() -> sa.Select[Any]:
    """``unbind_instances`` as one PostgreSQL statement: the attempt's instances, locked;
    each one's job, attempt, rank and assignment cleared, idle since ``:updated_at`` if
    it is live; one event per instance (its old rank in the data), in id order."""
    table = cast(sa.Table, IM.__table__)
    c = table.c
    w = sa.bindparam("workload_id", type_=c.workload_id.type)
    a = sa.bindparam("attempt", type_=c.attempt.type)
    at = sa.bindparam("updated_at", type_=c.updated_at.type)
    old = (sa.select(c.id, c.rank).where(c.workload_id == w, c.attempt == a).with_for_update()).cte(
        "old"
    )
    live = [s.value for s in LIVE]
    u = (
        sa.update(table)
        .where(c.id == old.c.id)
        .values(
            workload_id=sa.bindparam("none_workload_id", type_=c.workload_id.type),
            attempt=sa.bindparam("none_attempt", type_=c.attempt.type),
            rank=sa.null(),
            assignment=sa.bindparam("assignment", type_=c.assignment.type),
            assignment_state=sa.bindparam("assignment_state", type_=c.assignment_state.type),
            idle_since=sa.case((c.state.in_(live), at), else_=sa.null()),
            updated_at=at,
            version=c.version + 1,
        )
        .returning(*c, old.c.rank.label("old_rank"))
        .cte("u")
    )
    events = cast(sa.Table, EventModel.__table__)
    data = sa.func.json_build_object("attempt", a, "rank", u.c.old_rank)
    reason = sa.bindparam("e_reason", type_=events.c.reason.type)
    rows = sa.select(
        w, u.c.id, at, sa.literal("instance"), sa.null(), sa.null(), reason, data
    ).order_by(u.c.id)
    insert = sa.insert(events).from_select(list(EVENT_COLUMNS), rows)
    return sa.select(*(u.c[col.name] for col in c)).add_cte(insert.cte("e"))


def _jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Event data from column values (datetimes as ISO text)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}


__all__ = ["INSTANCE_FIELDS", "InstanceStoreMixin"]


def _job_of(r: InstanceRecord) -> int | None:
    return r.workload_id


def _keeps(
    states: frozenset[str] | None,
    bound: bool | None,
    provider: str | None,
    r: InstanceRecord,
) -> bool:
    return (
        (states is None or r.state in states)
        and (bound is None or (r.workload_id is not None) == bound)
        and (provider is None or r.provider == provider)
    )
