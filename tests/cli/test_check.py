"""``intercloud check`` as a user runs it: local only, unusable providers, bad configs.

AWS against moto's server is in ``tests/providers/aws/test_check_moto.py`` (its fixtures
start the server).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli_env, ic

from intercloud.providers.aws.plugin import NO_SDK, PLUGIN
from intercloud.providers.aws.settings import AwsSettings
from intercloud.providers.registry import ProviderContext

# No credentials anywhere, and no instance-metadata lookup (it would wait for a timeout).
NO_AWS = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
FAKE_AWS = {**NO_AWS, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def ic_aws(home: Path, *args: str, aws: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``intercloud ARGS`` with no AWS variable of this process, only ``aws``."""
    env = {k: v for k, v in cli_env(home).items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env={**env, **aws},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(text)


def test_local_only_without_config(tmp_path: Path) -> None:
    out = ic(tmp_path, "check", timeout=60)
    assert out.returncode == 0, out.stderr
    assert "local" in out.stdout and "no config.yaml: local only" in out.stdout
    data = json.loads(ic(tmp_path, "check", "--json", timeout=60).stdout)
    assert data["config"] is None and data["usable"] is True
    [local] = data["providers"]
    assert set(local) == {
        "name", "enabled", "usable", "reachable", "credentials", "offerings", "reason"
    }  # fmt: skip
    assert local["name"] == "local" and local["enabled"] and local["reason"] is None
    assert local["offerings"] == {"local": {"count": 1, "distinct": 1, "examples": ["local-cpu"]}}


def test_disabled_provider_is_shown_and_does_not_fail(tmp_path: Path) -> None:
    _write(tmp_path, "providers: {local: {}, aws: {enabled: false}}\n")
    out = ic(tmp_path, "check", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    by_name = {p["name"]: p for p in json.loads(out.stdout)["providers"]}
    assert by_name["aws"]["enabled"] is False and by_name["aws"]["reachable"] is None


@pytest.mark.parametrize("providers", ["{}", "{local: {enabled: false}}"])
def test_no_enabled_provider_is_not_usable(tmp_path: Path, providers: str) -> None:
    _write(tmp_path, f"providers: {providers}\n")
    out = ic(tmp_path, "check", "--json", timeout=60)
    assert out.returncode == 1
    assert json.loads(out.stdout)["usable"] is False
    assert out.stderr.strip().endswith("config.yaml: providers: no provider is enabled")


def test_contract_files_are_checked(tmp_path: Path) -> None:
    _write(tmp_path, "contracts: [c.yaml]\n")
    (tmp_path / "c.yaml").write_text("contracts: [\n")
    out = ic(tmp_path, "check", timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"error: {tmp_path / 'c.yaml'}: (yaml): line 2")
    repo = Path(__file__).resolve().parents[2]
    _write(tmp_path, f"contracts: [{repo / 'examples/contracts/seed.yaml'}]\n")
    assert ic(tmp_path, "check", timeout=60).returncode == 0


def test_unreachable_endpoint_is_one_line_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    _write(tmp_path, f"providers: {{local: {{}}, aws: {{endpoint_url: '{url}'}}}}\n")
    out = ic_aws(tmp_path, "check", "--json", aws=FAKE_AWS)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: aws: endpoint unreachable: ")
    by_name = {p["name"]: p for p in json.loads(out.stdout)["providers"]}
    assert by_name["aws"]["reachable"] is False and by_name["aws"]["usable"] is False
    assert by_name["local"]["usable"] is True
    table = ic_aws(tmp_path, "check", aws=FAKE_AWS)
    assert table.returncode == 1 and "endpoint unreachable" in table.stdout


def test_missing_credentials(tmp_path: Path) -> None:
    _write(tmp_path, "providers: {aws: {}}\n")
    out = ic_aws(tmp_path, "check", "--json", aws=NO_AWS)
    assert out.returncode == 1
    [aws] = json.loads(out.stdout)["providers"]
    assert aws["credentials"] is False and "no AWS credentials found" in aws["reason"]
    assert out.stderr.count("\n") == 1


def test_missing_boto3_says_install_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` raises ImportError
    result = PLUGIN.check(AwsSettings(), ProviderContext(tmp_path, {}))
    assert not result.usable and result.reason == NO_SDK
    assert "intercloud[aws]" in NO_SDK
    with pytest.raises(ValueError, match=r"intercloud\[aws\]"):
        PLUGIN.create(AwsSettings(), ProviderContext(tmp_path, {}))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("providers: {lcoal: {}}\n", "providers.lcoal: unknown provider 'lcoal'"),
        ("providers: {aws: {regions: [nowhere]}}\n", "providers.aws.regions: 'nowhere'"),
        ("caps: {local: 2}\n", "caps.local: must be at most 1"),
        ("providers: [\n", "(yaml): line"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    _write(tmp_path, text)
    for args in (("check",), ("check", "--json")):
        out = ic(tmp_path, *args, timeout=60)
        assert out.returncode == 2, out
        assert out.stdout == ""
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], lines


def test_bad_config_refuses_run_and_stores_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: hello\nresources: {cpus: '1+'}\nrun: echo hi\n")
    _write(tmp_path / "home", "providers: {local: {}, awz: {}}\n")
    out = ic(tmp_path / "home", "run", str(spec), timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'home' / 'config.yaml'}: providers.awz: unknown provider "
        "'awz'; did you mean 'aws'? (known: aws, local, ray, sim, slurm)"
    ]
    # Refused before the store was even opened, and no daemon started.
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["config.yaml"]
