"""Gangs queued ahead in Slurm's own queue (``Capability.QUEUE``), through the control
loop (a ``Reconciler`` stepped here, its store a SQLite file) on the test cluster (two
nodes of 2 CPUs: two 2-node gangs of one CPU per rank run at once, and two more wait in
Slurm's queue by default):

- more gangs than fit: the queue is filled up to its depth (the rest wait in
  intercloud), and they start in intercloud's order as nodes free;
- gangs of a higher priority withdraw the queued ones of a lower priority and start
  first; the withdrawn ones run once, after them;
- the loop restarts (a new reconciler and provider) while gangs wait in Slurm's queue:
  it finds them by name, submits nothing twice, and they run once each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster

from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.providers.base import Capability
from intercloud.providers.slurm_provider import SlurmConfig, SlurmProvider
from intercloud.store import Store, open_store

NS = "ic-queue"


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield s
    finally:
        s.close()


def _provider(cluster: SlurmCluster, tmp_path: Path) -> SlurmProvider:
    return SlurmProvider(
        SlurmConfig(
            conf=str(cluster.conf), namespace=NS, log_root=tmp_path / "logs",
            work_root=str(tmp_path / "work"), start_wait_s=1, kill_grace_s=1, fence_s=0,
            down_after_s=5,
        )
    )  # fmt: skip


def _submit(store: Store, stamps: Path, sleep: float, priority: int = 0) -> int:
    run = (
        f'date +%s.%N >> "{stamps}/$INTERCLOUD_JOB_ID-$RANK.start"; sleep {sleep}; '
        f'date +%s.%N >> "{stamps}/$INTERCLOUD_JOB_ID-$RANK.end"'
    )
    spec = f"name: g\nnum_nodes: 2\nresources: {{cpus: '1+'}}\nrun: '{run}'\n"
    return store.submit("training", "g", spec, priority=priority)


def _run_until(rec: Reconciler, done: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the loop did not get there in time"
        if not rec.step():
            time.sleep(0.05)


def _ours(cluster: SlurmCluster) -> dict[str, str]:
    """Our gangs in Slurm's queue: job name -> state."""
    out = cluster.scontrol("-o", "show", "jobs").stdout
    jobs: dict[str, str] = {}
    for line in out.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if f.get("JobName", "").startswith(f"ic-{NS}-"):
            jobs[f["JobName"]] = f.get("JobState", "")
    return jobs


def _live(cluster: SlurmCluster) -> dict[str, str]:
    return {n: s for n, s in _ours(cluster).items() if s in ("PENDING", "RUNNING", "CONFIGURING")}


def _started(stamps: Path, job: int) -> float:
    """When the gang's last rank started; each rank started exactly once."""
    times = []
    for r in (0, 1):
        lines = (stamps / f"{job}-{r}.start").read_text().split()
        assert len(lines) == 1, f"job {job} rank {r} started {len(lines)} times"
        times.append(float(lines[0]))
    return max(times)


def _waves(stamps: Path, jobs: list[int]) -> list[set[int]]:
    order = sorted(jobs, key=lambda j: _started(stamps, j))
    return [set(order[i : i + 2]) for i in range(0, len(order), 2)]


def _all_done(store: Store, jobs: list[int]) -> Callable[[], bool]:
    return lambda: all(store.get(j).state.terminal for j in jobs)


def _assert_succeeded(store: Store, jobs: list[int]) -> None:
    for j in jobs:
        w = store.get(j)
        assert w.state is JobState.SUCCEEDED, (j, w.state, w.reason)
        assert len(store.attempts(j)) == 1, f"job {j} ran {len(store.attempts(j))} attempts"


def test_the_queue_fills_to_its_depth_and_gangs_start_in_intercloud_order(
    slurm_cluster: SlurmCluster, store: Store, tmp_path: Path
) -> None:
    provider = _provider(slurm_cluster, tmp_path)
    assert provider.supports(Capability.QUEUE)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    rec = Reconciler(store, {"slurm": provider})
    # intercloud's order: the two of priority 5 first, then the others oldest first
    jobs = [_submit(store, stamps, 1.5, p) for p in (0, 0, 0, 0, 5, 5)]
    _run_until(rec, lambda: len(_live(slurm_cluster)) == 4)
    live = _live(slurm_cluster)
    assert sorted(live.values()).count("PENDING") >= 1, live
    # the depth (two nodes' worth) bounds what is handed to Slurm: the rest wait here
    states = [store.get(j).state for j in jobs]
    assert states.count(JobState.PENDING) == 2, states
    _run_until(
        rec,
        lambda: any(
            "queued in slurm partition main as job" in (store.get(j).reason or "") for j in jobs
        ),
    )
    _run_until(rec, _all_done(store, jobs))
    _assert_succeeded(store, jobs)
    assert _waves(stamps, jobs) == [set(jobs[4:]), set(jobs[:2]), set(jobs[2:4])]


def test_higher_priority_gangs_withdraw_queued_ones_and_start_first(
    slurm_cluster: SlurmCluster, store: Store, tmp_path: Path
) -> None:
    provider = _provider(slurm_cluster, tmp_path)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    rec = Reconciler(store, {"slurm": provider})
    first = [_submit(store, stamps, 2.5) for _ in range(4)]  # 2 run, 2 wait in Slurm
    _run_until(rec, lambda: sorted(_live(slurm_cluster).values()).count("PENDING") == 2)
    urgent = [_submit(store, stamps, 2.5, priority=9) for _ in range(2)]
    jobs = [*first, *urgent]
    _run_until(rec, _all_done(store, jobs))
    _assert_succeeded(store, jobs)
    # Slurm alone would start the two that waited in its queue next; each urgent gang
    # takes the CPUs of a first one as it ends, the withdrawn ones those of an urgent one
    assert max(_started(stamps, j) for j in urgent) < min(_started(stamps, j) for j in first[2:])
    # the two that waited went back to PENDING (withdrawn), then ran once each
    back = [e for j in first[2:] for e in store.events(j) if e.from_state == "PLACING"]
    withdrawn = {
        e.workload_id for e in back if e.to_state == "PENDING" and "withdrawn" in (e.reason or "")
    }
    assert withdrawn == set(first[2:]), [(e.workload_id, e.to_state, e.reason) for e in back]


def test_a_restarted_loop_finds_the_gangs_waiting_in_slurm_by_name(
    slurm_cluster: SlurmCluster, store: Store, tmp_path: Path
) -> None:
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    provider = _provider(slurm_cluster, tmp_path)
    rec = Reconciler(store, {"slurm": provider})
    jobs = [_submit(store, stamps, 2.0) for _ in range(4)]
    _run_until(rec, lambda: sorted(_live(slurm_cluster).values()).count("PENDING") == 2)
    queued = {n for n, s in _live(slurm_cluster).items() if s == "PENDING"}
    ids = {n: (tmp_path / "work" / NS / n.removeprefix(f"ic-{NS}-") / "slurm-job-id").read_text()
           for n in queued}  # fmt: skip
    # the loop dies: a new one, with a new provider (no memory of the old), takes over
    rec = Reconciler(store, {"slurm": _provider(slurm_cluster, tmp_path)})
    rec.recover()
    _run_until(rec, _all_done(store, jobs))
    _assert_succeeded(store, jobs)
    for n, job_id in ids.items():  # the very Slurm jobs that waited: none submitted again
        rid = n.removeprefix(f"ic-{NS}-")
        assert (tmp_path / "work" / NS / rid / "slurm-job-id").read_text() == job_id
    assert _waves(stamps, jobs)[0] == set(jobs[:2])
