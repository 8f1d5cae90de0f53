"""The ``ray`` provider's Ray side: gangs as placement groups on an existing Ray cluster.

``RayCluster`` makes the Ray calls. It runs in a child process of the control loop
(``ray_bridge``), never in the loop itself: a Ray driver whose head dies hangs in its
calls and is then terminated by Ray (``Failed to connect to GCS ... The program will
terminate``), which must cost a child, not the daemon (``ray_provider.RayProvider``).

A lab's own cluster is reserved capacity: every offering costs 0 at the margin. The
offerings are the cluster's node shapes (CPUs, GPUs, memory, accelerator type), region
``settings.region``; ``free_capacity`` sums the available resources of the live nodes of
each shape.

A gang (one allocation, one attempt of one job) is one placement group named after the
request id, one bundle per node: STRICT_SPREAD for several nodes, STRICT_PACK for one.
Each rank is a detached actor (``ray_node.NodeRunner``) named after (namespace, job,
attempt, rank) in that rank's bundle, which runs the command in its own process group
with the local provider's environment (``node_env``; ``MASTER_ADDR`` is rank 0's node
IP). Names make everything findable after a control-loop restart: ``provision`` of a
known request id returns the existing group, ``start_node`` of a known rank raises
``NodeAlreadyRunning`` with its handle, ``adopt`` finds the actor by name.

``poll`` copies each node's new log bytes to ``agent_log_path(log_root, job, attempt,
rank)`` (where ``intercloud logs`` reads agent-run nodes) and reports EXITED with the
node's exit code, or LOST when its actor is gone (its Ray node died). ``kill`` stops the
node's process group (SIGTERM, SIGKILL after ``kill_grace_s``) and the actor; ``release``
removes the placement group (and whatever still runs in it).

``ray`` is imported on first use only, so configurations without this provider never
import it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intercloud.control.agent_logs import agent_log_path
from intercloud.model import Offering
from intercloud.providers.base import (
    Allocation,
    Capability,
    CapacityError,
    FreeCapacity,
    NodeAlreadyRunning,
    NodeAlreadyStarted,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    NodeHandle,
    NodeSlot,
    OfferingKey,
    Provider,
    ProviderError,
    ProvisionRequest,
)
from intercloud.providers.node_env import node_variables

log = logging.getLogger(__name__)

NAME = "ray"
GIB = 1024**3
PORT_BASE = 20000
PORT_SPAN = 12000
#: How long connecting waits for the cluster's port to answer.
CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class RayConfig:
    """What the provider needs (built from ``RaySettings`` by the plugin)."""

    address: str
    namespace: str = "intercloud"
    region: str = "ray"
    log_root: Path = Path("agent-logs")
    #: on the cluster's nodes: ``<work_root>/<job>/work/node-<r>`` and the default
    #: checkpoint folder ``<work_root>/<job>/checkpoints``
    work_root: str = "/tmp/intercloud-ray"
    provision_timeout_s: float = 30.0
    kill_grace_s: float = 5.0
    #: the cluster unreachable this long: its nodes are lost and stopped (a Ray node
    #: whose head is gone exits after Ray's GCS reconnect timeout, 60 s by default)
    lost_after_s: float = 90.0
    #: the longest one call into the cluster may take (beyond a provision's or a kill's
    #: own time) before the cluster counts as unreachable
    call_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class NodeShape:
    """The resources of one Ray node, as an offering sells them."""

    cpus: float
    gpus: int
    memory_gib: float
    accelerator: str | None

    @property
    def instance_type(self) -> str:
        gpu = f"-{self.gpus}x{self.accelerator or 'gpu'}" if self.gpus else ""
        return f"ray-{self.cpus:g}cpu{gpu}-{self.memory_gib:g}gib"


def node_shape(resources: Mapping[str, float]) -> NodeShape:
    """The shape of a node from its total resources (``ray.nodes()[i]["Resources"]``);
    the accelerator is the ``accelerator_type:NAME`` resource Ray sets on GPU nodes."""
    accel = next((k.split(":", 1)[1] for k in resources if k.startswith("accelerator_type:")), None)
    return NodeShape(
        cpus=float(resources.get("CPU", 0.0)),
        gpus=int(resources.get("GPU", 0)),
        memory_gib=round(float(resources.get("memory", 0.0)) / GIB, 1),
        accelerator=accel,
    )


#: a host name, IPv4 address or bracketed IPv6 address (no scheme, no spaces)
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


def host_port(address: str) -> tuple[str, int]:
    """Host and port of ``host:port`` or ``ray://host:port``; ValueError if neither."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if (
        not sep
        or not _HOST.match(host)
        or not (port.isascii() and port.isdigit())
        or not 0 < int(port) < 65536
    ):
        raise ValueError(f"expected HOST:PORT or ray://HOST:PORT, got {address!r}")
    return host, int(port)


