"""The instance state machine and the codes for why an instance ended.

``InstanceState`` (``providers.contract``) names the states; this module says which
moves are legal and why an instance ended (``EndCause``, with its human text kept apart
in ``END_CAUSE_TEXT``). The store checks every transition against ``TRANSITIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from intercloud.providers.contract import InstanceState

St = InstanceState

TRANSITIONS: Mapping[InstanceState, frozenset[InstanceState]] = {
    # REQUESTED -> RUNNING: an agentless provider may report it running at first sight.
    St.REQUESTED: frozenset({St.ALLOCATED, St.RUNNING, St.TERMINATING, St.TERMINATED, St.FAILED}),
    St.ALLOCATED: frozenset({St.RUNNING, St.DRAINING, St.TERMINATING, St.TERMINATED, St.FAILED}),
    St.RUNNING: frozenset({St.DRAINING, St.TERMINATING, St.TERMINATED, St.FAILED}),
    St.DRAINING: frozenset({St.TERMINATING, St.TERMINATED, St.FAILED}),
    St.TERMINATING: frozenset({St.TERMINATED}),
    St.TERMINATED: frozenset(),
    St.FAILED: frozenset(),
}

#: States in which an instance exists (or may come to exist) at the provider.
LIVE: frozenset[InstanceState] = frozenset(s for s in InstanceState if not s.is_final)


class IllegalInstanceTransition(ValueError):
    """A move the instance state machine forbids (a bug in the caller, not input)."""


def check_instance_transition(src: InstanceState, dst: InstanceState) -> None:
    """Raise ``IllegalInstanceTransition`` unless ``src -> dst`` is legal."""
    if dst not in TRANSITIONS[src]:
        raise IllegalInstanceTransition(f"illegal instance transition {src} -> {dst}")


class EndCause(StrEnum):
    """Why an instance left service; stored in ``extra["end_cause"]`` of its row."""

    RELEASED = "released"  # drained and terminated at our request (idle release)
    RECLAIMED = "reclaimed"  # spot capacity taken back by the provider
    LOST = "lost"  # ended or vanished, not at our request
    AGENT_SILENT = "agent_silent"  # its node agent stopped heartbeating
    BOOT_TIMEOUT = "boot_timeout"  # its node agent never registered
    KILL_TIMEOUT = "kill_timeout"  # its agent did not confirm a kill in time
    PROVIDER_FAILED = "provider_failed"  # the provider says it can never serve
    LAUNCH_FAILED = "launch_failed"  # the launch was refused (``failure_kind`` says why)
    LAUNCH_VANISHED = "launch_vanished"  # launched, then neither seen nor reported


END_CAUSE_TEXT: Mapping[EndCause, str] = {
    EndCause.RELEASED: "released by intercloud",
    EndCause.RECLAIMED: "reclaimed by the provider (spot)",
    EndCause.LOST: "ended or vanished without intercloud asking",
    EndCause.AGENT_SILENT: "its node agent stopped answering",
    EndCause.BOOT_TIMEOUT: "its node agent never registered",
    EndCause.KILL_TIMEOUT: "its node agent did not confirm a kill in time",
    EndCause.PROVIDER_FAILED: "the provider reports it can never serve",
    EndCause.LAUNCH_FAILED: "the provider refused the launch",
    EndCause.LAUNCH_VANISHED: "the launch was neither seen nor reported by the provider",
}

#: Causes that end a job node as PREEMPTED rather than LOST.
PREEMPTING: frozenset[EndCause] = frozenset({EndCause.RECLAIMED})


def end_cause(extra: Mapping[str, Any] | None) -> EndCause | None:
    """The cause recorded in an instance row's ``extra`` (None: still in service, or an
    unknown code written by a newer version)."""
    value = (extra or {}).get("end_cause")
    try:
        return EndCause(value) if isinstance(value, str) else None
    except ValueError:
        return None


def with_cause(extra: Mapping[str, Any] | None, cause: EndCause) -> dict[str, Any]:
    """``extra`` with ``end_cause`` set (a new dict; the record's is a snapshot)."""
    return {**(extra or {}), "end_cause": cause.value}
