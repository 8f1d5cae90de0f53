"""How the CLI reports bad input: one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

EXIT_BAD_INPUT = 2
EXIT_DAEMON = 1  # the daemon could not start (its reason is printed)
EXIT_NOTHING_FEASIBLE = 1


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` as one line on stderr and return the Exit to raise."""
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    return typer.Exit(code)


def check_out_dir(out: Path | None) -> None:
    """``--out DIR``: refused before any work when it names something that is not a
    folder (a file, a device), rather than after a long run."""
    if out is not None and out.exists() and not out.is_dir():
        raise fail(f"--out: {out} is not a folder")


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn the library's input errors (spec, catalog, value) into one line and exit 2."""
    try:
        yield
    except typer.Exit:
        raise
    except OSError as exc:  # a file or folder that cannot be used: name it, no errno
        where = f"{exc.filename}: " if exc.filename else ""
        raise fail(f"{where}{exc.strerror or exc}") from None
    except ValueError as exc:  # SpecError, CatalogError, SettingError, NotRunnable, ...
        # Nothing feasible is exit 1 (as `plan` without a placement); bad input is 2.
        code = EXIT_NOTHING_FEASIBLE if type(exc).__name__ == "NotRunnable" else EXIT_BAD_INPUT
        raise fail(str(exc) or type(exc).__name__, code) from None
    except KeyError as exc:  # UnknownWorkload
        raise fail(str(exc.args[0]) if exc.args else "unknown key") from None
    except RuntimeError as exc:  # StoreError: unusable database (corrupt, locked, down)
        if type(exc).__name__ == "DaemonError":  # it could not start, or serves another db
            raise fail(str(exc), EXIT_DAEMON) from None
        if type(exc).__name__ != "StoreError":
            raise
        raise fail(str(exc)) from None
