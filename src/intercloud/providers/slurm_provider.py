"""The ``slurm`` provider: gangs as ``sbatch`` jobs on an existing Slurm cluster.

A lab's own cluster is reserved capacity: every offering costs 0 at the margin. The
offerings are the node shapes (CPUs, GPUs from GRES, memory) of each configured
partition, region ``settings.region``, zone = the partition; ``free_capacity`` sums the
unallocated CPUs, GPUs and memory of the usable nodes of each.

A gang (one allocation, one attempt of one job) is one Slurm job, named
``ic-<namespace>-<request id>`` with intercloud's ids in its ``--comment``:
``--nodes N --ntasks-per-node 1``, ``--gres=gpu:K``, the partition, the account, and
``--time`` = the expected duration plus ``time_margin_s``. ``try_provision`` submits it
(or finds it by name) and returns at once: None until every rank's task runs, then the
allocation with each rank's node address (the node its task names); the control loop
asks again each step, so gangs placed together start together, and one ``squeue``
answers for all of them (``provision`` asks until it is done). Still queued after
``start_wait_s``, the answer is ``CapacityError`` and the job stays in Slurm's queue
for the next call (placed again after the loop's back-off), until
``provision_timeout_s`` after its submission: then it is cancelled. ``start_node``
writes the rank's command into the gang's folder (``slurm_scripts``: a shared folder
every node sees), where that rank's ``srun`` task waits for it; ``kill`` asks that task
to stop its command and waits for it; ``release`` cancels the job (``scancel --name``).

``poll`` copies each rank's output (``rank-<r>.log``, Slurm's output file of the task)
to ``agent_log_path`` (where ``intercloud logs`` reads), reports EXITED with the exit
code the task recorded, and otherwise reads Slurm's verdict from ``squeue`` (``sacct``
where accounting is enabled, for jobs ``squeue`` no longer shows): a node failure, a
requeue, a cancel from outside or a time limit is LOST, a preemption PREEMPTED. While the
controller does not answer, nothing is reported; after ``down_after_s`` every tracked
node is LOST (its task stopped itself after ``fence_s``; the job is cancelled once the
controller is back). ``adopt`` needs only the Slurm job id and folder kept in the handle.

Slurm keeps its own queue (``Capability.QUEUE``): ``queue_capacity`` lets the scheduler
place gangs on a CPU offering up to ``queue_nodes`` nodes beyond its free ones (default:
as many as the offering has), so the next gang already waits in Slurm's queue when one
ends. Such a gang stays PLACING while Slurm keeps it pending for Resources or Priority
(``queued`` says where it waits; no ``start_wait_s`` bounce and no
``provision_timeout_s``); ``withdraw`` takes it back out (``scancel --state=PENDING``)
when intercloud's order changes. A restarted loop finds it by name, as a running one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from intercloud.control.agent_logs import agent_log_path
from intercloud.model import Offering, canonical_accelerator
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
from intercloud.providers.slurm_cli import JobInfo, SlurmCli, SlurmNode
from intercloud.providers.slurm_scripts import RANK_WAITER, batch_script, rank_script

log = logging.getLogger(__name__)

NAME = "slurm"
PORT_BASE = 20000
PORT_SPAN = 12000
#: Slurm job states in which the job's tasks run (or are being set up / torn down).
LIVE_STATES = frozenset({"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED",
                         "SIGNALING", "STAGE_OUT", "RESIZING"})  # fmt: skip
#: States of a job Slurm has put back in its queue.
REQUEUED_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                             "SPECIAL_EXIT", "RESV_DEL_HOLD"})  # fmt: skip
#: Reasons of a pending job that no other job's end resolves (the request does not fit
#: the partition or the account): such a job is cancelled at once.
NEVER_REASONS = frozenset({"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit",
                           "BadConstraints", "InvalidAccount", "InvalidQOS",
                           "AssocMaxNodesPerJobLimit", "QOSMaxNodePerJobLimit"})  # fmt: skip
#: How old the cached ``sinfo`` answer of offerings and free capacity may be.
NODES_MAX_AGE_S = 0.25
#: How often ``provision`` and ``kill`` look again.
POLL_S = 0.05
#: How old the one ``squeue`` answer about the gangs being provisioned may be.
QUEUE_MAX_AGE_S = 0.1
#: How often ``poll`` asks ``squeue`` about the running gangs (their exits come from
#: files at every poll; Slurm's verdicts on the others, at most this often).
QUEUE_POLL_S = 0.25
#: Reasons of a pending job that waits for other jobs' ends (its turn in the queue).
QUEUE_REASONS = frozenset({"Resources", "Priority", "None", ""})
#: How long a rank's task waits for its command before giving up (a gang that Slurm
#: started after intercloud placed the job elsewhere must not hold its nodes).
COMMAND_WAIT_S = 120


@dataclass(frozen=True, slots=True)
class SlurmConfig:
    """What the provider needs (built from ``SlurmSettings`` by the plugin)."""

    conf: str | None = None  # slurm.conf of the cluster (None: Slurm's default)
    partitions: tuple[str, ...] = ()  # empty: every partition
    account: str | None = None
    namespace: str = "intercloud"
    region: str = "slurm"
    log_root: Path = Path("agent-logs")
    #: a folder every node sees at the same path: ``<work_root>/<namespace>/<request id>``
    #: holds a gang's scripts and output, ``<work_root>/<namespace>/<job>/work|checkpoints``
    #: its working and default checkpoint folders
    work_root: str = "/tmp/intercloud-slurm"
    bin_dir: str | None = None
    provision_timeout_s: float = 300.0
    #: how long one ``provision`` call waits for a queued gang to start
    start_wait_s: float = 3.0
    kill_grace_s: float = 5.0
    time_margin_s: float = 600.0
    fence_s: int = 60
    down_after_s: float = 90.0
    command_timeout_s: float = 15.0
    #: the accelerator of GPUs whose GRES names no type (``gpu:4``); typed ones
    #: (``gpu:a100:4``) are named by their type
    gpu_type: str | None = None
    #: nodes per CPU offering that may wait in Slurm's queue beyond its free ones
    #: (None: as many as the offering has; 0: none, a gang is submitted only when its
    #: nodes are free)
    queue_nodes: int | None = None


@dataclass(frozen=True, slots=True)
class NodeShape:
    cpus: int
    gpus: int
    gpu_type: str | None
    memory_gib: float

    @property
    def instance_type(self) -> str:
        gpu = f"-{self.gpus}x{self.gpu_type or 'gpu'}" if self.gpus else ""
        return f"slurm-{self.cpus}cpu{gpu}-{self.memory_gib:g}gib"

    def slice_types(self) -> list[tuple[str, int]]:
        """The offerings of this shape as (instance type, GPUs per node). The planner
        matches a spec's ``T4:K`` to an offering of exactly K GPUs, so a GPU node sells
        each of 1..all its GPUs (``--gres=gpu:K``; the whole node keeps the plain name)
        and its CPUs alone (``-cpu``: CPU-only jobs run on GPU nodes too)."""
        if not self.gpus:
            return [(self.instance_type, 0)]
        return [(f"{self.instance_type}-cpu", 0)] + [
            (self.instance_type if k == self.gpus else f"{self.instance_type}-use{k}", k)
            for k in range(1, self.gpus + 1)
        ]


def node_shape(n: SlurmNode, default_gpu: str | None = None) -> NodeShape:
    """The node's shape; its GPUs named as intercloud names accelerators (a GRES type
    it does not know keeps Slurm's spelling)."""
    kind = n.gpu_type or default_gpu
    named = (canonical_accelerator(kind) or kind) if kind and n.gpus else None
    return NodeShape(n.cpus, n.gpus, named, round(n.memory_mb / 1024, 1))


