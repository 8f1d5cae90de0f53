"""``intercloud capacity plan DEMAND.yaml --offers OFFERS.yaml [--contracts FILE] [--json]
[--out DIR]``: the long-horizon capacity plan, its baselines and (with ``--out``) PNG plots.

Exit codes: 0 a plan; 2 bad input (one line naming the file and field), including a
demand no mix of offers can meet (the months and types that fall short) and a
diversification policy the offers cannot satisfy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from intercloud.cli.errors import bad_input_exits, check_out_dir

capacity_app = typer.Typer(
    help="Long-horizon capacity planning across providers and pricing options.",
    no_args_is_help=True,
)


@capacity_app.command("plan")
def plan(
    demand: Annotated[
        Path, typer.Argument(metavar="DEMAND.yaml", help="Monthly GPU-hour forecast.")
    ],
    offers: Annotated[
        Path,
        typer.Option("--offers", metavar="OFFERS.yaml", help="Providers' pricing options."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Write commitments.png and capacity.png."),
    ] = None,
    exact: Annotated[
        bool,
        typer.Option("--exact", help="Branch and bound on integer choices (slower)."),
    ] = False,
    no_baselines: Annotated[
        bool, typer.Option("--no-baselines", help="Skip the comparison solves.")
    ] = False,
    contracts: Annotated[
        Path | None,
        typer.Option(
            "--contracts",
            metavar="CONTRACTS.yaml",
            help="Signed contracts: their reserved blocks are capacity already paid for.",
        ),
    ] = None,
) -> None:
    """Cost-minimal mix of on-demand, spot, reservations, Capacity Blocks and commit tiers."""
    from intercloud.contracts.capacity_planner import plan_capacity
    from intercloud.contracts.plan_report import to_json, to_text
    from intercloud.contracts.planner_input import load_problem

    check_out_dir(out)
    with bad_input_exits():
        problem = load_problem(demand, offers)
        if contracts is not None:
            from intercloud.catalog import load_bundled
            from intercloud.contracts.planner_input import with_signed_contracts
            from intercloud.contracts.spec import load_contracts

            catalog = load_bundled()
            signed = load_contracts(contracts, catalog)
            problem = with_signed_contracts(problem, signed, catalog, str(contracts))
        report = plan_capacity(problem, baselines=not no_baselines, exact=exact)
        written: list[Path] = []
        if out is not None:
            from intercloud.contracts.plots import write_plots

            written = write_plots(report, out)
    if as_json:
        data = to_json(report)
        data["plots"] = [str(p) for p in written]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    lines = to_text(report)
    lines += [f"plot: {p}" for p in written]
    sys.stdout.write("\n".join(lines) + "\n")
