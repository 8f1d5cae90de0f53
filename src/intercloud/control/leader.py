"""Leader election by a lease in the store: of several processes (or hosts) sharing one
database, exactly one runs the reconcile loop at a time.

```python
lease = LeaderLease(store)                 # holder: host:pid:random, ttl 10 s
while not stopping():
    if lease.step():                       # take or renew; True while this process leads
        reconcile_once()
    time.sleep(lease.renew_s)
lease.release()                            # a clean stop hands over at once
```

Contract: ``step`` must be called at least every ``renew_s`` (a third of the time to live)
by the leader; a leader that stops calling it (killed, hung, cut off from the database)
loses the lease ``ttl_s`` after its last renewal, and another contender's ``step`` takes
it over, with a greater ``epoch``. Leadership is advisory between two steps: a cycle
that outlasts the lease can overlap the next leader's, which is why every change the
loop makes is a compare-and-set in the store (``Store``'s contract), never a blind write.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from datetime import datetime

from intercloud.store import Store
from intercloud.store.records import LeaseRecord

CONTROL_LOOP_LEASE = "control-loop"
DEFAULT_TTL_S = 10.0


def default_holder() -> str:
    """``host:pid:random``: unique per process, readable in ``leases``."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaderLease:
    """One contender for lease ``name``."""

    def __init__(
        self,
        store: Store,
        name: str = CONTROL_LOOP_LEASE,
        holder: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self.store = store
        self.name = name
        self.holder = holder or default_holder()
        self.ttl_s = ttl_s
        self.current: LeaseRecord | None = None

    @property
    def renew_s(self) -> float:
        return self.ttl_s / 3

    @property
    def epoch(self) -> int | None:
        """The epoch of this holder's lease while it leads, else None."""
        return self.current.epoch if self.current is not None else None

    def step(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; whether this holder leads until the next step. A
        database error counts as not leading (the lease runs out on its own)."""
        from intercloud.store import StoreError

        try:
            self.current = self.store.acquire_lease(self.name, self.holder, self.ttl_s, now)
        except StoreError:
            self.current = None
        return self.current is not None

    def release(self, now: datetime | None = None) -> None:
        """Hand the lease over at once (a clean shutdown)."""
        from intercloud.store import StoreError

        if self.current is not None:
            with contextlib.suppress(StoreError):  # it expires on its own
                self.store.release_lease(self.name, self.holder, now)
        self.current = None
