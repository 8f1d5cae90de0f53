"""The dashboard over HTTP (no browser): the token login and its cookie, the tenant
scope of every panel and job page, and what an expired or revoked token gets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from api_helpers import YAML, Server, spec


def _submit(server: Server, token: str, name: str, run: str = "echo hi") -> int:
    r = server.call(token, "POST", "/v1/workloads", content=spec(name, run=run), headers=YAML)
    assert r.status_code == 201, r.text
    job_id: int = r.json()["id"]
    return job_id


@contextmanager
def _ui(server: Server, token: str) -> Iterator[httpx.Client]:
    """A browser-like client logged in with ``token``."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/ui/login", data={"token": token})
        assert r.status_code == 303 and r.headers["location"] == "/ui", r.text
        yield c


def test_login_sets_a_strict_httponly_cookie_and_bad_tokens_are_refused(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.get("/ui")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
        assert (
            c.get("/ui/part/queue", headers={"HX-Request": "true"}).headers["HX-Redirect"]
            == "/ui/login"
        )
        bad = c.post("/ui/login", data={"token": "not-a-token"})
        assert bad.status_code == 401 and "token: unknown token" in bad.text
        assert "intercloud_ui" not in c.cookies
        empty = c.post("/ui/login", data={"token": ""})
        assert empty.status_code == 401 and "paste an API token" in empty.text
        huge = c.post("/ui/login", data={"token": "x" * 10_000})
        assert huge.status_code == 413 and "token: too long" in huge.text
    token = server.token("alpha", "viewer")
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/ui/login", data={"token": token})
        cookie = r.headers["set-cookie"].lower()
        for part in ("httponly", "samesite=strict", "path=/ui"):
            assert part in cookie, cookie
        page = c.get("/ui")
        assert page.status_code == 200 and "alpha · viewer" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert c.post("/ui/logout").status_code == 303
        assert c.get("/ui").status_code == 303
    logins = [
        (a["status"], a["code"], a["tenant"], a["role"])
        for a in server.call(server.admin, "GET", "/v1/audit", params={"limit": 1000}).json()
        if a["path"] == "/ui/login"
    ]
    assert logins[-4:] == [
        (401, "unauthorized", None, None),
        (401, "unauthorized", None, None),
        (413, "too_large", None, None),
        (303, None, "alpha", "viewer"),
    ]


def test_every_panel_and_job_page_is_scoped_to_the_tokens_tenant(server: Server) -> None:
    mine = _submit(server, server.token("alpha", "member"), "ui-alpha-job")
    theirs = _submit(server, server.token("beta", "member"), "ui-beta-job")
    with _ui(server, server.token("alpha", "viewer")) as c:
        page = c.get("/ui").text
        assert "ui-alpha-job" in page and "ui-beta-job" not in page
        for name in ("queue", "jobs", "fleet", "tenants", "contracts"):
            part = c.get(f"/ui/part/{name}")
            assert part.status_code == 200, (name, part.text)
            assert "ui-beta-job" not in part.text and 'data-tenant="beta"' not in part.text
        assert 'data-tenant="alpha"' in c.get("/ui/part/tenants").text
        assert "admins see them" in c.get("/ui/part/contracts").text
        assert c.get(f"/ui/jobs/{mine}").status_code == 200
        other, missing = c.get(f"/ui/jobs/{theirs}"), c.get("/ui/jobs/2147483646")
        assert other.status_code == missing.status_code == 404
        assert "ui-beta-job" not in other.text
        assert c.get(f"/ui/jobs/{theirs}/logs").status_code == 404
        assert c.get("/ui/jobs/0").status_code == 404
        assert c.get("/ui/part/nothing").status_code == 404
        odd = c.get("/ui", params={"by": "<tenant>", "window": '"><script>'})
        assert odd.status_code == 200 and "<script>" not in odd.text.split("</head>")[1]
        assert "window=1h" in odd.text and "by=provider" in odd.text
        assert c.get("/ui/jobs/abc").json()["field"] == "job_id"
    with _ui(server, server.admin) as c:
        page = c.get("/ui").text
        assert "ui-alpha-job" in page and "ui-beta-job" in page
        assert 'data-tenant="beta"' in page and "Utilisation now" in page


def test_a_revoked_token_loses_the_dashboard_at_once(server: Server) -> None:
    r = server.call(server.admin, "POST", "/v1/tokens", json={"tenant": "alpha", "role": "viewer"})
    body = r.json()
    with _ui(server, body["secret"]) as c:
        assert c.get("/ui").status_code == 200
        revoked = server.call(server.admin, "POST", f"/v1/tokens/{body['id']}/revoke")
        assert revoked.status_code == 200, revoked.text
        assert c.get("/ui").status_code == 303
        assert c.get("/ui/part/jobs", headers={"HX-Request": "true"}).status_code == 401


def test_the_job_page_tells_the_story_and_the_logs(server: Server) -> None:
    token = server.token("alpha", "member")
    job = _submit(server, token, "ui-story", run="echo story-line-1; echo story-line-2")
    deadline = time.monotonic() + 90
    while server.call(token, "GET", f"/v1/workloads/{job}").json()["finished_at"] is None:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.3)
    with _ui(server, token) as c:
        page = c.get(f"/ui/jobs/{job}").text
        assert "submitted" in page and "SUCCEEDED" in page
        logs = c.get(f"/ui/jobs/{job}/logs").text
        assert "story-line-1" in logs and "story-line-2" in logs
        assert 'data-finished="yes"' in logs and "hx-trigger" not in logs.split("<pre")[0]


def test_static_files_are_vendored_and_nothing_else_is_served(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        js = c.get("/ui/static/htmx.min.js")
        assert js.status_code == 200 and "htmx" in js.text[:2000]
        assert "Zero-Clause BSD" in c.get("/ui/static/HTMX-LICENSE.txt").text
        assert c.get("/ui/static/..%2Fviews.py").status_code == 404
        assert c.get("/ui/static/routes.py").status_code == 404
        page = c.get("/ui/login").text
        assert "http://" not in page.replace("http://www.w3.org", "")
        assert "https://" not in page
