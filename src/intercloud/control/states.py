"""The job state machine (training and batch jobs): every legal transition, in one place.

```
PENDING ──► PLACING ──► PROVISIONING ──► RUNNING ──► SUCCEEDED
   ▲           │              │             │ ╲
   └── hold ───┘              │             │  ╲──► FAILED       (no restarts left)
   ▲                          ▼             ▼
   └──────────────────── RECOVERING ◄───────┘   (node failed / lost / preempted,
                                                 restarts left: back to PENDING)
any non-terminal ──► CANCELLING ──► CANCELLED
PENDING / PLACING ──────────────► CANCELLED     (nothing to tear down)
PLACING / PROVISIONING ──► FAILED               (impossible or provisioning gave up)
```

Every transition is recorded as an event with its reason, so a job's history can be told
from its events alone. Terminal states never change again.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "PENDING"
    PLACING = "PLACING"
    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    RECOVERING = "RECOVERING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

S = JobState
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.PENDING: frozenset({S.PLACING, S.CANCELLING, S.CANCELLED}),
    S.PLACING: frozenset({S.PENDING, S.PROVISIONING, S.FAILED, S.CANCELLING, S.CANCELLED}),
    S.PROVISIONING: frozenset({S.RUNNING, S.RECOVERING, S.FAILED, S.CANCELLING}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RECOVERING, S.CANCELLING}),
    S.RECOVERING: frozenset({S.PENDING, S.FAILED, S.CANCELLING}),
    S.CANCELLING: frozenset({S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    """Raised when code tries a transition the machine does not allow (a bug, not input)."""


def check_transition(src: JobState, dst: JobState) -> None:
    """Raise IllegalTransition unless ``src -> dst`` is legal."""
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(f"illegal job transition {src} -> {dst}")
