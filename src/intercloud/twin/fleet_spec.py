"""Fleet description in YAML: what the twin (and a planner) simulates.

    fleet = load_fleet("examples/fleets/seed-500k.yaml")
    fleet.pools       # tuple[PoolSpec, ...]  (scheduler/fleet/pools.py)
    fleet.contracts   # tuple[Contract, ...]  (the reserved pools' owners)
    fleet.tenants     # tuple[TenantSpec, ...] (scheduler/requests.py)
    fleet.caps        # DiversificationCaps | None (scheduler/cost/caps.py)

The file nests ``providers -> regions -> zones -> pools``; each pool names an instance
type, a pricing kind and a size (``nodes``, or ``domains``: whole NVLink domains). The
shape (GPUs, accelerator, vCPUs, memory, nodes per NVLink domain) and the list price come
from the bundled catalog: the row of the pool's zone or region, else (an assumption the
loaded ``Fleet`` lists in ``borrowed``) the same instance type in another zone or region
of the provider. An instance type the catalog does not know needs a ``shape``.

Prices: a reserved pool costs its contract's ``usd_per_node_hour``; a spot pool the
catalog's spot price; on-demand and committed pools the on-demand price; any but a
reserved pool may set ``usd_per_node_hour`` itself. Provisioning delay defaults: reserved
and committed 0 s, spot 120 s, on-demand 600 s (1,200 s for multi-node NVLink domains).

Every problem is one line naming the field: ``FleetSpecError`` (a ``SpecError``),
``"seed.yaml: providers[0].regions[1].zones[0].pools[2].nodes: 100 is not a whole number
of NVLink domains (18 nodes each)"``. The JSON Schema is ``twin/schema/fleet.schema.json``
(``python -m intercloud.twin.fleet_spec`` rewrites it; a test keeps it current).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from intercloud.catalog.bundled import load_bundled
from intercloud.catalog.catalog import Catalog
from intercloud.model import Contract, Offering, PricingKind, ReservedBlock, canonical_provider
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import TenantSpec
from intercloud.specs.errors import (
    ROOT,
    FieldValueError,
    SpecError,
    SpecProblem,
    join_path,
    problem_from_validation,
)
from intercloud.specs.loader import parse_yaml, read_spec_text
from intercloud.twin.fleets import fleet_summary
from intercloud.twin.service_load import ServiceSpec
from intercloud.twin.service_spec import ServiceConfig, build_services

SCHEMA_PATH = Path(__file__).with_name("schema") / "fleet.schema.json"
SCHEMA_ID = "https://intercloud.dev/schema/fleet.schema.json"

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.\-]*$")]
Count = Annotated[int, Field(ge=1, le=10_000_000)]
Usd = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=30 * 86_400, allow_inf_nan=False)]
Pricing = Literal["reserved", "committed", "on_demand", "spot"]

DEFAULT_DELAY_S: dict[PricingKind, float] = {
    PricingKind.RESERVED: 0.0,
    PricingKind.COMMITTED: 0.0,
    PricingKind.SPOT: 120.0,
    PricingKind.ON_DEMAND: 600.0,
}


class FleetSpecError(SpecError):
    """A fleet file that cannot be loaded: ``"{source}: {field}: {problem}"``, one line."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ShapeSpec(_Spec):
    """The node shape of an instance type the catalog does not know (or an override)."""

    accelerator: Name | None = Field(
        None, description="GPU model (H100, GB200, ...); omit for a CPU-only instance."
    )
    gpus_per_node: Annotated[int, Field(ge=0, le=64)] = Field(description="GPUs per instance.")
    vcpus: Annotated[float, Field(gt=0, le=4096)] = Field(description="vCPUs per instance.")
    memory_gib: Annotated[float, Field(gt=0, le=65536)] = Field(description="GiB per instance.")
    nodes_per_domain: Annotated[int, Field(ge=1, le=1024)] = Field(
        1,
        description=(
            "Instances sharing one NVLink domain: 1 for an HGX server, 18 for a GB200 "
            "NVL72 rack of 4-GPU instances (72 GPUs), 9 for an NVL36."
        ),
    )

    @model_validator(mode="after")
    def _gpus_need_accelerator(self) -> ShapeSpec:
        if (self.gpus_per_node > 0) != (self.accelerator is not None):
            raise ValueError("accelerator and gpus_per_node > 0 go together")
        return self


