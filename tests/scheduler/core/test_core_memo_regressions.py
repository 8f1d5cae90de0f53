"""Deterministic cases for the core's memos across cycles: each would go stale without
the counter it watches (a scheduler that keeps its memos must decide like a fresh one)."""

from __future__ import annotations

import copy

import pytest
from sched_helpers import pool

from intercloud.model import PricingKind, Topology
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger


def _both(
    state: FleetState,
    make: type[Scheduler] | None,
    queue: list[GangRequest],
    now: float,
    kept: Scheduler,
    **kw: object,
) -> tuple[list[Decision], list[Decision]]:
    fresh_state = copy.deepcopy(state)
    want = Scheduler(**kw).schedule(fresh_state, queue, now)  # type: ignore[arg-type]
    got = kept.schedule(state, queue, now)
    return got, want


def test_nvlink_gang_sees_a_node_become_wholly_free() -> None:
    # one NVLink domain of two 8-GPU nodes; a 4-GPU job on node 0 blocks a 2 x 4 domain
    # gang (it needs two wholly free nodes); when it ends, node 0 goes from 4 to 8 free
    # GPUs, which moves ``rise_epoch`` at levels 5..8 but not at the member's 4.
    state = FleetState([pool(nodes=2, npd=2)])
    small = GangRequest(job_id=1, tenant="t", nodes=1, gpus_per_node=4, accelerators=("H100",))
    state.allocate(small, 0, [0], 0.0)
    dom = GangRequest(
        job_id=2,
        tenant="t",
        nodes=2,
        gpus_per_node=4,
        accelerators=("H100",),
        topology=Topology.NVLINK_DOMAIN,
    )
    kw: dict[str, object] = {"backfill": False, "preemption": False}
    kept = Scheduler(**kw)  # type: ignore[arg-type]
    got, want = _both(state, None, [dom], 0.0, kept, **kw)
    assert got == want and got[0].kind == DecisionKind.HOLD
    kept.finished(state, 1, 5.0)
    got, want = _both(state, None, [dom], 5.0, kept, **kw)
    assert want[0].kind == DecisionKind.PLACE
    assert got == want


def test_victims_memo_sees_a_release_below_the_members_slots() -> None:
    # node: an 8-GPU H100 with a high-priority 4-GPU job and a low-priority 4-GPU one;
    # an 8-GPU gang of priority 1 cannot make room (only the low one may go) until the
    # high one ends: that frees 4 GPUs (0 -> 4 free, below the 8 the gang needs), so no
    # ``rise_epoch`` at 8 moves and nothing is placed, yet victims now exist.
    state = FleetState([pool(nodes=1)])
    hi = GangRequest(1, "t", 1, 4, ("H100",), priority=5, preemptible=False)
    lo = GangRequest(2, "t", 1, 4, ("H100",), priority=0)
    state.allocate(hi, 0, [0], 0.0)
    state.allocate(lo, 0, [0], 0.0)
    big = GangRequest(3, "t", 1, 8, ("H100",), priority=1)
    kw: dict[str, object] = {"backfill": False}
    kept = Scheduler(**kw)  # type: ignore[arg-type]
    got, want = _both(state, None, [big], 0.0, kept, **kw)
    assert got == want and got[0].kind == DecisionKind.HOLD
    kept.finished(state, 1, 5.0)
    got, want = _both(state, None, [big], 5.0, kept, **kw)
    assert [d.kind for d in want] == [DecisionKind.PREEMPT, DecisionKind.PLACE]
    assert got == want


def test_victims_memo_sees_last_cycles_placements_unprotected() -> None:
    # a low-priority job placed in a cycle is protected from preemption in that cycle
    # only: the high-priority gang held behind it must take it the next cycle.
    state = FleetState([pool(nodes=1)])
    lo = GangRequest(1, "t", 1, 8, ("H100",), priority=0, submit_s=0.0)
    hi = GangRequest(2, "t", 1, 8, ("H100",), priority=1, submit_s=1.0)
    kw: dict[str, object] = {"backfill": False, "queue_order": "fifo"}
    kept = Scheduler(**kw)  # type: ignore[arg-type]
    got, want = _both(state, None, [lo, hi], 0.0, kept, **kw)
    assert got == want
    assert [d.kind for d in got] == [DecisionKind.PLACE, DecisionKind.HOLD]
    got, want = _both(state, None, [hi], 1.0, kept, **kw)
    assert [d.kind for d in want] == [DecisionKind.PREEMPT, DecisionKind.PLACE]
    assert got == want


