"""Property tests of the ledger driven by a tiny model of the core (hypothesis).

Random tenants (guarantees, borrowing, budgets) and random sequences of submissions, early
stops and time steps. The model core admits through the ledger, reclaims borrowed work
when a tenant within its guarantee finds no free GPUs, and ends jobs at their expected end
at the latest. Checked after every step: guarantees never exceeded by work counted as
guaranteed, borrowing only by tenants allowed to and only of idle GPUs, a tenant within its
guarantee always gets its GPUs (after reclaiming), physical capacity never exceeded,
budgets never exceeded by admitted work; and the same input gives the same decisions.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from hypothesis import event, given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import UNKNOWN_DURATION_S, TenantLedger

TYPES = ("H100", "A100")
NAMES = ("a", "b", "c")
EPS = 1e-6


@dataclass(frozen=True)
class Submit:
    tenant: str
    gpu_type: str
    gpus: int
    usd_per_hour: float
    duration_s: float | None


@dataclass(frozen=True)
class StopEarly:
    pick: int


@dataclass(frozen=True)
class Advance:
    dt: float


def tenant_specs(
    min_guarantee: int = 0, budgets: bool = True
) -> st.SearchStrategy[tuple[TenantSpec, ...]]:
    return st.tuples(
        *[
            st.builds(
                TenantSpec,
                name=st.just(n),
                weight=st.sampled_from([0.5, 1.0, 3.0]),
                guaranteed_gpus=st.fixed_dictionaries(
                    {g: st.integers(min_guarantee, 24) for g in TYPES}
                )
                if min_guarantee
                else st.fixed_dictionaries({}, optional={g: st.integers(0, 24) for g in TYPES}),
                can_borrow=st.booleans(),
                monthly_budget_usd=st.one_of(st.none(), st.floats(0.0, 3000.0))
                if budgets
                else st.none(),
            )
            for n in NAMES
        ]
    )


def ops(submits: int = 1, min_size: int = 0) -> st.SearchStrategy[list[object]]:
    submit = st.builds(
        Submit,
        tenant=st.sampled_from(NAMES),
        gpu_type=st.sampled_from(TYPES),
        gpus=st.integers(0, 24),
        usd_per_hour=st.sampled_from([0.0, 10.0, 98.5, 400.0]),
        duration_s=st.one_of(st.none(), st.floats(60.0, 20 * 3600.0)),
    )
    return st.lists(
        st.one_of(
            *[submit] * submits,
            st.builds(StopEarly, pick=st.integers(0, 1000)),
            st.builds(Advance, dt=st.floats(0.0, 6 * 3600.0)),
        ),
        min_size=min_size,
        max_size=80,
    )


def simulate(
    specs: tuple[TenantSpec, ...], capacity: dict[str, int], steps: list[object]
) -> list[str]:
    """Run the model core over ``steps``, checking invariants; return its decisions."""
    month = 24 * 3600.0
    led = TenantLedger(specs, capacity, half_life_s=3600.0, month_start_s=0.0, month_length_s=month)
    by_name = {s.name: s for s in specs}
    sum_g = {g: sum(s.guaranteed_gpus.get(g, 0) for s in specs) for g in TYPES}
    physical = all(capacity[g] >= sum_g[g] for g in TYPES)
    running: dict[int, tuple[str, str, int, float]] = {}  # job -> tenant, type, gpus, end
    ends: list[tuple[float, int]] = []
    decisions: list[str] = []
    now = 0.0
    next_id = 0

    def stop(jid: int, at: float) -> None:
        assert led.on_stop(jid, at)
        del running[jid]

    def check(at: float) -> None:
        for s in specs:
            for g in TYPES:
                own = led.running(s.name, g) - led.borrowed(s.name, g)
                guaranteed = s.guaranteed_gpus.get(g, 0)
                assert 0 <= own <= guaranteed
                if not s.can_borrow:
                    assert led.borrowed(s.name, g) == 0
                if led.borrowed(s.name, g):
                    assert own == guaranteed  # borrowing only once the guarantee is full
            if s.monthly_budget_usd is not None:
                assert led.spent(s.name, at) <= s.monthly_budget_usd + EPS
                assert (
                    led.spent(s.name, at) + led.committed(s.name, at) <= s.monthly_budget_usd + EPS
                )
        for g in TYPES:
            assert led.total_running(g) == sum(v[2] for v in running.values() if v[1] == g)
            if physical:
                assert led.total_running(g) <= capacity[g]

    for step in steps:
        if isinstance(step, Advance):
            target = now + step.dt
            while ends and ends[0][0] <= target:
                end, jid = heapq.heappop(ends)
                if jid in running and running[jid][3] == end:
                    now = end
                    stop(jid, end)
                    check(now)
            now = target
        elif isinstance(step, StopEarly):
            if running:
                stop(sorted(running)[step.pick % len(running)], now)
        else:
            assert isinstance(step, Submit)
            req = GangRequest(
                job_id=next_id,
                tenant=step.tenant,
                nodes=1,
                gpus_per_node=step.gpus,
                accelerators=(step.gpu_type,),
                submit_s=now,
                duration_s=step.duration_s,
            )
            next_id += 1
            g, n = step.gpu_type, step.gpus
            idle_before = led.idle(g)
            within = led.borrow_needed(step.tenant, g, n) == 0
            why = led.admit(req, g, step.usd_per_hour, now)
            decisions.append(why or "admit")
            if why is not None:
                if why.startswith("over quota"):
                    assert not within
                    assert not by_name[step.tenant].can_borrow or n > idle_before
                continue
            if not within:
                assert by_name[step.tenant].can_borrow and n <= idle_before
            if physical:
                free = capacity[g] - led.total_running(g)
                if free < n and within:
                    for victim in led.reclaimable(step.tenant, g, n):
                        stop(victim, now)
                        decisions.append(f"reclaim {victim}")
                        free = capacity[g] - led.total_running(g)
                        if free >= n:
                            break
                    assert free >= n, "a tenant within its guarantee must get its GPUs"
                if free < n:
                    decisions.append("no capacity")
                    continue
            dur = step.duration_s if step.duration_s is not None else UNKNOWN_DURATION_S
            b = led.on_start(
                req.job_id, step.tenant, g, n, step.usd_per_hour, None, now, step.duration_s
            )
            assert (b == 0) == within
            running[req.job_id] = (step.tenant, g, n, now + dur)
            heapq.heappush(ends, (now + dur, req.job_id))
        check(now)
    shares = led.dominant_shares(now)
    decisions.append(repr(sorted(shares.items())))
    return decisions


def record_events(decisions: list[str]) -> None:
    """Label the example for ``--hypothesis-show-statistics`` (is each path exercised?)."""
    for kind in ("over quota", "over budget", "reclaim", "no capacity"):
        if any(d.startswith(kind) for d in decisions):
            event(kind)


@settings(max_examples=examples(300), deadline=None)
@given(
    specs=tenant_specs(),
    capacity=st.fixed_dictionaries({g: st.integers(0, 96) for g in TYPES}),
    steps=ops(min_size=5),
)
def test_quotas_budgets_and_determinism(
    specs: tuple[TenantSpec, ...], capacity: dict[str, int], steps: list[object]
) -> None:
    first = simulate(specs, capacity, steps)
    record_events(first)
    assert simulate(specs, capacity, steps) == first


@settings(max_examples=examples(150), deadline=None)
@given(specs=tenant_specs(min_guarantee=8, budgets=False), steps=ops(submits=4, min_size=30))
def test_reclaim_always_frees_a_guarantee_when_capacity_covers_guarantees(
    specs: tuple[TenantSpec, ...], steps: list[object]
) -> None:
    capacity = {g: sum(s.guaranteed_gpus.get(g, 0) for s in specs) for g in TYPES}
    record_events(simulate(specs, capacity, steps))


def test_long_seeded_runs_reclaim_and_keep_the_invariants() -> None:
    """Long plain-random runs (hypothesis favours short ones) that surely reach reclaim."""
    rng = random.Random(7)
    reclaims = 0
    for _ in range(60):
        specs = tuple(
            TenantSpec(
                n,
                weight=1.0,
                guaranteed_gpus={g: rng.randint(8, 24) for g in TYPES},
                can_borrow=rng.random() < 0.7,
                monthly_budget_usd=rng.choice([None, 2000.0]),
            )
            for n in NAMES
        )
        capacity = {g: sum(s.guaranteed_gpus[g] for s in specs) + rng.randint(0, 8) for g in TYPES}
        steps: list[object] = []
        for _ in range(120):
            r = rng.random()
            if r < 0.7:
                steps.append(
                    Submit(
                        rng.choice(NAMES),
                        rng.choice(TYPES),
                        rng.randint(0, 24),
                        rng.choice([0.0, 10.0, 50.0]),
                        rng.choice([None, rng.uniform(60, 72_000)]),
                    )
                )
            elif r < 0.85:
                steps.append(StopEarly(rng.randint(0, 1000)))
            else:
                steps.append(Advance(rng.uniform(0, 21_600)))
        decisions = simulate(specs, capacity, steps)
        reclaims += sum(d.startswith("reclaim") for d in decisions)
    assert reclaims > 50
