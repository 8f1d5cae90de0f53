"""``workdir`` and ``file_mounts`` sources: checked and resolved at submission.

Rules (the same for native and SkyPilot specs but for where relative sources start):

- a relative source is resolved against ``base_dir``: the folder of a native spec file,
  the current directory for a SkyPilot task (as SkyPilot does) or a spec given as text;
  ``~`` is the submitter's home. The absolute paths are
  stored with the job, so the daemon never depends on where the submitter stood;
- a source must be a readable local folder (``workdir``) or a readable folder or regular
  file (``file_mounts``) when submitted; a device, FIFO or socket is refused;
- a URI (``s3://``, ``gs://``, ``r2://``, a git ``https://`` URL, ...) is refused: no
  provider supports storage mounts or git sources yet;
- a destination is absolute, ``~`` / ``~/...`` (the node's home), or relative (to the
  node's working directory, never climbing out of it); none lies in intercloud's state
  folder.

Sources are read when each node starts (not copied at submission).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intercloud.model import Workload
from intercloud.specs.errors import SpecError

STORAGE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class ResolvedFiles:
    """A workload's sources as absolute paths: ``workdir`` and ``(DEST, SOURCE)`` pairs."""

    workdir: str | None = None
    file_mounts: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self.workdir is not None or bool(self.file_mounts)

    def to_json(self) -> dict[str, Any]:
        return {"workdir": self.workdir, "file_mounts": [list(p) for p in self.file_mounts]}

    @classmethod
    def from_json(cls, data: Any) -> ResolvedFiles:
        """The stored form back; anything malformed reads as no files."""
        if not isinstance(data, dict):
            return cls()
        workdir = data.get("workdir")
        mounts = data.get("file_mounts") or []
        pairs = tuple(
            (str(p[0]), str(p[1])) for p in mounts if isinstance(p, list | tuple) and len(p) == 2
        )
        return cls(workdir if isinstance(workdir, str) else None, pairs)


def resolve_files(
    workload: Workload,
    base_dir: Path,
    *,
    can_sync: bool,
    source: str = "<string>",
    state_dir: Path | None = None,
) -> ResolvedFiles:
    """Check and resolve the workload's ``workdir`` and ``file_mounts`` (module rules).

    ``can_sync``: the providers that may run it copy local paths onto nodes.
    ``state_dir``: intercloud's home; a folder source holding it is refused (it would
    copy the store, other jobs' files and the node's own destination into the node).
    Raises ``SpecError`` naming the field (``workdir``, ``file_mounts./data``).
    """
    workdir = workload.workdir
    if workdir is None and not workload.file_mounts:
        return ResolvedFiles()
    if not can_sync:
        field = "workdir" if workdir is not None else f"file_mounts.{workload.file_mounts[0][0]}"
        raise SpecError(field, "no enabled provider can sync local files onto nodes", source)
    resolved_workdir = None
    if workdir is not None:
        resolved_workdir = _source(workdir, base_dir, "workdir", source, folder_only=True)
        _check_not_state(resolved_workdir, state_dir, "workdir", source)
    pairs: list[tuple[str, str]] = []
    for dest, src in workload.file_mounts:
        field = f"file_mounts.{dest}"
        _check_dest(dest, field, source)
        _check_dest_not_state(dest, state_dir, field, source)
        resolved = _source(src, base_dir, field, source, folder_only=False)
        _check_not_state(resolved, state_dir, field, source)
        pairs.append((dest, resolved))
    return ResolvedFiles(resolved_workdir, tuple(pairs))


#: Kernel pseudo-filesystems: their "files" never end (``/proc/kcore``) or change while
#: read; a node copying them would sync forever.
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_not_state(path: str, state_dir: Path | None, field: str, source: str) -> None:
    """Refuse a source that holds intercloud's state folder or lies inside it (the store,
    other jobs' files and the node's own destination would be copied into the node), and
    one on a kernel pseudo-filesystem."""
    real = os.path.realpath(path)
    root = next((r for r in _PSEUDO_ROOTS if _inside(real, r)), None)
    if root is not None:
        raise SpecError(field, f"{path} is on {root}, a kernel pseudo-filesystem", source)
    if state_dir is None:
        return
    state = os.path.realpath(state_dir)
    if _inside(state, real):
        raise SpecError(
            field,
            f"{path} holds intercloud's state folder {state_dir}; sync a narrower one",
            source,
        )
    if _inside(real, state):
        raise SpecError(field, f"{path} is inside intercloud's state folder {state_dir}", source)


def _check_dest_not_state(dest: str, state_dir: Path | None, field: str, source: str) -> None:
    """A relative DEST stays in the node's working directory; an absolute one (or ``~/``)
    stays out of intercloud's state folder (the store, every job's files)."""
    if not dest.startswith(("/", "~")):
        if posixpath.normpath(dest).split("/")[0] == "..":
            raise SpecError(
                field,
                "a relative destination must stay inside the node's working directory",
                source,
            )
        return
    if state_dir is None:
        return
    state = os.path.realpath(state_dir)
    real = os.path.realpath(os.path.expanduser(dest))
    if real == state or real.startswith(state.rstrip(os.sep) + os.sep):
        raise SpecError(field, f"{dest} is inside intercloud's state folder {state_dir}", source)


def _check_dest(dest: str, field: str, source: str) -> None:
    if not dest.strip() or "\0" in dest:
        raise SpecError(field, "expected a destination path", source)
    if STORAGE_URI.match(dest):
        raise SpecError(field, "the destination must be a path on the node, not a URI", source)
    if dest.startswith("~") and dest != "~" and not dest.startswith("~/"):
        raise SpecError(field, "only ~ or ~/... (the node's home) may start with ~", source)


def _source(text: str, base_dir: Path, field: str, source: str, *, folder_only: bool) -> str:
    if "\0" in text:
        raise SpecError(field, "the path holds a NUL byte", source)
    if STORAGE_URI.match(text):
        scheme = text.split("://", 1)[0]
        if scheme == "storage":  # a SkyPilot storage object naming no store (skypilot_task)
            raise SpecError(
                field,
                f"a SkyPilot storage object ({text}) is a bucket, not a local path; no provider "
                "supports storage yet: give the local folder itself as the source",
                source,
            )
        raise SpecError(
            field,
            f"{scheme}:// is not a local path; only local paths can be synced (no provider "
            "supports storage or git sources yet)",
            source,
        )
    path = Path(os.path.abspath(base_dir / Path(text).expanduser()))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SpecError(field, f"local path {path} does not exist", source) from None
    except OSError as exc:
        raise SpecError(field, f"cannot read {path}: {exc.strerror or exc}", source) from None
    if stat.S_ISDIR(mode):
        if not os.access(path, os.R_OK | os.X_OK):
            raise SpecError(field, f"folder {path} is not readable", source)
    elif folder_only:
        raise SpecError(field, f"{path} is not a folder", source)
    elif not stat.S_ISREG(mode):
        raise SpecError(
            field,
            f"{path} is not a regular file or folder (devices, FIFOs and sockets cannot be synced)",
            source,
        )
    elif not os.access(path, os.R_OK):
        raise SpecError(field, f"file {path} is not readable", source)
    return str(path)
