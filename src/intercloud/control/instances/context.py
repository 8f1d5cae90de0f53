"""What every instance handler shares: the store, the providers, the clock, the hooks,
and what this process has asked of the providers (its memory, rebuilt empty after a
restart: every provider call it guards is idempotent, so asking again is safe)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from intercloud.control.crashpoints import Crashpoint, no_crash
from intercloud.control.instances.transitions import END_CAUSE_TEXT, EndCause, with_cause
from intercloud.providers.contract import (
    AsyncProvider,
    InstanceObservation,
    InstanceState,
    LaunchFailure,
)
from intercloud.store import Store
from intercloud.store.records import InstanceRecord

log = logging.getLogger("intercloud.control.instances")

#: Builds the boot script of one launch request from its rows (None: no user-data).
UserData = Callable[[str, list[InstanceRecord]], bytes | None]
#: Told of every launch failure (the failover policy records cool-downs from it).
OnFailure = Callable[[LaunchFailure], None]
#: Told of each provider call's outcome: the provider's name and the error, or None.
OnProviderCall = Callable[[str, Exception | None], None]


def no_user_data(_request_id: str, _rows: list[InstanceRecord]) -> bytes | None:
    return None


def ignore_failure(_failure: LaunchFailure) -> None:
    """The default ``on_failure``: nothing to record."""


def ignore_call(_provider: str, _error: Exception | None) -> None:
    """The default ``on_provider_call``: nothing to record."""


@dataclass(frozen=True, slots=True)
class InstanceTimeouts:
    """How long the instance step waits before it gives up on something (seconds)."""

    #: From the request to its node agent's registration (agent providers only).
    boot_s: float = 900.0
    #: Longest silence of a running instance's node agent before it counts as lost.
    agent_s: float = 120.0
    #: From ``launch`` to the provider showing or refusing the request.
    launch_s: float = 900.0
    #: How often ``terminate`` is asked again of an instance that is still listed.
    terminate_retry_s: float = 60.0


@dataclass
class InstanceContext:
    store: Store
    providers: Mapping[str, AsyncProvider]
    clock: Callable[[], datetime]
    crashpoint: Crashpoint = no_crash
    timeouts: InstanceTimeouts = InstanceTimeouts()
    user_data: UserData = no_user_data
    on_failure: OnFailure = ignore_failure
    on_provider_call: OnProviderCall = ignore_call
    #: Request ids this process launched, and when (monotonic in the store's clock).
    launched: dict[str, datetime] = field(default_factory=dict)
    #: Instance rows this process asked the provider to terminate, and when.
    terminate_asked: dict[int, datetime] = field(default_factory=dict)
    #: What each provider showed in this step: provider -> (request id, slot) -> it.
    observed: dict[str, dict[tuple[str, int], InstanceObservation]] = field(default_factory=dict)
    #: Per provider, row id -> (row, observation) that ``observe.apply`` found nothing
    #: to do about: the same row object seen the same way again is skipped.
    judged: dict[str, dict[int, tuple[InstanceRecord, InstanceObservation]]] = field(
        default_factory=dict
    )
    #: Per provider, what ``observe.apply`` keeps of its last full pass (``_Memo``).
    memo: dict[str, Any] = field(default_factory=dict)

    def rows(self, state: InstanceState) -> list[InstanceRecord]:
        """The rows in ``state`` of the providers this step drives."""
        providers = self.providers
        return [r for r in self.store.instances(states=[state]) if r.provider in providers]

    def seen(self, row: InstanceRecord) -> InstanceObservation | None:
        """What the row's provider showed of its instance in this step, if anything."""
        return self.observed.get(row.provider, {}).get((row.request_id, row.slot))

    def move(
        self,
        row: InstanceRecord,
        new: InstanceState,
        reason: str,
        cause: EndCause | None = None,
        **fields: Any,
    ) -> InstanceRecord | None:
        """Guarded move of ``row`` (by its state and version); ``cause`` is recorded in
        ``extra`` and its text leads ``reason``."""
        if cause is not None:
            fields["extra"] = with_cause(row.extra, cause)
            reason = f"{END_CAUSE_TEXT[cause]}: {reason}" if reason else END_CAUSE_TEXT[cause]
        rec = self.store.transition_instance(
            row.id,
            row.state,
            new,
            reason,
            expected_version=row.version,
            now=self.clock(),
            **fields,
        )
        if rec is not None:
            log.info("instance %s (%s): %s -> %s: %s", row.id, row.provider, row.state, new, reason)
        return rec
