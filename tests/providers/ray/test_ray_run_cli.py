"""`intercloud run` end to end on the ray provider alone (config.yaml names only it): a
2-node gang runs on the test cluster's two workers and its output comes back."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from cli_helpers import ic, stop_daemon  # noqa: E402


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"
    h.mkdir()
    yield h
    stop_daemon(h)


def test_run_a_two_node_gang_on_ray(ray_cluster: Any, home: Path, tmp_path: Path) -> None:
    (home / "config.yaml").write_text(
        f"providers:\n  ray: {{address: '{ray_cluster.address}', namespace: e2e}}\n"
    )
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: gang\nnum_nodes: 2\nresources: {cpus: '1+'}\n"
        "run: echo rank $RANK of $WORLD_SIZE on $INTERCLOUD_PROVIDER\n"
    )
    out = ic(home, "run", str(spec), timeout=150)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rank 0 of 2 on ray" in out.stdout and "rank 1 of 2 on ray" in out.stdout
    assert "SUCCEEDED" in out.stdout
