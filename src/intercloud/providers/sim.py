"""The ``sim`` provider: a cloud that exists only in simulated time.

It implements the asynchronous contract (``providers/contract.py``) exactly as a real
cloud adapter does, so whatever drives it (the digital twin's engine, a test, or the
live loop pointed at it) cannot tell it from one, except that time is whatever its
clock says:

- ``launch(request)`` returns at once. The request is refused (a ``LaunchFailure`` in
  the next ``observe``) when its offering is not sold (``UNSUPPORTED``), the region or
  the provider is down (``UNAVAILABLE``), the offering's capacity for that pricing kind
  is used up (``CAPACITY``: at most ``capacity`` instances alive at once), or by a seeded
  random refusal (``refuse_probability``, also ``CAPACITY``). Otherwise its instances
  exist at once (``ALLOCATED``) and are ``RUNNING`` ``launch_delay_s`` later.
- ``observe()`` reports the instances that exist, the requests not answered yet, and the
  events and failures since the previous call. Terminated instances are reported once
  more after they end, then forgotten.
- The weather is injected by the simulator, never decided here: ``reclaim`` (a spot
  instance taken back: ``RECLAIMED``, then ``TERMINATED``), ``set_down``/``set_up`` (a
  region or the whole provider unreachable: its instances report ``IMPAIRED``, launches
  there are refused ``UNAVAILABLE``), ``fail`` (an instance lost: ``LOST``, ``FAILED``).
- ``next_change_s()`` says when something will happen by itself (a launch finishing),
  so an event-driven caller polls only then.

Idempotent by request id, deterministic for a seed; the clock is a callable returning
seconds (the twin's simulated clock, or ``time.time`` for a live run).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from intercloud.model import Offering, PricingKind
from intercloud.providers.base import Capability, OfferingKey
from intercloud.providers.contract import (
    RETRYABLE_BY_DEFAULT,
    AsyncProvider,
    FailureKind,
    InstanceEvent,
    InstanceEventKind,
    InstanceObservation,
    InstanceState,
    LaunchFailure,
    LaunchRequest,
    Observation,
)

__all__ = ["SimCapacity", "SimClock", "SimProvider", "offering_key_of"]

#: The provider's own codes of its refusals (as a cloud's error codes).
CODE_NO_CAPACITY = "Sim.InsufficientCapacity"
CODE_DOWN = "Sim.RegionUnavailable"
CODE_NOT_SOLD = "Sim.OfferingNotSold"
CODE_NO_SPOT = "Sim.SpotNotSold"
CODE_RECLAIM = "Sim.SpotReclaim"


class SimClock:
    """A settable clock (seconds). The engine moves it; the provider reads it."""

    def __init__(self, now_s: float = 0.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, now_s: float) -> None:
        if now_s < self.now_s:
            raise ValueError(f"the clock cannot go back ({now_s} < {self.now_s})")
        self.now_s = now_s


@dataclass(frozen=True, slots=True)
class SimCapacity:
    """What the simulated cloud has of one offering and pricing kind: at most
    ``instances`` alive at once (None: unlimited), ready ``launch_delay_s`` after the
    launch."""

    instances: int | None = None
    launch_delay_s: float = 0.0


def _address(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def offering_key_of(o: Offering) -> OfferingKey:
    return (o.provider, o.region, o.zone, o.instance_type)


def _evolve(o: InstanceObservation, state: InstanceState, word: str) -> InstanceObservation:
    """``replace(o, state=state, provider_state=word)``, several times cheaper (the twin
    moves ~100k instances a day through their states)."""
    return InstanceObservation(
        o.instance_id, o.request_id, o.provider, o.region, o.zone, o.instance_type, state,
        o.pricing, o.rank, o.job_id, o.attempt, o.launched_at, word, o.labels, o.address,
    )  # fmt: skip


@dataclass(slots=True)
class _Instance:
    obs: InstanceObservation
    key: tuple[OfferingKey, PricingKind]
    ready_s: float


class SimProvider(AsyncProvider):
    """One simulated provider named ``name`` selling ``offerings`` (module docstring).

    ``capacity``: per (offering key, pricing kind) what the cloud has; others get
    ``default``. ``refuse_probability``: the chance that a launch is refused for
    capacity although capacity is left (a cloud's stock-outs), drawn from ``seed``.
    """

    capabilities = frozenset(
        {Capability.SPOT, Capability.MULTI_NODE, Capability.GPUS, Capability.RESERVATIONS}
    )
    needs_agent = False

    def __init__(
        self,
        name: str,
        offerings: Iterable[Offering],
        *,
        clock: Callable[[], float] = time.time,
        capacity: Mapping[tuple[OfferingKey, PricingKind], SimCapacity] | None = None,
        default: SimCapacity = SimCapacity(),
        refuse_probability: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= refuse_probability <= 1.0:
            raise ValueError(f"refuse_probability: must be in [0, 1], got {refuse_probability}")
        self.name = name
        self._offerings = {offering_key_of(o): o for o in offerings if o.provider == name}
        self._clock = clock
        self._capacity = dict(capacity or {})
        self._default = default
        self._refuse_p = refuse_probability
        self._rng = random.Random(seed)
        self._requests: set[str] = set()
        self._instances: dict[str, _Instance] = {}
        self._by_request: dict[str, list[str]] = {}
        self._alive: dict[tuple[OfferingKey, PricingKind], int] = {}
        self._booting: dict[str, float] = {}  # instance id -> ready at (not yet RUNNING)
        self._pending: dict[str, float] = {}  # request id -> when its answer is due
        self._failures: list[LaunchFailure] = []
        self._events: list[InstanceEvent] = []
        # ended instances, reported once more by ``observe`` (built only there: ``poll``,
        # what the twin calls, drops them unread)
        self._gone: list[tuple[InstanceObservation, InstanceState, str]] = []
        self._down: set[str] = set()  # regions down ("" : the whole provider)
        self._next_id = 0
        self._cache: tuple[InstanceObservation, ...] | None = None

    # ------------------------------------------------------------------ contract ----
    def offerings(self) -> list[Offering]:
        return [self._offerings[k] for k in sorted(self._offerings)]

    def capacity_of(self, key: OfferingKey, pricing: PricingKind) -> SimCapacity:
        return self._capacity.get((key, pricing), self._default)

    def launch(self, request: LaunchRequest) -> None:
        if request.count < 1:
            raise ValueError(f"count: must be >= 1, got {request.count}")
        if request.provider != self.name:
            raise ValueError(f"provider: this is {self.name!r}, not {request.provider!r}")
        rid = request.request_id
        if rid in self._requests:
            return
        self._requests.add(rid)
        now = self._clock()
        key = request.offering
        offering = self._offerings.get(key)
        why = self._refusal(request, offering)
        if why is not None:
            kind, code, msg = why
            self._failures.append(
                LaunchFailure(rid, kind, key, msg, RETRYABLE_BY_DEFAULT[kind], code, now)
            )
            return
        cap = self.capacity_of(key, request.pricing)
        ready = now + max(0.0, cap.launch_delay_s)
        ck = (key, request.pricing)
        self._alive[ck] = self._alive.get(ck, 0) + request.count
        for rank in range(request.count):
            iid = f"sim-{self.name}-{self._next_id}"
            self._next_id += 1
            obs = InstanceObservation(
                instance_id=iid, request_id=rid, provider=self.name, region=request.region,
                zone=request.zone or (offering.zone if offering else ""),
                instance_type=request.instance_type, state=InstanceState.ALLOCATED,
                pricing=request.pricing, rank=rank, job_id=request.job_id,
                attempt=request.attempt, launched_at=now, provider_state="booting",
                labels=dict(request.labels), address=_address(self._next_id),
            )  # fmt: skip
            self._instances[iid] = _Instance(obs, ck, ready)
            self._by_request.setdefault(rid, []).append(iid)
            self._booting[iid] = ready
        self._pending[rid] = ready
        self._cache = None

    def _refusal(
        self, request: LaunchRequest, offering: Offering | None
    ) -> tuple[FailureKind, str, str] | None:
        key = request.offering
        where = "/".join(x for x in key[:3] if x) + f" {key[3]}"
        if offering is None:
            return FailureKind.UNSUPPORTED, CODE_NOT_SOLD, f"{where} is not sold"
        if request.pricing is PricingKind.SPOT and offering.spot_price is None:
            return FailureKind.UNSUPPORTED, CODE_NO_SPOT, f"{where} is not sold as spot"
        if "" in self._down or request.region in self._down:
            return FailureKind.UNAVAILABLE, CODE_DOWN, f"{where}: region unavailable"
        cap = self.capacity_of(key, request.pricing)
        alive = self._alive.get((key, request.pricing), 0)
        if cap.instances is not None and alive + request.count > cap.instances:
            left = max(0, cap.instances - alive)
            return (
                FailureKind.CAPACITY,
                CODE_NO_CAPACITY,
                f"{where} ({request.pricing.value}): {left} instances left, {request.count} asked",
            )
        if self._refuse_p and self._rng.random() < self._refuse_p:
            return FailureKind.CAPACITY, CODE_NO_CAPACITY, f"{where}: no capacity right now"
        return None

    def _tick(self) -> None:
        """Booted instances whose delay has passed are RUNNING."""
        if not self._booting:
            return
        now = self._clock()
        done = [i for i, t in self._booting.items() if t <= now]
        for iid in done:
            del self._booting[iid]
            inst = self._instances[iid]
            if inst.obs.state is InstanceState.ALLOCATED:
                inst.obs = _evolve(inst.obs, InstanceState.RUNNING, "running")
        if done:
            self._cache = None
        for rid in [r for r, t in self._pending.items() if t <= now]:
            del self._pending[rid]

    def observe(self) -> Observation:
        self._tick()
        if self._cache is None:
            self._cache = tuple(i.obs for i in self._instances.values())
        gone = tuple(_evolve(o, state, word) for o, state, word in self._gone)
        return replace(self.poll(), instances=self._cache + gone)

    def poll(self) -> Observation:
        """``observe`` without the snapshot of instances (``instances`` empty): the
        events, failures and pending requests since the previous call, for an
        event-driven caller that follows its requests with ``lookup(request_id)`` (the
        twin: O(what changed) per call at a fleet of 100k instances)."""
        self._tick()
        self._gone = []
        events, self._events = tuple(self._events), []
        failures, self._failures = tuple(self._failures), []
        return Observation(pending=frozenset(self._pending), events=events, failures=failures)

    def terminate(
        self, *, instance_ids: Collection[str] = (), request_id: str | None = None
    ) -> list[str]:
        ids = list(instance_ids)
        if request_id is not None:
            ids.extend(self._by_request.get(request_id, ()))
        out = []
        for iid in dict.fromkeys(ids):
            if iid in self._instances:
                self._end(iid, InstanceState.TERMINATED, "terminated")
                out.append(iid)
        return out

    def lookup(self, request_id: str | None = None) -> list[InstanceObservation]:
        self._tick()
        if request_id is not None:
            ids = self._by_request.get(request_id, ())
            return [self._instances[i].obs for i in ids if i in self._instances]
        return [i.obs for i in self._instances.values()]

    # ------------------------------------------------------------------- weather ----
    def next_change_s(self) -> float:
        """When something happens by itself next (a launch becomes RUNNING); inf: never.
        Failures and events are due at once (the next ``observe``)."""
        if self._failures or self._events:
            return self._clock()
        return min(self._booting.values(), default=math.inf)

    def reclaim(self, instance_ids: Iterable[str], code: str = CODE_RECLAIM) -> list[str]:
        """Spot capacity taken back: ``RECLAIMED`` events; the instances end."""
        self._tick()
        now = self._clock()
        out = []
        for iid in instance_ids:
            inst = self._instances.get(iid)
            if inst is None:
                continue
            self._events.append(
                InstanceEvent(InstanceEventKind.RECLAIMED, iid, inst.obs.request_id, now, code)
            )
            self._end(iid, InstanceState.TERMINATED, "reclaimed")
            out.append(iid)
        return out

    def fail(self, instance_ids: Iterable[str], detail: str = "") -> list[str]:
        """Instances lost (hardware, host retired): ``LOST`` events; they end ``FAILED``."""
        self._tick()
        now = self._clock()
        out = []
        for iid in instance_ids:
            inst = self._instances.get(iid)
            if inst is None:
                continue
            self._events.append(
                InstanceEvent(InstanceEventKind.LOST, iid, inst.obs.request_id, now, detail=detail)
            )
            self._end(iid, InstanceState.FAILED, "lost")
            out.append(iid)
        return out

    def set_down(self, region: str = "") -> list[str]:
        """``region`` (``""``: every region) becomes unreachable: its instances report
        ``IMPAIRED``, its launches in flight fail ``UNAVAILABLE``, new ones are refused.
        Returns the impaired instance ids."""
        self._tick()
        self._down.add(region)
        now = self._clock()
        out = []
        failed_requests: dict[str, LaunchRequest | None] = {}
        for iid, inst in list(self._instances.items()):
            o = inst.obs
            if region and o.region != region:
                continue
            if iid in self._booting:
                failed_requests[o.request_id] = None
                continue
            self._events.append(
                InstanceEvent(
                    InstanceEventKind.IMPAIRED, iid, o.request_id, now, CODE_DOWN, "unreachable"
                )
            )
            out.append(iid)
        for rid in failed_requests:
            o = self._instances[self._by_request[rid][0]].obs
            self.terminate(request_id=rid)
            self._pending.pop(rid, None)
            kind = FailureKind.UNAVAILABLE
            self._failures.append(
                LaunchFailure(
                    rid, kind, o.offering, f"{o.region}: region unavailable",
                    RETRYABLE_BY_DEFAULT[kind], CODE_DOWN, now,
                )
            )  # fmt: skip
            self._gone = [g for g in self._gone if g[0].request_id != rid]
        return out

    def set_up(self, region: str = "") -> None:
        """``region`` (``""``: the provider) is reachable again."""
        self._down.discard(region)

    def is_down(self, region: str) -> bool:
        return "" in self._down or region in self._down

    # ------------------------------------------------------------------ internal ----
    def _end(self, iid: str, state: InstanceState, word: str) -> None:
        inst = self._instances.pop(iid)
        self._booting.pop(iid, None)
        mine = self._by_request.get(inst.obs.request_id)
        if mine is not None:
            mine.remove(iid)
            if not mine:
                del self._by_request[inst.obs.request_id]
        self._alive[inst.key] -= 1
        self._gone.append((inst.obs, state, word))
        self._cache = None
