"""The ray provider against a real Ray cluster (``conftest.ray_cluster``): offerings,
provision/start/poll/kill/adopt/release, node loss, and its plugin's check."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from intercloud.model import Offering
from intercloud.providers.base import (
    Allocation,
    CapacityError,
    NodeAlreadyRunning,
    NodeAlreadyStarted,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    ProvisionRequest,
)
from intercloud.providers.ray_plugin import PLUGIN, RaySettings
from intercloud.providers.ray_provider import RayConfig, RayProvider, node_shape
from intercloud.providers.registry import ProviderContext


@pytest.fixture()
def provider(ray_cluster: Any, tmp_path: Path) -> Iterator[RayProvider]:
    p = RayProvider(
        RayConfig(
            address=ray_cluster.address,
            namespace="ic-test",
            log_root=tmp_path / "logs",
            work_root=str(tmp_path / "work"),
            provision_timeout_s=5,
            kill_grace_s=1,
        )
    )
    yield p
    p.close()


def _worker_offering(p: RayProvider) -> Offering:
    return next(o for o in p.offerings() if o.instance_type.startswith("ray-2cpu"))


def _request(p: RayProvider, rid: str, nodes: int = 2, cpus: float = 1.0) -> ProvisionRequest:
    return ProvisionRequest(
        request_id=rid, job_id=rid, offering=_worker_offering(p), nodes=nodes, cpus_per_node=cpus
    )


def _cmd(job: str, rank: int, run: str, nodes: int = 2, ckpt: str = "") -> NodeCommand:
    return NodeCommand(
        job_id=job, attempt=1, rank=rank, num_nodes=nodes, setup="echo setting-up",
        run=run, env={"GREETING": "hi"}, log_dir="", checkpoint_dir=ckpt,
    )  # fmt: skip


def _wait_events(p: RayProvider, count: int, timeout: float = 30) -> list[NodeEvent]:
    events: list[NodeEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events += p.poll()
        time.sleep(0.2)
    return sorted(events, key=lambda e: e.rank)


def _wait_for(cond: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_offerings_are_the_node_shapes_at_price_zero(provider: RayProvider) -> None:
    offerings = provider.offerings()
    # one worker's shape, two machines of it (the head has no CPUs: nothing runs there)
    assert [(o.instance_type, o.vcpus, o.memory_gib, o.machines) for o in offerings] == [
        ("ray-2cpu-2gib", 2.0, 2.0, 2)
    ]
    assert all(o.provider == "ray" and o.on_demand_price == 0.0 for o in offerings)
    worker = _worker_offering(provider)
    free = provider.free_capacity()[("ray", "ray", "", worker.instance_type)]
    assert free.cpus == pytest.approx(4.0) and free.machines == 2
    shape = node_shape({"CPU": 8, "GPU": 2, "accelerator_type:H100": 1, "memory": 64 * 1024**3})
    assert (shape.gpus, shape.accelerator, shape.memory_gib) == (2, "H100", 64.0)


def test_gang_runs_with_the_node_environment_and_exit_codes(
    provider: RayProvider, tmp_path: Path
) -> None:
    alloc = provider.provision(_request(provider, "job-env"))
    try:
        assert provider.provision(_request(provider, "job-env")) == alloc  # idempotent
        assert len(alloc.nodes) == 2 and all(n.host for n in alloc.nodes)
        ckpt = tmp_path / "ckpt"
        run = (
            'echo "$GREETING rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT '
            'job=$INTERCLOUD_JOB_ID ckpt=$INTERCLOUD_CHECKPOINT_DIR"; sleep 4; exit $((RANK + 3))'
        )
        for r in range(2):
            provider.start_node(alloc, _cmd("job-env", r, run, ckpt=str(ckpt)))
        with pytest.raises(NodeAlreadyRunning) as started:
            provider.start_node(alloc, _cmd("job-env", 0, run))
        assert started.value.handle is not None and started.value.handle.rank == 0
        events = _wait_events(provider, 2)
        assert [(e.kind, e.rank, e.exit_code) for e in events] == [
            (NodeEventKind.EXITED, 0, 3),
            (NodeEventKind.EXITED, 1, 4),
        ]
        for r in range(2):
            text = provider.log_path("job-env", 1, r).read_text()
            assert "setting-up" in text
            master = f"master={alloc.nodes[0].host}:{alloc.extra['master_port']}"
            assert f"hi rank={r} world=2 {master} job=job-env ckpt={ckpt}" in text
            assert f"== exit {r + 3} ==" in text
        assert ckpt.is_dir()
    finally:
        provider.release(alloc.allocation_id)


def test_too_big_a_gang_is_a_capacity_error(provider: RayProvider) -> None:
    with pytest.raises(CapacityError):
        provider.provision(_request(provider, "job-big", nodes=3))
    # nothing left behind: the same cluster still fits a 2-node gang
    provider.release(provider.provision(_request(provider, "job-fits")).allocation_id)


def test_kill_stops_the_process_group_and_reports_the_exit(
    provider: RayProvider, tmp_path: Path
) -> None:
    alloc = provider.provision(_request(provider, "job-kill", nodes=1))
    marker = tmp_path / "child-alive"
    try:
        run = f"(trap '' TERM; while true; do touch {marker}; sleep 0.1; done) & sleep 600"
        handle = provider.start_node(alloc, _cmd("job-kill", 0, run, nodes=1))
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists()
        provider.kill(handle)
        provider.kill(handle)  # idempotent
        [event] = _wait_events(provider, 1)
        assert event.kind is NodeEventKind.EXITED and event.exit_code in (143, 137)
        marker.unlink()
        time.sleep(0.5)
        assert not marker.exists(), "a child of the node outlived kill"
    finally:
        provider.release(alloc.allocation_id)


def test_a_new_provider_adopts_running_nodes(provider: RayProvider) -> None:
    alloc = provider.provision(_request(provider, "job-adopt", nodes=1))
    closers: list[Callable[[], None]] = []
    try:
        handle = provider.start_node(alloc, _cmd("job-adopt", 0, "sleep 1; exit 7", nodes=1))
        again = RayProvider(provider.config)  # a restarted control loop
        closers.append(again.close)
        assert again.provision(_request(provider, "job-adopt", nodes=1)) == alloc
        assert again.adopt(handle)
        [event] = _wait_events(again, 1)
        assert (event.kind, event.exit_code) == (NodeEventKind.EXITED, 7)
        with pytest.raises(NodeAlreadyStarted) as ran:  # ended, not running: never twice
            again.start_node(alloc, _cmd("job-adopt", 0, "true", nodes=1))
        assert not isinstance(ran.value, NodeAlreadyRunning)
        gone = _cmd("job-never", 0, "true", nodes=1)
        assert not again.adopt(type(handle)(gone.job_id, 1, 0, provider="ray", extra={}))
    finally:
        provider.release(alloc.allocation_id)
        for close in closers:
            close()


def test_a_dead_ray_node_reports_its_rank_lost_and_stops_it(
    ray_cluster: Any, provider: RayProvider, tmp_path: Path
) -> None:
    extra = ray_cluster.add_node(num_cpus=3, memory=2 * 1024**3)
    ray_cluster.wait_for_nodes()
    offering = next(o for o in provider.offerings() if o.vcpus == 3)  # the new node alone
    req = ProvisionRequest(
        request_id="job-lost", job_id="job-lost", offering=offering, nodes=1, cpus_per_node=3
    )
    alloc: Allocation = provider.provision(req)
    marker = tmp_path / "still-running"
    try:
        run = f"(while true; do touch {marker}; sleep 0.1; done) & sleep 600"
        provider.start_node(alloc, _cmd("job-lost", 0, run, nodes=1))
        _wait_for(marker.exists)
        ray_cluster.remove_node(extra)
        [event] = _wait_events(provider, 1, timeout=60)
        assert event.kind is NodeEventKind.LOST and event.rank == 0
        # its processes (in a session of their own) stop with its actor: never twice
        time.sleep(2)
        marker.unlink()
        time.sleep(1)
        assert not marker.exists(), "a rank outlived its lost ray node"
    finally:
        provider.release(alloc.allocation_id)


def test_check_reports_offerings_or_one_line_when_unreachable(
    ray_cluster: Any, tmp_path: Path
) -> None:
    ctx = ProviderContext(home=tmp_path, environ={})
    ok = PLUGIN.check(RaySettings(address=ray_cluster.address), ctx)
    assert ok.usable and ok.reachable and ok.offerings["ray"].count == 1
    bad = PLUGIN.check(RaySettings(address="127.0.0.1:1"), ctx)
    assert not bad.usable and bad.reachable is False
    assert bad.reason is not None and "127.0.0.1:1" in bad.reason and "\n" not in bad.reason
    with pytest.raises(ValueError, match="HOST:PORT"):
        RaySettings(address="nowhere")


def test_the_plugin_does_not_import_ray_until_used() -> None:
    code = (
        "import sys; from intercloud.providers.registry import load_plugin; "
        "load_plugin('ray'); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
