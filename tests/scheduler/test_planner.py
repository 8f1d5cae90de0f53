"""Scenario tests of the planner on small hand-built catalogs."""

from __future__ import annotations

import pytest

from intercloud.catalog import Catalog
from intercloud.model import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    DataLocation,
    Offering,
    PricingKind,
    ResourceRequest,
    Service,
    SpotPolicy,
    Topology,
    TrainingJob,
)
from intercloud.scheduler.planner import Planner


def gpu(
    provider: str,
    region: str,
    itype: str,
    acc: str,
    count: int,
    price: float,
    spot: float | None = None,
    *,
    zone: str = "",
    vcpus: float = 96,
    memory: float = 1024,
    domain: int | None = None,
    per_domain: int = 1,
) -> Offering:
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
        nvlink_domain_gpus=count if domain is None else domain,
        instances_per_domain=per_domain,
    )


def cpu(
    provider: str,
    region: str,
    itype: str,
    vcpus: float,
    memory: float,
    price: float,
    spot: float | None = None,
    zone: str = "",
) -> Offering:
    return Offering(provider, region, zone, itype, None, 0, vcpus, memory, price, spot)


CATALOG = Catalog.from_offerings(
    [
        gpu("aws", "us-east-1", "p5.48xlarge", "H100", 8, 98.32, 30.0, zone="use1-az1"),
        gpu("aws", "us-east-1", "p5.48xlarge", "H100", 8, 98.32, 31.0, zone="use1-az2"),
        gpu("aws", "us-west-2", "p5.48xlarge", "H100", 8, 98.32, 33.0, zone="usw2-az1"),
        gpu("aws", "us-east-1", "p4d.24xlarge", "A100", 8, 32.77, 12.0, zone="use1-az1"),
        gpu("gcp", "us-central1", "a3-highgpu-8g", "H100", 8, 88.25, zone="us-central1-a"),
        gpu("gcp", "us-central1", "a3-highgpu-1g", "H100", 1, 11.06, zone="us-central1-a"),
        gpu("gcp", "europe-west4", "a3-ultragpu-8g", "H200", 8, 100.0, zone="europe-west4-a"),
        gpu("azure", "eastus", "ND96isr_H200_v5", "H200", 8, 110.0, 40.0),
        gpu("azure", "eastus", "ND128isr_GB200_v6", "GB200", 4, 60.0),
        gpu("oci", "us-ashburn-1", "BM.GPU.B200.8", "B200", 8, 140.0),
        gpu("oci", "us-ashburn-1", "BM.GPU.A100-v2.8", "A100-80GB", 8, 32.0, vcpus=128),
        gpu("aws", "us-east-1", "u-p6e-gb200x72", "GB200", 4, 85.0, domain=72, per_domain=18),
        cpu("aws", "us-east-1", "m6i.2xlarge", 8, 32, 0.384, 0.15),
        cpu("aws", "us-east-1", "m6i.8xlarge", 32, 128, 1.536, 0.6),
        cpu("gcp", "us-central1", "n2-standard-8", 8, 32, 0.389),
        cpu("oci", "us-ashburn-1", "VM.Standard.E4.Flex$_8_32", 8, 32, 0.148, 0.074),
        cpu("oci", "us-ashburn-1", "VM.Standard.E4.Flex$_2_8", 2, 8, 0.037),
    ]
)


def job(*accs: str, duration: float | None = 10.0, **res: object) -> TrainingJob:
    reqs = tuple(AcceleratorRequest(a.split(":")[0], int(a.split(":")[1])) for a in accs)
    return TrainingJob(
        "job",
        ResourceRequest(accelerators=reqs, **res),  # type: ignore[arg-type]
        duration_hours=duration,
    )


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner(CATALOG)


def reasons(result: object) -> dict[str, str]:
    return {e.provider: e.reason for e in result.excluded}  # type: ignore[attr-defined]


