"""The ``ray`` provider: gangs as placement groups on an existing Ray cluster.

A lab's own cluster is reserved capacity: every offering costs 0 at the margin. What
runs where, and how, is ``ray_cluster.RayCluster``'s (offerings from the node shapes,
one placement group per gang with one bundle per node, one named detached actor per
rank); ``RayProvider`` is the control loop's side of it and makes every Ray call
through a child process (``ray_bridge``), so that a cluster that fails mid-run, or a
head that dies, is a ``ProviderError``, never a hung or ended daemon.

While the cluster does not answer (``ClusterUnreachable``):

- ``offerings`` raise (the loop keeps the last answer) and ``free_capacity`` is zero
  for the shapes last seen: nothing new is placed there;
- ``poll`` reports nothing until the cluster has been unreachable for
  ``lost_after_s``; then every tracked node is LOST ("ray cluster ... unreachable
  since ..."), and ``kill`` of such a node returns: a Ray node stops the ranks it runs
  once its head has been gone for Ray's GCS reconnect timeout (``ray_node``'s watchdog
  stops a rank's processes with its actor), so the job may resume elsewhere without
  running twice;
- a new child (the old one died with the head, or was stopped) is handed the nodes
  the old one tracked again (``adopt``); those that are gone are reported LOST.

``ray`` is imported in the child only, so configurations without this provider never
import it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from intercloud.control.agent_logs import agent_log_path
from intercloud.model import Offering
from intercloud.providers.base import (
    Allocation,
    Capability,
    FreeCapacity,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    NodeHandle,
    OfferingKey,
    Provider,
    ProviderError,
    ProvisionRequest,
)
from intercloud.providers.ray_bridge import ClusterUnreachable, RayBridge
from intercloud.providers.ray_cluster import (
    NAME,
    NodeShape,
    RayConfig,
    actor_name,
    group_name,
    host_port,
    node_shape,
)

log = logging.getLogger(__name__)

NodeKey = tuple[str, int, int]


class RayProvider(Provider):
    """See the module docstring. Thread-safe; connects on first use."""

    name = NAME

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        self.capabilities = frozenset({Capability.MULTI_NODE, Capability.ADOPT})
        self._bridge = RayBridge(config)
        self._mutex = threading.RLock()
        #: the nodes the child tracks for us (handed again to a new child)
        self._handles: dict[NodeKey, NodeHandle] = {}
        #: nodes a new child could not adopt: reported LOST by the next ``poll``
        self._gone: dict[NodeKey, str] = {}
        self._generation = 0
        self._unreachable_since: float | None = None
        self._unreachable_why: str | None = None
        self._last_keys: set[OfferingKey] = set()

    # -- calls into the cluster ------------------------------------------------------------
    def _call(self, method: str, *args: object, timeout_s: float | None = None) -> object:
        try:
            out = self._bridge.call(method, *args, timeout_s=timeout_s)
        except ClusterUnreachable as exc:
            with self._mutex:
                if self._unreachable_since is None:
                    self._unreachable_since = time.time()
                    log.warning("ray: %s", exc)
                self._unreachable_why = " ".join(str(exc).split())
            raise
        with self._mutex:
            if self._unreachable_since is not None:
                log.info("ray at %s answers again", self.config.address)
            self._unreachable_since = None
            self._unreachable_why = None
        if self._bridge.generation != self._generation:
            self._readopt()
        return out

    def _readopt(self) -> None:
        """Hand a new child the nodes the previous one tracked (again on the next call
        if the cluster stops answering meanwhile)."""
        generation = self._bridge.generation
        with self._mutex:
            handles = dict(self._handles)
        try:
            for key, handle in handles.items():
                if not self._bridge.call("adopt", handle):
                    with self._mutex:
                        self._handles.pop(key, None)
                        self._gone[key] = "ray node lost: its actor is gone"
        except ProviderError as exc:
            log.warning("ray: handing the nodes to a new connection: %s", exc)
            return
        self._generation = generation

    def _track(self, handle: NodeHandle) -> None:
        with self._mutex:
            self._handles[(handle.job_id, handle.attempt, handle.rank)] = handle

    def unreachable(self) -> str | None:
        """Why the cluster did not answer the last call (None: it did)."""
        return self._unreachable_why

    def unreachable_for(self) -> float:
        """Seconds the cluster has not answered (0 while it does)."""
        since = self._unreachable_since
        return 0.0 if since is None else max(0.0, time.time() - since)

    def _fenced(self) -> bool:
        return self._unreachable_since is not None and (
            self.unreachable_for() >= self.config.lost_after_s
        )

    # -- offerings ---------------------------------------------------------------------
    def offerings(self) -> list[Offering]:
        """One offering per node shape (``RayCluster.offerings``)."""
        got = self._call("offerings")
        assert isinstance(got, list)
        return got

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """Available resources of the live nodes, summed per shape; none at all (for
        the shapes last seen) while the cluster does not answer."""
        try:
            got = self._call("free_capacity")
        except Exception as exc:  # a ProviderError, or a child that answered nonsense
            log.debug("free capacity of ray: %s", exc)
            return dict.fromkeys(self._last_keys, FreeCapacity(0.0, 0, 0.0, 0))
        assert isinstance(got, dict)
        self._last_keys = set(got)
        return got

    # -- allocations -------------------------------------------------------------------
    def provision(self, request: ProvisionRequest) -> Allocation:
        """The placement group of ``request`` (``RayCluster.provision``)."""
        wait = self.config.provision_timeout_s + self.config.call_timeout_s
        got = self._call("provision", request, timeout_s=wait)
        assert isinstance(got, Allocation)
        return got

    def release(self, allocation_id: str) -> None:
        """Remove the placement group. Idempotent; once the cluster has been unreachable
        for ``lost_after_s`` there is nothing left to remove."""
        try:
            self._call("release", allocation_id)
        except ClusterUnreachable:
            if not self._fenced():
                raise

    # -- nodes ---------------------------------------------------------------------------
    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        """Start one rank (``RayCluster.start_node``)."""
        wait = self.config.provision_timeout_s + self.config.call_timeout_s
        got = self._call("start_node", allocation, command, timeout_s=wait)
        assert isinstance(got, NodeHandle)
        self._track(got)
        return got

    def adopt(self, handle: NodeHandle) -> bool:
        """Track the node's actor again; False if it is gone."""
        found = bool(self._call("adopt", handle))
        if found:
            self._track(handle)
        return found

    def kill(self, handle: NodeHandle) -> None:
        """Stop the node (``RayCluster.kill``). While the cluster does not answer this
        raises, until it has not answered for ``lost_after_s``: by then the node has
        stopped by itself (module docstring)."""
        try:
            self._call("kill", handle, timeout_s=self.config.kill_grace_s + 30)
        except ClusterUnreachable:
            if not self._fenced():
                raise
            with self._mutex:
                self._handles.pop((handle.job_id, handle.attempt, handle.rank), None)

    def poll(self) -> list[NodeEvent]:
        """Ended and lost nodes (``RayCluster.poll``); every tracked node LOST once the
        cluster has been unreachable for ``lost_after_s``."""
        with self._mutex:
            if not self._handles and not self._gone:
                return []
        events: list[NodeEvent] = []
        try:
            got = self._call("poll")
            assert isinstance(got, list)
            events = got
        except ClusterUnreachable:
            if not self._fenced():
                raise
            since = datetime.fromtimestamp(self._unreachable_since or time.time(), UTC)
            why = (
                f"ray node lost: the cluster at {self.config.address} has not answered "
                f"since {since:%Y-%m-%d %H:%M:%S} UTC"
            )
            with self._mutex:
                for key in self._handles:
                    self._gone.setdefault(key, why)
                self._handles.clear()
        now = time.time()
        with self._mutex:
            for ev in events:
                self._handles.pop((ev.job_id, ev.attempt, ev.rank), None)
            for (job, attempt, rank), why in self._gone.items():
                lost = NodeEvent(NodeEventKind.LOST, job, attempt, rank, reason=why, ended_at=now,
                                 capacity_lost=True)  # fmt: skip
                events.append(lost)
            self._gone.clear()
        return events

    def log_path(self, job_id: str, attempt: int, rank: int) -> Path:
        """Where ``poll`` copies the node's output on this machine."""
        return agent_log_path(self.config.log_root, job_id, attempt, rank)

    def close(self) -> None:
        """Stop the child process (what runs on the cluster goes on)."""
        self._bridge.close()


__all__ = [
    "NAME",
    "NodeShape",
    "RayConfig",
    "RayProvider",
    "actor_name",
    "group_name",
    "host_port",
    "node_shape",
]
