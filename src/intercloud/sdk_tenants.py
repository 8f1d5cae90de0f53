"""Tenants for the SDK (``Client.create_tenant``, ``tenants``, ``tenant``, ``set_tenant``).

A tenant is a team that owns workloads (a spec's ``tenant:``) and what the scheduler
limits: fair-share ``weight``, ``guarantees`` (GPUs per type it is always given, taking
back borrowed ones), ``can_borrow`` (may it run beyond them on idle GPUs, as reclaimable
work), ``quotas`` (a ceiling on its running GPUs per type, borrowed ones included) and
``monthly_budget_usd``. ``default`` always exists. GPU types are canonical accelerator
names (``h100`` and ``H100`` are both ``H100``); unknown ones are refused.

Every function raises a ``ValueError`` subclass (``InvalidRequest``, ``UnknownTenant``,
``TenantExists``) with a one-line message naming the field for bad input, and changes
nothing stored when it does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from intercloud.model import canonical_accelerator
from intercloud.store import (
    InvalidRequest,
    Store,
    TenantRecord,
    TenantUsage,
    utc_now,
)

#: The ``tenants.name`` column's width (spec names allow 128: longer ones never exist).
MAX_TENANT_NAME = 64
_TENANT_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_TENANT_NAME - 1}}}\Z")


def check_tenant_name(name: str, field: str = "name") -> str:
    """A workload-style name (letters, digits, '.', '_', '-', starting with a letter or
    digit) of at most ``MAX_TENANT_NAME`` characters; InvalidRequest naming ``field``."""
    if not isinstance(name, str) or not _TENANT_NAME.match(name):
        raise InvalidRequest(
            f"{field}: must start with a letter or digit and use only letters, digits, "
            f"'.', '_', '-' (at most {MAX_TENANT_NAME}), got {name!r}"
        )
    return name


def canonical_gpu_counts(field: str, counts: Mapping[str, Any]) -> dict[str, int]:
    """``{"h100": 8}`` -> ``{"H100": 8}``: canonical GPU types, whole counts >= 0.
    InvalidRequest naming ``field`` for an unknown type, a type given twice, a bad count."""
    out: dict[str, int] = {}
    for name, n in counts.items():
        canon = canonical_accelerator(str(name)) if isinstance(name, str) else None
        if canon is None:
            raise InvalidRequest(f"{field}: unknown GPU type {name!r}")
        if canon in out:
            raise InvalidRequest(f"{field}: {canon} given twice")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidRequest(f"{field}: {canon} needs a whole number of GPUs >= 0, not {n!r}")
        out[canon] = n
    return out


def _limits(
    guarantees: Mapping[str, Any] | None, quotas: Mapping[str, Any] | None
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if guarantees is not None:
        # a guarantee of 0 is no guarantee: not stored
        out["guarantees"] = {
            g: n for g, n in canonical_gpu_counts("guarantees", guarantees).items() if n
        }
    if quotas is not None:
        out["quotas"] = canonical_gpu_counts("quotas", quotas)  # 0 is a real limit
    return out


def create_tenant(
    store: Store,
    name: str,
    *,
    weight: float = 1.0,
    guarantees: Mapping[str, Any] | None = None,
    quotas: Mapping[str, Any] | None = None,
    can_borrow: bool = True,
    monthly_budget_usd: float | None = None,
) -> dict[str, Any]:
    """Create tenant ``name`` (``TenantExists`` if it exists, ``default`` included)."""
    check_tenant_name(name)
    maps = _limits(guarantees or {}, quotas or {})
    rec = store.create_tenant(
        name,
        weight=weight,
        guarantees=maps["guarantees"],
        quotas=maps["quotas"],
        can_borrow=can_borrow,
        monthly_budget_usd=monthly_budget_usd,
    )
    return describe(rec, TenantUsage())


def set_tenant(
    store: Store, name: str, *, within_ceiling: bool = False, **changes: Any
) -> dict[str, Any]:
    """Change any of ``weight``, ``guarantees``, ``quotas`` (whole maps: they replace the
    stored ones), ``can_borrow``, ``monthly_budget_usd`` (None clears it). The default
    tenant can be changed too. Re-reads and retries when another writer changed it between.

    An admin's ``quotas`` are also the tenant's quota ceiling. ``within_ceiling`` (a
    tenant-admin's change): only ``quotas``, within the ceiling (``BeyondCeiling``)."""
    changes.update(_limits(changes.pop("guarantees", None), changes.pop("quotas", None)))
    if within_ceiling and set(changes) - {"quotas"}:
        field = sorted(set(changes) - {"quotas"})[0]
        raise BeyondCeiling(field, f"{field}: only an admin may change it")
    for _ in range(3):
        current = store.get_tenant(name)
        if "quotas" in changes:
            if within_ceiling:
                beyond_ceiling(current, changes["quotas"])
                # the ceiling stays what the admin gave, even when it was implicit
                changes["quota_ceiling"] = current.ceiling()
            else:
                changes["quota_ceiling"] = changes["quotas"]
        rec = store.update_tenant(name, expected_version=current.version, **changes)
        if rec is not None:
            return describe(rec, store.tenant_usage().get(name, TenantUsage()))
    raise InvalidRequest(f"tenant {name!r} keeps changing under us; try again")


class BeyondCeiling(PermissionError):
    """A tenant-admin's change beyond what an admin gave its tenant (``field`` names it)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def beyond_ceiling(tenant: TenantRecord, quotas: Mapping[str, int]) -> None:
    """``BeyondCeiling`` when ``quotas`` leave the tenant's ceiling: every GPU type the
    ceiling limits must stay limited, at most to the ceiling (a type it does not limit
    may be limited freely)."""
    for gpu, most in sorted(tenant.ceiling().items()):
        asked = quotas.get(gpu)
        if asked is None:
            raise BeyondCeiling(
                f"quotas.{gpu}",
                f"quotas.{gpu}: an admin limited {tenant.name!r} to {most}; it may not be removed",
            )
        if asked > most:
            raise BeyondCeiling(
                f"quotas.{gpu}",
                f"quotas.{gpu}: {asked} is above the {most} an admin gave {tenant.name!r}",
            )


def list_tenants(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every tenant with its usage, by id."""
    usage = store.tenant_usage(now)
    return [describe(t, usage.get(t.name, TenantUsage()), now) for t in store.tenants()]


def show_tenant(store: Store, name: str, now: datetime | None = None) -> dict[str, Any]:
    """One tenant with its usage and the history of its changes."""
    rec = store.get_tenant(name)
    out = describe(rec, store.tenant_usage(now).get(name, TenantUsage()), now)
    out["events"] = [
        {"time": e.time.isoformat(), "kind": e.kind, "data": e.data}
        for e in store.tenant_events(name)
    ]
    return out


def describe(t: TenantRecord, use: TenantUsage, now: datetime | None = None) -> dict[str, Any]:
    """A tenant as plain data (what ``--json`` prints). ``spent_usd_month`` is the store's
    estimate of this UTC month's spend (``Store.tenant_usage``)."""
    spent = round(use.spent_usd, 6)
    budget = t.monthly_budget_usd
    return {
        "name": t.name,
        "weight": t.weight,
        "guarantees": dict(t.guarantees),
        "quotas": dict(t.quotas),
        "quota_ceiling": t.ceiling(),
        "can_borrow": t.can_borrow,
        "monthly_budget_usd": budget,
        "running_gpus": dict(use.running_gpus),
        "spent_usd_month": spent,
        "budget_left_usd": None if budget is None else round(max(0.0, budget - spent), 6),
        "month": (now or utc_now()).strftime("%Y-%m"),
        "version": t.version,
        "created_at": t.created_at.isoformat(),
        "updated_at": (t.updated_at or t.created_at).isoformat(),
    }
