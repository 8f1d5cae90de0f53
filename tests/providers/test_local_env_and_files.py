"""The local provider gives a node only its own environment, and syncs its files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_local import command, make, provision, read_env, wait_events

import intercloud
from intercloud.providers.base import Capability
from intercloud.providers.local_shim import copy_into_place
from intercloud.providers.node_env import BASE_ENV_NAMES


def test_node_environment_is_base_plus_command_never_the_callers(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAEMON_SECRET", "must-not-leak")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("HOME", str(tmp_path / "daemon-home"))
    p = make(root, gpus=0)
    alloc = provision(p, "env", 1)
    out = tmp_path / "env.txt"
    cmd = command("env", 0, 1, f"env > {out}", env={"FROM_JOB": "yes", "HOME": "/job/home"})
    p.start_node(alloc, cmd)
    assert [e.exit_code for e in wait_events(p, 1)] == [0]
    env = read_env(out)
    assert "DAEMON_SECRET" not in env
    assert env["FROM_JOB"] == "yes"
    assert env["HOME"] == "/job/home"  # the command's env overrides the base
    assert env["LANG"] == "C.UTF-8"
    assert env["INTERCLOUD_NODE_RANK"] == "0"
    assert os.path.dirname(sys.executable) == env["PATH"].split(os.pathsep)[0]
    provider_vars = {"PWD", "SHLVL", "_", "OLDPWD", "FROM_JOB", "MASTER_ADDR", "MASTER_PORT"}
    provider_vars |= {"WORLD_SIZE", "RANK", "NODE_RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"}
    provider_vars |= {"CUDA_VISIBLE_DEVICES"}
    leaked = {
        k
        for k in env
        if k not in BASE_ENV_NAMES and k not in provider_vars and not k.startswith("INTERCLOUD_")
    }
    assert not leaked


def test_workdir_and_file_mounts_are_copied_before_setup(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("print('module')\n")
    (src / "run.sh").write_text("#!/bin/sh\necho script ran\n")
    (src / "run.sh").chmod(0o755)
    (src / "link").symlink_to("pkg/mod.py")
    data = tmp_path / "data.txt"
    data.write_text("data file\n")
    home = tmp_path / "node-home"
    shared = tmp_path / "shared" / "deep" / "data.txt"
    p = make(root, gpus=0)
    assert Capability.FILE_SYNC in p.capabilities
    alloc = provision(p, "files", 2)
    run = (
        "set -e; ./run.sh; cat pkg/mod.py; readlink link; cat in/data.txt; "
        f"cat {shared}; cat ~/cfg/data.txt; ls tree/pkg"
    )
    for rank in range(2):
        cmd = replace(
            command("files", rank, 2, run, setup="test -x run.sh", env={"HOME": str(home)}),
            workdir=str(src),
            file_mounts=(
                ("in/data.txt", str(data)),
                (str(shared), str(data)),
                ("~/cfg/data.txt", str(data)),
                ("tree", str(src)),
            ),
        )
        p.start_node(alloc, cmd)
    assert [e.exit_code for e in wait_events(p, 2)] == [0, 0]
    for rank in range(2):
        log = p.log_path("files", rank).read_text()
        assert ": sync ==" in log.split(": setup ==")[0]
        for needle in ("script ran", "module", "pkg/mod.py", "data file", "mod.py"):
            assert needle in log
        work = p.job_dir("files") / "work" / f"node-{rank}"
        assert (work / "link").is_symlink()
    assert shared.read_text() == "data file\n"
    assert (home / "cfg" / "data.txt").read_text() == "data file\n"
    spec = json.loads((p.node_dir("files", 0, 0) / "spec.json").read_text())
    assert [src for src, _ in spec["sync"]] == [str(src), str(data), str(data), str(data), str(src)]


def test_a_source_gone_at_start_fails_the_node_with_the_reason(root: Path, tmp_path: Path) -> None:
    p = make(root, gpus=0)
    alloc = provision(p, "gone", 1)
    cmd = replace(command("gone", 0, 1, "echo ran"), workdir=str(tmp_path / "vanished"))
    p.start_node(alloc, cmd)
    assert [e.exit_code for e in wait_events(p, 1)] == [1]
    log = p.log_path("gone", 0).read_text()
    assert "intercloud: cannot copy" in log and "vanished" in log and "ran\n" not in log


def test_copy_into_place_skips_specials_and_never_recurses_into_its_destination(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    os.mkfifo(src / "fifo")
    (src / "dirlink").symlink_to(tmp_path)  # copied as a link, never followed
    dest = src / "inner" / "copy"  # the destination lies inside the source
    skipped: list[str] = []
    copy_into_place(str(src), str(dest), skipped)
    assert (dest / "a.txt").read_text() == "a"
    assert skipped == [str(src / "fifo")]
    assert (dest / "dirlink").is_symlink()
    assert not (dest / "inner" / "copy").exists()
    # copying again replaces files in place (another node sharing the destination)
    (src / "a.txt").write_text("b")
    copy_into_place(str(src), str(dest), [])
    assert (dest / "a.txt").read_text() == "b"
    assert not [f for f in os.listdir(dest) if "intercloud-tmp" in f]


def test_copy_into_place_stops_when_asked(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.txt").write_text(str(i))
    with pytest.raises(InterruptedError):
        copy_into_place(str(src), str(tmp_path / "dst"), [], stop=lambda: True)
    assert list((tmp_path / "dst").iterdir()) == []


BLOCKING_SHIM = """
import os, sys
sys.path.insert(0, sys.argv[1])
import intercloud.providers.local_shim as shim
r, _w = os.pipe()  # never written: a read that blocks for ever, like /proc/kmsg
def blocking_copy(source, dest):
    open(sys.argv[3], "w").close()
    os.read(r, 1)
shim._copy_file = blocking_copy
sys.exit(shim.main(["local_shim.py", sys.argv[2]]))
"""


def test_a_copy_that_blocks_for_ever_still_ends_at_sigterm(tmp_path: Path) -> None:
    """A sync source that never yields its bytes (a pseudo-file) must not make the shim
    deaf to SIGTERM: it ends with 143 at once, not after the grace period, not never."""
    node_dir, source, blocked = tmp_path / "node", tmp_path / "src", tmp_path / "blocked"
    node_dir.mkdir()
    source.mkdir()
    (source / "f").write_text("x")
    spec = {
        "log_path": str(tmp_path / "node.log"),
        "sync": [[str(source), str(tmp_path / "dest")]],
        "run": "true",
        "grace_s": 60,  # longer than the test waits: the alarm is not what ends it
    }
    (node_dir / "spec.json").write_text(json.dumps(spec))
    src_root = str(Path(intercloud.__file__).parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", BLOCKING_SHIM, src_root, str(node_dir), str(blocked)]
    )
    try:
        deadline = time.monotonic() + 30
        while not (blocked.exists() and (node_dir / "ready").exists()):
            assert proc.poll() is None and time.monotonic() < deadline, "the copy never began"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert (node_dir / "exit_code").read_text().split()[0] == "143"
