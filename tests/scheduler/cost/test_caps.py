"""Diversification caps: the exact definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.scheduler.cost import DiversificationCaps


def test_share_rule_and_threshold() -> None:
    caps = DiversificationCaps({"aws": 0.4}, min_fleet_gpus=100)
    # under the threshold: anything goes
    assert caps.allows("aws", 60, {"aws": 30}, 40)  # G + x = 100 <= 100
    assert not caps.allows("aws", 61, {"aws": 30}, 40)  # 91 / 101 > 40%
    # above it: g_p + x <= share x (G + x)
    assert caps.allows("aws", 40, {"aws": 0}, 60)  # 40 <= 0.4 x 100
    assert not caps.allows("aws", 41, {"aws": 0}, 60)
    assert caps.allows("gcp", 10_000, {}, 10)  # not in the mapping: uncapped
    assert caps.reason("aws", 41, 0, 60) == "cap: aws would run 40.6% of the fleet's GPUs (cap 40%)"
    assert caps.reason("aws", 40, 0, 60) == ""


def test_reserved_gpus_count_in_the_fleet_not_in_the_provider() -> None:
    caps = DiversificationCaps(0.5, min_fleet_gpus=0)
    # 900 GPUs reserved on aws, 100 on-demand on aws: g_aws = 100, G = 1000
    assert caps.allows("aws", 400, {"aws": 100}, 1000)  # 500 <= 0.5 x 1400
    assert not caps.allows("aws", 1000, {"aws": 100}, 1000)  # 1100 > 0.5 x 2000
    assert caps.headroom("aws", {"aws": 100}, 1000) == 800.0


def test_float_cap_applies_to_every_provider_and_aliases_match() -> None:
    caps = DiversificationCaps(0.25)
    assert not caps.allows("Amazon", 1, {"aws": 25}, 100)
    assert caps.allows("google", 1, {"aws": 25}, 100)


@settings(max_examples=200, deadline=None)
@given(
    share=st.floats(0.05, 0.99),
    min_fleet=st.integers(0, 500),
    g=st.integers(0, 2000),
    extra=st.integers(0, 2000),
    x=st.integers(0, 3000),
)
def test_headroom_is_the_largest_allowed(
    share: float, min_fleet: int, g: int, extra: int, x: int
) -> None:
    caps = DiversificationCaps(share, min_fleet)
    total = g + extra
    room = caps.headroom("aws", g, total)
    assert caps.allows("aws", x, g, total) == (x <= room + 1e-6) or abs(x - room) < 1e-6


@settings(max_examples=100, deadline=None)
@given(
    share=st.floats(0.1, 0.9),
    min_fleet=st.integers(0, 300),
    steps=st.lists(
        st.tuples(st.sampled_from(["aws", "gcp", "azure"]), st.integers(1, 64), st.booleans()),
        min_size=1,
        max_size=120,
    ),
)
def test_greedy_placements_never_exceed_a_binding_cap(
    share: float, min_fleet: int, steps: list[tuple[str, int, bool]]
) -> None:
    """Placing one by one with ``allows``: once the fleet is above the threshold, every
    provider that gets capped GPUs is within its share right after (and stays so, since
    others' placements only grow the fleet)."""
    caps = DiversificationCaps({"aws": share, "gcp": share}, min_fleet)
    capped = {"aws": 0.0, "gcp": 0.0, "azure": 0.0}
    total = 0.0
    for provider, gpus, reserved in steps:
        if reserved:
            total += gpus  # exempt: always allowed
            continue
        if not caps.allows(provider, gpus, capped, total):
            continue
        capped[provider] += gpus
        total += gpus
        if total > min_fleet and provider != "azure":
            assert capped[provider] <= share * total + 1e-9
