"""Ids beyond what SQL INTEGER holds are unknown workloads, never a driver overflow."""

from __future__ import annotations

import pytest

from intercloud.store import open_store
from intercloud.store.errors import UnknownWorkload


@pytest.mark.parametrize("workload_id", [2**63, 2**31, 0, -1, -(2**63)])
def test_out_of_range_ids_are_unknown(db_url: str, workload_id: int) -> None:
    store = open_store(db_url)
    try:
        store.submit("batch", "b", "kind: batch\n")
        with pytest.raises(UnknownWorkload, match=f"no workload {workload_id}"):
            store.get(workload_id)
        with pytest.raises(UnknownWorkload):
            store.request_cancel(workload_id)
        assert store.get(1).name == "b"
    finally:
        store.close()
