"""RUNNING: usable capacity, idle in its pool or serving a job node.

The scheduler moves idle instances to DRAINING (idle release); this handler only
watches liveness: an instance whose node agent has been silent longer than
``timeouts.agent_s`` is ended (TERMINATING, cause AGENT_SILENT), and the bridge reports
its job node lost.
"""

from __future__ import annotations

from intercloud.control.instances.context import InstanceContext
from intercloud.control.instances.transitions import EndCause
from intercloud.providers.contract import InstanceState

S = InstanceState


def handle(ctx: InstanceContext) -> bool:
    changed = False
    now = ctx.clock()
    for row in ctx.rows(S.RUNNING):
        if not ctx.providers[row.provider].needs_agent or row.heartbeat_at is None:
            continue
        silent = (now - row.heartbeat_at).total_seconds()
        if silent > ctx.timeouts.agent_s:
            rec = ctx.move(row, S.TERMINATING, f"silent for {silent:.0f} s", EndCause.AGENT_SILENT)
            changed |= rec is not None
    return changed