def test_cheapest_wins(planner: Planner) -> None:
    r = planner.plan(job("H100:8"))
    assert r.choice is not None
    assert (r.choice.provider, r.choice.instance_type) == ("gcp", "a3-highgpu-8g")
    assert r.choice.pricing == PricingKind.ON_DEMAND
    assert r.choice.total_usd == pytest.approx(882.5)
    # alternatives: best zone per (provider, region, type, pricing), ranked
    alts = [(p.provider, p.region, p.zone) for p in r.alternatives]
    assert alts == [("aws", "us-east-1", "use1-az1"), ("aws", "us-west-2", "usw2-az1")]
    assert reasons(r) == {
        "azure": "offers no H100:8 (has: GB200:4, H200:8)",
        "oci": "offers no H100:8 (has: A100-80GB:8, B200:8)",
    }


def test_spot_policies(planner: Planner) -> None:
    never = planner.plan(job("H100:8", spot=SpotPolicy.NEVER))
    assert never.choice is not None and never.choice.pricing == PricingKind.ON_DEMAND
    only = planner.plan(job("H100:8", spot=SpotPolicy.ONLY))
    assert only.choice is not None and only.choice.pricing == PricingKind.SPOT
    assert (only.choice.zone, only.choice.hourly_usd) == ("use1-az1", 30.0)
    assert all(p.pricing == PricingKind.SPOT for p in only.alternatives)
    assert reasons(only)["gcp"] == "no spot capacity for H100:8"
    allowed = planner.plan(job("H100:8", spot=SpotPolicy.ALLOWED))
    assert allowed.choice == only.choice
    kinds = {p.pricing for p in allowed.alternatives}
    assert kinds == {PricingKind.SPOT, PricingKind.ON_DEMAND}


def test_egress_changes_the_winner() -> None:
    cat = Catalog.from_offerings(
        [
            gpu("gcp", "us-central1", "a3-highgpu-8g", "H100", 8, 88.0),
            gpu("aws", "us-east-1", "p5.48xlarge", "H100", 8, 90.0),
        ]
    )
    planner = Planner(cat)
    base = planner.plan(job("H100:8", duration=10))
    assert base.choice is not None and base.choice.provider == "gcp"
    data = DataLocation("aws", "us-east-1", 1000.0)
    j = TrainingJob("j", job("H100:8").resources, data=data, duration_hours=10)
    r = planner.plan(j)
    assert r.choice is not None and r.choice.provider == "aws"
    assert r.choice.egress_usd == 0.0
    assert r.alternatives[0].egress_usd == pytest.approx(90.0)  # 1000 GB x $0.09
    assert r.alternatives[0].total_usd == pytest.approx(970.0)


def test_throughput_scaling_any_of(planner: Planner) -> None:
    r = planner.plan(job("H100:8", "H200:8", "B200:8", duration=100))
    assert r.choice is not None
    # H100 gcp 88.25 x 100 = 8825; H200 gcp 100 x 100 x 2.5/2.9 = 8620.7; B200 140 x 50 = 7000
    assert r.choice.accelerator == "B200"
    assert r.choice.duration_hours == pytest.approx(50.0)
    assert r.choice.total_usd == pytest.approx(7000.0)
    assert any("relative throughput" in n for n in r.notes)
    # an override makes B200 no faster than H100: H200 wins
    slow = Planner(CATALOG, throughput={"B200": 2.5})
    r2 = slow.plan(job("H100:8", "H200:8", "B200:8", duration=100))
    assert r2.choice is not None and r2.choice.accelerator == "H200"


def test_ordered_picks_first_feasible(planner: Planner) -> None:
    r = planner.plan(
        job("H100:2", "H200:8", "B200:8", accelerator_choice=AcceleratorChoice.ORDERED)
    )
    assert r.choice is not None and r.choice.accelerator == "H200"
    assert r.choice.provider == "gcp"
    assert any(p.accelerator == "B200" for p in r.alternatives)  # still shown
    assert any("could not be placed" in n for n in r.notes)
    # H100:8 is feasible, so it wins although B200 is cheaper for the work
    r = planner.plan(
        job("H100:8", "B200:8", duration=100, accelerator_choice=AcceleratorChoice.ORDERED)
    )
    assert r.choice is not None and r.choice.accelerator == "H100"


