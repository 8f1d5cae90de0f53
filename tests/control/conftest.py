"""Control-loop fixtures: both store backends, a local provider root that must be left
with no process running, and helpers to write specs and drive a ``Reconciler``.

Store fixtures follow ``tests/store/conftest.py``: every test using ``db_url`` runs on
SQLite and on a real PostgreSQL (``INTERCLOUD_TEST_PG_URL`` overrides the default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``); PostgreSQL cases fail under
``CI=true`` when the server is unreachable and are skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercloud.control.crashpoints import Crashpoint, no_crash
from intercloud.control.reconciler import Reconciler
from intercloud.providers.local import LocalProvider
from intercloud.providers.local_config import LocalConfig, LocalSite
from intercloud.store import Store, open_store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def make_provider(root: Path) -> Callable[..., LocalProvider]:
    """A fresh ``LocalProvider`` on the test's root (a new one models a new process)."""

    def make(cpus: float = 16, memory_gib: float = 64) -> LocalProvider:
        site = LocalSite(cpu_slots=cpus, memory_gib=memory_gib)
        return LocalProvider(LocalConfig(root=root, sites=(site,), kill_grace_s=2.0))

    return make


@pytest.fixture
def make_reconciler(
    store: Store, make_provider: Callable[..., LocalProvider]
) -> Callable[..., Reconciler]:
    """A Reconciler on the test's store and a fresh provider; ``recover()`` already run."""

    def make(crashpoint: Crashpoint = no_crash, cpus: float = 16, **kwargs: object) -> Reconciler:
        provider = make_provider(cpus=cpus)
        r = Reconciler(store, {provider.name: provider}, crashpoint=crashpoint, **kwargs)  # type: ignore[arg-type]
        r.recover()
        return r

    return make
