"""ALLOCATED: the provider named the instance; it becomes RUNNING when usable.

Usable means: its node agent registered (``heartbeat_at`` set by the agent server) for
providers whose instances run the agent (``AsyncProvider.needs_agent``), or the provider
shows it running for the others. An agent that has not registered ``timeouts.boot_s``
after the request ends the instance (TERMINATING, cause BOOT_TIMEOUT).
"""

from __future__ import annotations

from intercloud.control.instances.context import InstanceContext
from intercloud.control.instances.transitions import EndCause
from intercloud.providers.contract import InstanceState

S = InstanceState


def handle(ctx: InstanceContext) -> bool:
    changed = False
    now = ctx.clock()
    for row in ctx.rows(S.ALLOCATED):
        provider = ctx.providers[row.provider]
        if provider.needs_agent:
            if row.heartbeat_at is not None:
                changed |= ctx.move(row, S.RUNNING, "its node agent registered") is not None
            elif (now - row.created_at).total_seconds() > ctx.timeouts.boot_s:
                waited = (now - row.created_at).total_seconds()
                rec = ctx.move(row, S.TERMINATING, f"{waited:.0f} s", EndCause.BOOT_TIMEOUT)
                changed |= rec is not None
            continue
        seen = ctx.seen(row)
        if seen is not None and seen.state is S.RUNNING:
            changed |= ctx.move(row, S.RUNNING, "the provider reports it running") is not None
    return changed
