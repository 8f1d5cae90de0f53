"""Contract specs: YAML -> validated ``model.Contract`` values and a provider preference.

A contracts file is a mapping::

    preference: [azure, aws, gcp, oci]   # first = primary partner (optional)
    contracts:
      - name: aws-2025
        provider: aws
        term: {start: 2025-11-01, end: 2032-11-01}
        commitment: {total_usd: 38.0e+9, yearly_minimums_usd: [...]}   # optional
        discount: 0.1                                                   # off list prices
        ramp: [{month: 2025-11, gpus: 20000}, ...]                      # optional
        reserved_blocks: [{instance_type, region, count, start, end,
                           usd_per_node_hour, payment: upfront|monthly}]
        capacity_blocks: [{instance_type, region, count, start, end, usd_per_node_hour}]

Contract (what the checks promise): every amount is positive; every window ends after it
starts and lies inside the term; yearly minimums are at most one per contract year and
sum to no more than the total; two reserved blocks of one instance type in one region
never overlap in time (state them as one block; Capacity Blocks may overlap); ramp
months increase. Capacity Blocks
follow AWS EC2: 1 to 182 days, 1 to 64 instances per block, at most 256 instances across
blocks at any instant, paid upfront, no cancellation, instances stop 30 minutes before
the block ends. With a catalog, instance types and regions must exist for the provider
(for a provider the catalog describes; a plugin's own provider is not checked).
Every problem is one ``SpecError`` line naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from intercloud.model import (
    KNOWN_PROVIDERS,
    Contract,
    Payment,
    RampStep,
    ReservedBlock,
    canonical_provider,
)
from intercloud.specs.errors import (
    ROOT,
    FieldValueError,
    SpecError,
    SpecProblem,
    describe,
    problem_from_validation,
    suggest,
)
from intercloud.specs.loader import parse_yaml, read_spec_text

if TYPE_CHECKING:
    from intercloud.catalog import Catalog

#: Capacity Block limits (AWS EC2, 2025-2026).
CB_MIN_DAYS = 1
CB_MAX_DAYS = 182
CB_MAX_PER_BLOCK = 64
CB_MAX_ACROSS = 256

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: A month, written ``YYYY-MM`` (a date is read as its month); validated by ``parse_month``.
MonthField = Annotated[
    Any,
    WithJsonSchema(
        {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description": "a month, YYYY-MM"}
    ),
]


def _provider(value: str, info: ValidationInfo | None = None) -> str:
    """A provider a contract may name: the catalog's, the registry's, or one of
    ``context["providers"]`` (those the configuration enables)."""
    name = canonical_provider(value)
    extra = (info.context or {}).get("providers", ()) if info is not None else ()
    if name in KNOWN_PROVIDERS or name in extra:
        return name
    from intercloud.providers.registry import known_names

    known = sorted({*KNOWN_PROVIDERS, *known_names(), *extra})
    if name not in known:
        raise FieldValueError(f"unknown provider {value!r}{suggest(value, known)}")
    return name


def _instant(value: date | datetime) -> datetime:
    """A date means its midnight UTC; a naive datetime is UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def parse_month(value: Any) -> date:
    """``"2025-11"`` (or a date, read as its month) -> the first day of that month."""
    if isinstance(value, date):
        return date(value.year, value.month, 1)
    m = _MONTH.match(str(value).strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise FieldValueError(f"expected a month like 2026-01, got {value!r}")
    return date(int(m.group(1)), int(m.group(2)), 1)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _date_or_time(value: Any) -> Any:
    """Only a date, a time or an ISO string: pydantic's lax mode would read a number
    (or a string of digits) as seconds since 1970, so ``start: 2025`` meant 1970-01-01."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.match(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise FieldValueError(f"expected a date like 2026-01-01, got {describe(value)}")


#: a date or time; YAML gives a date, JSON (the schema) a string: both parse
When = Annotated[
    Annotated[date, Field(strict=False)] | Annotated[datetime, Field(strict=False)],
    BeforeValidator(_date_or_time),
]


class _Strict(BaseModel):
    """No coercion (a boolean is no number, a quoted number no number), as specs."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TermSpec(_Strict):
    start: When
    end: When

    @field_validator("end")
    @classmethod
    def _after(cls, v: date | datetime, info: Any) -> date | datetime:
        start = info.data.get("start")
        if start is not None and _instant(v) <= _instant(start):
            raise FieldValueError(f"must be after start ({start})")
        return v


class CommitmentSpec(_Strict):
    total_usd: Positive
    yearly_minimums_usd: list[Positive] = []


class RampStepSpec(_Strict):
    month: MonthField
    gpus: Annotated[int, Field(ge=0)]

    @field_validator("month")
    @classmethod
    def _month(cls, v: Any) -> date:
        return parse_month(v)


class BlockSpec(_Strict):
    instance_type: Annotated[str, Field(min_length=1)]
    region: Annotated[str, Field(min_length=1)]
    zone: str = ""
    count: Annotated[int, Field(gt=0)]
    start: When
    end: When
    usd_per_node_hour: Positive

    @field_validator("end")
    @classmethod
    def _after(cls, v: date | datetime, info: Any) -> date | datetime:
        start = info.data.get("start")
        if start is not None and _instant(v) <= _instant(start):
            raise FieldValueError(f"must be after start ({start})")
        return v


class ReservedBlockSpec(BlockSpec):
    payment: Literal["upfront", "monthly"] = "monthly"


class CapacityBlockSpec(BlockSpec):
    """Paid upfront, no cancellation: there is no ``payment`` field to set."""

    count: Annotated[int, Field(gt=0, le=CB_MAX_PER_BLOCK)]

    @field_validator("end")
    @classmethod
    def _length(cls, v: date | datetime, info: Any) -> date | datetime:
        start = info.data.get("start")
        if start is not None:
            days = (_instant(v) - _instant(start)) / timedelta(days=1)
            if not CB_MIN_DAYS <= days <= CB_MAX_DAYS:
                raise FieldValueError(
                    f"a Capacity Block lasts {CB_MIN_DAYS} to {CB_MAX_DAYS} days, got {days:g}"
                )
        return v


class ContractSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    provider: str
    term: TermSpec
    commitment: CommitmentSpec | None = None
    discount: Annotated[float, Field(ge=0, lt=1)] = 0.0
    ramp: list[RampStepSpec] = []
    reserved_blocks: list[ReservedBlockSpec] = []
    capacity_blocks: list[CapacityBlockSpec] = []

    @field_validator("provider")
    @classmethod
    def _provider(cls, v: str, info: ValidationInfo) -> str:
        return _provider(v, info)


class ContractsFileSpec(_Strict):
    preference: list[str] = []
    contracts: Annotated[list[ContractSpec], Field(min_length=1)]

    @field_validator("preference")
    @classmethod
    def _preference(cls, v: list[str], info: ValidationInfo) -> list[str]:
        out: list[str] = []
        for i, name in enumerate(v):
            try:
                p = _provider(name, info)
            except FieldValueError as exc:
                raise FieldValueError(exc.problem, f"[{i}]") from None
            if p in out:
                raise FieldValueError(f"{p} is listed twice", f"[{i}]")
            out.append(p)
        return out


@dataclass(frozen=True)
class Portfolio:
    """Validated contracts and the provider preference (first: the primary partner)."""

    contracts: tuple[Contract, ...]
    preference: tuple[str, ...]

    @property
    def primary(self) -> str | None:
        return self.preference[0] if self.preference else None


def _check_contract(i: int, c: ContractSpec, catalog: Catalog | None) -> Contract:
    here = f"contracts[{i}]"
    start, end = _instant(c.term.start), _instant(c.term.end)
    years = (end - start) / timedelta(days=365.25)
    if c.commitment is not None:
        mins = c.commitment.yearly_minimums_usd
        if len(mins) > max(1, round(years + 0.49)):
            raise SpecProblem(
                f"{here}.commitment.yearly_minimums_usd",
                f"{len(mins)} yearly minimums for a {years:.2g}-year term",
            )
        if sum(mins) > c.commitment.total_usd * (1 + 1e-9):
            raise SpecProblem(
                f"{here}.commitment.yearly_minimums_usd",
                f"sum {sum(mins):,.0f} exceeds total_usd {c.commitment.total_usd:,.0f}",
            )
    for j in range(1, len(c.ramp)):
        if c.ramp[j].month <= c.ramp[j - 1].month:
            raise SpecProblem(f"{here}.ramp[{j}].month", "months must increase")
    for j, step in enumerate(c.ramp):
        m = parse_month(step.month)
        if not date(start.year, start.month, 1) <= m < end.date():
            raise SpecProblem(f"{here}.ramp[{j}].month", "outside the contract term")
    blocks: list[ReservedBlock] = []
    for field, specs, cb in (
        ("reserved_blocks", c.reserved_blocks, False),
        ("capacity_blocks", c.capacity_blocks, True),
    ):
        for j, b in enumerate(specs):
            path = f"{here}.{field}[{j}]"
            bs, be = _instant(b.start), _instant(b.end)
            if bs < start or be > end:
                raise SpecProblem(f"{path}.start", "block window lies outside the contract term")
            if catalog is not None:
                _check_offering(path, c.provider, b, catalog)
            # Reserved blocks of one type and place must not overlap (one block each);
            # Capacity Blocks may (a 64-instance limit per block means buying several).
            for k, other in enumerate(blocks):
                if (
                    not cb
                    and other.instance_type == b.instance_type
                    and other.region == b.region
                    and other.zone == b.zone
                    and other.start is not None
                    and other.end is not None
                    and bs < other.end
                    and other.start < be
                ):
                    raise SpecProblem(
                        path,
                        f"overlaps {field}[{k}] (same instance type and region); "
                        "state them as one block",
                    )
            payment = Payment.UPFRONT if cb else Payment(getattr(b, "payment", "monthly"))
            blocks.append(
                ReservedBlock(
                    b.region,
                    b.zone,
                    b.instance_type,
                    b.count,
                    bs,
                    be,
                    b.usd_per_node_hour,
                    payment,
                    cb,
                )
            )
    _check_capacity_block_total(here, [b for b in blocks if b.capacity_block])
    return Contract(
        name=c.name,
        provider=c.provider,
        blocks=tuple(blocks),
        start=start,
        end=end,
        usd_per_node_hour=0.0,
        committed_usd=c.commitment.total_usd if c.commitment else 0.0,
        yearly_minimums_usd=tuple(c.commitment.yearly_minimums_usd) if c.commitment else (),
        discount=c.discount,
        ramp=tuple(RampStep(parse_month(s.month), s.gpus) for s in c.ramp),
    )


def _check_capacity_block_total(here: str, blocks: list[ReservedBlock]) -> None:
    """At most ``CB_MAX_ACROSS`` Capacity Block instances at any instant (sweep line)."""
    events: list[tuple[datetime, int, int]] = []
    for j, b in enumerate(blocks):
        assert b.start is not None and b.end is not None
        events += [(b.start, b.nodes, j), (b.end, -b.nodes, j)]
    live = 0
    # Ends before starts at one instant; starts in file order (the block named is the one
    # that goes over).
    for _, delta, j in sorted(events, key=lambda e: (e[0], e[1] > 0, e[2])):
        live += delta
        if live > CB_MAX_ACROSS:
            raise SpecProblem(
                f"{here}.capacity_blocks[{j}].count",
                f"{live} instances across Capacity Blocks at once; the limit is {CB_MAX_ACROSS}",
            )


def _check_offering(path: str, provider: str, b: BlockSpec, catalog: Catalog) -> None:
    rows = [o for o in catalog.filter(provider=provider).offerings]
    if not rows:  # a provider the catalog does not describe (a plugin's own): nothing to check
        return
    types = {o.instance_type for o in rows}
    if b.instance_type not in types:
        raise SpecProblem(
            f"{path}.instance_type",
            f"{provider} has no instance type {b.instance_type!r}{suggest(b.instance_type, types)}",
        )
    regions = {o.region for o in rows if o.instance_type == b.instance_type}
    if b.region not in regions:
        raise SpecProblem(
            f"{path}.region",
            f"{b.instance_type} is not offered in {b.region!r}{suggest(b.region, regions)}",
        )


def _unique_names(spec: ContractsFileSpec) -> None:
    seen: set[str] = set()
    for i, c in enumerate(spec.contracts):
        if c.name in seen:
            raise SpecProblem(f"contracts[{i}].name", f"{c.name!r} is used twice")
        seen.add(c.name)


def load_contracts_text(
    text: str,
    catalog: Catalog | None = None,
    source: str = "<string>",
    providers: Collection[str] = (),
) -> Portfolio:
    """Parse and validate a contracts file. Raises ``SpecError`` (one line) on any problem.
    ``providers``: names a contract may use besides the known ones (those enabled)."""
    try:
        data = parse_yaml(text)
        if not isinstance(data, dict):
            raise SpecProblem(ROOT, "expected a mapping with a 'contracts' list")
        try:
            spec = ContractsFileSpec.model_validate(data, context={"providers": tuple(providers)})
        except ValidationError as exc:
            raise problem_from_validation(exc, ContractsFileSpec) from None
        _unique_names(spec)
        contracts = tuple(_check_contract(i, c, catalog) for i, c in enumerate(spec.contracts))
        return Portfolio(contracts, tuple(spec.preference))
    except SpecProblem as p:
        raise SpecError(p.field, p.problem, source) from None


def load_contracts(
    path: Path, catalog: Catalog | None = None, providers: Collection[str] = ()
) -> Portfolio:
    """Read and validate the contracts file at ``path`` (see ``load_contracts_text``)."""
    return load_contracts_text(read_spec_text(path), catalog, str(path), providers)
