"""``intercloud contracts status [--json] [--contracts FILE] [--at ISO-TIME]``: per
contract committed, spent, projected, on track or not, alerts; chargeback per tenant.

Contracts come from ``--contracts`` or else from the files ``config.yaml`` names under
``contracts:``; the ledger from the store: the one the daemon persisted plus the usage
since (``contracts/accrual.py``), or the usage alone (``store/usage.py``) when the
contracts differ from those it was persisted under or ``--at`` is before its mark.
Exit codes: 0 a report (alerts included); 2 bad input (one line naming the option or
file and field).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from intercloud.cli.errors import bad_input_exits

if TYPE_CHECKING:
    from intercloud.model.contract import Contract

_FIRST_YEAR, _LAST_YEAR = 1970, 9000  # --at's range

contracts_app = typer.Typer(
    help="Spend against contracts: burn-down, projection, alerts, chargeback.",
    no_args_is_help=True,
)


def parse_at(raw: str | None) -> datetime:
    """``--at``: an ISO 8601 time (a date is its midnight; no offset means UTC); now
    when None. ValueError (one line, naming ``--at``) otherwise."""
    if raw is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(
            f"--at: expected an ISO time like 2026-03-01T12:00:00Z, got {raw!r}"
        ) from None
    try:
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:  # an offset moving 0001-01-01 or 9999-12-31 off the calendar
        t = datetime.min.replace(tzinfo=UTC)
    if not _FIRST_YEAR <= t.year <= _LAST_YEAR:  # month arithmetic needs room either side
        raise ValueError(f"--at: expected a year in {_FIRST_YEAR}-{_LAST_YEAR}, got {raw!r}")
    return t


def _contracts(path: Path | None) -> tuple[Contract, ...]:
    """From ``path``, else from the configuration's contract files (none: empty)."""
    from intercloud.catalog import load_bundled
    from intercloud.config import load_config
    from intercloud.contracts.spec import load_contracts

    config = load_config()
    names = config.enabled
    catalog = load_bundled()  # unknown instance types and regions are bad input
    if path is not None:
        return load_contracts(path, catalog, names).contracts
    return tuple(c for p in config.contracts for c in load_contracts(p, catalog, names).contracts)


@contracts_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    contracts: Annotated[
        Path | None,
        typer.Option(
            "--contracts",
            metavar="FILE",
            help="Contracts file (default: the files config.yaml names under contracts:).",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="ISO-TIME", help="Draw the ledger up to this time."),
    ] = None,
) -> None:
    """Per contract: committed, spent, projected, on track or not; chargeback per tenant."""
    from intercloud.cli.jobs import _client
    from intercloud.contracts.accrual import drawn_ledger
    from intercloud.contracts.status import status_of, to_json, to_text

    with bad_input_exits():
        when = parse_at(at)
        signed = _contracts(contracts)
        with _client() as client:
            store = client.store
            ledger, persisted_until = drawn_ledger(store, signed, when)
            budgets = {t.name: t.monthly_budget_usd for t in store.tenants()}
        report = status_of(ledger, signed, budgets, persisted_until=persisted_until)
    if as_json:
        sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n")
        return
    sys.stdout.write("\n".join(to_text(report)) + "\n")
