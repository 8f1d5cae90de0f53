"""The provider registry: entry points, an outside provider in one module, broken plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from intercloud.config import ConfigError, IntercloudConfig, load_config
from intercloud.providers import registry
from intercloud.providers.aws.provider import AwsProvider
from intercloud.providers.local import LocalProvider
from intercloud.providers.registry import (
    PluginLoadError,
    ProviderContext,
    UnknownProvider,
    build_providers,
    check_providers,
    enabled_providers,
    load_plugin,
)

# One module is a whole provider: settings, builder and check. It reuses the local
# provider's machinery under its own name, so what it builds really runs work.
ACME = """
from pydantic import BaseModel, ConfigDict, Field

from intercloud.providers.local import LocalProvider
from intercloud.providers.local_config import LocalConfig, LocalSite
from intercloud.providers.registry import ProviderCheck, ProviderPlugin, offerings_by_region


class AcmeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slots: int = Field(default=2, ge=1)
    fail: bool = False


class AcmePlugin(ProviderPlugin[AcmeSettings]):
    name = "acme"
    settings_model = AcmeSettings

    def _site(self, settings):
        return LocalSite(provider="acme", region="moon-1", cpu_slots=settings.slots)

    def create(self, settings, ctx):
        if settings.fail:
            raise RuntimeError("acme's API said no")
        return LocalProvider(LocalConfig(root=ctx.home / "acme", sites=(self._site(settings),)))

    def check(self, settings, ctx):
        site = self._site(settings)
        return ProviderCheck(
            "acme", True, reachable=True, credentials=True,
            offerings=offerings_by_region({site.region: [site.instance_type]}),
        )


