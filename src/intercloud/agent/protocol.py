"""The wire contract between a node agent and the control plane's agent server.

Standard library only: the agent imports it on the node. Every call is HTTP + JSON on
``/agent/v1/...``; every call but ``register`` carries ``Authorization: Bearer
<instance id>.<token>`` (``bearer``).

- ``POST /agent/v1/register`` (``RegisterRequest``, no bearer): proves the launch with
  its bootstrap secret and enrols the node's token. The agent draws the token itself and
  keeps it in a 0600 file before it calls, so a retry after a lost answer enrols the
  same token again (idempotent); a second, different token for the same instance is
  refused. Answers ``RegisterResponse``.
- ``POST /agent/v1/heartbeat`` (``{"address": ...}``): the node is alive.
- ``GET /agent/v1/assignment?wait=S``: long poll (at most ``MAX_WAIT_S``) for the
  instance's assignment; answers ``{"assignment": Assignment | null}`` as soon as there
  is one, or when the wait is over.
- ``POST /agent/v1/report`` (``Report``): started (pid), exited or killed (exit code).
  The first report of a state moves it on; repeating it is a no-op (200).
- ``POST /agent/v1/logs?key=K&offset=N`` (raw bytes): the node's output from byte
  ``N``. Byte offsets are the sequence numbers: bytes the server already has are
  skipped, so a retried chunk is appended once; a chunk past the end the server has is
  refused with 409 and ``{"offset": end}`` so the agent resends from there. Answers
  ``{"offset": end}``.

Status codes: 401 (absent or wrong credentials; nothing changed), 409 (the request no
longer fits the instance: another assignment, a gap in the log, a token already
enrolled), 422 (malformed body).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PREFIX = "/agent/v1"
REGISTER_PATH = f"{PREFIX}/register"
HEARTBEAT_PATH = f"{PREFIX}/heartbeat"
ASSIGNMENT_PATH = f"{PREFIX}/assignment"
REPORT_PATH = f"{PREFIX}/report"
LOGS_PATH = f"{PREFIX}/logs"

#: Longest assignment long poll the server holds open.
MAX_WAIT_S = 30.0
#: Largest log chunk the server takes in one call.
MAX_LOG_CHUNK = 1 << 20
#: Tokens and bootstrap secrets: 32 random bytes, URL-safe base64 (43 characters).
SECRET_BYTES = 32
MIN_SECRET_CHARS = 43
MAX_SECRET_CHARS = 128


class ReportState(StrEnum):
    """What the agent reports about its assignment (``store.records.AssignmentState``
    without ``assigned``, which only the control plane writes)."""

    STARTED = "started"
    EXITED = "exited"
    KILLED = "killed"


def bearer(instance_id: int, token: str) -> str:
    """The ``Authorization`` header value of one node."""
    return f"Bearer {instance_id}.{token}"


def assignment_key(job_id: str, attempt: int, rank: int) -> str:
    """The identity of one assignment: one node of one attempt of one job."""
    return f"{job_id}/{attempt}/{rank}"


@dataclass(frozen=True, slots=True)
class Assignment:
    """One node's command, as the control plane hands it to an instance's agent.

    ``env`` is the node's environment as the control plane computed it (the job's
    variables plus ``INTERCLOUD_*``, ``MASTER_ADDR``, ``RANK``...); the agent adds only
    the base of its machine below it (``providers.node_env``), as the local provider
    does. ``cwd`` None: a fresh working folder per assignment. ``kill`` is set when the
    control plane wants the node stopped (SIGTERM to its process group, SIGKILL after
    ``grace_s``). An assignment runs at most once per instance: ``key`` names it.
    """

    job_id: str
    attempt: int
    rank: int
    run: str
    setup: str | None = None
    num_nodes: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    grace_s: float = 10.0
    kill: bool = False

    @property
    def key(self) -> str:
        return assignment_key(self.job_id, self.attempt, self.rank)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "rank": self.rank,
            "run": self.run,
            "setup": self.setup,
            "num_nodes": self.num_nodes,
            "env": dict(self.env),
            "cwd": self.cwd,
            "grace_s": self.grace_s,
            "kill": self.kill,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        """Parse what ``to_json`` wrote; ValueError naming the field for anything else."""

        def need(name: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
            value = data.get(name)
            if value is None and optional:
                return None
            if isinstance(value, bool) and kind is not bool:
                raise ValueError(f"assignment.{name}: expected {_kind(kind)}, got {value!r}")
            if not isinstance(value, kind):
                raise ValueError(f"assignment.{name}: expected {_kind(kind)}, got {value!r}")
            return value

        env = need("env", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError("assignment.env: expected a map of strings to strings")
        return cls(
            job_id=need("job_id", str),
            attempt=need("attempt", int),
            rank=need("rank", int),
            run=need("run", str),
            setup=need("setup", str, optional=True),
            num_nodes=need("num_nodes", int),
            env=dict(env),
            cwd=need("cwd", str, optional=True),
            grace_s=float(need("grace_s", (int, float))),
            kill=bool(need("kill", bool)),
        )


def _kind(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """What an agent sends to enrol: which launch it belongs to (``request_id`` and its
    ``slot``, the launch index), the launch's ``bootstrap_secret``, the ``token`` it drew,
    and what it knows of itself."""

    request_id: str
    slot: int
    bootstrap_secret: str
    token: str
    provider_instance_id: str = ""
    address: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "slot": self.slot,
            "bootstrap_secret": self.bootstrap_secret,
            "token": self.token,
            "provider_instance_id": self.provider_instance_id,
            "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class RegisterResponse:
    """The instance the token now speaks for, and how often to heartbeat."""

    instance_id: int
    heartbeat_s: float
