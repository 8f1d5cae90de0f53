"""An in-memory asynchronous provider for the control-plane benchmarks (``bench/control.py``).

``BenchCloud`` is the world (its VMs outlive a provider object); ``BenchProvider`` is the
loop's client of it, implementing ``providers.contract.AsyncProvider`` without an agent
(``needs_agent`` False: an instance counts as running when the cloud says so). A launch
reaches the cloud at the next ``observe`` and shows RUNNING at once, so the benchmarks
time the control plane, not a simulated boot. ``refuse[offering] = FailureKind`` makes
launches of that offering fail, as a cloud out of capacity does. Adapted from the unit
tests' ``tests/control/instances/fake_cloud.py`` (which sells two fixed offerings).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from intercloud.model import Offering, PricingKind
from intercloud.providers.base import Capability, OfferingKey
from intercloud.providers.contract import (
    RETRYABLE_BY_DEFAULT,
    AsyncProvider,
    FailureKind,
    InstanceObservation,
    InstanceState,
    LaunchFailure,
    LaunchRequest,
    Observation,
)

__all__ = ["BenchCloud", "BenchProvider"]


@dataclass
class BenchCloud:
    """The cloud: what it sells, its VMs by provider id, the requests it acted on."""

    sells: Sequence[Offering]
    refuse: dict[OfferingKey, FailureKind] = field(default_factory=dict)
    vms: dict[str, InstanceObservation] = field(default_factory=dict)
    requests: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_running(self, request_id: str, offering: OfferingKey, count: int) -> list[str]:
        """``count`` running VMs of ``offering`` for ``request_id`` (seeding a fleet)."""
        self.requests.add(request_id)
        provider, region, zone, itype = offering
        out = []
        for rank in range(count):
            n = next(self._ids)
            iid = f"i-{n:06d}"
            self.vms[iid] = InstanceObservation(
                instance_id=iid, request_id=request_id, provider=provider, region=region,
                zone=zone, instance_type=itype, state=InstanceState.RUNNING,
                pricing=PricingKind.ON_DEMAND, rank=rank, provider_state="running",
                address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
            )  # fmt: skip
            out.append(iid)
        return out


class BenchProvider(AsyncProvider):
    """The loop's client of ``cloud`` (module docstring)."""

    capabilities = frozenset({Capability.MULTI_NODE, Capability.ADOPT})
    needs_agent = False

    def __init__(self, cloud: BenchCloud, name: str = "bench") -> None:
        self.name = name
        self.cloud = cloud
        self._pending: dict[str, LaunchRequest] = {}
        self._failures: list[LaunchFailure] = []

    def offerings(self) -> list[Offering]:
        return list(self.cloud.sells)

    def launch(self, request: LaunchRequest) -> None:
        self._pending[request.request_id] = request

    def _act(self) -> None:
        cloud = self.cloud
        for rid, req in sorted(self._pending.items()):
            if rid in cloud.requests:
                continue  # idempotent by request id
            refusal = cloud.refuse.get(req.offering)
            if refusal is not None:
                self._failures.append(
                    LaunchFailure(rid, refusal, req.offering, f"bench refuses {req.instance_type}",
                                  RETRYABLE_BY_DEFAULT[refusal], code="BenchRefusal")
                )  # fmt: skip
                continue
            for iid in cloud.add_running(rid, req.offering, req.count):
                cloud.vms[iid] = replace(cloud.vms[iid], pricing=req.pricing)
        self._pending.clear()

    def observe(self) -> Observation:
        self._act()
        failures, self._failures = self._failures, []
        return Observation(tuple(self.cloud.vms.values()), frozenset(), (), tuple(failures))

    def terminate(
        self, *, instance_ids: Collection[str] = (), request_id: str | None = None
    ) -> list[str]:
        ids = list(instance_ids)
        if request_id is not None:
            self._pending.pop(request_id, None)
            ids += [i for i, v in self.cloud.vms.items() if v.request_id == request_id]
        done = []
        for iid in ids:
            v = self.cloud.vms.get(iid)
            if v is not None and v.state is not InstanceState.TERMINATED:
                self.cloud.vms[iid] = replace(v, state=InstanceState.TERMINATED)
                done.append(iid)
        return done

    def lookup(self, request_id: str | None = None) -> list[InstanceObservation]:
        return [
            v
            for v in self.cloud.vms.values()
            if v.state is not InstanceState.TERMINATED
            and (request_id is None or v.request_id == request_id)
        ]
