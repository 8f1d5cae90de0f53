"""The AWS provider on boto3, behind the asynchronous contract of ``providers.contract``.

- ``launch`` hands the request to a small thread pool and returns. The worker first
  looks for instances already tagged with the request id (so a request is launched at
  most once, also by a new process after a crash: moto ignores ``ClientToken``), then
  calls ``run_instances`` with the request id as ``ClientToken`` (real EC2's own
  idempotency), all-or-nothing (``MinCount == MaxCount``). Failures are classified
  (``errors.classify``) and come back from ``observe``.
- ``observe`` lists this cluster's tagged instances in every configured region, adds
  what ``describe_instance_status`` says (scheduled events, failed health checks) and
  turns instances that ended without intercloud asking (no ``terminating`` tag) into
  ``RECLAIMED`` (spot) or ``LOST`` events.
- ``terminate``, ``lookup``, ``adopt`` and ``sweep`` only ever touch instances tagged
  with this cluster.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from intercloud.catalog import Catalog, load_bundled
from intercloud.model import Offering, PricingKind
from intercloud.providers.aws.capacity import (
    CAPACITY_BLOCK,
    ReservationUnusable,
    ensure_placement_group,
    reservation_target,
)
from intercloud.providers.aws.clients import make_ec2_client
from intercloud.providers.aws.errors import EC2_CODES, classify
from intercloud.providers.aws.offerings import zonal_offerings, zones_by_type
from intercloud.providers.aws.settings import AwsSettings
from intercloud.providers.aws.tags import (
    TagKeys,
    cluster_filter,
    labels_of,
    launch_tags,
    request_filter,
    tag_map,
)
from intercloud.providers.contract import (
    RETRYABLE_BY_DEFAULT,
    AsyncProvider,
    Capability,
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

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, InstanceTypeDef

PROVIDER = "aws"
T = TypeVar("T")

# EC2 instance state name -> contract state.
EC2_STATES: dict[str, InstanceState] = {
    "pending": InstanceState.ALLOCATED,
    "running": InstanceState.RUNNING,
    "shutting-down": InstanceState.TERMINATING,
    "terminated": InstanceState.TERMINATED,
    "stopping": InstanceState.FAILED,  # intercloud never stops instances
    "stopped": InstanceState.FAILED,
}
LIVE_EC2_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
SPOT_RECLAIM_CODE = "Server.SpotInstanceTermination"
# Spot request status codes that announce an interruption.
SPOT_NOTICE_CODES = frozenset(
    {"marked-for-termination", "marked-for-stop", "marked-for-hibernation"}
)
MAX_USER_DATA = 16 * 1024  # EC2's limit, before base64
_IDS_PER_CALL = 100  # describe_instance_status / terminate_instances take at most this


@dataclass(frozen=True, slots=True)
class _Seen:
    """One described instance with what observe needs beyond the contract view."""

    view: InstanceObservation
    asked_to_end: bool  # carries the terminating tag
    spot: bool
    reason_code: str
    spot_request_id: str


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AwsProvider(AsyncProvider):
    """EC2 in the regions of ``settings``.

    ``client_factory(region)`` builds the EC2 client of a region (default: boto3 with
    the settings' retry mode, timeouts and endpoint); tests pass clients wired to
    botocore's Stubber or event hooks. ``catalog`` supplies shapes and prices (default:
    the bundled catalog).
    """

    name = PROVIDER
    capabilities = frozenset(
        {Capability.SPOT, Capability.MULTI_NODE, Capability.RESERVATIONS, Capability.GPUS,
         Capability.ADOPT}
    )  # fmt: skip

    def __init__(
        self,
        settings: AwsSettings,
        *,
        catalog: Catalog | None = None,
        client_factory: Callable[[str], EC2Client] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = TagKeys(settings.tag_prefix)
        self._catalog = catalog
        factory = client_factory or (lambda region: make_ec2_client(settings, region))
        self._clients: dict[str, EC2Client] = {r: factory(r) for r in settings.regions}
        self._clock = clock
        self._pool = ThreadPoolExecutor(settings.launch_workers, thread_name_prefix="aws-launch")
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[None]] = {}
        self._cancelled: set[str] = set()
        self._failures: list[LaunchFailure] = []
        self._asked_to_end: set[str] = set()  # instance ids terminated by this object
        self._reported: set[tuple[str, str]] = set()  # (instance id, event key) sent once
        self._offerings: tuple[float, list[Offering]] | None = None

    def client(self, region: str) -> EC2Client:
        try:
            return self._clients[region]
        except KeyError:
            raise ValueError(
                f"region {region!r} is not among the AWS provider's regions "
                f"({', '.join(self.settings.regions)})"
            ) from None

    # --- offerings ------------------------------------------------------------------

    def offerings(self) -> list[Offering]:
        """Catalog rows of the configured regions, per zone where EC2 offers them.

        Cached for ``offerings_ttl_s``. Raises ``ProviderCallFailed`` if EC2 cannot be
        asked (the caller then treats AWS as selling nothing for now).
        """
        now = self._clock()
        cached = self._offerings
        if cached is not None and now - cached[0] < self.settings.offerings_ttl_s:
            return list(cached[1])
        catalog = self._catalog or load_bundled()
        rows = [o for o in catalog.offerings if o.provider == PROVIDER]
        out: list[Offering] = []
        for region, client in self._clients.items():
            types = sorted({o.instance_type for o in rows if o.region == region})
            if not types:
                continue
            zones = self._call(partial(zones_by_type, client, types))
            out.extend(zonal_offerings(rows, region, zones))
        self._offerings = (now, out)
        return list(out)

    # --- launch ---------------------------------------------------------------------

    def launch(self, request: LaunchRequest) -> None:
        """Queue the launch and return. Raises ``ValueError`` for a request no AWS
        account could ever take (wrong provider or region, bad id, missing image)."""
        self._validate(request)
        with self._lock:
            if request.request_id in self._inflight:
                return
            future = self._pool.submit(self._launch_now, request)
            self._inflight[request.request_id] = future
        future.add_done_callback(partial(self._done, request.request_id))

    def _done(self, request_id: str, _future: Future[None]) -> None:
        with self._lock:
            self._inflight.pop(request_id, None)
            self._cancelled.discard(request_id)

    def wait_launches(self, timeout: float | None = None) -> bool:
        """Wait for the launches in flight; True when none is left. For tests and
        orderly shutdown; the control loop never waits."""
        with self._lock:
            futures = list(self._inflight.values())
        _done, not_done = wait_futures(futures, timeout=timeout)
        return not not_done

    def _validate(self, request: LaunchRequest) -> None:
        rid = request.request_id
        if request.provider != PROVIDER:
            raise ValueError(f"offering: provider {request.provider!r} is not 'aws'")
        if request.region not in self._clients:
            raise ValueError(
                f"offering: region {request.region!r} is not among the configured regions "
                f"({', '.join(self.settings.regions)})"
            )
        if not 1 <= len(rid) <= 64 or not rid.isascii() or not rid.isprintable():
            raise ValueError(f"request_id: {rid!r} must be 1-64 printable ASCII characters")
        if request.count < 1:
            raise ValueError(f"count: must be at least 1, got {request.count}")
        if not request.instance_type:
            raise ValueError("offering: instance type is empty")
        if request.pricing is PricingKind.RESERVED and not request.capacity_reservation_id:
            raise ValueError("capacity_reservation_id: reserved pricing needs a reservation")
        if request.pricing is PricingKind.SPOT and request.capacity_reservation_id:
            raise ValueError("capacity_reservation_id: spot cannot target a reservation")
        if request.max_price_usd is not None and request.pricing is not PricingKind.SPOT:
            raise ValueError("max_price_usd: only spot launches take a maximum price")
        if len(request.user_data) > MAX_USER_DATA:
            raise ValueError(
                f"user_data: {len(request.user_data)} bytes, EC2 takes at most {MAX_USER_DATA}"
            )
        if not (request.image or self.settings.image_id):
            raise ValueError("image: no image in the request and no image_id in the settings")

    def _launch_now(self, request: LaunchRequest) -> None:
        """Worker: launch unless already launched; record a typed failure otherwise."""
        client = self.client(request.region)
        try:
            if self._describe(request.region, [request_filter(self.keys, request.request_id)]):
                return  # launched before (by us, or by a process that crashed after)
            args = self._run_args(request)
            if request.capacity_reservation_id:
                target = reservation_target(
                    client,
                    request.capacity_reservation_id,
                    request.instance_type,
                    request.zone,
                    request.count,
                )
                reserved = target.run_instances_args()
                placement = {**args.get("Placement", {}), **reserved.pop("Placement")}
                args.update(reserved, Placement=placement)
            if request.placement_group:
                ensure_placement_group(
                    client,
                    request.placement_group,
                    {self.keys.cluster: self.settings.cluster_id},
                )
            reply = client.run_instances(**args)
            born = reply.get("Instances", [])
            self._tag_ranks(client, born)
        except ReservationUnusable as exc:
            kind = EC2_CODES.get(exc.code, FailureKind.UNSUPPORTED)
            self._fail(request, kind, exc.code, str(exc))
            return
        except Exception as exc:  # every failure must reach observe(), typed
            failure = classify(exc)
            self._fail(request, failure.kind, failure.code, failure.message)
            return
        with self._lock:
            cancelled = request.request_id in self._cancelled
        if cancelled:  # terminate(request_id) came while run_instances was in flight
            # By the ids EC2 just gave: a lookup by tag may not see them yet (EC2's
            # describe calls are eventually consistent). If this fails, the next
            # terminate or sweep finds them by tag.
            ids = [i["InstanceId"] for i in born if "InstanceId" in i]
            with self._lock:
                self._asked_to_end.update(ids)
            with contextlib.suppress(Exception):
                self._terminate_chunk(request.region, ids)

    def _run_args(self, request: LaunchRequest) -> dict[str, Any]:
        s = self.settings
        args: dict[str, Any] = {
            "ImageId": request.image or s.image_id,
            "InstanceType": request.instance_type,
            "MinCount": request.count,
            "MaxCount": request.count,
            "ClientToken": request.request_id,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": launch_tags(self.keys, s.cluster_id, request)}
            ],
        }
        placement: dict[str, str] = {}
        if request.zone:
            placement["AvailabilityZone"] = request.zone
        if request.placement_group:
            placement["GroupName"] = request.placement_group
        if placement:
            args["Placement"] = placement
        if request.pricing is PricingKind.SPOT:
            spot: dict[str, str] = {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            }
            if request.max_price_usd is not None:
                spot["MaxPrice"] = f"{request.max_price_usd:.6f}"
            args["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        if request.user_data:
            args["UserData"] = request.user_data  # botocore base64-encodes it
        subnet = s.subnets.get(request.zone) if request.zone else None
        if subnet:
            args["SubnetId"] = subnet
        if s.security_group_ids:
            args["SecurityGroupIds"] = list(s.security_group_ids)
        if s.key_name:
            args["KeyName"] = s.key_name
        return args

    def _tag_ranks(self, client: EC2Client, instances: list[InstanceTypeDef]) -> None:
        """Tag each instance with its rank (its launch index). Best effort: the launch
        index is on the instance anyway, the tag is for people reading the console."""
        for inst in instances:
            iid = inst.get("InstanceId")
            if not iid:
                continue
            try:
                client.create_tags(
                    Resources=[iid],
                    Tags=[{"Key": self.keys.rank, "Value": str(inst.get("AmiLaunchIndex", 0))}],
                )
            except ClientError:
                continue

    def _fail(self, request: LaunchRequest, kind: FailureKind, code: str, message: str) -> None:
        failure = LaunchFailure(
            request_id=request.request_id,
            kind=kind,
            offering=request.offering,
            message=message,
            retryable=RETRYABLE_BY_DEFAULT[kind],
            code=code,
            at=self._clock(),
        )
        with self._lock:
            self._failures.append(failure)

    # --- describe -------------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one synchronous EC2 call; any failure becomes ``ProviderCallFailed``."""
        try:
            return fn()
        except ProviderCallFailed:
            raise
        except Exception as exc:
            failure = classify(exc)
            raise ProviderCallFailed(failure.kind, failure.message, code=failure.code) from exc

    def _describe(
        self, region: str, filters: list[FilterTypeDef], live_only: bool = False
    ) -> list[_Seen]:
        client = self.client(region)
        all_filters = [cluster_filter(self.keys, self.settings.cluster_id), *filters]
        if live_only:
            all_filters.append({"Name": "instance-state-name", "Values": list(LIVE_EC2_STATES)})
        seen: list[_Seen] = []
        for page in client.get_paginator("describe_instances").paginate(Filters=all_filters):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    seen.append(self._seen(region, inst))
        return seen

    def _seen(self, region: str, inst: InstanceTypeDef) -> _Seen:
        keys = self.keys
        tags = tag_map(inst.get("Tags"))
        ec2_state = inst.get("State", {}).get("Name", "pending")
        lifecycle = inst.get("InstanceLifecycle", "")
        launch = inst.get("LaunchTime")
        try:
            pricing = PricingKind(tags.get(keys.pricing, ""))
        except ValueError:
            if lifecycle == "spot":
                pricing = PricingKind.SPOT
            elif lifecycle == CAPACITY_BLOCK or inst.get("CapacityReservationId"):
                pricing = PricingKind.RESERVED
            else:
                pricing = PricingKind.ON_DEMAND
        rank_tag = tags.get(keys.rank, "")
        view = InstanceObservation(
            instance_id=inst.get("InstanceId", ""),
            request_id=tags.get(keys.request, ""),
            provider=PROVIDER,
            region=region,
            zone=inst.get("Placement", {}).get("AvailabilityZone", ""),
            instance_type=str(inst.get("InstanceType", "")),
            state=EC2_STATES.get(ec2_state, InstanceState.FAILED),
            pricing=pricing,
            rank=int(rank_tag) if rank_tag.isdigit() else int(inst.get("AmiLaunchIndex", 0)),
            job_id=tags.get(keys.job, ""),
            attempt=int(tags.get(keys.attempt, "0") or 0),
            launched_at=launch.timestamp() if launch is not None else None,
            provider_state=ec2_state,
            labels={**labels_of(keys, tags)},
            address=inst.get("PrivateIpAddress", ""),
        )
        return _Seen(
            view=view,
            asked_to_end=keys.terminating in tags,
            spot=lifecycle == "spot" or pricing is PricingKind.SPOT,
            reason_code=inst.get("StateReason", {}).get("Code", ""),
            spot_request_id=inst.get("SpotInstanceRequestId", ""),
        )

    def lookup(self, request_id: str | None = None) -> list[InstanceObservation]:
        """Instances of this cluster that still exist (not terminated), by tag."""
        filters: list[FilterTypeDef] = []
        if request_id is not None:
            filters.append(request_filter(self.keys, request_id))
        out: list[InstanceObservation] = []
        for region in self._clients:
            seen = self._call(partial(self._describe, region, filters, live_only=True))
            out.extend(s.view for s in seen if s.view.state is not InstanceState.TERMINATED)
        return sorted(out, key=lambda i: (i.request_id, i.rank, i.instance_id))

    # --- observe --------------------------------------------------------------------

    def observe(self) -> Observation:
        """Raises ``ProviderCallFailed`` when a region cannot be described; launch
        failures recorded so far stay queued for the next call then."""
        instances: list[InstanceObservation] = []
        events: list[InstanceEvent] = []
        for region in self._clients:
            seen = self._call(partial(self._describe, region, []))
            instances.extend(s.view for s in seen)
            events.extend(self._ended_events(seen))
            events.extend(self._call(partial(self._status_events, region, seen)))
            events.extend(self._call(partial(self._spot_notices, region, seen)))
        with self._lock:
            failures, self._failures = self._failures, []
            pending = frozenset(self._inflight)
            # Forget instances EC2 no longer lists (it drops terminated ones after
            # about an hour), so a long-running loop does not grow without bound.
            listed = {i.instance_id for i in instances}
            self._reported = {k for k in self._reported if k[0] in listed}
            self._asked_to_end &= listed
        instances.sort(key=lambda i: (i.request_id, i.rank, i.instance_id))
        return Observation(tuple(instances), pending, tuple(events), tuple(failures))

    def _once(self, instance_id: str, key: str) -> bool:
        """True the first time (instance, key) is seen by this object."""
        with self._lock:
            if (instance_id, key) in self._reported:
                return False
            self._reported.add((instance_id, key))
            return True

    def _ended_events(self, seen: list[_Seen]) -> list[InstanceEvent]:
        """Instances that are ending or ended without intercloud asking."""
        now = self._clock()
        out: list[InstanceEvent] = []
        for s in seen:
            v = s.view
            if v.state not in (InstanceState.TERMINATING, InstanceState.TERMINATED):
                if v.state is InstanceState.FAILED and self._once(v.instance_id, "stopped"):
                    out.append(
                        InstanceEvent(
                            InstanceEventKind.LOST, v.instance_id, v.request_id, now,
                            s.reason_code, f"instance is {v.provider_state}",
                        )
                    )  # fmt: skip
                continue
            if s.asked_to_end or v.instance_id in self._asked_to_end:
                continue
            reclaimed = s.spot or s.reason_code == SPOT_RECLAIM_CODE
            kind = InstanceEventKind.RECLAIMED if reclaimed else InstanceEventKind.LOST
            if self._once(v.instance_id, "ended"):
                detail = f"instance is {v.provider_state}, not at intercloud's request"
                out.append(
                    InstanceEvent(kind, v.instance_id, v.request_id, now, s.reason_code, detail)
                )
        return out

    def _status_events(self, region: str, seen: list[_Seen]) -> list[InstanceEvent]:
        """Scheduled maintenance/retirement and failed health checks of live instances."""
        by_id = {s.view.instance_id: s.view for s in seen}
        live = [i for i, v in by_id.items() if v.state is InstanceState.RUNNING]
        now = self._clock()
        out: list[InstanceEvent] = []
        client = self.client(region)
        for chunk in _chunks(live, _IDS_PER_CALL):
            reply = client.describe_instance_status(InstanceIds=chunk, IncludeAllInstances=True)
            for status in reply.get("InstanceStatuses", []):
                iid = status.get("InstanceId", "")
                request_id = by_id[iid].request_id if iid in by_id else ""
                for ev in status.get("Events", []):
                    code = str(ev.get("Code", ""))
                    description = ev.get("Description", "")
                    if description.startswith("[Completed]") or description.startswith(
                        "[Canceled]"
                    ):
                        continue
                    not_before = ev.get("NotBefore")
                    key = f"scheduled:{code}:{not_before}"
                    if self._once(iid, key):
                        detail = f"{description} (not before {not_before})"
                        out.append(
                            InstanceEvent(
                                InstanceEventKind.SCHEDULED, iid, request_id, now, code, detail
                            )
                        )
                checks = (
                    status.get("InstanceStatus", {}).get("Status"),
                    status.get("SystemStatus", {}).get("Status"),
                )
                if "impaired" in checks and self._once(iid, "impaired"):
                    out.append(
                        InstanceEvent(
                            InstanceEventKind.IMPAIRED, iid, request_id, now, "impaired",
                            f"instance status {checks[0]}, system status {checks[1]}",
                        )
                    )  # fmt: skip
        return out

    def _spot_notices(self, region: str, seen: list[_Seen]) -> list[InstanceEvent]:
        """Spot instances EC2 has marked for interruption (its two-minute warning)."""
        by_request = {
            s.spot_request_id: s.view
            for s in seen
            if s.spot_request_id and s.view.state is InstanceState.RUNNING
        }
        now = self._clock()
        out: list[InstanceEvent] = []
        client = self.client(region)
        for chunk in _chunks(sorted(by_request), _IDS_PER_CALL):
            reply = client.describe_spot_instance_requests(SpotInstanceRequestIds=chunk)
            for row in reply.get("SpotInstanceRequests", []):
                code = row.get("Status", {}).get("Code", "")
                view = by_request.get(row.get("SpotInstanceRequestId", ""))
                if view is None or code not in SPOT_NOTICE_CODES:
                    continue
                if self._once(view.instance_id, "notice"):
                    detail = row.get("Status", {}).get("Message", "") or code
                    out.append(
                        InstanceEvent(
                            InstanceEventKind.RECLAIM_NOTICE,
                            view.instance_id,
                            view.request_id,
                            now,
                            code,
                            detail,
                        )
                    )
        return out

    # --- terminate ------------------------------------------------------------------

    def terminate(
        self, *, instance_ids: Collection[str] = (), request_id: str | None = None
    ) -> list[str]:
        """Terminate this cluster's instances among ``instance_ids`` and/or of
        ``request_id``; a launch of ``request_id`` still in flight is terminated when it
        lands. Instances not tagged with this cluster are never touched."""
        wanted = set(instance_ids)
        if not wanted and request_id is None:
            return []
        if request_id is not None:
            with self._lock:
                if request_id in self._inflight:
                    self._cancelled.add(request_id)
        candidates = self.lookup(request_id if not wanted else None)
        chosen = [
            i
            for i in candidates
            if (i.instance_id in wanted or (request_id is not None and i.request_id == request_id))
            and i.state not in (InstanceState.TERMINATING, InstanceState.TERMINATED)
        ]
        ended: list[str] = []
        for region in self._clients:
            ids = sorted(i.instance_id for i in chosen if i.region == region)
            for chunk in _chunks(ids, _IDS_PER_CALL):
                with self._lock:
                    self._asked_to_end.update(chunk)
                self._call(partial(self._terminate_chunk, region, chunk))
                ended.extend(chunk)
        return ended

    def _terminate_chunk(self, region: str, ids: list[str]) -> None:
        client = self.client(region)
        # Mark first, so that anyone observing later (another process too) knows the
        # end was asked for and does not report it as a reclaim or a loss.
        client.create_tags(Resources=ids, Tags=[{"Key": self.keys.terminating, "Value": "1"}])
        try:
            client.terminate_instances(InstanceIds=ids)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
                raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
