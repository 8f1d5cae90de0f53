"""``intercloud`` console script.

Exit codes: 0 success, 1 a workload failed (later issues), 2 bad input, 3 cancelled.
Heavy imports (numpy, pydantic) happen inside commands so ``--help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from intercloud.cli.errors import bad_input_exits, fail

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="intercloud",
    help="Intercloud broker and fleet scheduler for AI compute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", help="SkyPilot v8 catalog directory (<dir>/<cloud>/vms.csv)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _console() -> Console:
    from rich.console import Console

    return Console(width=max(160, Console().width))


@app.command()
def plan(
    spec: Annotated[Path, typer.Argument(help="Workload spec (intercloud or SkyPilot YAML).")],
    catalog: CatalogOpt = None,
    providers: Annotated[
        str | None, typer.Option("--providers", help="Enabled providers, e.g. aws,gcp.")
    ] = None,
    throughput: Annotated[
        str | None,
        typer.Option("--throughput", help="Relative-throughput overrides, e.g. H200=3.1,B200=5."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Alternatives to show.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Choose where SPEC should run: the best placement, ranked alternatives, exclusions."""
    from intercloud.catalog.loader import load_catalog
    from intercloud.cli.options import parse_providers, parse_throughput
    from intercloud.scheduler.planner import Planner
    from intercloud.specs import load_spec_file

    with bad_input_exits():
        cat = load_catalog(catalog)
        enabled = parse_providers(providers, cat.providers)
        overrides = parse_throughput(throughput)
        loaded = load_spec_file(spec, cat)
        result = Planner(cat, throughput=overrides).plan(loaded.workload, enabled, top=top)
    if as_json:
        out = result.to_dict()
        out["source_format"] = loaded.source_format
        out["ignored_fields"] = list(loaded.ignored_fields)
        out["notes"] = list(loaded.notes) + list(out.get("notes", []))
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        from intercloud.cli.render import print_plan

        console = _console()
        for note in loaded.notes:
            console.print(f"[dim]note:[/] {note}")
        print_plan(console, result, loaded.ignored_fields)
    if result.choice is None:
        reasons = "; ".join(f"{e.provider}: {e.reason}" for e in result.excluded)
        raise fail(f"no feasible placement for '{result.workload}' ({reasons})", code=1)


@app.command("catalog")
def catalog_cmd(
    accelerator: Annotated[
        str | None, typer.Option("--accelerator", help="Only this accelerator, e.g. H100.")
    ] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    catalog: CatalogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List offerings (instance types, topology, prices)."""
    from dataclasses import asdict

    from intercloud.catalog.loader import load_catalog
    from intercloud.model import canonical_accelerator, canonical_provider

    with bad_input_exits():
        cat = load_catalog(catalog)
        prov = canonical_provider(provider) if provider else None
        if prov is not None and prov not in cat.providers:
            raise fail(
                f"--provider: unknown provider '{provider}' (known: {', '.join(cat.providers)})"
            )
        acc = None
        if accelerator is not None:
            acc = canonical_accelerator(accelerator) or accelerator
            if acc not in cat.accelerators:
                known = ", ".join(sorted(cat.accelerators))
                raise fail(f"--accelerator: unknown accelerator '{accelerator}' (known: {known})")
        rows = cat.filter(provider=prov, accelerator=acc).offerings
    if as_json:
        sys.stdout.write(json.dumps([asdict(o) for o in rows], indent=1) + "\n")
        return
    from intercloud.cli.render import offerings_table

    _console().print(offerings_table(rows))


@app.command()
def schema() -> None:
    """Print the JSON Schema of workload specs."""
    from intercloud.specs import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def validate(
    spec: Annotated[Path, typer.Argument(help="Workload spec to check.")],
    catalog: CatalogOpt = None,
) -> None:
    """Check a spec against the schema and the catalog; exit 2 with one line if it is bad."""
    from intercloud.catalog.loader import load_catalog
    from intercloud.specs import load_spec_file

    with bad_input_exits():
        loaded = load_spec_file(spec, load_catalog(catalog))
    w = loaded.workload
    ignored = f" (ignored: {', '.join(loaded.ignored_fields)})" if loaded.ignored_fields else ""
    sys.stdout.write(f"ok: {w.kind} '{w.name}' ({loaded.source_format} format){ignored}\n")


def _register_job_commands() -> None:
    from intercloud.cli import jobs

    for fn in (jobs.run, jobs.status, jobs.logs, jobs.cancel, jobs.queue):
        app.command()(fn)
    app.add_typer(jobs.daemon_app, name="daemon")
    from intercloud.cli.tenants import tenants_app

    app.add_typer(tenants_app, name="tenants")


_register_job_commands()


def entrypoint() -> None:
    """Console-script entry: no traceback ever reaches the user for bad input."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
