"""Rich rendering of plans and catalogs for humans (``--json`` bypasses this)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from intercloud.model import Offering, Placement

if TYPE_CHECKING:
    from intercloud.scheduler.planner import PlanResult


def plain(*values: object) -> list[Text]:
    """Table cells shown as written: data (names from a catalog or a spec) is never read
    as rich markup, so a region called ``[/x]`` prints instead of failing."""
    return [Text(str(v)) for v in values]


def _money(x: float) -> str:
    return f"{x:,.2f}" if x >= 1 else f"{x:.4f}"


def placement_table(title: str, rows: Sequence[Placement], best_total: float | None) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("provider", "region", "zone", "instance type", "nodes", "GPUs", "pricing"):
        table.add_column(col)
    for col in ("USD/h", "hours", "egress USD", "total USD", "vs choice"):
        table.add_column(col, justify="right")
    for p in rows:
        gpus = f"{p.accelerator}:{p.accelerator_count} x{p.nodes}" if p.accelerator else "-"
        delta = "" if best_total is None else f"{p.total_usd - best_total:+,.2f}"
        table.add_row(
            *plain(
                p.provider,
                p.region,
                p.zone or "-",
                p.instance_type,
                str(p.nodes),
                gpus,
                p.pricing.value,
                _money(p.hourly_usd),
                f"{p.duration_hours:.2f}",
                _money(p.egress_usd),
                _money(p.total_usd),
                delta,
            )
        )
    return table


def print_plan(console: Console, result: PlanResult, ignored: Iterable[str] = ()) -> None:
    if result.choice is None:
        console.print(f"[bold red]No placement for {escape(result.workload)}[/]")
    else:
        console.print(
            placement_table(f"Choice for {escape(result.workload)}", [result.choice], None)
        )
    if result.alternatives:
        best = result.choice.total_usd if result.choice else None
        console.print(placement_table("Alternatives", list(result.alternatives), best))
    if result.choice is not None:
        best = result.choice.total_usd
        for p in result.best_by_provider:
            extra = p.total_usd - best
            pct = f" ({100 * extra / best:+.1f}%)" if best > 0 else ""
            # Under an ordered accelerator preference a cheaper offer can lose.
            why = "more" if extra >= 0 else "less, but the ordered preference comes first"
            console.print(
                "[cyan]lost[/] "
                + escape(
                    f"{p.provider}: best is {p.instance_type} x{p.nodes} in {p.region} "
                    f"{p.pricing.value} at {_money(p.hourly_usd)}/h, total {_money(p.total_usd)}: "
                    f"{abs(extra):,.2f} USD {why}{pct}"
                )
            )
    for ex in result.excluded:
        console.print(f"[yellow]excluded[/] {escape(ex.provider)}: {escape(ex.reason)}")
    for note in result.notes:
        console.print(f"[dim]note:[/] {escape(note)}")
    ignored = tuple(ignored)
    if ignored:
        console.print(f"[dim]ignored SkyPilot fields:[/] {escape(', '.join(ignored))}")


def offerings_table(rows: Sequence[Offering], total: int | None = None, offset: int = 0) -> Table:
    """``rows`` as a table; ``total`` (when more exist) and ``offset`` go in its title."""
    title = f"{len(rows)} offerings"
    if total is not None and total != len(rows):
        title = (
            f"offerings {offset + 1}-{offset + len(rows)} of {total}"
            if rows
            else (f"no offerings from {offset + 1} (of {total})")
        )
    table = Table(title=title, title_justify="left")
    for col in ("provider", "region", "zone", "instance type", "GPUs", "NVLink domain"):
        table.add_column(col)
    for col in ("vCPU", "mem GiB", "on-demand USD/h", "spot USD/h"):
        table.add_column(col, justify="right")
    for o in rows:
        gpus = f"{o.accelerator}:{o.accelerator_count}" if o.is_gpu else "-"
        domain = f"{o.nvlink_domain_gpus} GPUs / {o.instances_per_domain} inst" if o.is_gpu else "-"
        table.add_row(
            *plain(
                o.provider,
                o.region,
                o.zone or "-",
                o.instance_type,
                gpus,
                domain,
                f"{o.vcpus:g}",
                f"{o.memory_gib:g}",
                _money(o.on_demand_price),
                "-" if o.spot_price is None else _money(o.spot_price),
            )
        )
    return table
