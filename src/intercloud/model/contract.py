"""Capacity contracts: commitments and reserved blocks bought from a provider.

A contract runs from ``start`` to ``end`` (UTC). It may hold reserved blocks (fixed nodes
of one instance type in one place, paid whether used or not, so their marginal cost
while their window runs is zero), Capacity Blocks (short, upfront-paid reserved windows),
a committed-spend total with optional yearly minimums, a discount on list prices and a
ramp schedule (capacity the provider makes available month by month). The scheduler's
minimal use (one window, one price for every block) is the case where blocks leave their
own window and price unset. ``intercloud.contracts`` reads these from YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

#: AWS terminates Capacity Block instances from 30 minutes before the block ends.
CAPACITY_BLOCK_EARLY_END = timedelta(minutes=30)


class Payment(StrEnum):
    """When a reserved block is paid: all at its start, or month by month."""

    UPFRONT = "upfront"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class ReservedBlock:
    """``nodes`` instances of ``instance_type`` held in one provider location.

    ``start``/``end``/``usd_per_node_hour`` left None take the contract's. A Capacity
    Block (``capacity_block``) is paid upfront, cannot be cancelled, and its instances
    stop ``CAPACITY_BLOCK_EARLY_END`` before its end (``usable_end``).
    """

    region: str
    zone: str
    instance_type: str
    nodes: int
    start: datetime | None = None
    end: datetime | None = None
    usd_per_node_hour: float | None = None
    payment: Payment = Payment.MONTHLY
    capacity_block: bool = False


@dataclass(frozen=True, slots=True)
class RampStep:
    """From ``month`` on (until the next step), the provider makes ``gpus`` GPUs available."""

    month: date
    gpus: int


@dataclass(frozen=True, slots=True)
class Contract:
    """A contract with one provider between ``start`` and ``end`` (UTC).

    ``usd_per_node_hour`` is the effective contracted price of one reserved node-hour of a
    block that sets none; the whole reservation is paid whether or not the nodes are used.
    ``committed_usd``: spend promised over the term (0: none); ``yearly_minimums_usd[i]``:
    spend promised in contract year ``i``; ``discount``: fraction off list prices.
    """

    name: str
    provider: str
    blocks: tuple[ReservedBlock, ...]
    start: datetime
    end: datetime
    usd_per_node_hour: float
    committed_usd: float = 0.0
    yearly_minimums_usd: tuple[float, ...] = ()
    discount: float = 0.0
    ramp: tuple[RampStep, ...] = ()

    @property
    def nodes(self) -> int:
        return sum(b.nodes for b in self.blocks)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0

    def window(self, block: ReservedBlock) -> tuple[datetime, datetime]:
        """The block's paid window (its own, else the contract's)."""
        return (block.start or self.start, block.end or self.end)

    def usable_end(self, block: ReservedBlock) -> datetime:
        """When the block's instances stop: its end, 30 minutes earlier for a Capacity Block."""
        end = self.window(block)[1]
        return end - CAPACITY_BLOCK_EARLY_END if block.capacity_block else end

    def block_usd(self, block: ReservedBlock) -> float:
        """What the block costs over its whole paid window (the early end is paid too)."""
        start, end = self.window(block)
        price = (
            self.usd_per_node_hour if block.usd_per_node_hour is None else block.usd_per_node_hour
        )
        return block.nodes * (end - start).total_seconds() / 3600.0 * price

    @property
    def total_usd(self) -> float:
        """What the reserved blocks cost in all (not the committed spend)."""
        return sum(self.block_usd(b) for b in self.blocks)

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def ramp_gpus(self, month: date) -> int | None:
        """GPUs the ramp makes available in ``month`` (None: no ramp, or before its first step)."""
        found: int | None = None
        for step in self.ramp:
            if step.month <= month:
                found = step.gpus
        return found
