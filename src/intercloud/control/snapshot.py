"""The fleet snapshot builder: plain typed inputs -> the world the scheduler core sees.

One builder for the live loop (``FleetDecider``) and, later, the digital twin: both
feed the core the same fleet. ``build_snapshot(SnapshotInputs) -> Fleet``: a
``FleetState`` (numpy columns, one row per node), the offering behind each pool, the
running jobs allocated, the pool costs (``scheduler.cost.PoolCosts``, contracts
included), the diversification caps and the tenant ledger. Pure: it reads its
arguments only, so a loop killed at any instant rebuilds the same snapshot from the
store and the providers.

Pools (``PoolKind``; each pool's ``provider`` is a tag ``<provider>#<i>`` unique to the
pool, so that a gang can be restricted to the exact offerings the planner found
feasible; ``TaggedCaps`` counts caps per real provider):

- **sliced** / **one instance** — an offering whose provider knows its free capacity
  (a local site), exactly as before this module (``fleet_decider``'s docstring). An
  offering of several identical machines (``Offering.machines``: a Ray or Slurm
  cluster's nodes of one shape) is a one-instance pool of that many nodes, never one
  big machine: a gang's ranks land on distinct machines, each whole; its free nodes are
  the machines its provider reports wholly free (``FreeCapacity.machines``).
  An engine that keeps its own queue (``Capability.QUEUE``: Slurm) gives such a pool
  ``queued`` more nodes (``SnapshotInputs.queue``, its configured depth, in the same
  units as the free capacity): gangs placed there are handed to the engine before its
  nodes are free and wait in its queue, so the next one is there when a gang ends.
- **sized** — an offering of unknown capacity whose provider does not bring up
  instances through the store (a job-level provider): as many nodes as the running
  jobs hold plus ``spare_nodes``, so such a pool never holds a job.
- **instances** — an offering of an instance-backed provider (``instance_backed``):
  an elastic on-demand pool, plus an elastic spot pool when the offering has a spot
  price and the provider declares SPOT (``spot_providers``). Its nodes are the live
  instance rows of that (offering, pricing): RUNNING rows are ready (idle ones since
  their ``idle_since``; bound ones carry their job's allocation, by rank); REQUESTED
  and ALLOCATED rows are provisioned but not ready (``provision_delay_s`` from now);
  DRAINING and TERMINATING rows still take a row of the quota but never work. It grows
  (the core's ``PROVISION``) up to the configured max instances of the offering
  (``FleetPolicy.max_instances``, else ``default_max_instances``), unless the
  offering is cooling down (``OfferingBlock``) or its provider is down: then the rows
  it could grow into are there but failed, so it cannot grow, and a gang that only it
  could take holds instead of being rejected.
- **reserved** — one per block of a contract (``FleetPolicy.contracts``) whose window
  has not ended and whose offering is sold: fixed size (the block's nodes), priced by
  the core's contract model (marginal cost zero inside the window, unusable outside).
  Of an instance-backed provider, its usable nodes are its RUNNING reserved instances
  (``contract`` = the contract's name); the rows not backed by a running instance are
  failed rows, and the decider launches the missing instances while the window is open
  (``unbacked_reserved``).

With instance-backed pools (the core provisions), the rows a known or sized pool lacks
are failed rows: capacity taken outside the fleet, never rows to grow into.

A provider that is down (``FleetPolicy.down``) takes nothing new: every node of its
pools that runs nothing is marked failed; its running jobs stay allocated (failover
requeues them: ``control.failover.requeue_on_down``).

Held capacity: jobs on known, sized and non-instance reserved pools are allocated by
their stored placement, as before; jobs on instance pools on the instance rows bound to
them (``InstanceRecord.workload_id``), or, before the bridge has bound them, on the
idle running instances their placement names (``placement["instances"]``: the
``Place.instances`` the reconciler stored), so nothing else is placed there meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from intercloud.contracts.ledger import block_rate
from intercloud.control.decide import Demand, RunningJob, TenantLimits, offering_key
from intercloud.control.failover import cooling_reason, provider_down_reason
from intercloud.control.tenancy import build_ledger
from intercloud.model import Contract, Offering, PricingKind
from intercloud.providers.base import FreeCapacity, OfferingKey
from intercloud.providers.contract import InstanceState
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FREE, FleetState
from intercloud.scheduler.placement.pick import pick_nodes
from intercloud.scheduler.requests import GangRequest
from intercloud.scheduler.tenancy import UNKNOWN_DURATION_S, RunningStart, TenantLedger
from intercloud.scheduler.tenancy.running_columns import RunningColumns
from intercloud.store.cycle_reads import CycleState
from intercloud.store.records import InstanceRecord, OfferingBlock, ProviderHealth

__all__ = [
    "DEFAULT_MAX_INSTANCES",
    "Fleet",
    "FleetPolicy",
    "PoolKind",
    "PoolOf",
    "SnapshotInputs",
    "TaggedCaps",
    "build_snapshot",
    "canonical_free",
    "finish_fleet",
    "provider_of_tag",
    "with_store_state",
]

_EPS = 1e-9
DEFAULT_MAX_INSTANCES = 8

#: Instance states whose row is a node of its pool (usable once RUNNING).
LIVE_STATES = frozenset({InstanceState.REQUESTED, InstanceState.ALLOCATED, InstanceState.RUNNING})
#: Instance states on the way out: they still take a row of the quota.
LEAVING_STATES = frozenset({InstanceState.DRAINING, InstanceState.TERMINATING})


class PoolKind(StrEnum):
    """How an offering maps to a pool (module docstring)."""

    SLICED = "sliced"
    ONE_INSTANCE = "one_instance"
    SIZED = "sized"
    INSTANCES = "instances"
    RESERVED = "reserved"


@dataclass(frozen=True, slots=True)
class PoolOf:
    """How offering ``offering`` maps to a pool: ``unit_cpus`` is the CPU slots of one
    node of a sliced pool (None: a node is an instance); ``known`` whether its provider
    tells its free capacity; ``total`` its nodes. ``backed``: its nodes are instance
    rows of the store. ``frozen``: why it cannot grow now (None: it can, up to
    ``total``). ``down_since``: its provider is down since then (epoch seconds)."""

    offering: Offering
    tag: str
    unit_cpus: float | None
    known: bool
    total: int
    kind: PoolKind = PoolKind.SIZED
    pricing: PricingKind = PricingKind.ON_DEMAND
    contract: str | None = None
    backed: bool = False
    frozen: str | None = None
    down_since: float | None = None
    contract_usd: float | None = None  # a reserved pool's contracted node-hour price
    #: a reserved block's usable (start, end) in epoch seconds; whether it ends hard
    window: tuple[float, float] | None = None
    ends_hard: bool = False
    #: nodes beyond ``total`` that wait in the engine's own queue (module docstring)
    queued: int = 0

    @property
    def where(self) -> str:
        o = self.offering
        loc = "/".join(x for x in (o.provider, o.region, o.zone) if x)
        return f"{loc} {o.instance_type}"

    @property
    def label(self) -> str:
        """``aws/us-east-1/us-east-1a p5.48xlarge (spot)``; on-demand is left unsaid."""
        if self.pricing is PricingKind.ON_DEMAND:
            return self.where
        extra = f"contract {self.contract}" if self.contract else self.pricing.value
        return f"{self.where} ({extra})"

    @property
    def usd_per_node_hour(self) -> float:
        o = self.offering
        if self.contract_usd is not None:
            return self.contract_usd
        if self.pricing is PricingKind.SPOT and o.spot_price is not None:
            return o.spot_price
        if self.unit_cpus is not None and o.vcpus > 0:
            return o.on_demand_price * self.unit_cpus / o.vcpus
        return o.on_demand_price

    def nodes_per_rank(self, cpus_per_rank: float) -> int:
        if self.unit_cpus is None:
            return 1
        return max(1, math.ceil(cpus_per_rank / self.unit_cpus - _EPS))

    def too_big(self, d: Demand) -> str | None:
        """Why a gang of demand ``d`` can never run here (None: it can)."""
        if not self.known:
            return None
        o = self.offering
        if self.unit_cpus is not None:
            nodes = d.ranks * self.nodes_per_rank(d.cpus_per_node)
            if nodes > self.total:
                return f"{self.where}: the gang needs {d.cpus:g} CPUs, it has {o.vcpus:g} in all"
        elif o.machines > 1:  # a cluster's nodes: one rank per machine
            if d.ranks > self.total:
                return (
                    f"{self.where}: {self.total} machines of this shape cannot run a gang "
                    f"of {d.ranks} nodes"
                )
            if d.cpus_per_node > o.vcpus + _EPS:
                return f"{self.where}: a node needs {d.cpus_per_node:g} CPUs, it has {o.vcpus:g}"
            if d.memory_gib_per_node > o.memory_gib + _EPS:
                return (
                    f"{self.where}: a node needs {d.memory_gib_per_node:g} GiB, "
                    f"it has {o.memory_gib:g}"
                )
            return None
        else:
            if d.ranks > 1:
                return (
                    f"{self.where}: one instance of {o.accelerator}:{o.accelerator_count} "
                    f"cannot run a gang of {d.ranks} nodes"
                )
            if d.cpus > o.vcpus + _EPS:
                return f"{self.where}: the gang needs {d.cpus:g} CPUs, it has {o.vcpus:g} in all"
        if d.memory_gib > o.memory_gib + _EPS:
            return (
                f"{self.where}: the gang needs {d.memory_gib:g} GiB, it has {o.memory_gib:g} in all"
            )
        return None


@dataclass(frozen=True, slots=True)
class FleetPolicy:
    """What the configuration and the store say about capacity (plain data).

    ``max_instances``: per offering, the most instances of each of its pools
    (on-demand, spot); others get ``default_max_instances``. ``idle_release_s``: an
    idle instance of an elastic pool is released after that long. ``provision_delay_s``:
    the expected time from a launch to a usable node. ``caps``: provider -> the most
    share of the fleet's GPUs it may run (``DiversificationCaps``; a float caps all
    alike), binding above ``caps_min_fleet_gpus``. ``contracts``: reserved capacity.
    ``blocks``: cool-downs in force (``store.active_blocks``). ``down``: provider ->
    down since (``store.provider_health``)."""

    max_instances: Mapping[OfferingKey, int] = field(default_factory=dict)
    default_max_instances: int = DEFAULT_MAX_INSTANCES
    idle_release_s: float = 600.0
    provision_delay_s: float = 120.0
    caps: Mapping[str, float] | float | None = None
    caps_min_fleet_gpus: int = 0
    contracts: Sequence[Contract] = ()
    blocks: Sequence[OfferingBlock] = ()
    down: Mapping[str, datetime] = field(default_factory=dict)
    #: the configured limit of an offering (``config.yaml``'s pools), under ``max_instances``
    limit_of: Callable[[OfferingKey], int] | None = None
    #: provider -> share of its commitment projected to go unused (the ledger's
    #: burn-down, ``contracts.accrual.burn_weights``): its committed and on-demand pools
    #: rank that much cheaper (``PoolCosts``)
    burn: Mapping[str, float] = field(default_factory=dict)

    def max_of(self, key: OfferingKey) -> int:
        if key in self.max_instances:
            return max(0, int(self.max_instances[key]))
        if self.limit_of is not None:
            return max(0, int(self.limit_of(key)))
        return max(0, int(self.default_max_instances))


@dataclass(frozen=True, slots=True)
class SnapshotInputs:
    """Everything the snapshot is built from. ``offerings``: what the enabled providers
    sell; ``free``: free capacity of the providers that know it (None: none does);
    ``running``: the jobs holding capacity; ``instances``: the store's instance rows
    (any state; final ones are ignored); ``instance_backed``: providers whose capacity
    is instance rows; ``spot_providers``: those that declare SPOT; ``tenants``: None
    for no tenant limits; ``now_s``: epoch seconds."""

    offerings: Sequence[Offering]
    now_s: float
    free: Mapping[OfferingKey, FreeCapacity] | None = None
    running: Sequence[RunningJob] = ()
    instances: Sequence[InstanceRecord] = ()
    instance_backed: frozenset[str] = frozenset()
    spot_providers: frozenset[str] = frozenset()
    tenants: Sequence[TenantLimits] | None = None
    policy: FleetPolicy = field(default_factory=FleetPolicy)
    spare_nodes: int = 1
    #: per offering of a known pool, the capacity its engine may queue beyond what is
    #: free (``Provider.queue_capacity``; None or absent: none)
    queue: Mapping[OfferingKey, FreeCapacity] | None = None


@dataclass(slots=True)
class Fleet:
    """A fleet snapshot: the state, and the offering behind each pool.

    ``by_key``: an offering's first pool (its on-demand one); ``pools_of``: all its
    pools. ``node_instance``: row -> the instance behind it (instance-backed pools).
    ``waiting``: pending job -> (pool, rows, ready at) of the instances launched for it
    and not ready yet. ``unbacked_reserved``: reserved pool -> instances its contract
    still lacks (window open, pool not frozen). ``starts``: the running jobs as the
    tenant ledger loads them (``RunningStart``: job, tenant, GPU type, GPUs, USD per
    hour, start, expected duration), by job id with the inputs each was made from (kept
    for the next cycle of a kept snapshot); ``replay``: those ``RunningStart``s in order;
    ``ledger_columns``: the columns the ledger loaded them as (the next cycle of a kept
    snapshot loads its ledger from them and what changed in ``starts``)."""

    state: FleetState
    pools: list[PoolOf]
    by_key: dict[OfferingKey, int]
    held: dict[int, int]  # job id -> pool, for the running jobs that were allocated
    # job id -> the gang it holds (what the tenant ledger replays)
    held_requests: dict[int, GangRequest] = field(default_factory=dict)
    pools_of: dict[OfferingKey, list[int]] = field(default_factory=dict)
    node_instance: dict[int, InstanceRecord] = field(default_factory=dict)
    waiting: dict[int, tuple[int, tuple[int, ...], float]] = field(default_factory=dict)
    unbacked_reserved: dict[int, int] = field(default_factory=dict)
    costs: PoolCosts | None = None
    caps: DiversificationCaps | None = None
    contracts: tuple[Contract, ...] = ()
    ledger: TenantLedger | None = None
    starts: dict[int, tuple[RunningJob, GangRequest, str | None, RunningStart]] = field(
        default_factory=dict
    )
    #: ``starts`` as the ledger loaded them (None: not loaded), for the next cycle's load
    ledger_columns: RunningColumns | None = None

    @property
    def replay(self) -> list[RunningStart]:
        return [start for *_, start in self.starts.values()]

    def spec_of(self, p: int) -> PoolSpec:
        return self.state.pools[p]

    def instance_ids(self, rows: Sequence[int]) -> tuple[int, ...] | None:
        """The instance ids behind ``rows`` in order, if every one is a RUNNING
        instance (None: some row has no usable instance yet)."""
        out = []
        for n in rows:
            inst = self.node_instance.get(n)
            if inst is None or inst.state != InstanceState.RUNNING.value:
                return None
            out.append(inst.id)
        return tuple(out)


class _HealthReader(Protocol):
    def active_blocks(self, now: datetime | None = None) -> list[OfferingBlock]: ...

    def provider_health(self) -> list[ProviderHealth]: ...

    def get_setting(self, key: str, default: Any = None) -> Any: ...


#: store setting: provider -> burn weight, written by the daemon's ledger step
#: (``contracts.accrual``), read into ``FleetPolicy.burn`` each cycle
BURN_SETTING = "contracts.burn"


def _burn(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, float] = {}
    for k, v in value.items():
        if isinstance(k, str) and isinstance(v, int | float) and 0.0 < v < 1.0:
            out[k] = float(v)
    return out


def with_store_state(
    policy: FleetPolicy, store: _HealthReader, now: datetime, read: CycleState | None = None
) -> FleetPolicy:
    """``policy`` with the cool-downs in force at ``now``, the down providers (as the
    store records them: ``store.health_repo``) and, under contracts, the burn weights
    the ledger step stored (``BURN_SETTING``): what the control loop passes each
    cycle. ``read``: the health and cool-downs as already read at ``now``
    (``Store.cycle_state``)."""
    health = read.health if read is not None else store.provider_health()
    blocks = read.blocks if read is not None else store.active_blocks(now)
    down = {h.name: h.down_since for h in health if h.down_since is not None}
    burn = _burn(store.get_setting(BURN_SETTING)) if policy.contracts else {}
    return replace(policy, blocks=tuple(blocks), down=down, burn=burn)


def provider_of_tag(tag: str) -> str:
    """``aws#3`` -> ``aws``."""
    return tag.rsplit("#", 1)[0]


