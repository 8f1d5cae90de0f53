"""Capacity planner benchmark: 84 months x 4 providers x 10 accelerator types, every
pricing option (on-demand, spot, 1- and 3-year reservations, two committed-spend tiers,
Capacity Blocks), availability ramps, a 40 % cap per provider and a 30 % floor for the
primary partner. Goal: the plan solved in at most 2 s on 2 cores.

    .venv/bin/python bench/planner.py [--repeat N] [--no-results] [--exact]

Problem: ``intercloud.contracts.synthetic.synthetic_problem`` (seeded). Figures: wall and
CPU seconds of the plan (``solve_plan``: build, relaxed solve, rounding, re-solve), the
model's size, the plan's gap to the LP bound, and the whole report with its comparison
solves (no caps, all on-demand, each provider alone). With ``--exact`` it also times the
branch-and-bound plan, to show what rounding costs. CPU seconds count every thread of the
process: on a shared machine they are the better measure of the work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime

from benchlib import append_results, machine
from intercloud.contracts.capacity_planner import plan_capacity, solve_plan
from intercloud.contracts.synthetic import synthetic_problem


def _time(fn: object, repeat: int) -> tuple[list[float], list[float], object]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus, out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    ap.add_argument("--exact", action="store_true", help="also time branch and bound")
    args = ap.parse_args()
    m = machine()
    pb = synthetic_problem(months=84, providers=4, accelerators=10)
    walls, cpus, plan = _time(lambda: solve_plan(pb), args.repeat)
    assert plan is not None
    rw, rc, report = _time(lambda: plan_capacity(pb), 1)
    rows = [
        "| what | wall s (median of runs) | min wall s | CPU s (median) | figure |",
        "|---|---|---|---|---|",
        f"| plan (solve_plan) | {statistics.median(walls):.3f} | {min(walls):.3f} "
        f"| {statistics.median(cpus):.3f} | ${plan.total_usd / 1e9:,.3f}B, gap to LP bound "
        f"{plan.gap:.4%}, tiers {plan.tier} |",
        f"| report with 7 solves (plan_capacity) | {rw[0]:.3f} | {rw[0]:.3f} | {rc[0]:.3f} "
        f"| caps cost ${report.caps_cost_usd / 1e9:,.3f}B, all on-demand "  # type: ignore[attr-defined]
        f"${report.all_on_demand_usd / 1e9:,.3f}B |",  # type: ignore[attr-defined]
    ]
    if args.exact:
        ew, ec, exact = _time(lambda: solve_plan(pb, exact=True), 1)
        assert exact is not None
        rows.append(
            f"| plan, branch and bound (exact) | {ew[0]:.3f} | {ew[0]:.3f} | {ec[0]:.3f} "
            f"| ${exact.total_usd / 1e9:,.3f}B (rounded plan "  # type: ignore[attr-defined]
            f"{plan.total_usd / exact.total_usd - 1:+.4%}) |"  # type: ignore[attr-defined]
        )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    text = (
        f"## planner — {when}\n\n"
        f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"git {m['git']}, load average at start {m['load']}.\n\n"
        f"Problem: 84 months x 4 providers x 10 accelerator types, all pricing options, "
        f"caps 40 % / primary 30 %; {args.repeat} runs.\n\n" + "\n".join(rows) + "\n"
    )
    sys.stdout.write(text)
    if not args.no_results:
        append_results(text)


if __name__ == "__main__":
    main()
