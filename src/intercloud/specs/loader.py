"""Reading a spec: YAML text -> format detection -> validated ``Workload``.

A mapping with ``kind`` is a native spec. A mapping without ``kind`` that looks like a
SkyPilot task (it has ``resources``, ``run``, ``setup`` or ``num_nodes`` and no
intercloud-only field) is imported by ``skypilot_task``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from intercloud.model import Workload
from intercloud.specs import native, skypilot_task
from intercloud.specs.errors import FILE, ROOT, YAML, SpecError, SpecProblem, describe, suggest
from intercloud.specs.validate_catalog import Vocabulary, check_resources

if TYPE_CHECKING:
    from intercloud.catalog import Catalog


@dataclass(frozen=True)
class LoadedSpec:
    """A validated workload and how it was read.

    ``ignored_fields``: dotted paths of fields of an imported file that intercloud does
    not use; ``notes``: one-line remarks on how the import was interpreted.
    """

    workload: Workload
    source_format: str  # "intercloud" or "skypilot"
    ignored_fields: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            continue
        if duplicate:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str) -> Any:
    """YAML -> Python data; ``SpecProblem("(yaml)", "line L, column C: ...")`` on error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise SpecProblem(YAML, f"{where}{what}") from None
    except yaml.YAMLError as exc:
        raise SpecProblem(YAML, str(exc)) from None


def load_spec_text(
    text: str, catalog: Catalog | None = None, source: str = "<string>"
) -> LoadedSpec:
    """Parse and validate one spec. Raises ``SpecError`` (one line) on any problem."""
    try:
        return _load(parse_yaml(text), catalog, source)
    except SpecProblem as p:
        raise SpecError(p.field, p.problem, source) from None


def load_spec_file(path: Path, catalog: Catalog | None = None) -> LoadedSpec:
    """``load_spec_text`` on a file; an unreadable file is ``SpecError(field="(file)")``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError(FILE, f"cannot read: {reason}", str(path)) from None
    return load_spec_text(text, catalog, source=str(path))


def _load(data: Any, catalog: Catalog | None, source: str) -> LoadedSpec:
    if data is None:
        raise SpecProblem(ROOT, "empty spec")
    if not isinstance(data, dict):
        raise SpecProblem(ROOT, f"expected a mapping at the top level, got {describe(data)}")
    vocab = Vocabulary(catalog)
    if "kind" not in data:
        if skypilot_task.looks_like_task(data):
            imported = skypilot_task.import_task(data, vocab, source)
            return LoadedSpec(
                imported.workload, "skypilot", imported.ignored_fields, imported.notes
            )
        raise SpecProblem("kind", "required field is missing (training, service or batch)")
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in native.SPEC_MODELS:
        tip = suggest(kind, native.SPEC_MODELS) if isinstance(kind, str) else ""
        raise SpecProblem("kind", f"expected training, service or batch, got {describe(kind)}{tip}")
    spec = native.validate(data, kind)
    workload = native.to_workload(spec, vocab)
    check_resources(workload.resources, catalog, native.resource_paths(spec))
    return LoadedSpec(workload, "intercloud")