class PoolConfig(_Spec):
    """One pool: a number of instances of one type bought one way in one zone."""

    instance_type: Name = Field(description="Provider instance type, e.g. p5en.48xlarge.")
    pricing: Pricing = Field(description="reserved, committed, on_demand or spot.")
    nodes: Count | None = Field(
        None,
        description=(
            "Instances: the fixed size of a reserved pool, the quota (most it may grow to) "
            "of an elastic one. A whole number of NVLink domains. Give nodes or domains."
        ),
    )
    domains: Count | None = Field(
        None, description="Size in whole NVLink domains (e.g. UltraServers) instead of nodes."
    )
    contract: Name | None = Field(
        None,
        description=(
            "The contract that owns this pool: required for reserved pools (they are its "
            "blocks); a committed pool may name the commitment it bills against."
        ),
    )
    usd_per_node_hour: Usd | None = Field(
        None,
        description=(
            "Price per instance-hour, overriding the catalog (not for reserved pools: "
            "they cost their contract's price)."
        ),
    )
    provision_delay_s: Seconds | None = Field(
        None,
        description=(
            "Seconds from asking for a node to using it (default by pricing: reserved and "
            "committed 0, spot 120, on_demand 600, doubled for multi-node NVLink domains)."
        ),
    )
    shape: ShapeSpec | None = Field(
        None, description="Node shape, for instance types the bundled catalog lacks."
    )
    egress_usd_per_gb: Usd | None = Field(
        None,
        description="Internet egress USD per GB, overriding the catalog's (none there: 0).",
    )

    @model_validator(mode="after")
    def _one_size(self) -> PoolConfig:
        if (self.nodes is None) == (self.domains is None):
            raise ValueError("give exactly one of nodes or domains")
        return self


class ZoneConfig(_Spec):
    name: Name = Field(description="Zone name in the provider's spelling (us-east-1a).")
    pools: Annotated[list[PoolConfig], Field(min_length=1)] = Field(description="Its pools.")


class RegionConfig(_Spec):
    name: Name = Field(description="Region name in the provider's spelling (us-east-1).")
    zones: Annotated[list[ZoneConfig], Field(min_length=1)] = Field(description="Its zones.")


class ProviderConfig(_Spec):
    name: Name = Field(description="aws, azure, gcp, oci (aliases like google accepted).")
    regions: Annotated[list[RegionConfig], Field(min_length=1)] = Field(description="Its regions.")


class ContractConfig(_Spec):
    """Reserved capacity bought from one provider for a period; its blocks are the
    reserved pools that name it."""

    name: Name = Field(description="Referenced by pools' contract field.")
    provider: Name = Field(description="The provider selling it.")
    start: date = Field(description="First day (UTC midnight), YYYY-MM-DD.")
    end: date = Field(description="Day it ends (UTC midnight, exclusive), YYYY-MM-DD.")
    usd_per_node_hour: Usd = Field(description="Effective price of one reserved node-hour.")

    @model_validator(mode="after")
    def _ordered(self) -> ContractConfig:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class TenantConfig(_Spec):
    name: Name = Field(description="Team name.")
    weight: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = Field(
        1.0, description="Fair-share weight."
    )
    guaranteed_gpus: dict[Name, Annotated[int, Field(ge=0, le=10_000_000)]] = Field(
        default_factory=dict, description="Quota: guaranteed GPUs per accelerator type."
    )
    can_borrow: bool = Field(True, description="May use others' idle quota (reclaimable).")
    monthly_budget_usd: Usd | None = Field(None, description="Spend limit; omit: unlimited.")


