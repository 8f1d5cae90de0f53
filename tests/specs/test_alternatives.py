"""Resource-level alternatives (any_of / ordered of whole overrides), SkyPilot's set
syntax, zones by name or id, and the SkyPilot fields mapped rather than rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercloud.catalog import Catalog
from intercloud.catalog.loader import load_catalog
from intercloud.catalog.zones import MAPPING_ENV
from intercloud.model import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    SpotPolicy,
    TrainingJob,
)
from intercloud.specs import load_spec_text
from intercloud.specs.errors import SpecError


def test_native_ordered_merges_each_item_over_the_base(catalog: Catalog) -> None:
    text = """
kind: training
name: j
num_nodes: 2
resources:
  accelerators: H100:8
  cpus: 32+
  providers: [aws, gcp]
  ordered:
    - {spot: only, providers: [aws]}
    - {accelerators: [A100:8, A100-80GB:8], max_hourly_usd: 80}
run: x
"""
    res = load_spec_text(text, catalog).workload.resources
    assert res.alternatives_choice is AcceleratorChoice.ORDERED
    first, second = res.alternatives
    assert (first.accelerators, first.spot, first.providers) == (
        (AcceleratorRequest("H100", 8),),
        SpotPolicy.ONLY,
        frozenset({"aws"}),
    )
    assert [str(a) for a in second.accelerators] == ["A100:8", "A100-80GB:8"]
    assert (second.spot, second.providers, second.max_hourly_usd) == (
        SpotPolicy.NEVER,
        frozenset({"aws", "gcp"}),
        80,
    )
    assert all(a.cpus == 32 and a.num_nodes == 2 for a in res.alternatives)
    # the base keeps what it said; the planner plans the alternatives
    assert res.accelerators == (AcceleratorRequest("H100", 8),)


def test_native_batch_any_of_cpu_shapes() -> None:
    text = "kind: batch\nname: b\ncount: 4\nresources:\n  any_of:\n"
    text += "    - {cpus: 4+, providers: [aws]}\n    - {instance_type: n2-standard-8}\n"
    job = load_spec_text(text).workload
    assert isinstance(job, BatchJob)
    assert [(a.cpus, a.instance_type) for a in job.resources.alternatives] == [
        (4, None),
        (None, "n2-standard-8"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{A100:8}", [("A100", 8)]),
        ("{A100: 8}", [("A100", 8)]),
        ("{A100}", [("A100", 1)]),
        ("{H100:8, V100:8}", [("H100", 8), ("V100", 8)]),
        ("{H100: 8, V100: 4}", [("H100", 8), ("V100", 4)]),
    ],
)
@pytest.mark.parametrize("skypilot", [False, True])
def test_set_syntax_is_any_of(text: str, expected: list[tuple[str, int]], skypilot: bool) -> None:
    head = "" if skypilot else "kind: training\nname: j\n"
    res = load_spec_text(f"{head}resources:\n  accelerators: {text}\nrun: x\n").workload.resources
    assert res.accelerator_choice is AcceleratorChoice.ANY_OF
    assert [(a.name, a.count) for a in res.accelerators] == expected


def test_zone_by_name_or_id_narrows_regions(catalog: Catalog) -> None:
    for zone in ("us-east-1a", "use1-az1", "USE1-AZ1"):
        text = f"kind: training\nname: j\nresources:\n  accelerators: H100:8\n  zones: [{zone}]\n"
        res = load_spec_text(text, catalog).workload.resources
        assert {"us-east-1a", "use1-az1"} <= res.zones  # type: ignore[operator]
        assert res.regions == frozenset({"us-east-1"})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "resources:\n  accelerators: H100:8\n  infra: aws/us-west-2/us-east-1a\nrun: x\n",
            "resources.infra",
        ),
        (
            "resources:\n  accelerators: H100:8\n  cloud: aws\n  region: us-west-2\n"
            "  zone: use1-az6\nrun: x\n",
            "resources.zone",
        ),
        (
            "resources:\n  accelerators: H100:8\n  ordered:\n    - infra: gcp\n"
            "    - infra: aws/eu-west-1/us-east-1b\nrun: x\n",
            "resources.ordered[1].infra",
        ),
        (
            "kind: training\nname: j\nresources:\n  accelerators: H100:8\n"
            "  regions: [us-west-2]\n  zones: [us-west-2a, us-east-1a]\n",
            "resources.zones[1]",
        ),
    ],
)
def test_a_zone_outside_the_asked_regions_is_bad_input(text: str, field: str) -> None:
    """SkyPilot refuses a zone of another region; it is never placed in the region alone."""
    with pytest.raises(SpecError) as err:
        load_spec_text(text)
    assert err.value.field == field
    assert "is in us-east-1" in err.value.problem


def test_an_accounts_zone_mapping_replaces_the_assumed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = tmp_path / "az.csv"
    mapping.write_text("AvailabilityZoneName,AvailabilityZone\nus-east-1a,use1-az6\n")
    monkeypatch.setenv(MAPPING_ENV, str(mapping))
    text = "resources:\n  accelerators: H100:8\n  infra: aws/us-east-1/us-east-1a\nrun: x\n"
    res = load_spec_text(text).workload.resources
    assert res.zones == frozenset({"us-east-1a", "use1-az6"})


def test_zone_id_places_in_that_zone_on_skypilots_catalog(skypilot_subset: Path) -> None:
    from intercloud.scheduler.planner import Planner

    cat = load_catalog(skypilot_subset)
    text = "resources:\n  accelerators: H100:8\n  use_spot: true\n"
    text += "  infra: aws/us-east-1/use1-az6\nrun: x\n"
    result = Planner(cat).plan(load_spec_text(text, cat).workload)
    assert result.choice is not None
    assert (result.choice.zone, result.choice.hourly_usd) == ("use1-az6", pytest.approx(17.6289))


def test_top_level_priority_is_a_skypilot_task_field() -> None:
    loaded = load_spec_text("priority: 7\nresources:\n  accelerators: H100:8\nrun: x\n")
    assert loaded.source_format == "skypilot"
    assert loaded.workload.priority == 7
    loaded = load_spec_text("resources:\n  accelerators: H100:8\n  priority: 500\nrun: x\n")
    assert loaded.workload.priority == 500


def test_max_hourly_cost_is_per_instance_in_skypilot() -> None:
    text = "num_nodes: 4\nresources:\n  accelerators: H100:8\n  max_hourly_cost: 60\nrun: x\n"
    loaded = load_spec_text(text)
    assert isinstance(loaded.workload, TrainingJob)
    assert loaded.workload.resources.max_hourly_usd == 240  # the whole gang of 4
    assert any("per instance" in n for n in loaded.notes)
    batch = load_spec_text("resources:\n  cpus: 4+\n  max_hourly_cost: 0.5\nrun: x\n")
    assert batch.workload.resources.max_hourly_usd == 0.5  # one instance


def test_fields_skypilot_accepts_are_listed_as_ignored() -> None:
    text = """
