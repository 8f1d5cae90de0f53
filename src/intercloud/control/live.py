"""The live loop's capacity side: asynchronous (instance-backed) providers wired into the
job reconciler.

``LiveCapacity`` owns, for the providers of ``config.yaml`` that bring up instances
(``providers.contract.AsyncProvider``: ``aws``, ``sim``):

- the **bridges** (``control.instance_pool.InstancePoolProvider``), one per provider,
  which the job reconciler drives like any job-level provider;
- the **instance reconcile step** (``control.instances``), run before the jobs' step, with
  its hooks: a launch refused for capacity or quota puts the offering in a cool-down
  (``store.block_offering``, growing per ``failover.cooldown_s``), and every provider
  call is recorded (``store.record_provider_call``; a success after a success, at most
  every ``OK_REFRESH``) so a provider whose calls all fail for ``failover.down_after_s``
  is marked down;
- the **agent server** (``control.agent_server``) that node agents on the instances
  enrol with, and the user-data that boots them (``agent.bootstrap``);
- the job context's ``CapacitySetup``, so placement runs the fleet scheduler over the
  whole snapshot with provisioning on (``control.jobs.pending``).

Bootstrap secrets are derived, not drawn: ``HMAC(store key, request id)``, with the key
kept in the store (setting ``agent.bootstrap_key``). A loop killed after a launch and
before its record launches the same request again (the provider adopts the instances
it already made), and the instances booted with the first user-data still enrol,
because the secret, and the hash kept in their rows, are the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from intercloud.agent.bootstrap import render_user_data, secret_hash
from intercloud.control.capacity import CapacitySetup
from intercloud.control.failover import blocks_offering
from intercloud.control.fleet_settings import FleetSettings, fleet_settings
from intercloud.control.instance_pool import InstancePoolProvider
from intercloud.control.instances.step import InstanceReconciler
from intercloud.providers.base import Capability, Provider
from intercloud.providers.contract import AsyncProvider, LaunchFailure, ProviderCallFailed
from intercloud.store import Store, utc_now
from intercloud.store.agent_repo import BOOTSTRAP_HASH_KEY
from intercloud.store.records import InstanceRecord

if TYPE_CHECKING:
    from intercloud.config import IntercloudConfig
    from intercloud.control.agent_server import AgentServer
    from intercloud.control.crashpoints import Crashpoint
    from intercloud.control.reconciler import Reconciler

__all__ = ["BOOTSTRAP_KEY_SETTING", "LiveCapacity", "agent_log_root"]

log = logging.getLogger("intercloud.control")

#: How often a provider answering every call has its success written again (its
#: ``last_ok_at`` in the store is at most this old while it answers)
OK_REFRESH = timedelta(seconds=10)

#: store setting holding the key bootstrap secrets are derived from (hex)
BOOTSTRAP_KEY_SETTING = "agent.bootstrap_key"


def agent_log_root(home: Path, store_id: str) -> Path:
    """Where the agent server writes node logs (``agent_server.agent_log_path``), keyed to
    the store like the local provider's files."""
    return Path(home) / "agent-logs" / store_id