def test_gb200_gang_lands_on_nvl72(planner: Planner) -> None:
    r = planner.plan(job("GB200:4", num_nodes=18, topology=Topology.NVLINK_DOMAIN))
    assert r.choice is not None
    assert r.choice.instance_type == "u-p6e-gb200x72" and r.choice.nodes == 18
    assert r.choice.gpus == 72
    assert all(p.nvlink_domain_gpus >= 72 for p in r.alternatives)
    assert reasons(r)["azure"] == "no NVLink domain of 72 GPUs for GB200:4 (largest: 4)"
    # without the topology the cheaper 4-GPU servers win
    loose = planner.plan(job("GB200:4", num_nodes=18))
    assert loose.choice is not None and loose.choice.provider == "azure"


def test_reasons_per_stage(planner: Planner) -> None:
    r = planner.plan(
        job("H100:8", deny_providers=frozenset({"gcp"})), providers=["aws", "gcp", "azure"]
    )
    assert reasons(r) == {
        "gcp": "denied by resources.deny_providers",
        "azure": "offers no H100:8 (has: GB200:4, H200:8)",
        "oci": "not enabled",
    }
    r = planner.plan(job("H100:8", providers=frozenset({"aws"})))
    assert reasons(r)["gcp"] == "not in resources.providers"
    r = planner.plan(job("H100:8", regions=frozenset({"us-west-2"})))
    assert reasons(r)["gcp"] == "no offering in allowed regions"
    assert r.choice is not None and r.choice.region == "us-west-2"
    r = planner.plan(job("H100:8", cpus=200))
    assert reasons(r)["aws"] == "fewer than 200 vCPUs per node"
    r = planner.plan(job("H100:8", memory_gib=4096))
    assert reasons(r)["gcp"] == "less than 4096 GiB memory per node"
    r = planner.plan(job("H100:8", max_hourly_usd=90.0))
    assert r.choice is not None and r.choice.provider == "gcp"
    assert reasons(r)["aws"] == "over max_hourly_usd 90.00 (cheapest: 98.32/h)"
    r = planner.plan(job("H100:8", instance_type="a3-highgpu-8g"))
    assert reasons(r)["aws"] == "offers no instance type a3-highgpu-8g"
    r = planner.plan(job("H100:8", zones=frozenset({"use1-az2"})))
    assert r.choice is not None and r.choice.zone == "use1-az2"
    assert reasons(r)["gcp"] == "no offering in allowed zones"
    r = planner.plan(job("H100:8", deny_regions=frozenset({"us-central1"})))
    assert reasons(r)["gcp"] == "offered only in resources.deny_regions"
    r = planner.plan(job("H100:8"), providers=["azure"])
    assert r.choice is None and r.alternatives == ()
    assert len(r.excluded) == 4


def test_provider_preference_breaks_ties() -> None:
    cat = Catalog.from_offerings(
        [
            gpu("gcp", "us-central1", "a3", "H100", 8, 80.0),
            gpu("aws", "us-east-1", "p5", "H100", 8, 80.0),
            gpu("oci", "us-ashburn-1", "bm", "H100", 8, 79.0),
        ]
    )
    planner = Planner(cat)
    r = planner.plan(job("H100:8"))
    assert r.choice is not None and r.choice.provider == "oci"  # cost first
    assert [p.provider for p in r.alternatives] == ["aws", "gcp"]  # then by name
    r = planner.plan(job("H100:8", provider_preference=("gcp", "aws")))
    assert [p.provider for p in r.alternatives] == ["gcp", "aws"]


def test_service_spot_share(planner: Planner) -> None:
    res = ResourceRequest(accelerators=(AcceleratorRequest("H100", 8),), spot=SpotPolicy.ALLOWED)
    svc = Service("svc", res, min_replicas=4, spot_share=0.5, duration_hours=24)
    r = planner.plan(svc)
    assert r.choice is not None
    assert r.choice.provider == "aws" and r.choice.nodes == 4
    assert r.choice.hourly_usd == pytest.approx(2 * 98.32 + 2 * 30.0)
    assert r.choice.total_usd == pytest.approx(24 * (2 * 98.32 + 2 * 30.0))
    assert r.choice.pricing == PricingKind.ON_DEMAND
    assert "2 of 4 replicas on spot" in r.notes
    assert reasons(r)["gcp"] == "no spot capacity for H100:8"
    never = Service(
        "svc", ResourceRequest(accelerators=res.accelerators), min_replicas=4, spot_share=0.5
    )
    r = planner.plan(never)
    assert r.choice is not None and r.choice.provider == "gcp"
    assert r.choice.hourly_usd == pytest.approx(4 * 88.25)
    assert any("spot_share 0.5 ignored" in n for n in r.notes)


