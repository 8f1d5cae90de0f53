"""Every endpoint in the OpenAPI document, called without a token, with a revoked one, and
with another tenant's token on this tenant's ids: 401, 401, and 404 or 403 (admin-only
resources) — never a 200 with the other tenant's data, never a 500."""

from __future__ import annotations

from api_helpers import YAML, Server, spec

ADMIN_ONLY = ("/v1/fleet", "/v1/audit", "/v1/tenants")


def _calls(server: Server, ids: dict[str, str]) -> list[tuple[str, str]]:
    doc = server.call(None, "GET", "/openapi.json").json()
    out = []
    for path, methods in doc["paths"].items():
        for method in methods:
            out.append((method.upper(), path.format(**ids)))
    return sorted(out)


def test_every_endpoint_refuses_strangers(server: Server) -> None:
    owner = server.token("alpha", "tenant-admin")
    r = server.call(owner, "POST", "/v1/workloads", content=spec("mine"), headers=YAML)
    job = r.json()["id"]
    token_id = server.call(owner, "GET", "/v1/tokens").json()[0]["id"]
    ids = {"job_id": str(job), "token_id": str(token_id), "name": "alpha"}
    calls = _calls(server, ids)
    assert len(calls) >= 15, calls
    revoked = server.token("alpha", "tenant-admin")
    mine = server.call(server.admin, "GET", "/v1/tokens", params={"tenant": "alpha"}).json()
    server.call(server.admin, "POST", f"/v1/tokens/{mine[-1]['id']}/revoke")
    stranger = server.token("beta", "tenant-admin")
    body = {"json": {}}
    for method, path in calls:
        for token in (None, revoked):
            got = server.call(token, method, path, **body)
            assert got.status_code == 401, (method, path, got.text)
            assert got.json()["code"] == "unauthorized"
        got = server.call(stranger, method, path, **body)
        assert got.status_code != 500, (method, path, got.text)
        names_alpha = any(ids[k] in path.split("/") for k in ids)
        if names_alpha and not path.startswith(ADMIN_ONLY[:2]):
            expected = {403} if method == "PATCH" else {404}
            assert got.status_code in expected, (method, path, got.text)
        if got.status_code == 200:  # lists and the stranger's own things only
            assert "alpha" not in got.text, (method, path, got.text)
