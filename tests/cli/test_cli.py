"""The CLI end to end, as real processes: happy paths and every bad-input path
(one line on stderr, exit 2, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args], capture_output=True, text=True, check=False
    )


def assert_bad_input(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_plan_nvl72_example_lands_in_one_72_gpu_domain() -> None:
    proc = run("plan", str(EXAMPLES / "train-nvl72.yaml"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    choice = out["choice"]
    assert choice["accelerator"] == "GB200"
    assert choice["accelerator_count"] == 4
    assert choice["nodes"] == 18
    assert choice["nvlink_domain_gpus"] >= 72
    for key in (
        "provider",
        "region",
        "zone",
        "instance_type",
        "pricing",
        "hourly_usd",
        "total_usd",
    ):
        assert key in choice
    for alt in out["alternatives"]:
        assert alt["nvlink_domain_gpus"] >= 72
    assert isinstance(out["excluded"], list)


def test_plan_table_output_names_choice_and_exclusions() -> None:
    proc = run("plan", str(EXAMPLES / "train-llama-gang.yaml"), "--providers", "aws,gcp")
    assert proc.returncode == 0, proc.stderr
    assert "Choice for" in proc.stdout
    assert "excluded" in proc.stdout  # azure/oci are not enabled


def test_catalog_lists_filtered_offerings() -> None:
    proc = run("catalog", "--accelerator", "h100", "--provider", "AWS", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows
    assert all(r["provider"] == "aws" and r["accelerator"] == "H100" for r in rows)


def test_schema_is_json() -> None:
    proc = run("schema")
    assert proc.returncode == 0
    assert "properties" in json.dumps(json.loads(proc.stdout))


def test_validate_ok() -> None:
    proc = run("validate", str(EXAMPLES / "train-nvl72.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok:")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("kind: training\nname: x\nresources: {accelerators: H100:8\n", "(yaml)"),
        ("kind: training\nname: x\nresources: {accelerators: H1000:8}\n", "resources.accelerators"),
        (
            "kind: training\nname: x\nresources: {accelerators: H100:8, num_nodes: -1}\n",
            "num_nodes",
        ),
        (
            "kind: training\nname: x\nresources: {accelerators: H100:8, num_nodes: 9,"
            " topology: nvlink_domain}\n",
            "resources.topology",
        ),
        ("kind: training\nname: x\nresources: {instance_type: p9.huge}\n", "instance_type"),
    ],
)
def test_plan_bad_spec_is_one_line_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    assert_bad_input(run("plan", str(spec)), needle)


def test_plan_missing_file(tmp_path: Path) -> None:
    assert_bad_input(run("plan", str(tmp_path / "nope.yaml")), "nope.yaml")


def test_plan_unknown_provider_option() -> None:
    assert_bad_input(
        run("plan", str(EXAMPLES / "train-nvl72.yaml"), "--providers", "aws,foo"), "--providers"
    )


def test_plan_bad_throughput_option() -> None:
    assert_bad_input(
        run("plan", str(EXAMPLES / "train-nvl72.yaml"), "--throughput", "H100=fast"),
        "--throughput",
    )


def test_plan_missing_catalog_dir(tmp_path: Path) -> None:
    assert_bad_input(
        run("plan", str(EXAMPLES / "train-nvl72.yaml"), "--catalog", str(tmp_path / "none")),
        "none",
    )


def test_catalog_unknown_accelerator() -> None:
    assert_bad_input(run("catalog", "--accelerator", "H1000"), "--accelerator")


def test_plan_no_feasible_placement_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "tiny-budget.yaml"
    spec.write_text(
        "kind: training\nname: x\nresources: {accelerators: H100:8, max_hourly_usd: 0.01}\n"
    )
    proc = run("plan", str(spec), "--json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["choice"] is None
    assert any("max_hourly_usd" in e["reason"] for e in out["excluded"])
