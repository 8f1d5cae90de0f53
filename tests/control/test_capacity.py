"""Capacity decisions made real in the store, against a fake of the instance methods."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from intercloud.control.capacity import apply_capacity_decisions, new_request_id
from intercloud.control.decide import CapacityReason, Provision, Release
from intercloud.model import PricingKind
from intercloud.providers.base import OfferingKey
from intercloud.providers.contract import InstanceState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
KEY = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")


class FakeInstances:
    """Instance rows as (state, version) with the store's guarded compare-and-set."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.rows: dict[int, tuple[InstanceState, int]] = {}
        self.reasons: dict[int, str] = {}

    def request_instances(
        self,
        request_id: str,
        count: int,
        offering: OfferingKey,
        pricing: PricingKind,
        usd_per_hour: float,
        contract: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> list[int]:
        self.requests.append(dict(request_id=request_id, count=count, offering=offering,
                                  pricing=pricing, usd=usd_per_hour, contract=contract,
                                  extra=dict(extra or {})))  # fmt: skip
        return []

    def transition_instance(
        self,
        instance_id: int,
        expected_state: InstanceState,
        new_state: InstanceState,
        reason: str,
        expected_version: int | None = None,
        **fields: Any,
    ) -> tuple[InstanceState, int] | None:
        state, version = self.rows[instance_id]
        if state is not expected_state or expected_version not in (None, version):
            return None
        self.rows[instance_id] = (new_state, version + 1)
        self.reasons[instance_id] = reason
        return self.rows[instance_id]


def test_provisions_become_launch_requests_of_requested_rows() -> None:
    fake = FakeInstances()
    changed = apply_capacity_decisions(fake, [
        Provision(KEY, PricingKind.SPOT, 2, CapacityReason.GANG_WAITING, "new nodes for job 4",
                  None, 40.0, 4),
        Provision(KEY, PricingKind.RESERVED, 1, CapacityReason.RESERVED_WARM, "c1", "c1", 60.0),
        Provision(KEY, PricingKind.ON_DEMAND, 0, CapacityReason.GANG_WAITING, "none"),
    ], NOW)  # fmt: skip
    assert changed
    first, second = fake.requests
    assert (first["count"], first["pricing"], first["usd"]) == (2, PricingKind.SPOT, 40.0)
    assert first["extra"] == {"reason": "gang_waiting", "for_job": 4}
    assert first["request_id"].startswith("20260101120000-j4-")
    assert (second["contract"], second["extra"]) == ("c1", {"reason": "reserved_warm"})
    assert second["request_id"].startswith("20260101120000-pool-")
    assert first["request_id"] != new_request_id(NOW, 4)  # fresh every time
    assert all(len(r["request_id"]) <= 64 for r in fake.requests)


def test_releases_drain_idle_instances_unless_they_moved_since() -> None:
    fake = FakeInstances()
    fake.rows = {1: (InstanceState.RUNNING, 3), 2: (InstanceState.RUNNING, 5),
                 3: (InstanceState.TERMINATING, 1)}  # fmt: skip
    release = Release((1, 2, 3), CapacityReason.IDLE, "idle for 600 s", (3, 4, 1))
    assert apply_capacity_decisions(fake, [release], NOW)
    assert fake.rows == {1: (InstanceState.DRAINING, 4), 2: (InstanceState.RUNNING, 5),
                         3: (InstanceState.TERMINATING, 1)}  # fmt: skip
    assert fake.reasons == {1: "idle for 600 s"}
    # nothing left to drain: nothing changed
    assert not apply_capacity_decisions(fake, [release], NOW)
