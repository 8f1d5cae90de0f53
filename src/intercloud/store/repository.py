"""``Store``: the only way the rest of intercloud reads or changes durable state.

Contract, for every method:
- one short transaction; when a method returns, its change is committed (and durable:
  SQLite ``synchronous=FULL``, PostgreSQL's default ``fsync``);
- state changes are compare-and-set: ``UPDATE ... WHERE id = :id AND state = :expected
  [AND version = :version]``. A guard that no longer holds (someone else moved the row)
  changes nothing and returns None — the caller re-reads and decides again;
- every state change writes its event in the same transaction, so the event history
  tells a workload's story and can never disagree with the row;
- times are injected: pass ``now`` (timezone-aware), or the store's ``clock`` is used;
- records come back as frozen dataclasses (``intercloud.store.records``), never
  SQLAlchemy objects. Failures of the database itself raise ``StoreError`` (one line).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, RowMapping

from intercloud.control.states import TERMINAL, JobState, check_transition
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import batch_insert
from intercloud.store.agent_repo import AgentRepository
from intercloud.store.api_repo import ApiRepo
from intercloud.store.cycle_reads import CycleReads
from intercloud.store.db import Database
from intercloud.store.errors import (
    InvalidRequest,
    NodeAlreadyStarted,
    TenantExists,
    UnknownTenant,
    UnknownWorkload,
)
from intercloud.store.health_repo import HealthRepo
from intercloud.store.instance_repo import (
    InstanceStoreMixin,
    instance_row_cache,
    instance_row_image,
)
from intercloud.store.lease_repo import LeaseRepo
from intercloud.store.ledger_repo import LedgerRepo
from intercloud.store.prepared import (
    Then,
    event_params,
    guarded_row,
    guarded_update,
    insert_event,
    prepared,
    row_and_event,
)
from intercloud.store.read_epoch import ReadEpochs
from intercloud.store.records import (
    LIVE_NODE_STATES,
    AttemptRecord,
    Desired,
    EventRecord,
    NodeRecord,
    NodeState,
    SpecFormat,
    TenantRecord,
    TenantUsage,
    WorkloadKind,
    WorkloadRecord,
)
from intercloud.store.row_cache import RowCache
from intercloud.store.row_image import Cursor, RowImage, carry_images
from intercloud.store.tables import (
    AttemptModel,
    EventModel,
    NodeModel,
    RowDeletionModel,
    SettingModel,
    TenantModel,
    WorkloadModel,
)

W = WorkloadModel
N = NodeModel
A = AttemptModel
E = EventModel

#: Workload columns that ``transition`` and ``set_fields`` may change besides the state.
UPDATABLE_FIELDS: frozenset[str] = frozenset(
    {"placement", "exit_code", "attempt", "restarts", "priority", "max_restarts"}
)
#: Tenant columns that ``create_tenant`` and ``update_tenant`` set (the tenant's limits).
TENANT_FIELDS: frozenset[str] = frozenset(
    {"weight", "guarantees", "quotas", "can_borrow", "monthly_budget_usd", "quota_ceiling"}
)
#: Largest GPU count a guarantee or quota may name (far above any fleet; keeps JSON sane).
MAX_TENANT_GPUS = 10**9
#: Fair-share weights from 1e-6 to 1e6 (one tenant a million times another's share;
#: beyond, shares divided by the weight overflow) and budgets up to 1e12 USD a month.
MIN_TENANT_WEIGHT = 1e-6
MAX_TENANT_WEIGHT = 1e6
MAX_TENANT_BUDGET_USD = 1e12
#: States in which a job holds (or is about to hold) provider capacity.
_HOLDING_VALUES = [
    s.value
    for s in (
        JobState.PLACING,
        JobState.PROVISIONING,
        JobState.RUNNING,
        JobState.RECOVERING,
        JobState.CANCELLING,
    )
]
#: The settings key of ``Store.store_id``.
STORE_ID_SETTING = "store.id"
_TERMINAL_VALUES = [s.value for s in TERMINAL]
_ENDED_NODE_STATES = frozenset({NodeState.EXITED, NodeState.LOST, NodeState.KILLED})

_WORKLOAD_COLUMNS = (
    W.id,
    TenantModel.name.label("tenant"),
    W.name,
    W.kind,
    W.spec_text,
    W.spec_format,
    W.state,
    W.desired,
    W.priority,
    W.attempt,
    W.restarts,
    W.max_restarts,
    W.placement,
    W.reason,
    W.exit_code,
    W.version,
    W.created_at,
    W.updated_at,
    W.finished_at,
    W.submission,
    W.reason_code,
)
#: One node claim (``Store.record_node_starting``), built once.
_INSERT_NODE = (
    sa.insert(cast(sa.Table, N.__table__))
    .values(
        {
            c: sa.bindparam(f"n_{c}")
            for c in ("workload_id", "attempt", "rank", "provider", "state", "started_at")
        }
    )
    .returning(*N.__table__.columns)
)
#: Ids are SQL INTEGER: 32-bit signed on PostgreSQL.
_MAX_ID = 2**31 - 1
_SELECT_WORKLOAD = sa.select(*_WORKLOAD_COLUMNS).join(TenantModel, TenantModel.id == W.tenant_id)
#: The hot reads by key, built once (``prepared``'s reason).
_GET_WORKLOAD = _SELECT_WORKLOAD.where(W.id == sa.bindparam("id"))
_GET_OF_TENANT = _GET_WORKLOAD.where(TenantModel.name == sa.bindparam("tenant"))
_GET_ATTEMPT = sa.select(*A.__table__.columns).where(
    A.workload_id == sa.bindparam("workload_id"), A.attempt == sa.bindparam("attempt")
)
_NODES = (
    sa.select(*N.__table__.columns)
    .where(N.workload_id == sa.bindparam("workload_id"))
    .order_by(N.attempt, N.rank)
)
_NODES_OF_ATTEMPT = _NODES.where(N.attempt == sa.bindparam("attempt"))
#: The same columns as an UPDATE's RETURNING clause (the tenant's name by a scalar
#: subquery: RETURNING names only the updated table's columns)
_RETURN_WORKLOAD = (
    *(
        sa.select(TenantModel.name)
        .where(TenantModel.id == W.tenant_id)
        .scalar_subquery()
        .label("tenant")
        if c.key == "tenant"
        else c
        for c in _WORKLOAD_COLUMNS
    ),
    W.change_seq,  # (the row image carries the row: ``write_journal``)
)
#: ``set_reasons``' guarded update, built once (its cache key is computed once, too).
_SET_REASON = (
    sa.update(W)
    .where(W.id == sa.bindparam("w_id"), W.version == sa.bindparam("w_version"))
    .values(
        version=W.version + 1,
        updated_at=sa.bindparam("w_time"),
        reason=sa.bindparam("w_reason"),
        reason_code=sa.bindparam("w_code"),
    )
)


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _tenant(row: RowMapping) -> TenantRecord:
    d = dict(row)
    d["guarantees"] = {str(k): int(v) for k, v in (d.get("guarantees") or {}).items()}
    d["quotas"] = {str(k): int(v) for k, v in (d.get("quotas") or {}).items()}
    ceiling = d.get("quota_ceiling")
    d["quota_ceiling"] = None if ceiling is None else {str(k): int(v) for k, v in ceiling.items()}
    d["can_borrow"] = bool(d["can_borrow"])
    d["updated_at"] = d.get("updated_at") or d["created_at"]
    return TenantRecord(**d)


def _gpu_map(field: str, value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{field} must map GPU types to GPU counts")
    out: dict[str, int] = {}
    for k, n in value.items():
        if not isinstance(k, str) or not k:
            raise InvalidRequest(f"{field}: GPU type names must be non-empty strings")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_TENANT_GPUS:
            raise InvalidRequest(
                f"{field}.{k} must be a whole number of GPUs from 0 to {MAX_TENANT_GPUS}, not {n!r}"
            )
        out[k] = n
    return out


def check_tenant_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` (a subset of ``TENANT_FIELDS``) checked and normalised; InvalidRequest
    naming the field for a bad value, TypeError for an unknown field."""
    unknown = set(fields) - TENANT_FIELDS
    if unknown:
        raise TypeError(f"cannot set tenant field(s) {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k == "weight":
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not MIN_TENANT_WEIGHT <= v <= MAX_TENANT_WEIGHT
            ):
                raise InvalidRequest(
                    f"weight must be a number from {MIN_TENANT_WEIGHT:g} to "
                    f"{MAX_TENANT_WEIGHT:g}, not {v!r}"
                )
            out[k] = float(v)
        elif k in ("guarantees", "quotas"):
            out[k] = _gpu_map(k, v)
        elif k == "quota_ceiling":
            out[k] = None if v is None else _gpu_map(k, v)
        elif k == "can_borrow":
            if not isinstance(v, bool):
                raise InvalidRequest(f"can_borrow must be true or false, not {v!r}")
            out[k] = v
        else:  # monthly_budget_usd
            if v is not None and (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not 0 <= v <= MAX_TENANT_BUDGET_USD
            ):
                raise InvalidRequest(
                    f"monthly_budget_usd must be a number from 0 to {MAX_TENANT_BUDGET_USD:g}, "
                    f"not {v!r}"
                )
            out[k] = None if v is None else float(v)
    return out


