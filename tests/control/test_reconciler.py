"""The reconciler driven step by step with the local provider: gangs, failures, restart
policy, cancel in every state, capacity holds, unrunnable specs, the events story."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from control_helpers import (
    Crash,
    StopAt,
    all_terminal,
    in_state,
    run_until,
    spec,
    submit,
)

from intercloud.control.decide import PlannerDecider
from intercloud.control.reconciler import Reconciler
from intercloud.control.states import TRANSITIONS, JobState
from intercloud.store import NodeState, Store
from node_processes import leftovers_killed, processes_under

S = JobState
Make = Callable[..., Reconciler]


def transitions(store: Store, job: int) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (e.from_state, e.to_state, e.reason) for e in store.events(job) if e.kind == "transition"
    ]


def assert_story_legal(store: Store, job: int) -> None:
    """Every transition is legal, follows the previous one, and has a reason."""
    state = None
    for src, dst, reason in transitions(store, job):
        assert dst is not None and reason, (src, dst, reason)
        if src is not None:
            assert src == state, f"event from {src} but the job was {state}"
            assert JobState(dst) in TRANSITIONS[JobState(src)]
        state = dst
    assert state == store.get(job).state.value


def test_gangs_of_one_to_four_nodes_succeed(store: Store, make_reconciler: Make) -> None:
    rec = make_reconciler()
    jobs = [
        submit(
            store,
            'echo "rank $INTERCLOUD_NODE_RANK of $INTERCLOUD_NUM_NODES $GREETING"; sleep 0.2',
            nodes=n,
            name=f"gang{n}",
            envs={"GREETING": "hello"},
        )
        for n in (1, 2, 3, 4)
    ]
    run_until(rec, all_terminal(store, *jobs))
    for n, job in zip((1, 2, 3, 4), jobs, strict=True):
        w = store.get(job)
        assert w.state is S.SUCCEEDED, w.reason
        assert w.exit_code == 0 and w.attempt == 1 and w.restarts == 0
        nodes = store.nodes(job)
        assert [x.rank for x in nodes] == list(range(n))
        assert all(x.state is NodeState.EXITED and x.exit_code == 0 for x in nodes)
        assert all(x.pid and x.start_time for x in nodes)
        assert [a.state for a in store.attempts(job)] == ["succeeded"]
        states = [dst for _, dst, _ in transitions(store, job)]
        assert states == ["PENDING", "PLACING", "PROVISIONING", "RUNNING", "SUCCEEDED"]
        assert_story_legal(store, job)
        kinds = [e.kind for e in store.events(job)]
        assert kinds.count("node_starting") == n and kinds.count("node_exited") == n
        provider = next(iter(rec.providers.values()))
        log = (Path(provider.root) / "jobs" / str(job) / "logs" / "node-0.log").read_text()  # type: ignore[attr-defined]
        assert f"rank 0 of {n} hello" in log
    rec.step()
    assert rec.active_jobs == 0


def test_a_failing_rank_fails_the_job_and_stops_the_gang(
    store: Store, make_reconciler: Make, root: Path
) -> None:
    rec = make_reconciler()
    job = submit(store, '[ "$INTERCLOUD_NODE_RANK" = 1 ] && exit 3; sleep 30', nodes=3)
    run_until(rec, all_terminal(store, job))
    w = store.get(job)
    assert w.state is S.FAILED and w.exit_code == 3
    assert "rank 1 exited 3" in (w.reason or "") and "no restarts left" in (w.reason or "")
    by_rank = {n.rank: n for n in store.nodes(job)}
    assert by_rank[1].state is NodeState.EXITED and by_rank[1].exit_code == 3
    assert by_rank[0].state is NodeState.KILLED and by_rank[2].state is NodeState.KILLED
    assert [a.state for a in store.attempts(job)] == ["failed"]
    assert [dst for _, dst, _ in transitions(store, job)][-2:] == ["RECOVERING", "FAILED"]
    assert_story_legal(store, job)
    assert leftovers_killed(root) == []


def test_restart_policy(store: Store, make_reconciler: Make) -> None:
    rec = make_reconciler()
    ckpt = 'touch "$INTERCLOUD_CHECKPOINT_DIR/a$INTERCLOUD_ATTEMPT-r$INTERCLOUD_NODE_RANK"; '
    # Both ranks wait for each other's marker (a barrier), so a fast failure of one rank
    # cannot tear the gang down before the other has run.
    barrier = (
        'D="$INTERCLOUD_CHECKPOINT_DIR"; A="$INTERCLOUD_ATTEMPT"; for i in $(seq 200); do '
        '[ -e "$D/a$A-r0" ] && [ -e "$D/a$A-r1" ] && break; sleep 0.05; done; '
    )
    # exits 3 on attempts 1 and 2, succeeds on 3; 3 is a listed code
    recovers = submit(
        store,
        ckpt + barrier + '[ "$INTERCLOUD_ATTEMPT" -ge 3 ] || exit 3',
        nodes=2,
        max_restarts=3,
        on_exit_codes=(3,),
        name="recovers",
    )
    # exit 4 is not in on_exit_codes: no restart
    unlisted = submit(store, "exit 4", max_restarts=2, on_exit_codes=(3,), name="unlisted")
    # always fails: uses both restarts, then fails
    exhausted = submit(store, "exit 5", max_restarts=2, name="exhausted")
    run_until(rec, all_terminal(store, recovers, unlisted, exhausted))

    w = store.get(recovers)
    assert w.state is S.SUCCEEDED and w.attempt == 3 and w.restarts == 2
    assert [a.state for a in store.attempts(recovers)] == ["failed", "failed", "succeeded"]
    provider = next(iter(rec.providers.values()))
    ckpt_dir = Path(provider.checkpoint_dir(str(recovers)))  # type: ignore[attr-defined]
    assert sorted(p.name for p in ckpt_dir.iterdir()) == [
        f"a{a}-r{r}" for a in (1, 2, 3) for r in (0, 1)
    ]
    assert_story_legal(store, recovers)

    w = store.get(unlisted)
    assert w.state is S.FAILED and w.attempt == 1 and w.restarts == 0 and w.exit_code == 4
    assert "not in restart.on_exit_codes" in (w.reason or "")

    w = store.get(exhausted)
    assert w.state is S.FAILED and w.attempt == 3 and w.restarts == 2 and w.exit_code == 5
    assert "no restarts left" in (w.reason or "")
    assert_story_legal(store, exhausted)


def _cancel_and_finish(store: Store, make: Make, job: int, root: Path) -> None:
    store.request_cancel(job)
    rec = make()  # a new loop (the old one "crashed")
    run_until(rec, all_terminal(store, job))
    w = store.get(job)
    assert w.state is S.CANCELLED, w.reason
    assert all(not n.state.live for n in store.nodes(job))
    assert leftovers_killed(root) == []
    assert_story_legal(store, job)
    provider = next(iter(rec.providers.values()))
    assert provider.usage()[0].allocations == 0  # type: ignore[attr-defined]


def test_cancel_pending(store: Store, make_reconciler: Make, root: Path) -> None:
    job = submit(store, "sleep 30")
    _cancel_and_finish(store, make_reconciler, job, root)
    assert store.nodes(job) == []


def test_cancel_in_every_state(store: Store, make_reconciler: Make, root: Path) -> None:
    """Stop the loop at a phase boundary, cancel, let a new loop finish the cancel."""
    stops = [
        ("placing", 1, S.PLACING),
        ("provisioning", 1, S.PLACING),  # allocated, the store does not know yet
        ("provisioning", 2, S.PROVISIONING),  # the attempt and the move: one commit
        ("starting", 1, S.PROVISIONING),  # rank 0 claimed, not started
        ("starting", 2, S.PROVISIONING),  # rank 0 started, pid not recorded
        ("started", 2, S.PROVISIONING),  # ranks 0 and 1 of 3 running
        ("running", 1, S.RUNNING),
        ("recovering", 1, S.RECOVERING),
    ]
    for name, nth, state in stops:
        run = (
            "sleep 30"
            if name != "recovering"
            else '[ "$INTERCLOUD_NODE_RANK" = 2 ] && exit 9; sleep 30'
        )
        job = submit(store, run, nodes=3, name=f"{name}{nth}")
        rec = make_reconciler(crashpoint=StopAt(name, nth))
        with pytest.raises(Crash):
            run_until(rec, lambda: False, timeout_s=20)
        assert store.get(job).state is state, (name, nth)
        _cancel_and_finish(store, make_reconciler, job, root)


def test_cancel_running_kills_every_process(
    store: Store, make_reconciler: Make, root: Path
) -> None:
    rec = make_reconciler()
    job = submit(store, "sleep 30 & sleep 30; wait", nodes=4)
    run_until(rec, in_state(store, job, S.RUNNING))
    # RUNNING means every shim started; give each node's bash a moment to fork its sleeps
    deadline = time.monotonic() + 20
    while len(processes_under(root)) < 4 * 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(processes_under(root)) >= 4 * 3  # shim, bash, two sleeps per node
    store.request_cancel(job)
    run_until(rec, all_terminal(store, job))
    assert store.get(job).state is S.CANCELLED
    assert leftovers_killed(root) == []
    assert {n.state for n in store.nodes(job)} == {NodeState.KILLED}
    assert [a.state for a in store.attempts(job)] == ["cancelled"]


def test_capacity_hold_then_placement(store: Store, make_reconciler: Make) -> None:
    rec = make_reconciler(cpus=2)
    first = submit(store, "sleep 1", cpus=2, name="first")
    second = submit(store, "true", cpus=2, name="second")
    rec.step()
    assert store.get(first).state is S.RUNNING
    w = store.get(second)
    assert w.state is S.PENDING
    assert "waiting for capacity" in (w.reason or "") and "needs 2 CPUs (free 0)" in (
        w.reason or ""
    )
    for _ in range(5):
        rec.step()
    assert len([e for e in store.events(second) if e.kind == "updated"]) == 1  # said once
    run_until(rec, all_terminal(store, first, second))
    assert store.get(second).state is S.SUCCEEDED
    assert_story_legal(store, second)


class _BlindDecider(PlannerDecider):
    """Ignores free capacity, so the provider's CapacityError is what holds a job."""

    def decide(self, pending, offerings, free=None):  # type: ignore[no-untyped-def]
        return super().decide(pending, offerings, None)


