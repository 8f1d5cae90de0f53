"""Reads coalesced over a loop step (``Store.coalesced_reads``): the store's own writes
are seen at once, another store's at the next step (or outside a step), another thread
reads the database as always, and reads inside steps with the store's writes between
them equal what a fresh store reads."""

from __future__ import annotations

import random
import threading

from test_row_image import ACTIVE, LIVE, OFFER, _random_write, _reads

from intercloud.model import PricingKind
from intercloud.store import Store, open_store
from intercloud.store.testing import FakeClock


def _names(store: Store) -> list[str]:
    return [w.name for w in store.list_workloads(states=ACTIVE)]


def test_own_writes_are_seen_at_once_and_another_stores_at_the_next_step(
    store: Store, db_url: str, clock: FakeClock
) -> None:
    store.submit("training", "a", "run: x\n")
    with open_store(db_url, clock=clock) as other:
        with store.coalesced_reads():
            assert _names(store) == ["a"]
            assert store.instances(states=LIVE) == [] and store.live_nodes() == []
            other.submit("training", "b", "run: x\n")
            other.request_instances("r1", 1, OFFER, PricingKind.SPOT, 1.0)
            # within the step, rows another store wrote are not read yet
            assert _names(store) == ["a"] and store.instances(states=LIVE) == []
            store.submit("training", "c", "run: x\n")
            # a write of our own to the workloads: their next read goes to the database
            # (and sees b too); the instances it did not write are carried as they were
            assert _names(store) == ["a", "b", "c"]
            assert store.instances(states=LIVE) == []
            other.submit("training", "d", "run: x\n")
            assert _names(store) == ["a", "b", "c"]
        assert _names(store) == ["a", "b", "c", "d"]  # outside a step: every read asks
        assert len(store.instances(states=LIVE)) == 1
        with store.coalesced_reads():
            other.submit("training", "e", "run: x\n")
            with store.coalesced_reads():  # nested: the outer step's epoch
                assert _names(store)[-1] == "e"  # a new step reads afresh
                other.submit("training", "f", "run: x\n")
                assert _names(store)[-1] == "e"


def test_another_thread_reads_the_database_during_a_step(
    store: Store, db_url: str, clock: FakeClock
) -> None:
    store.submit("training", "a", "run: x\n")
    seen: list[list[str]] = []
    with open_store(db_url, clock=clock) as other, store.coalesced_reads():
        assert _names(store) == ["a"]
        other.submit("training", "b", "run: x\n")
        t = threading.Thread(target=lambda: seen.append(_names(store)))
        t.start()
        t.join()
        assert _names(store) == ["a", "b"]  # the other thread's read refreshed the image
    assert seen == [["a", "b"]]


def test_steps_with_the_stores_own_writes_read_what_a_fresh_store_reads(
    db_url: str, clock: FakeClock
) -> None:
    rng = random.Random(5)
    made: dict[str, list[int]] = {"jobs": [], "requests": [], "instances": []}
    with open_store(db_url, clock=clock) as kept:
        for step in range(8):
            with kept.coalesced_reads():
                _reads(kept)
                for _ in range(rng.randint(0, 8)):
                    _random_write(kept, rng, made)
                    if rng.random() < 0.5:
                        _reads(kept)
                with open_store(db_url, clock=clock) as fresh:
                    assert _reads(kept) == _reads(fresh), f"step {step}"
