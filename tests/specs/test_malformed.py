"""Every file in malformed/ must fail with the field and problem its first line names."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercloud.catalog import Catalog
from intercloud.specs import SpecError, load_spec_file, load_spec_text

MALFORMED = Path(__file__).parent / "malformed"
FILES = sorted(MALFORMED.glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: F | P'"
    field, _, problem = first[len("# expect: ") :].partition(" | ")
    return field.strip(), problem.strip()


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 60
    assert sum(p.name.startswith(("catalog-", "sky-catalog-")) for p in FILES) >= 5
    assert sum(p.name.startswith("sky-") for p in FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_spec(path: Path, catalog: Catalog) -> None:
    field, problem = _expectation(path)
    with pytest.raises(SpecError) as info:
        load_spec_file(path, catalog)
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert err.source == str(path)
    assert message == f"{path}: {err.field}: {err.problem}"
    assert err.field == field, message
    assert problem in err.problem, message


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if p.name.startswith(("catalog-", "sky-catalog-"))],
    ids=lambda p: p.stem,
)
def test_catalog_checks_are_skipped_without_catalog(path: Path) -> None:
    load_spec_text(path.read_text(encoding="utf-8"), None, source=path.name)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec_file(tmp_path / "missing.yaml")
    assert info.value.field == "(file)"
    assert "cannot read" in info.value.problem
    assert str(info.value).startswith(str(tmp_path / "missing.yaml"))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: training\nname: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_spec_file(path)
    assert info.value.field == "(file)"


def test_source_defaults_to_string() -> None:
    with pytest.raises(SpecError, match=r"^<string>: kind: "):
        load_spec_text("name: x\nduration: 1h\n")


def test_spec_error_is_value_error() -> None:
    err = SpecError("num_nodes", "must be\nat least 1", "a.yaml")
    assert isinstance(err, ValueError)
    assert str(err) == "a.yaml: num_nodes: must be at least 1"


def test_secret_values_are_never_echoed() -> None:
    text = "kind: training\nname: j\nresources: {accelerators: H100:8}\nenvs: {TOKEN: [hunter2]}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text)
    assert "hunter2" not in str(info.value)
    assert info.value.field == "envs.TOKEN"