_metadata: {x: 1}
volume_mounts: []
resources:
  accelerators: H100:8
  ephemeral_storage: 100
  local_disk: nvme:500+
  priority_class: high
  autostop: 30m
  any_of:
    - {infra: aws, disk_size: 100}
    - {infra: gcp}
run: x
"""
    loaded = load_spec_text(text)
    assert {
        "_metadata",
        "volume_mounts",
        "resources.ephemeral_storage",
        "resources.local_disk",
        "resources.priority_class",
        "resources.autostop",
        "resources.any_of[0].disk_size",
    } <= set(loaded.ignored_fields)


@pytest.mark.parametrize(
    ("key", "field", "tip"),
    [
        ("anyof", "resources.anyof", "any_of"),
        ("orderd", "resources.orderd", "ordered"),
        ("any-of", "resources.any-of", "any_of"),
    ],
)
def test_a_typo_of_any_of_or_ordered_gets_a_suggestion(key: str, field: str, tip: str) -> None:
    text = f"resources:\n  {key}:\n    - accelerators: H100:8\nrun: x\n"
    with pytest.raises(SpecError) as err:
        load_spec_text(text)
    assert err.value.field == field
    assert f"did you mean '{tip}'?" in err.value.problem


def test_skyserve_fields_of_skypilot_0_14_are_ignored_not_refused() -> None:
    """Every service and replica-policy field of SkyPilot 0.14.1's schema is known."""
    text = (
        "resources: {accelerators: A100:1, use_spot: true}\nrun: x\nservice:\n"
        "  readiness_probe: /\n  replicas: 2\n  load_balancer: {x: 1}\n  workers: 2\n"
    )
    loaded = load_spec_text(text)
    assert {"service.load_balancer", "service.workers"} <= set(loaded.ignored_fields)
    text = (
        "resources: {accelerators: A100:1, use_spot: true}\nrun: x\nservice:\n"
        "  readiness_probe: /\n  replica_policy:\n    min_replicas: 1\n"
        "    spot_placer: dynamic_fallback\n"
    )
    assert "service.replica_policy.spot_placer" in load_spec_text(text).ignored_fields


def test_skyserve_any_of_items_follow_the_on_demand_fallback() -> None:
    text = """
service:
  replica_policy: {min_replicas: 4, max_replicas: 8, base_ondemand_fallback_replicas: 1}
resources:
  any_of:
    - {accelerators: L4:1, use_spot: true}
    - {accelerators: A10G:1}
run: x
"""
    svc = load_spec_text(text).workload
    assert [a.spot for a in svc.resources.alternatives] == [SpotPolicy.ALLOWED, SpotPolicy.NEVER]
    assert svc.spot_share == 0.75  # type: ignore[union-attr]
