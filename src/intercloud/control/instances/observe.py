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
from typing import Any

from intercloud.control.instances.context import InstanceContext
from intercloud.control.instances.transitions import EndCause
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


def apply(ctx: InstanceContext, provider: str, obs: Observation, *, full: bool = True) -> bool:
    """Apply ``obs`` of ``provider`` to its live rows; True if a row changed.

    ``full``: the observation lists every instance that exists (``observe``), so a row
    whose instance is missing is gone. ``adopt()`` results are applied with
    ``full=False``: only what they show counts.
    """
    seen = {(i.request_id, i.rank): i for i in obs.instances}
    ctx.observed.setdefault(provider, {}).update(seen)
    events: dict[str, list[InstanceEvent]] = defaultdict(list)
    for ev in obs.events:
        events[ev.instance_id].append(ev)
    failures = {f.request_id: f for f in obs.failures}
    changed = False
    rows = ctx.store.instances(
        states=[S.REQUESTED, S.ALLOCATED, S.RUNNING, S.DRAINING, S.TERMINATING], provider=provider
    )
    # a row and an observation both as they were at the last full observe, which found
    # nothing to do about them: nothing to do now either (``_seen`` is a function of
    # those, and the store hands back an unchanged row as the same object)
    last = ctx.judged.get(provider, {}) if full else {}
    judged: dict[int, tuple[InstanceRecord, InstanceObservation]] = {}
    no_events: list[InstanceEvent] = []
    for row in rows:
        inst = seen.get((row.request_id, row.slot))
        if inst is not None:
            evs = events.get(inst.instance_id, no_events) if events else no_events
            if not evs:
                hit = last.get(row.id)
                if hit is not None and hit[0] is row and (hit[1] is inst or hit[1] == inst):
                    judged[row.id] = hit
                    continue
            moved = _seen(ctx, row, inst, evs)
            changed |= moved
            if not moved and not evs:
                judged[row.id] = (row, inst)
            continue
        failure = failures.get(row.request_id) if failures else None
        if failure is not None and row.state == S.REQUESTED:
            kind = failure.kind
            reason = f"{FAILURE_TEXT[kind]}: {failure.message}"
            if failure.code:
                reason += f" ({failure.code})"
            rec = ctx.move(row, S.FAILED, reason, EndCause.LAUNCH_FAILED, failure_kind=kind.value)
            changed |= rec is not None
        elif full:
            changed |= _missing(ctx, row, obs)
    if full:
        ctx.judged[provider] = judged
    for failure in obs.failures:
        ctx.on_failure(failure)
    return changed


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
