"""The fleet as the API shows it: pools, live instances, utilisation.

Built from the store (the ``instances`` table and the jobs that hold capacity) and the
catalog (how many GPUs of which type an instance type has). Utilisation by provider and
by GPU type counts an instance's GPUs as busy while it serves a job node; jobs placed on
providers without instance rows (the local sites) count through their placement.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from intercloud.control.states import JobState
from intercloud.providers.contract import InstanceState
from intercloud.store import Store

#: Instance states that hold capacity.
LIVE = (
    InstanceState.REQUESTED,
    InstanceState.ALLOCATED,
    InstanceState.RUNNING,
    InstanceState.DRAINING,
    InstanceState.TERMINATING,
)
#: Job states that hold capacity.
HOLDING = (
    JobState.PLACING,
    JobState.PROVISIONING,
    JobState.RUNNING,
    JobState.RECOVERING,
    JobState.CANCELLING,
)


def _gpus_of(catalog: Any) -> dict[tuple[str, str], tuple[str | None, int]]:
    out: dict[tuple[str, str], tuple[str | None, int]] = {}
    for o in catalog.offerings:
        out.setdefault((o.provider, o.instance_type), (o.accelerator, o.accelerator_count))
    return out


def _ratio(busy: float, total: float) -> float | None:
    return round(busy / total, 4) if total else None


def fleet_view(store: Store, catalog: Any) -> dict[str, Any]:
    """``{"pools": [...], "instances": [...], "by_provider": {...}, "by_gpu": {...}}``."""
    gpus_of = _gpus_of(catalog)
    instances = store.instances(states=LIVE)
    pools: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
    by_provider: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_gpu: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rows = []
    for i in instances:
        acc, count = gpus_of.get((i.provider, i.instance_type), (None, 0))
        key = (i.provider, i.region, i.zone, i.instance_type, i.pricing)
        pool = pools.setdefault(
            key,
            {
                "provider": i.provider,
                "region": i.region,
                "zone": i.zone,
                "instance_type": i.instance_type,
                "pricing": i.pricing,
                "accelerator": acc,
                "gpus_per_instance": count,
                "instances": 0,
                "busy": 0,
                "by_state": {},
            },
        )
        pool["instances"] += 1
        pool["busy"] += 0 if i.idle else 1
        pool["by_state"][i.state] = pool["by_state"].get(i.state, 0) + 1
        p = by_provider[i.provider]
        p["instances"] += 1
        p["busy_instances"] += 0 if i.idle else 1
        p["gpus"] += count
        p["busy_gpus"] += 0 if i.idle else count
        p["usd_per_hour"] += i.usd_per_hour
        if acc:
            g = by_gpu[acc]
            g["gpus"] += count
            g["busy_gpus"] += 0 if i.idle else count
        rows.append(
            {
                "id": i.id,
                "provider": i.provider,
                "region": i.region,
                "zone": i.zone,
                "instance_type": i.instance_type,
                "pricing": i.pricing,
                "state": i.state,
                "workload_id": i.workload_id,
                "rank": i.rank,
                "usd_per_hour": i.usd_per_hour,
                "accelerator": acc,
                "gpus": count,
            }
        )
    with_instances = {i.workload_id for i in instances if i.workload_id is not None}
    for w in store.list_workloads(states=HOLDING):
        pl = w.placement or {}
        provider = str(pl.get("provider") or "")
        if not provider:
            continue
        p = by_provider[provider]
        p["running_jobs"] += 1
        acc = pl.get("accelerator")
        gpus = int(pl.get("accelerator_count") or 0) * int(pl.get("nodes") or 1)
        if acc and gpus:
            by_gpu[str(acc)]["running_jobs"] += 1
            by_gpu[str(acc)]["job_gpus"] += gpus
        if w.id not in with_instances:  # capacity without instance rows (local sites)
            p["job_gpus_without_instances"] += gpus
    return {
        "pools": list(pools.values()),
        "instances": rows,
        "by_provider": {k: _finish(v) for k, v in sorted(by_provider.items())},
        "by_gpu": {k: _finish(v) for k, v in sorted(by_gpu.items())},
    }


def _finish(counts: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: (round(v, 6) if k == "usd_per_hour" else int(v)) for k, v in counts.items()
    }
    out["utilisation"] = _ratio(counts.get("busy_gpus", 0.0), counts.get("gpus", 0.0))
    return out
