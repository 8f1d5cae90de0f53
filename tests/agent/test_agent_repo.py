"""The store side of the agent channel (both backends): enrolment, reports, kill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent_helpers import insert_instance, job, secret, set_instance_state
from intercloud.agent.protocol import RegisterRequest, ReportState
from intercloud.store import Store, open_store
from intercloud.store.agent_repo import AgentRefusal, AgentRefused
from intercloud.store.records import AssignmentState


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


def reg(bootstrap: str, token: str, slot: int = 0, **kw: str) -> RegisterRequest:
    return RegisterRequest(
        request_id="r1", slot=slot, bootstrap_secret=bootstrap, token=token, **kw
    )


def refusal(call: object) -> AgentRefusal:
    with pytest.raises(AgentRefused) as info:
        call()  # type: ignore[operator]
    return info.value.reason


def test_register_enrols_one_token_idempotently(store: Store) -> None:
    boot, token = secret(), secret()
    iid = insert_instance(store, "r1", secret=boot)

    rec = store.agent_register(reg(boot, token, address="10.0.0.5"))
    assert rec.id == iid and rec.secret_hash and token not in rec.secret_hash
    assert rec.address == "10.0.0.5" and rec.heartbeat_at is not None
    assert store.agent_register(reg(boot, token)).version == rec.version  # a retry: no change
    assert refusal(lambda: store.agent_register(reg(boot, secret()))) is (
        AgentRefusal.ALREADY_ENROLLED
    )
    assert store.agent_authenticate(iid, token).id == iid
    assert refusal(lambda: store.agent_authenticate(iid, secret())) is AgentRefusal.BAD_TOKEN
    kinds = [e.kind for e in store.events() if e.instance_id == iid]
    assert kinds == ["agent_registered"]


def test_register_refusals_change_nothing(store: Store) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, provider_instance_id="i-abc")
    insert_instance(store, "r1", slot=1, secret=boot, state="terminated")

    assert refusal(lambda: store.agent_register(reg(secret(), secret()))) is AgentRefusal.BAD_SECRET
    assert refusal(lambda: store.agent_register(reg(boot, secret(), slot=5))) is (
        AgentRefusal.UNKNOWN_INSTANCE
    )
    assert refusal(lambda: store.agent_register(reg(boot, secret(), slot=1))) is (
        AgentRefusal.INSTANCE_ENDED
    )
    wrong = reg(boot, secret(), provider_instance_id="i-other")
    assert refusal(lambda: store.agent_register(wrong)) is AgentRefusal.WRONG_INSTANCE
    rec = store.get_instance(iid)
    assert rec is not None and rec.secret_hash is None and rec.version == 1
    assert not [e for e in store.events() if e.instance_id == iid]


def test_reports_move_the_assignment_once(store: Store) -> None:
    boot, token = secret(), secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    store.agent_register(reg(boot, token))
    a = job("echo hi")
    assert refusal(lambda: store.agent_report(iid, a.key, ReportState.STARTED)) is (
        AgentRefusal.OTHER_ASSIGNMENT  # nothing assigned yet
    )
    assert store.agent_assignment(iid) is None

    rec = store.agent_assign(iid, a)
    assert rec is not None and rec.assignment_state is AssignmentState.ASSIGNED
    assert store.agent_assign(iid, job("other", rank=1)) is None  # one live assignment
    work = store.agent_assignment(iid)
    assert work is not None and work.assignment == a and work.state is AssignmentState.ASSIGNED

    assert refusal(lambda: store.agent_report(iid, "9/9/9", ReportState.STARTED)) is (
        AgentRefusal.OTHER_ASSIGNMENT
    )
    assert store.agent_report(iid, a.key, ReportState.STARTED, pid=4242) is AssignmentState.STARTED
    assert store.agent_report(iid, a.key, ReportState.STARTED, pid=4242) is AssignmentState.STARTED
    assert refusal(lambda: store.agent_report(iid, a.key, ReportState.EXITED)) is (
        AgentRefusal.EXIT_CODE_MISSING
    )
    assert store.agent_report(iid, a.key, ReportState.EXITED, exit_code=3) is AssignmentState.EXITED
    # a late retry of "started" and a repeat of "exited" change nothing
    assert store.agent_report(iid, a.key, ReportState.STARTED) is AssignmentState.EXITED
    assert store.agent_report(iid, a.key, ReportState.EXITED, exit_code=3) is AssignmentState.EXITED
    assert refusal(lambda: store.agent_report(iid, a.key, ReportState.KILLED)) is (
        AgentRefusal.ASSIGNMENT_ENDED
    )
    rec = store.get_instance(iid)
    assert rec is not None and rec.exit_code == 3 and rec.extra is not None
    assert rec.extra["agent"]["pid"] == 4242
    assert store.agent_assignment(iid) is None  # ended: nothing to run
    kinds = [e.kind for e in store.events() if e.instance_id == iid]
    assert kinds == ["agent_registered", "assigned", "agent_started", "agent_exited"]


def test_kill_request_and_heartbeat(store: Store) -> None:
    boot = secret()
    iid = insert_instance(store, "r1", secret=boot, state="running")
    a = job("sleep 100")
    assert store.agent_request_kill(iid, a.key) is None  # nothing assigned
    store.agent_assign(iid, a)
    assert store.agent_request_kill(iid, a.key) is AssignmentState.ASSIGNED
    work = store.agent_assignment(iid)
    assert work is not None and work.assignment.kill
    assert store.agent_report(iid, a.key, ReportState.KILLED) is AssignmentState.KILLED
    assert store.agent_request_kill(iid, a.key) is AssignmentState.KILLED

    version = store.get_instance(iid).version  # type: ignore[union-attr]
    assert store.agent_heartbeat(iid, "10.1.2.3")
    rec = store.get_instance(iid)
    assert rec is not None and rec.address == "10.1.2.3" and rec.version == version
    set_instance_state(store, iid, "terminated")
    assert not store.agent_heartbeat(iid)
