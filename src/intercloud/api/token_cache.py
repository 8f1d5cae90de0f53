"""Recently checked tokens, kept for ``TTL_S`` so that a busy client's requests do not
each read the token from the store (one read is several database round trips).

Only found tokens are kept, with their revocation and expiry as read: expiry is judged
at each request against the clock; a revocation by this process clears the cache at
once, and one by another server process is seen within ``TTL_S``.

``lookup`` reads a missing token once however many requests ask for it at the same
moment: when the entry of a token that 64 connections use expires, one read refills it
and the others wait for that read, instead of 64 reads racing each other.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from intercloud.store.records import ApiTokenRecord

#: Seconds a token read from the store is trusted (a revocation elsewhere is seen then).
TTL_S = 1.0
#: Most tokens kept (a full cache is emptied: it refills from the store).
MAX_TOKENS = 10_000

Reader = Callable[[str], ApiTokenRecord | None]


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._found: dict[str, tuple[ApiTokenRecord, float]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by ``clear``: a read begun before it is not kept
        self._reading: dict[str, asyncio.Task[ApiTokenRecord | None]] = {}

    def get(self, secret_hash: str) -> ApiTokenRecord | None:
        with self._lock:
            hit = self._found.get(secret_hash)
        if hit is None or self._clock() - hit[1] >= TTL_S:
            return None
        return hit[0]

    def put(self, secret_hash: str, token: ApiTokenRecord, generation: int | None = None) -> None:
        """Keep ``token``; not when ``generation`` (``clear``'s count when its read
        began) is given and the cache was cleared since."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if len(self._found) >= MAX_TOKENS:
                self._found.clear()
            self._found[secret_hash] = (token, self._clock())

    def clear(self) -> None:
        """Forget every token (after a revocation: read again from the store)."""
        with self._lock:
            self._found.clear()
            self._generation += 1

    async def lookup(self, secret_hash: str, read: Reader) -> ApiTokenRecord | None:
        """The token of ``secret_hash``: kept, or read with ``read`` (in a worker thread),
        one read shared by every request that misses at the same time."""
        hit = self.get(secret_hash)
        if hit is not None:
            return hit
        task = self._reading.get(secret_hash)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._read(secret_hash, read))
            self._reading[secret_hash] = task
        # shielded: one waiter cancelled (its client gone) leaves the read to the others
        return await asyncio.shield(task)

    async def _read(self, secret_hash: str, read: Reader) -> ApiTokenRecord | None:
        with self._lock:
            generation = self._generation
        try:
            found = await run_in_threadpool(read, secret_hash)
        finally:
            if self._reading.get(secret_hash) is asyncio.current_task():
                del self._reading[secret_hash]
        if found is not None:
            self.put(secret_hash, found, generation)
        return found
