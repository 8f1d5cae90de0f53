"""The instance reconcile step end to end on the AWS provider against moto's EC2 server.

The node agent is played by the test (it sets ``heartbeat_at`` as the agent server
would); everything else is the real path: store rows -> ``run_instances`` with the
request id as client token -> observe -> running -> drain -> terminate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ec2_faults import error_on_call

from intercloud.control.instances.step import InstanceReconciler
from intercloud.control.instances.transitions import EndCause, end_cause
from intercloud.model import PricingKind
from intercloud.providers.aws import AwsProvider, AwsSettings
from intercloud.providers.contract import InstanceState, LaunchFailure, LaunchRequest
from intercloud.store import Store, open_store

S = InstanceState
REGION = "us-east-1"
P5 = ("aws", REGION, "us-east-1a", "p5.48xlarge")


class Crash(Exception):
    """Stands for the SIGKILL a crashpoint delivers in production."""


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


def ec2_instances(ec2: Any, cluster_id: str) -> list[dict[str, Any]]:
    found = ec2.describe_instances(
        Filters=[{"Name": "tag:intercloud:cluster", "Values": [cluster_id]}]
    )
    return [i for r in found["Reservations"] for i in r["Instances"]]


def until(step: InstanceReconciler, done: Callable[[], bool], tries: int = 20) -> None:
    for _ in range(tries):
        step.step()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("the instance step did not converge")


def agents_register(store: Store) -> None:
    """What the agent server does when each instance's node agent registers."""
    for r in store.instances(states=[S.ALLOCATED]):
        store.set_instance_fields(r.id, r.version, heartbeat_at=datetime.now(UTC))


def test_requested_to_running_to_terminated(
    store: Store, provider: AwsProvider, settings: AwsSettings, ec2: Any
) -> None:
    rows = store.request_instances("e2e-1", 2, P5, PricingKind.ON_DEMAND, 98.0)
    step = InstanceReconciler(store, {"aws": provider})
    step.recover()
    step.step()
    assert provider.wait_launches(timeout=30)
    until(step, lambda: {r.state for r in store.instances()} == {"allocated"})
    recs = store.instances()
    assert all(r.provider_instance_id and r.provider_instance_id.startswith("i-") for r in recs)
    assert all(r.address for r in recs)
    agents_register(store)
    until(step, lambda: {r.state for r in store.instances()} == {"running"})
    raw = ec2_instances(ec2, settings.cluster_id)
    assert {i["InstanceId"] for i in raw} == {r.provider_instance_id for r in recs}
    for r in store.instances():  # the scheduler's idle release
        assert store.transition_instance(r.id, S.RUNNING, S.DRAINING, "idle release")
    until(step, lambda: {r.state for r in store.instances()} == {"terminated"})
    assert {i["State"]["Name"] for i in ec2_instances(ec2, settings.cluster_id)} <= {
        "shutting-down",
        "terminated",
    }
    assert all(end_cause(r.extra) is EndCause.RELEASED for r in store.instances())
    history = [e.to_state for e in store.instance_events(rows[0].id) if e.to_state]
    assert history == ["requested", "allocated", "running", "draining", "terminating", "terminated"]


def test_crash_between_launch_and_record_adopts_one_set(
    store: Store, settings: AwsSettings, ec2: Any
) -> None:
    store.request_instances("e2e-crash", 2, P5, PricingKind.ON_DEMAND, 98.0)

    def die_after_launch(name: str) -> None:
        if name == "instance_launched":
            raise Crash(name)

    first = AwsProvider(settings)
    step = InstanceReconciler(store, {"aws": first}, crashpoint=die_after_launch)
    step.recover()
    with pytest.raises(Crash):
        step.step()
    assert first.wait_launches(timeout=30)  # run_instances went out before the "kill"
    first.close()
    assert {r.state for r in store.instances()} == {"requested"}  # nothing recorded

    second = AwsProvider(settings)  # the restarted loop
    try:
        again = InstanceReconciler(store, {"aws": second})
        again.recover()  # adopts by tag
        recs = store.instances()
        assert {r.state for r in recs} == {"allocated"}
        for _ in range(3):
            again.step()
        second.wait_launches(timeout=30)
        raw = ec2_instances(ec2, settings.cluster_id)
        assert len(raw) == 2  # exactly one set
        assert {i["InstanceId"] for i in raw} == {r.provider_instance_id for r in recs}
        assert again.sweep() == {}  # nothing orphaned
    finally:
        second.close()


