"""PNG plots of a capacity plan (matplotlib, headless): commitments and capacity by
provider over time. ``matplotlib`` is an optional dependency (``intercloud[plots]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from intercloud.contracts.capacity_planner import PlanReport
from intercloud.contracts.planner_input import month_hours


class PlotsUnavailable(ValueError):
    """matplotlib is not installed."""


def write_plots(report: PlanReport, out: Path) -> list[Path]:
    """Write ``commitments.png`` (GPUs under reservations and Capacity Blocks per provider)
    and ``capacity.png`` (GPUs supplied per provider) into ``out``; returns their paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable(
            "--out: plots need matplotlib (pip install 'intercloud[plots]')"
        ) from None
    pb, plan = report.problem, report.plan
    out.mkdir(parents=True, exist_ok=True)
    x = np.arange(len(pb.months))
    ticks = [i for i, m in enumerate(pb.months) if m.month == 1 or (i == 0 and m.month < 10)]
    labels = [pb.months[i].strftime("%Y-%m") for i in ticks]
    committed = (
        plan.reserved_1y_active
        + plan.reserved_3y_active
        + plan.capacity_block_instances * pb.gpus_per_instance[:, :, None]
    ).sum(axis=1)
    supplied = plan.supplied_hours.sum(axis=1) / month_hours(pb.months[0], len(pb.months))
    paths = []
    for name, values, title in (
        ("commitments.png", committed, "GPUs under commitment (reservations, Capacity Blocks)"),
        ("capacity.png", supplied, "GPUs supplied by provider"),
    ):
        fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
        ax.stackplot(x, values, labels=list(pb.providers))
        ax.set_title(title)
        ax.set_ylabel("GPUs (monthly average)")
        ax.set_xticks(ticks, labels, rotation=45, ha="right")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
