"""The audit log: every mutating call (allowed, refused, unauthenticated) leaves one row
(who, what, when, from where, outcome); reads leave none; only admins read it."""

from __future__ import annotations

from api_helpers import YAML, Server, spec


def _rows_after(server: Server, after: int) -> list[dict[str, object]]:
    r = server.call(server.admin, "GET", "/v1/audit", params={"after": after, "limit": 1000})
    assert r.status_code == 200
    rows: list[dict[str, object]] = r.json()
    return rows


def test_every_mutating_call_is_audited(server: Server) -> None:
    start = _rows_after(server, 0)
    after = int(start[-1]["id"]) if start else 0  # type: ignore[call-overload]
    member = server.token("beta", "member")
    viewer = server.token("beta", "viewer")
    ok = server.call(member, "POST", "/v1/workloads", content=spec("audited"), headers=YAML)
    job = ok.json()["id"]
    server.call(viewer, "POST", f"/v1/workloads/{job}/cancel")  # 403
    server.call(None, "POST", "/v1/tenants", json={"name": "nobody"})  # 401
    server.call(member, "GET", "/v1/workloads")  # a read: not audited
    rows = _rows_after(server, after)
    # the admin's two token creations, then the three calls above
    assert [(r["method"], r["path"], r["status"]) for r in rows] == [
        ("POST", "/v1/tokens", 201),
        ("POST", "/v1/tokens", 201),
        ("POST", "/v1/workloads", 201),
        ("POST", f"/v1/workloads/{job}/cancel", 403),
        ("POST", "/v1/tenants", 401),
    ]
    submitted, refused, anonymous = rows[2], rows[3], rows[4]
    assert submitted["tenant"] == "beta" and submitted["role"] == "member"
    assert submitted["target"] == f"workload {job}" and submitted["code"] is None
    assert submitted["client"] == "127.0.0.1" and submitted["time"]
    assert refused["role"] == "viewer" and refused["code"] == "forbidden"
    assert anonymous["token_id"] is None and anonymous["code"] == "unauthorized"
    assert server.call(member, "GET", "/v1/audit").status_code == 403