def job_name(namespace: str, request_id: str) -> str:
    """The Slurm job name of a gang (how a restarted loop finds it again)."""
    return f"ic-{namespace}-{request_id}"


@dataclass(slots=True)
class _Tracked:
    handle: NodeHandle
    slurm_job: str
    job_dir: Path
    offset: int = 0
    ended: int | None = None  # exit code recorded by ``kill``


@dataclass(slots=True)
class _Down:
    since: float | None = None
    error: str = ""
    #: jobs of nodes reported lost while the controller was away: cancelled once it is back
    orphans: set[str] = field(default_factory=set)


class SlurmProvider(Provider):
    """See the module docstring. Thread-safe."""

    name = NAME

    def __init__(self, config: SlurmConfig) -> None:
        self.config = config
        caps = {Capability.MULTI_NODE, Capability.ADOPT, Capability.GPUS}
        if config.queue_nodes != 0:
            caps.add(Capability.QUEUE)
        self.capabilities = frozenset(caps)
        self.cli = SlurmCli(config.conf, config.bin_dir, config.command_timeout_s)
        self._mutex = threading.RLock()
        self._tracked: dict[tuple[str, int, int], _Tracked] = {}
        self._down = _Down()
        self._last_keys: set[OfferingKey] = set()
        self._offerings: tuple[float, list[Offering]] | None = None
        self._nodes_seen: tuple[float, list[SlurmNode]] | None = None
        self._addr: dict[str, str] = {}  # node name -> NodeAddr, as last seen
        # the gangs being provisioned (``try_provision``): request id -> Slurm job, the
        # end of the current ask's ``start_wait_s``, since when its job runs; one
        # ``squeue`` answer for all of them (time, the jobs it covered, their states)
        self._asked: dict[str, str] = {}
        self._partition: dict[str, str] = {}  # request id -> its partition (``queued``)
        self._ask_until: dict[str, float] = {}
        self._running_since: dict[str, float] = {}
        self._queue_view: tuple[float, frozenset[str], dict[str, JobInfo]] | None = None
        self._queue_polled = -math.inf  # when ``poll`` last asked ``squeue``

    # -- the cluster -----------------------------------------------------------------
    def _nodes(self) -> list[tuple[str, SlurmNode]]:
        """(partition, node) for every configured partition's node; ProviderError naming
        a configured partition the cluster does not have."""
        nodes = self._all_nodes()
        known = {p for n in nodes for p in n.partitions}
        wanted = self.config.partitions or tuple(sorted(known))
        unknown = [p for p in wanted if p not in known]
        if unknown:
            have = ", ".join(sorted(known)) or "none"
            raise ProviderError(f"slurm partition {unknown[0]!r} does not exist (it has: {have})")
        return [(p, n) for p in wanted for n in nodes if p in n.partitions]

    def _all_nodes(self, max_age_s: float = NODES_MAX_AGE_S) -> list[SlurmNode]:
        """``sinfo``'s nodes, from a cache younger than ``max_age_s`` (one loop step asks
        for offerings and free capacity, one submission too: one ``sinfo`` serves both)."""
        with self._mutex:
            if self._nodes_seen and time.monotonic() - self._nodes_seen[0] < max_age_s:
                return self._nodes_seen[1]
        nodes = self.cli.nodes()
        with self._mutex:
            self._nodes_seen = (time.monotonic(), nodes)
        return nodes

    def offerings(self) -> list[Offering]:
        """Per (partition, node shape) of the usable nodes, all of them together (the
        scheduler slices their CPUs; a gang's ranks go to distinct nodes), one offering per
        GPU count a node can give (``NodeShape.slice_types``); price 0.
        Answers from a one-second cache (the loop asks several times per step)."""
        with self._mutex:
            if self._offerings and time.monotonic() - self._offerings[0] < 1.0:
                return list(self._offerings[1])
        counts: dict[tuple[str, NodeShape], int] = {}
        for part, n in self._nodes():
            if n.usable and n.cpus > 0:
                key = (part, node_shape(n, self.config.gpu_type))
                counts[key] = counts.get(key, 0) + 1
        out = [
            Offering(
                provider=NAME,
                region=self.config.region,
                zone=part,
                instance_type=itype,
                accelerator=shape.gpu_type if k else None,
                accelerator_count=k,
                vcpus=float(shape.cpus * count),
                memory_gib=shape.memory_gib * count,
                on_demand_price=0.0,
            )
            for (part, shape), count in sorted(
                counts.items(), key=lambda kv: (kv[0][0], kv[0][1].instance_type)
            )
            for itype, k in shape.slice_types()
        ]
        with self._mutex:
            self._offerings = (time.monotonic(), out)
        return list(out)

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """Unallocated CPUs, GPUs and memory of the usable nodes, per CPU-only offering
        (the scheduler slices those); none at all (for the offerings last seen) while the
        cluster cannot be reached. GPU offerings are left out: the scheduler treats them
        as capacity of unknown size (a gang of several GPU nodes can be placed there)
        and Slurm's own queue holds a gang until its nodes are free."""
        try:
            nodes = self._nodes()
        except ProviderError as exc:
            log.warning("free capacity of slurm: %s", exc)
            return dict.fromkeys(self._last_keys, FreeCapacity(0.0, 0, 0.0))
        out: dict[OfferingKey, FreeCapacity] = {}
        for part, n in nodes:
            if n.cpus <= 0:
                continue
            for itype, gpus in node_shape(n, self.config.gpu_type).slice_types():
                if gpus:
                    continue  # unknown: Slurm's queue decides (module docstring)
                key = (NAME, self.config.region, part, itype)
                prev = out.get(key, FreeCapacity(0.0, 0, 0.0))
                if not n.usable:
                    out[key] = prev
                    continue
                out[key] = FreeCapacity(
                    prev.cpus + max(0, n.cpus - n.alloc_cpus),
                    prev.gpus + max(0, n.gpus - n.gpus_used),
                    prev.memory_gib + max(0, n.memory_mb - n.alloc_memory_mb) / 1024,
                )
        self._last_keys = set(out)
        return out

    def queue_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """Per CPU offering, ``queue_nodes`` of its nodes (None: all of them) that may
        wait in Slurm's queue (``Capability.QUEUE``); none while the cluster cannot be
        reached."""
        if not self.supports(Capability.QUEUE):
            return {}
        try:
            nodes = self._nodes()
        except ProviderError:
            return {}
        shape: dict[OfferingKey, tuple[int, float]] = {}
        count: dict[OfferingKey, int] = {}
        for part, n in nodes:
            if not n.usable or n.cpus <= 0:
                continue
            for itype, gpus in node_shape(n, self.config.gpu_type).slice_types():
                if gpus:
                    continue  # GPU offerings are of unknown size already (free_capacity)
                key = (NAME, self.config.region, part, itype)
                shape[key] = (n.cpus, n.memory_mb / 1024)
                count[key] = count.get(key, 0) + 1
        out: dict[OfferingKey, FreeCapacity] = {}
        for key, (cpus, mem) in shape.items():
            k = count[key] if self.config.queue_nodes is None else self.config.queue_nodes
            out[key] = FreeCapacity(float(k * cpus), 0, k * mem, k)
        return out

    def _queues(self, request: ProvisionRequest) -> bool:
        """Whether a pending gang of ``request`` is one the scheduler queued ahead (it
        waits in Slurm's queue for its turn, without a time limit)."""
        # the CPU offerings only: those the scheduler queues ahead (``queue_capacity``)
        return (
            self.supports(Capability.QUEUE)
            and not request.accelerators_per_node
            and not request.offering.accelerator_count
        )

    def queued(self, request_id: str) -> str | None:
        """Where the gang of ``request_id`` waits in Slurm's queue (from the last
        ``squeue`` of the gangs being provisioned), or None (not pending there)."""
        with self._mutex:
            slurm_job = self._asked.get(request_id)
            partition = self._partition.get(request_id, "?")
            view = self._queue_view
        if slurm_job is None or view is None:
            return None
        info = view[2].get(slurm_job)
        if info is None or info.state != "PENDING" or info.reason in NEVER_REASONS:
            return None
        ahead = sum(
            1
            for j in view[2].values()
            if j.state == "PENDING" and _job_number(j.job_id) < _job_number(slurm_job)
        )
        why = "" if info.reason in ("", "None") else f", {info.reason}"
        return (
            f"queued in slurm partition {partition} as job {slurm_job}, behind {ahead} "
            f"gang(s) of intercloud{why}"
        )

    def withdraw(self, request_id: str) -> bool:
        """Cancel the gang's Slurm job if it is still pending (``scancel --state=PENDING``):
        True when no job of it is left, False when one started meanwhile (it goes on)."""
        name = job_name(self.config.namespace, request_id)
        self.cli.cancel_pending_named(name)
        live = LIVE_STATES | REQUEUED_STATES
        left = [j for j in self.cli.jobs(name=name).values() if j.state in live]
        if left:
            return False
        self._forget(request_id)
        with self._mutex:
            self._queue_view = None
        return True

    # -- allocations -----------------------------------------------------------------
    def job_dir(self, request_id: str) -> Path:
        return Path(self.config.work_root) / self.config.namespace / request_id

    def provision(self, request: ProvisionRequest) -> Allocation:
        """The gang's Slurm job (submitted, or found by name) once its tasks run:
        ``try_provision`` asked again until it answers."""
        while True:
            allocation = self.try_provision(request)
            if allocation is not None:
                return allocation
            time.sleep(POLL_S)

    def try_provision(self, request: ProvisionRequest) -> Allocation | None:
        """Submit the gang's Slurm job (or find it by name) and return at once: the
        allocation once every rank's task runs (``rank-<r>.ready``), None while Slurm
        is starting it or it has queued for less than ``start_wait_s`` of this ask.
        Queued longer (or left pending by Slurm's scheduler): CapacityError, the job
        kept in Slurm's queue for the next ask (cancelled ``provision_timeout_s`` after
        its submission). The state of every gang being asked for comes from one
        ``squeue``, so a loop step with many gangs placed costs one call, not one each."""
        if request.nodes < 1:
            raise ValueError("a provision request needs at least one node")
        rid = request.request_id
        d = self.job_dir(rid)
        with self._mutex:
            slurm_job = self._asked.get(rid)
        if slurm_job is None:
            slurm_job = self._find(request)
            fresh = slurm_job is None
            if slurm_job is None:
                slurm_job = self._submit(request, job_name(self.config.namespace, rid))
            with self._mutex:
                self._asked[rid] = slurm_job
                self._partition[rid] = request.offering.zone
                self._ask_until[rid] = time.monotonic() + self.config.start_wait_s
            if fresh:
                return None  # just submitted: its tasks cannot run yet
        try:
            info = self._queued(slurm_job)
        except ProviderError:
            self._forget(rid)
            raise
        if info is None or info.state not in REQUEUED_STATES | {"CONFIGURING", "RUNNING"}:
            self._forget(rid)
            state = info.state if info else "gone"
            said = _last_line(d / f"slurm-{slurm_job}.out")
            raise ProviderError(
                f"slurm job {slurm_job} of {rid} ended before running "
                f"({state}{': ' + said if said else ''})"
            )
        ready = _ready_nodes(d, request.nodes)
        if ready is not None and info.state == "RUNNING":
            # every task runs (a task that could not name its node: Slurm's node order)
            return self._allocation(request, slurm_job, ready if all(ready) else list(info.nodes))
        if info.reason in NEVER_REASONS:
            self._forget(rid)
            self.cli.cancel(slurm_job)
            raise ProviderError(
                f"slurm cannot run {request.nodes} node(s) of partition "
                f"{request.offering.zone}: {info.reason} (job {slurm_job} cancelled)"
            )
        now = time.monotonic()
        if info.state == "RUNNING" and len(info.nodes) == request.nodes:
            # allocated: its tasks are being launched (srun). One whose tasks do not say
            # so within start_wait_s (a gang submitted by an older intercloud) is handed
            # out as it is: ``start_node`` waits for each task
            with self._mutex:
                since = self._running_since.setdefault(rid, now)
            if now - since <= self.config.start_wait_s:
                return None
            return self._allocation(request, slurm_job, list(info.nodes))
        if info.state == "PENDING" and info.reason in QUEUE_REASONS and self._queues(request):
            return None  # queued ahead by the scheduler: it waits for its turn in Slurm
        # Slurm starts a job at once when its nodes are free; one it has looked at and
        # left pending (Resources, Priority, ...) waits for others to end
        evaluated = info.state == "PENDING" and info.reason not in ("", "None")
        with self._mutex:
            until = self._ask_until.setdefault(rid, now + self.config.start_wait_s)
        if not evaluated and now <= until:
            return None
        self._forget(rid)  # asked again later: found by name, a fresh start_wait_s
        reason = info.reason if info.reason not in ("", "None") else "not started"
        try:
            submitted = float((d / "submitted-at").read_text())
        except (OSError, ValueError):
            submitted = time.time()
        waited = time.time() - submitted
        if waited >= self.config.provision_timeout_s:
            self.cli.cancel(slurm_job)
            raise CapacityError(
                f"slurm: {request.nodes} node(s) of partition {request.offering.zone} "
                f"not running within {self.config.provision_timeout_s:g}s ({reason})"
            )
        raise CapacityError(f"slurm: queued as job {slurm_job} for {waited:.0f}s ({reason})")

    def _find(self, request: ProvisionRequest) -> str | None:
        """The live Slurm job of a request seen before (it has its folder), by name."""
        if not self.job_dir(request.request_id).exists():
            return None
        name = job_name(self.config.namespace, request.request_id)
        live = LIVE_STATES | REQUEUED_STATES
        found = [j for j in self.cli.jobs(name=name).values() if j.state in live]
        return found[0].job_id if found else None

    def _queued(self, slurm_job: str) -> JobInfo | None:
        """``squeue``'s view of ``slurm_job``, from one call for every gang being asked
        for, at most ``QUEUE_MAX_AGE_S`` old (asked again for a job it did not cover)."""
        now = time.monotonic()
        with self._mutex:
            view = self._queue_view
            if view is not None and now - view[0] < QUEUE_MAX_AGE_S and slurm_job in view[1]:
                return view[2].get(slurm_job)
            asked = frozenset({*self._asked.values(), slurm_job})
        jobs = self.cli.jobs(sorted(asked))
        with self._mutex:
            self._queue_view = (now, asked, jobs)
        return jobs.get(slurm_job)

    def _forget(self, request_id: str) -> None:
        with self._mutex:
            self._asked.pop(request_id, None)
            self._ask_until.pop(request_id, None)
            self._running_since.pop(request_id, None)
            self._partition.pop(request_id, None)

    def _allocation(
        self, request: ProvisionRequest, slurm_job: str, nodes: list[str]
    ) -> Allocation:
        self._forget(request.request_id)
        hosts = self._addresses(tuple(nodes))
        with self._mutex:
            self._nodes_seen = None  # its nodes are taken now: free capacity asks again
        gpus = request.accelerators_per_node
        return Allocation(
            allocation_id=request.request_id,
            provider=NAME,
            region=self.config.region,
            zone=request.offering.zone,
            instance_type=request.offering.instance_type,
            nodes=tuple(
                NodeSlot(rank=r, host=h, accelerator_ids=tuple(range(gpus)))
                for r, h in enumerate(hosts)
            ),
            extra={
                "slurm_job_id": slurm_job,
                "job_dir": str(self.job_dir(request.request_id)),
                "slurm_nodes": list(nodes),
                "job_id": request.job_id,
                "gpus_per_node": gpus,
                "master_port": PORT_BASE + zlib.crc32(request.request_id.encode()) % PORT_SPAN,
            },
        )

    def _submit(self, request: ProvisionRequest, name: str) -> str:
        d = self.job_dir(request.request_id)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        c = self.config
        fence = int(c.fence_s)
        grace = max(1, math.ceil(c.kill_grace_s))
        (d / "rank.sh").write_text(RANK_WAITER)
        (d / "batch.sh").write_text(
            batch_script(str(d), request.nodes, fence, grace, COMMAND_WAIT_S)
        )
        for old in d.glob("rank-*"):  # a gang submitted again after a cancel: a clean slate
            old.unlink(missing_ok=True)
        args = [
            f"--job-name={name}",
            f"--comment=intercloud store={c.namespace} job={request.job_id} "
            f"request={request.request_id}",
            f"--nodes={request.nodes}",
            "--ntasks-per-node=1",
            f"--cpus-per-task={max(1, math.ceil(request.cpus_per_node))}",
            f"--partition={request.offering.zone}",
            f"--output={d}/slurm-%j.out",
            f"--chdir={d}",
            "--no-requeue",
            "--export=ALL",
        ]
        if request.accelerators_per_node:
            args.append(f"--gres=gpu:{request.accelerators_per_node}")
        if request.memory_gib_per_node:
            args.append(f"--mem={max(1, math.floor(request.memory_gib_per_node * 1024))}M")
        if c.account:
            args.append(f"--account={c.account}")
        if request.duration_s:
            args.append(f"--time={max(1, math.ceil((request.duration_s + c.time_margin_s) / 60))}")
        (d / "submitted-at").write_text(repr(time.time()))
        job = self.cli.submit(args, str(d / "batch.sh"))
        (d / "slurm-job-id").write_text(job)
        return job

    def _addresses(self, names: tuple[str, ...]) -> list[str]:
        """Each node's address (``NodeAddr``; its name when Slurm has none), from the
        addresses last seen (``sinfo`` again for a node not seen yet)."""
        if any(n not in self._addr for n in names):
            nodes = self._all_nodes(max_age_s=0.0)
            with self._mutex:
                self._addr.update({n.name: n.address for n in nodes})
        return [self._addr.get(n, n) for n in names]

    def release(self, allocation_id: str) -> None:
        """Cancel the gang's Slurm job. Idempotent; a controller away: cancelled once back."""
        self._forget(allocation_id)
        d = self.job_dir(allocation_id)
        ids = {(d / "slurm-job-id").read_text().strip()} if (d / "slurm-job-id").exists() else set()
        try:
            # every job of that name (one submitted twice around a crash too), one call
            self.cli.cancel_named(job_name(self.config.namespace, allocation_id))
        except ProviderError as exc:
            log.warning("release of %s: %s (cancelled once slurm answers)", allocation_id, exc)
            with self._mutex:
                self._down.orphans |= ids

    # -- nodes -----------------------------------------------------------------------
    def _handle(self, job_id: str, attempt: int, rank: int, slurm_job: str, d: Path) -> NodeHandle:
        return NodeHandle(job_id, attempt, rank, provider=NAME,
                          extra={"slurm_job_id": slurm_job, "job_dir": str(d)})  # fmt: skip

    def start_node(self, allocation: Allocation, command: NodeCommand) -> NodeHandle:
        """Hand rank ``command.rank`` its command; returns once its task runs it.
        ``NodeAlreadyRunning``/``NodeAlreadyStarted`` (with its handle) if it was handed
        one before."""
        d = Path(str(allocation.extra["job_dir"]))
        slurm_job = str(allocation.extra["slurm_job_id"])
        r = command.rank
        key = (command.job_id, command.attempt, r)
        handle = self._handle(*key, slurm_job, d)
        where = f"node {command.job_id}/{command.attempt}/{r}"
        if (d / f"rank-{r}.exit").exists() or (d / f"rank-{r}.fenced").exists():
            raise NodeAlreadyStarted(f"{where} already ran", handle)
        if (d / f"rank-{r}.sh").exists():
            raise NodeAlreadyRunning(f"{where} is running", handle)
        if not any(n.rank == r for n in allocation.nodes):
            raise ProviderError(f"allocation {allocation.allocation_id} has no rank {r}")
        gpus = int(allocation.extra.get("gpus_per_node", 0))
        job_root = f"{self.config.work_root}/{self.config.namespace}/{command.job_id}"
        env = dict(command.env)
        env.update(
            node_variables(
                job_id=command.job_id,
                attempt=command.attempt,
                rank=r,
                num_nodes=command.num_nodes,
                hosts=[n.host for n in allocation.nodes],
                accelerator_ids=list(range(gpus)),
                checkpoint_dir=command.checkpoint_dir or f"{job_root}/checkpoints",
                provider=NAME,
                region=allocation.region,
                master_addr=allocation.nodes[0].host,
                master_port=int(allocation.extra.get("master_port", PORT_BASE)),
            )
        )
        if gpus:
            env.pop("CUDA_VISIBLE_DEVICES")  # the task's own GPUs, as Slurm set them
        try:
            script = rank_script(
                workdir=f"{job_root}/work/node-{r}",
                checkpoint_dir=env["INTERCLOUD_CHECKPOINT_DIR"],
                env=env,
                setup=command.setup,
                run=command.run,
                keep_slurm_gpus=bool(gpus),
            )
        except ValueError as exc:
            raise ProviderError(f"{where}: {exc}") from None
        tmp = d / f".rank-{r}.sh.tmp"
        tmp.write_text(script)
        tmp.replace(d / f"rank-{r}.sh")  # the task sees it whole or not at all
        deadline = time.monotonic() + self.config.provision_timeout_s
        while not (d / f"rank-{r}.pid").exists():
            if (d / f"rank-{r}.exit").exists():
                break
            if time.monotonic() > deadline:
                info = self.cli.jobs([slurm_job]).get(slurm_job)
                state = info.state if info else "gone"
                raise ProviderError(f"{where} did not start (slurm job {slurm_job}: {state})")
            time.sleep(0.005)
        with self._mutex:
            self._tracked[key] = _Tracked(handle, slurm_job, d)
        return handle

    def adopt(self, handle: NodeHandle) -> bool:
        """Track the node again: True if its task recorded an end or its Slurm job still
        runs (or the controller cannot say now: ``poll`` decides later)."""
        slurm_job = str(handle.extra.get("slurm_job_id", ""))
        d = Path(str(handle.extra.get("job_dir", "")))
        if not slurm_job or not str(d):
            return False
        r = handle.rank
        if not (d / f"rank-{r}.sh").exists():
            return False  # never handed its command
        if not (d / f"rank-{r}.exit").exists():
            try:
                info = self.cli.jobs([slurm_job]).get(slurm_job)
            except ProviderError:
                info = None  # cannot tell now: poll reports it once it can
            else:
                if info is None or info.state not in LIVE_STATES:
                    return False
        key = (handle.job_id, handle.attempt, r)
        with self._mutex:
            self._tracked.setdefault(key, _Tracked(handle, slurm_job, d))
        return True

    def kill(self, handle: NodeHandle) -> None:
        """Stop the node's command (SIGTERM to its process group, SIGKILL after
        ``kill_grace_s``) and wait until it is gone; the next ``poll`` reports the exit.
        Idempotent. Without an answer from the task, the whole Slurm job is cancelled."""
        slurm_job = str(handle.extra.get("slurm_job_id", ""))
        d = Path(str(handle.extra.get("job_dir", "")))
        r = handle.rank
        key = (handle.job_id, handle.attempt, r)
        tracked = self._tracked.get(key)
        done = (d / f"rank-{r}.exit", d / f"rank-{r}.fenced")
        if not slurm_job or not (d / f"rank-{r}.sh").exists():
            return
        if not any(p.exists() for p in done):
            (d / f"rank-{r}.kill").touch()
            deadline = time.monotonic() + self.config.kill_grace_s + 5
            while not any(p.exists() for p in done) and time.monotonic() < deadline:
                if not self._job_live(slurm_job):
                    break
                time.sleep(POLL_S)
        if not any(p.exists() for p in done) and self._job_live(slurm_job):
            self.cli.cancel(slurm_job, "KILL")
            deadline = time.monotonic() + 30
            while self._job_live(slurm_job):
                if time.monotonic() > deadline:
                    raise ProviderError(f"slurm job {slurm_job} still runs after scancel")
                time.sleep(POLL_S * 4)
        if tracked is not None:
            code = _read_code(d / f"rank-{r}.exit")
            tracked.ended = 137 if code is None else code
            self._pull_log(tracked)

    def _job_live(self, slurm_job: str) -> bool:
        info = self.cli.jobs([slurm_job]).get(slurm_job)
        return info is not None and info.state in LIVE_STATES

    def poll(self) -> list[NodeEvent]:
        """EXITED for ranks that recorded an exit code; LOST/PREEMPTED from Slurm's
        verdict for the others whose job no longer runs. Nothing while the controller is
        away, until ``down_after_s``: then every tracked node is LOST."""
        with self._mutex:
            items = list(self._tracked.items())
        events: list[NodeEvent] = []
        waiting: list[tuple[tuple[str, int, int], _Tracked]] = []
        for key, t in items:
            self._pull_log(t)
            code = t.ended if t.ended is not None else _read_code(t.job_dir / f"rank-{key[2]}.exit")
            if code is not None:
                events.append(self._ended(key, NodeEventKind.EXITED, code=code))
            else:
                waiting.append((key, t))
        self._cancel_orphans()
        now = time.monotonic()
        if not waiting or now - self._queue_polled < QUEUE_POLL_S:
            return events  # exits come from the files; Slurm's verdicts can wait a little
        self._queue_polled = now
        try:
            jobs = self.cli.jobs(sorted({t.slurm_job for _, t in waiting}))
        except ProviderError as exc:
            return events + self._controller_away(waiting, str(exc))
        with self._mutex:
            self._down.since = None
        for key, t in waiting:
            info = jobs.get(t.slurm_job)
            state = info.state if info is not None else self.cli.accounting_state(t.slurm_job)
            if state in LIVE_STATES:
                continue
            code = _read_code(t.job_dir / f"rank-{key[2]}.exit")  # written meanwhile?
            if code is not None:
                events.append(self._ended(key, NodeEventKind.EXITED, code=code))
                continue
            failed: tuple[str, ...] = ()
            if state == "NODE_FAIL" and info is not None:
                failed = self._unusable(info.nodes)
            kind, why = verdict(t.slurm_job, state, info, failed)
            if state in REQUEUED_STATES:
                self.cli.cancel(t.slurm_job)  # Slurm runs it no more: intercloud decides
            # a task that outlived its job (its slurmd died, not its host) stops itself
            (t.job_dir / f"rank-{key[2]}.kill").touch()
            self._pull_log(t)
            events.append(self._ended(key, kind, reason=why))
        return events

    def _unusable(self, names: tuple[str, ...]) -> tuple[str, ...]:
        try:
            nodes = {n.name: n for n in self.cli.nodes()}
        except ProviderError:
            return ()
        return tuple(n for n in names if n in nodes and not nodes[n].usable)

    def _controller_away(
        self, waiting: list[tuple[tuple[str, int, int], _Tracked]], error: str
    ) -> list[NodeEvent]:
        now = time.monotonic()
        with self._mutex:
            if self._down.since is None:
                self._down.since = now
                log.warning("poll of slurm: %s", error)
            away = now - self._down.since
            if away < self.config.down_after_s:
                return []
            self._down.orphans |= {t.slurm_job for _, t in waiting}
        why = f"slurm controller unreachable for {away:.0f}s"
        return [self._ended(key, NodeEventKind.LOST, reason=why) for key, _ in waiting]

    def _cancel_orphans(self) -> None:
        with self._mutex:
            orphans = set(self._down.orphans)
        if not orphans:
            return
        try:
            self.cli.ping()
            for job in orphans:
                self.cli.cancel(job)
        except ProviderError:
            return
        with self._mutex:
            self._down.orphans -= orphans

    def _ended(
        self,
        key: tuple[str, int, int],
        kind: NodeEventKind,
        *,
        code: int | None = None,
        reason: str = "",
    ) -> NodeEvent:
        with self._mutex:
            self._tracked.pop(key, None)
        return NodeEvent(kind, *key, exit_code=code, reason=reason, ended_at=time.time())

    def _pull_log(self, t: _Tracked) -> None:
        """Copy the rank's new output (Slurm's output file of its task) to where
        ``intercloud logs`` reads."""
        h = t.handle
        src = t.job_dir / f"rank-{h.rank}.log"
        try:
            with open(src, "rb") as f:
                f.seek(t.offset)
                chunk = f.read()
        except OSError:
            return
        if not chunk:
            return
        path = agent_log_path(self.config.log_root, h.job_id, h.attempt, h.rank)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "ab") as out:
            out.write(chunk)
        t.offset += len(chunk)

    def log_path(self, job_id: str, attempt: int, rank: int) -> Path:
        """Where ``poll`` copies the node's output on this machine."""
        return agent_log_path(self.config.log_root, job_id, attempt, rank)


