"""``/v1/tenants``: tenants with their quotas, guarantees, budgets and usage.

Admins create and change tenants; everyone else reads only their own (another tenant's
name answers 404, as a missing one does).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from intercloud.api.auth import Principal, context, need
from intercloud.api.errors import ApiError, ErrorCode
from intercloud.api.roles import Action

router = APIRouter(prefix="/v1", tags=["tenants"])

Reader = Annotated[Principal, Depends(need(Action.READ))]
Admin = Annotated[Principal, Depends(need(Action.ADMIN))]
QuotaSetter = Annotated[Principal, Depends(need(Action.MANAGE_QUOTAS))]


class TenantLimits(BaseModel):
    """A tenant's limits; in a change, only the fields given are changed (maps replace
    the stored ones; ``monthly_budget_usd: null`` removes the budget)."""

    model_config = ConfigDict(extra="forbid")

    weight: float | None = Field(None, description="Fair-share weight, 1e-6 to 1e6.")
    guarantees: dict[str, int] | None = Field(None, description="GPU type -> guaranteed GPUs.")
    quotas: dict[str, int] | None = Field(None, description="GPU type -> most running GPUs.")
    can_borrow: bool | None = Field(None, description="May run beyond its guarantees.")
    monthly_budget_usd: float | None = Field(None, description="USD per UTC month.")


class NewTenant(TenantLimits):
    name: str = Field(description="Letters, digits, '.', '_', '-'; at most 64.")


def _not_found(name: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"unknown tenant {name!r}")


@router.get("/tenants")
def list_tenants(request: Request, who: Reader) -> list[dict[str, Any]]:
    """Every tenant (an admin) or the caller's own, with usage against its limits."""
    client = context(request).client
    if who.is_admin:
        rows: list[dict[str, Any]] = client.tenants()
        return rows
    return [_own(client, who.tenant)]


def _own(client: Any, name: str) -> dict[str, Any]:
    from intercloud.sdk_tenants import describe
    from intercloud.store import TenantUsage

    rec = client.store.get_tenant(name)
    return describe(rec, client.store.tenant_usage().get(name, TenantUsage()))


@router.get("/tenants/{name}")
def get_tenant(request: Request, name: str, who: Reader) -> dict[str, Any]:
    """One tenant with its usage and the history of its changes."""
    if not who.is_admin and name != who.tenant:
        raise _not_found(name)
    result: dict[str, Any] = context(request).client.tenant(name)
    return result


@router.post("/tenants", status_code=201)
def create_tenant(request: Request, body: NewTenant, who: Admin) -> dict[str, Any]:
    """Create a tenant (409 if the name is taken)."""
    request.state.audit_target = f"tenant {body.name}"
    limits = body.model_dump(exclude={"name"}, exclude_none=True)
    if "monthly_budget_usd" in body.model_fields_set:
        limits["monthly_budget_usd"] = body.monthly_budget_usd
    result: dict[str, Any] = context(request).client.create_tenant(body.name, **limits)
    return result


@router.patch("/tenants/{name}")
def set_tenant(request: Request, name: str, body: TenantLimits, who: QuotaSetter) -> dict[str, Any]:
    """Change a tenant's limits (quotas, guarantees, weight, budget, borrowing). An
    admin's ``quotas`` are also the tenant's ceiling; a tenant-admin may change only its
    own tenant's ``quotas``, within that ceiling (403 naming ``quotas.<GPU>`` beyond it)."""
    request.state.audit_target = f"tenant {name}"
    if not who.is_admin and name != who.tenant:
        raise _not_found(name)
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    for key in ("weight", "guarantees", "quotas", "can_borrow"):
        if key in changes and changes[key] is None:
            raise ApiError(ErrorCode.INVALID, f"{key}: may not be null", key)
    if not changes:
        raise ApiError(ErrorCode.INVALID, "nothing to change: give at least one limit")
    result: dict[str, Any] = context(request).client.set_tenant(
        name, within_ceiling=not who.is_admin, **changes
    )
    return result
