"""The ledger's trial support for preemption: ``checkpoint``/``rollback`` undo stopping
victims and asking ``admit`` to the last float and queue order, and
``refuses_whatever_stops`` never says "refused" when stopping some of the tenant's own
work would admit."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

TYPES = ("H100", "A100")


def _ledger(data: st.DataObject) -> tuple[TenantLedger, list[int], float]:
    tenants = [
        TenantSpec("a", guaranteed_gpus={"H100": 16, "A100": 8}, monthly_budget_usd=900.0),
        TenantSpec("b", guaranteed_gpus={"H100": 8}),
        TenantSpec("c", can_borrow=False, guaranteed_gpus={"A100": 16}),
    ]
    led = TenantLedger(tenants, {"H100": 48, "A100": 32}, month_start_s=0.0)
    now = 0.0
    running: list[int] = []
    for j in range(data.draw(st.integers(0, 25))):
        now += data.draw(st.sampled_from((0.0, 60.0, 900.0)))
        if running and data.draw(st.booleans()):
            led.on_stop(running.pop(data.draw(st.integers(0, len(running) - 1))), now)
            continue
        led.on_start(
            j,
            data.draw(st.sampled_from(("a", "b", "c"))),
            data.draw(st.sampled_from(TYPES)),
            data.draw(st.sampled_from((1, 4, 8))),
            data.draw(st.sampled_from((0.0, 3.0, 30.0))),
            None,
            now,
            data.draw(st.sampled_from((None, 60.0, 3600.0))),
        )
        running.append(j)
    return led, running, now


def _fingerprint(led: TenantLedger) -> dict[str, Any]:
    # dataclass equality compares every field (dicts, OrderedDict order, _Job fields)
    return copy.deepcopy({k: v for k, v in vars(led).items()})


@settings(max_examples=examples(150), deadline=None)
@given(data=st.data())
def test_rollback_restores_everything(data: st.DataObject) -> None:
    led, running, now = _ledger(data)
    led.advance(now)
    before = _fingerprint(led)
    victims = data.draw(st.lists(st.sampled_from(running), unique=True)) if running else []
    tenant = data.draw(st.sampled_from(("a", "b", "c")))
    gpu_type = data.draw(st.sampled_from(TYPES))
    req = GangRequest(999, tenant, 1, data.draw(st.sampled_from((1, 8, 16))), (gpu_type,))
    cp = led.checkpoint(victims, tenant)
    mid = _fingerprint(led)  # checkpoint may retire expired commitments (as admit would)
    for j in victims:
        led.on_stop(j, now)
    led.admit(req, gpu_type, 5.0, now)
    led.rollback(cp)
    assert _fingerprint(led) == mid
    # and nothing that any later answer reads differs from never having tried
    for t in ("a", "b", "c"):
        assert led.spent(t, now + 10.0) == _spent_without_trial(before, t, now)
        for g in TYPES:
            assert led.reclaimable(t, g, 1) == _reclaimable(before, t, g)


def _spent_without_trial(before: dict[str, Any], t: str, now: float) -> float:
    other = TenantLedger([], {})
    vars(other).update(copy.deepcopy(before))
    return other.spent(t, now + 10.0)


def _reclaimable(before: dict[str, Any], t: str, g: str) -> list[int]:
    other = TenantLedger([], {})
    vars(other).update(copy.deepcopy(before))
    return other.reclaimable(t, g, 1)


@settings(max_examples=examples(150), deadline=None)
@given(data=st.data())
def test_refuses_whatever_stops_is_sound(data: st.DataObject) -> None:
    led, running, now = _ledger(data)
    gpus = data.draw(st.sampled_from((1, 4, 8, 16)))
    for tenant in ("a", "b", "c"):
        for g in TYPES:
            mine = [
                j for j in running if led._jobs[j].tenant == tenant and led._jobs[j].gpu_type == g
            ]
            own_stoppable = sum(led._jobs[j].gpus for j in mine)
            if not led.refuses_whatever_stops(tenant, g, gpus, own_stoppable):
                continue
            trial = copy.deepcopy(led)
            others = [j for j in running if j not in mine]
            some = data.draw(st.lists(st.sampled_from(mine), unique=True)) if mine else []
            for j in some + data.draw(
                st.lists(st.sampled_from(others), unique=True) if others else st.just([])
            ):
                trial.on_stop(j, now)
            req = GangRequest(999, tenant, 1, gpus, (g,))
            why = trial.admit(req, g, 0.0, now)
            assert why is not None and why.startswith("over quota")


@settings(max_examples=examples(100), deadline=None)
@given(data=st.data())
def test_reclaimable_ids_is_reclaimable_as_a_set(data: st.DataObject) -> None:
    led, _, _ = _ledger(data)
    for tenant in ("a", "b", "c"):
        for gpus in (1, 8, 16):
            types = data.draw(st.sampled_from(((TYPES[0],), (TYPES[1],), TYPES)))
            want = {j for g in types for j in led.reclaimable(tenant, g, gpus)}
            got = led.reclaimable_ids(tenant, types, gpus)
            assert set(got) == want and len(got) == len(want)
            assert all(j in got for j in want) and -1 not in got
