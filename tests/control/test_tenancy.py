"""Tenants in the fleet decider, as a pure function (``tenants=`` plain data), and the
store side that builds them (``load_tenant_limits``): guarantees without borrowing,
per-type quotas (held before the cycle, or taken out of it with the cycle run again so
the capacity goes to others at once), budgets with this month's earlier spend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intercloud.control.decide import Hold, PendingJob, Place, RunningJob, TenantLimits
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.states import JobState
from intercloud.control.tenancy import QuotaCaps, load_tenant_limits
from intercloud.model import Offering
from intercloud.providers.base import FreeCapacity
from intercloud.scheduler.reasons import ReasonCode
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest
from intercloud.specs import load_spec_text
from intercloud.store import open_store
from intercloud.store.testing import FakeClock

Q = ReasonCode.OVER_QUOTA

NOW = 1_780_000_000.0
A = Offering("local", "a", "", "local-H100x4", "H100", 4, vcpus=2, memory_gib=8,
             on_demand_price=2.0)  # fmt: skip
B = Offering("local", "b", "", "local-H100x4", "H100", 4, vcpus=2, memory_gib=8,
             on_demand_price=2.0)  # fmt: skip
KEY_A = ("local", "a", "", "local-H100x4")
KEY_B = ("local", "b", "", "local-H100x4")


def gpu(job_id: int, tenant: str, hours: float | None = None) -> PendingJob:
    text = f"kind: training\nname: g{job_id}\ntenant: {tenant}\n"
    text += "resources: {accelerators: H100:4}\nrun: 'true'\n"
    if hours is not None:
        text += f"duration_hours: {hours}\n"
    w = load_spec_text(text, source=f"job {job_id}").workload
    return PendingJob(job_id, 0, w, tenant, NOW - 100 + job_id)


def on(
    region: str, job_id: int, tenant: str, since: float = NOW - 60, hours: float | None = None
) -> RunningJob:
    placement = {"provider": "local", "region": region, "zone": "", "instance_type":
                 "local-H100x4", "ranks": 1, "cpus_per_node": 2.0, "accelerator": "H100",
                 "accelerator_count": 4, "hourly_usd": 2.0}  # fmt: skip
    duration = hours * 3600 if hours is not None else None
    return RunningJob(job_id, 0, tenant, placement, since, duration, preemptible=True)


def free(a: bool = True, b: bool = True) -> dict[tuple[str, str, str, str], FreeCapacity]:
    full, none = FreeCapacity(2, 4, 8), FreeCapacity(0, 0, 8)
    return {KEY_A: full if a else none, KEY_B: full if b else none}


def by_job(decisions: list[object]) -> dict[int, object]:
    return {d.job_id: d for d in decisions}  # type: ignore[attr-defined]


def test_no_tenants_means_no_limits() -> None:
    out = by_job(FleetDecider().decide([gpu(1, "research"), gpu(2, "research")], [A, B], free()))
    assert all(isinstance(d, Place) for d in out.values())
    tenants = [TenantLimits("research")]
    pending = [gpu(1, "research"), gpu(2, "research")]
    out = by_job(FleetDecider().decide(pending, [A, B], free(), now_s=NOW, tenants=tenants))
    assert all(isinstance(d, Place) for d in out.values())


def test_guarantee_without_borrowing_holds_the_second_gang_and_lets_others_run() -> None:
    tenants = [TenantLimits("research", guarantees={"H100": 4}, can_borrow=False)]
    pending = [gpu(1, "research"), gpu(2, "research"), gpu(3, "vision")]
    out = by_job(FleetDecider().decide(pending, [A, B], free(), now_s=NOW, tenants=tenants))
    assert isinstance(out[1], Place) and isinstance(out[3], Place)
    assert out[2] == Hold(
        2,
        "over quota: research uses 4 of 4 guaranteed H100 and may not borrow (needs 4)",
        ReasonCode.OVER_QUOTA,
    )


def test_a_full_fleet_keeps_the_capacity_reason_or_reclaims_for_a_guarantee() -> None:
    tenants = [TenantLimits("default"), TenantLimits("research", guarantees={"H100": 4})]
    running = [on("a", 1, "vision"), on("b", 2, "vision", since=NOW - 30)]
    full = free(a=False, b=False)
    # may borrow, nothing idle: freed capacity would start it, so capacity is the reason
    [d] = FleetDecider().decide([gpu(3, "default")], [A, B], full, running=running,
                                now_s=NOW, tenants=tenants)  # fmt: skip
    assert isinstance(d, Hold) and d.reason.startswith("waiting for capacity: 1 × H100:4"), d
    # within its guarantee: a borrowed gang is reclaimed for it, and it takes its place
    out = FleetDecider().decide([gpu(3, "research")], [A, B], full, running=running,
                                now_s=NOW, tenants=tenants)  # fmt: skip
    assert [type(x).__name__ for x in out] == ["Preempt", "Place"]
    victim = {1: "a", 2: "b"}[out[0].job_id]  # type: ignore[union-attr]
    assert out[0].for_job == 3 and out[1].placement.region == victim  # type: ignore[union-attr]


def test_a_quota_holds_before_the_cycle_given_what_runs() -> None:
    tenants = [TenantLimits("research", quotas={"H100": 4})]
    out = FleetDecider().decide(
        [gpu(2, "research"), gpu(3, "vision")], [A, B], free(a=False),
        running=[on("a", 1, "research")], now_s=NOW, tenants=tenants,
    )  # fmt: skip
    d = by_job(out)
    assert d[2] == Hold(2, "over quota: research runs 4 of its 4 H100 quota (needs 4)", Q)
    assert isinstance(d[3], Place) and d[3].placement.region == "b"


def test_a_gang_of_several_gpu_types_is_offered_only_those_its_quota_allows() -> None:
    c = Offering("local", "c", "", "local-A100x4", "A100", 4, vcpus=2, memory_gib=8,
                 on_demand_price=3.0)  # fmt: skip
    text = "kind: training\nname: any\ntenant: research\n"
    text += "resources: {accelerators: [H100:4, A100:4]}\nrun: 'true'\n"
    job = PendingJob(5, 0, load_spec_text(text, source="job 5").workload, "research", NOW)
    frees = {**free(a=False), ("local", "c", "", "local-A100x4"): FreeCapacity(2, 4, 8)}
    running = [on("a", 1, "research")]
    [d] = FleetDecider().decide([job], [A, B, c], frees, running=running, now_s=NOW)
    assert isinstance(d, Place) and d.placement.accelerator == "H100"  # the cheapest
    tenants = [TenantLimits("research", quotas={"H100": 4})]
    [d] = FleetDecider().decide([job], [A, B, c], frees, running=running, now_s=NOW,
                                tenants=tenants)  # fmt: skip
    assert isinstance(d, Place) and d.placement.accelerator == "A100"
    tenants = [TenantLimits("research", quotas={"H100": 4, "A100": 0})]
    [d] = FleetDecider().decide([job], [A, B, c], frees, running=running, now_s=NOW,
                                tenants=tenants)  # fmt: skip
    assert d == Hold(5, "over quota: research runs 4 of its 4 H100 quota (needs 4)", Q)


def test_a_place_over_quota_in_the_same_cycle_gives_its_capacity_to_others() -> None:
    # both research gangs fit the fleet; the scheduler places them first (FIFO), the
    # quota takes the second out, and the cycle runs again: vision gets the capacity now
    tenants = [TenantLimits("research", quotas={"H100": 4})]
    pending = [gpu(1, "research"), gpu(2, "research"), gpu(3, "vision")]
    out = by_job(FleetDecider().decide(pending, [A, B], free(), now_s=NOW, tenants=tenants))
    assert isinstance(out[1], Place) and isinstance(out[3], Place)
    assert out[2] == Hold(2, "over quota: research runs 4 of its 4 H100 quota (needs 4)", Q)
    assert {out[1].placement.region, out[3].placement.region} == {"a", "b"}  # type: ignore[attr-defined]


def test_quota_caps_drop_the_preemptions_made_for_a_capped_gang() -> None:
    caps = QuotaCaps([TenantLimits("research", quotas={"H100": 4})])
    caps.running("research", "H100", 4)
    req = GangRequest(9, "research", nodes=1, gpus_per_node=4, accelerators=("H100",))
    decisions = [
        Decision(DecisionKind.PREEMPT, job_id=5, for_job=9),
        Decision(DecisionKind.PLACE, job_id=9, pool=0),
        Decision(DecisionKind.HOLD, job_id=10, reason="x"),
    ]
    kept, held = caps.apply(decisions, {9: req}, ["H100"])
    assert kept == [decisions[2]]
    assert held == {9: "over quota: research runs 4 of its 4 H100 quota (needs 4)"}
    assert caps.why("research", "H100", 4) == held[9]
    assert caps.why("research", "A100", 4) is None and caps.why("vision", "H100", 4) is None


def test_a_budget_counts_this_months_earlier_spend_and_running_work() -> None:
    # 2 USD/h per gang, 1 hour assumed when the spec gives no duration
    tenants = [TenantLimits("team", monthly_budget_usd=10.0, spent_usd=7.5)]
    out = by_job(FleetDecider().decide([gpu(1, "team")], [A, B], free(), now_s=NOW,
                                       tenants=tenants))  # fmt: skip
    assert isinstance(out[1], Place)  # 7.5 + 2 <= 10
    # a running gang of the team, started an hour ago, expected to run one more hour
    running = [on("a", 7, "team", since=NOW - 3600, hours=2)]
    out = by_job(FleetDecider().decide([gpu(1, "team")], [A, B], free(a=False), running=running,
                                       now_s=NOW, tenants=tenants))  # fmt: skip
    assert out[1] == Hold(
        1,
        "over budget: team spent 9.50 (+2.00 committed to running work) of 10.00 USD "
        "this month; this job needs ~2.00",
        ReasonCode.OVER_BUDGET,
    )
    # the reason stays the budget's when capacity is short too
    out = by_job(FleetDecider().decide([gpu(1, "team")], [A, B], free(a=False, b=False),
                                       running=running, now_s=NOW, tenants=tenants))  # fmt: skip
    assert isinstance(out[1], Hold) and out[1].reason.startswith("over budget: team spent 9.50")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))


def test_load_tenant_limits_reads_limits_and_the_months_ended_spend(
    db_url: str, clock: FakeClock
) -> None:
    with open_store(db_url, clock=clock) as store:
        store.create_tenant("team", guarantees={"H100": 4}, quotas={"H100": 8}, weight=2,
                            can_borrow=False, monthly_budget_usd=100.0)  # fmt: skip
        job = store.submit("training", "x", "name: x", tenant="team")
        placement = {"accelerator": "H100", "accelerator_count": 4, "gpus": 4, "hourly_usd": 3.0}
        S = JobState
        store.transition(job, S.PENDING, S.PLACING, "placed", placement=placement, attempt=1)
        store.begin_attempt(job, 1)
        store.transition(job, S.PLACING, S.PROVISIONING, "up")
        store.transition(job, S.PROVISIONING, S.RUNNING, "running")
        clock.tick(2 * 3600)
        store.transition(job, S.RUNNING, S.SUCCEEDED, "done")
        store.end_attempt(job, 1, "succeeded")
        clock.tick(60)
        limits = {t.name: t for t in load_tenant_limits(store)}
    assert limits["default"] == TenantLimits("default")
    t = limits["team"]
    assert (t.weight, dict(t.guarantees), dict(t.quotas), t.can_borrow) == (
        2.0, {"H100": 4}, {"H100": 8}, False)  # fmt: skip
    assert t.monthly_budget_usd == 100.0 and t.spent_usd == pytest.approx(6.0)


def test_fair_share_reads_the_stored_weights() -> None:
    # one H100 site left; research and vision each ran one gang for an hour; vision's
    # pending gang is older. Equal weights: FIFO breaks the tie. Research weighted 4:
    # its weighted share is a quarter of vision's, so it goes first.
    d_off = Offering("local", "d", "", "local-H100x4", "H100", 4, vcpus=2, memory_gib=8,
                     on_demand_price=2.0)  # fmt: skip
    frees = {**free(a=False, b=False), ("local", "d", "", "local-H100x4"): FreeCapacity(2, 4, 8)}
    running = [on("a", 1, "research", since=NOW - 3600), on("b", 2, "vision", since=NOW - 3600)]
    pending = [gpu(10, "vision"), gpu(11, "research")]

    def first(weights: dict[str, float]) -> int:
        tenants = [TenantLimits(name, weight=w) for name, w in weights.items()]
        out = FleetDecider(queue_policy="fair_share").decide(
            pending, [A, B, d_off], frees, running=running, now_s=NOW, tenants=tenants
        )
        [placed] = [d.job_id for d in out if isinstance(d, Place)]
        return placed

    assert first({"research": 1, "vision": 1}) == 10
    assert first({"research": 4, "vision": 1}) == 11
    assert first({"research": 1, "vision": 4}) == 10
