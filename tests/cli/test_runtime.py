"""What a job gets at run time, through `intercloud run` as real processes on the embedded
default: SkyPilot multi-node CPU tasks as gangs, workdir and file mounts, its own
environment (never the daemon's), and every job's placement in `status --json`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import REPO, cli_env, stop_daemon
from cli_helpers import ic as _ic


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"  # does not exist yet: the CLI must create it
    yield h
    stop_daemon(h)


def _env(home: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    # `~/` destinations land in the test's own folder, not in the real home
    return cli_env(home, HOME=str(tmp_path / "user-home"), **extra)


def ic(
    home: Path, tmp_path: Path, *args: str, cwd: Path = REPO, **extra: str
) -> subprocess.CompletedProcess[str]:
    return _ic(home, *args, cwd=cwd, HOME=str(tmp_path / "user-home"), **extra)


def _jobs(home: Path, tmp_path: Path) -> list[dict[str, object]]:
    proc = ic(home, tmp_path, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    jobs: list[dict[str, object]] = json.loads(proc.stdout)
    return jobs


def test_skypilot_multi_node_cpu_task_runs_as_a_gang(home: Path, tmp_path: Path) -> None:
    task = tmp_path / "cluster.yaml"
    task.write_text(
        "name: cpu-cluster\n"
        "num_nodes: 2\n"
        "resources:\n  cpus: 1+\n"
        "run: |\n"
        '  echo "rank=$SKYPILOT_NODE_RANK of=$SKYPILOT_NUM_NODES '
        'ips=$(echo "$SKYPILOT_NODE_IPS" | wc -l) master=$MASTER_ADDR:$MASTER_PORT"\n'
    )
    proc = ic(home, tmp_path, "run", str(task))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "local-cpu x2" in out  # placed (and priced) as 2 nodes
    for rank in (0, 1):
        line = next(ln for ln in out.splitlines() if f"rank={rank} " in ln)
        assert line.startswith(f"[node {rank}] ")
        assert f"rank={rank} of=2 ips=2 master=127.0.0.1:" in line
    logs = ic(home, tmp_path, "logs", "1").stdout
    assert "[node 0] rank=0 of=2" in logs and "[node 1] rank=1 of=2" in logs
    status = json.loads(ic(home, tmp_path, "status", "1", "--json").stdout)
    assert status["nodes"] == 2 and status["kind"] == "training"
    assert status["placement"]["nodes"] == 2 and status["placement"]["planned"] is False
    assert [r["rank"] for r in status["node_runs"]] == [0, 1]
    (listed,) = _jobs(home, tmp_path)
    assert listed["nodes"] == 2 and listed["planned"] is False
    placement = listed["placement"]
    assert isinstance(placement, dict)
    assert {k: placement[k] for k in ("provider", "region", "instance_type", "nodes")} == {
        "provider": "local",
        "region": "local",
        "instance_type": "local-cpu",
        "nodes": 2,
    }
    for key in ("zone", "pricing", "hourly_usd"):
        assert key in placement


def test_workdir_and_file_mounts_on_the_local_provider(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "code").mkdir(parents=True)
    (project / "code" / "train.py").write_text("print('from the workdir')\n")
    (project / "data").mkdir()
    (project / "data" / "x.csv").write_text("a,b\n1,2\n")
    (project / "config.yaml").write_text("lr: 0.1\n")
    shared = tmp_path / "mnt" / "config.yaml"
    spec = project / "job.yaml"
    spec.write_text(
        "kind: training\nname: files\nnum_nodes: 2\n"
        "resources: {cpus: 1+}\n"
        "workdir: code\n"  # relative: to the spec's folder, not the caller's
        "file_mounts:\n"
        "  data: ./data\n"
        f"  {shared}: config.yaml\n"
        "  ~/.cfg/config.yaml: config.yaml\n"
        "setup: test -f train.py\n"
        "run: |\n"
        "  set -e\n"
        "  python train.py\n"
        "  cat data/x.csv\n"
        f"  cat {shared} ~/.cfg/config.yaml\n"
    )
    proc = ic(home, tmp_path, "run", str(spec), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in (0, 1):
        assert f"[node {rank}] from the workdir" in proc.stdout
        assert f"[node {rank}] 1,2" in proc.stdout
        assert proc.stdout.count(f"[node {rank}] lr: 0.1") == 2
    assert (tmp_path / "user-home" / ".cfg" / "config.yaml").read_text() == "lr: 0.1\n"

    # A file missing when the node starts fails the job (it is not silently skipped).
    (project / "config.yaml").unlink()
    proc = ic(home, tmp_path, "run", str(spec.with_name("job.yaml")), cwd=tmp_path)
    assert proc.returncode == 2 and "file_mounts." in proc.stderr  # refused at submission


@pytest.mark.parametrize(
    ("mounts", "field", "needle"),
    [
        ("file_mounts:\n  /data: s3://bucket/data\n", "file_mounts./data", "s3://"),
        ("file_mounts:\n  /data: gs://bucket\n", "file_mounts./data", "gs://"),
        ("file_mounts:\n  /data: ./no-such-dir\n", "file_mounts./data", "does not exist"),
        ("file_mounts:\n  /dev-in: /dev/zero\n", "file_mounts./dev-in", "not a regular file"),
        ("workdir: ./no-such-dir\n", "workdir", "does not exist"),
        ("file_mounts:\n  /ckpt: {name: ckpts, mode: MOUNT}\n", "file_mounts./ckpt", "storage://"),
    ],
)
def test_unsyncable_sources_are_refused_at_submission(
    home: Path, tmp_path: Path, mounts: str, field: str, needle: str
) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(f"num_nodes: 2\nresources: {{cpus: 1+}}\nrun: 'true'\n{mounts}")
    proc = ic(home, tmp_path, "run", str(task))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"{field}: " in lines[0] and needle in lines[0], lines
    assert _jobs(home, tmp_path) == []  # nothing stored


def test_job_environment_is_its_own(home: Path, tmp_path: Path) -> None:
    # The daemon is started by a process that holds a secret: no job may see it.
    started = ic(
        home,
        tmp_path,
        "daemon",
        "start",
        DAEMON_SECRET="daemon-secret",
        INTERCLOUD_DAEMON_IDLE_EXIT="60",  # it must still be the one running the job
    )
    assert started.returncode == 0, started.stderr
    pid = json.loads(ic(home, tmp_path, "daemon", "status", "--json").stdout)["pid"]
    assert "daemon-secret" in Path(f"/proc/{pid}/environ").read_text()
    env_file = tmp_path / "job.env"
    env_file.write_text(
        "# dotenv\nFROM_FILE=file\nSPEC_AND_FILE=file\nALL_THREE=file\nexport QUOTED='a b'\n"
    )
    out = tmp_path / "seen"
    spec = tmp_path / "env.yaml"
    spec.write_text(
        "kind: training\nname: env\nresources: {cpus: 1+}\n"
        "envs: {SPEC_ONLY: spec, SPEC_AND_FILE: spec, ALL_THREE: spec, SPEC_AND_CLI: spec}\n"
        f"run: env > {out}\n"
    )
    proc = ic(
        home,
        tmp_path,
        "run",
        str(spec),
        "--env",
        "ALL_THREE=cli",
        "--env",
        "SPEC_AND_CLI=cli",
        "--env",
        "FROM_CALLER",
        "--env-file",
        str(env_file),
        FROM_CALLER="caller-value",
        CALLER_NOT_PASSED="caller-secret",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(ic(home, tmp_path, "daemon", "status", "--json").stdout)["pid"] == pid
    seen = dict(ln.split("=", 1) for ln in out.read_text().splitlines() if "=" in ln)
    assert "DAEMON_SECRET" not in seen and "CALLER_NOT_PASSED" not in seen
    assert "daemon-secret" not in out.read_text() and "caller-secret" not in out.read_text()
    assert seen["SPEC_ONLY"] == "spec"
    assert seen["SPEC_AND_FILE"] == "file"  # the submitter's variables beat the spec's
    assert seen["SPEC_AND_CLI"] == "cli"
    assert seen["ALL_THREE"] == "cli"  # --env beats --env-file
    assert seen["FROM_FILE"] == "file" and seen["QUOTED"] == "a b"
    assert seen["FROM_CALLER"] == "caller-value"
    assert seen["HOME"] == str(tmp_path / "user-home") and seen["PATH"]
    status = json.loads(ic(home, tmp_path, "status", "1", "--json").stdout)
    names = ["ALL_THREE", "FROM_CALLER", "FROM_FILE", "QUOTED", "SPEC_AND_CLI", "SPEC_AND_FILE"]
    assert status["env_names"] == names  # names only: values are never shown
    text = ic(home, tmp_path, "status", "1").stdout + ic(home, tmp_path, "status", "--json").stdout
    assert "caller-value" not in text and "SPEC_AND_CLI" in text
    assert "caller-value" not in json.dumps(status)

    for args, needle in (
        (("--env", "UNSET_VAR"), "--env UNSET_VAR: not set in your environment"),
        (("--env", "1BAD=x"), "--env 1BAD=x: expected KEY=VALUE"),
        (("--env-file", str(tmp_path / "missing.env")), "missing.env: cannot read"),
    ):
        bad = ic(home, tmp_path, "run", str(spec), *args)
        assert bad.returncode == 2 and needle in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    env_file.write_text("OK=1\nnot a line\n")
    bad = ic(home, tmp_path, "run", str(spec), "--env-file", str(env_file))
    assert bad.returncode == 2 and f"{env_file} line 2: expected KEY=VALUE" in bad.stderr
    assert len(_jobs(home, tmp_path)) == 1  # none of the bad submissions was stored


def test_queued_job_shows_its_planned_placement(home: Path, tmp_path: Path) -> None:
    """A job the loop has not placed yet shows the planner's choice, marked planned."""
    spec = tmp_path / "q.yaml"
    spec.write_text("kind: batch\nname: q\ncount: 3\nresources: {cpus: 1+}\nrun: 'true'\n")
    code = (
        "import sys\nfrom intercloud.sdk import Client\n"
        "with Client(autostart=False) as c:\n    print(c.submit(sys.argv[1]).job_id)\n"
    )
    sub = subprocess.run(
        [sys.executable, "-c", code, str(spec)],
        env=_env(home, tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert sub.returncode == 0, sub.stderr
    (job,) = _jobs(home, tmp_path)
    assert job["state"] == "PENDING" and job["provider"] is None
    assert job["planned"] is True and job["nodes"] == 3  # three tasks, three processes
    placement = job["placement"]
    assert isinstance(placement, dict) and placement["planned"] is True
    assert placement["provider"] == "local" and placement["instance_type"] == "local-cpu"
    assert placement["pricing"] == "on_demand" and placement["hourly_usd"] == 0.0
    text = ic(home, tmp_path, "status", "1").stdout
    assert "(planned, not placed yet), 3 node(s)" in text


def test_a_zone_by_name_or_id_lands_in_that_zone(home: Path, tmp_path: Path) -> None:
    """A SkyPilot task's zone (a name or an AWS zone id) picks the site of that zone, and
    the placement printed and stored names it."""
    sites = "aws/us-east-1/us-east-1a,cpus=2;aws/us-east-1/us-east-1b,cpus=2"
    want = {"us-east-1b": "us-east-1b", "use1-az1": "us-east-1a"}  # ids paired by position
    for i, zone in enumerate(want):
        spec = tmp_path / f"z{i}.yaml"
        spec.write_text(f"resources:\n  cpus: 1+\n  infra: aws/us-east-1/{zone}\nrun: 'true'\n")
        proc = ic(home, tmp_path, "run", str(spec), "--detach", INTERCLOUD_LOCAL_SITES=sites)
        assert proc.returncode == 0, proc.stderr
        assert f"placement: aws/us-east-1/{want[zone]} local-cpu x1" in proc.stdout
    jobs = _jobs(home, tmp_path)
    assert [(j["zone"], j["placement"]["zone"]) for j in jobs] == [  # type: ignore[index]
        (z, z) for z in want.values()
    ]