def _check_quota_covers_guarantee(guarantees: Mapping[str, int], quotas: Mapping[str, int]) -> None:
    for g, q in quotas.items():
        if q < guarantees.get(g, 0):
            raise InvalidRequest(
                f"quotas.{g} ({q}) is below guarantees.{g} ({guarantees[g]}): a quota caps "
                "all running GPUs of the type, the guaranteed ones included"
            )


def _month_start(t: datetime) -> datetime:
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def _placement_gpus(placement: Mapping[str, Any]) -> tuple[str | None, int]:
    acc = placement.get("accelerator")
    if not acc:
        return None, 0
    gpus = placement.get("gpus")
    if gpus is None:
        nodes = placement.get("ranks", placement.get("nodes", 1)) or 1
        gpus = int(nodes) * int(placement.get("accelerator_count", 0) or 0)
    return str(acc), int(gpus)


def _workload(row: RowMapping) -> WorkloadRecord:
    d = dict(row)
    d.pop("change_seq", None)  # how the row image follows changes, not part of the record
    return WorkloadRecord(
        **{
            **d,
            "kind": WorkloadKind(row["kind"]),
            "spec_format": SpecFormat(row["spec_format"]),
            "state": JobState(row["state"]),
            "desired": Desired(row["desired"]),
            "reason_code": _reason_code(row["reason_code"]),
        }
    )


def _workload_key(rec: WorkloadRecord) -> tuple[Any, ...]:
    return (rec.version,)


def _reason_code(value: str | None) -> ReasonCode | None:
    """The stored code; None for none, or one a newer version wrote that this one does
    not know (its words are still in ``reason``)."""
    if value is None:
        return None
    try:
        return ReasonCode(value)
    except ValueError:
        return None


def _code_value(code: ReasonCode | None) -> str | None:
    return None if code is None else ReasonCode(code).value


def _event_data(fields: Mapping[str, Any], code: ReasonCode | None) -> dict[str, Any] | None:
    """A transition event's ``data``: the fields it set, and its reason code."""
    data = dict(fields)
    if code is not None:
        data["reason_code"] = ReasonCode(code).value
    return data or None


def _workload_keeps(
    states: frozenset[JobState], tenant: str | None, desired: Desired | None, w: WorkloadRecord
) -> bool:
    return (
        w.state in states
        and (tenant is None or w.tenant == tenant)
        and (desired is None or w.desired is desired)
    )


def _node_job(n: NodeRecord) -> int:
    return n.workload_id


def _node(row: RowMapping) -> NodeRecord:
    d = dict(row)
    d.pop("change_seq", None)
    return NodeRecord(**{**d, "state": NodeState(row["state"])})


#: What says a node row changed (nodes have no version): every write moves its state
#: (starting -> running -> an end) and sets these columns with it.
_NODE_KEY_COLUMNS = (N.state, N.host, N.pid, N.start_time, N.exit_code, N.ended_at)


def _node_row_key(rec: NodeRecord) -> tuple[Any, ...]:
    return (rec.state.value, rec.host, rec.pid, rec.start_time, rec.exit_code, rec.ended_at)


def _attempt(row: RowMapping) -> AttemptRecord:
    return AttemptRecord(**{k: row[k] for k in AttemptRecord.__slots__})


def _event(row: RowMapping) -> EventRecord:
    return EventRecord(**row)


def _workload_update(sets: tuple[str, ...], where: tuple[str, ...]) -> sa.Update:
    table = W.__table__
    return guarded_update(
        table,
        sets,
        where,
        computed={"version": table.c.version + 1},
        returning=_RETURN_WORKLOAD,
    )


def _begin_attempt_after(u: Any) -> sa.Insert:
    """The attempt row of the workload the guarded move ``u`` wrote (``start_attempt``;
    ``x_`` parameters), unless it is recorded already."""
    table = cast(sa.Table, A.__table__)
    cols = ("attempt", "allocation", "state", "started_at")
    rows = sa.select(u.c.id, *(sa.bindparam(f"x_{c}", type_=table.c[c].type) for c in cols))
    stmt = postgresql.insert(table).from_select(["workload_id", *cols], rows.select_from(u))
    return stmt.on_conflict_do_nothing(index_elements=["workload_id", "attempt"])


