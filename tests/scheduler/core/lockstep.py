"""Two schedulers, one with a shortcut on and one with it off, driven cycle after cycle
over the same random queue: the exactness tests' common loop."""

from __future__ import annotations

import copy
from collections.abc import Callable

from hypothesis import strategies as st
from test_core_memo_exact import _apply

from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest
from intercloud.scheduler.tenancy import TenantLedger


def flagged_scheduler(
    pools: list[PoolSpec], ledger: TenantLedger | None, caps: bool, costs: bool,
    flag: str, on: bool,
) -> Scheduler:  # fmt: skip
    """A fair-share scheduler with ``flag`` (a private switch of the core) set to ``on``."""
    s = Scheduler(
        queue_order="fair_share",
        ledger=ledger,
        costs=PoolCosts(pools) if costs else None,
        caps=DiversificationCaps(0.5, min_fleet_gpus=8) if caps else None,
        reservation_pools=2,
        preemption_pools=2,
    )
    setattr(s, flag, on)
    return s


def fleet_gpus(pools: list[PoolSpec]) -> dict[str, int]:
    """GPUs of the fleet by accelerator (the tenant ledger's denominator)."""
    fleet: dict[str, int] = {}
    for p in pools:
        if p.accelerator:
            fleet[p.accelerator] = fleet.get(p.accelerator, 0) + p.max_gpus
    return fleet


def run_in_lockstep(
    data: st.DataObject,
    pools: list[PoolSpec],
    ledger: TenantLedger | None,
    caps: bool,
    costs: bool,
    flag: str,
    request: Callable[[st.DataObject, int, float], GangRequest],
    max_new: int,
) -> None:
    """2 to 8 cycles of up to ``max_new`` new gangs each (ended gangs released first):
    the scheduler with ``flag`` on decides exactly as the one with it off."""
    state_on = FleetState(pools)
    state_off = copy.deepcopy(state_on)
    on = flagged_scheduler(pools, ledger, caps, costs, flag, True)
    off = flagged_scheduler(pools, copy.deepcopy(ledger), caps, costs, flag, False)
    queue_on: list[GangRequest] = []
    queue_off: list[GangRequest] = []
    next_id = 0
    now = 0.0
    for _ in range(data.draw(st.integers(2, 8))):
        now += data.draw(st.sampled_from((0.0, 10.0, 200.0)))
        for _ in range(data.draw(st.integers(0, max_new))):
            r = request(data, next_id, now)
            next_id += 1
            queue_on.append(r)
            queue_off.append(r)
        ends = sorted((a.end_s, j) for j, a in state_on.allocations.items() if a.end_s <= now)
        for _, j in ends:
            on.finished(state_on, j, now)
            off.finished(state_off, j, now)
        got = on.schedule(state_on, queue_on, now)
        want = off.schedule(state_off, queue_off, now)
        assert got == want
        _apply(got, queue_on, state_on)
        _apply(want, queue_off, state_off)
    state_on.check_invariants()
