"""The planner: where one workload should run, what it costs, and why not elsewhere.

``Planner(catalog).plan(workload)`` filters the catalog's offerings by every constraint
of the workload, scores the survivors by the cost of the whole work, and returns the
cheapest placement, ranked alternatives and, for each provider that cannot take the
workload, the reason. It is a pure function of (catalog, throughput table, workload,
enabled providers): no I/O, no clock, deterministic to the last tie.

Semantics (the contract the CLI and tests rely on):

* Accelerators follow SkyPilot: ``H100:8`` matches offerings with exactly 8 H100 per
  instance; the gang has ``resources.num_nodes`` such instances. A request with no
  accelerators matches CPU-only offerings, unless it names an ``instance_type``, in
  which case it matches that instance type whatever it carries (SkyPilot infers the
  accelerators from the instance type). ``cpus``/``memory_gib`` are per-node minimums
  (``cpus_exact``: equality); ``instance_type`` restricts to that type.
* ``providers``/``deny_providers``, ``regions``/``deny_regions`` and ``zones`` filter
  by name, case-insensitively. A row whose zone is empty (the catalog does not say
  which zones sell it) passes any ``zones`` filter: the spec layer restricts
  ``regions`` to the zones' regions. ``provider_preference`` only breaks cost ties.
* Spot: ``never`` prices rows on demand; ``only`` prices them at spot (rows without a
  spot price drop out); ``allowed`` makes every row two candidates, one of each kind.
* Topology ``nvlink_domain``: ``count x num_nodes <= nvlink_domain_gpus`` and
  ``num_nodes <= instances_per_domain``. ``zone``/``region``/``any`` are met by putting
  every node in one catalog row: the planner knows no capacity limits, so the cheapest
  row is optimal and a placement is always one row.
* Cost of the work: ``hourly = price x nodes``; ``total = hourly x duration + egress``.
  A training job's ``duration_hours`` is for its ``reference_accelerator`` (default:
  the first requested one); on accelerator X it is ``d x thr(ref) / thr(X)`` with
  ``relative_throughput`` (overridable). Without a duration, totals are for one hour on
  every accelerator (no scaling) and a note says so. ``max_hourly_usd`` caps the hourly
  price of everything placed (the whole gang, or all replicas).
* Egress: with ``workload.data``, ``egress = size_gb x transfer_usd_per_gb(data -> row)``.
* ``accelerator_choice``: ``any_of`` lets every alternative compete on total cost;
  ``ordered`` takes the first alternative with any feasible candidate (cheapest within
  it). Alternatives are always ranked by cost across all accelerator alternatives.
* Resource-level alternatives (``resources.alternatives``, SkyPilot's ``any_of`` and
  ``ordered`` of whole resource overrides): each alternative is planned as its own
  workload with every rule above (a training job's durations keep one reference
  accelerator: the workload's, else the first one any alternative names), and the
  results are merged. Every placement carries ``option``, the index of the alternative
  that produced it. ``any_of``: candidates of all alternatives compete, ranked as above.
  ``ordered``: the first alternative with any feasible candidate holds the choice (its
  cheapest); the ranking is by alternative first, then as above, so a caller that falls
  back down the list follows the user's order. Alternatives never repeat a (provider,
  region, instance_type, pricing) already listed. ``best_by_provider`` uses the same
  order. ``excluded`` lists the providers no alternative can use, with each
  alternative's reason when they differ. Requests without alternatives take the
  single-request path unchanged.
* Service: one replica is ``resources``; ``max(min_replicas, 1)`` replicas are planned,
  all in one row. Spot share ``s`` is ``spot_share`` under ``spot: allowed``, 1 under
  ``only`` and 0 under ``never`` (a note says so if ``spot_share`` was set).
  ``k = round_half_up(replicas x s)`` replicas run on spot, so
  ``hourly = nodes_on_demand x od + nodes_spot x spot`` (rows without a spot price can
  host only ``k = 0``); pricing is SPOT only when every replica is on spot.
* Batch: ``count`` single-node tasks of ``cpus``/``memory_gib``. Tasks per instance =
  ``min(floor(vcpus/cpus), floor(memory/memory_gib))`` (a missing bound is ignored; at
  least 1; exactly 1 when the request has accelerators); ``nodes = ceil(count / tasks
  per instance)``. ``num_nodes`` and ``nvlink_domain`` apply per task.
* Ranking: total, hourly, provider preference, then (provider, region, zone,
  instance_type, pricing) by name. Alternatives keep the best zone per (provider,
  region, instance_type, pricing) and never repeat the choice's key.
* Exclusions: one per catalog provider with no feasible candidate, giving the first
  stage of ``reasons.Stage`` that removed its last candidate.

Speed: the catalog is indexed once (``PlanIndex``). A plan touches only the rows of the
requested accelerator groups above the ``cpus`` bound, with vectorised numpy, and
builds ``Placement`` objects only for the top-k.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from intercloud.catalog import Catalog
from intercloud.catalog.egress import transfer_usd_per_gb
from intercloud.model import (
    AcceleratorChoice,
    BatchJob,
    DataLocation,
    Exclusion,
    Placement,
    PricingKind,
    Service,
    SpotPolicy,
    Topology,
    TrainingJob,
    Workload,
    canonical_accelerator,
    canonical_provider,
    relative_throughput,
)
from intercloud.scheduler import reasons
from intercloud.scheduler.plan_index import F64, I64, Bool, PlanIndex, RowGroup
from intercloud.scheduler.reasons import Stage

_OD = 0
_SPOT = 1
_KIND = (PricingKind.ON_DEMAND, PricingKind.SPOT)
_NS = len(Stage)
_FEASIBLE = int(Stage.FEASIBLE)
_EGRESS_CACHE_MAX = 4096


@dataclass(frozen=True)
class PlanResult:
    """The outcome of planning one workload.

    ``alternatives`` are ranked best-first, exclude the choice and hold at most ``top``
    entries. ``best_by_provider`` holds the cheapest placement of every other provider
    that could take the workload, best first (why each provider lost). ``excluded`` has
    one entry per catalog provider without a feasible candidate. ``feasible_rows``
    counts catalog rows that passed every filter (a row priced both on demand and at spot
    counts once); it is not part of ``to_dict``.
    """

    workload: str
    choice: Placement | None
    alternatives: tuple[Placement, ...] = ()
    best_by_provider: tuple[Placement, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()
    feasible_rows: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "choice": self.choice.to_dict() if self.choice else None,
            "alternatives": [p.to_dict() for p in self.alternatives],
            "best_by_provider": [p.to_dict() for p in self.best_by_provider],
            "excluded": [e.to_dict() for e in self.excluded],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class _Alternative:
    """One requested accelerator configuration and its catalog group (None: absent)."""

    label: str
    group: RowGroup | None
    duration_hours: float


@dataclass(slots=True)
class _Request:
    """What a plan needs from a workload, computed once per ``plan`` call."""

    nodes: int  # instances per placement (training, service); batch computes per row
    gang_nodes: int  # instances that must share one NVLink domain
    kinds: tuple[int, ...]  # pricing kinds each row yields (training, batch)
    service_spot_nodes: int  # service: instances on spot (0: all on demand)
    is_service: bool
    batch_tasks: int  # 0 unless a batch job
    cpus: float | None
    cpus_exact: bool
    memory_gib: float | None
    max_hourly: float | None
    nvlink: bool
    provider_ok: Bool | None  # None: every provider passed the provider-level stages
    instance_type_ok: Bool | None
    region_ok: Bool | None
    region_denied: Bool | None
    zone_ok: Bool | None
    egress_rates: F64 | None  # USD per location code, data size included
    cpu_only: bool  # no accelerators and no instance type: CPU rows only
    by_instance_type: bool  # no accelerators but an instance type: that type's rows


@dataclass(slots=True)
class _Chunks:
    """Feasible candidates gathered from every group and pricing kind."""

    # one entry per chunk (a group priced one way); arrays hold one entry per candidate
    rows: list[I64] = field(default_factory=list)
    hourly: list[F64] = field(default_factory=list)
    total: list[F64] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    alt: list[int] = field(default_factory=list)
    duration: list[float] = field(default_factory=list)
    nodes: list[F64 | int] = field(default_factory=list)  # batch: per candidate


#: Workload fields ``Planner.plan`` never reads (``name`` only labels the result): two
#: workloads equal but for these get the same plan from one planner. A field missing
#: here is part of ``plan_key``, so a new field is safe until it is listed.
PLAN_IGNORES: frozenset[str] = frozenset(
    {
        "name", "tenant", "priority", "setup", "run", "envs", "restart", "workdir",
        "file_mounts", "deadline", "checkpoint_interval_minutes", "max_replicas",
        "target_rps_per_replica",
    }
)  # fmt: skip


_PLAN_FIELDS: dict[type, tuple[str, ...]] = {}


def plan_key(workload: Workload) -> Hashable | None:
    """What ``Planner.plan(workload)`` depends on in ``workload`` (its class and every
    field not in ``PLAN_IGNORES``), for callers that keep plans by it; None when a
    field cannot be hashed."""
    cls = type(workload)
    names = _PLAN_FIELDS.get(cls)
    if names is None:  # ``fields()`` per call would cost as much as the rest
        names = _PLAN_FIELDS[cls] = tuple(
            f.name for f in fields(workload) if f.name not in PLAN_IGNORES
        )
    key = (cls, *[getattr(workload, n) for n in names])
    try:
        hash(key)
    except TypeError:
        return None
    return key


class Planner:
    """Plans workloads over one catalog. Build once (indexes the catalog), plan many times.

    ``throughput`` overrides the bundled per-GPU relative throughput table.
    """

    def __init__(self, catalog: Catalog, throughput: Mapping[str, float] | None = None) -> None:
        self._index = PlanIndex(catalog)
        self._throughput: dict[str, float] | None = dict(throughput) if throughput else None
        for name, value in (self._throughput or {}).items():
            if not value > 0:
                raise ValueError(f"throughput of {name} must be positive, got {value}")
        self._egress_cache: dict[tuple[str, str], F64] = {}

    # ------------------------------------------------------------------ public
    def plan(
        self,
        workload: Workload,
        providers: Collection[str] | None = None,
        top: int = 10,
    ) -> PlanResult:
        """Plan ``workload`` on the ``providers`` enabled (None: all in the catalog).

        See the module docstring for the exact semantics.
        """
        if workload.resources.alternatives:
            return self._plan_alternatives(workload, providers, top)
        ix = self._index
        res = workload.resources
        notes: list[str] = []
        n_prov = len(ix.providers)

        provider_stage = self._provider_stages(workload, providers, notes)
        alts = self._alternatives(workload, notes)
        request = self._request(workload, provider_stage, notes)

        counts = np.zeros(n_prov * _NS, np.int64)
        group_rows = np.zeros(n_prov, np.int64)
        cheapest = np.full(n_prov, np.inf)
        chunks = _Chunks()
        feasible_rows = 0
        seen: set[int] = set()
        for a, alt in enumerate(alts):
            if alt.group is None or id(alt.group) in seen:
                continue
            seen.add(id(alt.group))
            group_rows += alt.group.provider_rows
            feasible_rows += self._evaluate(alt.group, a, alt, request, counts, cheapest, chunks)

        feasible_by_provider = counts.reshape(n_prov, _NS)[:, _FEASIBLE]
        choice, alternatives, by_provider = self._rank(
            workload, alts, chunks, top, request.egress_rates, notes, feasible_by_provider
        )
        excluded = self._exclusions(
            workload,
            alts,
            request,
            provider_stage,
            counts.reshape(n_prov, _NS),
            group_rows,
            cheapest,
        )
        if isinstance(workload, Service) and request.service_spot_nodes and choice is not None:
            replicas = max(workload.min_replicas, 1)
            k = request.service_spot_nodes // max(res.num_nodes, 1)
            notes.append(reasons.replicas_on_spot(k, replicas))
        return PlanResult(
            workload=workload.name,
            choice=choice,
            alternatives=alternatives,
            best_by_provider=by_provider,
            excluded=excluded,
            notes=tuple(notes),
            feasible_rows=feasible_rows,
        )

    # ------------------------------------------------------------------ alternatives
    def _plan_alternatives(
        self, workload: Workload, providers: Collection[str] | None, top: int
    ) -> PlanResult:
        """Plan each of ``resources.alternatives`` alone and merge (module docstring)."""
        res = workload.resources
        ordered = res.alternatives_choice == AcceleratorChoice.ORDERED
        kind = "ordered" if ordered else "any_of"
        ref = None
        if isinstance(workload, TrainingJob):
            firsts = [a.accelerators[0].name for a in res.alternatives if a.accelerators]
            ref = workload.reference_accelerator or (firsts[0] if firsts else None)
        results: list[PlanResult] = []
        for alt in res.alternatives:
            alt = replace(alt, alternatives=())
            if isinstance(workload, TrainingJob):
                sub: Workload = replace(workload, resources=alt, reference_accelerator=ref)
            else:
                sub = replace(workload, resources=alt)
            results.append(self.plan(sub, providers, top))
        pref = {
            canonical_provider(p): i for i, p in reversed(list(enumerate(res.provider_preference)))
        }

        def key(p: Placement) -> tuple[Any, ...]:
            first = (p.option,) if ordered else ()
            return (*first, p.total_usd, p.hourly_usd, pref.get(p.provider, len(pref)),
                    p.provider, p.region, p.zone, p.instance_type, p.pricing.value)  # fmt: skip

        ranked: list[Placement] = []
        losers: list[Placement] = []
        for i, r in enumerate(results):
            if r.choice is not None:
                ranked.append(replace(r.choice, option=i))
            ranked.extend(replace(p, option=i) for p in r.alternatives)
            losers.extend(replace(p, option=i) for p in r.best_by_provider)
        ranked.sort(key=key)
        unique: list[Placement] = []
        seen: set[tuple[str, str, str, str]] = set()
        for p in ranked:
            k = (p.provider, p.region, p.instance_type, p.pricing.value)
            if k not in seen:
                seen.add(k)
                unique.append(p)
        choice = unique[0] if unique else None
        by_provider: dict[str, Placement] = {}
        for p in sorted([*unique, *losers], key=key):
            if choice is not None and p.provider != choice.provider:
                by_provider.setdefault(p.provider, p)
        notes: list[str] = []
        for r in results:
            notes.extend(n for n in r.notes if n not in notes)
        if ordered and choice is not None and choice.option:
            notes.append(reasons.ordered_item_used(choice.option))
        return PlanResult(
            workload=workload.name,
            choice=choice,
            alternatives=tuple(unique[1 : top + 1]),
            best_by_provider=tuple(sorted(by_provider.values(), key=key)),
            excluded=self._merged_exclusions(results, kind),
            notes=tuple(notes),
            feasible_rows=sum(r.feasible_rows for r in results),
        )

    @staticmethod
    def _merged_exclusions(results: list[PlanResult], kind: str) -> tuple[Exclusion, ...]:
        """Providers every alternative excludes; one reason, or each alternative's."""
        per: list[dict[str, str]] = [{e.provider: e.reason for e in r.excluded} for r in results]
        out: list[Exclusion] = []
        for e in results[0].excluded:
            why = [d.get(e.provider) for d in per]
            if any(w is None for w in why):
                continue
            distinct = list(dict.fromkeys(w for w in why if w is not None))
            if len(distinct) == 1:
                out.append(Exclusion(e.provider, distinct[0]))
            else:
                parts = (f"{kind}[{i}]: {w}" for i, w in enumerate(why))
                out.append(Exclusion(e.provider, "; ".join(parts)))
        return tuple(out)

    # ------------------------------------------------------------------ request
    def _provider_stages(
        self, workload: Workload, enabled: Collection[str] | None, notes: list[str]
    ) -> npt.NDArray[np.int8]:
        """Per provider code: the provider-level stage that excludes it, or FEASIBLE."""
        ix = self._index
        res = workload.resources
        stage = np.full(len(ix.providers), _FEASIBLE, np.int8)
        on = None if enabled is None else {canonical_provider(p) for p in enabled}
        allowed = None if res.providers is None else {canonical_provider(p) for p in res.providers}
        denied = {canonical_provider(p) for p in res.deny_providers}
        for code, name in enumerate(ix.providers):
            if on is not None and name not in on:
                stage[code] = Stage.NOT_ENABLED
            elif name in denied:
                stage[code] = Stage.DENIED_PROVIDER
            elif allowed is not None and name not in allowed:
                stage[code] = Stage.NOT_ALLOWED_PROVIDER
        named = (on or set()) | (allowed or set()) | denied
        unknown = sorted(p for p in named if p not in ix.provider_code)
        if unknown:
            notes.append(reasons.unknown_names("providers", unknown))
        return stage

    def _alternatives(self, workload: Workload, notes: list[str]) -> list[_Alternative]:
        ix = self._index
        res = workload.resources
        duration = workload.duration_hours
        if duration is None:
            notes.append(reasons.NO_DURATION)
        if not res.accelerators:
            if res.instance_type:
                codes = ix.instance_type_codes.get(res.instance_type.lower())
                keys = sorted(
                    {
                        k
                        for c in (codes if codes is not None else ())
                        for k in ix.groups_by_instance_type.get(int(c), ())
                    }
                )
                if not keys:
                    notes.append(reasons.unknown_names("instance type", [res.instance_type]))
                return [
                    _Alternative(ix.groups[k].label, ix.groups[k], duration or 1.0) for k in keys
                ]
            return [_Alternative("CPU", ix.groups.get(("", 0)), duration or 1.0)]

        scale = isinstance(workload, TrainingJob) and duration is not None
        ref = ""
        if isinstance(workload, TrainingJob) and scale:
            ref_name = workload.reference_accelerator or res.accelerators[0].name
            ref = canonical_accelerator(ref_name) or ref_name
        out: list[_Alternative] = []
        missing: list[str] = []
        names: set[str] = set()
        for acc in res.accelerators:
            group = ix.group(acc.name, acc.count)
            name = group.accelerator if group else (canonical_accelerator(acc.name) or acc.name)
            names.add(name)
            d = duration or 1.0
            if scale:
                thr = self._throughput
                d = d * relative_throughput(ref, thr) / relative_throughput(name, thr)
            out.append(_Alternative(group.label if group else str(acc), group, d))
            if not any(k[0] == name for k in ix.groups):
                missing.append(acc.name)
        if missing:
            notes.append(reasons.unknown_names("accelerators", missing))
        if scale and len(names | {ref}) > 1:
            notes.append(reasons.scaled_by_throughput(ref))
        return out

    def _request(
        self, workload: Workload, provider_stage: npt.NDArray[np.int8], notes: list[str]
    ) -> _Request:
        ix = self._index
        res = workload.resources
        num_nodes = max(res.num_nodes, 1)
        kinds: tuple[int, ...] = {
            SpotPolicy.NEVER: (_OD,),
            SpotPolicy.ONLY: (_SPOT,),
            SpotPolicy.ALLOWED: (_OD, _SPOT),
        }[res.spot]
        nodes = num_nodes
        spot_nodes = 0
        is_service = isinstance(workload, Service)
        if isinstance(workload, Service):
            replicas = max(workload.min_replicas, 1)
            share = {SpotPolicy.NEVER: 0.0, SpotPolicy.ONLY: 1.0}.get(res.spot, workload.spot_share)
            if res.spot == SpotPolicy.NEVER and workload.spot_share > 0:
                notes.append(reasons.spot_share_ignored(workload.spot_share))
            k = min(replicas, max(0, math.floor(replicas * share + 0.5)))
            nodes = replicas * num_nodes
            spot_nodes = k * num_nodes
            kinds = (_SPOT,) if k == replicas else (_OD,)
        batch_tasks = max(workload.count, 1) if isinstance(workload, BatchJob) else 0
        gang = 1 if isinstance(workload, BatchJob) else num_nodes

        ok = provider_stage == _FEASIBLE
        data = getattr(workload, "data", None)
        return _Request(
            nodes=nodes,
            gang_nodes=gang,
            kinds=kinds,
            service_spot_nodes=spot_nodes,
            is_service=is_service,
            batch_tasks=batch_tasks,
            cpus=res.cpus,
            cpus_exact=res.cpus_exact,
            memory_gib=res.memory_gib,
            max_hourly=res.max_hourly_usd,
            nvlink=res.topology == Topology.NVLINK_DOMAIN,
            provider_ok=None if ok.all() else ok,
            instance_type_ok=(
                ix.lookup(
                    ix.instance_type_codes, len(ix.instance_types), frozenset({res.instance_type})
                )
                if res.instance_type
                else None
            ),
            region_ok=(
                ix.lookup(ix.region_codes, len(ix.regions), res.regions)
                if res.regions is not None
                else None
            ),
            region_denied=(
                ix.lookup(ix.region_codes, len(ix.regions), res.deny_regions)
                if res.deny_regions
                else None
            ),
            zone_ok=(
                ix.lookup(ix.zone_codes, len(ix.zones), res.zones | {""})
                if res.zones is not None
                else None
            ),
            egress_rates=self._egress_rates(data) if isinstance(data, DataLocation) else None,
            cpu_only=not res.accelerators and not res.instance_type,
            by_instance_type=not res.accelerators and bool(res.instance_type),
        )

    def _egress_rates(self, data: DataLocation) -> F64:
        """USD to move ``data`` to each location code of the index."""
        key = (canonical_provider(data.provider), data.region)
        rates = self._egress_cache.get(key)
        if rates is None:
            rates = np.fromiter(
                (transfer_usd_per_gb(key[0], key[1], p, r) for p, r in self._index.location_names),
                np.float64,
                len(self._index.location_names),
            )
            if len(self._egress_cache) >= _EGRESS_CACHE_MAX:
                self._egress_cache.clear()
            self._egress_cache[key] = rates
        return rates * data.size_gb

    # ------------------------------------------------------------------ filter + score
    def _evaluate(
        self,
        g: RowGroup,
        alt_index: int,
        alt: _Alternative,
        rq: _Request,
        counts: I64,
        cheapest: F64,
        out: _Chunks,
    ) -> int:
        """Filter and score one group; add its candidates to ``out`` and its funnel counts.

        Rows below the ``cpus`` bound are never read: they fail at Stage.CPUS, which
        is the first row-level stage, so their count is ``provider_rows`` minus the rows
        seen. Returns the number of feasible rows.
        """
        lo, hi = g.cpu_slice(rq.cpus, rq.cpus_exact)
        n_prov = cheapest.size
        if hi <= lo:
            counts[int(Stage.CPUS) :: _NS] += g.provider_rows
            return 0
        od = g.on_demand[lo:hi]
        sp = g.spot[lo:hi]

        # Hourly price of everything placed, per pricing kind.
        nodes = self._batch_nodes(g, lo, hi, rq) if rq.batch_tasks else rq.nodes
        hourly: list[tuple[int, F64]]
        if rq.is_service:
            n_spot = rq.service_spot_nodes
            h = od * (rq.nodes - n_spot) if rq.nodes > n_spot else None
            if n_spot:
                h = sp * n_spot if h is None else h + sp * n_spot
            assert h is not None
            hourly = [(rq.kinds[0], h)]
        else:
            hourly = [(k, (od if k == _OD else sp) * nodes) for k in rq.kinds]

        # Row-level stages (True = passes), in funnel order.
        stages: list[tuple[int, Bool]] = []
        if rq.provider_ok is not None:
            stages.append((int(Stage.NOT_ENABLED), rq.provider_ok[g.provider[lo:hi]]))
        if rq.memory_gib is not None:
            stages.append((int(Stage.MEMORY), g.memory_gib[lo:hi] >= rq.memory_gib))
        if rq.instance_type_ok is not None:
            stages.append((int(Stage.INSTANCE_TYPE), rq.instance_type_ok[g.instance_type[lo:hi]]))
        if rq.nvlink:
            gpus = g.count * rq.gang_nodes
            stages.append(
                (
                    int(Stage.NVLINK_DOMAIN),
                    (g.domain_gpus[lo:hi] >= gpus)
                    & (g.instances_per_domain[lo:hi] >= rq.gang_nodes),
                )
            )
        if rq.region_ok is not None:
            stages.append((int(Stage.REGION), rq.region_ok[g.region[lo:hi]]))
        if rq.region_denied is not None:
            stages.append((int(Stage.DENIED_REGION), ~rq.region_denied[g.region[lo:hi]]))
        if rq.zone_ok is not None:
            stages.append((int(Stage.ZONE), rq.zone_ok[g.zone[lo:hi]]))
        if (rq.is_service and rq.service_spot_nodes) or rq.kinds == (_SPOT,):
            stages.append((int(Stage.SPOT), g.has_spot[lo:hi]))
        cap_ok: list[Bool] = []
        if rq.max_hourly is not None:
            cap_ok = [h <= rq.max_hourly for _, h in hourly]  # NaN (no spot) compares False
            under = cap_ok[0] if len(cap_ok) == 1 else cap_ok[0] | cap_ok[1]
            stages.append((int(Stage.MAX_HOURLY), under))

        n = hi - lo
        feasible: Bool | None = None
        if stages:
            fail = np.full(n, _FEASIBLE, np.int8)
            for stage, passed in reversed(stages):
                fail[~passed] = stage
            feasible = fail == _FEASIBLE
            seen = np.bincount(g.funnel_base[lo:hi] + fail, minlength=n_prov * _NS)
            counts += seen
            per_provider = seen.reshape(n_prov, _NS).sum(axis=1)
            if rq.max_hourly is not None:
                self._note_cheapest(fail, g.provider[lo:hi], hourly, cheapest)
        else:
            per_provider = np.bincount(g.provider[lo:hi], minlength=n_prov)
            counts[_FEASIBLE::_NS] += per_provider
        counts[int(Stage.CPUS) :: _NS] += g.provider_rows - per_provider

        for j, (kind, h) in enumerate(hourly):
            ok = feasible
            if kind == _SPOT and not rq.is_service and rq.kinds != (_SPOT,):
                spot_ok = g.has_spot[lo:hi]
                ok = spot_ok if ok is None else ok & spot_ok
            if cap_ok:
                ok = cap_ok[j] if ok is None else ok & cap_ok[j]
            if ok is None:
                idx = None
                hk = h
                rows = g.rows[lo:hi]
                loc = g.location[lo:hi]
            else:
                idx = np.flatnonzero(ok)
                if not idx.size:
                    continue
                hk = h[idx]
                rows = g.rows[lo:hi][idx]
                loc = g.location[lo:hi][idx]
            total = hk * alt.duration_hours
            if rq.egress_rates is not None:
                total += rq.egress_rates[loc]
            out.rows.append(rows)
            out.hourly.append(hk)
            out.total.append(total)
            out.kind.append(kind)
            out.alt.append(alt_index)
            out.duration.append(alt.duration_hours)
            if isinstance(nodes, np.ndarray):
                out.nodes.append(nodes if idx is None else nodes[idx])
            else:
                out.nodes.append(nodes)
        return n if feasible is None else int(np.count_nonzero(feasible))

    @staticmethod
    def _batch_nodes(g: RowGroup, lo: int, hi: int, rq: _Request) -> F64:
        """Instances needed per row: ceil(tasks / tasks per instance), as floats."""
        tasks = float(rq.batch_tasks)
        if g.accelerator or not (rq.cpus or rq.memory_gib):
            return np.full(hi - lo, tasks)
        per: F64 | None = None
        if rq.cpus:
            per = g.vcpus[lo:hi] / rq.cpus
        if rq.memory_gib:
            by_mem = g.memory_gib[lo:hi] / rq.memory_gib
            per = by_mem if per is None else np.minimum(per, by_mem, out=per)
        assert per is not None
        np.floor(per, out=per)
        np.maximum(per, 1.0, out=per)
        return np.ceil(np.divide(tasks, per, out=per), out=per)

    @staticmethod
    def _note_cheapest(
        fail: npt.NDArray[np.int8],
        prov: npt.NDArray[np.int32],
        hourly: list[tuple[int, F64]],
        cheapest: F64,
    ) -> None:
        """Cheapest hourly price, per provider, among rows stopped by the hourly cap."""
        at = np.flatnonzero(fail == int(Stage.MAX_HOURLY))
        if not at.size:
            return
        h = hourly[0][1][at]
        if len(hourly) > 1:
            h = np.fmin(h, hourly[1][1][at])
        np.fmin.at(cheapest, prov[at], h)

    # ------------------------------------------------------------------ rank
    def _rank(
        self,
        workload: Workload,
        alts: list[_Alternative],
        ch: _Chunks,
        top: int,
        rates: F64 | None,
        notes: list[str],
        feasible_by_provider: npt.NDArray[np.int64],
    ) -> tuple[Placement | None, tuple[Placement, ...], tuple[Placement, ...]]:
        """The choice, up to ``top`` alternatives and the best of each other provider."""
        if not ch.total:
            return None, (), ()
        ix = self._index
        one = len(ch.total) == 1
        total = ch.total[0] if one else np.concatenate(ch.total)
        rows = ch.rows[0] if one else np.concatenate(ch.rows)
        hourly = ch.hourly[0] if one else np.concatenate(ch.hourly)
        offsets = np.cumsum([0] + [t.size for t in ch.total])
        chunk_kind = np.asarray(ch.kind, np.int64)
        res = workload.resources
        pref = self._preference(res.provider_preference)

        def chunk_of(sel: I64) -> I64:
            found: I64 = np.searchsorted(offsets, sel, side="right") - 1
            return found

        def order(sel: I64) -> tuple[I64, I64]:
            """``sel`` sorted by the ranking key, and the dedup key of each."""
            r = rows[sel]
            kind = chunk_kind[chunk_of(sel)]
            prov = ix.provider[r]
            itype = ix.instance_type[r]
            region = ix.region[r]
            keys = (
                kind,
                ix.instance_type_rank[itype],
                ix.zone_rank[ix.zone[r]],
                ix.region_rank[region],
                ix.provider_rank[prov],
                pref[prov],
                hourly[sel],
                total[sel],
            )
            perm = np.lexsort(keys)
            dedup = (
                (prov.astype(np.int64) * len(ix.regions) + region) * len(ix.instance_types) + itype
            ) * 2 + kind
            return sel[perm], dedup[perm]

        # ORDERED: the first alternative with any candidate holds the choice.
        chosen_alt: int | None = None
        if res.accelerator_choice == AcceleratorChoice.ORDERED and len(alts) > 1:
            chosen_alt = min(ch.alt)
            if chosen_alt > 0:
                notes.append(
                    reasons.ordered_fallback(
                        [a.label for a in alts[:chosen_alt]], alts[chosen_alt].label
                    )
                )

        ranked, ranked_keys = self._top_unique(total, top + 1, order)
        if chosen_alt is not None:
            spans = [
                range(offsets[i], offsets[i + 1]) for i, a in enumerate(ch.alt) if a == chosen_alt
            ]
            sub = np.concatenate([np.arange(s.start, s.stop) for s in spans])
            sub = sub[total[sub] == total[sub].min()]
            best_sorted, best_keys = order(sub)
            best, best_key = int(best_sorted[0]), int(best_keys[0])
        else:
            best, best_key = int(ranked[0]), int(ranked_keys[0])
        others = [int(i) for i, k in zip(ranked, ranked_keys, strict=True) if k != best_key]
        picked = [best, *others[:top]]

        # The best candidate of every other provider that can take the workload, so the
        # user sees why each provider lost (the top-k may all come from one provider).
        def prov_of(sel: I64) -> npt.NDArray[np.int32]:
            out: npt.NDArray[np.int32] = ix.provider[rows[sel]]
            return out

        picked_prov = prov_of(np.asarray(picked, np.int64)).tolist()
        best_prov = picked_prov[0]
        losers: list[int] = []
        missing: list[int] = []
        for code in np.flatnonzero(feasible_by_provider).tolist():
            if code == best_prov:
                continue
            if code in picked_prov:
                losers.append(picked[picked_prov.index(code)])
            else:
                missing.append(code)
        if missing:
            # Candidates with total <= t, t rising through a sample's quantiles, until each
            # missing provider shows up (its cheapest candidate is then among them: exact).
            # When ties make that prefix large, one ufunc.at pass over all is cheaper.
            n = total.size
            sample = np.sort(total[:: max(1, n // 1024)])
            q = 32
            while True:
                if q >= sample.size or (sel := np.flatnonzero(total <= sample[q])).size > n // 8:
                    low = np.full(len(ix.providers), np.inf)
                    every = ix.provider[rows].astype(np.intp)
                    np.minimum.at(low, every, total)
                    sel = np.flatnonzero(total == low[every])
                    sel_prov = prov_of(sel)
                    break
                sel_prov = prov_of(sel)
                seen = np.bincount(sel_prov, minlength=len(ix.providers))
                if all(seen[c] for c in missing):
                    break
                q *= 4
            for code in missing:
                sub = sel[sel_prov == code]
                sub = sub[total[sub] == total[sub].min()]
                losers.append(int(order(sub)[0][0]))
        losers.sort(key=lambda i: (total[i], hourly[i], int(ix.provider[rows[i]])))

        out = self._placements([*picked, *losers], ch, rows, hourly, total, offsets, rates)
        return out[0], tuple(out[1 : len(picked)]), tuple(out[len(picked) :])

    def _placements(
        self,
        picked: list[int],
        ch: _Chunks,
        rows: I64,
        hourly: F64,
        total: F64,
        offsets: I64,
        rates: F64 | None,
    ) -> list[Placement]:
        """Placement objects for candidate indices ``picked`` (plain Python values first)."""
        ix = self._index
        idx = np.asarray(picked, np.int64)
        chunks = (np.searchsorted(offsets, idx, side="right") - 1).tolist()
        row_l = rows[idx].tolist()
        hourly_l = hourly[idx].tolist()
        total_l = total[idx].tolist()
        out: list[Placement] = []
        for i, c, row, h, t in zip(picked, chunks, row_l, hourly_l, total_l, strict=True):
            o = ix.offerings[row]
            nodes = ch.nodes[c]
            n_nodes = int(nodes[i - offsets[c]]) if isinstance(nodes, np.ndarray) else nodes
            gpu = o.accelerator is not None and o.accelerator_count > 0
            out.append(
                Placement(
                    provider=o.provider,
                    region=o.region,
                    zone=o.zone,
                    instance_type=o.instance_type,
                    nodes=n_nodes,
                    accelerator=o.accelerator if gpu else None,
                    accelerator_count=o.accelerator_count if gpu else 0,
                    pricing=_KIND[ch.kind[c]],
                    hourly_usd=h,
                    total_usd=t,
                    duration_hours=ch.duration[c],
                    egress_usd=0.0 if rates is None else float(rates[ix.location[row]]),
                    nvlink_domain_gpus=o.nvlink_domain_gpus,
                    vcpus=o.vcpus,
                    memory_gib=o.memory_gib,
                )
            )
        return out

    @staticmethod
    def _top_unique(
        total: F64, want: int, order: Callable[[I64], tuple[I64, I64]]
    ) -> tuple[I64, I64]:
        """The best candidate of each of the ``want`` best dedup keys, best first.

        Sorts only a prefix of the ranking: every candidate with total <= t, for a
        threshold t estimated from a strided sample so that about ``8 x want`` candidates
        pass. Any such set is a prefix of the full order (ties at t included), so its
        first occurrences are exact; t grows until the prefix holds ``want`` keys.
        """
        n = total.size
        m = max(8 * want, 64)
        stride = max(1, n // 1024)
        sample = total[::stride]
        while True:
            k = m // stride
            if m >= n or k >= sample.size:
                sel = np.arange(n)
            else:
                t = np.partition(sample, k)[k]
                sel = np.flatnonzero(total <= t)
            ranked, keys = order(sel)
            _, first = np.unique(keys, return_index=True)
            if first.size >= want or sel.size >= n:
                first.sort()
                first = first[:want]
                return ranked[first], keys[first]
            m *= 4

    def _preference(self, preference: tuple[str, ...]) -> npt.NDArray[np.int32]:
        """Per provider code: its position in ``preference`` (unlisted: after all listed)."""
        ix = self._index
        pref = np.full(len(ix.providers), len(preference), np.int32)
        for pos, name in reversed(list(enumerate(preference))):
            code = ix.provider_code.get(canonical_provider(name))
            if code is not None:
                pref[code] = pos
        return pref

    # ------------------------------------------------------------------ exclusions
    def _exclusions(
        self,
        workload: Workload,
        alts: list[_Alternative],
        rq: _Request,
        provider_stage: npt.NDArray[np.int8],
        counts: npt.NDArray[np.int64],
        group_rows: I64,
        cheapest: F64,
    ) -> tuple[Exclusion, ...]:
        ix = self._index
        res = workload.resources
        reached = _NS - 1 - np.argmax(counts[:, ::-1] > 0, axis=1)
        out: list[Exclusion] = []
        for code, name in enumerate(ix.providers):
            stage = int(provider_stage[code])
            if stage == _FEASIBLE:
                stage = int(Stage.ACCELERATOR) if group_rows[code] == 0 else int(reached[code])
            if stage == _FEASIBLE:
                continue
            out.append(
                Exclusion(
                    name, self._reason(Stage(stage), code, alts, rq, res.instance_type, cheapest)
                )
            )
        return tuple(out)

    def _reason(
        self,
        stage: Stage,
        code: int,
        alts: list[_Alternative],
        rq: _Request,
        instance_type: str | None,
        cheapest: F64,
    ) -> str:
        ix = self._index
        labels = [a.label for a in alts]
        if stage == Stage.NOT_ENABLED:
            return reasons.NOT_ENABLED
        if stage == Stage.DENIED_PROVIDER:
            return reasons.DENIED_PROVIDER
        if stage == Stage.NOT_ALLOWED_PROVIDER:
            return reasons.NOT_ALLOWED_PROVIDER
        if stage == Stage.ACCELERATOR:
            if rq.by_instance_type:
                return reasons.no_instance_type(instance_type or "")
            if rq.cpu_only:
                return reasons.no_accelerator([], ())
            return reasons.no_accelerator(labels, ix.provider_configs[code])
        if stage == Stage.CPUS:
            return reasons.too_few_cpus(rq.cpus or 0.0, rq.cpus_exact)
        if stage == Stage.MEMORY:
            return reasons.too_little_memory(rq.memory_gib or 0.0)
        if stage == Stage.INSTANCE_TYPE:
            return reasons.no_instance_type(instance_type or "")
        if stage == Stage.NVLINK_DOMAIN:
            mine = [a.group for a in alts if a.group is not None and a.group.provider_rows[code]]
            largest = max((int(g.provider_max_domain[code]) for g in mine), default=0)
            first = mine[0] if mine else None
            gpus = first.count * rq.gang_nodes if first else 0
            label = first.label if first else " or ".join(labels)
            return reasons.no_nvlink_domain(gpus, label, largest)
        if stage == Stage.REGION:
            return reasons.NO_REGION
        if stage == Stage.DENIED_REGION:
            return reasons.DENIED_REGION
        if stage == Stage.ZONE:
            return reasons.NO_ZONE
        if stage == Stage.SPOT:
            return reasons.no_spot(" or ".join(labels))
        if stage == Stage.MAX_HOURLY:
            return reasons.over_budget(rq.max_hourly or 0.0, float(cheapest[code]))
        raise AssertionError(f"no reason for stage {stage!r}")
