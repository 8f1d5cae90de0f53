"""Group commit: concurrent requests' writes gathered into one transaction.

Each API process has one ``GroupCommitter``: a thread that takes every write queued
since its last commit (submissions with their audit rows, other audit rows), stores them
with one ``Store.write_batch`` (one transaction, one commit), and only then answers each
waiting request. A request is answered after its write is durable, as before; under
load one commit (an fsync on PostgreSQL) serves many requests instead of one each.
When a batch fails, its writes are retried one by one, so one bad write fails alone.

Requests wait on an ``asyncio`` future: no thread of the request pool is held while a
commit is under way.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from intercloud.store import Store

log = logging.getLogger(__name__)

#: Most writes in one transaction (a bound on its size and on the time it holds locks).
MAX_BATCH = 500


class Preparable(Protocol):
    """What ``submit_prepared``'s ``prepare`` returns (``sdk.PreparedSubmission``)."""

    @property
    def store_args(self) -> Mapping[str, Any]: ...


P = TypeVar("P", bound=Preparable)


@dataclass
class _Write:
    submission: Mapping[str, Any] | None  # ``Store.submit``'s keywords
    audit: Mapping[str, Any] | None  # ``Store.add_audit``'s keywords
    done: Future[int | None] = field(default_factory=Future)
    #: makes ``submission`` in the committing thread (``submit_prepared``)
    prepare: Callable[[], Preparable] | None = None
    prepared: Preparable | None = None


class GroupCommitter:
    """``await submit(args, audit)`` -> the new workload's id; ``await audit(row)``.

    ``before_submit`` (a check that the home's daemon serves this store) runs before a
    batch holding submissions is written, and ``after_submit`` (making sure the daemon
    runs) after it is committed and before any of its callers is answered: the SDK's
    submit does both for each submission, the committer once per batch."""

    def __init__(
        self,
        store: Store,
        before_submit: Callable[[], object] | None = None,
        after_submit: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self._before = before_submit
        self._after = after_submit
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def submit(self, args: Mapping[str, Any], audit: Mapping[str, Any] | None) -> int:
        found = await self._enqueue(_Write(args, audit))
        assert found is not None
        return found

    async def submit_prepared(
        self, prepare: Callable[[], P], audit: Mapping[str, Any] | None
    ) -> tuple[P, int]:
        """``prepare()`` (which may raise: this call raises the same), then its
        ``store_args`` stored as ``submit`` does -> (what ``prepare`` returned, the new
        id). ``prepare`` runs in the committing thread, just before the batch is
        written: one hand-off between threads each way instead of two (a thread pool's
        for the preparation, then this one's), which under load costs as much CPU as
        the preparation itself."""
        write = _Write(None, audit, prepare=prepare)
        found = await self._enqueue(write)
        assert found is not None and write.prepared is not None
        return cast(P, write.prepared), found

    async def audit(self, row: Mapping[str, Any]) -> None:
        await self._enqueue(_Write(None, row))

    async def _enqueue(self, write: _Write) -> int | None:
        self._start()
        self._queue.put(write)
        return await asyncio.wrap_future(write.done)

    def _start(self) -> None:
        if self._thread is not None and not self._closed:
            return  # running: no lock on the path of every request
        with self._lock:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            if self._thread is None:  # started in the serving process (after any fork)
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    # -- the committing thread ---------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            stop = first is None
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    continue
                batch.append(more)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Write]) -> None:
        batch = [w for w in batch if self._prepare(w)]
        submits = [w for w in batch if w.submission is not None]
        if submits and not self._check(submits):
            batch = [w for w in batch if w.submission is None]
            if not batch:
                return
        done: list[tuple[_Write, int | None]] = []
        try:
            ids = iter(self._write(batch))
            done = [(w, next(ids) if w.submission is not None else None) for w in batch]
        except Exception as exc:
            if len(batch) == 1:
                batch[0].done.set_exception(exc)
            else:  # one bad write must not fail the others: each alone
                for w in batch:
                    try:
                        one = self._write([w])
                    except Exception as exc_one:
                        w.done.set_exception(exc_one)
                    else:
                        done.append((w, one[0] if one else None))
        failure = self._ensure() if any(w.submission for w, _ in done) else None
        for w, job_id in done:
            if failure is not None and w.submission is not None:
                w.done.set_exception(_stored_but(failure, job_id))
            else:
                w.done.set_result(job_id)

    def _write(self, batch: list[_Write]) -> list[int]:
        submissions: list[Mapping[str, Any]] = []
        audits: list[Mapping[str, Any]] = []
        for w in batch:
            if w.submission is not None:
                if w.audit is not None:
                    audits.append({**w.audit, "target_of": len(submissions)})
                submissions.append(w.submission)
            elif w.audit is not None:
                audits.append(w.audit)
        return self.store.write_batch(submissions, audits)

    @staticmethod
    def _prepare(w: _Write) -> bool:
        """Make ``w``'s submission if it has a ``prepare``; False (``w`` failed with its
        error) when that raises."""
        if w.prepare is None:
            return True
        try:
            w.prepared = w.prepare()
        except Exception as exc:  # the request's error (a bad spec, ...), not ours
            w.done.set_exception(exc)
            return False
        w.submission = w.prepared.store_args
        return True

    def _check(self, submits: list[_Write]) -> bool:
        """Run ``before_submit``; False (each submission failed with its error) when it
        refuses."""
        if self._before is None:
            return True
        try:
            self._before()
        except Exception as exc:
            for w in submits:
                w.done.set_exception(exc)
            return False
        return True

    def _ensure(self) -> Exception | None:
        """Run ``after_submit``; its error, if it failed."""
        if self._after is None:
            return None
        try:
            self._after()
        except Exception as exc:  # stored all the same; the caller is told
            return exc
        return None


def _stored_but(exc: Exception, job_id: int | None) -> Exception:
    """``exc`` (of its own class, for the error mapping) saying the job is stored."""
    text = f"job {job_id} is stored, but {exc}"
    try:
        return type(exc)(text)
    except Exception:
        return RuntimeError(text)
