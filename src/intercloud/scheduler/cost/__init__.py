"""Cost scoring and diversification caps for the fleet scheduler."""

from intercloud.scheduler.cost.caps import DiversificationCaps, cap_exceeded
from intercloud.scheduler.cost.pool_cost import PoolCosts

__all__ = ["DiversificationCaps", "PoolCosts", "cap_exceeded"]
