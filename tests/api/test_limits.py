"""Per-tenant rate limits (429 with Retry-After, other tenants unaffected) and bad input:
the documented status and error shape, never a 500 or a traceback, nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import YAML, Server, running_server


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("rate") / "home"
    with running_server(home, "--rate", "0.5", "--burst", "3") as srv:
        yield srv


def test_rate_limit_answers_429_with_retry_after(slow_server: Server) -> None:
    srv = slow_server
    srv.tenant("alpha")  # the admin's own bucket (tenant default): 1 of 3
    a = srv.token("alpha", "viewer")  # 2 of 3
    statuses = [srv.call(a, "GET", "/v1/queue").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    r = srv.call(a, "GET", "/v1/workloads")
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited" and "alpha" in r.json()["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    # another tenant has its own bucket
    assert srv.call(srv.admin, "GET", "/v1/whoami").status_code == 200


def _count(server: Server) -> int:
    return len(server.call(server.admin, "GET", "/v1/workloads").json())


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "field"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 422, "invalid", "(json)"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 422, "invalid", "(root)"),
        (b"kind: [unclosed", YAML, 422, "invalid", "(yaml)"),
        (b"kind: training\nname: x\nbogus: 1\nrun: echo\n", YAML, 422, "invalid", "bogus"),
        (b"\xff\xfe", YAML, 422, "invalid", "(body)"),
        (b"", YAML, 422, "invalid", "(body)"),
        (
            b"kind: training",
            {"Content-Type": "text/html"},
            415,
            "unsupported_media",
            "Content-Type",
        ),
        (b"x" * (1 << 20 + 1), YAML, 413, "too_large", None),
    ],
)
def test_bad_bodies(
    server: Server, body: bytes, headers: dict[str, str], status: int, code: str, field: str | None
) -> None:
    before = _count(server)
    r = server.call(server.admin, "POST", "/v1/workloads", content=body, headers=headers)
    assert r.status_code == status, r.text
    got = r.json()
    assert set(got) == {"code", "message", "field"}
    assert got["code"] == code
    assert got["field"] == field or (field and got["field"] and got["field"].startswith(field))
    assert "Traceback" not in r.text
    assert _count(server) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/workloads/0", 404),
        ("GET", "/v1/workloads/99999999999", 404),
        ("GET", "/v1/workloads/abc", 422),
        ("GET", "/v1/workloads?state=NOPE", 422),
        ("GET", "/v1/workloads/1/logs?node=-1", 422),
        ("GET", "/v1/tokens/0", 404),
        ("GET", "/v1/nope", 404),
        ("DELETE", "/v1/workloads", 405),
    ],
)
def test_bad_ids_and_paths(server: Server, method: str, path: str, status: int) -> None:
    r = server.call(server.admin, method, path)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"code", "message", "field"}


def test_unknown_fields_in_json_bodies(server: Server) -> None:
    r = server.call(server.admin, "POST", "/v1/tenants", json={"name": "z", "colour": "red"})
    assert r.status_code == 422 and r.json()["field"] == "colour"
    r = server.call(server.admin, "POST", "/v1/tokens", json={"tenant": "alpha", "role": "boss"})
    assert r.status_code == 422 and r.json()["field"] == "role"
    r = server.call(server.admin, "PATCH", "/v1/tenants/alpha", json={"quotas": {"NOPE": 1}})
    assert r.status_code == 422 and r.json()["field"] == "quotas"


def test_openapi_is_served(server: Server, tmp_path: Path) -> None:
    doc = server.call(None, "GET", "/openapi.json").json()
    for path in ("/v1/workloads", "/v1/workloads/{job_id}/logs", "/v1/queue", "/v1/fleet",
                 "/v1/providers", "/v1/tenants", "/v1/tokens", "/v1/audit"):  # fmt: skip
        assert path in doc["paths"], path


def _stored(server: Server) -> tuple[int, int, int]:
    admin = server.admin
    return (
        len(server.call(admin, "GET", "/v1/workloads").json()),
        len(server.call(admin, "GET", "/v1/tenants").json()),
        len(server.call(admin, "GET", "/v1/tokens").json()),
    )


JSON = {"Content-Type": "application/json"}
LIMIT = 1 << 20


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/tenants"),
        ("PATCH", "/v1/tenants/alpha"),
        ("POST", "/v1/tokens"),
        ("POST", "/v1/workloads"),
    ],
)
def test_bad_json_bodies_on_every_writing_endpoint(server: Server, method: str, path: str) -> None:
    """Malformed, wrongly typed, oversized (declared and chunked) bodies: the error
    shape, never a 500, nothing stored."""
    server.tenant("alpha")
    before = _stored(server)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows while read
        for _ in range(3):
            yield b" " * (LIMIT // 2)

    cases: list[tuple[dict[str, object], set[int], str | None]] = [
        ({"content": b"{not json", "headers": JSON}, {422}, "invalid"),
        ({"content": b'"a string"', "headers": JSON}, {422}, "invalid"),
        ({"content": b"[]", "headers": JSON}, {422}, "invalid"),
        ({"content": b"{}" + b" " * LIMIT, "headers": JSON}, {413}, "too_large"),
        ({"content": chunks(), "headers": JSON}, {413}, "too_large"),
        ({"content": b"\xff\xfe{}", "headers": JSON}, {422}, "invalid"),
    ]
    for kw, statuses, code in cases:
        r = server.call(server.admin, method, path, **kw)  # type: ignore[arg-type]
        assert r.status_code in statuses, (path, kw.get("content"), r.text)
        body = r.json()
        assert set(body) == {"code", "message", "field"} and body["code"] == code, r.text
        assert "Traceback" not in r.text
    assert _stored(server) == before
