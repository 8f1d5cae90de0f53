"""Reading a spec: YAML text -> format detection -> validated ``Workload``.

A mapping with ``kind`` is a native spec. A mapping without ``kind`` that looks like a
SkyPilot task (it has ``resources``, ``run``, ``setup`` or ``num_nodes`` and no
intercloud-only field) is imported by ``skypilot_task``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from intercloud.model import Workload
from intercloud.specs import native, skypilot_task
from intercloud.specs.errors import (
    FILE,
    ROOT,
    YAML,
    SpecError,
    SpecProblem,
    describe,
    join_path,
    one_line,
    suggest,
)
from intercloud.specs.validate_catalog import Vocabulary, check_resources

if TYPE_CHECKING:
    from intercloud.catalog import Catalog


@dataclass(frozen=True)
class LoadedSpec:
    """A validated workload and how it was read.

    ``ignored_fields``: dotted paths of fields of an imported file that intercloud does
    not use; ``notes``: one-line remarks on how the import was interpreted;
    ``names_tenant``: the document's top level has a ``tenant`` key (``tenant: default``
    written out is not the same as no tenant: the API server refuses the first from
    another tenant's token).
    """

    workload: Workload
    source_format: str  # "intercloud" or "skypilot"
    ignored_fields: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    names_tenant: bool = False


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


#: Largest spec file read, in bytes (a spec is a few KiB; this bounds time and memory).
MAX_SPEC_BYTES = 1 << 20
#: Deepest nesting of YAML collections accepted (specs nest four or five levels).
MAX_YAML_DEPTH = 64
#: Most values a document may hold once aliases are expanded ("billion laughs").
MAX_YAML_NODES = 100_000

# libyaml scans and composes ten times faster than pure Python: a 1 MiB document is
# refused or read in about a second. The constructor (duplicate keys) is Python either way.
_FAST = bool(getattr(yaml, "__with_libyaml__", False))
if _FAST:

    class _CUniqueKeyLoader(yaml.CSafeLoader):
        """CSafeLoader that rejects duplicate mapping keys."""

    _CUniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        _construct_mapping,
    )


def _check_shape(text: str) -> None:
    """Refuse a document nested deeper than ``MAX_YAML_DEPTH`` or with more than
    ``MAX_YAML_NODES`` events, from the event stream (non-recursive, nothing built), so
    neither the recursive composer nor the constructor ever sees it."""
    loader_cls: Any = yaml.CSafeLoader if _FAST else yaml.SafeLoader
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=loader_cls), start=1):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _shape_error(event, f"nested more than {MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if count > MAX_YAML_NODES:
            raise _shape_error(event, f"more than {MAX_YAML_NODES} values; not a spec")


def _shape_error(event: yaml.Event, problem: str) -> SpecProblem:
    mark = event.start_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return SpecProblem(YAML, where + problem)


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` stands for once every alias is expanded (a shared node
    counts once per reference); stops counting just past ``MAX_YAML_NODES``."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_YAML_NODES + 1)
        sizes[id(node)] = total
        return total

    return size(root)


def parse_yaml(text: str) -> Any:
    """YAML -> Python data; ``SpecProblem("(yaml)", "line L, column C: ...")`` on error,
    including nesting deeper than ``MAX_YAML_DEPTH`` and more than ``MAX_YAML_NODES``
    values (aliases expanded)."""
    try:
        _check_shape(text)
        loader: Any = _CUniqueKeyLoader(text) if _FAST else _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_size(node) > MAX_YAML_NODES:
                raise SpecProblem(
                    YAML, f"aliases expand to more than {MAX_YAML_NODES} values; refused"
                )
            try:
                return loader.construct_document(node)
            except (ValueError, OverflowError) as exc:
                # int() past Python's 4300-digit limit, a timestamp like 25:00, ...
                why = one_line(str(exc))
                if "integer string conversion" in why:
                    why = "an integer with thousands of digits"
                raise SpecProblem(YAML, f"unreadable value: {why}") from None
        finally:
            loader.dispose()
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
        data = parse_yaml(text)
        loaded = _load(data, catalog, source)
    except SpecProblem as p:
        raise SpecError(p.field, p.problem, source) from None
    except (OverflowError, RecursionError) as exc:  # a last line of defence: no traceback
        raise SpecError(ROOT, f"a value is out of range ({one_line(str(exc))})", source) from None
    # data is a mapping here (``_load`` refuses anything else)
    return replace(loaded, names_tenant=True) if "tenant" in data else loaded


def read_spec_text(path: Path) -> str:
    """The UTF-8 text of the spec file ``path``, at most ``MAX_SPEC_BYTES`` bytes.

    Only regular files are read: a directory, FIFO, socket or device (``/dev/zero``) is
    refused without blocking (opened non-blocking, checked with ``fstat``). Raises
    ``SpecError(field="(file)")`` with one line for anything that cannot be read.
    """
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise SpecError(FILE, f"cannot read: {_reason(exc)}", source) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(FILE, f"cannot read: {_file_kind(st.st_mode)}, not a file", source)
        if st.st_size > MAX_SPEC_BYTES:
            raise SpecError(FILE, _too_big(st.st_size), source)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SPEC_BYTES:  # the file may grow after fstat
            chunk = os.read(fd, MAX_SPEC_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_SPEC_BYTES:
            raise SpecError(FILE, _too_big(size), source)
        data = b"".join(chunks)
    except OSError as exc:
        raise SpecError(FILE, f"cannot read: {_reason(exc)}", source) from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(FILE, f"cannot read: not UTF-8 text ({exc.reason})", source) from None


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _too_big(size: int) -> str:
    return f"larger than {MAX_SPEC_BYTES // 1024} KiB ({size} bytes or more); not a spec"


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def load_spec_file(path: Path, catalog: Catalog | None = None) -> LoadedSpec:
    """``load_spec_text`` on ``read_spec_text(path)``; an unreadable, oversized or
    non-regular file is ``SpecError(field="(file)")``."""
    return load_spec_text(read_spec_text(Path(path)), catalog, source=str(path))


def _refuse_nul(data: Any, path: tuple[str | int, ...] = ()) -> None:
    """A NUL character (YAML ``"\\0"``) in any key or value: no command line,
    environment or PostgreSQL text column can carry one, so it is refused here."""
    if isinstance(data, str):
        if "\0" in data:
            raise SpecProblem(join_path(path), "contains a NUL character (\\0); remove it")
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and "\0" in key:
                raise SpecProblem(join_path(path), "a key contains a NUL character (\\0)")
            _refuse_nul(value, (*path, key if isinstance(key, str) else str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _refuse_nul(value, (*path, i))


def _load(data: Any, catalog: Catalog | None, source: str) -> LoadedSpec:
    if data is None:
        raise SpecProblem(ROOT, "empty spec")
    if not isinstance(data, dict):
        raise SpecProblem(ROOT, f"expected a mapping at the top level, got {describe(data)}")
    _refuse_nul(data)
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
