"""The local provider with real processes: gangs, logs, exit codes, kill, adopt, capacity."""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from intercloud.providers.base import (
    Allocation,
    Capability,
    CapacityError,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    NodeHandle,
    ProvisionRequest,
)
from intercloud.providers.local import (
    LocalProvider,
    NodeAlreadyRunning,
    NodeAlreadyStarted,
    UnknownOffering,
    pid_of,
    process_start_time,
    start_time_of,
)
from intercloud.providers.local_config import LocalConfig, LocalSite, parse_sites


def make(root: Path, cpus: float = 64, gpus: int = 8) -> LocalProvider:
    site = LocalSite(
        cpu_slots=cpus, memory_gib=256, gpu_type="H100" if gpus else None, gpu_slots=gpus
    )
    return LocalProvider(LocalConfig(root=root, sites=(site,), kill_grace_s=1.0))


def provision(
    p: LocalProvider, job: str, nodes: int, gpus: int = 0, attempt: int = 0, cpus: float = 1.0
) -> Allocation:
    return p.provision(
        ProvisionRequest(
            request_id=f"{job}-a{attempt}",
            job_id=job,
            offering=p.offerings()[0],
            nodes=nodes,
            accelerators_per_node=gpus,
            cpus_per_node=cpus,
        )
    )


def command(
    job: str,
    rank: int,
    nodes: int,
    run: str,
    setup: str | None = None,
    attempt: int = 0,
    env: dict[str, str] | None = None,
) -> NodeCommand:
    return NodeCommand(
        job_id=job,
        attempt=attempt,
        rank=rank,
        num_nodes=nodes,
        setup=setup,
        run=run,
        env=env or {},
        log_dir="",
        checkpoint_dir="",
    )


def start_gang(
    p: LocalProvider,
    alloc: Allocation,
    job: str,
    run: str,
    setup: str | None = None,
    attempt: int = 0,
    env: dict[str, str] | None = None,
) -> list[NodeHandle]:
    n = len(alloc.nodes)
    return [p.start_node(alloc, command(job, r, n, run, setup, attempt, env)) for r in range(n)]