class TaggedCaps(DiversificationCaps):
    """Diversification caps over pools whose provider is a tag (``aws#3``): shares are
    looked up by the real provider, and a provider's capped GPUs are the sum over its
    tags, so one provider's offerings share one cap."""

    def __init__(self, max_share: Mapping[str, float] | float, min_fleet_gpus: int = 0) -> None:
        super().__init__(max_share, min_fleet_gpus)

    def share(self, provider: str) -> float:
        return super().share(provider_of_tag(provider))

    @staticmethod
    def _sum(provider: str, by: Mapping[str, float] | float) -> float:
        if not isinstance(by, Mapping):
            return float(by)
        real = provider_of_tag(provider)
        return float(sum(v for k, v in by.items() if provider_of_tag(k) == real))

    def allows(
        self,
        provider: str,
        gpus: float,
        allocated_by_provider_nonreserved: Mapping[str, float] | float,
        allocated_total: float,
    ) -> bool:
        g = self._sum(provider, allocated_by_provider_nonreserved)
        return super().allows(provider_of_tag(provider), gpus, g, allocated_total)

    def headroom(
        self,
        provider: str,
        allocated_by_provider_nonreserved: Mapping[str, float] | float,
        allocated_total: float,
    ) -> float:
        g = self._sum(provider, allocated_by_provider_nonreserved)
        return super().headroom(provider_of_tag(provider), g, allocated_total)

    def reason(
        self,
        provider: str,
        gpus: float,
        allocated_by_provider_nonreserved: Mapping[str, float] | float,
        allocated_total: float,
    ) -> str:
        g = self._sum(provider, allocated_by_provider_nonreserved)
        return super().reason(provider_of_tag(provider), gpus, g, allocated_total)