def actor_name(namespace: str, job_id: str, attempt: int, rank: int) -> str:
    """The name of a rank's actor. Names carry the namespace: a process joins the cluster
    in one namespace (its first ``ray.init``), and two stores must never share names."""
    return f"{namespace}:{job_id}-a{attempt}-r{rank}"


def group_name(namespace: str, allocation_id: str) -> str:
    """The name of an allocation's placement group."""
    return f"{namespace}:{allocation_id}"


@dataclass(slots=True)
class _Tracked:
    handle: NodeHandle
    offset: int = 0
    ended: int | None = None  # exit code recorded by ``kill``


class RayCluster(Provider):
    """See the module docstring. Thread-safe; connects on first use."""

    name = NAME

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        self.capabilities = frozenset({Capability.MULTI_NODE, Capability.ADOPT})
        self._mutex = threading.RLock()
        self._tracked: dict[tuple[str, int, int], _Tracked] = {}
        self._ray: Any = None

    # -- connection ------------------------------------------------------------------
    def _connect(self) -> Any:
        with self._mutex:
            if self._ray is not None:
                return self._ray
            try:
                import ray
            except ImportError as exc:
                why = f"ray is not installed ({exc}); pip install 'intercloud[ray]'"
                raise ProviderError(why) from None
            # ray.init retries an unreachable cluster for minutes: ask its port first
            host, port = host_port(self.config.address)
            try:
                socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
            except OSError as exc:
                why = f"cannot reach ray at {self.config.address}: {exc.strerror or exc}"
                raise ProviderError(why) from None
            if ray.is_initialized():  # one connection per process: it must be this cluster
                current = str(ray.get_runtime_context().gcs_address)
                if not self.config.address.startswith("ray://") and not current.endswith(
                    f":{port}"
                ):
                    why = f"this process is connected to the ray cluster at {current}"
                    raise ProviderError(f"cannot use ray at {self.config.address}: {why}")
            else:
                try:
                    ray.init(
                        address=self.config.address,
                        namespace=self.config.namespace,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                    )
                except Exception as exc:  # whatever ray raises for a cluster it cannot reach
                    why = f"cannot connect to ray at {self.config.address}: {exc}"
                    raise ProviderError(why) from None
            self._ray = ray
            return ray

    def _alive_nodes(self) -> list[dict[str, Any]]:
        ray = self._connect()
        return [n for n in ray.nodes() if n.get("Alive")]

    # -- offerings -------------------------------------------------------------------
    def offerings(self) -> list[Offering]:
        """One offering per node shape (nodes without CPUs left out): one node's CPUs,
        GPUs and memory, ``machines`` the live nodes of that shape (the scheduler puts
        each rank of a gang on its own node, as the placement group does); price 0
        (the lab's own cluster)."""
        by_shape: dict[NodeShape, int] = {}
        for n in self._alive_nodes():
            shape = node_shape(n["Resources"])
            if shape.cpus > 0:
                by_shape[shape] = by_shape.get(shape, 0) + 1
        shapes = sorted(by_shape.items(), key=lambda kv: kv[0].instance_type)
        return [self._offering(s, count) for s, count in shapes]

    def _offering(self, shape: NodeShape, nodes: int) -> Offering:
        return Offering(
            provider=NAME,
            region=self.config.region,
            zone="",
            instance_type=shape.instance_type,
            accelerator=(shape.accelerator or "GPU") if shape.gpus else None,
            accelerator_count=shape.gpus,
            vcpus=shape.cpus,
            memory_gib=shape.memory_gib,
            on_demand_price=0.0,
            machines=nodes,
        )

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """Available resources of the live nodes, summed per shape, and how many of
        them are wholly free (nothing of theirs in use)."""
        self._connect()
        from ray._private import state

        per_node: Callable[[], dict[str, dict[str, float]]]
        per_node = getattr(state, "available_resources_per_node")  # noqa: B009 (untyped)
        free = per_node()
        out: dict[OfferingKey, FreeCapacity] = {}
        for n in self._alive_nodes():
            shape = node_shape(n["Resources"])
            if shape.cpus <= 0:
                continue  # not sold (offerings)
            key = (NAME, self.config.region, "", shape.instance_type)
            avail = free.get(n["NodeID"], {})
            cpus, gpus = float(avail.get("CPU", 0.0)), int(avail.get("GPU", 0))
            whole = cpus + 1e-6 >= shape.cpus and gpus >= shape.gpus
            prev = out.get(key, FreeCapacity(0.0, 0, 0.0, 0))
            out[key] = FreeCapacity(
                prev.cpus + cpus,
                prev.gpus + gpus,
                prev.memory_gib + float(avail.get("memory", 0.0)) / GIB,
                (prev.machines or 0) + int(whole),
            )
        return out

    # -- allocations -----------------------------------------------------------------
    def provision(self, request: ProvisionRequest) -> Allocation:
        """The placement group ``request_id`` (created, or found by name), once all its
        bundles are placed; ``CapacityError`` (and no group left behind) if that does
        not happen within ``provision_timeout_s``."""
        if request.nodes < 1:
            raise ValueError("a provision request needs at least one node")
        ray = self._connect()
        from ray.util import get_placement_group, placement_group, remove_placement_group

        try:
            pg = get_placement_group(self._group(request.request_id))
        except ValueError:
            bundle: dict[str, float] = {"CPU": request.cpus_per_node}
            if request.accelerators_per_node:
                bundle["GPU"] = request.accelerators_per_node
            if request.memory_gib_per_node:
                bundle["memory"] = request.memory_gib_per_node * GIB
            pg = placement_group(
                [dict(bundle) for _ in range(request.nodes)],
                strategy="STRICT_SPREAD" if request.nodes > 1 else "STRICT_PACK",
                name=self._group(request.request_id),
                lifetime="detached",
            )
        ready, _ = ray.wait([pg.ready()], timeout=self.config.provision_timeout_s)
        if not ready:
            remove_placement_group(pg)
            raise CapacityError(
                f"ray: {request.nodes} node(s) of {request.cpus_per_node:g} CPU, "
                f"{request.accelerators_per_node} GPU not placed within "
                f"{self.config.provision_timeout_s:g}s"
            )
        hosts = self._bundle_hosts(pg)
        return Allocation(
            allocation_id=request.request_id,
            provider=NAME,
            region=self.config.region,
            zone="",
            instance_type=request.offering.instance_type,
            nodes=tuple(NodeSlot(rank=r, host=h) for r, h in enumerate(hosts)),
            extra={
                "placement_group": self._group(request.request_id),
                "job_id": request.job_id,
                "cpus_per_node": request.cpus_per_node,
                "gpus_per_node": request.accelerators_per_node,
                "master_port": PORT_BASE + zlib.crc32(request.request_id.encode()) % PORT_SPAN,
            },
        )

    def _bundle_hosts(self, pg: Any) -> list[str]:
        from ray.util import placement_group_table

        table = placement_group_table(pg)
        ips = {n["NodeID"]: n["NodeManagerAddress"] for n in self._alive_nodes()}
        by_bundle = table.get("bundles_to_node_id", {})
        return [ips.get(by_bundle.get(i, ""), "") for i in range(len(table["bundles"]))]

    def release(self, allocation_id: str) -> None:
        """Remove the placement group (stopping what still runs in it). Idempotent."""
        self._connect()
        from ray.util import get_placement_group, remove_placement_group

        with contextlib.suppress(ValueError):  # already gone
            remove_placement_group(get_placement_group(self._group(allocation_id)))

    # -- nodes -----------------------------------------------------------------------
    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        """Start rank ``command.rank`` in its bundle; ``NodeAlreadyRunning`` (with its
        handle) if an actor of this (job, attempt, rank) exists."""
        ray = self._connect()
        from ray.util import get_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from intercloud.providers.ray_node import NodeRunner

        key = (command.job_id, command.attempt, command.rank)
        handle = self._handle(*key)
        existing = self._actor(handle)
        if existing is not None:
            try:
                ended = ray.get(existing.exit_code.remote(), timeout=10) is not None
            except Exception:  # dying with its node: poll reports it
                ended = False
            if ended:
                raise NodeAlreadyStarted(f"node {'/'.join(map(str, key))} already ran", handle)
            raise NodeAlreadyRunning(f"node {'/'.join(map(str, key))} is running", handle)
        slot = next((n for n in allocation.nodes if n.rank == command.rank), None)
        if slot is None:
            raise ProviderError(f"allocation {allocation.allocation_id} has no rank {command.rank}")
        try:
            pg = get_placement_group(self._group(allocation.allocation_id))
        except ValueError:
            raise ProviderError(f"placement group {allocation.allocation_id} is gone") from None
        cpus = float(allocation.extra.get("cpus_per_node", 1.0))
        gpus = int(allocation.extra.get("gpus_per_node", 0))
        job_root = f"{self.config.work_root}/{self.config.namespace}/{command.job_id}"
        ckpt = command.checkpoint_dir or f"{job_root}/checkpoints"
        env = dict(command.env)
        env.update(
            node_variables(
                job_id=command.job_id,
                attempt=command.attempt,
                rank=command.rank,
                num_nodes=command.num_nodes,
                hosts=[n.host for n in allocation.nodes],
                accelerator_ids=[],
                checkpoint_dir=ckpt,
                provider=NAME,
                region=allocation.region,
                master_addr=allocation.nodes[0].host,
                master_port=int(allocation.extra.get("master_port", PORT_BASE)),
            )
        )
        if gpus:
            env.pop("CUDA_VISIBLE_DEVICES")  # the actor's own GPUs, as Ray set them
            env["INTERCLOUD_GPUS_PER_NODE"] = str(gpus)
        actor = (
            ray.remote(NodeRunner)
            .options(
                name=self._actor_name(*key),
                lifetime="detached",
                num_cpus=cpus,
                num_gpus=gpus,
                max_concurrency=4,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    pg, placement_group_bundle_index=command.rank
                ),
            )
            .remote()
        )
        workdir = f"{job_root}/work/node-{command.rank}"
        try:
            pid = ray.get(
                actor.start.remote(command.setup, command.run, env, workdir),
                timeout=self.config.provision_timeout_s,
            )
        except Exception as exc:
            ray.kill(actor)
            raise ProviderError(f"node {'/'.join(map(str, key))} did not start: {exc}") from None
        handle = NodeHandle(
            *key, provider=NAME, extra={"actor": self._actor_name(*key), "pid": pid}
        )
        with self._mutex:
            self._tracked[key] = _Tracked(handle)
        return handle

    def _group(self, allocation_id: str) -> str:
        return group_name(self.config.namespace, allocation_id)

    def _actor_name(self, job_id: str, attempt: int, rank: int) -> str:
        return actor_name(self.config.namespace, job_id, attempt, rank)

    def _handle(self, job_id: str, attempt: int, rank: int) -> NodeHandle:
        name = self._actor_name(job_id, attempt, rank)
        return NodeHandle(job_id, attempt, rank, provider=NAME, extra={"actor": name})

    def _actor(self, handle: NodeHandle) -> Any:
        ray = self._connect()
        try:
            return ray.get_actor(self._actor_name(handle.job_id, handle.attempt, handle.rank))
        except ValueError:
            return None

    def adopt(self, handle: NodeHandle) -> bool:
        """Track the node's actor again; False if it is gone (the node is lost). Its log
        is copied on from what this machine already has of it."""
        if self._actor(handle) is None:
            return False
        key = (handle.job_id, handle.attempt, handle.rank)
        path = self.log_path(handle.job_id, handle.attempt, handle.rank)
        offset = path.stat().st_size if path.exists() else 0
        with self._mutex:
            self._tracked.setdefault(key, _Tracked(handle, offset))
        return True

    def kill(self, handle: NodeHandle) -> None:
        """Stop the node's process group and its actor; the next ``poll`` reports the
        exit. Idempotent."""
        ray = self._connect()
        key = (handle.job_id, handle.attempt, handle.rank)
        actor = self._actor(handle)
        if actor is None:
            return
        tracked = self._tracked.get(key)
        code: int | None = None
        try:
            code = ray.get(
                actor.terminate.remote(self.config.kill_grace_s),
                timeout=self.config.kill_grace_s + 15,
            )
            if tracked is not None:
                self._pull_log(actor, tracked)
        except Exception as exc:  # the actor died meanwhile: nothing left to stop
            log.debug("ray: terminate %s: %s", key, exc)
        ray.kill(actor)
        if tracked is not None:
            tracked.ended = 137 if code is None else code

    def poll(self) -> list[NodeEvent]:
        """EXITED for nodes whose command ended, LOST for nodes whose actor is gone;
        ``ProviderError`` while the cluster cannot be reached."""
        with self._mutex:
            items = list(self._tracked.items())
        if not items:
            return []
        ray = self._connect()
        events: list[NodeEvent] = []
        for key, t in items:
            job, attempt, rank = key
            if t.ended is not None:
                events.append(NodeEvent(NodeEventKind.EXITED, job, attempt, rank, t.ended,
                                        ended_at=time.time()))  # fmt: skip
                self._untrack(key)
                continue
            actor = self._actor(t.handle)
            try:
                if actor is None:
                    raise ProviderError("actor gone")
                self._pull_log(actor, t)
                code = ray.get(actor.exit_code.remote(), timeout=10)
            except Exception as exc:  # RayActorError: its node died
                events.append(NodeEvent(NodeEventKind.LOST, job, attempt, rank,
                                        reason=f"ray node lost: {type(exc).__name__}",
                                        ended_at=time.time(), capacity_lost=True))  # fmt: skip
                self._untrack(key)
                continue
            if code is not None:
                self._pull_log(actor, t)
                events.append(NodeEvent(NodeEventKind.EXITED, job, attempt, rank, code,
                                        ended_at=time.time()))  # fmt: skip
                self._untrack(key)
        return events

    def _untrack(self, key: tuple[str, int, int]) -> None:
        with self._mutex:
            self._tracked.pop(key, None)

    def _pull_log(self, actor: Any, t: _Tracked) -> None:
        ray = self._connect()
        h = t.handle
        path = agent_log_path(self.config.log_root, h.job_id, h.attempt, h.rank)
        while True:
            chunk: bytes = ray.get(actor.read.remote(t.offset), timeout=10)
            if not chunk:
                return
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(path, "ab") as f:
                f.write(chunk)
            t.offset += len(chunk)

    def log_path(self, job_id: str, attempt: int, rank: int) -> Path:
        """Where ``poll`` copies the node's output on this machine."""
        return agent_log_path(self.config.log_root, job_id, attempt, rank)


__all__ = [
    "NAME",
    "NodeShape",
    "RayCluster",
    "RayConfig",
    "actor_name",
    "group_name",
    "host_port",
    "node_shape",
]
