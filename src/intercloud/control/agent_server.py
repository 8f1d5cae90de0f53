"""The control plane's side of the node agent channel (``agent.protocol`` is the wire
contract): a FastAPI app, and ``AgentServer``, which serves it with uvicorn on a
background thread inside the daemon.

Authentication (the README's "Node agent channel" has the threat model):
- ``register`` needs the launch's bootstrap secret (its SHA-256 is in the instance
  rows' ``extra``) and enrols the token the agent drew (only its SHA-256 is kept);
- every other call needs ``Authorization: Bearer <instance id>.<token>`` and acts on
  that one instance only: its heartbeat, its assignment, its reports, and the log file
  of its assignment, whose path the server derives from the stored assignment, never
  from the request. A wrong or absent token is 401 and changes nothing.

Logs are appended to ``agent_log_path(log_root, job, attempt, rank)`` (folders 0700,
files 0600); a chunk carries its byte offset, so a retried chunk is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from intercloud.agent.protocol import (
    ASSIGNMENT_PATH,
    HEARTBEAT_PATH,
    LOGS_PATH,
    MAX_LOG_CHUNK,
    MAX_SECRET_CHARS,
    MAX_WAIT_S,
    MIN_SECRET_CHARS,
    REGISTER_PATH,
    REPORT_PATH,
    Assignment,
    RegisterRequest,
    ReportState,
)
from intercloud.control.agent_logs import agent_log_path
from intercloud.providers.local_shim import private_mkdir
from intercloud.store import Store
from intercloud.store.agent_repo import AGENT_REFUSAL_TEXT, AgentRefusal, AgentRefused
from intercloud.store.records import InstanceRecord

#: How often agents heartbeat (seconds), unless the server is told otherwise.
DEFAULT_HEARTBEAT_S = 5.0
#: How often a long poll re-reads the store when nobody calls ``notify`` (changes made by
#: another process: a CLI, a second daemon); ``notify`` wakes it at once.
_POLL_S = 1.0
_SECRET = Field(min_length=MIN_SECRET_CHARS, max_length=MAX_SECRET_CHARS, pattern=r"^[\w\-]+$")


class _RegisterBody(BaseModel):
    request_id: str = Field(min_length=1, max_length=128)
    slot: int = Field(ge=0, le=10_000)
    bootstrap_secret: str = _SECRET
    token: str = _SECRET
    provider_instance_id: str = Field(default="", max_length=128)
    address: str = Field(default="", max_length=255)


class _HeartbeatBody(BaseModel):
    address: str = Field(default="", max_length=255)


class _ReportBody(BaseModel):
    key: str = Field(min_length=1, max_length=512)
    state: ReportState
    exit_code: int | None = Field(default=None, ge=-(2**31), lt=2**31)
    pid: int | None = Field(default=None, ge=1, lt=2**31)


def _refuse(reason: AgentRefusal) -> NoReturn:
    code = 401 if reason.unauthorized else 409
    raise HTTPException(
        code, detail={"reason": reason.value, "message": AGENT_REFUSAL_TEXT[reason]}
    )


def _authenticated(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> InstanceRecord:
    """The instance whose token the request carries; 401 otherwise."""
    scheme, _, credentials = (authorization or "").partition(" ")
    ident, _, token = credentials.partition(".")
    if scheme.lower() != "bearer" or not ident.isdigit() or not token:
        _refuse(AgentRefusal.BAD_TOKEN)
    store: Store = request.app.state.store
    try:
        return store.agent_authenticate(int(ident), token)
    except AgentRefused as exc:
        _refuse(exc.reason)


Node = Annotated[InstanceRecord, Depends(_authenticated)]


def create_agent_app(
    store: Store, log_root: Path | str, heartbeat_s: float = DEFAULT_HEARTBEAT_S
) -> FastAPI:
    """The agent endpoints over ``store``, writing logs under ``log_root``."""
    app = FastAPI(title="intercloud agent channel", docs_url=None, redoc_url=None)
    app.state.store = store
    wakeups = _Wakeups()
    app.state.wakeups = wakeups
    log_locks: dict[Path, threading.Lock] = {}
    locks_guard = threading.Lock()

    @app.post(REGISTER_PATH)
    def register(body: _RegisterBody, request: Request) -> dict[str, Any]:
        address = body.address or (request.client.host if request.client else "")
        try:
            rec = store.agent_register(
                RegisterRequest(
                    request_id=body.request_id,
                    slot=body.slot,
                    bootstrap_secret=body.bootstrap_secret,
                    token=body.token,
                    provider_instance_id=body.provider_instance_id,
                    address=address,
                )
            )
        except AgentRefused as exc:
            _refuse(exc.reason)
        return {"instance_id": rec.id, "heartbeat_s": heartbeat_s}

    @app.post(HEARTBEAT_PATH)
    def heartbeat(node: Node, body: _HeartbeatBody, request: Request) -> dict[str, Any]:
        address = body.address or (request.client.host if request.client else "")
        if not store.agent_heartbeat(node.id, address or None):
            _refuse(AgentRefusal.INSTANCE_ENDED)
        return {"ok": True}

    @app.get(ASSIGNMENT_PATH)
    async def assignment(
        node: Node,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
        key: Annotated[str, Query(max_length=512)] = "",
        kill: Annotated[bool, Query()] = False,
    ) -> dict[str, Any]:
        """The assignment, at once when it differs from what the agent knows (``key``,
        ``kill``), else when it changes or ``wait`` is over."""
        deadline = time.monotonic() + wait
        while True:
            woken = wakeups.watch(node.id)
            work = await run_in_threadpool(store.agent_assignment, node.id)
            known = work is not None and (work.assignment.key, work.assignment.kill) == (key, kill)
            left = deadline - time.monotonic()
            if ((work is None and not key) or known) and left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(left, _POLL_S))
                continue
            if work is None:
                return {"assignment": None, "state": None}
            return {"assignment": work.assignment.to_json(), "state": work.state.value}

    @app.post(REPORT_PATH)
    def report(node: Node, body: _ReportBody) -> dict[str, Any]:
        try:
            state = store.agent_report(node.id, body.key, body.state, body.exit_code, body.pid)
        except AgentRefused as exc:
            _refuse(exc.reason)
        return {"state": state.value}

    @app.post(LOGS_PATH)
    async def logs(
        node: Node,
        request: Request,
        key: Annotated[str, Query(min_length=1, max_length=512)],
        offset: Annotated[int, Query(ge=0)],
    ) -> dict[str, Any]:
        data = bytearray()
        async for part in request.stream():
            data += part
            if len(data) > MAX_LOG_CHUNK:  # stop reading: a token is no licence to fill memory
                raise HTTPException(413, detail=f"body: at most {MAX_LOG_CHUNK} bytes per chunk")
        if node.assignment is None or node.assignment.get("key") != key:
            _refuse(AgentRefusal.OTHER_ASSIGNMENT)
        a = Assignment.from_json(node.assignment)
        path = agent_log_path(log_root, a.job_id, a.attempt, a.rank)
        with locks_guard:
            lock = log_locks.setdefault(path, threading.Lock())
        end = await run_in_threadpool(_append_at, path, lock, offset, bytes(data))
        if end < offset:
            raise HTTPException(409, detail={"reason": "log_gap", "offset": end})
        return {"offset": end}

    return app


class _Wakeups:
    """Long polls waiting per instance, woken from any thread (``AgentServer.notify``)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[int, asyncio.Event] = {}

    def watch(self, instance_id: int) -> asyncio.Event:
        """A fresh event set by the next ``wake(instance_id)`` (call in the server loop)."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._events[instance_id] = event
        return event

    def wake(self, instance_id: int) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(self._set, instance_id)

    def _set(self, instance_id: int) -> None:
        event = self._events.pop(instance_id, None)
        if event is not None:
            event.set()


def _append_at(path: Path, lock: threading.Lock, offset: int, data: bytes) -> int:
    """Write ``data`` as the bytes of ``path`` from ``offset``: bytes already there are
    skipped; returns the file's new end, or its end (< offset) when there is a gap."""
    with lock:
        private_mkdir(str(path.parent))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            end = os.fstat(fd).st_size
            if offset > end:
                return end
            fresh = data[end - offset :]
            if fresh:
                os.write(fd, fresh)
            return end + len(fresh)
        finally:
            os.close(fd)


