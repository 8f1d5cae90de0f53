"""Passive transitions: apply what one provider's ``observe()`` showed.

- a launch failure: the request's REQUESTED rows -> FAILED (``failure_kind``, reason),
  and ``on_failure`` hears of it (once per failure, matched rows or not);
- an instance seen for a REQUESTED row -> ALLOCATED with its provider id and address;
- an instance the provider says can never serve -> TERMINATING (the terminating
  handler asks for its end);
- an instance ended that we did not ask to end -> TERMINATED, cause RECLAIMED when the
  provider said so, else LOST; a TERMINATING row whose instance is gone -> TERMINATED;
- a REQUESTED row launched here that the provider neither shows nor has pending after
  ``timeouts.launch_s`` -> FAILED (LAUNCH_VANISHED).

Events are delivered at least once; every move is a guarded compare-and-set, so seeing
the same thing twice changes nothing the second time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import is_not
from typing import Any

from intercloud.control.instances.context import InstanceContext
from intercloud.control.instances.transitions import LIVE, EndCause
from intercloud.providers.contract import (
    FAILURE_TEXT,
    FailureKind,
    InstanceEvent,
    InstanceEventKind,
    InstanceObservation,
    InstanceState,
    Observation,
)
from intercloud.store.records import InstanceRecord

S = InstanceState
_ENDED = (S.TERMINATING, S.TERMINATED)
#: Instance events that end an instance without our asking, and the cause they mean.
_ENDING_EVENTS = {
    InstanceEventKind.RECLAIMED: EndCause.RECLAIMED,
    InstanceEventKind.LOST: EndCause.LOST,
}
#: Instance events only worth a line in the instance's history.
_NOTICES = (
    InstanceEventKind.RECLAIM_NOTICE,
    InstanceEventKind.SCHEDULED,
    InstanceEventKind.IMPAIRED,
)


@dataclass(slots=True)
class _Memo:
    """One provider's last full ``apply`` with nothing to report but instances: its
    observation's instances and map, its rows (in the store's order), the positions of
    the rows it did not judge (``InstanceContext.judged``) and, once a delta pass needed
    it, each row key's position."""

    insts: tuple[InstanceObservation, ...]
    seen: dict[tuple[str, int], InstanceObservation]
    rows: list[InstanceRecord]
    unjudged: set[int]
    row_at: dict[tuple[str, int], int] | None = None


#: a delta apply looks at most this share of the rows (else the whole loop is as quick)
_DELTA_SHARE = 0.1


def _changed(new: Sequence[Any], old: Sequence[Any]) -> list[int]:
    """Positions where ``new`` holds another object than ``old`` (same lengths); in C."""
    return list(compress(range(len(new)), map(is_not, new, old)))


def apply(ctx: InstanceContext, provider: str, obs: Observation, *, full: bool = True) -> bool:
    """Apply ``obs`` of ``provider`` to its live rows; True if a row changed.

    ``full``: the observation lists every instance that exists (``observe``), so a row
    whose instance is missing is gone. ``adopt()`` results are applied with
    ``full=False``: only what they show counts.

    A full observation with no events or failures whose instances and rows are, but for
    a few, the very objects of the last one (a provider and the store hand back what did
    not change as the same object) is applied to those few only, and to the rows the
    last one did not judge: every other row would be judged again as it was
    (``_apply_delta``).
    """
    memo = ctx.memo.pop(provider, None) if full else None
    if full and not obs.events and not obs.failures and memo is not None:
        done = _apply_delta(ctx, provider, obs, memo)
        if done is not None:
            return done
    return _apply_all(ctx, provider, obs, full)


