"""Valid native specs convert to the right model objects."""

from __future__ import annotations

import pytest

from intercloud.catalog import Catalog
from intercloud.model import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    DataLocation,
    RestartPolicy,
    Service,
    SpotPolicy,
    Topology,
    TrainingJob,
)
from intercloud.specs import SpecError, load_spec_text

TRAINING = """
kind: training
name: llama-70b-pretrain
tenant: research
num_nodes: 4
resources:
  accelerators: H100:8
  cpus: 32+
  memory: 256+
  instance_type: p5.48xlarge
  topology: zone
  spot: allowed
  providers: [aws, Google]
  deny_providers: [azure]
  provider_preference: [gcp]
  regions: [us-east-1, us-central1]
  deny_regions: [eu-west-1]
  zones: [us-east-1a]
  max_hourly_usd: 500
data: {provider: aws, region: us-east-1, size_gb: 2000}
duration: 36h
reference_accelerator: h100
deadline: 2026-12-31T00:00:00Z
checkpoint_interval: 30m
priority: 100
setup: pip install -r requirements.txt
run: torchrun train.py
envs: {WANDB_MODE: offline, SEED: 7, DEBUG: false}
restart: {max_restarts: 3, on_exit_codes: [137, 139]}
"""


def test_training_round_trip(catalog: Catalog) -> None:
    for cat in (None, catalog):
        loaded = load_spec_text(TRAINING, cat)
        assert loaded.source_format == "intercloud"
        assert loaded.ignored_fields == ()
        job = loaded.workload
        assert isinstance(job, TrainingJob)
        assert job.name == "llama-70b-pretrain"
        assert job.tenant == "research"
        r = job.resources
        assert r.accelerators == (AcceleratorRequest("H100", 8),)
        assert r.num_nodes == 4
        assert (r.cpus, r.cpus_exact, r.memory_gib) == (32.0, False, 256.0)
        assert r.instance_type == "p5.48xlarge"
        assert r.topology is Topology.ZONE
        assert r.spot is SpotPolicy.ALLOWED
        assert r.providers == frozenset({"aws", "gcp"})
        assert r.deny_providers == frozenset({"azure"})
        assert r.provider_preference == ("gcp",)
        assert r.regions == frozenset({"us-east-1", "us-central1"})
        assert r.deny_regions == frozenset({"eu-west-1"})
        assert r.zones == frozenset({"us-east-1a", "use1-az1"})  # zone name and its id
        assert r.max_hourly_usd == 500
        assert job.data == DataLocation("aws", "us-east-1", 2000.0)
        assert job.duration_hours == 36
        assert job.reference_accelerator == "H100"
        assert job.deadline == "2026-12-31T00:00:00Z"
        assert job.checkpoint_interval_minutes == 30
        assert job.priority == 100
        assert job.setup == "pip install -r requirements.txt"
        assert job.run == "torchrun train.py"
        assert job.envs == (("WANDB_MODE", "offline"), ("SEED", "7"), ("DEBUG", "false"))
        assert job.restart == RestartPolicy(3, (137, 139))


def test_training_defaults() -> None:
    job = load_spec_text("kind: training\nname: j\nresources: {accelerators: A100}\n").workload
    assert isinstance(job, TrainingJob)
    assert job.tenant == "default"
    assert job.resources.accelerators == (AcceleratorRequest("A100", 1),)
    assert job.resources.num_nodes == 1
    assert job.resources.topology is Topology.ANY
    assert job.resources.spot is SpotPolicy.NEVER
    assert job.resources.providers is None and job.resources.regions is None
    assert job.resources.deny_providers == frozenset()
    assert job.data is None and job.duration_hours is None and job.deadline is None
    assert job.restart == RestartPolicy()


@pytest.mark.parametrize(
    ("text", "choice", "expected"),
    [
        ("H100:8", AcceleratorChoice.ANY_OF, [("H100", 8)]),
        ("h100-sxm:8", AcceleratorChoice.ANY_OF, [("H100", 8)]),
        ("'mi300:8'", AcceleratorChoice.ANY_OF, [("MI300X", 8)]),
        ("{H100: 4}", AcceleratorChoice.ANY_OF, [("H100", 4)]),
        ("[H100:8, H200:8]", AcceleratorChoice.ANY_OF, [("H100", 8), ("H200", 8)]),
        ("{any_of: [H100:8, B200:8]}", AcceleratorChoice.ANY_OF, [("H100", 8), ("B200", 8)]),
        ("{ordered: [H200:8, H100:8]}", AcceleratorChoice.ORDERED, [("H200", 8), ("H100", 8)]),
        ("[{A100-80GB: 8}, L40S:4]", AcceleratorChoice.ANY_OF, [("A100-80GB", 8), ("L40S", 4)]),
    ],
)
def test_accelerator_forms(
    text: str, choice: AcceleratorChoice, expected: list[tuple[str, int]]
) -> None:
    spec = f"kind: training\nname: j\nresources:\n  accelerators: {text}\n"
    res = load_spec_text(spec).workload.resources
    assert res.accelerator_choice is choice
    assert [(a.name, a.count) for a in res.accelerators] == expected


