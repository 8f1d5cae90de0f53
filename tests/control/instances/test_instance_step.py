"""The instance reconcile step on a fake cloud: every handler, failures, crashes, sweep."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fake_cloud import OFFER, FakeCloud, FakeProvider

from intercloud.control.instances.context import InstanceTimeouts
from intercloud.control.instances.requested import LaunchOptions
from intercloud.control.instances.step import InstanceReconciler
from intercloud.control.instances.transitions import EndCause, end_cause
from intercloud.model import PricingKind
from intercloud.providers.contract import FailureKind, InstanceState, LaunchFailure, LaunchRequest
from intercloud.store import Store
from intercloud.store.records import AssignmentState, InstanceRecord
from intercloud.store.testing import FakeClock

S = InstanceState
MakeStep = Callable[..., tuple[InstanceReconciler, FakeProvider]]


class Crash(Exception):
    """Stands for the SIGKILL a crashpoint delivers in production."""


def crash_at(name: str) -> Callable[[str], None]:
    def crashpoint(hit: str) -> None:
        if hit == name:
            raise Crash(hit)

    return crashpoint


def request(store: Store, rid: str = "r1", count: int = 2, **kw: object) -> list[int]:
    rows = store.request_instances(rid, count, OFFER, PricingKind.ON_DEMAND, 10.0, **kw)  # type: ignore[arg-type]
    return [r.id for r in rows]


def states(store: Store, ids: list[int] | None = None) -> list[str]:
    return [r.state for r in store.instances() if ids is None or r.id in ids]


def row(store: Store, iid: int) -> InstanceRecord:
    rec = store.get_instance(iid)
    assert rec is not None
    return rec


def steps(step: InstanceReconciler, n: int) -> None:
    for _ in range(n):
        step.step()


def test_requested_to_running_without_agent(store: Store, make_step: MakeStep) -> None:
    ids = request(store, count=2, extra=LaunchOptions(labels={"team": "a"}).to_extra())
    step, provider = make_step()
    assert step.step()  # launched
    assert states(store) == ["requested", "requested"]
    assert len(provider.launch_calls) == 1
    (req,) = provider.launch_calls
    assert (req.request_id, req.count, req.offering, req.labels) == ("r1", 2, OFFER, {"team": "a"})
    step.step()
    first = [row(store, i) for i in ids]
    assert [r.state for r in first] == ["allocated", "allocated"]
    assert all(r.provider_instance_id and r.address for r in first)
    step.step()
    assert states(store) == ["running", "running"]
    running = row(store, ids[0])
    assert running.idle and running.idle_since == running.running_at
    steps(step, 3)
    assert len(provider.launch_calls) == 1  # once per request
    history = [(e.from_state, e.to_state) for e in store.instance_events(ids[0])]
    assert history == [(None, "requested"), ("requested", "allocated"), ("allocated", "running")]


def test_agent_registration_makes_it_running(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    (iid,) = request(store, count=1)
    step, _ = make_step(needs_agent=True)
    steps(step, 4)
    assert states(store) == ["allocated"]  # the provider says running: not enough
    rec = row(store, iid)
    store.set_instance_fields(iid, rec.version, heartbeat_at=clock.now)  # the agent server
    step.step()
    assert states(store) == ["running"]


def test_agent_that_never_registers_times_out(
    store: Store, make_step: MakeStep, clock: FakeClock, cloud: FakeCloud
) -> None:
    (iid,) = request(store, count=1)
    step, _ = make_step(needs_agent=True, timeouts=InstanceTimeouts(boot_s=60))
    steps(step, 3)
    clock.tick(61)
    step.step()
    rec = row(store, iid)
    assert rec.state == "terminating" and end_cause(rec.extra) is EndCause.BOOT_TIMEOUT
    assert cloud.terminate_calls == [[rec.provider_instance_id]]
    step.step()
    assert states(store) == ["terminated"]


def test_silent_agent_ends_the_instance(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    (iid,) = request(store, count=1)
    step, _ = make_step(needs_agent=True, timeouts=InstanceTimeouts(agent_s=30))
    steps(step, 2)
    store.set_instance_fields(iid, row(store, iid).version, heartbeat_at=clock.now)
    step.step()
    clock.tick(20)
    step.step()
    assert states(store) == ["running"]
    clock.tick(20)
    step.step()
    assert end_cause(row(store, iid).extra) is EndCause.AGENT_SILENT
    step.step()
    assert states(store) == ["terminated"]


@pytest.mark.parametrize("kind", list(FailureKind))
def test_launch_failure_fails_the_request_once(
    store: Store, make_step: MakeStep, cloud: FakeCloud, kind: FailureKind
) -> None:
    cloud.refuse[OFFER] = kind
    heard: list[LaunchFailure] = []
    ids = request(store, count=2)
    step, provider = make_step(on_failure=heard.append)
    steps(step, 4)
    assert states(store) == ["failed", "failed"]
    rec = row(store, ids[0])
    assert rec.failure_kind == kind.value and "FakeRefusal" in (rec.reason or "")
    assert end_cause(rec.extra) is EndCause.LAUNCH_FAILED
    assert [(f.request_id, f.kind) for f in heard] == [("r1", kind)]
    assert len(provider.launch_calls) == 1 and cloud.run_calls == 0


def test_request_the_provider_cannot_take_fails_at_once(store: Store, make_step: MakeStep) -> None:
    request(store, count=9)  # the fake cloud launches at most 8
    step, _ = make_step()
    step.step()
    assert set(states(store)) == {"failed"}
    assert {r.failure_kind for r in store.instances()} == {"unsupported"}


def test_launch_that_vanishes_fails_after_the_timeout(
    store: Store, make_step: MakeStep, clock: FakeClock
) -> None:
    request(store, count=1)
    step, provider = make_step(timeouts=InstanceTimeouts(launch_s=100))
    step.step()
    provider._pending.clear()  # the provider forgot it and never acted
    steps(step, 2)
    assert states(store) == ["requested"]
    clock.tick(101)
    step.step()
    (rec,) = store.instances()
    assert rec.state == "failed" and end_cause(rec.extra) is EndCause.LAUNCH_VANISHED


def test_draining_idle_instance_is_released(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    a, b = request(store, count=2)
    step, _ = make_step()
    steps(step, 3)
    job = store.submit("training", "j", "name: j\n")
    assert store.bind_instances(job, 1, [b])
    assert store.assign(b, job, 1, 0, {"run": "x"})
    assert store.set_assignment_state(b, AssignmentState.ASSIGNED, AssignmentState.STARTED)
    for iid in (a, b):  # the scheduler's RELEASE
        assert store.transition_instance(iid, S.RUNNING, S.DRAINING, "idle release")
    step.step()
    assert [row(store, a).state, row(store, b).state] == ["terminating", "draining"]
    step.step()
    assert row(store, a).state == "terminated"
    assert end_cause(row(store, a).extra) is EndCause.RELEASED
    assert store.set_assignment_state(b, AssignmentState.STARTED, AssignmentState.EXITED, 0)
    steps(step, 2)
    assert row(store, b).state == "terminated"
    assert len(cloud.terminate_calls) == 2  # asked once each


def test_drained_before_seen_is_ended_by_request(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    (iid,) = request(store, count=1)
    step, _ = make_step()
    step.step()  # launched, not yet seen
    assert store.transition_instance(iid, S.REQUESTED, S.TERMINATING, "not needed")
    steps(step, 2)
    assert states(store) == ["terminated"]
    assert not cloud.live() or all(v.state is not S.RUNNING for v in cloud.live())


def test_instances_ended_by_the_provider(store: Store, make_step: MakeStep) -> None:
    a, b, c = request(store, count=3)
    step, provider = make_step()
    steps(step, 3)
    provider.reclaim(row(store, a).provider_instance_id or "")
    provider.lose(row(store, b).provider_instance_id or "")
    provider.set_state(row(store, c).provider_instance_id or "", S.FAILED)
    step.step()
    assert end_cause(row(store, a).extra) is EndCause.RECLAIMED
    assert end_cause(row(store, b).extra) is EndCause.LOST
    assert row(store, a).state == row(store, b).state == "terminated"
    assert row(store, c).state == "terminating"
    assert end_cause(row(store, c).extra) is EndCause.PROVIDER_FAILED
    step.step()  # the terminate reaches the cloud, the next observe sees it gone
    step.step()
    assert row(store, c).state == "terminated"
    steps(step, 2)  # events are applied once: nothing moves again
    assert len(store.instance_events(a)) == 4


def test_crash_after_launch_reaching_the_cloud_adopts(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    ids = request(store, count=2)
    step, provider = make_step(crashpoint=crash_at("instance_launched"))
    with pytest.raises(Crash):
        step.step()
    provider.observe()  # its launch reached the cloud before the process died
    step2, provider2 = make_step()  # the restarted loop: recover() adopts by tag
    assert [row(store, i).state for i in ids] == ["allocated", "allocated"]
    steps(step2, 3)
    assert states(store) == ["running", "running"]
    assert provider2.launch_calls == [] and cloud.run_calls == 1
    assert len(cloud.live()) == 2


def test_crash_before_launch_reached_the_cloud_launches_once(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    request(store, count=2)
    step, _ = make_step(crashpoint=crash_at("instance_launched"))
    with pytest.raises(Crash):
        step.step()  # launch() returned, the process died before the cloud acted
    step2, provider2 = make_step()
    steps(step2, 3)
    assert states(store) == ["running", "running"]
    assert len(provider2.launch_calls) == 1 and cloud.run_calls == 1
    assert len(cloud.live()) == 2


def test_sweep_terminates_orphans_only(store: Store, make_step: MakeStep, cloud: FakeCloud) -> None:
    request(store, count=1)
    step, provider = make_step()
    steps(step, 3)
    provider.launch(LaunchRequest("orphan", OFFER, count=2))  # no row owns it
    steps(step, 2)
    swept = step.sweep()
    orphans = {i for i, vm in cloud.vms.items() if vm.view.request_id == "orphan"}
    assert set(swept["fake"]) == orphans
    assert states(store) == ["running"]
    assert [e.kind for e in store.events() if e.kind == "instance_sweep"] == ["instance_sweep"]


def test_provider_outage_is_reported_and_survived(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    calls: list[tuple[str, Exception | None]] = []
    request(store, count=1)
    step, _ = make_step(on_provider_call=lambda n, e: calls.append((n, e)))
    cloud.down = True
    steps(step, 2)
    assert calls and all(e is not None for _, e in calls[-2:])
    cloud.down = False
    steps(step, 3)
    assert states(store) == ["running"] and calls[-1] == ("fake", None)


def test_slow_launch_stays_requested_and_is_not_relaunched(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    cloud.boot_observes = 4
    request(store, count=1)
    step, provider = make_step()
    steps(step, 4)
    assert states(store) == ["requested"]
    steps(step, 2)
    assert states(store) == ["running"]
    assert len(provider.launch_calls) == 1 and cloud.run_calls == 1


def test_an_unchanged_instance_is_skipped_and_a_changed_one_applied(
    store: Store, make_step: MakeStep, cloud: FakeCloud
) -> None:
    """``observe.apply`` skips a row and an observation both as they were when it last
    found nothing to do, and applies a change of either."""
    from dataclasses import replace

    ids = request(store, count=2)
    step, _provider = make_step()
    steps(step, 3)
    assert states(store) == ["running", "running"]
    before = [row(store, i) for i in ids]
    steps(step, 2)
    assert [row(store, i) for i in ids] == before  # nothing written
    judged = step.ctx.judged["fake"]
    assert sorted(judged) == ids
    # the provider now shows another address for the first one: stored
    vm = next(v for v in cloud.vms.values() if v.view.instance_id == before[0].provider_instance_id)
    vm.view = replace(vm.view, address="10.9.9.9")
    step.step()
    assert row(store, ids[0]).address == "10.9.9.9" and row(store, ids[1]) == before[1]
    step.step()  # judged as it is now: nothing to do
    assert sorted(step.ctx.judged["fake"]) == ids
    # the row changes under it (the address cleared by hand): applied again
    assert store.set_instance_fields(ids[0], row(store, ids[0]).version, address="10.0.0.0")
    step.step()
    assert row(store, ids[0]).address == "10.9.9.9"