class AgentServer:
    """The agent app served by uvicorn on a background thread.

    ``port=0`` binds a free port (read it from ``port`` after ``start``). ``url`` is
    what nodes are told to call: ``public_url`` when given (``https://...`` behind a TLS
    terminator in production), else ``http://host:port``.
    """

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        log_root: Path | str = ".",
        *,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        public_url: str | None = None,
    ) -> None:
        self.store = store
        self.host = host
        self.log_root = Path(log_root)
        self.public_url = public_url
        self.app = create_agent_app(store, self.log_root, heartbeat_s)
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the agent server is not started")
        return self._port

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind and serve; returns once the server accepts connections. OSError when the
        address cannot be bound, RuntimeError when it does not come up in time."""
        if self._thread is not None:
            return
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=_serve, args=(server, sock), name="agent-server", daemon=True
        )
        self._thread.start()
        _wait(lambda: server.started or not self._alive(), timeout_s)
        if not server.started:
            self.stop()
            raise RuntimeError(f"the agent server did not start on {self.host}:{self._port}")

    def notify(self, instance_id: int) -> None:
        """The instance's assignment changed (assigned, kill requested): answer its
        agent's long poll now rather than at the next re-read. Any thread."""
        self.app.state.wakeups.wake(instance_id)

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving (open long polls are cut) and join the thread. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None
        self._server = None

    def __enter__(self) -> AgentServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _wait(done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
