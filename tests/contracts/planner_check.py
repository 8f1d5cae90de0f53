"""An independent re-check of a capacity plan against its problem: recomputes supply,
limits, shares and cost from the plan's quantities and the problem's prices alone (none
of the planner's model code)."""

from __future__ import annotations

from datetime import date

import numpy as np

from intercloud.contracts.capacity_planner import Plan
from intercloud.contracts.planner_input import PlanningProblem


def _hours(start: date, n: int) -> np.ndarray:
    out = []
    y, m = start.year, start.month
    for _ in range(n):
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append((date(ny, nm, 1) - date(y, m, 1)).days * 24.0)
        y, m = ny, nm
    return np.array(out)


def recheck(pb: PlanningProblem, plan: Plan, rel: float = 1e-6) -> None:
    """Assert: demand met every month, spot only for training, availability and Capacity
    Block limits and ramps respected, shares within the policy, reservation stocks match
    their starts, block counts whole, and the cost equals the sum of its parts."""
    P, A, T = len(pb.providers), len(pb.accelerators), len(pb.months)
    H = _hours(pb.months[0], T)
    tol = rel * max(1.0, float(pb.demand.max()))
    od = plan.on_demand_hours + plan.committed_hours
    avail = pb.spot_availability[:, :, None]
    gpi = pb.gpus_per_instance[:, :, None]
    cb = plan.capacity_block_instances
    assert np.allclose(cb, np.round(cb), atol=1e-6), "Capacity Block counts are whole"
    for arr in (od, plan.spot_hours, plan.reserved_1y_new, plan.reserved_3y_new, cb):
        assert (arr >= -tol).all()
    # Reservation stocks are the sums of starts over their terms.
    for new, active, term in (
        (plan.reserved_1y_new, plan.reserved_1y_active, 12),
        (plan.reserved_3y_new, plan.reserved_3y_active, 36),
    ):
        csum = np.concatenate([np.zeros((P, A, 1)), np.cumsum(new, axis=2)], axis=2)
        t = np.arange(T)
        window = csum[:, :, t + 1] - csum[:, :, np.maximum(t + 1 - term, 0)]
        assert np.allclose(window, active, atol=1e-4 * max(1.0, float(active.max())))
    signed = pb.signed  # GPUs of signed contracts (already paid)
    supplied = (
        H * signed
        + od
        + avail * plan.spot_hours
        + H * (plan.reserved_1y_active + plan.reserved_3y_active)
        + gpi * (H - 0.5) * cb
    )
    assert np.allclose(supplied, plan.supplied_hours, atol=tol)
    assert (supplied.sum(axis=0) >= pb.demand - tol).all(), "demand met every month"
    assert ((avail * plan.spot_hours).sum(axis=0) <= pb.demand_training + tol).all()
    gpus = (
        signed
        + (od + plan.spot_hours) / H
        + plan.reserved_1y_active
        + plan.reserved_3y_active
        + gpi * cb
    )
    assert (gpus <= pb.max_gpus + 1e-4 * np.maximum(1.0, gpus)).all(), "type ramps"
    assert (gpus.sum(axis=1) <= pb.provider_max_gpus + 1e-3).all(), "provider ramps"
    assert (cb.sum(axis=1) <= 256 + 1e-9).all()
    share = plan.provider_share()
    assert (share <= pb.max_share + 1e-6).all()
    if pb.primary is not None:
        assert (share[pb.providers.index(pb.primary)] >= pb.primary_min_share - 1e-6).all()
    # Cost: each part from quantities and prices.
    list_od = np.nan_to_num(pb.on_demand)[:, :, None]
    cost = 0.0
    for p in range(P):
        disc = pb.tier_discount[p, plan.tier[p]] if plan.tier[p] >= 0 else 0.0
        if plan.tier[p] < 0:
            assert plan.committed_hours[p].sum() <= tol
        committed = float((plan.committed_hours[p] * list_od[p]).sum() * (1 - disc))
        if plan.tier[p] >= 0:
            need = pb.tier_commit_usd[p, plan.tier[p]]
            assert abs(plan.commit_shortfall_usd[p] - max(0.0, need - committed)) <= 1e-6 * need
        cost += float((plan.on_demand_hours[p] * list_od[p]).sum()) + committed
        cost += float(plan.commit_shortfall_usd[p])
    cost += float((plan.spot_hours * np.nan_to_num(pb.spot)[:, :, None]).sum())
    for new, price, term in (
        (plan.reserved_1y_new, pb.reserved_1y, 12),
        (plan.reserved_3y_new, pb.reserved_3y, 36),
    ):
        th = np.array([_hours(_add(pb.months[0], t), term).sum() for t in range(T)])
        cost += float((new * np.nan_to_num(price)[:, :, None] * th).sum())
    cost += float((cb * gpi * H * np.nan_to_num(pb.capacity_block)[:, :, None]).sum())
    parts = sum(sum(v.values()) for v in plan.cost_usd.values())
    assert abs(parts - plan.total_usd) <= 1e-6 * max(1.0, plan.total_usd)
    assert abs(cost - plan.total_usd) <= 1e-5 * max(1.0, plan.total_usd), (cost, plan.total_usd)


def _add(m: date, k: int) -> date:
    y, mo = divmod(m.month - 1 + k, 12)
    return date(m.year + y, mo + 1, 1)
