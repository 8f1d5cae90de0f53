"""The fair-share order's per-request column cache (``queue_order.columns``) against the
straightforward path that reads every request anew: the same columns bit for bit and the
same order, over many cycles of one cache with requests arriving, leaving, coming back as
new objects, repeated within a queue, and tenants' usage and weights moving (hypothesis)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.scheduler.queue_order import columns
from intercloud.scheduler.queue_order.columns import RequestColumns, fresh_columns
from intercloud.scheduler.queue_order.fair_share import FairShareOrder
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

TENANTS = ["a", "b", "c", "d", "e"]
ACCS = [("H100",), ("A100",), ("A100", "H100"), (), ("L4",)]


def _request(rng: random.Random, job_id: int) -> GangRequest:
    return GangRequest(
        job_id=job_id,
        tenant=rng.choice(TENANTS),
        nodes=rng.choice([1, 1, 2, 4]),
        gpus_per_node=rng.choice([0, 1, 8]),
        accelerators=rng.choice(ACCS),
        priority=rng.choice([0, 0, 1, 5]),
        submit_s=float(rng.randrange(0, 50)),  # many ties: job id and position decide
        duration_s=rng.choice([None, 60.0, 3600.0, 1e5 / 3]),
    )


def _same(a: object, b: object) -> None:
    for name in ("submit", "job_id", "neg_prio", "gpu_s", "tenant"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.tenants == b.tenants  # type: ignore[attr-defined]
    # accelerator codes: any numbering, the same lists
    assert [a.accs[i] for i in a.acc] == [b.accs[i] for i in b.acc]  # type: ignore[attr-defined]


@pytest.mark.parametrize("compiled", [True, False])
@settings(max_examples=examples(200), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cycles=st.integers(1, 25))
def test_cached_columns_and_order_equal_the_fresh_ones_across_cycles(
    compiled: bool, seed: int, cycles: int
) -> None:
    """``compiled``: the row lookup in C (``_walkc.rows_by_id``) where it was built, or
    the Python map."""
    if compiled and columns._ROWS is None:
        pytest.skip("the compiled _walkc was not built")
    with pytest.MonkeyPatch.context() as mp:
        if not compiled:
            mp.setattr(columns, "_ROWS", None)
        _cycles(seed, cycles)


def _cycles(seed: int, cycles: int) -> None:
    rng = random.Random(seed)
    specs = [TenantSpec(t, float(rng.choice([1, 2, 3]))) for t in TENANTS[:3]]
    led = TenantLedger(specs, {"H100": 64, "A100": 32}, half_life_s=600.0, month_start_s=0.0)
    cache = RequestColumns()
    cached, fresh = FairShareOrder(), FairShareOrder(cached=False)
    queue: list[GangRequest] = []
    next_id = 0
    for cyc in range(cycles):
        now = 100.0 * cyc
        # some leave (started), some arrive, some come back as new objects (requeued)
        queue = [r for r in queue if rng.random() < 0.7]
        for _ in range(rng.randrange(0, 30)):
            queue.append(_request(rng, next_id))
            next_id += 1
        if queue and rng.random() < 0.3:
            i = rng.randrange(len(queue))
            queue[i] = _request(rng, queue[i].job_id)
        if queue and rng.random() < 0.2:
            queue.append(queue[rng.randrange(len(queue))])  # the same object twice
        rng.shuffle(queue)
        if rng.random() < 0.5:
            led.on_start(-cyc - 1, rng.choice(TENANTS), rng.choice(["H100", "A100"]),
                         rng.choice([8, 16]), now, None, now)  # fmt: skip
        _same(cache.columns(queue), fresh_columns(queue))
        assert cached.order(queue, led, now) == fresh.order(queue, led, now)
        # compaction bounds the cache by the queue (plus a margin)
        assert len(cache) <= max(2 * len(queue) + 1024, len(set(map(id, queue))))


def test_compaction_keeps_the_live_rows_and_drops_the_gone_ones() -> None:
    rng = random.Random(7)
    cache = RequestColumns()
    big = [_request(rng, i) for i in range(3000)]
    _same(cache.columns(big), fresh_columns(big))
    small = big[:5] + [_request(rng, 5000 + i) for i in range(5)]
    _same(cache.columns(small), fresh_columns(small))
    assert len(cache) == len(small)  # 3005 rows > 2 * 10 + 1024: compacted
    again = [*small[::-1], _request(rng, 6000)]
    _same(cache.columns(again), fresh_columns(again))


def test_compiled_rows_by_id_looks_up_ids_and_checks_its_buffer() -> None:
    if columns._ROWS is None:
        pytest.skip("the compiled _walkc was not built")
    a, b, c = object(), object(), object()
    out = np.empty(3, dtype=np.int64)
    columns._ROWS([a, b, c], {id(a): 4, id(c): 0}, out)
    assert out.tolist() == [4, -1, 0]
    with pytest.raises(ValueError, match="int64 buffer"):
        columns._ROWS([a, b], {}, out)  # the wrong length
    with pytest.raises(ValueError, match="int64 buffer"):
        columns._ROWS([a], {}, np.empty(1, dtype=np.int32))
