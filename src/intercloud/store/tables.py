"""The tables, as SQLAlchemy 2 typed declarative models.

These models describe the schema; the Alembic migrations in ``migrations/versions``
create it (written by hand, and kept equal to this module — a test compares them).
Only ``intercloud.store`` touches these classes; everything else goes through
``intercloud.store.Store`` and gets frozen records back.

Portability rules (SQLite and PostgreSQL run the same code):
- times are timezone-aware UTC ``datetime`` in Python (``UTCDateTime``); PostgreSQL
  stores ``timestamptz``, SQLite a naive UTC text — both come back aware;
- JSON columns are ``sqlalchemy.JSON`` (``json`` on PostgreSQL, text on SQLite);
- enumerations are short strings; the Python enums live in ``records``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names are fixed so migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Binding a naive datetime raises ValueError (times are always injected aware, so a
    naive one is a bug); results are always aware UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: times must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDict = dict[str, Any]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        JSONDict: sa.JSON(),
    }


class TenantModel(Base):
    """A tenant and its limits (what the scheduler's ``TenantLedger`` reads, one to one:
    ``weight``, ``guarantees`` = guaranteed GPUs, ``can_borrow``, ``monthly_budget_usd``;
    plus ``quotas``, a ceiling on running GPUs per type that the fleet decider applies).
    ``guarantees``/``quotas`` map canonical GPU type to GPUs; an empty map (and a NULL
    budget) means no limit. ``version`` grows with every change (guarded updates)."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    weight: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("1"))
    guarantees: Mapped[JSONDict] = mapped_column(sa.JSON, server_default=sa.text("'{}'"))
    quotas: Mapped[JSONDict] = mapped_column(sa.JSON, server_default=sa.text("'{}'"))
    # the quotas an admin gave; tenant-admins set ``quotas`` within it (NULL: ``quotas``)
    quota_ceiling: Mapped[JSONDict | None] = mapped_column(sa.JSON)
    can_borrow: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    monthly_budget_usd: Mapped[float | None] = mapped_column(sa.Float)
    version: Mapped[int] = mapped_column(sa.Integer, server_default=sa.text("1"))
    updated_at: Mapped[datetime | None]


class WorkloadModel(Base):
    __tablename__ = "workloads"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('training', 'service', 'batch')", name="kind"),
        sa.CheckConstraint("spec_format IN ('intercloud', 'skypilot')", name="spec_format"),
        sa.CheckConstraint("desired IN ('run', 'cancel')", name="desired"),
        sa.Index(None, "state"),
        sa.Index(None, "tenant_id", "state"),
        {"sqlite_autoincrement": True},  # ids are never reused, even after a delete
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(16))
    spec_text: Mapped[str] = mapped_column(sa.Text)
    spec_format: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(24))
    desired: Mapped[str] = mapped_column(sa.String(16))
    priority: Mapped[int] = mapped_column(sa.Integer)
    attempt: Mapped[int] = mapped_column(sa.Integer)
    restarts: Mapped[int] = mapped_column(sa.Integer)
    max_restarts: Mapped[int] = mapped_column(sa.Integer)
    placement: Mapped[JSONDict | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)
    #: the code of ``reason`` (``scheduler.reasons.ReasonCode``), when it has one
    reason_code: Mapped[str | None] = mapped_column(sa.String(32))
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    #: submission context (submitter's env, resolved file paths, planned placement)
    submission: Mapped[JSONDict | None]
    #: stamped by trigger on every insert and update (migration 0007, ``store.row_image``)
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"), index=True)