def _end_attempt_after(u: Any) -> sa.Update:
    """The end of the attempt of the workload the guarded move ``u`` wrote
    (``finish_attempt``; ``x_`` parameters), unless it ended already."""
    table = cast(sa.Table, A.__table__)
    c = table.c
    return (
        sa.update(table)
        .where(
            c.workload_id == u.c.id,
            c.attempt == sa.bindparam("x_attempt", type_=c.attempt.type),
            c.ended_at.is_(None),
        )
        .values(
            state=sa.bindparam("x_state", type_=c.state.type),
            reason=sa.bindparam("x_reason", type_=c.reason.type),
            ended_at=sa.bindparam("x_ended_at", type_=c.ended_at.type),
        )
    )


def _node_update(sets: tuple[str, ...], where: tuple[str, ...]) -> sa.Update:
    table = N.__table__
    return guarded_update(table, sets, where, returning=table.columns)


def _live_node_update(sets: tuple[str, ...], where: tuple[str, ...]) -> sa.Update:
    """``_node_update`` of a node still live."""
    table = N.__table__
    live = (table.c.state.in_([s.value for s in LIVE_NODE_STATES]),)
    return guarded_update(table, sets, where, also=live, returning=table.columns)


def _check_id(workload_id: int) -> None:
    """UnknownWorkload for an id no row can have (and no driver OverflowError)."""
    if not 0 < workload_id <= _MAX_ID:
        raise UnknownWorkload(f"no workload {workload_id}")


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _unknown_tenant(name: str) -> str:
    return f"unknown tenant {name!r} (create it with: intercloud tenants create {name})"


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"cannot set workload field(s) {', '.join(sorted(unknown))}")


