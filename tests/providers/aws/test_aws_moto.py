"""The AWS provider against moto's EC2 server on loopback (started by conftest)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from ec2_faults import ec2_error_response, error_on_call

from intercloud.catalog import Catalog
from intercloud.model import Offering, PricingKind
from intercloud.providers.aws import AwsProvider, AwsSettings
from intercloud.providers.contract import (
    FailureKind,
    InstanceEventKind,
    InstanceState,
    LaunchRequest,
    ProviderCallFailed,
)

REGION = "us-east-1"
P5 = ("aws", REGION, "us-east-1a", "p5.48xlarge")


def request(rid: str, **kw: Any) -> LaunchRequest:
    base: dict[str, Any] = {"offering": P5, "job_id": "job-1", "attempt": 2}
    base.update(kw)
    return LaunchRequest(request_id=rid, **base)


def launched(provider: AwsProvider, req: LaunchRequest) -> None:
    provider.launch(req)
    assert provider.wait_launches(timeout=30)


def raw_instances(ec2: Any, cluster_id: str) -> list[dict[str, Any]]:
    found = ec2.describe_instances(
        Filters=[{"Name": "tag:intercloud:cluster", "Values": [cluster_id]}]
    )
    return [i for r in found["Reservations"] for i in r["Instances"]]


def test_on_demand_gang_is_tagged_ranked_and_observed(
    provider: AwsProvider, settings: AwsSettings, ec2: Any
) -> None:
    launched(provider, request("r-od", count=2, labels={"team": "vision"}))

    obs = provider.observe()
    assert not obs.failures and not obs.pending
    insts = obs.of_request("r-od")
    assert [i.rank for i in insts] == [0, 1]
    for inst in insts:
        assert inst.state is InstanceState.RUNNING
        assert inst.pricing is PricingKind.ON_DEMAND
        assert inst.offering == P5
        assert (inst.job_id, inst.attempt) == ("job-1", 2)
        assert inst.labels == {"team": "vision"}
        assert inst.launched_at is not None and abs(inst.launched_at - time.time()) < 600
    raw = raw_instances(ec2, settings.cluster_id)
    tags = {t["Key"]: t["Value"] for t in raw[0]["Tags"]}
    assert tags["intercloud:request"] == "r-od"
    assert tags["intercloud:job"] == "job-1"
    assert tags["intercloud:attempt"] == "2"
    assert tags["intercloud:rank"] in {"0", "1"}
    assert "InstanceLifecycle" not in raw[0]


def test_spot_goes_through_instance_market_options(
    provider: AwsProvider, settings: AwsSettings, ec2: Any
) -> None:
    launched(provider, request("r-spot", pricing=PricingKind.SPOT, max_price_usd=30.0))
    (inst,) = provider.observe().of_request("r-spot")
    assert inst.pricing is PricingKind.SPOT
    (raw,) = raw_instances(ec2, settings.cluster_id)
    assert raw["InstanceLifecycle"] == "spot"


def test_user_data_reaches_the_instance_unchanged(provider: AwsProvider, ec2: Any) -> None:
    script = b"#!/bin/sh\necho 'node agent here' > /tmp/x\n\x00\xff"
    launched(provider, request("r-ud", user_data=script))
    (inst,) = provider.lookup("r-ud")
    attr = ec2.describe_instance_attribute(InstanceId=inst.instance_id, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]) == script


def test_same_request_id_launches_once_even_from_a_new_process(
    provider: AwsProvider, settings: AwsSettings, ec2: Any
) -> None:
    req = request("r-idem", count=2)
    provider.launch(req)
    provider.launch(req)  # while the first is in flight
    assert provider.wait_launches(timeout=30)
    launched(provider, req)  # after it landed
    # A restarted control loop relaunches what it had not recorded. moto ignores
    # ClientToken, so only the lookup by tag keeps this from launching twice.
    again = AwsProvider(settings)
    try:
        launched(again, req)
    finally:
        again.close()
    assert len(raw_instances(ec2, settings.cluster_id)) == 2
    # Even after its instances ended, the request id stays spent.
    provider.terminate(request_id="r-idem")
    launched(provider, req)
    assert len(raw_instances(ec2, settings.cluster_id)) == 2
    assert provider.lookup("r-idem") == []


def test_launch_returns_before_ec2_answers(provider: AwsProvider) -> None:
    gate = threading.Event()
    events = provider.client(REGION).meta.events

    def hold(**_: Any) -> None:
        gate.wait(20)

    events.register("before-call.ec2.RunInstances", hold)
    try:
        start = time.monotonic()
        provider.launch(request("r-async"))
        assert time.monotonic() - start < 0.5
        assert provider.observe().pending == {"r-async"}
    finally:
        gate.set()
    assert provider.wait_launches(timeout=30)
    obs = provider.observe()
    assert obs.pending == frozenset()
    assert len(obs.of_request("r-async")) == 1


def test_terminate_is_idempotent_and_not_reported_as_a_loss(provider: AwsProvider) -> None:
    launched(provider, request("r-term", count=2))
    ids = sorted(i.instance_id for i in provider.lookup("r-term"))
    assert sorted(provider.terminate(request_id="r-term")) == ids
    assert provider.terminate(request_id="r-term") == []
    assert provider.terminate(instance_ids=ids) == []
    assert provider.terminate(instance_ids=["i-0123456789abcdef0"]) == []  # unknown
    obs = provider.observe()
    assert {i.state for i in obs.of_request("r-term")} == {InstanceState.TERMINATED}
    assert obs.events == ()
    assert provider.lookup("r-term") == []


def test_terminated_by_another_process_of_the_cluster_is_not_a_loss(
    provider: AwsProvider, settings: AwsSettings
) -> None:
    launched(provider, request("r-other"))
    other = AwsProvider(settings)
    try:
        assert len(other.terminate(request_id="r-other")) == 1
    finally:
        other.close()
    assert provider.observe().events == ()  # the terminating tag says it was asked for


def test_spot_terminated_by_the_cloud_is_a_reclaim_reported_once(
    provider: AwsProvider, ec2: Any
) -> None:
    launched(provider, request("r-reclaim", pricing=PricingKind.SPOT))
    launched(provider, request("r-lost"))
    assert provider.observe().events == ()
    spot = provider.lookup("r-reclaim")[0].instance_id
    on_demand = provider.lookup("r-lost")[0].instance_id
    ec2.terminate_instances(InstanceIds=[spot, on_demand])

    events = {e.instance_id: e for e in provider.observe().events}
    assert events[spot].kind is InstanceEventKind.RECLAIMED
    assert events[spot].request_id == "r-reclaim"
    assert events[on_demand].kind is InstanceEventKind.LOST
    assert provider.observe().events == ()


def test_adopt_after_a_crash_finds_instances_by_tag(
    provider: AwsProvider, settings: AwsSettings
) -> None:
    launched(provider, request("r-adopt", count=3))
    provider.close()  # the control loop dies; nothing of it survives but the tags
    reborn = AwsProvider(settings)
    try:
        adopted = reborn.adopt()
        assert [(i.request_id, i.rank) for i in adopted] == [("r-adopt", r) for r in range(3)]
        assert all(i.state is InstanceState.RUNNING for i in adopted)
        assert len(reborn.terminate(request_id="r-adopt")) == 3
        assert reborn.observe().events == ()
    finally:
        reborn.close()


def test_sweep_terminates_only_unowned_instances_of_this_cluster(
    provider: AwsProvider, settings: AwsSettings
) -> None:
    neighbour = AwsProvider(replace_cluster(settings, settings.cluster_id + "-n"))
    try:
        launched(provider, request("r-owned"))
        launched(provider, request("r-orphan", count=2))
        launched(neighbour, request("r-theirs"))
        orphans = {i.instance_id for i in provider.lookup("r-orphan")}

        assert set(provider.sweep({"r-owned"})) == orphans
        assert [i.request_id for i in provider.lookup()] == ["r-owned"]
        assert len(neighbour.lookup("r-theirs")) == 1  # another installation's: untouched
        assert provider.sweep({"r-owned"}) == []
    finally:
        neighbour.terminate(request_id="r-theirs")
        neighbour.close()


def replace_cluster(settings: AwsSettings, cluster_id: str) -> AwsSettings:
    return settings.model_copy(update={"cluster_id": cluster_id})


@pytest.mark.parametrize(
    ("code", "kind", "retryable"),
    [
        ("InsufficientInstanceCapacity", FailureKind.CAPACITY, True),
        ("InstanceLimitExceeded", FailureKind.QUOTA, True),
        ("VcpuLimitExceeded", FailureKind.QUOTA, True),
        ("UnauthorizedOperation", FailureKind.AUTH, False),
        ("RequestLimitExceeded", FailureKind.THROTTLED, True),
        ("Unsupported", FailureKind.UNSUPPORTED, False),
        ("SomethingNew", FailureKind.UNKNOWN, False),
    ],
)
def test_ec2_refusals_come_back_typed(
    provider: AwsProvider, code: str, kind: FailureKind, retryable: bool
) -> None:
    provider.client(REGION).meta.events.register(
        "before-call.ec2.RunInstances", error_on_call(code)
    )
    launched(provider, request("r-refused"))
    obs = provider.observe()
    (failure,) = obs.failures
    assert (failure.kind, failure.code, failure.retryable) == (kind, code, retryable)
    assert failure.request_id == "r-refused"
    assert failure.offering == P5 and failure.zone == "us-east-1a"
    assert code in failure.message
    assert obs.of_request("r-refused") == []
    assert provider.observe().failures == ()  # reported once


def test_throttling_is_retried_by_botocore_before_it_reaches_us(provider: AwsProvider) -> None:
    sent: list[str] = []

    def throttle_twice(**_: Any) -> Any:
        sent.append("RunInstances")
        if len(sent) <= 2:
            return ec2_error_response("RequestLimitExceeded", 503)
        return None  # the third try goes to the server

    provider.client(REGION).meta.events.register("before-send.ec2.RunInstances", throttle_twice)
    launched(provider, request("r-throttled"))
    obs = provider.observe()
    assert obs.failures == ()
    assert len(sent) == 3
    assert len(obs.of_request("r-throttled")) == 1


def test_unreachable_endpoint_is_unavailable(provider: AwsProvider, settings: AwsSettings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening
        down = AwsProvider(settings.model_copy(update={"endpoint_url": dead, "max_attempts": 1}))
        try:
            with pytest.raises(ProviderCallFailed) as err:
                down.observe()
            assert err.value.kind is FailureKind.UNAVAILABLE and err.value.retryable
            with pytest.raises(ProviderCallFailed):
                down.lookup()
        finally:
            down.close()

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=dead)

    provider.client(REGION).meta.events.register("before-call.ec2.RunInstances", unreachable)
    launched(provider, request("r-down"))
    (failure,) = provider.observe().failures
    assert (failure.kind, failure.code) == (FailureKind.UNAVAILABLE, "EndpointConnectionError")


def test_offerings_are_the_catalog_in_the_zones_ec2_offers(settings: AwsSettings, ec2: Any) -> None:
    p5 = Offering(
        provider="aws", region=REGION, zone="", instance_type="p5.48xlarge",
        accelerator="H100", accelerator_count=8, vcpus=192, memory_gib=2048,
        on_demand_price=55.04, spot_price=19.25,
    )  # fmt: skip
    catalog = Catalog.from_offerings(
        [
            p5,
            replace(p5, instance_type="x9.fake48xlarge"),  # not sold by EC2
            replace(p5, zone="us-east-1q"),  # a zone EC2 does not offer it in
            replace(p5, region="eu-west-1"),  # a region not configured
            replace(p5, provider="gcp", instance_type="a3-highgpu-8g"),
        ]
    )
    prov = AwsProvider(settings, catalog=catalog)
    try:
        rows = prov.offerings()
    finally:
        prov.close()
    expected = sorted(
        o["Location"]
        for o in ec2.describe_instance_type_offerings(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": ["p5.48xlarge"]}],
        )["InstanceTypeOfferings"]
    )
    assert len(expected) >= 2
    assert sorted(o.zone for o in rows) == expected
    assert all(replace(o, zone="") == p5 for o in rows)


def test_launch_refuses_requests_no_account_could_take(provider: AwsProvider) -> None:
    bad = [
        (request("r", offering=("gcp", REGION, "", "a3")), "offering: provider"),
        (request("r", offering=("aws", "eu-west-1", "", "p5.48xlarge")), "offering: region"),
        (request("x" * 65), "request_id"),
        (request("r", count=0), "count"),
        (request("r", pricing=PricingKind.RESERVED), "capacity_reservation_id"),
        (request("r", max_price_usd=1.0), "max_price_usd"),
        (request("r", user_data=b"x" * (16 * 1024 + 1)), "user_data"),
    ]
    for req, word in bad:
        with pytest.raises(ValueError, match=f"^{word}"):
            provider.launch(req)
    assert provider.observe().pending == frozenset()


def test_spot_reclaim_on_a_gang_names_each_lost_rank(provider: AwsProvider, ec2: Any) -> None:
    launched(provider, request("r-gang", count=3, pricing=PricingKind.SPOT))
    rank1 = next(i for i in provider.lookup("r-gang") if i.rank == 1)
    ec2.terminate_instances(InstanceIds=[rank1.instance_id])
    (event,) = provider.observe().events
    assert event.kind is InstanceEventKind.RECLAIMED
    assert event.instance_id == rank1.instance_id
    assert [i.rank for i in provider.lookup("r-gang")] == [0, 2]
    assert rank1.state is InstanceState.RUNNING


def test_a_call_moto_does_not_implement_is_a_typed_failure(settings: AwsSettings) -> None:
    # moto answers create_placement_group with an HTML 500 page: the launch must end as
    # a typed failure (the service failed), not as an exception in a worker thread.
    prov = AwsProvider(settings.model_copy(update={"max_attempts": 1}))
    try:
        launched(prov, request("r-pg", count=2, placement_group="pg-moto"))
        obs = prov.observe()
        (failure,) = obs.failures
        assert failure.kind is FailureKind.UNAVAILABLE and failure.retryable
        assert obs.of_request("r-pg") == []
    finally:
        prov.close()


def test_terminate_while_the_launch_is_in_flight_leaves_no_instance(
    provider: AwsProvider,
) -> None:
    gate = threading.Event()

    def hold(**_: Any) -> None:
        gate.wait(20)

    provider.client(REGION).meta.events.register("before-call.ec2.RunInstances", hold)
    provider.launch(request("r-cancel", count=2))
    try:
        assert provider.terminate(request_id="r-cancel") == []  # nothing exists yet
    finally:
        gate.set()
    assert provider.wait_launches(timeout=30)
    assert provider.lookup("r-cancel") == []
    obs = provider.observe()
    assert {i.state for i in obs.of_request("r-cancel")} == {InstanceState.TERMINATED}
    assert obs.events == ()


def test_several_regions_are_observed_and_terminated_together(settings: AwsSettings) -> None:
    prov = AwsProvider(settings.model_copy(update={"regions": [REGION, "us-west-2"]}))
    try:
        prov.launch(request("r-east"))
        prov.launch(request("r-west", offering=("aws", "us-west-2", "", "m7i.xlarge")))
        assert prov.wait_launches(timeout=30)
        obs = prov.observe()
        assert obs.failures == ()
        assert {(i.request_id, i.region) for i in obs.instances} == {
            ("r-east", REGION),
            ("r-west", "us-west-2"),
        }
        (west,) = obs.of_request("r-west")
        assert west.zone.startswith("us-west-2")
        assert len(prov.sweep(())) == 2
        assert prov.lookup() == []
    finally:
        prov.close()


def test_offerings_are_cached_for_their_ttl(settings: AwsSettings) -> None:
    now = [1000.0]
    prov = AwsProvider(settings.model_copy(update={"offerings_ttl_s": 60}), clock=lambda: now[0])
    calls: list[str] = []
    prov.client(REGION).meta.events.register(
        "before-call.ec2.DescribeInstanceTypeOfferings", lambda **_: calls.append("x")
    )
    try:
        first = prov.offerings()
        assert any(o.instance_type == "p5.48xlarge" and o.zone for o in first)
        assert prov.offerings() == first
        now[0] += 61
        assert prov.offerings() == first
    finally:
        prov.close()
    assert len(calls) == 2  # one per TTL window (one call per 200 instance types)
