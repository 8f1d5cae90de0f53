"""``intercloud.settings``: every INTERCLOUD_* variable parsed, defaulted and refused in
one place, with the variable named in a one-line error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from intercloud import settings
from intercloud.settings import SettingError


def test_defaults_when_unset_or_blank() -> None:
    for env in ({}, dict.fromkeys(("INTERCLOUD_DECIDER", "INTERCLOUD_LOCAL_CPUS"), "  ")):
        assert settings.db_url(env) is None
        assert settings.idle_exit_s(env) == 30.0
        assert settings.decider(env) is None
        assert settings.queue_policy(env) is None
        assert settings.preemption(env) is None
        assert settings.local_cpus(env) is None
        assert settings.local_gpus(env) is None
        assert settings.local_sites(env) is None
        assert settings.log_level(env) == "INFO"
        settings.check_all(env)
    assert settings.home({}) == Path("~/.intercloud").expanduser()


def test_good_values_are_parsed(tmp_path: Path) -> None:
    env = {
        "INTERCLOUD_HOME": str(tmp_path),
        "INTERCLOUD_DB_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "INTERCLOUD_DAEMON_IDLE_EXIT": "2.5",
        "INTERCLOUD_DECIDER": " Planner ",
        "INTERCLOUD_QUEUE_POLICY": "fair_share",
        "INTERCLOUD_PREEMPTION": "off",
        "INTERCLOUD_LOCAL_CPUS": "12",
        "INTERCLOUD_LOCAL_GPUS": "h100:8",
        "INTERCLOUD_LOCAL_SITES": "aws/us-east-1,cpus=4,gpus=H100:2;gcp/us-central1,cpus=2",
        "INTERCLOUD_LOG_LEVEL": "debug",
    }
    settings.check_all(env)
    assert settings.home(env) == tmp_path
    assert settings.db_url(env) == f"sqlite:///{tmp_path / 'state.db'}"
    assert settings.idle_exit_s(env) == 2.5
    assert settings.decider(env) == "planner"
    assert settings.queue_policy(env) == "fair_share"
    assert settings.preemption(env) is False
    assert settings.local_cpus(env) == 12.0
    assert settings.local_gpus(env) == ("H100", 8)
    sites = settings.local_sites(env)
    assert sites is not None and [s.key for s in sites] == ["aws/us-east-1/", "gcp/us-central1/"]
    assert settings.log_level(env) == "DEBUG"
    pg = settings.db_url({"INTERCLOUD_DB_URL": "postgres://u@db.example:5432/ic"})
    assert pg == "postgresql+psycopg://u@db.example:5432/ic"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("INTERCLOUD_DAEMON_IDLE_EXIT", "abc", "seconds"),
        ("INTERCLOUD_DAEMON_IDLE_EXIT", "-1", "seconds"),
        ("INTERCLOUD_DAEMON_IDLE_EXIT", "nan", "seconds"),
        ("INTERCLOUD_DAEMON_IDLE_EXIT", "1e309", "seconds"),
        ("INTERCLOUD_DECIDER", "nope", "fleet, planner"),
        ("INTERCLOUD_QUEUE_POLICY", "nope", "fair_share, fifo, priority"),
        ("INTERCLOUD_PREEMPTION", "maybe", "true/false"),
        ("INTERCLOUD_LOCAL_CPUS", "-1", "above 0"),
        ("INTERCLOUD_LOCAL_CPUS", "0", "above 0"),
        ("INTERCLOUD_LOCAL_CPUS", "inf", "above 0"),
        ("INTERCLOUD_LOCAL_GPUS", "H100", "NAME:COUNT"),
        ("INTERCLOUD_LOCAL_GPUS", "NOPE:8", "known accelerator"),
        ("INTERCLOUD_LOCAL_GPUS", "H100:0", "COUNT"),
        ("INTERCLOUD_LOCAL_GPUS", "H100:99999999999999999999", "COUNT"),
        ("INTERCLOUD_LOCAL_SITES", "aws", "provider/region"),
        ("INTERCLOUD_LOCAL_SITES", "aws/r,cpus=nan", "finite"),
        ("INTERCLOUD_LOCAL_SITES", "aws/r,memory=-4", "finite"),
        ("INTERCLOUD_LOCAL_SITES", "aws/r,gpus=NOPE:2", "known accelerator"),
        ("INTERCLOUD_LOG_LEVEL", "loud", "INFO"),
        ("INTERCLOUD_DB_URL", "sqlite://", "in-memory"),
        ("INTERCLOUD_DB_URL", "sqlite:///:memory:", "in-memory"),
        ("INTERCLOUD_DB_URL", "sqlite:///file::memory:?cache=shared", "in-memory"),
        ("INTERCLOUD_DB_URL", "sqlite:///relative/state.db", "absolute"),
        ("INTERCLOUD_DB_URL", "sqlite:////no-such-folder/state.db", "does not exist"),
        # ignored with a two-line SAWarning on every command; uri=true: opened read-only
        ("INTERCLOUD_DB_URL", "sqlite:////tmp/state.db?mode=ro", "options (mode)"),
        ("INTERCLOUD_DB_URL", "sqlite:////tmp/state.db?mode=ro&uri=true", "options (mode, uri)"),
        ("INTERCLOUD_DB_URL", "mysql://u@h/db", "unsupported"),
        ("INTERCLOUD_DB_URL", "not a url", "invalid"),
        ("INTERCLOUD_HOME", "/dev/null", "is not a folder"),
        ("INTERCLOUD_HOME", "/dev/null/home", "is inside /dev/null"),
        ("INTERCLOUD_AWS_AZ_MAPPING", "/no-such-folder/az.csv", "cannot read"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingError) as info:
        settings.check_all({name: value})
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"{name}=")
    assert words in message
    assert "\n" not in message


def test_sites_file_errors_are_one_line(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "sites.yaml"
    bad_yaml.write_text("- {provider: aws, region: r\n")
    wrong_type = tmp_path / "typed.yaml"
    wrong_type.write_text("- {provider: aws, region: r, cpu_slots: [1]}\n")
    for path in (bad_yaml, wrong_type, tmp_path / "missing.yaml"):
        with pytest.raises(SettingError, match=r"^INTERCLOUD_LOCAL_SITES="):
            settings.local_sites({"INTERCLOUD_LOCAL_SITES": str(path)})


def test_aws_zone_mapping_file_is_checked_row_by_row(tmp_path: Path) -> None:
    """A mapping without the columns, or with a row that is not a zone name and id, is
    refused naming the variable (it was a KeyError, or pairs of empty names)."""
    header = "AvailabilityZoneName,AvailabilityZone\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "US-EAST-1A, use1-az6\n")
    assert settings.aws_az_mapping({"INTERCLOUD_AWS_AZ_MAPPING": str(good)}) == (
        ("us-east-1a", "use1-az6"),
    )
    cases = {"a,b\nx,y\n": "expected CSV columns", header + ",\n": "line 2"}
    cases[header + "us-east-1a,use1-az6\nuse1-az6,us-east-1a\n"] = "line 3"
    for i, (text, words) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(SettingError, match=r"^INTERCLOUD_AWS_AZ_MAPPING=") as info:
            settings.check_all({"INTERCLOUD_AWS_AZ_MAPPING": str(path)})
        assert words in str(info.value)


def test_database_folder_must_exist_but_the_file_need_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert settings.db_url({"INTERCLOUD_DB_URL": url}) == url
    with pytest.raises(SettingError, match="not a file"):
        settings.db_url({"INTERCLOUD_DB_URL": f"sqlite:///{tmp_path}"})


def test_daemon_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    """Started directly with a bad setting, the daemon says so and exits 2 (no loop of
    tracebacks in its log)."""
    env = {"INTERCLOUD_HOME": str(tmp_path / "home"), "INTERCLOUD_DECIDER": "nope", "PATH": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "intercloud.control.daemon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "intercloud daemon: INTERCLOUD_DECIDER='nope': expected one of fleet, planner"
    ]
    assert not (tmp_path / "home" / "daemon.pid").exists()


def test_aws_az_mapping_is_read_like_a_spec_file(tmp_path: Path) -> None:
    """INTERCLOUD_AWS_AZ_MAPPING names a CSV: a FIFO or device is refused without
    blocking, a missing column or an empty cell is one line naming the variable."""
    import os

    good = tmp_path / "az.csv"
    good.write_text("AvailabilityZoneName,AvailabilityZone\nus-east-1a, USE1-AZ6\n")
    assert settings.aws_az_mapping({"INTERCLOUD_AWS_AZ_MAPPING": str(good)}) == (
        ("us-east-1a", "use1-az6"),
    )
    assert settings.aws_az_mapping({}) is None
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    no_column = tmp_path / "no-column.csv"
    no_column.write_text("garbage\n1\n")
    empty_cell = tmp_path / "empty-cell.csv"
    empty_cell.write_text("AvailabilityZoneName,AvailabilityZone\nus-east-1a,\n")
    huge = tmp_path / "huge.csv"
    huge.write_text("AvailabilityZoneName,AvailabilityZone\n" + "x" * (1 << 20))
    for path, needle in (
        (tmp_path / "missing.csv", "No such file"),
        (fifo, "a FIFO, not a file"),
        (Path("/dev/zero"), "a character device, not a file"),
        (tmp_path, "a directory, not a file"),
        (huge, "larger than"),
        (no_column, "columns AvailabilityZoneName,AvailabilityZone"),
        (empty_cell, "line 2: expected a zone name and a zone id"),
    ):
        env = {"INTERCLOUD_AWS_AZ_MAPPING": str(path)}
        with pytest.raises(SettingError, match=needle) as info:
            settings.check_all(env)
        assert str(info.value).startswith("INTERCLOUD_AWS_AZ_MAPPING=")
        assert "\n" not in str(info.value)


def test_a_sites_file_is_read_like_a_spec_file(tmp_path: Path) -> None:
    """INTERCLOUD_LOCAL_SITES naming a YAML file: a FIFO is refused without blocking (it
    hung), a file over 1 MiB, YAML nested past 64 levels (a RecursionError) or aliases
    expanding past 100,000 values are one line naming the variable and the file."""
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 3000 + "]" * 3000 + "\n")
    huge = tmp_path / "huge.yaml"
    huge.write_text("- {provider: aws, region: r}\n" + "#" * (1 << 20) + "\n")
    laughs = tmp_path / "laughs.yaml"
    rows = ["- &a0 [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"- &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    laughs.write_text("\n".join(rows) + "\n")
    for path, needle in (
        (fifo, "a FIFO, not a file"),
        (deep, "nest"),
        (huge, "larger than 1024 KiB"),
        (laughs, "aliases expand to more than 100000 values"),
    ):
        with pytest.raises(SettingError) as info:
            settings.local_sites({"INTERCLOUD_LOCAL_SITES": str(path)})
        text = str(info.value)
        assert text.startswith("INTERCLOUD_LOCAL_SITES=") and needle in text and "\n" not in text
        assert "Error" not in text  # no exception class name
