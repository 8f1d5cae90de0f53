"""Chaos on the ray provider, through a real daemon (the CLI) with ``local`` enabled
beside ``ray`` (its site posing as a dearer ``gcp``, so work goes to Ray first).

A checkpointing job (``chaos_helpers.CHECKPOINTING_RUN``: it records each resume and
marks a run that starts while another is alive) runs on a Ray cluster of its own:

1. the Ray worker node running it is killed: its node is reported lost, and the job
   resumes from its checkpoint on the other worker, without counting a restart;
2. the head is killed: the cluster stops answering, the provider is down, the job's
   node is reported lost once ``lost_after_s`` has passed (by then Ray has stopped the
   rank: its GCS reconnect timeout is short here), and the job resumes from its
   checkpoint on ``gcp`` and finishes.

Nothing runs twice at once (the run log's ``double`` marker, and the store's attempts
never overlap), and the acknowledged job is not lost. The daemon's log has no traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aws"))
from chaos_helpers import CHECKPOINTING_RUN, ic, log_tail, store_of, submit, wait_for

ray = pytest.importorskip("ray")

#: Ray's own timeout for a lost head (60 s by default): its nodes stop after it
GCS_TIMEOUT_S = "6"
#: steps of the job (1 s each): the head dies at about step 7 and the rank stops about
#: 6 s later (GCS_TIMEOUT_S), far from the end; what is left after the move is short
STEPS = 30


@pytest.fixture()
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A head (no CPUs) and two workers of 2 CPUs, this test's alone (it kills them)."""
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", GCS_TIMEOUT_S)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            c.add_node(num_cpus=2, memory=2 * 1024**3)
        c.wait_for_nodes()
        yield c
    finally:
        for node in [*c.worker_nodes, c.head_node]:
            if node is not None:
                with contextlib.suppress(Exception):
                    node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)


def _node_running(cluster: Any, pid: int) -> Any:
    """The Ray worker node whose raylet is an ancestor of process ``pid``."""
    from ray._private.ray_constants import PROCESS_TYPE_RAYLET

    ancestors = {p.pid for p in psutil.Process(pid).parents()}
    for node in cluster.worker_nodes:
        raylet = node.all_processes[PROCESS_TYPE_RAYLET][0].process.pid
        if raylet in ancestors:
            return node
    raise AssertionError(f"no worker node runs pid {pid}")


def _resumes(ckpt: Path) -> list[tuple[str, str, int]]:
    path = ckpt / "resumes"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(a, p, int(s)) for a, p, s in (ln.split() for ln in lines)]


def _step(ckpt: Path) -> int:
    try:
        return int((ckpt / "step").read_text() or 0)
    except (OSError, ValueError):
        return 0


def _until(cond: Any, home: Path, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"{what}\n{log_tail(home)}"
        time.sleep(0.3)


def test_a_killed_worker_then_a_killed_head_move_the_job_without_running_it_twice(
    cluster: Any, tmp_path: Path
) -> None:
    home, shared = tmp_path / "home", tmp_path / "checkpoints"
    home.mkdir()
    (home / "config.yaml").write_text(
        "providers:\n  local: {}\n"
        f"  ray: {{address: '{cluster.address}', namespace: chaos, call_timeout_s: 5,"
        " lost_after_s: 15, provision_timeout_s: 10}\n"
        f"checkpoint_dir: {shared}\nfailover: {{down_after_s: 3}}\n"
    )
    spec = tmp_path / "train.yaml"
    run = CHECKPOINTING_RUN.format(steps=STEPS, step_s=1)
    spec.write_text(
        "kind: training\nname: train\nresources: {cpus: '2+'}\nrun: |\n"
        + "".join(f"  {line}\n" for line in run.splitlines())
    )
    env = {"RAY_gcs_rpc_server_reconnect_timeout_s": GCS_TIMEOUT_S}
    try:
        job = submit(home, spec)
        st = wait_for(home, job, ("RUNNING",), timeout_s=120)
        assert st["placement"]["provider"] == "ray", st["placement"]
        ckpt = shared / str(job)
        _until(lambda: _step(ckpt) >= 3, home, 60, "the job never reached step 3")

        # 1. the worker node under it dies
        pid = int((ckpt / "pid").read_text().split()[0])
        cluster.remove_node(_node_running(cluster, pid), allow_graceful=False)
        _until(lambda: len(_resumes(ckpt)) >= 2, home, 90, "no resume after the worker died")
        second = _resumes(ckpt)[1]
        assert second[1] == "ray" and second[2] >= 3, _resumes(ckpt)
        at = _step(ckpt)
        _until(lambda: _step(ckpt) >= at + 2, home, 60, "the resumed run makes no progress")

        # 2. the head dies
        cluster.head_node.kill_all_processes(check_alive=False, allow_graceful=False, wait=True)
        st = wait_for(home, job, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=240)
        assert st["state"] == "SUCCEEDED", f"{st}\n{log_tail(home)}"
        assert st["placement"]["provider"] == "gcp", st["placement"]
        assert st["restarts"] == 0, st  # capacity went away: requeued, not restarted
        resumes = _resumes(ckpt)
        assert [r[1] for r in resumes] == ["ray", "ray", "gcp"], resumes
        assert [r[0] for r in resumes] == ["1", "2", "3"], resumes
        assert resumes[2][2] >= at + 2, resumes  # from its checkpoint, not from 0
        assert f"finished at step {STEPS} on gcp" in ic(home, "logs", str(job), **env).stdout

        store = store_of(home)
        try:
            spans = sorted((a.started_at, a.ended_at) for a in store.attempts(job))
            health = {h.name: h for h in store.provider_health()}
            events = " ".join(e.reason or "" for e in store.events(job))
        finally:
            store.close()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            assert e1 is not None and e1 <= s2, f"attempts overlap: {spans}"
        assert not (ckpt / "double").exists(), "the job ran twice at once"
        assert health["ray"].down, health  # the loop saw the provider down
        assert re.search(r"rank 0 lost: ray node lost: \w+Error", events), events  # worker
        # the head: its node lost once fenced, or requeued as its provider is down
        assert "has not answered since" in events or "provider ray is down" in events, events
        assert "Traceback" not in (home / "daemon.log").read_text(), log_tail(home)
    finally:
        ic(home, "daemon", "stop", timeout=60)
