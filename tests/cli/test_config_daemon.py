"""config.yaml as the daemon and `run` see it: a bad one is refused with one line; a
provider that cannot be built is logged and left out while the others keep working."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import cli_env, ic, stop_daemon


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir()
    yield h
    stop_daemon(h)


def test_daemon_refuses_a_bad_config(home: Path) -> None:
    (home / "config.yaml").write_text("caps: {local: 3}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "intercloud.control.daemon"],
        env=cli_env(home),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"intercloud daemon: {home / 'config.yaml'}: caps.local: must be at most 1, got 3"
    ]
    assert "caps.local" in (home / "daemon.error").read_text()
    assert not (home / "daemon.pid").exists()


def test_provider_that_cannot_be_built_is_left_out(home: Path, tmp_path: Path) -> None:
    # aws cannot be built (its profile does not exist); local still runs the job.
    (home / "config.yaml").write_text(
        "providers:\n  local: {}\n  aws: {profile: no-such-profile-here}\n"
    )
    spec = tmp_path / "job.yaml"
    spec.write_text("name: hello\nresources: {cpus: '1+'}\nrun: echo hi from local\n")
    aws = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    out = ic(home, "run", str(spec), timeout=120, **aws)
    assert out.returncode == 0, out.stderr
    assert "hi from local" in out.stdout and "SUCCEEDED" in out.stdout
    # `run` says once that aws was left out; so does the daemon's log.
    assert [ln for ln in out.stderr.splitlines() if "aws" in ln] == [
        "provider aws left out: The config profile (no-such-profile-here) could not be found"
    ]
    log = (home / "daemon.log").read_text()
    assert "provider aws left out: The config profile (no-such-profile-here)" in log
    assert "Traceback" not in log
