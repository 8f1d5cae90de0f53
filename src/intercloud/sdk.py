"""The Python API a user scripts against; the CLI is a thin layer over it.

```python
from intercloud.sdk import Client
with Client() as ic:                            # $INTERCLOUD_HOME, embedded SQLite + local
    sub = ic.submit("examples/train-local-ddp.yaml")
    print(sub.plan.choice)                      # where it will run
    final = ic.wait(sub.job_id)                 # -> status dict; final["state"] == "SUCCEEDED"
    print("".join(ic.logs(sub.job_id, node=0)))
```

Contract: ``submit`` validates the spec against the catalog, checks that an enabled
provider can run it (else ``NotRunnable`` naming the cheapest provider that could), and
returns only after the submission is committed to the store; it then makes sure the
embedded daemon (the reconcile loop) is running. Every method raises a ``ValueError``
subclass (``SpecError``, ``NotRunnable``, ``InvalidRequest``) or ``KeyError``
(``UnknownWorkload``) for bad input, ``StoreError`` for an unusable database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intercloud.control.states import JobState
from intercloud.model import Workload
from intercloud.store import (
    Store,
    WorkloadRecord,
    database_url,
    intercloud_home,
    open_store,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the planner pulls in numpy: imported only where it is used
    from intercloud.config import IntercloudConfig
    from intercloud.model import Offering
    from intercloud.providers.base import OfferingKey, Provider
    from intercloud.providers.contract import AsyncProvider
    from intercloud.providers.registry import ProviderContext
    from intercloud.scheduler.planner import PlanResult


class NotRunnable(ValueError):
    """No enabled provider can ever run the workload (one line, names who could). The CLI
    exits 1 for it ("nothing feasible"), as ``plan`` does, rather than 2 (bad input)."""


#: ``top`` for planning on the enabled (local) offerings: every placement, so one that
#: fits the finite sites is found even when cheaper ones never fit.
_ALL_PLACEMENTS = 1000
#: Most plans one ``_Planning`` keeps (then it forgets them all and starts again).
_MAX_PLANS = 4096


@dataclass(frozen=True)
class Submission:
    job_id: int
    name: str
    plan: PlanResult
    ignored_fields: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class PreparedSubmission:
    """A submission checked and planned, not stored yet: ``store_args`` are
    ``Store.submit``'s keyword arguments; ``submission(job_id)`` the answer once stored."""

    store_args: dict[str, Any]
    name: str
    plan: PlanResult
    ignored_fields: tuple[str, ...]
    notes: tuple[str, ...]

    def submission(self, job_id: int) -> Submission:
        return Submission(job_id, self.name, self.plan, self.ignored_fields, self.notes)


@dataclass(frozen=True)
class _Planning:
    """What submissions plan against: the catalog, the enabled providers' offerings, a
    planner over them and their finite fleet (built once, reused while fresh)."""

    catalog: Any
    offerings: list[Offering]
    can_sync: bool
    planner: Any
    #: the offerings of known, finite capacity (``_finite``) and their fleet
    finite: list[Offering]
    fleet: Any
    built_at: float
    #: plans by ``plan_key``: the same resources plan the same against these offerings
    #: (rebuilt with them, so never staler than they are)
    plans: dict[Hashable, PlanResult] = dataclass_field(default_factory=dict)

    def plan(self, workload: Workload) -> PlanResult:
        """``planner.plan(workload, top=_ALL_PLACEMENTS)``, kept by ``plan_key``."""
        from intercloud.scheduler.planner import plan_key

        key = plan_key(workload)
        found = self.plans.get(key) if key is not None else None
        if found is None:
            found = self.planner.plan(workload, top=_ALL_PLACEMENTS)
            if key is not None:
                if len(self.plans) >= _MAX_PLANS:
                    self.plans.clear()
                self.plans[key] = found
        return found if found.workload == workload.name else replace(found, workload=workload.name)


#: The placement fields every job's summary shows.
_WHERE_KEYS = (
    "provider",
    "region",
    "zone",
    "instance_type",
    "nodes",
    "accelerator",
    "accelerator_count",
    "pricing",
    "hourly_usd",
)


