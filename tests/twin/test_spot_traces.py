"""Spot reclaim rates from preemption traces, and the CLI option that uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intercloud.cli.main import app
from intercloud.twin.spot_traces import spot_reclaim_rate


def write(path: Path, gap: float, data: list[int]) -> Path:
    path.write_text(json.dumps({"metadata": {"gap_seconds": gap}, "data": data}))
    return path


def test_rate_is_drops_over_instance_days(tmp_path: Path) -> None:
    # 4 ticks of 6 h: 1, 0, 1, 1 -> one reclaim over 18 instance-hours
    a = write(tmp_path / "a.json", 6 * 3600, [1, 0, 1, 1])
    r = spot_reclaim_rate(a)
    assert (r.reclaims, r.files) == (1, 1)
    assert r.per_node_day == pytest.approx(1 / 0.75)
    # 4 nodes dropping to 2 is two reclaims; a folder pools its files
    write(tmp_path / "b.json", 86_400, [4, 2, 2])
    both = spot_reclaim_rate(tmp_path)
    assert (both.reclaims, both.files) == (3, 2)
    assert both.instance_days == pytest.approx(0.75 + 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "cannot read"), ('{"data": []}', "not a spot trace"),
     ('{"metadata": {"gap_seconds": 0}, "data": [1]}', "gap_seconds")],
)  # fmt: skip
def test_bad_traces_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "x.json"
    f.write_text(text)
    with pytest.raises(ValueError, match=message) as got:
        spot_reclaim_rate(f)
    assert "x.json" in str(got.value)
    with pytest.raises(ValueError, match="no such"):
        spot_reclaim_rate(tmp_path / "missing")


def test_cli_takes_the_rate_from_a_trace(tmp_path: Path) -> None:
    fleet = tmp_path / "spot.yaml"
    fleet.write_text(
        "name: spot\nproviders:\n  - name: aws\n    regions:\n      - name: us-east-1\n"
        "        zones:\n          - name: us-east-1a\n            pools:\n"
        "              - {instance_type: p5.48xlarge, pricing: spot, nodes: 4}\n"
    )
    jobs = tmp_path / "jobs.csv"
    rows = [f"{i * 600},{4 * 3600},8,true" for i in range(12)]
    jobs.write_text("submit_time,duration,gpus,spot_allowed\n" + "\n".join(rows) + "\n")
    hot = write(tmp_path / "hot.json", 3600, [1, 0] * 200)  # a reclaim every 2 h
    args = ["twin", "run", str(fleet), "--trace", str(jobs), "--json"]
    r = CliRunner().invoke(app, [*args, "--spot-trace", str(hot)])
    assert r.exit_code == 0, r.stdout
    base = CliRunner().invoke(app, [*args, "--failures", "off"])
    assert json.loads(r.stdout)["failures"].get("spot_reclaim", 0) > 0
    assert json.loads(base.stdout)["failures"] == {}
    bad = CliRunner().invoke(app, [*args, "--spot-trace", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "nope" in bad.stderr
