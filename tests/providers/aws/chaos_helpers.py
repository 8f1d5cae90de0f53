"""Shared pieces of the chaos tests: a real daemon (the CLI) with two providers enabled,
local sites posing as ``gcp`` (dear) and AWS on moto (cheap), and the three invariants
every chaos test ends with (``assert_invariants``):

- **no acknowledged job lost**: every job ``run`` acknowledged is in the store and ended
  as expected;
- **nothing running twice at once**: the job's own script records overlapping runs in
  its checkpoint folder (``DOUBLE_RUN``), and the store's attempts never overlap;
- **no orphaned instance after the sweep**: every EC2 instance tagged with the test's
  cluster is terminated or owned by a live instance row.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from intercloud.store import open_store

REPO = Path(__file__).resolve().parents[3]

#: the local site posing as another cloud, dearer than any small AWS instance
GCP_SITE = "gcp/us-central1/us-central1-a,cpus=8,price=0.15"

#: A training step loop that checkpoints every step and resumes from the last one. It
#: marks a run that starts while another run of the same job is alive (``double``; a
#: run is its pid and process start time, so a reused pid is not mistaken for it, and a
#: killed run not yet reaped, a zombie, is not alive).
CHECKPOINTING_RUN = """\
ck="$INTERCLOUD_CHECKPOINT_DIR"; mkdir -p "$ck"
if [ -f "$ck/pid" ] && read -r p st < "$ck/pid" \
   && [ "$(cut -d' ' -f22 "/proc/$p/stat" 2>/dev/null)" = "$st" ] \
   && ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$p/status" 2>/dev/null; then
  echo DOUBLE >> "$ck/double"
fi
echo "$$ $(cut -d' ' -f22 /proc/$$/stat)" > "$ck/pid"
i=$(cat "$ck/step" 2>/dev/null || echo 0)
echo "attempt $INTERCLOUD_ATTEMPT on $INTERCLOUD_PROVIDER resumes at step $i"
echo "$INTERCLOUD_ATTEMPT $INTERCLOUD_PROVIDER $i" >> "$ck/resumes"
while [ "$i" -lt {steps} ]; do
  i=$((i+1)); echo $i > "$ck/step.tmp"; mv "$ck/step.tmp" "$ck/step"; sleep {step_s}
done
echo "finished at step $i on $INTERCLOUD_PROVIDER"
"""


def env(home: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    out.update(
        INTERCLOUD_HOME=str(home),
        INTERCLOUD_DAEMON_IDLE_EXIT="5",
        INTERCLOUD_LOCAL_SITES=GCP_SITE,
    )
    out.update(extra)
    return out


def ic(
    home: Path, *args: str, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``intercloud ARGS`` on ``home`` (``extra``: environment variables)."""
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=env(home, **extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=REPO,
    )


def write_config(
    home: Path,
    endpoint: str,
    cluster: str,
    image: str,
    *,
    local: bool = True,
    extra: str = "",
) -> None:
    """``config.yaml``: aws on ``endpoint`` (and the local sites when ``local``). The
    agent server listens on a fixed port, as a real deployment's does: agents booted
    under one daemon must reach the next one after a crash."""
    home.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (home / "config.yaml").write_text(
        "providers:\n" + ("  local: {}\n" if local else "") + "  aws:\n"
        "    regions: [us-east-1]\n"
        f"    endpoint_url: '{endpoint}'\n"
        f"    cluster_id: {cluster}\n"
        f"    image_id: {image}\n"
        "    max_attempts: 1\n"
        "    connect_timeout_s: 1\n"
        "    read_timeout_s: 5\n"
        "pools: {idle_s: 2, max_instances: 2}\n"
        f"agent: {{listen: '127.0.0.1:{port}'}}\n" + extra
    )


def submit(home: Path, spec: Path) -> int:
    """Run ``spec`` detached; the acknowledged job id."""
    out = ic(home, "run", str(spec), "--detach")
    assert out.returncode == 0, out.stderr
    jobs = json.loads(ic(home, "status", "--json").stdout)
    return int(max(j["id"] for j in jobs))


def job_status(home: Path, job: int) -> dict[str, Any]:
    out = ic(home, "status", str(job), "--json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def wait_for(
    home: Path, job: int, states: tuple[str, ...], timeout_s: float = 90
) -> dict[str, Any]:
    """The job's status once its state is among ``states`` (AssertionError on timeout,
    with the daemon's log tail)."""
    deadline = time.monotonic() + timeout_s
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        st = job_status(home, job)
        if st["state"] in states:
            return st
        time.sleep(0.5)
    raise AssertionError(f"job {job} is {st.get('state')}, not {states}\n{log_tail(home)}")


def log_tail(home: Path, chars: int = 4000) -> str:
    path = home / "daemon.log"
    return path.read_text()[-chars:] if path.exists() else "(no daemon log)"


def store_of(home: Path) -> Any:
    return open_store(f"sqlite:///{home / 'state.db'}")


def live_ec2(ec2: Any, cluster: str) -> list[str]:
    """Ids of the cluster's EC2 instances that are not terminated."""
    found = ec2.describe_instances(
        Filters=[
            {"Name": "tag:intercloud:cluster", "Values": [cluster]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
    )
    return sorted(i["InstanceId"] for r in found["Reservations"] for i in r["Instances"])


def assert_invariants(
    home: Path, jobs: list[int], ec2: Any, cluster: str, ckpt: Path | None = None
) -> None:
    """The three chaos invariants (module docstring); every job of ``jobs`` SUCCEEDED."""
    store = store_of(home)
    try:
        for job in jobs:
            w = store.get(job)  # raises if the acknowledged job was lost
            assert w.state.value == "SUCCEEDED", (job, w.state, w.reason)
            spans = sorted((a.started_at, a.ended_at) for a in store.attempts(job))
            for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
                assert e1 is not None and e1 <= s2, f"job {job}: attempts overlap: {spans}"
        live_rows = {
            r.provider_instance_id
            for r in store.instances(
                states=["requested", "allocated", "running", "draining", "terminating"]
            )
        }
    finally:
        store.close()
    if ckpt is not None:
        assert not any(ckpt.rglob("double")), "a job ran twice at once"
    orphans = [i for i in live_ec2(ec2, cluster) if i not in live_rows]
    assert orphans == [], f"orphaned instances: {orphans}"