def _apply_all(ctx: InstanceContext, provider: str, obs: Observation, full: bool) -> bool:
    seen = {(i.request_id, i.rank): i for i in obs.instances}
    ctx.observed.setdefault(provider, {}).update(seen)
    events: dict[str, list[InstanceEvent]] = defaultdict(list)
    for ev in obs.events:
        events[ev.instance_id].append(ev)
    failures = {f.request_id: f for f in obs.failures}
    changed = False
    rows = ctx.store.instances(states=LIVE, provider=provider)
    # a row and an observation both as they were at the last full observe, which found
    # nothing to do about them: nothing to do now either (``_seen`` is a function of
    # those, and the store hands back an unchanged row as the same object)
    last = ctx.judged.get(provider, {}) if full else {}
    judged: dict[int, tuple[InstanceRecord, InstanceObservation]] = {}
    no_events: list[InstanceEvent] = []
    for row in rows:
        changed |= _one(ctx, row, seen, events, failures, last, judged, obs, full, no_events)
    if full:
        ctx.judged[provider] = judged
        if not obs.events and not obs.failures and len(seen) == len(obs.instances):
            # (judged holds rows only: as many entries as rows, every row judged)
            unjudged = (
                set() if len(judged) == len(rows)
                else {k for k, r in enumerate(rows) if r.id not in judged}
            )  # fmt: skip
            ctx.memo[provider] = _Memo(obs.instances, seen, rows, unjudged)
    for failure in obs.failures:
        ctx.on_failure(failure)
    return changed


def _apply_delta(ctx: InstanceContext, provider: str, obs: Observation, memo: _Memo) -> bool | None:
    """``_apply_all`` of ``obs`` looking only at the rows that can come out otherwise
    than last time: rows that are not the same objects, rows whose observation is not,
    and rows the last apply did not judge. None (nothing done) when the rows or the
    instances are not those of ``memo`` but for a few at the same positions."""
    insts = obs.instances
    if len(insts) != len(memo.insts):
        return None
    moved_insts = _changed(insts, memo.insts)
    rows = ctx.store.instances(states=LIVE, provider=provider)
    old_rows = memo.rows
    if len(rows) != len(old_rows):
        return None
    moved_rows = _changed(rows, old_rows)
    if len(moved_insts) + len(moved_rows) > _DELTA_SHARE * max(len(rows), 1):
        return None
    if any(rows[k].id != old_rows[k].id for k in moved_rows):
        return None
    seen = memo.seen
    look = set(memo.unjudged)
    look.update(moved_rows)
    row_at = memo.row_at
    if moved_insts and row_at is None:  # (the rows' keys are those of memo.rows)
        row_at = {(r.request_id, r.slot): k for k, r in enumerate(rows)}
    positions = row_at or {}
    for j in moved_insts:
        old, new = memo.insts[j], insts[j]
        old_key, new_key = (old.request_id, old.rank), (new.request_id, new.rank)
        if seen.get(old_key) is old:
            del seen[old_key]
        if new_key in seen:  # two instances of one key: the whole loop decides which
            return None
        seen[new_key] = new
        for key in (old_key, new_key):
            k = positions.get(key)
            if k is not None:
                look.add(k)
    ctx.observed.setdefault(provider, {}).update(seen)
    last = ctx.judged.get(provider, {})
    judged = dict(last)  # (the rows not looked at keep their entries: judged alike)
    changed = False
    no_events: list[InstanceEvent] = []
    unjudged = set()
    for k in sorted(look):
        row = rows[k]
        judged.pop(row.id, None)
        changed |= _one(ctx, row, seen, {}, {}, last, judged, obs, True, no_events)
        if row.id not in judged:
            unjudged.add(k)
    ctx.judged[provider] = judged
    ctx.memo[provider] = _Memo(insts, seen, rows, unjudged, row_at)
    return changed


def _one(
    ctx: InstanceContext,
    row: InstanceRecord,
    seen: dict[tuple[str, int], InstanceObservation],
    events: dict[str, list[InstanceEvent]],
    failures: dict[str, Any],
    last: dict[int, tuple[InstanceRecord, InstanceObservation]],
    judged: dict[int, tuple[InstanceRecord, InstanceObservation]],
    obs: Observation,
    full: bool,
    no_events: list[InstanceEvent],
) -> bool:
    """Apply the observation to one row; True if it changed. A row found with nothing
    to do (no events, no move) goes into ``judged``."""
    inst = seen.get((row.request_id, row.slot))
    if inst is not None:
        evs = events.get(inst.instance_id, no_events) if events else no_events
        if not evs:
            hit = last.get(row.id)
            if hit is not None and hit[0] is row and (hit[1] is inst or hit[1] == inst):
                judged[row.id] = hit
                return False
        moved = _seen(ctx, row, inst, evs)
        if not moved and not evs:
            judged[row.id] = (row, inst)
        return moved
    failure = failures.get(row.request_id) if failures else None
    if failure is not None and row.state == S.REQUESTED:
        kind = failure.kind
        reason = f"{FAILURE_TEXT[kind]}: {failure.message}"
        if failure.code:
            reason += f" ({failure.code})"
        rec = ctx.move(row, S.FAILED, reason, EndCause.LAUNCH_FAILED, failure_kind=kind.value)
        return rec is not None
    if full:
        return _missing(ctx, row, obs)
    return False


