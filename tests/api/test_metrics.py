"""``/metrics``: valid Prometheus text that moves as work is submitted, decided and run;
admins only (the series name every tenant)."""

from __future__ import annotations

import time

from api_helpers import YAML, Server, spec
from prometheus_client.parser import text_string_to_metric_families


def _scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = server.call(server.admin, "GET", "/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _sum(
    m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def test_metrics_need_an_admin_token(server: Server) -> None:
    assert server.call(None, "GET", "/metrics").status_code == 401
    assert server.call(server.token("alpha", "viewer"), "GET", "/metrics").status_code == 403
    assert server.call(server.token("alpha", "tenant-admin"), "GET", "/metrics").status_code == 403


def test_metrics_parse_and_move_with_submissions_decisions_and_requests(server: Server) -> None:
    before = _scrape(server)
    token = server.token("beta", "member")
    ids = []
    for i in range(3):
        r = server.call(
            token, "POST", "/v1/workloads", content=spec(f"m-{i}", run="sleep 1"), headers=YAML
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    refused = server.call(token, "POST", "/v1/workloads", content="kind: [", headers=YAML)
    assert refused.status_code == 422
    during = _scrape(server)
    assert _sum(during, "intercloud_workloads_submitted_total", tenant="beta") == (
        _sum(before, "intercloud_workloads_submitted_total", tenant="beta") + 3
    )
    assert _sum(during, "intercloud_api_submissions_total", tenant="beta", outcome="accepted") == (
        _sum(before, "intercloud_api_submissions_total", tenant="beta", outcome="accepted") + 3
    )
    assert _sum(during, "intercloud_api_submissions_total", tenant="beta", outcome="refused") >= 1
    assert _sum(during, "intercloud_queue_jobs", tenant="beta") >= 1  # not all done yet
    posts = "intercloud_api_request_seconds_count"
    assert _sum(during, posts, method="POST", route="/v1/workloads", status="201") == (
        _sum(before, posts, method="POST", route="/v1/workloads", status="201") + 3
    )
    deadline = time.monotonic() + 120
    while any(
        server.call(token, "GET", f"/v1/workloads/{j}").json()["finished_at"] is None for j in ids
    ):
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.5)
    after = _scrape(server)
    assert _sum(after, "intercloud_decisions_total", tenant="beta") >= (
        _sum(before, "intercloud_decisions_total", tenant="beta") + 3
    )
    waits = "intercloud_decision_wait_seconds_count"
    assert _sum(after, waits) >= _sum(before, waits) + 3
    assert _sum(after, "intercloud_decision_wait_seconds_sum") > 0
    assert _sum(after, "intercloud_queue_jobs", tenant="beta") == 0
    # a second scrape reads no placement twice
    again = _scrape(server)
    assert _sum(again, waits) == _sum(after, waits)
