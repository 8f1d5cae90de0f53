"""The twin's spend ledger (``twin/usage.py`` -> ``contracts/ledger.py``): hand-checked
chargeback of a reserved pool, an attempt cut by its contract's end, and on a random
run the ledger's spend per pricing kind equal to the recorder's own cost integral."""

from __future__ import annotations

import pytest
from twin_helpers import fleet, random_trace, trace

from intercloud.twin.engine import TwinConfig, simulate
from intercloud.twin.failures import FailureModels, JobModel

H = 3600.0


def reserved(start: str, end: str) -> str:
    return (
        f"contracts:\n  - {{name: c, provider: aws, start: {start}, end: {end}, "
        "usd_per_node_hour: 10}"
    )


RESERVED_POOL = "{instance_type: p5.48xlarge, pricing: reserved, nodes: 1, contract: c}"


def test_a_reserved_pool_is_charged_to_its_tenants_and_the_rest_is_idle() -> None:
    """One reserved node at $10/h from the run's start: tenant a runs 5 h, tenant b 3 h
    from 10 h; the run ends at 13 h. Paid: 13 node-hours, $130: a $50, b $30, idle $50."""
    f = fleet(RESERVED_POOL, reserved("2026-01-01", "2026-01-03"))
    cfg = TwinConfig(failures=FailureModels.off(), stall_wakeups=0)
    jobs = trace([(0, 5 * H, 8), (10 * H, 3 * H, 8)], tenants=[0, 1], tenant_names=("a", "b"))
    led = simulate(f, jobs, cfg).report.ledger
    assert led["at"] == "2026-01-01T13:00:00Z"
    assert led["chargeback"] == {
        "a": {"2026-01": pytest.approx(50.0)},
        "b": {"2026-01": pytest.approx(30.0)},
        "unassigned": {"2026-01": pytest.approx(50.0)},
    }
    (c,) = led["contracts"]
    assert c["name"] == "c" and c["spent_usd"] == pytest.approx(130.0)
    assert c["committed_usd"] == pytest.approx(480.0)  # 48 h x $10 over the term
    (pool,) = c["reserved"]
    assert (pool["paid_node_hours"], pool["used_node_hours"]) == (
        pytest.approx(13.0),
        pytest.approx(8.0),
    )


def test_an_attempt_cut_by_its_contracts_end_is_charged_until_the_cut() -> None:
    f = fleet(RESERVED_POOL, reserved("2026-01-01", "2026-01-02"))
    cfg = TwinConfig(failures=FailureModels.off(), jobs=JobModel(checkpoint_interval_s=7 * H),
                     stall_wakeups=0)  # fmt: skip
    r = simulate(f, trace([(0, 48 * H, 8)]), cfg).report
    assert r.evictions == {"contract_ended": 1}
    assert r.ledger["chargeback"] == {"t": {"2026-01": pytest.approx(240.0)}}


def test_the_ledger_spends_what_the_recorder_costs_per_pricing_kind() -> None:
    """Elastic on-demand and spot pools grow and shrink, a reserved pool is paid all
    along, jobs are preempted and reclaimed: per pricing kind, the ledger built from
    the run's intervals spends what the recorder's node-hours x price integral says."""
    pools = """
        {instance_type: p5.48xlarge, pricing: on_demand, nodes: 3}
        {instance_type: p5.48xlarge, pricing: spot, nodes: 3}
        {instance_type: p5.48xlarge, pricing: reserved, nodes: 2, contract: c}
    """
    f = fleet(pools, reserved("2026-01-01", "2026-03-01"))
    cfg = TwinConfig(until_s=20 * 86_400.0)
    r = simulate(f, random_trace(120, seed=3, days=15), cfg).report
    by_kind = r.ledger["by_kind"]
    assert set(by_kind) == set(r.cost_by_pricing)
    for kind, usd in r.cost_by_pricing.items():
        assert by_kind[kind] == pytest.approx(usd, abs=0.006), kind  # cents
    spent = sum(sum(per.values()) for per in r.ledger["chargeback"].values())
    assert spent == pytest.approx(r.cost_usd, abs=0.05)
    assert set(r.ledger["chargeback"]) <= {"a", "b", "unassigned"}
