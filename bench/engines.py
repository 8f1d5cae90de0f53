"""The same contended queue of short gang jobs, once through intercloud onto the slurm
provider and once straight to Slurm with ``sbatch``, on one test Slurm cluster.

    .venv/bin/python bench/engines.py [--jobs 200] [--sleep 1.0] [--cpus 8]

The cluster is the tests' (``tests/providers/slurm/slurm_cluster.py``: munged,
slurmctld, two slurmd on this host; needs root and Debian's ``slurm-wlm``), each node
declaring ``--cpus`` CPUs, so ``--cpus`` 2-node gangs of one CPU per rank fit at once and
the queue of ``--jobs`` is contended. Every job is a 2-node gang whose ranks stamp the
time first thing (start) and after sleeping ``--sleep`` seconds (end).

- plain: ``sbatch --nodes=2 --ntasks-per-node=1`` of a script whose ``srun`` runs the
  ranks, all jobs submitted back to back;
- intercloud: ``Client.submit`` of the same gang (``num_nodes: 2``, ``cpus: 1+``), all
  jobs back to back, with only the slurm provider enabled; its daemon (a real one,
  started on demand) places each job when the cluster has room, as a user's would.

Figures: makespan (first submit to last rank's end), mean wait (submit to all ranks
running, per job), and the overhead ratio of the makespans (intercloud / plain), from
one run of each. Appended to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import REPO, append_results, machine

sys.path.insert(0, str(REPO / "tests" / "providers" / "slurm"))
from slurm_cluster import SlurmCluster, missing_binaries

__all__ = ["bench_engines"]

STAMP = (
    'echo "$(date +%s.%N)" > "{stamps}/{tag}-$RANK.start"; sleep {sleep}; '
    'echo "$(date +%s.%N)" > "{stamps}/{tag}-$RANK.end"'
)


def _wait_stamps(stamps: Path, tags: list[str], timeout_s: float) -> None:
    want = {f"{t}-{r}.end" for t in tags for r in (0, 1)}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        have = {p.name for p in stamps.glob("*.end")}
        if want <= have:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{len(want - have)} rank(s) did not end within {timeout_s:g}s")


def _figures(stamps: Path, submitted: dict[str, float]) -> dict[str, float]:
    def stamp(tag: str, rank: int, kind: str) -> float:
        return float((stamps / f"{tag}-{rank}.{kind}").read_text())

    waits = [max(stamp(t, r, "start") for r in (0, 1)) - s for t, s in submitted.items()]
    end = max(stamp(t, r, "end") for t in submitted for r in (0, 1))
    return {
        "makespan_s": end - min(submitted.values()),
        "mean_wait_s": statistics.fmean(waits),
        "p50_wait_s": statistics.median(waits),
        "submit_s": max(submitted.values()) - min(submitted.values()),
    }


def _idle(cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + 60
    while "JobState=" in cluster.scontrol("-o", "show", "jobs").stdout.replace(
        "JobState=COMPLETED", ""
    ).replace("JobState=CANCELLED", ""):
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not go idle")
        time.sleep(0.5)


def run_plain(cluster: SlurmCluster, work: Path, jobs: int, sleep: float) -> dict[str, float]:
    stamps = work / "plain"
    stamps.mkdir()
    script = work / "plain.sh"
    run = STAMP.format(stamps=stamps, tag="p$SLURM_JOB_ID", sleep=sleep).replace(
        "$RANK", "$SLURM_PROCID"
    )
    script.write_text(
        "#!/bin/bash\nexec srun --ntasks=2 --ntasks-per-node=1 bash -c "
        + "'"
        + run.replace("'", "'\\''")
        + "'\n"
    )
    submitted: dict[str, float] = {}
    for _ in range(jobs):
        t = time.time()
        out = subprocess.run(
            ["sbatch", "--parsable", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1",
             f"--output={work}/plain-%j.out", str(script)],
            env=cluster.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        submitted[f"p{out.stdout.strip().split(';')[0]}"] = t
    _wait_stamps(stamps, list(submitted), timeout_s=60 + jobs * sleep * 4)
    return _figures(stamps, submitted)


def run_intercloud(cluster: SlurmCluster, work: Path, jobs: int, sleep: float) -> dict[str, float]:
    home = work / "home"
    home.mkdir()
    stamps = work / "intercloud"
    stamps.mkdir()
    (home / "config.yaml").write_text(
        f"providers:\n  slurm: {{conf: '{cluster.conf}', work_root: '{work / 'slurm-work'}', "
        "start_wait_s: 2, kill_grace_s: 1}\n"
    )
    os.environ["INTERCLOUD_HOME"] = str(home)
    os.environ["INTERCLOUD_DAEMON_IDLE_EXIT"] = "5"
    from intercloud.sdk import Client

    client = Client(home)
    run = STAMP.format(stamps=stamps, tag="i$INTERCLOUD_JOB_ID", sleep=sleep)
    spec = f"name: bench\nnum_nodes: 2\nresources: {{cpus: '1+'}}\nrun: '{run}'\n"
    submitted: dict[str, float] = {}
    try:
        for _ in range(jobs):
            t = time.time()
            sub = client.submit("bench.yaml", text=spec)
            submitted[f"i{sub.job_id}"] = t
        _wait_stamps(stamps, list(submitted), timeout_s=120 + jobs * sleep * 8)
    finally:
        subprocess.run(
            [sys.executable, "-m", "intercloud", "daemon", "stop"],
            env=os.environ.copy(), capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    return _figures(stamps, submitted)


def bench_engines(jobs: int, sleep: float, cpus: int) -> str:
    missing = missing_binaries()
    if missing or os.geteuid() != 0:
        raise SystemExit(f"needs root and Slurm/munge (missing: {', '.join(missing) or '-'})")
    with tempfile.TemporaryDirectory(prefix="ic-bench-engines-") as tmp:
        work = Path(tmp)
        cluster = SlurmCluster(work / "cluster", cpus=cpus)
        try:
            cluster.start()
            subprocess.run(["srun", "-N2", "true"], env=cluster.env, check=True, timeout=60)
            m = machine()
            plain = run_plain(cluster, work, jobs, sleep)
            _idle(cluster)
            ic = run_intercloud(cluster, work, jobs, sleep)
        finally:
            cluster.stop()
    ratio = ic["makespan_s"] / plain["makespan_s"]
    rows = "\n".join(
        f"| {name} | {f['submit_s']:.1f} | {f['makespan_s']:.1f} | {f['mean_wait_s']:.2f} | "
        f"{f['p50_wait_s']:.2f} |"
        for name, f in (("plain sbatch", plain), ("intercloud -> slurm", ic))
    )
    return (
        f"## engines (Slurm) — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC\n\n"
        f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"git {m['git']}, load average at start {m['load']}. Slurm 22.05.8 (Debian), "
        f"2 nodes on this host, {cpus} CPUs each; {jobs} 2-node gangs of 1 CPU per rank, "
        f"each sleeping {sleep:g} s, submitted back to back ({cpus} fit at once).\n\n"
        "| engine | submit all s | makespan s | mean submit-to-all-ranks-running s | "
        "median s |\n|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"Overhead of intercloud over plain Slurm (makespan ratio, one run each): "
        f"**{ratio:.2f}x** (goal <= 1.05x).\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=1.0)
    ap.add_argument("--cpus", type=int, default=8)
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    text = bench_engines(args.jobs, args.sleep, args.cpus)
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
