"""SkyPilot task YAML import."""

from __future__ import annotations

import re

import pytest

from intercloud.catalog import Catalog
from intercloud.model import (
    AcceleratorChoice,
    AcceleratorRequest,
    BatchJob,
    RestartPolicy,
    Service,
    SpotPolicy,
    TrainingJob,
)
from intercloud.specs import load_spec_text

DISTRIBUTED = """
name: llama-finetune
num_nodes: 2
resources:
  accelerators: H100:8
  infra: aws/us-east-1
  use_spot: true
  cpus: 96+
  memory: 512
  disk_size: 1024
  disk_tier: best
  image_id: docker:nvcr.io/nvidia/pytorch:24.05-py3
  ports: 8080
  job_recovery:
    strategy: FAILOVER
    max_restarts_on_errors: 3
workdir: ~/code/llama
file_mounts:
  /checkpoints:
    name: my-ckpts
    mode: MOUNT
secrets:
  HF_TOKEN: hf_supersecretvalue
envs:
  MODEL_SIZE: 8b
  WANDB_API_KEY: null
setup: |
  pip install -r requirements.txt
run: |
  torchrun --nnodes=$SKYPILOT_NUM_NODES train.py
"""


def test_distributed_training_task(catalog: Catalog) -> None:
    loaded = load_spec_text(DISTRIBUTED, catalog)
    assert loaded.source_format == "skypilot"
    job = loaded.workload
    assert isinstance(job, TrainingJob)
    assert job.name == "llama-finetune"
    r = job.resources
    assert r.accelerators == (AcceleratorRequest("H100", 8),)
    assert r.num_nodes == 2
    assert r.spot is SpotPolicy.ONLY
    assert r.providers == frozenset({"aws"})
    assert r.regions == frozenset({"us-east-1"})
    assert r.zones is None
    assert (r.cpus, r.cpus_exact, r.memory_gib) == (96, False, 512)
    assert job.restart == RestartPolicy(max_restarts=3)
    assert job.envs == (("MODEL_SIZE", "8b"),)
    assert job.setup == "pip install -r requirements.txt\n"
    assert job.workdir == "~/code/llama"
    assert job.file_mounts == (("/checkpoints", "storage://my-ckpts"),)
    assert set(loaded.ignored_fields) == {
        "secrets",
        "resources.disk_size",
        "resources.disk_tier",
        "resources.image_id",
        "resources.ports",
        "resources.job_recovery.strategy",
        "envs.WANDB_API_KEY",
    }
    assert any("memory" in n and "at least" in n for n in loaded.notes)
    assert "hf_supersecretvalue" not in repr(loaded)


def test_accelerator_alternatives() -> None:
    listed = load_spec_text("resources:\n  accelerators: [H100:8, A100-80GB:8]\nrun: x\n")
    r = listed.workload.resources
    assert r.accelerator_choice is AcceleratorChoice.ORDERED  # SkyPilot lists are ordered
    assert r.accelerators == (AcceleratorRequest("H100", 8), AcceleratorRequest("A100-80GB", 8))
    as_set = load_spec_text("resources:\n  accelerators: {A10G, L4}\nrun: x\n")
    r = as_set.workload.resources
    assert r.accelerator_choice is AcceleratorChoice.ANY_OF
    assert r.accelerators == (AcceleratorRequest("A10G", 1), AcceleratorRequest("L4", 1))
    as_dict = load_spec_text("resources:\n  accelerators: {L4: 4, A10G: 4}\nrun: x\n")
    assert as_dict.workload.resources.accelerators[0] == AcceleratorRequest("L4", 4)


def test_any_of_items_keep_their_pairing_over_the_base() -> None:
    text = """
resources:
  cpus: 16+
  any_of:
    - infra: aws
      accelerators: H100:8
    - infra: gcp/us-central1
      accelerators: H100:8
    - infra: azure
      accelerators: A100-80GB:8
      use_spot: true
run: python train.py
"""
    loaded = load_spec_text(text)
    r = loaded.workload.resources
    assert r.alternatives_choice is AcceleratorChoice.ANY_OF
    alts = r.alternatives
    assert [a.accelerators for a in alts] == [
        (AcceleratorRequest("H100", 8),),
        (AcceleratorRequest("H100", 8),),
        (AcceleratorRequest("A100-80GB", 8),),
    ]
    assert [a.providers for a in alts] == [
        frozenset({"aws"}),
        frozenset({"gcp"}),
        frozenset({"azure"}),
    ]
    assert [a.regions for a in alts] == [None, frozenset({"us-central1"}), None]
    assert [a.spot for a in alts] == [SpotPolicy.NEVER, SpotPolicy.NEVER, SpotPolicy.ONLY]
    assert all(a.cpus == 16 and not a.alternatives for a in alts)


def test_ordered_and_legacy_cloud_fields() -> None:
    text = """
name: ordered-task
resources:
  ordered:
    - cloud: gcp
      region: us-central1
      accelerators: A100:8
    - cloud: aws
      region: us-east-1
      zone: us-east-1a
      accelerators: H100:8
"""
    loaded = load_spec_text(text + "run: x\n")
    r = loaded.workload.resources
    assert r.alternatives_choice is AcceleratorChoice.ORDERED
    first, second = r.alternatives
    assert (str(first.accelerators[0]), first.providers, first.regions, first.zones) == (
        "A100:8",
        frozenset({"gcp"}),
        frozenset({"us-central1"}),
        None,
    )
    assert (str(second.accelerators[0]), second.providers, second.zones) == (
        "H100:8",
        frozenset({"aws"}),
        frozenset({"us-east-1a", "use1-az1"}),
    )


