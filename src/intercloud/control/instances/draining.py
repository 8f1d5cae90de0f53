"""DRAINING: no new work; ended (TERMINATING, cause RELEASED) once it serves nothing.

An instance serves nothing when it is idle (no job node) or its assignment has ended
(exited or killed). The job reconciler releases the instance when its job ends.
"""

from __future__ import annotations

from intercloud.control.instances.context import InstanceContext
from intercloud.control.instances.transitions import EndCause
from intercloud.providers.contract import InstanceState
from intercloud.store.records import AssignmentState

S = InstanceState
_DONE = (None, AssignmentState.EXITED, AssignmentState.KILLED)


def handle(ctx: InstanceContext) -> bool:
    changed = False
    for row in ctx.rows(S.DRAINING):
        if row.idle or row.assignment_state in _DONE:
            rec = ctx.move(row, S.TERMINATING, "drained", EndCause.RELEASED)
            changed |= rec is not None
    return changed
