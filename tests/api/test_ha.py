"""``intercloud server start`` on two homes sharing one PostgreSQL database: both
answer, each starts its home's daemon, exactly one daemon leads (the control-loop
lease) and the jobs submitted through either server finish once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from api_helpers import YAML, Server, _wait_up, free_port, running_server, spec
from cli_helpers import cli_env

from intercloud.control.daemon import daemon_status, stop_daemon
from intercloud.control.leader import CONTROL_LOOP_LEASE
from intercloud.store import open_store
from intercloud.store.testing import temporary_postgres_database


@pytest.mark.usefixtures("postgres_required")
def test_two_servers_two_homes_one_database_one_leader(tmp_path: Path) -> None:
    # a lease of a few seconds: short enough to matter, long enough that a loaded
    # 2-core box does not let the leader's renewal lapse (this test is not a takeover)
    extra = {"INTERCLOUD_LEADER_TTL": "6", "INTERCLOUD_LOCAL_CPUS": "8"}
    with temporary_postgres_database() as url:
        extra["INTERCLOUD_DB_URL"] = url
        with running_server(tmp_path / "a", **extra) as a:
            home_b = tmp_path / "b"
            port = free_port()
            proc = subprocess.Popen(  # the admin token lives in the shared database
                [sys.executable, "-m", "intercloud", "server", "start", "--port", str(port)],
                env=cli_env(home_b, **extra),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                _wait_up(f"http://127.0.0.1:{port}", proc)
                b = Server(home_b, f"http://127.0.0.1:{port}", a.admin, extra)
                _one_leader_both_answer(a, b, url)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
                stop_daemon(home_b)


def _one_leader_both_answer(a: Server, b: Server, url: str) -> None:
    a.tenant("alpha")
    member = a.token("alpha", "member")
    ids = []
    for i, server in enumerate([a, b, a, b]):
        r = server.call(member, "POST", "/v1/workloads", content=spec(f"w{i}"), headers=YAML)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    daemons = {daemon_status(s.home)["pid"] for s in (a, b)}
    # each server started its home's
    assert None not in daemons and len(daemons) == 2, _daemon_logs(a, b)
    store = open_store(url)
    try:
        deadline = time.monotonic() + 60
        while not all(store.get(j).state.terminal for j in ids):
            assert time.monotonic() < deadline, [store.get(j).state.value for j in ids]
            time.sleep(0.2)
        assert all(store.get(j).state.value == "SUCCEEDED" for j in ids)
        assert all(store.get(j).attempt == 1 for j in ids)
        lease = store.lease(CONTROL_LOOP_LEASE)
        assert lease is not None and lease.epoch == 1  # one leader all along
        assert int(lease.holder.rsplit(":", 2)[1]) in daemons
    finally:
        store.close()
    for server in (a, b):  # both answer, whichever took the submission
        for j in ids:
            r = server.call(member, "GET", f"/v1/workloads/{j}")
            assert r.status_code == 200 and r.json()["state"] == "SUCCEEDED", r.text


def _daemon_logs(*servers: Server) -> str:
    """The tail of each home's daemon log (why a daemon is missing)."""
    out = []
    for s in servers:
        status = daemon_status(s.home)
        log = Path(status["log"])
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
        out.append(f"--- {s.home}: {status}\n{tail}")
    return "\n".join(out)
