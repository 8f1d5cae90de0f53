"""What a first user meets: help without placeholders, plain `intercloud`, a large
catalog listed quickly and in pages, plans that never place a gang this machine cannot
hold, and strict option values (--throughput)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from pathlib import Path

import pytest

from intercloud.cli.main import app, main
from intercloud.cli.options import parse_throughput


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, found by walking it (new ones are covered)."""
    import typer

    out: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        out.append(path)
        for name in getattr(command, "commands", {}) or {}:
            walk(command.commands[name], (*path, name))  # type: ignore[attr-defined]

    walk(typer.main.get_command(app), ())
    return out


COMMANDS = _command_paths()
PLACEHOLDER = re.compile(r"\{\w+\}|<\w+( range)?>|\[x[<>]=|\d+<=x")


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    saved = dict(os.environ)
    if env is not None:
        os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue()


def test_every_command_is_walked() -> None:
    assert {("plan",), ("run",), ("daemon", "start"), ("status",)} <= set(COMMANDS)
    assert len(COMMANDS) >= 14


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "intercloud")
def test_help_has_no_placeholders(command: tuple[str, ...]) -> None:
    code, out = _run(*command, "--help")
    assert code == 0, out
    assert "Usage: intercloud" in out
    assert not PLACEHOLDER.search(out), PLACEHOLDER.search(out)
    assert "<bool>" not in out


def test_usage_lines_name_arguments_plainly() -> None:
    assert "Usage: intercloud plan [OPTIONS] SPEC" in _run("plan", "--help")[1]
    assert "Usage: intercloud status [OPTIONS] [JOB]" in _run("status", "--help")[1]


def test_plain_intercloud_prints_help_and_exits_0() -> None:
    code, out = _run()
    assert code == 0
    assert "Usage: intercloud [OPTIONS] COMMAND" in out and "plan" in out


def test_usage_errors_are_one_line_exit_2() -> None:
    code, out = _run("status", str(2**63))
    assert code == 2 and out.count("\n") == 1
    assert out.startswith("error: intercloud status: Invalid value for 'JOB'")


def _big_catalog(root: Path, rows: int) -> Path:
    (root / "aws").mkdir(parents=True)
    with (root / "aws" / "vms.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "InstanceType",
                "AcceleratorName",
                "AcceleratorCount",
                "vCPUs",
                "MemoryGiB",
                "Price",
                "SpotPrice",
                "Region",
                "AvailabilityZone",
            ]
        )
        for i in range(rows):
            w.writerow([f"m{i}.large", "", "", 4, 16, 0.1 + i * 1e-6, 0.05, "r1", "r1a"])
    return root


def test_catalog_of_100k_rows_renders_one_page(tmp_path: Path) -> None:
    # A page, not the whole catalog: rendering 100k rows would take minutes (speed itself
    # is for bench/, not for a timed test).
    cat = _big_catalog(tmp_path / "cat", 100_000)
    code, out = _run("catalog", "--catalog", str(cat))
    assert code == 0, out[-500:]
    assert len(out.splitlines()) < 400
    assert "offerings 1-200 of 100001" in out  # and this machine's own offering
    last = out.strip().splitlines()[-1]
    assert last.startswith("99801 more offering(s) not shown: --offset 200")


def test_catalog_pages(tmp_path: Path) -> None:
    cat = _big_catalog(tmp_path / "cat", 30)
    code, out = _run("catalog", "--catalog", str(cat), "--provider", "aws", "--limit", "10",
                     "--offset", "25")  # fmt: skip
    assert code == 0
    assert "offerings 26-30 of 30" in out and "m25.large" in out and "m24.large" not in out
    assert "not shown" not in out
    code, out = _run("catalog", "--catalog", str(cat), "--provider", "aws", "--limit", "0")
    assert "30 offerings" in out and "not shown" not in out
    code, out = _run("catalog", "--catalog", str(cat), "--provider", "aws", "--json")
    assert len(json.loads(out)) == 30