@pytest.mark.parametrize(
    ("text", "cpus", "exact"),
    [("32+", 32.0, False), ("'32'", 32.0, True), ("32", 32.0, True), ("0.5+", 0.5, False)],
)
def test_cpus_syntax(text: str, cpus: float, exact: bool) -> None:
    spec = f"kind: batch\nname: b\nresources:\n  cpus: {text}\n  memory: 8\n"
    job = load_spec_text(spec).workload
    assert isinstance(job, BatchJob)
    assert (job.resources.cpus, job.resources.cpus_exact) == (cpus, exact)
    assert job.resources.memory_gib == 8


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("90m", 1.5),
        ("36h", 36),
        ("2d", 48),
        ("1d12h", 36),
        ("1w", 168),
        ("3600s", 1),
        ("2.5", 2.5),
        ("12", 12),
        ("1H30M", 1.5),
    ],
)
def test_durations(text: str, hours: float) -> None:
    spec = f"kind: training\nname: j\nresources: {{accelerators: H100:8}}\nduration: {text}\n"
    assert load_spec_text(spec).workload.duration_hours == pytest.approx(hours)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31T00:00:00Z", "2026-12-31T00:00:00Z"),
        ("2026-12-31", "2026-12-31T00:00:00Z"),
        ("'2026-12-31T02:00:00+02:00'", "2026-12-31T00:00:00Z"),
        ("'2026-06-01 12:30'", "2026-06-01T12:30:00Z"),
    ],
)
def test_deadlines(text: str, expected: str) -> None:
    spec = f"kind: training\nname: j\nresources: {{accelerators: H100:8}}\ndeadline: {text}\n"
    job = load_spec_text(spec).workload
    assert isinstance(job, TrainingJob)
    assert job.deadline == expected


def test_data_uri_schemes() -> None:
    base = "kind: training\nname: j\nresources: {accelerators: H100:8}\n"
    for uri, provider in [("s3://b/p", "aws"), ("gs://b", "gcp"), ("az://c/p", "azure")]:
        text = base + f"data: {{uri: '{uri}', region: r1, size_gb: 5}}\n"
        job = load_spec_text(text).workload
        assert isinstance(job, TrainingJob)
        assert job.data == DataLocation(provider, "r1", 5.0)


def test_service() -> None:
    text = """
kind: service
name: chat
num_nodes: 2
resources:
  accelerators: {ordered: [H200:8, H100:8]}
  spot: allowed
replicas: {min: 2, max: 20}
target_rps_per_replica: 12.5
spot_share: 0.25
duration: 30d
run: vllm serve model
"""
    svc = load_spec_text(text).workload
    assert isinstance(svc, Service)
    assert (svc.min_replicas, svc.max_replicas) == (2, 20)
    assert svc.target_rps_per_replica == 12.5
    assert svc.spot_share == 0.25
    assert svc.resources.spot is SpotPolicy.ALLOWED
    assert svc.resources.num_nodes == 2
    assert svc.resources.accelerator_choice is AcceleratorChoice.ORDERED
    assert svc.duration_hours == 720


@pytest.mark.parametrize(
    ("lines", "spot", "share"),
    [
        ("", SpotPolicy.NEVER, 0.0),
        ("  spot: allowed\n", SpotPolicy.ALLOWED, 0.5),
        ("  spot: only\n", SpotPolicy.ONLY, 1.0),
        ("spot_share: 0.3\n", SpotPolicy.ALLOWED, 0.3),
        ("spot_share: 1\n", SpotPolicy.ONLY, 1.0),
        ("spot_share: 0\n", SpotPolicy.NEVER, 0.0),
    ],
)
def test_service_spot_defaults(lines: str, spot: SpotPolicy, share: float) -> None:
    head = "kind: service\nname: s\nresources:\n  accelerators: L4:1\n"
    resources_lines = "".join(x + "\n" for x in lines.splitlines() if x.startswith("  "))
    top_lines = "".join(x + "\n" for x in lines.splitlines() if not x.startswith("  "))
    svc = load_spec_text(head + resources_lines + top_lines).workload
    assert isinstance(svc, Service)
    assert (svc.resources.spot, svc.spot_share) == (spot, share)
    assert (svc.min_replicas, svc.max_replicas) == (1, 1)


