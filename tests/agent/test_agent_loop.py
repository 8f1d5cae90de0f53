"""The node agent (a real ``python -m intercloud.agent`` process) against a real agent
server on loopback: assignments run once, exit codes and logs land, kills work."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_helpers import (
    agent_env,
    clear_assignment,
    insert_instance,
    job,
    secret,
    start_agent,
    stop,
    wait_for,
)
from intercloud.agent.protocol import ReportState
from intercloud.control.agent_logs import agent_log_path
from intercloud.control.agent_server import AgentServer
from intercloud.providers.local_shim import EXIT_SHIM_ERROR
from intercloud.store import Store, open_store
from intercloud.store.records import AssignmentState
from node_processes import leftovers_killed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def server(store: Store, tmp_path: Path) -> Iterator[AgentServer]:
    with AgentServer(store, "127.0.0.1", 0, tmp_path / "logs", heartbeat_s=1.0) as srv:
        yield srv


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """The node's home; the test fails if a node process outlives it."""
    h = tmp_path / "node"
    h.mkdir()
    yield h
    left = leftovers_killed(h)
    assert not left, f"processes left behind: {left}"


def state_of(store: Store, iid: int) -> AssignmentState | None:
    rec = store.get_instance(iid)
    return None if rec is None else rec.assignment_state


def enrolled(store: Store, iid: int) -> bool:
    rec = store.get_instance(iid)
    return rec is not None and rec.secret_hash is not None


