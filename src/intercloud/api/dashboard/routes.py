"""``/ui``: the dashboard, server-rendered (Jinja2) and refreshed by htmx.

Log in with an API token: it is checked as the API checks a bearer token, then kept in
an HttpOnly, SameSite=Strict cookie scoped to ``/ui`` (scripts cannot read it, other
sites cannot send it). Each panel is a fragment under ``/ui/part/...`` that the page
polls; every fragment reads with the token's tenant scope (``views``). Nothing here
changes state except logging in and out, so no form other than those exists.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from intercloud.api.auth import Principal, authenticate, context
from intercloud.api.dashboard import views
from intercloud.api.errors import ApiError, ErrorCode, from_library

router = APIRouter(prefix="/ui", include_in_schema=False)

COOKIE = "intercloud_ui"
COOKIE_MAX_AGE_S = 12 * 3600
MAX_FORM_BYTES = 4096
#: Files under static/ served as themselves (nothing else is reachable).
STATIC = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "HTMX-LICENSE.txt": "text/plain; charset=utf-8",
}
#: No inline script, nothing from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
)

_env = Environment(
    loader=PackageLoader("intercloud.api.dashboard", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _html(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    body = _env.get_template(name).render(**ctx)
    return HTMLResponse(body, status, headers={"Content-Security-Policy": CSP})


async def _who(request: Request) -> Principal | None:
    """The cookie's principal; None when there is none or it no longer works."""
    secret = request.cookies.get(COOKIE, "").strip()
    if not secret:
        return None
    try:
        return await authenticate(request, secret)
    except ApiError as exc:
        if exc.code is ErrorCode.UNAUTHORIZED:
            return None
        raise


def _to_login(request: Request) -> Response:
    """Back to the login page: a redirect for a page, ``HX-Redirect`` for a fragment."""
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": "/ui/login"})
    return RedirectResponse("/ui/login", status_code=303)


@router.get("/login")
def login_page() -> HTMLResponse:
    return _html("login.html", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            request.state.error_code = ErrorCode.TOO_LARGE.value
            return _html("login.html", 413, error="token: too long")
    form = parse_qs(body.decode("utf-8", "replace"))
    secret = (form.get("token") or [""])[0].strip()
    request.state.audit_target = "dashboard"
    if not secret:
        request.state.error_code = ErrorCode.UNAUTHORIZED.value
        return _html("login.html", 401, error="token: paste an API token")
    try:
        await authenticate(request, secret)
    except ApiError as exc:
        request.state.error_code = exc.code.value  # for the audit row
        return _html("login.html", exc.status, error=f"token: {exc.message}")
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=COOKIE_MAX_AGE_S,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    kind = STATIC.get(name)
    if kind is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no file {name!r}")
    data = files("intercloud.api.dashboard").joinpath("static", name).read_bytes()
    return Response(data, media_type=kind, headers={"Cache-Control": "max-age=3600"})


@router.get("")
async def index(request: Request, by: str = "provider", window: str = "1h") -> Response:
    who = await _who(request)
    if who is None:
        return _to_login(request)
    ctx = context(request)
    data = await run_in_threadpool(_panels, ctx, who, by, window)
    return _html("index.html", who=who, **data)


def _panels(ctx: Any, who: Principal, by: str, window: str) -> dict[str, Any]:
    return {
        "queue": views.queue(ctx, who),
        "jobs": views.jobs(ctx, who),
        "fleet": views.fleet(ctx, who, by, window),
        "tenants": views.tenants(ctx, who),
        "contracts": views.contracts(ctx, who),
        "windows": list(views.WINDOWS),
    }


_PARTS: dict[str, Callable[[Any, Principal, dict[str, str]], dict[str, Any]]] = {
    "queue": lambda ctx, who, q: {"queue": views.queue(ctx, who)},
    "jobs": lambda ctx, who, q: {"jobs": views.jobs(ctx, who)},
    "fleet": lambda ctx, who, q: {
        "fleet": views.fleet(ctx, who, q.get("by", "provider"), q.get("window", "1h")),
        "windows": list(views.WINDOWS),
    },
    "tenants": lambda ctx, who, q: {"tenants": views.tenants(ctx, who)},
    "contracts": lambda ctx, who, q: {"contracts": views.contracts(ctx, who)},
}


@router.get("/part/{name}")
async def part(request: Request, name: str) -> Response:
    """One panel's fragment (what the page polls)."""
    if name not in _PARTS:
        raise ApiError(ErrorCode.NOT_FOUND, f"no panel {name!r}")
    who = await _who(request)
    if who is None:
        return _to_login(request)
    data = await run_in_threadpool(_PARTS[name], context(request), who, dict(request.query_params))
    return _html(f"part_{name}.html", who=who, **data)


async def _job_or_404(request: Request, who: Principal, job_id: int, fn: Any) -> Any:
    try:
        return await run_in_threadpool(fn, context(request), who, job_id)
    except Exception as exc:
        found = from_library(exc)
        if found is None:
            raise
        if found.code is ErrorCode.NOT_FOUND:
            return None
        raise found from None


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: int) -> Response:
    """A job's story: summary, attempts, events, and its log following live."""
    who = await _who(request)
    if who is None:
        return _to_login(request)
    story = await _job_or_404(request, who, job_id, views.job) if 0 < job_id < 2**31 else None
    if story is None:
        return _html("missing.html", 404, who=who, job_id=job_id)
    return _html("job.html", who=who, job=story, finished=story["finished_at"] is not None)


@router.get("/jobs/{job_id}/logs")
async def job_logs(request: Request, job_id: int) -> Response:
    """The log fragment; it stops polling once the job has finished."""
    who = await _who(request)
    if who is None:
        return _to_login(request)
    story = await _job_or_404(request, who, job_id, views.job) if 0 < job_id < 2**31 else None
    if story is None:
        return _html("missing.html", 404, who=who, job_id=job_id)
    text = await _job_or_404(request, who, job_id, views.logs)
    return _html(
        "part_logs.html",
        job=story,
        text=text or "",
        finished=story["finished_at"] is not None,
    )
