"""A synthetic planning problem of any size, for the benchmark and scale tests.

Seeded and deterministic: demand grows about 3 % a month from a random base per
accelerator type, split 60/40 between training and inference; every provider offers every
type with all pricing options (on-demand, spot, 1- and 3-year reservations, Capacity
Blocks), availability ramps, two committed-spend tiers; the policy caps each provider at
``max_share`` with the first provider as primary partner.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from intercloud.contracts.planner_input import PlanningProblem, month_add, month_hours

_PROVIDERS = ("azure", "aws", "gcp", "oci", "lambda", "local")
_ACCELERATORS = (
    "H100",
    "H200",
    "B200",
    "GB200",
    "A100",
    "A100-80GB",
    "L40S",
    "L4",
    "MI300X",
    "A10G",
    "T4",
    "V100",
)


def synthetic_problem(
    months: int = 84,
    providers: int = 4,
    accelerators: int = 10,
    seed: int = 0,
    max_share: float = 0.4,
    primary_min_share: float = 0.3,
) -> PlanningProblem:
    """A feasible problem of ``months`` x ``providers`` x ``accelerators``."""
    rng = np.random.default_rng(seed)
    P, A, T = providers, accelerators, months
    start = date(2026, 1, 1)
    hours = month_hours(start, T)
    base_gpus = rng.uniform(2_000, 20_000, size=A)
    growth = 1.03 ** np.arange(T)
    gpus = base_gpus[:, None] * growth[None, :]
    demand = gpus * hours[None, :]
    list_price = rng.uniform(1.0, 12.0, size=A)
    od = list_price[None, :] * rng.uniform(0.9, 1.3, size=(P, A))
    spot = od * rng.uniform(0.3, 0.5, size=(P, A))
    r1 = od * rng.uniform(0.6, 0.75, size=(P, A))
    r3 = od * rng.uniform(0.4, 0.55, size=(P, A))
    cb = od * rng.uniform(0.6, 0.8, size=(P, A))
    # Each provider could host all of a type's peak demand once its ramp (a year) is done.
    ramp = np.minimum(1.0, 0.5 + np.arange(T) / 24.0)
    cap = 1.1 * gpus[None, :, :].max(axis=2, keepdims=True) * ramp[None, None, :]
    cap = np.broadcast_to(cap, (P, A, T)).copy()
    commit = np.array([[0.002, 0.01]]) * (demand.sum() * list_price.mean() / P)
    return PlanningProblem(
        months=tuple(month_add(start, k) for k in range(T)),
        providers=_PROVIDERS[:P],
        accelerators=_ACCELERATORS[:A],
        demand_training=0.6 * demand,
        demand_inference=0.4 * demand,
        on_demand=od,
        spot=spot,
        spot_availability=rng.uniform(0.6, 0.9, size=(P, A)),
        reserved_1y=r1,
        reserved_3y=r3,
        capacity_block=cb,
        gpus_per_instance=np.full((P, A), 8.0),
        max_gpus=cap,
        provider_max_gpus=np.full((P, T), np.inf),
        tier_commit_usd=np.broadcast_to(commit, (P, 2)).copy(),
        tier_discount=np.broadcast_to(np.array([[0.05, 0.12]]), (P, 2)).copy(),
        max_share=max_share,
        primary=_PROVIDERS[0],
        primary_min_share=primary_min_share,
    )
