"""``fifo``: one global first-in-first-out queue, ignoring tenants and priorities.

Key: ``(submit_s, job_id)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from intercloud.scheduler.queue_order.base import register, tie_keys
from intercloud.scheduler.requests import GangRequest

if TYPE_CHECKING:
    from intercloud.scheduler.tenancy import TenantLedger


@register
class FifoOrder:
    """Oldest submission first; the ledger is not read."""

    name: ClassVar[str] = "fifo"

    def order(
        self, pending: Sequence[GangRequest], ledger: TenantLedger, now_s: float
    ) -> list[int]:
        if not pending:
            return []
        submit, job_id = tie_keys(pending)
        out: list[int] = np.lexsort((job_id, submit)).tolist()
        return out
