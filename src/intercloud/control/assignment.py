"""What the control plane asks a node agent to run: a ``NodeCommand`` as stored JSON.

The bridge (``control.instance_pool``) writes ``to_assignment(command)`` into the
instance's ``assignment``; the node agent reads it back with ``from_assignment``. The
payload is the command's fields by name (``env`` an object of strings, ``file_mounts``
a list of ``[dest, source]`` pairs), so the two sides share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from intercloud.providers.base import NodeCommand

_FIELDS = frozenset(f.name for f in fields(NodeCommand))


def to_assignment(command: NodeCommand) -> dict[str, Any]:
    """The JSON payload of ``command``."""
    out = asdict(command)
    out["env"] = dict(command.env)
    out["file_mounts"] = [list(m) for m in command.file_mounts]
    return out


def from_assignment(payload: Mapping[str, Any]) -> NodeCommand:
    """The command of a stored assignment; ValueError naming the field when it is not
    one ``to_assignment`` wrote."""
    unknown = set(payload) - _FIELDS
    if unknown:
        raise ValueError(f"assignment: unknown field(s) {', '.join(sorted(unknown))}")

    def text(name: str, optional: bool = False) -> Any:
        value = payload.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise ValueError(f"assignment.{name}: expected a string")
        return value

    def number(name: str) -> int:
        value = payload.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"assignment.{name}: expected an integer")
        return value

    env = payload.get("env", {})
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError("assignment.env: expected an object of strings")
    mounts = payload.get("file_mounts", [])
    if not isinstance(mounts, list) or not all(
        isinstance(m, list) and len(m) == 2 and all(isinstance(p, str) for p in m) for m in mounts
    ):
        raise ValueError("assignment.file_mounts: expected [dest, source] string pairs")
    return NodeCommand(
        job_id=text("job_id"),
        attempt=number("attempt"),
        rank=number("rank"),
        num_nodes=number("num_nodes"),
        setup=text("setup", optional=True),
        run=text("run"),
        env=dict(env),
        log_dir=text("log_dir"),
        checkpoint_dir=text("checkpoint_dir"),
        workdir=text("workdir", optional=True),
        file_mounts=tuple((m[0], m[1]) for m in mounts),
    )