def _offerings_of(providers: Mapping[str, Provider]) -> list[Offering]:
    """What the enabled providers sell; one whose ``offerings()`` fails (an unreachable
    cloud) is logged and sells nothing for this submission."""
    out: list[Offering] = []
    for name, provider in providers.items():
        try:
            out.extend(provider.offerings())
        except Exception as exc:
            log.warning("provider %s: no offerings (%s)", name, " ".join(str(exc).split()))
    return out


def _finite(providers: Mapping[str, Provider], offerings: Sequence[Offering]) -> list[Offering]:
    """The ``offerings`` of known, finite capacity: those their provider reports free
    capacity for (a local site, a cluster's CPU slices). The others (a cloud, a Slurm
    partition's GPUs, where the provider's own queue decides) are unbounded here, as the
    fleet decider sizes them."""
    from intercloud.control.decide import offering_key

    known: set[OfferingKey] = set()
    for name, provider in providers.items():
        try:
            known |= set(provider.free_capacity() or {})
        except Exception as exc:
            log.warning("provider %s: no free capacity (%s)", name, " ".join(str(exc).split()))
    return [o for o in offerings if offering_key(o) in known]


def _read_from(paths: Sequence[Path], offset: int) -> bytes:
    """The bytes of ``paths`` read one after another, from ``offset`` of the whole."""
    out = bytearray()
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if offset >= size:
            offset -= size
            continue
        with path.open("rb") as f:
            f.seek(offset)
            out += f.read()
        offset = 0
    return bytes(out)


def _instance(r: Any, now: datetime) -> dict[str, Any]:
    """One instance row as ``fleet`` shows it."""
    return {
        "id": r.id,
        "provider": r.provider,
        "region": r.region,
        "zone": r.zone,
        "instance_type": r.instance_type,
        "pricing": r.pricing,
        "state": r.state,
        "provider_instance_id": r.provider_instance_id,
        "job": r.workload_id,
        "rank": r.rank,
        "usd_per_hour": r.usd_per_hour,
        "age_s": round((now - r.created_at).total_seconds(), 1),
        "reason": r.reason,
    }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="seconds")


def _owner(names_tenant: bool, named: str, caller: str, source: Path | str) -> str:
    """The tenant a submission by ``caller`` belongs to: ``caller``, when the spec names
    no tenant or names ``caller``; a spec naming another tenant is a ``SpecError``
    (``names_tenant``: the spec has a ``tenant`` key, even one saying ``default``)."""
    from intercloud.specs import SpecError

    explicit = named != "default" or names_tenant
    if explicit and named != caller:
        raise SpecError(
            "tenant", f"names tenant {named!r}, but this submission is {caller!r}'s", str(source)
        )
    return caller


def _money(x: float) -> str:
    return f"{x:,.2f}" if x >= 1 else f"{x:.4f}"


def _describe(data: dict[str, Any] | None) -> str | None:
    """A node event's data as words: ``attempt 1 rank 0 pid 4242 exit 17``."""
    if not data:
        return None
    keys = ("attempt", "rank", "host", "pid", "exit_code")
    words = [f"{k.replace('_code', '')} {data[k]}" for k in keys if data.get(k) is not None]
    return " ".join(words) or None


