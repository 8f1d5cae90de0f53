"""Capacity contracts: reserved blocks bought from a provider for a time window.

Minimal on purpose (the contracts issue builds specs, a ledger and a planner on it): a
contract holds fixed blocks of nodes of one instance type in one place, paid for the whole
window, so their marginal cost while the contract runs is zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ReservedBlock:
    """``nodes`` instances of ``instance_type`` held in one provider location."""

    region: str
    zone: str
    instance_type: str
    nodes: int


@dataclass(frozen=True, slots=True)
class Contract:
    """Reserved blocks from one provider between ``start`` and ``end`` (UTC).

    ``usd_per_node_hour`` is the effective contracted price of one reserved node-hour;
    the whole commitment is paid whether or not the nodes are used.
    """

    name: str
    provider: str
    blocks: tuple[ReservedBlock, ...]
    start: datetime
    end: datetime
    usd_per_node_hour: float

    @property
    def nodes(self) -> int:
        return sum(b.nodes for b in self.blocks)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0

    @property
    def total_usd(self) -> float:
        return self.nodes * self.hours * self.usd_per_node_hour

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end