class LiveCapacity:
    """The instance-backed providers of one daemon (module docstring).

    ``install``: the pip spec user-data installs when the image lacks intercloud (None:
    the image has it). Call ``attach`` once with the job reconciler, ``close`` at exit.
    """

    def __init__(
        self,
        store: Store,
        config: IntercloudConfig,
        home: Path,
        *,
        crashpoint: Crashpoint | None = None,
        install: str | None = "intercloud",
        python: str = "python3",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.home = Path(home)
        self.install = install
        self.python = python
        self.crashpoint = crashpoint
        #: from ``config`` at ``start`` (contracts may name the providers added)
        self.settings = FleetSettings()
        self.providers: dict[str, AsyncProvider] = {}
        self.bridges: dict[str, Provider] = {}
        self.server: AgentServer | None = None
        self._step_of: InstanceReconciler | None = None
        self.active_instances = 0
        #: whether each provider was down at its last call (to log changes once; the
        #: store's ``provider_health`` is the record)
        self._down: dict[str, bool] = {}
        #: provider -> when a success was last recorded, while it is healthy
        self._ok_at: dict[str, datetime] = {}

    def add(self, name: str, provider: AsyncProvider) -> Provider:
        """Take ``provider`` (enabled as ``name``); returns its bridge, the job-level
        provider the job reconciler drives (``registry.build_providers``'s ``wrap_async``)."""
        self.providers[name] = provider
        bridge = InstancePoolProvider(self.store, provider, clock=self.clock, notify=self._notify)
        self.bridges[name] = bridge
        return bridge

    def start(self) -> None:
        """Start the agent server (when a provider's instances run node agents) and build
        the instance step; after every ``add``, before ``attach``."""
        if self.server is None and any(
            getattr(p, "needs_agent", True) for p in self.providers.values()
        ):
            self.server = self._start_server()
        self.settings = fleet_settings(self.config, self.providers)
        kwargs = {"crashpoint": self.crashpoint} if self.crashpoint is not None else {}
        self._step_of = InstanceReconciler(
            self.store,
            self.providers,
            self.clock,
            user_data=self._user_data,
            on_failure=self._on_failure,
            on_provider_call=self._on_call,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def step(self) -> InstanceReconciler:
        if self._step_of is None:
            raise RuntimeError("LiveCapacity.start() was not called")
        return self._step_of

    def _notify(self, instance_id: int) -> None:
        if self.server is not None:
            self.server.notify(instance_id)

    # -- wiring --------------------------------------------------------------------------
    def setup(self) -> CapacitySetup:
        return CapacitySetup(
            instance_backed=frozenset(self.providers),
            spot_providers=frozenset(
                n for n, p in self.providers.items() if p.supports(Capability.SPOT)
            ),
            settings=self.settings,
            provider_max={
                name: limit
                for name in self.providers
                if (limit := self.config.pools.provider_max(name)) is not None
            },
        )

    def attach(self, reconciler: Reconciler) -> None:
        """Run the instance step before the jobs' step of ``reconciler``, and schedule
        its pending jobs over the whole snapshot (provisioning on)."""
        reconciler.ctx.capacity = self.setup()
        at = next((i for i, (name, _) in enumerate(reconciler.steps) if name == "jobs"), None)
        entry = ("instances", self._step)
        if at is None:
            reconciler.steps.append(entry)
        else:
            reconciler.steps.insert(at, entry)
        reconciler.closers.append(self.close)
        reconciler.activity.append(lambda: self.active_instances)

    def recover(self) -> bool:
        """Adopt what the providers still run under our tags (after a restart)."""
        return self.step.recover()

    def _step(self) -> bool:
        changed = self.step.step()
        self.active_instances = len(
            self.store.instances(
                states=["requested", "allocated", "running", "draining", "terminating"]
            )
        )
        return changed

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        for name, p in self.providers.items():
            try:
                p.close()
            except Exception as exc:  # closing must not stop the others
                log.warning("closing provider %s: %s", name, exc)

    # -- the agent channel ----------------------------------------------------------------
    def _start_server(self) -> AgentServer:
        from intercloud.control.agent_server import AgentServer

        host, _, port = self.config.agent.listen.rpartition(":")
        server = AgentServer(
            self.store,
            host.strip("[]") or "127.0.0.1",
            int(port),
            agent_log_root(self.home, self.store.store_id()),
            public_url=self.config.agent.public_url,
        )
        server.start()
        log.info("agent server on %s", server.url)
        return server

    def _bootstrap_key(self) -> bytes:
        key = self.store.get_setting(BOOTSTRAP_KEY_SETTING)
        if not isinstance(key, str):
            # set once; a concurrent first writer is harmless (single-writer loop)
            key = secrets.token_hex(32)
            self.store.set_setting(BOOTSTRAP_KEY_SETTING, key)
        return bytes.fromhex(key)

    def bootstrap_secret(self, request_id: str) -> str:
        """The launch request's bootstrap secret (derived: module docstring)."""
        mac = hmac.new(self._bootstrap_key(), request_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def _user_data(self, request_id: str, rows: Sequence[InstanceRecord]) -> bytes | None:
        """User-data for one launch request: the agent's boot script; the secret's hash
        recorded in every row of the request first, so the agents can enrol."""
        provider = self.providers.get(rows[0].provider) if rows else None
        if provider is None or not getattr(provider, "needs_agent", True) or self.server is None:
            return None
        secret = self.bootstrap_secret(request_id)
        digest = secret_hash(secret)
        for row in self.store.instances(request_id=request_id):
            extra = dict(row.extra or {})
            if extra.get(BOOTSTRAP_HASH_KEY) != digest:
                extra[BOOTSTRAP_HASH_KEY] = digest
                self.store.set_instance_fields(row.id, row.version, extra=extra)
        script = render_user_data(
            self.server.url, request_id, secret, python=self.python, install=self.install
        )
        return script.encode()

    # -- failover hooks -------------------------------------------------------------------
    def _on_failure(self, failure: LaunchFailure) -> None:
        if not blocks_offering(failure.kind):
            return
        rows = self.store.instances(request_id=failure.request_id)
        pricing = rows[0].pricing if rows else "on_demand"
        cool = self.settings.cooldown
        block = self.store.block_offering(
            failure.offering,
            pricing,
            failure.kind,
            failure.message,
            self.clock(),
            first_s=cool.first_s,
            max_s=cool.max_s,
            factor=cool.factor,
        )
        log.warning(
            "%s refused %s (%s): cooling down until %s",
            "/".join(x for x in failure.offering if x),
            failure.kind.value,
            failure.message,
            block.until.isoformat(timespec="seconds"),
        )

    def _on_call(self, name: str, error: Exception | None) -> None:
        kind = error.kind if isinstance(error, ProviderCallFailed) else None
        before = self._down.get(name, False)
        now = self.clock()
        if error is None:
            # a success after a success recorded less than OK_REFRESH_S ago changes
            # nothing but ``last_ok_at``: not written again every step (a write each
            # step also makes every row image read again)
            last = self._ok_at.get(name)
            if last is not None and timedelta(0) <= now - last < OK_REFRESH:
                return
        health = self.store.record_provider_call(
            name,
            ok=error is None,
            error=None if error is None else str(error),
            kind=kind,
            now=now,
            down_after_s=self.settings.down_after_s,
        )
        if error is None and health.first_error_at is None and not health.down:
            self._ok_at[name] = now
        else:
            self._ok_at.pop(name, None)
        if health.down and not before:
            log.warning("provider %s is down: %s", name, health.error)
        elif before and not health.down:
            log.info("provider %s answers again", name)
        self._down[name] = health.down
