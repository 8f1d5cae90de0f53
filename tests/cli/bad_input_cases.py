"""The bad-input corpus: one list of ``Case`` (``CASES``), run by
``test_bad_input_corpus.py``.

Each case is a command line plus what it needs: a spec (a mapping dumped as YAML, or
raw text), extra files, environment settings. Every case must end with exit code
``code`` (2: bad input; 1: nothing feasible), at most three lines of output, no
traceback, ``needle`` in the output, and the store untouched. To add a case, append
a ``Case`` to one of the groups below (or a new group function listed in ``CASES``).

Placeholders in ``args`` and in ``env`` values: ``{spec}`` (the spec file), ``{dir}``
(the case's own folder, where ``files`` are written), ``{catalog}`` (``{dir}/catalog``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIG = 2**63  # the first integer SQLite and numpy int64 cannot hold
INT32 = 2**31  # the first integer PostgreSQL's INTEGER cannot hold


@dataclass(frozen=True)
class Case:
    """One hostile input. ``spec``: a mapping (dumped as YAML) or raw text written to
    ``{spec}``; ``files``: relative path -> text, written under ``{dir}``; ``prepare``:
    makes special files (a FIFO) in ``{dir}``; ``subprocess``: run as a real process
    (for inputs that could block or that only a process exercises)."""

    id: str
    args: tuple[str, ...]
    spec: Any = None
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    code: int = 2
    needle: str = ""
    subprocess: bool = False
    prepare: Callable[[Path], None] | None = None


# --- specs ---------------------------------------------------------------------------

TRAINING: dict[str, Any] = {
    "kind": "training",
    "name": "t",
    "resources": {"cpus": "1+"},
    "run": "true",
}
SERVICE: dict[str, Any] = {
    "kind": "service",
    "name": "s",
    "resources": {"cpus": "1+"},
    "run": "true",
}
BATCH: dict[str, Any] = {
    "kind": "batch",
    "name": "b",
    "resources": {"cpus": "1+"},
    "run": "true",
}
SKYPILOT: dict[str, Any] = {"name": "sky", "resources": {"cpus": "1+"}, "run": "true"}
BASES = {"training": TRAINING, "service": SERVICE, "batch": BATCH, "skypilot": SKYPILOT}


def with_value(base: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` (dotted) set to ``value``."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(base)))
    target = out
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return out


# (base, dotted path) of every integer field; the needle is the path's last part
INTEGER_FIELDS = [
    ("training", "priority"),
    ("training", "num_nodes"),
    ("training", "resources.num_nodes"),
    ("training", "restart.max_restarts"),
    ("service", "replicas.min"),
    ("service", "replicas.max"),
    ("service", "num_nodes"),
    ("batch", "count"),
    ("batch", "restart.max_restarts"),
    ("skypilot", "num_nodes"),
    ("skypilot", "resources.job_recovery.max_restarts_on_errors"),
]
# values no integer field accepts (priority may be negative: it gets -2^63 instead of -1)
INTEGER_VALUES: dict[str, Any] = {
    "2^63": BIG,
    "2^31": INT32,
    "10^400": 10**400,
    "neg": -1,
    "1e309": float("inf"),
    "nan": float("nan"),
    "text": "x",
    "half": 0.5,
}
# (base, path) of number fields, with values none of them accepts
NUMBER_FIELDS = [
    ("training", "resources.max_hourly_usd"),
    ("training", "duration"),
    ("training", "checkpoint_interval"),
    ("training", "resources.cpus"),
    ("training", "resources.memory"),
    ("service", "target_rps_per_replica"),
    ("service", "spot_share"),
    ("skypilot", "resources.cpus"),
]
NUMBER_VALUES: dict[str, Any] = {
    "inf": float("inf"),
    "-inf": float("-inf"),
    "nan": float("nan"),
    "neg": -1,
    "10^400": 10**400,
    "1e300": 1e300,
    "text": "lots",
}
_INTEGER_VALUES_PER_COMMAND = {"plan": ("2^63", "10^400", "1e309"), "run": ("2^63", "2^31")}
COMMANDS = {
    "validate": ("validate", "{spec}"),
    "plan": ("plan", "{spec}"),
    "run": ("run", "-d", "{spec}"),
}


def integer_cases() -> Iterator[Case]:
    for (base, path), (vname, value), (cname, args) in itertools.product(
        INTEGER_FIELDS, INTEGER_VALUES.items(), COMMANDS.items()
    ):
        if path == "priority" and vname == "neg":
            value = -BIG
        if vname not in _INTEGER_VALUES_PER_COMMAND.get(cname, INTEGER_VALUES):
            continue  # every value through validate; the overflowing ones through all
        leaf = path.split(".")[-1]
        yield Case(
            f"int-{base}-{path}-{vname}-{cname}",
            args,
            spec=with_value(BASES[base], path, value),
            needle=leaf,
        )


def number_cases() -> Iterator[Case]:
    for (base, path), (vname, value) in itertools.product(NUMBER_FIELDS, NUMBER_VALUES.items()):
        if path.endswith(("cpus", "memory")) and vname == "1e300":
            value = 1e300
        leaf = path.split(".")[-1]
        for cname in ("validate", "run") if vname in ("inf", "10^400") else ("plan",):
            yield Case(
                f"num-{base}-{path}-{vname}-{cname}",
                COMMANDS[cname],
                spec=with_value(BASES[base], path, value),
                needle=leaf,
            )


ACCELERATORS = {
    "count-2^63": f"H100:{BIG}",
    "count-huge": "H100:99999999999999999999999999",
    "count-neg": "H100:-1",
    "count-zero": "H100:0",
    "count-float": "H100:1.5",
    "count-2000": "H100:2000",
    "map-2^63": {"H100": BIG},
    "map-inf": {"H100": float("inf")},
    "empty-name": ":8",
    "list-empty": [],
}


def accelerator_cases() -> Iterator[Case]:
    for (name, value), base in itertools.product(ACCELERATORS.items(), ("training", "skypilot")):
        if base == "skypilot" and name == "list-empty":
            continue  # SkyPilot reads an empty list as no accelerators
        yield Case(
            f"acc-{base}-{name}",
            COMMANDS["plan"],
            spec=with_value(BASES[base], "resources.accelerators", value),
            needle="accelerators",
        )


NUL_FIELDS = [
    ("training", "run"),
    ("training", "setup"),
    ("training", "envs.TOKEN"),
    ("training", "name"),
    ("training", "tenant"),
    ("batch", "run"),
    ("service", "envs.A"),
    ("skypilot", "run"),
    ("skypilot", "setup"),
    ("skypilot", "envs.KEY"),
]


def nul_cases() -> Iterator[Case]:
    for (base, path), cname in itertools.product(NUL_FIELDS, ("validate", "run")):
        yield Case(
            f"nul-{base}-{path}-{cname}",
            COMMANDS[cname],
            spec=with_value(BASES[base], path, "echo a\0b"),
            needle=path.split(".")[0],
        )


LONG = "x" * (128 * 1024)  # one byte past what one argument or variable can hold
LONG_FIELDS = [
    ("training", "run"),
    ("training", "setup"),
    ("training", "envs.BIG"),
    ("batch", "run"),
    ("service", "setup"),
    ("skypilot", "run"),
    ("skypilot", "envs.BIG"),
]


def long_text_cases() -> Iterator[Case]:
    for (base, path), cname in itertools.product(LONG_FIELDS, ("validate", "run")):
        yield Case(
            f"long-{base}-{path}-{cname}",
            COMMANDS[cname],
            spec=with_value(BASES[base], path, LONG),
            needle="128 KiB",
        )


def no_run_cases() -> Iterator[Case]:
    for base, value in itertools.product(BASES, ("", "   \n  ", None)):
        spec = with_value(BASES[base], "run", value)
        if value is None:
            del spec["run"]
            spec.setdefault("setup", "echo setup only")
        yield Case(f"no-run-{base}-{value!r}", COMMANDS["run"], spec=spec, needle="run")


def source_cases() -> Iterator[Case]:
    """workdir/file_mounts sources a node could never finish copying (kernel files)."""
    sources = {
        "workdir-proc": ("workdir", "/proc"),
        "workdir-sys": ("workdir", "/sys/kernel"),
        "workdir-dev": ("workdir", "/dev"),
        "mount-cpuinfo": ("file_mounts", {"/k": "/proc/cpuinfo"}),
        "mount-status": ("file_mounts", {"/s": "/proc/self/status"}),
    }
    for (name, (key, value)), base in itertools.product(sources.items(), ("training", "skypilot")):
        spec = with_value(BASES[base], key, value)
        yield Case(f"source-{name}-{base}", COMMANDS["run"], spec=spec, needle="pseudo-filesystem")


def _deep(levels: int, flow: bool, mapping: bool) -> str:
    if flow:
        inner = ("{a: " * levels + "1" + "}" * levels) if mapping else "[" * levels + "]" * levels
        return f"kind: training\nname: t\nrun: 'true'\nresources: {{cpus: 1+}}\nenvs: {inner}\n"
    lines = ["kind: training", "name: t", "run: 'true'", "envs:"]
    for i in range(levels):
        lines.append("  " * (i + 1) + ("a:" if mapping else "-"))
    return "\n".join(lines) + " 1\n"


def _laughs(levels: int) -> str:
    lines = ["kind: training", "name: t", "run: 'true'", 'x0: &x0 ["lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


YAML_TEXTS: dict[str, tuple[str, str]] = {
    "empty": ("", "empty"),
    "comment-only": ("# nothing\n", "empty"),
    "top-list": ("- a\n- b\n", "mapping"),
    "top-scalar": ("hello\n", "mapping"),
    "tab-indent": ("kind: training\n\tname: t\n", "(yaml)"),
    "unclosed-flow": ("kind: training\nresources: {cpus: 1\n", "(yaml)"),
    "duplicate-key": ("kind: training\nname: a\nname: b\n", "duplicate"),
    "bad-anchor": ("kind: training\nname: *nope\n", "(yaml)"),
    "binary-tag": ("kind: !!binary aGVsbG8=\n", "kind"),
    "python-tag": ("kind: !!python/object:os.system {}\n", "(yaml)"),
    "two-docs": ("kind: training\n---\nkind: batch\n", "(yaml)"),
    "laughs-6": (_laughs(6), "aliases"),
    "laughs-9": (_laughs(9), "aliases"),
    "list-120k": ("kind: training\nname: t\nenvs: [" + "1," * 120_000 + "1]\n", "values"),
    "envs-60k": (
        "kind: training\nname: t\nenvs:\n" + "".join(f"  K{i}: v\n" for i in range(60_000)),
        "values",
    ),
    "int-5000-digits": ("kind: training\nname: t\npriority: " + "9" * 5000 + "\n", "digits"),
    "timestamp-25h": ("kind: training\nname: t\ndeadline: 2026-01-01T25:00:00Z\n", "hour"),
    "deadline-past-9999": (
        "kind: training\nname: t\nresources: {cpus: 1+}\ndeadline: 9999-12-31 23:59:59 -12:00\n",
        "deadline",
    ),
    "deadline-before-1": (
        "kind: training\nname: t\nresources: {cpus: 1+}\ndeadline: 0001-01-01T00:00:00+23:59\n",
        "deadline",
    ),
    "over-1MiB": ("kind: training\nname: t\nrun: '" + "x" * (1 << 20) + "'\n", "KiB"),
}


def yaml_cases() -> Iterator[Case]:
    for levels, flow, mapping in itertools.product(
        (65, 300, 1000, 20_000), (True, False), (True, False)
    ):
        if levels == 20_000 and not flow:
            continue  # block style that deep exceeds the size bound first
        kind = f"{'flow' if flow else 'block'}-{'map' if mapping else 'list'}"
        for cname in ("validate", "run"):
            yield Case(
                f"deep-{levels}-{kind}-{cname}",
                COMMANDS[cname],
                spec=_deep(levels, flow, mapping),
                needle="nest",  # ours: "nested more than"; libyaml: "nesting depth"
            )
    for (name, (text, needle)), cname in itertools.product(
        YAML_TEXTS.items(), ("validate", "plan", "run")
    ):
        yield Case(f"yaml-{name}-{cname}", COMMANDS[cname], spec=text, needle=needle)


def _fifo(folder: Path) -> None:
    import os

    os.mkfifo(folder / "fifo.yaml")


def _socket(folder: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(folder / "sock.yaml"))  # left bound: the path stays a socket


def file_cases() -> Iterator[Case]:
    paths = {
        "fifo": ("{dir}/fifo.yaml", _fifo, "FIFO"),
        "dev-zero": ("/dev/zero", None, "device"),
        "dev-urandom": ("/dev/urandom", None, "device"),
        "dev-null": ("/dev/null", None, "device"),
        "directory": ("{dir}", None, "directory"),
        "missing": ("{dir}/missing.yaml", None, "missing.yaml"),
        "socket": ("{dir}/sock.yaml", _socket, "sock"),
    }
    for (name, (path, prepare, needle)), cname in itertools.product(
        paths.items(), ("validate", "plan", "run")
    ):
        args = tuple(path if a == "{spec}" else a for a in COMMANDS[cname])
        slow = name in ("fifo", "dev-zero", "dev-urandom")
        yield Case(f"file-{name}-{cname}", args, prepare=prepare, needle=needle, subprocess=slow)
    yield Case(
        "file-not-utf8",
        ("validate", "{dir}/latin1.yaml"),
        files={"latin1.yaml": b"kind: training\nname: caf\xe9\n"},
        needle="UTF-8",
    )


# --- command-line arguments ------------------------------------------------------------

ID_VALUES = {"2^63": str(BIG), "2^31": str(INT32), "zero": "0", "neg": "-1", "text": "x",
             "float": "1.5", "exp": "1e3", "empty": ""}  # fmt: skip


def argument_cases() -> Iterator[Case]:
    for (vname, value), command in itertools.product(
        ID_VALUES.items(), (("status",), ("logs",), ("cancel",))
    ):
        yield Case(f"arg-{command[0]}-id-{vname}", (*command, value), needle=command[0])
    for vname, value in ID_VALUES.items():
        if vname == "zero":
            continue  # rank 0, --top 0 and --limit 0 are valid
        yield Case(f"arg-logs-node-{vname}", ("logs", "1", "--node", value), needle="node")
        yield Case(f"arg-plan-top-{vname}", ("plan", "{spec}", "--top", value), needle="top",
                   spec=TRAINING)  # fmt: skip
        yield Case(f"arg-catalog-limit-{vname}", ("catalog", "--limit", value), needle="limit")
    for command in ("status", "logs", "cancel"):
        yield Case(f"arg-{command}-unknown-job", (command, "424242"), needle="424242")
    throughput = {
        "inf": "H100=inf",
        "1e309": "H100=1e309",
        "nan": "H100=nan",
        "neg": "H100=-1",
        "zero": "H100=0",
        "tiny": "H100=1e-300",
        "huge": "H100=1e6",
        "no-number": "H100",
        "no-name": "=2",
        "unknown": "NOPE=2",
        "empty-item": "H100=2,,B200=3",
        "trailing-comma": "H100=2,",
        "only-comma": ",",
        "empty": "",
        "twice": "H100=2,h100=3",
        "text": "H100=fast",
    }
    for name, value in throughput.items():
        yield Case(
            f"arg-throughput-{name}", ("plan", "{spec}", "--throughput", value),
            spec=TRAINING, needle="--throughput",
        )  # fmt: skip
    for name, value in {
        "unknown": "nope",
        "empty": "",
        "commas": ",,",
        "one-bad": "aws,nope",
    }.items():
        yield Case(
            f"arg-providers-{name}", ("plan", "{spec}", "--providers", value),
            spec=TRAINING, needle="--providers",
        )  # fmt: skip
    yield Case("arg-catalog-accelerator", ("catalog", "--accelerator", "NOPE"), needle="NOPE")
    yield Case("arg-catalog-provider", ("catalog", "--provider", "nope"), needle="nope")
    yield Case("arg-unknown-command", ("launch",), needle="launch")
    yield Case("arg-unknown-option", ("status", "--verbose"), needle="--verbose")
    yield Case("arg-missing-spec", ("run",), needle="SPEC")
    yield Case("arg-extra-arg", ("validate", "{spec}", "extra"), spec=TRAINING, needle="extra")
    yield Case("arg-daemon-unknown", ("daemon", "restart"), needle="restart")
    run = ("run", "-d", "{spec}")
    env_options = {
        "bad-name": (("--env", "1A=x"), "--env"),
        "dash-name": (("--env", "A-B=x"), "--env"),
        "no-name": (("--env", "=x"), "--env"),
        "unset": (("--env", "INTERCLOUD_CORPUS_UNSET"), "not set"),
        "nul": (("--env", "A=x\0y"), "NUL"),
        "too-long": (("--env", "A=" + LONG), "128 KiB"),
        "file-missing": (("--env-file", "{dir}/missing.env"), "missing.env"),
        "file-dir": (("--env-file", "{dir}"), "--env-file"),
        "file-dev-zero": (("--env-file", "/dev/zero"), "--env-file"),
        "file-fifo": (("--env-file", "{dir}/fifo.yaml"), "--env-file"),
        "file-bad-line": (("--env-file", "{dir}/bad.env"), "bad.env line 2"),
        "file-quote": (("--env-file", "{dir}/quote.env"), "quote.env line 1"),
        "file-long": (("--env-file", "{dir}/long.env"), "128 KiB"),
        "file-huge": (("--env-file", "{dir}/huge.env"), "larger than"),
    }
    env_files = {
        "bad.env": "A=1\nnot an assignment\n",
        "quote.env": "A='unterminated\n",
        "long.env": f"A={LONG}\n",
        "huge.env": "A=1\n" * 300_000,
    }
    for name, (option, needle) in env_options.items():
        yield Case(
            f"arg-run-env-{name}", (*run, *option), spec=TRAINING, files=env_files,
            needle=needle, prepare=_fifo if name == "file-fifo" else None,
            subprocess=name in ("file-fifo", "file-dev-zero"),
        )  # fmt: skip
    tenants = {
        "name-space": (("create", "bad name"), "NAME"),
        "name-long": (("create", "t" * 65), "NAME"),
        "weight-zero": (("create", "x", "--weight", "0"), "--weight"),
        "weight-huge": (("create", "x", "--weight", "1e300"), "--weight"),
        "weight-nan": (("create", "x", "--weight", "nan"), "--weight"),
        "budget-neg": (("create", "x", "--budget-usd-month", "-1"), "--budget-usd-month"),
        "budget-huge": (("create", "x", "--budget-usd-month", "1e300"), "--budget-usd-month"),
        "guarantee-unknown": (("create", "x", "--guarantee", "NOPE=1"), "--guarantee"),
        "guarantee-huge": (("create", "x", "--guarantee", f"H100={BIG}"), "--guarantee"),
        "guarantee-bound": (("create", "x", "--guarantee", "H100=9999999999"), "--guarantee"),
        "quota-below": (("create", "x", "--guarantee", "H100=8", "--quota", "H100=4"), "--quota"),
        "exists": (("create", "default"), "already exists"),
        "set-unknown": (("set", "nobody", "--weight", "2"), "nobody"),
        "set-nothing": (("set", "default"), "nothing to change"),
        "show-unknown": (("show", "nobody"), "nobody"),
    }
    for name, (args, needle) in tenants.items():
        yield Case(f"arg-tenants-{name}", ("tenants", *args), needle=needle)


# --- settings -----------------------------------------------------------------------------

SETTINGS: dict[str, tuple[str, ...]] = {
    "INTERCLOUD_HOME": ("/dev/null", "{dir}/sites.yaml/home"),
    "INTERCLOUD_DAEMON_IDLE_EXIT": ("abc", "-1", "nan", "inf", "1e309", "10d"),
    "INTERCLOUD_LEADER_TTL": ("abc", "0"),
    "INTERCLOUD_DECIDER": ("nope", "fleet,planner"),
    "INTERCLOUD_QUEUE_POLICY": ("nope", "PRIORITY!"),
    "INTERCLOUD_PREEMPTION": ("maybe", "2"),
    "INTERCLOUD_LOCAL_CPUS": ("-1", "0", "abc", "nan", "inf", "1e309"),
    "INTERCLOUD_LOCAL_GPUS": ("H100", "H100:0", "NOPE:8", "H100:x", "H100:-1", f"H100:{BIG}"),
    "INTERCLOUD_LOCAL_SITES": (
        "aws",
        "aws/r,cpus=x",
        "aws/r,cpus=nan",
        "aws/r,cpus=-1",
        "aws/r,memory=inf",
        "aws/r,bogus=1",
        "aws/r,gpus=H100:-1",
        "aws/r,gpus=NOPE:2",
        ";",
        "{dir}/missing-sites.yaml",
        "{dir}/sites.yaml",
    ),
    "INTERCLOUD_LOG_LEVEL": ("loud",),
    "INTERCLOUD_AWS_AZ_MAPPING": ("/dev/zero", "{dir}/missing.csv", "{dir}/sites.yaml"),
    "INTERCLOUD_DB_URL": (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///relative.db",
        "sqlite:////nonexistent-folder/state.db",
        "sqlite:///{dir}",
        "mysql://u@h/db",
        "not a url",
        "sqlite:///{dir}/state.db?mode=ro",
    ),
}
SETTING_COMMANDS = {
    "status": ("status",),
    "queue": ("queue",),
    "run": ("run", "-d", "{spec}"),
    "plan": ("plan", "{spec}"),
    "daemon-start": ("daemon", "start"),
}


def setting_cases() -> Iterator[Case]:
    for (name, values), (cname, args) in itertools.product(
        SETTINGS.items(), SETTING_COMMANDS.items()
    ):
        for i, value in enumerate(values):
            if cname in ("queue", "daemon-start") and i > 0:
                continue  # the first value per variable is enough for these
            yield Case(
                f"set-{name[11:]}-{value[:24]}-{cname}",
                args,
                spec=TRAINING,
                env={name: value},
                files={"sites.yaml": "- {provider: aws, region: r, cpu_slots: [1]}\n"},
                needle=name,
                # run --detach must refuse before a daemon could start with the setting
                subprocess=cname == "run" and i == 0,
            )


# --- config.yaml ------------------------------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[str | bytes, str]] = {
    "unknown-provider": ("providers: {lcoal: {}}\n", "did you mean 'local'?"),
    "unknown-field": ("provider: {local: {}}\n", "did you mean 'providers'?"),
    "aws-region": ("providers: {aws: {regions: [mars-1]}}\n", "providers.aws.regions"),
    "aws-field": ("providers: {aws: {regon: x}}\n", "providers.aws.regon"),
    "local-gpus": ("providers: {local: {gpus: 'H100:-1'}}\n", "providers.local.gpus"),
    "posing": (
        "providers:\n  local: {sites: [{provider: aws, region: r}]}\n  aws: {}\n",
        "served by both",
    ),
    "enabled-text": ("providers: {local: {enabled: sometimes}}\n", "providers.local.enabled"),
    "cap-range": ("caps: {local: 1.5}\n", "caps.local"),
    "cap-nan": ("caps: {local: .nan}\n", "caps.local"),
    "cooldown": ("failover: {cooldown_s: {first: 9, max: 1}}\n", "failover.cooldown_s"),
    "pools-key": ("pools: {offerings: {x: {}}}\n", "pools.offerings"),
    "agent-listen": ("agent: {listen: ':99999'}\n", "agent.listen"),
    "yaml": ("providers: [\n", "(yaml)"),
    "root-list": ("- local\n", "(root)"),
    "binary": (b"\xff\xfe", "(file)"),
    # a YAML boolean or a quoted number is no number (it was read as 1 or 300)
    "cap-bool": ("caps: {local: true}\n", "caps.local: expected a number"),
    "pools-bool": ("pools: {max_instances: yes}\n", "pools.max_instances"),
    "number-text": ("failover: {down_after_s: '300'}\n", "failover.down_after_s"),
    # the slurm and ray sections: type confusion, ranges, names written into scripts
    "slurm-fence-text": ("providers: {slurm: {fence_s: '60'}}\n", "providers.slurm.fence_s"),
    "slurm-down-bool": ("providers: {slurm: {down_after_s: true}}\n", "slurm.down_after_s"),
    "slurm-fence-neg": ("providers: {slurm: {fence_s: -1}}\n", "providers.slurm.fence_s"),
    "slurm-fence-order": (
        "providers: {slurm: {fence_s: 90, down_after_s: 90}}\n",
        "down_after_s must be longer than fence_s",
    ),
    "slurm-partition-empty": ("providers: {slurm: {partitions: ['']}}\n", "partitions"),
    "slurm-work-root-newline": (
        'providers: {slurm: {work_root: "/a\\nb"}}\n',
        "providers.slurm.work_root",
    ),
    "slurm-conf-relative": ("providers: {slurm: {conf: slurm.conf}}\n", "providers.slurm.conf"),
    "slurm-region-slash": ("providers: {slurm: {region: a/b}}\n", "providers.slurm.region"),
    "slurm-unknown-key": ("providers: {slurm: {fence: 60}}\n", "providers.slurm.fence"),
    "ray-lost-text": (
        "providers: {ray: {address: 'h:1', lost_after_s: '90'}}\n",
        "providers.ray.lost_after_s",
    ),
    "ray-timeout-zero": (
        "providers: {ray: {address: 'h:1', call_timeout_s: 0}}\n",
        "providers.ray.call_timeout_s",
    ),
    "ray-address-scheme": ("providers: {ray: {address: 'http://h:1'}}\n", "providers.ray.address"),
    "ray-address-space": ("providers: {ray: {address: 'a b:1'}}\n", "providers.ray.address"),
    "ray-address-missing": ("providers: {ray: {}}\n", "providers.ray.address"),
    "ray-work-root-relative": (
        "providers: {ray: {address: 'h:1', work_root: rel}}\n",
        "providers.ray.work_root",
    ),
}
CONFIG_COMMANDS = {
    "run": ("run", "-d", "{spec}"),
    "check": ("check",),
    "status": ("status",),
    "daemon-start": ("daemon", "start"),
}


def config_cases() -> Iterator[Case]:
    for (name, (text, needle)), (cname, args) in itertools.product(
        BAD_CONFIGS.items(), CONFIG_COMMANDS.items()
    ):
        yield Case(
            f"config-{name}-{cname}",
            args,
            spec=TRAINING,
            files={"config.yaml": text},
            env={"INTERCLOUD_CONFIG": "{dir}/config.yaml"},
            needle=needle,
            # a process for one command per config: the daemon must not start with it
            subprocess=cname == "run" and name == "unknown-provider",
        )
    yield Case(
        "config-missing-file",
        ("run", "-d", "{spec}"),
        spec=TRAINING,
        env={"INTERCLOUD_CONFIG": "{dir}/nowhere.yaml"},
        needle="nowhere.yaml: (file): cannot read",
    )
    yield Case(
        "config-fifo",
        ("check",),
        prepare=_fifo,
        env={"INTERCLOUD_CONFIG": "{dir}/fifo.yaml"},
        needle="FIFO",
    )


def config_check_cases() -> Iterator[Case]:
    """What only ``intercloud check`` reads of the config: the contract files it names."""
    config = {"INTERCLOUD_CONFIG": "{dir}/config.yaml"}
    yield Case(
        "config-contracts-broken-check",
        ("check",),
        files={"config.yaml": "contracts: [bad.yaml]\n", "bad.yaml": "contracts: [\n"},
        env=config,
        needle="bad.yaml: (yaml)",
    )
    seed = (Path(__file__).resolve().parents[2] / "examples/contracts/seed.yaml").read_text()
    yield Case(  # the daemon's contracts are checked against the catalog as status's are
        "config-contracts-unknown-region-check",
        ("check",),
        files={
            "config.yaml": "contracts: [c.yaml]\n",
            "c.yaml": seed.replace("region: eastus,", "region: mars-1,", 1),
        },
        env=config,
        needle="contracts[1].reserved_blocks[0].region",
    )


# --- today's commands: twin, contracts status, capacity plan ---------------------------------

TWIN = ("twin", "run", "{dir}/fleet.yaml", "--trace", "{dir}/trace.csv", "--jobs")
DEMAND_BOOL = "start: 2026-01\ndemand:\n- {accelerator: H100, kind: training, gpu_hours: [true]}\n"
FLEET = (Path(__file__).resolve().parents[2] / "examples/fleets/small-cluster.yaml").read_text()
BINARY_TRACE = b"timestamp,duration\n\xff\xfe\x00\x01"
OFFERS = "providers:\n- provider: aws\n  offers: [{accelerator: H100, on_demand: 6.9}]\n"


def planning_cases() -> Iterator[Case]:
    twin = {  # options checked before any file is read
        "jobs-huge": ((*TWIN, "99999999999"), "--jobs"),
        "seed-neg": ((*TWIN, "5", "--seed", "-1"), "--seed"),
        "tick-nan": ((*TWIN, "5", "--tick", "nan"), "--tick"),
        "tick-huge": ((*TWIN, "5", "--tick", "1e300"), "--tick"),
    }
    for name, (args, needle) in twin.items():
        yield Case(f"twin-{name}", args, needle=needle)
    for name, target in (("file", "{dir}/f.yaml"), ("device", "/dev/null")):
        yield Case(
            f"twin-out-{name}",
            ("twin", "run", "{dir}/f.yaml", "--trace", "{dir}/t.csv", "--out", target),
            files={"f.yaml": "x: 1\n"},
            needle="--out:",
        )
        yield Case(
            f"capacity-out-{name}",
            ("capacity", "plan", "{dir}/f.yaml", "--offers", "{dir}/f.yaml", "--out", target),
            files={"f.yaml": "x: 1\n"},
            needle="--out:",
        )
    for fmt in ("generic_csv", "philly", "philly_gavel", "tiresias", "alibaba_openb"):
        yield Case(
            f"twin-binary-trace-{fmt}",
            ("twin", "run", "{dir}/fleet.yaml", "--trace", "{dir}/trace.csv", "--format", fmt),
            files={"fleet.yaml": FLEET, "trace.csv": BINARY_TRACE},
            needle="trace.csv: not a UTF-8 text trace",
        )
    yield Case(
        "twin-binary-spot-trace",
        ("twin", "run", "{dir}/fleet.yaml", "--trace", "{dir}/t.csv", "--spot-trace", "{dir}/s"),
        files={"fleet.yaml": FLEET, "s": BINARY_TRACE},
        needle="s: cannot read a spot trace",
    )
    reports: dict[str, tuple[str | bytes, str]] = {
        "binary": (b"\xff\xfe", "not JSON (not UTF-8 text)"),
        "nan": ('{"jobs_total": NaN}', "jobs_total: expected a finite number"),
        "text": ('{"jobs_total": 5, "cost_usd": "cheap"}', "cost_usd: expected a finite number"),
        "bool": ('{"jobs_total": true}', "jobs_total: expected a finite number"),
        "nested": ('{"jobs_total": 1, "goodput": {"a": [1]}}', "goodput: expected"),
    }
    good = '{"jobs_total": 1, "goodput": null}'
    for name, (text, needle) in reports.items():
        yield Case(
            f"twin-compare-{name}",
            ("twin", "compare", "{dir}/a.json", "{dir}/b", "--json"),
            files={"a.json": good, "b/report.json": text},
            needle=needle,
        )
    for at in ("0001-01-01", "9999-12-31T23:59:59", "0001-01-01T00:00:00+05:00"):
        yield Case(f"contracts-at-{at}", ("contracts", "status", "--at", at), needle="--at")
    seed = (Path(__file__).resolve().parents[2] / "examples/contracts/seed.yaml").read_text()
    contracts = {  # a YAML boolean or quoted number is no number (it was read as 1)
        "count-bool": (("count: 2304", "count: true"), "reserved_blocks[0].count"),
        "discount-bool": (("discount: 0.08", "discount: yes"), "contracts[0].discount"),
        "total-text": (("total_usd: 38.0e+9", "total_usd: '38e9'"), "commitment.total_usd"),
        # status once read contracts without the catalog: any type or region passed
        "type-unknown": (("u-p6e-gb200x72,", "p9.huge,"), "reserved_blocks[0].instance_type"),
        "region-unknown": (
            ("region: us-east-1, count: 2304", "region: mars-1, count: 2304"),
            "reserved_blocks[0].region",
        ),
        "type-other-provider": (
            ("u-p6e-gb200x72,", "BM.GPU.GB200.4,"),
            "aws has no instance type 'BM.GPU.GB200.4'",
        ),
    }
    for name, ((old, new), needle) in contracts.items():
        yield Case(
            f"contracts-{name}",
            ("contracts", "status", "--contracts", "{dir}/c.yaml"),
            files={"c.yaml": seed.replace(old, new, 1)},
            needle=needle,
        )
    yield Case(
        "capacity-demand-bool",
        ("capacity", "plan", "{dir}/demand.yaml", "--offers", "{dir}/offers.yaml"),
        files={"demand.yaml": DEMAND_BOOL, "offers.yaml": OFFERS},
        needle="gpu_hours[0]: expected a number",
    )


# --- catalogs -------------------------------------------------------------------------------

CSV_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region"
GOOD_ROW = "t.small,,,2,8,0.1,0.05,r1"
BAD_ROWS = {
    "price-neg": ("t.x,,,2,8,-0.1,0.05,r1", "Price"),
    "price-inf": ("t.x,,,2,8,inf,0.05,r1", "Price"),
    "price-1e309": ("t.x,,,2,8,1e309,0.05,r1", "Price"),
    "spot-neg": ("t.x,,,2,8,0.1,-1,r1", "SpotPrice"),
    "spot-inf": ("t.x,,,2,8,0.1,inf,r1", "SpotPrice"),
    "vcpus-neg": ("t.x,,,-2,8,0.1,0.05,r1", "vCPUs"),
    "vcpus-nan": ("t.x,,,nan,8,0.1,0.05,r1", "vCPUs"),
    "vcpus-inf": ("t.x,,,inf,8,0.1,0.05,r1", "vCPUs"),
    "memory-neg": ("t.x,,,2,-8,0.1,0.05,r1", "MemoryGiB"),
    "memory-nan": ("t.x,,,2,NaN,0.1,0.05,r1", "MemoryGiB"),
    "count-neg": ("t.gpu,H100,-8,2,8,0.1,0.05,r1", "AcceleratorCount"),
    "count-inf": ("t.gpu,H100,inf,2,8,0.1,0.05,r1", "AcceleratorCount"),
    # finite but beyond any instance: a plan's cost would overflow to inf
    "price-huge": ("t.x,,,2,8,1.7e308,0.05,r1", "Price"),
    "vcpus-huge": ("t.x,,,1e300,8,0.1,0.05,r1", "vCPUs"),
    "count-huge": ("t.gpu,H100,1e300,2,8,0.1,0.05,r1", "AcceleratorCount"),
    "field-huge": (f"t.x,,,2,8,0.1,0.05,{'r' * 200_000}", "not a CSV catalog"),
    "price-text": ("t.x,,,2,8,cheap,0.05,r1", "Price"),
    "short-row": ("t.x,,,2", "expected 8 fields"),
}


def catalog_cases() -> Iterator[Case]:
    for (name, (row, needle)), cname in itertools.product(BAD_ROWS.items(), ("plan", "catalog")):
        args = ("plan", "{spec}", "--catalog", "{catalog}") if cname == "plan" else (
            "catalog", "--catalog", "{catalog}")  # fmt: skip
        yield Case(
            f"cat-{name}-{cname}",
            args,
            spec=TRAINING,
            files={"catalog/aws/vms.csv": f"{CSV_HEADER}\n{GOOD_ROW}\n{row}\n"},
            needle=needle,
        )
    folders = {
        "unknown-provider": ({"catalog/mycloud/vms.csv": f"{CSV_HEADER}\n{GOOD_ROW}\n"}, "mycloud"),
        "empty-folder": ({"catalog/common/README": "x"}, "vms.csv"),
        "missing-column": ({"catalog/aws/vms.csv": "InstanceType,Price\nt,1\n"}, "column"),
        "empty-file": ({"catalog/aws/vms.csv": ""}, "empty"),
        "not-a-folder": ({"catalog": "x"}, "catalog"),
        "missing": ({}, "catalog"),
    }
    for (name, (files, needle)), cname in itertools.product(folders.items(), ("plan", "catalog")):
        args = ("plan", "{spec}", "--catalog", "{catalog}") if cname == "plan" else (
            "catalog", "--catalog", "{catalog}")  # fmt: skip
        yield Case(f"cat-{name}-{cname}", args, spec=TRAINING, files=files, needle=needle)


# --- requests nothing can ever satisfy (exit 1) ----------------------------------------------


def infeasible_cases() -> Iterator[Case]:
    local = {"INTERCLOUD_LOCAL_CPUS": "2"}
    gangs = {
        "nodes-1000": with_value(TRAINING, "num_nodes", 1000),
        "nodes-16384": with_value(TRAINING, "num_nodes", 16384),
        "cpus-per-node": with_value(TRAINING, "resources.cpus", "64+"),
        "batch-1000": with_value(BATCH, "count", 1000),
        "service-replica": with_value(SERVICE, "num_nodes", 500),
        "memory": with_value(TRAINING, "resources.memory", "100000+"),
        "gpus": with_value(TRAINING, "resources.accelerators", "H100:8"),
        "sky-nodes": with_value(SKYPILOT, "num_nodes", 1000),
    }
    for name, spec in gangs.items():
        yield Case(f"never-{name}", COMMANDS["run"], spec=spec, env=local, code=1,
                   needle="can run")  # fmt: skip
    exact = with_value(TRAINING, "resources.cpus", 1)  # the site has 2: exactly 1 never fits
    yield Case("never-exact-cpus", COMMANDS["run"], spec=exact, env=local, code=1, needle="'1+'")
    yield Case("never-service", COMMANDS["run"], spec=SERVICE, code=1, needle="is a service")
    yield Case(
        "plan-nodes-over-max", COMMANDS["plan"], spec=with_value(TRAINING, "num_nodes", 16385),
        needle="num_nodes",
    )  # fmt: skip


GROUPS: tuple[Callable[[], Iterator[Case]], ...] = (
    integer_cases,
    number_cases,
    accelerator_cases,
    nul_cases,
    long_text_cases,
    no_run_cases,
    source_cases,
    yaml_cases,
    file_cases,
    argument_cases,
    setting_cases,
    config_cases,
    config_check_cases,
    planning_cases,
    catalog_cases,
    infeasible_cases,
)
CASES: list[Case] = [case for group in GROUPS for case in group()]
