"""A child process that makes one ``RayCluster``'s Ray calls for the control loop.

Why a child: a Ray driver whose head node dies hangs in every call until Ray's GCS
reconnect timeout, then Ray terminates the whole process. In the daemon that would be
a crashed control loop; in a child it is a failed call. ``RayBridge.call`` sends one
call over a pipe and waits at most ``timeout_s``; a child that does not answer in time
is killed, a dead one is noticed, and either is ``ClusterUnreachable`` (a
``ProviderError``). The next call starts a new child, after a quick look at the
cluster's port (refused at once while the head is down: no child is started for it).

Errors the cluster answered with cross the pipe as their kind and words and are raised
again here as the same ``providers.base`` errors (``CapacityError``,
``NodeAlreadyRunning`` with its handle, ...); anything else Ray raised is a
``ProviderError`` naming its type. The child exits when the pipe closes (its daemon
ended, however it ended).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from intercloud.providers.base import (
    CapacityError,
    NodeAlreadyRunning,
    NodeAlreadyStarted,
    ProviderError,
)
from intercloud.providers.ray_cluster import CONNECT_TIMEOUT_S, RayConfig, host_port

__all__ = ["STARTUP_S", "ClusterUnreachable", "RayBridge"]

#: What a new child may take, beyond the call's own time, to import ray and connect.
STARTUP_S = 60.0


class ClusterUnreachable(ProviderError):
    """The cluster did not answer: its port is closed, a call timed out, or the child
    making the calls died (as Ray ends a driver whose head is gone)."""


def _serve(conn: Connection, config: RayConfig) -> None:
    """The child: answer calls of ``RayCluster(config)`` until the pipe closes."""
    from intercloud.providers.ray_cluster import RayCluster

    cluster = RayCluster(config)
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):
            return
        reply: tuple[Any, ...]
        try:
            reply = ("ok", getattr(cluster, method)(*args))
        except NodeAlreadyRunning as exc:
            reply = ("running", str(exc), exc.handle)
        except NodeAlreadyStarted as exc:
            reply = ("started", str(exc), exc.handle)
        except CapacityError as exc:
            reply = ("capacity", str(exc))
        except ProviderError as exc:
            reply = ("provider", str(exc))
        except ValueError as exc:  # the caller's input (a request of no nodes)
            reply = ("value", str(exc))
        except Exception as exc:  # whatever Ray raised: one line, never a traceback
            reply = ("provider", f"ray: {type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


def _raise(reply: tuple[Any, ...]) -> None:
    kind, text = reply[0], " ".join(str(reply[1]).split())
    if kind == "running":
        raise NodeAlreadyRunning(text, reply[2])
    if kind == "started":
        raise NodeAlreadyStarted(text, reply[2])
    if kind == "capacity":
        raise CapacityError(text)
    if kind == "value":
        raise ValueError(text)
    raise ProviderError(text)


class RayBridge:
    """One child process at a time making the calls of ``RayCluster(config)``.
    Thread-safe (calls are serialised)."""

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        #: how many children were started (a new one has lost the old one's tracking)
        self.generation = 0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def call(self, method: str, *args: Any, timeout_s: float | None = None) -> Any:
        """``RayCluster.method(*args)`` in the child; ``ClusterUnreachable`` if it does
        not answer within ``timeout_s`` (default ``config.call_timeout_s``)."""
        wait = self.config.call_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if not self.alive:
                wait += STARTUP_S  # a new child imports ray and connects first
            conn = self._child()
            try:
                conn.send((method, args))
                if not conn.poll(wait):
                    self._stop()
                    why = f"ray at {self.config.address} did not answer {method} within {wait:g}s"
                    raise ClusterUnreachable(why)
                reply = conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                code = self._proc.exitcode if self._proc is not None else None
                self._stop()
                why = f"the connection to ray at {self.config.address} ended (exit {code})"
                raise ClusterUnreachable(why) from None
        if reply[0] == "ok":
            return reply[1]
        _raise(reply)

    def _child(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self._stop()
        # a head that is down refuses at once: no child (and no ray import) for that
        host, port = host_port(self.config.address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            why = f"cannot reach ray at {self.config.address}: {exc.strerror or exc}"
            raise ClusterUnreachable(why) from None
        ctx = multiprocessing.get_context("spawn")  # never fork a threaded daemon
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_serve, args=(child, self.config), name="intercloud-ray", daemon=True
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self.generation += 1
        return parent

    def _stop(self, grace_s: float = 0.0) -> None:
        """End the child: its pipe closed, it returns (a clean Ray disconnect) within
        ``grace_s``, else SIGKILL (SIGTERM makes Ray print a stack dump)."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.join(grace_s)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)

    def close(self) -> None:
        """Stop the child (the cluster's actors and groups live on)."""
        with self._lock:
            self._stop(grace_s=5.0)