# -- building --------------------------------------------------------------------------
def _placement_key(pl: Mapping[str, Any]) -> OfferingKey:
    return (str(pl.get("provider")), str(pl.get("region")), str(pl.get("zone") or ""),
            str(pl.get("instance_type")))  # fmt: skip


def _held_nodes(pool: PoolOf, placement: Mapping[str, Any]) -> int:
    ranks = int(placement.get("ranks", placement.get("nodes", 1)) or 1)
    return ranks * pool.nodes_per_rank(float(placement.get("cpus_per_node", 1.0) or 1.0))


def _held_request(job: RunningJob, pool: PoolOf, nodes: int) -> GangRequest:
    o = pool.offering
    gpus = int(job.placement.get("accelerator_count", 0) or 0) if o.is_gpu else 0
    return GangRequest(
        job_id=job.job_id,
        tenant=job.tenant,
        nodes=nodes,
        gpus_per_node=min(gpus, o.accelerator_count),
        accelerators=(o.accelerator,) if o.is_gpu and o.accelerator else (),
        priority=job.priority,
        submit_s=job.since_s,
        providers=frozenset({pool.tag}),
        duration_s=job.duration_s,
        preemptible=job.preemptible,
    )


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _spec(pool: PoolOf, delay_s: float) -> PoolSpec:
    o = pool.offering
    sliced = pool.unit_cpus is not None
    return PoolSpec(
        provider=pool.tag,
        region=o.region,
        zone=o.zone,
        instance_type=o.instance_type,
        pricing=pool.pricing,
        accelerator=o.accelerator if o.is_gpu else None,
        gpus_per_node=o.accelerator_count if o.is_gpu else 0,
        vcpus_per_node=pool.unit_cpus if pool.unit_cpus is not None else o.vcpus,
        memory_gib_per_node=(
            o.memory_gib * pool.unit_cpus / o.vcpus
            if pool.unit_cpus is not None and o.vcpus > 0
            else o.memory_gib
        ),
        nodes_per_domain=1 if sliced else max(1, o.instances_per_domain),
        max_nodes=max(1, pool.total + pool.queued),
        usd_per_node_hour=pool.usd_per_node_hour,
        provision_delay_s=delay_s if pool.backed else 0.0,
        contract=pool.contract,
        window=pool.window,
        ends_hard=pool.ends_hard,
    )


