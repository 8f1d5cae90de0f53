"""``InstanceReconciler``: the instance reconcile step beside the jobs' (issue 10).

One ``step()``: observe every provider (passive transitions, ``observe``), then run the
handler of each state (active ones: launch, become usable, drain, terminate), and every
``sweep_every`` steps terminate tagged instances whose request no live row owns. Provider
calls happen outside store transactions; each row change is a guarded compare-and-set
with an event. A loop killed at any instant converges after ``recover()``: it re-attaches
to what the providers still run (``adopt``) and relaunches nothing that exists, because
launches are idempotent by request id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from intercloud.control.crashpoints import Crashpoint, no_crash
from intercloud.control.instances import (
    allocated,
    draining,
    observe,
    requested,
    running,
    terminating,
)
from intercloud.control.instances.context import (
    InstanceContext,
    InstanceTimeouts,
    OnFailure,
    OnProviderCall,
    UserData,
    ignore_call,
    ignore_failure,
    log,
    no_user_data,
)
from intercloud.providers.base import ProviderError
from intercloud.providers.contract import AsyncProvider, Observation
from intercloud.store import Store, utc_now

#: The names this step passes to its crashpoint.
INSTANCE_PHASES: tuple[str, ...] = ("instance_launched", "instance_terminate", "instance_swept")

#: The handlers, in the order a step runs them (an instance may move through several).
HANDLERS = (
    requested.handle,
    allocated.handle,
    running.handle,
    draining.handle,
    terminating.handle,
)


class InstanceReconciler:
    """Drives instance rows of ``providers`` towards what they should be.

    ``user_data(request_id, rows)`` gives each launch its boot script (the node agent's);
    ``on_failure(failure)`` hears every launch failure (cool-downs);
    ``on_provider_call(name, error_or_None)`` hears how each observe went (provider
    health). ``clock`` is the store's time (timezone-aware).
    """

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, AsyncProvider],
        clock: Callable[[], datetime] = utc_now,
        crashpoint: Crashpoint = no_crash,
        *,
        timeouts: InstanceTimeouts | None = None,
        user_data: UserData = no_user_data,
        on_failure: OnFailure = ignore_failure,
        on_provider_call: OnProviderCall = ignore_call,
        sweep_every: int = 30,
    ) -> None:
        self.ctx = InstanceContext(
            store=store,
            providers=dict(providers),
            clock=clock,
            crashpoint=crashpoint,
            timeouts=timeouts or InstanceTimeouts(),
            user_data=user_data,
            on_failure=on_failure,
            on_provider_call=on_provider_call,
        )
        self.sweep_every = sweep_every
        self.steps = 0

    def recover(self) -> bool:
        """After a (re)start: adopt what each provider still runs under our tags, so
        rows whose launch was not recorded find their instances; True if a row changed.
        Requests found this way count as launched (they are not launched again)."""
        changed = False
        for name, provider in self.ctx.providers.items():
            try:
                found = provider.adopt()
            except ProviderError as exc:
                self.ctx.on_provider_call(name, exc)
                log.warning("adopt on %s: %s (the next steps observe instead)", name, exc)
                continue
            self.ctx.on_provider_call(name, None)
            now = self.ctx.clock()
            for inst in found:
                self.ctx.launched.setdefault(inst.request_id, now)
            changed |= observe.apply(
                self.ctx, name, Observation(instances=tuple(found)), full=False
            )
        return changed

    def step(self) -> bool:
        """One pass; True if a row changed. Provider failures are logged, reported to
        ``on_provider_call`` and retried next step; store failures propagate."""
        ctx = self.ctx
        ctx.observed.clear()
        changed = False
        for name, provider in ctx.providers.items():
            try:
                obs = provider.observe()
            except ProviderError as exc:
                ctx.on_provider_call(name, exc)
                log.warning("observe %s: %s (retried next step)", name, exc)
                continue
            ctx.on_provider_call(name, None)
            changed |= observe.apply(ctx, name, obs)
        for handler in HANDLERS:
            changed |= handler(ctx)
        self.steps += 1
        if self.sweep_every and self.steps % self.sweep_every == 0:
            self.sweep()
        return changed

    def sweep(self) -> dict[str, list[str]]:
        """Terminate tagged instances of each provider whose request no live row owns
        (orphans of a crash or of a failed record); the ids terminated, by provider."""
        out: dict[str, list[str]] = {}
        for name, provider in self.ctx.providers.items():
            owned = self.ctx.store.owned_request_ids(name)
            try:
                ended = provider.sweep(owned)
            except ProviderError as exc:
                self.ctx.on_provider_call(name, exc)
                log.warning("sweep %s: %s", name, exc)
                continue
            if ended:
                out[name] = ended
                self.ctx.store.add_event(
                    None,
                    "instance_sweep",
                    reason=f"terminated {len(ended)} orphaned instance(s) on {name}",
                    data={"provider": name, "instances": ended},
                    now=self.ctx.clock(),
                )
                self.ctx.crashpoint("instance_swept")
        return out
