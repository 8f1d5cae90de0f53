"""Scenarios: backfill does not delay the head, preemption and resume from checkpoint,
NVL72 gangs in one domain, provider events, elastic provisioning delay, reasons."""

from __future__ import annotations

from sched_helpers import pool

from intercloud.model import PricingKind, SpotPolicy, Topology
from intercloud.scheduler.core import Scheduler, requeue
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement import fragmentation
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest

P, H, RJ, PR = DecisionKind.PLACE, DecisionKind.HOLD, DecisionKind.REJECT, DecisionKind.PREEMPT


def req(job: int, nodes: int = 1, gpn: int = 8, acc: str = "H100", **kw: object) -> GangRequest:
    return GangRequest(job, "t", nodes, gpn, (acc,), **kw)  # type: ignore[arg-type]


def by_job(ds: list[Decision]) -> dict[int, Decision]:
    return {d.job_id: d for d in ds if d.kind in (P, H, RJ)}


def test_backfill_never_delays_the_head() -> None:
    st = FleetState([pool(nodes=5)])
    s = Scheduler()
    # two running jobs: one ends at 100, one at 1000; two nodes idle
    ds = s.schedule(st, [req(1, 2, duration_s=100.0), req(2, 1, duration_s=1000.0)], 0.0)
    assert [d.kind for d in ds] == [P, P]
    head = req(3, 4, duration_s=50.0, submit_s=1.0)  # needs 4 nodes: fits at t=100
    short = req(4, 1, duration_s=90.0, submit_s=2.0)  # ends by 100: may backfill
    long_ = req(5, 1, duration_s=500.0, submit_s=3.0)  # would delay the head
    ds = by_job(s.schedule(st, [head, short, long_], 10.0))
    assert ds[3].kind == H and "reserved" in ds[3].reason
    assert ds[4].kind == P
    assert ds[5].kind == H and "reservation of job 3" in ds[5].reason
    st.check_invariants()
    # at t=100 the first job and the backfilled one end: the head starts on time
    s.finished(st, 1, 100.0)
    s.finished(st, 4, 100.0)
    ds = by_job(s.schedule(st, [head, long_], 100.0))
    assert ds[3].kind == P and len(ds[3].node_ids) == 4


def test_without_backfill_protection_a_long_job_would_take_the_head_nodes() -> None:
    st = FleetState([pool(nodes=5)])
    s = Scheduler(backfill=False)
    s.schedule(st, [req(1, 2, duration_s=100.0), req(2, 1, duration_s=1000.0)], 0.0)
    ds = by_job(s.schedule(st, [req(3, 4, duration_s=50.0), req(5, 1, duration_s=500.0)], 10.0))
    assert ds[5].kind == P  # the head is now delayed until t=500: EASY prevents this


def test_inference_preempts_training_which_resumes_from_checkpoint() -> None:
    st = FleetState([pool(nodes=4)])
    s = Scheduler()
    train = req(1, 4, duration_s=10_000.0, priority=0)
    assert [d.kind for d in s.schedule(st, [train], 0.0)] == [P]
    st.checkpoint(1, 3_000.0)
    infer = req(2, 1, duration_s=600.0, priority=100, preemptible=False)
    ds = s.schedule(st, [infer], 3_500.0)
    assert [(d.kind, d.job_id) for d in ds] == [(PR, 1), (P, 2)]
    assert ds[0].for_job == 2 and "preempted for job 2" in ds[0].reason
    (again,) = requeue(st, ds)
    assert again.job_id == 1 and again.last_checkpoint_s == 3_000.0
    assert again.duration_s == 7_000.0  # 3,000 s of work were saved, 500 s lost
    # training waits while inference runs, then resumes
    ds = s.schedule(st, [again], 3_600.0)
    assert ds[0].kind == H
    s.finished(st, 2, 4_100.0)
    ds = s.schedule(st, [again], 4_100.0)
    assert ds[0].kind == P
    assert st.allocations[1].end_s == 4_100.0 + 7_000.0
    st.check_invariants()


def test_preemption_takes_fewest_and_cheapest_victims() -> None:
    st = FleetState([pool(nodes=4)])
    s = Scheduler()
    jobs = [req(i, 1, duration_s=1e6, priority=0) for i in range(1, 5)]
    s.schedule(st, jobs, 0.0)
    for j, t in ((1, 50.0), (2, 90.0), (3, 10.0), (4, 80.0)):
        st.checkpoint(j, t)
    ds = s.schedule(st, [req(9, 2, priority=5)], 100.0)
    victims = sorted(d.job_id for d in ds if d.kind == PR)
    assert victims == [2, 4]  # least work lost since checkpoint (10 s and 20 s)


def test_equal_priority_never_preempts() -> None:
    st = FleetState([pool(nodes=1)])
    s = Scheduler()
    s.schedule(st, [req(1, priority=3)], 0.0)
    ds = s.schedule(st, [req(2, priority=3)], 1.0)
    assert [d.kind for d in ds] == [H]