def _block_reason(b: OfferingBlock) -> str:
    loc = "/".join(x for x in (b.provider, b.region, b.zone) if x)
    return cooling_reason(f"{loc} {b.instance_type}", b.until)


def build_snapshot(inp: SnapshotInputs) -> Fleet:
    """The fleet snapshot of ``inp`` (module docstring)."""
    policy = inp.policy
    now_s = inp.now_s
    free = inp.free
    down = {p: t.timestamp() for p, t in policy.down.items()}
    blocked = {
        ((b.provider, b.region, b.zone, b.instance_type), b.pricing): _block_reason(b)
        for b in policy.blocks
        if b.until.timestamp() > now_s
    }

    def frozen(key: OfferingKey, pricing: PricingKind) -> str | None:
        since = policy.down.get(key[0])
        if since is not None:
            return provider_down_reason(key[0], since)
        return blocked.get((key, pricing.value))

    # -- pools: one per offering first (indices as before), then spot, then reserved
    pools: list[PoolOf] = []
    by_key: dict[OfferingKey, int] = {}
    pools_of: dict[OfferingKey, list[int]] = {}
    offering_of: dict[OfferingKey, Offering] = {}

    def add(pool: PoolOf) -> None:
        key = offering_key(pool.offering)
        pools_of.setdefault(key, []).append(len(pools))
        pools.append(pool)

    for o in inp.offerings:
        key = offering_key(o)
        if key in by_key:
            continue
        i = len(pools)
        by_key[key] = i
        offering_of[key] = o
        known = free is not None and key in free
        if known and not o.is_gpu and o.machines <= 1:
            unit = min(1.0, o.vcpus) if o.vcpus > 0 else 1.0
            total = max(1, math.floor(o.vcpus / unit + _EPS))
            add(PoolOf(o, f"{o.provider}#{i}", unit, True, total, PoolKind.SLICED))
        elif known:  # GPU machines, or a cluster's nodes: a rank takes one whole machine
            machines = max(1, o.machines)
            add(PoolOf(o, f"{o.provider}#{i}", None, True, machines, PoolKind.ONE_INSTANCE))
        elif o.provider in inp.instance_backed:
            why = frozen(key, PricingKind.ON_DEMAND) or _no_max(policy, key)
            add(PoolOf(o, f"{o.provider}#{i}", None, False, policy.max_of(key),
                       PoolKind.INSTANCES, backed=True, frozen=why))  # fmt: skip
        else:
            add(PoolOf(o, f"{o.provider}#{i}", None, False, 0, PoolKind.SIZED))
    for key, o in offering_of.items():
        if (
            o.provider in inp.instance_backed
            and o.provider in inp.spot_providers
            and o.spot_price is not None
        ):
            add(PoolOf(o, f"{o.provider}#{len(pools)}", None, False, policy.max_of(key),
                       PoolKind.INSTANCES, PricingKind.SPOT, backed=True,
                       frozen=frozen(key, PricingKind.SPOT) or _no_max(policy, key)))  # fmt: skip
    contracts: list[Contract] = []
    for c in policy.contracts:
        if c.end.timestamp() <= now_s:
            continue  # ended: its capacity is gone (its instances are released)
        used = False
        for b in c.blocks:
            key = (c.provider, b.region, b.zone, b.instance_type)
            sold = offering_of.get(key)
            if sold is None and not b.zone:
                # a block that names only its region: the region's first zone selling it
                sold = min(
                    (o for o in offering_of.values()
                     if (o.provider, o.region, o.instance_type) == key[:2] + key[3:]),
                    key=lambda o: o.zone,
                    default=None,
                )  # fmt: skip
                if sold is not None:
                    key = offering_key(sold)
            w0, w1 = c.window(b)[0].timestamp(), c.usable_end(b).timestamp()
            if sold is None or b.nodes <= 0 or w1 <= now_s:
                continue  # not sold, empty, or its window is over
            backed = c.provider in inp.instance_backed
            add(PoolOf(sold, f"{sold.provider}#{len(pools)}", None, False, b.nodes,
                       PoolKind.RESERVED, PricingKind.RESERVED, c.name, backed,
                       frozen(key, PricingKind.RESERVED) if backed else None,
                       contract_usd=block_rate(c, b), window=(w0, w1),
                       ends_hard=b.capacity_block))  # fmt: skip
            used = True
        if used:
            contracts.append(c)

    # -- instance rows per pool
    by_pool_key: dict[tuple[OfferingKey, str, str | None], list[int]] = {}
    for p, pool in enumerate(pools):
        if pool.backed:
            pk = (offering_key(pool.offering), pool.pricing.value, pool.contract)
            by_pool_key.setdefault(pk, []).append(p)
    ready: list[list[InstanceRecord]] = [[] for _ in pools]
    coming: list[list[InstanceRecord]] = [[] for _ in pools]
    leaving: list[list[InstanceRecord]] = [[] for _ in pools]
    for inst in sorted(inp.instances, key=lambda i: i.id):
        pk = (inst.offering, inst.pricing, inst.contract)
        cands = by_pool_key.get(pk)
        if not cands:
            continue  # its offering is no longer sold, or the provider no longer backed
        # a contract with several blocks of one offering: fill them in order
        p = cands[0]
        if len(cands) > 1:
            p = next(
                (q for q in cands
                 if len(ready[q]) + len(coming[q]) + len(leaving[q]) < pools[q].total),
                cands[-1],
            )  # fmt: skip
        st = InstanceState(inst.state)
        if st is InstanceState.RUNNING:
            ready[p].append(inst)
        elif st in LIVE_STATES:
            coming[p].append(inst)
        elif st in LEAVING_STATES:
            leaving[p].append(inst)

    # -- what the store says each known / sized / unbacked pool holds
    holds: list[tuple[RunningJob, int, int]] = []
    held_nodes = [0] * len(pools)
    bound: dict[int, RunningJob] = {}
    for job in sorted(inp.running, key=lambda j: j.job_id):
        pl = job.placement
        key = _placement_key(pl)
        cands = pools_of.get(key)
        if cands is None:
            continue  # its offering is gone: nothing to schedule around
        if pools[cands[0]].backed:
            bound[job.job_id] = job  # allocated on its instance rows below
            continue
        pricing = str(pl.get("pricing") or PricingKind.ON_DEMAND.value)
        p = next((q for q in cands if pools[q].pricing.value == pricing), cands[0])
        n = _held_nodes(pools[p], pl)
        holds.append((job, p, n))
        held_nodes[p] += n

    # -- sizes
    present: dict[int, int] = {}
    for p, pool in enumerate(pools):
        if pool.kind is PoolKind.SIZED:
            total = held_nodes[p] + max(1, inp.spare_nodes)
            pools[p] = pool = _with_total(pool, total)
            present[p] = total
        elif pool.kind in (PoolKind.SLICED, PoolKind.ONE_INSTANCE):
            assert free is not None
            key = offering_key(pool.offering)
            reported = _nodes_in(pool, free[key])
            qc = (inp.queue or {}).get(key)
            if qc is not None and pool.offering.provider not in down:
                pools[p] = pool = replace(pool, queued=_nodes_in(pool, qc))
            # the queue's slots count only as long as the engine holds them: a gang
            # placed on one is PLACING (held) until it runs
            size = pool.total + pool.queued
            free_nodes = max(0, min(size - held_nodes[p], reported + pool.queued))
            present[p] = min(size, held_nodes[p] + free_nodes)
        elif pool.kind is PoolKind.INSTANCES:
            rows = len(ready[p]) + len(coming[p]) + len(leaving[p])
            total = max(pool.total, rows, 1)
            pools[p] = _with_total(pool, total)
            present[p] = len(ready[p])
    delay = max(policy.provision_delay_s, 1.0)
    specs = [_spec(pool, delay) for pool in pools]
    state = FleetState(specs, initial_nodes=present, now_s=now_s)

    node_instance: dict[int, InstanceRecord] = {}
    waiting: dict[int, tuple[int, tuple[int, ...], float]] = {}
    failed_rows: list[int] = []
    unbacked: dict[int, int] = {}
    idle_since = state.idle_since
    for p, pool in enumerate(pools):
        if not pool.backed:
            continue
        prow = list(state.pool_rows(p))
        # ready instances: bound ones by (job, rank) first, then idle ones
        live = sorted(
            ready[p],
            key=lambda i: (i.workload_id is None, i.workload_id or 0, i.rank or 0, i.id),
        )
        order = [*live, *coming[p], *leaving[p]]
        for n, inst in zip(prow, order, strict=False):
            node_instance[n] = inst
        k_ready, k_coming = len(live), len(coming[p])
        if pool.kind is PoolKind.INSTANCES:
            later = prow[k_ready : len(order)]
            if later:
                state.provision_rows(p, later, now_s)
            failed_rows.extend(prow[k_ready + k_coming : len(order)])
            if pool.frozen is not None:
                filler = prow[len(order) :]
                state.provision_rows(p, filler, now_s)
                failed_rows.extend(filler)
        else:  # reserved: always full; rows without a running instance are failed
            failed_rows.extend(prow[k_ready:])
            if pool.frozen is None and now_s >= _window_start(contracts, pool):
                missing = pool.total - len(order)
                if missing > 0:
                    unbacked[p] = missing
        for n, inst in zip(prow[:k_ready], live, strict=False):
            if inst.workload_id is None:
                t = _epoch(inst.idle_since) or _epoch(inst.running_at) or now_s
                idle_since[n] = min(t, now_s)
        for_job: dict[int, list[int]] = {}
        for n, inst in zip(prow[k_ready : k_ready + k_coming], coming[p], strict=False):
            j = (inst.extra or {}).get("for_job")
            if isinstance(j, int) and inst.workload_id is None:
                for_job.setdefault(j, []).append(n)
        for j, js_rows in for_job.items():
            waiting[j] = (p, tuple(js_rows), now_s + specs[p].provision_delay_s)

    if any(pool.backed for pool in pools):
        # provisioning is on: the rows a local site or a sized pool lacks are capacity
        # taken outside the fleet, never rows to grow into
        for p, pool in enumerate(pools):
            if pool.kind in (PoolKind.SLICED, PoolKind.ONE_INSTANCE, PoolKind.SIZED):
                absent = state.absent_rows(p)
                if absent:
                    state.provision_rows(p, absent, now_s)
                    failed_rows.extend(absent)

    # -- running jobs
    held: dict[int, int] = {}
    held_requests: dict[int, GangRequest] = {}
    for job, p, n in holds:
        req = _held_request(job, pools[p], n)
        nodes = pick_nodes(state, p, req)
        if nodes is None:
            continue  # more held than the pool has (it shrank): nothing left to offer
        # a gang waiting in its engine's queue has run nothing: it starts (as far as
        # the core's end times and the work a withdrawal loses go) now
        start = now_s if job.queued else job.since_s
        end = start + job.duration_s if job.duration_s is not None else None
        state.allocate(req, p, nodes, start, end_s=end)
        held[job.job_id] = p
        held_requests[job.job_id] = req
    if bound:
        rows_of: dict[int, list[tuple[int, int, int]]] = {}
        for n, inst in node_instance.items():
            j = inst.workload_id
            if j is not None and j in bound and inst.state == InstanceState.RUNNING.value:
                rows_of.setdefault(j, []).append((inst.rank or 0, n, int(state.pool[n])))
        # a job placed on instances not bound yet (the bridge binds them when it
        # provisions): the ids its placement names, while they are idle and running
        row_of = {inst.id: n for n, inst in node_instance.items()}
        for job_id, job in bound.items():
            if job_id in rows_of:
                continue
            named = job.placement.get("instances") or ()
            found = []
            for rank, iid in enumerate(named if isinstance(named, list | tuple) else ()):
                row = row_of.get(iid) if isinstance(iid, int) else None
                if row is not None and node_instance[row].idle and state.usable(row):
                    found.append((rank, row, int(state.pool[row])))
            if found and all(f[2] == found[0][2] for f in found):
                rows_of[job_id] = found
        for job_id, found in sorted(rows_of.items()):
            found.sort()
            p = found[0][2]
            nodes = [n for _, n, q in found if q == p]
            job = bound[job_id]
            req = _held_request(job, pools[p], len(nodes))
            end = job.since_s + job.duration_s if job.duration_s is not None else None
            state.allocate(req, p, nodes, job.since_s, end_s=end)
            held[job_id] = p
            held_requests[job_id] = req
    # failed rows, and whatever a down provider's pools have free
    for p, pool in enumerate(pools):
        if pool.offering.provider in down:
            pools[p] = _with_down(pool, down[pool.offering.provider])
            failed_rows.extend(
                n for n in state.pool_rows(p) if state.present[n] and state.job[n] == FREE
            )
    state.set_healthy(sorted(set(failed_rows)), False)
    for p, pool in enumerate(pools):
        if pool.backed:
            canonical_free(state, p, node_instance)

    # the core sees pools by tag: the burn weights of their providers, per tag
    burn = {pool.tag: w for pool in pools if (w := policy.burn.get(pool.offering.provider))}
    costs = PoolCosts(specs, contracts, burn)
    caps = TaggedCaps(policy.caps, policy.caps_min_fleet_gpus) if policy.caps is not None else None
    fleet = Fleet(
        state, pools, by_key, held, held_requests, pools_of, node_instance, waiting, unbacked,
        costs, caps, tuple(contracts),
    )  # fmt: skip
    finish_fleet(fleet, inp)
    return fleet


