"""The daemon's hold on the control-loop lease: renewals spaced, recovery at each gain,
a standby that takes over once the lease runs out (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from intercloud.control.leader import LeaderLease
from intercloud.control.leadership import Leadership
from intercloud.store import Store, StoreError, open_store
from intercloud.store.testing import FakeClock

TTL_S = 3.0


class Clocks:
    """The store's clock and the daemons' monotonic clock, moved together."""

    def __init__(self) -> None:
        self.store = FakeClock()
        self.mono = 0.0

    def tick(self, seconds: float) -> None:
        self.store.tick(seconds)
        self.mono += seconds


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def lease_store(db_url: str, clocks: Clocks) -> Iterator[Store]:
    s = open_store(db_url, clock=clocks.store)
    try:
        yield s
    finally:
        s.close()


class CountingStore:
    """Counts ``acquire_lease`` calls (the writes a renewal costs)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.acquires = 0
        self.fail = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def acquire_lease(self, *args: object, **kwargs: object) -> object:
        self.acquires += 1
        if self.fail:
            raise StoreError("database unreachable")
        return self.store.acquire_lease(*args, **kwargs)  # type: ignore[arg-type]


def _daemon(store: object, name: str, clocks: Clocks, recovered: list[str]) -> Leadership:
    lease = LeaderLease(store, holder=name, ttl_s=TTL_S)  # type: ignore[arg-type]
    return Leadership(lease, lambda: recovered.append(name), clock=lambda: clocks.mono)


def test_leader_renews_at_most_every_renew_s_and_recovers_once(
    lease_store: Store, clocks: Clocks
) -> None:
    counting = CountingStore(lease_store)
    recovered: list[str] = []
    a = _daemon(counting, "a", clocks, recovered)
    assert a.leads() and recovered == ["a"] and counting.acquires == 1
    for _ in range(45):  # a busy loop: 20 ms steps for 0.9 s (renew_s is 1 s): no write
        clocks.tick(0.02)
        assert a.leads()
    assert counting.acquires == 1
    clocks.tick(a.renew_s)
    assert a.leads() and counting.acquires == 2 and recovered == ["a"]  # a renewal


def test_standby_takes_over_after_ttl_and_recovers(lease_store: Store, clocks: Clocks) -> None:
    recovered: list[str] = []
    a = _daemon(lease_store, "a", clocks, recovered)
    b = _daemon(lease_store, "b", clocks, recovered)
    assert a.leads() and not b.leads()
    clocks.tick(TTL_S - 0.1)  # a is killed: it renews no more
    assert not b.leads()
    clocks.tick(0.1)
    assert b.leads() and recovered == ["a", "b"]
    lease = lease_store.lease("control-loop")
    assert lease is not None and lease.holder == "b" and lease.epoch == 2
    clocks.tick(b.renew_s)
    assert not a.leads()  # the old leader, back, finds it taken and stands by
    assert not a.leading and recovered == ["a", "b"]


def test_clean_stop_hands_over_at_once(lease_store: Store, clocks: Clocks) -> None:
    recovered: list[str] = []
    a = _daemon(lease_store, "a", clocks, recovered)
    b = _daemon(lease_store, "b", clocks, recovered)
    assert a.leads() and not b.leads()
    a.release()
    assert b.leads() and recovered == ["a", "b"]


def test_lost_lease_stops_steps_and_regain_recovers_again(
    lease_store: Store, clocks: Clocks
) -> None:
    counting = CountingStore(lease_store)
    recovered: list[str] = []
    a = _daemon(counting, "a", clocks, recovered)
    assert a.leads()
    counting.fail = True
    clocks.tick(a.renew_s)
    assert not a.leads() and not a.leading  # unreachable: not leading
    counting.fail = False
    clocks.tick(0.1)
    assert a.leads() and recovered == ["a", "a"]  # its in-memory view may be stale


def test_failed_recovery_is_retried_before_any_step(lease_store: Store, clocks: Clocks) -> None:
    calls: list[int] = []

    def recover() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("connection reset")

    a = Leadership(
        LeaderLease(lease_store, holder="a", ttl_s=TTL_S), recover, clock=lambda: clocks.mono
    )
    with pytest.raises(StoreError):
        a.leads()
    assert not a.leading
    assert a.leads() and len(calls) == 2


def test_a_bad_ttl_is_one_line_naming_the_setting() -> None:
    from intercloud import settings

    assert settings.leader_ttl_s({}) == 10.0
    assert settings.leader_ttl_s({"INTERCLOUD_LEADER_TTL": "2.5"}) == 2.5
    for bad in ("0", "-1", "soon", "nan", "7200"):
        with pytest.raises(settings.SettingError, match="INTERCLOUD_LEADER_TTL") as exc:
            settings.check_all({"INTERCLOUD_LEADER_TTL": bad})
        assert "\n" not in str(exc.value)
