"""Tenancy: per-tenant quotas (guarantees, borrowing, reclaim), monthly budgets, and the
decayed usage that fair-share queue order reads. See :mod:`.ledger` for the rules."""

from intercloud.scheduler.tenancy.ledger import (
    DEFAULT_TENANT,
    UNKNOWN_DURATION_S,
    RunningStart,
    TenantLedger,
)

__all__ = ["DEFAULT_TENANT", "UNKNOWN_DURATION_S", "RunningStart", "TenantLedger"]
