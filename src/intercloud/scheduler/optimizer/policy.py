"""``BatchOptimizer``: the MILP as a placement policy a user may choose for small batches.

It decides at pool level: a PLACE names the pool and leaves ``node_ids`` empty, so the
core's gang placement picks the nodes (and may still hold a gang that the pool's free
capacity cannot hold node by node: the MILP sees GPUs and whole free domains, not
fragmentation). The batch is atomic with respect to diversification caps (see
``optimizer.milp``): the core applies its PLACE decisions together, checking caps against
the fleet after the whole batch, not one decision at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy.typing as npt

from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.pool_cost import Bool, PoolCosts
from intercloud.scheduler.optimizer.milp import BatchAssignment, FleetUsage, solve_batch
from intercloud.scheduler.reasons import ReasonCode
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest

NO_POOL = "no pool offers this request (accelerator, spot, provider, region or topology)"
NO_ROOM = "batch optimizer: no pool has room within capacity, quotas and caps"


class BatchOptimizer:
    """Minimum-cost placement of a batch of at most ``max_batch`` requests (the MILP of
    ``optimizer.milp``, ``time_limit_s`` per batch). Requests beyond ``max_batch`` are
    left for the next round (no decision)."""

    name = "milp"

    def __init__(
        self,
        costs: PoolCosts,
        caps: DiversificationCaps | None = None,
        *,
        max_batch: int = 200,
        time_limit_s: float = 2.0,
    ) -> None:
        self.costs = costs
        self.caps = caps
        self.max_batch = max_batch
        self.time_limit_s = time_limit_s
        self.last: BatchAssignment | None = None

    def decide(
        self,
        requests: Sequence[GangRequest],
        free_gpus: npt.ArrayLike,
        free_domains: npt.ArrayLike | None = None,
        *,
        now_s: float,
        usage: FleetUsage | None = None,
        quota: Mapping[tuple[str, str], float] | None = None,
        usable: Bool | None = None,
    ) -> list[Decision]:
        """One decision per request of the batch, in the order given: PLACE (pool
        chosen), REJECT (no pool could ever take it) or HOLD (no room now)."""
        batch = list(requests[: self.max_batch])
        result = solve_batch(
            batch,
            self.costs,
            free_gpus,
            free_domains,
            now_s=now_s,
            caps=self.caps,
            usage=usage,
            quota=quota,
            usable=usable,
            time_limit_s=self.time_limit_s,
        )
        self.last = result
        out: list[Decision] = []
        for req, pool in zip(batch, result.pool.tolist(), strict=True):
            if pool >= 0:
                out.append(Decision(DecisionKind.PLACE, job_id=req.job_id, pool=pool))
            elif not self.costs.rank(req, now_s).size:
                out.append(
                    Decision(
                        DecisionKind.REJECT,
                        job_id=req.job_id,
                        reason=NO_POOL,
                        code=ReasonCode.NEVER_FITS,
                    )
                )
            else:
                out.append(
                    Decision(
                        DecisionKind.HOLD,
                        job_id=req.job_id,
                        reason=NO_ROOM,
                        code=ReasonCode.WAITING_FOR_CAPACITY,
                    )
                )
        return out
