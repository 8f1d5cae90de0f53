"""Queue order: pluggable policies, chosen by name, that sort the pending queue once per
scheduling cycle. ``get_policy("fair_share")``; ``POLICIES`` lists them.

* ``priority`` — priority classes high to low, FIFO within a class;
* ``fair_share`` — priority first, then weighted DRF between tenants, FIFO within a tenant;
* ``fifo`` — global FIFO.
"""

from intercloud.scheduler.queue_order import fair_share, fifo, priority
from intercloud.scheduler.queue_order.base import POLICIES, QueueOrder, get_policy, register
from intercloud.scheduler.queue_order.fair_share import FairShareOrder
from intercloud.scheduler.queue_order.fifo import FifoOrder
from intercloud.scheduler.queue_order.priority import PriorityOrder

__all__ = [
    "POLICIES",
    "FairShareOrder",
    "FifoOrder",
    "PriorityOrder",
    "QueueOrder",
    "fair_share",
    "fifo",
    "get_policy",
    "priority",
    "register",
]
