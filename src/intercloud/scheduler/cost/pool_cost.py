"""What a gang costs on each pool, and the order in which the fleet scheduler tries pools.

``PoolCosts(pools, contracts)`` turns the pool specs into numpy arrays once; ``rank``
answers, for one request, the candidate pools cheapest first. The fleet scheduler's core
calls it for every decision, so a call is a dictionary hit plus one mask in the common
case (microseconds): results are memoised per request *shape*, and thousands of queued
requests share a handful of shapes.

Cost model (kept consistent with the single-job planner, ``scheduler/planner.py``):

* Marginal price of a node-hour at ``now_s``: a reserved pool whose contract is active
  (``start <= now < end``) costs **0** (the contract is paid whether or not its nodes are
  used); a reserved pool whose contract has ended or not yet begun is **not usable**
  (never a candidate). A reserved pool without a contract (``PoolSpec.contract`` None:
  capacity owned outright, e.g. on premises) is always active. A pool with its own
  ``window`` (a reserved block) is active within it instead of its contract's term.
  Committed, on-demand and spot pools cost their ``usd_per_node_hour``.
* Pools that end hard (``PoolSpec.ends_hard``: a Capacity Block, whose nodes stop at
  the window's end): ``block_fit`` says whether a gang can finish or checkpoint there
  before the end (the core never places it there otherwise).
* Commitments behind schedule (``burn``: provider -> weight in [0, 1), the share of
  its commitment projected to go unused, from the ledger's burn-down): the provider's
  committed and on-demand pools *rank* as if ``weight`` of their price were already
  paid (unused commitment is money thrown away), so equal work goes where it burns a
  commitment that lags. Only the order changes: every price handed out stays the
  pool's own.
* A request's *unit* is a GPU (a CPU-only request's: a node). A pool with ``g`` GPUs per
  node sells GPUs at ``price / g`` per GPU-hour: a request with fewer GPUs per node than
  the pool's shares nodes with others and pays its share (GPUs it strands on a node are
  not charged to it).
* Work: ``hours`` is ``duration_s / 3600`` (unknown duration: one hour, as in the
  planner). The duration is for the request's first accelerator; on another accelerator
  ``X`` of ``req.accelerators`` it is ``hours x thr(first) / thr(X)``
  (``model.relative_throughput``; no scaling when the duration is unknown).
* Egress: when the request's data (input or checkpoint) lives at
  ``(data_provider, data_region)``, placing it on a pool moves ``data_gb`` there at
  ``catalog.egress.transfer_usd_per_gb(data -> pool's provider, region)`` (the source pays;
  same region: free). ``PoolSpec.egress_usd_per_gb`` is not used here.
* ``work_usd = unit_price x units x hours x scale + data_gb x transfer``.
* The ranking key is ``work_usd / (units x hours)``: USD per GPU-hour of the work, egress
  amortised over the expected GPU-hours (one hour when unknown). For one request it
  orders pools exactly as ``work_usd`` does. Ties break on the request's
  ``provider_preference`` (position in the list; unlisted providers after all listed
  ones), then on pool id. Reserved pools come first because their key is zero, unless
  egress to them outweighs the price gap (egress can flip the order).

Candidate filter (what ``rank`` returns, before ordering): the pool's accelerator is one
of ``req.accelerators`` (a request without accelerators takes CPU-only pools); the pool
has at least ``req.gpus_per_node`` GPUs and ``req.vcpus_per_node`` vCPUs per node;
``spot``: ``never`` excludes spot pools, ``only`` keeps only spot pools, ``allowed``
keeps both; ``providers`` and ``regions`` filter by name (case-insensitive); topology
``nvlink_domain``: the gang fits one domain (``ceil(nodes / floor(pool_gpn / gpn))``
nodes within ``nodes_per_domain``); ``max_usd_per_hour`` caps the gang's marginal hourly
price. Zone and region topologies are met by any single pool (a pool is one zone).

Times: ``now_s`` is POSIX seconds (UTC) on the caller's clock; contract datetimes without
a timezone are read as UTC. The twin must anchor its simulated clock at a real date for
contract windows to mean anything.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from intercloud.catalog.egress import transfer_usd_per_gb
from intercloud.model import (
    Contract,
    PricingKind,
    SpotPolicy,
    Topology,
    canonical_accelerator,
    canonical_provider,
    relative_throughput,
)
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import GangRequest

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

PRICING_KINDS: tuple[PricingKind, ...] = tuple(PricingKind)
_CACHE_MAX = 1 << 16
_EMPTY = np.zeros(0, np.int64)
_EMPTY.setflags(write=False)


def _epoch_s(t: datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def _acc_name(name: str) -> str:
    return canonical_accelerator(name) or name.strip()


@dataclass(frozen=True, slots=True)
class _Shape:
    """Everything of a request that decides its candidates and their base keys."""

    accelerators: tuple[str, ...]
    gpus_per_node: int
    nodes: int
    vcpus_per_node: float
    topology: Topology
    spot: SpotPolicy
    providers: frozenset[str] | None
    regions: frozenset[str] | None
    max_usd_per_hour: float | None
    scaled: bool  # duration known: hours scale by relative throughput


@dataclass(frozen=True, slots=True)
class _Base:
    """Candidates of one shape (ascending pool id) and their keys before egress."""

    ids: I64
    key: F64  # unit price x throughput scale (USD per reference unit-hour)
    loc: I64  # location code of each candidate
    provider: I64


class PoolCosts:
    """Per-pool prices and codes as arrays, and the cost ordering of candidate pools.

    Arrays (one entry per pool, index = pool id = position in ``pools``):
    ``provider`` / ``location`` / ``accelerator`` / ``pricing`` are integer codes into
    ``providers`` / ``locations`` (``(provider, region)`` pairs) / ``accelerators``
    (-1: CPU-only) / ``PRICING_KINDS``; ``list_usd_per_node_hour``;
    ``gpus_per_node``; ``domain_gpus``; ``capped`` (True unless reserved: counts toward
    diversification caps); ``is_spot``. See the module docstring for the cost model.
    """

    def __init__(
        self,
        pools: Sequence[PoolSpec],
        contracts: Sequence[Contract] = (),
        burn: Mapping[str, float] | None = None,
    ) -> None:
        self.pools: tuple[PoolSpec, ...] = tuple(pools)
        n = len(self.pools)
        by_name = {c.name: c for c in contracts}
        prov_code: dict[str, int] = {}
        loc_code: dict[tuple[str, str], int] = {}
        acc_code: dict[str, int] = {}
        self.provider = np.empty(n, np.int64)
        self.location = np.empty(n, np.int64)
        self.accelerator = np.empty(n, np.int64)
        self.pricing = np.empty(n, np.int64)
        self.list_usd_per_node_hour = np.empty(n, np.float64)
        self.gpus_per_node = np.empty(n, np.int64)
        self.vcpus_per_node = np.empty(n, np.float64)
        self.nodes_per_domain = np.empty(n, np.int64)
        starts = np.full(n, -np.inf)
        ends = np.full(n, np.inf)
        self.hard_end = np.full(n, np.inf)
        burn_of = {canonical_provider(k): v for k, v in (burn or {}).items()}
        self.rank_factor = np.ones(n)
        self._region_lower: list[str] = []
        for i, p in enumerate(self.pools):
            prov = canonical_provider(p.provider)
            self.provider[i] = prov_code.setdefault(prov, len(prov_code))
            self.location[i] = loc_code.setdefault((prov, p.region), len(loc_code))
            self.accelerator[i] = (
                -1
                if p.accelerator is None
                else acc_code.setdefault(_acc_name(p.accelerator), len(acc_code))
            )
            self.pricing[i] = PRICING_KINDS.index(p.pricing)
            self.list_usd_per_node_hour[i] = p.usd_per_node_hour
            self.gpus_per_node[i] = p.gpus_per_node if p.accelerator is not None else 0
            self.vcpus_per_node[i] = p.vcpus_per_node
            self.nodes_per_domain[i] = max(p.nodes_per_domain, 1)
            if p.pricing == PricingKind.RESERVED and p.contract is not None:
                c = by_name.get(p.contract)
                if c is None:
                    raise ValueError(f"pool {p.key} names unknown contract {p.contract!r}")
                starts[i], ends[i] = _epoch_s(c.start), _epoch_s(c.end)
            if p.window is not None:
                starts[i], ends[i] = p.window
                if p.ends_hard:
                    self.hard_end[i] = p.window[1]
            w = burn_of.get(prov)
            if w and p.pricing in (PricingKind.COMMITTED, PricingKind.ON_DEMAND):
                self.rank_factor[i] = 1.0 - min(max(float(w), 0.0), 0.99)
        self.providers: tuple[str, ...] = tuple(prov_code)
        self.provider_code = prov_code
        self.locations: tuple[tuple[str, str], ...] = tuple(loc_code)
        self.accelerators: tuple[str, ...] = tuple(acc_code)
        self.accelerator_code = acc_code
        self.domain_gpus = self.gpus_per_node * self.nodes_per_domain
        self.is_spot = self.pricing == PRICING_KINDS.index(PricingKind.SPOT)
        self.reserved = self.pricing == PRICING_KINDS.index(PricingKind.RESERVED)
        self.capped = ~self.reserved
        self._loc_region = np.array([r.lower() for _, r in self.locations] or [""], dtype=object)
        self._thr = np.array([relative_throughput(a) for a in self.accelerators] + [1.0])
        self._starts = starts
        self._ends = ends
        self.any_hard_end = bool(np.isfinite(self.hard_end).any())
        self._boundaries = sorted({float(t) for t in (*starts, *ends) if math.isfinite(t)})
        self._epoch = -1
        self._unit_price = np.zeros(n)
        self._base: dict[tuple[_Shape, int], _Base] = {}
        self._ranked: dict[tuple[object, ...], tuple[I64, F64]] = {}
        self._egress: dict[tuple[str, str], F64] = {}
        for a in (
            self.provider,
            self.location,
            self.accelerator,
            self.pricing,
            self.list_usd_per_node_hour,
            self.gpus_per_node,
            self.domain_gpus,
            self.is_spot,
            self.reserved,
            self.capped,
            self.hard_end,
            self.rank_factor,
        ):
            a.setflags(write=False)

    def __len__(self) -> int:
        return len(self.pools)

    # ------------------------------------------------------------------ prices
    def marginal_usd_per_node_hour(self, now_s: float) -> F64:
        """Marginal price of a node-hour per pool at ``now_s`` (inf: not usable)."""
        out = self.list_usd_per_node_hour.copy()
        active = (self._starts <= now_s) & (now_s < self._ends)
        out[self.reserved & active] = 0.0
        out[self.reserved & ~active] = np.inf
        return out

    def usable_at(self, now_s: float) -> Bool:
        """Pools whose capacity may be used at ``now_s`` (reserved: contract active)."""
        ok: Bool = np.isfinite(self.marginal_usd_per_node_hour(now_s))
        return ok

    def _at(self, now_s: float) -> None:
        """Switch the per-unit prices (and clear the memos) when a contract starts or ends."""
        epoch = bisect.bisect_right(self._boundaries, now_s)
        if epoch == self._epoch:
            return
        node = self.marginal_usd_per_node_hour(now_s)
        gpn = self.gpus_per_node
        self._unit_price = np.where(gpn > 0, node / np.maximum(gpn, 1), node)
        self._base.clear()
        self._ranked.clear()
        self._epoch = epoch

    def egress_usd_per_gb(self, data_provider: str, data_region: str) -> F64:
        """USD per GB to move data from ``(data_provider, data_region)`` to each location."""
        key = (canonical_provider(data_provider), data_region)
        rates = self._egress.get(key)
        if rates is None:
            rates = np.fromiter(
                (transfer_usd_per_gb(key[0], key[1], p, r) for p, r in self.locations),
                np.float64,
                len(self.locations),
            )
            rates.setflags(write=False)
            if len(self._egress) >= _CACHE_MAX:
                self._egress.clear()
            self._egress[key] = rates
        return rates

    # ------------------------------------------------------------------ ranking
    def rank(self, req: GangRequest, now_s: float, usable: Bool | None = None) -> I64:
        """Candidate pool ids for ``req``, cheapest first (see the module docstring).

        ``usable`` (one bool per pool, e.g. pools with free capacity) filters the result
        after ranking. The returned array is read-only and may be shared between calls.
        """
        ids = self._rank(req, now_s)[0]
        return ids if usable is None else ids[usable[ids]]

    def ranked_usd_per_hour(self, req: GangRequest, now_s: float) -> tuple[I64, F64]:
        """``(ids, usd_per_hour)``: candidates as ``rank`` orders them, and what the gang
        costs per hour on each (the ranking key times its GPUs; egress amortised over the
        expected duration). The batch optimizer's objective coefficients."""
        ids, key = self._rank(req, now_s)
        units, _ = _units_hours(req)
        return ids, key * units

    def ranked_unit_usd_per_hour(self, req: GangRequest, now_s: float) -> tuple[I64, F64]:
        """``(ids, usd_per_unit_hour)``: as ``ranked_usd_per_hour`` per unit (GPU;
        CPU-only: node); both arrays are memoised and read-only, the same objects while
        the ranking holds."""
        return self._rank(req, now_s)

    def work_usd(self, req: GangRequest, pool: int, now_s: float) -> float:
        """USD of the whole work of ``req`` on ``pool``, egress included (inf if ``pool``
        is not a candidate)."""
        ids, key = self._rank(req, now_s)
        at = np.flatnonzero(ids == pool)
        units, hours = _units_hours(req)
        return float(key[at[0]]) * units * hours if at.size else math.inf

    def rank_key(self, req: GangRequest) -> tuple[object, ...]:
        """What ``rank`` reads of ``req``: within a contract epoch, requests with equal
        keys get the same ranking (the same memoised arrays while the memo holds them)."""
        has_data = req.data_provider is not None and req.data_gb > 0
        amort = 0.0
        if has_data:
            units, hours = _units_hours(req)
            amort = req.data_gb / (units * hours)
        return (
            req.accelerators,
            req.gpus_per_node,
            req.nodes,
            req.vcpus_per_node,
            req.topology,
            req.spot,
            req.providers,
            req.regions,
            req.max_usd_per_hour,
            bool(req.duration_s),
            req.provider_preference,
            req.data_provider if has_data else None,
            req.data_region if has_data else None,
            amort,
        )

    def _rank(self, req: GangRequest, now_s: float) -> tuple[I64, F64]:
        self._at(now_s)
        key = self.rank_key(req)
        hit = self._ranked.get(key)
        if hit is not None:
            return hit
        amort = key[-1]  # the key's data amortisation (0: no data to move)
        assert isinstance(amort, float)
        base = self._base_of(_shape(req))
        k = base.key
        if amort and base.ids.size:
            rates = self.egress_usd_per_gb(req.data_provider or "", req.data_region or "")
            k = k + amort * rates[base.loc]
        pref = self._preference(req.provider_preference)[base.provider]
        order = np.lexsort((base.ids, pref, k * self.rank_factor[base.ids]))
        out = (base.ids[order], k[order])
        for a in out:
            a.setflags(write=False)
        if len(self._ranked) >= _CACHE_MAX:
            self._ranked.clear()
        self._ranked[key] = out
        return out

    def block_fit(self, req: GangRequest, pool: int, now_s: float) -> tuple[float, float | None]:
        """``(left_s, need_s)`` of a pool that ends hard: the seconds its nodes have left
        at ``now_s`` and the seconds ``req`` needs there before it has saved its work
        (its duration on the pool's accelerator, or its checkpoint interval if shorter;
        None: unknown duration and no checkpoints). It fits when ``need_s <= left_s``.
        A pool that does not end hard: ``(inf, 0)``."""
        end = float(self.hard_end[pool])
        if not math.isfinite(end):
            return math.inf, 0.0
        need: float | None = None
        if req.duration_s:
            need = req.duration_s
            accs = {_acc_name(a) for a in req.accelerators}
            code = int(self.accelerator[pool])
            if len(accs) > 1 and code >= 0:
                need *= relative_throughput(_acc_name(req.accelerators[0])) / self._thr[code]
        if req.checkpoint_interval_s:
            need = min(need or math.inf, req.checkpoint_interval_s)
        return end - now_s, need

    def fits_before_end(self, req: GangRequest, pool: int, now_s: float) -> bool:
        """Whether ``req`` can finish or checkpoint on ``pool`` before it ends hard."""
        left, need = self.block_fit(req, pool, now_s)
        return need is not None and need <= left

    def _preference(self, preference: tuple[str, ...]) -> I64:
        pref = np.full(len(self.providers), len(preference), np.int64)
        for pos, name in reversed(list(enumerate(preference))):
            code = self.provider_code.get(canonical_provider(name))
            if code is not None:
                pref[code] = pos
        return pref

    def _base_of(self, s: _Shape) -> _Base:
        cached = self._base.get((s, self._epoch))
        if cached is not None:
            return cached
        ok = np.isfinite(self._unit_price)
        scale = np.ones(len(self.pools))
        if s.accelerators:
            codes = [self.accelerator_code.get(a, -2) for a in s.accelerators]
            ok &= np.isin(self.accelerator, codes)
            ok &= self.gpus_per_node >= s.gpus_per_node
            if s.scaled:
                ref = relative_throughput(s.accelerators[0])
                scale = ref / self._thr[self.accelerator]
        else:
            ok &= self.accelerator == -1
        ok &= self.vcpus_per_node >= s.vcpus_per_node
        if s.spot == SpotPolicy.NEVER:
            ok &= ~self.is_spot
        elif s.spot == SpotPolicy.ONLY:
            ok &= self.is_spot
        if s.providers is not None:
            allowed = [self.provider_code.get(p, -2) for p in s.providers]
            ok &= np.isin(self.provider, allowed)
        if s.regions is not None:
            ok &= np.isin(self._loc_region[self.location], list(s.regions))
        if s.topology == Topology.NVLINK_DOMAIN and s.gpus_per_node > 0:
            per_node = np.maximum(self.gpus_per_node // s.gpus_per_node, 1)
            nodes_needed = -(-s.nodes // per_node)
            ok &= nodes_needed <= self.nodes_per_domain
        units = s.nodes * s.gpus_per_node if s.accelerators else s.nodes
        if s.max_usd_per_hour is not None:
            with np.errstate(invalid="ignore"):
                ok &= self._unit_price * units <= s.max_usd_per_hour
        ids = np.flatnonzero(ok).astype(np.int64)
        base = _Base(
            ids=ids,
            key=(self._unit_price[ids] * scale[ids]).astype(np.float64),
            loc=self.location[ids],
            provider=self.provider[ids],
        )
        if len(self._base) >= _CACHE_MAX:
            self._base.clear()
        self._base[(s, self._epoch)] = base
        return base


def _units_hours(req: GangRequest) -> tuple[float, float]:
    """GPUs of the gang (CPU-only: nodes), at least 1, and expected hours (unknown: 1)."""
    units = req.nodes * req.gpus_per_node if req.accelerators else req.nodes
    hours = req.duration_s / 3600.0 if req.duration_s else 1.0
    return float(max(units, 1)), hours


def _shape(req: GangRequest) -> _Shape:
    accs = tuple(_acc_name(a) for a in req.accelerators)
    return _Shape(
        accelerators=accs,
        gpus_per_node=req.gpus_per_node,
        nodes=req.nodes,
        vcpus_per_node=req.vcpus_per_node,
        topology=req.topology,
        spot=req.spot,
        providers=(
            None
            if req.providers is None
            else frozenset(canonical_provider(p) for p in req.providers)
        ),
        regions=None if req.regions is None else frozenset(r.lower() for r in req.regions),
        max_usd_per_hour=req.max_usd_per_hour,
        scaled=bool(req.duration_s) and len(set(accs)) > 1,
    )
