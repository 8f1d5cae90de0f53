"""The ``fleet:`` config section: typed settings, one-line errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from intercloud.control.fleet_settings import FleetSettings, parse_fleet_settings
from intercloud.specs.errors import SpecError


def test_no_section_gives_the_defaults() -> None:
    assert parse_fleet_settings(None) == FleetSettings()
    assert parse_fleet_settings({}).policy.default_max_instances == 8


def test_every_field_reaches_its_typed_value() -> None:
    s = parse_fleet_settings({
        "default_max_instances": 2,
        "max_instances": {"aws/us-east-1/us-east-1a/p5.48xlarge": 4, "gcp/us-central1//a3": 0},
        "idle_release_s": 60, "provision_delay_s": 30, "caps": {"aws": 0.6},
        "caps_min_fleet_gpus": 64, "cooldown": {"first_s": 10, "max_s": 100, "factor": 3},
        "down_after_s": 45,
    })  # fmt: skip
    p = s.policy
    assert p.max_of(("aws", "us-east-1", "us-east-1a", "p5.48xlarge")) == 4
    assert p.max_of(("gcp", "us-central1", "", "a3")) == 0
    assert p.max_of(("aws", "x", "", "y")) == 2
    assert (p.idle_release_s, p.provision_delay_s) == (60, 30)
    assert p.caps == {"aws": 0.6} and p.caps_min_fleet_gpus == 64
    assert (s.cooldown.first_s, s.cooldown.max_s, s.cooldown.factor) == (10, 100, 3)
    assert s.cooldown.duration_s(3) == 90 and s.down_after_s == 45
    assert parse_fleet_settings({"caps": 0.5}).policy.caps == 0.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"idle_release": 5}, "config.yaml: fleet.idle_release: unknown field"),
        ({"idle_release_s": 0}, "fleet.idle_release_s: must be greater than 0, got 0"),
        ({"caps": {"aws": 1.5}}, "fleet.caps.aws: expected a share in (0, 1], got 1.5"),
        ({"caps": "half"}, "fleet.caps: expected a share in (0, 1], got 'half'"),
        ({"max_instances": {"aws/p5": 2}}, "fleet.max_instances.aws/p5: expected provider/"),
        ({"max_instances": {"aws/r/z/t": -1}}, "fleet.max_instances.aws/r/z/t: must be at"),
        ({"cooldown": {"first_s": 60, "max_s": 30}}, "fleet.cooldown.max_s: must be at least"),
        ({"cooldown": {"factor": 0.5}}, "fleet.cooldown.factor: must be at least 1"),
        ([1, 2], "config.yaml: fleet: expected a mapping, got list"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_fleet_settings(data)
    text = str(err.value)
    assert message in text and "\n" not in text
