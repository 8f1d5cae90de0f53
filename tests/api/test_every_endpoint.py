"""Every endpoint in the OpenAPI document, called without a token, with a malformed, a
revoked and an expired one, and with another tenant's token (of each role) on this
tenant's ids: 401 (``unauthorized``, naming ``Authorization``) for the first four, and
404 or 403 (admin-only resources) for the stranger — never a 200 with the other
tenant's data, never a 500; and nothing a refused call sent is stored."""

from __future__ import annotations

from datetime import timedelta

from api_helpers import YAML, Server, spec

from intercloud.api.tokens import hash_secret, new_secret, prefix_of
from intercloud.store import open_store, utc_now
from intercloud.store.records import Role

#: Ids that name nothing, in place of alpha's.
MISSING = {"job_id": str(2**31 - 1), "token_id": str(2**31 - 1), "name": "no-such-tenant"}


def _calls(server: Server, ids: dict[str, str]) -> list[tuple[str, str]]:
    doc = server.call(None, "GET", "/openapi.json").json()
    out = []
    for path, methods in doc["paths"].items():
        for method in methods:
            out.append((method.upper(), path.format(**ids)))
    return out  # the document's order: the same for any ids


def _expired(server: Server, tenant: str) -> str:
    """A tenant-admin token of ``tenant`` that expired a minute after it was made, an
    hour ago (made in the store: the API gives at least a day)."""
    secret = new_secret()
    past = utc_now() - timedelta(hours=1)
    with open_store(f"sqlite:///{server.home / 'state.db'}") as store:
        store.create_token(
            tenant, Role.TENANT_ADMIN, hash_secret(secret), prefix_of(secret),
            expires_at=past + timedelta(minutes=1), now=past,
        )  # fmt: skip
    return secret


def _workloads(server: Server) -> int:
    return len(server.call(server.admin, "GET", "/v1/workloads").json())


def test_every_endpoint_refuses_strangers(server: Server) -> None:
    owner = server.token("alpha", "tenant-admin")
    r = server.call(owner, "POST", "/v1/workloads", content=spec("mine"), headers=YAML)
    job = r.json()["id"]
    token_id = server.call(owner, "GET", "/v1/tokens").json()[0]["id"]
    ids = {"job_id": str(job), "token_id": str(token_id), "name": "alpha"}
    calls = _calls(server, ids)
    missing = dict(zip(calls, _calls(server, MISSING), strict=True))
    assert len(calls) >= 15, calls
    revoked = server.token("alpha", "tenant-admin")
    mine = server.call(server.admin, "GET", "/v1/tokens", params={"tenant": "alpha"}).json()
    server.call(server.admin, "POST", f"/v1/tokens/{mine[-1]['id']}/revoke")
    refused = (None, "ic_" + "x" * 43, revoked, _expired(server, "alpha"))
    strangers = {role: server.token("beta", role) for role in ("tenant-admin", "member", "viewer")}
    # bodies each endpoint accepts, so that what is judged is the id, not the body
    bodies = {
        "PATCH": {"json": {"quotas": {"H100": 1}}},
        "POST": {"json": {"name": "beta-x", "tenant": "beta", "role": "viewer"}},
    }
    before = _workloads(server)
    for method, path in calls:
        body = bodies.get(method, {})
        for token in refused:
            got = server.call(token, method, path, **body)
            assert got.status_code == 401, (method, path, got.text)
            assert got.json()["code"] == "unauthorized", got.text
            assert got.json()["field"] == "Authorization", got.text
        for role, stranger in strangers.items():
            got = server.call(stranger, method, path, **body)
            assert got.status_code < 500, (role, method, path, got.text)
            names_alpha = any(ids[k] in path.split("/") for k in ids)
            if names_alpha:  # refused exactly as for an id that does not exist
                nothing = server.call(stranger, *missing[(method, path)], **body)
                assert got.status_code in (403, 404), (role, method, path, got.text)
                assert (got.status_code, got.json()["code"]) == (
                    nothing.status_code,
                    nothing.json()["code"],
                ), (role, method, path, got.text, nothing.text)
            if got.status_code < 300:  # lists and the stranger's own things only
                assert "alpha" not in got.text, (role, method, path, got.text)
    assert _workloads(server) == before  # nothing a refused call sent was stored
