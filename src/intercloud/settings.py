"""Every ``INTERCLOUD_*`` setting, read and validated in one place.

Each reader takes an optional environment mapping (default ``os.environ``), returns the
typed value (or None / the default when the variable is unset or empty) and raises
``SettingError`` (a ``ValueError``: the CLI prints it as one line and exits 2) naming
the variable and what it accepts. ``check_all`` validates every setting at once; the CLI
calls it before any command that reads settings does its work, and before it starts the
daemon, so a bad value never reaches a background process.

Settings (name: meaning, default):

- ``INTERCLOUD_HOME``: state folder, ``~/.intercloud``.
- ``INTERCLOUD_DB_URL``: ``sqlite:////abs/path/state.db`` or ``postgresql://...``; default
  SQLite at ``$INTERCLOUD_HOME/state.db``. URLs that are not durable (``sqlite://``,
  ``:memory:``) are refused, and so is a SQLite file whose folder does not exist (a
  typo would otherwise silently create a second, empty store).
- ``INTERCLOUD_DAEMON_IDLE_EXIT``: seconds the daemon stays up with nothing to do, 30.
- ``INTERCLOUD_LEADER_TTL``: seconds the control-loop lease lasts unrenewed (a standby
  daemon takes over that long after the leader dies), 10.
- ``INTERCLOUD_LEDGER_EVERY_S``: seconds between the daemon's additions to the persisted
  spend ledger, 60.
- ``INTERCLOUD_DECIDER``: ``fleet`` or ``planner``, ``fleet``.
- ``INTERCLOUD_QUEUE_POLICY``: a queue-order name (``priority``, ``fair_share``,
  ``fifo``), else the store setting, else ``priority``.
- ``INTERCLOUD_PREEMPTION``: ``1/0``, ``true/false``, ``yes/no``, ``on/off``; on.
- ``INTERCLOUD_LOCAL_CPUS``: CPU slots of the local site, this machine's CPU count.
- ``INTERCLOUD_LOCAL_GPUS``: emulated GPUs of the local site, ``NAME:COUNT``.
- ``INTERCLOUD_LOCAL_SITES``: several local sites (see ``providers.local_config``).
- ``INTERCLOUD_LOG_LEVEL``: the daemon's log level, ``INFO``.
- ``INTERCLOUD_DEBUG``: ``1`` shows the traceback of an internal CLI error, off.
- ``INTERCLOUD_CONFIG``: the configuration file, ``$INTERCLOUD_HOME/config.yaml``; read
  and validated by ``intercloud.config.load_config``.
- ``INTERCLOUD_AWS_AZ_MAPPING``: a CSV file pairing AWS zone names with zone ids
  (``AvailabilityZoneName,AvailabilityZone``), read as spec files are; none.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intercloud.providers.local_config import LocalSite

HOME = "INTERCLOUD_HOME"
DB_URL = "INTERCLOUD_DB_URL"
DAEMON_IDLE_EXIT = "INTERCLOUD_DAEMON_IDLE_EXIT"
LEADER_TTL = "INTERCLOUD_LEADER_TTL"
LEDGER_EVERY = "INTERCLOUD_LEDGER_EVERY_S"
DECIDER = "INTERCLOUD_DECIDER"
QUEUE_POLICY = "INTERCLOUD_QUEUE_POLICY"
PREEMPTION = "INTERCLOUD_PREEMPTION"
LOCAL_CPUS = "INTERCLOUD_LOCAL_CPUS"
LOCAL_GPUS = "INTERCLOUD_LOCAL_GPUS"
LOCAL_SITES = "INTERCLOUD_LOCAL_SITES"
LOG_LEVEL = "INTERCLOUD_LOG_LEVEL"
DEBUG = "INTERCLOUD_DEBUG"
AWS_AZ_MAPPING = "INTERCLOUD_AWS_AZ_MAPPING"
CONFIG = "INTERCLOUD_CONFIG"
CONFIG_FILE = "config.yaml"

DEFAULT_IDLE_EXIT_S = 30.0
DEFAULT_LEADER_TTL_S = 10.0
DEFAULT_LEDGER_EVERY_S = 60.0
DECIDERS = ("fleet", "planner")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Upper bounds that keep numbers meaningful (a week of idling; a million CPU slots).
MAX_IDLE_EXIT_S = 7 * 24 * 3600.0
MAX_LOCAL_CPUS = 1_000_000.0
MAX_LOCAL_GPUS = 100_000
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(ValueError):
    """A setting with a value intercloud cannot use; ``str()`` is one line naming it."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        super().__init__(f"{name}={shown!r}: {expected}")
        self.name = name


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    """The variable's value, stripped; None when unset or blank."""
    value = _env(env).get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def home(env: Mapping[str, str] | None = None) -> Path:
    """``$INTERCLOUD_HOME`` or ``~/.intercloud``, expanded (not created)."""
    return Path(_raw(HOME, env) or "~/.intercloud").expanduser()


