"""Reason codes through the live loop: every decision's code is stored with its words
(``workloads.reason_code`` and the transition event's data), and the loop acts on the
code, never on the words: a requeue code survives a new loop whatever the text says."""

from __future__ import annotations

from collections.abc import Callable

from control_helpers import all_terminal, in_state, run_until, spec, submit

from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import Store

S = JobState
Make = Callable[..., Reconciler]
C = ReasonCode
LONG_FIRST = 'if [ "$INTERCLOUD_ATTEMPT" = 1 ]; then sleep 30; fi'


def codes(store: Store, job: int) -> list[tuple[str | None, str | None]]:
    """(to_state, data reason_code) of every transition event of ``job``."""
    return [
        (e.to_state, (e.data or {}).get("reason_code"))
        for e in store.events(job)
        if e.kind == "transition"
    ]


def test_preemption_stores_its_code_and_requeues_without_a_restart(
    store: Store, make_reconciler: Make
) -> None:
    rec = make_reconciler(cpus=2)
    low = store.submit("training", "low", spec(LONG_FIRST, nodes=2, name="low"), priority=0)
    run_until(rec, in_state(store, low, S.RUNNING))
    high = store.submit("training", "high", spec("sleep 0.2", nodes=2, name="high"), priority=9)
    run_until(rec, lambda: store.get(high).state is not S.PENDING)
    w = store.get(low)
    assert (w.state, w.reason_code, w.restarts) == (S.PENDING, C.PREEMPTED, 0)
    assert ("RECOVERING", "preempted") in codes(store, low)
    run_until(rec, all_terminal(store, low, high))
    assert store.get(low).reason_code is None  # the last transition gave none


def test_the_loop_reads_the_code_not_the_words(store: Store, make_reconciler: Make) -> None:
    # A job stopped with a requeue code but words that say nothing of preemption, and
    # no restarts allowed: a new loop still requeues it, without counting a restart.
    rec = make_reconciler(cpus=2)
    job = submit(store, LONG_FIRST, nodes=1, name="victim", max_restarts=0)
    run_until(rec, in_state(store, job, S.RUNNING))
    w = store.get(job)
    moved = store.transition(
        job, S.RUNNING, S.RECOVERING, "taken back", expected_version=w.version,
        reason_code=C.RECLAIMED,
    )  # fmt: skip
    assert moved is not None and moved.reason_code is C.RECLAIMED
    rec = make_reconciler(cpus=2)  # a new loop: the code comes from the store
    run_until(rec, lambda: store.get(job).state is not S.RECOVERING)
    w = store.get(job)
    assert (w.state, w.attempt, w.restarts) == (S.PENDING, 2, 0)
    assert (w.reason, w.reason_code) == ("taken back", C.RECLAIMED)
    assert [a.state for a in store.attempts(job)] == ["preempted"]
    run_until(rec, all_terminal(store, job))
    assert store.get(job).state is S.SUCCEEDED


def test_the_words_alone_do_not_requeue(store: Store, make_reconciler: Make) -> None:
    # The old prefix ("preempted for job") without a code is an ordinary failure.
    rec = make_reconciler(cpus=2)
    job = submit(store, "sleep 30", nodes=1, name="failing", max_restarts=0)
    run_until(rec, in_state(store, job, S.RUNNING))
    w = store.get(job)
    text = "preempted for job 99 (priority 9); requeued from its last checkpoint"
    assert store.transition(job, S.RUNNING, S.RECOVERING, text, expected_version=w.version)
    run_until(rec, all_terminal(store, job))
    w = store.get(job)
    assert (w.state, w.reason_code) == (S.FAILED, None)
    assert [a.state for a in store.attempts(job)] == ["failed"]


def test_hold_reject_restart_and_cancel_store_their_codes(
    store: Store, make_reconciler: Make
) -> None:
    rec = make_reconciler(cpus=2)
    never = submit(store, "true", nodes=1, name="never", instance_type="no-such-type")
    blocker = submit(store, "sleep 30", nodes=2, name="blocker")
    run_until(rec, lambda: store.get(never).state.terminal)
    w = store.get(never)
    assert (w.state, w.reason_code) == (S.FAILED, C.NEVER_FITS)
    assert codes(store, never)[-1] == ("FAILED", "never_fits")
    run_until(rec, in_state(store, blocker, S.RUNNING))
    flaky = submit(store, '[ "$INTERCLOUD_ATTEMPT" = 2 ]', nodes=1, name="flaky", max_restarts=1)
    run_until(rec, lambda: store.get(flaky).reason is not None)
    w = store.get(flaky)
    assert w.state is S.PENDING and w.reason_code is C.WAITING_FOR_CAPACITY
    assert "waiting for capacity" in (w.reason or "")
    store.request_cancel(blocker)
    run_until(rec, all_terminal(store, blocker, flaky))
    w = store.get(blocker)
    assert (w.state, w.reason_code) == (S.CANCELLED, C.CANCELLED)
    assert ("PENDING", "restart") in codes(store, flaky)
    assert store.get(flaky).state is S.SUCCEEDED
