"""``Store.cycle_state``: the tenants, provider health and cool-downs in force, in one
statement on PostgreSQL, equal to the three reads it stands for, field for field and in
their order (the database's collation), on both backends."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from intercloud.providers.contract import FailureKind
from intercloud.store import Store
from intercloud.store.testing import FakeClock

NAMES = ["aws", "AWS", "a-b", "ab", "a_b", "Zeta", "zeta-2", "é-cloud"]


@pytest.mark.parametrize("seed", range(4))
def test_one_read_is_the_three(store: Store, clock: FakeClock, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(rng.randrange(1, 6)):
        store.create_tenant(
            f"{rng.choice(NAMES)}-{i}",
            weight=rng.choice([1.0, 2.0, 0.25, 3.7]),
            guarantees={"H100": rng.randrange(0, 64)} if rng.random() < 0.5 else None,
            quotas={"A100": rng.randrange(1, 64)} if rng.random() < 0.5 else None,
            can_borrow=rng.random() < 0.7,
            monthly_budget_usd=rng.choice([None, 1000.0, 12.5, 3.0]),
        )
    for name in rng.sample(NAMES, 5):
        for _ in range(rng.randrange(1, 4)):
            ok = rng.random() < 0.4
            store.record_provider_call(
                name, ok, None if ok else "refused: no capacity", None if ok else FailureKind.QUOTA,
                down_after_s=rng.choice([0.0, 300.0]),
            )  # fmt: skip
            clock.tick(rng.choice([0.5, 30.0, 400.0]))
    for name in rng.sample(NAMES, 6):
        key = (name, rng.choice(["us-east-1", "us-west-2"]), rng.choice(["a", "B", "c-1"]), "p5")
        store.block_offering(key, rng.choice(["spot", "on_demand"]), FailureKind.CAPACITY, "no")
        clock.tick(rng.choice([1.0, 50.0, 200.0]))
    for at in (clock.now, clock.now + timedelta(seconds=90), clock.now + timedelta(hours=3)):
        state = store.cycle_state(at)
        assert state.tenants == store.tenants()
        assert state.health == store.provider_health()
        assert state.blocks == store.active_blocks(at)
        assert len(state.tenants) > 1 and state.health  # (the case is not empty)
    assert [type(t.weight) for t in state.tenants] == [float] * len(state.tenants)
