"""On SkyPilot's catalog subset, `intercloud plan --catalog` picks what SkyPilot's optimizer
picks (instance type and hourly price; ties between regions may break either way).

Expected choices: ../shared/peers/README.md (SkyPilot 0.14.1 run on the same rows).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CASES = {
    "H100:8": ("resources:\n  accelerators: H100:8\n", "gcp", "a3-highgpu-8g", 43.0662),
    "H100:8 spot": (
        "resources:\n  accelerators: H100:8\n  use_spot: true\n",
        "aws",
        "p5.48xlarge",
        10.2397,
    ),
    "A100:8": ("resources:\n  accelerators: A100:8\n", "aws", "p4d.24xlarge", 21.9576),
    "A100-80GB:8": ("resources:\n  accelerators: A100-80GB:8\n", "aws", "p4de.24xlarge", 27.4471),
    "8+ CPUs": ("resources:\n  cpus: 8+\n", "oci", "VM.Standard.E4.Flex$_8_32", 0.148),
}


@pytest.mark.parametrize("label", list(CASES))
def test_same_choice_as_skypilot(label: str, skypilot_subset: Path, tmp_path: Path) -> None:
    task, provider, instance_type, hourly = CASES[label]
    spec = tmp_path / "task.yaml"
    spec.write_text("name: parity\n" + task + "run: echo hi\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "intercloud",
            "plan",
            str(spec),
            "--catalog",
            str(skypilot_subset),
            "--providers",
            "aws,gcp,oci,lambda",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    choice = json.loads(proc.stdout)["choice"]
    assert choice["provider"] == provider
    assert choice["instance_type"] == instance_type
    assert choice["hourly_usd"] == pytest.approx(hourly, abs=1e-4)
