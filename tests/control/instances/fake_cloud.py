"""An in-memory asynchronous provider for unit tests of the instance step and bridge.

``FakeCloud`` is the world (it outlives a provider object, as a cloud outlives the
process that called it); ``FakeProvider(cloud)`` is one process's client of it: a new
one models a restarted control loop. Launches take ``boot_observes`` observe calls to
show as ALLOCATED and one more to show RUNNING; ``refuse[offering] = FailureKind`` makes
launches of an offering fail; ``reclaim(id)`` and ``lose(id)`` end instances as the
cloud would; ``down = True`` makes every call fail as an outage.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass, field, replace

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
    ProviderCallFailed,
)

OFFER: OfferingKey = ("fake", "r1", "r1a", "gpu8")
OTHER: OfferingKey = ("fake", "r1", "r1b", "gpu8")
MAX_COUNT = 8


@dataclass
class _Vm:
    view: InstanceObservation
    age: int = 0  # observe calls seen since launch


@dataclass
class FakeCloud:
    boot_observes: int = 1
    refuse: dict[OfferingKey, FailureKind] = field(default_factory=dict)
    down: bool = False
    vms: dict[str, _Vm] = field(default_factory=dict)
    requests: dict[str, LaunchRequest] = field(default_factory=dict)
    run_calls: int = 0  # launches the cloud acted on (idempotent by request id)
    terminate_calls: list[list[str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def live(self) -> list[InstanceObservation]:
        return [v.view for v in self.vms.values() if v.view.state is not InstanceState.TERMINATED]

    def end(self, instance_id: str) -> None:
        vm = self.vms[instance_id]
        vm.view = replace(vm.view, state=InstanceState.TERMINATED, provider_state="terminated")


class FakeProvider(AsyncProvider):
    name = "fake"
    capabilities = frozenset({Capability.SPOT, Capability.MULTI_NODE, Capability.ADOPT})

    def __init__(self, cloud: FakeCloud, *, needs_agent: bool = False) -> None:
        self.cloud = cloud
        self.needs_agent = needs_agent
        self.launch_calls: list[LaunchRequest] = []
        self._failures: list[LaunchFailure] = []
        self._events: list[InstanceEvent] = []
        self._pending: set[str] = set()

    def _check(self) -> None:
        if self.cloud.down:
            raise ProviderCallFailed(FailureKind.UNAVAILABLE, "fake: endpoint unreachable")

    def offerings(self) -> list[Offering]:
        self._check()
        return [
            Offering("fake", r, z, t, "H100", 8, 96, 1024, 10.0, spot_price=3.0)
            for (_, r, z, t) in (OFFER, OTHER)
        ]

    def launch(self, request: LaunchRequest) -> None:
        if request.count > MAX_COUNT:
            raise ValueError(f"count: the fake cloud launches at most {MAX_COUNT}")
        self.launch_calls.append(request)
        self._pending.add(request.request_id)

    def _act(self) -> None:
        """Launches in flight reach the cloud at the next observe (asynchronous)."""
        cloud = self.cloud
        for rid in sorted(self._pending):
            request = next(r for r in self.launch_calls if r.request_id == rid)
            if rid in cloud.requests:
                continue  # idempotent by request id, as EC2's ClientToken
            refusal = cloud.refuse.get(request.offering)
            if refusal is not None:
                self._failures.append(
                    LaunchFailure(
                        rid,
                        refusal,
                        request.offering,
                        f"fake refuses {request.instance_type}",
                        RETRYABLE_BY_DEFAULT[refusal],
                        code="FakeRefusal",
                    )
                )
                continue
            cloud.requests[rid] = request
            cloud.run_calls += 1
            for rank in range(request.count):
                iid = f"i-{next(cloud._ids):04d}"
                cloud.vms[iid] = _Vm(
                    InstanceObservation(
                        instance_id=iid,
                        request_id=rid,
                        provider="fake",
                        region=request.region,
                        zone=request.zone,
                        instance_type=request.instance_type,
                        state=InstanceState.REQUESTED,  # not visible yet
                        pricing=request.pricing,
                        rank=rank,
                        labels=dict(request.labels),
                        address=f"10.0.0.{len(cloud.vms) + 1}",
                    )
                )
        self._pending.clear()

    def observe(self) -> Observation:
        self._check()
        self._act()
        out: list[InstanceObservation] = []
        for vm in self.cloud.vms.values():
            v = vm.view
            if v.state is InstanceState.REQUESTED:
                vm.age += 1
                if vm.age >= self.cloud.boot_observes:
                    vm.view = replace(v, state=InstanceState.ALLOCATED, provider_state="pending")
                    out.append(vm.view)
                continue
            if v.state is InstanceState.ALLOCATED:
                vm.view = replace(v, state=InstanceState.RUNNING, provider_state="running")
            elif v.state is InstanceState.TERMINATING:
                vm.view = replace(v, state=InstanceState.TERMINATED, provider_state="terminated")
            out.append(vm.view)
        events, self._events = self._events, []
        failures, self._failures = self._failures, []
        return Observation(tuple(out), frozenset(self._pending), tuple(events), tuple(failures))

    def terminate(
        self, *, instance_ids: Collection[str] = (), request_id: str | None = None
    ) -> list[str]:
        self._check()
        ids = list(instance_ids)
        if request_id is not None:
            self._pending.discard(request_id)
            ids += [i for i, vm in self.cloud.vms.items() if vm.view.request_id == request_id]
        done = []
        for iid in ids:
            vm = self.cloud.vms.get(iid)
            if vm is None or vm.view.state in (InstanceState.TERMINATED, InstanceState.TERMINATING):
                continue
            vm.view = replace(
                vm.view, state=InstanceState.TERMINATING, provider_state="shutting-down"
            )
            done.append(iid)
        self.cloud.terminate_calls.append(done)
        return done

    def lookup(self, request_id: str | None = None) -> list[InstanceObservation]:
        self._check()
        return [
            v
            for v in self.cloud.live()
            if v.state is not InstanceState.REQUESTED
            and (request_id is None or v.request_id == request_id)
        ]

    # -- the cloud acting on its own ---------------------------------------------------

    def reclaim(self, instance_id: str) -> None:
        """Spot capacity taken back: the instance ends and an event says why."""
        self.cloud.end(instance_id)
        view = self.cloud.vms[instance_id].view
        self._events.append(
            InstanceEvent(
                InstanceEventKind.RECLAIMED, instance_id, view.request_id, 0.0, code="Spot"
            )
        )

    def lose(self, instance_id: str) -> None:
        """The instance ends without a word (a host failure, someone else's terminate)."""
        self.cloud.end(instance_id)

    def set_state(self, instance_id: str, state: InstanceState) -> None:
        vm = self.cloud.vms[instance_id]
        vm.view = replace(vm.view, state=state, provider_state=state.value)


def fake_offering(key: OfferingKey = OFFER) -> Offering:
    _, region, zone, itype = key
    return Offering("fake", region, zone, itype, "H100", 8, 96, 1024, 10.0, spot_price=3.0)


__all__ = ["OFFER", "OTHER", "FakeCloud", "FakeProvider", "PricingKind", "fake_offering"]
