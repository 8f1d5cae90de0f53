"""``intercloud fleet [--all] [--json]``: the capacity intercloud holds on instance-backed
providers (its instances and their jobs), the offerings cooling down after a capacity or
quota refusal, and the providers marked down."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from intercloud.cli.errors import bad_input_exits, fail


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _print(view: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from intercloud.cli.render import plain

    console = Console(width=max(160, Console().width))
    rows = view["instances"]
    table = Table(title=f"Instances ({len(rows)})", title_justify="left")
    for col in ("id", "provider", "where", "type", "pricing", "state", "job", "USD/h", "age"):
        table.add_column(col, justify="right" if col in ("id", "USD/h", "age") else "left")
    for r in rows:
        where = "/".join(x for x in (r["region"], r["zone"]) if x)
        job = "idle" if r["job"] is None else f"{r['job']} rank {r['rank']}"
        table.add_row(
            *plain(
                r["id"],
                r["provider"],
                where,
                r["instance_type"],
                r["pricing"],
                r["state"],
                job,
                f"{r['usd_per_hour']:.2f}",
                _age(r["age_s"]),
            )
        )
    console.print(table)
    for c in view["cooling"]:
        console.print(
            *plain(f"cooling down until {c['until']}: {c['offering']} ({c['kind']}): {c['reason']}")
        )
    for p in view["providers"]:
        if p["down_since"]:
            console.print(
                *plain(f"provider {p['name']} is down since {p['down_since']}: {p['error']}")
            )


def fleet(
    include_ended: Annotated[
        bool, typer.Option("--all", help="Also instances that have ended.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Instances, offering cool-downs and providers that are down."""
    from intercloud.cli.jobs import _client

    with bad_input_exits(), _client() as client:
        if not hasattr(client, "fleet"):  # a remote client (INTERCLOUD_API_URL)
            raise fail(
                "intercloud fleet reads the embedded store; through the API server "
                "use GET /v1/fleet (pools, instances, utilisation)"
            )
        view = client.fleet(include_ended=include_ended)
    if as_json:
        sys.stdout.write(json.dumps(view, indent=2) + "\n")
        return
    _print(view)
