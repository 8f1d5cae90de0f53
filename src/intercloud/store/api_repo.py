"""API tokens and the audit log in the store (a mixin of ``Store``).

Same contract as every ``Store`` method: one short transaction, times injected (``now``,
timezone-aware), records back as frozen dataclasses. Secrets never reach the store:
callers pass the SHA-256 hex digest (``intercloud.api.tokens`` makes and hashes them).
Every read that serves a tenant takes ``tenant`` and filters by it in the SQL itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intercloud.store.errors import InvalidRequest, UnknownTenant
from intercloud.store.records import ApiTokenRecord, AuditRecord, Role
from intercloud.store.tables import ApiTokenModel, AuditModel, TenantModel

if TYPE_CHECKING:
    from intercloud.store.db import Database

__all__ = ["ApiRepo", "UnknownToken"]

T = ApiTokenModel
AU = AuditModel
_MAX_ID = 2**31 - 1
#: Longest stored text of an audit row's path and target (a request path can be long).
_MAX_PATH = 512
_MAX_TARGET = 255


class UnknownToken(KeyError):
    """No such token (or another tenant's)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown token"


def _aware(t: datetime | None) -> datetime | None:
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=UTC)


def _token(row: RowMapping) -> ApiTokenRecord:
    created = _aware(row["created_at"])
    assert created is not None
    return ApiTokenRecord(
        id=row["id"],
        tenant=row["tenant"],
        role=Role(row["role"]),
        name=row["name"],
        prefix=row["prefix"],
        created_at=created,
        created_by=row["created_by"],
        expires_at=_aware(row["expires_at"]),
        revoked_at=_aware(row["revoked_at"]),
    )


def _audit(row: RowMapping) -> AuditRecord:
    t = _aware(row["time"])
    assert t is not None
    return AuditRecord(**{**dict(row), "time": t})


_TOKEN_COLUMNS = (
    T.id,
    TenantModel.name.label("tenant"),
    T.role,
    T.name,
    T.prefix,
    T.created_at,
    T.created_by,
    T.expires_at,
    T.revoked_at,
)
_SELECT_TOKEN = sa.select(*_TOKEN_COLUMNS).join(TenantModel, TenantModel.id == T.tenant_id)


