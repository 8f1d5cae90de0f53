"""The persisted ledger, kept up to date by the live loop and read by
``intercloud contracts status``.

The daemon's ``ledger`` step (``LedgerAccrual``) accrues, every ``every_s`` seconds, the
usage of ``[mark, now)`` (``contracts.ledger.accrue`` with ``since``) and adds it to the
store together with the new mark in one transaction (``store/ledger_repo.py``): a loop
killed before the commit accrues the same stretch again, one killed after it starts
from the new mark, so no hour is accrued twice or lost. The contracts' digest is kept
with the mark; when the configured contracts change, the next step accrues the whole
history again under the new ones and replaces the ledger.

After each addition the step stores every provider's *burn weight* (``burn_weights``:
the share of its active commitment projected to go unused at the recent rate) in the
store setting ``contracts.burn``; the live loop's fleet snapshot reads it into
``FleetPolicy.burn``, so the scheduler ranks the pools that burn a lagging commitment
cheaper (``scheduler/cost/pool_cost.py``).

``drawn_ledger`` is the ledger up to any instant: the persisted one plus the tail since
its mark when it was accrued under the same contracts and its mark is not after the
instant, else accrued from the usage from scratch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from intercloud.contracts.burndown import burndown
from intercloud.contracts.ledger import DEFAULT_RATE_WINDOW, Ledger, accrue, merge
from intercloud.model.contract import Contract
from intercloud.store import Store, utc_now
from intercloud.store.usage import usage_intervals

log = logging.getLogger("intercloud.control")

#: The store setting the burn weights go to (read by ``control.snapshot``).
BURN_SETTING = "contracts.burn"

#: How often the daemon adds to the persisted ledger.
DEFAULT_EVERY_S = 60.0
#: How far behind the clock its mark stays.
DEFAULT_LAG_S = 5.0


def contracts_key(contracts: Sequence[Contract]) -> str:
    """A digest of the contracts' specs (frozen dataclasses: a stable ``repr``)."""
    return hashlib.sha256(repr(tuple(contracts)).encode()).hexdigest()


def accrue_to_store(store: Store, contracts: Sequence[Contract], now: datetime) -> bool:
    """Add the usage since the store's mark up to ``now`` to the persisted ledger (the
    whole history when there is none yet or the contracts changed); whether anything
    was written (False: the mark is not before ``now``, or another writer moved it)."""
    key = contracts_key(contracts)
    mark = store.ledger_mark()
    replace = mark is not None and mark.contracts_key != key
    since = None if mark is None or replace else mark.accrued_until
    if since is not None and now <= since:
        return False
    part = accrue(usage_intervals(store, now, since), contracts, now, since=since)
    return store.add_ledger(part, key, mark, replace=replace)


def burn_weights(contracts: Sequence[Contract], ledger: Ledger) -> dict[str, float]:
    """Provider -> the largest share of one of its commitments in force at the ledger's
    instant that its burn-down projects to go unused (providers on track: absent)."""
    out: dict[str, float] = {}
    for c in contracts:
        if c.committed_usd <= 0 or not c.start <= ledger.at < c.end:
            continue
        b = burndown(c, ledger)
        share = min(1.0, b.unused_usd / c.committed_usd)
        if share > 0:
            out[c.provider] = max(out.get(c.provider, 0.0), round(share, 6))
    return out


class LedgerAccrual:
    """The daemon's ``ledger`` step: ``accrue_to_store`` up to ``lag_s`` seconds before
    ``clock``, at most every ``every_s`` seconds. Returns False always: keeping the
    books is not activity that should keep an idle daemon up."""

    def __init__(
        self,
        store: Store,
        contracts: Sequence[Contract],
        *,
        every_s: float = DEFAULT_EVERY_S,
        clock: Callable[[], datetime] = utc_now,
        lag_s: float = DEFAULT_LAG_S,
    ) -> None:
        self.lag_s = lag_s
        self.store = store
        self.contracts = tuple(contracts)
        self.every_s = every_s
        self.clock = clock
        self._last: datetime | None = None
        self._burn: dict[str, float] | None = None

    def __call__(self) -> bool:
        # a few seconds behind the clock: a row another process stamped just before
        # ``now`` but commits just after it is still seen before the mark passes it
        now = self.clock() - timedelta(seconds=self.lag_s)
        if self._last is not None and (now - self._last).total_seconds() < self.every_s:
            return False
        self._last = now
        try:
            self._keep(now)
        except Exception as exc:  # the books must never stall the jobs: retried next time
            log.warning("ledger: not kept at %s: %s", now.isoformat(), exc)
        return False

    def _keep(self, now: datetime) -> None:
        if not accrue_to_store(self.store, self.contracts, now):
            log.debug("ledger: nothing accrued at %s", now.isoformat())
        if any(c.committed_usd > 0 for c in self.contracts):
            ledger, _ = drawn_ledger(self.store, self.contracts, now)
            weights = burn_weights(self.contracts, ledger)
            if weights != self._burn:
                self.store.set_setting(BURN_SETTING, weights)
                self._burn = weights


def drawn_ledger(
    store: Store,
    contracts: Sequence[Contract],
    at: datetime,
    window: timedelta = DEFAULT_RATE_WINDOW,
) -> tuple[Ledger, datetime | None]:
    """The ledger up to ``at`` and the mark of the persisted part it was drawn from
    (None: accrued from the usage alone; see the module docstring)."""
    persisted = store.persisted_ledger()
    if persisted is None:
        return accrue(usage_intervals(store, at), contracts, at, window), None
    mark, stored = persisted
    if mark.contracts_key != contracts_key(contracts) or mark.accrued_until > at:
        return accrue(usage_intervals(store, at), contracts, at, window), None
    since = mark.accrued_until
    tail = accrue(usage_intervals(store, at, since), contracts, at, window, since=since)
    w0 = at - window
    recent = accrue(usage_intervals(store, at, w0), contracts, at, window, since=w0)
    starts = [c.start for c in contracts if c.start < at]
    first = min(starts).date() if starts else None
    return merge([stored, tail], at, window, recent.recent_usd_per_hour, first), since
