"""The ``sim`` provider under the asynchronous provider contract."""

from __future__ import annotations

import pytest

from intercloud.model import Offering, PricingKind
from intercloud.providers.contract import (
    AsyncProvider,
    FailureKind,
    InstanceEventKind,
    InstanceState,
    LaunchRequest,
)
from intercloud.providers.registry import ProviderContext, load_plugin
from intercloud.providers.sim import SimCapacity, SimClock, SimProvider

KEY = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
GB = ("aws", "us-east-1", "us-east-1a", "u-p6e-gb200x72")


def offering(key: tuple[str, str, str, str], spot: float | None) -> Offering:
    return Offering(*key, accelerator="H100", accelerator_count=8, vcpus=192,
                    memory_gib=2048, on_demand_price=55.0, spot_price=spot)  # fmt: skip


def make(**kw: object) -> tuple[SimProvider, SimClock]:
    clock = SimClock(1000.0)
    cap = {(KEY, PricingKind.ON_DEMAND): SimCapacity(3, 60.0)}
    prov = SimProvider(
        "aws", [offering(KEY, 20.0), offering(GB, None)], clock=clock, capacity=cap,
        default=SimCapacity(None, 10.0), **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return prov, clock


def test_launch_returns_at_once_and_runs_after_the_delay() -> None:
    prov, clock = make()
    assert isinstance(prov, AsyncProvider)
    prov.launch(LaunchRequest("r1", KEY, count=2, job_id="7"))
    obs = prov.observe()
    assert obs.pending == frozenset({"r1"})
    assert [i.state for i in obs.of_request("r1")] == [InstanceState.ALLOCATED] * 2
    assert [i.rank for i in obs.of_request("r1")] == [0, 1]
    assert prov.next_change_s() == 1060.0
    clock.advance(1059.0)
    assert prov.lookup("r1")[0].state is InstanceState.ALLOCATED
    clock.advance(1060.0)
    obs = prov.observe()
    assert obs.pending == frozenset()
    assert {i.state for i in obs.of_request("r1")} == {InstanceState.RUNNING}
    assert prov.next_change_s() == float("inf")


def test_launch_is_idempotent_by_request_id() -> None:
    prov, _ = make()
    prov.launch(LaunchRequest("r1", KEY, count=2))
    prov.launch(LaunchRequest("r1", KEY, count=2))
    assert len(prov.lookup()) == 2


def test_capacity_refusal_is_a_typed_failure() -> None:
    prov, _ = make()
    prov.launch(LaunchRequest("a", KEY, count=2))
    prov.launch(LaunchRequest("b", KEY, count=2))  # 3 at most alive
    f = prov.observe().failures
    assert [(x.request_id, x.kind, x.retryable) for x in f] == [("b", FailureKind.CAPACITY, True)]
    assert f[0].code == "Sim.InsufficientCapacity"
    assert prov.observe().failures == ()  # reported once
    prov.terminate(request_id="a")
    prov.launch(LaunchRequest("c", KEY, count=3))  # capacity is back
    assert prov.observe().failures == ()


def test_unsold_offerings_and_spot_are_unsupported() -> None:
    prov, _ = make()
    prov.launch(LaunchRequest("x", ("aws", "us-east-1", "us-east-1a", "nope")))
    prov.launch(LaunchRequest("y", GB, pricing=PricingKind.SPOT))
    kinds = {f.request_id: f.kind for f in prov.observe().failures}
    assert kinds == {"x": FailureKind.UNSUPPORTED, "y": FailureKind.UNSUPPORTED}
    with pytest.raises(ValueError, match="count"):
        prov.launch(LaunchRequest("z", KEY, count=0))


def test_random_refusals_are_seeded() -> None:
    def refused(seed: int) -> list[str]:
        prov, _ = make(refuse_probability=0.5, seed=seed)
        for i in range(20):
            prov.launch(LaunchRequest(f"r{i}", GB))
        return [f.request_id for f in prov.observe().failures]

    assert refused(1) == refused(1)
    assert 0 < len(refused(1)) < 20
    assert refused(1) != refused(2)


def test_terminate_is_idempotent_and_final_states_are_reported_once() -> None:
    prov, clock = make()
    prov.launch(LaunchRequest("r", GB, count=2))
    clock.advance(2000.0)
    ids = [i.instance_id for i in prov.lookup("r")]
    assert prov.terminate(instance_ids=ids[:1]) == ids[:1]
    assert prov.terminate(instance_ids=ids[:1]) == []
    states = {i.instance_id: i.state for i in prov.observe().instances}
    assert states == {ids[0]: InstanceState.TERMINATED, ids[1]: InstanceState.RUNNING}
    assert [i.instance_id for i in prov.observe().instances] == [ids[1]]
    assert prov.sweep(owned_request_ids=()) == [ids[1]]


def test_spot_reclaim_is_an_instance_event() -> None:
    prov, clock = make()
    prov.launch(LaunchRequest("s", KEY, pricing=PricingKind.SPOT))
    clock.advance(2000.0)
    (iid,) = [i.instance_id for i in prov.lookup("s")]
    assert prov.reclaim([iid]) == [iid]
    obs = prov.observe()
    assert [(e.kind, e.instance_id, e.at) for e in obs.events] == [
        (InstanceEventKind.RECLAIMED, iid, 2000.0)
    ]
    assert [i.state for i in obs.instances] == [InstanceState.TERMINATED]
    assert prov.lookup() == []


def test_outage_impairs_instances_fails_launches_in_flight_and_refuses_new_ones() -> None:
    prov, clock = make()
    prov.launch(LaunchRequest("up", GB))
    clock.advance(1020.0)
    prov.launch(LaunchRequest("booting", GB))
    impaired = prov.set_down("us-east-1")
    prov.launch(LaunchRequest("new", GB))
    obs = prov.observe()
    assert [e.kind for e in obs.events] == [InstanceEventKind.IMPAIRED]
    assert impaired == [e.instance_id for e in obs.events]
    assert {f.request_id: f.kind for f in obs.failures} == {
        "booting": FailureKind.UNAVAILABLE,
        "new": FailureKind.UNAVAILABLE,
    }
    prov.set_up("us-east-1")
    prov.launch(LaunchRequest("after", GB))
    assert prov.observe().failures == ()


def test_registered_as_a_plugin() -> None:
    plugin = load_plugin("sim")
    settings = plugin.parse({"poses_as": ["aws", "oci"], "instances": 2})
    ctx = ProviderContext(home=__import__("pathlib").Path("/tmp"), environ={})
    built = plugin.create_all(settings, ctx)
    assert sorted(built) == ["aws", "oci"]
    aws = built["aws"]
    assert isinstance(aws, SimProvider) and aws.offerings()
    check = plugin.check(settings, ctx)
    assert check.usable and check.offerings


def test_state_changes_keep_every_other_field() -> None:
    """The provider's cheap state change (``_evolve``) equals ``dataclasses.replace``
    on an observation whose every field differs from its default."""
    import dataclasses

    from intercloud.providers.contract import InstanceObservation
    from intercloud.providers.sim import _evolve

    o = InstanceObservation(
        "i", "r", "aws", "us-east-1", "us-east-1a", "p5", InstanceState.ALLOCATED,
        PricingKind.SPOT, rank=3, job_id="9", attempt=2, launched_at=5.0,
        provider_state="booting", labels={"a": "b"}, address="10.0.0.1",
    )  # fmt: skip
    got = _evolve(o, InstanceState.RUNNING, "running")
    want = dataclasses.replace(o, state=InstanceState.RUNNING, provider_state="running")
    assert got == want
    # a field added to the contract must be added to ``_evolve`` (and here)
    assert len(dataclasses.fields(o)) == 15
