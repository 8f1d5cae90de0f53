"""Parsing the submitter's variables: --env KEY=VALUE, --env KEY, --env-file (dotenv)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intercloud.submission import InvalidEnv, check_env, parse_env_file, parse_env_options
from intercloud.submission.job_env import MAX_ENV_FILE_BYTES


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vars.env"
    path.write_text(text)
    return path


def test_dotenv_lines(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "# a comment\n"
        "\n"
        "PLAIN=value with spaces   # trailing comment\n"
        "export EXPORTED=1\n"
        "SPACED = around\n"
        "SINGLE='literal $HOME \\n # not a comment'\n"
        'DOUBLE="line1\\nline2 \\"q\\" \\\\ # kept"  # dropped\n'
        "EMPTY=\n"
        "HASH=a#b\n"
        "EQUALS=a=b=c\n",
    )
    assert parse_env_file(path) == {
        "PLAIN": "value with spaces",
        "EXPORTED": "1",
        "SPACED": "around",
        "SINGLE": "literal $HOME \\n # not a comment",
        "DOUBLE": 'line1\nline2 "q" \\ # kept',
        "EMPTY": "",
        "HASH": "a#b",
        "EQUALS": "a=b=c",
    }


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("NOEQUALS", "expected KEY=VALUE"),
        ("1BAD=x", "invalid variable name"),
        ("BAD-NAME=x", "invalid variable name"),
        ("=novalue", "expected KEY=VALUE"),
        ("Q='unterminated", "unterminated quote"),
        ('Q="unterminated', "unterminated quote"),
        ("Q='a' trailing", "text after the closing quote"),
        ("NUL=a\0b", "NUL byte"),
    ],
)
def test_bad_dotenv_line_names_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    path = _file(tmp_path, f"OK=1\n# comment\n{line}\n")
    with pytest.raises(InvalidEnv) as err:
        parse_env_file(path)
    message = str(err.value)
    assert f"--env-file {path} line 3" in message and needle in message
    assert "\n" not in message


def test_env_file_must_be_a_small_regular_utf8_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, needle in (
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "not a regular file"),
        (tmp_path / "missing.env", "cannot read"),
    ):
        with pytest.raises(InvalidEnv, match=needle):
            parse_env_file(path)
    big = _file(tmp_path, "A=" + "x" * MAX_ENV_FILE_BYTES + "\n")
    with pytest.raises(InvalidEnv, match="larger than"):
        parse_env_file(big)
    latin = tmp_path / "latin.env"
    latin.write_bytes(b"A=\xe9\n")
    with pytest.raises(InvalidEnv, match="not UTF-8"):
        parse_env_file(latin)


def test_options_precedence_and_caller_values(tmp_path: Path) -> None:
    one = _file(tmp_path, "A=file1\nB=file1\nC=file1\n")
    two = tmp_path / "two.env"
    two.write_text("B=file2\n")
    env = parse_env_options(
        ["C=cli", "FROM_CALLER", "EMPTY="], [one, two], {"FROM_CALLER": "caller value"}
    )
    assert env == {
        "A": "file1",
        "B": "file2",  # a later file wins over an earlier one
        "C": "cli",  # --env wins over every file
        "FROM_CALLER": "caller value",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("UNSET_HERE", "--env UNSET_HERE: not set in your environment"),
        ("1X=y", "expected KEY=VALUE or KEY"),
        ("=y", "expected KEY=VALUE or KEY"),
        ("A-B=y", "expected KEY=VALUE or KEY"),
        ("N=a\0b", "--env N: the value holds a NUL byte"),
    ],
)
def test_bad_env_option(item: str, needle: str) -> None:
    with pytest.raises(InvalidEnv, match=needle):
        parse_env_options([item], [], {})


def test_check_env_for_the_sdk() -> None:
    assert check_env({"A": "1"}) == {"A": "1"}
    with pytest.raises(InvalidEnv, match=r"env: invalid variable name '1A'"):
        check_env({"1A": "x"})
    with pytest.raises(InvalidEnv, match=r"env\.A: the value holds a NUL byte"):
        check_env({"A": "x\0"})
    with pytest.raises(InvalidEnv, match=r"env\.A: expected a string"):
        check_env({"A": 3})  # type: ignore[dict-item]


def test_a_variable_no_process_could_hold_is_refused(tmp_path: Path) -> None:
    """KEY=VALUE over 128 KiB makes execve fail (E2BIG): the job could never start, so
    the submission is refused, whichever way the variable comes (as a spec's envs)."""
    limit = 128 * 1024 - 1  # bytes of KEY=VALUE, the NUL excluded
    fits, too_long = "v" * (limit - 2), "v" * (limit - 1)
    assert check_env({"K": fits}) == {"K": fits}
    assert parse_env_options([f"K={fits}"], [], {}) == {"K": fits}
    with pytest.raises(InvalidEnv, match=r"^env\.K: KEY=VALUE is longer than 128 KiB"):
        check_env({"K": too_long})
    with pytest.raises(InvalidEnv, match=r"^--env K: KEY=VALUE is longer than 128 KiB"):
        parse_env_options([f"K={too_long}"], [], {})
    with pytest.raises(InvalidEnv, match=r"^--env K: KEY=VALUE is longer than 128 KiB"):
        parse_env_options(["K"], [], {"K": too_long})
    with pytest.raises(InvalidEnv, match=r"vars\.env line 2: KEY=VALUE is longer than 128 KiB"):
        parse_env_file(_file(tmp_path, f"A=1\nK={too_long}\n"))
