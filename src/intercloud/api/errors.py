"""The API's one error shape: ``{"code": ..., "message": ..., "field": ...}``.

``code`` is an ``ErrorCode`` (what clients compare); ``message`` is one line for people
(as the CLI prints); ``field`` names the bad part of the request (``tenant``,
``resources.accelerators``, ``Authorization``) or is null. Every refusal goes through
``ApiError``; the handlers installed by ``install_handlers`` turn FastAPI's own errors
and anything unexpected into the same shape (never a traceback).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)
DISCONNECTED = "body: the client disconnected before sending all of it"


class ErrorCode(StrEnum):
    UNAUTHORIZED = "unauthorized"  # no token, or a bad, expired or revoked one
    FORBIDDEN = "forbidden"  # the token's role may not do this
    NOT_FOUND = "not_found"  # no such object (or another tenant's)
    INVALID = "invalid"  # a bad value; ``field`` names it
    NOT_RUNNABLE = "not_runnable"  # no enabled provider can run the workload
    CONFLICT = "conflict"  # exists already, or finished already
    TOO_LARGE = "too_large"  # body over ``MAX_BODY_BYTES``
    UNSUPPORTED_MEDIA = "unsupported_media"  # a body neither JSON nor YAML
    RATE_LIMITED = "rate_limited"  # over the tenant's rate; see ``Retry-After``
    UNAVAILABLE = "unavailable"  # the store or the control loop cannot be used
    INTERNAL = "internal"  # a bug: logged on the server


STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID: 422,
    ErrorCode.NOT_RUNNABLE: 422,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}

#: The default text of each code, when the refusal has nothing more precise to say.
MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNAUTHORIZED: "a valid token is required (Authorization: Bearer <token>)",
    ErrorCode.FORBIDDEN: "this token's role may not do that",
    ErrorCode.NOT_FOUND: "not found",
    ErrorCode.INVALID: "invalid request",
    ErrorCode.NOT_RUNNABLE: "no enabled provider can run this workload",
    ErrorCode.CONFLICT: "conflicts with the current state",
    ErrorCode.TOO_LARGE: "request body too large",
    ErrorCode.UNSUPPORTED_MEDIA: "send JSON (application/json) or YAML (application/yaml)",
    ErrorCode.RATE_LIMITED: "too many requests for this tenant; retry later",
    ErrorCode.UNAVAILABLE: "the server cannot use its store right now",
    ErrorCode.INTERNAL: "internal error (logged on the server)",
}

#: The shape every error answer has (for OpenAPI's ``responses``).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "field"],
    "properties": {
        "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
        "message": {"type": "string"},
        "field": {"type": ["string", "null"]},
    },
}


class ApiError(Exception):
    """A refusal with its code, one-line message and the field it is about."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = " ".join((message or MESSAGES[code]).split())
        self.field = field
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "field": self.field}


def error_response(err: ApiError, request: Request | None = None) -> JSONResponse:
    """The answer for ``err``; its code is noted on ``request`` for the audit log."""
    if request is not None:
        request.state.error_code = err.code.value
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def from_library(exc: Exception) -> ApiError | None:
    """The API error for one of the library's own (SDK, store, spec) exceptions."""
    from intercloud.sdk import NotRunnable
    from intercloud.sdk_tenants import BeyondCeiling
    from intercloud.specs import SpecError
    from intercloud.store import StoreError, TenantExists, UnknownTenant, UnknownWorkload
    from intercloud.store.api_repo import UnknownToken

    if isinstance(exc, BeyondCeiling):
        return ApiError(ErrorCode.FORBIDDEN, str(exc), exc.field)
    if isinstance(exc, UnknownWorkload | UnknownToken | UnknownTenant):
        return ApiError(ErrorCode.NOT_FOUND, str(exc))
    if isinstance(exc, TenantExists):
        return ApiError(ErrorCode.CONFLICT, str(exc), "name")
    if isinstance(exc, NotRunnable):
        return ApiError(ErrorCode.NOT_RUNNABLE, str(exc))
    if isinstance(exc, SpecError):
        return ApiError(ErrorCode.INVALID, str(exc), exc.field)
    if isinstance(exc, ValueError):  # InvalidRequest and other one-line input errors
        text = str(exc)
        field = text.split(":", 1)[0] if ":" in text and " " not in text.split(":", 1)[0] else None
        already = "already" in text and text.startswith("job ")
        return ApiError(ErrorCode.CONFLICT if already else ErrorCode.INVALID, text, field)
    if isinstance(exc, StoreError):
        return ApiError(ErrorCode.UNAVAILABLE, str(exc))
    if type(exc).__name__ == "DaemonError":
        return ApiError(ErrorCode.UNAVAILABLE, str(exc))
    return None


def install_handlers(app: FastAPI) -> None:
    """Every error the app can answer leaves in the one shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        msg = str(first.get("msg", "invalid request"))
        text = f"{field}: {msg}" if field else msg
        return error_response(ApiError(ErrorCode.INVALID, text, field), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
                413: ErrorCode.TOO_LARGE, 415: ErrorCode.UNSUPPORTED_MEDIA,
                429: ErrorCode.RATE_LIMITED}.get(exc.status_code, ErrorCode.INVALID)  # fmt: skip
        text = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 405:
            return JSONResponse(
                {"code": ErrorCode.INVALID.value, "message": "method not allowed", "field": None},
                status_code=405,
            )
        return error_response(ApiError(code, text), request)

    async def _library(request: Request, exc: Exception) -> JSONResponse:
        found = from_library(exc)
        if found is None:
            log.error("unexpected error", exc_info=exc)
            found = ApiError(ErrorCode.INTERNAL)
        return error_response(found, request)

    # Registered by class (not ``Exception``) so they are answered inside the app's
    # middleware: the audit log sees the refusal.
    for cls in (ValueError, KeyError, RuntimeError, OSError):
        app.add_exception_handler(cls, _library)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # the caller hung up before its body was all sent: its fault, not a bug (no
        # traceback, no 500 in the audit log); nobody reads this answer
        return error_response(ApiError(ErrorCode.INVALID, DISCONNECTED, "body"), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return error_response(ApiError(ErrorCode.INTERNAL), request)
