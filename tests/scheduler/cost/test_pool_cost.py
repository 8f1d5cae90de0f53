"""Cost ordering of candidate pools (PoolCosts.rank)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from intercloud.model import Contract, PricingKind, ReservedBlock, SpotPolicy, Topology
from intercloud.scheduler.cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import GangRequest

K = PricingKind
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 7, 1, tzinfo=UTC)
INSIDE = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
AFTER = datetime(2026, 8, 1, tzinfo=UTC).timestamp()
BEFORE = datetime(2025, 8, 1, tzinfo=UTC).timestamp()


def pool(
    provider: str,
    price: float,
    kind: PricingKind = K.ON_DEMAND,
    acc: str | None = "H100",
    gpn: int = 8,
    region: str = "r1",
    npd: int = 1,
    contract: str | None = None,
) -> PoolSpec:
    return PoolSpec(
        provider, region, f"{region}a", "t", kind, acc, gpn, 96, 1000, npd, 10, price, 0.0, contract
    )


def contract(name: str = "c1", provider: str = "aws") -> Contract:
    return Contract(name, provider, (ReservedBlock("r1", "r1a", "t", 10),), T0, T1, 20.0)


def req(**kw: object) -> GangRequest:
    base: dict[str, object] = {"job_id": 1, "tenant": "t", "nodes": 1, "gpus_per_node": 8}
    base["accelerators"] = ("H100",)
    base.update(kw)
    return GangRequest(**base)  # type: ignore[arg-type]


def test_reserved_first_while_active_and_unusable_outside_its_window() -> None:
    pools = [pool("aws", 30), pool("aws", 20, K.RESERVED, contract="c1"), pool("gcp", 25)]
    pc = PoolCosts(pools, [contract()])
    assert pc.rank(req(), INSIDE).tolist() == [1, 2, 0]
    assert pc.rank(req(), AFTER).tolist() == [2, 0]  # expired: not usable
    assert pc.rank(req(), BEFORE).tolist() == [2, 0]  # not begun: not usable
    assert pc.rank(req(), INSIDE).tolist() == [1, 2, 0]  # memo follows the clock back
    marginal = pc.marginal_usd_per_node_hour(INSIDE)
    assert marginal[1] == 0.0 and np.isinf(pc.marginal_usd_per_node_hour(AFTER)[1])


def test_reserved_pool_without_contract_is_always_active_unknown_contract_rejected() -> None:
    pc = PoolCosts([pool("local", 5, K.RESERVED), pool("aws", 1)])
    assert pc.rank(req(), AFTER).tolist() == [0, 1]
    try:
        PoolCosts([pool("aws", 5, K.RESERVED, contract="nope")])
    except ValueError as e:
        assert "nope" in str(e)
    else:
        raise AssertionError("unknown contract accepted")


def test_spot_policy() -> None:
    pools = [pool("aws", 30), pool("aws", 10, K.SPOT), pool("gcp", 20, K.COMMITTED)]
    pc = PoolCosts(pools)
    assert pc.rank(req(spot=SpotPolicy.NEVER), 0).tolist() == [2, 0]
    assert pc.rank(req(spot=SpotPolicy.ONLY), 0).tolist() == [1]
    assert pc.rank(req(spot=SpotPolicy.ALLOWED), 0).tolist() == [1, 2, 0]


def test_egress_flips_the_order() -> None:
    pools = [pool("aws", 24, region="us"), pool("gcp", 16, region="eu")]
    pc = PoolCosts(pools)
    assert pc.rank(req(), 0).tolist() == [1, 0]
    # 10 TB on AWS us: moving it to GCP costs 10000 x 0.09 = $900 over 8 GPU-hours
    data = req(data_provider="aws", data_region="us", data_gb=10_000.0, duration_s=3600.0)
    assert pc.rank(data, 0).tolist() == [0, 1]
    _ids, rate = pc.ranked_usd_per_hour(data, 0)
    assert rate.tolist() == [24.0, 16.0 + 900.0]
    # amortised over a long run the price gap wins again: 900 / (8 x 1000 h) < 1 $/GPU-h
    assert pc.rank(
        req(data_provider="aws", data_region="us", data_gb=10_000.0, duration_s=3.6e6), 0
    ).tolist() == [1, 0]
    assert pc.work_usd(data, 1, 0) == 16.0 + 900.0


def test_provider_preference_breaks_ties_then_pool_id() -> None:
    pools = [pool("aws", 20), pool("gcp", 20), pool("azure", 20), pool("oci", 19)]
    pc = PoolCosts(pools)
    assert pc.rank(req(), 0).tolist() == [3, 0, 1, 2]
    assert pc.rank(req(provider_preference=("azure", "gcp")), 0).tolist() == [3, 2, 1, 0]


def test_filters_accelerator_gpus_per_node_provider_region_nvlink_hourly_cap() -> None:
    pools = [
        pool("aws", 8, gpn=8),
        pool("aws", 4, gpn=4),
        pool("gcp", 6, acc="A100"),
        pool("gcp", 1, acc=None, gpn=0),
        pool("azure", 9, gpn=4, npd=18),
        pool("azure", 9, region="eu"),
    ]
    pc = PoolCosts(pools)
    assert pc.rank(req(gpus_per_node=4), 0).tolist() == [0, 1, 5, 4]  # per GPU: 1, 1, 1.125, 2.25
    assert pc.rank(req(accelerators=("H100", "A100")), 0).tolist() == [2, 0, 5]
    assert pc.rank(req(accelerators=(), gpus_per_node=0), 0).tolist() == [3]
    assert pc.rank(req(providers=frozenset({"Azure"})), 0).tolist() == [5]
    assert pc.rank(req(regions=frozenset({"EU"})), 0).tolist() == [5]
    nvl = req(nodes=8, gpus_per_node=4, topology=Topology.NVLINK_DOMAIN)
    assert pc.rank(nvl, 0).tolist() == [4]  # 8 nodes fit only the 18-node domain
    assert pc.rank(req(nodes=2, max_usd_per_hour=17.0), 0).tolist() == [0]
    usable = np.array([False, True, True, True, True, True])
    assert pc.rank(req(gpus_per_node=4), 0, usable).tolist() == [1, 5, 4]


def test_throughput_scaling_uses_the_first_accelerator_as_reference() -> None:
    pc = PoolCosts([pool("aws", 16), pool("aws", 9, acc="A100")])
    # H100 is faster than A100: per reference hour, A100 costs price x thr(H100)/thr(A100)
    r = req(accelerators=("H100", "A100"), duration_s=3600.0)
    ids, rate = pc.ranked_usd_per_hour(r, 0)
    assert ids.tolist() == [0, 1] and rate[1] > 9.0
    assert pc.rank(req(accelerators=("H100", "A100")), 0).tolist() == [1, 0]  # no duration
