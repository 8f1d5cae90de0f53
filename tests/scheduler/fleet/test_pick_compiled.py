"""``pick_nodes`` picks the same nodes with the compiled bucket scan (``_fleetc.take_from``)
as in pure Python: partly used nodes, vCPU limits and a reservation's excluded nodes
included."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fleet_state_bulk import Pure, spec

from hypothesis_budget import examples
from intercloud.model import PricingKind
from intercloud.scheduler.fleet import state as state_mod
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement import pick_nodes
from intercloud.scheduler.requests import GangRequest


@pytest.mark.skipif(state_mod._NATIVE is None, reason="the compiled _fleetc was not built here")
@settings(max_examples=examples(120), deadline=None)
@given(data=st.data(), npd=st.sampled_from((1, 2, 4)))
def test_compiled_pick_equals_pure(data: st.DataObject, npd: int) -> None:
    pools = [spec(0, 8, 4 * npd, npd, PricingKind.ON_DEMAND)]
    compiled = FleetState(pools)
    pure = Pure(pools)
    assert compiled._native is not None and pure._native is None
    for job in range(1, data.draw(st.integers(1, 13))):  # partly used nodes, vCPUs taken
        r = GangRequest(
            job, "t", data.draw(st.integers(1, 3)), data.draw(st.sampled_from((1, 2, 4, 8))),
            ("H100",), vcpus_per_node=data.draw(st.sampled_from((0.0, 4.0, 12.5))),
        )  # fmt: skip
        nodes = pick_nodes(pure, 0, r)
        assert nodes == pick_nodes(compiled, 0, r)
        if nodes is not None:
            pure.allocate(r, 0, nodes, 0.0)
            compiled.allocate(r, 0, nodes, 0.0)
    rows = list(pure.pool_rows(0))
    for _ in range(8):
        r = GangRequest(
            0, "t", data.draw(st.integers(1, 4)), data.draw(st.sampled_from((1, 2, 4, 8))),
            ("H100",), vcpus_per_node=data.draw(st.sampled_from((0.0, 8.0, 30.0))),
        )  # fmt: skip
        exclude = data.draw(st.sampled_from((None, frozenset(), "some")))
        if exclude == "some":
            exclude = frozenset(data.draw(st.lists(st.sampled_from(rows), max_size=len(rows))))
        assert pick_nodes(compiled, 0, r, exclude) == pick_nodes(pure, 0, r, copy.copy(exclude))


@pytest.mark.skipif(state_mod._NATIVE is None, reason="the compiled _fleetc was not built here")
@settings(max_examples=examples(120), deadline=None)
@given(data=st.data(), npd=st.sampled_from((2, 4)))
def test_compiled_domain_walk_skips_what_pure_skips(data: st.DataObject, npd: int) -> None:
    """``take_domain_idle`` with a reservation's nodes excluded (the walk a gang makes
    on a pool whose nodes are held for another): the same nodes in the same order, and
    the same partial ``out`` when the pool has too few."""
    pools = [spec(0, 8, 4 * npd, npd, PricingKind.ON_DEMAND)]
    compiled = FleetState(pools)
    pure = Pure(pools)
    for job in range(1, data.draw(st.integers(1, 9))):  # some domains partly taken
        r = GangRequest(job, "t", data.draw(st.integers(1, 3)), 4 * npd, ("H100",))
        nodes = pick_nodes(pure, 0, r)
        if nodes is not None:
            pure.allocate(r, 0, nodes, 0.0)
            compiled.allocate(r, 0, nodes, 0.0)
    rows = list(pure.pool_rows(0))
    for _ in range(6):
        exclude = set(data.draw(st.lists(st.sampled_from(rows), max_size=len(rows))))
        n = data.draw(st.integers(1, len(rows)))
        head = data.draw(st.lists(st.sampled_from(rows), max_size=2, unique=True))
        got_pure = pure.take_domain_idle(0, n, list(head), exclude)
        out: list[int] = list(head)
        got = compiled.take_domain_idle(0, n, out, exclude)
        assert got == got_pure
        if got is None:  # what was appended before the pool ran out is the same too
            out_pure = list(head)
            pure.take_domain_idle(0, n, out_pure, exclude)
            assert out == out_pure
