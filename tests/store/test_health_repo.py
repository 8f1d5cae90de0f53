"""Offering cool-downs and provider health in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

from intercloud.providers.contract import FailureKind
from intercloud.store import Store
from intercloud.store.testing import T0, FakeClock

KEY = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
OTHER = ("aws", "us-east-1", "us-east-1b", "p5.48xlarge")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_refusal_blocks_the_offering_for_a_growing_cooldown(store: Store) -> None:
    b = store.block_offering(KEY, "on_demand", FailureKind.CAPACITY, "no capacity", at(0),
                             first_s=60, max_s=600)  # fmt: skip
    assert (b.failures, b.until, b.kind, b.reason) == (1, at(60), "capacity", "no capacity")
    assert b.provider == "aws" and b.zone == "us-east-1a" and b.pricing == "on_demand"
    b = store.block_offering(KEY, "on_demand", FailureKind.QUOTA, "limit", at(61),
                             first_s=60, max_s=600)  # fmt: skip
    assert (b.failures, b.until, b.kind) == (2, at(61 + 120), "quota")
    # the same offering at another pricing, and another zone, are blocks of their own
    s = store.block_offering(KEY, "spot", FailureKind.CAPACITY, None, at(62), first_s=60,
                             max_s=600)  # fmt: skip
    assert s.failures == 1
    store.block_offering(OTHER, "on_demand", FailureKind.CAPACITY, None, at(0), first_s=10)
    active = store.active_blocks(at(100))
    assert [(x.zone, x.pricing, x.failures) for x in active] == [
        ("us-east-1a", "on_demand", 2),
        ("us-east-1a", "spot", 1),
    ]
    assert store.active_blocks(at(1000)) == []
    # each block is an event naming the offering
    events = [e for e in store.events(None) if e.kind == "offering_blocked"]
    assert len(events) == 4 and events[0].data is not None
    assert events[0].data["instance_type"] == "p5.48xlarge" and events[1].reason == "limit"


def test_the_growth_factor_is_a_setting(store: Store) -> None:
    store.block_offering(KEY, "spot", FailureKind.CAPACITY, None, at(0), first_s=10, factor=3)
    b = store.block_offering(KEY, "spot", FailureKind.CAPACITY, None, at(11), first_s=10,
                             factor=3)  # fmt: skip
    assert (b.failures, b.until) == (2, at(11 + 30))


def test_a_quiet_spell_resets_the_cooldown(store: Store) -> None:
    store.block_offering(KEY, "on_demand", FailureKind.CAPACITY, None, at(0), first_s=60,
                         max_s=120)  # fmt: skip
    b = store.block_offering(KEY, "on_demand", FailureKind.CAPACITY, None, at(1000),
                             first_s=60, max_s=120)  # fmt: skip
    assert (b.failures, b.until) == (1, at(1060))


def test_a_provider_goes_down_after_failing_for_down_after_s_and_up_on_success(
    store: Store, clock: FakeClock
) -> None:
    h = store.record_provider_call("aws", True, now=at(0), down_after_s=300)
    assert h.last_ok_at == at(0) and not h.down
    h = store.record_provider_call("aws", False, "connect timeout\n  retrying",
                                   FailureKind.UNAVAILABLE, at(10), down_after_s=300)  # fmt: skip
    assert h.first_error_at == at(10) and h.error == "connect timeout retrying"
    assert not h.down and h.error_kind == "unavailable"
    h = store.record_provider_call("aws", False, "x", FailureKind.UNAVAILABLE, at(400),
                                   down_after_s=300)  # fmt: skip
    assert h.down and h.down_since == at(400)
    store.record_provider_call("gcp", True, now=at(400))
    health = store.provider_health()
    assert [(x.name, x.down) for x in health] == [("aws", True), ("gcp", False)]
    h = store.record_provider_call("aws", True, now=at(500), down_after_s=300)
    assert not h.down and h.first_error_at is None and h.last_ok_at == at(500)
    kinds = [e.kind for e in store.events(None) if e.kind.startswith("provider_")]
    assert kinds == ["provider_down", "provider_up"]


def test_the_snapshot_policy_reads_blocks_and_down_providers(store: Store) -> None:
    from intercloud.control.snapshot import FleetPolicy, with_store_state

    store.block_offering(KEY, "on_demand", FailureKind.CAPACITY, None, at(0), first_s=60)
    store.record_provider_call("gcp", False, "x", FailureKind.UNAVAILABLE, at(0), down_after_s=0)
    store.record_provider_call("aws", True, now=at(0))
    policy = with_store_state(FleetPolicy(idle_release_s=5), store, at(30))
    assert [b.zone for b in policy.blocks] == ["us-east-1a"]
    assert policy.down == {"gcp": at(0)} and policy.idle_release_s == 5
    assert with_store_state(FleetPolicy(), store, at(90)).blocks == ()
