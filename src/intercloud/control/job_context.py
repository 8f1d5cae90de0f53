"""What a node of a stored job gets besides its commands: its environment and files.

The spec text gives ``envs``, ``workdir`` and ``file_mounts`` as written; the stored
submission context (``WorkloadRecord.submission``, written by ``Client.submit``) gives
the submitter's variables and the sources resolved at submission. A job imported from
SkyPilot also gets SkyPilot's cluster variables, computed from the allocation.
"""

from __future__ import annotations

from typing import Any

from intercloud.model import Workload
from intercloud.providers.base import Allocation
from intercloud.store import SpecFormat, WorkloadRecord


def job_env(
    w: WorkloadRecord, wl: Workload, allocation: Allocation, rank: int, ranks: int
) -> dict[str, str]:
    """The job's part of a node's environment, lowest precedence first: the spec's
    ``envs``, the submitter's variables, ``SKYPILOT_*`` (SkyPilot tasks). The provider
    adds its base below and its own variables above."""
    env = dict(wl.envs)
    submitted = (w.submission or {}).get("env")
    if isinstance(submitted, dict):
        env.update({str(k): str(v) for k, v in submitted.items()})
    if w.spec_format is SpecFormat.SKYPILOT:
        env.update(skypilot_env(allocation, rank, ranks))
    return env


def skypilot_env(allocation: Allocation, rank: int, ranks: int) -> dict[str, str]:
    """``SKYPILOT_NODE_RANK``, ``SKYPILOT_NODE_IPS`` (one per line, by rank),
    ``SKYPILOT_NUM_NODES`` and ``SKYPILOT_NUM_GPUS_PER_NODE``, as SkyPilot sets them."""
    nodes = sorted(allocation.nodes, key=lambda n: n.rank)
    slot = next((n for n in nodes if n.rank == rank), None)
    return {
        "SKYPILOT_NODE_RANK": str(rank),
        "SKYPILOT_NODE_IPS": "\n".join(n.host for n in nodes[:ranks]),
        "SKYPILOT_NUM_NODES": str(ranks),
        "SKYPILOT_NUM_GPUS_PER_NODE": str(len(slot.accelerator_ids) if slot else 0),
    }


def job_files(w: WorkloadRecord, wl: Workload) -> dict[str, Any]:
    """``workdir`` and ``file_mounts`` for ``NodeCommand``: the sources resolved at
    submission, or (a job stored without that context) the paths as written."""
    from intercloud.submission.job_files import ResolvedFiles

    stored = (w.submission or {}).get("files")
    if stored is not None:
        files = ResolvedFiles.from_json(stored)
    else:
        files = ResolvedFiles(wl.workdir, wl.file_mounts)
    return {"workdir": files.workdir, "file_mounts": files.file_mounts}
