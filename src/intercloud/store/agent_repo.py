"""What the agent server reads and writes: node enrolment, heartbeats, assignments and
their reports. A mixin of ``Store`` (same contract: one short transaction per method,
guarded updates, an ``events`` row with ``instance_id`` for every change of state).

Credentials: a launch request's rows keep the SHA-256 of its bootstrap secret in
``extra[BOOTSTRAP_HASH_KEY]``; ``agent_register`` enrols the node's token by storing its
SHA-256 in ``secret_hash``. Neither secret is ever stored. Heartbeats change only
``heartbeat_at``/``address`` and do not bump ``version`` (they are not state changes, and
would otherwise break the reconciler's guarded updates every few seconds).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intercloud.agent.bootstrap import secret_hash, secret_matches
from intercloud.agent.protocol import Assignment, RegisterRequest, ReportState
from intercloud.store.instance_repo import instance_from_row
from intercloud.store.records import AssignmentState, InstanceRecord
from intercloud.store.tables import EventModel, InstanceModel

if TYPE_CHECKING:
    from intercloud.store.db import Database

I = InstanceModel  # noqa: E741 - the table's short name, as W/N/E in repository.py

#: Key of ``instances.extra`` holding the SHA-256 (hex) of the launch's bootstrap secret.
BOOTSTRAP_HASH_KEY = "bootstrap_hash"
#: Key of ``instances.extra`` where the agent's reports are kept (pid, claimed id).
AGENT_EXTRA_KEY = "agent"
#: Instance states in which its agent may talk to the control plane.
AGENT_STATES = ("requested", "allocated", "running", "draining", "terminating")
_ENDED = (AssignmentState.EXITED, AssignmentState.KILLED)


class AgentRefusal(StrEnum):
    """Why an agent call was refused (compare codes; ``AGENT_REFUSAL_TEXT`` has words)."""

    UNKNOWN_INSTANCE = "unknown_instance"
    INSTANCE_ENDED = "instance_ended"
    BAD_SECRET = "bad_secret"
    BAD_TOKEN = "bad_token"
    WRONG_INSTANCE = "wrong_instance"
    ALREADY_ENROLLED = "already_enrolled"
    OTHER_ASSIGNMENT = "other_assignment"
    ASSIGNMENT_ENDED = "assignment_ended"
    EXIT_CODE_MISSING = "exit_code_missing"

    @property
    def unauthorized(self) -> bool:
        """A credentials problem (HTTP 401) rather than a conflict with the state (409)."""
        return self in _UNAUTHORIZED


_UNAUTHORIZED = frozenset(
    {
        AgentRefusal.UNKNOWN_INSTANCE,
        AgentRefusal.INSTANCE_ENDED,
        AgentRefusal.BAD_SECRET,
        AgentRefusal.BAD_TOKEN,
    }
)

AGENT_REFUSAL_TEXT: Mapping[AgentRefusal, str] = {
    AgentRefusal.UNKNOWN_INSTANCE: "no such instance",
    AgentRefusal.INSTANCE_ENDED: "the instance has ended",
    AgentRefusal.BAD_SECRET: "wrong bootstrap secret",
    AgentRefusal.BAD_TOKEN: "wrong or missing node token",
    AgentRefusal.WRONG_INSTANCE: "the provider instance id does not match the launch's",
    AgentRefusal.ALREADY_ENROLLED: "another token is already enrolled for this instance",
    AgentRefusal.OTHER_ASSIGNMENT: "the instance has another assignment (or none)",
    AgentRefusal.ASSIGNMENT_ENDED: "the assignment has already ended otherwise",
    AgentRefusal.EXIT_CODE_MISSING: "an exited report needs its exit code",
}


class AgentRefused(Exception):
    """An agent call the store refused; nothing changed. ``reason`` is the code."""

    def __init__(self, reason: AgentRefusal) -> None:
        super().__init__(AGENT_REFUSAL_TEXT[reason])
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AgentWork:
    """An instance's assignment and how it stands (``agent_assignment``)."""

    assignment: Assignment
    state: AssignmentState


