"""``priority``: priority classes from high to low, FIFO within a class.

Key: ``(-priority, submit_s, job_id)``. Tenants are not considered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from intercloud.scheduler.queue_order.base import neg_priority, register, tie_keys
from intercloud.scheduler.requests import GangRequest

if TYPE_CHECKING:
    from intercloud.scheduler.tenancy import TenantLedger


@register
class PriorityOrder:
    """Higher ``priority`` first; the oldest first within a priority; ledger not read."""

    name: ClassVar[str] = "priority"

    def order(
        self, pending: Sequence[GangRequest], ledger: TenantLedger, now_s: float
    ) -> list[int]:
        if not pending:
            return []
        submit, job_id = tie_keys(pending)
        out: list[int] = np.lexsort((job_id, submit, neg_priority(pending))).tolist()
        return out
