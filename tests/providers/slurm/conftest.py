"""A real Slurm cluster for the slurm provider's tests (``slurm_cluster``): munged,
slurmctld and two slurmd (n1, n2 on 127.0.0.1), started once per session in a temporary
folder and stopped at the end. Installs nothing: skipped, naming what is missing, when
Slurm's or munge's binaries are absent (``.ci/run`` installs them) or not run as root."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import SlurmCluster, missing_binaries


class _Session:
    """The session's cluster; replaced by a fresh one after a test that killed daemons."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.cluster: SlurmCluster | None = None

    def get(self) -> SlurmCluster:
        if self.cluster is not None and self.cluster.faulted:
            # a node or controller killed and restarted can leave a node that takes
            # a job and fails its launch: the next test gets a cluster that saw no fault
            self.cluster.stop()
            self.cluster = None
        if self.cluster is None:
            cluster = SlurmCluster(self.factory.mktemp("slurm"))
            self.cluster = cluster
            cluster.start()
            # the first job of a new controller waits for its first scheduling pass
            subprocess.run(
                ["srun", "-N2", "--ntasks-per-node=1", "true"],
                env=cluster.env, capture_output=True, timeout=60, check=True,
            )  # fmt: skip
        else:
            self.cluster.drain()
        return self.cluster


@pytest.fixture()
def slurm_cluster(_slurm_session: _Session) -> SlurmCluster:
    """The session's cluster, handed to each test empty: no job left queued or
    completing by an earlier test (a chaos test's cancelled gang can hold its nodes in
    COMPLETING for a while), both nodes IDLE; a fresh cluster after a test that killed
    one of its daemons."""
    return _slurm_session.get()


@pytest.fixture(scope="session")
def _slurm_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Session]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing {', '.join(missing)}): "
                    "apt-get install slurm-wlm munge")  # fmt: skip
    if os.geteuid() != 0:
        pytest.skip("the test Slurm cluster runs as root (SlurmUser=root)")
    session = _Session(tmp_path_factory)
    try:
        yield session
    finally:
        if session.cluster is not None:
            session.cluster.stop()
