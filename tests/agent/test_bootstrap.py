"""The boot script: what it exports, when it installs, how it restarts the agent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from intercloud.agent.bootstrap import (
    new_bootstrap_secret,
    render_user_data,
    secret_hash,
    secret_matches,
)

FAKE_PYTHON = """#!/bin/bash
echo "$*" >> "$CALLS"
case "$1 $2" in
  "-c import intercloud.agent") exit "$IMPORT_STATUS" ;;
  "-m pip") exit 0 ;;
  "-m intercloud.agent")
    n=$(( $(cat "$RUNS" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$RUNS"
    env > "$ENVOUT"
    [ "$n" -ge 2 ] && exit 0 || exit 1 ;;
esac
"""


def run_script(tmp_path: Path, script: str, import_status: int) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    (tmp_path / "user-data").write_text(script)
    env = {
        "PATH": os.environ["PATH"],
        "CALLS": str(tmp_path / "calls"),
        "RUNS": str(tmp_path / "runs"),
        "ENVOUT": str(tmp_path / "env"),
        "IMPORT_STATUS": str(import_status),
        "INTERCLOUD_AGENT_PYTHON": str(fake),
        "INTERCLOUD_AGENT_HOME": str(tmp_path / "agent"),
    }
    return subprocess.run(
        ["bash", str(tmp_path / "user-data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_script_installs_when_missing_and_restarts_a_failed_agent(tmp_path: Path) -> None:
    secret = new_bootstrap_secret()
    url = "https://control.example:8443/x'$(touch pwned)"
    script = render_user_data(url, "job-1-a0", secret, install="intercloud[aws]==0.1.0")
    done = run_script(tmp_path, script, import_status=1)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        "-c import intercloud.agent",
        "-m pip install --quiet intercloud[aws]==0.1.0",
        "-m intercloud.agent",
        "-m intercloud.agent",  # the first run failed: started again, once
    ]
    assert "agent exited with 1, restarting" in done.stderr
    env = dict(
        line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line
    )
    assert env["INTERCLOUD_AGENT_CONTROL_URL"] == url  # quoted: nothing ran from it
    assert env["INTERCLOUD_AGENT_REQUEST_ID"] == "job-1-a0"
    assert env["INTERCLOUD_AGENT_BOOTSTRAP_SECRET"] == secret
    assert env["INTERCLOUD_AGENT_HOME"] == str(tmp_path / "agent")
    assert not (tmp_path / "pwned").exists()


def test_script_skips_the_install_when_intercloud_is_there(tmp_path: Path) -> None:
    script = render_user_data("http://10.0.0.1:8080", "r", new_bootstrap_secret(), install=None)
    done = run_script(tmp_path, script, import_status=0)
    assert done.returncode == 0
    assert "-m pip" not in (tmp_path / "calls").read_text()
    # without an install spec a missing intercloud is a clear failure, not a loop
    done = run_script(tmp_path, script, import_status=1)
    assert done.returncode == 1 and "intercloud is not installed" in done.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("ftp://x", "r", None), "control_url"),
        (("http://x", "", None), "request_id"),
        (("http://x", "a b", None), "request_id"),
        (("http://x", "r", "short"), "bootstrap_secret"),
    ],
)
def test_bad_arguments_name_the_field(args: tuple[str, str, str | None], field: str) -> None:
    url, rid, secret = args
    with pytest.raises(ValueError, match=f"^{field}"):
        render_user_data(url, rid, secret or new_bootstrap_secret())


def test_secrets_are_random_and_compared_by_hash() -> None:
    a, b = new_bootstrap_secret(), new_bootstrap_secret()
    assert a != b and len(a) == 43
    assert secret_matches(a, secret_hash(a)) and not secret_matches(b, secret_hash(a))
    assert not secret_matches(a, None) and not secret_matches(a, "")
