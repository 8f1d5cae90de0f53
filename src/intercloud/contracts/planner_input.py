"""Input of the capacity planner: a monthly demand forecast and the providers' offers.

Demand file::

    start: 2026-01                     # first month of the horizon
    demand:                            # one series per (accelerator, kind)
      - {accelerator: H100, kind: training, gpu_hours: [7300000, 7500000, ...]}
      - {accelerator: H100, kind: inference, gpu_hours: [...]}

Every series has one value per month, all of the same length (1 to ``MAX_MONTHS``).

Offers file (prices in USD per GPU-hour; a missing option is not offered)::

    providers:
      - provider: aws
        max_gpus: [{month: 2026-01, gpus: 50000}]      # optional ramp, all accelerators
        commit_tiers: [{commit_usd: 1.0e+9, discount: 0.1}]   # committed-spend discounts
        offers:
          - accelerator: H100
            on_demand: 6.88
            spot: {usd: 2.1, availability: 0.7}
            reserved_1y: 4.4
            reserved_3y: 3.1
            capacity_block: {usd: 4.92, gpus_per_instance: 8}
            max_gpus: [{month: 2026-01, gpus: 8000}]   # optional ramp of this type
    policy: {max_share: 0.5, primary: azure, primary_min_share: 0.3}

A ramp step holds from its month until the next step; months before the first step have
no GPUs of that kind. The loaders turn these into a ``PlanningProblem`` (numpy arrays) or
raise ``SpecError`` with one line naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intercloud.contracts.spec import MonthField, Portfolio, parse_month
from intercloud.model import (
    ACCELERATORS,
    KNOWN_PROVIDERS,
    canonical_accelerator,
    canonical_provider,
)
from intercloud.specs.errors import (
    ROOT,
    FieldValueError,
    SpecError,
    SpecProblem,
    problem_from_validation,
    suggest,
)
from intercloud.specs.loader import parse_yaml, read_spec_text

if TYPE_CHECKING:
    from intercloud.catalog import Catalog

F64 = npt.NDArray[np.float64]

#: Longest horizon planned, in months (7 years).
MAX_MONTHS = 84

Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _accelerator(value: str) -> str:
    name = canonical_accelerator(value)
    if name is None:
        raise FieldValueError(f"unknown accelerator {value!r}{suggest(value, ACCELERATORS)}")
    return name


class DemandSeries(_Strict):
    accelerator: str
    kind: Literal["training", "inference"]
    gpu_hours: Annotated[
        list[Annotated[float, Field(ge=0, allow_inf_nan=False)]],
        Field(min_length=1, max_length=MAX_MONTHS),
    ]

    @field_validator("accelerator")
    @classmethod
    def _acc(cls, v: str) -> str:
        return _accelerator(v)


class DemandFile(_Strict):
    start: MonthField
    demand: Annotated[list[DemandSeries], Field(min_length=1)]

    @field_validator("start")
    @classmethod
    def _month(cls, v: Any) -> date:
        return parse_month(v)


class RampSpec(_Strict):
    month: MonthField
    gpus: Annotated[int, Field(ge=0)]

    @field_validator("month")
    @classmethod
    def _month(cls, v: Any) -> date:
        return parse_month(v)


class SpotSpec(_Strict):
    usd: Price
    availability: Annotated[float, Field(gt=0, le=1)]


class CapacityBlockOffer(_Strict):
    usd: Price
    gpus_per_instance: Annotated[int, Field(gt=0, le=72)] = 8


class OfferSpec(_Strict):
    accelerator: str
    on_demand: Price | None = None
    spot: SpotSpec | None = None
    reserved_1y: Price | None = None
    reserved_3y: Price | None = None
    capacity_block: CapacityBlockOffer | None = None
    max_gpus: list[RampSpec] | None = None

    @field_validator("accelerator")
    @classmethod
    def _acc(cls, v: str) -> str:
        return _accelerator(v)


class TierSpec(_Strict):
    commit_usd: Price
    discount: Annotated[float, Field(gt=0, lt=1)]


class ProviderOffers(_Strict):
    provider: str
    max_gpus: list[RampSpec] | None = None
    commit_tiers: list[TierSpec] = []
    offers: Annotated[list[OfferSpec], Field(min_length=1)]

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        name = canonical_provider(v)
        if name not in KNOWN_PROVIDERS:
            raise FieldValueError(f"unknown provider {v!r}{suggest(v, KNOWN_PROVIDERS)}")
        return name


class PolicySpec(_Strict):
    max_share: Annotated[float, Field(gt=0, le=1)] = 1.0
    primary: str | None = None
    primary_min_share: Annotated[float, Field(ge=0, le=1)] = 0.0


class OffersFile(_Strict):
    providers: Annotated[list[ProviderOffers], Field(min_length=1)]
    policy: PolicySpec = PolicySpec()


@dataclass(frozen=True)
class PlanningProblem:
    """Everything the planner reads, as arrays. P providers, A accelerators, T months,
    J commit tiers (padded with NaN).

    Prices are USD per GPU-hour, NaN where an option is not offered. ``max_gpus``
    (P, A, T) and ``provider_max_gpus`` (P, T) are GPUs usable at once (inf: no limit).
    ``max_share`` bounds each provider's share of the GPU-hours supplied in every month;
    ``primary`` must supply at least ``primary_min_share`` of them.
    """

    months: tuple[date, ...]
    providers: tuple[str, ...]
    accelerators: tuple[str, ...]
    demand_training: F64  # (A, T) GPU-hours
    demand_inference: F64  # (A, T)
    on_demand: F64  # (P, A)
    spot: F64  # (P, A)
    spot_availability: F64  # (P, A)
    reserved_1y: F64  # (P, A)
    reserved_3y: F64  # (P, A)
    capacity_block: F64  # (P, A)
    gpus_per_instance: F64  # (P, A)
    max_gpus: F64  # (P, A, T)
    provider_max_gpus: F64  # (P, T)
    tier_commit_usd: F64  # (P, J)
    tier_discount: F64  # (P, J)
    max_share: float = 1.0
    primary: str | None = None
    primary_min_share: float = 0.0
    signed_gpus: F64 | None = None  # (P, A, T) GPUs under signed contracts (sunk)
    signed_usd: float = 0.0  # what those cost inside the horizon (not optimised)

    @property
    def demand(self) -> F64:
        return self.demand_training + self.demand_inference

    @property
    def signed(self) -> F64:
        """(P, A, T) GPUs already reserved under signed contracts (zeros if none)."""
        if self.signed_gpus is None:
            return np.zeros((len(self.providers), len(self.accelerators), len(self.months)))
        return self.signed_gpus


def month_add(m: date, k: int) -> date:
    y, mo = divmod(m.month - 1 + k, 12)
    return date(m.year + y, mo + 1, 1)


def month_hours(start: date, count: int) -> F64:
    """Calendar hours of ``count`` months from ``start``."""
    days = [(month_add(start, k + 1) - month_add(start, k)).days for k in range(count)]
    return np.asarray(days, dtype=np.float64) * 24.0


def _ramp(steps: list[RampSpec] | None, months: tuple[date, ...], path: str) -> F64:
    out = np.full(len(months), np.inf)
    if steps is None:
        return out
    for j in range(1, len(steps)):
        if steps[j].month <= steps[j - 1].month:
            raise SpecProblem(f"{path}[{j}].month", "months must increase")
    out[:] = 0.0
    for step in steps:
        out[[i for i, m in enumerate(months) if m >= step.month]] = step.gpus
    return out


def build_problem(demand: DemandFile, offers: OffersFile) -> PlanningProblem:
    """Check the two files against each other and lay them out as arrays."""
    lengths = {len(s.gpu_hours) for s in demand.demand}
    if len(lengths) > 1:
        first = len(demand.demand[0].gpu_hours)
        bad = next(i for i, s in enumerate(demand.demand) if len(s.gpu_hours) != first)
        raise SpecProblem(
            f"demand[{bad}].gpu_hours",
            f"{len(demand.demand[bad].gpu_hours)} months, but demand[0] has {first}",
        )
    n_months = lengths.pop()
    start: date = demand.start
    months = tuple(month_add(start, k) for k in range(n_months))
    accs = tuple(dict.fromkeys(s.accelerator for s in demand.demand))
    a_ix = {a: i for i, a in enumerate(accs)}
    seen: set[tuple[str, str]] = set()
    dt = np.zeros((len(accs), n_months))
    di = np.zeros((len(accs), n_months))
    for i, s in enumerate(demand.demand):
        if (s.accelerator, s.kind) in seen:
            raise SpecProblem(f"demand[{i}]", f"a second {s.kind} series for {s.accelerator}")
        seen.add((s.accelerator, s.kind))
        (dt if s.kind == "training" else di)[a_ix[s.accelerator]] = s.gpu_hours
    provs = tuple(p.provider for p in offers.providers)
    for i, p in enumerate(provs):
        if p in provs[:i]:
            raise SpecProblem(f"providers[{i}].provider", f"{p} is listed twice")
    P, A, T = len(provs), len(accs), n_months
    J = max((len(p.commit_tiers) for p in offers.providers), default=0)
    nan = np.full((P, A), np.nan)
    od, sp, av, r1, r3, cb = (nan.copy() for _ in range(6))
    av[:] = 1.0
    gpi = np.full((P, A), 8.0)
    cap = np.full((P, A, T), np.inf)
    pcap = np.full((P, T), np.inf)
    commit = np.full((P, J), np.nan)
    disc = np.zeros((P, J))
    for pi, po in enumerate(offers.providers):
        here = f"providers[{pi}]"
        pcap[pi] = _ramp(po.max_gpus, months, f"{here}.max_gpus")
        for j in range(1, len(po.commit_tiers)):
            lo, hi = po.commit_tiers[j - 1], po.commit_tiers[j]
            if hi.commit_usd <= lo.commit_usd or hi.discount <= lo.discount:
                raise SpecProblem(
                    f"{here}.commit_tiers[{j}]",
                    "tiers must rise in both commit_usd and discount",
                )
        for j, t in enumerate(po.commit_tiers):
            commit[pi, j], disc[pi, j] = t.commit_usd, t.discount
        offered: set[str] = set()
        for oi, o in enumerate(po.offers):
            path = f"{here}.offers[{oi}]"
            if o.accelerator in offered:
                raise SpecProblem(f"{path}.accelerator", f"{o.accelerator} is offered twice")
            offered.add(o.accelerator)
            if o.accelerator not in a_ix:
                continue  # no demand for it: nothing to plan
            ai = a_ix[o.accelerator]
            if all(
                x is None
                for x in (o.on_demand, o.spot, o.reserved_1y, o.reserved_3y, o.capacity_block)
            ):
                raise SpecProblem(path, "offers no pricing option")
            od[pi, ai] = o.on_demand if o.on_demand is not None else np.nan
            if o.spot is not None:
                sp[pi, ai], av[pi, ai] = o.spot.usd, o.spot.availability
            r1[pi, ai] = o.reserved_1y if o.reserved_1y is not None else np.nan
            r3[pi, ai] = o.reserved_3y if o.reserved_3y is not None else np.nan
            if o.capacity_block is not None:
                cb[pi, ai] = o.capacity_block.usd
                gpi[pi, ai] = o.capacity_block.gpus_per_instance
            cap[pi, ai] = _ramp(o.max_gpus, months, f"{path}.max_gpus")
    for i, s in enumerate(demand.demand):
        ai = a_ix[s.accelerator]
        if sum(s.gpu_hours) > 0 and not any(
            np.isfinite(x[:, ai]).any() for x in (od, sp, r1, r3, cb)
        ):
            raise SpecProblem(f"demand[{i}].accelerator", f"no provider offers {s.accelerator}")
    pol = offers.policy
    if pol.primary is not None:
        primary = canonical_provider(pol.primary)
        if primary not in provs:
            raise SpecProblem(
                "policy.primary",
                f"{pol.primary!r} is not among the providers{suggest(primary, provs)}",
            )
    else:
        primary = None
        if pol.primary_min_share > 0:
            raise SpecProblem("policy.primary_min_share", "set without policy.primary")
    if pol.max_share * P < 1 - 1e-9:
        raise SpecProblem(
            "policy.max_share",
            f"{pol.max_share:g} x {P} provider(s) is below 1: no plan can meet it",
        )
    if primary is not None and pol.primary_min_share > pol.max_share:
        raise SpecProblem("policy.primary_min_share", "is above policy.max_share")
    return PlanningProblem(
        months=months,
        providers=provs,
        accelerators=accs,
        demand_training=dt,
        demand_inference=di,
        on_demand=od,
        spot=sp,
        spot_availability=av,
        reserved_1y=r1,
        reserved_3y=r3,
        capacity_block=cb,
        gpus_per_instance=gpi,
        max_gpus=cap,
        provider_max_gpus=pcap,
        tier_commit_usd=commit,
        tier_discount=disc,
        max_share=pol.max_share,
        primary=primary,
        primary_min_share=pol.primary_min_share,
    )


def _validate(model: type[BaseModel], data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise SpecProblem(ROOT, f"expected a mapping ({what})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise problem_from_validation(exc, model) from None


def load_problem_text(
    demand_text: str,
    offers_text: str,
    demand_source: str = "<demand>",
    offers_source: str = "<offers>",
) -> PlanningProblem:
    """Both files -> a ``PlanningProblem``; ``SpecError`` naming the file and field."""
    try:
        demand = _validate(DemandFile, parse_yaml(demand_text), "a demand forecast")
    except SpecProblem as p:
        raise SpecError(p.field, p.problem, demand_source) from None
    try:
        offers = _validate(OffersFile, parse_yaml(offers_text), "provider offers")
    except SpecProblem as p:
        raise SpecError(p.field, p.problem, offers_source) from None
    try:
        return build_problem(demand, offers)
    except SpecProblem as p:
        source = demand_source if p.field.startswith("demand") else offers_source
        raise SpecError(p.field, p.problem, source) from None


def load_problem(demand_path: Path, offers_path: Path) -> PlanningProblem:
    """Read both files (see ``load_problem_text``)."""
    return load_problem_text(
        read_spec_text(demand_path),
        read_spec_text(offers_path),
        str(demand_path),
        str(offers_path),
    )


def with_signed_contracts(
    pb: PlanningProblem, portfolio: Portfolio, catalog: Catalog, source: str = "<contracts>"
) -> PlanningProblem:
    """``pb`` with the reserved blocks and Capacity Blocks of signed contracts as capacity
    already paid for: each block gives ``nodes x GPUs per node`` GPUs for the part of
    each month between its start and its usable end (30 minutes early for a Capacity
    Block); it counts against the availability limits; its cost inside the horizon is
    ``signed_usd`` (sunk: in no plan's total). Blocks of accelerator types without demand
    are left out. A contract with a provider that has no offers is a ``SpecError``."""
    T = len(pb.months)
    gpus = pb.signed.copy()
    edges = [datetime(m.year, m.month, 1, tzinfo=UTC) for m in pb.months]
    end_month = month_add(pb.months[-1], 1)
    edges.append(datetime(end_month.year, end_month.month, 1, tzinfo=UTC))
    hours = month_hours(pb.months[0], T)
    by_type = {(o.provider, o.instance_type): o for o in catalog.offerings if o.is_gpu}
    usd = pb.signed_usd
    for i, c in enumerate(portfolio.contracts):
        if c.provider not in pb.providers:
            raise SpecError(
                f"contracts[{i}].provider", f"{c.provider} has no offers to plan with", source
            )
        p = pb.providers.index(c.provider)
        n_reserved = sum(1 for b in c.blocks if not b.capacity_block)
        for j, block in enumerate(c.blocks):
            o = by_type.get((c.provider, block.instance_type))
            if o is None or o.accelerator is None:
                field = (
                    f"capacity_blocks[{j - n_reserved}]"
                    if block.capacity_block
                    else f"reserved_blocks[{j}]"
                )
                raise SpecError(
                    f"contracts[{i}].{field}.instance_type",
                    f"{block.instance_type} is not a GPU instance type of {c.provider}",
                    source,
                )
            start, end = c.window(block)
            usable = c.usable_end(block)
            price = (
                c.usd_per_node_hour if block.usd_per_node_hour is None else block.usd_per_node_hour
            )
            paid = max(0.0, (min(end, edges[-1]) - max(start, edges[0])).total_seconds() / 3600)
            usd += paid * block.nodes * price
            acc = canonical_accelerator(o.accelerator)
            if acc not in pb.accelerators:
                continue
            a = pb.accelerators.index(acc)
            for t in range(T):
                lo, hi = max(start, edges[t]), min(usable, edges[t + 1])
                if hi > lo:
                    share = (hi - lo).total_seconds() / 3600 / hours[t]
                    gpus[p, a, t] += block.nodes * o.accelerator_count * share
    return dataclasses.replace(pb, signed_gpus=gpus, signed_usd=usd)
