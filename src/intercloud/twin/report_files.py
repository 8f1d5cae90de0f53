"""A twin run written to a folder: ``report.json``, ``series.csv``, PNG plots and an
HTML page that shows them.

Plots need matplotlib (``pip install 'intercloud[plots]'``); without it the JSON, the
CSV and the page (figures without plots) are still written, and ``plots_available()``
says why there are none.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path

from intercloud.twin.metrics import TwinReport

__all__ = ["PLOTS", "plots_available", "write_run"]

#: file name -> title of each plot
PLOTS = {
    "utilization.png": "GPU utilisation over time, by provider",
    "queue.png": "Jobs queued and running",
    "cost.png": "Cumulative cost (USD)",
    "jct_cdf.png": "Job completion time, CDF",
    "services.png": "Inference service replicas, running and target",
}


def plots_available() -> str | None:
    """None when plots can be drawn, else why not (one line)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed: pip install 'intercloud[plots]'"
    return None


def write_run(report: TwinReport, out: Path, title: str = "intercloud twin run") -> list[Path]:
    """Write the run's files into ``out`` (created); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "series.csv"]
    written[0].write_text(report.to_json())
    provs = sorted({p for s in report.series for p in s.allocated_by_provider})
    with written[1].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "allocated_gpus", "utilization", "queued", "running", "cost_usd",
                    *[f"gpus_{p}" for p in provs]])  # fmt: skip
        for s in report.series:
            w.writerow([round(s.t_s, 3), s.allocated_gpus, round(s.utilization, 6), s.queued,
                        s.running, round(s.cost_usd, 2),
                        *[s.allocated_by_provider.get(p, 0) for p in provs]])  # fmt: skip
    if plots_available() is None and report.series:
        written.extend(_plots(report, out, provs))
    page = out / "index.html"
    page.write_text(_html(report, title, [p.name for p in written if p.suffix == ".png"]))
    written.append(page)
    return written


def _plots(report: TwinReport, out: Path, provs: list[str]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [s.t_s / 86_400 for s in report.series]
    paths = []
    fig, ax = plt.subplots(figsize=(8, 3.2))
    fleet = max(report.fleet_gpus, 1)
    ax.stackplot(
        days,
        [[s.allocated_by_provider.get(p, 0) / fleet for s in report.series] for p in provs],
        labels=provs,
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of fleet GPUs")
    ax.legend(loc="upper left", fontsize=8)
    paths.append(_save(fig, ax, out / "utilization.png", PLOTS["utilization.png"]))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(days, [s.queued for s in report.series], label="queued")
    ax.plot(days, [s.running for s in report.series], label="running")
    ax.set_ylabel("jobs")
    ax.legend(loc="upper left", fontsize=8)
    paths.append(_save(fig, ax, out / "queue.png", PLOTS["queue.png"]))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(days, [s.cost_usd for s in report.series])
    ax.set_ylabel("USD")
    paths.append(_save(fig, ax, out / "cost.png", PLOTS["cost.png"]))
    if any(s["series"] for s in report.services):
        fig, ax = plt.subplots(figsize=(8, 3.2))
        for s in report.services:
            pts = s["series"]
            ax.step(
                [p[0] / 86_400 for p in pts],
                [p[2] for p in pts],
                where="post",
                label=f"{s['name']} running",
            )
            ax.step([p[0] / 86_400 for p in pts], [p[1] for p in pts], where="post",
                    linestyle=":", label=f"{s['name']} target")  # fmt: skip
        ax.set_ylabel("replicas")
        ax.legend(loc="upper left", fontsize=8)
        paths.append(_save(fig, ax, out / "services.png", PLOTS["services.png"]))
    if report.jct_quantiles_s:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        q = report.jct_quantiles_s
        ax.plot([x / 3600 for x in q], [i / (len(q) - 1) for i in range(len(q))])
        ax.set_ylabel("share of completed jobs")
        paths.append(_save(fig, ax, out / "jct_cdf.png", PLOTS["jct_cdf.png"], "hours"))
    plt.close("all")
    return paths


def _save(fig: object, ax: object, path: Path, title: str, xlabel: str = "days") -> Path:
    ax.set_title(title)  # type: ignore[attr-defined]
    ax.set_xlabel(xlabel)  # type: ignore[attr-defined]
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=110)  # type: ignore[attr-defined]
    return path


SUMMARY = (
    ("jobs_total", "jobs"),
    ("jobs_completed", "completed"),
    ("jobs_unfinished", "unfinished"),
    ("jobs_unplaceable", "unplaceable"),
    ("utilization_mean", "mean utilisation"),
    ("goodput", "goodput"),
    ("queue_delay_p50_s", "queueing delay p50 (s)"),
    ("queue_delay_p95_s", "queueing delay p95 (s)"),
    ("queue_delay_p99_s", "queueing delay p99 (s)"),
    ("jct_mean_s", "mean JCT (s)"),
    ("makespan_s", "makespan (s)"),
    ("gpu_hours_used", "GPU-hours used"),
    ("gpu_hours_lost", "GPU-hours lost"),
    ("cost_usd", "cost (USD)"),
    ("preemptions", "preemptions"),
    ("events", "events"),
    ("wall_s", "wall time (s)"),
)


def summary_rows(report: TwinReport) -> list[tuple[str, str]]:
    """(label, value) of the headline figures, as the CLI and the page show them."""
    d = report.to_dict()
    out = []
    for key, label in SUMMARY:
        out.append((label, _fmt(d[key])))
    for name in ("failures", "evictions", "cost_by_pricing"):
        for k, v in d[name].items():
            out.append((f"{name.replace('_', ' ')}: {k}", f"{v:,.0f}"))
    ledger = d.get("ledger") or {}
    for c in ledger.get("contracts", ()):
        track = "on track" if c["on_track"] else "NOT on track"
        out.append(
            (
                f"contract {c['name']} (USD)",
                f"spent {c['spent_usd']:,.0f} of {c['committed_usd']:,.0f}, "
                f"projected {c['projected_usd']:,.0f}: {track}",
            )
        )
    for tenant, per in ledger.get("chargeback", {}).items():
        out.append((f"chargeback: {tenant}", f"{sum(per.values()):,.0f}"))
    for s in report.services:
        n = s["name"]
        out.append(
            (f"service {n}: replicas mean / max", f"{s['replicas_mean']:.1f} / {s['replicas_max']}")
        )
        out.append((f"service {n}: unmet share of requests", f"{s['unmet_share']:.4f}"))
        out.append((f"service {n}: time all requests served", f"{s['slo_met_share']:.3f}"))
        out.append((f"service {n}: training jobs preempted", f"{s['training_preempted']:,}"))
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _html(report: TwinReport, title: str, pngs: list[str]) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
        for a, b in summary_rows(report)
    )
    imgs = "\n".join(
        f'<figure><img src="{p}" alt="{html.escape(PLOTS.get(p, p))}"></figure>' for p in pngs
    )
    note = "" if pngs else f"<p>No plots: {html.escape(plots_available() or 'no samples')}</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td{{padding:.1em 1em}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<table>{rows}</table>
{note}{imgs}
<p>All figures: <a href="report.json">report.json</a>, <a href="series.csv">series.csv</a>.</p>
</body></html>
"""
