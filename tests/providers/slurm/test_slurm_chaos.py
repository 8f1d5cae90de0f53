"""Chaos on the test Slurm cluster, through the real daemon (the CLI):

- a node dies mid-run (its ``slurmd`` and job steps killed): Slurm fails the job, the
  ranks are reported lost, and once the node is back the job resumes on Slurm from its
  checkpoint;
- ``slurmctld`` is killed mid-run with the local provider enabled beside (dearer): the
  ranks stop themselves after ``fence_s``, are reported lost after ``down_after_s``, and
  the job resumes from its checkpoint on the local site.

Every test ends with the invariants of ``chaos_helpers``: no acknowledged job lost,
attempts never overlapping, no rank running twice at once (the job's own check), and
nothing left running on the cluster.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aws"))
from chaos_helpers import CHECKPOINTING_RUN, ic, log_tail, store_of, submit, wait_for

#: steps of the job (0.25 s each): the gang is far from done when the fault comes (at
#: step 3) and when its ranks stop. A dead node's gang is failed once Slurm declares
#: the node down (SlurmdTimeout=5, 15 s and more on a loaded box: the other rank runs
#: on till then); a killed controller's ranks fence themselves ~4 s (16 steps) later, so
#: that test's job is shorter (what is left after its resume is short).
STEPS = 100
STEPS_CONTROLLER_DIES = 64
#: each rank checkpoints in its own folder (two ranks of one gang are not a double run)
RUN = CHECKPOINTING_RUN.replace(
    'ck="$INTERCLOUD_CHECKPOINT_DIR"', 'ck="$INTERCLOUD_CHECKPOINT_DIR/r$RANK"'
)


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir()
    yield h
    ic(h, "daemon", "stop", timeout=60)


def _setup(home: Path, tmp_path: Path, cluster: SlurmCluster, steps: int) -> tuple[Path, Path]:
    ckpt = tmp_path / "ckpt"
    (home / "config.yaml").write_text(
        f"checkpoint_dir: '{ckpt}'\n"
        "providers:\n  local: {}\n"
        f"  slurm: {{conf: '{cluster.conf}', work_root: '{tmp_path / 'work'}', "
        "start_wait_s: 1, provision_timeout_s: 20, kill_grace_s: 1, fence_s: 3, "
        "down_after_s: 8}\n"
    )
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: training\nname: chaos\nnum_nodes: 2\nresources: {cpus: '1+'}\n"
        "restart: {max_restarts: 3}\n"
        "run: |\n"
        + "".join(f"  {ln}\n" for ln in RUN.format(steps=steps, step_s=0.25).splitlines())
    )
    return ckpt, spec


def _wait_step(ckpt: Path, at_least: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [int(p.read_text() or 0) for p in ckpt.rglob("step") if p.read_text().strip()]
        if len(steps) == 2 and min(steps) >= at_least:
            return
        time.sleep(0.3)
    raise AssertionError(f"the gang did not reach step {at_least}")


def _assert_invariants(home: Path, job: int, ckpt: Path, cluster: SlurmCluster) -> list[str]:
    """The job SUCCEEDED, attempts never overlapped, no rank ran twice at once, nothing
    of it runs on the cluster; returns the ranks' resume lines."""
    store = store_of(home)
    try:
        w = store.get(job)
        assert w.state.value == "SUCCEEDED", (w.state, w.reason, log_tail(home))
        spans = sorted((a.started_at, a.ended_at) for a in store.attempts(job))
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            assert e1 is not None and e1 <= s2, f"attempts overlap: {spans}"
    finally:
        store.close()
    assert not any(ckpt.rglob("double")), "a rank ran twice at once"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = cluster.scontrol("-o", "show", "jobs").stdout
        if "JobState=RUNNING" not in out:
            break
        time.sleep(0.5)
    assert "JobState=RUNNING" not in cluster.scontrol("-o", "show", "jobs").stdout
    return [ln for p in sorted(ckpt.rglob("resumes")) for ln in p.read_text().splitlines()]


def test_a_node_dies_mid_run_the_job_resumes_on_slurm_from_its_checkpoint(
    slurm_cluster: SlurmCluster, home: Path, tmp_path: Path
) -> None:
    ckpt, spec = _setup(home, tmp_path, slurm_cluster, steps=STEPS)
    job = submit(home, spec)
    try:
        _wait_step(ckpt, 3)
        slurm_cluster.kill_node("n2")
        story = ""
        deadline = time.monotonic() + 60
        while "slurm node failure" not in story and time.monotonic() < deadline:
            story = ic(home, "status", str(job)).stdout
            time.sleep(0.5)
        assert "slurm node failure on n2" in story, story + log_tail(home)
    finally:
        slurm_cluster.start_node("n2")
        slurm_cluster.wait_idle(["n2"], timeout=60)
    wait_for(home, job, ("SUCCEEDED", "FAILED"), timeout_s=180)
    resumes = _assert_invariants(home, job, ckpt, slurm_cluster)
    # attempt 1 began at step 0 on slurm; a later attempt resumed past it, on slurm
    assert resumes[0].startswith("1 slurm 0"), resumes
    later = [r.split() for r in resumes if not r.startswith("1 ")]
    assert later and all(p == "slurm" and 3 <= int(s) < STEPS for _, p, s in later), resumes


def test_the_controller_dies_mid_run_the_job_resumes_on_local_from_its_checkpoint(
    slurm_cluster: SlurmCluster, home: Path, tmp_path: Path
) -> None:
    ckpt, spec = _setup(home, tmp_path, slurm_cluster, steps=STEPS_CONTROLLER_DIES)
    job = submit(home, spec)
    try:
        _wait_step(ckpt, 3)
        slurm_cluster.kill_controller()
        st = wait_for(home, job, ("SUCCEEDED", "FAILED"), timeout_s=180)
        assert "slurm controller unreachable" in ic(home, "status", str(job)).stdout, st
    finally:
        slurm_cluster.start_controller()
        slurm_cluster.wait_idle(["n1", "n2"], timeout=60)
    resumes = _assert_invariants(home, job, ckpt, slurm_cluster)
    assert resumes[0].startswith("1 slurm 0"), resumes
    later = [r.split() for r in resumes if not r.startswith("1 ")]
    assert later and all(p == "gcp" and 3 <= int(s) < STEPS_CONTROLLER_DIES for _, p, s in later), (
        resumes
    )
