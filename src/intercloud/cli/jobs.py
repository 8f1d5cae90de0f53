"""Job commands: run, status, logs, cancel, queue, daemon. Thin layer over intercloud.sdk.

Exit codes of ``run`` (and ``status --wait``): 0 succeeded, 1 failed, 2 bad input,
3 cancelled.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from intercloud.cli.errors import bad_input_exits

EXIT_BY_STATE = {"SUCCEEDED": 0, "FAILED": 1, "CANCELLED": 3}

#: Largest id or rank the store holds (SQL INTEGER is 32-bit signed on PostgreSQL).
MAX_ID = 2**31 - 1
JobArg = Annotated[
    int,
    typer.Argument(metavar="JOB", help="Job id (see `intercloud status`).", min=1, max=MAX_ID),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
daemon_app = typer.Typer(help="Manage the embedded control loop (started on demand).")


def _client() -> Any:
    """The API server's client when one is set (``INTERCLOUD_API_URL``, ``intercloud
    login``), else the embedded client, after every ``INTERCLOUD_*`` setting and
    ``config.yaml`` have been validated (a bad one is one line and exit 2 here, before any
    daemon could start with it)."""
    from intercloud.sdk import Client
    from intercloud.settings import check_all, config_given

    remote = _remote_client()
    if remote is not None:
        return remote
    check_all()
    if config_given():  # without one, nothing to validate (and no pydantic to import)
        from intercloud.config import load_config

        load_config()
    return Client()


def _remote_client() -> Any:
    """A ``RemoteClient`` when the CLI is pointed at a server, else None."""
    import os

    from intercloud.settings import home

    if not os.environ.get("INTERCLOUD_API_URL") and not (home() / "login.json").is_file():
        return None  # the embedded default: no httpx import on the hot path
    from intercloud.api.client import RemoteClient, remote_target

    target = remote_target()
    return RemoteClient.from_target(target) if target is not None else None


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _where(p: dict[str, Any] | None) -> str:
    if not p:
        return "-"
    gpus = f" {p['accelerator']}:{p['accelerator_count']}" if p.get("accelerator") else ""
    where = "/".join(str(p.get(k)) for k in ("provider", "region", "zone") if p.get(k))
    return (
        f"{where} {p.get('instance_type')} x{p.get('nodes')}{gpus} {p.get('pricing', '')}".rstrip()
    )


def run(
    spec: Annotated[
        Path, typer.Argument(metavar="SPEC", help="Workload spec (intercloud or SkyPilot YAML).")
    ],
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Submit and return.")] = False,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            metavar="KEY[=VALUE]",
            help=(
                "Set a variable for the job (repeatable); KEY alone takes its value from "
                "your environment. Overrides the spec's envs and --env-file."
            ),
        ),
    ] = None,
    env_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--env-file",
            metavar="FILE",
            help="Read KEY=VALUE lines (dotenv) for the job (repeatable).",
        ),
    ] = None,
) -> None:
    """Submit SPEC, print its placement, stream its logs and exit with its outcome.

    The job's environment is a minimal base (PATH, HOME, LANG, ...), the spec's envs and
    what --env/--env-file give, never the environment of the daemon."""
    import os

    from intercloud.submission import parse_env_options

    with bad_input_exits():
        variables = parse_env_options(env or [], env_file or [], os.environ)
        client = _client()
        sub = client.submit(spec, env=variables)
    choice = sub.plan.choice
    _out(f"job {sub.job_id} '{sub.name}' submitted")
    if choice is not None:
        _out(f"placement: {_where(choice.to_dict())}, {choice.hourly_usd:.4f} USD/h")
    if sub.ignored_fields:
        _out(f"ignored SkyPilot fields: {', '.join(sub.ignored_fields)}")
    if detach:
        _out(f"follow with: intercloud logs {sub.job_id} --follow")
        return
    try:
        with bad_input_exits():  # e.g. the daemon could not start: its reason, exit 1

            def held(reason: str) -> None:  # so a job that waits never looks hung
                _out(f"job {sub.job_id} is pending: {reason}")

            for line in client.logs(sub.job_id, follow=True, on_hold=held):
                sys.stdout.write(line)
                sys.stdout.flush()
            final = client.wait(sub.job_id)
    except KeyboardInterrupt:
        _out(f"\ndetached; job {sub.job_id} keeps running (intercloud cancel {sub.job_id})")
        raise typer.Exit(130) from None
    _out(_final_line(final))
    raise typer.Exit(EXIT_BY_STATE.get(final["state"], 1))


def _final_line(s: dict[str, Any]) -> str:
    extra = f", exit code {s['exit_code']}" if s.get("exit_code") not in (None, 0) else ""
    restarts = f", {s['restarts']} restart(s)" if s.get("restarts") else ""
    reason = f": {s['reason']}" if s.get("reason") and s["state"] != "SUCCEEDED" else ""
    return f"job {s['id']} {s['state']}{extra}{restarts}{reason}"


def status(
    job: Annotated[
        int | None,
        typer.Argument(metavar="JOB", min=1, max=MAX_ID, help="Job id; omit to list all jobs."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A job's state, placement and full story (events), or a table of all jobs.

    With --json every job carries its placement (provider, region, zone, instance type,
    instances, pricing kind, USD per hour; "planned": true while only the planner's
    choice at submission) and its node count."""
    with bad_input_exits():
        client = _client()
        data: Any = client.status(job) if job is not None else client.jobs()
    if as_json:
        _out(json.dumps(data, indent=2))
        return
    if job is None:
        _jobs_table(data, "jobs")
        _failover_lines(client)
        return
    _out(
        f"job {data['id']} '{data['name']}' ({data['kind']}, tenant {data['tenant']}): "
        f"{data['state']}"
    )
    planned = " (planned, not placed yet)" if data.get("planned") else ""
    _out(f"placement: {_where(data['placement'])}{planned}, {data['nodes']} node(s)")
    if data.get("env_names"):
        _out(f"submitted variables: {', '.join(data['env_names'])}")
    _out(
        f"attempts: {len(data['attempts'])}, restarts: {data['restarts']}, "
        f"exit code: {data['exit_code']}"
    )
    for e in data["events"]:
        move = f"{e['from']} -> {e['to']}" if e["to"] else e["kind"]
        _out(f"  {e['time'][:23]}  {move:28}  {e['reason'] or ''}")


