"""FleetState: aggregates stay equal to a recomputation under random operations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.model import PricingKind
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FREE, SHARED, FleetState
from intercloud.scheduler.placement import pick_nodes
from intercloud.scheduler.requests import GangRequest


def spec(i: int, gpus: int, nodes: int, npd: int, pricing: PricingKind) -> PoolSpec:
    return PoolSpec(
        "aws",
        "r",
        f"z{i}",
        f"t{i}",
        pricing,
        "H100" if gpus else None,
        gpus,
        32.0,
        64.0,
        npd,
        nodes,
        1.0,
        provision_delay_s=5.0,
    )


def test_layout_and_domains() -> None:
    s = FleetState([spec(0, 4, 36, 18, PricingKind.RESERVED), spec(1, 8, 3, 1, PricingKind.SPOT)])
    assert s.n_nodes == 39 and s.n_domains == 5
    assert s.domain[:18].tolist() == [0] * 18 and int(s.domain[18]) == 1
    assert s.pool_domains_by_free[0, 18] == 2 and s.pool_nodes_by_free[1, 8] == 3
    s.check_invariants()


def test_shared_nodes_and_release() -> None:
    s = FleetState([spec(0, 8, 1, 1, PricingKind.ON_DEMAND)])
    a = GangRequest(1, "t", 1, 4, ("H100",))
    b = GangRequest(2, "t", 1, 2, ("H100",))
    s.allocate(a, 0, [0], 0.0)
    s.allocate(b, 0, [0], 0.0)
    assert int(s.job[0]) == SHARED and s.jobs_on(0) == [1, 2] and int(s.free_gpus[0]) == 2
    with pytest.raises(ValueError):
        s.allocate(GangRequest(3, "t", 1, 4, ("H100",)), 0, [0], 0.0)
    s.release(1, 1.0)
    assert int(s.job[0]) == 2
    s.release(2, 2.0)
    assert int(s.job[0]) == FREE and float(s.idle_since[0]) == 2.0
    s.check_invariants()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from((0, 4, 8)), st.integers(1, 6), st.sampled_from((1, 2, 3))),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 99), st.integers(1, 3)), max_size=40),
)
def test_random_operations_keep_aggregates_exact(
    shapes: list[tuple[int, int, int]], ops: list[tuple[int, int, int]]
) -> None:
    kinds = [PricingKind.RESERVED, PricingKind.ON_DEMAND, PricingKind.SPOT]
    pools = [spec(i, g, n * d, d, kinds[i % 3]) for i, (g, n, d) in enumerate(shapes)]
    s = FleetState(pools, initial_nodes=[p.max_nodes // 2 for p in pools])
    job = 0
    now = 0.0
    for op, x, k in ops:
        now += 1.0
        p = x % len(pools)
        if op <= 1:  # place a gang through the picker
            gpn = min(k * 2, pools[p].gpus_per_node) if pools[p].gpus_per_node else 0
            r = GangRequest(job, "t", k, gpn, ("H100",) if gpn else ())
            nodes = pick_nodes(s, p, r)
            if nodes is not None:
                s.allocate(r, p, nodes, now)
                job += 1
        elif op == 2 and s.allocations:
            s.release(sorted(s.allocations)[x % len(s.allocations)], now)
        elif op == 3 and pools[p].elastic and s.absent_nodes(p):
            s.provision(p, min(k, s.absent_nodes(p)), now)
        elif op == 4:
            s.advance(now)
            n = s.pool_rows(p).start + x % pools[p].max_nodes
            if s.job[n] == FREE:
                s.set_healthy([n], not bool(s.healthy[n]))
        elif op == 5:
            idle = s.idle_nodes(p, now, 0.0)
            if pools[p].elastic:
                s.remove_nodes(idle[:k])
        s.check_invariants()
