"""Running the API server (``intercloud server start``): uvicorn over ``create_app``.

One process on the embedded store (SQLite allows one writer process well); several
(``workers > 1``) only on PostgreSQL, each a uvicorn worker importing ``app_from_env``.
"""

from __future__ import annotations

import os
from typing import Any

from intercloud.api.context import BURST_ENV, RATE_ENV, ApiSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420
MAX_WORKERS = 64
#: uvicorn's settings in server mode: no access log (the audit log and the metrics say
#: who called what; a line per request costs CPU on the hot path), httptools and uvloop
#: when installed ("auto": the pure-Python h11 and asyncio otherwise).
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "http": "auto",
    "loop": "auto",
}


def check_workers(workers: int, db_url: str) -> None:
    """Several workers need PostgreSQL: ValueError naming ``--workers`` otherwise."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"--workers: must be from 1 to {MAX_WORKERS}, not {workers}")
    if workers > 1 and not db_url.startswith("postgresql"):
        raise ValueError(
            "--workers: several workers need PostgreSQL (set INTERCLOUD_DB_URL); "
            "the embedded SQLite store serves one process"
        )


def address_text(host: str, port: int) -> str:
    """``host:port`` as a URL writes it: an IPv6 host in brackets (``[::1]:8420``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_address(host: str, port: int) -> None:
    """Whether this process can listen on ``host:port`` now: ValueError naming ``--host``
    (cannot be resolved) or ``--port`` (in use, not allowed), before anything starts."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"--host: cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(addr)
        except OSError as exc:
            raise ValueError(
                f"--port: cannot listen on {address_text(host, port)} ({exc.strerror or exc})"
            ) from None


def serve(settings: ApiSettings, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted (blocks). The store is opened before listening."""
    import uvicorn

    from intercloud.api.app import create_app
    from intercloud.store import database_url

    db_url = settings.db_url or database_url(settings.home)
    check_workers(workers, db_url)
    if workers == 1:
        from intercloud.gc_tuning import tune_gc

        tune_gc()
        uvicorn.run(create_app(settings), host=host, port=port, **UVICORN_OPTIONS)
        return
    os.environ["INTERCLOUD_DB_URL"] = db_url
    if settings.home is not None:
        os.environ["INTERCLOUD_HOME"] = str(settings.home)
    os.environ[RATE_ENV] = str(settings.rate)
    os.environ[BURST_ENV] = str(settings.burst)
    create_app(settings).state.ctx.client.close()  # migrate once, before the workers race
    uvicorn.run(
        "intercloud.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **UVICORN_OPTIONS,
    )
