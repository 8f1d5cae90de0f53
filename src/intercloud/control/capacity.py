"""Making the fleet decider's capacity decisions real in the store.

``apply_capacity_decisions(store, decisions, now)``: a ``Provision`` becomes one launch
request of ``count`` REQUESTED instance rows (``store.request_instances``; the instance
reconcile step launches them, outside any store transaction); a ``Release`` moves each
of its idle RUNNING instances to DRAINING (``store.transition_instance``, guarded by the
version the decider saw: an instance bound to a job since then is left alone). Nothing
here calls a provider.

Request ids: ``<utc time>-<job or "pool">-<random>``, so a launch retried after a
crash of the loop (the decider decides again from the store, which has no rows for a
request that was never recorded) never reuses an id a provider may have seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from intercloud.control.decide import CapacityDecision, Provision, Release
from intercloud.control.fleet_settings import FleetSettings
from intercloud.model import PricingKind
from intercloud.providers.base import OfferingKey
from intercloud.providers.contract import InstanceState

__all__ = ["CapacitySetup", "InstanceWriter", "apply_capacity_decisions", "new_request_id"]


@dataclass(frozen=True, slots=True)
class CapacitySetup:
    """What the job loop needs to schedule onto instance-backed providers: which
    providers' capacity is instance rows, which of them sell spot, and the fleet
    settings (``control.fleet_settings``: pool limits, idle release, caps, cool-downs,
    provider-down time; contracts' reserved pools)."""

    instance_backed: frozenset[str]
    spot_providers: frozenset[str]
    settings: FleetSettings
    #: provider -> the most live instances of it together (``pools.providers``)
    provider_max: Mapping[str, int] = field(default_factory=dict)


class InstanceWriter(Protocol):
    """The two store methods this module needs (``store/instance_repo.py``)."""

    def request_instances(
        self,
        request_id: str,
        count: int,
        offering: OfferingKey,
        pricing: PricingKind,
        usd_per_hour: float,
        contract: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Any: ...

    def transition_instance(
        self,
        instance_id: int,
        expected_state: InstanceState,
        new_state: InstanceState,
        reason: str,
        expected_version: int | None = None,
        **fields: Any,
    ) -> Any: ...


def new_request_id(now: datetime, for_job: int | None) -> str:
    """A fresh launch request id (at most 64 printable ASCII characters)."""
    who = f"j{for_job}" if for_job is not None else "pool"
    return f"{now.astimezone(UTC):%Y%m%d%H%M%S}-{who}-{uuid.uuid4().hex[:12]}"


def within_provider_limits(
    decisions: Sequence[CapacityDecision],
    live: Mapping[str, int],
    provider_max: Mapping[str, int],
) -> list[CapacityDecision]:
    """``decisions`` without the launches that would take a provider past its total
    (``pools.providers.<name>.max_instances``) given ``live`` instances per provider; a
    launch is kept whole or dropped (a gang needs all its nodes)."""
    used = dict(live)
    out: list[CapacityDecision] = []
    for d in decisions:
        if isinstance(d, Provision):
            provider = d.offering[0]
            limit = provider_max.get(provider)
            if limit is not None and used.get(provider, 0) + d.count > limit:
                continue
            used[provider] = used.get(provider, 0) + d.count
        out.append(d)
    return out


def apply_capacity_decisions(
    store: InstanceWriter, decisions: Sequence[CapacityDecision], now: datetime
) -> bool:
    """Apply ``decisions`` in order; whether the store changed."""
    changed = False
    for d in decisions:
        if isinstance(d, Provision):
            if d.count <= 0:
                continue
            extra: dict[str, Any] = {"reason": d.reason.value}
            if d.for_job is not None:
                extra["for_job"] = d.for_job
            store.request_instances(
                new_request_id(now, d.for_job),
                d.count,
                d.offering,
                d.pricing,
                d.usd_per_hour,
                contract=d.contract,
                extra=extra,
            )
            changed = True
        elif isinstance(d, Release):
            versions = d.versions or (None,) * len(d.instance_ids)
            for iid, version in zip(d.instance_ids, versions, strict=True):
                got = store.transition_instance(
                    iid,
                    InstanceState.RUNNING,
                    InstanceState.DRAINING,
                    d.reason_text,
                    expected_version=version,
                )
                changed |= got is not None
    return changed
