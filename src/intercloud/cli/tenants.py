"""``intercloud tenants create|list|show|set``: tenants and their limits (quotas,
guarantees, monthly budget, weight) over the store. Thin layer over ``intercloud.sdk``.

Every option value is parsed here, before anything is stored, so bad input is one line
naming the option and exit 2 with nothing changed.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any

import typer

from intercloud.cli.errors import bad_input_exits, fail

tenants_app = typer.Typer(
    help="Tenants (teams) and their limits: GPU guarantees and quotas, weight, budget.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Tenant name (letters, digits, '.', '_', '-').")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
WeightOpt = Annotated[
    str | None,
    typer.Option("--weight", metavar="NUMBER", help="Fair-share weight, 1e-6 to 1e6 (default 1)."),
]
BudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--budget-usd-month",
        metavar="USD",
        help="Monthly budget in USD, up to 1e12 (UTC calendar months).",
    ),
]
GuaranteeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--guarantee",
        metavar="TYPE=N",
        help="Guaranteed GPUs of a type (repeat or comma-separate: H100=8,A100=4).",
    ),
]
QuotaOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--quota",
        metavar="TYPE=N",
        help="At most N GPUs of a type running at once, borrowed ones included.",
    ),
]


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _client() -> Any:
    from intercloud.cli.jobs import _remote_client
    from intercloud.sdk import Client

    return _remote_client() or Client(autostart=False)


def _number(option: str, value: str | None, low: float, high: float) -> float | None:
    """``value`` as a number from ``low`` to ``high`` (the store's bounds), else one line
    naming ``option``."""
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not low <= x <= high:  # NaN fails too
        raise fail(f"{option}: {value!r} must be a number from {low:g} to {high:g}")
    return x


def _max_gpus() -> int:
    from intercloud.store.repository import MAX_TENANT_GPUS

    return MAX_TENANT_GPUS


def _weight(value: str | None) -> float | None:
    from intercloud.store.repository import MAX_TENANT_WEIGHT, MIN_TENANT_WEIGHT

    return _number("--weight", value, MIN_TENANT_WEIGHT, MAX_TENANT_WEIGHT)


def _budget(value: str | None) -> float | None:
    from intercloud.store.repository import MAX_TENANT_BUDGET_USD

    return _number("--budget-usd-month", value, 0.0, MAX_TENANT_BUDGET_USD)


def _gpu_counts(option: str, items: list[str] | None) -> dict[str, int] | None:
    """``["H100=8", "A100=4,L4=2"]`` -> canonical type -> count; one line naming
    ``option`` for a malformed item, an unknown type, a type given twice, a bad count."""
    if items is None:
        return None
    from intercloud.model import canonical_accelerator

    out: dict[str, int] = {}
    for item in (p.strip() for raw in items for p in raw.split(",")):
        name, sep, number = item.partition("=")
        if not sep or not name.strip():
            raise fail(f"{option}: {item!r} must be TYPE=N, e.g. H100=8")
        canon = canonical_accelerator(name)
        if canon is None:
            raise fail(f"{option}: unknown GPU type {name.strip()!r}")
        if canon in out:
            raise fail(f"{option}: {canon} given twice")
        number = number.strip()
        if not number.isdigit() or len(number) > 10 or int(number) > _max_gpus():
            raise fail(
                f"{option}: {item!r}: the count must be a whole number of GPUs "
                f"from 0 to {_max_gpus()}"
            )
        out[canon] = int(number)
    return out


def _check_quota_covers_guarantee(
    guarantees: dict[str, int], quotas: dict[str, int], which: str
) -> None:
    for g, q in quotas.items():
        if q < guarantees.get(g, 0):
            raise fail(
                f"{which}: {g}={q} is below the guarantee of {guarantees[g]} "
                "(a quota caps all running GPUs of the type, guaranteed ones included)"
            )


def create(
    name: NameArg,
    weight: WeightOpt = None,
    budget: BudgetOpt = None,
    guarantee: GuaranteeOpt = None,
    quota: QuotaOpt = None,
    borrow: Annotated[
        bool,
        typer.Option(
            "--borrow/--no-borrow",
            help="May run beyond its guarantees on idle GPUs (reclaimable). Default: yes.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Create tenant NAME (the default tenant `default` always exists)."""
    from intercloud.sdk_tenants import check_tenant_name

    with bad_input_exits():
        check_tenant_name(name, "NAME")
        limits: dict[str, Any] = {"can_borrow": borrow}
        w = _weight(weight)
        if w is not None:
            limits["weight"] = w
        limits["monthly_budget_usd"] = _budget(budget)
        limits["guarantees"] = _gpu_counts("--guarantee", guarantee) or {}
        limits["quotas"] = _gpu_counts("--quota", quota) or {}
        _check_quota_covers_guarantee(limits["guarantees"], limits["quotas"], "--quota")
        with _client() as client:
            t = client.create_tenant(name, **limits)
    if as_json:
        _out(json.dumps(t, indent=2))
        return
    _out(f"tenant {t['name']} created: {_limits_line(t)}")


def set_(
    name: NameArg,
    weight: WeightOpt = None,
    budget: BudgetOpt = None,
    no_budget: Annotated[
        bool, typer.Option("--no-budget", help="Remove the monthly budget.")
    ] = False,
    guarantee: GuaranteeOpt = None,
    no_guarantees: Annotated[
        bool,
        typer.Option("--no-guarantees", help="Remove every guarantee (before any --guarantee)."),
    ] = False,
    quota: QuotaOpt = None,
    no_quotas: Annotated[
        bool, typer.Option("--no-quotas", help="Remove every quota (before any --quota).")
    ] = False,
    borrow: Annotated[
        bool | None,
        typer.Option("--borrow/--no-borrow", help="May run beyond its guarantees on idle GPUs."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change tenant NAME's limits (`default` too).

    --guarantee/--quota set those types and keep the others; a guarantee of 0 removes it.

    --no-guarantees, --no-quotas and --no-budget clear a whole setting."""
    with bad_input_exits():
        if budget is not None and no_budget:
            raise fail("--budget-usd-month and --no-budget: give one of them")
        changes: dict[str, Any] = {}
        w = _weight(weight)
        if w is not None:
            changes["weight"] = w
        if no_budget:
            changes["monthly_budget_usd"] = None
        elif budget is not None:
            changes["monthly_budget_usd"] = _budget(budget)
        if borrow is not None:
            changes["can_borrow"] = borrow
        g_new = _gpu_counts("--guarantee", guarantee)
        q_new = _gpu_counts("--quota", quota)
        if not changes and g_new is None and q_new is None and not no_guarantees and not no_quotas:
            raise fail(
                "nothing to change: give --weight, --budget-usd-month, --no-budget, "
                "--guarantee, --no-guarantees, --quota, --no-quotas or --borrow/--no-borrow"
            )
        with _client() as client:
            t = _set(client, name, changes, g_new, q_new, no_guarantees, no_quotas)
    if as_json:
        _out(json.dumps(t, indent=2))
        return
    _out(f"tenant {t['name']} updated: {_limits_line(t)}")


def _set(
    client: Any,
    name: str,
    changes: dict[str, Any],
    g_new: dict[str, int] | None,
    q_new: dict[str, int] | None,
    no_guarantees: bool,
    no_quotas: bool,
) -> dict[str, Any]:
    """Merge the per-type options into the stored maps, check them, store the change."""
    current = client.tenant(name)
    guarantees = {} if no_guarantees else dict(current["guarantees"])
    quotas = {} if no_quotas else dict(current["quotas"])
    if no_guarantees or g_new is not None:
        guarantees.update(g_new or {})
        changes["guarantees"] = guarantees
    if no_quotas or q_new is not None:
        quotas.update(q_new or {})
        changes["quotas"] = quotas
    _check_quota_covers_guarantee(
        {g: n for g, n in guarantees.items() if n}, quotas, "--quota" if q_new else "--guarantee"
    )
    result: dict[str, Any] = client.set_tenant(name, **changes)
    return result


def list_(as_json: JsonOpt = False) -> None:
    """Every tenant with its limits, running GPUs and this month's estimated spend."""
    with bad_input_exits(), _client() as client:
        rows = client.tenants()
    if as_json:
        _out(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} tenants", title_justify="left")
    for col in ("name", "weight", "guarantees", "quotas", "borrow", "running", "spent/budget"):
        table.add_column(col)
    for t in rows:
        table.add_row(
            t["name"],
            f"{t['weight']:g}",
            _gpus(t["guarantees"]),
            _gpus(t["quotas"]),
            "yes" if t["can_borrow"] else "no",
            _gpus(t["running_gpus"]),
            _spend(t),
        )
    Console(width=160).print(table)


def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """One tenant: limits, running GPUs per type, this month's spend, change history."""
    with bad_input_exits(), _client() as client:
        t = client.tenant(name)
    if as_json:
        _out(json.dumps(t, indent=2))
        return
    _out(f"tenant {t['name']}: {_limits_line(t)}")
    _out(f"running GPUs: {_gpus(t['running_gpus'])}")
    _out(f"spent in {t['month']} (estimate): {_spend(t)} USD")
    _out(f"version {t['version']}, created {t['created_at'][:19]}, updated {t['updated_at'][:19]}")
    for e in t["events"]:
        data = e["data"] or {}
        what = data.get("changes") if e["kind"] == "tenant_updated" else None
        detail = ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in (what or {}).items())
        _out(f"  {e['time'][:19]}  {e['kind']}  {detail}".rstrip())


def _gpus(m: dict[str, int]) -> str:
    return ",".join(f"{g}={n}" for g, n in sorted(m.items())) or "-"


def _spend(t: dict[str, Any]) -> str:
    spent = f"{t['spent_usd_month']:,.2f}"
    b = t["monthly_budget_usd"]
    return f"{spent} / {b:,.2f}" if b is not None else f"{spent} / -"


def _limits_line(t: dict[str, Any]) -> str:
    budget = t["monthly_budget_usd"]
    return (
        f"weight {t['weight']:g}, guarantees {_gpus(t['guarantees'])}, "
        f"quotas {_gpus(t['quotas'])}, borrow {'yes' if t['can_borrow'] else 'no'}, "
        f"budget {'none' if budget is None else f'{budget:,.2f} USD/month'}"
    )


tenants_app.command("create")(create)
tenants_app.command("list")(list_)
tenants_app.command("show")(show)
tenants_app.command("set")(set_)