def test_capacity_refusal_fails_the_request_and_is_heard(
    store: Store, provider: AwsProvider
) -> None:
    provider.client(REGION).meta.events.register(
        "before-call.ec2.RunInstances", error_on_call("InsufficientInstanceCapacity")
    )
    heard: list[LaunchFailure] = []
    store.request_instances("e2e-cap", 1, P5, PricingKind.ON_DEMAND, 98.0)
    step = InstanceReconciler(store, {"aws": provider}, on_failure=heard.append)
    step.recover()
    step.step()
    assert provider.wait_launches(timeout=30)
    step.step()
    (rec,) = store.instances()
    assert rec.state == "failed" and rec.failure_kind == "capacity"
    assert "InsufficientInstanceCapacity" in (rec.reason or "")
    assert [f.code for f in heard] == ["InsufficientInstanceCapacity"]


def test_sweep_terminates_tagged_instances_no_row_owns(
    store: Store, provider: AwsProvider, settings: AwsSettings, ec2: Any
) -> None:
    store.request_instances("e2e-owned", 1, P5, PricingKind.ON_DEMAND, 98.0)
    step = InstanceReconciler(store, {"aws": provider})
    step.recover()
    step.step()
    provider.launch(LaunchRequest("e2e-orphan", P5))  # a launch whose record was lost
    assert provider.wait_launches(timeout=30)
    step.step()
    swept = step.sweep()
    raw = {i["InstanceId"]: i for i in ec2_instances(ec2, settings.cluster_id)}
    (orphan,) = swept["aws"]
    (owned,) = store.instances()
    assert raw[orphan]["State"]["Name"] in ("shutting-down", "terminated")
    assert raw[owned.provider_instance_id or ""]["State"]["Name"] == "running"


_KILLED_LOOP = """
import sys
from intercloud.control.crashpoints import crashpoint_from_env
from intercloud.control.instances.step import InstanceReconciler
from intercloud.providers.aws import AwsProvider, AwsSettings
from intercloud.store import open_store

settings = AwsSettings.model_validate_json(sys.argv[2])
store = open_store(sys.argv[1])
step = InstanceReconciler(store, {"aws": AwsProvider(settings)}, crashpoint=crashpoint_from_env())
step.recover()
step.step()
raise SystemExit("the crashpoint did not fire")
"""


def test_sigkill_after_launch_then_restart_leaves_one_set(
    store: Store, db_url: str, settings: AwsSettings, ec2: Any, tmp_path: Path
) -> None:
    """A real ``kill -9`` of the loop right after ``launch`` returned (the launch
    thread may or may not have reached EC2): the restarted loop ends with one set."""
    store.request_instances("e2e-kill9", 2, P5, PricingKind.ON_DEMAND, 98.0)
    fired = tmp_path / "fired.log"
    env = {
        **os.environ,
        "INTERCLOUD_CRASHPOINTS": "instance_launched:1",
        "INTERCLOUD_CRASH_LOG": str(fired),
    }
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_LOOP, db_url, settings.model_dump_json()],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert fired.read_text() == "instance_launched\n"
    assert {r.state for r in store.instances()} == {"requested"}

    provider = AwsProvider(settings)
    try:
        step = InstanceReconciler(store, {"aws": provider})
        step.recover()
        step.step()
        provider.wait_launches(timeout=30)
        until(step, lambda: {r.state for r in store.instances()} == {"allocated"})
        raw = ec2_instances(ec2, settings.cluster_id)
        assert len(raw) == 2
        assert {i["InstanceId"] for i in raw} == {r.provider_instance_id for r in store.instances()}
    finally:
        provider.close()