def test_cpu_task_becomes_batch() -> None:
    loaded = load_spec_text("resources:\n  cpus: 4+\n  infra: k8s\nrun: python etl.py\n", None)
    job = loaded.workload
    assert isinstance(job, BatchJob)
    assert job.count == 1
    assert job.resources.cpus == 4
    assert job.resources.providers is None
    assert "resources.infra" in loaded.ignored_fields
    assert job.name == "skypilot-task"


def test_cpu_task_defaults(tmp_path: object) -> None:
    loaded = load_spec_text("run: echo hello\n", source="jobs/hello_world.yaml")
    job = loaded.workload
    assert isinstance(job, BatchJob)
    assert job.name == "hello_world"
    assert job.count == 1
    assert (job.resources.cpus, job.resources.cpus_exact) == (8, False)
    assert len(loaded.notes) >= 2


@pytest.mark.parametrize("nodes", [2, 3])
def test_multi_node_cpu_task_is_a_gang(nodes: int) -> None:
    """SkyPilot's num_nodes without accelerators is an N-node cluster, not N tasks."""
    loaded = load_spec_text(f"run: echo hello\nnum_nodes: {nodes}\n", source="hello.yaml")
    job = loaded.workload
    assert isinstance(job, TrainingJob)
    assert job.resources.num_nodes == nodes
    assert job.resources.accelerators == ()
    assert (job.resources.cpus, job.resources.cpus_exact) == (8, False)
    one = load_spec_text("run: echo hello\nnum_nodes: 1\n").workload
    assert isinstance(one, BatchJob) and one.count == 1


def test_multi_node_cpu_task_is_priced_for_every_node() -> None:
    from intercloud.catalog.loader import load_catalog
    from intercloud.scheduler.planner import Planner

    catalog = load_catalog()
    planner = Planner(catalog)
    task = "resources: {{cpus: 4+, infra: aws/us-east-1}}\nnum_nodes: {n}\nrun: 'true'\n"
    one = planner.plan(load_spec_text(task.format(n=1), catalog).workload).choice
    three = planner.plan(load_spec_text(task.format(n=3), catalog).workload).choice
    assert one is not None and three is not None
    assert (one.nodes, three.nodes) == (1, 3)
    assert three.instance_type == one.instance_type
    assert three.hourly_usd == pytest.approx(3 * one.hourly_usd)


def test_workdir_and_file_mounts_are_mapped_not_ignored() -> None:
    loaded = load_spec_text(
        "run: ls\nworkdir: .\nfile_mounts:\n  /data: ./data\n  ~/cfg.yaml: cfg.yaml\n"
        "  /ckpt: {source: s3://bucket/ckpt, mode: MOUNT}\n  /out: {name: outs, store: gcs}\n"
    )
    job = loaded.workload
    assert job.workdir == "."
    assert dict(job.file_mounts) == {
        "/data": "./data",
        "~/cfg.yaml": "cfg.yaml",
        "/ckpt": "s3://bucket/ckpt",
        "/out": "gs://outs",
    }
    assert not any(f.startswith(("workdir", "file_mounts")) for f in loaded.ignored_fields)


def test_skyserve_service() -> None:
    text = """
service:
  readiness_probe: /v1/models
  replica_policy:
    min_replicas: 2
    max_replicas: 10
    target_qps_per_replica: 2.5
    upscale_delay_seconds: 300
resources:
  accelerators: {L4: 1}
  ports: 8000
  use_spot: true
run: vllm serve mistralai/Mistral-7B-Instruct-v0.3
"""
    loaded = load_spec_text(text)
    svc = loaded.workload
    assert isinstance(svc, Service)
    assert (svc.min_replicas, svc.max_replicas) == (2, 10)
    assert svc.target_rps_per_replica == 2.5
    assert (svc.resources.spot, svc.spot_share) == (SpotPolicy.ONLY, 1.0)
    assert {"service.readiness_probe", "resources.ports"} <= set(loaded.ignored_fields)
    assert "service.replica_policy.upscale_delay_seconds" in loaded.ignored_fields


def test_skyserve_ondemand_fallback() -> None:
    text = """
service:
  replica_policy: {min_replicas: 4, max_replicas: 8, base_ondemand_fallback_replicas: 1}
resources: {accelerators: L4:1, use_spot: true}
run: serve
"""
    svc = load_spec_text(text).workload
    assert isinstance(svc, Service)
    assert svc.resources.spot is SpotPolicy.ALLOWED
    assert svc.spot_share == 0.75


def test_top_level_job_recovery_and_exit_codes() -> None:
    text = """
resources: {accelerators: H100:8}
job_recovery: {max_restarts_on_errors: 2, recover_on_exit_codes: [33, 34]}
run: x
"""
    job = load_spec_text(text).workload
    assert isinstance(job, TrainingJob)
    assert job.restart == RestartPolicy(2, (33, 34))


def test_alias_accelerators_dedupe_across_alternatives() -> None:
    text = "resources:\n  any_of:\n    - {infra: aws, accelerators: H100:8}\n"
    text += "    - {infra: azure, accelerators: h100:8}\nrun: x\n"
    r = load_spec_text(text).workload.resources
    assert [a.accelerators for a in r.alternatives] == [(AcceleratorRequest("H100", 8),)] * 2


def test_readme_lists_every_field_the_importer_ignores() -> None:
    """The README's SkyPilot section names each field listed as ignored (it is the user's
    only list of what intercloud does not honour)."""
    from pathlib import Path

    from intercloud.specs import skypilot_task as sky

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("### SkyPilot tasks") : readme.index("## The fleet scheduler")]
    words = set(re.findall(r"[a-z_]+", section))
    fields = sky.TASK_IGNORED | sky.RES_IGNORED | sky.SERVICE_IGNORED | sky.POLICY_IGNORED
    fields |= sky.TASK_USED
    assert sorted(f for f in fields if f not in words) == []
