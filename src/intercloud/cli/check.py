"""``intercloud check [--json]``: which providers are usable here, and why not.

Like ``sky check``: per provider of the configuration (``config.yaml``, else ``local``
only), whether it is enabled, reachable, has credentials, what it sells by region, and
why it cannot be used. Exit 0 when every enabled provider is usable, 1 otherwise (one
line per unusable provider on stderr; also when none is enabled), 2 for a bad configuration
or setting (contract files it names included).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from intercloud.cli.errors import bad_input_exits

if TYPE_CHECKING:
    from intercloud.config import IntercloudConfig
    from intercloud.providers.registry import ProviderCheck

EXIT_UNUSABLE = 1


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _offerings(check: ProviderCheck) -> str:
    parts = []
    for region, found in sorted(check.offerings.items()):
        noun = "offering" if found.count == 1 else "offerings"
        more = ", ..." if found.distinct > len(found.examples) else ""
        names = f" ({', '.join(found.examples)}{more})" if found.examples else ""
        parts.append(f"{region}: {found.count} {noun}{names}")
    return "\n".join(parts) or "-"


def _table(checks: list[ProviderCheck], config: IntercloudConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    from intercloud.cli.render import plain

    source = str(config.source) if config.source else "no config.yaml: local only"
    table = Table(title=f"Providers ({source})", title_justify="left", show_lines=True)
    for col in ("provider", "enabled", "reachable", "credentials", "offerings", "why not"):
        table.add_column(col)
    for c in checks:
        table.add_row(
            *plain(
                c.name,
                _mark(c.enabled),
                _mark(c.reachable),
                _mark(c.credentials),
                _offerings(c),
                c.reason or ("" if c.enabled else "disabled in config.yaml"),
            )
        )
    Console(width=max(120, Console().width)).print(table)


def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Say for each provider: enabled, reachable, credentials found, offerings, why not."""
    from intercloud import settings
    from intercloud.config import load_config
    from intercloud.providers.registry import ProviderContext, check_providers

    with bad_input_exits():
        settings.check_all()
        config = load_config()
    ctx = ProviderContext(home=settings.home(), environ=dict(os.environ))
    checks = check_providers(config, ctx)
    with bad_input_exits():  # the contract files config.yaml names, as the live loop reads them
        from intercloud.control.fleet_settings import fleet_settings

        fleet_settings(config, [c.name for c in checks])
    enabled = [c for c in checks if c.enabled]
    if as_json:
        out = {
            "config": str(config.source) if config.source else None,
            "usable": bool(enabled) and all(c.usable for c in enabled),
            "providers": [c.to_dict() for c in checks],
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        _table(checks, config)
    bad = [c for c in checks if c.enabled and not c.usable]
    for c in bad:
        sys.stderr.write(f"error: {c.name}: {' '.join((c.reason or 'not usable').split())}\n")
    if not enabled:  # nothing could ever run
        sys.stderr.write(f"error: {config.source}: providers: no provider is enabled\n")
    if bad or not enabled:
        raise typer.Exit(EXIT_UNUSABLE)