class AgentRepository:
    """The agent server's store methods (mixed into ``Store``)."""

    _db: Database

    if TYPE_CHECKING:

        def _now(self, now: datetime | None) -> datetime: ...

    # -- reads -----------------------------------------------------------------------

    def agent_authenticate(self, instance_id: int, token: str) -> InstanceRecord:
        """The instance whose enrolled token is ``token``; AgentRefused (BAD_TOKEN for an
        unknown instance or a wrong token, INSTANCE_ENDED once it has ended)."""
        with self._db.read() as conn:
            rec = self._instance_row(conn, instance_id)
        if rec is None or not secret_matches(token, rec.secret_hash):
            raise AgentRefused(AgentRefusal.BAD_TOKEN)
        if rec.state not in AGENT_STATES:
            raise AgentRefused(AgentRefusal.INSTANCE_ENDED)
        return rec

    def agent_assignment(self, instance_id: int) -> AgentWork | None:
        """The instance's assignment unless it has none or it has ended."""
        with self._db.read() as conn:
            rec = self._instance_row(conn, instance_id)
        if rec is None or rec.assignment is None or rec.assignment_state is None:
            return None
        if rec.assignment_state in _ENDED:
            return None
        return AgentWork(Assignment.from_json(rec.assignment), rec.assignment_state)

    # -- agent writes ----------------------------------------------------------------

    def agent_register(
        self, request: RegisterRequest, now: datetime | None = None
    ) -> InstanceRecord:
        """Enrol ``request.token`` for slot ``request.slot`` of launch
        ``request.request_id``, proven by the launch's bootstrap secret.

        Idempotent: the token already enrolled is accepted again (a retry after a lost
        answer). Refused (AgentRefused, nothing changed): no such instance, an ended one,
        a wrong secret, a provider instance id other than the one recorded, or another
        token already enrolled (a bootstrap secret enrols one token per instance, so a
        reader of user-data cannot take over a node that has enrolled). Sets
        ``secret_hash``, ``heartbeat_at`` and ``address``, writes ``agent_registered``.
        """
        t = self._now(now)
        token_hash = secret_hash(request.token)
        with self._db.write() as conn:
            stmt = sa.select(I).where(I.request_id == request.request_id, I.slot == request.slot)
            row = conn.execute(stmt).mappings().one_or_none()
            if row is None:
                secret_matches(request.bootstrap_secret, "0" * 64)  # same work either way
                raise AgentRefused(AgentRefusal.UNKNOWN_INSTANCE)
            rec = instance_from_row(row)
            extra = dict(rec.extra or {})
            if not secret_matches(request.bootstrap_secret, extra.get(BOOTSTRAP_HASH_KEY)):
                raise AgentRefused(AgentRefusal.BAD_SECRET)
            if rec.state not in AGENT_STATES:
                raise AgentRefused(AgentRefusal.INSTANCE_ENDED)
            claimed = request.provider_instance_id
            if rec.provider_instance_id and claimed != rec.provider_instance_id:
                raise AgentRefused(AgentRefusal.WRONG_INSTANCE)
            if rec.secret_hash is not None:
                if hmac.compare_digest(rec.secret_hash, token_hash):
                    return rec
                raise AgentRefused(AgentRefusal.ALREADY_ENROLLED)
            extra[AGENT_EXTRA_KEY] = {**extra.get(AGENT_EXTRA_KEY, {}), "instance_id": claimed}
            done = conn.execute(
                sa.update(I)
                .where(I.id == rec.id, I.version == rec.version, I.secret_hash.is_(None))
                .values(
                    secret_hash=token_hash,
                    heartbeat_at=t,
                    address=request.address or rec.address,
                    extra=extra,
                    version=I.version + 1,
                    updated_at=t,
                )
            )
            if done.rowcount != 1:  # a concurrent enrolment won
                raise AgentRefused(AgentRefusal.ALREADY_ENROLLED)
            self._instance_event(
                conn, rec, "agent_registered", t, data={"provider_instance_id": claimed}
            )
            new = self._instance_row(conn, rec.id)
            assert new is not None
            return new

    def agent_heartbeat(
        self, instance_id: int, address: str | None = None, now: datetime | None = None
    ) -> bool:
        """Record that the instance's agent is alive (``heartbeat_at``, and ``address``
        when given). No version bump, no event. False when the instance has ended."""
        t = self._now(now)
        values: dict[str, Any] = {"heartbeat_at": t}
        if address:
            values["address"] = address
        with self._db.write() as conn:
            stmt = sa.update(I).where(I.id == instance_id, I.state.in_(AGENT_STATES))
            return bool(conn.execute(stmt.values(**values)).rowcount == 1)

    def agent_report(
        self,
        instance_id: int,
        key: str,
        state: ReportState,
        exit_code: int | None = None,
        pid: int | None = None,
        now: datetime | None = None,
    ) -> AssignmentState:
        """Move the assignment ``key`` of the instance on: assigned -> started ->
        exited | killed (assigned -> exited | killed too: a node that ended before its
        start was reported). Returns the assignment's state afterwards.

        Idempotent: a state already reached (or passed: started after exited) changes
        nothing. AgentRefused: OTHER_ASSIGNMENT when ``key`` is not the instance's
        assignment, ASSIGNMENT_ENDED when it ended the other way (exited vs killed),
        EXIT_CODE_MISSING for an exit without its code. ``pid`` lands in
        ``extra["agent"]["pid"]``; events ``agent_started``/``agent_exited``/
        ``agent_killed`` carry the key, pid and exit code.
        """
        if state is ReportState.EXITED and exit_code is None:
            raise AgentRefused(AgentRefusal.EXIT_CODE_MISSING)
        t = self._now(now)
        target = AssignmentState(state.value)
        with self._db.write() as conn:
            rec = self._instance_row(conn, instance_id)
            if rec is None:
                raise AgentRefused(AgentRefusal.UNKNOWN_INSTANCE)
            current = rec.assignment_state
            if rec.assignment is None or current is None or rec.assignment.get("key") != key:
                raise AgentRefused(AgentRefusal.OTHER_ASSIGNMENT)
            if current == target or (target is AssignmentState.STARTED and current in _ENDED):
                return current
            if current in _ENDED:
                raise AgentRefused(AgentRefusal.ASSIGNMENT_ENDED)
            values: dict[str, Any] = {
                "assignment_state": target.value,
                "version": I.version + 1,
                "updated_at": t,
            }
            if target in _ENDED:
                values["exit_code"] = exit_code
            if pid is not None:
                extra = dict(rec.extra or {})
                extra[AGENT_EXTRA_KEY] = {**extra.get(AGENT_EXTRA_KEY, {}), "pid": pid}
                values["extra"] = extra
            done = conn.execute(
                sa.update(I).where(I.id == rec.id, I.version == rec.version).values(**values)
            )
            if done.rowcount != 1:  # cannot happen inside the write lock; be safe
                raise AgentRefused(AgentRefusal.OTHER_ASSIGNMENT)
            self._instance_event(
                conn,
                rec,
                f"agent_{target.value}",
                t,
                data={"key": key, "pid": pid, "exit_code": exit_code},
            )
            return target

    # -- control-plane writes --------------------------------------------------------

    def agent_assign(
        self,
        instance_id: int,
        assignment: Assignment,
        expected_version: int | None = None,
        now: datetime | None = None,
    ) -> InstanceRecord | None:
        """Hand ``assignment`` to the instance's agent (state ``assigned``), guarded:
        the instance is not ending, has no live assignment (none, or the previous one
        ended) and is at ``expected_version`` when given. Re-assigning the same key
        while it is live returns the record unchanged. None when a guard failed."""
        t = self._now(now)
        with self._db.write() as conn:
            rec = self._instance_row(conn, instance_id)
            if rec is None or rec.state not in AGENT_STATES:
                return None
            if expected_version is not None and rec.version != expected_version:
                return None
            live = rec.assignment_state is not None and rec.assignment_state not in _ENDED
            if live:
                same = rec.assignment is not None and rec.assignment.get("key") == assignment.key
                return rec if same else None
            conn.execute(
                sa.update(I)
                .where(I.id == rec.id, I.version == rec.version)
                .values(
                    assignment=assignment.to_json(),
                    assignment_state=AssignmentState.ASSIGNED.value,
                    exit_code=None,
                    version=I.version + 1,
                    updated_at=t,
                )
            )
            self._instance_event(conn, rec, "assigned", t, data={"key": assignment.key})
            return self._instance_row(conn, rec.id)

    def agent_request_kill(
        self, instance_id: int, key: str, now: datetime | None = None
    ) -> AssignmentState | None:
        """Ask the instance's agent to stop assignment ``key`` (sets its ``kill`` flag;
        the agent confirms with a ``killed`` report). Returns the assignment's state (an
        ended one is left alone); None when ``key`` is not the instance's assignment."""
        t = self._now(now)
        with self._db.write() as conn:
            rec = self._instance_row(conn, instance_id)
            if rec is None or rec.assignment is None or rec.assignment_state is None:
                return None
            if rec.assignment.get("key") != key:
                return None
            if rec.assignment_state in _ENDED or rec.assignment.get("kill"):
                return rec.assignment_state
            conn.execute(
                sa.update(I)
                .where(I.id == rec.id, I.version == rec.version)
                .values(
                    assignment={**rec.assignment, "kill": True},
                    version=I.version + 1,
                    updated_at=t,
                )
            )
            self._instance_event(conn, rec, "kill_requested", t, data={"key": key})
            return rec.assignment_state

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _instance_row(conn: Connection, instance_id: int) -> InstanceRecord | None:
        row = conn.execute(sa.select(I).where(I.id == instance_id)).mappings().one_or_none()
        return None if row is None else instance_from_row(row)

    @staticmethod
    def _instance_event(
        conn: Connection,
        rec: InstanceRecord,
        kind: str,
        time: datetime,
        *,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        conn.execute(
            sa.insert(EventModel).values(
                workload_id=rec.workload_id,
                instance_id=rec.id,
                time=time,
                kind=kind,
                reason=reason,
                data=dict(data) if data is not None else None,
            )
        )
