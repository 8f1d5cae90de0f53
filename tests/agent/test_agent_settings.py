"""The agent's settings: environment, flags, and EC2 instance metadata (IMDSv2)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from intercloud.agent.settings import SettingsError, load_settings

TOKEN = "imds-session-token"
METADATA = {"instance-id": "i-0abc", "ami-launch-index": "3", "local-ipv4": "10.9.8.7"}


class _FakeImds(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        ok = self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        )
        self._answer(200 if ok else 400, TOKEN if ok else "")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self._answer(401, "")  # IMDSv2 only: no session token, no answer
            return
        name = self.path.removeprefix("/latest/meta-data/")
        self._answer(200, METADATA[name]) if name in METADATA else self._answer(404, "")

    def _answer(self, code: int, body: str) -> None:
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def imds() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeImds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


BASE = {
    "INTERCLOUD_AGENT_CONTROL_URL": "http://10.0.0.1:8080/",
    "INTERCLOUD_AGENT_REQUEST_ID": "r1",
    "INTERCLOUD_AGENT_BOOTSTRAP_SECRET": "s" * 43,
    "INTERCLOUD_AGENT_HOME": "/tmp/agent-home",
}


def test_identity_comes_from_instance_metadata(imds: str) -> None:
    s = load_settings([], {**BASE, "INTERCLOUD_AGENT_IMDS_URL": imds})
    assert (s.provider_instance_id, s.slot, s.address) == ("i-0abc", 3, "10.9.8.7")
    assert s.control_url == "http://10.0.0.1:8080" and str(s.home) == "/tmp/agent-home"


def test_environment_and_flags_win_over_metadata(imds: str) -> None:
    env = {**BASE, "INTERCLOUD_AGENT_IMDS_URL": imds, "INTERCLOUD_AGENT_INSTANCE_ID": "i-env"}
    s = load_settings(["--slot", "1"], env)
    assert (s.provider_instance_id, s.slot, s.address) == ("i-env", 1, "")


@pytest.mark.parametrize(
    ("drop", "extra", "needle"),
    [
        ("INTERCLOUD_AGENT_CONTROL_URL", {}, "INTERCLOUD_AGENT_CONTROL_URL is not set"),
        ("INTERCLOUD_AGENT_REQUEST_ID", {}, "INTERCLOUD_AGENT_REQUEST_ID is not set"),
        ("INTERCLOUD_AGENT_BOOTSTRAP_SECRET", {}, "INTERCLOUD_AGENT_BOOTSTRAP_SECRET is not set"),
        ("", {"INTERCLOUD_AGENT_SLOT": "x"}, "INTERCLOUD_AGENT_SLOT"),
        ("", {"INTERCLOUD_AGENT_CONTROL_URL": "ftp://x"}, "INTERCLOUD_AGENT_CONTROL_URL"),
    ],
)
def test_bad_settings_name_the_variable(drop: str, extra: dict[str, str], needle: str) -> None:
    env = {**BASE, "INTERCLOUD_AGENT_INSTANCE_ID": "i-1", **extra}
    env.pop(drop, None)
    with pytest.raises(SettingsError, match=needle):
        load_settings([], env)


def test_no_metadata_and_no_instance_id_is_one_line_and_exit_2() -> None:
    env = {**BASE, "INTERCLOUD_AGENT_IMDS_URL": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "intercloud.agent"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "intercloud-agent: INTERCLOUD_AGENT_INSTANCE_ID is not set and instance metadata did "
        "not answer"
    ]
