"""config.yaml: defaults without a file, every section, one-line errors naming the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from intercloud.config import CONFIG_ENV, ConfigError, IntercloudConfig, PoolRule, load_config
from intercloud.providers.aws.settings import AwsSettings
from intercloud.providers.local_plugin import LocalSettings, local_config
from intercloud.providers.registry import ProviderContext

FULL = """
providers:
  local: {cpus: 4}
  aws:
    regions: [us-east-1, us-west-2]
    cluster_id: lab
  gcp_off: null
failover:
  cooldown_s: {first: 30, max: 600}
  down_after_s: 120
pools:
  idle_s: 90
  max_instances: 4
  providers: {aws: {max_instances: 10}}
  offerings: {aws/us-east-1/p4d.24xlarge: {max_instances: 1, idle_s: 5}}
caps: {aws: 0.75, local: 1}
agent: {listen: "0.0.0.0:8470", public_url: "https://ic.example.com:8470"}
"""


def _load(home: Path, text: str | None, **env: str) -> IntercloudConfig:
    if text is not None:
        (home / "config.yaml").write_text(textwrap.dedent(text))
    return load_config({"INTERCLOUD_HOME": str(home), **env}, home)


def _error(home: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as err:
        _load(home, text, **env)
    line = str(err.value)
    assert "\n" not in line and "Traceback" not in line
    return line


def test_no_file_means_local_only(tmp_path: Path) -> None:
    config = _load(tmp_path, None)
    assert config.source is None and config.enabled == ["local"]
    assert config.pools.rule("aws", "us-east-1", "p5.48xlarge") == PoolRule(8, 300.0)
    assert config.failover.cooldown_s.first == 60 and config.caps == {}


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "failover: {down_after_s: 60}\n"])
def test_file_without_providers_means_local_only(tmp_path: Path, text: str) -> None:
    assert _load(tmp_path, text).enabled == ["local"]


def test_every_section(tmp_path: Path) -> None:
    text = FULL.replace("  gcp_off: null\n", "")
    config = _load(tmp_path, text)
    assert config.source == tmp_path / "config.yaml"
    assert config.enabled == ["aws", "local"]
    aws = config.providers["aws"].settings
    assert isinstance(aws, AwsSettings)
    assert aws.regions == ["us-east-1", "us-west-2"] and aws.cluster_id == "lab"
    assert config.failover.cooldown_s.max == 600 and config.failover.down_after_s == 120
    assert config.pools.rule("aws", "us-east-1", "p4d.24xlarge") == PoolRule(1, 5.0)
    assert config.pools.rule("aws", "us-west-2", "p4d.24xlarge") == PoolRule(4, 90.0)
    assert config.pools.provider_max("aws") == 10 and config.pools.provider_max("local") is None
    assert config.caps == {"aws": 0.75, "local": 1.0}
    assert config.agent.url == "https://ic.example.com:8470"


def test_disabled_provider_is_listed_not_enabled(tmp_path: Path) -> None:
    config = _load(
        tmp_path, "providers: {local: null, aws: {enabled: false, regions: [eu-west-1]}}"
    )
    assert config.enabled == ["local"] and not config.providers["aws"].enabled


def test_config_env_points_elsewhere(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("providers: {aws: {}}\n")
    config = _load(tmp_path, None, **{CONFIG_ENV: str(other)})
    assert config.source == other and config.enabled == ["aws"]


def test_local_settings_default_to_the_environment(tmp_path: Path) -> None:
    env = {"INTERCLOUD_LOCAL_SITES": "local/local,cpus=3;gcp/us-central1,cpus=2"}
    ctx = ProviderContext(tmp_path, env)
    from_env = local_config(LocalSettings(), ctx)
    assert [s.key for s in from_env.sites] == ["local/local/", "gcp/us-central1/"]
    assert from_env.root == tmp_path / "local"
    said = local_config(LocalSettings(cpus=5, gpus="H100:2"), ctx)
    [site] = said.sites
    assert (site.cpu_slots, site.gpu_type, site.gpu_slots) == (5, "H100", 2)
    # A section that says nothing keeps the environment's sites: one posing as aws
    # meets an enabled aws.
    posing = {"INTERCLOUD_LOCAL_SITES": "local/local,cpus=3;aws/us-east-1,cpus=2"}
    line = _error(tmp_path, "providers: {local: {}, aws: {}}\n", **posing)
    assert "'aws' is served by both providers.aws and providers.local" in line


BAD = [
    ("provider: {}\n", "provider: unknown field; did you mean 'providers'?"),
    (
        "providers: {lcoal: {}}\n",
        "providers.lcoal: unknown provider 'lcoal'; did you mean 'local'?",
    ),
    ("providers: {aws: {regions: [us-east-9x]}}\n", "providers.aws.regions: 'us-east-9x' is not"),
    (
        "providers: {aws: {region: [us-east-1]}}\n",
        "providers.aws.region: unknown field; did you mean 'regions'?",
    ),
    ("providers: {aws: {enabled: maybe}}\n", "providers.aws.enabled: expected true or false"),
    ("providers: {aws: [1]}\n", "providers.aws: expected a mapping"),
    ("providers: {local: {cpus: -1}}\n", "providers.local.cpus: must be greater than 0"),
    ("providers: {local: {gpus: H999:2}}\n", "providers.local.gpus: expected NAME:COUNT"),
    ("providers: {local: {cpus: 2, sites: [{}]}}\n", "providers.local: give cpus/gpus per site"),
    (
        "providers: {local: {sites: [{cpu_slot: 2}]}}\n",
        "providers.local.sites[0].cpu_slot: unknown field; did you mean 'cpu_slots'?",
    ),
    (
        "providers:\n  local: {sites: [{provider: aws, region: us-east-1}]}\n  aws: {}\n",
        "providers.local: provider name 'aws' is served by both providers.aws and providers.local",
    ),
    (
        "failover: {cooldown_s: {first: 600, max: 60}}\n",
        "failover.cooldown_s: first (600) is larger than max (60)",
    ),
    ("failover: {down_after_s: 0}\n", "failover.down_after_s: must be greater than 0"),
    (
        "pools: {offerings: {p4d: {max_instances: 1}}}\n",
        "pools.offerings: 'p4d' is not provider/region/instance_type",
    ),
    ("pools: {max_instances: -1}\n", "pools.max_instances: must be at least 0"),
    (
        "pools: {providers: {aws: {max_instances: 3}}}\n",
        "pools.providers.aws: 'aws' is not a configured provider",
    ),
    ("caps: {local: 1.5}\n", "caps.local: must be at most 1"),
    (
        "caps: {locl: 0.5}\n",
        "caps.locl: 'locl' is not a configured provider; did you mean 'local'?",
    ),
    ("agent: {listen: 'nohost'}\n", "agent.listen: expected host:port"),
    ("agent: {listen: 'h:70000'}\n", "agent.listen: expected host:port"),
    ("agent: {public_url: 'ftp://x'}\n", "agent.public_url: expected an http:// or https:// URL"),
    ("providers: {local: {}\n", "(yaml): line"),
    ("- providers\n", "(root): expected a mapping"),
]


@pytest.mark.parametrize(("text", "needle"), BAD, ids=[n.split(":")[0] for _, n in BAD])
def test_bad_config_is_one_line_naming_the_field(tmp_path: Path, text: str, needle: str) -> None:
    line = _error(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'config.yaml'}: "), line
    assert needle in line, line


def test_named_config_must_exist(tmp_path: Path) -> None:
    line = _error(tmp_path, "", **{CONFIG_ENV: str(tmp_path / "missing.yaml")})
    assert "missing.yaml: (file): cannot read" in line


def test_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "contracts.yaml").write_text("contracts: []\n")  # the file it names
    config = _load(tmp_path, example)
    assert config.enabled == ["aws", "local"] and config.caps == {"aws": 0.6}
    assert config.contracts == (tmp_path / "contracts.yaml",)
    assert config.pools.rule("aws", "us-east-1", "p4d.24xlarge").max_instances == 2
    line = _error(tmp_path, example.replace("regions:", "regons:"))
    assert line.endswith("providers.aws.regons: unknown field; did you mean 'regions'?")


def test_checkpoint_dir_is_an_absolute_path(tmp_path: Path) -> None:
    assert (
        _load(tmp_path, "checkpoint_dir: /mnt/shared/ckpt\n").checkpoint_dir == "/mnt/shared/ckpt"
    )
    assert _load(tmp_path, "failover: {down_after_s: 60}\n").checkpoint_dir is None
    line = _error(tmp_path, "checkpoint_dir: shared/ckpt\n")
    assert "checkpoint_dir" in line and "absolute path" in line


def test_contracts_name_existing_files(tmp_path: Path) -> None:
    line = _error(tmp_path, "contracts: [nowhere.yaml]\n")
    assert line.endswith(f"contracts[0]: no such file: {tmp_path / 'nowhere.yaml'}")
