"""Each failure model of the twin is observable when on and silent when off."""

from __future__ import annotations

import pytest
from twin_helpers import fleet, random_trace, trace

from intercloud.twin.engine import TwinConfig, simulate
from intercloud.twin.failures import FailureModels, JobModel, Outage
from intercloud.twin.metrics import TwinReport

POOLS = """{instance_type: p5.48xlarge, pricing: committed, nodes: 6}
{instance_type: p5.48xlarge, pricing: spot, nodes: 6, provision_delay_s: 60}"""


def run(fm: FailureModels, seed: int = 1) -> TwinReport:
    tr = random_trace(200, seed=seed, days=4, spot=1.0)
    return simulate(fleet(POOLS), tr, TwinConfig(seed=seed, failures=fm)).report


def test_all_off_loses_nothing_but_preemptions() -> None:
    r = run(FailureModels.off())
    assert r.failures == {}
    assert r.evictions == {}


def test_gpu_job_interruptions() -> None:
    r = run(FailureModels.off().with_(interrupts_per_gpu_hour=5e-3))
    assert r.failures.get("gpu_interrupt", 0) > 0
    assert r.lost_gpu_hours_by_cause.get("node_failure", 0) > 0


def test_node_failures() -> None:
    r = run(FailureModels.off().with_(node_failures_per_1000_node_days=500.0))
    assert r.failures.get("node", 0) > 0


def test_spot_reclaims_come_from_the_provider() -> None:
    r = run(FailureModels.off().with_(spot_reclaims_per_node_day=5.0))
    assert r.failures.get("spot_reclaim", 0) > 0
    assert r.evictions.get("spot_reclaim", 0) > 0


def test_random_region_outages() -> None:
    fm = FailureModels.off().with_(region_outages_per_year=200.0, outage_mean_s=3600.0)
    r = run(fm)
    assert r.failures.get("outage", 0) > 0


def test_provider_outage_moves_work_to_the_other_provider() -> None:
    """AWS is lost for a day: the job there is evicted and restarts on OCI at once."""
    text_extra = """
  - name: oci
    regions:
      - name: us-chicago-1
        zones:
          - name: us-chicago-1-AD-1
            pools:
              - {instance_type: BM.GPU.H100.8, pricing: committed, nodes: 1}
"""
    f = fleet("{instance_type: p5.48xlarge, pricing: committed, nodes: 1}", text_extra)
    fm = FailureModels.off().with_(outages=(Outage("aws", "", 3600.0, 86_400.0),))
    cfg = TwinConfig(failures=fm, jobs=JobModel(checkpoint_interval_s=0, restart_overhead_s=0))
    res = simulate(f, trace([(0, 7200, 8), (0, 7200, 8)]), cfg, keep_decisions=True)
    r = res.report
    assert r.evictions == {"outage": 1}
    # the evicted job lost its hour (no checkpoints) and ran again on OCI after the
    # other job finished there at 2 h: 2 h + 2 h
    assert r.makespan_s == pytest.approx(4 * 3600.0)
    assert r.lost_gpu_hours_by_cause == pytest.approx({"outage": 8.0})


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"failures\.node_repair_s"):
        FailureModels(node_repair_s=0)
    with pytest.raises(ValueError, match=r"jobs\.checkpoint_interval_s"):
        JobModel(checkpoint_interval_s=-1)
    with pytest.raises(ValueError, match=r"outage\.duration_s"):
        Outage("aws", "", 0, 0)
