"""Failover policy: what a refused launch blocks, when a provider is down, and what
happens to the work on a provider that went down. Pure functions over plain data; the
store keeps the state they compute (``store/health_repo.py``) and the fleet snapshot
reads it (``control/snapshot.py``).

Rules:

- **Which failures block an offering.** A launch refused for ``capacity`` or ``quota``
  blocks that (provider, region, zone, instance type, pricing) for a cool-down, so the
  next scheduler step places the gang elsewhere by its usual rules. ``auth``,
  ``throttled``, ``unavailable``, ``unsupported`` and ``unknown`` do not: they say
  nothing about that offering's capacity (``auth``/``unavailable`` count against the
  provider's health instead).
- **Cool-down growth.** The ``n``-th refusal in a row blocks for
  ``min(max_s, first_s * factor ** (n - 1))``. A refusal counts as "in a row" while the
  previous block ended less than ``max_s`` ago; after a longer quiet spell the count
  starts again at 1.
- **Provider health.** Every provider call (launch, observe, terminate, lookup) is
  recorded as ok or failed. A provider is *down* once every call has failed for at
  least ``down_after_s`` (since the first failure after its last success); the first
  successful call brings it back up.
- **A down provider's work.** Its running jobs are requeued from their last
  checkpoint elsewhere, as a preemption: a new attempt, the restart budget untouched
  (``Requeue``). Nothing new goes there (the snapshot freezes its pools); a job that
  only that provider can run holds with ``provider aws is down since ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from intercloud.providers.contract import FailureKind

if TYPE_CHECKING:  # the store imports this module: keep the planner out of its imports
    from intercloud.control.decide import RunningJob

__all__ = [
    "BLOCKING_KINDS",
    "FAILOVER_TEXT",
    "CooldownPolicy",
    "FailoverReason",
    "HealthState",
    "Requeue",
    "blocks_offering",
    "cooling_reason",
    "down_providers",
    "next_cooldown",
    "next_health",
    "provider_down_reason",
    "requeue_on_down",
]

#: Failure kinds that block the offering they hit (capacity and quota refusals).
BLOCKING_KINDS: frozenset[FailureKind] = frozenset({FailureKind.CAPACITY, FailureKind.QUOTA})


def blocks_offering(kind: FailureKind) -> bool:
    """Whether a launch failure of ``kind`` puts its offering in a cool-down."""
    return kind in BLOCKING_KINDS


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """Cool-down lengths (seconds): ``first_s`` for the first refusal, times ``factor``
    for each refusal in a row, at most ``max_s``."""

    first_s: float = 60.0
    max_s: float = 3600.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not self.first_s > 0:
            raise ValueError(f"cooldown.first_s must be positive, got {self.first_s}")
        if self.max_s < self.first_s:
            raise ValueError(f"cooldown.max_s ({self.max_s}) is below first_s ({self.first_s})")
        if self.factor < 1:
            raise ValueError(f"cooldown.factor must be at least 1, got {self.factor}")

    def duration_s(self, failures: int) -> float:
        """The cool-down after the ``failures``-th refusal in a row (``failures >= 1``)."""
        n = max(1, failures)
        # the exponent is bounded so that a long streak cannot overflow a float
        return min(self.max_s, self.first_s * self.factor ** min(n - 1, 64))


def next_cooldown(
    prev_failures: int, prev_until: datetime | None, now: datetime, policy: CooldownPolicy
) -> tuple[int, datetime]:
    """``(failures, until)`` after one more refusal at ``now``, given the offering's
    previous block (``prev_until`` None: none). Never shortens a block still running."""
    in_a_row = prev_until is not None and now < prev_until + timedelta(seconds=policy.max_s)
    failures = prev_failures + 1 if in_a_row else 1
    until = now + timedelta(seconds=policy.duration_s(failures))
    if prev_until is not None and prev_until > until:
        until = prev_until
    return failures, until


@dataclass(frozen=True, slots=True)
class HealthState:
    """One provider's call history as failover reads it (the store's
    ``ProviderHealth`` without the bookkeeping columns)."""

    last_ok_at: datetime | None = None
    last_error_at: datetime | None = None
    first_error_at: datetime | None = None
    error: str | None = None
    error_kind: str | None = None
    down_since: datetime | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None


def next_health(
    prev: HealthState,
    ok: bool,
    now: datetime,
    down_after_s: float,
    error: str | None = None,
    kind: FailureKind | None = None,
) -> HealthState:
    """The health after one call at ``now``: a success clears the failure streak and
    brings the provider up; a failure starts or extends the streak, and marks it down
    (``down_since`` = now) once the streak has lasted ``down_after_s``."""
    if ok:
        return HealthState(last_ok_at=now, last_error_at=prev.last_error_at)
    first = prev.first_error_at or now
    down = prev.down_since
    if down is None and (now - first).total_seconds() >= down_after_s:
        down = now
    return HealthState(
        last_ok_at=prev.last_ok_at,
        last_error_at=now,
        first_error_at=first,
        error=error,
        error_kind=kind.value if kind is not None else None,
        down_since=down,
    )


class FailoverReason(StrEnum):
    """Why failover moved or held work (human text: ``FAILOVER_TEXT``)."""

    PROVIDER_DOWN = "provider_down"
    OFFERING_COOLING = "offering_cooling"


FAILOVER_TEXT: Mapping[FailoverReason, str] = {
    FailoverReason.PROVIDER_DOWN: "provider {provider} is down since {since}",
    FailoverReason.OFFERING_COOLING: "{where} refused capacity; cooling down until {until}",
}


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def provider_down_reason(provider: str, since: datetime) -> str:
    """``provider aws is down since 2026-01-01 12:00:00 UTC``."""
    return FAILOVER_TEXT[FailoverReason.PROVIDER_DOWN].format(provider=provider, since=_utc(since))


def cooling_reason(where: str, until: datetime) -> str:
    """``aws/us-east-1/us-east-1a p5.48xlarge refused capacity; cooling down until ...``."""
    return FAILOVER_TEXT[FailoverReason.OFFERING_COOLING].format(where=where, until=_utc(until))


@dataclass(frozen=True, slots=True)
class Requeue:
    """Stop running job ``job_id`` and queue it again from its last checkpoint, as a
    preemption: a new attempt, its restart budget untouched (the reconciler's path for
    ``Preempt``). ``reason`` names the provider and since when it is down."""

    job_id: int
    provider: str
    code: FailoverReason
    reason: str


def requeue_on_down(running: Sequence[RunningJob], down: Mapping[str, datetime]) -> list[Requeue]:
    """The running jobs to move off the providers in ``down`` (provider -> down since),
    by job id."""
    out: list[Requeue] = []
    if not down:  # (the usual case: no need to walk every running job)
        return out
    for job in sorted(running, key=lambda j: j.job_id):
        provider = str(job.placement.get("provider") or "")
        since = down.get(provider)
        if since is not None:
            why = provider_down_reason(provider, since)
            out.append(Requeue(job.job_id, provider, FailoverReason.PROVIDER_DOWN, why))
    return out


def down_providers(health: Iterable[tuple[str, datetime | None]]) -> dict[str, datetime]:
    """Provider -> down since, for the ``(name, down_since)`` pairs that are down."""
    return {name: since for name, since in health if since is not None}
