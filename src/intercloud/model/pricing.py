"""How a unit of capacity is paid for. One enum for the whole project."""

from __future__ import annotations

from enum import StrEnum


class PricingKind(StrEnum):
    """The four ways capacity is bought.

    ``reserved``: capacity bought under a contract (already paid, marginal cost zero).
    ``committed``: on-demand capacity billed against a committed-spend discount.
    ``on_demand``: list price, pay as you go.
    ``spot``: preemptible capacity at a discount.
    """

    RESERVED = "reserved"
    COMMITTED = "committed"
    ON_DEMAND = "on_demand"
    SPOT = "spot"
