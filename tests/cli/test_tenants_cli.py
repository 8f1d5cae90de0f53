"""`intercloud tenants create|list|show|set` on SQLite and PostgreSQL: happy paths, and
bad input for every option (one line naming it, exit 2, nothing stored changed); a spec
naming a tenant that does not exist is refused at submission with how to create it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intercloud.cli.main import app


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for k in [k for k in os.environ if k.startswith("INTERCLOUD_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("INTERCLOUD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("INTERCLOUD_DB_URL", db_url)
    return CliRunner()


def ok(cli: CliRunner, *args: str) -> str:
    r = cli.invoke(app, list(args))
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    return r.stdout


def okj(cli: CliRunner, *args: str) -> object:
    return json.loads(ok(cli, *args, "--json"))


def snapshot(cli: CliRunner) -> object:
    """Everything stored about tenants: limits, versions and change histories."""
    rows = okj(cli, "tenants", "list")
    assert isinstance(rows, list)
    return [(r, okj(cli, "tenants", "show", r["name"])) for r in rows]


def test_create_list_show_set(cli: CliRunner) -> None:
    out = ok(cli, "tenants", "create", "research", "--guarantee", "h100=4", "--quota",
             "H100=8,A100=2", "--weight", "2", "--budget-usd-month", "1000")  # fmt: skip
    assert out == (
        "tenant research created: weight 2, guarantees H100=4, quotas A100=2,H100=8, "
        "borrow yes, budget 1,000.00 USD/month\n"
    )
    rows = okj(cli, "tenants", "list")
    assert [r["name"] for r in rows] == ["default", "research"]  # type: ignore[union-attr]
    t = okj(cli, "tenants", "show", "research")
    assert isinstance(t, dict)
    assert t["guarantees"] == {"H100": 4} and t["quotas"] == {"H100": 8, "A100": 2}
    assert (t["weight"], t["can_borrow"], t["monthly_budget_usd"]) == (2.0, True, 1000.0)
    assert (t["running_gpus"], t["spent_usd_month"], t["budget_left_usd"]) == ({}, 0.0, 1000.0)
    assert [e["kind"] for e in t["events"]] == ["tenant_created"]
    # set: per-type options merge, --no-* clear, a guarantee of 0 removes it
    ok(cli, "tenants", "set", "research", "--guarantee", "A100=1", "--no-borrow", "--no-budget")
    t = okj(cli, "tenants", "show", "research")
    assert isinstance(t, dict)
    assert t["guarantees"] == {"H100": 4, "A100": 1} and t["can_borrow"] is False
    assert t["monthly_budget_usd"] is None and t["version"] == 2
    ok(cli, "tenants", "set", "research", "--guarantee", "A100=0", "--no-quotas",
       "--quota", "L4=3", "--weight", "0.5", "--budget-usd-month", "0", "--borrow")  # fmt: skip
    t = okj(cli, "tenants", "show", "research")
    assert isinstance(t, dict)
    assert t["guarantees"] == {"H100": 4} and t["quotas"] == {"L4": 3} and t["weight"] == 0.5
    assert t["monthly_budget_usd"] == 0.0 and t["can_borrow"] is True
    changes = t["events"][-1]["data"]["changes"]
    assert changes["weight"] == [2.0, 0.5] and changes["quotas"] == [{"H100": 8, "A100": 2},
                                                                     {"L4": 3}]  # fmt: skip
    ok(cli, "tenants", "set", "research", "--no-guarantees")
    assert okj(cli, "tenants", "show", "research")["guarantees"] == {}  # type: ignore[index]
    # the implicit default tenant can be given limits too
    ok(cli, "tenants", "set", "default", "--weight", "3")
    assert okj(cli, "tenants", "show", "default")["weight"] == 3.0  # type: ignore[index]
    # the tables render
    table = ok(cli, "tenants", "list")
    assert "research" in table and "default" in table
    shown = ok(cli, "tenants", "show", "research")
    assert shown.startswith("tenant research: weight 0.5, guarantees -, quotas L4=3")
    assert "tenant_updated" in shown


BAD: list[tuple[list[str], str]] = [
    (["create", "bad name"], "NAME"),
    (["create", ""], "NAME"),
    (["create", "a" * 65], "NAME"),
    (["create", ".hidden"], "NAME"),
    (["create", "research"], "already exists"),
    (["create", "default"], "already exists"),
    (["create", "x", "--weight", "0"], "--weight"),
    (["create", "x", "--weight", "-1"], "--weight"),
    (["create", "x", "--weight", "abc"], "--weight"),
    (["create", "x", "--weight", "inf"], "--weight"),
    (["create", "x", "--weight", "nan"], "--weight"),
    (["create", "x", "--weight", ""], "--weight"),
    (["create", "x", "--weight", "1e300"], "--weight"),  # shares divided by it: 0 or inf
    (["create", "x", "--weight", "1e-300"], "--weight"),
    (["create", "x", "--budget-usd-month", "1e300"], "--budget-usd-month"),
    (["create", "x", "--budget-usd-month", "-1"], "--budget-usd-month"),
    (["create", "x", "--budget-usd-month", "1e309"], "--budget-usd-month"),
    (["create", "x", "--budget-usd-month", "nan"], "--budget-usd-month"),
    (["create", "x", "--budget-usd-month", "ten"], "--budget-usd-month"),
    (["create", "x", "--guarantee", "H100"], "--guarantee"),
    (["create", "x", "--guarantee", "H100="], "--guarantee"),
    (["create", "x", "--guarantee", "=4"], "--guarantee"),
    (["create", "x", "--guarantee", "H100=-1"], "--guarantee"),
    (["create", "x", "--guarantee", "H100=1.5"], "--guarantee"),
    (["create", "x", "--guarantee", "H100=abc"], "--guarantee"),
    (["create", "x", "--guarantee", "H100=99999999999"], "--guarantee"),
    (["create", "x", "--guarantee", "H100=9999999999"], "--guarantee"),  # store's bound
    (["create", "x", "--guarantee", "H1000=4"], "--guarantee"),
    (["create", "x", "--guarantee", "H100=4,h100=2"], "--guarantee"),
    (["create", "x", "--guarantee", ""], "--guarantee"),
    (["create", "x", "--quota", "H100"], "--quota"),
    (["create", "x", "--quota", "H100=-3"], "--quota"),
    (["create", "x", "--quota", "TPU9=3"], "--quota"),
    (["create", "x", "--quota", "H100=1", "--quota", "H100=2"], "--quota"),
    (["create", "x", "--guarantee", "H100=8", "--quota", "H100=4"], "--quota"),
    (["set", "nobody", "--weight", "2"], "intercloud tenants create nobody"),
    (["set", "research"], "nothing to change"),
    (["set", "research", "--weight", "-2"], "--weight"),
    (["set", "research", "--weight", "1e400"], "--weight"),
    (["set", "research", "--budget-usd-month", "-5"], "--budget-usd-month"),
    (["set", "research", "--budget-usd-month", "5", "--no-budget"], "--no-budget"),
    (["set", "research", "--guarantee", "H100=x"], "--guarantee"),
    (["set", "research", "--guarantee", "B9000=1"], "--guarantee"),
    (["set", "research", "--guarantee", "H100=16"], "--guarantee"),  # above its quota of 8
    (["set", "research", "--quota", "H100=2"], "--quota"),  # below its guarantee of 4
    (["set", "research", "--quota", "H100=-1"], "--quota"),
    (["show", "nobody"], "unknown tenant 'nobody'"),
]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[" ".join(a)[:40] for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    cli: CliRunner, args: list[str], needle: str
) -> None:
    ok(cli, "tenants", "create", "research", "--guarantee", "H100=4", "--quota", "H100=8")
    before = snapshot(cli)
    r = cli.invoke(app, ["tenants", *args])
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stdout + r.stderr and r.stdout == ""
    assert snapshot(cli) == before


def test_real_process_and_a_spec_naming_an_unknown_tenant(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env.update(INTERCLOUD_HOME=str(tmp_path / "home"), INTERCLOUD_DB_URL=db_url,
               INTERCLOUD_LOCAL_SITES="local/local,cpus=2")  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "intercloud", *args], capture_output=True,
                              text=True, check=False, env=env, timeout=60)  # fmt: skip

    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: training\nname: hello\ntenant: research\nresources: {cpus: 1+}\nrun: echo hi\n"
    )
    p = run("run", "--detach", str(spec))
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr == (
        "error: unknown tenant 'research' (create it with: intercloud tenants create research)\n"
    )
    assert p.stdout == "" and not (tmp_path / "home" / "daemon.pid").exists()
    p = run("status", "--json")
    assert p.returncode == 0 and json.loads(p.stdout) == []  # nothing was stored
    p = run("tenants", "create", "research", "--quota", "H100=8")
    assert p.returncode == 0 and p.stdout.startswith("tenant research created"), p.stderr
    p = run("tenants", "create", "research")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "already exists" in p.stderr


def test_a_foreground_run_held_by_its_tenant_says_why(tmp_path: Path) -> None:
    """`intercloud run` of a job its tenant's quota holds prints why it waits (it looked
    hung), then runs it once the quota is raised."""
    import queue
    import threading

    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env.update(INTERCLOUD_HOME=str(tmp_path / "home"), INTERCLOUD_LOCAL_GPUS="H100:8",
               INTERCLOUD_DAEMON_IDLE_EXIT="2")  # fmt: skip
    cmd = [sys.executable, "-m", "intercloud"]
    subprocess.run([*cmd, "tenants", "create", "research", "--quota", "H100=4"], env=env,
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: training\nname: g\ntenant: research\nresources: {accelerators: H100:8}\n"
        "run: echo ran\n"
    )
    run = subprocess.Popen([*cmd, "run", str(spec)], env=env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert run.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in run.stdout or ()])
    reader.start()
    try:
        said = [lines.get(timeout=30) for _ in range(3)]
        assert said[2] == "job 1 is pending: over quota: research runs 0 of its 4 H100 " \
            "quota (needs 8)\n", said  # fmt: skip
        subprocess.run([*cmd, "tenants", "set", "research", "--quota", "H100=8"], env=env,
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        assert run.wait(timeout=60) == 0
        reader.join(timeout=10)
        out = "".join(lines.get_nowait() for _ in range(lines.qsize()))
        assert "ran\n" in out and out.endswith("job 1 SUCCEEDED\n"), out
    finally:
        run.kill()
        subprocess.run([*cmd, "daemon", "stop"], env=env, capture_output=True, timeout=60)
