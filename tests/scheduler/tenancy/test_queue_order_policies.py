"""Queue-order policies: the registry, each policy's key, and determinism (hypothesis)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.scheduler.queue_order import POLICIES, get_policy
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger


def job(
    job_id: int, tenant: str = "a", submit_s: float = 0.0, priority: int = 0, gpus: int = 8
) -> GangRequest:
    return GangRequest(
        job_id=job_id,
        tenant=tenant,
        nodes=1,
        gpus_per_node=gpus,
        accelerators=("H100",),
        priority=priority,
        submit_s=submit_s,
    )


def empty_ledger(weights: dict[str, float] | None = None) -> TenantLedger:
    specs = [TenantSpec(t, weight=w) for t, w in (weights or {"a": 1, "b": 1}).items()]
    return TenantLedger(specs, {"H100": 64}, half_life_s=3600.0, month_start_s=0.0)


def ids(pending: list[GangRequest], order: list[int]) -> list[int]:
    return [pending[i].job_id for i in order]


def test_registry_lists_policies_and_names_the_known_ones_on_error() -> None:
    assert {"fifo", "priority", "fair_share"} <= set(POLICIES)
    for name in POLICIES:
        assert get_policy(name).name == name
        assert get_policy(name).order([], empty_ledger(), 0.0) == []
    with pytest.raises(KeyError, match="known: fair_share, fifo, priority"):
        get_policy("lottery")


def test_fifo_is_global_submit_order_with_job_id_ties() -> None:
    pending = [job(3, "a", 5.0, 9), job(1, "b", 1.0), job(2, "a", 5.0), job(0, "b", 7.0, 1)]
    assert ids(pending, get_policy("fifo").order(pending, empty_ledger(), 0.0)) == [1, 2, 3, 0]


def test_priority_classes_high_to_low_fifo_within() -> None:
    pending = [job(1, "a", 1.0, 0), job(2, "b", 2.0, 5), job(3, "a", 3.0, 5), job(4, "b", 0.5)]
    got = ids(pending, get_policy("priority").order(pending, empty_ledger(), 0.0))
    assert got == [2, 3, 4, 1]


def test_fair_share_prefers_the_tenant_with_less_weighted_usage() -> None:
    led = empty_ledger()
    led.on_start(100, "a", "H100", 32, 0.0, None, 0.0)
    pending = [job(1, "a", 0.0), job(2, "b", 5.0)]
    assert ids(pending, get_policy("fair_share").order(pending, led, 3600.0)) == [2, 1]


def test_fair_share_interleaves_by_weight_within_one_cycle() -> None:
    led = empty_ledger({"a": 1, "b": 3})
    pending = [job(i, "a", float(i)) for i in range(8)] + [
        job(100 + i, "b", 100.0 + i) for i in range(8)
    ]
    got = ids(pending, get_policy("fair_share").order(pending, led, 0.0))
    # b (weight 3) gets three places for each of a's; each tenant's jobs stay in FIFO order.
    # Midpoint keys (8 GPUs × 1 h / 64 = 450 s per job): a 225, 675, …; b 75, 225, 375, …
    # (÷ weight 3); ties by submit time.
    assert got[:8] == [100, 0, 101, 102, 103, 1, 104, 105]
    assert [j for j in got if j < 100] == list(range(8))
    assert [j for j in got if j >= 100] == list(range(100, 108))


def test_fair_share_priority_dominates_share() -> None:
    led = empty_ledger()
    led.on_start(100, "a", "H100", 64, 0.0, None, 0.0)  # a is far above b
    pending = [job(1, "b", 0.0, 0), job(2, "a", 9.0, 1), job(3, "b", 1.0, 0)]
    assert ids(pending, get_policy("fair_share").order(pending, led, 3600.0)) == [2, 1, 3]


def test_fair_share_serves_unknown_tenants_and_cpu_jobs() -> None:
    led = empty_ledger()
    pending = [job(1, "zed", 1.0), job(2, "a", 2.0, gpus=0), job(3, "a", 0.0)]
    got = ids(pending, get_policy("fair_share").order(pending, led, 0.0))
    assert sorted(got) == [1, 2, 3]
    assert got.index(3) < got.index(2)  # FIFO within a: 3 was submitted first


requests = st.lists(
    st.builds(
        lambda jid, t, s, p, g, acc: GangRequest(
            job_id=jid,
            tenant=t,
            nodes=1,
            gpus_per_node=g,
            accelerators=acc,
            priority=p,
            submit_s=float(s),
        ),
        st.integers(0, 10_000),
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(0, 20),
        st.sampled_from([0, 0, 1, 5]),
        st.sampled_from([0, 1, 2, 4, 8]),
        st.sampled_from([("H100",), ("A100",), ("A100", "H100"), ()]),
    ),
    max_size=60,
    unique_by=lambda r: r.job_id,
)


@settings(max_examples=150, deadline=None)
@given(pending=requests, seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(POLICIES)))
def test_order_is_a_deterministic_permutation_independent_of_queue_order(
    pending: list[GangRequest], seed: int, name: str
) -> None:
    specs = [TenantSpec("a", 1.0), TenantSpec("b", 2.0), TenantSpec("c", 3.0)]
    led = TenantLedger(specs, {"H100": 64, "A100": 32}, half_life_s=600.0, month_start_s=0.0)
    led.on_start(-1, "a", "H100", 16, 0.0, None, 0.0)
    led.on_start(-2, "b", "A100", 16, 0.0, None, 0.0)
    policy = get_policy(name)
    order = policy.order(pending, led, 100.0)
    assert sorted(order) == list(range(len(pending)))
    assert policy.order(pending, led, 100.0) == order  # same input, same decisions
    shuffled = pending[:]
    random.Random(seed).shuffle(shuffled)
    assert ids(shuffled, policy.order(shuffled, led, 100.0)) == ids(pending, order)
    # Every policy keeps FIFO within a (tenant, priority) pair.
    seq = [pending[i] for i in order]
    for t in "abcd":
        for p in (0, 1, 5):
            mine = [(r.submit_s, r.job_id) for r in seq if r.tenant == t and r.priority == p]
            assert mine == sorted(mine)
    if name != "fifo":  # priority classes high to low
        prios = [r.priority for r in seq]
        assert prios == sorted(prios, reverse=True)
