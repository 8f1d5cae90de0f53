"""The planner against an independent brute-force search over random catalogs and requests.

The oracle below imports no planner code: it walks every offering, applies every
constraint with plain Python, prices every candidate and keeps the minimum total. Both
must agree on feasibility, on the best total cost, and on which providers are excluded.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.catalog import Catalog
from intercloud.catalog.egress import transfer_usd_per_gb
from intercloud.model import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    DataLocation,
    Offering,
    ResourceRequest,
    Service,
    SpotPolicy,
    Topology,
    TrainingJob,
    Workload,
    relative_throughput,
)
from intercloud.scheduler.planner import Planner

PROVIDERS = ("aws", "gcp", "azure", "oci")
REGIONS = {
    "aws": ("us-east-1", "eu-west-1"),
    "gcp": ("us-central1",),
    "azure": ("eastus",),
    "oci": ("us-ashburn-1", "eu-frankfurt-1"),
}
ZONES = ("", "a", "b")
ACCS = (("H100", 8), ("H100", 1), ("A100", 8), ("H200", 8), ("GB200", 4), ("B200", 8))
PRICES = (0.5, 1.0, 2.0, 3.0, 8.0, 12.5, 30.0, 60.0)


@st.composite
def offerings(draw: st.DrawFn) -> Offering:
    provider = draw(st.sampled_from(PROVIDERS))
    region = draw(st.sampled_from(REGIONS[provider]))
    zone = draw(st.sampled_from(ZONES))
    zone = f"{region}-{zone}" if zone else ""
    is_gpu = draw(st.booleans())
    acc, count = draw(st.sampled_from(ACCS)) if is_gpu else (None, 0)
    domain, per_domain = (0, 1)
    if is_gpu:
        domain, per_domain = draw(st.sampled_from(((count, 1), (72, 18), (0, 1), (16, 2))))
    vcpus = draw(st.sampled_from((2, 8, 32, 96)))
    memory = draw(st.sampled_from((8, 32, 128, 1024)))
    price = draw(st.sampled_from(PRICES))
    spot = draw(st.one_of(st.none(), st.sampled_from(PRICES)))
    itype = f"{acc or 'cpu'}-{count}-{vcpus}-{draw(st.integers(0, 2))}"
    return Offering(
        provider,
        region,
        zone,
        itype,
        acc,
        count,
        vcpus,
        memory,
        price,
        spot,
        nvlink_domain_gpus=domain,
        instances_per_domain=per_domain,
    )


def maybe_set(draw: st.DrawFn, values: tuple[str, ...]) -> frozenset[str] | None:
    """Mostly no restriction; sometimes a set of one to three names."""
    if draw(st.integers(0, 3)):
        return None
    return frozenset(draw(st.lists(st.sampled_from(values), min_size=1, max_size=3)))


def rarely(draw: st.DrawFn, strategy: st.SearchStrategy[object], default: object) -> object:
    return draw(strategy) if draw(st.integers(0, 3)) == 0 else default


ALL_REGIONS = tuple(r for rs in REGIONS.values() for r in rs)
ALL_ZONES = tuple(f"{r}-{z}" for r in ALL_REGIONS for z in ("a", "b"))


@st.composite
def workloads(draw: st.DrawFn) -> Workload:
    accs = tuple(
        AcceleratorRequest(a, c)
        for a, c in draw(st.lists(st.sampled_from(ACCS), max_size=3, unique=True))
    )
    nodes = draw(st.sampled_from((1, 1, 1, 1, 2, 3, 18)))
    res = ResourceRequest(
        accelerators=accs,
        accelerator_choice=draw(st.sampled_from(AcceleratorChoice)),
        num_nodes=nodes,
        cpus=rarely(draw, st.sampled_from((2, 8, 32)), None),  # type: ignore[arg-type]
        cpus_exact=rarely(draw, st.booleans(), False),  # type: ignore[arg-type]
        memory_gib=rarely(draw, st.sampled_from((16, 128)), None),  # type: ignore[arg-type]
        instance_type=(
            draw(st.sampled_from(("H100-8-96-0", "cpu-0-8-1", "A100-8-32-2", "nope")))
            if draw(st.integers(0, 5)) == 0
            else None
        ),
        topology=rarely(draw, st.sampled_from(Topology), Topology.ANY),  # type: ignore[arg-type]
        spot=draw(st.sampled_from(SpotPolicy)),
        providers=maybe_set(draw, PROVIDERS),
        deny_providers=rarely(
            draw, st.frozensets(st.sampled_from(PROVIDERS), max_size=1), frozenset()
        ),  # type: ignore[arg-type]
        regions=maybe_set(draw, ALL_REGIONS),
        deny_regions=rarely(
            draw, st.frozensets(st.sampled_from(ALL_REGIONS), max_size=1), frozenset()
        ),  # type: ignore[arg-type]
        zones=maybe_set(draw, ALL_ZONES) if draw(st.integers(0, 3)) == 0 else None,
        provider_preference=tuple(draw(st.permutations(PROVIDERS))),
        max_hourly_usd=draw(st.sampled_from((None, None, 5.0, 50.0, 500.0))),
    )
    duration = draw(st.sampled_from((None, 1.0, 7.5, 100.0)))
    data = None
    if draw(st.booleans()):
        provider = draw(st.sampled_from(PROVIDERS))
        data = DataLocation(provider, draw(st.sampled_from(REGIONS[provider])), 500.0)
    kind = draw(st.sampled_from(("training", "training", "service", "batch")))
    if kind == "service":
        return Service(
            "s",
            res,
            min_replicas=draw(st.integers(0, 5)),
            spot_share=draw(st.sampled_from((0.0, 0.3, 0.5, 1.0))),
            duration_hours=duration,
        )
    if kind == "batch":
        return BatchJob(
            "b", res, count=draw(st.integers(1, 40)), duration_hours=duration, data=data
        )
    ref = draw(st.sampled_from((None, "H100", "B200")))
    return TrainingJob("t", res, data=data, duration_hours=duration, reference_accelerator=ref)


def brute_force(
    offers: list[Offering], wl: Workload, enabled: set[str] | None
) -> tuple[float | None, set[str]]:
    """Best total cost (None: infeasible) and the providers with a feasible candidate."""
    res = wl.resources
    gpu_of = [(o.accelerator, o.accelerator_count) if o.is_gpu else None for o in offers]
    wanted = [(a.name, a.count) for a in res.accelerators]
    per_alt: dict[int, float] = {}
    feasible_providers: set[str] = set()
    for o, g in zip(offers, gpu_of, strict=True):
        if enabled is not None and o.provider not in enabled:
            continue
        if o.provider in res.deny_providers:
            continue
        if res.providers is not None and o.provider not in res.providers:
            continue
        if wanted:
            if g not in wanted:
                continue
            alt = wanted.index(g)
        elif res.instance_type:
            alt = 0
        else:
            if g is not None:
                continue
            alt = 0
        if res.instance_type and o.instance_type != res.instance_type:
            continue
        if res.cpus is not None and (o.vcpus != res.cpus if res.cpus_exact else o.vcpus < res.cpus):
            continue
        if res.memory_gib is not None and o.memory_gib < res.memory_gib:
            continue
        if res.regions is not None and o.region not in res.regions:
            continue
        if o.region in res.deny_regions:
            continue
        if res.zones is not None and o.zone and o.zone not in res.zones:  # "" = any zone
            continue
        gang = 1 if isinstance(wl, BatchJob) else res.num_nodes
        count = o.accelerator_count if g else 0
        if res.topology == Topology.NVLINK_DOMAIN and not (
            count * gang <= o.nvlink_domain_gpus and gang <= o.instances_per_domain
        ):
            continue

        duration = wl.duration_hours or 1.0
        if isinstance(wl, TrainingJob) and wl.duration_hours is not None and wanted:
            ref = wl.reference_accelerator or wanted[0][0]
            duration *= relative_throughput(ref) / relative_throughput(o.accelerator or "")
        egress = 0.0
        data = getattr(wl, "data", None)
        if data is not None:
            rate = transfer_usd_per_gb(data.provider, data.region, o.provider, o.region)
            egress = data.size_gb * rate

        hourly_options: list[float] = []
        if isinstance(wl, Service):
            replicas = max(wl.min_replicas, 1)
            share = {SpotPolicy.NEVER: 0.0, SpotPolicy.ONLY: 1.0}.get(res.spot, wl.spot_share)
            k = min(replicas, math.floor(replicas * share + 0.5))
            if k and o.spot_price is None:
                continue
            hourly = (replicas - k) * res.num_nodes * o.on_demand_price
            if k:
                hourly += k * res.num_nodes * (o.spot_price or 0.0)
            hourly_options.append(hourly)
        else:
            if isinstance(wl, BatchJob):
                per = 1
                if g is None and (res.cpus or res.memory_gib):
                    bounds = []
                    if res.cpus:
                        bounds.append(math.floor(o.vcpus / res.cpus))
                    if res.memory_gib:
                        bounds.append(math.floor(o.memory_gib / res.memory_gib))
                    per = max(1, min(bounds))
                nodes = math.ceil(wl.count / per)
            else:
                nodes = res.num_nodes
            if res.spot != SpotPolicy.ONLY:
                hourly_options.append(nodes * o.on_demand_price)
            if res.spot != SpotPolicy.NEVER and o.spot_price is not None:
                hourly_options.append(nodes * o.spot_price)
        for hourly in hourly_options:
            if res.max_hourly_usd is not None and hourly > res.max_hourly_usd:
                continue
            total = hourly * duration + egress
            per_alt[alt] = min(per_alt.get(alt, math.inf), total)
            feasible_providers.add(o.provider)
    if not per_alt:
        return None, feasible_providers
    if res.accelerator_choice == AcceleratorChoice.ORDERED and len(wanted) > 1:
        return per_alt[min(per_alt)], feasible_providers
    return min(per_alt.values()), feasible_providers


@settings(
    max_examples=examples(300),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    offers=st.lists(offerings(), min_size=12, max_size=60),
    requests=st.lists(workloads(), min_size=1, max_size=4),
    enabled=st.one_of(st.none(), st.none(), st.sets(st.sampled_from(PROVIDERS), min_size=1)),
)
def test_planner_matches_brute_force(
    offers: list[Offering], requests: list[Workload], enabled: set[str] | None
) -> None:
    catalog = Catalog.from_offerings(offers)
    planner = Planner(catalog)
    for wl in requests:
        expected, feasible = brute_force(offers, wl, enabled)
        result = planner.plan(wl, enabled)
        if expected is None:
            assert result.choice is None
        else:
            assert result.choice is not None
            assert result.choice.total_usd == pytest.approx(expected, abs=1e-6, rel=1e-12)
            for alt in result.alternatives:
                if wl.resources.accelerator_choice == AcceleratorChoice.ANY_OF:
                    assert alt.total_usd >= result.choice.total_usd - 1e-9
        excluded = {e.provider for e in result.excluded}
        assert excluded == set(catalog.providers) - feasible
