"""``RemoteClient``: ``intercloud.sdk.Client``'s methods over the API server, so the CLI
and scripts work the same against a server as against the embedded store.

```python
from intercloud.api.client import RemoteClient
with RemoteClient("http://10.0.0.5:8420", token) as ic:
    sub = ic.submit("examples/train-local-ddp.yaml")
    final = ic.wait(sub.job_id)
```

Where the CLI finds a server (``remote_target``): ``INTERCLOUD_API_URL`` and
``INTERCLOUD_TOKEN``, else what ``intercloud login`` saved in ``$INTERCLOUD_HOME/login.json``;
neither: the embedded store (the default). Refusals come back as the exceptions the
embedded client raises (``UnknownWorkload`` for 404, ``NotRunnable``, ``RemoteError`` — a
``ValueError`` — for the rest), with the server's one-line message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from intercloud.api.errors import ErrorCode

URL_ENV = "INTERCLOUD_API_URL"
TOKEN_ENV = "INTERCLOUD_TOKEN"
LOGIN_FILE = "login.json"
#: Seconds to wait for an answer (a submission plans: not instant on a loaded server).
TIMEOUT_S = 60.0


class RemoteError(ValueError):
    """The server refused (``code`` an ``ErrorCode``), or could not be reached."""

    def __init__(self, message: str, code: ErrorCode | None = None, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class RemoteTarget:
    url: str
    token: str


def check_url(url: str, name: str = URL_ENV) -> str:
    """``http(s)://host[:port]`` without a trailing slash; ValueError naming ``name``."""
    text = url.strip().rstrip("/")
    parsed = httpx.URL(text) if "://" in text else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{name}: {url!r} must be an http:// or https:// URL")
    return text


def login_path(home: Path | None = None) -> Path:
    from intercloud.settings import home as default_home

    return (home or default_home()) / LOGIN_FILE


def save_login(target: RemoteTarget, home: Path | None = None) -> Path:
    """Keep ``target`` for later commands (a private file: it holds the token)."""
    from intercloud.store.private import create_private_file, private_mkdir

    path = login_path(home)
    private_mkdir(path.parent)
    create_private_file(path)
    path.write_text(json.dumps({"url": target.url, "token": target.token}) + "\n")
    return path


def remote_target(environ: Mapping[str, str] | None = None) -> RemoteTarget | None:
    """The server the CLI should talk to, None for the embedded store. ValueError (one
    line, naming the variable) for a URL without a token or a bad URL."""
    env = os.environ if environ is None else environ
    url = env.get(URL_ENV, "").strip()
    token = env.get(TOKEN_ENV, "").strip()
    if url:
        if not token:
            raise ValueError(f"{TOKEN_ENV}: required with {URL_ENV} (a token from an admin)")
        return RemoteTarget(check_url(url), token)
    from intercloud.settings import home

    path = login_path(home(env))
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        saved = RemoteTarget(check_url(str(data["url"]), str(path)), str(data["token"]))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: not a login file; run `intercloud login URL` again") from None
    return saved


