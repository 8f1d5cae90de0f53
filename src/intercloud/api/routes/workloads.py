"""``/v1/workloads`` and ``/v1/queue``: submit, list, read, cancel, logs.

Every read and change is scoped to the caller's tenant in the store's query (an admin
sees every tenant); another tenant's id answers 404, as a missing one does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from intercloud.api.audit import audit_row
from intercloud.api.auth import Principal, authenticate, bearer_secret, context, forbidden, need
from intercloud.api.errors import ApiError, ErrorCode
from intercloud.api.roles import Action, allowed
from intercloud.control.states import JobState

router = APIRouter(prefix="/v1", tags=["workloads"])

#: Content types a spec may come as (JSON is YAML too, but is checked as JSON first).
JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
ENV_HEADER = "X-Intercloud-Env"
SOURCE_HEADER = "X-Intercloud-Spec-Name"
MAX_ID = 2**31 - 1
JobId = Annotated[int, "path"]

Reader = Annotated[Principal, Depends(need(Action.READ))]
Submitter = Annotated[Principal, Depends(need(Action.SUBMIT))]

_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "The workload spec itself (intercloud or SkyPilot), as YAML or JSON.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(ErrorCode.TOO_LARGE, f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(ErrorCode.TOO_LARGE, f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _spec_text(content_type: str, body: bytes) -> str:
    """The spec as text; 415 for another content type, 422 for bad JSON or encoding."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in JSON_TYPES | YAML_TYPES:
        raise ApiError(ErrorCode.UNSUPPORTED_MEDIA, field="Content-Type")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(ErrorCode.INVALID, "(body): not UTF-8 text", "(body)") from None
    if not text.strip():
        raise ApiError(ErrorCode.INVALID, "(body): empty; send the workload spec", "(body)")
    if kind in JSON_TYPES:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ApiError(
                ErrorCode.INVALID, f"(json): {exc.msg} at line {exc.lineno}", "(json)"
            ) from None
        if not isinstance(data, dict):
            raise ApiError(ErrorCode.INVALID, "(root): the spec must be an object", "(root)")
        # one line, no tabs: JSON that the spec loader (YAML) reads as the same object
        text = json.dumps(data)
    return text


def _env(request: Request) -> dict[str, str]:
    raw = request.headers.get(ENV_HEADER)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ApiError(
            ErrorCode.INVALID, f"{ENV_HEADER}: must be a JSON object of strings", ENV_HEADER
        )
    return data


def _source(request: Request) -> str:
    raw = " ".join(request.headers.get(SOURCE_HEADER, "").split())[:255]
    return raw or "<request>"


def _check_id(job_id: int) -> int:
    if not 0 < job_id <= MAX_ID:
        raise ApiError(ErrorCode.NOT_FOUND, f"no workload {job_id}")
    return job_id


@router.post("/workloads", status_code=201, openapi_extra=_SPEC_BODY)
async def submit(request: Request, who: Submitter) -> dict[str, Any]:
    """Submit a workload; answers with its ``id`` once the submission is durable. The
    tenant is the token's: a spec naming another tenant is refused (an admin's token
    submits for the spec's tenant)."""
    return await _submit(request, who)


async def submit_lean(request: Request) -> Response:
    """``submit`` without FastAPI's per-request dependency solving and response
    encoding (a third of the server's CPU per submission): the same checks in the same
    order (token, rate, role, body), the same answer. Mounted ahead of the documented
    route by ``install_lean_submit``; that route stays for OpenAPI."""
    who = await authenticate(request, bearer_secret(request))
    if not allowed(who.role, Action.SUBMIT):
        raise forbidden(who, Action.SUBMIT)
    return JSONResponse(await _submit(request, who), status_code=201)


def install_lean_submit(routes: list[BaseRoute]) -> None:
    """Put ``submit_lean`` first among ``routes`` (the app's: matched before the
    routers, so it answers ``POST /v1/workloads``; other methods go on to them)."""
    routes.insert(
        0, _NamedRoute("/v1/workloads", submit_lean, methods=["POST"], include_in_schema=False)
    )


