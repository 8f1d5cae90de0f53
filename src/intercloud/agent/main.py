"""The node agent's loop: enrol, heartbeat, take the assignment, run it, stream its
log, report how it ended, stop it on request.

Guarantees:
- an assignment runs at most once on this instance, across agent restarts (``runs``);
  one the server says is already started but this disk never saw is reported as ended
  with the supervisor-failure code (254), never run;
- the end of a run is reported only after its whole log has been acknowledged, so the
  log file on the control plane is complete when the job's node is seen exited;
- while the server is unreachable the agent keeps its runs going and retries with
  back-off (0.5 s doubling to ``retry_max_s``); what it could not send it sends later;
- a run the control plane no longer assigns (none, or another key) is killed: a node
  never runs on after the control plane gave it up.

Exit status: 0 when the control plane refuses this node for good (wrong secret or
token, the instance ended: the boot script stops), 2 for bad settings, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import TypeVar

from intercloud.agent.bootstrap import new_bootstrap_secret
from intercloud.agent.client import AgentClient, Refused, Unreachable
from intercloud.agent.protocol import Assignment, RegisterRequest, ReportState
from intercloud.agent.runs import Run
from intercloud.agent.settings import AgentSettings, SettingsError, load_settings
from intercloud.providers.local_shim import EXIT_SHIM_ERROR, private_mkdir, write_atomic

#: Refusals after which this node has nothing more to do.
_FATAL = frozenset(
    {
        "bad_secret",
        "bad_token",
        "instance_ended",
        "unknown_instance",
        "already_enrolled",
        "wrong_instance",
    }
)


T = TypeVar("T")


class Stop(Exception):
    """The control plane refuses this node for good (``reason``)."""


def _log(text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} intercloud-agent: {text}", file=sys.stderr, flush=True)


class Agent:
    """One node's agent. ``run_forever`` until stopped by a signal or the server."""

    def __init__(self, settings: AgentSettings, environ: Mapping[str, str]) -> None:
        self.s = settings
        self.environ = dict(environ)
        self.client = AgentClient(settings.control_url)
        self.heartbeat_s = 5.0
        self.next_heartbeat = 0.0
        self.runs: dict[str, Run] = {}
        self.stopping = False

    # -- enrolment ----------------------------------------------------------------------
    def _token(self) -> str:
        """This node's token: drawn once, kept in ``HOME/token`` (0600) before use."""
        path = self.s.home / "token"
        with contextlib.suppress(OSError, ValueError):
            kept = json.loads(path.read_text())
            mine = isinstance(kept, dict) and isinstance(kept.get("token"), str)
            if mine and (kept.get("request_id"), kept.get("slot")) == (
                self.s.request_id,
                self.s.slot,
            ):
                return str(kept["token"])
        token = new_bootstrap_secret()
        data = {"request_id": self.s.request_id, "slot": self.s.slot, "token": token}
        write_atomic(str(path), json.dumps(data))
        return token

    def register(self) -> None:
        token = self._token()
        req = RegisterRequest(
            request_id=self.s.request_id,
            slot=self.s.slot,
            bootstrap_secret=self.s.bootstrap_secret,
            token=token,
            provider_instance_id=self.s.provider_instance_id,
            address=self.s.address,
        )
        resp = self._retry(lambda: self.client.register(req))
        self.client.instance_id = resp.instance_id
        self.client.token = token
        self.heartbeat_s = resp.heartbeat_s
        _log(f"enrolled as instance {resp.instance_id}")

    # -- calls with back-off ------------------------------------------------------------
    def _retry(self, call: Callable[[], T]) -> T:
        delay = 0.5
        while True:
            try:
                return call()
            except Unreachable as exc:
                if self.stopping:
                    raise
                _log(f"control plane unreachable ({exc}); retrying in {delay:g}s")
                self._sleep(delay)
                delay = min(delay * 2, self.s.retry_max_s)
            except Refused as exc:
                if exc.reason in _FATAL:
                    raise Stop(exc.reason) from None
                raise

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(max(0.0, min(0.1, end - time.monotonic())))

    # -- the loop -----------------------------------------------------------------------
    def run_forever(self) -> int:
        private_mkdir(str(self.s.home))
        try:
            self.register()
            self.runs = {r.key: r for r in Run.load_all(self.s.home) if not r.finished}
            while not self.stopping:
                self.step()
        except Stop as exc:
            _log(f"the control plane refused this node ({exc}); stopping")
            return 0
        except Unreachable:
            pass  # stopping while the server was away
        except (Refused, ValueError) as exc:  # a server this agent does not understand
            _log(f"unexpected answer from the control plane: {exc}; exiting to restart")
            return 1
        return 0 if self.stopping else 1

    def step(self) -> None:
        """One round: heartbeat when due, pump every unfinished run, then wait for the
        assignment (briefly while something runs, so output streams)."""
        if time.monotonic() >= self.next_heartbeat:
            self._retry(lambda: self.client.heartbeat(self.s.address))
            self.next_heartbeat = time.monotonic() + self.heartbeat_s
        for run in list(self.runs.values()):
            self.pump(run)
        live = [r for r in self.runs.values() if not r.finished]
        current = live[-1].assignment if live else None
        # while something runs, come back every second to stream its output
        wait = 1.0 if live else min(self.s.poll_wait_s, self.heartbeat_s)
        assignment, state = self._retry(
            lambda: self.client.assignment(
                wait, current.key if current else "", current.kill if current else False
            )
        )
        self.apply(assignment, state)

    def apply(self, assignment: Assignment | None, state: str | None) -> None:
        """Act on what the control plane assigns now."""
        for run in list(self.runs.values()):  # runs the control plane gave up
            if (assignment is None or run.key != assignment.key) and not run.finished:
                if run.started and run.exit_code() is None and not run.kill_sent:
                    _log(f"{run.key} is no longer assigned: stopping it")
                    run.kill()
                elif not run.started:
                    run.mark_reported(ReportState.KILLED)  # never ran, nobody waits for it
                    del self.runs[run.key]
        if assignment is None:
            return
        run = self.runs.get(assignment.key) or Run(self.s.home, assignment)
        if run.key not in self.runs:
            if run.exists():  # seen before this agent process: already done
                return
            run.create()
            self.runs[run.key] = run
            if state != "assigned":  # started by a run this disk has no trace of
                self._end_unknown(run)
                return
        if assignment.kill and not run.kill_sent:
            run.assignment = assignment
            run.kill()
            return
        if not run.started and not run.kill_sent:
            pid = run.start(self.environ)
            _log(f"started {run.key} (supervisor pid {pid})")
            self.pump(run)

    def _end_unknown(self, run: Run) -> None:
        _log(f"{run.key} is marked started but this node has no record of it")
        write_atomic(str(run.dir / "exit_code"), f"{EXIT_SHIM_ERROR}\n")
        write_atomic(str(run.dir / "spec.json"), "{}")

    def pump(self, run: Run) -> None:
        """Report the start, send new log bytes, report the end once all are sent."""
        try:
            if run.started and run.reported is None:
                pid = run.pid()
                self.client.report(run.key, ReportState.STARTED, pid=pid)
                run.mark_reported(ReportState.STARTED)
            code = run.exit_code()
            self._send_logs(run, flush=code is not None)
            if run.kill_sent and not run.started:  # stopped before it ever ran
                self._finish(run, ReportState.KILLED, None)
            elif code is not None:
                run.reap()
                state = ReportState.KILLED if run.kill_sent else ReportState.EXITED
                self._finish(run, state, code)
        except Refused as exc:
            if exc.reason in _FATAL:
                raise Stop(exc.reason) from None
            if exc.reason in ("other_assignment", "assignment_ended"):
                _log(f"{run.key}: the control plane has moved on ({exc.reason})")
                run.mark_reported(ReportState.KILLED)
                self.runs.pop(run.key, None)
            else:
                raise
        except Unreachable as exc:
            _log(f"control plane unreachable ({exc}); will retry")

    def _finish(self, run: Run, state: ReportState, code: int | None) -> None:
        self.client.report(run.key, state, exit_code=code)
        run.mark_reported(state)
        self.runs.pop(run.key, None)
        _log(f"{run.key} {state.value} (exit {code})")

    def _send_logs(self, run: Run, flush: bool) -> None:
        """Send the log from the acknowledged offset: a few chunks per round, or all of
        it when ``flush``."""
        rounds = 0
        while flush or rounds < 4:
            rounds += 1
            offset = run.sent
            try:
                with run.log_path.open("rb") as f:
                    f.seek(offset)
                    data = f.read(self.s.log_chunk)
            except FileNotFoundError:
                return
            if not data:
                return
            try:
                end = self.client.logs(run.key, offset, data)
            except Refused as exc:
                if exc.reason != "log_gap":
                    raise
                end = int(exc.body.get("offset", 0))
            run.mark_sent(end)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv, os.environ)
    except SettingsError as exc:
        print(f"intercloud-agent: {exc}", file=sys.stderr)
        return 2
    agent = Agent(settings, os.environ)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        agent.stopping = True  # runs go on under their own supervisors

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    return agent.run_forever()
