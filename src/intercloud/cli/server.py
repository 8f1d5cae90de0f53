"""``intercloud server start``, ``intercloud login`` and ``intercloud admin ...``: the API
server, pointing the CLI at one, and managing its tenants and tokens.

``admin bootstrap`` runs on the server's host against its store; every other ``admin``
command talks to the server (``INTERCLOUD_API_URL`` + ``INTERCLOUD_TOKEN``, or
``intercloud login``) with an admin (or tenant-admin, for its own tokens) token.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from intercloud.cli.errors import bad_input_exits, fail

server_app = typer.Typer(help="The API server (REST, OpenAPI at /openapi.json).")
admin_app = typer.Typer(help="Administer the API server: tokens, tenants, quotas, audit.")
admin_tenants = typer.Typer(help="Tenants on the server.", no_args_is_help=True)
admin_tokens = typer.Typer(help="API tokens on the server.", no_args_is_help=True)
admin_app.add_typer(admin_tenants, name="tenants")
admin_app.add_typer(admin_tokens, name="tokens")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ROLES = ("admin", "tenant-admin", "member", "viewer")


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@server_app.command("start")
def start(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8420,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="Processes (more than 1: PostgreSQL)."),
    ] = 1,
    rate: Annotated[
        float,
        typer.Option("--rate", min=0.001, max=1e6, help="Requests/s per tenant (per process)."),
    ] = 50.0,
    burst: Annotated[
        int, typer.Option("--burst", min=1, max=1_000_000, help="Requests at once per tenant.")
    ] = 100,
) -> None:
    """Serve the API on HOST:PORT over this home's store (blocks; Ctrl-C stops it)."""
    from intercloud.api.context import ApiSettings
    from intercloud.api.server import address_text, check_address, check_workers, serve
    from intercloud.settings import check_all
    from intercloud.store import database_url

    with bad_input_exits():
        check_all()
        check_workers(workers, database_url())
        check_address(host, port)
        settings = ApiSettings(rate=rate, burst=burst)
    _out(
        f"intercloud API on http://{address_text(host, port)} "
        "(OpenAPI: /openapi.json, docs: /docs, dashboard: /ui, metrics: /metrics)"
    )
    with bad_input_exits():
        serve(settings, host, port, workers)


def login(
    url: Annotated[str, typer.Argument(metavar="URL", help="The API server, http(s)://...")],
    token: Annotated[
        str | None,
        typer.Option("--token", help="The token (default: $INTERCLOUD_TOKEN, else asked)."),
    ] = None,
) -> None:
    """Check a token against the server at URL and keep both for later commands."""
    import os

    from intercloud.api.client import RemoteClient, RemoteTarget, check_url, save_login

    with bad_input_exits():
        base = check_url(url, "URL")
        secret = (
            token or os.environ.get("INTERCLOUD_TOKEN") or typer.prompt("token", hide_input=True)
        )
        with RemoteClient(base, secret) as client:
            me = client.whoami()
        path = save_login(RemoteTarget(base, secret))
    _out(f"logged in to {base} as {me['role']} of tenant {me['tenant']} (saved in {path})")


def _remote() -> Any:
    from intercloud.api.client import RemoteClient, remote_target

    target = remote_target()
    if target is None:
        raise fail(
            "no API server: set INTERCLOUD_API_URL and INTERCLOUD_TOKEN, or run "
            "`intercloud login URL`"
        )
    return RemoteClient.from_target(target)


@admin_app.command("bootstrap")
def bootstrap(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant of the admin token.")] = "default",
    force: Annotated[
        bool, typer.Option("--force", help="Make another even if a live admin token exists.")
    ] = False,
) -> None:
    """Print the first admin token (on the server's host, against its store)."""
    from intercloud.api.routes.tokens import issue
    from intercloud.sdk import Client
    from intercloud.settings import check_all
    from intercloud.store.records import Role

    with bad_input_exits():
        check_all()
        with Client(autostart=False) as client:
            store = client.store
            if store.live_admin_tokens() and not force:
                raise fail(
                    "an admin token exists already: create more with `intercloud admin "
                    "tokens create`, or pass --force"
                )
            secret, rec = issue(store, tenant, Role.ADMIN, name="bootstrap")
    _out(secret)
    sys.stderr.write(
        f"admin token {rec.id} ({rec.prefix}...) for tenant {rec.tenant}, expires "
        f"{rec.expires_at:%Y-%m-%d}; shown once: keep it\n"
    )


