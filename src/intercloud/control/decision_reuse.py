"""Skip a fleet cycle whose inputs did not change (``DecisionReuse``).

At fleet scale most live-loop steps change nothing the scheduler could use: every pool
is full, the same 1,000 gangs hold, and rebuilding the snapshot (10,000 nodes, 6,000
running jobs replayed) and deciding over them again yields the same holds. The fleet
decider keeps its last cycle and hands it back while all of these hold:

- the last cycle made holds only: no ``Place``, ``Reject``, ``Preempt``, capacity
  decision or requeue (each of those changes the store, so the next inputs differ
  anyway, and a decision not applied must be made again on fresh state);
- the pending jobs are the same (ids, priorities, tenants, parsed workload objects);
- every input of the snapshot but the clock is the same: offerings, free capacity,
  running jobs, instance rows, tenants, policy (cool-downs, down providers, burn
  weights, contracts), compared by identity first (the store's row image and
  ``holding`` hand back unchanged rows as the same objects), then by value;
- the clock has not reached the cycle's horizon: the first instant after it at which
  time alone could change a decision that the inputs let us see (a cool-down ends, a
  contract or a reserved block opens or closes, an idle instance becomes releasable, a
  running job reaches its expected end, a month starts: budgets reset), and at most
  ``resync_s`` after it, a bound on what time moves that is not listed here (a
  tenant's budget running out while its jobs run, reasons that quote the clock).

So a step where nothing changed costs a comparison of the inputs; a step where
something did (capacity freed, a job submitted, a quota raised) decides afresh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from intercloud.control.decide import Hold, PendingJob
from intercloud.providers.contract import InstanceState

if TYPE_CHECKING:
    from intercloud.control.fleet_decider import FleetDecisions
    from intercloud.control.snapshot import SnapshotInputs

__all__ = ["RESYNC_S", "DecisionReuse", "horizon"]

#: the longest a cycle is reused while nothing changes (seconds)
RESYNC_S = 10.0

_RUNNING = InstanceState.RUNNING.value


@dataclass(slots=True)
class _Last:
    pending: Sequence[PendingJob]
    inputs: SnapshotInputs
    until_s: float
    out: FleetDecisions


def _same_items(a: Sequence[Any], b: Sequence[Any]) -> bool:
    if a is b:
        return True
    if len(a) != len(b):
        return False
    return all(x is y or x == y for x, y in zip(a, b, strict=True))


def _same_inputs(a: SnapshotInputs, b: SnapshotInputs) -> bool:
    """Every field of the snapshot's inputs but the clock."""
    if a.free != b.free or a.policy != b.policy or a.spare_nodes != b.spare_nodes:
        return False
    if a.queue != b.queue:
        return False
    if a.instance_backed != b.instance_backed or a.spot_providers != b.spot_providers:
        return False
    if (a.tenants is None) != (b.tenants is None):
        return False
    if a.tenants is not None and b.tenants is not None and not _same_items(a.tenants, b.tenants):
        return False
    return (
        _same_items(a.offerings, b.offerings)
        and _same_items(a.running, b.running)
        and _same_items(a.instances, b.instances)
    )


def _holds_only(out: FleetDecisions) -> bool:
    return not out.capacity and not out.requeue and all(isinstance(d, Hold) for d in out.jobs)


def horizon(inputs: SnapshotInputs, resync_s: float = RESYNC_S) -> float:
    """The first instant after ``inputs.now_s`` at which time alone may change the
    decisions on ``inputs`` (module docstring), capped at ``now_s + resync_s``."""
    now = inputs.now_s
    policy = inputs.policy
    times: list[float] = [now + resync_s]
    times.extend(b.until.timestamp() for b in policy.blocks)
    for c in policy.contracts:
        times += [c.start.timestamp(), c.end.timestamp()]
        for blk in c.blocks:
            w0, _w1 = c.window(blk)
            times += [w0.timestamp(), c.usable_end(blk).timestamp()]
    idle_s = policy.idle_release_s
    for inst in inputs.instances:
        if inst.state == _RUNNING and inst.workload_id is None:
            since = inst.idle_since or inst.running_at
            if since is not None:
                times.append(since.timestamp() + idle_s)
    for job in inputs.running:
        if job.duration_s is not None:
            times.append(job.since_s + job.duration_s)
    today = datetime.fromtimestamp(now, UTC)
    month = datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=UTC)
    times.append(month.timestamp())
    return min((t for t in times if t > now), default=math.inf)


class DecisionReuse:
    """The last cycle of a fleet decider, handed back while nothing it read changed
    (module docstring). ``reused`` counts the cycles skipped (for tests and stats)."""

    def __init__(self, resync_s: float = RESYNC_S) -> None:
        self.resync_s = resync_s
        self.reused = 0
        self._last: _Last | None = None

    def get(self, pending: Sequence[PendingJob], inputs: SnapshotInputs) -> FleetDecisions | None:
        """The last cycle's decisions if they still stand for ``pending`` on
        ``inputs`` (a copy: callers may extend its lists), else None."""
        last = self._last
        if last is None or self.resync_s <= 0:
            return None
        if not last.inputs.now_s <= inputs.now_s < last.until_s:
            return None
        if not _same_items(last.pending, pending) or not _same_inputs(last.inputs, inputs):
            return None
        self.reused += 1
        out = last.out
        return type(out)(list(out.jobs), list(out.capacity), list(out.requeue))

    def keep(
        self, pending: Sequence[PendingJob], inputs: SnapshotInputs, out: FleetDecisions
    ) -> None:
        """Remember a fresh cycle: only one of holds alone can be handed back."""
        if self.resync_s <= 0 or not _holds_only(out):
            self._last = None
            return
        until = horizon(inputs, self.resync_s)
        # copies of the containers: a caller refilling its own list or dict in place
        # must not make the next inputs look unchanged
        kept = replace(
            inputs,
            offerings=list(inputs.offerings),
            free=dict(inputs.free) if inputs.free is not None else None,
            queue=dict(inputs.queue) if inputs.queue is not None else None,
            running=list(inputs.running),
            instances=list(inputs.instances),
            tenants=list(inputs.tenants) if inputs.tenants is not None else None,
        )
        copy = type(out)(list(out.jobs), list(out.capacity), list(out.requeue))
        self._last = _Last(list(pending), kept, until, copy)
