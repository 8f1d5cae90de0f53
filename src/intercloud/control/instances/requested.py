"""REQUESTED: launch each request once (per process), outside any store transaction.

The rows of one request (slots 0..count-1) become one ``LaunchRequest``; how to launch
(placement group, reservation, spot ceiling, image, labels) comes from the rows'
``LaunchOptions``, written by whoever requested them. Launching is idempotent by
request id at the provider, so a restarted loop that launches again a request it had
launched before its crash gets the same instances, never a second set. A request the
provider rejects outright (``ValueError``: a caller bug) fails its rows, so the loop
does not retry it forever.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from intercloud.control.instances.context import InstanceContext, log
from intercloud.control.instances.transitions import EndCause
from intercloud.model import PricingKind
from intercloud.providers.base import ProviderError
from intercloud.providers.contract import FailureKind, InstanceState, LaunchRequest
from intercloud.store.records import InstanceRecord

S = InstanceState


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    """How to launch a request, kept in its rows' ``extra["launch"]``."""

    placement_group: str | None = None
    capacity_reservation_id: str | None = None
    max_price_usd: float | None = None
    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_extra(self) -> dict[str, Any]:
        """``extra`` for ``Store.request_instances``."""
        return {
            "launch": {
                "placement_group": self.placement_group,
                "capacity_reservation_id": self.capacity_reservation_id,
                "max_price_usd": self.max_price_usd,
                "image": self.image,
                "labels": dict(self.labels),
            }
        }

    @classmethod
    def of(cls, row: InstanceRecord) -> LaunchOptions:
        raw = (row.extra or {}).get("launch") or {}
        price = raw.get("max_price_usd")
        return cls(
            placement_group=raw.get("placement_group"),
            capacity_reservation_id=raw.get("capacity_reservation_id"),
            max_price_usd=float(price) if price is not None else None,
            image=raw.get("image"),
            labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
        )


def handle(ctx: InstanceContext) -> bool:
    """Launch every request with REQUESTED rows not yet launched by this process."""
    by_request: dict[str, list[InstanceRecord]] = defaultdict(list)
    rows = ctx.rows(S.REQUESTED)
    waiting = {r.request_id for r in rows}
    for request_id in [k for k in ctx.launched if k not in waiting]:
        del ctx.launched[request_id]  # answered: keep the memory bounded
    for row in rows:
        if row.request_id not in ctx.launched:
            by_request[row.request_id].append(row)
    changed = False
    for request_id, rows in by_request.items():
        changed |= _launch(ctx, request_id, rows)
    return changed


def _launch(ctx: InstanceContext, request_id: str, rows: list[InstanceRecord]) -> bool:
    first = rows[0]
    provider = ctx.providers[first.provider]
    count = len(ctx.store.instances(request_id=request_id))
    opts = LaunchOptions.of(first)
    request = LaunchRequest(
        request_id=request_id,
        offering=first.offering,
        count=count,
        pricing=PricingKind(first.pricing),
        labels=opts.labels,
        placement_group=opts.placement_group,
        capacity_reservation_id=opts.capacity_reservation_id,
        max_price_usd=opts.max_price_usd,
        image=opts.image,
        user_data=ctx.user_data(request_id, rows) or b"",
    )
    try:
        provider.launch(request)
    except ValueError as exc:
        changed = False
        for row in rows:
            rec = ctx.move(
                row,
                S.FAILED,
                f"the provider rejected the request: {exc}",
                EndCause.LAUNCH_FAILED,
                failure_kind=FailureKind.UNSUPPORTED.value,
            )
            changed |= rec is not None
        return changed
    except ProviderError as exc:
        ctx.on_provider_call(first.provider, exc)
        log.warning("launch %s on %s: %s (retried next step)", request_id, first.provider, exc)
        return False
    ctx.launched[request_id] = ctx.clock()
    ctx.crashpoint("instance_launched")
    return True
