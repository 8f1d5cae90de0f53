"""A job that checkpoints on a schedule (``FleetState.checkpoint_every``) reads as if each
checkpoint had been reported when it fell (``FleetState.checkpoint``), as the twin did
with an event per checkpoint: at every moment, through release and requeue."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.model import PricingKind
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.preemption import requeued
from intercloud.scheduler.requests import GangRequest

POOL = PoolSpec(
    "aws", "r", "z", "t", PricingKind.ON_DEMAND, "H100", 8, 32.0, 64.0, 1, 4, 1.0
)  # fmt: skip


def _two() -> tuple[FleetState, FleetState]:
    return FleetState([POOL]), FleetState([POOL])


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 10_000),
    overhead=st.sampled_from([0, 30, 300, 450]),
    every=st.sampled_from([60, 300, 3600, 7]),
    length=st.integers(1, 40_000),
    probes=st.lists(st.integers(0, 50_000), min_size=1, max_size=12),
)
def test_schedule_reads_as_reported_checkpoints(
    start: int, overhead: int, every: int, length: int, probes: list[int]
) -> None:
    events, lazy = _two()
    r = GangRequest(1, "t", 1, 8, ("H100",), duration_s=float(length))
    for s in (events, lazy):
        s.allocate(r, 0, [0], float(start))
    end = start + length
    first = start + overhead + every
    if first < end:
        lazy.checkpoint_every(1, float(first), float(every), float(end))
    # the events' way: a checkpoint reported at each moment, as time goes by
    reported = [t for t in range(first, end, every)]
    for now in sorted(start + p for p in probes):
        for t in reported:
            if t <= now:
                events.checkpoint(1, float(t))
        a, b = events.allocations[1], lazy.allocations[1]
        assert b.saved_s(float(now)) == a.last_checkpoint_s
        assert b.work_lost_s(float(now)) == a.work_lost_s(float(now))
    # evicted: the requeued request carries the last checkpoint either way
    t_end = float(start + max(probes))
    ra = requeued(events.release(1, t_end, evicted=True))
    rb = requeued(lazy.release(1, t_end, evicted=True))
    assert ra == rb


def test_no_schedule_reads_the_reported_checkpoint() -> None:
    s = FleetState([POOL])
    s.allocate(GangRequest(1, "t", 1, 8, ("H100",)), 0, [0], 100.0)
    s.checkpoint(1, 250.0)
    assert s.allocations[1].saved_s(1_000.0) == 250.0
    s.checkpoint_every(1, 400.0, 100.0, 10_000.0)
    assert s.allocations[1].saved_s(399.0) == 250.0
    assert s.allocations[1].saved_s(650.0) == 600.0
