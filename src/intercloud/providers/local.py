"""The local provider: gangs of real processes on this machine.

Capacity is declared by configuration (``LocalConfig``: CPU slots, memory, optionally
emulated GPUs, optionally several sites posing as other providers and regions). Each node
of a gang is a process group supervised by ``local_shim.py``, which lives in its own
session so nodes survive the death of the control loop.

Files under ``config.root`` (folders 0700, files 0600, whatever the umask: node
environments and output are private). The daemon and the SDK use
``$INTERCLOUD_HOME/local/<store-id>`` as the root (``store_config``): each database gets
its own files, and ``abandon_other_stores`` reconciles those of a database that is gone::

    store.json                            the store id and database this root belongs to

    allocations/<allocation_id>.json      the reservation ledger (+ .lock, a flock)
    jobs/<job_id>/attempt-<n>/node-<r>/   control files of one node of one attempt:
        node.lock   flock held by the shim (and inherited by the node's processes)
        spec.json   what the shim runs (written before it starts)
        ready       created once the shim handles SIGTERM (``kill`` waits for it)
        pid         "<pid> <start_time>" of the shim
        exit_code   written atomically as the shim's last act
        shim.err    the shim's own stderr (empty unless the shim itself failed)
    jobs/<job_id>/logs/node-<r>.log       stdout+stderr of every attempt of node r, with
                                          "== ... setup/run/exit N ==" marker lines
    jobs/<job_id>/checkpoints/            INTERCLOUD_CHECKPOINT_DIR, kept across attempts
    jobs/<job_id>/work/node-<r>/          working directory of node r

Invariants the control loop can rely on:

- a node directory (job, attempt, rank) is used by at most one run, ever: ``start_node``
  takes the node lock *before* spawning the shim and hands the locked descriptor over, and
  refuses a node that has already been started (``NodeAlreadyRunning`` while it is alive,
  ``NodeAlreadyStarted`` once it has ended). Both errors carry the existing run's handle
  so a restarted loop can ``adopt`` it instead;
- a process is identified by pid *and* start time (/proc stat field 22, clock ticks
  since boot); a process whose start time differs is never signalled;
- a node that vanished without an exit code is reported LOST only after whatever is left
  of it has been killed, so a new attempt never overlaps the old one;
- nothing escapes a node: its shim is a child subreaper that kills every descendant when
  the node ends, and every process of the node carries ``INTERCLOUD_NODE_MARKER`` (its
  node directory), by which ``kill``/``adopt``/``poll`` find the orphans of a dead shim.

Environment of every node (one process per node, torchrun ``env://`` compatible):
``INTERCLOUD_JOB_ID``, ``INTERCLOUD_ATTEMPT``, ``INTERCLOUD_NODE_RANK``,
``INTERCLOUD_NUM_NODES``, ``INTERCLOUD_GPUS_PER_NODE``, ``INTERCLOUD_NODE_IPS`` (one per
line), ``INTERCLOUD_CHECKPOINT_DIR``, ``INTERCLOUD_PROVIDER``, ``INTERCLOUD_REGION``,
``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``, ``WORLD_SIZE=num_nodes``, ``RANK=rank``,
``NODE_RANK=rank``, ``LOCAL_RANK=0``, ``LOCAL_WORLD_SIZE=1`` and ``CUDA_VISIBLE_DEVICES``
(the node's emulated GPU ids, "" when none). ``WORLD_SIZE``/``RANK`` count node processes;
a node that runs ``torchrun --nproc_per_node $INTERCLOUD_GPUS_PER_NODE`` gets per-GPU
values from torchrun itself. These variables override the same names in the command's
``env``, which overrides the base (``providers.node_env``: ``PATH``, ``HOME``, ``LANG``,
... of this process, with intercloud's ``bin`` folder first on ``PATH``). Nothing else of
this process's environment reaches a node.

Files (``Capability.FILE_SYNC``): before ``setup`` the shim copies the command's
``workdir`` into ``work/node-<r>/`` and each file mount to its DEST (absolute, under the
node's ``HOME`` for ``~/``, else under ``work/node-<r>/``), on every attempt; each file is
replaced atomically, so nodes sharing a DEST on this machine never see a partial file.
Sources must be local paths; symlinks inside a folder are copied as symlinks, devices,
FIFOs and sockets are skipped with a line in the log.

``MASTER_PORT`` is chosen once per allocation (one allocation per job attempt) at
``provision`` time: starting at a point derived from the allocation id in [20000, 32000)
(below Linux's ephemeral range), the first port not used by another live allocation of
this root and bindable on 127.0.0.1. It is stored in the allocation, so every rank sees
the same port even after rank 0 has bound it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import psutil

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
from intercloud.providers.local_config import LocalConfig, LocalSite
from intercloud.providers.local_shim import (
    NODE_MARKER_ENV,
    node_processes,
    private_mkdir,
    proc_start_time,
    signal_if,
    write_atomic,
)
from intercloud.providers.node_env import base_env, node_variables

__all__ = [
    "LocalConfig",
    "LocalProvider",
    "LocalSite",
    "NodeAlreadyRunning",
    "NodeAlreadyStarted",
    "SiteUsage",
    "UnknownOffering",
    "process_start_time",
]

SHIM = Path(__file__).with_name("local_shim.py")
PORT_BASE = 20000
PORT_SPAN = 12000
HOST = "127.0.0.1"


class UnknownOffering(ProviderError):
    """The offering names no site of this provider."""


@dataclass(frozen=True, slots=True)
class SiteUsage:
    """Reserved and free slots of one site (all allocations under the same root)."""

    site: str
    cpus_free: float
    memory_gib_free: float
    gpus_free: int
    allocations: int


def process_start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) process, or None if there is none with ``pid``.

    Linux: /proc stat field 22 (clock ticks since boot, exact). Elsewhere: psutil's
    create time in hundredths of a second.
    """
    if os.path.isdir("/proc"):
        return proc_start_time(pid)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(float(proc.create_time()) * 100)
    except psutil.Error:
        return None


