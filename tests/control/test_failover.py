"""The failover policy: what blocks an offering, cool-down growth, provider health, and
the requeue rule for a down provider's jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intercloud.control.decide import RunningJob
from intercloud.control.failover import (
    CooldownPolicy,
    FailoverReason,
    HealthState,
    Requeue,
    blocks_offering,
    down_providers,
    next_cooldown,
    next_health,
    requeue_on_down,
)
from intercloud.providers.contract import FailureKind

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_only_capacity_and_quota_refusals_block_an_offering() -> None:
    assert {k for k in FailureKind if blocks_offering(k)} == {
        FailureKind.CAPACITY,
        FailureKind.QUOTA,
    }


def test_cooldowns_double_up_to_the_max() -> None:
    policy = CooldownPolicy(first_s=60, max_s=300)
    assert [policy.duration_s(n) for n in range(1, 6)] == [60, 120, 240, 300, 300]
    assert policy.duration_s(10_000) == 300  # no overflow on a long streak


def test_refusals_in_a_row_grow_the_block_and_a_quiet_spell_resets_it() -> None:
    policy = CooldownPolicy(first_s=60, max_s=600)
    n, until = next_cooldown(0, None, T0, policy)
    assert (n, until) == (1, at(60))
    n, until = next_cooldown(n, until, at(70), policy)  # refused again after the block
    assert (n, until) == (2, at(70 + 120))
    n, until = next_cooldown(n, until, at(200), policy)
    assert (n, until) == (3, at(200 + 240))
    # long after the last block ended: back to the first cool-down
    n, until = next_cooldown(n, until, at(440 + 601), policy)
    assert (n, until) == (1, at(1041 + 60))
    # a refusal during a long block never shortens it
    n, until = next_cooldown(4, at(1000), at(10), policy)
    assert (n, until) == (5, at(1000))


def test_bad_cooldown_settings_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="first_s"):
        CooldownPolicy(first_s=0)
    with pytest.raises(ValueError, match="max_s"):
        CooldownPolicy(first_s=60, max_s=30)
    with pytest.raises(ValueError, match="factor"):
        CooldownPolicy(factor=0.5)


def test_a_provider_is_down_once_every_call_has_failed_for_down_after_s() -> None:
    h = next_health(HealthState(), True, T0, 300)
    assert h.last_ok_at == T0 and not h.down
    h = next_health(h, False, at(10), 300, "timed out", FailureKind.UNAVAILABLE)
    assert h.first_error_at == at(10) and h.error_kind == "unavailable" and not h.down
    h = next_health(h, False, at(200), 300, "timed out", FailureKind.UNAVAILABLE)
    assert not h.down and h.first_error_at == at(10)
    h = next_health(h, False, at(310), 300, "timed out", FailureKind.UNAVAILABLE)
    assert h.down and h.down_since == at(310)
    h = next_health(h, False, at(900), 300, "refused", FailureKind.AUTH)
    assert h.down_since == at(310) and h.error == "refused"  # down since the first time
    # the first success brings it up and ends the streak
    h = next_health(h, True, at(901), 300)
    assert not h.down and h.first_error_at is None and h.last_ok_at == at(901)
    h = next_health(h, False, at(902), 300, "x", FailureKind.UNKNOWN)
    assert h.first_error_at == at(902) and not h.down


def test_a_down_providers_running_jobs_are_requeued_as_preemptions() -> None:
    def job(i: int, provider: str) -> RunningJob:
        return RunningJob(i, 0, "default", {"provider": provider}, 0.0)

    down = down_providers([("aws", at(-60)), ("gcp", None)])
    assert down == {"aws": at(-60)}
    out = requeue_on_down([job(3, "aws"), job(1, "aws"), job(2, "gcp")], down)
    why = "provider aws is down since 2026-01-01 11:59:00 UTC"
    assert out == [
        Requeue(1, "aws", FailoverReason.PROVIDER_DOWN, why),
        Requeue(3, "aws", FailoverReason.PROVIDER_DOWN, why),
    ]
