"""Private state files: folders 0700 and files 0600 whatever the umask.

The database holds job environments (secrets), logs hold job output: nobody but their
owner may read them. Modes are set explicitly when a file or folder is created, never
left to the umask.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_mkdir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700. Existing folders are left
    as they are (a user's own ``/tmp`` or project folder is not ours to change)."""
    missing: list[Path] = []
    head = path.absolute()
    while not head.is_dir() and head != head.parent:
        missing.append(head)
        head = head.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(DIR_MODE)
            d.chmod(DIR_MODE)


def private_home(home: Path) -> None:
    """Create ``$INTERCLOUD_HOME`` (and missing parents) 0700, and make an existing one
    0700 too: everything intercloud keeps lives there."""
    private_mkdir(home)
    with contextlib.suppress(OSError):  # not ours: leave it, its files are still 0600
        if home.stat().st_mode & 0o777 != DIR_MODE:
            home.chmod(DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (no-op otherwise)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
        os.chmod(path, FILE_MODE)


def make_private(*paths: Path) -> None:
    """chmod 0600 each of ``paths`` that exists and is ours (others are skipped)."""
    for path in paths:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o777 != FILE_MODE:
                path.chmod(FILE_MODE)


def open_private_append(path: Path) -> int:
    """A descriptor appending to ``path``, created 0600 (an existing file is made 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, FILE_MODE)
    return fd
