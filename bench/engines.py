"""The same contended queue of short gang jobs, once through intercloud onto the slurm
provider and once straight to Slurm with ``sbatch``, on one test Slurm cluster.

    .venv/bin/python bench/engines.py [--jobs 200] [--sleep 1.0] [--cpus 8] [--latency 5]

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
running, per job), and the overhead ratios (intercloud / plain), from one run of each.

Then the time from submit to all ranks running on an idle engine: ``--latency`` gangs
(sleeping 0.2 s) submitted one at a time, each after the previous ended, on plain Slurm
(``sbatch``), intercloud -> slurm, and on a local Ray cluster (a head without CPUs and
two workers of ``--cpus`` CPUs, ``ray.cluster_utils``) plain (a ``STRICT_SPREAD``
placement group of two bundles and one task per bundle) and through intercloud onto the
ray provider. ``--latency 0`` skips them. Appended to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _start_s(stamps: Path, tag: str) -> float:
    """When the last rank of ``tag`` started (unix seconds)."""
    return max(float((stamps / f"{tag}-{r}.start").read_text()) for r in (0, 1))


def _latency(submit: Callable[[], str], stamps: Path, gangs: int) -> float:
    """Mean seconds from submit to all ranks running of ``gangs`` gangs submitted one at
    a time (``submit`` returns the gang's stamp tag), each after the previous ended."""
    waits = []
    for _ in range(gangs):
        t = time.time()
        tag = submit()
        _wait_stamps(stamps, [tag], timeout_s=120)
        waits.append(_start_s(stamps, tag) - t)
    return statistics.fmean(waits)


def _idle(cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + 60
    while "JobState=" in cluster.scontrol("-o", "show", "jobs").stdout.replace(
        "JobState=COMPLETED", ""
    ).replace("JobState=CANCELLED", ""):
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not go idle")
        time.sleep(0.5)


def run_plain(
    cluster: SlurmCluster, work: Path, jobs: int, sleep: float, latency: int
) -> dict[str, float]:
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

    def submit() -> str:
        out = subprocess.run(
            ["sbatch", "--parsable", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1",
             f"--output={work}/plain-%j.out", str(script)],
            env=cluster.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return f"p{out.stdout.strip().split(';')[0]}"

    submitted: dict[str, float] = {}
    for _ in range(jobs):
        t = time.time()
        submitted[submit()] = t
    _wait_stamps(stamps, list(submitted), timeout_s=60 + jobs * sleep * 4)
    figures = _figures(stamps, submitted)
    if latency:
        _idle(cluster)
        script.write_text(script.read_text().replace(f"sleep {sleep:g}", "sleep 0.2"))
        figures["latency_s"] = _latency(submit, stamps, latency)
    return figures


def run_intercloud(
    work: Path, provider: str, jobs: int, sleep: float, latency: int
) -> dict[str, float]:
    """``jobs`` gangs back to back through intercloud with only ``provider`` (a line of
    ``config.yaml``) enabled, then ``latency`` gangs one at a time; a home of its own."""
    name = provider.split(":")[0]
    home = work / f"home-{name}"
    home.mkdir()
    stamps = work / f"intercloud-{name}"
    stamps.mkdir()
    (home / "config.yaml").write_text(f"providers:\n  {provider}\n")
    os.environ["INTERCLOUD_HOME"] = str(home)
    os.environ["INTERCLOUD_DAEMON_IDLE_EXIT"] = "5"
    from intercloud.sdk import Client

    client = Client(home)

    def submit(seconds: float) -> str:
        run = STAMP.format(stamps=stamps, tag="i$INTERCLOUD_JOB_ID", sleep=seconds)
        spec = f"name: bench\nnum_nodes: 2\nresources: {{cpus: '1+'}}\nrun: '{run}'\n"
        return f"i{client.submit('bench.yaml', text=spec).job_id}"

    figures: dict[str, float] = {}
    try:
        if jobs:
            submitted: dict[str, float] = {}
            for _ in range(jobs):
                t = time.time()
                submitted[submit(sleep)] = t
            _wait_stamps(stamps, list(submitted), timeout_s=120 + jobs * sleep * 8)
            figures = _figures(stamps, submitted)
        if latency:
            figures["latency_s"] = _latency(lambda: submit(0.2), stamps, latency)
    finally:
        subprocess.run(
            [sys.executable, "-m", "intercloud", "daemon", "stop"],
            env=os.environ.copy(), capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    return figures


def slurm_line(cluster: SlurmCluster, work: Path) -> str:
    return (
        f"slurm: {{conf: '{cluster.conf}', work_root: '{work / 'slurm-work'}', "
        "start_wait_s: 2, kill_grace_s: 1}"
    )


def run_ray(work: Path, cpus: int, latency: int) -> dict[str, float]:
    """Submit to all ranks running on a local Ray cluster, plain and through
    intercloud (module docstring)."""
    import ray
    from ray.cluster_utils import Cluster
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=cpus, memory=2 * 1024**3)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)

        @ray.remote(num_cpus=1)
        def rank_starts() -> float:
            t = time.time()
            time.sleep(0.2)
            return t

        def plain() -> float:
            t = time.time()
            pg = placement_group([{"CPU": 1}] * 2, strategy="STRICT_SPREAD")
            refs: list[Any] = [
                rank_starts.options(
                    scheduling_strategy=PlacementGroupSchedulingStrategy(pg, r)
                ).remote()
                for r in (0, 1)
            ]
            started = max(ray.get(refs))
            remove_placement_group(pg)
            return float(started - t)

        plain()  # the workers' first task process: not a gang's start
        waits = [plain() for _ in range(latency)]
        ray.shutdown()
        ic = run_intercloud(
            work, f"ray: {{address: '{cluster.address}', namespace: bench}}", 0, 0.0, latency
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    return {"plain_s": statistics.fmean(waits), "intercloud_s": ic["latency_s"]}


def bench_engines(jobs: int, sleep: float, cpus: int, latency: int) -> str:
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
            plain = run_plain(cluster, work, jobs, sleep, latency)
            _idle(cluster)
            ic = run_intercloud(work, slurm_line(cluster, work), jobs, sleep, latency)
        finally:
            cluster.stop()
        ray_figures = run_ray(work, cpus, latency) if latency else None
    ratio = ic["makespan_s"] / plain["makespan_s"]
    wait_ratio = ic["mean_wait_s"] / plain["mean_wait_s"]
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
        f"Overhead of intercloud over plain Slurm (one run each): makespan "
        f"**{ratio:.2f}x**, mean wait **{wait_ratio:.2f}x** (goal <= 1.05x).\n"
        + (_latency_table(plain, ic, ray_figures, latency) if ray_figures else "")
    )


def _latency_table(
    plain: dict[str, float], ic: dict[str, float], ray: dict[str, float], gangs: int
) -> str:
    return (
        f"\nSubmit to all ranks running on an idle engine (mean of {gangs} 2-node gangs "
        "submitted one at a time; Ray: a head without CPUs and two workers on this host, "
        "`ray.cluster_utils`):\n\n"
        "| engine | plain s | through intercloud s |\n|---|---|---|\n"
        f"| Slurm | {plain['latency_s']:.2f} | {ic['latency_s']:.2f} |\n"
        f"| Ray | {ray['plain_s']:.2f} | {ray['intercloud_s']:.2f} |\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=1.0)
    ap.add_argument("--cpus", type=int, default=8)
    ap.add_argument("--latency", type=int, default=5, help="gangs one at a time (0: none)")
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    text = bench_engines(args.jobs, args.sleep, args.cpus, args.latency)
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
