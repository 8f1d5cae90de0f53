"""The agent's HTTP client of the agent server (urllib only).

Failures come back as two kinds: ``Unreachable`` (no answer, a timeout, a 5xx: try again
later, with back-off) and ``Refused`` (a 4xx: the server answered no; ``reason`` is its
code, e.g. ``bad_token``, ``other_assignment``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from intercloud.agent.protocol import (
    ASSIGNMENT_PATH,
    HEARTBEAT_PATH,
    LOGS_PATH,
    REGISTER_PATH,
    REPORT_PATH,
    Assignment,
    RegisterRequest,
    RegisterResponse,
    ReportState,
    bearer,
)


class Unreachable(Exception):
    """The server did not answer usefully (network, timeout, 5xx)."""


class Refused(Exception):
    """The server answered 4xx. ``status``, ``reason`` (its code) and ``body``."""

    def __init__(self, status: int, reason: str, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class AgentClient:
    """Calls of one node. ``instance_id``/``token`` are set once enrolled."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.instance_id: int | None = None
        self.token: str | None = None

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        json_body: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif body is not None:
            headers["Content-Type"] = "application/octet-stream"
        if self.instance_id is not None and self.token is not None:
            headers["Authorization"] = bearer(self.instance_id, self.token)
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:
                out = json.loads(resp.read() or b"{}")
                return out if isinstance(out, dict) else {}
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {}
            if exc.code >= 500:
                raise Unreachable(f"HTTP {exc.code} from {path}") from None
            detail = payload.get("detail") if isinstance(payload, dict) else None
            reason = detail.get("reason", "") if isinstance(detail, dict) else str(detail or "")
            raise Refused(exc.code, reason, detail if isinstance(detail, dict) else {}) from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets, bad JSON
            raise Unreachable(f"{path}: {exc}") from None

    def register(self, request: RegisterRequest) -> RegisterResponse:
        out = self._call("POST", REGISTER_PATH, json_body=request.to_json())
        return RegisterResponse(int(out["instance_id"]), float(out["heartbeat_s"]))

    def heartbeat(self, address: str) -> None:
        self._call("POST", HEARTBEAT_PATH, json_body={"address": address})

    def assignment(
        self, wait_s: float, key: str = "", kill: bool = False
    ) -> tuple[Assignment | None, str | None]:
        """The instance's live assignment and its state (``assigned``/``started``), or
        (None, None); waits up to ``wait_s`` for it to differ from ``key``/``kill``."""
        query = {"wait": f"{wait_s:g}", "key": key, "kill": "true" if kill else "false"}
        out = self._call("GET", ASSIGNMENT_PATH, query=query, timeout_s=wait_s + self.timeout_s)
        data = out.get("assignment")
        if not isinstance(data, dict):
            return None, None
        return Assignment.from_json(data), str(out.get("state") or "")

    def report(
        self, key: str, state: ReportState, exit_code: int | None = None, pid: int | None = None
    ) -> str:
        body = {"key": key, "state": state.value, "exit_code": exit_code, "pid": pid}
        return str(self._call("POST", REPORT_PATH, json_body=body).get("state", ""))

    def logs(self, key: str, offset: int, data: bytes) -> int:
        """Send ``data`` as the log bytes from ``offset``; the server's end offset.
        A gap (the server has less) is ``Refused`` with reason ``log_gap`` and the
        server's end in ``body["offset"]``."""
        out = self._call("POST", LOGS_PATH, query={"key": key, "offset": str(offset)}, body=data)
        return int(out["offset"])
