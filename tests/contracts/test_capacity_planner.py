"""The capacity planner against hand-computed optima, its baselines and policies, and an
independent re-check of every plan (``planner_check.recheck``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from planner_check import recheck

from intercloud.catalog import load_bundled
from intercloud.contracts.capacity_planner import (
    Infeasibility,
    Option,
    PlanInfeasible,
    plan_capacity,
    solve_plan,
)
from intercloud.contracts.planner_input import (
    PlanningProblem,
    load_problem_text,
    with_signed_contracts,
)
from intercloud.contracts.spec import load_contracts_text
from intercloud.contracts.synthetic import synthetic_problem
from intercloud.specs.errors import SpecError

REPO = Path(__file__).resolve().parents[2]
# Calendar hours of 2026-01, 2026-02, 2026-03.
JAN, FEB, MAR = 744.0, 672.0, 744.0


def _problem(demand: dict, offers: dict) -> PlanningProblem:
    return load_problem_text(yaml.safe_dump(demand), yaml.safe_dump(offers))


def _demand(training: list[float], inference: list[float] | None = None) -> dict:
    series = [{"accelerator": "H100", "kind": "training", "gpu_hours": training}]
    if inference is not None:
        series.append({"accelerator": "H100", "kind": "inference", "gpu_hours": inference})
    return {"start": "2026-01", "demand": series}


def _two(policy: dict | None = None) -> dict:
    doc: dict = {
        "providers": [
            {"provider": "aws", "offers": [{"accelerator": "H100", "on_demand": 4.0}]},
            {"provider": "gcp", "offers": [{"accelerator": "H100", "on_demand": 5.0}]},
        ]
    }
    if policy:
        doc["policy"] = policy
    return doc


def test_cheapest_on_demand_without_caps() -> None:
    pb = _problem(_demand([1000.0] * 3), _two())
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    assert r.plan.total_usd == pytest.approx(3 * 1000 * 4.0)
    assert r.all_on_demand_usd == pytest.approx(12000.0)
    assert r.single_provider_usd == pytest.approx({"aws": 12000.0, "gcp": 15000.0})
    assert r.caps_cost_usd == pytest.approx(0.0)


def test_cap_binds_and_costs() -> None:
    pb = _problem(_demand([1000.0] * 3), _two({"max_share": 0.6}))
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    # aws at most 600 of each month's 1000 GPU-hours, gcp the other 400.
    assert r.plan.total_usd == pytest.approx(3 * (600 * 4.0 + 400 * 5.0))
    assert r.uncapped_usd == pytest.approx(12000.0)
    assert r.caps_cost_usd == pytest.approx(1200.0)
    assert r.best_single_provider == ("aws", pytest.approx(12000.0))
    assert np.allclose(r.plan.provider_share()[0], 0.6)


def test_primary_partner_minimum_binds() -> None:
    pb = _problem(_demand([1000.0] * 3), _two({"primary": "gcp", "primary_min_share": 0.5}))
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    assert r.plan.total_usd == pytest.approx(3 * (500 * 4.0 + 500 * 5.0))
    assert r.caps_cost_usd == pytest.approx(1500.0)


def test_one_year_reservation_beats_on_demand_by_hand() -> None:
    # 100 GPUs all year: 1y reserved at 3.0 x 8,760 h; 3y at 2.5 x 26,304 h is dearer;
    # on-demand at 4.0 dearer still.
    months = [100 * h for h in (744, 672, 744, 720, 744, 720, 744, 744, 720, 744, 720, 744)]
    offers = {
        "providers": [
            {
                "provider": "aws",
                "offers": [
                    {
                        "accelerator": "H100",
                        "on_demand": 4.0,
                        "reserved_1y": 3.0,
                        "reserved_3y": 2.5,
                    }
                ],
            }
        ]
    }
    pb = _problem(_demand(months), offers)
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    assert r.plan.total_usd == pytest.approx(100 * 3.0 * 8760)
    assert r.plan.reserved_1y_new[0, 0, 0] == pytest.approx(100)
    assert r.all_on_demand_usd == pytest.approx(100 * 4.0 * 8760)


def test_spot_serves_training_only() -> None:
    offers = {
        "providers": [
            {
                "provider": "aws",
                "offers": [
                    {
                        "accelerator": "H100",
                        "on_demand": 4.0,
                        "spot": {"usd": 1.5, "availability": 0.5},
                    }
                ],
            }
        ]
    }
    pb = _problem(_demand([600.0] * 3, [400.0] * 3), offers)
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    # Training by spot: 600 useful hours = 1,200 bought at 1.5; inference on-demand.
    assert r.plan.total_usd == pytest.approx(3 * (1200 * 1.5 + 400 * 4.0))
    assert r.plan.cost_usd["aws"][Option.SPOT] == pytest.approx(3 * 1800.0)


def _blocks(extra: float) -> PlanningProblem:
    offers = {
        "providers": [
            {
                "provider": "aws",
                "offers": [
                    {
                        "accelerator": "H100",
                        "on_demand": 4.0,
                        "capacity_block": {"usd": 2.0, "gpus_per_instance": 8},
                    }
                ],
            }
        ]
    }
    # February only: each instance gives 8 x (672 - 0.5) useful GPU-hours.
    return _problem(_demand([0.0, 3 * 8 * (FEB - 0.5) + extra, 0.0]), offers)


def test_capacity_blocks_whole_instances_and_the_early_end() -> None:
    pb = _blocks(0.0)
    plan = solve_plan(pb)
    assert plan is not None
    recheck(pb, plan)
    assert plan.capacity_block_instances[0, 0, 1] == 3
    assert plan.total_usd == pytest.approx(3 * 8 * FEB * 2.0)  # the lost half hour is paid
    # 100 GPU-hours more: a fourth instance (5,376 USD) loses to 100 on-demand hours.
    pb = _blocks(100.0)
    for exact in (False, True):
        plan = solve_plan(pb, exact=exact)
        assert plan is not None
        recheck(pb, plan)
        assert plan.capacity_block_instances[0, 0, 1] == 3
        assert plan.total_usd == pytest.approx(3 * 8 * FEB * 2.0 + 100 * 4.0)


def test_commit_tier_signed_when_it_pays() -> None:
    offers = _two()
    offers["providers"][0]["commit_tiers"] = [{"commit_usd": 10000.0, "discount": 0.1}]
    pb = _problem(_demand([1000.0] * 3), offers)
    for exact in (False, True):
        r = plan_capacity(pb, exact=exact)
        recheck(pb, r.plan)
        # 12,000 list spend, 10 % off = 10,800 >= the 10,000 commitment.
        assert r.plan.tier == (0, -1)
        assert r.plan.total_usd == pytest.approx(10800.0)
    offers["providers"][0]["commit_tiers"] = [{"commit_usd": 20000.0, "discount": 0.1}]
    pb = _problem(_demand([1000.0] * 3), offers)
    r = plan_capacity(pb)
    assert r.plan.tier == (-1, -1)  # 20,000 committed for 12,000 of use: not worth it
    assert r.plan.total_usd == pytest.approx(12000.0)


def test_availability_ramp_and_shortfall_report() -> None:
    offers = _two()
    offers["providers"][0]["offers"][0]["max_gpus"] = [{"month": "2026-02", "gpus": 1}]
    offers["providers"][1]["offers"][0]["max_gpus"] = [{"month": "2026-01", "gpus": 1}]
    # January: only gcp (1 GPU = 744 h); February on: both.
    pb = _problem(_demand([1000.0, 1000.0, 1000.0]), offers)
    with pytest.raises(PlanInfeasible) as exc:
        plan_capacity(pb)
    assert exc.value.reason == Infeasibility.DEMAND_UNMET
    assert [(s.accelerator, s.month) for s in exc.value.shortfalls] == [("H100", "2026-01")]
    assert exc.value.shortfalls[0].gpu_hours == pytest.approx(1000 - JAN)
    assert "H100 2026-01 short 256 GPU-hours" in str(exc.value)
    pb = _problem(_demand([700.0, 1000.0, 1000.0]), offers)
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    # aws holds 1 GPU from February (672 h, then 744 h); gcp supplies the rest.
    gcp_hours = 700 + (1000 - FEB) + (1000 - MAR)
    assert r.plan.cost_usd["gcp"][Option.ON_DEMAND] == pytest.approx(gcp_hours * 5.0)
    assert r.plan.total_usd == pytest.approx(gcp_hours * 5.0 + (FEB + MAR) * 4.0)


def test_infeasible_cap_is_reported_as_such() -> None:
    offers = _two({"max_share": 0.5})
    offers["providers"][1]["offers"][0]["max_gpus"] = [{"month": "2026-01", "gpus": 0}]
    offers["providers"][1]["offers"][0]["max_gpus"].append({"month": "2026-03", "gpus": 100})
    pb = _problem(_demand([1000.0] * 3), offers)
    with pytest.raises(PlanInfeasible) as exc:
        plan_capacity(pb)
    assert exc.value.reason == Infeasibility.CAPS
    assert {s.month for s in exc.value.shortfalls} == {"2026-01", "2026-02"}


def test_synthetic_plan_rechecks_and_beats_baselines() -> None:
    pb = synthetic_problem(
        months=24, providers=3, accelerators=3, seed=1, max_share=0.45, primary_min_share=0.3
    )
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    assert r.all_on_demand_usd is not None
    assert r.plan.total_usd <= r.all_on_demand_usd * (1 + 1e-9)
    assert r.caps_cost_usd is not None and r.caps_cost_usd > 0
    # Any one provider alone is a plan without caps: never cheaper than the uncapped one.
    best = r.best_single_provider
    assert best is not None and r.uncapped_usd is not None
    assert r.uncapped_usd <= best[1] * (1 + 1e-6)
    assert r.plan.lower_bound_usd <= r.plan.total_usd * (1 + 1e-9)
    assert r.plan.gap < 0.01
    # Branch and bound is no cheaper than the bound, and the rounded plan is close to it.
    exact = solve_plan(pb, exact=True)
    assert exact is not None
    recheck(pb, exact)
    assert exact.total_usd >= r.plan.lower_bound_usd * (1 - 1e-6)
    assert r.plan.total_usd <= exact.total_usd * 1.01


def test_seed_scenario_plan_rechecks() -> None:
    text = [
        (REPO / "examples" / "capacity" / n).read_text() for n in ("demand.yaml", "offers.yaml")
    ]
    pb = load_problem_text(*text)
    plan = solve_plan(pb)
    assert plan is not None
    recheck(pb, plan)
    od = solve_plan(pb, options=frozenset({Option.ON_DEMAND}))
    assert od is not None and plan.total_usd < od.total_usd


def test_only_named_providers_are_used() -> None:
    pb = synthetic_problem(
        months=12, providers=3, accelerators=2, seed=2, max_share=1.0, primary_min_share=0.0
    )
    pb = dataclasses.replace(pb, max_gpus=np.full_like(pb.max_gpus, np.inf))
    plan = solve_plan(pb, providers=frozenset({"aws"}), caps=False)
    assert plan is not None
    recheck(pb, plan)
    assert plan.supplied_hours[[0, 2]].sum() == pytest.approx(0.0, abs=1e-6)


def test_signed_contracts_are_capacity_already_paid() -> None:
    # February 2026: one p5.48xlarge (8 H100) reserved all month, and a Capacity Block of
    # one p5.48xlarge for the same month whose last 30 minutes are unusable.
    contracts = {
        "contracts": [
            {
                "name": "signed",
                "provider": "aws",
                "term": {"start": "2026-01-01", "end": "2027-01-01"},
                "reserved_blocks": [
                    {
                        "instance_type": "p5.48xlarge",
                        "region": "us-east-1",
                        "count": 1,
                        "start": "2026-02-01",
                        "end": "2026-03-01",
                        "usd_per_node_hour": 40.0,
                    }
                ],
                "capacity_blocks": [
                    {
                        "instance_type": "p5.48xlarge",
                        "region": "us-east-2",
                        "count": 1,
                        "start": "2026-02-01",
                        "end": "2026-03-01",
                        "usd_per_node_hour": 30.0,
                    }
                ],
            }
        ]
    }
    catalog = load_bundled()
    portfolio = load_contracts_text(yaml.safe_dump(contracts), catalog)
    pb = _problem(_demand([0.0, 16 * FEB, 0.0]), _two())
    pb = with_signed_contracts(pb, portfolio, catalog)
    assert pb.signed_usd == pytest.approx(FEB * (40.0 + 30.0))
    assert pb.signed[0, 0, 1] == pytest.approx(8 + 8 * (FEB - 0.5) / FEB)
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    # Only the Capacity Block's lost half hour (8 GPU-hours) is bought, on aws on-demand.
    assert r.plan.total_usd == pytest.approx(8 * 0.5 * 4.0)
    bad = dict(contracts["contracts"][0], provider="oci", reserved_blocks=[], capacity_blocks=[])
    with pytest.raises(SpecError) as exc:
        with_signed_contracts(
            pb, load_contracts_text(yaml.safe_dump({"contracts": [bad]}), catalog), catalog, "c"
        )
    assert exc.value.field == "contracts[0].provider"


@pytest.mark.parametrize("seed", range(5))
def test_random_small_problems_recheck(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pb = synthetic_problem(
        months=int(rng.integers(6, 30)),
        providers=int(rng.integers(2, 5)),
        accelerators=int(rng.integers(1, 4)),
        seed=seed,
        max_share=0.5,
        primary_min_share=float(rng.uniform(0.0, 0.3)),
    )
    r = plan_capacity(pb)
    recheck(pb, r.plan)
    assert r.all_on_demand_usd is not None
    assert r.plan.total_usd <= r.all_on_demand_usd * (1 + 1e-9)
    assert r.caps_cost_usd is not None and r.caps_cost_usd >= 0
    assert r.plan.lower_bound_usd <= r.plan.total_usd * (1 + 1e-9)