@dataclass(frozen=True)
class RemotePlacement:
    """A placement as the server sent it (``Placement.to_dict()``)."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)

    @property
    def hourly_usd(self) -> float:
        return float(self.data.get("hourly_usd") or 0.0)


@dataclass(frozen=True)
class RemotePlan:
    choice: RemotePlacement | None


@dataclass(frozen=True)
class RemoteSubmission:
    job_id: int
    name: str
    plan: RemotePlan
    ignored_fields: tuple[str, ...]
    notes: tuple[str, ...]


class RemoteClient:
    """The SDK client's methods, answered by the server at ``url`` for ``token``."""

    def __init__(self, url: str, token: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.url = check_url(url, "url")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )

    @classmethod
    def from_target(cls, target: RemoteTarget) -> RemoteClient:
        return cls(target.url, target.token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the API server at {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _refusal(response)
        return response.json()

    # -- submit and read ---------------------------------------------------------------
    def submit(
        self,
        spec: Path | str,
        *,
        text: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RemoteSubmission:
        """Send the spec (read here, bounded as the embedded client reads it)."""
        from intercloud.specs import read_spec_text

        spec_text = read_spec_text(Path(spec)) if text is None else text
        headers = {"Content-Type": "application/yaml", "X-Intercloud-Spec-Name": str(spec)}
        if env:
            headers["X-Intercloud-Env"] = json.dumps(dict(env))
        data = self._call("POST", "/v1/workloads", content=spec_text.encode(), headers=headers)
        placement = data.get("placement")
        return RemoteSubmission(
            job_id=int(data["id"]),
            name=str(data["name"]),
            plan=RemotePlan(RemotePlacement(placement) if placement else None),
            ignored_fields=tuple(data.get("ignored_fields") or ()),
            notes=tuple(data.get("notes") or ()),
        )

    def status(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/workloads/{job_id}")
        return result

    def jobs(self, states: list[Any] | None = None) -> list[dict[str, Any]]:
        params = {"state": [str(getattr(s, "value", s)) for s in states]} if states else None
        result: list[dict[str, Any]] = self._call("GET", "/v1/workloads", params=params)
        return result

    def queue(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/queue")
        return result

    def cancel(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/workloads/{job_id}/cancel")
        return result

    def wait(
        self, job_id: int, timeout: float | None = None, poll_s: float = 0.5
    ) -> dict[str, Any]:
        """Poll until the job is terminal (or ``timeout`` seconds); its summary."""
        from intercloud.control.states import JobState

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            s = self.status(job_id)
            if JobState(s["state"]).terminal or (
                deadline is not None and time.monotonic() > deadline
            ):
                return s
            time.sleep(poll_s)

    def logs(
        self,
        job_id: int,
        node: int | None = None,
        follow: bool = False,
        on_hold: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        """The job's log lines, streamed. With ``follow``, ``on_hold`` is called with the
        reason each time the job, while pending before its first line, is held for a new
        one (the server's stream starts with the job's first line)."""
        if follow and on_hold is not None:
            self._report_holds(job_id, on_hold)
        params: dict[str, Any] = {"follow": "true" if follow else "false"}
        if node is not None:
            params["node"] = node
        path = f"/v1/workloads/{job_id}/logs"
        timeout = httpx.Timeout(None, connect=10.0) if follow else None
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _refusal(response)
                rest = b""
                for chunk in response.iter_bytes():
                    rest += chunk
                    *whole, rest = rest.split(b"\n")
                    for line in whole:
                        yield line.decode(errors="replace") + "\n"
                if rest:
                    yield rest.decode(errors="replace")
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the API server at {self.url}: {exc}") from None

    def _report_holds(
        self, job_id: int, on_hold: Callable[[str], None], poll_s: float = 0.5
    ) -> None:
        """Poll while the job is pending, saying each new reason it is held for."""
        held = ""
        while True:
            s = self.status(job_id)
            if s["state"] != "PENDING":
                return
            reason = s.get("reason") or ""
            if reason and reason != held and reason != "submitted":
                on_hold(reason)
            held = reason
            time.sleep(poll_s)

    # -- tenants -----------------------------------------------------------------------
    def tenants(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/tenants")
        return result

    def tenant(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/tenants/{name}")
        return result

    def create_tenant(self, name: str, **limits: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/tenants", json={"name": name, **limits})
        return result

    def set_tenant(self, name: str, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/v1/tenants/{name}", json=changes)
        return result

    # -- tokens and audit --------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/whoami")
        return result

    def create_token(
        self, tenant: str, role: str, name: str = "", expires_days: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"tenant": tenant, "role": role, "name": name}
        if expires_days is not None:
            body["expires_days"] = expires_days
        result: dict[str, Any] = self._call("POST", "/v1/tokens", json=body)
        return result

    def tokens(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant else None
        result: list[dict[str, Any]] = self._call("GET", "/v1/tokens", params=params)
        return result

    def token(self, token_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/tokens/{token_id}")
        return result

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/tokens/{token_id}/revoke")
        return result

    def audit(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        params = {"after": after, "limit": limit}
        result: list[dict[str, Any]] = self._call("GET", "/v1/audit", params=params)
        return result

    # -- the control loop runs beside the server, not here ----------------------------
    def _no_daemon(self) -> RemoteError:
        return RemoteError(
            f"the control loop runs on the API server ({self.url}); "
            "manage it there (unset INTERCLOUD_API_URL or `intercloud login` to use this host's)"
        )

    def ensure_daemon(self) -> int:
        raise self._no_daemon()

    def stop_daemon(self, timeout: float = 10.0) -> bool:
        raise self._no_daemon()

    def daemon_status(self) -> dict[str, Any]:
        raise self._no_daemon()

    def fleet(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/fleet")
        return result


def _refusal(response: httpx.Response) -> Exception:
    """The exception the embedded client would raise for the server's refusal."""
    try:
        body = response.json()
        code = ErrorCode(body["code"])
        message = str(body["message"])
        field = body.get("field")
    except (ValueError, KeyError, TypeError):
        return RemoteError(f"API server answered {response.status_code} without an error body")
    if code is ErrorCode.NOT_FOUND:
        from intercloud.store import UnknownWorkload

        return UnknownWorkload(message)
    if code is ErrorCode.NOT_RUNNABLE:
        from intercloud.sdk import NotRunnable

        return NotRunnable(message)
    if code is ErrorCode.RATE_LIMITED:
        message += f" (retry after {response.headers.get('retry-after', '?')} s)"
    return RemoteError(message, code, field)
