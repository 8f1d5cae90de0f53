"""Tenants in the live loop: the store's tenants as the fleet decider's plain data, the
scheduler's tenant ledger rebuilt from them each cycle, and the per-type GPU quotas.

The reconciler reads (``load_tenant_limits``); the decider stays pure (``build_ledger``,
``QuotaCaps``): every cycle starts from the store, so a loop restarted at any instant
decides with the same limits, usage and spend.

Mapping to the scheduler's ``TenantLedger`` (``scheduler/tenancy/ledger.py``), one to one:
``weight``, ``guarantees`` (its ``guaranteed_gpus``), ``can_borrow`` and
``monthly_budget_usd`` are its ``TenantSpec``; the running jobs are loaded with
``load_running`` as started when they started (their cost accrues from there), and the
month's spend of work that no longer runs is added with ``add_spend``. ``quotas`` are a ceiling
the ledger has no notion of: ``QuotaCaps`` applies them around the scheduler's cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from intercloud.control.decide import TenantLimits
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest, TenantSpec
from intercloud.scheduler.tenancy import DEFAULT_TENANT, RunningStart, TenantLedger
from intercloud.scheduler.tenancy.running_columns import RunningColumns

if TYPE_CHECKING:  # the decider side of this module never touches the store
    from intercloud.store import Store, TenantRecord

__all__ = ["QuotaCaps", "build_ledger", "load_tenant_limits", "over_gpu_quota"]


def load_tenant_limits(
    store: Store, now: datetime | None = None, records: Sequence[TenantRecord] | None = None
) -> list[TenantLimits]:
    """Every stored tenant's limits (``records``: the tenants as already read, e.g. by
    ``Store.cycle_state``); ``spent_usd`` is the store's estimate of this UTC month's
    spend of ended attempts (``Store.tenant_usage``: ``spent_closed_usd``), read only
    when some tenant has a budget (nothing else needs it)."""
    if records is None:
        records = store.tenants()
    usage = (
        store.tenant_usage(now) if any(r.monthly_budget_usd is not None for r in records) else {}
    )
    return [
        TenantLimits(
            name=r.name,
            weight=r.weight,
            guarantees=dict(r.guarantees),
            quotas=dict(r.quotas),
            can_borrow=r.can_borrow,
            monthly_budget_usd=r.monthly_budget_usd,
            spent_usd=usage[r.name].spent_closed_usd if r.name in usage else 0.0,
        )
        for r in records
    ]


def over_gpu_quota(tenant: str, gpu_type: str, runs: int, quota: int, needs: int) -> str:
    """``over quota: research runs 4 of its 4 H100 quota (needs 4)``."""
    return f"over quota: {tenant} runs {runs} of its {quota} {gpu_type} quota (needs {needs})"


def build_ledger(
    tenants: Sequence[TenantLimits],
    capacity_by_type: Mapping[str, int],
    running: Sequence[RunningStart] | RunningColumns,
    now_s: float,
) -> TenantLedger:
    """The ledger for one cycle: ``tenants`` (unknown tenants get the ledger's default:
    weight 1, no guarantee, may borrow, no budget), the fleet's GPUs per type, and the
    jobs holding capacity, loaded as if started in start order (``TenantLedger.
    load_running``: a function of the running set, whatever order it comes in; or
    ``load_columns`` of them as columns at ``now_s``); then each tenant's ``spent_usd``
    added at ``now_s``."""
    specs = [
        TenantSpec(
            name=t.name,
            weight=t.weight,
            guaranteed_gpus={g: n for g, n in t.guarantees.items() if n > 0},
            can_borrow=t.can_borrow,
            monthly_budget_usd=t.monthly_budget_usd,
        )
        for t in tenants
    ]
    ledger = TenantLedger(specs, capacity_by_type, default_tenant=DEFAULT_TENANT)
    if isinstance(running, RunningColumns):
        ledger.load_columns(running, now_s)
    else:
        ledger.load_running(running, now_s)
    for t in tenants:
        if t.spent_usd > 0 and t.monthly_budget_usd is not None:
            ledger.add_spend(t.name, t.spent_usd, now_s)
    return ledger


class QuotaCaps:
    """Per-tenant ceilings on running GPUs per type (``TenantLimits.quotas``) around one
    scheduler cycle. ``running`` counts what runs now; ``why`` says whether a gang may
    use a GPU type (the fleet decider offers it only the types it may, and holds it
    before the cycle when there is none, so nothing is preempted for it); ``apply`` goes
    through the cycle's decisions in order and takes out each PLACE that would cross a
    quota, with the preemptions made for it (the fleet decider then runs the cycle again
    without those gangs)."""

    def __init__(self, tenants: Sequence[TenantLimits]) -> None:
        self.quotas = {t.name: dict(t.quotas) for t in tenants if t.quotas}
        self.used: dict[tuple[str, str], int] = {}

    def __bool__(self) -> bool:
        return bool(self.quotas)

    def running(self, tenant: str, gpu_type: str | None, gpus: int) -> None:
        if gpu_type and gpus > 0:
            key = (tenant, gpu_type)
            self.used[key] = self.used.get(key, 0) + gpus

    def why(self, tenant: str, gpu_type: str | None, gpus: int) -> str | None:
        """Why ``gpus`` more GPUs of ``gpu_type`` would cross ``tenant``'s quota (None: no)."""
        q = self.quotas.get(tenant, {}).get(gpu_type or "")
        if q is None or gpus <= 0 or gpu_type is None:
            return None
        runs = self.used.get((tenant, gpu_type), 0)
        if runs + gpus <= q:
            return None
        return over_gpu_quota(tenant, gpu_type, runs, q, gpus)

    def apply(
        self, decisions: Sequence[Decision], requests: Mapping[int, GangRequest],
        accelerator_of_pool: Sequence[str | None],
    ) -> tuple[list[Decision], dict[int, str]]:  # fmt: skip
        """``decisions`` less the PLACEs that cross a quota (and the PREEMPTs made for
        them), and those jobs' reasons."""
        held: dict[int, str] = {}
        for d in decisions:
            if d.kind != DecisionKind.PLACE:
                continue
            r = requests.get(d.job_id)
            if r is None:
                continue
            g = accelerator_of_pool[d.pool] if 0 <= d.pool < len(accelerator_of_pool) else None
            why = self.why(r.tenant, g, r.gpus)
            if why is not None:
                held[d.job_id] = why
            else:
                self.running(r.tenant, g, r.gpus)
        if not held:
            return list(decisions), held
        kept = [
            d
            for d in decisions
            if not (d.kind == DecisionKind.PLACE and d.job_id in held)
            and not (d.kind == DecisionKind.PREEMPT and d.for_job in held)
        ]
        return kept, held
