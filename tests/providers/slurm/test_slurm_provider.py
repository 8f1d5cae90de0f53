"""The slurm provider against a real Slurm cluster (``conftest.slurm_cluster``): offerings
from the nodes and their GRES, provision/start/poll/kill/adopt/release, Slurm's verdicts,
and its plugin's check."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster

from intercloud.model import Offering
from intercloud.providers.base import (
    CapacityError,
    NodeAlreadyRunning,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    ProviderError,
    ProvisionRequest,
)
from intercloud.providers.registry import ProviderContext
from intercloud.providers.slurm_cli import (
    expand_hostlist,
    gres_gpus,
    key_values,
    nodes_from_scontrol,
)
from intercloud.providers.slurm_plugin import PLUGIN, SlurmSettings
from intercloud.providers.slurm_provider import SlurmConfig, SlurmProvider, job_name


def _config(cluster: SlurmCluster, tmp_path: Path, **kw: object) -> SlurmConfig:
    base: dict[str, object] = dict(
        conf=str(cluster.conf), namespace="ic-test", log_root=tmp_path / "logs",
        work_root=str(tmp_path / "work"), provision_timeout_s=3, start_wait_s=2, kill_grace_s=1,
        fence_s=0, down_after_s=3,
    )  # fmt: skip
    base.update(kw)
    return SlurmConfig(**base)  # type: ignore[arg-type]


@pytest.fixture()
def provider(slurm_cluster: SlurmCluster, tmp_path: Path) -> SlurmProvider:
    return SlurmProvider(_config(slurm_cluster, tmp_path))


def _offering(p: SlurmProvider, gpus: int = 2) -> Offering:
    [o] = [o for o in p.offerings() if o.accelerator_count == gpus]
    return o


def _request(p: SlurmProvider, rid: str, nodes: int = 2, gpus: int = 0) -> ProvisionRequest:
    return ProvisionRequest(
        request_id=rid, job_id=rid, offering=_offering(p, min(max(gpus, 1), 2)), nodes=nodes,
        cpus_per_node=1,
        accelerators_per_node=gpus, duration_s=60,
    )  # fmt: skip


def _cmd(job: str, rank: int, run: str, nodes: int = 2, ckpt: str = "") -> NodeCommand:
    return NodeCommand(
        job_id=job, attempt=1, rank=rank, num_nodes=nodes, setup="echo setting-up",
        run=run, env={"GREETING": "hi there"}, log_dir="", checkpoint_dir=ckpt,
    )  # fmt: skip


def _wait_events(p: SlurmProvider, count: int, timeout: float = 30) -> list[NodeEvent]:
    events: list[NodeEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events += p.poll()
        time.sleep(0.1)
    return sorted(events, key=lambda e: e.rank)


def test_offerings_are_the_partition_node_shapes_at_price_zero(provider: SlurmProvider) -> None:
    # two nodes of 2 CPUs, 2 GRES GPUs (T4) and 4000 MB each, together; a node sells
    # one GPU or both
    assert [
        (o.provider, o.region, o.zone, o.instance_type, o.accelerator, o.accelerator_count)
        for o in provider.offerings()
    ] == [
        ("slurm", "slurm", "main", "slurm-2cpu-2xT4-3.9gib-cpu", None, 0),
        ("slurm", "slurm", "main", "slurm-2cpu-2xT4-3.9gib-use1", "T4", 1),
        ("slurm", "slurm", "main", "slurm-2cpu-2xT4-3.9gib", "T4", 2),
    ]
    o = _offering(provider)
    assert (o.vcpus, o.memory_gib, o.on_demand_price) == (4, 7.8, 0)
    # CPU-only slices are counted; GPU ones are left to Slurm's queue
    free = provider.free_capacity()
    assert list(free) == [("slurm", "slurm", "main", "slurm-2cpu-2xT4-3.9gib-cpu")]
    [cpu] = free.values()
    assert (cpu.cpus, cpu.gpus) == (4, 4)


def test_parsers_of_the_text_output() -> None:
    assert gres_gpus("gpu:a100:4(S:0-1),shard:2") == (4, "a100")
    assert gres_gpus("gpu:2") == (2, None) and gres_gpus("") == (0, None)
    assert expand_hostlist("n[1-3,07],gpu-a2") == ["n1", "n2", "n3", "n07", "gpu-a2"]
    assert expand_hostlist("n1") == ["n1"] and expand_hostlist("r[1-2]n[1-2]") is None
    line = (
        "NodeName=g1 CPUAlloc=3 CPUTot=8 Gres=gpu:h100:4 NodeAddr=10.0.0.7 "
        "RealMemory=64000 AllocMem=1000 State=MIXED+DRAIN Partitions=gpu,all "
        "AllocTRES=cpu=3,gres/gpu=1 Reason=bad disk [root@2026]"
    )
    assert key_values(line)["Reason"] == "bad disk [root@2026]"
    [n] = nodes_from_scontrol(line)
    assert (n.address, n.partitions, n.cpus, n.alloc_cpus, n.gpus, n.gpus_used) == (
        "10.0.0.7", ("gpu", "all"), 8, 3, 4, 1
    )  # fmt: skip
    assert n.gpu_type == "h100" and not n.usable


def test_a_gang_spans_two_nodes_with_the_node_environment(
    provider: SlurmProvider, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    alloc = provider.provision(_request(provider, "job-env", gpus=1))
    try:
        assert provider.provision(_request(provider, "job-env", gpus=1)) == alloc  # idempotent
        assert alloc.extra["slurm_nodes"] == ["n1", "n2"]
        assert [n.host for n in alloc.nodes] == ["127.0.0.1", "127.0.0.1"]
        squeue = subprocess.run(
            ["squeue", "-h", "-j", str(alloc.extra["slurm_job_id"]), "-o", "%j|%k|%b|%l"],
            env=slurm_cluster.env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        name = job_name("ic-test", "job-env")
        # name and comment carry the ids; --gres per node; --time = 60 s + 600 s margin
        assert (
            squeue
            == f"{name}|intercloud store=ic-test job=job-env request=job-env|gres:gpu:1|11:00"
        )
        ckpt = tmp_path / "ckpt"
        run = (
            'echo "$GREETING rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT '
            "node=$SLURMD_NODENAME job=$INTERCLOUD_JOB_ID ckpt=$INTERCLOUD_CHECKPOINT_DIR "
            'gpus=$INTERCLOUD_GPUS_PER_NODE secret=${SECRET_OF_DAEMON:-none}"; exit $((RANK + 3))'
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SECRET_OF_DAEMON", "leaked")
            for r in range(2):
                provider.start_node(alloc, _cmd("job-env", r, run, ckpt=str(ckpt)))
        with pytest.raises(NodeAlreadyRunning) as again:
            provider.start_node(alloc, _cmd("job-env", 0, run))
        assert again.value.handle is not None and again.value.handle.rank == 0
        events = _wait_events(provider, 2)
        assert [(e.kind, e.rank, e.exit_code) for e in events] == [
            (NodeEventKind.EXITED, 0, 3),
            (NodeEventKind.EXITED, 1, 4),
        ]
        port = alloc.extra["master_port"]
        for r in range(2):
            text = provider.log_path("job-env", 1, r).read_text()
            assert "setting-up" in text
            assert (
                f"hi there rank={r} world=2 master=127.0.0.1:{port} node=n{r + 1} job=job-env "
                f"ckpt={ckpt} gpus=1 secret=none"
            ) in text, text
            assert f"== exit {r + 3} ==" in text
        assert ckpt.is_dir()
    finally:
        provider.release(alloc.allocation_id)


def test_kill_adopt_and_release(
    provider: SlurmProvider, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    alloc = provider.provision(_request(provider, "job-kill"))
    try:
        run = "echo started; trap 'echo got-term; exit 7' TERM; sleep 60 & wait"
        h0 = provider.start_node(alloc, _cmd("job-kill", 0, run))
        h1 = provider.start_node(alloc, _cmd("job-kill", 1, "echo rank1; sleep 1; exit 5"))
        # a restarted loop: a new provider re-attaches by the handles alone
        fresh = SlurmProvider(_config(slurm_cluster, tmp_path))
        assert fresh.adopt(h0) and fresh.adopt(h1)
        [e1] = _wait_events(fresh, 1)
        assert (e1.rank, e1.kind, e1.exit_code) == (1, NodeEventKind.EXITED, 5)
        assert "rank1" in fresh.log_path("job-kill", 1, 1).read_text()
        time.sleep(0.5)
        fresh.kill(h0)
        [e0] = _wait_events(fresh, 1)
        assert (e0.rank, e0.kind, e0.exit_code) == (0, NodeEventKind.EXITED, 7)
        assert "got-term" in fresh.log_path("job-kill", 1, 0).read_text()
        fresh.kill(h0)  # idempotent
    finally:
        provider.release(alloc.allocation_id)
        provider.release(alloc.allocation_id)  # idempotent


def test_a_job_cancelled_outside_is_lost_with_slurms_verdict(
    provider: SlurmProvider, slurm_cluster: SlurmCluster
) -> None:
    alloc = provider.provision(_request(provider, "job-outside", nodes=1))
    try:
        handle = provider.start_node(alloc, _cmd("job-outside", 0, "sleep 60", nodes=1))
        subprocess.run(
            ["scancel", str(alloc.extra["slurm_job_id"])], env=slurm_cluster.env, check=True
        )
        [ev] = _wait_events(provider, 1)
        assert ev.kind is NodeEventKind.LOST and "cancelled" in ev.reason, ev
        # gone without an exit code: a restarted loop cannot adopt it
        assert not SlurmProvider(provider.config).adopt(handle)
    finally:
        provider.release(alloc.allocation_id)


def test_no_capacity_is_a_capacity_error_and_leaves_nothing(
    provider: SlurmProvider, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    # three nodes: the partition has two; Slurm leaves it pending for PartitionConfig
    big = ProvisionRequest(
        request_id="job-big", job_id="job-big", offering=_offering(provider), nodes=3
    )
    with pytest.raises(ProviderError, match="slurm cannot run 3 node"):
        provider.provision(big)
    with pytest.raises(ProviderError):  # more GPUs than a node has: sbatch refuses
        provider.provision(_request(provider, "job-gpus", nodes=1, gpus=3))
    # both nodes taken by a job from outside: a gang waits in Slurm's queue
    blocker = subprocess.run(
        ["sbatch", "--parsable", "--nodes=2", "--exclusive", f"--output={tmp_path}/b.out",
         "--wrap", "sleep 60"],
        env=slurm_cluster.env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        wait = _request(provider, "job-wait")
        with pytest.raises(CapacityError, match="queued as job"):
            provider.provision(wait)  # left in Slurm's queue: asked again, it is found
        time.sleep(3.2)
        with pytest.raises(CapacityError, match="not running within 3s"):
            provider.provision(wait)  # queued past provision_timeout_s: cancelled
    finally:
        subprocess.run(["scancel", blocker], env=slurm_cluster.env, check=True)
    left = provider.cli.jobs(name=job_name("ic-test", "job-wait")).values()
    assert all(j.state not in ("RUNNING", "PENDING") for j in left), left
    left = provider.cli.jobs(name=job_name("ic-test", "job-big")).values()
    assert all(j.state not in ("RUNNING", "PENDING") for j in left), left


def test_check_names_an_unknown_partition_and_an_unreachable_controller(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    ctx = ProviderContext(home=tmp_path, environ={})
    ok = PLUGIN.check(SlurmSettings(conf=str(slurm_cluster.conf)), ctx)
    assert ok.usable and ok.reachable, ok
    bad = PLUGIN.check(SlurmSettings(conf=str(slurm_cluster.conf), partitions=("gpux",)), ctx)
    assert bad.reason == "slurm partition 'gpux' does not exist (it has: main)"
    conf = tmp_path / "slurm.conf"  # the same cluster, a controller port nobody answers
    text = slurm_cluster.conf.read_text()
    conf.write_text(text.replace(f"SlurmctldPort={slurm_cluster.ctld_port}", "SlurmctldPort=1"))
    away = PLUGIN.check(SlurmSettings(conf=str(conf)), ctx)
    assert not away.reachable and away.reason is not None
    assert away.reason.startswith("cannot reach the slurm controller"), away.reason
