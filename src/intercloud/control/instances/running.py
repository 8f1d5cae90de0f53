"""RUNNING: usable capacity, idle in its pool or serving a job node.

The scheduler moves idle instances to DRAINING (idle release); this handler only
watches liveness: an instance whose node agent has been silent longer than
``timeouts.agent_s`` is ended (TERMINATING, cause AGENT_SILENT), and the bridge reports
its job node lost.
"""

from __future__ import annotations

from datetime import timedelta

from intercloud.control.instances.context import InstanceContext
from intercloud.control.instances.transitions import EndCause
from intercloud.providers.contract import InstanceState

S = InstanceState


def handle(ctx: InstanceContext) -> bool:
    changed = False
    now = ctx.clock()
    agents = {name for name, p in ctx.providers.items() if p.needs_agent}
    if not agents:
        return False
    # silent longer than agent_s <=> last heard before this (one comparison per row)
    cutoff = now - timedelta(seconds=ctx.timeouts.agent_s)
    for row in ctx.rows(S.RUNNING):
        heard = row.heartbeat_at
        if heard is None or heard >= cutoff or row.provider not in agents:
            continue
        silent = (now - heard).total_seconds()
        rec = ctx.move(row, S.TERMINATING, f"silent for {silent:.0f} s", EndCause.AGENT_SILENT)
        changed |= rec is not None
    return changed
