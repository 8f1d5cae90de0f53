"""Import a SkyPilot task YAML as an intercloud workload.

The importer translates the task into a native spec mapping (remembering where each
value came from), then runs the native validation, so both formats obey the same rules
and errors name the field in the user's SkyPilot file. Mapping:

- a task with accelerators -> ``training``; with a ``service`` section -> ``service``;
  with ``num_nodes`` > 1 -> ``training`` (a CPU gang); otherwise -> ``batch`` (one task).
- ``resources.accelerators``: ``H100:8``; ``{H100: 8}``; a list (ordered preferences,
  as in SkyPilot); a mapping/set of several (any_of). ``any_of``/``ordered`` lists of
  resource mappings are merged over the base ``resources`` and their accelerators become
  the alternatives (cloud/region pairing with an accelerator is not kept; see notes).
- ``infra: aws/us-east-1/us-east-1a`` or ``cloud``/``region``/``zone`` -> providers,
  regions, zones. ``infra: k8s``/``ssh`` is not modelled and imposes no restriction.
- ``use_spot: true`` -> spot ``only``. ``job_recovery.max_restarts_on_errors`` ->
  ``restart.max_restarts``. ``memory: N`` (exact in SkyPilot) is read as at least N.
- ``num_nodes: N`` (N > 1) without accelerators -> a ``training`` gang of N CPU nodes
  (SkyPilot's N-node cluster: every node runs ``run`` with ``SKYPILOT_NODE_RANK`` etc.).
  Without ``cpus`` or ``instance_type``, CPU tasks get ``cpus: 8+``.
- ``workdir`` and ``file_mounts`` -> the native fields; a git workdir (its URL) or a
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
from intercloud.specs.errors import FieldValueError, SpecProblem, describe, suggest
from intercloud.specs.fields import parse_accelerator_item
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
TASK_IGNORED = {
    "secrets",
    "inputs",
    "outputs",
    "event_callback",
    "config",
    "volumes",
    "pool",
    "experimental",
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
}
SERVICE_IGNORED = {"readiness_probe", "ports", "load_balancing_policy", "tls", "pool"}
POLICY_IGNORED = {
    "upscale_delay_seconds",
    "downscale_delay_seconds",
    "dynamic_ondemand_fallback",
    "num_overprovision",
}
_NATIVE_ONLY = {
    "tenant",
    "data",
    "duration",
    "deadline",
    "priority",
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
        if not isinstance(key, str) or (key not in TASK_USED and key not in TASK_IGNORED):
            tip = suggest(str(key), sorted(TASK_USED | TASK_IGNORED))
            raise SpecProblem(str(key), f"unknown SkyPilot task field{tip}")
        if key in TASK_IGNORED:
            t.ignored.append(key)
    resources = data.get("resources") or {}
    if not isinstance(resources, dict):
        raise SpecProblem("resources", f"expected a mapping, got {describe(resources)}")
    candidates, top_choice = _candidates(resources, t)
    accelerators = _accelerators(candidates, top_choice, t)
    is_service = "service" in data
    # num_nodes > 1 is a cluster (a gang) in SkyPilot, with or without accelerators.
    gang = accelerators or data.get("num_nodes", 1) not in (None, 1)
    kind = "service" if is_service else "training" if gang else "batch"
    t.spec["kind"] = kind
    _name(data, source, t)
    if accelerators:
        t.spec.setdefault("resources", {})["accelerators"] = accelerators
    _placement(candidates, t)
    if "num_nodes" in data and data["num_nodes"] is not None:
        t.put("count" if kind == "batch" else "num_nodes", data["num_nodes"], "num_nodes")
    if (
        kind != "service"
        and not accelerators
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
    for key in res:
        path = f"{prefix}.{key}"
        if not isinstance(key, str):
            raise SpecProblem(prefix, f"unknown resources field {describe(key)}")
        if key in RES_USED:
            continue
        if key in RES_IGNORED or key.startswith("_"):
            t.ignored.append(path)
            continue
        raise SpecProblem(
            path, f"unknown SkyPilot resources field{suggest(key, sorted(RES_USED | RES_IGNORED))}"
        )


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


def _accelerators(
    candidates: list[dict[str, Sourced]], top_choice: str | None, t: _Translation
) -> Any:
    """Native ``accelerators`` value for all candidates, with paths recorded."""
    items: list[Sourced] = []
    choice = top_choice
    for cand in candidates:
        if "accelerators" not in cand or cand["accelerators"][0] is None:
            continue
        value, path = cand["accelerators"]
        if isinstance(value, list):
            choice = choice or "ordered"
            items.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, dict | set | frozenset):
            if len(value) > 1:
                choice = choice or "any_of"
            pairs = value.items() if isinstance(value, dict) else ((k, None) for k in value)
            items.extend(({k: v}, f"{path}.{k}" if len(value) > 1 else path) for k, v in pairs)
        else:
            items.append((value, path))
    if (
        len(candidates) > 1
        and any("accelerators" not in c or c["accelerators"][0] is None for c in candidates)
        and items
    ):
        t.notes.append("some alternatives have no accelerators; only accelerator alternatives kept")
    unique: list[Sourced] = []
    seen: set[tuple[str, int]] = set()
    for value, path in items:
        try:
            parsed = parse_accelerator_item(value)
        except FieldValueError:
            unique.append((value, path))  # the native validation reports it at this path
            continue
        key = (parsed.name.lower(), parsed.count)
        if key not in seen:
            seen.add(key)
            unique.append((value, path))
    if not unique:
        return None
    if len(unique) == 1:
        t.paths["resources.accelerators"] = unique[0][1]
        return unique[0][0]
    choice = choice or "any_of"
    t.paths["resources.accelerators"] = candidates[0].get("accelerators", (None, "resources"))[1]
    for i, (_, path) in enumerate(unique):
        t.paths[f"resources.accelerators.{choice}[{i}]"] = path
    return {choice: [v for v, _ in unique]}


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


def _placement(candidates: list[dict[str, Sourced]], t: _Translation) -> None:
    """cpus, memory, instance_type, spot, providers, regions, zones across candidates."""
    many = len(candidates) > 1
    for key in ("cpus", "memory", "instance_type"):
        values = [c[key] for c in candidates if key in c and c[key][0] is not None]
        if not values:
            continue
        distinct = {repr(v) for v, _ in values}
        if len(values) < len(candidates) or len(distinct) > 1:
            t.notes.append(f"alternatives differ in {key}; not constrained")
            t.ignored.extend(p for _, p in values if p not in t.ignored)
            continue
        value, path = values[0]
        t.put(f"resources.{key}", value, path)
        if (
            key == "memory"
            and isinstance(value, int | float | str)
            and not str(value).endswith("+")
        ):
            t.notes.append(f"{path} {value} (exact in SkyPilot) is read as at least {value} GiB")
    spots: list[Sourced] = []
    for cand in candidates:
        value, path = cand.get("use_spot", (False, "resources.use_spot"))
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise SpecProblem(path, f"expected true or false, got {describe(value)}")
        spots.append((value, path))
    flags = {v for v, _ in spots}
    spot = "allowed" if len(flags) > 1 else "only" if flags == {True} else None
    if spot is not None:
        source = next(p for v, p in spots if v)
        t.put("resources.spot", spot, source)
    locations = [_location(c, t) for c in candidates]
    for key, native_key in (("provider", "providers"), ("region", "regions"), ("zone", "zones")):
        found = [loc[key] for loc in locations if key in loc]
        if not found:
            continue
        if len(found) < len(locations):
            t.notes.append(f"some alternatives allow any {key}; {native_key} not restricted")
            continue
        names: list[str] = []
        for value, path in found:
            if value not in names:
                t.paths[f"resources.{native_key}[{len(names)}]"] = path
                names.append(value)
        t.spec.setdefault("resources", {})[native_key] = names
        t.paths.setdefault(f"resources.{native_key}", found[0][1])
    if many and any(locations) and t.spec.get("resources", {}).get("accelerators"):
        t.notes.append(
            "any_of/ordered pair accelerators with places; intercloud allows every listed "
            "accelerator in every listed place"
        )


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
    if fallback > 0 and resources.get("spot") == "only":
        low = t.spec.get("replicas", {}).get("min", 1)
        share = max(0.0, 1 - fallback / low) if isinstance(low, int) and low > 0 else 0.0
        resources["spot"] = "allowed" if share > 0 else "never"
        if share > 0:
            t.spec["spot_share"] = share
        t.notes.append(
            f"base_ondemand_fallback_replicas {fallback}: spot_share {share:g} of min replicas"
        )


__all__ = ["ImportedTask", "import_task", "looks_like_task"]
