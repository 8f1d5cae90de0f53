"""Inference services in the twin: the request-rate pattern, the autoscaler, replicas
placed by the scheduler core above training (preempting it), and what is reported."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from twin_helpers import fleet, trace

from intercloud.cli.main import app
from intercloud.twin.engine import TwinConfig, simulate
from intercloud.twin.failures import FailureModels, JobModel
from intercloud.twin.fleet_spec import FleetSpecError
from intercloud.twin.service_load import ServiceSpec, hourly_profile

H = 3600.0
MONDAY = dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp()
FOUR = "{instance_type: p5.48xlarge, pricing: committed, nodes: 4}"


def svc(**kw: object) -> ServiceSpec:
    base: dict[str, object] = {
        "name": "chat", "tenant": "t", "accelerator": "H100", "gpus_per_replica": 8,
        "requests_per_s_per_replica": 10.0, "peak_requests_per_s": 100.0,
    }  # fmt: skip
    return ServiceSpec(**(base | kw))  # type: ignore[arg-type]


def services_yaml(**kw: object) -> str:
    base: dict[str, object] = {
        "name": "chat", "tenant": "t", "accelerator": "H100", "gpus_per_replica": 8,
        "requests_per_s_per_replica": 10, "peak_requests_per_s": 40,
    }  # fmt: skip
    return "services:\n  - " + json.dumps(base | kw)


def test_azure_profiles_are_an_hour_of_mean_one() -> None:
    for name in ("azure_conv", "azure_code"):
        p = hourly_profile(name)
        assert len(p) == 57
        assert sum(p) / len(p) == pytest.approx(1.0)
        assert max(p) > 1.2  # the trace's burstiness is kept
    assert hourly_profile("flat") == (1.0,)


def test_daily_and_weekly_pattern() -> None:
    s = svc(profile="flat", daily_trough=0.25, peak_hour_utc=15.0, weekend_factor=0.5)
    assert s.rate_at(MONDAY + 15 * H) == pytest.approx(100.0)
    assert s.rate_at(MONDAY + 3 * H) == pytest.approx(25.0)  # twelve hours from the peak
    assert s.rate_at(MONDAY + 9 * H) == pytest.approx(62.5)  # halfway
    saturday = MONDAY + 5 * 86_400
    assert s.rate_at(saturday + 15 * H) == pytest.approx(50.0)
    conv = svc(profile="azure_conv")
    minutes = [conv.rate_at(MONDAY + 15 * H + 60 * m) for m in range(60)]
    shape = hourly_profile("azure_conv")
    assert minutes == pytest.approx([100 * shape[m * 57 // 60] for m in range(60)], rel=0.02)
    assert conv.rate_at(MONDAY + 16 * H) == pytest.approx(100 * shape[0], rel=0.02)


def test_replicas_for_a_rate() -> None:
    s = svc(target_utilization=0.5, min_replicas=2, max_replicas=30)
    assert s.replicas_for(0.0) == 2
    assert s.replicas_for(51.0) == 11  # 5 per replica at 50%
    assert s.replicas_for(1e6) == 30


def test_replicas_preempt_training_through_the_core() -> None:
    """Four 8-GPU nodes run four long training jobs; a service that needs two replicas
    all the time arrives with the run: the core preempts two training jobs for them
    (lower priority), which finish later, after the others."""
    f = fleet(FOUR, extra=services_yaml(profile="flat", min_replicas=2, max_replicas=2))
    tr = trace([(0, 10 * H, 8)] * 4)
    cfg = TwinConfig(
        failures=FailureModels.off(),
        jobs=JobModel(checkpoint_interval_s=H, restart_overhead_s=0),
        start_s=MONDAY,
    )
    res = simulate(f, tr, cfg, keep_decisions=True)
    r = res.report
    assert (r.jobs_total, r.jobs_completed) == (4, 4)  # replicas are not trace jobs
    s = r.services[0]
    assert s["replicas_max"] == 2 and s["replicas_mean"] == pytest.approx(2.0, rel=0.01)
    # the service and the training start at the same instant: the replicas go first
    first = [(d.kind.value, d.job_id) for t, d in res.decisions if t == MONDAY]
    assert [k for k, j in first if j >= 4] == ["place", "place"]
    assert r.preemptions == 0
    # two training jobs wait 10 h: the fleet is half the service's
    assert r.makespan_s == pytest.approx(20 * H)
    # GPU time is conserved: replicas count as used and useful
    assert r.gpu_hours_used == pytest.approx(4 * 8 * 10 + s["gpu_hours"])
    assert r.goodput == pytest.approx(1.0)


def test_a_peak_preempts_running_training_and_the_trough_gives_it_back() -> None:
    """A flat-profile service whose peak needs 3 replicas and whose trough needs 1, on 4
    nodes full of training: the autoscaler grows at the morning ramp (preempting
    training through the core) and shrinks at night."""
    f = fleet(
        FOUR,
        extra=services_yaml(
            profile="flat", peak_requests_per_s=24, requests_per_s_per_replica=10,
            daily_trough=0.2, peak_hour_utc=12, min_replicas=1, scale_down_window_s=0,
        ),
    )  # fmt: skip
    tr = trace([(0, 40 * H, 8)] * 6)
    cfg = TwinConfig(failures=FailureModels.off(), start_s=MONDAY, sample_s=600)
    r = simulate(f, tr, cfg).report
    s = r.services[0]
    assert s["replicas_max"] == 3
    assert s["training_preempted"] >= 2 and r.preemptions == s["training_preempted"]
    by_hour = {round(p[0] / H) % 24: p[2] for p in s["series"] if p[0] < 24 * H}
    assert by_hour[12] == 3 and by_hour[0] == 1
    assert s["unmet_share"] < 0.05 and s["slo_met_share"] > 0.9
    assert r.gpu_hours_used == pytest.approx(r.gpu_hours_useful + r.gpu_hours_lost)


def test_unmet_demand_when_the_fleet_is_too_small() -> None:
    """The service wants 8 replicas, the fleet has 4 nodes: half the requests go unmet."""
    f = fleet(FOUR, extra=services_yaml(profile="flat", daily_trough=1, weekend_factor=1,
                                        peak_requests_per_s=64, max_replicas=8))  # fmt: skip
    r = simulate(f, trace([(0, H, 8)]), TwinConfig(failures=FailureModels.off())).report
    s = r.services[0]
    assert s["replicas_max"] == 4 and s["target_mean"] == pytest.approx(8.0)
    assert s["unmet_share"] == pytest.approx(24 / 64, rel=0.01)
    assert s["slo_met_share"] == pytest.approx(0.0)


def test_autoscale_interval_from_the_config() -> None:
    f = fleet(FOUR, extra=services_yaml(profile="azure_code"))
    tr = trace([(0, 6 * H, 8)])
    a = simulate(f, tr, TwinConfig(failures=FailureModels.off())).report
    b = simulate(f, tr, TwinConfig(failures=FailureModels.off(), autoscale_interval_s=60)).report
    assert a.services[0]["autoscale_interval_s"] == 300
    assert b.services[0]["autoscale_interval_s"] == 60
    assert b.events > a.events


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        ({"accelerator": "B200"}, "services[0].accelerator", "no pool of the fleet has B200"),
        ({"gpus_per_replica": 16}, "services[0].gpus_per_replica", "do not fit one H100"),
        ({"tenant": "nobody"}, "services[0].tenant", "no tenant 'nobody'"),
        ({"min_replicas": 5, "max_replicas": 2}, "services[0]", "below min_replicas"),
        ({"profile": "weekly"}, "services[0].profile", ""),
        ({"peak_requests_per_s": -1}, "services[0].peak_requests_per_s", ""),
    ],
)
def test_bad_services_name_the_field(extra: dict[str, object], field: str, problem: str) -> None:
    tenants = "tenants:\n  - {name: t}\n"
    with pytest.raises(FleetSpecError) as exc:
        fleet(FOUR, extra=tenants + services_yaml(**extra))
    msg = str(exc.value)
    assert f"{field}:" in msg and problem in msg and "\n" not in msg


def test_cli_reports_services(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    src = Path("examples/fleets/small-cluster.yaml").read_text()
    fl = tmp_path / "fleet.yaml"
    fl.write_text(src)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("submit_time,duration,gpus\n0,7200,8\n60,3600,16\n")
    args = ["twin", "run", str(fl), "--trace", str(jobs), "--failures", "off", "--json"]
    res = CliRunner().invoke(app, [*args, "--autoscale-interval", "120"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [s["name"] for s in data["services"]] == ["chat"]
    assert data["services"][0]["autoscale_interval_s"] == 120
    res = CliRunner().invoke(app, [*args, "--autoscale-interval", "5"])
    assert res.exit_code != 0 and "--autoscale-interval" in res.output


def test_same_inputs_same_report_with_services() -> None:
    f = fleet(FOUR, extra=services_yaml(profile="azure_code", max_replicas=3))
    tr = trace([(0, 5 * H, 8), (600, 3 * H, 16), (1200, 2 * H, 8)])
    cfg = TwinConfig(seed=4, failures=FailureModels().with_(node_failures_per_1000_node_days=50))

    def run() -> dict[str, object]:
        d: dict[str, object] = json.loads(simulate(f, tr, cfg).report.to_json())
        d.pop("wall_s")
        d.pop("events_per_s")
        return d

    a = run()
    assert a == run()
    assert a["services"]
