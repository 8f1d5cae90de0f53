"""``/v1/tokens`` and ``/v1/whoami``: API tokens (the secret is in the creation answer
only) and the caller's own identity.

An admin manages every tenant's tokens; a tenant-admin its own tenant's (never an admin
token); another tenant's token answers 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from intercloud.api.auth import Principal, context, need, principal
from intercloud.api.errors import ApiError, ErrorCode
from intercloud.api.roles import Action, Role, may_grant
from intercloud.api.tokens import hash_secret, new_secret, prefix_of
from intercloud.store import utc_now
from intercloud.store.records import ApiTokenRecord

router = APIRouter(prefix="/v1", tags=["tokens"])

Manager = Annotated[Principal, Depends(need(Action.MANAGE_TOKENS))]
#: Tokens expire after this many days unless asked otherwise (at most ``MAX_DAYS``).
DEFAULT_DAYS = 90
MAX_DAYS = 3650
MAX_ID = 2**31 - 1


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(description="The tenant the token acts for.")
    role: Role = Field(description="admin, tenant-admin, member or viewer.")
    name: str = Field("", max_length=128, description="A label for people.")
    expires_days: int = Field(DEFAULT_DAYS, ge=1, le=MAX_DAYS, description="Days it lasts.")


def describe(t: ApiTokenRecord) -> dict[str, Any]:
    """A token as plain data, without its secret."""
    now = utc_now()
    return {
        "id": t.id,
        "tenant": t.tenant,
        "role": t.role.value,
        "name": t.name,
        "prefix": t.prefix,
        "created_at": t.created_at.isoformat(),
        "created_by": t.created_by,
        "expires_at": t.expires_at.isoformat() if t.expires_at else None,
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        "live": t.live(now),
    }


def issue(
    store: Any,
    tenant: str,
    role: Role,
    name: str = "",
    expires_days: int | None = DEFAULT_DAYS,
    created_by: int | None = None,
) -> tuple[str, ApiTokenRecord]:
    """Make a token: its secret (to show once) and its stored record."""
    secret = new_secret()
    expires = utc_now() + timedelta(days=expires_days) if expires_days else None
    rec = store.create_token(
        tenant,
        role,
        hash_secret(secret),
        prefix_of(secret),
        name=name,
        expires_at=expires,
        created_by=created_by,
    )
    return secret, rec


@router.get("/whoami")
def whoami(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
    """The caller's token id, tenant and role."""
    return {"token_id": who.token_id, "tenant": who.tenant, "role": who.role.value}


@router.post("/tokens", status_code=201)
def create_token(request: Request, body: NewToken, who: Manager) -> dict[str, Any]:
    """Create a token; the answer's ``secret`` is shown this once and never again."""
    if not who.is_admin and body.tenant != who.tenant:
        raise ApiError(ErrorCode.NOT_FOUND, f"unknown tenant {body.tenant!r}", "tenant")
    if not may_grant(who.role, body.role):
        raise ApiError(
            ErrorCode.FORBIDDEN,
            f"role {who.role.value} may not create {body.role.value} tokens",
            "role",
        )
    secret, rec = issue(
        context(request).store, body.tenant, body.role, body.name, body.expires_days, who.token_id
    )
    request.state.audit_target = f"token {rec.id}"
    return {**describe(rec), "secret": secret}


@router.get("/tokens")
def list_tokens(
    request: Request, who: Manager, tenant: Annotated[str | None, Query()] = None
) -> list[dict[str, Any]]:
    """Tokens (without secrets): every tenant's for an admin (or ``tenant``'s), else the
    caller's tenant's."""
    scope = tenant if who.is_admin else who.tenant
    return [describe(t) for t in context(request).store.list_tokens(scope)]


def _check_id(token_id: int) -> int:
    if not 0 < token_id <= MAX_ID:
        raise ApiError(ErrorCode.NOT_FOUND, f"no token {token_id}")
    return token_id


@router.get("/tokens/{token_id}")
def get_token(request: Request, token_id: int, who: Manager) -> dict[str, Any]:
    return describe(context(request).store.get_token(_check_id(token_id), who.scope()))


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, who: Manager) -> dict[str, Any]:
    """Revoke a token at once (idempotent)."""
    request.state.audit_target = f"token {token_id}"
    store = context(request).store
    current = store.get_token(_check_id(token_id), who.scope())
    if not may_grant(who.role, current.role):
        raise ApiError(
            ErrorCode.FORBIDDEN, f"role {who.role.value} may not revoke {current.role.value} tokens"
        )
    revoked = store.revoke_token(token_id, who.scope())
    context(request).tokens.clear()  # refused from the next request on
    return describe(revoked)
