"""Recently checked tokens, kept for ``TTL_S`` so that a busy client's requests do not
each read the token from the store (one read is several database round trips).

Only found tokens are kept, with their revocation and expiry as read: expiry is judged
at each request against the clock; a revocation by this process clears the cache at
once, and one by another server process is seen within ``TTL_S``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from intercloud.store.records import ApiTokenRecord

#: Seconds a token read from the store is trusted (a revocation elsewhere is seen then).
TTL_S = 1.0
#: Most tokens kept (a full cache is emptied: it refills from the store).
MAX_TOKENS = 10_000


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._found: dict[str, tuple[ApiTokenRecord, float]] = {}
        self._lock = threading.Lock()

    def get(self, secret_hash: str) -> ApiTokenRecord | None:
        with self._lock:
            hit = self._found.get(secret_hash)
        if hit is None or self._clock() - hit[1] >= TTL_S:
            return None
        return hit[0]

    def put(self, secret_hash: str, token: ApiTokenRecord) -> None:
        with self._lock:
            if len(self._found) >= MAX_TOKENS:
                self._found.clear()
            self._found[secret_hash] = (token, self._clock())

    def clear(self) -> None:
        """Forget every token (after a revocation: read again from the store)."""
        with self._lock:
            self._found.clear()