def verdict(
    slurm_job: str, state: str | None, info: JobInfo | None, failed: tuple[str, ...] = ()
) -> tuple[NodeEventKind, str]:
    """The node event of a rank whose Slurm job ended without its exit code (``failed``:
    the job's nodes that are down now, named for a node failure)."""
    nodes = ",".join(failed or (info.nodes if info is not None else ()))
    on = f" on {nodes}" if nodes else ""
    if state == "PREEMPTED":
        return NodeEventKind.PREEMPTED, f"slurm preempted job {slurm_job}"
    if state == "NODE_FAIL":
        return NodeEventKind.LOST, f"slurm node failure{on} (job {slurm_job})"
    if state in REQUEUED_STATES:
        return NodeEventKind.LOST, f"slurm requeued job {slurm_job}{on}"
    if state is None:
        return NodeEventKind.LOST, f"slurm job {slurm_job} is gone (no exit code recorded)"
    return (
        NodeEventKind.LOST,
        f"slurm job {slurm_job} ended {state.lower()}{on} without an exit code",
    )


def _ready_nodes(job_dir: Path, ranks: int) -> list[str] | None:
    """The node each rank's task says it runs on (``rank-<r>.ready``; "" where it could
    not name it), or None while some task has not started."""
    out = []
    for r in range(ranks):
        try:
            out.append((job_dir / f"rank-{r}.ready").read_text().strip())
        except OSError:
            return None
    return out


def _job_number(job_id: str) -> int:
    """A Slurm job id's number (``123`` and ``123_4`` of an array: 123), for the order."""
    head = job_id.split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def _read_code(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


__all__ = ["NAME", "NodeShape", "SlurmConfig", "SlurmProvider", "job_name", "node_shape", "verdict"]


def _last_line(path: Path) -> str:
    """The last non-empty line of a job's Slurm output (why its launch failed), or ""."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [ln.strip() for ln in lines if ln.strip()]
    return said[-1][:300] if said else ""
