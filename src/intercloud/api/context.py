"""What the app's handlers share: the store, the SDK client over it, the rate limiter."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intercloud.api.group_commit import GroupCommitter
from intercloud.api.ratelimit import RateLimiter
from intercloud.api.token_cache import TokenCache

if TYPE_CHECKING:
    from intercloud.sdk import Client
    from intercloud.store import Store

#: Largest request body accepted (a spec is a few KiB); larger answers 413.
MAX_BODY_BYTES = 1 << 20
#: How long the server plans submissions against the same catalog, configuration and
#: offerings before building them again (a changed configuration applies within this).
PLANNING_TTL_S = 5.0
#: Default per-tenant rate: requests a second on average, and at once.
DEFAULT_RATE = 50.0
DEFAULT_BURST = 100
RATE_ENV = "INTERCLOUD_API_RATE"
BURST_ENV = "INTERCLOUD_API_BURST"


@dataclass(frozen=True)
class ApiSettings:
    """How one server process runs. ``home``/``db_url`` None: the embedded defaults
    (``$INTERCLOUD_HOME``, ``$INTERCLOUD_DB_URL`` or its ``state.db``). ``autostart``:
    submissions make sure the home's control loop runs (the SDK's submit path)."""

    home: Path | None = None
    db_url: str | None = None
    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    max_body_bytes: int = MAX_BODY_BYTES
    autostart: bool = True

    @classmethod
    def from_env(cls, environ: Any = None) -> ApiSettings:
        """Settings of a worker process (``server start --workers N`` passes them in the
        environment); ValueError naming the variable for a bad rate."""
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not 0 < value <= 1e6:
                raise ValueError(f"{name}: must be a number above 0 and at most 1e6, not {raw!r}")
            return value

        return cls(rate=number(RATE_ENV, DEFAULT_RATE), burst=int(number(BURST_ENV, DEFAULT_BURST)))


@dataclass
class ApiContext:
    settings: ApiSettings
    client: Client
    limiter: RateLimiter
    committer: GroupCommitter
    tokens: TokenCache = field(default_factory=TokenCache)
    _catalog: Any = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        return self.client.store

    def catalog(self) -> Any:
        """The bundled catalog (GPU types of instance types), loaded once."""
        if self._catalog is None:
            from intercloud.catalog.loader import load_catalog

            self._catalog = load_catalog()
        return self._catalog

    @classmethod
    def open(cls, settings: ApiSettings) -> ApiContext:
        from intercloud.sdk import Client

        client = Client(
            settings.home,
            settings.db_url,
            autostart=settings.autostart,
            planning_ttl_s=PLANNING_TTL_S,
        )
        client.store.store_id()  # open (and migrate) now: a bad database fails the start
        auto = settings.autostart
        committer = GroupCommitter(
            client.store,
            before_submit=client.check_daemon if auto else None,
            after_submit=client.ensure_daemon if auto else None,
        )
        return cls(settings, client, RateLimiter(settings.rate, settings.burst), committer)

    def close(self) -> None:
        self.committer.close()
        self.client.close()