def _seen(
    ctx: InstanceContext,
    row: InstanceRecord,
    inst: InstanceObservation,
    events: list[InstanceEvent],
) -> bool:
    state = S(row.state)
    for ev in events:
        if ev.kind in _NOTICES and (row.extra or {}).get("notice") != ev.kind.value:
            detail = f"{ev.kind.value}: {ev.code} {ev.detail}".strip()
            extra = {**(row.extra or {}), "notice": ev.kind.value}
            rec = ctx.store.set_instance_fields(
                row.id, row.version, reason=detail, now=ctx.clock(), extra=extra
            )
            if rec is not None:
                row = rec
    if inst.state in _ENDED:
        if state is S.TERMINATING:
            if inst.state is S.TERMINATED:
                return (
                    ctx.move(row, S.TERMINATED, f"{inst.provider_state or 'terminated'}")
                    is not None
                )
            return False
        cause = next((_ENDING_EVENTS[e.kind] for e in events if e.kind in _ENDING_EVENTS), None)
        detail = next(
            (f"{e.code} {e.detail}".strip() for e in events if e.kind in _ENDING_EVENTS), ""
        )
        cause = cause or EndCause.LOST
        reason = detail or f"the provider reports it {inst.provider_state or inst.state.value}"
        return ctx.move(row, S.TERMINATED, reason, cause, **_identity(row, inst)) is not None
    if inst.state is S.FAILED:
        if state is S.TERMINATING:
            return False
        reason = f"the provider reports it {inst.provider_state or 'failed'}"
        return (
            ctx.move(row, S.TERMINATING, reason, EndCause.PROVIDER_FAILED, **_identity(row, inst))
            is not None
        )
    if state is S.REQUESTED:
        rec = ctx.move(
            row,
            S.ALLOCATED,
            f"{inst.instance_id} is {inst.provider_state or inst.state.value}",
            **_identity(row, inst),
        )
        return rec is not None
    if inst.address and row.address != inst.address:
        rec = ctx.store.set_instance_fields(
            row.id, row.version, reason="address known", now=ctx.clock(), address=inst.address
        )
        return rec is not None
    return False


def _identity(row: InstanceRecord, inst: InstanceObservation) -> dict[str, Any]:
    """The provider's names for the instance, for a row that may not know them yet."""
    out: dict[str, Any] = {}
    if row.provider_instance_id != inst.instance_id:
        out["provider_instance_id"] = inst.instance_id
    if inst.address and row.address != inst.address:
        out["address"] = inst.address
    if inst.zone and not row.zone:
        out["zone"] = inst.zone
    return out


def _missing(ctx: InstanceContext, row: InstanceRecord, obs: Observation) -> bool:
    """The provider lists no instance for ``row``."""
    state = S(row.state)
    pending = row.request_id in obs.pending
    if state is S.REQUESTED:
        launched = ctx.launched.get(row.request_id)
        if pending or launched is None:
            return False
        waited = (ctx.clock() - launched).total_seconds()
        if waited < ctx.timeouts.launch_s:
            return False
        rec = ctx.move(
            row,
            S.FAILED,
            f"nothing seen {waited:.0f} s after launch",
            EndCause.LAUNCH_VANISHED,
            failure_kind=FailureKind.UNKNOWN.value,
        )
        return rec is not None
    if state is S.TERMINATING:
        if pending:
            return False
        return ctx.move(row, S.TERMINATED, "no longer listed by the provider") is not None
    if row.provider_instance_id is None:
        return False  # never seen yet (cannot happen past REQUESTED; be safe)
    reason = f"{row.provider_instance_id} is no longer listed by the provider"
    return ctx.move(row, S.TERMINATED, reason, EndCause.LOST) is not None
