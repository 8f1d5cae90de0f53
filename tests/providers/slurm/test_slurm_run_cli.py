"""`intercloud run`, `logs`, `cancel` and `check` end to end on the slurm provider of the
test cluster: a 2-node gang spans n1 and n2, its output comes back, a cancel kills it, and
bad input (unreachable controller, unknown partition, too many GPUs) is one line while
the other providers keep working."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slurm_cluster import SlurmCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from cli_helpers import ic, stop_daemon


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir()
    yield h
    stop_daemon(h)


def _config(home: Path, cluster: SlurmCluster, extra: str = "", local: bool = False) -> None:
    work = home / "slurm-work"
    (home / "config.yaml").write_text(
        "providers:\n"
        + ("  local: {}\n" if local else "")
        + f"  slurm: {{conf: '{cluster.conf}', work_root: '{work}', provision_timeout_s: 10,"
        f" kill_grace_s: 1{extra}}}\n"
    )


def _status(home: Path, job: str) -> dict[str, Any]:
    out = ic(home, "status", job, "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def test_run_a_two_node_gang_on_slurm_its_logs_and_a_cancel(
    slurm_cluster: SlurmCluster, home: Path, tmp_path: Path
) -> None:
    _config(home, slurm_cluster)
    check = ic(home, "check", "--json", timeout=60)
    [slurm] = [p for p in json.loads(check.stdout)["providers"] if p["name"] == "slurm"]
    assert slurm["usable"] and slurm["reachable"], slurm
    assert "main/slurm-2cpu-2xT4-3.9gib" in slurm["offerings"]["slurm"]["examples"], slurm
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: gang\nnum_nodes: 2\nresources: {accelerators: 'T4:1'}\n"
        "run: echo rank $RANK of $WORLD_SIZE on $SLURMD_NODENAME master $MASTER_ADDR "
        "via $INTERCLOUD_PROVIDER\n"
    )
    out = ic(home, "run", str(spec), timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rank 0 of 2 on n1 master 127.0.0.1 via slurm" in out.stdout, out.stdout
    assert "rank 1 of 2 on n2 master 127.0.0.1 via slurm" in out.stdout, out.stdout
    assert "SUCCEEDED" in out.stdout
    job = re.findall(r"\bjob (\d+)", out.stdout + out.stderr)[0]
    logs = ic(home, "logs", job, "--node", "1", timeout=60)
    assert logs.returncode == 0 and "rank 1 of 2 on n2" in logs.stdout, logs.stdout + logs.stderr

    # a CPU-only gang (the nodes' CPUs alone), cancelled while it runs
    spec.write_text(
        "name: long\nnum_nodes: 2\nresources: {cpus: '1+'}\nrun: echo up $RANK; sleep 600\n"
    )
    out = ic(home, "run", "-d", str(spec), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    job = re.findall(r"\bjob (\d+)", out.stdout + out.stderr)[0]
    deadline = time.monotonic() + 60
    while _status(home, job)["state"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.3)
    cancel = ic(home, "cancel", job, timeout=60)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    deadline = time.monotonic() + 60
    while _status(home, job)["state"] != "CANCELLED" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _status(home, job)["state"] == "CANCELLED"
    deadline = time.monotonic() + 30
    while _running_jobs(slurm_cluster) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _running_jobs(slurm_cluster)  # nothing of it runs on the cluster any more


def _running_jobs(cluster: SlurmCluster) -> list[str]:
    out = cluster.scontrol("-o", "show", "jobs").stdout
    return [ln for ln in out.splitlines() if "JobState=RUNNING" in ln]


def test_an_unreachable_controller_or_unknown_partition_is_one_line_and_local_keeps_working(
    slurm_cluster: SlurmCluster, home: Path, tmp_path: Path
) -> None:
    _config(home, slurm_cluster, ", partitions: [gpux]", local=True)
    check = ic(home, "check", timeout=60)
    assert check.returncode != 0, check.stdout
    [line] = [ln for ln in check.stderr.splitlines() if ln.startswith("error: slurm:")]
    assert line == "error: slurm: slurm partition 'gpux' does not exist (it has: main)", line

    conf = tmp_path / "away.conf"  # the same cluster, a controller port nobody answers
    port = f"SlurmctldPort={slurm_cluster.ctld_port}"
    conf.write_text(slurm_cluster.conf.read_text().replace(port, "SlurmctldPort=1"))
    (home / "config.yaml").write_text(f"providers:\n  local: {{}}\n  slurm: {{conf: '{conf}'}}\n")
    check = ic(home, "check", timeout=60)
    assert check.returncode != 0, check.stdout
    [line] = [ln for ln in check.stderr.splitlines() if ln.startswith("error: slurm:")]
    assert "cannot reach the slurm controller" in line, check.stderr
    spec = tmp_path / "job.yaml"
    spec.write_text("name: hello\nresources: {cpus: '1+'}\nrun: echo hi from local\n")
    out = ic(home, "run", str(spec), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hi from local" in out.stdout and "SUCCEEDED" in out.stdout
    assert "Traceback" not in (home / "daemon.log").read_text()


def test_more_gpus_than_any_node_is_one_line_from_run(
    slurm_cluster: SlurmCluster, home: Path, tmp_path: Path
) -> None:
    _config(home, slurm_cluster)
    spec = tmp_path / "job.yaml"
    spec.write_text("name: greedy\nresources: {accelerators: 'T4:4'}\nrun: echo never\n")
    out = ic(home, "run", str(spec), timeout=120)
    assert out.returncode != 0 and out.stdout == "", out.stdout + out.stderr
    [line] = out.stderr.strip().splitlines()
    assert "slurm: offers no T4:4 (has: T4:1, T4:2)" in line, line
