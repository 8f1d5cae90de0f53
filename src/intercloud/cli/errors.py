"""How the CLI reports bad input: one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

EXIT_BAD_INPUT = 2
EXIT_DAEMON = 1  # the daemon could not start (its reason is printed)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` as one line on stderr and return the Exit to raise."""
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    return typer.Exit(code)


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn the library's input errors (spec, catalog, value) into one line and exit 2."""
    try:
        yield
    except typer.Exit:
        raise
    except (ValueError, OSError) as exc:  # SpecError, CatalogError, NotRunnable, ...
        raise fail(str(exc) or type(exc).__name__) from None
    except KeyError as exc:  # UnknownWorkload
        raise fail(str(exc.args[0]) if exc.args else "unknown key") from None
    except RuntimeError as exc:  # StoreError: unusable database (corrupt, locked, down)
        if type(exc).__name__ == "DaemonError":  # it could not start, or serves another db
            raise fail(str(exc), EXIT_DAEMON) from None
        if type(exc).__name__ != "StoreError":
            raise
        raise fail(str(exc)) from None
