"""The audit middleware: every mutating call (POST, PUT, PATCH, DELETE) leaves one
``audit_log`` row after it is answered: the caller's token, tenant and role (none when
it could not be identified), method, path, target, status, error code, client address.
Reads are not audited; the dashboard's logins are."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intercloud.api.context import ApiContext

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The dashboard's logins: who tried which token, from where, and whether it worked.
AUDITED_UI = frozenset({"/ui/login"})


def install_audit(app: FastAPI) -> None:
    app.add_middleware(AuditMiddleware)


class AuditMiddleware:
    """Writes the row just before the answer's status goes out (so a call is audited
    before its caller hears of it). Plain ASGI, not ``BaseHTTPMiddleware``: no task
    and stream per request on the hot submission path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        written = False

        async def audited_send(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start" and not written:
                written = True
                await _write(request, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not written:
                written = True
                await _write(request, 500)
            raise


def audit_row(request: Request, status: int) -> dict[str, Any]:
    """The audit row of ``request`` answered with ``status`` (``Store.add_audit``'s
    keywords)."""
    who = getattr(request.state, "principal", None)
    return {
        "method": request.method,
        "path": request.url.path,
        "status": status,
        "token_id": who.token_id if who else None,
        "tenant": who.tenant if who else None,
        "role": who.role.value if who else None,
        "target": getattr(request.state, "audit_target", None),
        "code": getattr(request.state, "error_code", None),
        "client": request.client.host if request.client else None,
    }


async def _write(request: Request, status: int) -> None:
    # a submission's row is written with it, in the same transaction (``submit``)
    audited = getattr(request.state, "audited", False)
    path = request.url.path
    if (
        request.method in MUTATING
        and (path.startswith("/v1/") or path in AUDITED_UI)
        and not audited
    ):
        ctx: ApiContext = request.app.state.ctx
        try:
            await ctx.committer.audit(audit_row(request, status))
        except Exception:  # the call itself is done; say so loudly, answer anyway
            log.exception("audit row not written for %s %s", request.method, request.url.path)
