"""Schemathesis over the server's own OpenAPI document: every operation called with
generated paths, queries and bodies (valid ones, and invalid ones from schemathesis's
negative mode), as an admin, a member and a caller without a token. Never a 5xx; every
refusal in the one error shape. Bounded for CI: ``EXAMPLES`` cases per operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_helpers import Server, running_server
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

EXAMPLES = 12
ERROR_KEYS = {"code", "message", "field"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    with running_server(home, "--rate", "100000", "--burst", "100000") as srv:
        srv.tenant("alpha")
        yield srv


def _operations(server: Server) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    return [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]


def _token_ids(server: Server) -> set[str]:
    return {str(t["id"]) for t in server.call(server.admin, "GET", "/v1/tokens").json()}


def test_no_server_errors_for_generated_requests(fuzzed: Server) -> None:
    member = fuzzed.token("alpha", "member")
    keep = _token_ids(fuzzed)  # the fuzzer must not revoke the tokens it calls with
    callers: dict[str, str | None] = {"admin": fuzzed.admin, "member": member, "none": None}
    operations = _operations(fuzzed)
    assert len(operations) >= 15
    failures: list[str] = []
    statuses: dict[int, int] = {}

    def call(case: Any, who: str) -> None:
        if case.path.endswith("/revoke"):
            assume(str(case.path_parameters.get("token_id")) not in keep)
        headers = dict(case.headers or {})
        token = callers[who]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if case.path.endswith("/logs"):  # follow=true streams until the job ends
            case.query = {**(case.query or {}), "follow": "false"}
        got = case.call(base_url=fuzzed.url, headers=headers, timeout=60)
        statuses[got.status_code] = statuses.get(got.status_code, 0) + 1
        where = f"{case.method} {case.formatted_path} as {who}"
        if got.status_code >= 500:
            failures.append(f"{where}: {got.status_code} {got.text[:300]}")
        elif got.status_code >= 400:
            body = got.json()
            if set(body) != ERROR_KEYS or "Traceback" in got.text:
                failures.append(f"{where}: not the error shape: {got.text[:300]}")

    for op in operations:
        cases = st.one_of([op.as_strategy(mode) for mode in GenerationMode])
        run = settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )(given(case=cases, who=st.sampled_from(sorted(callers)))(call))
        run()
    assert failures == [], "\n".join(failures[:20])
    # the generated requests reach the handlers, not only the token check
    assert sum(n for code, n in statuses.items() if code < 300) >= len(operations), statuses
    assert statuses.get(422, 0) > 0, statuses