def finish_fleet(
    fleet: Fleet,
    inp: SnapshotInputs,
    touched: Collection[int] | None = None,
    jobs: Mapping[int, RunningJob] | None = None,
) -> None:
    """The running jobs as the tenant ledger loads them (``fleet.replay``, in no
    particular order: the ledger's columns and the quota caps take them in any) and the
    ledger: from ``fleet.held`` and ``fleet.held_requests``. A job whose
    ``RunningJob``, held gang and GPU type are the objects of the last cycle (a kept
    snapshot) keeps its ``RunningStart``, and the ledger loads from the last cycle's
    columns with only the jobs that changed (``RunningColumns.updated``: the same
    ledger as a load of them all).

    ``touched`` (a kept snapshot's cycle): the only jobs whose ``RunningJob`` or held
    gang may differ from the last cycle's, ``jobs`` the running jobs that may hold by
    id; only they are looked at. None: every job of ``inp.running``."""
    if touched is None or jobs is None:
        jobs = {job.job_id: job for job in inp.running}
        touched = jobs.keys() | fleet.starts.keys()
    starts, held_requests = fleet.starts, fleet.held_requests
    came: list[RunningStart] = []
    gone: set[int] = set()
    for j in sorted(touched):  # (in id order, as ``inp.running`` lists them)
        hit = starts.get(j)
        job = jobs.get(j)
        got = held_requests.get(j)
        if job is None or got is None or job.queued:  # (queued in an engine: not running)
            if hit is not None:
                del starts[j]
                gone.add(j)
            continue
        gpu_type = fleet.state.pools[fleet.held[j]].accelerator
        if hit is not None and hit[0] is job and hit[1] is got and hit[2] == gpu_type:
            continue
        starts[j] = (job, got, gpu_type, _running_start(job, got, gpu_type))
        came.append(starts[j][3])
        if hit is not None:
            gone.add(j)
    cols, fleet.ledger_columns, fleet.ledger = fleet.ledger_columns, None, None
    if inp.tenants is None:
        return
    if cols is not None and inp.now_s >= cols.now_s:
        cols = cols.updated(gone, came, inp.now_s, UNKNOWN_DURATION_S)
    else:
        cols = RunningColumns.of(fleet.replay, inp.now_s, UNKNOWN_DURATION_S)
    fleet.ledger = build_ledger(inp.tenants, gpu_capacity(fleet.state), cols, inp.now_s)
    fleet.ledger_columns = cols


