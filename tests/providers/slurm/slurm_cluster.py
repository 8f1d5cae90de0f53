"""A real Slurm cluster on this host for the slurm provider's tests and ``bench/engines.py``:
munged with a key of its own, slurmctld and two slurmd (nodes n1 and n2, both 127.0.0.1,
each with two CPUs and two GRES GPUs of type t4 whose device files are /dev/null and
/dev/zero) in one folder, on
non-default ports. Needs Debian's ``slurm-wlm`` and ``munge`` and root (``SlurmUser=root``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The binaries the cluster needs; a test skips (with their names) when one is missing.
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "srun")
NODES = ("n1", "n2")


def missing_binaries() -> list[str]:
    found = {b: shutil.which(b) or _sbin(b) for b in BINARIES}
    return [b for b, path in found.items() if not path]


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_ports(count: int) -> list[int]:
    """``count`` ports free now (consecutive not needed: each daemon names its own)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(_free_port())
    return sorted(ports)


@dataclass
class SlurmCluster:
    """The folder, config and daemons of one test cluster."""

    root: Path
    #: CPUs each node declares (more than the host has is fine for sleeping jobs)
    cpus: int = 2
    ctld_port: int = 0
    node_ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: munged's folder, outside ``root`` (munged must reach it, and pytest's tmp folders
    #: are root's alone)
    munge_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ic-munge-")))
    #: a daemon was killed (``kill_node``, ``kill_controller``): restarted daemons can
    #: leave Slurm's view of the nodes stale, so the tests' fixture starts a fresh cluster
    faulted: bool = False

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment the Slurm commands need (``SLURM_CONF``)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- start -----------------------------------------------------------------------
    def start(self) -> None:
        for d in ("etc", "state", "log", "run", *(f"spool/{n}" for n in NODES)):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        ports = _free_ports(1 + len(NODES))
        self.ctld_port, node_ports = ports[0], ports[1:]
        self.node_ports = dict(zip(NODES, node_ports, strict=True))
        self._start_munge()
        self._write_conf()
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self.wait_controller()
        for n in NODES:
            self.start_node(n)
        self.wait_idle(NODES)

    def _start_munge(self) -> None:
        m = self.munge_dir
        key = m / "munge.key"
        key.write_bytes(os.urandom(1024))
        shutil.chown(m, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        m.chmod(0o711)
        self._spawn(
            "munged",
            [
                "runuser", "-u", "munge", "--", _sbin("munged") or "munged", "--foreground",
                f"--key-file={key}", f"--socket={m}/munge.socket",
                f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log",
                f"--seed-file={m}/munged.seed", "--force",
            ],
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not (m / "munge.socket").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start: {self._log_tail('munged')}")
            time.sleep(0.05)

    def _write_conf(self) -> None:
        r = self.root
        host = socket.gethostname()
        (r / "etc" / "gres.conf").write_text(
            "AutoDetect=off\nName=gpu Type=t4 File=/dev/null\nName=gpu Type=t4 File=/dev/zero\n"
        )
        nodes = "\n".join(
            f"NodeName={n} NodeHostname={host} NodeAddr=127.0.0.1 Port={p} CPUs={self.cpus} "
            "RealMemory=4000 Gres=gpu:t4:2 State=UNKNOWN"
            for n, p in self.node_ports.items()
        )
        self.conf.write_text(
            f"""ClusterName=ictest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_dir}/munge.socket
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd-%n.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
SlurmdParameters=config_overrides
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmdTimeout=5
SlurmctldTimeout=5
MessageTimeout=3
InactiveLimit=0
KillWait=2
MinJobAge=30
SchedulerParameters=sched_interval=1,defer_batch=0
SchedulerType=sched/backfill
JobRequeue=0
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
{nodes}
PartitionName=main Nodes={",".join(NODES)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
        )

    def start_node(self, name: str) -> None:
        # the marker is inherited by the node's step daemons (``kill_node`` finds them)
        self._spawn(
            f"slurmd-{name}",
            ["slurmd", "-D", "-N", name, "-f", str(self.conf)],
            IC_TEST_SLURM_NODE=f"{self.conf}:{name}",
        )

    def start_controller(self) -> None:
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self.wait_controller()

    def _spawn(self, name: str, argv: list[str], **extra: str) -> None:
        log = open(self.root / "log" / f"{name}.stdout", "ab")  # noqa: SIM115 (kept by the child)
        self.procs[name] = subprocess.Popen(
            argv,
            env={**self.env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _log_tail(self, name: str) -> str:
        path = self.root / "log" / f"{name}.stdout"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    # -- waits -----------------------------------------------------------------------
    def scontrol(self, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["scontrol", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def wait_controller(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "is UP" not in self.scontrol("ping").stdout:
            proc = self.procs.get("slurmctld")
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"slurmctld exited: {self._log_tail('slurmctld')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"slurmctld did not answer: {self._log_tail('slurmctld')}")
            time.sleep(0.1)

    def node_state(self, name: str) -> str:
        out = self.scontrol("-o", "show", "node", name).stdout
        for word in out.split():
            if word.startswith("State="):
                return word.removeprefix("State=")
        return ""

    def wait_idle(self, names: tuple[str, ...] | list[str], timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        for n in names:
            # plain IDLE: "IDLE+NOT_RESPONDING" (a controller just back) takes no work
            while self.node_state(n) != "IDLE":
                if time.monotonic() > deadline:
                    state = self.node_state(n)
                    raise RuntimeError(f"node {n} is {state}: {self._log_tail('slurmd-' + n)}")
                if "DOWN" in self.node_state(n) or "DRAIN" in self.node_state(n):
                    self.scontrol("update", f"NodeName={n}", "State=RESUME")
                time.sleep(0.2)

    def drain(self, timeout: float = 90) -> None:
        """Cancel every job of the cluster and wait until none is left and both nodes
        are IDLE."""
        subprocess.run(["scancel", "--user", "root"], env=self.env, capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout
        while True:
            out = subprocess.run(
                ["squeue", "-h", "-o", "%i %T"], env=self.env, capture_output=True, text=True,
                timeout=30,
            ).stdout.strip()  # fmt: skip
            if not out:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs left on the test cluster: {out}")
            time.sleep(0.3)
        self.wait_idle(["n1", "n2"], timeout=max(5.0, deadline - time.monotonic()))

    # -- faults ----------------------------------------------------------------------
    def kill_node(self, name: str) -> None:
        """The node's host dies: its slurmd, its step daemons and everything they
        started (SIGKILL)."""
        self.faulted = True
        self._kill(f"slurmd-{name}")
        self._kill_steps(name)

    def _kill_steps(self, *names: str) -> None:
        markers = {f"IC_TEST_SLURM_NODE={self.conf}:{n}".encode() for n in names}
        for pid in _with_descendants(_pids_with_env(markers)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill_controller(self) -> None:
        self.faulted = True
        self._kill("slurmctld")

    def _kill(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    # -- stop ------------------------------------------------------------------------
    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                ["scancel", "--full", "--signal=KILL", "-u", "root"],
                env=self.env, capture_output=True, timeout=10,
            )  # fmt: skip
        for name in list(self.procs):
            proc = self.procs[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self._kill_steps(*NODES)
        shutil.rmtree(self.munge_dir, ignore_errors=True)


def _pids_with_env(markers: set[bytes]) -> list[int]:
    """Pids of processes whose environment holds one of ``markers``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if env & markers:
            found.append(int(entry.name))
    return found


def _with_descendants(pids: list[int]) -> list[int]:
    """``pids`` and every process below them (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out
