"""The cost plan: contested cheap capacity goes where it saves most."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.plan import CapTracker, GangClass, plan, uncontested


def cls(
    key: str,
    ids: list[int],
    cost: list[float],
    units: int = 8,
    count: int = 1,
    first: int = 0,
    domain: bool = False,
) -> GangClass:
    return GangClass(key, ids, cost, units, units, count, first, domain)


def arr(xs: list[float]) -> np.ndarray:
    return np.array(xs, np.float64)


def no_caps(n_pools: int) -> CapTracker:
    return CapTracker(None, ["aws"], [0] * n_pools, [True] * n_pools, 0.0, [0.0])


def inf(n: int) -> np.ndarray:
    return np.full(n, np.inf)


def test_the_gang_with_the_dearer_fallback_gets_the_free_pool_whatever_the_order() -> None:
    # pool 0: reserved (free), pool 1: spot at 1/GPU-h, pool 2: on-demand at 10/GPU-h
    cheap_fallback = cls("spot-ok", [0, 1, 2], [0.0, 8.0, 80.0], count=2, first=0)
    dear_fallback = cls("never-spot", [0, 2], [0.0, 80.0], count=2, first=1)
    pl = plan([cheap_fallback, dear_fallback], arr([16, 80, 80]), inf(3), no_caps(3))
    assert pl.allot == {"never-spot": {0: 2}, "spot-ok": {1: 2}}


def test_two_accelerator_gangs_leave_the_only_type_others_can_use() -> None:
    # "both" takes H100 (pool 0) or H200 (pool 1) reserved; "h100" only H100; the
    # regret rule alone ties them (same next price level); the LP does not
    both = cls("both", [0, 1, 2], [0.0, 0.0, 80.0], count=2, first=0)
    h100 = cls("h100", [0, 2], [0.0, 80.0], count=2, first=1)
    pl = plan([both, h100], arr([16, 16, 80]), inf(3), no_caps(3))
    assert pl.allot == {"both": {1: 2}, "h100": {0: 2}}


def test_a_class_without_room_anywhere_gets_nothing_and_others_are_unaffected() -> None:
    pl = plan(
        [cls("big", [0], [0.0], units=64), cls("small", [0, 1], [0.0, 8.0])],
        arr([16, 16]),
        inf(2),
        no_caps(2),
        always=True,
    )
    assert pl.allot == {"small": {0: 1}}


def test_domains_and_limits_bound_a_class() -> None:
    rack = cls("rack", [0], [0.0], units=72, count=3, domain=True)
    assert plan([rack], arr([216]), arr([1]), no_caps(1)).allot == {"rack": {0: 1}}
    limited = GangClass("l", [0, 1], [0.0, 8.0], 8, 8, 3, 0, limit=[1, 5])
    got = plan([limited], arr([80, 80]), inf(2), no_caps(2), always=True)
    assert got.allot == {"l": {0: 1, 1: 2}}


def test_caps_bound_the_plan() -> None:
    # aws may run at most half of the fleet; the fleet runs 100 GPUs, 40 of them on aws
    caps = CapTracker(
        DiversificationCaps(0.5), ["aws", "gcp"], [0, 1], [True, True], 100.0, [40.0, 0.0]
    )
    pl = plan([cls("j", [0, 1], [8.0, 16.0], count=5)], arr([800, 800]), inf(2), caps)
    # with the plan's own GPUs in the fleet: x on aws, 40 - x on gcp, 40 + x <= 0.5 x 140
    assert pl.allot == {"j": {0: 3, 1: 2}}
    assert caps.total == 140.0 and caps.capped == [64.0, 16.0]


def test_no_plan_when_every_class_gets_its_cheapest_level_anyway() -> None:
    a = cls("a", [0, 2], [0.0, 80.0], count=2)
    b = cls("b", [1, 2], [0.0, 80.0], count=2)
    assert uncontested([a, b], arr([16, 16, 80]), inf(3), no_caps(3))
    assert not plan([a, b], arr([16, 16, 80]), inf(3), no_caps(3))
    # one more gang of "a" than its free pool holds: contested
    a.count = 3
    assert not uncontested([a, b], arr([16, 16, 80]), inf(3), no_caps(3))
    # a shared cheapest pool too small for both classes: contested
    c = cls("c", [0, 2], [0.0, 80.0], count=2)
    assert not uncontested(
        [cls("a", [0, 2], [0.0, 80.0], count=1), c], arr([16, 16, 80]), inf(3), no_caps(3)
    )


def test_first_and_placed() -> None:
    pl = plan(
        [cls("a", [0, 1], [0.0, 8.0], count=3)], arr([16, 80]), inf(2), no_caps(2), always=True
    )
    assert pl.first("a") == [0, 1]
    pl.placed("a", 0)
    pl.placed("a", 0)
    assert pl.first("a") == [1]
    assert pl.first("unknown") == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 4), min_size=1, max_size=5, unique=True),
            st.sampled_from([1, 4, 8, 16]),
            st.integers(1, 6),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(0, 64), min_size=5, max_size=5),
)
def test_allotment_never_exceeds_capacity_or_class_size_and_is_maximal(
    spec: list[tuple[list[int], int, int]], free: list[int]
) -> None:
    prices = [0.0, 1.0, 2.5, 4.0, 10.0]
    classes = []
    for i, (ids, u, n) in enumerate(spec):
        ordered = sorted(ids, key=lambda p: prices[p])
        classes.append(cls(str(i), ordered, [prices[p] * u for p in ordered], u, n, i))
    pl = plan(classes, arr([float(f) for f in free]), inf(5), no_caps(5), always=True)
    used = [0] * 5
    for c in classes:
        got = pl.allot.get(c.key, {})
        assert sum(got.values()) <= c.count
        assert set(got) <= set(c.ids)
        assert list(got) == [p for p in c.ids if p in got]  # cheapest first
        for p, k in got.items():
            assert k > 0
            used[p] += k * c.units
    assert all(u <= f for u, f in zip(used, free, strict=True))
    for c in classes:  # nothing is left out that still fits somewhere
        if c.count - sum(pl.allot.get(c.key, {}).values()):
            assert all(free[p] - used[p] < c.units for p in c.ids)
