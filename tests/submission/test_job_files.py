"""workdir and file_mounts sources: resolved against the spec's folder, refused by field."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from intercloud.model import ResourceRequest, TrainingJob
from intercloud.specs import SpecError
from intercloud.submission import ResolvedFiles, resolve_files


def _job(workdir: str | None = None, **mounts: str) -> TrainingJob:
    return TrainingJob(
        name="j",
        resources=ResourceRequest(cpus=1),
        run="true",
        workdir=workdir,
        file_mounts=tuple(mounts.items()),
    )


def _mounts(pairs: dict[str, str]) -> TrainingJob:
    return TrainingJob(
        name="j", resources=ResourceRequest(cpus=1), run="true", file_mounts=tuple(pairs.items())
    )


def test_relative_sources_resolve_against_the_spec_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_dir = tmp_path / "specs"
    (spec_dir / "code").mkdir(parents=True)
    (spec_dir / "data.csv").write_text("x")
    home = tmp_path / "home"
    (home / "cfg").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)  # not the spec's folder: must not matter
    job = _mounts({"/data/in.csv": "data.csv", "cfg": "~/cfg", "~/abs": str(spec_dir / "code")})
    job = TrainingJob(**{**_as_kwargs(job), "workdir": "./code"})
    files = resolve_files(job, spec_dir, can_sync=True, source="s.yaml")
    assert files.workdir == str(spec_dir / "code")
    assert dict(files.file_mounts) == {
        "/data/in.csv": str(spec_dir / "data.csv"),
        "cfg": str(home / "cfg"),
        "~/abs": str(spec_dir / "code"),
    }
    assert ResolvedFiles.from_json(files.to_json()) == files
    assert not resolve_files(_job(), spec_dir, can_sync=False)  # nothing to sync: fine


def _as_kwargs(job: TrainingJob) -> dict[str, object]:
    return {name: getattr(job, name) for name in TrainingJob.__dataclass_fields__}


@pytest.mark.parametrize(
    "uri", ["s3://bucket/data", "gs://b", "r2://b/x", "https://github.com/a/b.git", "storage://x"]
)
def test_uris_are_refused_naming_the_field(tmp_path: Path, uri: str) -> None:
    with pytest.raises(SpecError) as err:
        resolve_files(_mounts({"/data": uri}), tmp_path, can_sync=True, source="s.yaml")
    assert err.value.field == "file_mounts./data"
    assert "not a local path" in str(err.value)
    if uri.startswith("storage://"):  # a SkyPilot storage object: say what it is
        assert "SkyPilot storage object (storage://x) is a bucket" in str(err.value)
    with pytest.raises(SpecError) as err:
        resolve_files(_job(workdir=uri), tmp_path, can_sync=True, source="s.yaml")
    assert err.value.field == "workdir"


def test_missing_and_special_sources_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    (tmp_path / "file").write_text("x")
    try:
        cases = {
            "missing": "does not exist",
            str(fifo): "not a regular file or folder",
            str(sock_path): "not a regular file or folder",
            "/dev/zero": "not a regular file or folder",
        }
        for source, needle in cases.items():
            with pytest.raises(SpecError, match=needle) as err:
                resolve_files(_mounts({"dst": source}), tmp_path, can_sync=True)
            assert err.value.field == "file_mounts.dst"
        with pytest.raises(SpecError, match="is not a folder") as err:
            resolve_files(_job(workdir="file"), tmp_path, can_sync=True)
        assert err.value.field == "workdir"
        with pytest.raises(SpecError, match="does not exist"):
            resolve_files(_job(workdir="nope"), tmp_path, can_sync=True)
    finally:
        sock.close()


def test_destinations_and_providers_that_cannot_sync(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for dest, needle in (("~other/x", "only ~ or ~/"), ("s3://b/x", "not a URI"), (" ", "dest")):
        with pytest.raises(SpecError, match=needle):
            resolve_files(_mounts({dest: "f"}), tmp_path, can_sync=True)
    with pytest.raises(SpecError, match="no enabled provider can sync") as err:
        resolve_files(_mounts({"/x": "f"}), tmp_path, can_sync=False)
    assert err.value.field == "file_mounts./x"


def test_a_folder_holding_intercloud_state_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "proj" / ".intercloud"
    home.mkdir(parents=True)
    (tmp_path / "proj" / "code").mkdir()
    for job, field in ((_job(workdir="proj"), "workdir"), (_mounts({"d": "."}), "file_mounts.d")):
        with pytest.raises(SpecError, match="holds intercloud's state folder") as err:
            resolve_files(job, tmp_path, can_sync=True, state_dir=home)
        assert err.value.field == field
    ok = resolve_files(_job(workdir="proj/code"), tmp_path, can_sync=True, state_dir=home)
    assert ok.workdir == str(tmp_path / "proj" / "code")
    sibling = tmp_path / "proj" / ".intercloud-other"  # a prefix, not a parent
    sibling.mkdir()
    assert resolve_files(_job(workdir=str(sibling)), tmp_path, can_sync=True, state_dir=home)


def test_a_destination_never_lands_in_intercloud_state(tmp_path: Path) -> None:
    """A relative DEST that climbs out of the node's working directory (which lies in the
    state folder on the local provider), or an absolute one inside the state folder, could
    overwrite the store or another job's files: refused naming the field."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "f").write_text("x")
    bad = ("../x", "a/../../x", "../../../../../state.db", str(home / "state.db"), str(home))
    for dest in bad:
        with pytest.raises(SpecError) as err:
            resolve_files(_mounts({dest: "f"}), tmp_path, can_sync=True, state_dir=home)
        assert err.value.field == f"file_mounts.{dest}"
    for dest in ("a/../b", "./x", ".", str(tmp_path / "home-other" / "x"), "/tmp/x", "~/x"):
        resolve_files(_mounts({dest: "f"}), tmp_path, can_sync=True, state_dir=home)


def test_sources_inside_the_state_folder_or_on_kernel_filesystems_are_refused(
    tmp_path: Path,
) -> None:
    """A source inside $INTERCLOUD_HOME (the store, other jobs' logs, the node's own
    destination: a copy that feeds itself) or on /proc, /sys, /dev (``/proc/kcore``
    never ends: the node synced forever) is refused at submission, naming the field."""
    home = tmp_path / "home"
    (home / "local").mkdir(parents=True)
    (home / "state.db").write_text("")
    cases = [
        (_job(workdir=str(home / "local")), "workdir", "inside intercloud's state folder"),
        (_mounts({"/db": str(home / "state.db")}), "file_mounts./db", "inside intercloud's"),
        (_job(workdir="/proc"), "workdir", "on /proc, a kernel pseudo-filesystem"),
        (_job(workdir="/sys/kernel"), "workdir", "on /sys"),
        (_mounts({"/x": "/proc/self/status"}), "file_mounts./x", "on /proc"),
    ]
    for job, field, needle in cases:
        with pytest.raises(SpecError, match=needle) as err:
            resolve_files(job, tmp_path, can_sync=True, state_dir=home)
        assert err.value.field == field
    # a link into a pseudo-filesystem is followed
    (tmp_path / "p").symlink_to("/proc")
    with pytest.raises(SpecError, match="on /proc"):
        resolve_files(_job(workdir="p"), tmp_path, can_sync=True, state_dir=home)
