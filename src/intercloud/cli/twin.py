"""``intercloud twin run``: simulate a job trace on a fleet with the real scheduler.

    intercloud twin run examples/fleets/small-cluster.yaml --trace jobs.csv \\
        --format generic_csv --jobs 5000 --load 0.8 --days 30 --seed 7 --out runs/a

``--jobs N`` (with ``--load`` and ``--days``) replaces the trace by N synthetic jobs
fitted to it (``twin.synthetic``) and scaled to the fleet; without it the trace runs as
read. ``--days`` also bounds the run (default: until every job ended). Bad input (a
fleet file with errors, an unknown format, a trace that cannot be read or is empty) is
one line on stderr and exit 2. The summary goes to stdout (``--json``: the report as
JSON); the progress bar to stderr.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from intercloud.cli.errors import bad_input_exits, check_out_dir, fail

if TYPE_CHECKING:
    from intercloud.twin.failures import FailureModels

#: the most synthetic jobs (--jobs): beyond it the arrays alone exceed a machine's memory
MAX_JOBS = 10_000_000
_YEAR_S = 365 * 86400.0  # the longest scheduling period (--tick)

twin_app = typer.Typer(
    help="The digital twin: run a job trace on a simulated fleet with the real scheduler.",
    no_args_is_help=True,
)


@twin_app.command("run")
def run(
    fleet_file: Annotated[Path, typer.Argument(metavar="FLEET.yaml", help="Fleet description.")],
    trace: Annotated[Path, typer.Option("--trace", metavar="FILE", help="Job trace file.")],
    fmt: Annotated[
        str, typer.Option("--format", metavar="F", help="Trace format (e.g. generic_csv, philly).")
    ] = "generic_csv",
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", metavar="N", help="Scale to N synthetic jobs fitted to the trace."),
    ] = None,
    load: Annotated[
        float, typer.Option("--load", metavar="L", help="Offered load of --jobs (0.9: 90%).")
    ] = 0.9,
    days: Annotated[
        float | None,
        typer.Option("--days", metavar="D", help="Days to simulate (and to spread --jobs over)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Random seed.")] = 0,
    failures: Annotated[
        str, typer.Option("--failures", metavar="on|off", help="Failure models on or off.")
    ] = "on",
    spot_trace: Annotated[
        Path | None,
        typer.Option(
            "--spot-trace",
            metavar="PATH",
            help="Spot reclaim rate from preemption traces (a JSON file or a folder of them).",
        ),
    ] = None,
    queue_order: Annotated[
        str,
        typer.Option("--queue-order", metavar="NAME", help="priority, fair_share or fifo."),
    ] = "priority",
    tick: Annotated[
        float,
        typer.Option("--tick", metavar="S", help="Scheduling period in seconds (0: every change)."),
    ] = 0.0,
    handoff: Annotated[
        float,
        typer.Option(
            "--handoff",
            metavar="S",
            help="Decide this long after a change (a live loop's hand-off latency; 0: off).",
        ),
    ] = 0.0,
    autoscale_interval: Annotated[
        float | None,
        typer.Option(
            "--autoscale-interval",
            metavar="S",
            help="Seconds between the services' autoscaler looks (default: the fleet file's).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Write report.json, series.csv, plots, HTML."),
    ] = None,
) -> None:
    """Run TRACE on FLEET.yaml through the scheduler core and report what happened."""
    if failures not in ("on", "off"):
        raise fail(f"--failures: expected on or off, got {failures!r}")
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        raise fail(f"--jobs: must be in [1, {MAX_JOBS:_}], got {jobs}")
    if seed < 0:  # numpy's generators take no negative seed
        raise fail(f"--seed: must be >= 0, got {seed}")
    if not 0 < load <= 10:
        raise fail(f"--load: must be in (0, 10], got {load}")
    if days is not None and not 0 < days <= 3660:
        raise fail(f"--days: must be in (0, 3660], got {days}")
    if not 0 <= tick <= _YEAR_S:  # also NaN
        raise fail(f"--tick: must be in [0, {_YEAR_S:g}], got {tick}")
    if not 0 <= handoff <= 86_400:
        raise fail(f"--handoff: must be in [0, 86400], got {handoff}")
    if handoff > 0 and tick > 0:
        raise fail("--handoff: give either --tick or --handoff, not both")
    if autoscale_interval is not None and not 10 <= autoscale_interval <= 86_400:
        raise fail(f"--autoscale-interval: must be in [10, 86400], got {autoscale_interval}")
    check_out_dir(out)
    with bad_input_exits():
        fm = _failures(failures == "on", spot_trace)
        opts = _Opts(jobs, load, days, seed, fm, tick, queue_order, as_json, out)
        opts = replace(opts, autoscale_interval=autoscale_interval, handoff=handoff)
        _run(fleet_file, trace, fmt, opts)


def _failures(on: bool, spot_trace: Path | None) -> FailureModels:
    from intercloud.twin.failures import FailureModels
    from intercloud.twin.spot_traces import spot_reclaim_rate

    fm = FailureModels() if on else FailureModels.off()
    if spot_trace is not None and on:
        rate = spot_reclaim_rate(spot_trace)
        fm = fm.with_(spot_reclaims_per_node_day=rate.per_node_day)
    return fm


@dataclass(frozen=True, slots=True)
class _Opts:
    jobs: int | None
    load: float
    days: float | None
    seed: int
    failures: FailureModels
    tick: float
    queue_order: str
    as_json: bool
    out: Path | None
    autoscale_interval: float | None = None
    handoff: float = 0.0


def _run(fleet_file: Path, trace_file: Path, fmt: str, o: _Opts) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from intercloud.twin.engine import TwinConfig, simulate
    from intercloud.twin.fleet_spec import load_fleet
    from intercloud.twin.traces.base import formats
    from intercloud.twin.traces.columns import read_columns

    if fmt not in formats():
        raise fail(f"--format: unknown trace format {fmt!r} (known: {', '.join(formats())})")
    from intercloud.scheduler.queue_order import get_policy

    try:
        get_policy(o.queue_order)
    except KeyError as exc:
        raise fail(f"--queue-order: {exc.args[0]}") from None
    jobs, load, days, seed, out = o.jobs, o.load, o.days, o.seed, o.out
    fleet = load_fleet(fleet_file)
    cols = read_columns(trace_file, fmt)
    if len(cols) == 0:
        raise fail(f"{trace_file}: the trace has no jobs")
    synthetic = None
    if jobs is not None:
        from intercloud.twin.synthetic import SyntheticTarget, TraceFit, generate

        target = SyntheticTarget(
            jobs=jobs, fleet_gpus=max(fleet.gpus, 1), offered_load=load, days=days or 30.0
        )
        gen = generate(TraceFit.from_columns(cols), target, seed)
        cols, synthetic = gen.columns, gen.report
    cfg = TwinConfig(
        seed=seed,
        until_s=None if days is None else days * 86_400.0,
        tick_s=o.tick,
        handoff_s=o.handoff,
        queue_order=o.queue_order,
        failures=o.failures,
        autoscale_interval_s=o.autoscale_interval,
    )
    err = Console(stderr=True)
    with Progress(
        TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("twin", total=1.0)
        result = simulate(fleet, cols, cfg, progress=lambda f: bar.update(task, completed=f))
    report = result.report
    if out is not None:
        from intercloud.twin.report_files import plots_available, write_run

        write_run(report, out, f"{fleet.name}: {trace_file.name}")
        why = plots_available()
        if why is not None:
            err.print(f"no plots: {why}")
    if o.as_json:
        data = json.loads(report.to_json())
        data.pop("series", None)
        if synthetic is not None:
            data["synthetic"] = synthetic.as_dict()
        sys.stdout.write(json.dumps(data, sort_keys=True, indent=1) + "\n")
        return
    _print_summary(report, synthetic, out)


def _print_summary(report: object, synthetic: object, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from intercloud.twin.metrics import TwinReport
    from intercloud.twin.report_files import summary_rows
    from intercloud.twin.synthetic import SyntheticReport

    assert isinstance(report, TwinReport)
    table = Table(title="twin run", show_header=False)
    for label, value in summary_rows(report):
        table.add_row(label, value)
    if isinstance(synthetic, SyntheticReport):
        table.add_row("offered load (synthetic)", f"{synthetic.offered_load:.3f}")
    console = Console()
    console.print(table)
    if out is not None:
        console.print(f"written to {out}/ (report.json, series.csv, index.html)")


@twin_app.command("compare")
def compare(
    a: Annotated[Path, typer.Argument(metavar="A", help="A run folder (or its report.json).")],
    b: Annotated[Path, typer.Argument(metavar="B", help="Another run folder (or report.json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show two runs' headline figures side by side, with B's change from A."""
    with bad_input_exits():
        ra, rb = _load_report(a), _load_report(b)
    from intercloud.twin.report_files import SUMMARY

    rows: list[tuple[str, str, object, object, float | None]] = []
    for key, label in SUMMARY:
        va, vb = ra.get(key), rb.get(key)
        change = None
        if isinstance(va, int | float) and isinstance(vb, int | float) and va:
            change = (vb - va) / abs(va)
        rows.append((key, label, va, vb, change))
    if as_json:
        keys = ("field", "label", "a", "b", "change")
        sys.stdout.write(json.dumps([dict(zip(keys, r, strict=True)) for r in rows]) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{a} vs {b}")
    for col in ("", "A", "B", "B vs A"):
        table.add_column(col, justify="left" if not col else "right")
    for _, label, va, vb, change in rows:
        ch = "" if change is None else f"{100 * change:+.1f}%"
        table.add_row(label, _num(va), _num(vb), ch)
    Console().print(table)


def _num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def _load_report(path: Path) -> dict[str, object]:
    """A run's report.json (``path`` is the run folder or the file): ValueError naming
    the file (and field) when it is missing, not a report or holds a figure that is not a
    finite number."""
    f = path / "report.json" if path.is_dir() else path
    if not f.exists():
        raise ValueError(f"{f}: no such report (run intercloud twin run --out DIR first)")
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{f}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{f}: not JSON (not UTF-8 text)") from None
    if not isinstance(data, dict) or "jobs_total" not in data:
        raise ValueError(f"{f}: not a twin report (no jobs_total)")
    from intercloud.twin.report_files import SUMMARY

    for key, _ in SUMMARY:  # what compare shows: a finite number or null (not measured)
        v = data.get(key)
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
        ):
            raise ValueError(f"{f}: {key}: expected a finite number or null, got {v!r:.60}")
    return data