class Store(
    ReadEpochs,
    InstanceStoreMixin,
    AgentRepository,
    HealthRepo,
    CycleReads,
    ApiRepo,
    LeaseRepo,
    LedgerRepo,
):
    """Durable workloads, attempts, nodes, events, tenants and settings.

    Safe to share between threads (each method takes its own pooled connection); after
    ``fork`` a child process must open its own Store.
    """

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self._db = db
        self._clock = clock or utc_now
        self._tenant_ids: dict[str, int] = {}
        self._store_id: str | None = None
        self._read_local = threading.local()  # ``coalesced_reads``: this thread's epoch
        # bulk reads decode only the rows changed since the last one (``row_cache``)
        self._instance_rows = instance_row_cache()
        self._workload_rows: RowCache[WorkloadRecord] = RowCache(_workload, _workload_key)
        self._node_rows: RowCache[NodeRecord] = RowCache(_node, _node_row_key)
        # reads of the live rows only: kept in memory, updated from the rows changed
        # since the last read (``row_image``)
        self._instance_image = instance_row_image()
        self._workload_image: RowImage[WorkloadRecord] = RowImage(
            W.__table__,  # type: ignore[arg-type]
            _SELECT_WORKLOAD.add_columns(W.change_seq),
            _workload,
            [s.value for s in JobState if not s.terminal],
            lambda r: r.id,
            stamps=RowDeletionModel.__table__,  # type: ignore[arg-type]
        )
        self._node_image: RowImage[NodeRecord] = RowImage(
            N.__table__,  # type: ignore[arg-type]
            sa.select(N),
            _node,
            [s.value for s in LIVE_NODE_STATES],
            lambda r: (r.workload_id, r.attempt, r.rank),
            stamps=RowDeletionModel.__table__,  # type: ignore[arg-type]
        )
        # the images take this store's committed writes from their journals instead of
        # reading them back (``write_journal``)
        images = (self._instance_image, self._workload_image, self._node_image)
        db.on_commit.append(partial(carry_images, images))

    # -- lifecycle -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The database, for messages (``database /home/me/.intercloud/state.db``)."""
        return self._db.name

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    def close(self) -> None:
        """Release pooled connections (the store is unusable afterwards)."""
        self._db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self, now: datetime | None) -> datetime:
        t = self._clock() if now is None else now
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"naive datetime {t!r}: times must be timezone-aware")
        return t.astimezone(UTC)

    # -- tenants ---------------------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """The store's writes made on this thread inside the block, in one transaction:
        all or none, durable when the block ends (one commit for several guarded
        moves). Inside it: no provider calls, no write whose failure the caller catches
        and goes on from (the transaction is then spoiled), and no reads that expect to
        see the block's own writes (reads run on other connections)."""
        with self._db.atomic():
            yield

    def tenants(self) -> list[TenantRecord]:
        """All tenants by id (``default`` exists from the first migration)."""
        with self._db.read() as conn:
            rows = conn.execute(sa.select(TenantModel).order_by(TenantModel.id)).mappings()
            return [_tenant(r) for r in rows]

    def get_tenant(self, name: str) -> TenantRecord:
        """The tenant called ``name``; UnknownTenant (one line, says how to create it)."""
        with self._db.read() as conn:
            return self._get_tenant(conn, name)

    def _get_tenant(self, conn: Connection, name: str) -> TenantRecord:
        stmt = sa.select(TenantModel).where(TenantModel.name == name)
        row = conn.execute(stmt).mappings().one_or_none()
        if row is None:
            raise UnknownTenant(_unknown_tenant(name))
        return _tenant(row)

    def ensure_tenant(self, name: str, now: datetime | None = None) -> TenantRecord:
        """The tenant called ``name``, created if missing (idempotent, race-safe)."""
        t = self._now(now)
        values = {"name": name, "created_at": t, "updated_at": t}
        with self._db.write() as conn:
            conn.execute(self._insert_ignore(TenantModel, ["name"]).values(values))
            return self._get_tenant(conn, name)

    def create_tenant(
        self,
        name: str,
        *,
        weight: float = 1.0,
        guarantees: Mapping[str, int] | None = None,
        quotas: Mapping[str, int] | None = None,
        can_borrow: bool = True,
        monthly_budget_usd: float | None = None,
        now: datetime | None = None,
    ) -> TenantRecord:
        """Create tenant ``name`` with its limits (``TenantRecord`` says what they mean) and
        a ``tenant_created`` event (no workload; ``data`` holds the name and the limits).
        TenantExists when the name is taken (nothing changed), InvalidRequest naming the
        field for a bad value. Name rules are the caller's (the SDK checks them)."""
        limits = check_tenant_fields(
            {
                "weight": weight,
                "guarantees": {} if guarantees is None else guarantees,
                "quotas": {} if quotas is None else quotas,
                "can_borrow": can_borrow,
                "monthly_budget_usd": monthly_budget_usd,
            }
        )
        _check_quota_covers_guarantee(limits["guarantees"], limits["quotas"])
        t = self._now(now)
        values = {"name": name, "created_at": t, "updated_at": t, "version": 1, **limits}
        with self._db.write() as conn:
            stmt = self._insert_ignore(TenantModel, ["name"]).values(values)
            inserted = conn.execute(stmt.returning(TenantModel.id)).scalar()
            if inserted is None:
                raise TenantExists(f"tenant {name!r} already exists (change it with `set`)")
            self._event(conn, None, "tenant_created", t, data={"tenant": name, **limits})
            return self._get_tenant(conn, name)

    def update_tenant(
        self,
        name: str,
        expected_version: int | None = None,
        now: datetime | None = None,
        **changes: Any,
    ) -> TenantRecord | None:
        """Change the tenant's limits (any of ``TENANT_FIELDS``), guarded by its version:
        at ``expected_version`` when given, else at the version read in this transaction.
        Returns the new record; the unchanged one when nothing differs (no event); None
        when the guard failed (nothing changed). Writes a ``tenant_updated`` event whose
        ``data`` has the name and ``changes`` as ``{field: [old, new]}``. UnknownTenant,
        InvalidRequest naming the field, TypeError for an unknown field."""
        values = check_tenant_fields(changes)
        t = self._now(now)
        with self._db.write() as conn:
            current = self._get_tenant(conn, name)
            if expected_version is not None and current.version != expected_version:
                return None
            merged = {k: getattr(current, k) for k in TENANT_FIELDS} | values
            _check_quota_covers_guarantee(merged["guarantees"], merged["quotas"])
            diff = {
                k: [getattr(current, k), v] for k, v in values.items() if getattr(current, k) != v
            }
            if not diff:
                return current
            stmt = (
                sa.update(TenantModel)
                .where(TenantModel.id == current.id, TenantModel.version == current.version)
                .values(
                    **{k: values[k] for k in diff},
                    version=TenantModel.version + 1,
                    updated_at=t,
                )
            )
            if conn.execute(stmt).rowcount != 1:
                return None
            self._event(conn, None, "tenant_updated", t, data={"tenant": name, "changes": diff})
            return self._get_tenant(conn, name)

    def tenant_events(self, name: str) -> list[EventRecord]:
        """The ``tenant_created``/``tenant_updated`` events of tenant ``name``, oldest first."""
        stmt = (
            sa.select(E)
            .where(E.workload_id.is_(None), E.kind.in_(["tenant_created", "tenant_updated"]))
            .order_by(E.id)
        )
        with self._db.read() as conn:
            rows = [_event(r) for r in conn.execute(stmt).mappings()]
        return [e for e in rows if (e.data or {}).get("tenant") == name]

    def tenant_usage(self, now: datetime | None = None) -> dict[str, TenantUsage]:
        """Per tenant name (every tenant, idle ones included): running GPUs per type and
        this UTC month's estimated spend (``TenantUsage``).

        The store keeps no bill, so spend is estimated from what it has: every attempt
        that overlaps the month costs its job's *current* placement ``hourly_usd`` (the
        whole gang) for ``[started_at, end)`` cut to the month, where ``end`` is the
        attempt's ``ended_at``, else its job's ``finished_at`` when the job is finished,
        else ``now``. Attempts start when the job is placed (before its nodes run), so
        provisioning time counts: an estimate on the high side, as a budget wants.
        """
        t = self._now(now)
        start = _month_start(t)
        out = {r.name: TenantUsage() for r in self.tenants()}
        running: dict[str, dict[str, int]] = {name: {} for name in out}
        closed: dict[str, float] = dict.fromkeys(out, 0.0)
        open_: dict[str, float] = dict.fromkeys(out, 0.0)
        holding = (
            sa.select(TenantModel.name, W.placement)
            .join(TenantModel, TenantModel.id == W.tenant_id)
            .where(W.state.in_(_HOLDING_VALUES), W.placement.is_not(None))
        )
        spans = (
            sa.select(TenantModel.name, W.placement, W.finished_at, A.started_at, A.ended_at)
            .join(W, W.id == A.workload_id)
            .join(TenantModel, TenantModel.id == W.tenant_id)
            .where(A.started_at < t, sa.or_(A.ended_at.is_(None), A.ended_at > start))
        )
        with self._db.read() as conn:
            for name, placement in conn.execute(holding):
                acc, gpus = _placement_gpus(placement or {})
                if acc is not None and gpus > 0:
                    mine = running.setdefault(name, {})
                    mine[acc] = mine.get(acc, 0) + gpus
            for name, placement, finished, began, ended in conn.execute(spans):
                end = ended or finished
                is_open = end is None
                end = min(end or t, t)
                hours = (end - max(began, start)).total_seconds() / 3600.0
                rate = float((placement or {}).get("hourly_usd") or 0.0)
                if hours <= 0 or not rate > 0:
                    continue
                bucket = open_ if is_open else closed
                bucket[name] = bucket.get(name, 0.0) + rate * hours
        return {
            name: TenantUsage(running.get(name, {}), closed.get(name, 0.0), open_.get(name, 0.0))
            for name in out
        }

    def _tenant_id(self, conn: Connection, name: str) -> int:
        tid = self._tenant_ids.get(name)
        if tid is None:
            tid = conn.execute(sa.select(TenantModel.id).where(TenantModel.name == name)).scalar()
            if tid is None:
                raise UnknownTenant(_unknown_tenant(name))
            self._tenant_ids[name] = tid  # tenants are never deleted or renamed
        return tid

    # -- workloads -------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        name: str,
        spec_text: str,
        spec_format: str = "intercloud",
        tenant: str = "default",
        priority: int = 0,
        max_restarts: int = 0,
        now: datetime | None = None,
        submission: Mapping[str, Any] | None = None,
    ) -> int:
        """Store a new workload in PENDING (desired ``run``) with its ``submitted`` event;
        return its id. Committed and durable when this returns. InvalidRequest for an
        unknown kind, spec format or tenant, or a negative ``max_restarts``.

        ``submission`` (JSON-able) is stored with it as given and never changed: the
        context the spec text cannot carry (see ``WorkloadRecord.submission``)."""
        return self.write_batch(
            [
                {
                    "kind": kind,
                    "name": name,
                    "spec_text": spec_text,
                    "spec_format": spec_format,
                    "tenant": tenant,
                    "priority": priority,
                    "max_restarts": max_restarts,
                    "submission": submission,
                }
            ],
            now=now,
        )[0]

    def write_batch(
        self,
        submissions: Sequence[Mapping[str, Any]],
        audits: Sequence[Mapping[str, Any]] = (),
        now: datetime | None = None,
    ) -> list[int]:
        """Store several submissions (each ``submit``'s keyword arguments, ``now`` aside)
        and audit rows (``add_audit``'s; one with ``target_of`` = the index of a
        submission here gets ``workload <its id>`` as its target) in one transaction:
        all or none, durable when this returns. The ids, in the submissions' order.

        One commit for many callers: the API server's group commit (``api.group_commit``)
        gathers concurrent requests into one call."""
        t = self._now(now)
        rows = []
        for item in submissions:
            args = dict(item)
            try:
                kind_v = WorkloadKind(args.pop("kind"))
                format_v = SpecFormat(args.pop("spec_format", "intercloud"))
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
            max_restarts = int(args.pop("max_restarts", 0))
            if max_restarts < 0:
                raise InvalidRequest(f"max_restarts must be >= 0, not {max_restarts}")
            submission = args.pop("submission", None)
            rows.append(
                {
                    "tenant": args.pop("tenant", "default"),
                    "name": args.pop("name"),
                    "kind": kind_v.value,
                    "spec_text": args.pop("spec_text"),
                    "spec_format": format_v.value,
                    "state": JobState.PENDING.value,
                    "desired": Desired.RUN.value,
                    "priority": int(args.pop("priority", 0)),
                    "attempt": 0,
                    "restarts": 0,
                    "max_restarts": max_restarts,
                    "version": 1,
                    "created_at": t,
                    "updated_at": t,
                    "submission": dict(submission) if submission is not None else None,
                }
            )
            if args:
                raise TypeError(f"submit: unexpected argument(s) {', '.join(sorted(args))}")
        with self._db.write() as conn:
            for row in rows:
                row["tenant_id"] = self._tenant_id(conn, row.pop("tenant"))
            if not self._db.is_sqlite:  # one prepared statement, one round trip
                values = []
                for a in audits:
                    a = dict(a)
                    index = a.pop("target_of", None)
                    values.append({**self._audit_values(t, **a), "target_of": index})
                return batch_insert.write_batch(conn, rows, values, t, JobState.PENDING.value)
            ids: list[int] = []
            if rows:
                # one multi-row INSERT ... RETURNING, ids in the rows' order
                stmt = sa.insert(W).returning(W.id, sort_by_parameter_order=True)
                ids = [int(r[0]) for r in conn.execute(stmt, rows)]
                conn.execute(
                    sa.insert(E),
                    [
                        {
                            "workload_id": i,
                            "instance_id": None,
                            "time": t,
                            "kind": "transition",
                            "from_state": None,
                            "to_state": JobState.PENDING.value,
                            "reason": "submitted",
                            "data": None,
                        }
                        for i in ids
                    ],
                )
            if audits:
                values = []
                for a in audits:
                    a = dict(a)
                    index = a.pop("target_of", None)
                    if index is not None:
                        a["target"] = f"workload {ids[index]}"
                    values.append(self._audit_values(t, **a))
                self._insert_audits(conn, values)
        return ids

    def get(self, workload_id: int, tenant: str | None = None) -> WorkloadRecord:
        """The workload, or UnknownWorkload (also when it belongs to another tenant)."""
        with self._db.read() as conn:
            return self._get(conn, workload_id, tenant)

    @staticmethod
    def _updated_workload(
        conn: Connection,
        values: Mapping[str, Any],
        guards: Mapping[str, Any],
        event: Mapping[str, Any] | None = None,
        then: Then | None = None,
    ) -> WorkloadRecord | None:
        """Set ``values`` on the workload row matching every ``guards`` column, its
        version bumped; the record as it wrote it (RETURNING: no second statement to
        read it back), or None when the guards matched nothing. The statement is
        ``prepared`` once per shape. ``event`` (and ``then``): written with it
        (``guarded_row``)."""
        row = guarded_row(
            conn, "workload", values, guards, _workload_update, event=event, then=then
        )
        return None if row is None else _workload(row)

    def _get(self, conn: Connection, workload_id: int, tenant: str | None = None) -> WorkloadRecord:
        _check_id(workload_id)
        params: dict[str, Any] = {"id": workload_id}
        if tenant is not None:
            params["tenant"] = tenant
        stmt = _GET_OF_TENANT if tenant is not None else _GET_WORKLOAD
        row = conn.execute(stmt, params).mappings().one_or_none()
        if row is None:
            raise UnknownWorkload(f"no workload {workload_id}")
        return _workload(row)

    def list_workloads(
        self,
        states: Iterable[JobState | str] | None = None,
        tenant: str | None = None,
        desired: Desired | str | None = None,
        latest: int | None = None,
    ) -> list[WorkloadRecord]:
        """Workloads by id, optionally only those in ``states``, of ``tenant``, or with
        ``desired``; ``latest``: only the last ``latest`` of them (by id). Rows unchanged
        since an earlier call (same version: every write bumps it) are not decoded again
        (``row_cache``); a read of active states only fetches the rows changed since the
        last one (``row_image``)."""
        wanted = None if states is None else {JobState(s).value for s in states}
        image = self._workload_image
        if wanted is not None and latest is None and image.covers(wanted):
            want_desired = None if desired is None else Desired(desired)
            if wanted == image.tracked and tenant is None and desired is None:
                return image.read(self._db.read, self._read_token())
            want = frozenset(JobState(s) for s in wanted)
            test = partial(_workload_keeps, want, tenant, want_desired)
            if tenant is None:  # (the loop's reads: a filter the image keeps and patches)
                image.refresh(self._db.read, self._read_token())
                return image.filtered(("workloads", want, want_desired), test)
            return list(filter(test, image.read(self._db.read, self._read_token())))
        stmt = (
            sa.select(W.id, W.version)
            .join(TenantModel, TenantModel.id == W.tenant_id)
            .order_by(W.id.desc() if latest is not None else W.id)
        )
        if latest is not None:
            stmt = stmt.limit(latest)
        if states is not None:
            stmt = stmt.where(W.state.in_([JobState(s).value for s in states]))
        if tenant is not None:
            stmt = stmt.where(TenantModel.name == tenant)
        if desired is not None:
            stmt = stmt.where(W.desired == Desired(desired).value)
        with self._db.read() as conn:
            rows = self._workload_rows.read(
                conn, stmt, lambda ids: _SELECT_WORKLOAD.where(W.id.in_(ids))
            )
        return rows[::-1] if latest is not None else rows

    def transition(
        self,
        workload_id: int,
        expected_state: JobState | str,
        new_state: JobState | str,
        reason: str | None = None,
        now: datetime | None = None,
        expected_version: int | None = None,
        reason_code: ReasonCode | None = None,
        **fields: Any,
    ) -> WorkloadRecord | None:
        """Move the workload ``expected_state -> new_state`` if it is still in
        ``expected_state`` (and at ``expected_version`` when given); return the updated
        record, or None when the guard failed (nothing changed).

        Also sets ``reason`` and ``reason_code`` (both replaced: None clears), any of
        ``UPDATABLE_FIELDS`` passed in ``fields``, and ``finished_at`` on entering a
        terminal state; bumps ``version``; writes a ``transition`` event (``data`` =
        ``fields``, plus ``reason_code`` when given). IllegalTransition for a move the
        state machine forbids (a bug: nothing is written), UnknownWorkload for no such
        workload, TypeError for an unknown field.
        """
        return self._transition(
            workload_id, expected_state, new_state, reason, now, expected_version, reason_code,
            fields,
        )  # fmt: skip

    def start_attempt(
        self,
        workload_id: int,
        attempt: int,
        allocation: Mapping[str, Any] | None,
        expected_state: JobState | str,
        new_state: JobState | str,
        reason: str | None = None,
        *,
        expected_version: int | None = None,
        now: datetime | None = None,
    ) -> WorkloadRecord | None:
        """``transition`` and, only when it moved the workload, ``begin_attempt`` of
        ``attempt`` (recorded once: a repeat leaves it as it is), in one transaction; on
        PostgreSQL one statement. The moved record, or None (guard failed: nothing
        written)."""
        t = self._now(now)
        if self._db.is_sqlite:
            with self._db.atomic():
                rec = self.transition(
                    workload_id, expected_state, new_state, reason, t, expected_version
                )
                if rec is not None:
                    self.begin_attempt(workload_id, attempt, allocation, t)
                return rec
        params = {
            "x_attempt": attempt,
            "x_allocation": dict(allocation) if allocation is not None else None,
            "x_state": "active",
            "x_started_at": t,
        }
        then = ("begin attempt", _begin_attempt_after, params)
        return self._transition(
            workload_id, expected_state, new_state, reason, t, expected_version, None, {}, then
        )

    def finish_attempt(
        self,
        workload_id: int,
        attempt: int,
        attempt_state: str,
        expected_state: JobState | str,
        new_state: JobState | str,
        reason: str | None = None,
        *,
        expected_version: int | None = None,
        attempt_reason: str | None = None,
        now: datetime | None = None,
        reason_code: ReasonCode | None = None,
        **fields: Any,
    ) -> WorkloadRecord | None:
        """``transition`` (with ``fields``) and, only when it moved the workload,
        ``end_attempt`` of ``attempt`` with ``attempt_state`` (the first end wins), in one
        transaction; on PostgreSQL one statement. The moved record, or None (guard
        failed: nothing written)."""
        t = self._now(now)
        if self._db.is_sqlite:
            with self._db.atomic():
                rec = self.transition(
                    workload_id, expected_state, new_state, reason, t, expected_version,
                    reason_code, **fields,
                )  # fmt: skip
                if rec is not None:
                    self.end_attempt(workload_id, attempt, attempt_state, attempt_reason, t)
                return rec
        params = {
            "x_attempt": attempt,
            "x_state": attempt_state,
            "x_reason": attempt_reason,
            "x_ended_at": t,
        }
        then = ("end attempt", _end_attempt_after, params)
        return self._transition(
            workload_id, expected_state, new_state, reason, t, expected_version, reason_code,
            fields, then,
        )  # fmt: skip

    def _transition(
        self,
        workload_id: int,
        expected_state: JobState | str,
        new_state: JobState | str,
        reason: str | None,
        now: datetime | None,
        expected_version: int | None,
        reason_code: ReasonCode | None,
        fields: Mapping[str, Any],
        then: Then | None = None,
    ) -> WorkloadRecord | None:
        src, dst = JobState(expected_state), JobState(new_state)
        check_transition(src, dst)
        _check_fields(fields)
        t = self._now(now)
        values: dict[str, Any] = {
            **fields,
            "state": dst.value,
            "reason": reason,
            "reason_code": _code_value(reason_code),
            "updated_at": t,
        }
        if dst.terminal:
            values["finished_at"] = t
        guards: dict[str, Any] = {"id": workload_id, "state": src.value}
        if expected_version is not None:
            guards["version"] = expected_version
        event = event_params(
            workload_id,
            "transition",
            t,
            from_state=src,
            to_state=dst,
            reason=reason,
            data=_event_data(fields, reason_code),
        )
        with self._db.write(one_statement=True) as conn:
            rec = self._updated_workload(conn, values, guards, event, then)
            if rec is None:
                self._get(conn, workload_id)  # raises UnknownWorkload if it is missing
            return rec

    def set_fields(
        self,
        workload_id: int,
        expected_version: int,
        now: datetime | None = None,
        reason: str | None = None,
        reason_code: ReasonCode | None = None,
        **fields: Any,
    ) -> WorkloadRecord | None:
        """Change non-state columns (``UPDATABLE_FIELDS``, and ``reason`` with its
        ``reason_code`` when a reason is given) if the workload is still at
        ``expected_version``; return the new record or None (guard failed). Writes an
        ``updated`` event. UnknownWorkload, TypeError as for ``transition``."""
        _check_fields(fields)
        t = self._now(now)
        values: dict[str, Any] = {**fields, "updated_at": t}
        if reason is not None:
            values["reason"] = reason
            values["reason_code"] = _code_value(reason_code)
        guards = {"id": workload_id, "version": expected_version}
        data = _event_data(fields, reason_code) or {}
        event = event_params(workload_id, "updated", t, reason=reason, data=data)
        with self._db.write(one_statement=True) as conn:
            rec = self._updated_workload(conn, values, guards, event)
            if rec is None:
                self._get(conn, workload_id)
            return rec

    def set_reasons(
        self, holds: Sequence[tuple[int, int, str, ReasonCode | None]], now: datetime | None = None
    ) -> list[int]:
        """``set_fields(id, version, reason=..., reason_code=...)`` for many held jobs at
        once: ``holds`` are ``(id, expected_version, reason, code)``; each is changed (with
        its ``updated`` event) only if still at its version. One transaction, one commit:
        the control loop holds every new submission once, and under a submission burst
        one transaction per job cost it more than the decisions. The ids changed."""
        if not holds:
            return []
        t = self._now(now)
        changed: list[int] = []
        with self._db.write() as conn:
            if not self._db.is_sqlite and len({h[0] for h in holds}) == len(holds):
                # one statement (and round trip) for all of them
                return batch_insert.set_reasons(
                    conn,
                    [(i, v, r, _code_value(c), _event_data({}, c)) for i, v, r, c in holds],
                    t,
                )
            for workload_id, version, reason, code in holds:
                params = {
                    "w_id": workload_id,
                    "w_version": version,
                    "w_reason": reason,
                    "w_code": _code_value(code),
                    "w_time": t,
                }
                if conn.execute(_SET_REASON, params).rowcount == 1:
                    changed.append(workload_id)
            if changed:
                reasons = {h[0]: (h[2], h[3]) for h in holds}
                conn.execute(
                    sa.insert(E),
                    [
                        {
                            "workload_id": i,
                            "instance_id": None,
                            "time": t,
                            "kind": "updated",
                            "from_state": None,
                            "to_state": None,
                            "reason": reasons[i][0],
                            "data": _event_data({}, reasons[i][1]),
                        }
                        for i in changed
                    ],
                )
        return changed

    def request_cancel(
        self, workload_id: int, now: datetime | None = None, tenant: str | None = None
    ) -> WorkloadRecord:
        """Record that the user wants the workload cancelled (desired ``cancel``, a
        ``cancel_requested`` event); the control loop does the rest. Idempotent: asking
        again changes nothing. InvalidRequest ("job 7 already SUCCEEDED") when it has
        already finished, UnknownWorkload when missing (or another tenant's)."""
        t = self._now(now)
        with self._db.write() as conn:
            current = self._get(conn, workload_id, tenant)
            if current.state.terminal:
                raise InvalidRequest(f"job {workload_id} already {current.state.value}")
            if current.desired is Desired.CANCEL:
                return current
            conn.execute(
                sa.update(W)
                .where(
                    W.id == workload_id,
                    W.desired == Desired.RUN.value,
                    W.state.not_in(_TERMINAL_VALUES),
                )
                .values(desired=Desired.CANCEL.value, version=W.version + 1, updated_at=t)
            )
            after = self._get(conn, workload_id)
            if after.desired is not Desired.CANCEL:  # finished concurrently (PostgreSQL)
                raise InvalidRequest(f"job {workload_id} already {after.state.value}")
            if after.version != current.version:
                self._event(conn, workload_id, "cancel_requested", t, reason="user request")
            return after

    # -- attempts --------------------------------------------------------------------

    def begin_attempt(
        self,
        workload_id: int,
        attempt: int,
        allocation: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> AttemptRecord:
        """Record attempt ``attempt`` (state ``active``). Idempotent: when the attempt is
        already recorded it is returned unchanged, so a restarted control loop can
        repeat the call. UnknownWorkload when the workload is missing."""
        params = {
            "a_workload_id": workload_id,
            "a_attempt": attempt,
            "a_allocation": dict(allocation) if allocation is not None else None,
            "a_state": "active",
            "a_started_at": self._now(now),
        }
        _check_id(workload_id)
        stmt = prepared(("begin_attempt", self._db.dialect), self._begin_attempt_stmt)
        try:
            with self._db.write() as conn:
                row = conn.execute(stmt, params).mappings().one_or_none()
                if row is None:  # recorded before: returned unchanged
                    return self._attempt(conn, workload_id, attempt)
                return _attempt(row)
        except sa.exc.IntegrityError:  # (a repeated key is ignored: the foreign key failed)
            raise UnknownWorkload(f"no workload {workload_id}") from None

    def _begin_attempt_stmt(self) -> sa.Insert:
        stmt = self._insert_ignore(AttemptModel, ["workload_id", "attempt"])
        cols = ("workload_id", "attempt", "allocation", "state", "started_at")
        values: dict[str, Any] = {c: sa.bindparam(f"a_{c}") for c in cols}
        return stmt.values(values).returning(*A.__table__.columns)

    def end_attempt(
        self,
        workload_id: int,
        attempt: int,
        state: str,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> AttemptRecord:
        """Mark the attempt ended with ``state`` (``succeeded``, ``failed``, ``lost``,
        ``preempted``, ``cancelled``…). The first end wins: ending it again returns it
        unchanged. InvalidRequest when the attempt was never begun."""
        t = self._now(now)
        with self._db.write() as conn:
            conn.execute(
                sa.update(A)
                .where(A.workload_id == workload_id, A.attempt == attempt, A.ended_at.is_(None))
                .values(state=state, reason=reason, ended_at=t)
            )
            return self._attempt(conn, workload_id, attempt)

    def attempts(self, workload_id: int) -> list[AttemptRecord]:
        """The workload's attempts, oldest first."""
        stmt = sa.select(A).where(A.workload_id == workload_id).order_by(A.attempt)
        with self._db.read() as conn:
            return [_attempt(r) for r in conn.execute(stmt).mappings()]

    def _attempt(self, conn: Connection, workload_id: int, attempt: int) -> AttemptRecord:
        params = {"workload_id": workload_id, "attempt": attempt}
        row = conn.execute(_GET_ATTEMPT, params).mappings().one_or_none()
        if row is None:
            raise InvalidRequest(f"job {workload_id} has no attempt {attempt}")
        return _attempt(row)

    # -- nodes -----------------------------------------------------------------------

    def record_node_starting(
        self,
        workload_id: int,
        attempt: int,
        rank: int,
        provider: str,
        now: datetime | None = None,
    ) -> NodeRecord:
        """Claim node ``rank`` of ``attempt`` before starting it (state ``starting``).

        The unique key (workload, attempt, rank) makes the claim exclusive: a second
        claim raises NodeAlreadyStarted, whoever makes it — so record first, start the
        process second, and a node can never run twice at once. UnknownWorkload when
        the workload is missing.
        """
        t = self._now(now)
        _check_id(workload_id)
        try:
            params = {
                "n_workload_id": workload_id,
                "n_attempt": attempt,
                "n_rank": rank,
                "n_provider": provider,
                "n_state": NodeState.STARTING.value,
                "n_started_at": t,
            }
            data = {"attempt": attempt, "rank": rank, "provider": provider}
            event = event_params(workload_id, "node_starting", t, data=data)
            with self._db.write(one_statement=True) as conn:
                # (the node image carries the row: ``write_journal``)
                row = row_and_event(conn, "node claim", _INSERT_NODE, params, event)
                assert row is not None
                return _node(row)
        except sa.exc.IntegrityError:
            existing = self.nodes(workload_id, attempt)
            for node in existing:
                if node.rank == rank:
                    raise NodeAlreadyStarted(
                        f"node {rank} of job {workload_id} attempt {attempt} "
                        f"is already recorded ({node.state.value})"
                    ) from None
            self.get(workload_id)  # (UnknownWorkload: the key it refers to is missing)
            raise

    def record_node_started(
        self,
        workload_id: int,
        attempt: int,
        rank: int,
        host: str,
        pid: int | None,
        start_time: int | None,
        extra: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> NodeRecord | None:
        """``starting`` → ``running`` with the process identity; None (nothing changed)
        when the node is not ``starting`` any more (e.g. already killed or lost)."""
        t = self._now(now)
        values = {
            "state": NodeState.RUNNING.value,
            "host": host,
            "pid": pid,
            "start_time": start_time,
            "extra": dict(extra) if extra is not None else None,
            "started_at": t,
        }
        guards = {
            "workload_id": workload_id,
            "attempt": attempt,
            "rank": rank,
            "state": NodeState.STARTING.value,
        }
        data = {"attempt": attempt, "rank": rank, "host": host, "pid": pid}
        event = event_params(workload_id, "node_started", t, data=data)
        with self._db.write(one_statement=True) as conn:
            return self._updated_node(conn, values, guards, event=event)

    def record_node_ended(
        self,
        workload_id: int,
        attempt: int,
        rank: int,
        state: NodeState | str,
        exit_code: int | None = None,
        now: datetime | None = None,
        reason: str | None = None,
    ) -> NodeRecord | None:
        """A live node ended: ``exited`` (with ``exit_code``), ``lost`` or ``killed``.
        Writes a ``node_<state>`` event. None (nothing changed) when the node is not
        live; ValueError for a state that is not an end state."""
        end = NodeState(state)
        if end not in _ENDED_NODE_STATES:
            raise ValueError(f"{end.value} is not an end state for a node")
        t = self._now(now)
        guards = {"workload_id": workload_id, "attempt": attempt, "rank": rank}
        values = {"state": end.value, "exit_code": exit_code, "ended_at": t}
        data = {"attempt": attempt, "rank": rank, "exit_code": exit_code}
        event = event_params(workload_id, f"node_{end.value}", t, reason=reason, data=data)
        with self._db.write(one_statement=True) as conn:
            return self._updated_node(conn, values, guards, live_only=True, event=event)

    def nodes(self, workload_id: int, attempt: int | None = None) -> list[NodeRecord]:
        """The workload's nodes (of one attempt when given), by attempt then rank."""
        params: dict[str, Any] = {"workload_id": workload_id}
        if attempt is not None:
            params["attempt"] = attempt
        stmt = _NODES if attempt is None else _NODES_OF_ATTEMPT
        with self._db.read() as conn:
            return [_node(r) for r in conn.execute(stmt, params).mappings()]

    def live_nodes(self) -> list[NodeRecord]:
        """Every node in ``starting`` or ``running``, of every workload (what a restarted
        control loop must adopt or clean up), by workload, attempt, rank. Rows unchanged
        since an earlier call are not read again (``row_image``)."""
        return self._node_image.read(self._db.read, self._read_token())

    def live_nodes_of(self, workload_id: int) -> list[NodeRecord]:
        """``live_nodes`` of one workload, by attempt and rank: the image's grouping by
        job, kept and patched with the changed rows (``RowImage.group``)."""
        image = self._node_image
        image.refresh(self._db.read, self._read_token())
        return image.group("by_job", _node_job, workload_id)

    def live_nodes_since(
        self, cursor: Cursor | None
    ) -> tuple[list[NodeRecord], list[tuple[NodeRecord, bool]] | None, Cursor]:
        """``live_nodes``, the node records changed since ``cursor`` (None: unknown,
        look at every node) and the cursor to pass next time (``RowImage.read_since``)."""
        return self._node_image.read_since(self._db.read, self._read_token(), cursor)

    def active_workloads_since(
        self, cursor: Cursor | None
    ) -> tuple[list[WorkloadRecord], list[tuple[WorkloadRecord, bool]] | None, Cursor]:
        """Every workload in a non-terminal state, by id, as ``list_workloads`` gives
        them, with the records changed since ``cursor`` (None: unknown) and the cursor
        to pass next time (``RowImage.read_since``): a job left the active states when
        its last change says it is no longer in the image."""
        return self._workload_image.read_since(self._db.read, self._read_token(), cursor)

    @staticmethod
    def _updated_node(
        conn: Connection,
        values: Mapping[str, Any],
        guards: Mapping[str, Any],
        live_only: bool = False,
        event: Mapping[str, Any] | None = None,
    ) -> NodeRecord | None:
        """Set ``values`` on the node row matching every ``guards`` column (and in a
        live state when ``live_only``); the row as it wrote it (RETURNING), or None when
        the guards matched nothing. The statement is ``prepared`` once per shape.
        ``event``: written with it (``guarded_row``)."""
        if live_only:
            row = guarded_row(conn, "live node", values, guards, _live_node_update, event=event)
        else:
            row = guarded_row(conn, "node", values, guards, _node_update, event=event)
        return None if row is None else _node(row)

    # -- events ----------------------------------------------------------------------

    def events(
        self, workload_id: int | None = None, after_id: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events in the order they happened (by id): of one workload when given, only
        those after ``after_id`` (to follow a stream), at most ``limit``."""
        stmt = sa.select(E).where(E.id > after_id)
        if workload_id is not None:
            stmt = stmt.where(E.workload_id == workload_id)
        stmt = stmt.order_by(E.id).limit(limit)
        with self._db.read() as conn:
            return [_event(r) for r in conn.execute(stmt).mappings()]

    def add_event(
        self,
        workload_id: int | None,
        kind: str,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Append a free-form event (``log``, ``placement_considered``…); return its id."""
        t = self._now(now)
        with self._db.write() as conn:
            return self._event(conn, workload_id, kind, t, reason=reason, data=data)

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
    ) -> int:
        params = event_params(
            workload_id,
            kind,
            time,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            data=data,
            instance_id=instance_id,
        )
        return insert_event(conn, params)

    # -- settings --------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        with self._db.read() as conn:
            row = conn.execute(sa.select(SettingModel.value).where(SettingModel.key == key))
            found = row.one_or_none()
        return default if found is None else found[0]

    def set_setting(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (insert or replace)."""
        stmt = self._upsert_base(SettingModel).values(key=key, value=value)
        upsert = stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value}
        )
        with self._db.write() as conn:
            conn.execute(upsert)

    def store_id(self) -> str:
        """This database's random, permanent identity (created by the first caller,
        race-free; the same for every handle on this database). Files kept outside the
        database (the local provider's logs and allocations) are keyed to it, so a
        deleted and recreated database never inherits another's."""
        if self._store_id is None:
            fresh = {"key": STORE_ID_SETTING, "value": uuid.uuid4().hex[:16]}
            with self._db.write() as conn:
                conn.execute(self._insert_ignore(SettingModel, ["key"]).values(fresh))
                value = conn.execute(
                    sa.select(SettingModel.value).where(SettingModel.key == STORE_ID_SETTING)
                ).scalar_one()
            self._store_id = str(value)
        return self._store_id

    # -- helpers ---------------------------------------------------------------------

    def _upsert_base(self, model: type[Any]) -> Any:
        """The dialect's INSERT (SQLite and PostgreSQL both offer ``ON CONFLICT``)."""
        if self._db.is_sqlite:
            from sqlalchemy.dialects import sqlite

            return sqlite.insert(model)
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model)

    def _insert_ignore(self, model: type[Any], keys: list[str]) -> sa.Insert:
        """INSERT that silently does nothing when the row with ``keys`` exists."""
        stmt: sa.Insert = self._upsert_base(model).on_conflict_do_nothing(index_elements=keys)
        return stmt
