"""``observe.apply``'s delta pass (only the rows and instances that are not the same
objects as last time, and the rows it did not judge) against the whole loop: the same
random runs give the same instance rows and the same event history either way."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fake_cloud import OFFER, OTHER, FakeCloud, FakeProvider

from intercloud.control.instances import observe
from intercloud.control.instances.step import InstanceReconciler
from intercloud.model import PricingKind
from intercloud.providers.contract import FailureKind
from intercloud.providers.contract import InstanceState as S
from intercloud.store import open_store
from intercloud.store.testing import FakeClock


def _run(seed: int, db: Path, delta: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    monkeypatch.setattr(observe, "_DELTA_SHARE", 0.5 if delta else -1.0)
    applied = 0
    real = observe._apply_delta

    def counted(*a: Any) -> Any:
        nonlocal applied
        out = real(*a)
        applied += out is not None
        return out

    monkeypatch.setattr(observe, "_apply_delta", counted)
    rng = random.Random(seed)
    clock = FakeClock()
    store = open_store(f"sqlite:///{db}", clock=clock)
    cloud = FakeCloud(boot_observes=3)  # rows that wait unseen a few steps (not judged)
    provider = FakeProvider(cloud)
    step = InstanceReconciler(store, {"fake": provider}, clock)  # type: ignore[arg-type]
    step.recover()
    job = store.submit("training", "j", "kind: training\nname: j\nrun: 'true'\n")
    rows: list[Any] = []
    try:
        for n in range(50):
            for _ in range(rng.randrange(0, 3)):
                what = rng.choice([0, 1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 9, 9, 9])
                vms = sorted(i for i, vm in cloud.vms.items() if vm.view.state is S.RUNNING)
                running = [r for r in store.instances() if r.state == S.RUNNING.value]
                if what == 0:
                    key = rng.choice([OFFER, OFFER, OTHER])
                    store.request_instances(f"r{n}", rng.randrange(1, 4), key,
                                            PricingKind.ON_DEMAND, 10.0)  # fmt: skip
                elif what == 1 and vms:
                    provider.lose(rng.choice(vms))  # ends unannounced: a changed instance
                elif what == 2 and vms:
                    provider.reclaim(rng.choice(vms))  # an event: the whole loop
                elif what == 3 and vms:
                    vm = cloud.vms[rng.choice(vms)]  # a new address
                    vm.view = replace(vm.view, address=f"10.9.{n}.1")
                elif what == 4 and vms:
                    provider.set_state(rng.choice(vms), S.FAILED)
                elif what == 5 and running:
                    r = rng.choice(running)  # a changed row, its instance unchanged
                    if r.workload_id is None:
                        store.bind_instances(job, n + 1, [r.id])
                    else:
                        store.unbind_instances(r.workload_id, r.attempt or 0)
                elif what == 6:
                    cloud.refuse[OTHER] = FailureKind.CAPACITY  # launch failures
                elif what == 7:
                    cloud.refuse.clear()
                elif what == 8 and running:
                    r = rng.choice(running)
                    store.transition_instance(r.id, S.RUNNING, S.DRAINING, "drain it")
                elif what == 9 and running:
                    r = rng.choice(running)  # another writer's address: the observed one wins
                    store.set_instance_fields(r.id, r.version, address="10.255.0.1")
            clock.tick(rng.choice([0.0, 1.0, 30.0, 400.0, 700.0]))
            step.step()
            # the rows after every step: a change made a step late would show here
            rows.append([(r.id, r.state, r.provider_instance_id, r.address, r.workload_id,
                          r.version) for r in store.instances()])  # fmt: skip
        events = [(e.instance_id, e.kind, e.from_state, e.to_state, e.reason)
                  for e in store.events() if e.instance_id is not None]  # fmt: skip
        return (rows, events), applied
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(6))
def test_the_delta_pass_is_the_whole_loop(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got, applied = _run(seed, tmp_path / "a.db", True, monkeypatch)
    want, never = _run(seed, tmp_path / "b.db", False, monkeypatch)
    assert never == 0
    assert got == want
    assert applied > 5  # (the delta pass served steps of this run)