PLUGIN = AcmePlugin
"""


def _distribution(root: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """An installed distribution as pip leaves one: a dist-info folder with metadata and
    entry points, its modules beside it."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[intercloud.providers]\n{lines}")
    for name, text in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(text))


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Outside packages on sys.path: ``acme`` (good), ``broken`` (fails to import),
    ``notaplugin`` (its target is not a plugin)."""
    site = tmp_path / "site"
    _distribution(
        site,
        "acme_ic",
        {
            "acme": "acme_ic:PLUGIN",
            "broken": "broken_ic:PLUGIN",
            "notaplugin": "acme_ic:AcmeSettings",
        },
        {"acme_ic": ACME, "broken_ic": "import not_a_module_anywhere\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    registry.forget_discovered()
    yield tmp_path
    registry.forget_discovered()
    for name in ("acme_ic", "broken_ic"):
        sys.modules.pop(name, None)


def _ctx(home: Path) -> ProviderContext:
    return ProviderContext(home=home, environ={}, store_id=None)


def _config(home: Path, text: str, **env: str) -> IntercloudConfig:
    (home / "config.yaml").write_text(textwrap.dedent(text))
    return load_config({"INTERCLOUD_HOME": str(home), **env}, home)


def test_builtin_plugins_are_the_installed_entry_points() -> None:
    installed = {ep.name: ep.value for ep in entry_points(group=registry.GROUP)}
    assert {k: installed.get(k) for k in registry.BUILTIN} == dict(registry.BUILTIN)
    for name in registry.BUILTIN:
        assert load_plugin(name).name == name


def test_unknown_name_lists_known_and_suggests() -> None:
    with pytest.raises(UnknownProvider) as err:
        load_plugin("lcoal")
    text = str(err.value)
    assert "did you mean 'local'?" in text and "aws, local" in text
    assert "\n" not in text


def test_outside_provider_is_one_module(outside: Path) -> None:
    assert "acme" in registry.known_names()
    config = _config(outside, "providers: {local: {}, acme: {slots: 3}}\n")
    checks = {c.name: c for c in check_providers(config, _ctx(outside))}
    assert checks["acme"].usable and checks["acme"].offerings["moon-1"].count == 1
    built = enabled_providers(config, _ctx(outside))
    assert sorted(built) == ["acme", "local"]
    acme = built["acme"]
    assert isinstance(acme, LocalProvider) and acme.name == "acme"
    assert [o.region for o in acme.offerings()] == ["moon-1"]


def test_outside_provider_in_a_fresh_process(outside: Path) -> None:
    # `intercloud check` in a new process finds it through the installed entry points.
    (outside / "config.yaml").write_text("providers: {local: {}, acme: {slots: 3}, broken: {}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    site = str(outside / "site")
    env.update(INTERCLOUD_HOME=str(outside), PYTHONPATH=os.pathsep.join([site, *sys.path]))
    out = subprocess.run(
        [sys.executable, "-m", "intercloud", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 1  # broken is enabled and cannot be loaded
    by_name = {p["name"]: p for p in json.loads(out.stdout)["providers"]}
    assert by_name["acme"]["usable"] and by_name["local"]["usable"]
    assert by_name["acme"]["offerings"] == {
        "moon-1": {"count": 1, "distinct": 1, "examples": ["local-cpu"]}
    }
    assert out.stderr.splitlines() == [
        "error: broken: plugin cannot be loaded: ModuleNotFoundError: "
        "No module named 'not_a_module_anywhere'"
    ]


def test_outside_provider_settings_are_validated(outside: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _config(outside, "providers: {acme: {slotz: 3}}\n")
    assert str(err.value).endswith("providers.acme.slotz: unknown field; did you mean 'slots'?")


def test_plugin_that_fails_to_import_is_reported_not_raised(outside: Path) -> None:
    config = _config(outside, "providers: {local: {}, broken: {}}\n")
    checks = {c.name: c for c in check_providers(config, _ctx(outside))}
    assert checks["local"].usable
    reason = checks["broken"].reason or ""
    assert not checks["broken"].usable
    assert "ModuleNotFoundError" in reason and "not_a_module_anywhere" in reason
    left_out: list[tuple[str, str]] = []
    built = enabled_providers(
        config,
        _ctx(outside),
        on_error=lambda name, why: left_out.append((name, why)),
    )
    assert list(built) == ["local"]
    assert [name for name, _ in left_out] == ["broken"]


def test_target_that_is_not_a_plugin(outside: Path) -> None:
    with pytest.raises(PluginLoadError, match="is not a ProviderPlugin"):
        load_plugin("notaplugin")


def test_provider_failing_to_create_leaves_the_others(outside: Path) -> None:
    config = _config(outside, "providers: {local: {}, acme: {fail: true}}\n")
    left_out: list[tuple[str, str]] = []
    built = build_providers(
        config,
        _ctx(outside),
        on_error=lambda name, why: left_out.append((name, why)),
    )
    assert list(built) == ["local"]
    assert left_out == [("acme", "acme's API said no")]


def test_async_providers_need_the_bridge(tmp_path: Path) -> None:
    config = _config(tmp_path, "providers: {local: {}, aws: {regions: [us-east-1]}}\n")
    left_out: list[str] = []
    plain = build_providers(
        config,
        _ctx(tmp_path),
        on_error=lambda name, why: left_out.append(name),
    )
    assert list(plain) == ["local"] and left_out == ["aws"]
    wrapped: list[tuple[str, object]] = []

    def bridge(name: str, provider: object) -> LocalProvider:
        wrapped.append((name, provider))
        assert isinstance(provider, AwsProvider)
        provider.close()
        local = plain["local"]
        assert isinstance(local, LocalProvider)
        return local

    both = build_providers(config, _ctx(tmp_path), wrap_async=bridge)
    assert sorted(both) == ["aws", "local"] and [n for n, _ in wrapped] == ["aws"]


def test_local_sites_pose_as_providers(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        """
        providers:
          local:
            sites:
              - {provider: local, region: local, cpu_slots: 2}
              - {provider: gcp, region: us-central1, cpu_slots: 4, gpu_type: A100, gpu_slots: 8}
        """,
    )
    built = enabled_providers(config, _ctx(tmp_path))
    assert sorted(built) == ["gcp", "local"]
    gcp = built["gcp"]
    assert isinstance(gcp, LocalProvider)
    [offering] = gcp.offerings()
    assert (offering.accelerator, offering.accelerator_count) == ("A100", 8)


def test_offerings_by_region_counts_and_keeps_the_first_names() -> None:
    found = registry.offerings_by_region({"r2": [], "r1": ["p5", "p5", "p4d", "g6", "c7", "p4d"]})
    assert list(found) == ["r1", "r2"]
    assert found["r1"] == registry.RegionOfferings(6, 4, ("p5", "p4d", "g6"))
    assert found["r2"].to_dict() == {"count": 0, "distinct": 0, "examples": []}
