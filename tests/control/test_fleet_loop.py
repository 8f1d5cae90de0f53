"""The reconciler driven by the fleet scheduler (the default decider) on the local
provider: gangs to success, holds with the scheduler's reason until capacity frees,
priority order and queue policies, preemption through RECOVERING -> PENDING (also when
the loop dies in the middle of it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from control_helpers import Crash, StopAt, all_terminal, in_state, run_until, spec, submit

from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.store import NodeState, Store
from node_processes import leftovers_killed

S = JobState
Make = Callable[..., Reconciler]


@pytest.fixture(autouse=True)
def _default_decider(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTERCLOUD_DECIDER", "INTERCLOUD_QUEUE_POLICY", "INTERCLOUD_PREEMPTION"):
        monkeypatch.delenv(name, raising=False)


def states(store: Store, job: int) -> list[str | None]:
    return [e.to_state for e in store.events(job) if e.kind == "transition"]


def test_fleet_is_the_default_and_runs_gangs_of_one_to_four(
    store: Store, make_reconciler: Make
) -> None:
    rec = make_reconciler(cpus=6)
    assert isinstance(rec.decider, FleetDecider) and rec.decider.queue_policy == "priority"
    jobs = [
        submit(store, 'echo "rank $INTERCLOUD_NODE_RANK of $INTERCLOUD_NUM_NODES"', nodes=n)
        for n in (1, 2, 3, 4)
    ]
    run_until(rec, all_terminal(store, *jobs))
    for n, job in zip((1, 2, 3, 4), jobs, strict=True):
        w = store.get(job)
        assert w.state is S.SUCCEEDED, w.reason
        assert w.attempt == 1 and w.restarts == 0
        assert [x.rank for x in store.nodes(job)] == list(range(n))
        assert all(x.state is NodeState.EXITED for x in store.nodes(job))
    # 10 slots asked of a 6-slot site: someone waited, with the scheduler's reason
    waited = [e.reason for j in jobs for e in store.events(j) if e.kind == "updated" and e.reason]
    assert any("waiting for capacity" in (r or "") for r in waited)


def test_holds_with_a_reason_when_full_then_places(store: Store, make_reconciler: Make) -> None:
    rec = make_reconciler(cpus=2)
    first = submit(store, "sleep 1", nodes=2, name="first")
    second = submit(store, "true", name="second")
    rec.step()
    assert store.get(first).state is S.RUNNING
    w = store.get(second)
    assert w.state is S.PENDING
    assert w.reason == (
        "waiting for capacity: 1 × CPU; local/local local-cpu: needs 1 CPUs (free 0)"
    )
    for _ in range(5):
        rec.step()
    assert len([e for e in store.events(second) if e.kind == "updated"]) == 1  # said once
    run_until(rec, all_terminal(store, first, second))
    assert store.get(second).state is S.SUCCEEDED
    started = {j: store.nodes(j)[0].started_at for j in (first, second)}
    ended = max(n.ended_at for n in store.nodes(first) if n.ended_at)
    assert started[second] >= ended


def test_priority_order_and_the_fifo_policy(
    store: Store, make_reconciler: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = make_reconciler(cpus=1)
    low = store.submit("training", "low", spec("true", name="low"), priority=0)
    high = store.submit("training", "high", spec("true", name="high"), priority=5)
    rec.step()
    assert store.get(high).state is S.RUNNING and store.get(low).state is S.PENDING
    run_until(rec, all_terminal(store, low, high))
    store.set_setting("scheduler.queue_policy", "fifo")
    rec = make_reconciler(cpus=1)
    assert isinstance(rec.decider, FleetDecider) and rec.decider.queue_policy == "fifo"
    low = store.submit("training", "low", spec("true", name="low"), priority=0)
    high = store.submit("training", "high", spec("true", name="high"), priority=5)
    rec.step()
    assert store.get(low).state is S.RUNNING and store.get(high).state is S.PENDING
    run_until(rec, all_terminal(store, low, high))
    monkeypatch.setenv("INTERCLOUD_DECIDER", "planner")
    assert type(make_reconciler(cpus=1).decider).__name__ == "PlannerDecider"


LONG_FIRST = 'if [ "$INTERCLOUD_ATTEMPT" = 1 ]; then sleep 30; fi'


def test_preemption_requeues_the_victim_as_a_new_attempt(
    store: Store, make_reconciler: Make
) -> None:
    rec = make_reconciler(cpus=2)
    low = store.submit("training", "low", spec(LONG_FIRST, nodes=2, name="low"), priority=0)
    run_until(rec, in_state(store, low, S.RUNNING))
    high = store.submit("training", "high", spec("sleep 0.5", nodes=2, name="high"), priority=9)
    run_until(rec, lambda: store.get(high).state is not S.PENDING)
    w = store.get(low)
    assert w.state is S.PENDING and w.attempt == 2 and w.restarts == 0
    assert w.reason == f"preempted for job {high} (priority 9); requeued from its last checkpoint"
    assert states(store, low)[-3:] == ["RUNNING", "RECOVERING", "PENDING"]
    assert all(not n.state.live for n in store.nodes(low, 1))
    run_until(rec, all_terminal(store, low, high))
    assert store.get(high).state is S.SUCCEEDED
    w = store.get(low)
    assert w.state is S.SUCCEEDED and w.attempt == 2 and w.restarts == 0
    assert [a.state for a in store.attempts(low)] == ["preempted", "succeeded"]
    assert min(n.started_at for n in store.nodes(high)) >= max(
        n.ended_at for n in store.nodes(low, 1) if n.ended_at
    )


def test_a_loop_killed_while_preempting_converges(store: Store, make_reconciler: Make) -> None:
    rec = make_reconciler(cpus=2)
    low = store.submit("training", "low", spec(LONG_FIRST, nodes=2, name="low"), priority=0)
    run_until(rec, in_state(store, low, S.RUNNING))
    high = store.submit("training", "high", spec("true", nodes=2, name="high"), priority=9)
    rec = make_reconciler(cpus=2, crashpoint=StopAt("recovering"))
    with pytest.raises(Crash):
        run_until(rec, lambda: False)
    assert store.get(low).state is S.RECOVERING
    rec = make_reconciler(cpus=2)  # a new loop: everything from the store and provider
    run_until(rec, all_terminal(store, low, high))
    assert store.get(high).state is S.SUCCEEDED
    w = store.get(low)
    assert (w.state, w.attempt, w.restarts) == (S.SUCCEEDED, 2, 0)


def test_preemption_can_be_switched_off(
    store: Store, make_reconciler: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERCLOUD_PREEMPTION", "0")
    rec = make_reconciler(cpus=2)
    low = store.submit("training", "low", spec("sleep 1", nodes=2, name="low"), priority=0)
    run_until(rec, in_state(store, low, S.RUNNING))
    high = store.submit("training", "high", spec("true", nodes=2, name="high"), priority=9)
    rec.step()
    assert store.get(high).state is S.PENDING
    assert "waiting for capacity: 2 × CPU" in (store.get(high).reason or "")
    run_until(rec, all_terminal(store, low, high))
    assert store.get(low).attempt == 1


def test_a_node_the_provider_took_back_requeues_without_a_restart(
    store: Store, make_reconciler: Make, monkeypatch: pytest.MonkeyPatch, root: Path
) -> None:
    """A PREEMPTED node (the provider took its capacity back) is not the job's failure:
    the job is requeued as attempt 2 from its checkpoint with no restart counted, even
    with ``max_restarts: 0``; a LOST local node still counts against the policy."""
    from intercloud.providers.base import NodeEvent, NodeEventKind
    from intercloud.scheduler.reasons import ReasonCode

    rec = make_reconciler(cpus=2)
    job = submit(store, 'if [ "$INTERCLOUD_ATTEMPT" = 1 ]; then sleep 30; fi')
    run_until(rec, in_state(store, job, S.RUNNING))
    provider = rec.ctx.providers["local"]
    real, fired = provider.poll, []

    def poll() -> list[NodeEvent]:
        out = list(real())
        if not fired:
            fired.append(True)
            leftovers_killed(root)  # the capacity went away, and the node with it
            out.append(NodeEvent(NodeEventKind.PREEMPTED, str(job), 1, 0, reason="reclaimed"))
        return out

    monkeypatch.setattr(provider, "poll", poll)
    run_until(rec, all_terminal(store, job))
    w = store.get(job)
    assert (w.state, w.attempt, w.restarts) == (S.SUCCEEDED, 2, 0), w.reason
    codes = [e.data.get("reason_code") for e in store.events(job) if e.data]
    assert ReasonCode.SPOT_RECLAIMED.value in codes
    # the same loss as LOST from a job-level provider is the job's failure
    job2 = submit(store, "sleep 30", name="lost")
    run_until(rec, in_state(store, job2, S.RUNNING))
    fired.clear()

    def poll_lost() -> list[NodeEvent]:
        out = list(real())
        if not fired:
            fired.append(True)
            leftovers_killed(root)
            out.append(NodeEvent(NodeEventKind.LOST, str(job2), 1, 0, reason="gone"))
        return out

    monkeypatch.setattr(provider, "poll", poll_lost)
    run_until(rec, all_terminal(store, job2))
    assert store.get(job2).state is S.FAILED