def test_nvl72_gang_lands_in_one_rack_never_across_hgx_servers() -> None:
    hgx = pool("GB200", gpus=8, nodes=9, npd=1, price=1.0)  # cheaper, 9 x 8 = 72 GPUs
    nvl = pool("GB200", gpus=4, nodes=36, npd=18, price=5.0, zone="b")
    st = FleetState([hgx, nvl])
    s = Scheduler()
    # break the first rack a little so best fit must pick the other whole rack
    ds = s.schedule(st, [req(1, 1, 4, "GB200", duration_s=10.0)], 0.0)
    assert ds[0].pool == 0  # a small job goes to the cheap HGX pool
    ds = s.schedule(st, [req(2, 1, 4, "GB200", providers=frozenset({"aws"}))], 0.0)
    gang = req(3, 18, 4, "GB200", topology=Topology.NVLINK_DOMAIN)
    ds = s.schedule(st, [gang], 0.0)
    (d,) = ds
    assert d.kind == P and d.pool == 1
    assert len({int(st.domain[n]) for n in d.node_ids}) == 1
    # a second one fits the second rack, a third one waits for a whole domain
    ds = s.schedule(st, [req(4, 18, 4, "GB200", topology=Topology.NVLINK_DOMAIN)], 0.0)
    assert ds[0].kind == P and len({int(st.domain[n]) for n in ds[0].node_ids}) == 1
    ds = s.schedule(st, [req(5, 18, 4, "GB200", topology=Topology.NVLINK_DOMAIN)], 0.0)
    assert ds[0].kind == H and "NVLink domain with 72 free GPUs" in ds[0].reason
    st.check_invariants()


def test_nvlink_gang_larger_than_any_domain_is_rejected_with_reason() -> None:
    st = FleetState([pool("H100", gpus=8, nodes=16)])
    ds = Scheduler().schedule(st, [req(1, 2, 8, topology=Topology.NVLINK_DOMAIN)], 0.0)
    assert ds[0].kind == RJ
    assert ds[0].reason == "no NVLink domain of 16 GPUs for H100:8 (largest: 8)"


def test_best_fit_keeps_whole_domains_free() -> None:
    st = FleetState([pool("GB200", gpus=4, nodes=36, npd=18)])
    s = Scheduler()
    s.schedule(st, [req(1, 1, 4, "GB200")], 0.0)  # breaks one rack
    ds = s.schedule(st, [req(2, 5, 4, "GB200")], 0.0)  # zone gang: same broken rack
    assert {int(st.domain[n]) for n in ds[0].node_ids} == {
        int(st.domain[st.allocations[1].nodes[0]])
    }
    assert fragmentation(st, [req(3, 18, 4, "GB200")]).whole_free_domains == 1


def test_spot_reclaim_requeues_the_gang() -> None:
    spot = pool(pricing=PricingKind.SPOT, nodes=4, price=3.0)
    st = FleetState([spot])
    s = Scheduler()
    ds = s.schedule(st, [req(1, 2, spot=SpotPolicy.ONLY, duration_s=100.0)], 0.0)
    nodes = ds[0].node_ids
    ev = s.spot_reclaimed(st, [nodes[0]], 50.0)
    assert [(d.kind, d.job_id) for d in ev] == [(PR, 1)]
    assert "reclaimed" in ev[0].reason
    assert not st.present[nodes[0]] and 1 not in st.allocations
    (again,) = requeue(st, ev)
    ds = s.schedule(st, [again], 50.0)
    assert ds[0].kind == P and nodes[0] not in ds[0].node_ids
    st.check_invariants()


def test_node_failure_and_region_loss_evict_whole_gangs() -> None:
    st = FleetState([pool(nodes=4), pool(nodes=2, region="eu-west-1")])
    s = Scheduler()
    s.schedule(st, [req(1, 2), req(2, 2), req(3, 2, regions=frozenset({"eu-west-1"}))], 0.0)
    ev = s.node_failed(st, st.allocations[1].nodes[1], 5.0)
    assert [d.job_id for d in ev] == [1]
    assert st.check_invariants() is None
    ev = s.region_lost(st, "aws", "eu-west-1", 6.0)
    assert [d.job_id for d in ev] == [3]
    ds = s.schedule(st, requeue(st, ev), 7.0)
    assert ds[0].kind == H  # only the lost region could take it
    st.check_invariants()


def test_elastic_pool_respects_provisioning_delay() -> None:
    st = FleetState([pool(nodes=4, delay=120.0)], initial_nodes=[1])
    s = Scheduler()
    ds = s.schedule(st, [req(1, 3)], 0.0)
    assert [d.kind for d in ds] == [DecisionKind.PROVISION, H]
    assert ds[0].count == 2 and "ready at t=120" in ds[1].reason
    assert [d.kind for d in s.schedule(st, [req(1, 3)], 60.0)] == [H]  # no new request
    ds = s.schedule(st, [req(1, 3)], 120.0)
    assert ds[0].kind == P and len(ds[0].node_ids) == 3
    s.finished(st, 1, 200.0)
    assert s.release_idle(st, 400.0, 300.0) == []
    rel = s.release_idle(st, 500.0, 300.0)
    assert rel[0].kind == DecisionKind.RELEASE and rel[0].count == 3
    assert st.absent_nodes(0) == 4
    st.check_invariants()


def test_reserved_first_then_cheapest() -> None:
    od = pool(price=10.0)
    rs = pool(pricing=PricingKind.RESERVED, price=50.0, zone="b")
    st = FleetState([od, rs])
    ds = Scheduler().schedule(st, [req(1)], 0.0)
    assert ds[0].pool == 1


def test_partial_nodes_are_shared_best_fit() -> None:
    st = FleetState([pool(nodes=2)])
    s = Scheduler()
    ds = s.schedule(st, [req(1, 1, 4), req(2, 1, 2), req(3, 1, 8)], 0.0)
    assert ds[0].node_ids == ds[1].node_ids  # the 2-GPU job joins the half-used node
    assert ds[2].kind == P and ds[2].node_ids != ds[0].node_ids
    st.check_invariants()
    s.finished(st, 1, 1.0)
    st.check_invariants()
