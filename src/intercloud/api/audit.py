"""The audit middleware: every mutating call (POST, PUT, PATCH, DELETE) leaves one
``audit_log`` row after it is answered: the caller's token, tenant and role (none when
it could not be identified), method, path, target, status, error code, client address.
Reads are not audited; the dashboard's logins are."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from intercloud.api.context import ApiContext

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: The dashboard's logins: who tried which token, from where, and whether it worked.
AUDITED_UI = frozenset({"/ui/login"})


def install_audit(app: FastAPI) -> None:
    @app.middleware("http")
    async def _audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            response = await call_next(request)
        except Exception:
            await _write(request, 500)
            raise
        await _write(request, response.status_code)
        return response


async def _write(request: Request, status: int) -> None:
    path = request.url.path
    if request.method in MUTATING and (path.startswith("/v1/") or path in AUDITED_UI):
        ctx: ApiContext = request.app.state.ctx
        who = getattr(request.state, "principal", None)
        try:
            await run_in_threadpool(
                ctx.store.add_audit,
                method=request.method,
                path=request.url.path,
                status=status,
                token_id=who.token_id if who else None,
                tenant=who.tenant if who else None,
                role=who.role.value if who else None,
                target=getattr(request.state, "audit_target", None),
                code=getattr(request.state, "error_code", None),
                client=request.client.host if request.client else None,
            )
        except Exception:  # the call itself is done; say so loudly, answer anyway
            log.exception("audit row not written for %s %s", request.method, request.url.path)