class AttemptModel(Base):
    __tablename__ = "attempts"
    __table_args__ = (sa.UniqueConstraint("workload_id", "attempt"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[int] = mapped_column(sa.ForeignKey("workloads.id"))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    allocation: Mapped[JSONDict | None]
    state: Mapped[str] = mapped_column(sa.String(24))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class NodeModel(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        sa.UniqueConstraint("workload_id", "attempt", "rank"),
        sa.CheckConstraint(
            "state IN ('starting', 'running', 'exited', 'lost', 'killed')", name="state"
        ),
        sa.Index(None, "state"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[int] = mapped_column(sa.ForeignKey("workloads.id"))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    rank: Mapped[int] = mapped_column(sa.Integer)
    provider: Mapped[str] = mapped_column(sa.String(64))
    host: Mapped[str | None] = mapped_column(sa.String(255))
    pid: Mapped[int | None] = mapped_column(sa.Integer)
    start_time: Mapped[int | None] = mapped_column(sa.BigInteger)
    state: Mapped[str] = mapped_column(sa.String(16))
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    extra: Mapped[JSONDict | None]
    #: stamped by trigger on every insert and update (migration 0007, ``store.row_image``)
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"), index=True)


class EventModel(Base):
    __tablename__ = "events"
    __table_args__ = (
        sa.Index(None, "workload_id", "id"),
        sa.Index(None, "instance_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[int | None] = mapped_column(sa.ForeignKey("workloads.id"))
    time: Mapped[datetime]
    kind: Mapped[str] = mapped_column(sa.String(32))
    from_state: Mapped[str | None] = mapped_column(sa.String(24))
    to_state: Mapped[str | None] = mapped_column(sa.String(24))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[JSONDict | None]
    #: the instance the event is about (instance transitions; NULL for job events)
    instance_id: Mapped[int | None] = mapped_column(sa.Integer)


class InstanceModel(Base):
    """One unit of capacity: a cloud VM (or a simulated one) that intercloud asked for.

    Lifecycle (``providers.contract.InstanceState``): requested -> allocated (the provider
    named it: ``provider_instance_id``) -> running (usable: its node agent answers, or
    the provider says it runs for providers without an agent) -> draining (no new work;
    released when its assignment ends) -> terminating (terminate called) -> terminated;
    or failed (the launch was refused; ``failure_kind`` says why). ``request_id`` +
    ``slot`` is the launch's idempotency key (one launch request brings up ``count``
    instances, slots 0..count-1). ``workload_id``/``attempt``/``rank`` name the job node
    the instance serves now (NULL: idle, in its pool). ``assignment`` is the command its
    node agent runs (``assignment_state``: assigned, started, exited, killed;
    ``exit_code`` when exited). ``secret_hash`` authenticates its node agent.
    Every change bumps ``version`` and writes an ``events`` row with ``instance_id``.
    """

    __tablename__ = "instances"
    __table_args__ = (
        sa.UniqueConstraint("request_id", "slot"),
        sa.CheckConstraint(
            "state IN ('requested', 'allocated', 'running', 'draining', 'terminating', "
            "'terminated', 'failed')",
            name="state",
        ),
        sa.Index(None, "state"),
        sa.Index(None, "workload_id"),
        sa.Index(None, "provider", "provider_instance_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(sa.String(128))
    slot: Mapped[int] = mapped_column(sa.Integer)
    provider: Mapped[str] = mapped_column(sa.String(64))
    region: Mapped[str] = mapped_column(sa.String(64))
    zone: Mapped[str] = mapped_column(sa.String(64))
    instance_type: Mapped[str] = mapped_column(sa.String(128))
    pricing: Mapped[str] = mapped_column(sa.String(16))
    contract: Mapped[str | None] = mapped_column(sa.String(128))
    usd_per_hour: Mapped[float] = mapped_column(sa.Float)
    state: Mapped[str] = mapped_column(sa.String(16))
    provider_instance_id: Mapped[str | None] = mapped_column(sa.String(128))
    address: Mapped[str | None] = mapped_column(sa.String(255))
    workload_id: Mapped[int | None] = mapped_column(sa.ForeignKey("workloads.id"))
    attempt: Mapped[int | None] = mapped_column(sa.Integer)
    rank: Mapped[int | None] = mapped_column(sa.Integer)
    assignment: Mapped[JSONDict | None]
    assignment_state: Mapped[str | None] = mapped_column(sa.String(16))
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    secret_hash: Mapped[str | None] = mapped_column(sa.String(128))
    failure_kind: Mapped[str | None] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    running_at: Mapped[datetime | None]
    idle_since: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    extra: Mapped[JSONDict | None]
    #: stamped by trigger on every insert and update (migration 0007, ``store.row_image``)
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"), index=True)


class OfferingBlockModel(Base):
    """A cool-down on one offering after the provider refused capacity or quota there:
    nothing new is launched on (provider, region, zone, instance_type, pricing) before
    ``until``. ``failures`` counts refusals in a row (the cool-down grows with it)."""

    __tablename__ = "offering_blocks"
    __table_args__ = (
        sa.UniqueConstraint("provider", "region", "zone", "instance_type", "pricing"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(sa.String(64))
    region: Mapped[str] = mapped_column(sa.String(64))
    zone: Mapped[str] = mapped_column(sa.String(64))
    instance_type: Mapped[str] = mapped_column(sa.String(128))
    pricing: Mapped[str] = mapped_column(sa.String(16))
    kind: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    failures: Mapped[int] = mapped_column(sa.Integer)
    until: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProviderHealthModel(Base):
    """How one provider's calls have gone: ``last_ok_at``/``last_error_at`` and the
    error; ``down_since`` is set when every call has failed for the configured time (the
    provider is down: nothing new goes there, its jobs move) and cleared when a call
    succeeds again."""

    __tablename__ = "provider_health"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_ok_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    first_error_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    error_kind: Mapped[str | None] = mapped_column(sa.String(16))
    down_since: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ApiTokenModel(Base):
    """An API token: only the SHA-256 of its secret is kept (the secret is shown once).
    Scoped to one tenant and one ``role`` (``api.roles.Role``); usable until
    ``expires_at`` (NULL: never) unless ``revoked_at`` is set. ``prefix`` is the start
    of the secret, so a person can tell tokens apart without it."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        sa.CheckConstraint("role IN ('admin', 'tenant-admin', 'member', 'viewer')", name="role"),
        sa.Index(None, "tenant_id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    role: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(128))
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(sa.Integer)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditModel(Base):
    """One mutating API call: who (token, its tenant and role; NULL when the caller
    could not be identified), what (method, path, ``target``), when, from where
    (``client``), and the outcome (HTTP ``status``, error ``code``)."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index(None, "time"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime]
    token_id: Mapped[int | None] = mapped_column(sa.Integer)
    tenant: Mapped[str | None] = mapped_column(sa.String(64))
    role: Mapped[str | None] = mapped_column(sa.String(16))
    method: Mapped[str] = mapped_column(sa.String(8))
    path: Mapped[str] = mapped_column(sa.String(512))
    target: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[int] = mapped_column(sa.Integer)
    code: Mapped[str | None] = mapped_column(sa.String(32))
    client: Mapped[str | None] = mapped_column(sa.String(64))


class LeaseModel(Base):
    """A named lease (``control-loop``: which process runs the reconcile loop): held by
    ``holder`` until ``expires_at`` unless renewed. ``epoch`` grows each time the lease
    changes hands (a fencing token: work stamped with an older epoch is stale)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(128))
    epoch: Mapped[int] = mapped_column(sa.Integer)
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class LedgerAccrualModel(Base):
    """The spend ledger (``contracts/ledger.py``) as accrued so far: node-hours and USD
    per month (``YYYY-MM``), provider, contract ('' for none), pricing kind and tenant.
    The live loop adds each increment and moves ``ledger_marks`` in one transaction."""

    __tablename__ = "ledger_accruals"

    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    contract: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    node_hours: Mapped[float] = mapped_column(sa.Float)
    usd: Mapped[float] = mapped_column(sa.Float)


class LedgerCashModel(Base):
    """What each contract was billed per month (the burn-down's input)."""

    __tablename__ = "ledger_cash"

    contract: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)
    usd: Mapped[float] = mapped_column(sa.Float)


class LedgerPoolModel(Base):
    """A contract's reserved pool (region, instance type): node-hours paid, running and
    used, and what it cost, as accrued so far."""

    __tablename__ = "ledger_pools"

    contract: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    region: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    instance_type: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    paid_node_hours: Mapped[float] = mapped_column(sa.Float)
    running_node_hours: Mapped[float] = mapped_column(sa.Float)
    used_node_hours: Mapped[float] = mapped_column(sa.Float)
    usd: Mapped[float] = mapped_column(sa.Float)


class LedgerMarkModel(Base):
    """How far the persisted ledger runs (``accrued_until``) and under which contracts
    (``contracts_key``: a digest of their specs); one row, name ``ledger``."""

    __tablename__ = "ledger_marks"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    accrued_until: Mapped[datetime]
    contracts_key: Mapped[str] = mapped_column(sa.String(64))


class SettingModel(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(sa.JSON)


class ChangeCounterModel(Base):
    """SQLite's change sequence (migration 0007): one row, bumped by the triggers that
    stamp ``change_seq``. PostgreSQL stamps transaction ids and leaves it unused."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(sa.BigInteger)


class RowDeletionModel(Base):
    """A stamp per table the row images track (migration 0010), replaced with a fresh
    random one by trigger whenever rows of that table are deleted (or truncated): a
    reader compares it with the one of its last read instead of counting the rows."""

    __tablename__ = "row_deletions"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    stamp: Mapped[str] = mapped_column(sa.String(36))


metadata = Base.metadata
