"""Who is calling: the bearer token, checked against the store, then the rate limit.

``principal`` is a FastAPI dependency: no token, an unknown, expired or revoked one
answer 401 (``unauthorized``), with the one error shape. ``need(action)`` adds the role
check (403). The principal is kept on ``request.state`` for the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from intercloud.api.context import ApiContext
from intercloud.api.errors import ApiError, ErrorCode
from intercloud.api.roles import Action, Role, allowed
from intercloud.api.tokens import MAX_SECRET_CHARS, hash_secret
from intercloud.store import utc_now


@dataclass(frozen=True)
class Principal:
    token_id: int
    tenant: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def scope(self) -> str | None:
        """The tenant every query is filtered by: None (all) for an admin."""
        return None if self.is_admin else self.tenant


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def bearer_secret(request: Request) -> str:
    """The token of the ``Authorization: Bearer`` header (401 without one)."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiError(ErrorCode.UNAUTHORIZED, field="Authorization")
    if len(secret) > MAX_SECRET_CHARS:
        raise ApiError(ErrorCode.UNAUTHORIZED, "unknown token", "Authorization")
    return secret


async def principal(request: Request) -> Principal:
    return await authenticate(request, bearer_secret(request))


async def authenticate(request: Request, secret: str) -> Principal:
    """The principal of ``secret`` (401 unless live, 429 over the tenant's rate), kept
    on the request; the header and the dashboard's cookie both come here."""
    ctx = context(request)
    if len(secret) > MAX_SECRET_CHARS:
        raise ApiError(ErrorCode.UNAUTHORIZED, "unknown token", "Authorization")
    key = hash_secret(secret)
    found = await ctx.tokens.lookup(key, ctx.store.token_by_hash)
    if found is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "unknown token", "Authorization")
    if found.revoked_at is not None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "token revoked", "Authorization")
    if not found.live(utc_now()):
        raise ApiError(ErrorCode.UNAUTHORIZED, "token expired", "Authorization")
    who = Principal(found.id, found.tenant, found.role)
    request.state.principal = who
    wait = ctx.limiter.take(found.tenant)
    if wait > 0:
        raise ApiError(
            ErrorCode.RATE_LIMITED,
            f"tenant {found.tenant!r} is over its rate of {ctx.limiter.rate:g} requests/s",
            headers={"Retry-After": ctx.limiter.retry_after(wait)},
        )
    return who


def need(action: Action) -> Callable[..., object]:
    """A dependency: the caller, who must be allowed ``action`` (403 otherwise)."""

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not allowed(who.role, action):
            raise forbidden(who, action)
        return who

    return check


def forbidden(who: Principal, action: Action) -> ApiError:
    """The 403 for ``who`` asking for ``action``."""
    return ApiError(
        ErrorCode.FORBIDDEN, f"role {who.role.value} may not {action.value.replace('_', ' ')}"
    )
