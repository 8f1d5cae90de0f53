"""FleetState's whole-gang paths (``_bulk_level``, bulk node arrival and removal) leave
every bucket, order, counter and column exactly as the node-by-node paths do: the picks
that follow, hence every decision, are the same. The compiled whole-gang bookkeeping
(``_fleetc``, when it was built) and the pure-Python one are both held to it."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.model import PricingKind
from intercloud.scheduler.fleet import state as state_mod
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


class Pure(FleetState):
    """The whole-gang paths in pure Python, compiled module or not."""

    _native = None


needs_native = pytest.mark.skipif(
    state_mod._NATIVE is None, reason="the compiled _fleetc was not built here"
)


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
    fast = FleetState(pools, initial_nodes=initial)  # compiled where built
    pure = Pure(pools, initial_nodes=initial)
    slow = NodeByNode(pools, initial_nodes=initial)
    states = (fast, pure, slow)
    job = 0
    now = 0.0
    for op, x, k in ops:
        now += 1.0
        p = x % len(pools)
        rng = random.Random(x)
        for s in states:
            s.advance(now)
        if op == 0:  # a gang the picker places (whole or part nodes)
            gpn = min(k, pools[p].gpus_per_node) if x % 2 else pools[p].gpus_per_node
            r = GangRequest(job, "t", k, gpn, ("H100",) if gpn else ())
            nodes = pick_nodes(fast, p, r)
            assert nodes == pick_nodes(slow, p, r) == pick_nodes(pure, p, r)
            if nodes is not None:
                for s in states:
                    s.allocate(r, p, nodes, now)
                job += 1
        elif op == 1:  # whole idle nodes in any order (domains interleaved)
            g = fast.pool_slots[p]
            idle = [n for n in fast.pool_rows(p) if fast.usable(n) and fast.level(n) == g]
            rng.shuffle(idle)
            if idle:
                r = GangRequest(job, "t", min(k, len(idle)), pools[p].gpus_per_node)
                for s in states:
                    s.allocate(r, p, idle[: r.nodes], now)
                job += 1
        elif op == 2 and fast.allocations:
            j = sorted(fast.allocations)[x % len(fast.allocations)]
            for s in states:
                s.release(j, now, evicted=bool(k % 2))
                if k % 2 and k > 4:  # undo, as preemption's trial does
                    s.restore(s.evicted[j])
        elif op == 3 and pools[p].elastic and fast.absent_nodes(p):
            for s in states:
                s.provision(p, min(k, s.absent_nodes(p)), now)
        elif op == 4:
            n = fast.pool_rows(p).start + x % pools[p].max_nodes
            if fast.job[n] == FREE:
                for s in states:
                    s.set_healthy([n], not bool(s.healthy[n]))
        elif op == 5:
            idle = fast.idle_nodes(p, now, 0.0)
            rng.shuffle(idle)
            for s in states:
                s.remove_nodes(idle[:k])
        elif op == 6:
            rows = fast.absent_rows(p)
            for s in states:
                s.provision_rows(p, rows[:k], now)
        want = snapshot(slow)
        assert snapshot(fast) == want
        assert snapshot(pure) == want
    fast.check_invariants()


@needs_native
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from((1, 4, 18)))
def test_compiled_equals_pure_on_large_gangs(seed: int, npd: int) -> None:
    """Gangs of up to 160 whole nodes over many domains (the twin's 128-node gangs),
    placed by the picker or from shuffled idle nodes, released, evicted and restored:
    the compiled and pure-Python paths leave identical state after every step."""
    rng = random.Random(seed)
    pools = [
        spec(0, 8, 36 * npd, npd, PricingKind.RESERVED),
        spec(1, 8, 20 * npd, npd, PricingKind.ON_DEMAND),
    ]
    fast = FleetState(pools)
    pure = Pure(pools)
    assert fast._native is not None
    job = 0
    for _ in range(60):
        p = rng.randrange(2)
        op = rng.randrange(4)
        if op == 0:
            r = GangRequest(job, "t", rng.randint(1, 160), 8)
            nodes = pick_nodes(fast, p, r)
            assert nodes == pick_nodes(pure, p, r)
            if nodes is not None:
                for s in (fast, pure):
                    s.allocate(r, p, nodes, 0.0)
                job += 1
        elif op == 1:
            idle = [n for n in fast.pool_rows(p) if fast.usable(n) and fast.level(n) == 8]
            rng.shuffle(idle)
            if idle:
                r = GangRequest(job, "t", rng.randint(1, len(idle)), 8)
                for s in (fast, pure):
                    s.allocate(r, p, idle[: r.nodes], 0.0)
                job += 1
        elif fast.allocations:
            j = rng.choice(sorted(fast.allocations))
            ev = op == 3
            undo = ev and rng.random() < 0.5
            for s in (fast, pure):
                s.release(j, 1.0, evicted=ev)
                if undo:
                    s.restore(s.evicted[j])
        assert snapshot(fast) == snapshot(pure)
    fast.check_invariants()


@needs_native
def test_compiled_rejects_bad_nodes_like_pure() -> None:
    """A node outside the pool, taken or out of range is refused before anything
    changes, as on the pure path."""
    pools = [spec(0, 8, 8, 4, PricingKind.RESERVED), spec(1, 8, 8, 4, PricingKind.RESERVED)]
    for cls in (FleetState, Pure):
        s = cls(pools)
        before = snapshot(s)
        with pytest.raises(ValueError, match="node 9"):
            s.allocate(GangRequest(0, "t", 2, 8), 0, [0, 9], 0.0)
        s.allocate(GangRequest(1, "t", 2, 8), 0, [0, 1], 0.0)
        with pytest.raises(ValueError, match="node 1"):
            s.allocate(GangRequest(2, "t", 2, 8), 0, [2, 1], 0.0)
        with pytest.raises(IndexError):
            s.allocate(GangRequest(3, "t", 1, 8), 0, [99], 0.0)
        s.release(1, 0.0)
        assert snapshot(s) == before


def test_falls_back_without_the_compiled_module() -> None:
    """With ``_fleetc`` not importable, FleetState runs the pure-Python path."""
    code = (
        "import sys; sys.modules['intercloud.scheduler.fleet._fleetc'] = None\n"
        "from intercloud.scheduler.fleet import state\n"
        "from intercloud.scheduler.fleet.pools import PoolSpec\n"
        "from intercloud.scheduler.requests import GangRequest\n"
        "from intercloud.model import PricingKind\n"
        "assert state._NATIVE is None and state.FleetState._native is None\n"
        "p = PoolSpec('aws', 'r', 'z', 't', PricingKind.RESERVED, 'H100', 8, 32.0, 64.0,"
        " 2, 8, 1.0)\n"
        "s = state.FleetState([p])\n"
        "s.allocate(GangRequest(0, 't', 3, 8), 0, [0, 1, 2], 0.0)\n"
        "s.release(0, 1.0)\n"
        "s.check_invariants()\n"
        "print('pure ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "pure ok"