def test_capacity_error_goes_back_to_pending_with_backoff(
    store: Store, make_reconciler: Make
) -> None:
    now = [0.0]
    rec = make_reconciler(cpus=2, decider=_BlindDecider(), clock=lambda: now[0])
    first = submit(store, "sleep 0.5", cpus=2, name="first")
    second = submit(store, "true", cpus=2, name="second")
    rec.step()
    w = store.get(second)
    assert w.state is S.PENDING and "waiting for capacity" in (w.reason or "")
    count = len(transitions(store, second))
    run_until(rec, lambda: store.get(first).state.terminal)
    assert len(transitions(store, second)) == count  # backing off: not retried yet
    now[0] += 10.0
    run_until(rec, all_terminal(store, second))
    assert store.get(second).state is S.SUCCEEDED
    assert [d for _, d, _ in transitions(store, second)] == [
        "PENDING",
        "PLACING",
        "PENDING",
        "PLACING",
        "PROVISIONING",
        "RUNNING",
        "SUCCEEDED",
    ]


def test_a_gang_still_being_brought_up_stays_placing_without_back_off(
    store: Store, make_reconciler: Make
) -> None:
    # a provider that queues (Slurm) answers try_provision with None until the gang runs:
    # the job is asked again on the next steps, never sent back to PENDING
    now = [0.0]
    rec = make_reconciler(clock=lambda: now[0])
    provider = next(iter(rec.providers.values()))
    asked: list[str] = []

    def try_provision(req):  # type: ignore[no-untyped-def]
        asked.append(req.request_id)
        return provider.provision(req) if len(asked) > 2 else None

    provider.try_provision = try_provision  # type: ignore[method-assign]
    job = submit(store, "true", name="queued")
    rec.step()
    rec.step()
    assert store.get(job).state is S.PLACING and len(asked) == 2
    run_until(rec, all_terminal(store, job))  # the clock never moves: no back-off passes
    assert store.get(job).state is S.SUCCEEDED
    assert len(set(asked)) == 1 and len(asked) == 3
    assert [d for _, d, _ in transitions(store, job)] == [
        "PENDING", "PLACING", "PROVISIONING", "RUNNING", "SUCCEEDED"
    ]  # fmt: skip


