"""Every case of the bad-input corpus (``bad_input_cases.CASES``) against the real CLI.

For each case: the expected exit code (2 bad input, 1 nothing feasible), at most three
lines of output (stdout and stderr together), no traceback and no Python exception
class name, the case's needle in the output, under five seconds, and the store's
contents unchanged. The store is a real SQLite file under a per-case
``$INTERCLOUD_HOME`` holding one submitted job (a copy of one made once per module).

Cases run in-process through ``intercloud.cli.main.main`` (fast); those marked
``subprocess`` run as real processes (inputs that could block, and ``run --detach``
with a bad setting, which must not leave a daemon behind).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from bad_input_cases import CASES, Case

from intercloud.cli.main import main

REPO = Path(__file__).resolve().parents[2]
TIME_LIMIT_S = 5.0
MAX_LINES = 3
_EXCEPTION_NAMES = sorted(
    {
        name
        for name, obj in vars(builtins).items()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    | {
        "ValidationError",
        "SpecError",
        "SpecProblem",
        "CatalogError",
        "StoreError",
        "SettingError",
        "NotRunnable",
        "DaemonError",
        "OperationalError",
        "IntegrityError",
        "DataError",
        "YAMLError",
        "ComposerError",
        "ConstructorError",
    }
)
_EXCEPTION_RE = re.compile(r"\b(" + "|".join(map(re.escape, _EXCEPTION_NAMES)) + r")\b")
_SUBMITTED_SPEC = "kind: batch\nname: seed\nresources: {cpus: 1+}\nrun: 'true'\n"


def test_corpus_is_large_and_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 300
    assert len(set(ids)) == len(ids), [i for i in ids if ids.count(i) > 1]


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose store holds one submitted job (the daemon is never started)."""
    from intercloud.sdk import Client

    home = tmp_path_factory.mktemp("seeded") / "home"
    with Client(home=home, db_url=f"sqlite:///{home / 'state.db'}", autostart=False) as client:
        spec = home.parent / "seed.yaml"
        spec.write_text(_SUBMITTED_SPEC)
        client.submit(spec)
    return home


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (read-only; the WAL is read along with the file)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        conn.close()


def _fill(text: str, folder: Path) -> str:
    return (
        text.replace("{spec}", str(folder / "spec.yaml"))
        .replace("{catalog}", str(folder / "catalog"))
        .replace("{dir}", str(folder))
    )


def _prepare(case: Case, folder: Path) -> None:
    if case.spec is not None:
        text = case.spec if isinstance(case.spec, str) else yaml.safe_dump(case.spec)
        (folder / "spec.yaml").write_text(text, encoding="utf-8")
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.prepare is not None:
        case.prepare(folder)


def _environment(home: Path, case: Case, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env["INTERCLOUD_HOME"] = str(home)
    env["INTERCLOUD_DAEMON_IDLE_EXIT"] = "1"  # a wrongly accepted job leaves no daemon long
    env.update({k: _fill(v, folder) for k, v in case.env.items()})
    return env


def _run_in_process(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(args)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue()


def _run_process(args: list[str], env: dict[str, str], folder: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=env,
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT_S * 3,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, seeded_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(seeded_home, home)
    folder = tmp_path / "case"
    folder.mkdir()
    _prepare(case, folder)
    before = _dump(home / "state.db")
    args = [_fill(a, folder) for a in case.args]
    env = _environment(home, case, folder)
    start = time.monotonic()
    if case.subprocess:
        code, output = _run_process(args, env, folder)
    else:
        code, output = _run_in_process(args, env)
    elapsed = time.monotonic() - start
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == case.code, output
    assert "Traceback" not in output, output
    assert not _EXCEPTION_RE.search(output), output
    assert len(lines) <= MAX_LINES, output
    assert case.needle in output, output
    assert elapsed < TIME_LIMIT_S * (2 if case.subprocess else 1), f"{elapsed:.1f} s"
    assert _dump(home / "state.db") == before
    assert not (home / "daemon.pid").exists(), "a daemon was started"
