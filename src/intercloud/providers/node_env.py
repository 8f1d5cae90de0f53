"""The base of every node's environment: a few variables of the machine, nothing else.

A node never inherits the environment of the process that starts it (the daemon may have
been started by anyone, with anyone's secrets). Its environment is, from lowest to
highest precedence: ``base_env`` (the ``BASE_ENV_NAMES`` set where the provider runs),
the command's ``env`` (spec ``envs``, then the submitter's variables), then the
provider's own variables (``INTERCLOUD_*``, torchrun's).
"""

from __future__ import annotations

from collections.abc import Mapping

#: Variables a node takes from the provider's environment (when set there); nothing else.
BASE_ENV_NAMES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
)


def base_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``BASE_ENV_NAMES`` found in ``environ``."""
    return {k: environ[k] for k in BASE_ENV_NAMES if k in environ}
