"""Instance-step fixtures: a store on both backends with a hand-moved clock, a fake
cloud, and a factory of ``InstanceReconciler`` (a new one models a restarted loop)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fake_cloud import FakeCloud, FakeProvider

from intercloud.control.instances.step import InstanceReconciler
from intercloud.store import Store, open_store
from intercloud.store.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = open_store(db_url, clock=clock)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def make_step(
    store: Store, cloud: FakeCloud, clock: FakeClock
) -> Callable[..., tuple[InstanceReconciler, FakeProvider]]:
    def make(
        needs_agent: bool = False, **kwargs: object
    ) -> tuple[InstanceReconciler, FakeProvider]:
        provider = FakeProvider(cloud, needs_agent=needs_agent)
        step = InstanceReconciler(store, {"fake": provider}, clock, **kwargs)  # type: ignore[arg-type]
        step.recover()
        return step, provider

    return make