class _NamedRoute(Route):
    """A route that writes itself into the scope as FastAPI's do (the metrics label
    requests with the matched route's path)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child = {**child, "route": self}
        return match, child


async def _submit(request: Request, who: Principal) -> dict[str, Any]:
    ctx = context(request)
    body = await _body(request, ctx.settings.max_body_bytes)
    text = _spec_text(request.headers.get("content-type", ""), body)
    env = _env(request)
    prepare = partial(
        ctx.client.prepare,
        _source(request),
        text=text,
        env=env,
        tenant=who.scope(),
        host_files=False,
    )
    # prepared in the group commit's thread, then stored with its audit row, in a
    # transaction shared with concurrent requests
    prepared, job_id = await ctx.committer.submit_prepared(prepare, audit_row(request, 201))
    request.state.audited = True
    request.state.audit_target = f"workload {job_id}"
    sub = prepared.submission(job_id)
    choice = sub.plan.choice
    return {
        "id": sub.job_id,
        "name": sub.name,
        "placement": choice.to_dict() if choice is not None else None,
        "ignored_fields": list(sub.ignored_fields),
        "notes": list(sub.notes),
    }


def _states(state: list[str] | None) -> list[JobState] | None:
    if not state:
        return None
    out = []
    for s in state:
        try:
            out.append(JobState(s.upper()))
        except ValueError:
            known = ", ".join(j.value for j in JobState)
            raise ApiError(
                ErrorCode.INVALID, f"state: unknown state {s!r} (known: {known})", "state"
            ) from None
    return out


def _tenant_filter(who: Principal, tenant: str | None) -> str | None:
    """An admin may narrow to one tenant; everyone else sees only their own."""
    return tenant if who.is_admin else who.tenant


@router.get("/workloads")
def list_workloads(
    request: Request,
    who: Reader,
    state: Annotated[list[str] | None, Query(description="Only jobs in these states.")] = None,
    tenant: Annotated[str | None, Query(description="Admins: only this tenant.")] = None,
) -> list[dict[str, Any]]:
    """The caller's tenant's jobs (an admin: every tenant's), by id."""
    result: list[dict[str, Any]] = context(request).client.jobs(
        _states(state), tenant=_tenant_filter(who, tenant)
    )
    return result


@router.get("/workloads/{job_id}")
def get_workload(request: Request, job_id: int, who: Reader) -> dict[str, Any]:
    """One job: its summary, placement, attempts, nodes and every event (its story)."""
    result: dict[str, Any] = context(request).client.status(_check_id(job_id), tenant=who.scope())
    return result


@router.post("/workloads/{job_id}/cancel")
def cancel_workload(request: Request, job_id: int, who: Submitter) -> dict[str, Any]:
    """Ask for cancellation; 409 when the job has finished already."""
    request.state.audit_target = f"workload {job_id}"
    result: dict[str, Any] = context(request).client.cancel(_check_id(job_id), tenant=who.scope())
    return result


@router.get("/workloads/{job_id}/logs", response_class=StreamingResponse)
def workload_logs(
    request: Request,
    job_id: int,
    who: Reader,
    follow: bool = False,
    node: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> StreamingResponse:
    """The job's log lines as ``text/plain`` (every node prefixed ``[node N]``, or one
    with ``node``); with ``follow=true`` the stream stays open until the job is finished
    and its logs drained."""
    client = context(request).client
    lines = client.logs(_check_id(job_id), node=node, follow=follow, tenant=who.scope())
    first = next(lines, None)  # errors (404, a bad node) before the 200 is sent

    def stream() -> Iterator[bytes]:
        if first is not None:
            yield first.encode()
            for line in lines:
                yield line.encode()

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")


@router.get("/queue")
def queue(
    request: Request,
    who: Reader,
    tenant: Annotated[str | None, Query(description="Admins: only this tenant.")] = None,
) -> list[dict[str, Any]]:
    """Jobs not finished yet, each with the reason it waits."""
    result: list[dict[str, Any]] = context(request).client.queue(_tenant_filter(who, tenant))
    return result