def _jobs_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from intercloud.cli.render import plain

    table = Table(title=f"{len(rows)} {title}", title_justify="left")
    for col in ("id", "name", "tenant", "state", "where", "attempt", "reason"):
        table.add_column(col)
    for r in rows:
        where = f"{r['provider']}/{r['region']}" if r["provider"] else "-"
        table.add_row(
            *plain(
                r["id"], r["name"], r["tenant"], r["state"], where, r["attempt"], r["reason"] or ""
            )
        )
    Console(width=160).print(table)


def logs(
    job: JobArg,
    node: Annotated[
        int | None,
        typer.Option("--node", "-n", min=0, max=MAX_ID, metavar="RANK", help="Only this rank."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
) -> None:
    """Print a job's logs (every node, or one with --node)."""
    with bad_input_exits():
        client = _client()
        try:
            for line in client.logs(job, node=node, follow=follow):
                sys.stdout.write(line)
            sys.stdout.flush()
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def cancel(job: JobArg) -> None:
    """Cancel a job: every process of its gang is killed."""
    with bad_input_exits():
        s = _client().cancel(job)
    _out(f"job {s['id']} cancelling (was {s['state']})")


def queue(as_json: JsonOpt = False) -> None:
    """Jobs not finished yet, with why each one waits."""
    with bad_input_exits():
        client = _client()
        rows = client.queue()
    if as_json:
        _out(json.dumps(rows, indent=2))
        return
    _jobs_table(rows, "queued or running")
    _failover_lines(client)


def _failover_lines(client: Any) -> None:
    """Offerings cooling down and providers down, one line each (nothing when none)."""
    held = client.failover()
    for entry in held["down"]:
        _out(f"down: {entry['text']}")
    for entry in held["cooling"]:
        _out(f"cooling: {entry['text']}")


@daemon_app.command("start")
def daemon_start() -> None:
    """Start the control loop in the background (no-op if it runs)."""
    with bad_input_exits():
        pid = _client().ensure_daemon()
    _out(f"daemon running (pid {pid})")


@daemon_app.command("stop")
def daemon_stop() -> None:
    """Stop the control loop (jobs keep running; it adopts them when it starts again)."""
    with bad_input_exits():
        stopped = _client().stop_daemon()
    _out("daemon stopped" if stopped else "daemon was not running")


@daemon_app.command("status")
def daemon_status_cmd(as_json: JsonOpt = False) -> None:
    """Whether the control loop runs, its pid, home and the database it serves."""
    with bad_input_exits():
        st = _client().daemon_status()
    _out(
        json.dumps(st, indent=2, default=str)
        if as_json
        else ", ".join(f"{k}: {v}" for k, v in st.items())
    )