class Client:
    """Embedded client: the store at ``db_url`` (default: ``$INTERCLOUD_DB_URL`` or
    ``$INTERCLOUD_HOME/state.db``) and the providers enabled on this machine."""

    def __init__(
        self,
        home: Path | None = None,
        db_url: str | None = None,
        *,
        autostart: bool = True,
        planning_ttl_s: float = 0.0,
    ) -> None:
        """``planning_ttl_s`` > 0 (a long-lived process: the API server): the catalog,
        configuration, providers and their offerings are built once and reused for that
        many seconds by ``submit``, instead of for every submission."""
        self.home = (home or intercloud_home()).expanduser()
        self.db_url = db_url or database_url(self.home)
        self.autostart = autostart
        self.planning_ttl_s = planning_ttl_s
        self._store: Store | None = None
        self._planning: _Planning | None = None

    # -- plumbing ------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.db_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _config(self) -> IntercloudConfig:
        """The configuration of this home (``ConfigError``, one line, when bad)."""
        import os

        from intercloud.config import load_config

        return load_config(os.environ, self.home)

    def _context(self) -> ProviderContext:
        import os

        from intercloud.providers.registry import ProviderContext

        store = self.store
        return ProviderContext(self.home, dict(os.environ), store.store_id(), store.name)

    def providers(
        self, wrap_async: Callable[[str, AsyncProvider], Provider] | None = None
    ) -> dict[str, Provider]:
        """The enabled providers of the configuration as the daemon of this store builds
        them (``providers.registry.build_providers``, the same seam: asynchronous ones
        only through ``wrap_async``); one that cannot be built is logged and left out."""
        from intercloud.providers.registry import build_providers

        return build_providers(self._config(), self._context(), wrap_async=wrap_async)

    def _local_provider(self) -> Any:
        """The local provider as the daemon of this store sees it (files keyed to the
        store's id, so a recreated database never shows an old job's logs), configured
        by ``providers.local`` when the configuration has it."""
        from intercloud.providers.local_plugin import PLUGIN, LocalSettings

        entry = self._config().providers.get(PLUGIN.name)
        found = entry.settings if entry is not None else None
        settings = found if isinstance(found, LocalSettings) else LocalSettings()
        return PLUGIN.create(settings, self._context())

    # -- submit ----------------------------------------------------------------------------
    def submit(
        self,
        spec: Path | str,
        *,
        text: str | None = None,
        env: Mapping[str, str] | None = None,
        tenant: str | None = None,
        host_files: bool = True,
    ) -> Submission:
        """Validate, check runnability, store durably, make sure the daemon runs.

        ``env``: variables for the job from its submitter; they override the spec's
        ``envs`` and are stored with the job (``status`` shows their names only).
        Relative ``workdir``/``file_mounts`` sources resolve against the spec file's
        folder (``text`` given: the current directory); a source the enabled provider
        cannot sync (a storage URI, a missing path, a device) is a ``SpecError`` naming
        the field, and nothing is stored.

        ``tenant`` (the API server passes its caller's): the job is that tenant's; a spec
        naming another tenant is refused (``SpecError`` on ``tenant``, nothing stored).
        ``host_files`` False (the API server's submissions): a ``workdir`` or
        ``file_mounts`` is refused, since its paths would be read on this host, not the
        submitter's.
        """
        prepared = self.prepare(spec, text=text, env=env, tenant=tenant, host_files=host_files)
        if self.autostart:  # a daemon serving another database would leave it pending
            self.check_daemon()
        job_id = self.store.submit(**prepared.store_args)
        if self.autostart:
            from intercloud.control.daemon import DaemonError

            try:
                self.ensure_daemon()
            except DaemonError as exc:  # stored all the same: say so, with its id
                raise DaemonError(f"job {job_id} is stored, but {exc}") from None
        return prepared.submission(job_id)

    def planning(self) -> _Planning:
        """The catalog and the enabled providers' offerings submissions plan against:
        built now, or the one built less than ``planning_ttl_s`` ago."""
        import time

        from intercloud.catalog import Catalog
        from intercloud.catalog.loader import load_catalog
        from intercloud.control.never_fits import finite_fleet
        from intercloud.providers.base import Capability
        from intercloud.scheduler.planner import Planner

        now = time.monotonic()
        cached = self._planning
        if cached is not None and now - cached.built_at < self.planning_ttl_s:
            return cached
        async_ones: list[AsyncProvider] = []

        def offered(name: str, p: AsyncProvider) -> Provider:
            # Submission plans on what it sells; the daemon drives its instances.
            from intercloud.control.instance_pool import InstancePoolProvider

            async_ones.append(p)
            return InstancePoolProvider(self.store, p)

        try:
            providers = self.providers(wrap_async=offered)
            offerings = _offerings_of(providers)
            finite = _finite(providers, offerings)
        finally:
            for p in async_ones:
                p.close()
        built = _Planning(
            catalog=load_catalog(),
            offerings=offerings,
            can_sync=any(Capability.FILE_SYNC in p.capabilities for p in providers.values()),
            planner=Planner(Catalog.from_offerings(offerings)),
            finite=finite,
            fleet=finite_fleet(finite),
            built_at=now,
        )
        if self.planning_ttl_s > 0:
            self._planning = built
        return built

    def prepare(
        self,
        spec: Path | str,
        *,
        text: str | None = None,
        env: Mapping[str, str] | None = None,
        tenant: str | None = None,
        host_files: bool = True,
    ) -> PreparedSubmission:
        """Everything ``submit`` does before storing (its arguments and errors): the
        spec read and validated, the tenant checked, a placement that fits planned."""
        from intercloud.catalog import Catalog
        from intercloud.control.decide import demand_of
        from intercloud.control.never_fits import split_fitting
        from intercloud.scheduler.hints import exactness_hint
        from intercloud.scheduler.planner import Planner
        from intercloud.specs import SpecError, load_spec_text, read_spec_text
        from intercloud.submission import check_env, resolve_files

        submitted_env = check_env(env or {})
        planning = self.planning()
        catalog = planning.catalog
        # Read once (bounded, regular files only): what is validated is what is stored.
        spec_text = read_spec_text(Path(spec)) if text is None else text
        loaded = load_spec_text(spec_text, catalog, source=str(spec))
        # Relative sources: a native spec's are relative to its file's folder; a SkyPilot
        # task's to the current directory, as `sky launch` resolves them.
        if text is None and loaded.source_format != "skypilot":
            spec_dir = Path(spec).expanduser().absolute().parent
        else:
            spec_dir = Path.cwd()
        workload = loaded.workload
        if tenant is not None:
            owner = _owner(loaded.names_tenant, workload.tenant, tenant, spec)
            workload = replace(workload, tenant=owner)
        if not (workload.run or "").strip():
            # plan and validate accept a spec without commands; running one needs them.
            raise SpecError("run", "required to submit a job: the commands it runs", str(spec))
        if not host_files and (workload.workdir is not None or workload.file_mounts):
            field = "workdir" if workload.workdir is not None else "file_mounts"
            raise SpecError(
                field,
                "local files cannot be sent through the API server (their paths would be "
                "read on the server's host); bake them into the image or fetch them in setup",
                str(spec),
            )
        offerings = planning.offerings
        files = resolve_files(
            workload, spec_dir, can_sync=planning.can_sync, source=str(spec), state_dir=self.home
        )
        plan = planning.plan(workload)
        # The planner sees unbounded offerings; the local sites are finite.
        fits, too_big = split_fitting(
            workload,
            [c for c in (plan.choice, *plan.alternatives) if c is not None],
            planning.finite,
            fleet=planning.fleet,
        )
        if not fits:
            enabled = Planner(Catalog.from_offerings(offerings))
            # The catalog's `local` row is this machine: never a provider "elsewhere",
            # even when INTERCLOUD_LOCAL_SITES replaces it with named sites.
            others = frozenset(catalog.providers) - {o.provider for o in offerings} - {"local"}
            raise NotRunnable(
                self._not_runnable(workload, plan, Planner(catalog), too_big, others)
                + exactness_hint(workload, enabled)
            )
        if workload.kind == "service":  # the loop would only reject it, after storing it
            raise NotRunnable(
                f"'{workload.name}' is a service: the control loop runs training and batch "
                "jobs only (`intercloud plan` places services)"
            )
        choice = fits[0]
        plan = replace(plan, choice=choice, alternatives=tuple(fits[1:]))
        restart = getattr(workload, "restart", None)
        store_args: dict[str, Any] = {
            "kind": workload.kind,
            "name": workload.name,
            "spec_text": spec_text,
            "spec_format": loaded.source_format,
            "tenant": workload.tenant,
            "priority": workload.priority,
            "max_restarts": restart.max_restarts if restart else 0,
            "submission": {
                "env": submitted_env,
                "spec_dir": str(spec_dir),
                "files": files.to_json(),
                "plan": choice.to_dict(),
                "nodes": demand_of(workload, choice).ranks,
            },
        }
        return PreparedSubmission(
            store_args, workload.name, plan, loaded.ignored_fields, loaded.notes
        )

    @staticmethod
    def _not_runnable(
        workload: Workload,
        plan: PlanResult,
        everywhere: Any,
        too_big: Sequence[str] = (),
        others: frozenset[str] | None = None,
    ) -> str:
        """Why nothing enabled can run ``workload``, and the cheapest of the ``others``
        (providers not enabled here) that could."""
        reasons = [f"{e.provider}: {e.reason}" for e in plan.excluded]
        reasons += [f"{r}: the gang can never run there" for r in too_big]
        why = "; ".join(reasons) or "no offering"
        elsewhere = everywhere.plan(workload, others).choice if others != frozenset() else None
        if elsewhere is None:
            return f"no provider can run '{workload.name}' ({why})"
        p = elsewhere
        return (
            f"no enabled provider can run '{workload.name}' ({why}); the cheapest that could "
            f"is {p.provider} {p.instance_type} x{p.nodes} in {p.region} at "
            f"{_money(p.hourly_usd)} USD/h"
        )

    # -- read ------------------------------------------------------------------------------
    def status(self, job_id: int, tenant: str | None = None) -> dict[str, Any]:
        """The job's summary (``jobs``), its full placement record, the names (never the
        values) of its submitter's variables, attempts, nodes and whole event history.
        ``tenant``: only that tenant's job (another's is ``UnknownWorkload``)."""
        st = self.store
        w = st.get(job_id, tenant)
        summary = self._summary(w)
        placement = w.placement or (w.submission or {}).get("plan")
        submitted_env = (w.submission or {}).get("env") or {}
        return {
            **summary,
            "placement": {**placement, "planned": summary["planned"]} if placement else None,
            "env_names": sorted(submitted_env),
            "attempts": [
                {
                    "attempt": a.attempt,
                    "state": a.state,
                    "reason": a.reason,
                    "started_at": a.started_at.isoformat(),
                    "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                }
                for a in st.attempts(job_id)
            ],
            "node_runs": [
                {
                    "attempt": n.attempt,
                    "rank": n.rank,
                    "state": n.state.value,
                    "pid": n.pid,
                    "exit_code": n.exit_code,
                }
                for n in st.nodes(job_id)
            ],
            "events": [
                {
                    "time": e.time.isoformat(),
                    "kind": e.kind,
                    "from": e.from_state,
                    "to": e.to_state,
                    "reason": e.reason or _describe(e.data),
                    "data": e.data,
                }
                for e in st.events(job_id)
            ],
        }

    @staticmethod
    def _summary(w: WorkloadRecord) -> dict[str, Any]:
        """One job as ``jobs`` lists it. ``provider``/``region`` are where it was placed
        (None while queued); ``placement`` is its placement (provider, region, zone,
        instance type, instance count, accelerators, pricing kind, USD per hour for all
        nodes), with ``planned: true`` while the job holds no capacity (the planner's
        choice at submission, or the loop's latest choice while it waits); ``nodes`` is
        how many nodes (processes) the job runs."""
        placement = w.placement or {}
        where = placement or (w.submission or {}).get("plan") or {}
        # PENDING holds no capacity: a placement kept from a try that found none is a plan.
        planned = bool(where) and (not placement or w.state is JobState.PENDING)
        return {
            "id": w.id,
            "name": w.name,
            "tenant": w.tenant,
            "kind": w.kind.value,
            "state": w.state.value,
            "desired": w.desired.value,
            "priority": w.priority,
            "provider": placement.get("provider"),
            "region": placement.get("region"),
            "attempt": w.attempt,
            "restarts": w.restarts,
            "exit_code": w.exit_code,
            "reason": w.reason,
            "created_at": w.created_at.isoformat(),
            "finished_at": w.finished_at.isoformat() if w.finished_at else None,
            "zone": where.get("zone"),
            "instance_type": where.get("instance_type"),
            "nodes": Client._ranks(w),
            "pricing": where.get("pricing"),
            "hourly_usd": where.get("hourly_usd"),
            "planned": planned,
            "placement": {k: where.get(k) for k in _WHERE_KEYS} | {"planned": planned}
            if where
            else None,
        }

    def jobs(
        self, states: list[JobState] | None = None, tenant: str | None = None
    ) -> list[dict[str, Any]]:
        """Every job's summary (only ``tenant``'s when given), by id."""
        rows = self.store.list_workloads(states=states, tenant=tenant)
        return [self._summary(w) for w in rows]

    def queue(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Jobs not yet finished, each with its state and the reason it waits (if any)."""
        live = [s for s in JobState if not s.terminal]
        return self.jobs(live, tenant)

    def fleet(self, include_ended: bool = False) -> dict[str, Any]:
        """The capacity intercloud holds: its instances (live ones; every one with
        ``include_ended``), the offerings cooling down after a refusal, and how each
        provider's calls have gone (``down_since`` set while it is down)."""
        live = ("requested", "allocated", "running", "draining", "terminating")
        rows = self.store.instances(states=None if include_ended else list(live))
        now = datetime.now(UTC)
        return {
            "instances": [_instance(r, now) for r in rows],
            "cooling": [
                {
                    "offering": "/".join(x for x in (b.provider, b.region, b.zone) if x)
                    + f" {b.instance_type}",
                    "pricing": b.pricing,
                    "kind": b.kind,
                    "reason": b.reason,
                    "failures": b.failures,
                    "until": _iso(b.until),
                }
                for b in self.store.active_blocks(now)
            ],
            "providers": [
                {
                    "name": h.name,
                    "down_since": _iso(h.down_since),
                    "last_ok_at": _iso(h.last_ok_at),
                    "last_error_at": _iso(h.last_error_at),
                    "error": h.error,
                }
                for h in self.store.provider_health()
            ],
        }

    def failover(self) -> dict[str, list[dict[str, Any]]]:
        """What failover holds now: ``cooling``, the offerings in a cool-down after a
        capacity or quota refusal (where, pricing, kind, refusals in a row, until,
        reason), and ``down``, the providers whose calls all fail (since, error). Each
        entry's ``text`` is the sentence ``status`` and ``queue`` print."""
        from intercloud.control.failover import cooling_reason, provider_down_reason

        cooling = []
        for b in self.store.active_blocks():
            where = "/".join(x for x in (b.provider, b.region, b.zone) if x)
            where = f"{where} {b.instance_type}".strip()
            cooling.append(
                {
                    "provider": b.provider,
                    "region": b.region,
                    "zone": b.zone,
                    "instance_type": b.instance_type,
                    "pricing": b.pricing,
                    "kind": b.kind,
                    "failures": b.failures,
                    "until": b.until.isoformat(),
                    "reason": b.reason,
                    "text": cooling_reason(f"{where} ({b.pricing})", b.until),
                }
            )
        down = [
            {
                "provider": h.name,
                "since": h.down_since.isoformat(),
                "error": h.error,
                "text": f"{provider_down_reason(h.name, h.down_since)}: {h.error or '?'}",
            }
            for h in self.store.provider_health()
            if h.down_since is not None
        ]
        return {"cooling": cooling, "down": down}

    # -- change ----------------------------------------------------------------------------
    def cancel(self, job_id: int, tenant: str | None = None) -> dict[str, Any]:
        """Ask for cancellation (the loop kills every node); InvalidRequest if finished."""
        w = self.store.request_cancel(job_id, tenant=tenant)
        if self.autostart:
            self.ensure_daemon()
        return self._summary(w)

    def wait(
        self, job_id: int, timeout: float | None = None, poll_s: float = 0.2
    ) -> dict[str, Any]:
        """Block until the job is terminal (or ``timeout`` seconds); returns its summary."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            w = self.store.get(job_id)
            if w.state.terminal or (deadline is not None and time.monotonic() > deadline):
                return self._summary(w)
            if self.autostart and not w.state.terminal:
                self.ensure_daemon()
            time.sleep(poll_s)

    # -- logs ------------------------------------------------------------------------------
    def log_path(self, job_id: int, node: int) -> Path:
        """The local provider's log of the node (one file across attempts)."""
        return Path(self._local_provider().log_path(str(job_id), node))

    def log_files(self, job_id: int, node: int) -> list[Path]:
        """Every file of the node's log, oldest first (by last write): the attempts an
        instance's node agent ran (``control.agent_logs``) and the local provider's one
        file, as a job that moved between them (failover) has both."""
        from intercloud.control.agent_logs import agent_log_files
        from intercloud.control.live import agent_log_root

        agent = agent_log_files(agent_log_root(self.home, self.store.store_id()), str(job_id), node)
        local = self.log_path(job_id, node)
        if not agent:
            return [local]
        files = [*agent, local] if local.exists() else agent
        return sorted(files, key=lambda f: f.stat().st_mtime if f.exists() else 0.0)

    def logs(
        self,
        job_id: int,
        node: int | None = None,
        follow: bool = False,
        on_hold: Callable[[str], None] | None = None,
        tenant: str | None = None,
    ) -> Iterator[str]:
        """Log lines of one node (or every node, prefixed ``[node N]``); with ``follow``,
        keep yielding new lines until the job is terminal and its logs are drained.
        ``on_hold`` is called with the reason each time a pending job is held for a new
        one (a tenant's quota, capacity), so a follower knows why nothing comes.
        ``tenant``: only that tenant's job (checked once, before the first line)."""
        w = self.store.get(job_id, tenant)
        ranks = [node] if node is not None else list(range(self._ranks(w)))
        if node is not None and node not in range(self._ranks(w)):
            from intercloud.store import InvalidRequest

            raise InvalidRequest(f"--node: job {job_id} has nodes 0..{self._ranks(w) - 1}")
        offsets = dict.fromkeys(ranks, 0)
        prefix = node is None and len(ranks) > 1
        held = ""
        while True:
            w = self.store.get(job_id)
            done = w.state.terminal
            if on_hold is not None and w.state is JobState.PENDING and w.reason:
                if w.reason != held and w.reason != "submitted":
                    on_hold(w.reason)
                held = w.reason
            got = False
            for r in ranks:
                chunk = _read_from(self.log_files(job_id, r), offsets[r])
                # only whole lines while following, so interleaved nodes stay readable
                cut = chunk.rfind(b"\n") + 1 if follow and not done else len(chunk)
                if cut:
                    offsets[r] += cut
                    got = True
                    for line in chunk[:cut].decode(errors="replace").splitlines(keepends=True):
                        yield f"[node {r}] {line}" if prefix else line
            if not follow or (done and not got):
                return
            if not got:
                if self.autostart:
                    self.ensure_daemon()
                time.sleep(0.1)

    @staticmethod
    def _ranks(w: WorkloadRecord) -> int:
        """How many nodes (processes, one log each) the job runs: the placed gang's
        ``ranks``, else the count planned at submission, else read from its spec."""
        for value in ((w.placement or {}).get("ranks"), (w.submission or {}).get("nodes")):
            if isinstance(value, int) and value > 0:
                return value
        from intercloud.model import BatchJob
        from intercloud.specs import SpecError, load_spec_text

        try:
            workload = load_spec_text(w.spec_text).workload
        except SpecError:
            return 1
        if isinstance(workload, BatchJob):
            return max(workload.count, 1)
        return max(workload.resources.num_nodes, 1)

    # -- daemon ----------------------------------------------------------------------------
    def ensure_daemon(self) -> int:
        from intercloud.control.daemon import ensure_daemon

        return ensure_daemon(self.home, self.db_url, store_id=self.store.store_id())

    def check_daemon(self) -> int | None:
        """The running daemon's pid (None if none runs); ``DaemonError`` if it serves
        another database than this client's."""
        from intercloud.control.daemon import check_daemon_database

        return check_daemon_database(self.home, self.db_url, store_id=self.store.store_id())

    def stop_daemon(self, timeout: float = 10.0) -> bool:
        from intercloud.control.daemon import stop_daemon

        return stop_daemon(self.home, timeout)

    def daemon_status(self) -> dict[str, Any]:
        from intercloud.control.daemon import daemon_status

        return daemon_status(self.home)

    # -- tenants (``intercloud.sdk_tenants`` has the rules) ------------------------------
    def create_tenant(self, name: str, **limits: Any) -> dict[str, Any]:
        """Create tenant ``name`` with ``weight``, ``guarantees``, ``quotas``,
        ``can_borrow``, ``monthly_budget_usd``; TenantExists if it exists."""
        from intercloud.sdk_tenants import create_tenant

        return create_tenant(self.store, name, **limits)

    def tenants(self) -> list[dict[str, Any]]:
        """Every tenant with its limits, running GPUs and this month's estimated spend."""
        from intercloud.sdk_tenants import list_tenants

        return list_tenants(self.store)

    def tenant(self, name: str) -> dict[str, Any]:
        """One tenant (as ``tenants``) with the history of its changes; UnknownTenant."""
        from intercloud.sdk_tenants import show_tenant

        return show_tenant(self.store, name)

    def set_tenant(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change a tenant's limits (``default`` included); maps replace the stored ones."""
        from intercloud.sdk_tenants import set_tenant

        return set_tenant(self.store, name, **changes)