def test_batch_packs_tasks(planner: Planner) -> None:
    batch = BatchJob("b", ResourceRequest(cpus=4, memory_gib=16), count=10, duration_hours=2)
    r = planner.plan(batch)
    assert r.choice is not None
    # OCI 8-vCPU/32-GiB at 0.148 holds 2 tasks -> 5 nodes
    assert (r.choice.instance_type, r.choice.nodes) == ("VM.Standard.E4.Flex$_8_32", 5)
    assert r.choice.total_usd == pytest.approx(5 * 0.148 * 2)
    one = planner.plan(BatchJob("b", ResourceRequest(cpus=8), count=1))
    assert one.choice is not None and one.choice.instance_type == "VM.Standard.E4.Flex$_8_32"
    big = planner.plan(BatchJob("b", ResourceRequest(cpus=32), count=1))
    assert big.choice is not None and big.choice.instance_type == "m6i.8xlarge"
    assert reasons(big)["oci"] == "fewer than 32 vCPUs per node"
    assert reasons(big)["azure"] == "offers no CPU-only instances"


def test_cpu_request_matches_only_cpu_rows(planner: Planner) -> None:
    r = planner.plan(job(cpus=8))
    assert r.choice is not None and r.choice.accelerator is None
    assert all(p.accelerator is None for p in r.alternatives)
    exact = planner.plan(job(cpus=2, cpus_exact=True))
    assert exact.choice is not None and exact.choice.vcpus == 2
    assert reasons(exact)["aws"] == "no node with exactly 2 vCPUs"


def test_instance_type_alone_matches_its_accelerators(planner: Planner) -> None:
    r = planner.plan(job(instance_type="p4d.24xlarge"))
    assert r.choice is not None and r.choice.accelerator == "A100"
    assert reasons(r)["gcp"] == "offers no instance type p4d.24xlarge"


def test_no_duration_note_and_top(planner: Planner) -> None:
    r = planner.plan(job("H100:8", duration=None), top=1)
    assert "no expected duration given: totals are for one hour" in r.notes
    assert r.choice is not None and r.choice.total_usd == r.choice.hourly_usd
    assert len(r.alternatives) == 1
    assert planner.plan(job("H100:8"), top=0).alternatives == ()


def test_deterministic_and_serialisable(planner: Planner) -> None:
    j = job("H100:8", "H200:8", spot=SpotPolicy.ALLOWED)
    first = planner.plan(j).to_dict()
    again = Planner(CATALOG).plan(j).to_dict()
    reversed_catalog = Planner(Catalog.from_offerings(reversed(CATALOG.offerings)))
    assert first == again
    assert first["choice"] == reversed_catalog.plan(j).to_dict()["choice"]
    assert first["alternatives"] == reversed_catalog.plan(j).to_dict()["alternatives"]
    assert set(first) == {
        "workload",
        "choice",
        "alternatives",
        "best_by_provider",
        "excluded",
        "notes",
    }


def test_empty_catalog() -> None:
    r = Planner(Catalog.from_offerings([])).plan(job("H100:8"))
    assert r.choice is None and r.excluded == () and r.alternatives == ()


def test_best_by_provider_explains_each_losing_provider(planner: Planner) -> None:
    # top=1 shows only one alternative; every other feasible provider still gets its best.
    r = planner.plan(job("H100:8", "H200:8"), top=1)
    assert r.choice is not None
    assert r.choice.provider == "gcp"
    best = {p.provider: p for p in r.best_by_provider}
    assert set(best) == {"aws", "azure"}
    assert best["aws"].instance_type == "p5.48xlarge"
    assert best["azure"].instance_type == "ND96isr_H200_v5"
    totals = [p.total_usd for p in r.best_by_provider]
    assert totals == sorted(totals)
    assert all(t >= r.choice.total_usd for t in totals)


def _alts(
    choice: AcceleratorChoice, *items: ResourceRequest, duration: float | None = 10.0
) -> TrainingJob:
    res = ResourceRequest(alternatives=items, alternatives_choice=choice)
    return TrainingJob("job", res, duration_hours=duration)


