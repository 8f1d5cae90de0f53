"""Score: the order in which a gang's candidate pools are tried.

``PoolOrder`` is the seam for the cost model (``scheduler/cost``): given the state, the
request and its feasible pools, return them cheapest first. ``list_price_order`` is the
built-in one: pools whose marginal cost is zero (reserved under a contract) first, then
by list price per node-hour, then by the request's provider preference, then by pool
index (deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from intercloud.model import PricingKind
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest


class PoolOrder(Protocol):
    def __call__(
        self, state: FleetState, request: GangRequest, pools: Sequence[int], now_s: float
    ) -> list[int]: ...


def marginal_usd_per_hour(spec: PoolSpec, nodes: int) -> float:
    """What running ``nodes`` nodes of ``spec`` for an hour adds to the bill (reserved
    capacity is already paid: zero)."""
    if spec.pricing == PricingKind.RESERVED:
        return 0.0
    return spec.usd_per_node_hour * nodes


def list_price_order(
    state: FleetState, request: GangRequest, pools: Sequence[int], now_s: float
) -> list[int]:
    pref = request.provider_preference

    def key(p: int) -> tuple[float, int, int]:
        spec = state.pools[p]
        rank = pref.index(spec.provider) if spec.provider in pref else len(pref)
        return (marginal_usd_per_hour(spec, 1), rank, p)

    return sorted(pools, key=key)
