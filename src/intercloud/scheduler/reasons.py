"""Why a provider (or later, a pool) cannot take a workload: the filter funnel and its words.

The planner filters candidates through the stages of ``Stage`` in this fixed order, and
reports, for every provider left without a feasible candidate, the stage that removed
its last one. The fleet scheduler reuses the same stages and wording so that a user sees
one vocabulary whether a job is planned or queued. Reasons are written in the words of
the spec a user wrote (``resources.deny_providers``, ``H100:8``), never in column names.

The order is "who, what, where, how paid": provider-level filters first, then the shape
of one node (accelerators, vCPUs, memory, instance type, NVLink domain), then location,
then pricing (spot capacity, the hourly cap).

Decisions that cross from the scheduler (or a decider) to the control loop carry a
``ReasonCode`` beside their words: code that acts on a reason compares codes, never
strings; ``REASON_TEXT`` holds the short human text of each code, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class ReasonCode(StrEnum):
    """Why a job waits, was refused, or was stopped (stored in ``workloads.reason_code``:
    values never change once released)."""

    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    PROVISIONING = "provisioning"
    RESERVED = "reserved"
    BEHIND_RESERVATION = "behind_reservation"
    OVER_QUOTA = "over_quota"
    OVER_BUDGET = "over_budget"
    OVER_PROVIDER_CAP = "over_provider_cap"
    UNKNOWN_TENANT = "unknown_tenant"
    NEVER_FITS = "never_fits"
    NOT_RUNNABLE = "not_runnable"
    NO_PROVIDER = "no_provider"
    PROVIDER_DOWN = "provider_down"
    OFFERING_COOLING_DOWN = "offering_cooling_down"
    CAPACITY_REFUSED = "capacity_refused"
    PREEMPTED = "preempted"
    RECLAIMED = "reclaimed"
    SPOT_RECLAIMED = "spot_reclaimed"
    NODE_FAILED = "node_failed"
    REGION_LOST = "region_lost"
    INSTANCE_LOST = "instance_lost"
    RESTART = "restart"
    CANCELLED = "cancelled"
    BLOCK_ENDS_TOO_SOON = "block_ends_too_soon"


#: The short human text of each code (the detailed words are built by the functions of
#: this module and stored as the job's ``reason``).
REASON_TEXT: Mapping[ReasonCode, str] = {
    ReasonCode.WAITING_FOR_CAPACITY: "waiting for capacity",
    ReasonCode.PROVISIONING: "waiting for new capacity to come up",
    ReasonCode.RESERVED: "capacity reserved for it (head of queue)",
    ReasonCode.BEHIND_RESERVATION: "would delay a reservation",
    ReasonCode.OVER_QUOTA: "over quota",
    ReasonCode.OVER_BUDGET: "over budget",
    ReasonCode.OVER_PROVIDER_CAP: "over a provider's diversification cap",
    ReasonCode.UNKNOWN_TENANT: "unknown tenant",
    ReasonCode.NEVER_FITS: "no enabled provider can run it",
    ReasonCode.NOT_RUNNABLE: "not runnable by the job control loop",
    ReasonCode.NO_PROVIDER: "no provider is enabled",
    ReasonCode.PROVIDER_DOWN: "its provider is down",
    ReasonCode.OFFERING_COOLING_DOWN: "its offering is cooling down after a refusal",
    ReasonCode.CAPACITY_REFUSED: "the provider refused capacity",
    ReasonCode.PREEMPTED: "preempted for a higher-priority job",
    ReasonCode.RECLAIMED: "borrowed GPUs reclaimed",
    ReasonCode.SPOT_RECLAIMED: "spot capacity reclaimed",
    ReasonCode.NODE_FAILED: "a node of the gang failed",
    ReasonCode.REGION_LOST: "the region was lost",
    ReasonCode.INSTANCE_LOST: "an instance under the gang ended without intercloud asking",
    ReasonCode.RESTART: "restarting after a failure",
    ReasonCode.CANCELLED: "cancelled",
    ReasonCode.BLOCK_ENDS_TOO_SOON: (
        "the Capacity Block it fits ends before it can finish or checkpoint"
    ),
}

#: Codes of a stop that requeues a job as a new attempt whatever its restart policy,
#: without counting a restart (the job did nothing wrong).
REQUEUE_CODES: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.PREEMPTED,
        ReasonCode.RECLAIMED,
        ReasonCode.SPOT_RECLAIMED,
        ReasonCode.REGION_LOST,
        ReasonCode.PROVIDER_DOWN,
        ReasonCode.INSTANCE_LOST,
    }
)


def reason_text(code: ReasonCode) -> str:
    """The short human text of ``code``."""
    return REASON_TEXT[code]


@dataclass(frozen=True, slots=True)
class Reason:
    """A reason as it crosses a package boundary: its code and its words."""

    code: ReasonCode
    text: str


class Stage(IntEnum):
    """Funnel stages in evaluation order; ``FEASIBLE`` means a candidate passed them all."""

    NOT_ENABLED = 0
    DENIED_PROVIDER = 1
    NOT_ALLOWED_PROVIDER = 2
    ACCELERATOR = 3
    CPUS = 4
    MEMORY = 5
    INSTANCE_TYPE = 6
    NVLINK_DOMAIN = 7
    REGION = 8
    DENIED_REGION = 9
    ZONE = 10
    SPOT = 11
    MAX_HOURLY = 12
    FEASIBLE = 13


NOT_ENABLED = "not enabled"
DENIED_PROVIDER = "denied by resources.deny_providers"
NOT_ALLOWED_PROVIDER = "not in resources.providers"
NO_REGION = "no offering in allowed regions"
DENIED_REGION = "offered only in resources.deny_regions"
NO_ZONE = "no offering in allowed zones"

_MAX_LISTED = 8


def _num(x: float) -> str:
    """``32.0`` -> ``32``, ``0.5`` -> ``0.5``."""
    return f"{x:g}"


def no_accelerator(requested: Sequence[str], has: Sequence[str]) -> str:
    """``offers no H100:8 (has: A100:8, H100:1)``; ``requested`` are labels like ``H100:8``.

    ``has`` lists the provider's accelerator configurations (at most eight are shown);
    a CPU-only request is labelled ``CPU``.
    """
    want = " or ".join(requested) if requested else "CPU"
    if want == "CPU":
        return "offers no CPU-only instances"
    if not has:
        return f"offers no {want} (has: CPU only)"
    shown = ", ".join(has[:_MAX_LISTED]) + (", …" if len(has) > _MAX_LISTED else "")
    return f"offers no {want} (has: {shown})"


def no_instance_type(instance_type: str) -> str:
    """``offers no instance type p5.48xlarge`` (none that also meets the accelerator request)."""
    return f"offers no instance type {instance_type}"


def too_few_cpus(cpus: float, exact: bool) -> str:
    """``fewer than 32 vCPUs per node`` (or ``no node with exactly 32 vCPUs``)."""
    if exact:
        return f"no node with exactly {_num(cpus)} vCPUs"
    return f"fewer than {_num(cpus)} vCPUs per node"


def too_little_memory(memory_gib: float) -> str:
    """``less than 256 GiB memory per node``."""
    return f"less than {_num(memory_gib)} GiB memory per node"


def no_nvlink_domain(gpus: int, requested: str, largest: int) -> str:
    """``no NVLink domain of 72 GPUs for GB200:4 (largest: 8)``."""
    return f"no NVLink domain of {gpus} GPUs for {requested} (largest: {largest})"


def no_spot(requested: str) -> str:
    """``no spot capacity for H100:8``."""
    return f"no spot capacity for {requested}"


def over_budget(max_hourly_usd: float, cheapest_hourly_usd: float) -> str:
    """``over max_hourly_usd 100.00 (cheapest: 110.20/h)``."""
    return f"over max_hourly_usd {max_hourly_usd:.2f} (cheapest: {cheapest_hourly_usd:.2f}/h)"


NO_DURATION = "no expected duration given: totals are for one hour"


def spot_share_ignored(spot_share: float) -> str:
    return f"spot_share {_num(spot_share)} ignored: resources.spot is never"


def replicas_on_spot(spot: int, total: int) -> str:
    return f"{spot} of {total} replicas on spot"


def scaled_by_throughput(reference: str) -> str:
    return f"durations on other accelerators scaled by relative throughput (reference: {reference})"


def ordered_fallback(wanted: Sequence[str], chosen: str) -> str:
    return (
        f"{' and '.join(wanted)} could not be placed; using {chosen} (accelerator_choice: ordered)"
    )


def ordered_item_used(index: int) -> str:
    """``resources.ordered[0] could not be placed; using resources.ordered[1]``."""
    earlier = " and ".join(f"resources.ordered[{i}]" for i in range(index))
    return f"{earlier} could not be placed; using resources.ordered[{index}]"


def unknown_names(what: str, names: Sequence[str]) -> str:
    """``unknown provider in the request: foo`` (not in the catalog)."""
    return f"not in the catalog ({what}): {', '.join(names)}"


# --- Fleet scheduler: why a queued gang is held, rejected or evicted -----------------
# The fleet scheduler (``scheduler/core.py``) says these for HOLD, REJECT and PREEMPT
# decisions. Static reasons (a gang no pool of the fleet could ever take) reuse the
# planner's words above; the ones below speak of the fleet's current state.


def gang_label(accelerators: Sequence[str], gpus_per_node: int, nodes: int) -> str:
    """``4 × H100:8`` (``H100 or A100:8`` for alternatives; ``2 × CPU`` for CPU-only)."""
    acc = " or ".join(accelerators) if accelerators else "CPU"
    shape = f"{acc}:{gpus_per_node}" if accelerators else acc
    return f"{nodes} × {shape}"


def no_pool(label: str) -> str:
    """``no pool of the fleet can ever take 4 × H100:8`` (more nodes than any pool holds)."""
    return f"no pool of the fleet can ever take {label}"


def no_capacity(label: str) -> str:
    """``waiting for capacity: 4 × H100:8`` (no candidate pool has that many free nodes)."""
    return f"waiting for capacity: {label}"


def no_free_domain(gpus: int, label: str) -> str:
    """``waiting for an NVLink domain with 72 free GPUs for 18 × GB200:4``."""
    return f"waiting for an NVLink domain with {gpus} free GPUs for {label}"


def reserved_at(label: str, pool: str, start_s: float) -> str:
    """``head of queue: 4 × H100:8 reserved on aws/… from t=3600`` (EASY backfill)."""
    return f"head of queue: {label} reserved on {pool} from t={_num(round(start_s, 3))}"


def block_ends_too_soon(label: str, pool: str, left_s: float, need_s: float | None) -> str:
    """``4 × H100:8 not placed on aws/… (Capacity Block): it ends in 2 h, the job needs 5
    h to finish or checkpoint`` (``need_s`` None: unknown duration, no checkpoints)."""
    need = (
        "has no expected duration and no checkpoint interval"
        if need_s is None
        else f"needs {_hours(need_s)} to finish or checkpoint"
    )
    where = f"{label} not placed on {pool} (Capacity Block)"
    return f"{where}: it ends in {_hours(left_s)}, the job {need}"


def _hours(s: float) -> str:
    return f"{s / 3600:.3g} h"


def behind_reservation(job_id: int) -> str:
    """``would delay the reservation of job 17`` (backfill refused)."""
    return f"would delay the reservation of job {job_id}"


def provisioning(nodes: int, pool: str, ready_s: float) -> str:
    """``provisioning 3 nodes of aws/…/spot, ready at t=420``."""
    return f"provisioning {nodes} nodes of {pool}, ready at t={_num(round(ready_s, 3))}"


def preempted_for(job_id: int, priority: int) -> str:
    """``preempted for job 9 (priority 100); requeued from its last checkpoint``."""
    return f"preempted for job {job_id} (priority {priority}); requeued from its last checkpoint"


SPOT_RECLAIMED = "spot capacity reclaimed by the provider; requeued from its last checkpoint"
NODE_FAILED = "a node of the gang failed; requeued from its last checkpoint"
REGION_LOST = "the region was lost; requeued from its last checkpoint"
ALREADY_RUNNING = "already running"


# Fleet-scheduler holds and rejections decided by tenancy (quotas, borrowing, budgets).
# Amounts of money are printed with thousands separators and two decimals: ``9,812.00``.


def _usd(x: float) -> str:
    return f"{x:,.2f}"


def unknown_tenant(tenant: str) -> str:
    """``unknown tenant: research`` (the ledger has no such tenant and no default)."""
    return f"unknown tenant: {tenant}"


def over_quota(
    tenant: str,
    gpu_type: str,
    uses: int,
    guaranteed: int,
    needs: int,
    idle: int,
    can_borrow: bool,
) -> str:
    """Why a request of ``needs`` ``gpu_type`` GPUs is held by quota.

    ``over quota: research uses 64 of 64 guaranteed H100 and nothing idle to borrow``;
    ``over quota: research uses 60 of 64 guaranteed H100 and only 4 idle to borrow (needs 16)``;
    ``over quota: research uses 64 of 64 guaranteed H100 and may not borrow (needs 8)``.
    ``uses`` counts all its running GPUs of the type, borrowed ones included.
    """
    head = f"over quota: {tenant} uses {uses} of {guaranteed} guaranteed {gpu_type}"
    if not can_borrow:
        return f"{head} and may not borrow (needs {needs})"
    if idle <= 0:
        return f"{head} and nothing idle to borrow"
    return f"{head} and only {idle} idle to borrow (needs {needs})"


def over_monthly_budget(
    tenant: str, spent_usd: float, committed_usd: float, budget_usd: float, needs_usd: float
) -> str:
    """Why a request is held by the tenant's monthly budget.

    ``over budget: research spent 9,812.00 of 10,000.00 USD this month; this job needs ~420.00``;
    with running work expected to cost more:
    ``over budget: research spent 9,000.00 (+812.00 committed to running work) of 10,000.00 USD
    this month; this job needs ~420.00``.
    """
    committed = (
        f" (+{_usd(committed_usd)} committed to running work)" if committed_usd >= 0.005 else ""
    )
    return (
        f"over budget: {tenant} spent {_usd(spent_usd)}{committed} of {_usd(budget_usd)} USD"
        f" this month; this job needs ~{_usd(needs_usd)}"
    )


def reclaimed_by(tenant: str, gpu_type: str, guaranteed: int) -> str:
    """``borrowed GPUs reclaimed by research (guaranteed 64 H100); requeued from its last
    checkpoint`` (PREEMPT of borrowed work for a tenant within its guarantee)."""
    return (
        f"borrowed GPUs reclaimed by {tenant} (guaranteed {guaranteed} {gpu_type});"
        " requeued from its last checkpoint"
    )
