"""The agent server's authentication and its log channel (in-process HTTP)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from agent_helpers import insert_instance, job, secret, set_instance_state
from intercloud.agent.protocol import (
    ASSIGNMENT_PATH,
    HEARTBEAT_PATH,
    LOGS_PATH,
    MAX_LOG_CHUNK,
    REGISTER_PATH,
    REPORT_PATH,
    bearer,
)
from intercloud.control import agent_server
from intercloud.control.agent_logs import agent_log_files, agent_log_path
from intercloud.control.agent_server import AgentServer, create_agent_app
from intercloud.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_agent_app(store, tmp_path / "logs", heartbeat_s=2.0)) as c:
        yield c


def enrol(client: TestClient, store: Store, request_id: str = "r1") -> tuple[int, dict[str, str]]:
    boot, token = secret(), secret()
    iid = insert_instance(store, request_id, secret=boot, state="running")
    body = {"request_id": request_id, "slot": 0, "bootstrap_secret": boot, "token": token}
    resp = client.post(REGISTER_PATH, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"instance_id": iid, "heartbeat_s": 2.0}
    return iid, {"Authorization": bearer(iid, token)}


def test_register_checks_the_bootstrap_secret(client: TestClient, store: Store) -> None:
    boot = secret()
    insert_instance(store, "r1", secret=boot)
    bad = {"request_id": "r1", "slot": 0, "bootstrap_secret": secret(), "token": secret()}
    resp = client.post(REGISTER_PATH, json=bad)
    assert resp.status_code == 401 and resp.json()["detail"]["reason"] == "bad_secret"
    short = {**bad, "bootstrap_secret": boot, "token": "short"}
    assert client.post(REGISTER_PATH, json=short).status_code == 422
    good = {**bad, "bootstrap_secret": boot}
    assert client.post(REGISTER_PATH, json=good).status_code == 200
    again = {**good, "token": secret()}  # a second token for the same node
    resp = client.post(REGISTER_PATH, json=again)
    assert resp.status_code == 409 and resp.json()["detail"]["reason"] == "already_enrolled"


@pytest.mark.parametrize(
    "header",
    [None, "Basic abc", "Bearer 1", "Bearer x.y", "Bearer 1.wrongtoken"],
)
def test_every_call_needs_the_node_token(
    client: TestClient, store: Store, header: str | None
) -> None:
    iid, _ = enrol(client, store)
    store.agent_assign(iid, job("echo hi"))
    before = store.get_instance(iid)
    headers = {"Authorization": header} if header else {}
    calls = [
        client.post(HEARTBEAT_PATH, json={"address": "1.2.3.4"}, headers=headers),
        client.get(ASSIGNMENT_PATH, headers=headers),
        client.post(REPORT_PATH, json={"key": "7/1/0", "state": "started"}, headers=headers),
        client.post(LOGS_PATH, params={"key": "7/1/0", "offset": 0}, content=b"x", headers=headers),
    ]
    assert [c.status_code for c in calls] == [401] * 4
    assert store.get_instance(iid) == before


def test_a_token_speaks_for_its_own_instance_only(client: TestClient, store: Store) -> None:
    a_id, a_auth = enrol(client, store, "ra")
    b_id, _ = enrol(client, store, "rb")
    store.agent_assign(b_id, job("echo b", job_id="8"))
    # A's token with B's id is a wrong token for B
    token = a_auth["Authorization"].split(".", 1)[1]
    forged = {"Authorization": bearer(b_id, token)}
    assert client.get(ASSIGNMENT_PATH, headers=forged).status_code == 401
    # A sees no assignment of its own and cannot report or log for B's
    assert client.get(ASSIGNMENT_PATH, headers=a_auth).json() == {"assignment": None, "state": None}
    resp = client.post(REPORT_PATH, json={"key": "8/1/0", "state": "started"}, headers=a_auth)
    assert resp.status_code == 409 and resp.json()["detail"]["reason"] == "other_assignment"
    resp = client.post(
        LOGS_PATH, params={"key": "8/1/0", "offset": 0}, content=b"x", headers=a_auth
    )
    assert resp.status_code == 409
    rec = store.get_instance(b_id)
    assert rec is not None and rec.assignment_state is not None
    assert rec.assignment_state.value == "assigned"
    # an ended instance's token no longer works
    set_instance_state(store, a_id, "terminated")
    resp = client.post(HEARTBEAT_PATH, json={}, headers=a_auth)
    assert resp.status_code == 401 and resp.json()["detail"]["reason"] == "instance_ended"


def test_log_chunks_append_in_order_once(client: TestClient, store: Store, tmp_path: Path) -> None:
    iid, auth = enrol(client, store)
    a = job("echo hi", job_id="../../escape")
    store.agent_assign(iid, a)

    def send(offset: int, data: bytes) -> tuple[int, dict[str, object]]:
        r = client.post(
            LOGS_PATH, params={"key": a.key, "offset": offset}, content=data, headers=auth
        )
        return r.status_code, r.json()

    assert send(0, b"hello ") == (200, {"offset": 6})
    assert send(0, b"hello ") == (200, {"offset": 6})  # a replayed chunk
    assert send(3, b"lo world\n") == (200, {"offset": 12})  # overlaps: only the tail lands
    code, body = send(20, b"gap")
    assert code == 409 and body["detail"] == {"reason": "log_gap", "offset": 12}
    path = agent_log_path(tmp_path / "logs", a.job_id, a.attempt, a.rank)
    assert path.read_bytes() == b"hello world\n"
    assert (tmp_path / "logs") in path.parents  # the job id cannot climb out
    assert path.stat().st_mode & 0o777 == 0o600


def test_long_poll_answers_when_the_assignment_changes(client: TestClient, store: Store) -> None:
    iid, auth = enrol(client, store)
    resp = client.get(ASSIGNMENT_PATH, params={"wait": 0.3}, headers=auth)
    assert resp.json() == {"assignment": None, "state": None}
    a = job("echo hi")
    store.agent_assign(iid, a)
    got = client.get(ASSIGNMENT_PATH, params={"wait": 5}, headers=auth).json()
    assert got["state"] == "assigned" and got["assignment"]["key"] == a.key
    store.agent_request_kill(iid, a.key)
    got = client.get(ASSIGNMENT_PATH, params={"wait": 5, "key": a.key}, headers=auth).json()
    assert got["assignment"]["kill"] is True


def test_server_runs_on_a_free_port_and_stops(store: Store, tmp_path: Path) -> None:
    server = AgentServer(store, "127.0.0.1", 0, tmp_path / "logs")
    with server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        req = urllib.request.Request(server.url + HEARTBEAT_PATH, data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 401
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + HEARTBEAT_PATH, timeout=2)


def test_notify_answers_a_long_poll_at_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_server, "_POLL_S", 60.0)  # only a wake-up can answer early
    with AgentServer(store, "127.0.0.1", 0, tmp_path / "logs") as server:
        boot, token = secret(), secret()
        iid = insert_instance(store, "r1", secret=boot, state="running")
        body = {"request_id": "r1", "slot": 0, "bootstrap_secret": boot, "token": token}
        assert httpx.post(server.url + REGISTER_PATH, json=body).status_code == 200
        got: list[dict[str, object]] = []

        def poll() -> None:
            resp = httpx.get(
                server.url + ASSIGNMENT_PATH,
                params={"wait": 20},
                headers={"Authorization": bearer(iid, token)},
                timeout=30,
            )
            got.append(resp.json())

        thread = threading.Thread(target=poll)
        started = time.monotonic()
        thread.start()
        time.sleep(0.5)
        store.agent_assign(iid, job("echo hi"))
        server.notify(iid)
        thread.join(30)
        assert time.monotonic() - started < 10
        assert got and got[0]["state"] == "assigned"


def test_a_log_chunk_too_big_is_refused(client: TestClient, store: Store) -> None:
    iid, auth = enrol(client, store)
    a = job("echo hi")
    store.agent_assign(iid, a)
    resp = client.post(
        LOGS_PATH,
        params={"key": a.key, "offset": 0},
        content=b"x" * (MAX_LOG_CHUNK + 1),
        headers=auth,
    )
    assert resp.status_code == 413


def test_log_files_of_a_node_come_attempt_by_attempt(tmp_path: Path) -> None:
    for attempt in (10, 2, 1):
        path = agent_log_path(tmp_path, "j/1", attempt, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"attempt {attempt}\n")
    agent_log_path(tmp_path, "j/1", 3, 1).parent.mkdir(parents=True)
    assert [p.read_text() for p in agent_log_files(tmp_path, "j/1", 0)] == [
        "attempt 1\n",
        "attempt 2\n",
        "attempt 10\n",
    ]
    assert agent_log_files(tmp_path, "j/1", 1) == [] and agent_log_files(tmp_path, "x", 0) == []