def config_path(env: Mapping[str, str] | None = None, home_dir: Path | None = None) -> Path:
    """``$INTERCLOUD_CONFIG``, else ``config.yaml`` in ``home_dir`` (default ``home``).
    Not read here: ``intercloud.config.load_config`` validates it."""
    named = _raw(CONFIG, env)
    if named is not None:
        return Path(named).expanduser()
    return (home_dir if home_dir is not None else home(env)) / CONFIG_FILE


def config_given(env: Mapping[str, str] | None = None, home_dir: Path | None = None) -> bool:
    """Whether there is a configuration to read: ``INTERCLOUD_CONFIG`` is set (a missing
    file is then an error) or the home's ``config.yaml`` exists."""
    return _raw(CONFIG, env) is not None or config_path(env, home_dir).exists()


def check_home(env: Mapping[str, str] | None = None) -> Path:
    """``home`` when it is, or can become, a folder: refused when it or its nearest
    existing parent is not a folder (a file, ``/dev/null``)."""
    path = home(env).absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        what = "is not a folder" if existing == path else f"is inside {existing}, not a folder"
        raise SettingError(HOME, str(_env(env).get(HOME, "")), what)
    return path


def db_url(env: Mapping[str, str] | None = None) -> str | None:
    """``$INTERCLOUD_DB_URL`` normalised (driver filled in), or None when unset.

    Refused: a URL that does not parse, a backend other than SQLite/PostgreSQL, an
    in-memory or file-less SQLite URL, a SQLite URL with options (``?mode=ro``), a relative
    SQLite path, and a SQLite file whose folder does not exist.
    """
    raw = _raw(DB_URL, env)
    if raw is None:
        return None
    return check_db_url(raw, DB_URL)


def check_db_url(raw: str, name: str = DB_URL) -> str:
    """Validate a database URL as ``db_url`` does; returns it normalised."""
    from sqlalchemy.engine import make_url

    from intercloud.store.engine import normalize_url

    try:
        url = normalize_url(raw)
    except RuntimeError as exc:  # StoreError: unparsable or unsupported
        raise SettingError(name, raw, str(exc)) from None
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database or ""
    if (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or (parsed.query.get("mode") == "memory")
    ):
        raise SettingError(
            name, raw, "an in-memory database loses every job; give a file, sqlite:////abs/state.db"
        )
    if parsed.query:  # SQLAlchemy warns and ignores them; uri=true could open it read-only
        raise SettingError(
            name, raw, f"options ({', '.join(sorted(parsed.query))}) are not supported for SQLite"
        )
    path = Path(database).expanduser()
    if not path.is_absolute():
        raise SettingError(name, raw, "give an absolute path, sqlite:////abs/path/state.db")
    if not path.parent.is_dir():
        raise SettingError(
            name, raw, f"folder {path.parent} does not exist; create it first (mkdir -p)"
        )
    if path.exists() and not path.is_file():
        raise SettingError(name, raw, f"{path} exists but is not a file")
    return url


