"""``intercloud twin run``: a run end to end, its files, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intercloud.cli.main import app

REPO = Path(__file__).resolve().parents[2]
SMALL = str(REPO / "examples" / "fleets" / "small-cluster.yaml")
FIX = Path(__file__).with_name("fixtures")


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["twin", "run", *args])
    return r.exit_code, r.stdout, r.stderr


def test_run_accounts_for_every_job_and_writes_its_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, _ = invoke(
        SMALL, "--trace", str(FIX / "generic_small.csv"), "--format", "generic_csv",
        "--seed", "3", "--json", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stdout
    rep = json.loads(stdout)
    rows = [r for r in (FIX / "generic_small.csv").read_text().splitlines()[1:] if r.strip()]
    assert rep["jobs_total"] == len(rows)
    assert rep["jobs_total"] == (
        rep["jobs_completed"] + rep["jobs_unfinished"] + rep["jobs_unplaceable"]
    )
    saved = json.loads((out / "report.json").read_text())
    assert saved["jobs_total"] == rep["jobs_total"]
    assert (out / "series.csv").read_text().startswith("t_s,allocated_gpus")
    page = (out / "index.html").read_text()
    assert "report.json" in page
    pytest.importorskip("matplotlib")
    for png in ("utilization.png", "queue.png", "cost.png", "jct_cdf.png"):
        assert (out / png).stat().st_size > 1000 and png in page


def test_synthetic_scale_up_and_summary() -> None:
    code, stdout, _ = invoke(
        SMALL, "--trace", str(FIX / "philly_small.csv"), "--format", "philly",
        "--jobs", "200", "--load", "0.7", "--days", "5", "--tick", "60", "--failures", "off",
        "--queue-order", "fair_share",
    )  # fmt: skip
    assert code == 0, stdout
    assert "mean utilisation" in stdout and "offered load (synthetic)" in stdout


def test_same_seed_same_report() -> None:
    args = (SMALL, "--trace", str(FIX / "philly_small.csv"), "--format", "philly",
            "--jobs", "100", "--days", "3", "--seed", "9", "--json")  # fmt: skip
    a, b = json.loads(invoke(*args)[1]), json.loads(invoke(*args)[1])
    for d in (a, b):
        d.pop("wall_s")
        d.pop("events_per_s")
    assert a == b


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "missing.csv"], "missing.csv"),
        (["--trace", str(FIX / "philly_small.csv"), "--format", "nope"], "--format"),
        (["--trace", str(FIX / "philly_small.csv"), "--failures", "maybe"], "--failures"),
        (["--trace", str(FIX / "philly_small.csv"), "--jobs", "0"], "--jobs"),
        (["--trace", str(FIX / "philly_small.csv"), "--queue-order", "x"], "--queue-order"),
        (["--trace", str(FIX / "philly_small.csv"), "--handoff", "-1"], "--handoff"),
        (["--trace", str(FIX / "philly_small.csv"), "--handoff", "5", "--tick", "60"], "--handoff"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    code, _, stderr = invoke(SMALL, *args)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr


def test_bad_fleet_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "f.yaml"
    bad.write_text("name: x\nproviders: 3\n")
    code, _, stderr = invoke(
        str(bad), "--trace", str(FIX / "philly_small.csv"), "--format", "philly"
    )
    assert code == 2 and stderr.count("\n") == 1 and "providers" in stderr


def test_empty_trace_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("submit_time,duration,gpus\n")
    code, _, stderr = invoke(SMALL, "--trace", str(empty))
    assert code == 2 and "no jobs" in stderr


def test_compare_two_runs(tmp_path: Path) -> None:
    base = [SMALL, "--trace", str(FIX / "philly_small.csv"), "--format", "philly",
            "--jobs", "20", "--days", "1"]  # fmt: skip
    for name, fail in (("on", "on"), ("off", "off")):
        code, out, _ = invoke(*base, "--failures", fail, "--out", str(tmp_path / name))
        assert code == 0, out
    r = CliRunner().invoke(app, ["twin", "compare", str(tmp_path / "on"), str(tmp_path / "off"),
                                 "--json"])  # fmt: skip
    assert r.exit_code == 0, r.stdout
    rows = {x["field"]: x for x in json.loads(r.stdout)}
    assert rows["jobs_total"]["a"] == rows["jobs_total"]["b"] == 20
    assert rows["jobs_total"]["change"] == 0.0
    bad = CliRunner().invoke(app, ["twin", "compare", str(tmp_path / "on"), str(tmp_path)])
    assert bad.exit_code == 2 and "no such report" in bad.stderr
