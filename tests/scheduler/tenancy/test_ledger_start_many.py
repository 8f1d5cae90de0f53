"""``TenantLedger.start_many`` is ``on_start`` called in a loop: after any history of
starts, stops, spend and month rolls, both leave the ledger in the same state, every
float to the last bit (compared by ``repr``), every queue in the same order, and both
raise the same errors."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.scheduler.requests import TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

TENANTS = [
    TenantSpec("a", guaranteed_gpus={"H100": 16, "A100": 8}, monthly_budget_usd=900.0),
    TenantSpec("b", guaranteed_gpus={"H100": 8}),
    TenantSpec("c", can_borrow=False, guaranteed_gpus={"A100": 16}),
]
MONTH = 86400.0


def _new(half_life: float, calendar: bool, default: bool) -> TenantLedger:
    return TenantLedger(
        TENANTS,
        {"H100": 48, "A100": 32},
        half_life_s=half_life,
        month_start_s=None if calendar else 0.0,
        month_length_s=MONTH,
        **({} if default else {"default_tenant": None}),
    )


def _state(led: TenantLedger) -> str:
    return repr(sorted(vars(led).items()))


def _starts(data: st.DataObject, first: int, now: float, n: int) -> list[tuple[Any, ...]]:
    out = []
    for j in range(first, first + n):
        now += data.draw(st.sampled_from((-60.0, 0.0, 1.5, 60.0, 900.0, MONTH / 2)))
        out.append(
            (
                j,
                data.draw(st.sampled_from(("a", "b", "c", "zed"))),
                data.draw(st.sampled_from(("H100", "A100", "T4", None))),
                data.draw(st.sampled_from((0, 1, 4, 8, 16))),
                data.draw(st.sampled_from((0.0, 3.0, 30.0, 0.1))),
                now,
                data.draw(st.sampled_from((None, 0.0, 60.0, 3600.0, 1e6))),
            )
        )
    return out


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data())
def test_start_many_is_on_start_in_a_loop(data: st.DataObject) -> None:
    half_life = data.draw(st.sampled_from((3600.0, 86400.0, math.inf)))
    calendar = data.draw(st.booleans())
    default = data.draw(st.booleans())
    t0 = data.draw(st.sampled_from((0.0, 1.7e9)))
    one, many = _new(half_life, calendar, default), _new(half_life, calendar, default)
    # the same history on both: starts, stops, spend, expired commitments
    seed = data.draw(st.integers(0, 2**32 - 1))
    _replay_history(one, seed, t0)
    _replay_history(many, seed, t0)
    assert _state(one) == _state(many)
    starts = _starts(data, 0, t0 + MONTH, data.draw(st.integers(0, 40)))
    if data.draw(st.booleans()) and starts:
        starts.append(starts[data.draw(st.integers(0, len(starts) - 1))])  # a repeat
    err_one = err_many = None
    try:
        for j, t, g, n, usd, now, dur in starts:
            one.on_start(j, t, g, n, usd, None, now, expected_duration_s=dur)
    except (ValueError, KeyError) as exc:
        err_one = repr(exc)
    try:
        many.start_many(starts)
    except (ValueError, KeyError) as exc:
        err_many = repr(exc)
    assert err_one == err_many
    assert _state(one) == _state(many)
    later = starts[-1][5] + 3600.0 if starts else t0
    assert one.dominant_shares(later) == many.dominant_shares(later)
    for name in ("a", "b", "c"):
        assert one.spent(name, later) == many.spent(name, later)
        assert one.committed(name, later) == many.committed(name, later)


def _replay_history(led: TenantLedger, seed: int, t0: float) -> None:
    rng = random.Random(seed)
    now = t0
    running: list[int] = []
    for j in range(rng.randint(0, 20)):
        now += rng.choice((0.0, 60.0, 900.0, MONTH / 3))
        what = rng.choice(("start", "stop", "spend", "admit"))
        if what == "stop" and running:
            led.on_stop(running.pop(rng.randrange(len(running))), now)
        elif what == "spend":
            led.add_spend("a", 12.5, now)
        elif what == "admit":
            led.committed("a", now)
        else:
            led.on_start(1000 + j, rng.choice("ab"), "H100", rng.choice((1, 8)), 30.0, None,
                         now, rng.choice((None, 120.0)))  # fmt: skip
            running.append(1000 + j)


def test_start_many_refuses_an_unknown_tenant_without_a_default() -> None:
    led = _new(3600.0, False, False)
    with pytest.raises(KeyError):
        led.start_many([(1, "nobody", "H100", 1, 1.0, 0.0, None)])