def _number(name: str, raw: str, low: float, high: float, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingError(name, raw, f"expected {what}")
    return value


def idle_exit_s(env: Mapping[str, str] | None = None) -> float:
    """Seconds the daemon waits idle before it exits (0 .. one week)."""
    raw = _raw(DAEMON_IDLE_EXIT, env)
    if raw is None:
        return DEFAULT_IDLE_EXIT_S
    return _number(
        DAEMON_IDLE_EXIT, raw, 0.0, MAX_IDLE_EXIT_S, "a number of seconds between 0 and 604800"
    )


def leader_ttl_s(env: Mapping[str, str] | None = None) -> float:
    """Seconds the control-loop lease lasts unrenewed (0.5 .. 3600)."""
    raw = _raw(LEADER_TTL, env)
    if raw is None:
        return DEFAULT_LEADER_TTL_S
    return _number(LEADER_TTL, raw, 0.5, 3600.0, "a number of seconds between 0.5 and 3600")


def ledger_every_s(env: Mapping[str, str] | None = None) -> float:
    """Seconds between the daemon's additions to the persisted spend ledger (0 .. 86400;
    0: every loop pass)."""
    raw = _raw(LEDGER_EVERY, env)
    if raw is None:
        return DEFAULT_LEDGER_EVERY_S
    return _number(LEDGER_EVERY, raw, 0.0, 86400.0, "a number of seconds between 0 and 86400")


def decider(env: Mapping[str, str] | None = None) -> str | None:
    """``fleet`` or ``planner`` (lower-cased), None when unset."""
    raw = _raw(DECIDER, env)
    if raw is None:
        return None
    value = raw.lower()
    if value not in DECIDERS:
        raise SettingError(DECIDER, raw, f"expected one of {', '.join(DECIDERS)}")
    return value


def check_queue_policy(raw: str, name: str = QUEUE_POLICY) -> str:
    """A registered queue-order name (imports the policies: numpy)."""
    from intercloud.scheduler.queue_order import POLICIES

    value = raw.strip()
    if value not in POLICIES:
        raise SettingError(name, raw, f"expected one of {', '.join(sorted(POLICIES))}")
    return value


def queue_policy(env: Mapping[str, str] | None = None) -> str | None:
    """The queue-order policy named by the variable, None when unset."""
    raw = _raw(QUEUE_POLICY, env)
    return None if raw is None else check_queue_policy(raw)


def parse_bool(name: str, raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); anything else is refused."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(name, raw, "expected 1/0, true/false, yes/no or on/off")


def preemption(env: Mapping[str, str] | None = None) -> bool | None:
    """Whether a gang may preempt lower-priority work; None when unset."""
    raw = _raw(PREEMPTION, env)
    return None if raw is None else parse_bool(PREEMPTION, raw)


def local_cpus(env: Mapping[str, str] | None = None) -> float | None:
    """CPU slots of the default local site (> 0), None when unset."""
    raw = _raw(LOCAL_CPUS, env)
    if raw is None:
        return None
    value = _number(LOCAL_CPUS, raw, 0.0, MAX_LOCAL_CPUS, "a number of CPU slots above 0")
    if value <= 0:
        raise SettingError(LOCAL_CPUS, raw, "expected a number of CPU slots above 0")
    return value


def parse_gpus(name: str, raw: str) -> tuple[str, int]:
    """``NAME:COUNT`` with a known accelerator name and 1 <= COUNT <= 100000."""
    from intercloud.model import canonical_accelerator

    acc, sep, count = raw.strip().partition(":")
    canonical = canonical_accelerator(acc) if acc.strip() else None
    text = count.strip()
    ok = sep and canonical is not None and text.isascii() and text.isdigit()
    if not ok or not 1 <= int(text) <= MAX_LOCAL_GPUS:
        raise SettingError(
            name, raw, "expected NAME:COUNT with a known accelerator and 1 <= COUNT <= 100000"
        )
    assert canonical is not None
    return canonical, int(text)


def local_gpus(env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """Emulated GPUs of the default local site, None when unset."""
    raw = _raw(LOCAL_GPUS, env)
    return None if raw is None else parse_gpus(LOCAL_GPUS, raw)


def local_sites(env: Mapping[str, str] | None = None) -> tuple[LocalSite, ...] | None:
    """The sites ``INTERCLOUD_LOCAL_SITES`` declares, None when unset."""
    raw = _raw(LOCAL_SITES, env)
    if raw is None:
        return None
    from intercloud.providers.local_config import parse_sites

    try:
        sites = parse_sites(raw)
    except (ValueError, TypeError, OSError) as exc:
        raise SettingError(LOCAL_SITES, raw, " ".join(str(exc).split())) from None
    except Exception as exc:  # yaml.YAMLError from a sites file
        raise SettingError(
            LOCAL_SITES, raw, f"unreadable sites file: {type(exc).__name__}"
        ) from None
    for site in sites:
        numbers = {
            "cpus": site.cpu_slots,
            "memory": site.memory_gib,
            "price": site.on_demand_price,
            "spot": site.spot_price if site.spot_price is not None else 0.0,
        }
        for key, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingError(LOCAL_SITES, raw, f"site {site.key}: {key} must be a number")
            if not math.isfinite(value) or value < 0 or value > MAX_LOCAL_CPUS:
                raise SettingError(
                    LOCAL_SITES, raw, f"site {site.key}: {key} must be a finite number >= 0"
                )
        if site.gpu_slots > MAX_LOCAL_GPUS:
            raise SettingError(LOCAL_SITES, raw, f"site {site.key}: too many GPUs")
        if site.gpu_type is not None:
            parse_gpus(LOCAL_SITES, f"{site.gpu_type}:{max(site.gpu_slots, 1)}")
    return sites


def log_level(env: Mapping[str, str] | None = None) -> str:
    """The daemon's log level name, ``INFO`` by default."""
    raw = _raw(LOG_LEVEL, env)
    if raw is None:
        return "INFO"
    if raw.upper() not in LOG_LEVELS:
        raise SettingError(LOG_LEVEL, raw, f"expected one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def debug(env: Mapping[str, str] | None = None) -> bool:
    """``INTERCLOUD_DEBUG``: show the traceback of an internal error (never refused:
    it is read while reporting another error)."""
    return (_raw(DEBUG, env) or "").lower() in _TRUE


_AZ_COLUMNS = ("AvailabilityZoneName", "AvailabilityZone")
_AZ_NAME = re.compile(r"^[a-z0-9-]+[a-z]$")  # us-east-1a
_AZ_ID = re.compile(r"^[a-z0-9-]+-az[0-9]+$")  # use1-az6


def read_az_mapping(raw: str) -> tuple[tuple[str, str], ...]:
    """(zone name, zone id) pairs, lower case, of the CSV file ``raw`` (columns
    ``AvailabilityZoneName`` and ``AvailabilityZone``, as ``aws ec2
    describe-availability-zones`` reports them). The file is read as spec files are: a
    regular file of at most 1 MiB, never blocking on a FIFO or device. SettingError
    naming ``INTERCLOUD_AWS_AZ_MAPPING`` for anything else, a row that is not a zone name
    and id included."""
    import io

    from intercloud.specs import SpecError, read_spec_text

    try:
        text = read_spec_text(Path(raw).expanduser())
    except SpecError as exc:
        raise SettingError(AWS_AZ_MAPPING, raw, f"cannot read: {exc.problem}") from None
    pairs: list[tuple[str, str]] = []
    try:
        reader = csv.DictReader(io.StringIO(text))
        if not set(_AZ_COLUMNS) <= set(reader.fieldnames or ()):
            raise SettingError(AWS_AZ_MAPPING, raw, f"expected CSV columns {','.join(_AZ_COLUMNS)}")
        for row in reader:
            name, zone_id = ((row.get(c) or "").strip().lower() for c in _AZ_COLUMNS)
            if not _AZ_NAME.match(name) or not _AZ_ID.match(zone_id):
                raise SettingError(
                    AWS_AZ_MAPPING,
                    raw,
                    f"line {reader.line_num}: expected a zone name and a zone id "
                    "(us-east-1a,use1-az6)",
                )
            pairs.append((name, zone_id))
    except csv.Error as exc:
        raise SettingError(AWS_AZ_MAPPING, raw, f"not a CSV file ({exc})") from None
    return tuple(pairs)


def aws_az_mapping(env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...] | None:
    """The pairs of ``INTERCLOUD_AWS_AZ_MAPPING`` (``read_az_mapping``), None when unset."""
    raw = _raw(AWS_AZ_MAPPING, env)
    return None if raw is None else read_az_mapping(raw)


def check_all(env: Mapping[str, str] | None = None) -> None:
    """Validate every setting; the first bad one raises ``SettingError``."""
    check_home(env)
    db_url(env)
    idle_exit_s(env)
    leader_ttl_s(env)
    ledger_every_s(env)
    decider(env)
    queue_policy(env)
    preemption(env)
    local_cpus(env)
    local_gpus(env)
    local_sites(env)
    log_level(env)
    aws_az_mapping(env)


__all__ = [
    "SettingError",
    "aws_az_mapping",
    "check_all",
    "check_db_url",
    "check_home",
    "config_given",
    "config_path",
    "db_url",
    "debug",
    "decider",
    "home",
    "idle_exit_s",
    "ledger_every_s",
    "local_cpus",
    "local_gpus",
    "local_sites",
    "log_level",
    "parse_bool",
    "preemption",
    "queue_policy",
    "read_az_mapping",
]
