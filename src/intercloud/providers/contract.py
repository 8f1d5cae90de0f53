"""The asynchronous provider contract (issue 10): launch now, learn what happened later.

Shaped after Ray autoscaler v2's cloud instance provider and dstack's instances pipeline:

- ``launch(request)`` returns at once. What became of the request is learnt from
  ``observe()``: the instances that exist now, plus the events and typed failures since
  the previous call. A provider never raises a capacity or quota refusal at the caller;
  it reports a ``LaunchFailure`` whose ``kind`` the caller compares (never its message).
- Every call is idempotent by id. A request id is launched at most once, even across a
  crash of the caller: the provider finds instances by the request id it tagged them
  with before it launches. To launch again after a failure, use a new request id.
- Instances carry provider-neutral identity (``InstanceObservation``): the request id,
  the rank inside the request and the caller's labels travel as tags on the instance,
  so a restarted control loop re-attaches with ``adopt()`` and ``sweep()`` finds the
  instances nobody owns.
- A provider never decides anything; the scheduler decides, the reconciler calls.

``providers/base.py`` keeps the synchronous interface the live loop uses today; this
module is what local, slurm, ray, aws and the simulator move to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from intercloud.model import Offering, PricingKind
from intercloud.providers.base import Capability, OfferingKey, ProviderError

__all__ = [
    "AsyncProvider",
    "Capability",
    "FailureKind",
    "InstanceEvent",
    "InstanceEventKind",
    "InstanceObservation",
    "InstanceState",
    "LaunchFailure",
    "LaunchRequest",
    "Observation",
    "OfferingKey",
    "ProviderCallFailed",
]


class InstanceState(StrEnum):
    """The instance states of issue 10, shared by the store and every provider.

    Providers report ``ALLOCATED`` (exists, booting), ``RUNNING``, ``TERMINATING``,
    ``TERMINATED`` and ``FAILED`` (exists but can never serve: stopped, impaired for
    good). ``REQUESTED`` and ``DRAINING`` are the control plane's own states.
    """

    REQUESTED = "requested"
    ALLOCATED = "allocated"
    RUNNING = "running"
    DRAINING = "draining"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (InstanceState.TERMINATED, InstanceState.FAILED)


class FailureKind(StrEnum):
    """Why a provider call failed, as a code callers act on."""

    CAPACITY = "capacity"  # no capacity for this offering and zone right now
    QUOTA = "quota"  # an account limit (instances, vCPUs, spot count) refused it
    AUTH = "auth"  # credentials missing, expired or not allowed to do this
    THROTTLED = "throttled"  # the provider's API rate limit, after the client's retries
    UNAVAILABLE = "unavailable"  # the provider's API did not answer or failed inside
    UNSUPPORTED = "unsupported"  # this offering/option combination cannot be bought
    UNKNOWN = "unknown"  # anything else (the message and provider code say more)


# Whether trying the same thing again later may succeed without a human changing
# something. Capacity and quota refusals are "retryable" in the sense that the
# scheduler may come back after a cool-down; auth and unsupported never fix themselves.
RETRYABLE_BY_DEFAULT: Mapping[FailureKind, bool] = {
    FailureKind.CAPACITY: True,
    FailureKind.QUOTA: True,
    FailureKind.AUTH: False,
    FailureKind.THROTTLED: True,
    FailureKind.UNAVAILABLE: True,
    FailureKind.UNSUPPORTED: False,
    FailureKind.UNKNOWN: False,
}

FAILURE_TEXT: Mapping[FailureKind, str] = {
    FailureKind.CAPACITY: "the provider has no capacity for this offering in this zone",
    FailureKind.QUOTA: "an account quota of the provider refused the request",
    FailureKind.AUTH: "the provider refused the credentials",
    FailureKind.THROTTLED: "the provider's API rate limit was hit",
    FailureKind.UNAVAILABLE: "the provider's API is unreachable or failing",
    FailureKind.UNSUPPORTED: "the provider cannot sell this combination",
    FailureKind.UNKNOWN: "the provider call failed",
}


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """Bring up ``count`` instances of one offering, as one all-or-nothing request.

    ``offering`` is (provider, region, zone, instance_type); zone "" lets the provider
    choose. ``request_id`` is the idempotency key (at most 64 printable ASCII
    characters, e.g. ``f"{job_id}-a{attempt}-l{n}"``). Instances get ranks 0..count-1.
    ``labels`` are extra caller tags (string keys and values). ``placement_group`` asks
    for instances packed close together (a gang); ``capacity_reservation_id`` targets
    capacity bought ahead (``PricingKind.RESERVED`` needs it). ``user_data`` is passed
    to the instance unchanged (its boot script).
    """

    request_id: str
    offering: OfferingKey
    count: int = 1
    pricing: PricingKind = PricingKind.ON_DEMAND
    job_id: str = ""
    attempt: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    placement_group: str | None = None
    capacity_reservation_id: str | None = None
    max_price_usd: float | None = None  # spot only: highest hourly price per instance
    image: str | None = None  # provider image; None: the provider's configured default
    user_data: bytes = b""

    @property
    def provider(self) -> str:
        return self.offering[0]

    @property
    def region(self) -> str:
        return self.offering[1]

    @property
    def zone(self) -> str:
        return self.offering[2]

    @property
    def instance_type(self) -> str:
        return self.offering[3]


@dataclass(frozen=True, slots=True)
class InstanceObservation:
    """One instance as the provider sees it now (provider-neutral)."""

    instance_id: str
    request_id: str
    provider: str
    region: str
    zone: str
    instance_type: str
    state: InstanceState
    pricing: PricingKind
    rank: int = 0
    job_id: str = ""
    attempt: int = 0
    launched_at: float | None = None  # unix seconds
    provider_state: str = ""  # the provider's own word for the state, for humans
    labels: Mapping[str, str] = field(default_factory=dict)  # the request's labels
    address: str = ""  # where the control plane reaches it (private IP); "" until known

    @property
    def offering(self) -> OfferingKey:
        return (self.provider, self.region, self.zone, self.instance_type)


class InstanceEventKind(StrEnum):
    RECLAIM_NOTICE = "reclaim_notice"  # spot capacity will be taken back soon
    RECLAIMED = "reclaimed"  # spot capacity was taken back (not at our request)
    LOST = "lost"  # the instance ended or vanished, not at our request
    SCHEDULED = "scheduled"  # the provider scheduled maintenance or retirement
    IMPAIRED = "impaired"  # the provider's health checks fail


@dataclass(frozen=True, slots=True)
class InstanceEvent:
    """Something that happened to one instance that the caller did not ask for.

    Delivered at least once: a provider re-created after a crash may report again an
    event it reported before, so consumers apply events idempotently.
    """

    kind: InstanceEventKind
    instance_id: str
    request_id: str
    at: float  # unix seconds, when observed (or when the provider says it happened)
    code: str = ""  # the provider's own code, e.g. "Server.SpotInstanceTermination"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LaunchFailure:
    """A launch request that produced no instance, and why."""

    request_id: str
    kind: FailureKind
    offering: OfferingKey
    message: str
    retryable: bool
    code: str = ""  # the provider's own error code, e.g. "InsufficientInstanceCapacity"
    at: float = 0.0

    @property
    def zone(self) -> str:
        return self.offering[2]


@dataclass(frozen=True, slots=True)
class Observation:
    """What ``observe()`` returns: a snapshot plus what happened since the last call.

    ``instances``: every instance of this provider's cluster that still exists (final
    ones too, while the provider remembers them). ``pending``: request ids launched and
    not yet answered. ``events`` and ``failures``: since the previous ``observe()``.
    """

    instances: tuple[InstanceObservation, ...] = ()
    pending: frozenset[str] = frozenset()
    events: tuple[InstanceEvent, ...] = ()
    failures: tuple[LaunchFailure, ...] = ()

    def of_request(self, request_id: str) -> list[InstanceObservation]:
        return sorted(
            (i for i in self.instances if i.request_id == request_id), key=lambda i: i.rank
        )


class ProviderCallFailed(ProviderError):
    """A synchronous provider call (observe, terminate, lookup) failed; ``kind`` says why."""

    def __init__(self, kind: FailureKind, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.retryable = RETRYABLE_BY_DEFAULT[kind]


class AsyncProvider(ABC):
    """One place instances come from. Subclasses set ``name`` and ``capabilities``.

    Callers check ``capabilities`` before asking for spot (``SPOT``), several instances
    in one request (``MULTI_NODE``), placement groups or capacity reservations
    (``RESERVATIONS``) or re-attachment (``ADOPT``); ``launch`` raises ``ValueError``
    for a request the provider cannot take at all (a caller bug), and reports every
    other failure through ``observe``.
    """

    name: str = ""
    capabilities: frozenset[Capability] = frozenset()
    #: Whether its instances run intercloud's node agent (user-data starts it): such an
    #: instance is usable once its agent registers, not when the provider says it runs.
    needs_agent: bool = True

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    @abstractmethod
    def offerings(self) -> list[Offering]:
        """What this provider can sell now, one row per (region, zone, instance type)."""

    @abstractmethod
    def launch(self, request: LaunchRequest) -> None:
        """Start launching; return at once. A request id already launched is a no-op."""

    @abstractmethod
    def observe(self) -> Observation:
        """Instances now, plus events and failures since the previous call."""

    @abstractmethod
    def terminate(
        self, *, instance_ids: Collection[str] = (), request_id: str | None = None
    ) -> list[str]:
        """Terminate these instances (or all of one request). Idempotent: instances
        already gone are skipped. Returns the ids a termination was asked for now."""

    @abstractmethod
    def lookup(self, request_id: str | None = None) -> list[InstanceObservation]:
        """Instances of this provider's cluster that still exist (everything but
        ``TERMINATED``; ``FAILED`` ones too, so they can be cleaned up), found by tag
        (all of them, or those of one request), without relying on this object's memory.
        Cloud listings are eventually consistent: an instance launched a moment ago may
        be missing for a few seconds."""

    def adopt(self) -> list[InstanceObservation]:
        """Re-attach after a restart: the live instances this cluster tagged before.

        Providers whose ``observe`` only reports what they launched override this to
        start tracking the returned instances.
        """
        return self.lookup()

    def sweep(self, owned_request_ids: Collection[str]) -> list[str]:
        """Terminate the live instances whose request id is not in ``owned_request_ids``
        (orphans of a crash or of a failed record). Returns the ids terminated. The
        caller owns every request it has launched, in flight ones included."""
        owned = set(owned_request_ids)
        orphans = [i.instance_id for i in self.lookup() if i.request_id not in owned]
        if not orphans:
            return []
        return self.terminate(instance_ids=orphans)

    def close(self) -> None:  # noqa: B027 (optional hook, most providers hold nothing)
        """Release threads and connections. Launches in flight may be abandoned."""