class ApiRepo:
    """Tokens and audit rows; mixed into ``Store``."""

    if TYPE_CHECKING:
        _db: Database

        def _now(self, now: datetime | None) -> datetime: ...

    def create_token(
        self,
        tenant: str,
        role: Role,
        secret_hash: str,
        prefix: str,
        *,
        name: str = "",
        expires_at: datetime | None = None,
        created_by: int | None = None,
        now: datetime | None = None,
    ) -> ApiTokenRecord:
        """Store a new token of ``tenant`` (UnknownTenant if missing) with ``role``."""
        t = self._now(now)
        if expires_at is not None and expires_at <= t:
            raise InvalidRequest("expires_at: must be in the future")
        with self._db.write() as conn:
            tid = conn.execute(sa.select(TenantModel.id).where(TenantModel.name == tenant)).scalar()
            if tid is None:
                raise UnknownTenant(f"unknown tenant {tenant!r}")
            result = conn.execute(
                sa.insert(T).values(
                    tenant_id=tid,
                    role=Role(role).value,
                    name=name,
                    secret_hash=secret_hash,
                    prefix=prefix,
                    created_at=t,
                    created_by=created_by,
                    expires_at=expires_at,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return self._token(conn, int(key[0]), None)

    def token_by_hash(self, secret_hash: str) -> ApiTokenRecord | None:
        """The token whose secret hashes to ``secret_hash`` (live or not), else None."""
        with self._db.read() as conn:
            row = conn.execute(_SELECT_TOKEN.where(T.secret_hash == secret_hash)).mappings()
            found = row.one_or_none()
        return None if found is None else _token(found)

    def get_token(self, token_id: int, tenant: str | None = None) -> ApiTokenRecord:
        """The token ``token_id`` (of ``tenant`` when given); UnknownToken otherwise."""
        with self._db.read() as conn:
            return self._token(conn, token_id, tenant)

    def _token(self, conn: Connection, token_id: int, tenant: str | None) -> ApiTokenRecord:
        if not 0 < token_id <= _MAX_ID:
            raise UnknownToken(f"no token {token_id}")
        stmt = _SELECT_TOKEN.where(T.id == token_id)
        if tenant is not None:
            stmt = stmt.where(TenantModel.name == tenant)
        row = conn.execute(stmt).mappings().one_or_none()
        if row is None:
            raise UnknownToken(f"no token {token_id}")
        return _token(row)

    def list_tokens(self, tenant: str | None = None) -> list[ApiTokenRecord]:
        """Tokens by id, only ``tenant``'s when given (revoked and expired ones too)."""
        stmt = _SELECT_TOKEN.order_by(T.id)
        if tenant is not None:
            stmt = stmt.where(TenantModel.name == tenant)
        with self._db.read() as conn:
            return [_token(r) for r in conn.execute(stmt).mappings()]

    def live_admin_tokens(self, now: datetime | None = None) -> int:
        """How many ``admin`` tokens are usable now (``admin bootstrap`` checks it)."""
        t = self._now(now)
        stmt = (
            sa.select(sa.func.count())
            .select_from(T)
            .where(
                T.role == Role.ADMIN.value,
                T.revoked_at.is_(None),
                sa.or_(T.expires_at.is_(None), T.expires_at > t),
            )
        )
        with self._db.read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def revoke_token(
        self, token_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> ApiTokenRecord:
        """Revoke the token (of ``tenant`` when given); idempotent: a revoked token keeps
        its first ``revoked_at``. UnknownToken when missing or another tenant's."""
        t = self._now(now)
        with self._db.write() as conn:
            current = self._token(conn, token_id, tenant)
            if current.revoked_at is None:
                conn.execute(
                    sa.update(T)
                    .where(T.id == token_id, T.revoked_at.is_(None))
                    .values(revoked_at=t)
                )
            return self._token(conn, token_id, tenant)

    def add_audit(
        self,
        *,
        method: str,
        path: str,
        status: int,
        token_id: int | None = None,
        tenant: str | None = None,
        role: str | None = None,
        target: str | None = None,
        code: str | None = None,
        client: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Append one audit row; return its id."""
        values = self._audit_values(
            self._now(now),
            method=method,
            path=path,
            status=status,
            token_id=token_id,
            tenant=tenant,
            role=role,
            target=target,
            code=code,
            client=client,
        )
        with self._db.write() as conn:
            key = conn.execute(sa.insert(AU).values(values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    @staticmethod
    def _audit_values(
        time: datetime,
        *,
        method: str,
        path: str,
        status: int,
        token_id: int | None = None,
        tenant: str | None = None,
        role: str | None = None,
        target: str | None = None,
        code: str | None = None,
        client: str | None = None,
    ) -> dict[str, Any]:
        """One audit row's columns, each cut to its column's size."""
        return {
            "time": time,
            "token_id": token_id,
            "tenant": tenant,
            "role": role,
            "method": method[:8],
            "path": path[:_MAX_PATH],
            "target": target[:_MAX_TARGET] if target else None,
            "status": status,
            "code": code,
            "client": client[:64] if client else None,
        }

    @staticmethod
    def _insert_audits(conn: Connection, values: Sequence[Mapping[str, Any]]) -> None:
        conn.execute(sa.insert(AU), list(values))

    def audit(
        self, after_id: int = 0, limit: int = 100, tenant: str | None = None
    ) -> list[AuditRecord]:
        """Audit rows after ``after_id`` by id, at most ``limit``, of ``tenant`` if given."""
        stmt = sa.select(AU).where(AU.id > after_id)
        if tenant is not None:
            stmt = stmt.where(AU.tenant == tenant)
        with self._db.read() as conn:
            rows = conn.execute(stmt.order_by(AU.id).limit(limit)).mappings()
            return [_audit(r) for r in rows]
