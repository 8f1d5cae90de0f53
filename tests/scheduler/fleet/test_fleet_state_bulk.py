"""FleetState's whole-gang paths (``_bulk_level``, bulk node arrival and removal) leave
every bucket, order, counter and column exactly as the node-by-node paths do: the picks
that follow, hence every decision, are the same."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.model import PricingKind
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FREE, FleetState
from intercloud.scheduler.placement import pick_nodes
from intercloud.scheduler.requests import GangRequest


def spec(i: int, gpus: int, nodes: int, npd: int, pricing: PricingKind) -> PoolSpec:
    return PoolSpec(
        "aws", "r", f"z{i}", f"t{i}", pricing, "H100" if gpus else None, gpus, 32.0, 64.0,
        npd, nodes, 1.0, provision_delay_s=float(i % 2) * 5.0,
    )  # fmt: skip


class NodeByNode(FleetState):
    """The per-node paths only: the reference the bulk paths must equal."""

    _bulk_min = 1 << 60

    def _all_usable(self, nodes: Sequence[int]) -> bool:
        return False

    def _all_idle(self, nodes: Sequence[int], slots: int) -> bool:
        return False


def snapshot(s: FleetState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in (
        "_lvl", "_vcpu", "_usable", "_pos", "_dpos", "_dbpos", "_dcount", "_atl", "_datl",
        "pool_version", "acc_version", "_hist", "_buck", "_dbuck", "_dfree", "_absent",
        "rise_epoch", "place_epoch", "elastic_absent", "_pending_ready", "_alloc_total",
        "_capped_prov",
    ):  # fmt: skip
        out[k] = getattr(s, k)
    for k in (
        "free_gpus", "free_vcpu", "healthy", "present", "ready_at", "job", "idle_since",
        "pool_present_nodes", "pool_alloc_gpus",
    ):  # fmt: skip
        out[k] = np.asarray(getattr(s, k)).tolist()
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from((0, 4, 8)), st.integers(1, 5), st.sampled_from((1, 3, 4))),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 999), st.integers(1, 9)), max_size=50),
)
def test_bulk_paths_equal_node_by_node(
    shapes: list[tuple[int, int, int]], ops: list[tuple[int, int, int]]
) -> None:
    kinds = [PricingKind.RESERVED, PricingKind.ON_DEMAND, PricingKind.SPOT]
    pools = [spec(i, g, n * d, d, kinds[i % 3]) for i, (g, n, d) in enumerate(shapes)]
    initial = [p.max_nodes // 2 for p in pools]
    fast = FleetState(pools, initial_nodes=initial)
    slow = NodeByNode(pools, initial_nodes=initial)
    job = 0
    now = 0.0
    for op, x, k in ops:
        now += 1.0
        p = x % len(pools)
        rng = random.Random(x)
        for s in (fast, slow):
            s.advance(now)
        if op == 0:  # a gang the picker places (whole or part nodes)
            gpn = min(k, pools[p].gpus_per_node) if x % 2 else pools[p].gpus_per_node
            r = GangRequest(job, "t", k, gpn, ("H100",) if gpn else ())
            nodes = pick_nodes(fast, p, r)
            assert nodes == pick_nodes(slow, p, r)
            if nodes is not None:
                for s in (fast, slow):
                    s.allocate(r, p, nodes, now)
                job += 1
        elif op == 1:  # whole idle nodes in any order (domains interleaved)
            g = fast.pool_slots[p]
            idle = [n for n in fast.pool_rows(p) if fast.usable(n) and fast.level(n) == g]
            rng.shuffle(idle)
            if idle:
                r = GangRequest(job, "t", min(k, len(idle)), pools[p].gpus_per_node)
                for s in (fast, slow):
                    s.allocate(r, p, idle[: r.nodes], now)
                job += 1
        elif op == 2 and fast.allocations:
            j = sorted(fast.allocations)[x % len(fast.allocations)]
            for s in (fast, slow):
                s.release(j, now, evicted=bool(k % 2))
                if k % 2 and k > 4:  # undo, as preemption's trial does
                    s.restore(s.evicted[j])
        elif op == 3 and pools[p].elastic and fast.absent_nodes(p):
            for s in (fast, slow):
                s.provision(p, min(k, s.absent_nodes(p)), now)
        elif op == 4:
            n = fast.pool_rows(p).start + x % pools[p].max_nodes
            if fast.job[n] == FREE:
                for s in (fast, slow):
                    s.set_healthy([n], not bool(s.healthy[n]))
        elif op == 5:
            idle = fast.idle_nodes(p, now, 0.0)
            rng.shuffle(idle)
            for s in (fast, slow):
                s.remove_nodes(idle[:k])
        elif op == 6:
            rows = fast.absent_rows(p)
            for s in (fast, slow):
                s.provision_rows(p, rows[:k], now)
        assert snapshot(fast) == snapshot(slow)
    fast.check_invariants()
