"""Digital twin benchmark: a simulated year of the 500k-GPU seed fleet with 1M jobs.

    .venv/bin/python bench/twin.py [--quick] [--json] [--no-results] [--sizes 10000,50000]
                                   [--days D] [--profile]

The goal case (issue 12): one simulated year (``--days 365``, the default) of the seed
fleet (500k GPUs) with 1M synthetic jobs, failures on, in at most 60 s on 2 cores, with
mean utilisation >= 0.8 and a non-zero median queueing delay. ``--quick``: a month (30
days, the jobs of a month). Reported per case: wall and CPU seconds, events per wall
second, peak RSS, utilisation and queueing delay p50, and ``util_bound``: the utilisation
a scheduler that started every job at its submission would reach (the trace's GPU-seconds
inside the horizon over the fleet's; work submitted late runs past it, and the
generator's offered load counts that work too, so a short run of long jobs stays well
below its offered load however well it is scheduled).

Per fleet size: the fleet (``examples/fleets/seed-500k.yaml``, at 10k and 50k GPUs with
every pool, guarantee and budget scaled down: ``fleet_of``),
a synthetic trace fitted to the Alibaba openb pod list (``twin.synthetic``; 2 jobs per
fleet GPU per year, i.e. 1M jobs a year at 500k GPUs, offered load 0.9; jobs at most as
large as the pool at the GPU-weighted median, at most 1,024 GPUs and a twentieth of the
fleet: ``job_cap``), failures on
(defaults of ``twin.failures``), fair-share queue order, scheduling every 300 s (a control
loop's period). "year wall" is the wall time extrapolated to 365 days at the measured
simulated-days per second (for runs shorter than a year; the fleet fills in the first
days, so the extrapolation of a short run is optimistic). ``--sizes`` runs the seed
fleet scaled down as well. ``--profile`` runs the largest case under cProfile and
prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, append_results, machine
from intercloud.twin.engine import TwinConfig, simulate
from intercloud.twin.fleet_spec import Fleet, load_fleet
from intercloud.twin.fleets import synthetic_fleet, synthetic_tenants
from intercloud.twin.synthetic import SyntheticTarget, TraceFit, generate
from intercloud.twin.traces.columns import read_columns

_REL = Path("shared/data/traces/alibaba_openb_v2023/openb_pod_list_default.csv")
# the shared data sits next to the checkout (or next to a worktree's parent folder)
TRACE_FILE = next(
    (p / _REL for p in (REPO.parent, REPO.parent.parent) if (p / _REL).exists()),
    REPO.parent / _REL,
)
SEED_FLEET = REPO / "examples" / "fleets" / "seed-500k.yaml"
JOBS_PER_GPU_YEAR = 2.0
TICK_S = 300.0
YEAR_DAYS = 365.0
QUICK_DAYS = 30.0


def fleet_of(gpus: int, seed: int) -> Fleet:
    """The seed fleet scaled to ``gpus`` (every pool's nodes times the same factor, in
    whole NVLink domains, at least one); without the seed file, ``synthetic_fleet``."""
    if not SEED_FLEET.exists():
        pools, contracts = synthetic_fleet(gpus, seed)
        tenants = synthetic_tenants(20, seed, pools)
        return Fleet(
            f"synthetic-{gpus}", "bench", tuple(pools), tuple(contracts), tuple(tenants), None
        )
    # training only: the fleet file's inference services are left out, so figures stay
    # comparable with runs from before it had any
    seed_fleet = replace(load_fleet(SEED_FLEET), services=())
    if gpus == seed_fleet.gpus:
        return seed_fleet
    f = gpus / seed_fleet.gpus
    pools = []
    for p in seed_fleet.pools:
        d = max(1, p.nodes_per_domain)
        pools.append(replace(p, max_nodes=max(d, round(p.max_nodes * f / d) * d)))
    tenants = tuple(
        replace(t, guaranteed_gpus={k: round(v * f) for k, v in t.guaranteed_gpus.items()},
                monthly_budget_usd=None if t.monthly_budget_usd is None
                else t.monthly_budget_usd * f)
        for t in seed_fleet.tenants
    )  # fmt: skip
    return replace(seed_fleet, name=f"seed-500k x {f:g}", pools=tuple(pools), tenants=tenants)


def job_cap(fleet: Fleet) -> int:
    """Gangs never span pools: the largest job is the pool size at the GPU-weighted
    median (half the fleet's GPUs are in pools at least that large), at most 1,024 GPUs
    and a twentieth of the fleet, in whole 8s."""
    sizes = sorted((p.max_gpus for p in fleet.pools if p.max_gpus), reverse=True)
    half, acc = sum(sizes) / 2, 0
    for g in sizes:
        acc += g
        if acc >= half:
            return max(8, min(g, 1024, fleet.gpus // 20) // 8 * 8)
    return 8


def util_bound(submit_s: Any, duration_s: Any, gpus: Any, fleet_gpus: int, days: float) -> float:
    """GPU-seconds of the trace inside ``[0, days)`` if every job ran from its
    submission, over the fleet's GPU-seconds: what no scheduler can beat (failures
    apart: work redone after one counts as used)."""
    h = days * 86_400
    inside = np.clip(np.minimum(duration_s, h - submit_s), 0.0, None)
    return float(np.dot(gpus.astype(np.float64), inside)) / (fleet_gpus * h)


def run_case(gpus: int, days: float, seed: int, fit: TraceFit, profile: bool) -> dict[str, Any]:
    t = time.perf_counter()
    fleet = fleet_of(gpus, seed)
    jobs = max(10, round(JOBS_PER_GPU_YEAR * fleet.gpus * days / 365))
    cap = job_cap(fleet)
    target = SyntheticTarget(
        jobs=jobs, fleet_gpus=fleet.gpus, offered_load=0.9, days=days, max_job_gpus=cap
    )
    trace = generate(fit, target, seed).columns
    bound = util_bound(trace.submit_s, trace.duration_s, trace.gpus, fleet.gpus, days)
    build_s = time.perf_counter() - t
    cfg = TwinConfig(seed=seed, until_s=days * 86_400, tick_s=TICK_S, queue_order="fair_share")
    prof = cProfile.Profile() if profile else None
    t = time.perf_counter()
    cpu = time.process_time()
    if prof is not None:
        prof.enable()
    rep = simulate(fleet, trace, cfg).report
    if prof is not None:
        prof.disable()
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    out: dict[str, Any] = {
        "gpus": fleet.gpus,
        "fleet": fleet.name,
        "pools": len(fleet.pools),
        "days": days,
        "jobs": jobs,
        "max_job_gpus": cap,
        "build_s": round(build_s, 2),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "events": rep.events,
        "events_per_s": round(rep.events / wall) if wall else None,
        "cycles": rep.cycles,
        "sim_days_per_wall_s": round(days / wall, 3) if wall else None,
        "year_wall_s": round(wall * 365 / days, 1),
        "utilization_mean": round(rep.utilization_mean, 3),
        "util_bound": round(bound, 3),
        "queue_delay_p50_s": round(rep.queue_delay_p50_s, 1),
        "completed": rep.jobs_completed,
        "failures": rep.failures,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if prof is not None:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        out["profile"] = _trim(s.getvalue())
    return out


def _trim(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    keep = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")]
    return "\n".join(lines[keep[0] :] if keep else lines)


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    m = machine()
    head = (
        f"## twin — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"({'quick' if quick else 'full'})\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, git {m['git']}, "
        f"load {m['load']}. Failures on, scheduling every {TICK_S:g} s, "
        f"{JOBS_PER_GPU_YEAR:g} jobs per GPU-year at offered load 0.9 (bench/twin.py).\n\n"
        "| GPUs | fleet | days simulated | jobs | events | wall s | CPU s | events/s | "
        "sim days / wall s | year wall s (extrapolated) | util | util bound | queue p50 s | "
        "peak RSS MiB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['gpus']:,} | {r['fleet']} | {r['days']:g} | {r['jobs']:,} | {r['events']:,} | "
        f"{r['wall_s']} | {r['cpu_s']} | {r['events_per_s']:,} | {r['sim_days_per_wall_s']} | "
        f"{r['year_wall_s']:,} | {r['utilization_mean']} | {r['util_bound']} | "
        f"{r['queue_delay_p50_s']} | "
        f"{r['peak_rss_mib']} |\n"
        for r in rows
    )
    prof = "".join(
        f"\nProfile of the {r['gpus']:,}-GPU case (cProfile, by own time; its wall time in "
        "the table includes cProfile's overhead):\n\n```\n"
        f"{r['profile']}\n```\n"
        for r in rows
        if "profile" in r
    )
    return head + body + prof


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_DAYS:g} days, not a year")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    ap.add_argument("--sizes", default="500000", help="fleet GPUs, comma-separated")
    ap.add_argument("--days", type=float, default=None, help="days simulated (default a year)")
    ap.add_argument("--profile", action="store_true", help="profile the largest size")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    fit = TraceFit.from_columns(read_columns(TRACE_FILE, "alibaba_openb"))
    rows = []
    for g in sizes:
        days = a.days or (QUICK_DAYS if a.quick else YEAR_DAYS)
        r = run_case(g, days, a.seed, fit, a.profile and g == max(sizes))
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "profile"}), file=sys.stderr)
    text = render(rows, a.quick)
    print(json.dumps(rows, indent=1) if a.json else text)
    if not a.no_results:
        append_results(text)


if __name__ == "__main__":
    main()