def test_assignment_runs_with_the_node_environment_and_reports(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    env = agent_env(home, server.url, "r1", boot)
    agent = start_agent(env, tmp_path / "agent.log")
    try:
        wait_for(lambda: enrolled(store, iid), what="enrolment")
        a = job(
            "echo out; echo err >&2; env | sort; exit 3",
            setup="echo setup-$INTERCLOUD_JOB_ID",
            env={"INTERCLOUD_JOB_ID": "7", "MY_VAR": "v", "PATH": "/usr/bin:/bin"},
        )
        store.agent_assign(iid, a)
        wait_for(lambda: state_of(store, iid) is AssignmentState.EXITED, what="exit")
        rec = store.get_instance(iid)
        assert rec is not None and rec.exit_code == 3 and rec.extra is not None
        assert rec.extra["agent"]["pid"] > 0 and rec.heartbeat_at is not None
        log = agent_log_path(tmp_path / "logs", "7", 1, 0).read_text()
        assert "setup-7\n" in log and "out\n" in log and "err\n" in log
        assert "MY_VAR=v\n" in log and "PATH=/usr/bin:/bin\n" in log  # the control plane's win
        assert f"HOME={home}\n" in log  # the machine's base, as a local node
        assert "INTERCLOUD_CHECKPOINT_DIR=" in log and "INTERCLOUD_NODE_MARKER=" in log
        assert boot not in log and "INTERCLOUD_AGENT_" not in log  # nothing of the agent's
        assert "attempt 1 rank 0: run ==" in log and log.rstrip().endswith("exit 3 ==")
        kinds = [e.kind for e in store.events() if e.instance_id == iid]
        assert kinds == ["agent_registered", "assigned", "agent_started", "agent_exited"]
    finally:
        assert stop(agent) == 0


def test_kill_request_stops_the_process_group(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    agent = start_agent(agent_env(home, server.url, "r1", boot), tmp_path / "agent.log")
    try:
        a = job("sleep 300 & echo child $!; wait", grace_s=1.0)
        store.agent_assign(iid, a)
        wait_for(lambda: state_of(store, iid) is AssignmentState.STARTED, what="start")
        log = agent_log_path(tmp_path / "logs", "7", 1, 0)
        wait_for(lambda: log.exists() and "child" in log.read_text(), what="output")
        store.agent_request_kill(iid, a.key)
        wait_for(lambda: state_of(store, iid) is AssignmentState.KILLED, what="kill")
        rec = store.get_instance(iid)
        assert rec is not None and rec.exit_code == 128 + signal.SIGTERM
        assert leftovers_killed(home, timeout_s=5) == []  # the background child too
    finally:
        assert stop(agent) == 0


def test_a_restarted_agent_never_runs_an_assignment_twice(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    counter = tmp_path / "counter"
    env = agent_env(home, server.url, "r1", boot)
    agent = start_agent(env, tmp_path / "agent.log")
    a = job(f"echo ran >> {counter}; echo first; sleep 3; echo second")
    store.agent_assign(iid, a)
    wait_for(lambda: state_of(store, iid) is AssignmentState.STARTED, what="start")
    stop(agent, signal.SIGKILL)  # the node's run lives on under its own supervisor

    agent = start_agent(env, tmp_path / "agent.log")
    try:
        wait_for(lambda: state_of(store, iid) is AssignmentState.EXITED, what="exit")
        rec = store.get_instance(iid)
        assert rec is not None and rec.exit_code == 0
        assert counter.read_text() == "ran\n"
        log = agent_log_path(tmp_path / "logs", "7", 1, 0).read_text()
        assert log.count("first\n") == 1 and log.count("second\n") == 1
        assert log.count(": run ==") == 1
        # the same token was re-used: one enrolment
        kinds = [e.kind for e in store.events() if e.instance_id == iid]
        assert kinds.count("agent_registered") == 1
    finally:
        assert stop(agent) == 0


def test_agent_waits_for_an_unreachable_server(store: Store, home: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot)
    agent = start_agent(
        agent_env(home, f"http://127.0.0.1:{port}", "r1", boot), tmp_path / "agent.log"
    )
    try:
        time.sleep(1.5)
        assert agent.poll() is None and not enrolled(store, iid)
        with AgentServer(store, "127.0.0.1", port, tmp_path / "logs"):
            wait_for(lambda: enrolled(store, iid), what="enrolment after the outage")
    finally:
        stop(agent)
    assert "unreachable" in (tmp_path / "agent.log").read_text()


def test_agent_stops_when_refused_for_good(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    insert_instance(store, "r1", secret=secret())
    agent = start_agent(agent_env(home, server.url, "r1", secret()), tmp_path / "agent.log")
    assert agent.wait(timeout=20) == 0  # the boot script does not restart it
    assert "bad_secret" in (tmp_path / "agent.log").read_text()


def test_an_assignment_started_elsewhere_is_never_run(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    """A node whose disk has no trace of a started assignment (a lost agent home)
    reports it ended with the supervisor-failure code instead of running it again."""
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    marker = tmp_path / "ran"
    a = job(f"touch {marker}")
    store.agent_assign(iid, a)
    store.agent_report(iid, a.key, ReportState.STARTED, pid=99)
    agent = start_agent(agent_env(home, server.url, "r1", boot), tmp_path / "agent.log")
    try:
        wait_for(lambda: state_of(store, iid) is AssignmentState.EXITED, what="exit")
        rec = store.get_instance(iid)
        assert rec is not None and rec.exit_code == EXIT_SHIM_ERROR
        assert not marker.exists()
    finally:
        assert stop(agent) == 0


def test_a_run_the_control_plane_gave_up_is_stopped(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    agent = start_agent(agent_env(home, server.url, "r1", boot), tmp_path / "agent.log")
    try:
        store.agent_assign(iid, job("sleep 300", grace_s=1.0))
        wait_for(lambda: state_of(store, iid) is AssignmentState.STARTED, what="start")
        clear_assignment(store, iid)  # unbound by the control plane
        assert leftovers_killed(home, timeout_s=20) == []
        assert "no longer assigned" in (tmp_path / "agent.log").read_text()
    finally:
        assert stop(agent) == 0


def test_a_kill_before_the_start_never_runs_it(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    marker = tmp_path / "ran"
    a = job(f"touch {marker}")
    store.agent_assign(iid, a)
    store.agent_request_kill(iid, a.key)
    agent = start_agent(agent_env(home, server.url, "r1", boot), tmp_path / "agent.log")
    try:
        wait_for(lambda: state_of(store, iid) is AssignmentState.KILLED, what="killed")
        assert not marker.exists()
    finally:
        assert stop(agent) == 0


def test_an_idle_instance_takes_the_next_job(
    store: Store, server: AgentServer, home: Path, tmp_path: Path
) -> None:
    """Instances outlive jobs: after one assignment ends, the same agent runs the next."""
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    agent = start_agent(agent_env(home, server.url, "r1", boot), tmp_path / "agent.log")
    try:
        store.agent_assign(iid, job("echo first job", job_id="1"))
        wait_for(lambda: state_of(store, iid) is AssignmentState.EXITED, what="first exit")
        second = job("echo second job; exit 5", job_id="2")
        assert store.agent_assign(iid, second) is not None
        server.notify(iid)
        wait_for(lambda: state_of(store, iid) is AssignmentState.EXITED, what="second exit")
        rec = store.get_instance(iid)
        assert rec is not None and rec.assignment == second.to_json() and rec.exit_code == 5
        assert "second job" in agent_log_path(tmp_path / "logs", "2", 1, 0).read_text()
        assert "second" not in agent_log_path(tmp_path / "logs", "1", 1, 0).read_text()
    finally:
        assert stop(agent) == 0
