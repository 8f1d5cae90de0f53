"""What the ledger accrues: intervals during which capacity ran.

The control loop's store (``store/usage.py``) and the digital twin both describe the
capacity they used as a plain sequence of ``UsageInterval`` values, so that both feed
the one ledger (``contracts/ledger.py``) and get the same accounting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from intercloud.model.pricing import PricingKind

#: The tenant of capacity that served no workload (idle nodes, unused reservations).
UNASSIGNED = "unassigned"


@dataclass(frozen=True, slots=True)
class UsageInterval:
    """``nodes`` instances of ``instance_type`` in ``provider``/``region`` ran from
    ``start`` to ``end`` (UTC; None: still running) bought as ``pricing``.

    ``usd_per_hour`` is the price of one node-hour as launched (the list price for
    on-demand and spot, the contracted rate for ``committed``; for ``reserved`` it is
    used only when the contract or its block is unknown). ``contract`` names the
    contract the capacity was launched under (None: none named). ``tenant`` is the
    tenant of the workload the nodes served (None: idle, accrued to ``UNASSIGNED``).
    ``nodes`` may be a fraction: a workload's share of nodes it shares with others (the
    twin's gangs of fewer GPUs than a node has).
    """

    provider: str
    region: str
    instance_type: str
    pricing: PricingKind
    contract: str | None
    tenant: str | None
    usd_per_hour: float
    start: datetime
    end: datetime | None
    nodes: float = 1