def test_service_cpu_only_and_fixed_replicas() -> None:
    text = "kind: service\nname: api\nresources: {cpus: 4+}\nreplicas: {min: 3}\n"
    svc = load_spec_text(text).workload
    assert isinstance(svc, Service)
    assert svc.resources.accelerators == ()
    assert (svc.min_replicas, svc.max_replicas) == (3, 3)


def test_batch() -> None:
    text = """
kind: batch
name: shards
count: 500
resources: {cpus: 4+, memory: 16+, spot: only, providers: [aws]}
data: {provider: aws, region: us-east-1, size_gb: 800}
duration: 20m
restart: {max_restarts: 2}
"""
    job = load_spec_text(text).workload
    assert isinstance(job, BatchJob)
    assert job.count == 500
    assert job.resources.accelerators == ()
    assert (job.resources.cpus, job.resources.memory_gib) == (4.0, 16.0)
    assert job.resources.spot is SpotPolicy.ONLY
    assert job.duration_hours == pytest.approx(1 / 3)
    assert job.restart.max_restarts == 2


def test_batch_instance_type_without_cpus(catalog: Catalog) -> None:
    text = "kind: batch\nname: b\nresources: {instance_type: m7i.8xlarge}\n"
    job = load_spec_text(text, catalog).workload
    assert job.resources.instance_type == "m7i.8xlarge"


def test_nvl72_fits_and_h100_gang_does_not(catalog: Catalog) -> None:
    nvl = "kind: training\nname: j\nnum_nodes: 18\nresources:\n  accelerators: GB200:4\n"
    nvl += "  topology: nvlink_domain\n"
    job = load_spec_text(nvl, catalog).workload
    assert job.resources.topology is Topology.NVLINK_DOMAIN
    assert job.resources.num_nodes == 18
    one_server = nvl.replace("GB200:4", "H100:8").replace("num_nodes: 18", "num_nodes: 1")
    load_spec_text(one_server, catalog)
    with pytest.raises(SpecError, match="72 GPUs cannot share one NVLink domain on H100:8"):
        load_spec_text(one_server.replace("num_nodes: 1", "num_nodes: 9"), catalog)


def test_num_nodes_in_resources(catalog: Catalog) -> None:
    text = "kind: training\nname: j\nresources:\n  accelerators: GB200:4\n  num_nodes: 18\n"
    job = load_spec_text(text + "  topology: nvlink_domain\n", catalog).workload
    assert job.resources.num_nodes == 18
    svc = "kind: service\nname: s\nresources: {accelerators: H100:8, num_nodes: 2}\n"
    assert load_spec_text(svc).workload.resources.num_nodes == 2


def test_training_with_instance_type_only(catalog: Catalog) -> None:
    text = "kind: training\nname: j\nresources: {instance_type: p5.48xlarge}\n"
    job = load_spec_text(text, catalog).workload
    assert job.resources.accelerators == ()
    assert job.resources.instance_type == "p5.48xlarge"


def test_nvlink_any_alternative_that_fits_is_enough(catalog: Catalog) -> None:
    text = "kind: training\nname: j\nnum_nodes: 4\nresources:\n"
    text += "  accelerators: [H100:8, GB200:4]\n  topology: nvlink_domain\n"
    load_spec_text(text, catalog)


def test_catalog_only_names(catalog: Catalog) -> None:
    from intercloud.model import Offering

    extra = Catalog.from_offerings(
        [Offering("coreweave", "us-east-04", "", "gd-8xh100", "Gaudi3", 8, 96, 1024, 50.0)]
    )
    merged = catalog.merged(extra)
    text = "kind: training\nname: j\nresources:\n  accelerators: gaudi3:8\n"
    text += "  providers: [CoreWeave]\n"
    with pytest.raises(SpecError, match="unknown accelerator"):
        load_spec_text(text)
    job = load_spec_text(text, merged).workload
    assert job.resources.accelerators == (AcceleratorRequest("Gaudi3", 8),)
    assert job.resources.providers == frozenset({"coreweave"})


def test_errors_are_single_line_for_multiline_input() -> None:
    text = "kind: training\nname: j\nresources: {accelerators: H100:8}\nnum_nodes: |\n  a\n  b\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text)
    assert "\n" not in str(info.value)
    assert info.value.field == "num_nodes"


def test_import_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, intercloud.specs\n"
        "heavy = [m for m in ('numpy', 'intercloud.catalog') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