@admin_tenants.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    quota: Annotated[
        list[str] | None, typer.Option("--quota", metavar="TYPE=N", help="GPU quota.")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget-usd-month", min=0, max=1e12, metavar="USD", help="Monthly budget."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create tenant NAME on the server."""
    from intercloud.cli.tenants import _gpu_counts, _limits_line

    with bad_input_exits():
        limits: dict[str, Any] = {"quotas": _gpu_counts("--quota", quota) or {}}
        if budget is not None:
            limits["monthly_budget_usd"] = budget
        with _remote() as client:
            t = client.create_tenant(name, **limits)
    _out(json.dumps(t, indent=2) if as_json else f"tenant {t['name']} created: {_limits_line(t)}")


@admin_tenants.command("list")
def tenants_list(as_json: JsonOpt = False) -> None:
    """Tenants the token may see, with their limits and usage."""
    from intercloud.cli.tenants import _limits_line

    with bad_input_exits(), _remote() as client:
        rows = client.tenants()
    if as_json:
        _out(json.dumps(rows, indent=2))
        return
    for t in rows:
        _out(f"{t['name']}: {_limits_line(t)}")


@admin_tenants.command("show")
def tenants_show(
    name: Annotated[str, typer.Argument(metavar="NAME")], as_json: JsonOpt = False
) -> None:
    """One tenant: limits, running GPUs, this month's spend."""
    from intercloud.cli.tenants import _gpus, _limits_line, _spend

    with bad_input_exits(), _remote() as client:
        t = client.tenant(name)
    if as_json:
        _out(json.dumps(t, indent=2))
        return
    _out(f"tenant {t['name']}: {_limits_line(t)}")
    _out(f"running GPUs: {_gpus(t['running_gpus'])}; spent in {t['month']}: {_spend(t)} USD")


@admin_app.command("quota")
def quota(
    tenant: Annotated[str, typer.Argument(metavar="TENANT")],
    quota: Annotated[
        list[str] | None, typer.Option("--quota", metavar="TYPE=N", help="Set a GPU quota.")
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget-usd-month", min=0, max=1e12, metavar="USD", help="Monthly budget."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set TENANT's GPU quotas (merged into the current ones) and/or monthly budget."""
    from intercloud.cli.tenants import _gpu_counts, _limits_line

    with bad_input_exits():
        new = _gpu_counts("--quota", quota)
        if new is None and budget is None:
            raise fail("nothing to change: give --quota TYPE=N or --budget-usd-month USD")
        with _remote() as client:
            changes: dict[str, Any] = {}
            if new is not None:
                changes["quotas"] = {**client.tenant(tenant)["quotas"], **new}
            if budget is not None:
                changes["monthly_budget_usd"] = budget
            t = client.set_tenant(tenant, **changes)
    _out(json.dumps(t, indent=2) if as_json else f"tenant {t['name']} updated: {_limits_line(t)}")


def _token_line(t: dict[str, Any]) -> str:
    state = "revoked" if t["revoked_at"] else ("live" if t["live"] else "expired")
    expires = (t["expires_at"] or "never")[:10]
    name = f" '{t['name']}'" if t["name"] else ""
    who = f"{t['role']} of {t['tenant']}"
    return f"token {t['id']}{name} {t['prefix']}... {who}, {state}, expires {expires}"


@admin_tokens.command("create")
def tokens_create(
    tenant: Annotated[str, typer.Option("--tenant", metavar="NAME", help="Its tenant.")],
    role: Annotated[str, typer.Option("--role", metavar="ROLE", help=" | ".join(ROLES))],
    name: Annotated[str, typer.Option("--name", help="A label.")] = "",
    expires_days: Annotated[
        int, typer.Option("--expires-days", min=1, max=3650, help="Days it lasts.")
    ] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print its secret (shown this once)."""
    with bad_input_exits():
        if role not in ROLES:
            raise fail(f"--role: must be one of {', '.join(ROLES)}, not {role!r}")
        with _remote() as client:
            t = client.create_token(tenant, role, name, expires_days)
    if as_json:
        _out(json.dumps(t, indent=2))
        return
    _out(t["secret"])
    sys.stderr.write(_token_line(t) + "; the secret is shown once: keep it\n")


@admin_tokens.command("list")
def tokens_list(
    tenant: Annotated[str | None, typer.Option("--tenant", metavar="NAME")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokens (never their secrets)."""
    with bad_input_exits(), _remote() as client:
        rows = client.tokens(tenant)
    if as_json:
        _out(json.dumps(rows, indent=2))
        return
    for t in rows:
        _out(_token_line(t))


@admin_tokens.command("show")
def tokens_show(
    token_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**31 - 1)],
    as_json: JsonOpt = False,
) -> None:
    """One token."""
    with bad_input_exits(), _remote() as client:
        t = client.token(token_id)
    _out(json.dumps(t, indent=2) if as_json else _token_line(t))


@admin_tokens.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**31 - 1)],
) -> None:
    """Revoke a token at once."""
    with bad_input_exits(), _remote() as client:
        t = client.revoke_token(token_id)
    _out(_token_line(t))


@admin_app.command("audit")
def audit(
    after: Annotated[int, typer.Option("--after", min=0, max=2**31 - 1)] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Mutating API calls: who, what, when, from where, outcome (admins)."""
    with bad_input_exits(), _remote() as client:
        rows = client.audit(after, limit)
    if as_json:
        _out(json.dumps(rows, indent=2))
        return
    for r in rows:
        who = f"token {r['token_id']} ({r['role']} of {r['tenant']})" if r["token_id"] else "-"
        _out(
            f"{r['id']} {r['time'][:19]} {r['client'] or '-'} {who} {r['method']} {r['path']} "
            f"{r['target'] or ''} -> {r['status']} {r['code'] or ''}".rstrip()
        )
