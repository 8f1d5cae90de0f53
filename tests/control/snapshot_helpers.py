"""Offerings, instance rows and pending jobs for the snapshot and provisioning tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from intercloud.control.decide import PendingJob, RunningJob
from intercloud.model import Offering, PricingKind
from intercloud.providers.contract import InstanceState
from intercloud.specs import load_spec_text
from intercloud.store.records import InstanceRecord, OfferingBlock

NOW = 1_767_268_800.0  # 2026-01-01 12:00 UTC
NOW_DT = datetime.fromtimestamp(NOW, UTC)

AWS = Offering("aws", "us-east-1", "us-east-1a", "p5.48xlarge", "H100", 8, vcpus=192,
               memory_gib=2048, on_demand_price=98.0, spot_price=40.0)  # fmt: skip
GCP = Offering("gcp", "us-central1", "us-central1-a", "a3-highgpu-8g", "H100", 8, vcpus=208,
               memory_gib=1872, on_demand_price=88.0)  # fmt: skip
AWS_KEY = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
GCP_KEY = ("gcp", "us-central1", "us-central1-a", "a3-highgpu-8g")
BACKED = frozenset({"aws", "gcp"})
SPOT = frozenset({"aws"})

_ids = iter(range(1, 1_000_000))


def instance(
    offering: Offering = AWS,
    state: InstanceState = InstanceState.RUNNING,
    *,
    pricing: PricingKind = PricingKind.ON_DEMAND,
    contract: str | None = None,
    job: int | None = None,
    rank: int | None = None,
    idle_for_s: float = 0.0,
    extra: dict[str, Any] | None = None,
    version: int = 1,
) -> InstanceRecord:
    """One stored instance row of ``offering`` (running and idle by default)."""
    iid = next(_ids)
    running = state is InstanceState.RUNNING
    price = offering.spot_price if pricing is PricingKind.SPOT else offering.on_demand_price
    return InstanceRecord(
        id=iid, request_id=f"r{iid}", slot=0, provider=offering.provider,
        region=offering.region, zone=offering.zone, instance_type=offering.instance_type,
        pricing=pricing.value, contract=contract, usd_per_hour=float(price or 0.0),
        state=state.value, provider_instance_id=f"i-{iid}" if state != "requested" else None,
        address=f"10.0.0.{iid % 250}" if running else None, workload_id=job,
        attempt=1 if job is not None else None, rank=rank, assignment=None,
        assignment_state=None, exit_code=None, secret_hash=None, failure_kind=None,
        reason=None, version=version, created_at=NOW_DT - timedelta(hours=1),
        updated_at=NOW_DT, running_at=NOW_DT - timedelta(minutes=50) if running else None,
        idle_since=NOW_DT - timedelta(seconds=idle_for_s) if running and job is None else None,
        heartbeat_at=None, ended_at=None, extra=extra,
    )  # fmt: skip


def gpu_job(job_id: int, nodes: int = 1, tenant: str = "default", extra: str = "") -> PendingJob:
    """A pending training gang of ``nodes`` H100:8 nodes (``extra``: more resources)."""
    text = (
        f"kind: training\nname: g{job_id}\nnum_nodes: {nodes}\n"
        f"resources: {{accelerators: H100:8{extra}}}\nrun: 'true'\n"
    )
    w = load_spec_text(text, source=f"job {job_id}").workload
    return PendingJob(job_id, 0, w, tenant, NOW - 100 + job_id)


def running_on(
    job_id: int, offering: Offering, nodes: int, tenant: str = "default", **kw: Any
) -> RunningJob:
    """A job holding ``nodes`` H100:8 nodes of ``offering`` (its stored placement)."""
    placement = {"provider": offering.provider, "region": offering.region,
                 "zone": offering.zone, "instance_type": offering.instance_type,
                 "ranks": nodes, "accelerator_count": 8, "pricing": "on_demand",
                 "hourly_usd": offering.on_demand_price * nodes}  # fmt: skip
    return RunningJob(job_id, 0, tenant, placement, NOW - 600, **kw)


def block(
    key: tuple[str, str, str, str], pricing: str = "on_demand", for_s: float = 60
) -> OfferingBlock:
    """A cool-down on ``key`` at ``pricing`` running for ``for_s`` more seconds."""
    return OfferingBlock(*key, pricing=pricing, kind="capacity", reason="no capacity",
                         failures=1, until=NOW_DT + timedelta(seconds=for_s),
                         updated_at=NOW_DT)  # fmt: skip
