"""Bounds that keep any spec input from hanging, exhausting memory or overflowing the
store: what is read (regular files, 1 MiB), how deep and large the YAML may be, the
numbers each field holds, NUL characters. Boundaries are tested on both sides."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from intercloud.specs import SpecError, load_spec_file, load_spec_text, read_spec_text
from intercloud.specs.limits import (
    INT32_MAX,
    INT32_MIN,
    MAX_ARG_BYTES,
    MAX_BATCH_TASKS,
    MAX_NODES,
)
from intercloud.specs.loader import MAX_SPEC_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES

BASE = "kind: training\nname: t\nresources: {cpus: 1+}\nrun: 'true'\n"


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text)
    assert "\n" not in str(info.value)
    return info.value


# --- what is read -----------------------------------------------------------------------


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    done = threading.Event()
    errors: list[SpecError] = []

    def read() -> None:
        try:
            load_spec_file(fifo)
        except SpecError as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked"
    assert errors and errors[0].field == "(file)" and "FIFO" in errors[0].problem


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_at_once(path: str) -> None:
    start = time.monotonic()
    with pytest.raises(SpecError, match="character device, not a file"):
        read_spec_text(Path(path))
    assert time.monotonic() - start < 1


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="a directory, not a file"):
        read_spec_text(tmp_path)


def test_size_bound_is_exact(tmp_path: Path) -> None:
    at = tmp_path / "at.yaml"
    at.write_bytes(BASE.encode() + b"#" * (MAX_SPEC_BYTES - len(BASE)))
    assert len(read_spec_text(at)) == MAX_SPEC_BYTES
    over = tmp_path / "over.yaml"
    over.write_bytes(b"#" * (MAX_SPEC_BYTES + 1))
    with pytest.raises(SpecError, match="larger than 1024 KiB"):
        read_spec_text(over)


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(BASE)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert load_spec_file(link).workload.name == "t"


# --- YAML shape ---------------------------------------------------------------------------


@pytest.mark.parametrize("flow", [True, False])
def test_nesting_bound(flow: bool) -> None:
    def nested(levels: int) -> str:
        # envs at level 1 of the document, so `levels` more collections reach the bound
        if flow:
            return BASE + "envs: " + "[" * levels + "]" * levels + "\n"
        lines = [BASE.rstrip("\n"), "envs:"]
        lines += ["  " * (i + 1) + "-" for i in range(levels)]
        return "\n".join(lines) + " 1\n"

    # MAX_YAML_DEPTH - 1 levels inside the top-level mapping: shape accepted (envs wrong)
    assert _error(nested(MAX_YAML_DEPTH - 1)).field == "envs"
    err = _error(nested(MAX_YAML_DEPTH))
    assert err.field == "(yaml)" and "nest" in err.problem
    assert _error(nested(100_000 if flow else 5_000)).field in ("(yaml)", "(file)")


def test_alias_expansion_is_bounded() -> None:
    ok = BASE + "x0: &a [1, 2]\nx1: [*a, *a, *a]\n"
    assert _error(ok).field == "x0"  # shape accepted: the unknown field is reported
    lines = [BASE.rstrip("\n"), 'l0: &l0 ["a","a","a","a","a","a","a","a","a","a"]']
    for i in range(1, 6):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    err = _error("\n".join(lines) + "\n")
    assert err.field == "(yaml)" and "aliases expand" in err.problem


def test_value_count_is_bounded() -> None:
    many = BASE + "envs: [" + "1," * MAX_YAML_NODES + "1]\n"
    err = _error(many)
    assert err.field == "(yaml)" and f"more than {MAX_YAML_NODES} values" in err.problem


# --- numbers ------------------------------------------------------------------------------


def _spec(**fields: object) -> str:
    data = yaml.safe_load(BASE)
    for path, value in fields.items():
        target = data
        *parents, last = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("path", "low", "high"),
    [
        ("priority", INT32_MIN, INT32_MAX),
        ("num_nodes", 1, MAX_NODES),
        ("resources__num_nodes", 1, MAX_NODES),
        ("restart__max_restarts", 0, INT32_MAX),
    ],
)
def test_integer_bounds_on_both_sides(path: str, low: int, high: int) -> None:
    field = path.replace("__", ".")
    for ok in (low, high):
        load_spec_text(_spec(**{path: ok}))
    for bad in (low - 1, high + 1, 2**63, -(2**63), 10**400):
        assert _error(_spec(**{path: bad})).field == field


def test_batch_count_and_replicas_bounds() -> None:
    batch = BASE.replace("training", "batch")
    load_spec_text(batch + f"count: {MAX_BATCH_TASKS}\n")
    assert _error(batch + f"count: {MAX_BATCH_TASKS + 1}\n").field == "count"
    service = BASE.replace("training", "service")
    assert _error(service + "replicas: {min: 1, max: 10001}\n").field == "replicas.max"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("duration: 1e300", "duration"),
        ("duration: 100000000h", "duration"),
        (f"duration: {10**400}", "duration"),
        ("checkpoint_interval: 99999999d", "checkpoint_interval"),
        (f"resources: {{cpus: {10**400}}}", "resources.cpus"),
        ("resources: {cpus: 1e300}", "resources.cpus"),
        ("resources: {cpus: 1+, memory: 1e12+}", "resources.memory"),
        ("resources: {cpus: 1+, max_hourly_usd: 1e300}", "resources.max_hourly_usd"),
        ("resources: {accelerators: 'H100:99999999999999999999'}", "resources.accelerators"),
        ("resources: {accelerators: {H100: 4096}}", "resources.accelerators"),
    ],
)
def test_number_bounds(line: str, field: str) -> None:
    text = BASE.replace("resources: {cpus: 1+}\n", "") if line.startswith("resources") else BASE
    assert _error(text + line + "\n").field == field


# --- NUL characters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('setup: "a\\0b"', "setup"),
        ('envs: {TOKEN: "x\\0y"}', "envs.TOKEN"),
        ('tenant: "a\\0"', "tenant"),
        ('resources: {cpus: 1+, regions: ["us\\0"]}', "resources.regions[0]"),
    ],
)
def test_nul_characters_are_refused_with_the_field(line: str, field: str) -> None:
    text = BASE.replace("resources: {cpus: 1+}\n", "") if line.startswith("resources") else BASE
    err = _error(text + line + "\n")
    assert err.field == field and "NUL" in err.problem
    assert "x" not in err.problem.replace("NUL", "")  # an env value is never echoed


def test_nul_in_run_of_a_skypilot_task() -> None:
    err = _error('name: s\nresources: {cpus: 1+}\nrun: "echo \\0"\n')
    assert err.field == "run"


@pytest.mark.parametrize("field", ["run", "setup"])
def test_commands_fit_one_argument(field: str) -> None:
    head = BASE.replace("run: 'true'\n", "")
    at = "x" * MAX_ARG_BYTES
    load_spec_text(head + f"{field}: {at}\n")
    err = _error(head + f"{field}: {at}x\n")
    assert err.field == field and "128 KiB" in err.problem


def test_an_environment_string_fits_one_variable() -> None:
    value = "x" * (MAX_ARG_BYTES - len("BIG="))
    load_spec_text(BASE + f"envs: {{BIG: {value}}}\n")
    err = _error(BASE + f"envs: {{BIG: {value}é}}\n")  # one more character, two bytes
    assert err.field == "envs.BIG" and "128 KiB" in err.problem
