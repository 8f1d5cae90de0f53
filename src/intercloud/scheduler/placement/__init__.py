"""Gang placement on the fleet state: which pools can ever take a gang (``filter``: the
PreFilter/Filter funnel, in the planner's words), in which order to try them
(``order``: Score), which nodes to take (``pick``: best fit, all or nothing, topology
respected) and how fragmented the free capacity is (``fragmentation``)."""

from intercloud.scheduler.placement.filter import Candidates, candidate_pools, shape_key
from intercloud.scheduler.placement.fragmentation import Fragmentation, fragmentation
from intercloud.scheduler.placement.order import PoolOrder, list_price_order, marginal_usd_per_hour
from intercloud.scheduler.placement.pick import fits_now, pick_nodes

__all__ = [
    "Candidates",
    "Fragmentation",
    "PoolOrder",
    "candidate_pools",
    "fits_now",
    "fragmentation",
    "list_price_order",
    "marginal_usd_per_hour",
    "pick_nodes",
    "shape_key",
]