class CapsConfig(_Spec):
    """Diversification caps (scheduler/cost/caps.py): no provider above a share of the
    fleet's running GPUs, once the fleet runs more than ``min_fleet_gpus``."""

    max_share: float | dict[Name, float] = Field(
        description=(
            "One share in (0, 1] for every provider, or a share per provider (others uncapped)."
        )
    )
    min_fleet_gpus: Annotated[int, Field(ge=0, le=100_000_000)] = Field(
        0, description="Fleet size up to which caps do not bind."
    )

    @field_validator("max_share")
    @classmethod
    def _shares(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        # Checked here, not by constrained types: a union of constrained types reports
        # errors under a member tag (max_share.constrained-float), not the field.
        for key, share in v.items() if isinstance(v, dict) else [("", v)]:
            if not 0.0 < share <= 1.0:
                raise FieldValueError(
                    f"a share must be in (0, 1], got {share:g}", f".{key}" if key else ""
                )
        return v


class FleetSpec(_Spec):
    """A fleet: providers, regions, zones and pools; contracts; tenants; caps."""

    name: Name = Field(description="The fleet's name.")
    description: str = Field("", max_length=4096, description="What it is, assumptions.")
    providers: Annotated[list[ProviderConfig], Field(min_length=1)] = Field(
        description="Where the capacity is."
    )
    contracts: list[ContractConfig] = Field(
        default_factory=list, description="Reserved-capacity contracts."
    )
    tenants: list[TenantConfig] = Field(default_factory=list, description="Teams and quotas.")
    caps: CapsConfig | None = Field(None, description="Diversification caps; omit: none.")
    services: list[ServiceConfig] = Field(
        default_factory=list,
        description="Inference services the twin autoscales (twin/service_spec.py).",
    )


@dataclass(frozen=True)
class Fleet:
    """A loaded fleet in the scheduler's types. ``borrowed``: keys of pools whose shape
    and price came from the catalog row of another zone or region (an assumption to
    state)."""

    name: str
    description: str
    pools: tuple[PoolSpec, ...]
    contracts: tuple[Contract, ...]
    tenants: tuple[TenantSpec, ...]
    caps: DiversificationCaps | None
    borrowed: tuple[str, ...] = ()
    services: tuple[ServiceSpec, ...] = ()

    @property
    def gpus(self) -> int:
        return sum(p.max_gpus for p in self.pools)

    def summary(self) -> dict[str, int]:
        """``twin.fleets.fleet_summary`` of the pools (GPUs, nodes, domains, ...)."""
        return fleet_summary(self.pools)


# ------------------------------------------------------------------------------ loading
def load_fleet(path: str | Path, catalog: Catalog | None = None) -> Fleet:
    """Read, validate and build the fleet file at ``path`` (FleetSpecError: one line)."""
    try:
        text = read_spec_text(Path(path))
    except SpecError as exc:
        raise FleetSpecError(exc.field, exc.problem, exc.source) from None
    return parse_fleet(text, catalog, source=str(path))


def parse_fleet(text: str, catalog: Catalog | None = None, source: str = "<string>") -> Fleet:
    """``load_fleet`` on YAML text; ``catalog`` defaults to the bundled one."""
    try:
        data = parse_yaml(text)
        if not isinstance(data, dict):
            raise SpecProblem(ROOT, "expected a mapping at the top level")
        try:
            spec = FleetSpec.model_validate(data)
        except ValidationError as exc:
            raise problem_from_validation(exc, FleetSpec) from None
        return build_fleet(spec, catalog if catalog is not None else load_bundled())
    except SpecProblem as p:
        raise FleetSpecError(p.field, p.problem, source) from None


def _unique(names: Sequence[str], path: tuple[str | int, ...], what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise SpecProblem(join_path((*path, i, "name")), f"duplicate {what} {name!r}")
        seen.add(name)


def catalog_index(catalog: Catalog) -> dict[tuple[str, str], list[Offering]]:
    index: dict[tuple[str, str], list[Offering]] = {}
    for o in catalog.offerings:
        index.setdefault((o.provider, o.instance_type), []).append(o)
    return index


def catalog_row(
    index: dict[tuple[str, str], list[Offering]],
    provider: str,
    region: str,
    zone: str,
    itype: str,
) -> tuple[Offering | None, bool]:
    """The catalog row for ``itype`` in ``zone`` or priced for all of ``region``
    (borrowed=False); else a row of another zone of the region or of another region
    (borrowed=True: the catalog does not say the type is sold there)."""
    rows = index.get((provider, itype), [])
    here = [o for o in rows if o.region == region]
    exact = [o for o in here if o.zone in ("", zone)]
    if exact:
        return exact[0], False
    if here:
        return here[0], True
    if rows:
        return sorted(rows, key=lambda o: (o.region, o.zone))[0], True
    return None, False


def build_fleet(spec: FleetSpec, catalog: Catalog) -> Fleet:
    """Cross-check a validated ``FleetSpec`` against itself and ``catalog`` and build the
    scheduler's types (SpecProblem naming the field on any inconsistency)."""
    _unique([p.name for p in spec.providers], ("providers",), "provider")
    _unique([c.name for c in spec.contracts], ("contracts",), "contract")
    _unique([t.name for t in spec.tenants], ("tenants",), "tenant")
    contracts = {c.name: (i, c) for i, c in enumerate(spec.contracts)}
    index = catalog_index(catalog)
    pools: list[PoolSpec] = []
    borrowed: list[str] = []
    blocks: dict[str, list[ReservedBlock]] = {}
    seen_pools: set[str] = set()
    for ip, prov in enumerate(spec.providers):
        provider = canonical_provider(prov.name)
        _unique([r.name for r in prov.regions], ("providers", ip, "regions"), "region")
        for ir, region in enumerate(prov.regions):
            zpath = ("providers", ip, "regions", ir, "zones")
            _unique([z.name for z in region.zones], zpath, "zone")
            for iz, zone in enumerate(region.zones):
                for ipool, pc in enumerate(zone.pools):
                    at = (*zpath, iz, "pools", ipool)
                    pool, was_borrowed = _pool(
                        pc, at, provider, region.name, zone.name, index, contracts
                    )
                    if pool.key in seen_pools:
                        raise SpecProblem(
                            join_path((*at, "instance_type")),
                            f"a second {pc.pricing} pool of {pc.instance_type} in zone "
                            f"{zone.name}; merge them",
                        )
                    seen_pools.add(pool.key)
                    pools.append(pool)
                    if was_borrowed:
                        borrowed.append(pool.key)
                    if pool.contract is not None:
                        # Only reserved pools are the contract's blocks (nodes paid for
                        # whether used or not); a committed pool just names it.
                        mine = blocks.setdefault(pool.contract, [])
                        if pool.pricing is PricingKind.RESERVED:
                            mine.append(
                                ReservedBlock(
                                    region.name, zone.name, pool.instance_type, pool.max_nodes
                                )
                            )
    built_contracts = []
    for i, cc in enumerate(spec.contracts):
        if cc.name not in blocks:
            raise SpecProblem(
                join_path(("contracts", i, "name")),
                f"no pool names contract {cc.name!r}",
            )
        built_contracts.append(
            Contract(
                name=cc.name,
                provider=canonical_provider(cc.provider),
                blocks=tuple(blocks[cc.name]),
                start=datetime(cc.start.year, cc.start.month, cc.start.day, tzinfo=UTC),
                end=datetime(cc.end.year, cc.end.month, cc.end.day, tzinfo=UTC),
                usd_per_node_hour=cc.usd_per_node_hour,
            )
        )
    accelerators = {p.accelerator for p in pools if p.accelerator is not None}
    tenants = []
    for i, t in enumerate(spec.tenants):
        for acc in t.guaranteed_gpus:
            if acc not in accelerators:
                raise SpecProblem(
                    join_path(("tenants", i, "guaranteed_gpus", acc)),
                    f"no pool of the fleet has {acc} GPUs "
                    f"(it has: {', '.join(sorted(accelerators)) or 'none'})",
                )
        tenants.append(
            TenantSpec(
                name=t.name,
                weight=t.weight,
                guaranteed_gpus=dict(t.guaranteed_gpus),
                can_borrow=t.can_borrow,
                monthly_budget_usd=t.monthly_budget_usd,
            )
        )
    return Fleet(
        name=spec.name,
        description=spec.description,
        pools=tuple(pools),
        contracts=tuple(built_contracts),
        tenants=tuple(tenants),
        caps=_caps(spec.caps, {p.provider for p in pools}),
        borrowed=tuple(borrowed),
        services=build_services(spec.services, pools, tenants),
    )


def _pool(
    pc: PoolConfig,
    at: tuple[str | int, ...],
    provider: str,
    region: str,
    zone: str,
    index: dict[tuple[str, str], list[Offering]],
    contracts: dict[str, tuple[int, ContractConfig]],
) -> tuple[PoolSpec, bool]:
    def fail(field: str, problem: str) -> SpecProblem:
        return SpecProblem(join_path((*at, field)), problem)

    pricing = PricingKind(pc.pricing)
    offering, borrowed = catalog_row(index, provider, region, zone, pc.instance_type)
    if pc.shape is not None:
        s = pc.shape
        accel, gpn, vcpus, mem, npd = (
            s.accelerator, s.gpus_per_node, s.vcpus, s.memory_gib, s.nodes_per_domain
        )  # fmt: skip
    elif offering is not None:
        accel, gpn = offering.accelerator, offering.accelerator_count
        vcpus, mem = offering.vcpus, offering.memory_gib
        npd = max(1, offering.instances_per_domain)
    else:
        raise fail(
            "instance_type",
            f"{pc.instance_type} is not in the catalog for {provider}; give its shape",
        )
    if pc.domains is not None:
        nodes = pc.domains * npd
    else:
        nodes = pc.nodes or 0
        if nodes % npd:
            raise fail(
                "nodes",
                f"{nodes} is not a whole number of NVLink domains ({npd} nodes each); "
                f"use a multiple of {npd} or give domains",
            )
    contract: str | None = pc.contract
    if contract is not None:
        if pricing not in (PricingKind.RESERVED, PricingKind.COMMITTED):
            raise fail("contract", "only reserved or committed pools belong to a contract")
        if contract not in contracts:
            known = ", ".join(sorted(contracts)) or "none declared"
            raise fail("contract", f"unknown contract {contract!r} (contracts: {known})")
        owner = canonical_provider(contracts[contract][1].provider)
        if owner != provider:
            raise fail("contract", f"contract {contract!r} is with {owner}, not {provider}")
    elif pricing is PricingKind.RESERVED:
        raise fail("contract", "a reserved pool must name its contract")
    if pricing is PricingKind.RESERVED:
        if pc.usd_per_node_hour is not None:
            raise fail("usd_per_node_hour", "a reserved pool costs its contract's price")
        price = contracts[contract or ""][1].usd_per_node_hour
    elif pc.usd_per_node_hour is not None:
        price = pc.usd_per_node_hour
    elif offering is None:
        raise fail("usd_per_node_hour", f"{pc.instance_type} has no catalog price; give one")
    elif pricing is PricingKind.SPOT:
        if offering.spot_price is None:
            raise fail(
                "pricing",
                f"the catalog lists no spot price for {pc.instance_type}; give usd_per_node_hour",
            )
        price = offering.spot_price
    else:
        price = offering.on_demand_price
    delay = pc.provision_delay_s
    if delay is None:
        delay = DEFAULT_DELAY_S[pricing] * (
            2 if npd > 1 and pricing is PricingKind.ON_DEMAND else 1
        )
    pool = PoolSpec(
        provider=provider,
        region=region,
        zone=zone,
        instance_type=pc.instance_type,
        pricing=pricing,
        accelerator=accel,
        gpus_per_node=gpn,
        vcpus_per_node=vcpus,
        memory_gib_per_node=mem,
        nodes_per_domain=npd,
        max_nodes=nodes,
        usd_per_node_hour=price,
        provision_delay_s=delay,
        contract=contract,
        egress_usd_per_gb=_egress(pc, offering),
    )
    return pool, borrowed and pc.shape is None


def _egress(pc: PoolConfig, offering: Offering | None) -> float:
    if pc.egress_usd_per_gb is not None:
        return pc.egress_usd_per_gb
    return offering.egress_usd_per_gb if offering is not None else 0.0


def _caps(cfg: CapsConfig | None, providers: set[str]) -> DiversificationCaps | None:
    if cfg is None:
        return None
    if isinstance(cfg.max_share, dict):
        for name in cfg.max_share:
            if canonical_provider(name) not in providers:
                raise SpecProblem(
                    join_path(("caps", "max_share", name)),
                    f"no pool of the fleet is on {name} "
                    f"(providers: {', '.join(sorted(providers))})",
                )
    return DiversificationCaps(cfg.max_share, cfg.min_fleet_gpus)


# ------------------------------------------------------------------------------- schema
def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a fleet file."""
    return {
        **FleetSpec.model_json_schema(),
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "intercloud fleet description",
    }


def render_schema() -> str:
    """The schema file's exact text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_schema())