def wait_events(p: LocalProvider, count: int, timeout: float = 30.0) -> list[NodeEvent]:
    events: list[NodeEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        assert time.monotonic() < deadline, f"only {events} after {timeout}s"
        events += p.poll()
        time.sleep(0.02)
    return sorted(events, key=lambda e: (e.job_id, e.attempt, e.rank))


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# -- gangs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("nodes", [1, 2, 4])
def test_gang_succeeds_with_torchrun_environment(root: Path, tmp_path: Path, nodes: int) -> None:
    p = make(root)
    out = tmp_path / "out"
    out.mkdir()
    alloc = provision(p, "job1", nodes, gpus=2)
    handles = start_gang(
        p, alloc, "job1", 'env > "$OUT/env-$RANK"', env={"OUT": str(out), "USER_VAR": "x"}
    )
    events = wait_events(p, nodes)
    assert [(e.kind, e.rank, e.exit_code) for e in events] == [
        (NodeEventKind.EXITED, r, 0) for r in range(nodes)
    ]
    assert all(pid_of(h) > 0 and start_time_of(h) > 0 for h in handles)
    envs = [read_env(out / f"env-{r}") for r in range(nodes)]
    ports = {e["MASTER_PORT"] for e in envs}
    assert len(ports) == 1 and 20000 <= int(ports.pop()) < 32000
    gpu_ids: list[str] = []
    for r, env in enumerate(envs):
        assert env["INTERCLOUD_JOB_ID"] == "job1"
        assert env["INTERCLOUD_NODE_RANK"] == env["RANK"] == str(r)
        assert env["INTERCLOUD_NUM_NODES"] == env["WORLD_SIZE"] == str(nodes)
        assert env["MASTER_ADDR"] == "127.0.0.1"
        assert env["INTERCLOUD_GPUS_PER_NODE"] == "2"
        assert env["INTERCLOUD_CHECKPOINT_DIR"] == str(p.checkpoint_dir("job1"))
        assert env["USER_VAR"] == "x"
        ids = env["CUDA_VISIBLE_DEVICES"].split(",")
        assert len(ids) == 2
        gpu_ids += ids
    assert len(set(gpu_ids)) == 2 * nodes  # distinct emulated GPUs on every node
    assert p.poll() == []  # each exit is reported once


def test_cpu_only_node_sees_no_gpus(root: Path, tmp_path: Path) -> None:
    p = make(root, gpus=0)
    assert Capability.GPUS not in p.capabilities
    alloc = provision(p, "cpu", 1)
    start_gang(p, alloc, "cpu", f'env > "{tmp_path}/env"')
    wait_events(p, 1)
    assert read_env(tmp_path / "env")["CUDA_VISIBLE_DEVICES"] == ""


def test_setup_runs_before_run_and_logs_are_complete(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "logs", 2)
    start_gang(
        p,
        alloc,
        "logs",
        setup="echo setup-out; echo setup-err >&2; touch ready",
        run="test -f ready && echo run-out; echo run-err >&2; seq 1 20000",
    )
    assert [e.exit_code for e in wait_events(p, 2)] == [0, 0]
    for rank in range(2):
        lines = p.log_path("logs", rank).read_text().splitlines()
        text = "\n".join(lines)
        for word in ("setup-out", "setup-err", "run-out", "run-err"):
            assert word in lines
        assert text.index(": setup ==") < text.index("setup-out") < text.index(": run ==")
        assert text.index(": run ==") < text.index("run-out") < text.index("run-err")
        assert [x for x in lines if x.isdigit()] == [str(i) for i in range(1, 20001)]
        assert lines[-1].endswith(": exit 0 ==")


def test_exit_code_decides_success(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "fail", 3)
    start_gang(p, alloc, "fail", 'if [ "$RANK" = 1 ]; then exit 3; fi')
    assert [(e.rank, e.exit_code) for e in wait_events(p, 3)] == [(0, 0), (1, 3), (2, 0)]


def test_failing_setup_skips_run(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "setup", 1)
    start_gang(p, alloc, "setup", setup="exit 5", run="echo never")
    assert wait_events(p, 1)[0].exit_code == 5
    log = p.log_path("setup", 0).read_text()
    assert "never" not in log and ": run ==" not in log


def test_checkpoint_dir_is_kept_across_attempts(root: Path) -> None:
    p = make(root)
    run = 'echo "$INTERCLOUD_ATTEMPT" >> "$INTERCLOUD_CHECKPOINT_DIR/seen"'
    for attempt in range(3):
        alloc = provision(p, "ckpt", 1, attempt=attempt)
        p.start_node(alloc, command("ckpt", 0, 1, run, attempt=attempt))
        assert wait_events(p, 1)[0].exit_code == 0
        p.release(alloc.allocation_id)
    assert (p.checkpoint_dir("ckpt") / "seen").read_text().split() == ["0", "1", "2"]
    assert p.log_path("ckpt", 0).read_text().count(": exit 0 ==") == 3


# -- kill ----------------------------------------------------------------------------------
def _descendants(handles: list[NodeHandle]) -> list[psutil.Process]:
    procs = []
    for h in handles:
        shim = psutil.Process(pid_of(h))
        procs += [shim, *shim.children(recursive=True)]
    return procs


def _wait_for_sleepers(handles: list[NodeHandle], per_node: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 30  # a poll: shims start slowly on a loaded machine
    while True:
        procs = _descendants(handles)
        if sum(p.name() == "sleep" for p in procs) >= per_node * len(handles):
            return procs
        assert time.monotonic() < deadline, "node processes did not start"
        time.sleep(0.02)


def _still_alive(procs: list[psutil.Process], timeout: float = 3.0) -> list[psutil.Process]:
    """The processes of ``procs`` still running (zombies count as gone) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def test_kill_stops_the_whole_gang_including_grandchildren(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "kill", 3)
    run = "sleep 300 & bash -c 'sleep 301 & wait' & sleep 302"
    handles = start_gang(p, alloc, "kill", run)
    procs = _wait_for_sleepers(handles, 3)
    for h in handles:
        p.kill(h)
    assert not _still_alive(procs)
    for h in handles:
        assert not p.node_alive("kill", 0, h.rank)
    events = wait_events(p, 3)
    assert all(e.kind == NodeEventKind.EXITED and e.exit_code == 143 for e in events)
    p.kill(handles[0])  # idempotent


def test_kill_escalates_to_sigkill(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "stubborn", 1)
    (h,) = start_gang(p, alloc, "stubborn", "trap '' TERM; sleep 300 & wait; sleep 300")
    procs = _wait_for_sleepers([h], 1)
    t0 = time.monotonic()
    p.kill(h)
    assert time.monotonic() - t0 < 5
    assert not _still_alive(procs)
    (event,) = wait_events(p, 1)
    assert event.kind == NodeEventKind.EXITED and event.exit_code == 128 + signal.SIGKILL


def test_node_lost_when_its_supervisor_is_killed(root: Path) -> None:
    """A SIGKILLed shim leaves its node unsupervised: poll kills the rest, then says LOST."""
    p = make(root)
    alloc = provision(p, "lost", 1)
    (h,) = start_gang(p, alloc, "lost", "sleep 300")
    procs = _wait_for_sleepers([h], 1)
    os.kill(pid_of(h), signal.SIGKILL)
    (event,) = wait_events(p, 1)
    assert event.kind == NodeEventKind.LOST
    assert not _still_alive(procs)
    assert not p.node_alive("lost", 0, 0)


def test_kill_finds_processes_that_left_the_session(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "escape", 1)
    (h,) = start_gang(p, alloc, "escape", "setsid sleep 300 & sleep 300")
    procs = _wait_for_sleepers([h], 2)
    p.kill(h)
    assert not _still_alive(procs)
    assert wait_events(p, 1)[0].kind == NodeEventKind.EXITED


def test_adopting_a_node_whose_supervisor_died_kills_its_remains(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "orphan", 1)
    (h,) = start_gang(p, alloc, "orphan", "sleep 300")
    procs = _wait_for_sleepers([h], 1)
    os.kill(pid_of(h), signal.SIGKILL)
    deadline = time.monotonic() + 3
    while process_start_time(pid_of(h)) is not None:  # SIGKILL is delivered asynchronously
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not make(root).adopt(h)
    assert not _still_alive(procs)


def test_a_relative_root_names_only_its_own_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two providers on the same relative root from different folders (two users, two
    test runs): each runs its nodes, and cleaning up one node never touches the other's
    node of the same job, attempt and rank (the marker is an absolute path)."""
    providers, handles = [], []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            monkeypatch.chdir(tmp_path / name)
            p = make(Path("local"))
            (h,) = start_gang(p, provision(p, "same", 1), "same", 'echo "up $PWD"; sleep 300')
            providers.append(p)
            handles.append(h)
        sleepers = [_wait_for_sleepers([h], 1) for h in handles]
        for p, h, name in zip(providers, handles, ("a", "b"), strict=True):
            assert p.root == tmp_path / name / "local"
            marker = psutil.Process(pid_of(h)).children()[0].environ()["INTERCLOUD_NODE_MARKER"]
            assert marker == str(
                tmp_path / name / "local" / "jobs" / "same" / "attempt-0" / "node-0"
            )
        os.kill(pid_of(handles[0]), signal.SIGKILL)  # a's node is lost: poll kills its remains
        (event,) = wait_events(providers[0], 1)
        assert event.kind == NodeEventKind.LOST
        assert not _still_alive(sleepers[0])
        assert len(_still_alive(sleepers[1], timeout=0)) == len(sleepers[1])  # b untouched
        log = providers[1].log_path("same", 0).read_text()
        assert f"up {tmp_path / 'b' / 'local'}" in log
    finally:
        for p, h in zip(providers, handles, strict=False):
            p.kill(h)
    assert not providers[1].node_alive("same", 0, 0)


# -- restarts of the control loop ----------------------------------------------------------
def test_node_survives_the_provider_and_is_adopted(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "adopt", 2)
    handles = start_gang(p, alloc, "adopt", 'sleep 0.5; exit "$((RANK + 7))"')
    del p
    gc.collect()
    fresh = make(root)
    assert all(fresh.adopt(h) for h in handles)
    assert [e.exit_code for e in wait_events(fresh, 2)] == [7, 8]
    # adopting after the exit still reports it (the exit code is on disk)
    later = make(root)
    assert later.adopt(handles[0])
    (event,) = wait_events(later, 1)
    assert event.kind == NodeEventKind.EXITED and event.exit_code == 7


def test_restarted_loop_finds_the_handle_of_a_started_node(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "found", 1)
    (h,) = start_gang(p, alloc, "found", "sleep 300")
    fresh = make(root)
    assert fresh.node_handle("found", 0, 0) == h
    with pytest.raises(NodeAlreadyRunning) as info:
        fresh.start_node(alloc, command("found", 0, 1, "sleep 300"))
    assert info.value.handle == h
    assert fresh.adopt(h)
    fresh.kill(h)
    assert wait_events(fresh, 1)[0].exit_code == 143


def test_adopt_refuses_a_reused_pid_and_never_signals_it(root: Path) -> None:
    p = make(root)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        start = process_start_time(bystander.pid)
        assert start is not None
        fake = NodeHandle(
            "ghost", 0, 0, p.name, extra={"pid": bystander.pid, "start_time": start + 1}
        )
        assert not p.adopt(fake)
        p.kill(fake)
        assert bystander.poll() is None  # still alive, never signalled
    finally:
        bystander.kill()
        bystander.wait()
    assert not p.adopt(
        NodeHandle("ghost", 0, 1, p.name, extra={"pid": bystander.pid, "start_time": start})
    )


def test_a_node_never_runs_twice(root: Path) -> None:
    p = make(root)
    alloc = provision(p, "twice", 1)
    (h,) = start_gang(p, alloc, "twice", "sleep 300")
    assert p.node_alive("twice", 0, 0)
    with pytest.raises(NodeAlreadyRunning) as info:
        p.start_node(alloc, command("twice", 0, 1, "sleep 300"))
    assert info.value.handle == h
    p.kill(h)
    wait_events(p, 1)
    with pytest.raises(NodeAlreadyStarted) as again:
        p.start_node(alloc, command("twice", 0, 1, "sleep 300"))
    assert not isinstance(again.value, NodeAlreadyRunning)
    # the next attempt is a new node
    p.start_node(alloc, command("twice", 0, 1, "true", attempt=1))
    assert wait_events(p, 1)[0].exit_code == 0


# -- capacity ------------------------------------------------------------------------------
def test_capacity_is_reserved_released_and_durable(root: Path) -> None:
    p = make(root, cpus=4, gpus=4)
    a = provision(p, "a", 3)
    with pytest.raises(CapacityError):
        provision(p, "b", 2)
    assert provision(p, "a", 3) == a  # idempotent by request id
    assert make(root, cpus=4, gpus=4).allocations() == [a]  # survives a new instance
    with pytest.raises(CapacityError):
        provision(make(root, cpus=4, gpus=4), "b", 2)
    p.release(a.allocation_id)
    p.release(a.allocation_id)  # idempotent
    b = provision(p, "b", 2, cpus=2)
    assert b.extra["cpus"] == 4
    (usage,) = p.usage()
    assert usage.cpus_free == 0 and usage.allocations == 1


def test_gpu_slots_are_distinct_across_allocations(root: Path) -> None:
    p = make(root, gpus=8)
    a = provision(p, "a", 2, gpus=2)
    b = provision(p, "b", 1, gpus=3)
    ids = [g for alloc in (a, b) for n in alloc.nodes for g in n.accelerator_ids]
    assert sorted(ids) == list(range(7))
    with pytest.raises(CapacityError, match="GPUs"):
        provision(p, "c", 1, gpus=2)
    p.release(a.allocation_id)
    c = provision(make(root, gpus=8), "c", 2, gpus=2)
    assert sorted(g for n in c.nodes for g in n.accelerator_ids) == [0, 1, 2, 3]
    assert a.extra["master_port"] != b.extra["master_port"]


def test_unknown_offering_is_refused(root: Path) -> None:
    p = make(root)
    other = make(root / "other", gpus=0)
    with pytest.raises(UnknownOffering):
        p.provision(ProvisionRequest("x", "x", other.offerings()[0], 1))


# -- configuration -------------------------------------------------------------------------
def test_sites_pose_as_providers(root: Path) -> None:
    sites = parse_sites(
        "aws/us-east-1/us-east-1a,cpus=16,gpus=H100:8,price=2.5;gcp/us-central1,cpus=8"
    )
    config = LocalConfig(root=root, sites=sites)
    p = LocalProvider(config)
    assert p.name == "local"
    assert {
        (o.provider, o.region, o.zone, o.accelerator, o.accelerator_count, o.vcpus)
        for o in p.offerings()
    } == {
        ("aws", "us-east-1", "us-east-1a", "H100", 8, 16.0),
        ("gcp", "us-central1", "", None, 0, 8.0),
    }
    aws = LocalProvider(config.for_provider("aws"))
    assert aws.name == "aws" and Capability.GPUS in aws.capabilities
    gcp_offer = next(o for o in p.offerings() if o.provider == "gcp")
    alloc = p.provision(ProvisionRequest("g", "g", gcp_offer, 8))
    assert (alloc.provider, alloc.region) == ("gcp", "us-central1")
    with pytest.raises(CapacityError):
        p.provision(ProvisionRequest("g2", "g2", gcp_offer, 1))


def test_config_from_env(tmp_path: Path) -> None:
    c = LocalConfig.from_env(
        {
            "INTERCLOUD_HOME": str(tmp_path),
            "INTERCLOUD_LOCAL_GPUS": "A100:4",
            "INTERCLOUD_LOCAL_CPUS": "12",
        }
    )
    assert c.root == tmp_path / "local"
    (site,) = c.sites
    assert (site.provider, site.gpu_type, site.gpu_slots, site.cpu_slots) == (
        "local",
        "A100",
        4,
        12,
    )
    yaml_file = tmp_path / "sites.yaml"
    yaml_file.write_text(
        "- {provider: aws, region: eu-west-1, cpu_slots: 4}\n"
        "- {provider: azure, region: westeurope, gpu_type: A100, gpu_slots: 2}\n"
    )
    c = LocalConfig.from_env(
        {"INTERCLOUD_HOME": str(tmp_path), "INTERCLOUD_LOCAL_SITES": str(yaml_file)}
    )
    assert [s.key for s in c.sites] == ["aws/eu-west-1/", "azure/westeurope/"]
    for bad in ("aws", "aws/r,cpus=x", "aws/r,bogus=1", "aws/r,gpus=H100:-1"):
        with pytest.raises(ValueError):
            parse_sites(bad)


# -- the control loop is SIGKILLed at random moments ------------------------------------
LOOP = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from intercloud.providers.base import NodeCommand, ProvisionRequest
    from intercloud.providers.local import LocalProvider, NodeAlreadyStarted
    from intercloud.providers.local_config import LocalConfig, LocalSite

    root, out, jobs, nodes, finish = sys.argv[1:]
    p = LocalProvider(LocalConfig(root=Path(root), sites=(LocalSite(cpu_slots=512),)))
    offering = p.offerings()[0]
    pending = []
    for i in range(int(jobs)):
        job = f"j{i}"
        alloc = p.provision(ProvisionRequest(f"{job}-a0", job, offering, int(nodes)))
        for rank in range(int(nodes)):
            run = f'echo $$ >> "{out}/{job}-{rank}"; sleep 0.3'
            cmd = NodeCommand(job, 0, rank, int(nodes), None, run, {}, "", "")
            pending.append((alloc, cmd))
    handles = []
    while pending:
        alloc, cmd = pending.pop(0)
        try:
            handles.append(p.start_node(alloc, cmd))
        except NodeAlreadyStarted as exc:
            if exc.handle is None:  # its shim is starting: look again later
                pending.append((alloc, cmd))
                time.sleep(0.01)
                continue
            assert p.adopt(exc.handle), exc.handle
            handles.append(exc.handle)
    if finish == "1":
        seen = {}
        deadline = time.monotonic() + 90  # a poll: generous for a loaded 2-core machine
        while len(seen) < len(handles) and time.monotonic() < deadline:
            for e in p.poll():
                seen[(e.job_id, e.rank)] = (e.kind.value, e.exit_code)
            time.sleep(0.02)
        print(sorted(set(seen.values())), len(seen))
    """
)


def test_no_node_runs_twice_when_the_loop_is_killed_at_random(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    jobs, nodes = 30, 2
    rng = random.Random(7)
    for _ in range(6):
        loop = subprocess.Popen(
            [sys.executable, "-c", LOOP, str(root), str(out), str(jobs), str(nodes), "0"]
        )
        time.sleep(rng.uniform(0.1, 0.6))
        loop.send_signal(signal.SIGKILL)
        loop.wait()
    done = subprocess.run(
        [sys.executable, "-c", LOOP, str(root), str(out), str(jobs), str(nodes), "1"],
        capture_output=True,
        text=True,
        timeout=150,
        check=True,
    )
    assert done.stdout.split("\n")[0] == f"[('exited', 0)] {jobs * nodes}", done.stdout
    for i in range(jobs):
        for rank in range(nodes):
            assert len((out / f"j{i}-{rank}").read_text().split()) == 1  # ran exactly once


# -- nothing escapes a node ----------------------------------------------------------------
ESCAPE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    out, scrub = sys.argv[1], sys.argv[2] == "scrub"
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids = [subprocess.Popen(["sleep", "300"], start_new_session=True, **quiet).pid]
    if scrub:  # left the session, closed every fd and dropped the environment
        pids.append(subprocess.Popen(["sleep", "301"], env={}, start_new_session=True,
                                     close_fds=True, **quiet).pid)
    r, w = os.pipe()
    if os.fork() == 0:  # double fork into a new session, every fd but the pipe closed
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os.closerange(3, w)
            os.closerange(w + 1, 4096)
            time.sleep(302)
        os._exit(0)
    os.close(w)
    pids.append(int(os.read(r, 32)))
    with open(out + ".tmp", "w") as f:
        f.write(" ".join(map(str, pids)))
    os.replace(out + ".tmp", out)
    """
)


def _escapers(tmp_path: Path, scrub: bool, then: str = "") -> tuple[str, Path]:
    script, out = tmp_path / "escape.py", tmp_path / "escaped.pids"
    script.write_text(ESCAPE)
    mode = "scrub" if scrub else "keep"
    return f"{sys.executable} {script} {out} {mode} {then}".strip(), out


def _escaped(out: Path, count: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 30
    while not out.exists():
        assert time.monotonic() < deadline, "the job did not record its escaped processes"
        time.sleep(0.02)
    procs = [psutil.Process(int(pid)) for pid in out.read_text().split()]
    assert len(procs) == count
    for proc in procs:
        assert os.getsid(proc.pid) != os.getsid(os.getpid())
    return procs


def test_nothing_escapes_a_node_that_ends(root: Path, tmp_path: Path) -> None:
    """setsid children, double forks and a child that dropped its environment and every
    descriptor are all gone once the node has exited by itself."""
    p = make(root)
    alloc = provision(p, "ends", 1)
    run, out = _escapers(tmp_path, scrub=True)
    start_gang(p, alloc, "ends", f"{run} && sleep 0.5")
    procs = _escaped(out, 3)
    (event,) = wait_events(p, 1)
    assert event.kind == NodeEventKind.EXITED and event.exit_code == 0
    assert not _still_alive(procs, timeout=0.5)


def test_nothing_escapes_a_cancelled_node(root: Path, tmp_path: Path) -> None:
    p = make(root)
    alloc = provision(p, "cancel", 1)
    run, out = _escapers(tmp_path, scrub=True)
    (h,) = start_gang(p, alloc, "cancel", f"{run} && sleep 300")
    procs = _escaped(out, 3)
    p.kill(h)
    assert not _still_alive(procs, timeout=0.5)
    assert wait_events(p, 1)[0].exit_code == 143


def test_orphans_of_a_dead_supervisor_are_found_by_their_marker(root: Path, tmp_path: Path) -> None:
    """The shim SIGKILLed (as in a crash): its escaped processes carry the node's marker,
    so adopting the node in a new provider (the recovery path) kills them, and so does
    poll in the provider that started it."""
    for adopt in (True, False):
        p = make(root)
        job = f"dead{adopt}"
        alloc = provision(p, job, 1)
        run, out = _escapers(tmp_path, scrub=False)
        out.unlink(missing_ok=True)
        (h,) = start_gang(p, alloc, job, f"{run} && sleep 300")
        procs = _escaped(out, 2)
        os.kill(pid_of(h), signal.SIGKILL)
        deadline = time.monotonic() + 3
        while process_start_time(pid_of(h)) is not None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        if adopt:
            assert not make(root).adopt(h)
        else:
            assert wait_events(p, 1)[0].kind == NodeEventKind.LOST
        assert not _still_alive(procs, timeout=0.5)
        p.kill(h)