def _acc(name: str, count: int = 8, **res: object) -> ResourceRequest:
    return ResourceRequest(accelerators=(AcceleratorRequest(name, count),), **res)  # type: ignore[arg-type]


def test_ordered_resource_alternatives_take_the_first_feasible_item(planner: Planner) -> None:
    # On demand first: never spot, although spot is far cheaper.
    r = planner.plan(
        _alts(
            AcceleratorChoice.ORDERED,
            _acc("H100", spot=SpotPolicy.NEVER),
            _acc("H100", spot=SpotPolicy.ONLY),
        )
    )
    assert r.choice is not None
    assert (r.choice.provider, r.choice.pricing, r.choice.option) == (
        "gcp",
        PricingKind.ON_DEMAND,
        0,
    )
    # Alternatives follow the user's order: every ordered[0] candidate before ordered[1].
    options = [p.option for p in r.alternatives]
    assert options == sorted(options) and options[-1] == 1
    # A first item nobody can place falls through to the second, with a note.
    r = planner.plan(
        _alts(
            AcceleratorChoice.ORDERED,
            _acc("H100", providers=frozenset({"oci"})),
            _acc("A100", providers=frozenset({"aws"})),
        )
    )
    assert r.choice is not None
    assert (r.choice.instance_type, r.choice.option) == ("p4d.24xlarge", 1)
    assert any("resources.ordered[0] could not be placed" in n for n in r.notes)


def test_any_of_keeps_each_items_pairing(planner: Planner) -> None:
    # H100 only on gcp, spot only for the aws item: the cheapest pairing wins, and a
    # flattened request (H100 anywhere, spot anywhere) would pick aws H100 spot instead.
    r = planner.plan(
        _alts(
            AcceleratorChoice.ANY_OF,
            _acc("H100", providers=frozenset({"gcp"})),
            _acc("A100", providers=frozenset({"aws"}), spot=SpotPolicy.ONLY),
        )
    )
    assert r.choice is not None
    assert (r.choice.instance_type, r.choice.pricing, r.choice.option) == (
        "p4d.24xlarge",
        PricingKind.SPOT,
        1,
    )
    found = {(p.provider, p.accelerator, p.pricing) for p in [r.choice, *r.alternatives]}
    assert found == {("gcp", "H100", PricingKind.ON_DEMAND), ("aws", "A100", PricingKind.SPOT)}
    # azure and oci are excluded by both items, for the same reason: said once.
    assert reasons(r) == {
        "azure": "not in resources.providers",
        "oci": "not in resources.providers",
    }
    # Different reasons: each item's.
    r = planner.plan(
        _alts(
            AcceleratorChoice.ANY_OF,
            _acc("H100", providers=frozenset({"oci", "gcp"})),
            _acc("A100", providers=frozenset({"aws"})),
        )
    )
    assert reasons(r)["oci"] == (
        "any_of[0]: offers no H100:8 (has: A100-80GB:8, B200:8); "
        "any_of[1]: not in resources.providers"
    )


def test_alternatives_share_one_reference_accelerator(planner: Planner) -> None:
    # duration 100 h on H100 (the first accelerator named): B200 (2x) takes 50 h.
    r = planner.plan(_alts(AcceleratorChoice.ANY_OF, _acc("H100"), _acc("B200"), duration=100))
    assert r.choice is not None and r.choice.accelerator == "B200"
    assert r.choice.duration_hours == pytest.approx(50.0)


def test_alternatives_of_cpu_shapes_and_an_empty_result(planner: Planner) -> None:
    batch = BatchJob(
        "b",
        ResourceRequest(
            alternatives=(
                ResourceRequest(cpus=32, providers=frozenset({"aws"})),
                ResourceRequest(cpus=8, providers=frozenset({"oci"})),
            )
        ),
    )
    r = planner.plan(batch)
    assert r.choice is not None
    assert (r.choice.instance_type, r.choice.option) == ("VM.Standard.E4.Flex$_8_32", 1)
    none = planner.plan(_alts(AcceleratorChoice.ORDERED, _acc("H100", 3), _acc("B200", 3)))
    assert none.choice is None and none.alternatives == ()
    assert {e.provider for e in none.excluded} == {"aws", "gcp", "azure", "oci"}
