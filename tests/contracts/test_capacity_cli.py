"""``intercloud capacity plan`` as a user runs it: JSON, plots, and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercloud", "capacity", "plan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    demand = tmp_path / "demand.yaml"
    offers = tmp_path / "offers.yaml"
    demand.write_text(
        yaml.safe_dump(
            {
                "start": "2026-01",
                "demand": [{"accelerator": "H100", "kind": "training", "gpu_hours": [1000.0] * 3}],
            }
        )
    )
    offers.write_text(
        yaml.safe_dump(
            {
                "providers": [
                    {"provider": "aws", "offers": [{"accelerator": "H100", "on_demand": 4.0}]},
                    {"provider": "gcp", "offers": [{"accelerator": "H100", "on_demand": 5.0}]},
                ],
                "policy": {"max_share": 0.6},
            }
        )
    )
    return demand, offers


def test_json_plan_and_baselines(files: tuple[Path, Path]) -> None:
    demand, offers = files
    res = _run(str(demand), "--offers", str(offers), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["total_usd"] == pytest.approx(13200.0)
    assert data["baselines"]["uncapped_usd"] == pytest.approx(12000.0)
    assert data["baselines"]["caps_cost_usd"] == pytest.approx(1200.0)
    assert data["baselines"]["all_on_demand_usd"] == pytest.approx(13200.0)
    assert data["baselines"]["best_single_provider"] == {"provider": "aws", "usd": 12000.0}
    assert data["share_by_provider"]["aws"] == pytest.approx([0.6] * 3)
    assert data["months"] == ["2026-01", "2026-02", "2026-03"]


def test_text_output(files: tuple[Path, Path]) -> None:
    demand, offers = files
    res = _run(str(demand), "--offers", str(offers))
    assert res.returncode == 0, res.stderr
    assert "caps cost           $1.20k" in res.stdout
    assert "best one provider   $12.00k (aws)" in res.stdout


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no matplotlib")
def test_plots_written(files: tuple[Path, Path], tmp_path: Path) -> None:
    demand, offers = files
    out = tmp_path / "plots"
    res = _run(str(demand), "--offers", str(offers), "--out", str(out), "--no-baselines")
    assert res.returncode == 0, res.stderr
    for name in ("commitments.png", "capacity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line_and_exit_2(files: tuple[Path, Path], tmp_path: Path) -> None:
    demand, offers = files
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers:\n  - provider: aws\n    offers: [{accelerator: H100, on_demand: -1}]\n"
    )
    res = _run(str(demand), "--offers", str(bad))
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1
    assert f"{bad}: providers[0].offers[0].on_demand: must be greater than 0" in res.stderr
    res = _run(str(tmp_path / "missing.yaml"), "--offers", str(offers))
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr


def test_unmeetable_demand_names_months(files: tuple[Path, Path], tmp_path: Path) -> None:
    demand, _ = files
    offers = tmp_path / "tight.yaml"
    offers.write_text(
        yaml.safe_dump(
            {
                "providers": [
                    {
                        "provider": "aws",
                        "offers": [
                            {
                                "accelerator": "H100",
                                "on_demand": 4.0,
                                "max_gpus": [{"month": "2026-03", "gpus": 2}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    res = _run(str(demand), "--offers", str(offers))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1
    assert "H100 2026-01 short 1,000 GPU-hours, H100 2026-02 short 1,000 GPU-hours" in res.stderr
    assert "2026-03" not in res.stderr


def test_seed_scenario_from_the_readme() -> None:
    res = _run(
        "examples/capacity/demand.yaml",
        "--offers",
        "examples/capacity/offers.yaml",
        "--json",
        "--no-baselines",
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert len(data["months"]) == 84 and data["months"][0] == "2025-11"
    assert data["signed_contracts_usd"] == 0.0
    assert max(max(v) for v in data["share_by_provider"].values()) <= 0.7 + 1e-6
    assert min(data["share_by_provider"]["azure"]) >= 0.25 - 1e-6


def test_seed_scenario_with_its_signed_contracts() -> None:
    args = ["examples/capacity/demand.yaml", "--offers", "examples/capacity/offers.yaml"]
    res = _run(*args, "--contracts", "examples/contracts/seed.yaml", "--json", "--no-baselines")
    assert res.returncode == 0, res.stderr
    with_signed = json.loads(res.stdout)
    assert with_signed["signed_contracts_usd"] > 1e9
    res = _run(*args, "--json", "--no-baselines")
    # Capacity already paid for makes the rest of the plan cheaper.
    assert with_signed["total_usd"] < json.loads(res.stdout)["total_usd"]


def _policy_offers(tmp_path: Path, policy: dict[str, object]) -> Path:
    """aws up to 1,000 GPUs, gcp 1 GPU: a cap on aws binds through gcp's ramp."""
    offers = tmp_path / "policy.yaml"
    providers = [
        {"provider": "aws", "max_gpus": [{"month": "2026-01", "gpus": 1000}]},
        {"provider": "gcp", "max_gpus": [{"month": "2026-01", "gpus": 1}]},
    ]
    for p, usd in zip(providers, (6.9, 10.0), strict=True):
        p["offers"] = [{"accelerator": "H100", "on_demand": usd}]
    offers.write_text(yaml.safe_dump({"providers": providers, "policy": policy}))
    return offers


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ({"max_share": 0.4}, "policy.max_share: 0.4 x 2 provider(s) is below 1"),
        (
            {"max_share": 0.6, "primary": "aws", "primary_min_share": 0.7},
            "policy.primary_min_share: is above policy.max_share",
        ),
        ({"max_share": "0.6"}, "policy.max_share: expected a number, got '0.6'"),
        ({"max_share": True}, "policy.max_share: expected a number, got true"),
        # By hand: gcp supplies at most 1 GPU x 672 h in February (744 h in March) and
        # aws at most 0.6 of the total, so aws <= 1.5 x gcp: 1,680 of 2,000 GPU-hours,
        # 1,860 of 5,000 in March. January's 1,000 fits.
        (
            {"max_share": 0.6},
            "cannot be met with the offers' limits; under it: "
            "H100 2026-02 short 320 GPU-hours, H100 2026-03 short 3,140 GPU-hours",
        ),
        # gcp as primary with half of each month: at most 2 x gcp's hours.
        (
            {"max_share": 1.0, "primary": "gcp", "primary_min_share": 0.5},
            "H100 2026-02 short 656 GPU-hours, H100 2026-03 short 3,512 GPU-hours",
        ),
    ],
)
def test_infeasible_policy_is_one_line_naming_it(
    tmp_path: Path, policy: dict[str, object], needle: str
) -> None:
    demand = tmp_path / "demand.yaml"
    series = [{"accelerator": "H100", "kind": "training", "gpu_hours": [1000, 2000, 5000]}]
    demand.write_text(yaml.safe_dump({"start": "2026-01", "demand": series}))
    res = _run(str(demand), "--offers", str(_policy_offers(tmp_path, policy)))
    assert res.returncode == 2, res.stdout
    assert res.stdout == "" and res.stderr.count("\n") == 1
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_contracts_status_of_the_seed_from_the_readme(tmp_path: Path) -> None:
    """The README's burn-down command: every seed contract, its alerts, exit 0."""
    args = ["--contracts", "examples/contracts/seed.yaml", "--at", "2026-12-01", "--json"]
    res = subprocess.run(
        [sys.executable, "-m", "intercloud", "contracts", "status", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "INTERCLOUD_HOME": str(tmp_path / "home")},
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    by_name = {c["name"]: c for c in data["contracts"]}
    assert set(by_name) == {"aws-2025", "azure-2025", "gcp-2026", "oci-2027"}
    aws = by_name["aws-2025"]
    assert aws["committed_usd"] == 38.0e9 and aws["started"] and not aws["on_track"]
    # No job ran: the spend is the reserved blocks' bills, all unassigned.
    assert aws["spent_usd"] > 0 and set(data["chargeback"]) == {"unassigned"}
    assert not by_name["oci-2027"]["started"]
    codes = {(a["code"], a.get("contract")) for a in data["alerts"]}
    assert ("under_consumption", "aws-2025") in codes
