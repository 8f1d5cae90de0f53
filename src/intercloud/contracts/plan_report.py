"""A ``PlanReport`` as JSON-ready data and as text lines (what the CLI prints)."""

from __future__ import annotations

from typing import Any

import numpy as np

from intercloud.contracts.capacity_planner import Option, PlanReport


def _money(usd: float | None) -> str:
    if usd is None:
        return "infeasible"
    if abs(usd) < 0.005:  # solver noise: never print "-0.00"
        usd = 0.0
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(usd) >= div:
            return f"${usd / div:,.2f}{unit}"
    return f"${usd:,.2f}"


def _month(pb_month: Any) -> str:
    return str(pb_month.strftime("%Y-%m"))


def commitments(report: PlanReport) -> dict[str, list[dict[str, Any]]]:
    """Per provider, the months in which the plan commits something new."""
    pb, plan = report.problem, report.plan
    out: dict[str, list[dict[str, Any]]] = {}
    for p, name in enumerate(pb.providers):
        rows = []
        for t, m in enumerate(pb.months):
            r1 = {
                a: float(plan.reserved_1y_new[p, i, t])
                for i, a in enumerate(pb.accelerators)
                if plan.reserved_1y_new[p, i, t] > 0.5
            }
            r3 = {
                a: float(plan.reserved_3y_new[p, i, t])
                for i, a in enumerate(pb.accelerators)
                if plan.reserved_3y_new[p, i, t] > 0.5
            }
            cb = {
                a: round(float(plan.capacity_block_instances[p, i, t]))
                for i, a in enumerate(pb.accelerators)
                if plan.capacity_block_instances[p, i, t] > 0.5
            }
            if r1 or r3 or cb:
                rows.append(
                    {
                        "month": _month(m),
                        "reserved_1y_gpus": r1,
                        "reserved_3y_gpus": r3,
                        "capacity_block_instances": cb,
                    }
                )
        out[name] = rows
    return out


def to_json(report: PlanReport) -> dict[str, Any]:
    """The report as plain data (numbers in USD, GPU-hours, GPUs)."""
    pb, plan = report.problem, report.plan
    hours = plan.supplied_hours.sum(axis=1)  # (P, T)
    best = report.best_single_provider
    return {
        "months": [_month(m) for m in pb.months],
        "providers": list(pb.providers),
        "accelerators": list(pb.accelerators),
        "total_usd": plan.total_usd,
        "lower_bound_usd": plan.lower_bound_usd,
        "gap": plan.gap,
        "integer_choices": plan.mip,
        "cost_by_provider": {
            p: {o.value: v for o, v in parts.items()} for p, parts in plan.cost_usd.items()
        },
        "commit_tiers": {
            p: (
                None
                if plan.tier[i] < 0
                else {
                    "commit_usd": float(pb.tier_commit_usd[i, plan.tier[i]]),
                    "discount": float(pb.tier_discount[i, plan.tier[i]]),
                    "shortfall_usd": float(plan.commit_shortfall_usd[i]),
                }
            )
            for i, p in enumerate(pb.providers)
        },
        "commitments": commitments(report),
        "gpu_hours_by_provider": {p: hours[i].tolist() for i, p in enumerate(pb.providers)},
        "share_by_provider": {
            p: plan.provider_share()[i].tolist() for i, p in enumerate(pb.providers)
        },
        "baselines": {
            "all_on_demand_usd": report.all_on_demand_usd,
            "single_provider_usd": report.single_provider_usd,
            "best_single_provider": (
                None if best is None else {"provider": best[0], "usd": best[1]}
            ),
            "uncapped_usd": report.uncapped_usd,
            "caps_cost_usd": report.caps_cost_usd,
        },
        "policy": {
            "max_share": pb.max_share,
            "primary": pb.primary,
            "primary_min_share": pb.primary_min_share,
        },
        "signed_contracts_usd": pb.signed_usd,
        "solve_s": report.solve_s,
    }


def to_text(report: PlanReport) -> list[str]:
    """Human-readable lines: totals, comparisons, cost by provider, what to commit."""
    pb, plan = report.problem, report.plan
    first, last = _month(pb.months[0]), _month(pb.months[-1])
    lines = [
        f"capacity plan {first} .. {last}: {len(pb.months)} months, "
        f"{len(pb.providers)} providers, {len(pb.accelerators)} accelerator types",
        f"total cost          {_money(plan.total_usd)}"
        + (f" (at most {plan.gap:.3%} above the optimum)" if plan.gap > 1e-6 else " (optimal)"),
    ]
    if pb.signed_gpus is not None:
        lines.append(
            f"signed contracts    {_money(pb.signed_usd)} of reserved capacity in the horizon "
            "(already paid; in no total)"
        )
    if report.all_on_demand_usd is not None or report.uncapped_usd is not None:
        lines.append(f"all on-demand       {_money(report.all_on_demand_usd)}")
        best = report.best_single_provider
        single = "infeasible" if best is None else f"{_money(best[1])} ({best[0]})"
        lines.append(f"best one provider   {single}")
        lines.append(f"without caps        {_money(report.uncapped_usd)}")
        lines.append(f"caps cost           {_money(report.caps_cost_usd)}")
    lines.append("")
    options = list(Option)
    lines.append("provider  " + "".join(f"{o.value:>16}" for o in options) + f"{'share':>8}")
    share = plan.supplied_hours.sum(axis=(1, 2))
    share = share / max(float(share.sum()), 1e-9)
    for i, p in enumerate(pb.providers):
        parts = plan.cost_usd[p]
        lines.append(
            f"{p:<10}" + "".join(f"{_money(parts[o]):>16}" for o in options) + f"{share[i]:>8.1%}"
        )
    lines.append("")
    for i, p in enumerate(pb.providers):
        t = plan.tier[i]
        if t >= 0:
            lines.append(
                f"{p}: sign the commit tier of {_money(float(pb.tier_commit_usd[i, t]))} "
                f"({pb.tier_discount[i, t]:.0%} off on-demand)"
            )
    for p, rows in commitments(report).items():
        if not rows:
            continue
        lines.append(f"{p}: new commitments")
        for row in rows:
            bits = [f"1y {a} {g:,.0f} GPUs" for a, g in row["reserved_1y_gpus"].items()]
            bits += [f"3y {a} {g:,.0f} GPUs" for a, g in row["reserved_3y_gpus"].items()]
            bits += [
                f"Capacity Blocks {a} {n} instances"
                for a, n in row["capacity_block_instances"].items()
            ]
            lines.append(f"  {row['month']}  " + "; ".join(bits))
    return lines


def share_range(report: PlanReport) -> tuple[float, float]:
    """Smallest and largest monthly provider share (for checks and summaries)."""
    s = report.plan.provider_share()
    return float(np.min(s)), float(np.max(s))
