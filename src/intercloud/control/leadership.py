"""The daemon's hold on the control-loop lease: exactly one reconcile loop per database.

Every daemon (one per ``$INTERCLOUD_HOME``; several homes, on one host or several, may
share one PostgreSQL database) asks ``Leadership.leads()`` before each step:

- the leader renews the lease at most every ``renew_s`` (a third of its time to live),
  not at every step: on SQLite every renewal is a write;
- a daemon that gains the lease (its first, or a new epoch after another holder's)
  runs ``recover`` before its first step, so it converges from the store and what the
  providers still run, whatever the previous leader left half done;
- a daemon that loses it (the database unreachable, a step that outlasted the lease)
  stops stepping at once and recovers again if it leads later;
- a standby polls the lease every ``renew_s``, so it takes over at most ``ttl_s +
  renew_s`` after the leader's last renewal (SIGKILL, host lost).
- a daemon restarted on its own home lets its dead predecessor's lease go at once
  (``daemon._succeed_last_holder``): only another home waits for the lease to run out.

What the new leader does with the nodes the old one started: it adopts every node the
store records as running (``Reconciler.recover``). A local-provider node is identified
by its pid, start time and node directory (stored with the node), so a leader on the
same host adopts the orphans of a killed leader's home and watches them to their end
(and the ones it had spawned but not yet recorded: ``control.takeover``);
a leader on another host cannot see them: they are recorded lost and their jobs
restart (or fail) by their restart policy. Cross-host standbys are therefore meant for
providers whose capacity every host can see (cloud instances).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from intercloud.control.leader import LeaderLease

log = logging.getLogger("intercloud.control.daemon")


class Leadership:
    """``lease`` as one daemon holds it; ``recover`` is run at each gain of leadership
    (a ``StoreError`` from it propagates and it is retried at the next ``leads``)."""

    def __init__(
        self,
        lease: LeaderLease,
        recover: Callable[[], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.recover = recover
        self.clock = clock
        self._renewed_at: float | None = None
        self._recovered_epoch: int | None = None

    @property
    def renew_s(self) -> float:
        return self.lease.renew_s

    @property
    def leading(self) -> bool:
        """Whether the last ``leads`` found this daemon leading."""
        return self._renewed_at is not None

    def leads(self) -> bool:
        """Whether this daemon may run a step now: the lease taken or renewed (when the
        last renewal is ``renew_s`` old or more), recovered after a gain."""
        now = self.clock()
        if self._renewed_at is not None and now - self._renewed_at < self.lease.renew_s:
            return True
        was = self._renewed_at is not None
        if not self.lease.step():
            if was:
                log.warning("lost the control-loop lease: standing by")
            self._renewed_at = None
            self._recovered_epoch = None
            return False
        self._renewed_at = now  # measured from before the write: errs on the safe side
        if self.lease.epoch != self._recovered_epoch:
            log.info(
                "leading the control loop (lease epoch %s, holder %s): recovering",
                self.lease.epoch,
                self.lease.holder,
            )
            try:
                self.recover()
            except BaseException:
                self._renewed_at = None
                raise
            self._recovered_epoch = self.lease.epoch
        return True

    def release(self) -> None:
        """Hand the lease over at once (a clean stop)."""
        if self._renewed_at is not None:
            log.info("releasing the control-loop lease")
        self.lease.release()
        self._renewed_at = None
        self._recovered_epoch = None
