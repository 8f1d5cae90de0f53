"""The audit log: every mutating call (allowed, refused, unauthenticated) leaves one row
(who, what, when, from where, outcome); reads leave none; only admins read it."""

from __future__ import annotations

import socket
import time

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


def _hang_up(server: Server, path: str, headers: str) -> None:
    """POST ``path`` promising 100 bytes of body, send 7, and close the connection."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n{headers}\r\n"
            "token=a".encode()
        )


def test_a_client_hanging_up_mid_body_is_its_refusal_not_a_500(server: Server) -> None:
    """A caller gone before its body arrived is a refused call in the audit log (code
    invalid), not an internal error (it was a 500 and a traceback in the server's log)."""
    start = _rows_after(server, 0)
    after = int(start[-1]["id"]) if start else 0  # type: ignore[call-overload]
    member = server.token("beta", "member")
    form = "Content-Type: application/x-www-form-urlencoded\r\n"
    _hang_up(server, "/ui/login", form)
    _hang_up(
        server,
        "/v1/workloads",
        f"Authorization: Bearer {member}\r\nContent-Type: application/yaml\r\n",
    )
    wanted = {"/ui/login", "/v1/workloads"}
    for _ in range(200):  # the server notices each hang-up on its own
        rows = [r for r in _rows_after(server, after) if r["path"] in wanted]
        if len(rows) == 2:
            break
        time.sleep(0.05)
    assert sorted((r["path"], r["status"], r["code"]) for r in rows) == [
        ("/ui/login", 422, "invalid"),
        ("/v1/workloads", 422, "invalid"),
    ]
