"""Tokens: missing, unknown, expired and revoked ones answer 401 in the error shape;
secrets are stored hashed; each role may do what ``api.roles`` says and no more."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta

import pytest
from api_helpers import YAML, Server, spec

from intercloud.store import open_store, utc_now
from intercloud.store.records import Role

SHAPE = {"code", "message", "field"}


def _unauthorized(r: object, why: str) -> None:
    import httpx

    assert isinstance(r, httpx.Response)
    assert r.status_code == 401, r.text
    body = r.json()
    assert set(body) == SHAPE
    assert body["code"] == "unauthorized" and body["field"] == "Authorization"
    assert why in body["message"]
    assert "Traceback" not in r.text


def test_missing_bad_expired_and_revoked_tokens_are_401(server: Server) -> None:
    _unauthorized(server.call(None, "GET", "/v1/workloads"), "token is required")
    _unauthorized(server.call("ic_nope", "GET", "/v1/workloads"), "unknown token")
    _unauthorized(server.call("x" * 5000, "GET", "/v1/queue"), "unknown token")
    with server.http(None) as c:
        r = c.get("/v1/workloads", headers={"Authorization": "Basic abc"})
    _unauthorized(r, "token is required")

    live = server.token("alpha", "member")
    made = server.call(server.admin, "GET", "/v1/tokens", params={"tenant": "alpha"}).json()
    token_id = made[-1]["id"]
    assert server.call(live, "GET", "/v1/workloads").status_code == 200
    revoked = server.call(server.admin, "POST", f"/v1/tokens/{token_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["live"] is False
    _unauthorized(server.call(live, "GET", "/v1/workloads"), "token revoked")

    # expired: made in the store an hour ago, for a minute
    from intercloud.api.tokens import hash_secret, new_secret, prefix_of

    secret = new_secret()
    past = utc_now() - timedelta(hours=1)
    with open_store(f"sqlite:///{server.home / 'state.db'}") as store:
        store.create_token(
            "alpha", Role.MEMBER, hash_secret(secret), prefix_of(secret),
            expires_at=past + timedelta(minutes=1), now=past,
        )  # fmt: skip
    _unauthorized(server.call(secret, "GET", "/v1/workloads"), "token expired")


def test_secrets_are_stored_hashed_only(server: Server) -> None:
    secret = server.token("beta", "viewer", name="hashed")
    db = sqlite3.connect(server.home / "state.db")
    try:
        rows = db.execute(
            "SELECT secret_hash, prefix FROM api_tokens WHERE name='hashed'"
        ).fetchall()
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert rows == [(hashlib.sha256(secret.encode()).hexdigest(), secret[:8])]
    assert secret not in dump


# (role, method, path, body) -> expected status per role, in ROLES order
ROLES = ("admin", "tenant-admin", "member", "viewer")
MATRIX = [
    ("GET", "/v1/workloads", None, (200, 200, 200, 200)),
    ("GET", "/v1/queue", None, (200, 200, 200, 200)),
    ("GET", "/v1/tenants/alpha", None, (200, 200, 200, 200)),
    ("GET", "/v1/providers", None, (200, 200, 200, 200)),
    ("POST", "/v1/workloads", "spec", (201, 201, 201, 403)),
    ("POST", "/v1/tokens", {"tenant": "alpha", "role": "viewer"}, (201, 201, 403, 403)),
    ("POST", "/v1/tokens", {"tenant": "alpha", "role": "admin"}, (201, 403, 403, 403)),
    ("GET", "/v1/tokens", None, (200, 200, 403, 403)),
    ("POST", "/v1/tenants", {"name": "t-{role}"}, (201, 403, 403, 403)),
    ("PATCH", "/v1/tenants/alpha", {"quotas": {"H100": 8}}, (200, 200, 403, 403)),
    ("GET", "/v1/fleet", None, (200, 403, 403, 403)),
    ("GET", "/v1/audit", None, (200, 403, 403, 403)),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX)
def test_roles_matrix(
    server: Server, method: str, path: str, body: object, expected: tuple[int, ...]
) -> None:
    for role, status in zip(ROLES, expected, strict=True):
        token = server.admin if role == "admin" else server.token("alpha", role)
        kw: dict[str, object] = {}
        if body == "spec":
            tenant = "alpha" if role != "admin" else None
            kw = {"content": spec(f"m-{role.replace('-', '')}", tenant), "headers": YAML}
        elif isinstance(body, dict):
            kw = {
                "json": {
                    k: v.format(role=role) if isinstance(v, str) else v for k, v in body.items()
                }
            }
        r = server.call(token, method, path, **kw)
        assert r.status_code == status, (role, method, path, r.text)
        if status == 403:
            assert r.json()["code"] == "forbidden" and set(r.json()) == SHAPE


def test_viewer_cannot_cancel_member_can(server: Server) -> None:
    member = server.token("alpha", "member")
    viewer = server.token("alpha", "viewer")
    r = server.call(
        member, "POST", "/v1/workloads", content=spec("c", run="sleep 60"), headers=YAML
    )
    job = r.json()["id"]
    assert server.call(viewer, "POST", f"/v1/workloads/{job}/cancel").status_code == 403
    done = server.call(member, "POST", f"/v1/workloads/{job}/cancel")
    assert done.status_code == 200 and done.json()["desired"] == "cancel"
