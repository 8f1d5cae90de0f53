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
from intercloud.cli.help import PlainGroup

if TYPE_CHECKING:
    from rich.console import Console

    from intercloud.catalog import Catalog
    from intercloud.model import Workload
    from intercloud.scheduler.planner import Planner, PlanResult

app = typer.Typer(
    name="intercloud",
    cls=PlainGroup,
    help="Intercloud broker and fleet scheduler for AI compute.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        "--catalog", metavar="DIR", help="SkyPilot v8 catalog directory (DIR/CLOUD/vms.csv)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
SpecArg = Annotated[
    Path,
    typer.Argument(metavar="SPEC", help="Workload spec (intercloud or SkyPilot YAML)."),
]
#: Rows ``catalog`` prints as a table unless ``--limit`` says otherwise.
DEFAULT_CATALOG_LIMIT = 200
MAX_TOP = 1000


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    """Intercloud broker and fleet scheduler for AI compute."""
    if ctx.invoked_subcommand is None:  # plain `intercloud`: help, exit 0
        sys.stdout.write(ctx.get_help() + "\n")
        raise typer.Exit(0)


def _console() -> Console:
    from rich.console import Console

    return Console(width=max(160, Console().width))


@app.command()
def plan(
    spec: SpecArg,
    catalog: CatalogOpt = None,
    providers: Annotated[
        str | None,
        typer.Option("--providers", metavar="LIST", help="Enabled providers, e.g. aws,gcp."),
    ] = None,
    throughput: Annotated[
        str | None,
        typer.Option(
            "--throughput",
            metavar="LIST",
            help="Relative-throughput overrides, e.g. H200=3.1,B200=5.",
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            "--top", min=0, max=MAX_TOP, metavar="N", help="Alternatives to show (0-1000)."
        ),
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Choose where SPEC should run: the best placement, ranked alternatives, exclusions."""
    from intercloud.catalog.loader import load_catalog
    from intercloud.cli.options import parse_providers, parse_throughput
    from intercloud.scheduler.planner import Planner
    from intercloud.specs import load_spec_file

    with bad_input_exits():
        check_settings()
        cat = load_catalog(catalog)
        enabled = parse_providers(providers, cat.providers)
        overrides = parse_throughput(throughput, cat.accelerators)
        loaded = load_spec_file(spec, cat)
        planner = Planner(cat, throughput=overrides)
        result = _without_never_fitting(
            planner, cat, loaded.workload, enabled, top, planner.plan(loaded.workload, enabled, top)
        )
    if as_json:
        out = result.to_dict()
        out["source_format"] = loaded.source_format
        out["ignored_fields"] = list(loaded.ignored_fields)
        out["notes"] = list(loaded.notes) + list(out.get("notes", []))
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        from rich.markup import escape

        from intercloud.cli.render import print_plan

        console = _console()
        for note in loaded.notes:
            console.print(f"[dim]note:[/] {escape(note)}")
        print_plan(console, result, loaded.ignored_fields)
    if result.choice is None:
        from intercloud.scheduler.hints import exactness_hint

        reasons = "; ".join(f"{e.provider}: {e.reason}" for e in result.excluded)
        hint = exactness_hint(loaded.workload, planner, enabled)
        raise fail(f"no feasible placement for '{result.workload}' ({reasons}){hint}", code=1)


def _without_never_fitting(
    planner: Planner,
    cat: Catalog,
    workload: Workload,
    enabled: frozenset[str] | None,
    top: int,
    result: PlanResult,
) -> PlanResult:
    """``result`` with the local provider excluded when the gang can never fit this
    machine (the planner sees offerings as unbounded; the local one is not)."""
    from dataclasses import replace

    from intercloud.control.never_fits import split_fitting
    from intercloud.model import Exclusion

    local = [o for o in cat.offerings if o.provider == "local"]
    placed = [c for c in (result.choice, *result.alternatives, *result.best_by_provider) if c]
    _, reasons = split_fitting(workload, [c for c in placed if c.provider == "local"], local)
    if not reasons:
        return result
    others = (enabled if enabled is not None else frozenset(cat.providers)) - {"local"}
    again = planner.plan(workload, others, top) if others else replace(result, choice=None)
    why = Exclusion("local", "; ".join(reasons) + ": the gang can never run on this machine")
    excluded = tuple(e for e in again.excluded if e.provider != "local")
    return replace(
        again,
        choice=again.choice if others else None,
        alternatives=again.alternatives if others else (),
        best_by_provider=again.best_by_provider if others else (),
        excluded=(*excluded, why),
    )


@app.command("catalog")
def catalog_cmd(
    accelerator: Annotated[
        str | None,
        typer.Option("--accelerator", metavar="NAME", help="Only this accelerator, e.g. H100."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", metavar="NAME", help="Only this provider.")
    ] = None,
    catalog: CatalogOpt = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            max=2**31 - 1,
            metavar="N",
            help=f"Rows to print (default {DEFAULT_CATALOG_LIMIT}; 0: all). --json prints all.",
        ),
    ] = DEFAULT_CATALOG_LIMIT,
    offset: Annotated[
        int,
        typer.Option(
            "--offset", min=0, max=2**31 - 1, metavar="N", help="Rows to skip first (paging)."
        ),
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List offerings (instance types, topology, prices); a table shows --limit rows."""
    from dataclasses import asdict

    from intercloud.catalog.loader import load_catalog
    from intercloud.model import canonical_accelerator, canonical_provider

    with bad_input_exits():
        check_settings()
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

    shown = rows[offset : offset + limit] if limit else rows[offset:]
    _console().print(offerings_table(shown, total=len(rows), offset=offset))
    left = len(rows) - offset - len(shown)
    if left > 0:
        sys.stdout.write(
            f"{left} more offering(s) not shown: --offset {offset + len(shown)} for the next "
            f"page, --limit 0 for all, or --json\n"
        )


@app.command()
def schema() -> None:
    """Print the JSON Schema of workload specs."""
    from intercloud.specs import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@app.command()
def validate(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="Workload spec to check.")],
    catalog: CatalogOpt = None,
) -> None:
    """Check a spec against the schema and the catalog; exit 2 with one line if it is bad."""
    from intercloud.catalog.loader import load_catalog
    from intercloud.specs import load_spec_file

    with bad_input_exits():
        check_settings()
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
    from intercloud.cli.twin import twin_app

    app.add_typer(twin_app, name="twin")
    from intercloud.cli.check import check

    app.command()(check)
    from intercloud.cli.fleet import fleet

    app.command()(fleet)
    from intercloud.cli.capacity import capacity_app

    app.add_typer(capacity_app, name="capacity")
    from intercloud.cli import server

    app.add_typer(server.server_app, name="server")
    app.add_typer(server.admin_app, name="admin")
    app.command()(server.login)
    from intercloud.cli.contracts import contracts_app

    app.add_typer(contracts_app, name="contracts")


_register_job_commands()


def check_settings() -> None:
    """Validate every ``INTERCLOUD_*`` setting (SettingError: one line, exit 2)."""
    from intercloud.settings import check_all

    check_all()


# The click exception base of whichever click typer uses (its own copy in typer >= 0.17).
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    Usage errors (unknown option, a value out of range) are one line on stderr and exit
    2, like every other bad input; an unexpected error is one line and exit 70 unless
    ``INTERCLOUD_DEBUG=1`` asks for the traceback.
    """
    import contextlib
    import os

    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="intercloud", standalone_mode=False)
    except _ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        fmt = getattr(exc, "format_message", None)
        message = fmt() if callable(fmt) else str(exc)
        sys.stderr.write("error: " + " ".join(f"{where}{message}".split()) + "\n")
        return int(getattr(exc, "exit_code", 2))
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # `intercloud catalog | head`: the reader left; say nothing
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        from intercloud.settings import debug

        if debug():
            raise
        text = " ".join(str(exc).split())[:200]
        sys.stderr.write(
            f"error: internal error ({type(exc).__name__}: {text}); "
            "INTERCLOUD_DEBUG=1 shows the traceback, please report it\n"
        )
        return 70
    return rv if isinstance(rv, int) else 0


def entrypoint() -> None:
    """Console-script entry: no traceback ever reaches the user for bad input."""
    sys.exit(main())