def _running_start(job: RunningJob, got: GangRequest, gpu_type: str | None) -> RunningStart:
    usd = float(job.placement.get("hourly_usd") or 0.0)
    return RunningStart(job.job_id, job.tenant, gpu_type, got.gpus, usd, job.since_s,
                        job.duration_s)  # fmt: skip


def canonical_free(state: FleetState, p: int, node_instance: Mapping[int, InstanceRecord]) -> None:
    """Put the idle nodes of instance-backed pool ``p`` in the order of their instances
    (lowest id taken first): which idle instance a gang gets then depends on the
    instances alone, not on the order of the operations that built the state, so a
    snapshot kept across cycles (``control.kept_snapshot``) decides as a fresh one."""
    g = state.pool_slots[p]
    free = list(state.bucket(p, g))
    if len(free) < 2 or any(int(state.job[n]) != FREE for n in free):
        return
    big = 1 << 62
    order = sorted(
        free, key=lambda n: -(inst.id if (inst := node_instance.get(n)) is not None else big)
    )
    if order == free:
        return
    state.set_healthy(free, False)
    state.set_healthy(order, True)


def gpu_capacity(state: FleetState) -> dict[str, int]:
    """GPUs per type the fleet could run (every pool at its quota): the tenant
    ledger's capacity."""
    capacity: dict[str, int] = {}
    for spec in state.pools:
        if spec.accelerator and spec.gpus_per_node:
            gpus = spec.max_nodes * spec.gpus_per_node
            capacity[spec.accelerator] = capacity.get(spec.accelerator, 0) + gpus
    return capacity


def _nodes_in(pool: PoolOf, fc: FreeCapacity) -> int:
    """How many of ``pool``'s nodes the capacity ``fc`` makes (CPU slots of a sliced
    pool, else whole machines)."""
    o = pool.offering
    if pool.unit_cpus is not None:
        return math.floor(max(0.0, fc.cpus) / pool.unit_cpus + _EPS)
    if fc.machines is not None:
        return max(0, fc.machines)
    whole = fc.gpus >= o.accelerator_count and fc.cpus + _EPS >= o.vcpus
    return 1 if whole else 0


def _no_max(policy: FleetPolicy, key: OfferingKey) -> str | None:
    if policy.max_of(key) > 0:
        return None
    return f"{'/'.join(x for x in key[:3] if x)} {key[3]}: no instances allowed (max 0)"


def _window_start(contracts: Sequence[Contract], pool: PoolOf) -> float:
    if pool.window is not None:
        return pool.window[0]
    c = next((c for c in contracts if c.name == pool.contract), None)
    return math.inf if c is None else c.start.timestamp()


def _with_total(pool: PoolOf, total: int) -> PoolOf:
    return replace(pool, total=total)


def _with_down(pool: PoolOf, since: float) -> PoolOf:
    return replace(pool, down_since=since)
