"""A tenant-admin manages its own tenant: its members (tokens of its tenant, never admin
ones) and its quotas within the ceiling an admin gave; nothing of another tenant, and no
other limit. Every refusal is audited."""

from __future__ import annotations

from api_helpers import Server


def _patch(server: Server, token: str, name: str, body: dict[str, object]) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = server.call(token, "PATCH", f"/v1/tenants/{name}", json=body)
    return r.status_code, r.json()


def test_tenant_admin_sets_quotas_within_the_admins_ceiling(server: Server) -> None:
    r = server.call(
        server.admin, "POST", "/v1/tenants", json={"name": "gamma", "quotas": {"H100": 8}}
    )
    assert r.status_code == 201, r.text
    assert r.json()["quota_ceiling"] == {"H100": 8}
    boss = server.token("gamma", "tenant-admin")

    status, got = _patch(server, boss, "gamma", {"quotas": {"H100": 4}})
    assert status == 200 and got["quotas"] == {"H100": 4} and got["quota_ceiling"] == {"H100": 8}
    # back up to the ceiling, and a type the admin did not limit
    status, got = _patch(server, boss, "gamma", {"quotas": {"H100": 8, "A100": 2}})
    assert status == 200 and got["quotas"] == {"H100": 8, "A100": 2}, got

    for body, field in (
        ({"quotas": {"H100": 16}}, "quotas.H100"),  # above the ceiling
        ({"quotas": {"A100": 2}}, "quotas.H100"),  # dropping the limit = unlimited
        ({"weight": 5.0}, "weight"),  # another limit: admins only
        ({"quotas": {"H100": 4}, "monthly_budget_usd": 10.0}, "monthly_budget_usd"),
    ):
        status, got = _patch(server, boss, "gamma", body)
        assert status == 403, (body, got)
        assert got["code"] == "forbidden" and got["field"] == field, got
    stored = server.call(server.admin, "GET", "/v1/tenants/gamma").json()
    assert stored["quotas"] == {"H100": 8, "A100": 2} and stored["weight"] == 1.0

    # another tenant's: 404 as a missing one; a member may not
    assert _patch(server, boss, "alpha", {"quotas": {"H100": 1}})[0] == 404
    assert _patch(server, boss, "no-such", {"quotas": {"H100": 1}})[0] == 404
    member = server.token("gamma", "member")
    assert _patch(server, member, "gamma", {"quotas": {"H100": 1}})[0] == 403

    # an admin's new quotas are the new ceiling
    status, got = _patch(server, server.admin, "gamma", {"quotas": {"H100": 2}})
    assert status == 200 and got["quota_ceiling"] == {"H100": 2}
    assert _patch(server, boss, "gamma", {"quotas": {"H100": 4}})[0] == 403

    rows = server.call(server.admin, "GET", "/v1/audit", params={"tenant": "gamma", "limit": 1000})
    refused = [a for a in rows.json() if a["path"] == "/v1/tenants/gamma" and a["status"] == 403]
    assert len(refused) >= 5


def test_tenant_admin_manages_its_members(server: Server) -> None:
    server.tenant("delta")
    boss = server.token("delta", "tenant-admin")
    made = server.call(
        boss, "POST", "/v1/tokens", json={"tenant": "delta", "role": "member", "name": "bob"}
    )
    assert made.status_code == 201, made.text
    bob, bob_id = made.json()["secret"], made.json()["id"]
    assert server.call(bob, "GET", "/v1/whoami").json() == {
        "token_id": bob_id, "tenant": "delta", "role": "member",
    }  # fmt: skip
    assert {t["tenant"] for t in server.call(boss, "GET", "/v1/tokens").json()} == {"delta"}
    admin_token = server.call(boss, "POST", "/v1/tokens", json={"tenant": "delta", "role": "admin"})
    assert admin_token.status_code == 403 and admin_token.json()["field"] == "role"
    assert server.call(boss, "POST", f"/v1/tokens/{bob_id}/revoke").status_code == 200
    assert server.call(bob, "GET", "/v1/whoami").status_code == 401