def test_spec_no_provider_can_run_fails_with_the_reason(
    store: Store, make_reconciler: Make
) -> None:
    rec = make_reconciler()
    gpu = store.submit(
        "training",
        "gpu",
        "kind: training\nname: gpu\nresources: {accelerators: H100:8}\nrun: 'true'\n",
    )
    broken = store.submit("training", "broken", "kind: training\nname: [\n")
    norun = store.submit("training", "norun", spec("true").replace("run: 'true'\n", ""))
    run_until(rec, all_terminal(store, gpu, broken, norun))
    w = store.get(gpu)
    assert w.state is S.FAILED
    assert w.reason == "no enabled provider can run it (local: offers no H100:8 (has: CPU only))"
    assert store.get(broken).state is S.FAILED
    assert (store.get(broken).reason or "").startswith("invalid spec: job")
    assert store.get(norun).state is S.FAILED
    for job in (gpu, broken, norun):
        assert [d for _, d, _ in transitions(store, job)] == ["PENDING", "PLACING", "FAILED"]
        assert store.nodes(job) == []


def test_priority_then_fifo(store: Store, make_reconciler: Make) -> None:
    rec = make_reconciler(cpus=1)
    low = store.submit("training", "low", spec("true", name="low"), priority=0)
    high = store.submit("training", "high", spec("true", name="high"), priority=5)
    low2 = store.submit("training", "low2", spec("true", name="low2"), priority=0)
    rec.step()
    assert store.get(high).state is S.RUNNING
    assert store.get(low).state is S.PENDING and store.get(low2).state is S.PENDING
    run_until(rec, all_terminal(store, low, high, low2))
    started = {j: store.nodes(j)[0].started_at for j in (low, high, low2)}
    assert started[high] < started[low] < started[low2]


def test_an_ordered_spec_runs_on_the_first_alternative_that_fits(
    store: Store, make_reconciler: Make
) -> None:
    """resources.ordered through the real loop: ordered[0] needs more CPUs than the site
    has, so ordered[1] is placed, and the gang reserves ordered[1]'s CPUs."""
    rec = make_reconciler(cpus=4)
    text = (
        "kind: training\nname: ordered\nnum_nodes: 2\nresources:\n  ordered:\n"
        "    - {instance_type: local-cpu, cpus: 64+}\n"
        "    - {instance_type: local-cpu, cpus: 2+}\n"
        "run: 'echo rank $INTERCLOUD_NODE_RANK'\n"
    )
    job = store.submit("training", "ordered", text)
    run_until(rec, all_terminal(store, job))
    w = store.get(job)
    assert w.state is S.SUCCEEDED, w.reason
    assert w.placement is not None
    assert (w.placement["option"], w.placement["ranks"], w.placement["cpus_per_node"]) == (1, 2, 2)
    assert_story_legal(store, job)
