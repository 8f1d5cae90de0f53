"""Talking to a Slurm cluster through its commands (``sinfo``, ``squeue``, ``sbatch``,
``scancel``, ``scontrol``, ``sacct``), and reading what they print.

Every call gets a timeout and a clean environment (``node_env.base_env`` plus
``SLURM_CONF`` when configured), so a secret of the daemon's environment never reaches
a job through ``sbatch --export``. A command that cannot run, times out or fails raises
``ProviderError`` with one line: the command and Slurm's own words.

Nodes come from ``sinfo --json`` (22.05 and later); where the installed Slurm has no
JSON output, from ``scontrol -o show nodes`` (one ``key=value`` line per node).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from intercloud.providers.base import ProviderError
from intercloud.providers.node_env import base_env

#: Node states in which a node takes no new work.
UNUSABLE_STATES = frozenset(
    {"down", "drain", "drained", "draining", "fail", "failing", "future", "unknown",
     "not_responding", "no_respond", "power_down", "powered_down", "powering_down",
     "reboot_requested", "invalid", "invalid_reg", "maintenance", "maint"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """One node as ``sinfo``/``scontrol`` describe it."""

    name: str
    address: str
    partitions: tuple[str, ...]
    cpus: int
    alloc_cpus: int
    memory_mb: int
    alloc_memory_mb: int
    gpus: int
    gpus_used: int
    gpu_type: str | None
    states: frozenset[str]

    @property
    def usable(self) -> bool:
        """Up and taking work (idle or partly allocated)."""
        return not (self.states & UNUSABLE_STATES)


def gres_gpus(gres: str) -> tuple[int, str | None]:
    """GPUs and their type in a GRES string: ``gpu:2``, ``gpu:a100:4(S:0-1)``,
    ``gpu:a100:1(IDX:0),shard:2``; (0, None) without GPUs."""
    total, kind = 0, None
    for item in re.split(r",(?![^()]*\))", gres or ""):
        item = re.sub(r"\(.*\)$", "", item.strip())
        parts = item.split(":")
        if parts[0] != "gpu":
            continue
        count = parts[-1]
        if len(parts) >= 2 and count.isdigit():
            total += int(count)
            if len(parts) >= 3:
                kind = parts[1]
        elif len(parts) >= 1:
            total += 1  # "gpu" or "gpu:type" alone counts one
            kind = parts[1] if len(parts) >= 2 else kind
    return total, kind


def nodes_from_sinfo_json(text: str) -> list[SlurmNode]:
    """The nodes of ``sinfo --json``."""
    data = json.loads(text)
    out = []
    for n in data.get("nodes", []):
        gpus, kind = gres_gpus(str(n.get("gres") or ""))
        used, _ = gres_gpus(str(n.get("gres_used") or ""))
        states = {str(n.get("state", "")).lower()}
        states |= {str(f).lower() for f in n.get("state_flags") or []}
        out.append(
            SlurmNode(
                name=str(n["name"]),
                address=str(n.get("address") or n["name"]),
                partitions=tuple(str(p) for p in n.get("partitions") or []),
                cpus=int(n.get("cpus") or 0),
                alloc_cpus=int(n.get("alloc_cpus") or 0),
                memory_mb=int(n.get("real_memory") or 0),
                alloc_memory_mb=int(n.get("alloc_memory") or 0),
                gpus=gpus,
                gpus_used=min(used, gpus),
                gpu_type=kind,
                states=frozenset(states),
            )
        )
    return out


def key_values(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value two`` of ``scontrol -o`` (a value may hold spaces: it
    runs to the next ``Key=``)."""
    out: dict[str, str] = {}
    matches = list(re.finditer(r"(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=", line))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        out[m.group(1)] = line[m.end() : end].strip()
    return out


