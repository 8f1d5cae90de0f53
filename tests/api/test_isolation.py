"""Tenant isolation: another tenant's objects answer 404 exactly as missing ones do,
lists are filtered, and a spec naming another tenant is refused with nothing stored."""

from __future__ import annotations

from api_helpers import YAML, Server, spec


def _submit(server: Server, token: str, name: str, tenant: str | None = None) -> int:
    r = server.call(token, "POST", "/v1/workloads", content=spec(name, tenant), headers=YAML)
    assert r.status_code == 201, r.text
    job_id: int = r.json()["id"]
    return job_id


def test_other_tenants_ids_answer_404_like_missing_ones(server: Server) -> None:
    a = server.token("alpha", "member")
    b = server.token("beta", "member")
    job = _submit(server, a, "alpha-job")
    missing = 2**31 - 1
    for method, path in (
        ("GET", "/v1/workloads/{}"),
        ("POST", "/v1/workloads/{}/cancel"),
        ("GET", "/v1/workloads/{}/logs"),
    ):
        theirs = server.call(b, method, path.format(job))
        nothing = server.call(b, method, path.format(missing))
        assert theirs.status_code == nothing.status_code == 404, (path, theirs.text)
        assert theirs.json()["code"] == nothing.json()["code"] == "not_found"
        assert theirs.json() == {**nothing.json(), "message": f"no workload {job}"}
    # the owner still sees it, untouched by beta's cancel
    mine = server.call(a, "GET", f"/v1/workloads/{job}").json()
    assert mine["tenant"] == "alpha" and mine["desired"] == "run"


def test_lists_are_filtered_by_tenant(server: Server) -> None:
    a = server.token("alpha", "viewer")
    b = server.token("beta", "member")
    theirs = _submit(server, b, "beta-job")
    for path in ("/v1/workloads", "/v1/queue"):
        rows = server.call(a, "GET", path).json()
        assert theirs not in {r["id"] for r in rows}
        assert all(r["tenant"] == "alpha" for r in rows)
    # an admin sees every tenant, or narrows to one
    everyone = server.call(server.admin, "GET", "/v1/workloads").json()
    assert theirs in {r["id"] for r in everyone}
    only = server.call(server.admin, "GET", "/v1/workloads", params={"tenant": "alpha"}).json()
    assert all(r["tenant"] == "alpha" for r in only)
    # a non-admin's ?tenant= is ignored: still only its own
    sneaky = server.call(a, "GET", "/v1/workloads", params={"tenant": "beta"}).json()
    assert all(r["tenant"] == "alpha" for r in sneaky)


def test_tenants_and_tokens_of_others_are_404(server: Server) -> None:
    a = server.token("alpha", "tenant-admin")
    assert server.call(a, "GET", "/v1/tenants/beta").status_code == 404
    assert [t["name"] for t in server.call(a, "GET", "/v1/tenants").json()] == ["alpha"]
    beta_tokens = server.call(server.admin, "GET", "/v1/tokens", params={"tenant": "beta"})
    other = beta_tokens.json()[0]["id"]
    assert server.call(a, "GET", f"/v1/tokens/{other}").status_code == 404
    assert server.call(a, "POST", f"/v1/tokens/{other}/revoke").status_code == 404
    assert {t["tenant"] for t in server.call(a, "GET", "/v1/tokens").json()} == {"alpha"}
    made = server.call(a, "POST", "/v1/tokens", json={"tenant": "beta", "role": "member"})
    assert made.status_code == 404 and made.json()["field"] == "tenant"


def test_spec_naming_another_tenant_is_refused_and_nothing_stored(server: Server) -> None:
    a = server.token("alpha", "member")
    before = len(server.call(server.admin, "GET", "/v1/workloads").json())
    for owner in ("beta", "default"):
        r = server.call(a, "POST", "/v1/workloads", content=spec("x", owner), headers=YAML)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "tenant"
        assert "alpha" in r.json()["message"]
    assert len(server.call(server.admin, "GET", "/v1/workloads").json()) == before
    # naming its own tenant, or none, is the caller's tenant
    job = _submit(server, a, "own", "alpha")
    assert server.call(a, "GET", f"/v1/workloads/{job}").json()["tenant"] == "alpha"


def test_server_host_files_cannot_be_submitted(server: Server) -> None:
    """A workdir or file mount would be read on the server's host (its store included)."""
    a = server.token("alpha", "member")
    before = len(server.call(server.admin, "GET", "/v1/workloads").json())
    for extra, field in (
        (f"workdir: {server.home}\n", "workdir"),
        ("file_mounts: {/data: /etc}\n", "file_mounts"),
    ):
        body = spec("files") + extra
        r = server.call(a, "POST", "/v1/workloads", content=body, headers=YAML)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field and "server's host" in r.json()["message"]
    assert len(server.call(server.admin, "GET", "/v1/workloads").json()) == before


def test_a_json_spec_is_accepted(server: Server) -> None:
    a = server.token("alpha", "member")
    body = '{\n\t"kind": "training",\n\t"name": "as-json",\n\t"resources": {"cpus": "1+"},\n' \
        '\t"run": "echo json"\n}'  # fmt: skip
    r = server.call(a, "POST", "/v1/workloads", content=body,
                    headers={"Content-Type": "application/json; charset=utf-8"})  # fmt: skip
    assert r.status_code == 201, r.text
    got = server.call(a, "GET", f"/v1/workloads/{r.json()['id']}").json()
    assert got["name"] == "as-json" and got["tenant"] == "alpha"
