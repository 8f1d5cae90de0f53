"""What moto's server does not implement (HTTP 500): placement groups, capacity
reservations, Capacity Blocks, scheduled events. botocore's Stubber answers with
responses shaped like the EC2 API reference's, and checks the parameters we send."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from intercloud.model import PricingKind
from intercloud.providers.aws import AwsProvider, AwsSettings
from intercloud.providers.aws.capacity import (
    capacity_block_offers,
    ensure_placement_group,
    purchase_capacity_block,
)
from intercloud.providers.contract import (
    FailureKind,
    InstanceEventKind,
    InstanceState,
    LaunchRequest,
    Observation,
)

REGION = "us-east-1"
CLUSTER = "stubbed"
START = datetime(2026, 12, 7, 11, 30, tzinfo=UTC)


@pytest.fixture
def client() -> Any:
    return boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber


@pytest.fixture
def provider(client: Any) -> Iterator[AwsProvider]:
    settings = AwsSettings(regions=[REGION], cluster_id=CLUSTER, image_id="ami-0abc")
    prov = AwsProvider(settings, client_factory=lambda _region: client)
    yield prov
    prov.close()


def cluster_filter(request_id: str | None = None) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [{"Name": "tag:intercloud:cluster", "Values": [CLUSTER]}]
    if request_id:
        filters.append({"Name": "tag:intercloud:request", "Values": [request_id]})
    return filters


def instance(iid: str, rank: int, request_id: str, state: str = "running", **kw: Any) -> Any:
    row = {
        "InstanceId": iid,
        "InstanceType": "p5.48xlarge",
        "AmiLaunchIndex": rank,
        "State": {"Code": 16, "Name": state},
        "Placement": {"AvailabilityZone": "us-east-1d"},
        "LaunchTime": START,
        "Tags": [
            {"Key": "intercloud:cluster", "Value": CLUSTER},
            {"Key": "intercloud:request", "Value": request_id},
        ],
    }
    row.update(kw)
    return row


def finish(provider: AwsProvider, stub: Stubber) -> Observation:
    """Wait for the launch, then observe with no instances (failures only)."""
    assert provider.wait_launches(timeout=10)
    stub.add_response("describe_instances", {"Reservations": []}, {"Filters": cluster_filter()})
    obs = provider.observe()
    stub.assert_no_pending_responses()
    return obs


def test_gang_launch_creates_a_cluster_placement_group_first(
    provider: AwsProvider, stub: Stubber
) -> None:
    req = LaunchRequest(
        "r-gang", ("aws", REGION, "us-east-1d", "p5.48xlarge"), count=4, placement_group="pg-1"
    )
    stub.add_response(
        "describe_instances", {"Reservations": []}, {"Filters": cluster_filter("r-gang")}
    )
    stub.add_response(
        "create_placement_group",
        {"PlacementGroup": {"GroupName": "pg-1", "Strategy": "cluster", "State": "available"}},
        {
            "GroupName": "pg-1",
            "Strategy": "cluster",
            "TagSpecifications": [
                {
                    "ResourceType": "placement-group",
                    "Tags": [{"Key": "intercloud:cluster", "Value": CLUSTER}],
                }
            ],
        },
    )
    stub.add_response(
        "run_instances",
        {"Instances": [{"InstanceId": f"i-{r}", "AmiLaunchIndex": r} for r in range(4)]},
        {
            "ImageId": "ami-0abc",
            "InstanceType": "p5.48xlarge",
            "MinCount": 4,
            "MaxCount": 4,
            "ClientToken": "r-gang",
            "TagSpecifications": ANY,
            "Placement": {"AvailabilityZone": "us-east-1d", "GroupName": "pg-1"},
        },
    )
    for r in range(4):
        stub.add_response("create_tags", {}, {"Resources": [f"i-{r}"], "Tags": ANY})
    provider.launch(req)
    assert finish(provider, stub).failures == ()


def test_existing_placement_group_is_reused(client: Any, stub: Stubber) -> None:
    stub.add_client_error(
        "create_placement_group",
        service_error_code="InvalidPlacementGroup.Duplicate",
        service_message="The Placement Group 'pg-1' already exists.",
    )
    assert ensure_placement_group(client, "pg-1", {}) is False
    stub.add_client_error("create_placement_group", service_error_code="UnauthorizedOperation")
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        ensure_placement_group(client, "pg-1", {})


def test_placement_group_quota_is_a_typed_failure(provider: AwsProvider, stub: Stubber) -> None:
    stub.add_response(
        "describe_instances", {"Reservations": []}, {"Filters": cluster_filter("r-pg")}
    )
    stub.add_client_error("create_placement_group", "PlacementGroupLimitExceeded")
    provider.launch(
        LaunchRequest("r-pg", ("aws", REGION, "", "p5.48xlarge"), count=2, placement_group="pg")
    )
    (failure,) = finish(provider, stub).failures
    assert (failure.kind, failure.code) == (FailureKind.QUOTA, "PlacementGroupLimitExceeded")


def reservation(state: str = "active", available: int = 2, **kw: Any) -> dict[str, Any]:
    row = {
        "CapacityReservationId": "cr-0123",
        "InstanceType": "p5.48xlarge",
        "InstancePlatform": "Linux/UNIX",
        "AvailabilityZone": "us-east-1d",
        "TotalInstanceCount": 2,
        "AvailableInstanceCount": available,
        "State": state,
        "ReservationType": "capacity-block",
        "InstanceMatchCriteria": "targeted",
        "StartDate": START,
        "EndDate": START + timedelta(days=1),
    }
    row.update(kw)
    return {"CapacityReservations": [row]}


def reserved_request(count: int = 2) -> LaunchRequest:
    return LaunchRequest(
        "r-cb",
        ("aws", REGION, "", "p5.48xlarge"),
        count=count,
        pricing=PricingKind.RESERVED,
        capacity_reservation_id="cr-0123",
    )


def test_capacity_block_launch_targets_the_reservation(
    provider: AwsProvider, stub: Stubber
) -> None:
    stub.add_response(
        "describe_instances", {"Reservations": []}, {"Filters": cluster_filter("r-cb")}
    )
    stub.add_response(
        "describe_capacity_reservations", reservation(), {"CapacityReservationIds": ["cr-0123"]}
    )
    stub.add_response(
        "run_instances",
        {"Instances": [{"InstanceId": "i-0", "AmiLaunchIndex": 0}]},
        {
            "ImageId": "ami-0abc",
            "InstanceType": "p5.48xlarge",
            "MinCount": 2,
            "MaxCount": 2,
            "ClientToken": "r-cb",
            "TagSpecifications": ANY,
            "CapacityReservationSpecification": {
                "CapacityReservationTarget": {"CapacityReservationId": "cr-0123"}
            },
            "InstanceMarketOptions": {"MarketType": "capacity-block"},
            "Placement": {"AvailabilityZone": "us-east-1d"},
        },
    )
    stub.add_response("create_tags", {}, {"Resources": ["i-0"], "Tags": ANY})
    provider.launch(reserved_request())
    assert finish(provider, stub).failures == ()


def test_ordinary_reservation_launch_has_no_market_type(
    provider: AwsProvider, stub: Stubber
) -> None:
    stub.add_response(
        "describe_instances", {"Reservations": []}, {"Filters": cluster_filter("r-cb")}
    )
    stub.add_response("describe_capacity_reservations", reservation(ReservationType="default"))
    expect_run = {
        "ImageId": "ami-0abc",
        "InstanceType": "p5.48xlarge",
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": "r-cb",
        "TagSpecifications": ANY,
        "CapacityReservationSpecification": ANY,
        "Placement": {"AvailabilityZone": "us-east-1d"},
    }
    stub.add_response(
        "run_instances", {"Instances": [{"InstanceId": "i-0", "AmiLaunchIndex": 0}]}, expect_run
    )
    stub.add_response("create_tags", {}, {"Resources": ["i-0"], "Tags": ANY})
    provider.launch(reserved_request(count=1))
    assert finish(provider, stub).failures == ()


@pytest.mark.parametrize(
    ("answer", "kind", "code"),
    [
        (reservation(available=1), FailureKind.CAPACITY, "ReservationCapacityExceeded"),
        (reservation(state="scheduled"), FailureKind.CAPACITY, "ReservationCapacityExceeded"),
        (
            reservation(InstanceType="p4d.24xlarge"),
            FailureKind.UNSUPPORTED,
            "InvalidParameterCombination",
        ),
        (
            {"CapacityReservations": []},
            FailureKind.UNSUPPORTED,
            "InvalidCapacityReservationId.NotFound",
        ),
    ],
)
def test_unusable_reservation_is_a_typed_failure_and_nothing_launches(
    provider: AwsProvider, stub: Stubber, answer: dict[str, Any], kind: FailureKind, code: str
) -> None:
    stub.add_response(
        "describe_instances", {"Reservations": []}, {"Filters": cluster_filter("r-cb")}
    )
    stub.add_response("describe_capacity_reservations", answer)
    provider.launch(reserved_request())
    (failure,) = finish(provider, stub).failures  # and no run_instances was stubbed
    assert (failure.kind, failure.code, failure.request_id) == (kind, code, "r-cb")


def test_capacity_block_offers_are_parsed_cheapest_first(client: Any, stub: Stubber) -> None:
    def offer(oid: str, fee: str, hours: int, currency: str = "USD") -> dict[str, Any]:
        return {
            "CapacityBlockOfferingId": oid,
            "InstanceType": "p5.48xlarge",
            "AvailabilityZone": "us-east-1d",
            "InstanceCount": 2,
            "StartDate": START,
            "EndDate": START + timedelta(hours=hours),
            "CapacityBlockDurationHours": hours,
            "UpfrontFee": fee,
            "CurrencyCode": currency,
            "Tenancy": "default",
        }

    stub.add_response(
        "describe_capacity_block_offerings",
        {
            "CapacityBlockOfferings": [
                offer("cbr-a", "1200.00", 24),  # 25 USD per instance-hour
                offer("cbr-b", "960.00", 24),  # 20
                offer("cbr-c", "1.00", 24, currency="EUR"),  # not priced in USD: skipped
            ]
        },
        {"InstanceType": "p5.48xlarge", "InstanceCount": 2, "CapacityDurationHours": 24},
    )
    offers = capacity_block_offers(client, "p5.48xlarge", 2, 24)
    assert [o.offer_id for o in offers] == ["cbr-b", "cbr-a"]
    assert offers[0].usd_per_instance_hour == pytest.approx(20.0)
    assert offers[0].zone == "us-east-1d" and offers[0].end - offers[0].start == timedelta(hours=24)

    stub.add_response(
        "purchase_capacity_block",
        {"CapacityReservation": reservation(state="scheduled")["CapacityReservations"][0]},
        {
            "CapacityBlockOfferingId": "cbr-b",
            "InstancePlatform": "Linux/UNIX",
            "TagSpecifications": [
                {
                    "ResourceType": "capacity-reservation",
                    "Tags": [{"Key": "intercloud:cluster", "Value": CLUSTER}],
                }
            ],
        },
    )
    assert purchase_capacity_block(client, "cbr-b", {"intercloud:cluster": CLUSTER}) == "cr-0123"


def test_scheduled_events_and_failed_checks_are_events_once(
    provider: AwsProvider, stub: Stubber
) -> None:
    described = {
        "Reservations": [
            {
                "Instances": [
                    instance("i-0", 0, "r-1"),
                    instance("i-1", 1, "r-1"),
                    instance("i-2", 2, "r-1", state="stopped"),
                ]
            }
        ]
    }
    statuses = {
        "InstanceStatuses": [
            {
                "InstanceId": "i-0",
                "Events": [
                    {
                        "Code": "instance-retirement",
                        "Description": "The instance is running on degraded hardware",
                        "NotBefore": START,
                    },
                    {
                        "Code": "system-reboot",
                        "Description": "[Completed] scheduled reboot",
                        "NotBefore": START,
                    },
                ],
                "InstanceStatus": {"Status": "ok"},
                "SystemStatus": {"Status": "ok"},
            },
            {
                "InstanceId": "i-1",
                "InstanceStatus": {"Status": "impaired"},
                "SystemStatus": {"Status": "ok"},
            },
        ]
    }
    for _ in range(2):
        stub.add_response("describe_instances", described, {"Filters": cluster_filter()})
        stub.add_response(
            "describe_instance_status",
            statuses,
            {"InstanceIds": ["i-0", "i-1"], "IncludeAllInstances": True},
        )
    first = provider.observe()
    assert [(i.instance_id, i.state) for i in first.instances] == [
        ("i-0", InstanceState.RUNNING),
        ("i-1", InstanceState.RUNNING),
        ("i-2", InstanceState.FAILED),
    ]
    assert {(e.instance_id, e.kind, e.code) for e in first.events} == {
        ("i-0", InstanceEventKind.SCHEDULED, "instance-retirement"),
        ("i-1", InstanceEventKind.IMPAIRED, "impaired"),
        ("i-2", InstanceEventKind.LOST, ""),
    }
    assert provider.observe().events == ()
    stub.assert_no_pending_responses()


def test_spot_reclaim_reason_from_ec2_is_a_reclaim_even_when_untagged(
    provider: AwsProvider, stub: Stubber
) -> None:
    ended = instance(
        "i-9",
        0,
        "r-x",
        state="terminated",
        StateReason={"Code": "Server.SpotInstanceTermination", "Message": "reclaimed"},
    )
    stub.add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [ended]}]},
        {"Filters": cluster_filter()},
    )
    (event,) = provider.observe().events
    assert (event.kind, event.code) == (
        InstanceEventKind.RECLAIMED,
        "Server.SpotInstanceTermination",
    )


def test_spot_interruption_warning_is_a_reclaim_notice_once(
    provider: AwsProvider, stub: Stubber
) -> None:
    spot = instance("i-5", 0, "r-s", InstanceLifecycle="spot", SpotInstanceRequestId="sir-1")
    calm = instance("i-6", 1, "r-s", InstanceLifecycle="spot", SpotInstanceRequestId="sir-2")
    for _ in range(2):
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [spot, calm]}]},
            {"Filters": cluster_filter()},
        )
        stub.add_response("describe_instance_status", {"InstanceStatuses": []})
        stub.add_response(
            "describe_spot_instance_requests",
            {
                "SpotInstanceRequests": [
                    {
                        "SpotInstanceRequestId": "sir-1",
                        "Status": {
                            "Code": "marked-for-termination",
                            "Message": "Spot instance marked for termination",
                        },
                    },
                    {"SpotInstanceRequestId": "sir-2", "Status": {"Code": "fulfilled"}},
                ]
            },
            {"SpotInstanceRequestIds": ["sir-1", "sir-2"]},
        )
    (notice,) = provider.observe().events
    assert (notice.kind, notice.instance_id, notice.request_id, notice.code) == (
        InstanceEventKind.RECLAIM_NOTICE,
        "i-5",
        "r-s",
        "marked-for-termination",
    )
    assert provider.observe().events == ()
    stub.assert_no_pending_responses()
