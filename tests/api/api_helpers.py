"""A real API server for tests: ``intercloud server start`` in its own process on a free
loopback port, over a temporary home (and optionally PostgreSQL), stopped afterwards
with its home's daemon. ``bootstrap`` prints the first admin token as a user would get it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cli_helpers import cli_env, ic, stop_daemon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    home: Path
    url: str
    admin: str
    extra: dict[str, str] = field(default_factory=dict)

    def http(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def call(self, token: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        with self.http(token) as c:
            return c.request(method, path, **kw)

    def token(self, tenant: str, role: str, **kw: Any) -> str:
        r = self.call(self.admin, "POST", "/v1/tokens", json={"tenant": tenant, "role": role, **kw})
        assert r.status_code == 201, r.text
        secret: str = r.json()["secret"]
        return secret

    def tenant(self, name: str, **limits: Any) -> None:
        r = self.call(self.admin, "POST", "/v1/tenants", json={"name": name, **limits})
        assert r.status_code in (201, 409), r.text

    def ic(self, token: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        """The CLI pointed at this server with ``token``."""
        return ic(
            self.home / "client",
            *args,
            INTERCLOUD_API_URL=self.url,
            INTERCLOUD_TOKEN=token,
            **extra,
        )


def _wait_up(url: str, proc: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


@contextmanager
def running_server(home: Path, *args: str, **extra: str) -> Iterator[Server]:
    """``intercloud server start ARGS`` on ``home``; ``extra`` are environment variables."""
    boot = ic(home, "admin", "bootstrap", **extra)
    assert boot.returncode == 0, boot.stderr
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "intercloud", "server", "start", "--port", str(port), *args],
        env=cli_env(home, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc)
        yield Server(home, url, boot.stdout.strip(), dict(extra))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop_daemon(home)


def spec(name: str, tenant: str | None = None, run: str = "echo hi") -> str:
    owner = f"tenant: {tenant}\n" if tenant else ""
    return f"kind: training\nname: {name}\n{owner}resources: {{cpus: 1+}}\nrun: {run}\n"


YAML = {"Content-Type": "application/yaml"}
