"""Leases in the store and the leader lease over them (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from intercloud.control.leader import LeaderLease
from intercloud.store import InvalidRequest, Store
from intercloud.store.testing import FakeClock


def test_one_holder_at_a_time_and_takeover_after_expiry(store: Store, clock: FakeClock) -> None:
    a = store.acquire_lease("loop", "a", ttl_s=10)
    assert a is not None and a.holder == "a" and a.epoch == 1
    assert store.acquire_lease("loop", "b", ttl_s=10) is None  # held: nothing changes
    clock.tick(5)
    renewed = store.acquire_lease("loop", "a", ttl_s=10)
    assert renewed is not None and renewed.epoch == 1
    assert renewed.expires_at == clock.now + timedelta(seconds=10)
    clock.tick(9)  # 14 s after the first take, 9 after the renewal: still a's
    assert store.acquire_lease("loop", "b", ttl_s=10) is None
    clock.tick(1)  # expired
    b = store.acquire_lease("loop", "b", ttl_s=10)
    assert b is not None and b.holder == "b" and b.epoch == 2 and b.acquired_at == clock.now
    assert store.acquire_lease("loop", "a", ttl_s=10) is None
    assert store.lease("loop") == b and store.lease("other") is None


def test_release_hands_over_at_once(store: Store, clock: FakeClock) -> None:
    store.acquire_lease("loop", "a", ttl_s=10)
    assert not store.release_lease("loop", "b")  # not b's
    assert store.release_lease("loop", "a")
    got = store.acquire_lease("loop", "b", ttl_s=10)
    assert got is not None and got.epoch == 2
    with pytest.raises(InvalidRequest, match="ttl_s"):
        store.acquire_lease("loop", "b", ttl_s=0)


def test_concurrent_contenders_elect_exactly_one(store: Store) -> None:
    barrier = threading.Barrier(8)

    def contend(i: int) -> bool:
        barrier.wait()
        return store.acquire_lease("race", f"p{i}", ttl_s=30) is not None

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(contend, range(8)))
    assert won.count(True) == 1


def test_leader_lease_steps(store: Store, clock: FakeClock) -> None:
    one = LeaderLease(store, holder="one", ttl_s=6)
    two = LeaderLease(store, holder="two", ttl_s=6)
    assert one.step() and not two.step()
    assert one.epoch == 1 and two.epoch is None and one.renew_s == 2
    clock.tick(2)
    assert one.step() and not two.step()
    clock.tick(6)  # one stopped stepping (killed): two takes over
    assert two.step() and two.epoch == 2
    assert not one.step() and one.epoch is None
    two.release()
    assert one.step() and one.epoch == 3
