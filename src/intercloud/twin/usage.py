"""The capacity a twin run used, as ``UsageInterval`` values for the spend ledger
(``contracts/ledger.py``): the same ledger the control loop keeps from its store.

- Each attempt of a job gives ``[start, end)`` on its pool's nodes, charged to its
  tenant (``job_started`` / ``job_ended``); a gang of fewer GPUs than a node has
  counts its share of each node it sits on.
- A pool's present nodes are followed as the clock advances (``advance``: one array
  comparison per step); the nodes present but running no attempt are idle (tenant
  None: the ledger's ``UNASSIGNED``), found by one sweep per pool at the end.

Every interval carries its pool's provider, region, instance type, pricing kind,
contract and node-hour price; times are the twin's epoch seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from intercloud.model.usage import UsageInterval
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import Allocation, FleetState

__all__ = ["UsageTracker"]

#: One stretch: (pool, tenant or None, nodes, start_s, end_s).
_Stretch = tuple[int, str | None, float, float, float]


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class UsageTracker:
    """Follows the pools' present nodes and the jobs' attempts of one run."""

    def __init__(self, pools: Sequence[PoolSpec], t0: float) -> None:
        self.pools = tuple(pools)
        self._present: npt.NDArray[np.int64] = np.zeros(len(self.pools), np.int64)
        self._since = [t0] * len(self.pools)
        self._last = t0
        self._presence: list[_Stretch] = []
        self._open: dict[int, tuple[int, str, float, float]] = {}
        self._slots = [p.gpus_per_node if p.gpus_per_node > 0 else 1 for p in self.pools]
        self._jobs: list[_Stretch] = []

    def advance(self, state: FleetState, t: float) -> None:
        """The clock moves from the last call to ``t``; ``state`` is the fleet as it
        was in between (the engine changes it only at event times)."""
        now = state.pool_present_nodes
        if not np.array_equal(now, self._present):
            for p in np.flatnonzero(now != self._present).tolist():
                self._close_presence(p, self._last)
                self._present[p] = now[p]
        self._last = t

    def _close_presence(self, p: int, t: float) -> None:
        n = int(self._present[p])
        if n > 0 and t > self._since[p]:
            self._presence.append((p, None, n, self._since[p], t))
        self._since[p] = t

    def job_started(self, j: int, t: float, alloc: Allocation) -> None:
        # a gang of fewer GPUs than a node has: its share of the nodes it sits on
        share = len(alloc.nodes) * min(1.0, alloc.slots / self._slots[alloc.pool])
        self._open[j] = (alloc.pool, alloc.request.tenant, share, t)

    def job_ended(self, j: int, t: float) -> None:
        got = self._open.pop(j, None)
        if got is not None and t > got[3]:
            self._jobs.append((got[0], got[1], got[2], got[3], t))

    def intervals(self) -> list[UsageInterval]:
        """Every stretch up to the last ``advance``: the attempts (jobs still running
        end there), and per pool the idle nodes between them."""
        end = self._last
        jobs = list(self._jobs)
        jobs += [(p, ten, n, s, end) for p, ten, n, s in self._open.values() if end > s]
        presence = list(self._presence)
        presence += [
            (p, None, int(n), self._since[p], end)
            for p, n in enumerate(self._present.tolist())
            if n > 0 and end > self._since[p]
        ]
        idle = _idle(len(self.pools), presence, jobs)
        out: list[UsageInterval] = []
        for p, tenant, n, s, e in sorted(jobs, key=lambda x: (x[3], x[0])) + idle:
            spec = self.pools[p]
            out.append(
                UsageInterval(
                    provider=spec.provider,
                    region=spec.region,
                    instance_type=spec.instance_type,
                    pricing=spec.pricing,
                    contract=spec.contract,
                    tenant=tenant,
                    usd_per_hour=spec.usd_per_node_hour,
                    start=_dt(s),
                    end=_dt(e),
                    nodes=n,
                )
            )
        return out


def _idle(n_pools: int, presence: list[_Stretch], jobs: list[_Stretch]) -> list[_Stretch]:
    """Per pool, the stretches where present nodes exceed the nodes attempts hold."""
    deltas: list[list[tuple[float, float]]] = [[] for _ in range(n_pools)]
    for p, _, n, s, e in presence:
        deltas[p] += [(s, n), (e, -n)]
    for p, _, n, s, e in jobs:
        deltas[p] += [(s, -n), (e, n)]
    out: list[_Stretch] = []
    for p, ds in enumerate(deltas):
        if not ds:
            continue
        ds.sort()
        level, t_prev = 0.0, ds[0][0]
        i = 0
        while i < len(ds):
            t = ds[i][0]
            if t > t_prev and level > 1e-9:
                if out and out[-1][0] == p and out[-1][2] == level and out[-1][4] == t_prev:
                    out[-1] = (p, None, level, out[-1][3], t)
                else:
                    out.append((p, None, level, t_prev, t))
            while i < len(ds) and ds[i][0] == t:
                level += ds[i][1]
                i += 1
            t_prev = t
    return out