@pytest.mark.parametrize("budget", [None, 1000.0])
def test_held_gangs_are_replayed_only_while_their_inputs_hold(budget: float | None) -> None:
    # tenant b may not borrow: its gangs are held over quota; unchanged inputs replay
    # the HOLD (no turn), and a change of the ledger's A100 state ends the replay.
    pools = [pool("A100", nodes=4), pool("H100", nodes=4)]
    tenants = [
        TenantSpec("a", guaranteed_gpus={"A100": 16}),
        TenantSpec("b", can_borrow=False, monthly_budget_usd=budget),
    ]
    ledger = TenantLedger(tenants, {"A100": 32, "H100": 32})
    kept = Scheduler(ledger=ledger, backfill=False)
    state = FleetState(pools)
    held = [GangRequest(10 + i, "b", 1, 8, ("A100",)) for i in range(3)]
    turns = 0
    real = Scheduler._turn

    def counted(self: Scheduler, *a: object) -> bool:
        nonlocal turns
        turns += 1
        return real(self, *a)  # type: ignore[arg-type]

    Scheduler._turn = counted  # type: ignore[method-assign,assignment]
    try:
        first = kept.schedule(state, held, 0.0)
        assert all(d.kind == DecisionKind.HOLD and "quota" in d.reason for d in first)
        assert turns == 3
        # the second turn sees the fleet unchanged since the first: its inputs are kept
        assert kept.schedule(state, held, 0.0) == first
        assert turns == 6
        assert kept.schedule(state, held, 0.0) == first
        assert turns == 6  # replayed
        # a job on the other accelerator: nothing the held gangs read changed
        h = GangRequest(1, "a", 1, 8, ("H100",))
        out = kept.schedule(state, [h, *held], 0.0)
        assert out[0].kind == DecisionKind.PLACE and out[1:] == first
        assert turns == 7
        # a budgeted tenant's admission reads the clock: a later cycle redoes the turn
        out = kept.schedule(state, held, 10.0)
        assert out == first
        assert turns == (7 if budget is None else 10)
        # tenant a starts A100 work: the A100 pools changed, the turns are redone
        a = GangRequest(2, "a", 1, 8, ("A100",))
        n = turns
        out = kept.schedule(state, [a, *held], 10.0)
        assert out[0].kind == DecisionKind.PLACE
        assert turns == n + 4
    finally:
        Scheduler._turn = real  # type: ignore[method-assign]


def test_replayed_hold_sees_the_caps_move_with_other_accelerators() -> None:
    # caps are not monotone: a gang held by the cap of its provider may start once
    # another provider grows the fleet, with none of its own pools changed.
    from intercloud.scheduler.cost.caps import DiversificationCaps

    # the A100 pool is reserved: exempt from the caps, but its GPUs count in the fleet
    pools = [
        pool("H100", nodes=2, provider="aws"),
        pool("A100", nodes=2, provider="gcp", pricing=PricingKind.RESERVED),
    ]
    state = FleetState(pools)
    gang = GangRequest(1, "t", 1, 8, ("H100",))
    kw: dict[str, object] = {"backfill": False, "caps": DiversificationCaps(0.5)}
    kept = Scheduler(**kw)  # type: ignore[arg-type]
    for _ in range(3):  # held; recorded; replayed
        got, want = _both(state, None, [gang], 0.0, kept, **kw)
        assert got == want and got[0].kind == DecisionKind.HOLD and "cap" in got[0].reason
    other = GangRequest(2, "u", 2, 8, ("A100",), priority=5)
    got, want = _both(state, None, [other, gang], 0.0, kept, **kw)
    assert [d.kind for d in want] == [DecisionKind.PLACE, DecisionKind.PLACE]
    assert got == want
