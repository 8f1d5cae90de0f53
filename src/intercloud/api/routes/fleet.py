"""``/v1/fleet``, ``/v1/providers`` and ``/v1/audit``: the whole fleet and the audit log
(admins only), and what ``intercloud check`` says about the providers (every role)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from intercloud.api.auth import Principal, context, need
from intercloud.api.fleet_view import fleet_view
from intercloud.api.roles import Action

router = APIRouter(prefix="/v1", tags=["fleet"])

Reader = Annotated[Principal, Depends(need(Action.READ))]
Admin = Annotated[Principal, Depends(need(Action.ADMIN))]


@router.get("/fleet")
def fleet(request: Request, who: Admin) -> dict[str, Any]:
    """Pools, live instances, and utilisation by provider and by GPU type."""
    ctx = context(request)
    return fleet_view(ctx.store, ctx.catalog())


@router.get("/providers")
def providers(request: Request, who: Reader) -> dict[str, Any]:
    """Per provider of the server's configuration: enabled, reachable, credentials,
    offerings by region, why not usable (as ``intercloud check --json``)."""
    from intercloud.config import load_config
    from intercloud.providers.registry import ProviderContext, check_providers

    client = context(request).client
    config = load_config(os.environ, client.home)
    checks = check_providers(config, ProviderContext(home=client.home, environ=dict(os.environ)))
    return {
        "config": str(config.source) if config.source else None,
        "usable": all(c.usable for c in checks if c.enabled),
        "providers": [c.to_dict() for c in checks],
    }


@router.get("/audit")
def audit(
    request: Request,
    who: Admin,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    tenant: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Mutating calls, oldest first, after row ``after``: who, what, when, from where,
    outcome."""
    rows = context(request).store.audit(after, limit, tenant)
    return [{**_plain(r), "time": r.time.isoformat()} for r in rows]


def _plain(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(r)