def _safe(name: str) -> str:
    """A file-name-safe, injective spelling of an id."""
    text = quote(name, safe="-_.+=@")
    return text.replace(".", "%2E") if text in ("", ".", "..") else text


@dataclass(slots=True)
class _Tracked:
    handle: NodeHandle
    node_dir: Path
    popen: subprocess.Popen[bytes] | None = None


def pid_of(handle: NodeHandle) -> int:
    """The pid of a local node's supervisor (kept in the handle's ``extra``)."""
    return int(handle.extra.get("pid") or 0)


def start_time_of(handle: NodeHandle) -> int:
    """Its process start time (ticks since boot): with the pid, its identity."""
    return int(handle.extra.get("start_time") or 0)


def _is_running(handle: NodeHandle) -> bool:
    """The handle's supervisor process still runs (same pid and start time)."""
    start = start_time_of(handle)
    return start != 0 and process_start_time(pid_of(handle)) == start


class LocalProvider(Provider):
    """Runs gangs as process groups on this machine; see the module docstring.

    Thread-safe. Several instances (also in several processes) may share one root: the
    ledger is guarded by a file lock and re-read on every change, so slots are never
    oversubscribed; each instance reports events only for nodes it started or adopted.
    """

    def __init__(self, config: LocalConfig) -> None:
        # Absolute, whatever the cwd: the shim runs in its node directory, and a node's
        # marker (its node directory) must name this root only, never a same-named
        # relative path of another process's cwd.
        self.root = Path(config.root).absolute()
        self.config = replace(config, root=self.root)
        self.sites: dict[str, LocalSite] = {s.key: s for s in config.sites}
        names = {s.provider for s in config.sites}
        self.name = names.pop() if len(names) == 1 else "local"
        caps = {Capability.MULTI_NODE, Capability.ADOPT, Capability.FILE_SYNC}
        if any(s.gpu_slots for s in config.sites):
            caps.add(Capability.GPUS)
        self.capabilities = frozenset(caps)
        self._alloc_dir = self.root / "allocations"
        private_mkdir(str(self._alloc_dir))
        private_mkdir(str(self.root / "jobs"))
        self._mutex = threading.RLock()
        self._tracked: dict[tuple[str, int, int], _Tracked] = {}

    # -- paths -------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / _safe(job_id)

    def node_dir(self, job_id: str, attempt: int, rank: int) -> Path:
        return self.job_dir(job_id) / f"attempt-{attempt}" / f"node-{rank}"

    def log_path(self, job_id: str, rank: int) -> Path:
        """The default log of node ``rank`` (all attempts appended, stdout and stderr)."""
        return self.job_dir(job_id) / "logs" / f"node-{rank}.log"

    def checkpoint_dir(self, job_id: str) -> Path:
        """``INTERCLOUD_CHECKPOINT_DIR`` unless the command names one: same every attempt."""
        return self.job_dir(job_id) / "checkpoints"

    # -- offerings and the allocation ledger -------------------------------------------
    def offerings(self) -> list[Offering]:
        """One offering per site: the whole site as one instance type."""
        return [
            Offering(
                provider=s.provider,
                region=s.region,
                zone=s.zone,
                instance_type=s.instance_type,
                accelerator=s.gpu_type if s.gpu_slots else None,
                accelerator_count=s.gpu_slots,
                vcpus=s.cpu_slots,
                memory_gib=s.memory_gib,
                on_demand_price=s.on_demand_price,
                spot_price=s.spot_price,
            )
            for s in self.sites.values()
        ]

    def provision(self, request: ProvisionRequest) -> Allocation:
        """Reserve slots for ``request.nodes`` nodes on the offering's site.

        Idempotent by ``request_id`` (an existing allocation is returned unchanged, even
        after a restart). Raises ``UnknownOffering`` if no site matches the offering and
        ``CapacityError`` if the site has too few free CPU, memory or GPU slots. Nodes of
        one allocation get disjoint GPU ids, disjoint from every other live allocation.
        """
        site = self._site_for(request.offering)
        if request.nodes < 1:
            raise ValueError("a provision request needs at least one node")
        with self._ledger_locked():
            ledger = self._load_ledger()
            existing = ledger.get(request.request_id)
            if existing is not None:
                return existing
            cpus = request.cpus_per_node * request.nodes
            memory = request.memory_gib_per_node * request.nodes
            gpus = request.accelerators_per_node * request.nodes
            usage = self._usage(site, ledger)
            short = []
            if cpus > usage.cpus_free + 1e-9:
                short.append(f"{cpus:g} CPUs (free {usage.cpus_free:g})")
            if memory > usage.memory_gib_free + 1e-9:
                short.append(f"{memory:g} GiB (free {usage.memory_gib_free:g})")
            if gpus > usage.gpus_free:
                short.append(f"{gpus} GPUs (free {usage.gpus_free})")
            if short:
                raise CapacityError(f"local site {site.key}: not enough " + ", ".join(short))
            used_gpus = {
                g
                for a in ledger.values()
                if a.extra.get("site") == site.key
                for n in a.nodes
                for g in n.accelerator_ids
            }
            free_gpus = [g for g in range(site.gpu_slots) if g not in used_gpus]
            per = request.accelerators_per_node
            nodes = tuple(
                NodeSlot(
                    rank=r, host=HOST, accelerator_ids=tuple(free_gpus[r * per : (r + 1) * per])
                )
                for r in range(request.nodes)
            )
            allocation = Allocation(
                allocation_id=request.request_id,
                provider=site.provider,
                region=site.region,
                zone=site.zone,
                instance_type=site.instance_type,
                nodes=nodes,
                extra={
                    "site": site.key,
                    "job_id": request.job_id,
                    "cpus": cpus,
                    "memory_gib": memory,
                    "master_port": self._pick_port(request.request_id, ledger),
                    "created": time.time(),
                },
            )
            write_atomic(str(self._alloc_path(allocation.allocation_id)), _dump(allocation))
            return allocation

    def release(self, allocation_id: str) -> None:
        """Free the allocation's slots. Idempotent.

        Does not stop nodes: the caller kills the allocation's nodes first.
        """
        with self._ledger_locked():
            self._alloc_path(allocation_id).unlink(missing_ok=True)

    def allocations(self) -> list[Allocation]:
        """Every live allocation under this root (for reconciliation after a restart)."""
        with self._ledger_locked():
            return list(self._load_ledger().values())

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """Free slots of every site, keyed like its offering."""
        out: dict[OfferingKey, FreeCapacity] = {}
        for u in self.usage():
            s = self.sites[u.site]
            key = (s.provider, s.region, s.zone, s.instance_type)
            out[key] = FreeCapacity(u.cpus_free, u.gpus_free, u.memory_gib_free)
        return out

    def usage(self) -> list[SiteUsage]:
        """Free slots per site of this provider."""
        with self._ledger_locked():
            ledger = self._load_ledger()
        return [self._usage(site, ledger) for site in self.sites.values()]

    def _site_for(self, offering: Offering) -> LocalSite:
        site = self.sites.get(f"{offering.provider}/{offering.region}/{offering.zone}")
        if site is None or site.instance_type != offering.instance_type:
            raise UnknownOffering(
                f"no local site for {offering.provider}/{offering.region}/{offering.zone} "
                f"{offering.instance_type}"
            )
        return site

    def _usage(self, site: LocalSite, ledger: Mapping[str, Allocation]) -> SiteUsage:
        mine = [a for a in ledger.values() if a.extra.get("site") == site.key]
        gpus = sum(len(n.accelerator_ids) for a in mine for n in a.nodes)
        return SiteUsage(
            site=site.key,
            cpus_free=site.cpu_slots - sum(float(a.extra.get("cpus", 0.0)) for a in mine),
            memory_gib_free=site.memory_gib
            - sum(float(a.extra.get("memory_gib", 0.0)) for a in mine),
            gpus_free=site.gpu_slots - gpus,
            allocations=len(mine),
        )

    def _alloc_path(self, allocation_id: str) -> Path:
        return self._alloc_dir / f"{_safe(allocation_id)}.json"

    @contextlib.contextmanager
    def _ledger_locked(self) -> Iterator[None]:
        with self._mutex:
            fd = os.open(self._alloc_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _load_ledger(self) -> dict[str, Allocation]:
        ledger: dict[str, Allocation] = {}
        for path in self._alloc_dir.glob("*.json"):
            try:
                allocation = _load(path.read_text())
            except (OSError, ValueError, KeyError, TypeError):
                continue  # vanished between glob and read, or not ours
            ledger[allocation.allocation_id] = allocation
        return ledger

    @staticmethod
    def _pick_port(allocation_id: str, ledger: Mapping[str, Allocation]) -> int:
        taken = {int(a.extra.get("master_port", 0)) for a in ledger.values()}
        start = zlib.crc32(allocation_id.encode())
        for i in range(PORT_SPAN):
            port = PORT_BASE + (start + i) % PORT_SPAN
            if port not in taken and _port_free(port):
                return port
        raise CapacityError("no free port for MASTER_PORT")

    # -- nodes -------------------------------------------------------------------------
    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        """Start one node under a shim; returns once the shim process exists.

        Raises ``NodeAlreadyRunning`` if a run of this (job, attempt, rank) is alive and
        ``NodeAlreadyStarted`` if one ran before (a node directory is single-use); both
        carry that run's handle for ``adopt``. Race-free across processes: the node lock
        is taken before the shim is spawned and inherited by it.
        """
        slot = next((n for n in allocation.nodes if n.rank == command.rank), None)
        if slot is None:
            raise ProviderError(
                f"allocation {allocation.allocation_id} has no node of rank {command.rank}"
            )
        node_dir = self.node_dir(command.job_id, command.attempt, command.rank)
        private_mkdir(str(node_dir))
        lock_fd = os.open(node_dir / "node.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise NodeAlreadyRunning(
                    f"node {command.job_id}/{command.attempt}/{command.rank} is running",
                    self.node_handle(command.job_id, command.attempt, command.rank),
                ) from None
            previous = self.node_handle(command.job_id, command.attempt, command.rank)
            if previous is not None or (node_dir / "exit_code").exists():
                raise NodeAlreadyStarted(
                    f"node {command.job_id}/{command.attempt}/{command.rank} already ran",
                    previous,
                )
            return self._spawn(allocation, slot, command, node_dir, lock_fd)
        finally:
            os.close(lock_fd)  # the shim keeps the lock through its inherited descriptor

    def _spawn(
        self,
        allocation: Allocation,
        slot: NodeSlot,
        command: NodeCommand,
        node_dir: Path,
        lock_fd: int,
    ) -> NodeHandle:
        job = command.job_id
        log_path = self.log_path(job, command.rank)
        if command.log_dir:
            log_path = Path(command.log_dir) / log_path.name
        log_dir = log_path.parent
        ckpt = Path(command.checkpoint_dir or self.checkpoint_dir(job))
        work = self.job_dir(command.job_id) / "work" / f"node-{command.rank}"
        for d in (log_dir, ckpt, work):
            private_mkdir(str(d))
        env = self._node_env(allocation, slot, command, ckpt)
        spec = {
            "job_id": command.job_id,
            "attempt": command.attempt,
            "rank": command.rank,
            "setup": command.setup,
            "run": command.run,
            "env": env,
            "cwd": str(work),
            "sync": _sync_pairs(command, work, env.get("HOME")),
            "log_path": str(log_path),
            "grace_s": self.config.kill_grace_s,
        }
        spec_path = node_dir / "spec.json"
        write_atomic(str(spec_path), json.dumps(spec))
        os.chmod(spec_path, 0o600)
        err = os.open(  # 0600 whatever the umask, as every state file
            node_dir / "shim.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        try:
            popen = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SHIM), str(node_dir), str(lock_fd)],
                cwd=node_dir,
                env={"PATH": os.environ.get("PATH", os.defpath)},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(lock_fd,),
                start_new_session=True,
            )
        finally:
            os.close(err)
        start = process_start_time(popen.pid)
        if start is not None:
            write_atomic(str(node_dir / "pid"), f"{popen.pid} {start}\n")
            handle = self._handle(command.job_id, command.attempt, command.rank, popen.pid, start)
        else:  # already over: either it ran (and recorded itself) or it failed to start
            popen.wait()
            recorded = self.node_handle(command.job_id, command.attempt, command.rank)
            if recorded is None or pid_of(recorded) != popen.pid:
                raise ProviderError(
                    f"the shim of {command.job_id}/{command.attempt}/{command.rank} died at "
                    f"start (exit {popen.returncode}; see {node_dir / 'shim.err'})"
                )
            handle = recorded
        with self._mutex:
            self._tracked[(command.job_id, command.attempt, command.rank)] = _Tracked(
                handle, node_dir, popen
            )
        return handle

    def _node_env(
        self, allocation: Allocation, slot: NodeSlot, command: NodeCommand, ckpt: Path
    ) -> dict[str, str]:
        env = base_env(os.environ)  # never the rest of this process's environment
        env.setdefault("PATH", os.defpath)
        # intercloud's own Python environment comes first, so `python` in a node's command
        # is the interpreter (and packages) intercloud runs with, as on a provisioned node.
        bindir = os.path.dirname(sys.executable)
        if env.get("PATH", "").split(os.pathsep)[0] != bindir:
            env["PATH"] = os.pathsep.join(p for p in (bindir, env.get("PATH")) if p)
        env.update(command.env)
        port = allocation.extra.get("master_port") or self._pick_port(allocation.allocation_id, {})
        env.update(
            node_variables(
                job_id=command.job_id,
                attempt=command.attempt,
                rank=command.rank,
                num_nodes=command.num_nodes,
                hosts=[n.host for n in allocation.nodes],
                accelerator_ids=slot.accelerator_ids,
                checkpoint_dir=str(ckpt),
                provider=allocation.provider,
                region=allocation.region,
                master_addr=HOST,
                master_port=int(port),
            )
        )
        return env

    def _handle(self, job_id: str, attempt: int, rank: int, pid: int, start: int) -> NodeHandle:
        node_dir = self.node_dir(job_id, attempt, rank)
        return NodeHandle(
            job_id=job_id,
            attempt=attempt,
            rank=rank,
            provider=self.name,
            extra={"node_dir": str(node_dir), "pid": pid, "start_time": start},
        )

    def node_handle(self, job_id: str, attempt: int, rank: int) -> NodeHandle | None:
        """The handle of the run of this node recorded on disk, or None if never started.

        Lets a control loop that died between ``start_node`` and saving the handle find
        the run again (then ``adopt`` it).
        """
        try:
            pid_text = (self.node_dir(job_id, attempt, rank) / "pid").read_text().split()
            pid, start = int(pid_text[0]), int(pid_text[1])
        except (OSError, ValueError, IndexError):
            return None
        return self._handle(job_id, attempt, rank, pid, start)

    def node_alive(self, job_id: str, attempt: int, rank: int) -> bool:
        """True while any process of this run of the node holds its lock (race-free)."""
        return _lock_held(self.node_dir(job_id, attempt, rank) / "node.lock")

    def exit_code(self, job_id: str, attempt: int, rank: int) -> int | None:
        """The recorded exit code of this node, or None while it runs (or if it was lost)."""
        return _read_exit(self.node_dir(job_id, attempt, rank))

    def kill(self, handle: NodeHandle, grace_s: float | None = None) -> None:
        """Stop the node and everything it started; returns when they are gone. Idempotent.

        SIGTERM goes to the shim, which forwards it to the running step's process group
        and records the exit code; after ``grace_s`` (default ``config.kill_grace_s``)
        everything left of the node gets SIGKILL (then ``poll`` may say LOST). The shim is
        signalled only if its pid and start time match the handle (through a pidfd where
        available, so the check cannot go stale). Raises ``ProviderError`` if processes of
        the node still hold its lock after repeated SIGKILLs.
        """
        grace = self.config.kill_grace_s if grace_s is None else grace_s
        node_dir = self._dir_of(handle)
        tracked = self._tracked.get((handle.job_id, handle.attempt, handle.rank))
        popen = tracked.popen if tracked else None
        lock = node_dir / "node.lock"
        ready = node_dir / "ready"
        deadline = time.monotonic() + 5.0
        while not ready.exists() and time.monotonic() < deadline:
            if process_start_time(pid_of(handle)) != start_time_of(handle):
                break  # the shim is gone (or was never ours)
            time.sleep(0.005)

        def gone(wait_s: float) -> bool:
            until = time.monotonic() + wait_s
            while True:
                if popen is not None:
                    popen.poll()  # reap our own child, or it lingers as a zombie
                shim_alive = process_start_time(pid_of(handle)) == start_time_of(handle)
                if not shim_alive and not _lock_held(lock):
                    return True
                if time.monotonic() >= until:
                    return False
                time.sleep(0.01)

        if _signal_verified(handle, signal.SIGTERM):
            # The shim escalates to SIGKILL itself after ``grace``, records the exit, exits.
            until = time.monotonic() + grace + 1.0
            while process_start_time(pid_of(handle)) == start_time_of(handle):
                if time.monotonic() >= until:
                    break
                if popen is not None:
                    popen.poll()  # reap our own child, or it lingers as a zombie
                time.sleep(0.01)
            if gone(0.0):
                return
        elif _read_exit(node_dir) is not None and gone(0.0):
            return  # finished long ago: nothing to look for
        for _ in range(10):
            self._kill_remnants(handle)
            if gone(0.5):
                return
        raise ProviderError(
            f"node {handle.job_id}/{handle.attempt}/{handle.rank} still holds its lock "
            f"after SIGKILL (an unkillable process, or one that left its session)"
        )

    def adopt(self, handle: NodeHandle) -> bool:
        """Track a node started by another instance (or before a restart).

        True if its shim (same pid *and* start time) still runs or its exit code is on
        disk; the next ``poll`` then reports its exit. False if it is gone without an exit
        code, after killing whatever is left of it; nothing is ever signalled on the
        strength of a pid whose start time differs.
        """
        node_dir = self._dir_of(handle)
        key = (handle.job_id, handle.attempt, handle.rank)
        alive = _is_running(handle)
        if alive or _read_exit(node_dir) is not None:
            with self._mutex:
                if key not in self._tracked:
                    self._tracked[key] = _Tracked(handle, node_dir)
            return True
        self._kill_remnants(handle)
        return False

    def poll(self) -> list[NodeEvent]:
        """EXITED (with the code) or LOST, once per node started or adopted here.

        Costs a stat and a /proc read per running node; only a node found LOST, or one
        that exited while a process that left its session still holds its lock, costs a
        process-table scan (to kill what is left of it before reporting).
        """
        events: list[NodeEvent] = []
        with self._mutex:
            items = list(self._tracked.items())
        for key, t in items:
            if t.popen is not None:
                t.popen.poll()  # reap our own children so they do not linger as zombies
            h = t.handle
            code = _read_exit(t.node_dir)
            if code is None:
                if process_start_time(pid_of(h)) == start_time_of(h):
                    continue
                code = _read_exit(t.node_dir)  # it may have written the code and exited
            if code is None:
                self._kill_remnants(h)
                event = NodeEvent(
                    NodeEventKind.LOST,
                    h.job_id,
                    h.attempt,
                    h.rank,
                    reason="the node's supervisor vanished without an exit code",
                )
            else:
                event = NodeEvent(
                    NodeEventKind.EXITED,
                    h.job_id,
                    h.attempt,
                    h.rank,
                    code,
                    ended_at=_exit_time(t.node_dir),
                )
                if _lock_held(t.node_dir / "node.lock") and process_start_time(pid_of(h)) is None:
                    self._kill_remnants(h)  # something escaped the shim's final sweep
            events.append(event)
            with self._mutex:
                self._tracked.pop(key, None)
        return events

    def _dir_of(self, handle: NodeHandle) -> Path:
        text = handle.extra.get("node_dir") if handle.extra else None
        if text:
            return Path(text)
        return self.node_dir(handle.job_id, handle.attempt, handle.rank)

    def _kill_remnants(self, handle: NodeHandle) -> None:
        """SIGKILL every process that belongs to this run of the node.

        A process belongs to it if it carries the run's ``INTERCLOUD_NODE_MARKER`` (its
        node directory, set by the shim) in its environment, descends from such a
        process, or (while the shim, verified by start time, is alive) descends from the
        shim or is in its session. Orphans of a dead shim keep the marker, so a crashed
        node is cleaned up too; only a process that scrubbed the marker *and* left the
        shim's care cannot be found.
        """
        marker = str(self._dir_of(handle))
        shim_ok = False
        for _ in range(20):  # again, in case something forked while we were looking
            # Re-verified every pass: once the shim is gone its pid (and session id) may
            # name someone else's process, so only the marker is trusted from then on.
            shim_ok = _is_running(handle)
            left = node_processes(marker, pid_of(handle) if shim_ok else None)
            if not os.path.isdir("/proc"):
                left = self._marked_elsewhere(marker)
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if not left:
                break
            time.sleep(0.01)
        if shim_ok:
            _signal_verified(handle, signal.SIGKILL)

    @staticmethod
    def _marked_elsewhere(marker: str) -> list[int]:
        """Without /proc: this user's processes carrying the node's marker (psutil)."""
        found = []
        uid = os.getuid()
        for proc in psutil.process_iter(["pid", "uids"]):
            uids = proc.info.get("uids")
            if proc.info["pid"] == os.getpid() or uids is None or uids.real != uid:
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get(NODE_MARKER_ENV) == marker:
                    found.append(proc.info["pid"])
        return found

    def abandon(self, grace_s: float = 1.0) -> int:
        """Kill every node run under this root that still runs (or left processes behind)
        and release every allocation: for the files of a store whose database is gone.
        Returns how many node runs were killed. Logs and checkpoints stay."""
        killed = 0
        for pid_file in sorted((self.root / "jobs").glob("*/attempt-*/node-*/pid")):
            node_dir = pid_file.parent
            try:
                job = unquote(node_dir.parent.parent.name)
                attempt = int(node_dir.parent.name.removeprefix("attempt-"))
                rank = int(node_dir.name.removeprefix("node-"))
            except ValueError:
                continue
            handle = self.node_handle(job, attempt, rank)
            if handle is None or self._dir_of(handle) != node_dir:
                continue
            if _read_exit(node_dir) is not None and not _lock_held(node_dir / "node.lock"):
                continue  # ended long ago (its shim swept up after it)
            with contextlib.suppress(ProviderError):
                self.kill(handle, grace_s=grace_s)
                killed += 1
        for allocation in self.allocations():
            self.release(allocation.allocation_id)
        return killed


