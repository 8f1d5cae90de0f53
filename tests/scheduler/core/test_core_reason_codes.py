"""The fleet scheduler's HOLD, REJECT and PREEMPT decisions carry a ``ReasonCode`` beside
their words, and the tenant ledger says which of its limits refused a gang."""

from __future__ import annotations

from sched_helpers import pool

from intercloud.model import Topology
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.reasons import (
    REASON_TEXT,
    REQUEUE_CODES,
    Reason,
    ReasonCode,
    reason_text,
)
from intercloud.scheduler.requests import DecisionKind, GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

C = ReasonCode
P, H, RJ, PR = DecisionKind.PLACE, DecisionKind.HOLD, DecisionKind.REJECT, DecisionKind.PREEMPT


def req(job: int, nodes: int = 1, tenant: str = "t", **kw: object) -> GangRequest:
    return GangRequest(job, tenant, nodes, 8, ("H100",), **kw)  # type: ignore[arg-type]


def test_every_code_has_its_words() -> None:
    assert set(REASON_TEXT) == set(ReasonCode)
    assert all(reason_text(c) for c in ReasonCode)
    assert C.PREEMPTED in REQUEUE_CODES and C.NODE_FAILED not in REQUEUE_CODES


def test_hold_reject_and_preempt_carry_their_codes() -> None:
    st = FleetState([pool(nodes=2)])
    s = Scheduler(backfill=False)
    ds = s.schedule(st, [req(1, 2, duration_s=1e6)], 0.0)
    assert [(d.kind, d.code) for d in ds] == [(P, None)]
    ds = s.schedule(st, [req(2, 1)], 1.0)
    assert [(d.kind, d.code) for d in ds] == [(H, C.WAITING_FOR_CAPACITY)]
    ds = s.schedule(st, [req(3, 3)], 2.0)  # more nodes than the fleet has
    assert [(d.kind, d.code) for d in ds] == [(RJ, C.NEVER_FITS)]
    ds = s.schedule(st, [req(4, 1, priority=9)], 3.0)
    assert [(d.kind, d.code) for d in ds] == [(PR, C.PREEMPTED), (P, None)]


def test_nvlink_and_reservation_holds_have_codes() -> None:
    st = FleetState([pool(nodes=4)])
    s = Scheduler()
    s.schedule(st, [req(1, 2, duration_s=100.0), req(2, 1, duration_s=1000.0)], 0.0)
    ds = {d.job_id: d for d in s.schedule(st, [req(3, 4, duration_s=50.0)], 10.0)}
    assert (ds[3].kind, ds[3].code) == (H, C.RESERVED)
    st2 = FleetState([pool(nodes=2)])
    ds = Scheduler().schedule(st2, [req(5, 2, topology=Topology.NVLINK_DOMAIN)], 0.0)
    assert (ds[0].kind, ds[0].code) == (RJ, C.NEVER_FITS)


def test_evictions_carry_the_event_code() -> None:
    st = FleetState([pool(nodes=2)])
    s = Scheduler()
    (placed,) = s.schedule(st, [req(1, 1)], 0.0)
    ds = s.spot_reclaimed(st, list(placed.node_ids), 1.0)
    assert [(d.kind, d.job_id, d.code) for d in ds] == [(PR, 1, C.SPOT_RECLAIMED)]
    (placed,) = s.schedule(st, [req(2, 1)], 2.0)
    ds = s.node_failed(st, placed.node_ids[0], 3.0)
    assert [(d.kind, d.job_id, d.code) for d in ds] == [(PR, 2, C.NODE_FAILED)]


def test_the_ledger_names_the_limit_that_refused() -> None:
    tenants = [
        TenantSpec("interns", can_borrow=False, guaranteed_gpus={"H100": 8}),
        TenantSpec("broke", guaranteed_gpus={"H100": 8}, monthly_budget_usd=1.0),
    ]
    led = TenantLedger(tenants, {"H100": 16}, month_start_s=0.0, default_tenant=None)
    over = led.admit_reason(req(1, 2, "interns"), "H100", 0.0, 0.0)
    assert over is not None and over.code is C.OVER_QUOTA
    assert over.text == led.admit(req(1, 2, "interns"), "H100", 0.0, 0.0)
    poor = led.admit_reason(req(2, 1, "broke", duration_s=3600.0), "H100", 10.0, 0.0)
    assert poor is not None and poor.code is C.OVER_BUDGET
    assert poor.text.startswith("over budget: broke")
    ghost = led.admit_reason(req(3, 1, "ghost"), "H100", 0.0, 0.0)
    assert ghost == Reason(C.UNKNOWN_TENANT, "unknown tenant: ghost")
    assert led.admit_reason(req(4, 1, "interns"), "H100", 0.0, 0.0) is None
