"""A job's environment: a minimal base, its spec's ``envs``, what its submitter passes.

A job never inherits the environment of the process that runs the daemon (that process
may have been started by anyone, with anyone's secrets). From lowest to highest
precedence a node's environment is:

1. the base: ``BASE_ENV_NAMES`` that are set in the daemon's environment (``PATH``,
   ``HOME``, ``USER``, ``LOGNAME``, ``SHELL``, ``LANG``, ``LC_ALL``, ``LC_CTYPE``, ``TZ``,
   ``TMPDIR``), with intercloud's own ``bin`` folder first on ``PATH``;
2. the spec's ``envs``;
3. the submitter's explicit variables: ``--env-file FILE`` lines, then ``--env
   KEY=VALUE`` / ``--env KEY`` (later wins);
4. what the provider sets: ``INTERCLOUD_*``, the torchrun variables, ``SKYPILOT_*`` for
   SkyPilot tasks.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from intercloud.providers.node_env import BASE_ENV_NAMES, base_env
from intercloud.specs.limits import MAX_ARG_BYTES

#: The most an env file may hold (read from regular files only).
MAX_ENV_FILE_BYTES = 1 << 20

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSIGN = re.compile(r"^(?:export\s+)?([^=\s]+)\s*=\s*(.*)$")
_DOUBLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
#: What is wrong with a value no process could be started with (as a spec's ``envs``).
_TOO_LONG = "KEY=VALUE is longer than 128 KiB, the most one variable of a process can hold"


__all__ = [
    "BASE_ENV_NAMES",
    "InvalidEnv",
    "base_env",
    "check_env",
    "parse_env_file",
    "parse_env_options",
]


class InvalidEnv(ValueError):
    """A bad environment option or file line (one line, naming the option or line)."""


def check_env(env: Mapping[str, str], where: str = "env") -> dict[str, str]:
    """``env`` as a plain dict after checking names and values; ``InvalidEnv`` naming
    ``where.NAME`` for a name that is not ``[A-Za-z_][A-Za-z0-9_]*``, or a value that is
    not a string, holds a NUL byte or makes ``KEY=VALUE`` longer than 128 KiB."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidEnv(f"{where}: invalid variable name {name!r}")
        if not isinstance(value, str):
            raise InvalidEnv(f"{where}.{name}: expected a string value")
        _check_value(name, value, f"{where}.{name}")
        out[name] = value
    return out


def _check_value(name: str, value: str, where: str) -> None:
    """``InvalidEnv`` naming ``where`` for a value with a NUL byte, or one that makes
    ``name=value`` too long for a job to start with (execve fails with E2BIG)."""
    if "\0" in value:
        raise InvalidEnv(f"{where}: the value holds a NUL byte")
    if len(name) + 1 + len(value.encode()) > MAX_ARG_BYTES:
        raise InvalidEnv(f"{where}: {_TOO_LONG}")


def parse_env_options(
    items: Sequence[str], files: Sequence[Path], environ: Mapping[str, str]
) -> dict[str, str]:
    """The variables of ``--env-file FILE`` (each in turn) and ``--env KEY=VALUE`` /
    ``--env KEY`` (value from ``environ``), later ones winning. ``InvalidEnv`` for an
    unset ``KEY``, a bad name, a NUL byte, or a bad file (see ``parse_env_file``)."""
    out: dict[str, str] = {}
    for path in files:
        out.update(parse_env_file(path))
    for item in items:
        name, sep, value = item.partition("=")
        if not _NAME.match(name):
            raise InvalidEnv(f"--env {_short(item)}: expected KEY=VALUE or KEY (a valid name)")
        if not sep:
            if name not in environ:
                raise InvalidEnv(f"--env {name}: not set in your environment")
            value = environ[name]
        _check_value(name, value, f"--env {name}")
        out[name] = value
    return out


def parse_env_file(path: Path) -> dict[str, str]:
    """Dotenv lines: ``KEY=VALUE`` or ``export KEY=VALUE``; blank lines and ``#``
    comments skipped; a value may be ``'single quoted'`` (literal), ``"double quoted"``
    (escapes ``\\n \\t \\r \\" \\\\ \\$``) or bare (a trailing `` # comment`` is dropped,
    surrounding blanks stripped). ``InvalidEnv`` naming the file and line otherwise; the
    file must be a regular file of at most 1 MiB of UTF-8."""
    text = _read_env_file(path)
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"--env-file {path} line {number}"
        m = _ASSIGN.match(line)
        if m is None:
            raise InvalidEnv(f"{where}: expected KEY=VALUE")
        name, rest = m.group(1), m.group(2)
        if not _NAME.match(name):
            raise InvalidEnv(f"{where}: invalid variable name {_short(name)!r}")
        value = _value(rest)
        if value is None:
            raise InvalidEnv(f"{where}: unterminated quote or text after the closing quote")
        _check_value(name, value, where)
        out[name] = value
    return out


def _read_env_file(path: Path) -> str:
    where = f"--env-file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidEnv(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidEnv(f"{where}: not a regular file")
        data = os.read(fd, MAX_ENV_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidEnv(f"{where}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_ENV_FILE_BYTES:
        raise InvalidEnv(f"{where}: larger than {MAX_ENV_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEnv(f"{where}: not UTF-8 text") from None


def _value(rest: str) -> str | None:
    """The value of one assignment's right-hand side, None if its quoting is broken."""
    if rest[:1] == "'":
        end = rest.find("'", 1)
        if end < 0 or not _only_comment(rest[end + 1 :]):
            return None
        return rest[1:end]
    if rest[:1] == '"':
        out: list[str] = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                out.append(_DOUBLE_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if ch == '"':
                return "".join(out) if _only_comment(rest[i + 1 :]) else None
            out.append(ch)
            i += 1
        return None
    return re.split(r"\s+#", rest, maxsplit=1)[0].strip()


def _only_comment(tail: str) -> bool:
    tail = tail.strip()
    return not tail or tail.startswith("#")


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