STORE_LABEL = "store.json"


def store_config(config: LocalConfig, store_id: str, database: str) -> LocalConfig:
    """``config`` with its root moved to ``config.root/<store_id>`` (created 0700 and
    labelled with ``store.json``: the store id and its database's name).

    Every store (database) gets its own logs, node directories and allocation ledger, so
    a job id reused by a new database never meets an old job's files.
    """
    root = config.root / _safe(store_id)
    private_mkdir(str(root))
    label = root / STORE_LABEL
    if not label.exists():
        write_atomic(str(label), json.dumps({"store_id": store_id, "database": database}))
    return replace(config, root=root)


def abandon_other_stores(config: LocalConfig, store_id: str, database: str) -> list[Path]:
    """Reconcile what the roots of other stores under ``config.root`` left behind, when
    their database is provably gone: it is the one at ``database`` (which now has
    identity ``store_id``: it was deleted and created again) or a SQLite file that no
    longer exists. Their processes are killed and their allocations released (logs are
    kept); a root of a database that may still exist is left alone. Returns the roots
    reconciled (each is done once: its label is marked ``abandoned``)."""
    done: list[Path] = []
    if not config.root.is_dir():
        return done
    for label_path in sorted(config.root.glob(f"*/{STORE_LABEL}")):
        try:
            label = json.loads(label_path.read_text())
            other, other_db = str(label["store_id"]), str(label["database"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if other == store_id or label.get("abandoned"):
            continue
        gone = other_db == database
        prefix = "database "  # Store.name: "database /path" (SQLite) or "database url"
        if not gone and other_db.startswith(prefix) and "://" not in other_db:
            gone = not Path(other_db[len(prefix) :]).exists()
        if not gone:
            continue
        root = label_path.parent
        LocalProvider(replace(config, root=root)).abandon()
        write_atomic(str(label_path), json.dumps({**label, "abandoned": time.time()}))
        done.append(root)
    return done


# -- helpers -------------------------------------------------------------------------------
def _sync_pairs(command: NodeCommand, work: Path, home: str | None) -> list[list[str]]:
    """``[SOURCE, DEST]`` copies the shim makes before ``setup``: the workdir into the
    node's working directory, then each file mount; DEST ``~``/``~/...`` is under the
    node's ``HOME`` and a relative DEST under the working directory."""
    pairs: list[list[str]] = []
    if command.workdir:
        pairs.append([command.workdir, str(work)])
    for dest, source in command.file_mounts:
        if dest == "~" or dest.startswith("~/"):
            target = Path(home or Path.home()) / dest[2:]
        else:
            target = work / dest  # an absolute DEST stays absolute
        pairs.append([source, os.path.normpath(target)])
    return pairs


def _signal_verified(handle: NodeHandle, sig: int) -> bool:
    """Send ``sig`` to the handle's process if pid and start time match; True if sent."""
    if pid_of(handle) <= 0 or start_time_of(handle) == 0:
        return False
    return signal_if(pid_of(handle), lambda: _is_running(handle), sig)


def _lock_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _exit_time(node_dir: Path) -> float | None:
    """When the node's work ended (unix seconds): written by the shim beside the code
    (``"<code> <time>"``), else the exit file's mtime."""
    path = node_dir / "exit_code"
    try:
        fields = path.read_text().split()
        return float(fields[1]) if len(fields) > 1 else path.stat().st_mtime
    except (OSError, ValueError):
        return None


def _read_exit(node_dir: Path) -> int | None:
    """The exit code the shim recorded (first field of ``exit_code``), or None."""
    try:
        return int((node_dir / "exit_code").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _dump(allocation: Allocation) -> str:
    return json.dumps(
        {
            "allocation_id": allocation.allocation_id,
            "provider": allocation.provider,
            "region": allocation.region,
            "zone": allocation.zone,
            "instance_type": allocation.instance_type,
            "nodes": [
                {"rank": n.rank, "host": n.host, "accelerator_ids": list(n.accelerator_ids)}
                for n in allocation.nodes
            ],
            "extra": dict(allocation.extra),
        }
    )


def _load(text: str) -> Allocation:
    data: dict[str, Any] = json.loads(text)
    return Allocation(
        allocation_id=data["allocation_id"],
        provider=data["provider"],
        region=data["region"],
        zone=data["zone"],
        instance_type=data["instance_type"],
        nodes=tuple(
            NodeSlot(rank=n["rank"], host=n["host"], accelerator_ids=tuple(n["accelerator_ids"]))
            for n in data["nodes"]
        ),
        extra=data.get("extra", {}),
    )
