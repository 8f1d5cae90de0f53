"""``fair_share``: weighted dominant-resource fairness between tenants (DRF over GPU types,
with usage decay), priority classes still first, FIFO within a tenant.

The key of pending request ``j`` of tenant ``t`` is ``(-priority, share_mid, submit_s,
job_id)`` where

    share_mid[j] = S[t] + (sum of inc[k] over t's pending requests k ahead of j
                           + inc[j] / 2) / w[t]

* "ahead" is the order the tenant's own requests are tried: ``(-priority, submit_s,
  job_id)``;
* ``S[t]`` is the tenant's weighted dominant share from
  :meth:`TenantLedger.dominant_shares` (decayed GPU-seconds over the type's capacity, max
  over GPU types, divided by its weight ``w[t]``);
* ``inc[k] = gpus[k] × duration[k] / pool[g]`` — the share the request adds once it has
  run — for the first of its accelerators with capacity
  (:meth:`TenantLedger.share_increment`); ``duration`` is ``duration_s``, or one hour
  when unknown; 0 for CPU-only requests and unmanaged types.

This is weighted fair queueing over DRF shares: one cycle interleaves tenants by weight
instead of handing all free capacity to whoever was lowest at its start, and because the
share integrates past service a tenant served less than its weight catches up later. The
key is taken at the request's midpoint (``inc/2``), not its end: ranking by the share after
a whole request would systematically short tenants whose requests are large relative to
their weight (the rounding then always goes against them); the midpoint rounds to nearest.
Within a tenant and a priority the key never decreases in FIFO order, so FIFO within a
tenant holds; across priority classes the higher class always comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from intercloud.scheduler.queue_order.base import register
from intercloud.scheduler.queue_order.columns import RequestColumns, fresh_columns
from intercloud.scheduler.requests import GangRequest

if TYPE_CHECKING:
    from intercloud.scheduler.tenancy import TenantLedger


@register
class FairShareOrder:
    """Within a priority class, lowest weighted dominant share (at the request's midpoint)
    first; see the module docstring for the exact key. ``cached``: the requests' fields
    are read once per request object (``columns.RequestColumns``), not every call; off
    only in tests, to compare."""

    name: ClassVar[str] = "fair_share"

    def __init__(self, cached: bool = True) -> None:
        self._cache = RequestColumns() if cached else None

    def order(
        self, pending: Sequence[GangRequest], ledger: TenantLedger, now_s: float
    ) -> list[int]:
        n = len(pending)
        if n == 0:
            return []
        cols = fresh_columns(pending) if self._cache is None else self._cache.columns(pending)
        submit, job_id, neg_prio, tenant = cols.submit, cols.job_id, cols.neg_prio, cols.tenant
        names = cols.tenants
        shares = ledger.dominant_shares(now_s)
        base = np.array([shares.get(t, 0.0) for t in names], dtype=np.float64)
        inv_w = np.array([1.0 / ledger.weight(t) for t in names], dtype=np.float64)

        # inc = GPUs × expected seconds × (1 / pool of the first accelerator with one).
        per_gpu_s = np.array([ledger.share_increment(a, 1.0) for a in cols.accs], dtype=np.float64)
        inc = cols.gpu_s * per_gpu_s[cols.acc]

        # Per tenant, in the order its requests are tried: increments of the requests ahead
        # plus half of its own (the share at the job's midpoint; see the module docstring).
        # ``prio_order``: (-priority, submit_s, job_id); a stable sort by tenant keeps it.
        prio_order = np.lexsort((job_id, submit, neg_prio))
        by_tenant = prio_order[np.argsort(tenant[prio_order], kind="stable")]
        t_sorted = tenant[by_tenant]
        csum = np.cumsum(inc[by_tenant])
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(t_sorted[1:], t_sorted[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        before = np.concatenate(([0.0], csum))[starts]  # sum before each tenant's group
        group = np.cumsum(first) - 1
        # Midpoints are non-decreasing along by_tenant (inc >= 0); the running maximum only
        # removes rounding inversions, so FIFO within a tenant holds exactly. Subtracting a
        # per-group constant and the affine map to the key below keep that order.
        mid = np.maximum.accumulate(csum - 0.5 * inc[by_tenant])
        cum = np.empty(n, dtype=np.float64)
        cum[by_tenant] = mid - before[group]

        key = base[tenant] + cum * inv_w[tenant]
        # Stable sort of prio_order by (-priority, key): ties keep (submit_s, job_id).
        p = prio_order
        out: list[int] = p[np.lexsort((key[p], neg_prio[p]))].tolist()
        return out
