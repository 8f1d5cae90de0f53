"""Gangs that can never run on providers of known, finite capacity (the local sites).

The planner treats every offering as unbounded: ``num_nodes: 1000000`` on the local
provider gets a placement, and the job would wait forever. ``split_fitting`` judges the
planner's placements against what each offering holds *when empty*, with the same
rules the fleet decider applies to a pending gang (``PoolOf.too_big``), so a request
that no enabled provider can ever satisfy is refused at submission (and left out of
``plan``) with the reason, instead of being accepted and rejected later.
"""

from __future__ import annotations

from collections.abc import Sequence

from intercloud.control.decide import demand_of, offering_key
from intercloud.control.fleet_decider import build_fleet
from intercloud.control.snapshot import Fleet
from intercloud.model import Offering, Placement, Workload
from intercloud.providers.base import FreeCapacity, OfferingKey


def whole_capacity(offerings: Sequence[Offering]) -> dict[OfferingKey, FreeCapacity]:
    """Each offering's entire capacity as its free capacity (nothing running)."""
    return {
        offering_key(o): FreeCapacity(o.vcpus, o.accelerator_count, o.memory_gib) for o in offerings
    }


def finite_fleet(offerings: Sequence[Offering]) -> Fleet:
    """The fleet ``split_fitting`` judges against: every offering at its whole capacity
    (build once and pass it in to judge many workloads against the same offerings)."""
    return build_fleet(offerings, whole_capacity(offerings), [], 0.0)


def split_fitting(
    workload: Workload,
    placements: Sequence[Placement],
    offerings: Sequence[Offering],
    fleet: Fleet | None = None,
) -> tuple[list[Placement], list[str]]:
    """``placements`` that can run (in order) and the distinct reasons of those that never
    can, judged against the finite-capacity ``offerings`` (``fleet``: their
    ``finite_fleet``, when already built)."""
    if fleet is None:
        fleet = finite_fleet(offerings)
    kept: list[Placement] = []
    reasons: list[str] = []
    for c in placements:
        p = fleet.by_key.get(offering_key(c))
        why = None if p is None else fleet.pools[p].too_big(demand_of(workload, c))
        if why is None:
            kept.append(c)
        elif why not in reasons:
            reasons.append(why)
    return kept, reasons
