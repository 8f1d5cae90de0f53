"""`intercloud run` end to end on the ray provider alone (config.yaml names only it): a
2-node gang runs on the test cluster's two workers and its output comes back."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from cli_helpers import ic, stop_daemon


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir()
    yield h
    stop_daemon(h)


def test_run_a_two_node_gang_on_ray(ray_cluster: Any, home: Path, tmp_path: Path) -> None:
    (home / "config.yaml").write_text(
        f"providers:\n  ray: {{address: '{ray_cluster.address}', namespace: e2e}}\n"
    )
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: gang\nnum_nodes: 2\nresources: {cpus: '1+'}\n"
        "run: echo rank $RANK of $WORLD_SIZE on $INTERCLOUD_PROVIDER\n"
    )
    out = ic(home, "run", str(spec), timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rank 0 of 2 on ray" in out.stdout and "rank 1 of 2 on ray" in out.stdout
    assert "SUCCEEDED" in out.stdout


def test_a_two_node_gpu_gang_takes_one_whole_node_each(
    ray_cluster: Any, home: Path, tmp_path: Path
) -> None:
    """Two nodes of 4 (fake) A100s: one offering of 2 machines, so the scheduler places
    a 2-node gang of 4 GPUs per node (not one 8-GPU machine), and Ray puts one bundle
    on each node (STRICT_SPREAD): each rank sees its own node's 4 GPUs."""
    from ray._private.ray_constants import PROCESS_TYPE_RAYLET

    gpu = {"num_cpus": 1, "num_gpus": 4, "memory": 1024**3}
    nodes = [ray_cluster.add_node(**gpu, resources={"accelerator_type:A100": 1}) for _ in range(2)]
    ray_cluster.wait_for_nodes()
    raylets = {str(n.all_processes[PROCESS_TYPE_RAYLET][0].process.pid) for n in nodes}
    try:
        (home / "config.yaml").write_text(
            f"providers:\n  ray: {{address: '{ray_cluster.address}', namespace: e2e-gpu}}\n"
        )
        spec = tmp_path / "job.yaml"
        spec.write_text(
            "name: gpu-gang\nnum_nodes: 2\nresources: {accelerators: 'A100:4'}\n"
            "run: echo rank $RANK gpus=$CUDA_VISIBLE_DEVICES"
            " raylet=$(cut -d' ' -f4 /proc/$PPID/stat)\n"
        )
        out = ic(home, "run", str(spec), timeout=150)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCEEDED" in out.stdout
        ranks = re.findall(r"rank (\d) gpus=(\S+) raylet=(\d+)", out.stdout)
        assert sorted(r for r, _, _ in ranks) == ["0", "1"], out.stdout
        assert all(len(g.split(",")) == 4 for _, g, _ in ranks), ranks
        assert {r for _, _, r in ranks} == raylets, (ranks, raylets)  # one node each
    finally:
        for n in nodes:
            ray_cluster.remove_node(n)


def _status(home: Path, job: str) -> dict[str, Any]:
    out = ic(home, "status", job, "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def test_a_worker_that_dies_mid_run_is_reported_lost(
    ray_cluster: Any, home: Path, tmp_path: Path
) -> None:
    (home / "config.yaml").write_text(
        f"providers:\n  ray: {{address: '{ray_cluster.address}', namespace: e2e-lost}}\n"
    )
    spec = tmp_path / "job.yaml"
    spec.write_text("name: doomed\nnum_nodes: 2\nresources: {cpus: '1+'}\nrun: sleep 600\n")
    out = ic(home, "run", "-d", str(spec), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    job = re.findall(r"\bjob (\d+)", out.stdout + out.stderr)[0]
    victim = list(ray_cluster.worker_nodes)[-1]
    try:
        deadline = time.monotonic() + 60
        while _status(home, job)["state"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)
        ray_cluster.remove_node(victim)
        deadline = time.monotonic() + 60
        story = ""
        while "lost" not in story and time.monotonic() < deadline:
            story = json.dumps(_status(home, job)).lower()
            time.sleep(0.5)
        assert "ray node lost" in story, story
    finally:
        ic(home, "cancel", job, timeout=60)
        ray_cluster.add_node(num_cpus=2, memory=2 * 1024**3)  # the session cluster as before
        ray_cluster.wait_for_nodes()


def test_an_unreachable_cluster_leaves_the_other_providers_working(
    home: Path, tmp_path: Path
) -> None:
    (home / "config.yaml").write_text("providers:\n  local: {}\n  ray: {address: '127.0.0.1:1'}\n")
    check = ic(home, "check", timeout=60)
    [line] = [ln for ln in check.stdout.splitlines() if "ray" in ln]
    assert "cannot reach ray at 127.0.0.1:1" in line, check.stdout
    spec = tmp_path / "job.yaml"
    spec.write_text("name: hello\nresources: {cpus: '1+'}\nrun: echo hi from local\n")
    out = ic(home, "run", str(spec), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hi from local" in out.stdout and "SUCCEEDED" in out.stdout
    assert "Traceback" not in (home / "daemon.log").read_text()
