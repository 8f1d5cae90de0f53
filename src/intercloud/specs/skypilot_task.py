"""Import a SkyPilot task YAML as an intercloud workload.

The importer translates the task into a native spec mapping (remembering where each
value came from), then runs the native validation, so both formats obey the same rules
and errors name the field in the user's SkyPilot file. Mapping:

- a task with accelerators -> ``training``; with a ``service`` section -> ``service``;
  with ``num_nodes`` > 1 -> ``training`` (a CPU gang); otherwise -> ``batch`` (one task).
- ``resources.accelerators``: ``H100:8``; ``{H100: 8}``; a list (ordered preferences,
  as in SkyPilot); a mapping of several, or the set ``{H100:8, V100:8}`` (any_of).
- ``resources.any_of``/``ordered``: each item, merged over the base ``resources``,
  becomes one native ``resources.any_of``/``ordered`` item, a whole request with its
  pairing kept (that accelerator on that cloud, spot only where it says so, its instance
  type, CPUs and memory). Items are never merged into one set.
- ``infra: aws/us-east-1/us-east-1a`` or ``cloud``/``region``/``zone`` -> providers,
  regions, zones. ``infra: k8s``/``ssh`` is not modelled and imposes no restriction.
- ``max_hourly_cost`` (SkyPilot: per instance) -> ``max_hourly_usd`` x ``num_nodes``
  (the whole gang; batch: per instance). ``resources.priority`` or a top-level
  ``priority`` -> ``priority``.
- ``use_spot: true`` -> spot ``only``. ``job_recovery.max_restarts_on_errors`` ->
  ``restart.max_restarts``. ``memory: N`` (exact in SkyPilot) is read as at least N.
- ``num_nodes: N`` (N > 1) without accelerators -> a ``training`` gang of N CPU nodes
  (SkyPilot's N-node cluster: every node runs ``run`` with ``SKYPILOT_NODE_RANK`` etc.).
  Without ``cpus`` or ``instance_type``, CPU tasks get ``cpus: 8+``.
- ``workdir`` and ``file_mounts`` -> the native fields (relative sources: from the current
  directory, as in SkyPilot); a git workdir (its URL) or a
  storage object (its bucket URI) is refused at submission: only local paths are synced.
- Fields intercloud does not use (``secrets``, ``disk_size``, ...) are listed in
  ``ignored_fields`` by path; their values are never read or echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from intercloud.model import Workload
from intercloud.specs import native
from intercloud.specs.errors import SpecProblem, describe, suggest
from intercloud.specs.validate_catalog import Vocabulary, check_resources

TASK_USED = {
    "name",
    "num_nodes",
    "resources",
    "setup",
    "run",
    "envs",
    "service",
    "job_recovery",
    "workdir",
    "file_mounts",
}
TASK_USED |= {"priority"}  # not in SkyPilot 0.14.1's task schema (resources.priority is)
TASK_IGNORED = {
    "secrets",
    "inputs",
    "outputs",
    "event_callback",
    "config",
    "volumes",
    "pool",
    "experimental",
    "volume_mounts",
    "managed_secrets",
    "file_mounts_mapping",
    "api_server_access",
}
RES_USED = {
    "accelerators",
    "cpus",
    "memory",
    "instance_type",
    "use_spot",
    "infra",
    "cloud",
    "region",
    "zone",
    "job_recovery",
    "max_hourly_cost",
    "priority",
}
RES_IGNORED = {
    "disk_size",
    "disk_tier",
    "network_tier",
    "image_id",
    "ports",
    "labels",
    "accelerator_args",
    "autostop",
    "volumes",
    "spot_recovery",
    "ephemeral_storage",
    "local_disk",
    "priority_class",
}
SERVICE_IGNORED = {
    "readiness_probe",
    "ports",
    "load_balancing_policy",
    "load_balancer",
    "tls",
    "pool",
    "workers",
}
POLICY_IGNORED = {
    "upscale_delay_seconds",
    "downscale_delay_seconds",
    "dynamic_ondemand_fallback",
    "num_overprovision",
    "spot_placer",
}
_NATIVE_ONLY = {
    "tenant",
    "data",
    "duration",
    "deadline",
    "replicas",
    "count",
    "reference_accelerator",
    "checkpoint_interval",
    "restart",
    "spot_share",
    "target_rps_per_replica",
}
_MARKERS = {"resources", "run", "setup", "num_nodes", "file_mounts", "workdir", "service"}
_UNMODELLED_INFRA = {"k8s", "kubernetes", "ssh"}
_DEFAULT_CPUS = "8+"


def looks_like_task(data: dict[str, Any]) -> bool:
    """A mapping without ``kind`` is a SkyPilot task if it has a SkyPilot marker field
    (``resources``, ``run``, ``setup``, ``num_nodes``, ...) and no intercloud-only field."""
    keys = {k for k in data if isinstance(k, str)}
    return bool(keys & _MARKERS) and not keys & _NATIVE_ONLY


@dataclass(frozen=True)
class ImportedTask:
    workload: Workload
    ignored_fields: tuple[str, ...]
    notes: tuple[str, ...]


Sourced = tuple[Any, str]  # a value and the dotted path it was read from


@dataclass
class _Translation:
    spec: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # native path -> SkyPilot path
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, native_path: str, value: Any, source: str) -> None:
        target = self.spec
        *parents, last = native_path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
        self.paths[native_path] = source

    def translate_path(self, path: str) -> str:
        best = ""
        for key in self.paths:
            if (path == key or path.startswith((key + ".", key + "["))) and len(key) > len(best):
                best = key
        return self.paths[best] + path[len(best) :] if best else path


def import_task(data: dict[str, Any], vocab: Vocabulary, source: str = "<string>") -> ImportedTask:
    """Translate and validate a SkyPilot task mapping. Raises ``SpecProblem``."""
    t = _Translation()
    for key in data:
        if isinstance(key, str) and key.startswith("_") and key not in TASK_USED:
            t.ignored.append(key)  # SkyPilot's internal fields (_metadata, ...)
            continue
        if not isinstance(key, str) or (key not in TASK_USED and key not in TASK_IGNORED):
            tip = suggest(str(key), sorted(TASK_USED | TASK_IGNORED))
            raise SpecProblem(str(key), f"unknown SkyPilot task field{tip}")
        if key in TASK_IGNORED:
            t.ignored.append(key)
    resources = data.get("resources") or {}
    if not isinstance(resources, dict):
        raise SpecProblem("resources", f"expected a mapping, got {describe(resources)}")
    candidates, options = _candidates(resources, t)
    is_service = "service" in data
    accelerators = any(c.get("accelerators", (None, ""))[0] is not None for c in candidates)
    # num_nodes > 1 is a cluster (a gang) in SkyPilot, with or without accelerators.
    gang = accelerators or data.get("num_nodes", 1) not in (None, 1)
    kind = "service" if is_service else "training" if gang else "batch"
    t.spec["kind"] = kind
    _name(data, source, t)
    _resources(candidates, options, kind, data.get("num_nodes"), t)
    _priority(data, candidates, t)
    if "num_nodes" in data and data["num_nodes"] is not None:
        t.put("count" if kind == "batch" else "num_nodes", data["num_nodes"], "num_nodes")
    if (
        kind != "service"
        and not accelerators
        and options is None
        and "cpus" not in t.spec.get("resources", {})
        and ("instance_type" not in t.spec.get("resources", {}))
    ):
        t.put("resources.cpus", _DEFAULT_CPUS, "resources")
        t.notes.append(f"no cpus or instance_type given; assuming cpus {_DEFAULT_CPUS}")
    for key in ("setup", "run"):
        if key in data:
            t.put(key, data[key], key)
    _envs(data.get("envs"), t)
    _files(data, t)
    _recovery(data, resources, kind, t)
    if is_service:
        _service(data["service"], t)
    try:
        spec = native.validate(t.spec, kind)
        workload = native.to_workload(spec, vocab)
        check_resources(workload.resources, vocab.catalog, native.resource_paths(spec))
    except SpecProblem as p:
        raise SpecProblem(t.translate_path(p.field), p.problem) from None
    return ImportedTask(workload, tuple(t.ignored), tuple(t.notes))


def _name(data: dict[str, Any], source: str, t: _Translation) -> None:
    if "name" in data and data["name"] is not None:
        t.put("name", data["name"], "name")
        return
    stem = PurePath(source).stem if source != "<string>" else ""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:128] or "skypilot-task"
    t.put("name", name, "name")
    t.notes.append(f"no name given; using '{name}'")


def _check_keys(res: dict[str, Any], prefix: str, t: _Translation) -> None:
    # The base resources may also hold any_of/ordered (items may not): suggest them there.
    known = sorted(RES_USED | RES_IGNORED | ({"any_of", "ordered"} if "[" not in prefix else set()))
    for key in res:
        path = f"{prefix}.{key}"
        if not isinstance(key, str):
            raise SpecProblem(prefix, f"unknown resources field {describe(key)}")
        if key in RES_USED:
            continue
        if key in RES_IGNORED or key.startswith("_"):
            t.ignored.append(path)
            continue
        raise SpecProblem(path, f"unknown SkyPilot resources field{suggest(key, known)}")


def _candidates(
    res: dict[str, Any], t: _Translation
) -> tuple[list[dict[str, Sourced]], str | None]:
    """Base ``resources`` merged under each ``any_of``/``ordered`` entry (or just the base)."""
    lists = [k for k in ("any_of", "ordered") if k in res]
    if len(lists) > 1:
        raise SpecProblem("resources.ordered", "give any_of or ordered, not both")
    base_raw = {k: v for k, v in res.items() if k not in ("any_of", "ordered")}
    _check_keys(base_raw, "resources", t)
    base = {k: (v, f"resources.{k}") for k, v in base_raw.items()}
    if not lists:
        return [base], None
    key = lists[0]
    entries = res[key]
    if not isinstance(entries, list) or not entries:
        raise SpecProblem(f"resources.{key}", "expected a non-empty list of resource mappings")
    out = []
    for i, entry in enumerate(entries):
        prefix = f"resources.{key}[{i}]"
        if not isinstance(entry, dict):
            raise SpecProblem(prefix, f"expected a mapping, got {describe(entry)}")
        _check_keys(entry, prefix, t)
        if "job_recovery" in entry:
            t.ignored.append(f"{prefix}.job_recovery")
        out.append({**base, **{k: (v, f"{prefix}.{k}") for k, v in entry.items()}})
    return out, key


@dataclass
class _Sink:
    """Where one candidate's native resources go: the ``resources`` mapping itself, or
    one item of ``resources.any_of``/``resources.ordered`` (``prefix`` is its path)."""

    target: dict[str, Any]
    prefix: str
    t: _Translation

    def put(self, key: str, value: Any, source: str) -> None:
        self.target[key] = value
        self.t.paths[f"{self.prefix}.{key}"] = source


def _resources(
    candidates: list[dict[str, Sourced]],
    options: str | None,
    kind: str,
    num_nodes: Any,
    t: _Translation,
) -> None:
    """Native ``resources``: the one candidate, or one any_of/ordered item per SkyPilot
    item, each a whole request (base merged with the item), never merged together."""
    res: dict[str, Any] = t.spec.setdefault("resources", {})
    if options is None:
        sink = _Sink(res, "resources", t)
        _accelerators(candidates[0], sink)
        _placement(candidates[0], sink, kind, num_nodes, t)
        return
    items: list[dict[str, Any]] = []
    res[options] = items
    t.paths[f"resources.{options}"] = f"resources.{options}"
    for i, cand in enumerate(candidates):
        item: dict[str, Any] = {}
        items.append(item)
        sink = _Sink(item, f"resources.{options}[{i}]", t)
        t.paths[sink.prefix] = sink.prefix
        _accelerators(cand, sink)
        cpu_only = cand.get("accelerators", (None, ""))[0] is None
        _placement(cand, sink, kind, num_nodes, t, default_cpus=kind != "service" and cpu_only)


def _priority(data: dict[str, Any], candidates: list[dict[str, Sourced]], t: _Translation) -> None:
    """SkyPilot's ``resources.priority`` (or a top-level ``priority``) -> ``priority``
    (higher runs first in both). SkyPilot requires one value per task."""
    found: list[Sourced] = []
    if "priority" in data:
        found.append((data["priority"], "priority"))
    for cand in candidates:
        if "priority" in cand and cand["priority"][0] is not None and cand["priority"] not in found:
            found.append(cand["priority"])
    if not found:
        return
    if len({repr(v) for v, _ in found}) > 1:
        raise SpecProblem(found[1][1], f"differs from {found[0][1]}; give one priority per task")
    t.put("priority", found[0][0], found[0][1])


def _accelerators(cand: dict[str, Sourced], sink: _Sink) -> bool:
    """The candidate's accelerators, as native syntax; True if it has any.

    A list is SkyPilot's ordered preference; a mapping of several (or the set syntax
    ``{H100:8, V100:8}``, read by YAML as keys with null values) is any_of; native
    reads both mapping forms as SkyPilot does.
    """
    if "accelerators" not in cand or cand["accelerators"][0] is None:
        return False
    value, path = cand["accelerators"]
    if isinstance(value, list):
        sink.put("accelerators", {"ordered": value}, path)
        for i in range(len(value)):
            sink.t.paths[f"{sink.prefix}.accelerators.ordered[{i}]"] = f"{path}[{i}]"
        return True
    sink.put("accelerators", value, path)
    return True


def _location(cand: dict[str, Sourced], t: _Translation) -> dict[str, Sourced]:
    """``provider``/``region``/``zone`` of one candidate from ``infra`` or ``cloud``/... ."""
    out: dict[str, Sourced] = {}
    if "infra" in cand:
        value, path = cand["infra"]
        for legacy in ("cloud", "region", "zone"):
            if legacy in cand and cand[legacy][0] is not None:
                raise SpecProblem(cand[legacy][1], "give either infra or cloud/region/zone")
        if value is None:
            return out
        if not isinstance(value, str) or not value.strip():
            raise SpecProblem(path, f"expected CLOUD[/REGION[/ZONE]], got {describe(value)}")
        parts = [p.strip() for p in value.strip().split("/")]
        cloud = parts[0].lower()
        if cloud in _UNMODELLED_INFRA:
            t.notes.append(f"{path} '{cloud}' is not modelled; no provider restriction applied")
            if path not in t.ignored:
                t.ignored.append(path)
            return out
        if len(parts) > 3 or not all(parts):
            raise SpecProblem(path, f"expected CLOUD[/REGION[/ZONE]], got {describe(value)}")
        if cloud != "*":
            out["provider"] = (parts[0], path)
        if len(parts) > 1 and parts[1] != "*":
            out["region"] = (parts[1], path)
        if len(parts) > 2 and parts[2] != "*":
            out["zone"] = (parts[2], path)
        return out
    for legacy, key in (("cloud", "provider"), ("region", "region"), ("zone", "zone")):
        if legacy in cand and cand[legacy][0] is not None:
            value, path = cand[legacy]
            if not isinstance(value, str):
                raise SpecProblem(path, f"expected a string, got {describe(value)}")
            if legacy == "cloud" and value.lower() in _UNMODELLED_INFRA:
                t.notes.append(f"{path} '{value}' is not modelled; no provider restriction applied")
                t.ignored.append(path)
                continue
            out[key] = (value, path)
    return out


def _placement(
    cand: dict[str, Sourced],
    sink: _Sink,
    kind: str,
    num_nodes: Any,
    t: _Translation,
    default_cpus: bool = False,
) -> None:
    """cpus, memory, instance_type, spot, price cap, providers, regions, zones of one
    candidate (the base resources merged with one any_of/ordered item)."""
    for key in ("cpus", "memory", "instance_type"):
        if key not in cand or cand[key][0] is None:
            continue
        value, path = cand[key]
        sink.put(key, value, path)
        if (
            key == "memory"
            and isinstance(value, int | float | str)
            and not str(value).endswith("+")
        ):
            note = f"{path} {value} (exact in SkyPilot) is read as at least {value} GiB"
            if note not in t.notes:
                t.notes.append(note)
    if default_cpus and "cpus" not in sink.target and "instance_type" not in sink.target:
        sink.put("cpus", _DEFAULT_CPUS, sink.prefix)
        note = f"no cpus or instance_type given; assuming cpus {_DEFAULT_CPUS}"
        if note not in t.notes:
            t.notes.append(note)
    value, path = cand.get("use_spot", (False, "resources.use_spot"))
    if value is not None and not isinstance(value, bool):
        raise SpecProblem(path, f"expected true or false, got {describe(value)}")
    if value:
        sink.put("spot", "only", path)
    elif sink.prefix != "resources":
        sink.put("spot", "never", path)  # an item is a whole request: on demand
    _price_cap(cand, sink, kind, num_nodes, t)
    loc = _location(cand, t)
    for key, native_key in (("provider", "providers"), ("region", "regions"), ("zone", "zones")):
        if key in loc:
            value, path = loc[key]
            sink.put(native_key, [value], path)
            sink.t.paths[f"{sink.prefix}.{native_key}[0]"] = path


def _price_cap(
    cand: dict[str, Sourced], sink: _Sink, kind: str, num_nodes: Any, t: _Translation
) -> None:
    """``max_hourly_cost``: SkyPilot caps each instance's hourly price (on demand, or spot
    with ``use_spot``); intercloud caps the whole gang (batch: one instance), so a gang
    of N nodes gets N times the cap: the same set of instance types passes."""
    if "max_hourly_cost" not in cand or cand["max_hourly_cost"][0] is None:
        return
    value, path = cand["max_hourly_cost"]
    nodes = num_nodes if isinstance(num_nodes, int) and not isinstance(num_nodes, bool) else 1
    if kind == "batch" or nodes <= 1 or isinstance(value, bool):
        sink.put("max_hourly_usd", value, path)
        return
    if isinstance(value, int | float):
        sink.put("max_hourly_usd", value * nodes, path)
        note = f"{path} {value:g} per instance: max_hourly_usd {value * nodes:g} for {nodes} nodes"
        if note not in t.notes:
            t.notes.append(note)
    else:
        sink.put("max_hourly_usd", value, path)


def _envs(envs: Any, t: _Translation) -> None:
    if envs is None:
        return
    if not isinstance(envs, dict):
        t.put("envs", envs, "envs")
        return
    kept: dict[Any, Any] = {}
    for key, value in envs.items():
        if value is None:
            t.ignored.append(f"envs.{key}")
            t.notes.append(f"envs.{key} has no value (SkyPilot takes it from --env); left unset")
        else:
            kept[key] = value
    t.put("envs", kept, "envs")


def _files(data: dict[str, Any], t: _Translation) -> None:
    """``workdir`` and ``file_mounts`` as the native fields. A git workdir becomes its URL
    and a storage object its bucket URI, so the submission refuses them by name (no
    provider syncs them yet) while ``plan`` still works."""
    workdir = data.get("workdir")
    if isinstance(workdir, dict):
        workdir = workdir.get("url", workdir)
    if workdir is not None:
        t.put("workdir", workdir, "workdir")
    mounts = data.get("file_mounts")
    if mounts is None:
        return
    if not isinstance(mounts, dict):
        raise SpecProblem("file_mounts", f"expected a mapping DEST: SOURCE, got {describe(mounts)}")
    t.put("file_mounts", {dest: _storage_uri(src) for dest, src in mounts.items()}, "file_mounts")


_STORE_SCHEMES = {"gcs": "gs", "azure": "az"}


def _storage_uri(src: Any) -> Any:
    """A SkyPilot storage object (``{name, source, store, mode}``) as the URI it mounts."""
    if not isinstance(src, dict):
        return src
    source = src.get("source")
    if isinstance(source, str) and "://" in source:
        return source
    store = str(src.get("store") or "storage").lower()
    return f"{_STORE_SCHEMES.get(store, store)}://{src.get('name') or source}"


def _recovery(data: dict[str, Any], resources: dict[str, Any], kind: str, t: _Translation) -> None:
    for container, prefix in ((resources, "resources."), (data, "")):
        if "job_recovery" not in container:
            continue
        path = f"{prefix}job_recovery"
        value = container["job_recovery"]
        if kind == "service" or not isinstance(value, dict):
            t.ignored.append(path)
            continue
        for key, item in value.items():
            if key == "max_restarts_on_errors":
                t.put("restart.max_restarts", item, f"{path}.{key}")
            elif key == "recover_on_exit_codes":
                codes = item if isinstance(item, list) else [item]
                t.put("restart.on_exit_codes", codes, f"{path}.{key}")
            else:
                t.ignored.append(f"{path}.{key}")


def _service(service: Any, t: _Translation) -> None:
    if not isinstance(service, dict):
        raise SpecProblem("service", f"expected a mapping, got {describe(service)}")
    fallback = 0
    for key, value in service.items():
        path = f"service.{key}"
        if key in SERVICE_IGNORED:
            t.ignored.append(path)
        elif key == "replicas":
            t.put("replicas.min", value, path)
            t.put("replicas.max", value, path)
        elif key == "replica_policy":
            if not isinstance(value, dict):
                raise SpecProblem(path, f"expected a mapping, got {describe(value)}")
            for pkey, pvalue in value.items():
                ppath = f"{path}.{pkey}"
                if pkey == "min_replicas":
                    t.put("replicas.min", pvalue, ppath)
                elif pkey == "max_replicas":
                    t.put("replicas.max", pvalue, ppath)
                elif pkey == "target_qps_per_replica":
                    t.put("target_rps_per_replica", pvalue, ppath)
                elif pkey == "base_ondemand_fallback_replicas" and isinstance(pvalue, int):
                    fallback = pvalue
                    t.paths["spot_share"] = ppath
                elif pkey in POLICY_IGNORED or pkey == "base_ondemand_fallback_replicas":
                    t.ignored.append(ppath)
                else:
                    raise SpecProblem(ppath, "unknown SkyPilot replica_policy field")
        else:
            tip = suggest(str(key), sorted({"replicas", "replica_policy", *SERVICE_IGNORED}))
            raise SpecProblem(path, f"unknown SkyPilot service field{tip}")
    resources = t.spec.get("resources", {})
    targets = [resources, *resources.get("any_of", []), *resources.get("ordered", [])]
    if fallback > 0 and any(r.get("spot") == "only" for r in targets):
        low = t.spec.get("replicas", {}).get("min", 1)
        share = max(0.0, 1 - fallback / low) if isinstance(low, int) and low > 0 else 0.0
        for r in targets:
            if r.get("spot") == "only":
                r["spot"] = "allowed" if share > 0 else "never"
        if share > 0:
            t.spec["spot_share"] = share
        t.notes.append(
            f"base_ondemand_fallback_replicas {fallback}: spot_share {share:g} of min replicas"
        )


__all__ = ["ImportedTask", "import_task", "looks_like_task"]
