"""The batch optimizer (MILP with HiGHS), its greedy reference, and the policy using it."""

from intercloud.scheduler.optimizer.milp import (
    BatchAssignment,
    FleetUsage,
    greedy_batch,
    solve_batch,
)
from intercloud.scheduler.optimizer.policy import BatchOptimizer

__all__ = ["BatchAssignment", "BatchOptimizer", "FleetUsage", "greedy_batch", "solve_batch"]
