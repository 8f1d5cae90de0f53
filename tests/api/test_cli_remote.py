"""The CLI as a client of the server: the same output and exit codes as embedded."""

from __future__ import annotations

import re
from pathlib import Path

from api_helpers import Server
from cli_helpers import ic, stop_daemon

SPEC = "kind: training\nname: hello\ntenant: alpha\nresources: {cpus: 1+}\nrun: echo hi from job\n"


def _norm(text: str) -> list[str]:
    """Lines without what differs between two stores: times, process ids."""
    text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.+]+", "<time>", text)
    text = re.sub(r"pid \d+", "pid <pid>", text)
    return [line.rstrip() for line in text.splitlines()]


def test_run_status_logs_cancel_match_embedded(server: Server, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC)
    token = server.token("alpha", "member")
    home = tmp_path / "embedded"
    assert ic(home, "tenants", "create", "alpha").returncode == 0
    try:
        local = ic(home, "run", str(spec))
        remote = server.ic(token, "run", str(spec))
        assert local.returncode == remote.returncode == 0, (local.stderr, remote.stderr)
        assert _norm(remote.stdout) == _norm(local.stdout)
        assert "hi from" in remote.stdout
        job = re.match(r"job (\d+) ", remote.stdout)
        local_job = re.match(r"job (\d+) ", local.stdout)
        assert job and local_job and job.group(1) == local_job.group(1) == "1"
        for args in (("status", "1"), ("logs", "1"), ("cancel", "1"), ("status", "77"),
                     ("cancel", "77"), ("queue", "--json")):  # fmt: skip
            a, b = ic(home, *args), server.ic(token, *args)
            assert (b.returncode, _norm(b.stdout), b.stderr) == (
                a.returncode,
                _norm(a.stdout),
                a.stderr,
            ), args
        bad = tmp_path / "bad.yaml"
        bad.write_text("kind: training\nname: x\nresources: {cpus: -1}\nrun: echo\n")
        a, b = ic(home, "run", str(bad)), server.ic(token, "run", str(bad))
        assert (b.returncode, b.stderr) == (a.returncode, a.stderr) and a.returncode == 2
    finally:
        stop_daemon(home)


def test_tenants_and_refusals_through_the_cli(server: Server, tmp_path: Path) -> None:
    viewer = server.token("beta", "viewer")
    listed = server.ic(viewer, "tenants", "list", "--json")
    assert listed.returncode == 0
    assert '"name": "beta"' in listed.stdout and '"alpha"' not in listed.stdout
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC.replace("tenant: alpha\n", ""))
    refused = server.ic(viewer, "run", "-d", str(spec))
    assert refused.returncode == 2
    assert refused.stderr == "error: role viewer may not submit\n"
    bad = server.ic("ic_wrong", "status")
    assert (bad.returncode, bad.stderr) == (2, "error: unknown token\n")
    daemon = server.ic(viewer, "daemon", "status")
    assert daemon.returncode == 2 and "runs on the API server" in daemon.stderr


def test_admin_commands_and_login(server: Server, tmp_path: Path) -> None:
    made = server.ic(server.admin, "admin", "tenants", "create", "gamma", "--quota", "H100=4")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("tenant gamma created: ") and "quotas H100=4" in made.stdout
    tok = server.ic(
        server.admin, "admin", "tokens", "create", "--tenant", "gamma", "--role", "member"
    )
    assert tok.returncode == 0, tok.stderr
    secret = tok.stdout.strip()
    assert secret.startswith("ic_") and "shown once" in tok.stderr
    token_id = re.search(r"token (\d+)", tok.stderr)
    assert token_id
    quota = server.ic(server.admin, "admin", "quota", "gamma", "--quota", "A100=2")
    assert "quotas A100=2,H100=4" in quota.stdout, quota.stderr
    shown_t = server.ic(server.admin, "admin", "tenants", "show", "gamma")
    assert shown_t.stdout.startswith("tenant gamma: ") and "quotas A100=2,H100=4" in shown_t.stdout
    missing = server.ic(server.admin, "admin", "tenants", "show", "nope")
    assert (missing.returncode, missing.stderr) == (
        2,
        "error: unknown tenant 'nope' (create it with: intercloud tenants create nope)\n",
    )
    # login keeps URL and token: later commands need no variables
    home = tmp_path / "user"
    logged = ic(home, "login", server.url, "--token", secret)
    assert logged.returncode == 0 and "member of tenant gamma" in logged.stdout
    assert (home / "login.json").stat().st_mode & 0o077 == 0
    assert ic(home, "queue", "--json").stdout.strip() == "[]"
    shown = server.ic(server.admin, "admin", "tokens", "show", token_id.group(1))
    assert "member of gamma, live" in shown.stdout
    revoked = server.ic(server.admin, "admin", "tokens", "revoke", token_id.group(1))
    assert "revoked" in revoked.stdout
    after = ic(home, "queue")
    assert (after.returncode, after.stderr) == (2, "error: token revoked\n")
    audit = server.ic(server.admin, "admin", "audit", "--limit", "1000")
    assert f"POST /v1/tokens/{token_id.group(1)}/revoke" in audit.stdout
    denied = server.ic(secret, "admin", "tenants", "create", "delta")
    assert denied.returncode == 2 and "unauthorized" not in denied.stderr


def test_a_remote_run_held_by_its_tenant_says_why(tmp_path: Path) -> None:
    """As embedded: a foreground `run` whose job its tenant's quota holds prints why."""
    import queue
    import subprocess
    import sys
    import threading

    from api_helpers import running_server
    from cli_helpers import cli_env

    sites = "local/local,cpus=8,gpus=H100:8"
    with running_server(tmp_path / "home", INTERCLOUD_LOCAL_SITES=sites) as server:
        server.tenant("research", quotas={"H100": 4})
        token = server.token("research", "member")
        spec = tmp_path / "job.yaml"
        spec.write_text(
            "kind: training\nname: g\ntenant: research\nresources: {accelerators: H100:8}\n"
            "run: echo ran\n"
        )
        env = cli_env(tmp_path / "client", INTERCLOUD_API_URL=server.url, INTERCLOUD_TOKEN=token)
        run = subprocess.Popen(
            [sys.executable, "-m", "intercloud", "run", str(spec)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in run.stdout or ()])
        reader.start()
        try:
            said = [lines.get(timeout=60) for _ in range(3)]
            assert said[2] == (
                "job 1 is pending: over quota: research runs 0 of its 4 H100 quota (needs 8)\n"
            ), said
            r = server.call(server.admin, "PATCH", "/v1/tenants/research",
                            json={"quotas": {"H100": 8}})  # fmt: skip
            assert r.status_code == 200, r.text
            assert run.wait(timeout=90) == 0
            reader.join(timeout=10)
            out = "".join(lines.get_nowait() for _ in range(lines.qsize()))
            assert "ran\n" in out and out.endswith("job 1 SUCCEEDED\n"), out
        finally:
            run.kill()
