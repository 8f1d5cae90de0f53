"""Backfill's shadow kept per (pool, gang shape) while the pool's version holds answers
as a fresh walk does: after every change of the fleet (gangs placed and ended, nodes
failing and healing, time passing), for gangs of every shape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_memo_exact import fleets, request

from hypothesis_budget import examples
from intercloud.scheduler.backfill import Reservation, _shadow_walk, shadow
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FREE, FleetState
from intercloud.scheduler.placement.pick import pick_nodes


def _fresh(state: FleetState, p: int, r, now: float) -> Reservation | None:  # type: ignore[no-untyped-def]
    end, nodes = _shadow_walk(state, p, r)
    return None if nodes is None else Reservation(r.job_id, p, max(end, now), nodes)


@settings(max_examples=examples(80), deadline=None)
@given(pools=fleets(), data=st.data())
def test_kept_shadow_equals_a_fresh_walk(pools: list[PoolSpec], data: st.DataObject) -> None:
    state = FleetState(pools)
    now = 0.0
    job = 0
    probes = [request(data.draw, 10_000 + i, now) for i in range(6)]
    for _ in range(data.draw(st.integers(3, 25))):
        op = data.draw(st.sampled_from(("place", "place", "end", "sick", "heal", "wait")))
        if op == "place":
            job += 1
            r = request(data.draw, job, now)
            p = data.draw(st.integers(0, len(pools) - 1))
            if r.gpus_per_node <= pools[p].gpus_per_node:
                nodes = pick_nodes(state, p, r)
                if nodes is not None:
                    state.allocate(r, p, nodes, now)
        elif op == "end" and state.allocations:
            j = data.draw(st.sampled_from(sorted(state.allocations)))
            state.release(j, now)
        elif op in ("sick", "heal"):
            p = data.draw(st.integers(0, len(pools) - 1))
            # only idle nodes fail here (a busy one's jobs are evicted first)
            rows = [n for n in state.pool_rows(p) if int(state.job[n]) == FREE]
            if not rows:
                continue
            some = data.draw(st.lists(st.sampled_from(rows), max_size=3, unique=True))
            state.set_healthy(some, op == "heal")
        else:
            now += data.draw(st.sampled_from((1.0, 50.0, 500.0)))
            state.advance(now)
        for r in probes:
            for p in range(len(pools)):
                assert shadow(state, p, r, now) == _fresh(state, p, r, now)
