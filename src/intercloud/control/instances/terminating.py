"""TERMINATING: ask the provider to end the instance (outside any store transaction).

Asked once per process and again every ``timeouts.terminate_retry_s`` while the row is
still TERMINATING (``terminate`` is idempotent at the provider). A row without a
provider id (drained before its instance was seen) is ended by its request id, which
also cancels a launch still in flight. The row becomes TERMINATED when an observation
shows the instance gone (``observe``).
"""

from __future__ import annotations

from collections import defaultdict

from intercloud.control.instances.context import InstanceContext, log
from intercloud.providers.base import ProviderError
from intercloud.providers.contract import InstanceState
from intercloud.store.records import InstanceRecord

S = InstanceState


def handle(ctx: InstanceContext) -> bool:
    """Ask for the end of every TERMINATING row that is due; False (no row changes)."""
    now = ctx.clock()
    due: dict[str, list[InstanceRecord]] = defaultdict(list)
    rows = ctx.rows(S.TERMINATING)
    ending = {r.id for r in rows}
    for iid in [k for k in ctx.terminate_asked if k not in ending]:
        del ctx.terminate_asked[iid]  # gone: keep the memory bounded
    for row in rows:
        asked = ctx.terminate_asked.get(row.id)
        if asked is None or (now - asked).total_seconds() >= ctx.timeouts.terminate_retry_s:
            due[row.provider].append(row)
    for name, rows in due.items():
        provider = ctx.providers[name]
        ids = [r.provider_instance_id for r in rows if r.provider_instance_id]
        requests = sorted({r.request_id for r in rows if not r.provider_instance_id})
        try:
            if ids:
                provider.terminate(instance_ids=ids)
            for request_id in requests:
                provider.terminate(request_id=request_id)
        except ProviderError as exc:
            ctx.on_provider_call(name, exc)
            log.warning("terminate on %s: %s (retried next step)", name, exc)
            continue
        for row in rows:
            ctx.terminate_asked[row.id] = now
        ctx.crashpoint("instance_terminate")
    return False  # asking changes no row; observe moves them when the instances are gone
