"""The token cache: concurrent misses share one store read; a revocation (``clear``)
during a read keeps that read's answer out of the cache; entries expire."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from intercloud.api.roles import Role
from intercloud.api.token_cache import TTL_S, TokenCache
from intercloud.store.records import ApiTokenRecord

TOKEN = ApiTokenRecord(
    id=1,
    tenant="alpha",
    role=Role.MEMBER,
    name="t",
    prefix="ic_",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    created_by=None,
    expires_at=None,
    revoked_at=None,
)


class SlowStore:
    """``token_by_hash`` that blocks until released, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def token_by_hash(self, _key: str) -> ApiTokenRecord | None:
        self.calls += 1
        self.release.wait(timeout=10)
        return TOKEN


async def _many_lookups(cache: TokenCache, store: SlowStore, n: int) -> list[object]:
    waiting = [asyncio.ensure_future(cache.lookup("h", store.token_by_hash)) for _ in range(n)]
    while store.calls == 0:  # the read has started in its thread
        await asyncio.sleep(0.001)
    store.release.set()
    return list(await asyncio.gather(*waiting))


def test_concurrent_misses_share_one_read() -> None:
    store = SlowStore()
    cache = TokenCache()
    found = asyncio.run(_many_lookups(cache, store, 50))
    assert found == [TOKEN] * 50
    assert store.calls == 1
    assert cache.get("h") == TOKEN  # kept for the next requests


def test_a_read_begun_before_a_revocation_is_not_kept() -> None:
    store = SlowStore()
    cache = TokenCache()

    async def revoke_during_read() -> ApiTokenRecord | None:
        reading = asyncio.ensure_future(cache.lookup("h", store.token_by_hash))
        while store.calls == 0:
            await asyncio.sleep(0.001)
        cache.clear()  # a revocation by this process, while the read is under way
        store.release.set()
        return await reading

    assert asyncio.run(revoke_during_read()) == TOKEN  # that request saw it as read
    assert cache.get("h") is None  # the next one reads again


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = TokenCache(clock=lambda: now[0])
    cache.put("h", TOKEN)
    assert cache.get("h") == TOKEN
    now[0] = TTL_S
    assert cache.get("h") is None