def _spec(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def test_plan_never_places_a_gang_this_machine_cannot_hold(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "kind: training\nname: g\nnum_nodes: 1000\nresources: {cpus: 1+}\n")
    code, out = _run("plan", spec, "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["choice"]["provider"] != "local"
    assert all(p["provider"] != "local" for p in plan["alternatives"])
    local = [e for e in plan["excluded"] if e["provider"] == "local"]
    assert local and "can never run on this machine" in local[0]["reason"]
    code, out = _run("plan", spec, "--providers", "local")
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("error: no feasible placement for 'g'")


def test_a_gang_that_fits_still_goes_local(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "kind: training\nname: g\nnum_nodes: 1\nresources: {cpus: 1+}\n")
    code, out = _run("plan", spec, "--providers", "local", "--json")
    assert code == 0 and json.loads(out)["choice"]["provider"] == "local"


def test_plan_explains_exact_cpus(tmp_path: Path) -> None:
    cpus = os.cpu_count() or 1
    spec = _spec(tmp_path, f"kind: training\nname: e\nresources: {{cpus: {cpus + 1}}}\n")
    code, out = _run("plan", spec, "--providers", "local")
    assert code == 1 and "'" + f"{cpus + 1}+'" not in out  # more than this machine: no hint
    if cpus > 1:
        spec = _spec(tmp_path, "kind: training\nname: e\nresources: {cpus: 1}\n")
        code, out = _run("plan", spec, "--providers", "local")
        assert code == 1
        assert "cpus: 1 means exactly 1 vCPU(s) per node" in out and "'1+'" in out


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("H100=inf", "0.001 <= NUMBER <= 1000"),
        ("H100=1e309", "0.001 <= NUMBER <= 1000"),
        ("H100=nan", "0.001 <= NUMBER <= 1000"),
        ("H100=0", "0.001 <= NUMBER <= 1000"),
        # a reference GPU a million times slower: 0 hours and $0 on every other GPU
        ("H100=1e-300", "0.001 <= NUMBER <= 1000"),
        ("H100=0.0009", "0.001 <= NUMBER <= 1000"),
        ("inf", "'inf' must be NAME=NUMBER"),
        ("NOPE=2", "unknown accelerator 'NOPE'"),
        ("H100=2,,B200=3", "empty item"),
        ("H100=2,", "empty item"),
        ("H100=2,h100=3", "H100 given twice"),
    ],
)
def test_throughput_refusals(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=r"^--throughput: ") as info:
        parse_throughput(value)
    assert words in str(info.value)


def test_throughput_accepts_catalog_names() -> None:
    assert parse_throughput("h200=3.1, B200=5") == {"H200": 3.1, "B200": 5.0}
    assert parse_throughput("H100=0.001,B200=1000") == {"H100": 0.001, "B200": 1000.0}
    assert parse_throughput("Exotic-9=2", known={"Exotic-9"}) == {"Exotic-9": 2.0}
    assert parse_throughput(None) is None


def test_names_that_look_like_markup_print_as_written(tmp_path: Path) -> None:
    """Catalog and spec text is data, never rich markup (``[/x]`` once crashed rich)."""
    (tmp_path / "cat" / "aws").mkdir(parents=True)
    (tmp_path / "cat" / "aws" / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n"
        "t[/bad],,,2,8,0.1,0.05,r[/x]\n"
    )
    code, out = _run("catalog", "--catalog", str(tmp_path / "cat"))
    assert code == 0 and "t[/bad]" in out and "r[/x]" in out
    spec = _spec(tmp_path, "kind: training\nname: x\nresources: {cpus: 1+}\n")
    code, out = _run("plan", spec, "--catalog", str(tmp_path / "cat"), "--providers", "aws")
    assert code == 0 and "best is" not in out and "t[/bad]" in out
    code, out = _run("plan", spec, "--catalog", str(tmp_path / "cat"))
    assert code == 0 and "lost aws: best is t[/bad] x1 in r[/x]" in out


def test_commands_added_without_cls_get_plain_help_too() -> None:
    """Another module's `app.command()` under the root group is rendered the same way."""
    import typer

    from intercloud.cli.help import PlainGroup

    extra = typer.Typer(cls=PlainGroup, add_completion=False)
    sub = typer.Typer()

    @extra.command()
    def first(n: int = typer.Argument(..., min=1, max=9, help="A count.")) -> None:
        """First."""

    @sub.command()
    def inner(name: str = typer.Argument(..., help="A name.")) -> None:
        """Inner."""

    extra.add_typer(sub, name="group")
    for args in (["first", "--help"], ["group", "inner", "--help"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = typer.main.get_command(extra).main(args, "x", standalone_mode=False)
        assert code in (0, None)
        assert not PLACEHOLDER.search(out.getvalue()), out.getvalue()
        assert "<bool>" not in out.getvalue()
