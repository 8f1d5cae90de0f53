"""API tokens and the audit log in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from intercloud.store import InvalidRequest, Store, UnknownTenant
from intercloud.store.api_repo import UnknownToken
from intercloud.store.records import Role
from intercloud.store.testing import FakeClock


def test_tokens_are_found_by_hash_scoped_and_revocable(store: Store, clock: FakeClock) -> None:
    store.create_tenant("a")
    store.create_tenant("b")
    later = clock.now + timedelta(days=1)
    t1 = store.create_token("a", Role.MEMBER, "h1", "ic_abc12", name="ci", expires_at=later)
    t2 = store.create_token("b", Role.VIEWER, "h2", "ic_def34")
    assert store.token_by_hash("h1") == t1
    assert store.token_by_hash("nope") is None
    assert t1.tenant == "a" and t1.role is Role.MEMBER and t1.live(clock.now)
    assert not t1.live(later) and t2.live(later + timedelta(days=9999))
    assert [t.id for t in store.list_tokens("a")] == [t1.id]
    assert [t.id for t in store.list_tokens()] == [t1.id, t2.id]
    with pytest.raises(UnknownToken):
        store.get_token(t2.id, tenant="a")  # another tenant's: as missing
    with pytest.raises(UnknownToken):
        store.revoke_token(t2.id, tenant="a")
    clock.tick(5)
    gone = store.revoke_token(t1.id, tenant="a")
    assert gone.revoked_at == clock.now and not gone.live(clock.now)
    clock.tick(5)
    assert store.revoke_token(t1.id).revoked_at == gone.revoked_at  # idempotent
    with pytest.raises(UnknownTenant):
        store.create_token("zzz", Role.MEMBER, "h3", "ic_x")
    with pytest.raises(InvalidRequest, match="expires_at"):
        store.create_token("a", Role.MEMBER, "h4", "ic_x", expires_at=clock.now)


def test_live_admin_tokens_counts_only_usable_admins(store: Store, clock: FakeClock) -> None:
    assert store.live_admin_tokens() == 0
    soon = clock.now + timedelta(hours=1)
    store.create_token("default", Role.ADMIN, "h1", "ic_1", expires_at=soon)
    revoked = store.create_token("default", Role.ADMIN, "h2", "ic_2")
    store.create_token("default", Role.MEMBER, "h3", "ic_3")
    store.revoke_token(revoked.id)
    assert store.live_admin_tokens() == 1
    clock.tick(3600)
    assert store.live_admin_tokens() == 0


def test_audit_rows_in_order_and_by_tenant(store: Store, clock: FakeClock) -> None:
    first = store.add_audit(
        method="POST",
        path="/v1/workloads",
        status=201,
        token_id=3,
        tenant="a",
        role="member",
        target="workload 1",
        client="10.0.0.1",
    )
    clock.tick()
    store.add_audit(method="POST", path="/v1/tenants", status=401, code="unauthorized")
    rows = store.audit()
    assert [r.status for r in rows] == [201, 401]
    assert rows[0].id == first and rows[0].target == "workload 1" and rows[0].time < rows[1].time
    assert [r.id for r in store.audit(after_id=first)] == [rows[1].id]
    assert [r.id for r in store.audit(tenant="a")] == [first]
    assert len(store.audit(limit=1)) == 1