def nodes_from_scontrol(text: str) -> list[SlurmNode]:
    """The nodes of ``scontrol -o show nodes`` (one line each)."""
    out = []
    for line in text.splitlines():
        kv = key_values(line)
        if "NodeName" not in kv:
            continue
        gpus, kind = gres_gpus(kv.get("Gres", ""))
        used, _ = gres_gpus(kv.get("GresUsed", ""))
        if not used:  # 22.05 prints the used GRES in AllocTRES only
            m = re.search(r"gres/gpu=(\d+)", kv.get("AllocTRES", ""))
            used = int(m.group(1)) if m else 0
        partitions = tuple(p for p in kv.get("Partitions", "").split(",") if p)
        out.append(
            SlurmNode(
                name=kv["NodeName"],
                address=kv.get("NodeAddr") or kv["NodeName"],
                partitions=partitions,
                cpus=_int(kv.get("CPUTot")),
                alloc_cpus=_int(kv.get("CPUAlloc")),
                memory_mb=_int(kv.get("RealMemory")),
                alloc_memory_mb=_int(kv.get("AllocMem")),
                gpus=gpus,
                gpus_used=min(used, gpus),
                gpu_type=kind,
                states=frozenset(s.lower() for s in kv.get("State", "").split("+") if s),
            )
        )
    return out


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job as ``squeue`` shows it."""

    job_id: str
    state: str  # RUNNING, PENDING, NODE_FAIL, ...
    reason: str
    nodes: tuple[str, ...]  # expanded, in rank order
    name: str
    restarts: int = 0


#: ``squeue -o`` format of ``JobInfo`` (fields joined by "|"; the name last: it may hold "|")
SQUEUE_FORMAT = "%i|%T|%r|%N|%j"


def parse_squeue(text: str, expand: Any) -> dict[str, JobInfo]:
    """Jobs of ``squeue -h -o SQUEUE_FORMAT``; ``expand(nodelist)`` expands a node list."""
    out: dict[str, JobInfo] = {}
    for line in text.splitlines():
        parts = line.split("|", 4)
        if len(parts) < 5:
            continue
        job, state, reason, nodelist, name = parts
        nodes = tuple(expand(nodelist)) if nodelist.strip() else ()
        out[job.strip()] = JobInfo(job.strip(), state.strip(), reason.strip(), nodes, name)
    return out


class SlurmCli:
    """Runs the Slurm commands for one cluster (``conf``: its ``slurm.conf``, None: the
    default one); ``bin_dir``: where the commands are (None: ``PATH``)."""

    def __init__(
        self, conf: str | None = None, bin_dir: str | None = None, timeout_s: float = 15.0
    ) -> None:
        self.conf = conf
        self.bin_dir = bin_dir
        self.timeout_s = timeout_s

    def env(self) -> dict[str, str]:
        """The environment of every Slurm command and of the jobs ``sbatch`` submits."""
        env = base_env(os.environ)
        if self.conf:
            env["SLURM_CONF"] = self.conf
        elif "SLURM_CONF" in os.environ:
            env["SLURM_CONF"] = os.environ["SLURM_CONF"]
        return env

    def binary(self, name: str) -> str:
        if self.bin_dir:
            return os.path.join(self.bin_dir, name)
        return shutil.which(name) or name

    def run(
        self, name: str, args: Sequence[str], *, check: bool = True, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.binary(name), *args]
        try:
            proc = subprocess.run(
                argv,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ProviderError(
                f"{name} not found (are Slurm's commands installed here?)"
            ) from None
        except subprocess.TimeoutExpired:
            raise ProviderError(
                f"{name} did not answer within {timeout or self.timeout_s:g}s"
            ) from None
        if check and proc.returncode != 0:
            raise ProviderError(f"{name}: {one_line(proc.stderr or proc.stdout)}")
        return proc

    # -- the cluster -------------------------------------------------------------------
    def ping(self) -> None:
        """ProviderError unless the controller answers."""
        if self.conf and not os.path.isfile(self.conf):
            raise ProviderError(f"slurm.conf not found: {self.conf}")
        out = self.run("scontrol", ["ping"], check=False)
        text = one_line(out.stdout + " " + out.stderr)
        if " is UP" not in out.stdout:
            where = f" (SLURM_CONF={self.conf})" if self.conf else ""
            raise ProviderError(f"cannot reach the slurm controller{where}: {text}")

    def nodes(self) -> list[SlurmNode]:
        out = self.run("sinfo", ["--json"], check=False)
        if out.returncode == 0 and out.stdout.lstrip().startswith("{"):
            return nodes_from_sinfo_json(out.stdout)
        if "unrecognized option" not in out.stderr and out.returncode != 0:
            raise ProviderError(f"sinfo: {one_line(out.stderr or out.stdout)}")
        return nodes_from_scontrol(self.run("scontrol", ["-o", "show", "nodes"]).stdout)

    def partitions(self) -> dict[str, dict[str, str]]:
        """Partition name -> its ``scontrol -o show partition`` fields."""
        out = self.run("scontrol", ["-o", "show", "partition"]).stdout
        parts = {}
        for line in out.splitlines():
            kv = key_values(line)
            if "PartitionName" in kv:
                parts[kv["PartitionName"]] = kv
        return parts

    def expand(self, nodelist: str) -> list[str]:
        """``n[1-3,7],m1`` -> its node names, in Slurm's order (``scontrol show
        hostnames`` for a form ``expand_hostlist`` does not read)."""
        names = expand_hostlist(nodelist)
        if names is not None:
            return names
        return self.run("scontrol", ["show", "hostnames", nodelist]).stdout.split()

    # -- jobs --------------------------------------------------------------------------
    def jobs(self, job_ids: Sequence[str] = (), name: str | None = None) -> dict[str, JobInfo]:
        """The jobs Slurm still shows (running, pending, or ended within ``MinJobAge``)."""
        args = ["-h", "--states=all", "-o", SQUEUE_FORMAT]
        if job_ids:
            args += ["-j", ",".join(job_ids)]
        if name:
            args += ["--name", name]
        out = self.run("squeue", args, check=False)
        if out.returncode != 0:
            if "Invalid job id" in out.stderr:
                return {}  # every one of them is gone
            raise ProviderError(f"squeue: {one_line(out.stderr or out.stdout)}")
        return parse_squeue(out.stdout, self.expand)

    def accounting_state(self, job_id: str) -> str | None:
        """The job's final state from ``sacct``; None where accounting is disabled (no
        slurmdbd) or it does not know the job."""
        out = self.run("sacct", ["-n", "-P", "-X", "-j", job_id, "-o", "State"], check=False)
        if out.returncode != 0:
            return None
        first = out.stdout.strip().splitlines()
        return first[0].split()[0] if first else None

    def submit(self, args: Sequence[str], script: str) -> str:
        """``sbatch --parsable ARGS SCRIPT`` -> the job id."""
        out = self.run("sbatch", ["--parsable", *args, script])
        return out.stdout.strip().split(";")[0]

    def cancel_named(self, name: str) -> None:
        """``scancel --name NAME``: every live job of that name; ProviderError when the
        controller does not answer."""
        self.run("scancel", [f"--name={name}"])

    def cancel_pending_named(self, name: str) -> None:
        """``scancel --state=PENDING --name NAME``: the jobs of that name still queued
        (one that started meanwhile is left running); ProviderError when the controller
        does not answer."""
        self.run("scancel", ["--state=PENDING", f"--name={name}"])

    def cancel(self, job_id: str, signal: str | None = None) -> None:
        args = [f"--signal={signal}", "--full"] if signal else []
        self.run("scancel", [*args, job_id], check=False)


def expand_hostlist(nodelist: str) -> list[str] | None:
    """Slurm's common host list forms: ``n1``, ``n[1-3,07]``, ``a[1-2],b3``; None for
    others (several bracket groups in one name)."""
    out: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,\[]*", nodelist.strip()):
        m = re.fullmatch(r"([^\[\]]*)\[([0-9,\-]+)\]([^\[\]]*)", part)
        if m is None:
            if "[" in part or "]" in part:
                return None
            out.append(part)
            continue
        head, ranges, tail = m.groups()
        for r in ranges.split(","):
            lo, _, hi = r.partition("-")
            width = len(lo)
            for i in range(int(lo), int(hi or lo) + 1):
                out.append(f"{head}{i:0{width}d}{tail}")
    return out


def one_line(text: str) -> str:
    """Slurm's message on one line, without its ``sbatch: error:`` prefixes."""
    words = " ".join(text.replace("error:", " ").split())
    return re.sub(r"\b(sbatch|squeue|scontrol|sinfo|scancel): ", "", words)[:300] or "no output"


def env_assignments(env: Mapping[str, str]) -> list[str]:
    """``KEY=VALUE`` words (for ``env``), names checked: a name that is not a shell
    variable name would be taken for a command."""
    out = []
    for k, v in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise ValueError(f"environment variable name {k!r} is not valid")
        out.append(f"{k}={v}")
    return out
