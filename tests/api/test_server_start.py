"""``intercloud server start``: several processes on one PostgreSQL database (every
acknowledged submission stored once, whichever process answered; tokens made through one
work on the others), and one-line refusals before anything starts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api_helpers import YAML, running_server, spec
from cli_helpers import ic

from intercloud.store.testing import temporary_postgres_database


@pytest.mark.usefixtures("postgres_required")
def test_two_workers_on_postgres(tmp_path: Path) -> None:
    with (
        temporary_postgres_database() as url,
        running_server(tmp_path / "home", "--workers", "2", INTERCLOUD_DB_URL=url) as server,
    ):
        server.tenant("alpha")
        member = server.token("alpha", "member")

        def submit(i: int) -> int:
            r = server.call(member, "POST", "/v1/workloads", content=spec(f"w{i}"), headers=YAML)
            assert r.status_code == 201, r.text
            job: int = r.json()["id"]
            return job

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(submit, range(24)))
        assert len(set(ids)) == 24
        listed = {r["id"] for r in server.call(member, "GET", "/v1/workloads").json()}
        assert set(ids) <= listed
        audited = server.call(server.admin, "GET", "/v1/audit", params={"limit": 1000}).json()
        assert sum(r["path"] == "/v1/workloads" and r["status"] == 201 for r in audited) == 24


def test_several_workers_need_postgres(tmp_path: Path) -> None:
    r = ic(tmp_path / "home", "server", "start", "--workers", "2")
    assert r.returncode == 2
    assert r.stderr.startswith("error: --workers: several workers need PostgreSQL")


def test_an_address_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        r = ic(tmp_path / "home", "server", "start", "--port", port)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"error: --port: cannot listen on 127.0.0.1:{port} (")
    bad = ic(tmp_path / "home", "server", "start", "--host", "no.such.host.invalid")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --host: cannot resolve")


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_host_is_written_in_brackets(tmp_path: Path) -> None:
    """``--host ::1``: the address in use and the banner are ``[::1]:PORT`` (a URL one
    can paste), not ``::1:PORT``."""
    import socket
    import subprocess
    import sys

    from cli_helpers import cli_env

    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        r = ic(tmp_path / "home", "server", "start", "--host", "::1", "--port", port)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: --port: cannot listen on [::1]:{port} (")
    proc = subprocess.Popen(
        [sys.executable, "-m", "intercloud", "server", "start", "--host", "::1", "--port", port],
        env=cli_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert banner.startswith(f"intercloud API on http://[::1]:{port} "), banner
