"""``intercloud check`` and the AWS plugin against moto's EC2 server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from intercloud.providers.aws.plugin import PLUGIN
from intercloud.providers.aws.settings import AwsSettings
from intercloud.providers.registry import ProviderContext

REPO = Path(__file__).resolve().parents[3]


def _check(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env.update(INTERCLOUD_HOME=str(home), INTERCLOUD_LOCAL_SITES="local/local,cpus=4")
    return subprocess.run(
        [sys.executable, "-m", "intercloud", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=REPO,
    )


def test_plugin_check_on_moto(settings: AwsSettings, tmp_path: Path) -> None:
    result = PLUGIN.check(settings, ProviderContext(tmp_path, dict(os.environ)))
    assert result.usable and result.reachable and result.credentials, result.reason
    found = result.offerings["us-east-1"]
    assert found.count >= found.distinct > 0 and len(found.examples) == 3


def test_check_command_with_aws_on_moto(moto_endpoint: str, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "providers:\n"
        "  local: {}\n"
        f"  aws: {{regions: [us-east-1, us-west-2], endpoint_url: '{moto_endpoint}'}}\n"
    )
    out = _check(tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["usable"] is True and data["config"] == str(tmp_path / "config.yaml")
    aws = next(p for p in data["providers"] if p["name"] == "aws")
    assert aws["reachable"] is True and aws["credentials"] is True and aws["reason"] is None
    assert set(aws["offerings"]) == {"us-east-1", "us-west-2"}
    assert all(o["count"] > 0 for o in aws["offerings"].values())


def test_endpoint_that_is_not_ec2_is_unreachable(settings: AwsSettings, tmp_path: Path) -> None:
    # moto's server under a path it does not serve: an HTML 404 page, not EC2's XML.
    url = f"{settings.endpoint_url}/not-ec2"
    result = PLUGIN.check(
        settings.model_copy(update={"endpoint_url": url}), ProviderContext(tmp_path, {})
    )
    assert not result.usable and result.reachable is False and result.credentials is True
    assert result.reason is not None and result.reason.startswith(
        "endpoint unreachable: us-east-1: "
    )
