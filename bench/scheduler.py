"""Fleet scheduler benchmark: decisions/s and latency on a 500k-GPU fleet held >= 85%
allocated, fragmentation, and the greedy batch path's cost against the MILP optimum.

    .venv/bin/python bench/scheduler.py [--quick] [--json] [--no-results] [--gpus N]

Fleet: ``intercloud.twin.fleets.synthetic_fleet`` (4 providers, >= 40 regions, HGX 8-GPU
and GB200 NVL72 pools at bundled-catalog prices; reserved under contracts, on-demand and
spot) and 100 ``synthetic_tenants`` with weights, guarantees and budgets.

Job mix: sizes and durations sampled jointly (row by row, with replacement) from the
Alibaba GPU cluster trace ``traces/alibaba_openb_v2023/openb_pod_list_default.csv``
(8,152 pods, FGD ATC'23; GPU pods with a positive run time; duration = deletion -
creation). Mapping to node shapes (one trace GPU becomes one 8-GPU server, so the mix
keeps the trace's proportions at fleet scale):

* a GPU-sharing pod (1 GPU, ``gpu_milli`` m < 1000) -> ceil(8 m / 1000) GPUs on one node;
* a pod of g whole GPUs -> 8 g GPUs: g HGX servers of 8 GPUs (g = 1, 2, 4, 8: 8 to 64 GPUs);
* each job goes to the HGX family or to the GB200 NVL72 family in proportion to their
  capacity; on NVL72 (4 GPUs a node) G GPUs are ceil(G / 4) nodes, a 64-GPU job becomes
  a whole 72-GPU rack (18 x 4), and gangs of 32 GPUs or more ask for one NVLink domain
  (topology ``nvlink_domain``);
* HGX jobs accept one accelerator type drawn by capacity, half of them a second one;
  40% allow spot, 5% want only spot; priorities 0/1/2 (75/20/5%); tenants by weight.

Phases:

1. fill: arrivals are scheduled until the fleet is >= 85% allocated (not measured);
2. measured: completions (earliest end first) and arrivals interleave; after each event
   one scheduling cycle calls the core ``Scheduler``; PLACE and PREEMPT decisions count
   (HOLD and REJECT do not); allocation is sampled every cycle and must stay >= 85%;
3. cost: batches of 1,000 jobs on a fleet whose cheapest pools hold at most half of the
   demand and where at least one diversification cap binds; ``greedy_batch`` (the core's
   fast path: cost plan, then queue order; and without the plan) and ``solve_batch``
   (MILP) run on identical inputs; ratio = greedy cost / MILP cost. The cap binds for the
   greedy's one-by-one check; the full run adds batches where it binds at the MILP's
   optimum too (``run_cost``'s ``tight``).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, append_results, machine
from intercloud.model import Contract, PricingKind, SpotPolicy, Topology
from intercloud.scheduler.core import Scheduler, requeue
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.optimizer.milp import (
    BatchAssignment,
    FleetUsage,
    greedy_batch,
    solve_batch,
)
from intercloud.scheduler.placement.fragmentation import fragmentation
from intercloud.scheduler.requests import DecisionKind, GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger
from intercloud.twin.fleets import fleet_summary, synthetic_fleet, synthetic_tenants
from intercloud.twin.traces import read_trace

SHARED = REPO.parent / "shared" / "data"
TRACE_FORMAT = "alibaba_openb"
TRACE_FILE = "traces/alibaba_openb_v2023/openb_pod_list_default.csv"
TARGET_ALLOC = 0.85
FILL_TO = 0.90
# The simulated clock is POSIX seconds from this date (contracts run 2026-2029).
NOW0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()


# ---------------------------------------------------------------------- job mix
@dataclass(frozen=True, slots=True)
class TraceSample:
    gpus: int
    share: float
    duration_s: float


def load_trace(path: Path) -> list[TraceSample]:
    """GPU jobs of the trace with a positive duration."""
    out = []
    for j in read_trace(path, TRACE_FORMAT):
        if j.gpus >= 1 and j.duration is not None and j.duration > 0:
            out.append(TraceSample(j.gpus, j.gpu_share, j.duration))
    return out


def percentile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))] if s else math.nan


class JobMaker:
    """Gang requests drawn from the trace with the mapping in the module docstring."""

    def __init__(
        self,
        samples: Sequence[TraceSample],
        pools: Sequence[PoolSpec],
        tenants: Sequence[TenantSpec],
        seed: int,
    ) -> None:
        self.rng = random.Random(seed)
        self.samples = list(samples)
        hgx: dict[str, int] = {}
        nvl = 0
        for p in pools:
            if p.accelerator is None:
                continue
            if p.nodes_per_domain > 1:
                nvl += p.max_gpus
            else:
                hgx[p.accelerator] = hgx.get(p.accelerator, 0) + p.max_gpus
        self.nvl_share = nvl / max(1, nvl + sum(hgx.values()))
        self.nvl_acc = sorted({p.accelerator or "" for p in pools if p.nodes_per_domain > 1})
        self.hgx_acc = sorted(hgx)
        self.hgx_cum = self._cum([hgx[a] for a in self.hgx_acc])
        self.tenants = [t.name for t in tenants]
        self.tenant_cum = self._cum([t.weight for t in tenants])
        self.next_id = 0
        self.counts = {"jobs": 0, "nvl72_rack_gangs": 0, "multi_node": 0, "partial_node": 0}

    @staticmethod
    def _cum(ws: Sequence[float]) -> list[float]:
        out, acc = [], 0.0
        for w in ws:
            acc += w
            out.append(acc)
        return out

    def _pick(self, cum: Sequence[float]) -> int:
        return bisect.bisect_right(cum, self.rng.random() * cum[-1])

    def make(self, now_s: float) -> GangRequest:
        r = self.rng
        s = self.samples[r.randrange(len(self.samples))]
        sharing = s.gpus == 1 and s.share < 1.0
        gpus = max(1, math.ceil(8 * s.share)) if sharing else 8 * s.gpus
        topology = Topology.ANY
        if self.nvl_acc and r.random() < self.nvl_share:
            accs: tuple[str, ...] = (self.nvl_acc[0],)
            if gpus >= 64:
                gpus = 72
            nodes, gpn = (1, gpus) if gpus <= 4 else (math.ceil(gpus / 4), 4)
            if gpus >= 32:
                topology = Topology.NVLINK_DOMAIN
        else:
            a = self.hgx_acc[self._pick(self.hgx_cum)]
            accs = (a,)
            if r.random() < 0.5:
                b = self.hgx_acc[self._pick(self.hgx_cum)]
                if b != a:
                    accs = (a, b)
            nodes, gpn = (1, gpus) if gpus <= 8 else (gpus // 8, 8)
        x = r.random()
        spot = SpotPolicy.ONLY if x < 0.05 else SpotPolicy.ALLOWED if x < 0.45 else SpotPolicy.NEVER
        if spot is SpotPolicy.ONLY and topology is Topology.NVLINK_DOMAIN:
            spot = SpotPolicy.ALLOWED  # the catalog sells no GB200 spot
        y = r.random()
        prio = 2 if y < 0.05 else 1 if y < 0.25 else 0
        job_id = self.next_id
        self.next_id += 1
        c = self.counts
        c["jobs"] += 1
        c["nvl72_rack_gangs"] += nodes * gpn == 72
        c["multi_node"] += nodes > 1
        c["partial_node"] += nodes == 1 and gpn < (4 if topology is Topology.NVLINK_DOMAIN else 8)
        return GangRequest(
            job_id=job_id,
            tenant=self.tenants[self._pick(self.tenant_cum)],
            nodes=nodes,
            gpus_per_node=gpn,
            accelerators=accs,
            priority=prio,
            submit_s=now_s,
            topology=topology,
            spot=spot,
            duration_s=s.duration_s,
            preemptible=prio < 2,
        )


# ---------------------------------------------------------------------- phases
def build(
    total_gpus: int, seed: int
) -> tuple[list[PoolSpec], list[Contract], list[TenantSpec], dict[str, Any]]:
    t = time.perf_counter()
    pools, contracts = synthetic_fleet(total_gpus, seed)
    tenants = synthetic_tenants(100, seed, pools)
    info: dict[str, Any] = dict(fleet_summary(pools))
    info["contracts"] = len(contracts)
    info["tenants"] = len(tenants)
    info["fleet_build_s"] = round(time.perf_counter() - t, 3)
    return pools, contracts, tenants, info


# ---------------------------------------------------------------------- throughput
QUEUE_LIMIT = 256
EVENTS_PER_CYCLE = 64


def run_throughput(
    pools: Sequence[PoolSpec],
    contracts: Sequence[Contract],
    tenants: Sequence[TenantSpec],
    samples: Sequence[TraceSample],
    seed: int,
    quick: bool,
    cost_plan: bool = True,
) -> dict[str, Any] | str:
    cycles = int(os.environ.get("BENCH_CYCLES", 150 if quick else 2_000))
    capacity = sum(p.max_gpus for p in pools)
    by_type: dict[str, int] = {}
    for p in pools:
        if p.accelerator:
            by_type[p.accelerator] = by_type.get(p.accelerator, 0) + p.max_gpus
    state = FleetState(pools, now_s=NOW0)
    ledger = TenantLedger(tenants, by_type)
    sched = Scheduler(
        queue_order="fair_share",
        ledger=ledger,
        costs=PoolCosts(pools, contracts),
        caps=DiversificationCaps(0.4),
        cost_plan=cost_plan,
    )
    maker = JobMaker(samples, pools, tenants, seed + 3)
    ends: list[tuple[float, int]] = []
    durations: dict[int, float] = {}
    now = NOW0
    PLACE, PREEMPT = DecisionKind.PLACE, DecisionKind.PREEMPT

    def apply(decisions: Sequence[Any], queue: list[GangRequest]) -> tuple[int, int]:
        placed = preempted = 0
        done: set[int] = set()
        for d in decisions:
            if d.kind is PLACE:
                placed += 1
                done.add(d.job_id)
                heapq.heappush(ends, (now + durations[d.job_id], d.job_id))
            elif d.kind is PREEMPT:
                preempted += 1
            elif d.kind is DecisionKind.REJECT:
                done.add(d.job_id)
        if done:
            queue[:] = [r for r in queue if r.job_id not in done]
        if preempted:
            queue.extend(requeue(state, decisions))
        return placed, preempted

    def new_job() -> GangRequest:
        r = maker.make(now)
        durations[r.job_id] = r.duration_s or 3600.0
        return r

    # (a) fill to FILL_TO allocated: arrivals at the start, scheduled in cycles of 1,000
    t = time.perf_counter()
    queue: list[GangRequest] = []
    stalls = 0
    while state.allocated_gpus() < FILL_TO * capacity and stalls < 5:
        queue.extend(new_job() for _ in range(1000))
        before = state.allocated_gpus()
        apply(sched.schedule(state, queue, now), queue)
        queue = queue[-QUEUE_LIMIT:]
        stalls = stalls + 1 if state.allocated_gpus() - before < 100 else 0
    fill_s = time.perf_counter() - t
    fill_alloc = state.allocated_gpus() / capacity
    fill_jobs = maker.counts["jobs"]
    if fill_alloc < TARGET_ALLOC:
        return f"fill stalled at {100 * fill_alloc:.1f}% allocated (< 85%): not measured"

    # (b) measured: EVENTS_PER_CYCLE completions (earliest end first) interleaved with
    # arrivals, then one cycle. Each gang's turn inside the cycle (``Scheduler._one``) is
    # timed on its own: the latency of a decision is the time of the turn that made it.
    lat: list[float] = []
    hold_lat: list[float] = []
    orig_one = Scheduler._one

    def timed_one(self: Any, st: Any, r: Any, cyc: Any, out: list[Any]) -> None:
        before = len(out)
        t0 = time.perf_counter_ns()
        orig_one(self, st, r, cyc, out)
        ms = (time.perf_counter_ns() - t0) / 1e6
        made = sum(1 for d in out[before:] if d.kind is PLACE or d.kind is PREEMPT)
        (lat if made else hold_lat).append(ms)

    plan_ms: list[float] = []
    orig_plan = Scheduler._plan

    def timed_plan(self: Any, *a: Any) -> None:
        t0 = time.perf_counter_ns()
        orig_plan(self, *a)
        plan_ms.append((time.perf_counter_ns() - t0) / 1e6)

    Scheduler._one = timed_one  # type: ignore[method-assign,assignment]
    Scheduler._plan = timed_plan  # type: ignore[method-assign,assignment]
    sched_ns = 0
    n_place = n_preempt = arrivals = completions = 0
    alloc_min, alloc_sum = 1.0, 0.0
    t = time.perf_counter()
    try:
        for _ in range(cycles):
            for _ in range(EVENTS_PER_CYCLE):
                while ends:
                    end, job = heapq.heappop(ends)
                    a = state.allocations.get(job)
                    if a is not None and a.start_s + durations[job] == end:
                        now = max(now, end)
                        sched.finished(state, job, now)
                        completions += 1
                        break
                alloc = state.allocated_gpus() / capacity
                k = 2 if alloc < FILL_TO else 1
                queue.extend(new_job() for _ in range(k))
                arrivals += k
            t0 = time.perf_counter_ns()
            decisions = sched.schedule(state, queue, now)
            sched_ns += time.perf_counter_ns() - t0
            placed, preempted = apply(decisions, queue)
            if len(queue) > QUEUE_LIMIT:
                del queue[: len(queue) - QUEUE_LIMIT]  # the oldest waiting jobs give up
            n_place += placed
            n_preempt += preempted
            alloc = state.allocated_gpus() / capacity
            alloc_min = min(alloc_min, alloc)
            alloc_sum += alloc
    finally:
        Scheduler._one = orig_one  # type: ignore[method-assign]
        Scheduler._plan = orig_plan  # type: ignore[method-assign]
    wall = time.perf_counter() - t
    mix = [maker.make(now) for _ in range(500)]
    frag = fragmentation(state, mix)
    decisions_n = n_place + n_preempt
    return {
        "cycles": cycles,
        "decisions": decisions_n,
        "place": n_place,
        "preempt": n_preempt,
        "decisions_per_s": decisions_n / (sched_ns / 1e9) if sched_ns else math.nan,
        "decisions_per_s_wall": decisions_n / wall if wall else math.nan,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "max_ms": max(lat, default=math.nan),
        "alloc_min": alloc_min,
        "alloc_mean": alloc_sum / cycles,
        "fragmentation": round(frag.ratio, 4),
        "fragmentation_detail": {
            "free_gpus": frag.free_gpus,
            "stranded_gpus": frag.stranded_gpus,
            "unwanted_gpus": frag.unwanted_gpus,
            "whole_free_domains": frag.whole_free_domains,
        },
        "fill_alloc": fill_alloc,
        "fill_jobs": fill_jobs,
        "fill_s": round(fill_s, 2),
        "arrivals": arrivals,
        "completions": completions,
        "held_end": len(queue),
        "running_end": len(state.allocations),
        "wall_s": round(wall, 2),
        "sched_s": round(sched_ns / 1e9, 2),
        "mix": dict(maker.counts),
        "hold_p99_ms": percentile(hold_lat, 99),
        "plan_ms_p50": percentile(plan_ms, 50),
        "plan_ms_p99": percentile(plan_ms, 99),
        "holds": len(hold_lat),
        "latency_note": (
            f"Cycles: {EVENTS_PER_CYCLE} completions interleaved with as many arrivals (two "
            "per completion while below 90%), then one `Scheduler.schedule` call over the "
            "queue (fair-share order, tenant ledger, PoolCosts, caps 40%). Latency: each "
            "gang's turn in the cycle is timed on its own (a wrapper around "
            "`Scheduler._one`); a PLACE, or the PREEMPTs and PLACE of one gang, count the "
            "whole turn; the cost plan runs once per cycle before the turns (its time per "
            "cycle is reported apart). decisions/s = decisions / time inside `schedule` "
            "(holds, queue ordering and the cost plan included). "
            f"At most {QUEUE_LIMIT} jobs wait; older ones give up."
        ),
    }


# ---------------------------------------------------------------------- cost ratio
@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to stderr for a while (C libraries print there)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


CAP_SHARE = 0.35


def _batch_inputs(
    pools: Sequence[PoolSpec],
    costs: Any,
    requests: Sequence[GangRequest],
    rng: random.Random,
    now_s: float,
) -> tuple[Any, Any, float]:
    """Free GPUs and whole free NVLink domains per pool for one batch: reserved pools (the
    cheapest: marginal cost zero) hold 40% of the batch's GPUs in all, spread over a
    random third of them; a random 30% of the other pools have 5-25% of their quota free
    (whole racks for NVL72 pools), the rest are full. Returns ``(free_gpus,
    free_domains, reserved share of the demand)``."""
    import numpy as np

    demand = sum(r.gpus for r in requests)
    n = len(pools)
    free = np.zeros(n, np.float64)
    domains = np.zeros(n, np.float64)
    reserved = [i for i, p in enumerate(pools) if p.pricing is PricingKind.RESERVED]
    chosen = rng.sample(reserved, max(1, len(reserved) // 3))
    budget = int(0.4 * demand)
    weights = [rng.random() for _ in chosen]
    total_w = sum(weights)
    for i, w in zip(chosen, weights, strict=True):
        p = pools[i]
        unit = p.domain_gpus
        free[i] = min(p.max_gpus, (int(budget * w / total_w) // unit) * unit)
    for i, p in enumerate(pools):
        if p.pricing is PricingKind.RESERVED or rng.random() >= 0.3:
            continue  # at 85% allocated most pools are full
        unit = p.domain_gpus
        free[i] = (int(p.max_gpus * rng.uniform(0.05, 0.25)) // unit) * unit
    for i, p in enumerate(pools):
        domains[i] = free[i] // p.domain_gpus if p.nodes_per_domain > 1 else free[i]
    return free, domains, float(free[reserved].sum()) / max(1, demand)


def _usd(a: BatchAssignment) -> float:
    """The batch objective: USD per hour of everything placed."""
    return float(a.usd_per_hour)


def run_cost(
    pools: Sequence[PoolSpec],
    contracts: Sequence[Any],
    tenants: Sequence[TenantSpec],
    samples: Sequence[TraceSample],
    seed: int,
    quick: bool,
    tight: bool = False,
) -> dict[str, Any] | str:
    """Greedy against MILP on batches (module docstring). The provider that the
    uncapped greedy grows most gets half that growth as headroom. Default: the headroom
    as the one-by-one check of the fast path sees it (``G`` fixed): the cap binds for
    the greedy, while the MILP, which counts the batch's own GPUs in ``G + T``, may find
    it slack on large batches. ``tight``: the headroom counted in ``G + T`` (with the
    planned greedy's ``T``), so that the cap binds at the optimum too."""
    n_batches, size = (2, 250) if quick else (3, 1000)
    time_limit = 8.0 if quick else 60.0
    costs = PoolCosts(pools, contracts)
    caps = DiversificationCaps(CAP_SHARE)
    rng = random.Random(seed + 7)
    maker = JobMaker(samples, pools, tenants, seed + 11)
    capacity = sum(p.max_gpus for p in pools)
    batches: list[dict[str, Any]] = []
    for b in range(n_batches):
        requests = [maker.make(NOW0) for _ in range(size)]
        free, domains, cheap_share = _batch_inputs(pools, costs, requests, rng, NOW0)
        # The fleet before the batch: 85% allocated; capped GPUs per provider in
        # proportion to its non-reserved capacity.
        total = TARGET_ALLOC * capacity
        nonres: dict[str, float] = {}
        for p in pools:
            if p.pricing is not PricingKind.RESERVED:
                nonres[p.provider] = nonres.get(p.provider, 0.0) + p.max_gpus
        scale = 0.5 * total / sum(nonres.values())
        capped = {k: v * scale for k, v in nonres.items()}
        usable = free > 0
        free_run = greedy_batch(
            requests, costs, free, domains, now_s=NOW0, usable=usable, cost_plan=tight
        )
        grow: dict[str, float] = {}
        for r, pid in zip(requests, free_run.pool.tolist(), strict=True):
            if pid >= 0 and pools[pid].pricing is not PricingKind.RESERVED:
                grow[pools[pid].provider] = grow.get(pools[pid].provider, 0.0) + r.gpus
        top = max(grow, key=lambda k: grow[k])
        if tight:
            t_est = float(free_run.placed_gpus)
            capped[top] = CAP_SHARE * (total + t_est) - 0.5 * grow[top]
        else:
            capped[top] = CAP_SHARE * total - (1 - CAP_SHARE) * 0.5 * grow[top]
        usage = FleetUsage(total_gpus=total, capped_gpus=capped)
        kw: dict[str, Any] = {"now_s": NOW0, "caps": caps, "usage": usage, "usable": usable}
        g = greedy_batch(requests, costs, free, domains, **kw)
        g_plain = greedy_batch(requests, costs, free, domains, cost_plan=False, **kw)
        with _quiet_stdout():  # HiGHS prints a banner on stdout when it starts
            m = solve_batch(requests, costs, free, domains, time_limit_s=time_limit, **kw)
        binding = []
        for prov in sorted(nonres):
            x = sum(
                r.gpus
                for r, pid in zip(requests, m.pool.tolist(), strict=True)
                if pid >= 0
                and pools[pid].provider == prov
                and pools[pid].pricing is not PricingKind.RESERVED
            )
            t_batch = float(sum(r.gpus for r, pid in zip(requests, m.pool.tolist(), strict=True)
                                if pid >= 0))  # fmt: skip
            limit = CAP_SHARE * (total + t_batch) - capped[prov]
            if x > 0 and limit - x < 72:  # within one rack of the cap
                binding.append(prov)
        uncapped_excess = grow[top] > caps.headroom(top, capped[top], total)
        batches.append(
            {
                "batch": b + 1,
                "jobs": len(requests),
                "demand_gpus": sum(r.gpus for r in requests),
                "cheap_share": round(cheap_share, 4),
                "binding_caps": ", ".join(binding) or f"{top} (greedy; slack at the optimum)"
                if uncapped_excess
                else "none",
                "capped_provider": top,
                "greedy_usd": round(_usd(g), 2),
                "milp_usd": round(_usd(m), 2),
                "greedy_placed_gpus": g.placed_gpus,
                "milp_placed_gpus": m.placed_gpus,
                "ratio": _usd(g) / _usd(m) if _usd(m) > 0 else math.nan,
                "ratio_queue_order": _usd(g_plain) / _usd(m) if _usd(m) > 0 else math.nan,
                "queue_order_usd": round(_usd(g_plain), 2),
                "greedy_ms": g.solve_s * 1000,
                "milp_s": m.solve_s,
                "milp_status": m.status,
                "milp_gap": m.gap,
            }
        )
    # A batch whose MILP stopped at the time limit has no proven optimum (the solver
    # starts from the greedy answer): its ratio is a lower bound, not a measurement.
    proven = [b for b in batches if b["milp_status"] == "optimal"]
    if not proven:
        return (
            f"not measured: the MILP reached no proven optimum within {time_limit:.0f} s on "
            f"any of {n_batches} batches of {size} jobs (statuses: "
            + ", ".join(f"{b['milp_status']} gap {b['milp_gap']:.3g}" for b in batches)
            + "); greedy / best MILP answer: "
            + ", ".join(f"{b['ratio']:.4f}" for b in batches)
        )
    ratios = [b["ratio"] for b in proven]
    return {
        "batches": batches,
        "cost_ratio_vs_milp": max(ratios),
        "cost_ratio_mean": statistics.fmean(ratios),
        "cost_ratio_queue_order": max(b["ratio_queue_order"] for b in proven),
        "milp_s_mean": statistics.fmean(b["milp_s"] for b in batches),
        "note": (
            f"{n_batches} batches of {size} jobs"
            f"{' (--quick: fewer, smaller batches than the 1,000 asked for)' if quick else ''}; "
            f"caps: every provider at most {CAP_SHARE:.0%} of the fleet's GPUs (reserved "
            "exempt); fleet 85% allocated before each batch; MILP time limit "
            f"{time_limit:.0f} s (status: {', '.join(sorted({b['milp_status'] for b in batches}))}"
            "); "
            "placed GPUs greedy / MILP: "
            + "; ".join(f"{b['greedy_placed_gpus']:,} / {b['milp_placed_gpus']:,}" for b in batches)
            + ". greedy = the core's default fast path: the cost plan (``cost.plan``) then "
            "queue order; without the plan (queue order, cheapest first) the worst ratio is "
            + f"{max(b['ratio_queue_order'] for b in proven):.4f}."
        ),
    }


# ---------------------------------------------------------------------- report
def fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return "-"
    return format(v, spec) if spec else str(v)


def _throughput_row(label: str, t: dict[str, Any]) -> str:
    return (
        f"| {label} | {t['decisions']:,} "
        f"| {t['place']:,} / {t['preempt']:,} | {t['decisions_per_s']:,.0f} "
        f"| {t['p50_ms']:.4f} | {t['p99_ms']:.4f} | {t['max_ms']:.3f} "
        f"| {100 * t['alloc_min']:.1f}% / {100 * t['alloc_mean']:.1f}% "
        f"| {fmt(t['fragmentation'])} |"
    )


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    f = res["fleet"]
    lines = [
        f"## scheduler — {res['date']}",
        "",
        f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"git {m['git']}, load average at start {m['load']}, at end {res['load_end']}"
        f"{' (quick)' if res['quick'] else ''}.",
        "",
        f"Fleet: {f['gpus']:,} GPUs, {f['nodes']:,} nodes, {f['pools']} pools, "
        f"{f['providers']} providers, {f['regions']} regions, {f['zones']} zones, "
        f"{f['nvl72_domains']:,} NVL72 domains; reserved / on-demand / spot GPUs "
        f"{f['reserved_gpus']:,} / {f['on_demand_gpus']:,} / {f['spot_gpus']:,}; "
        f"{f['contracts']} contracts, {f['tenants']} tenants; built in {f['fleet_build_s']} s.",
        "",
        f"Job mix: `{res['trace']}` ({res['trace_jobs']:,} GPU jobs with a run time; "
        "sizes and durations sampled jointly; one trace GPU = one 8-GPU server, "
        "NVL72 jobs in one NVLink domain, 64-GPU NVL72 jobs as whole 72-GPU racks).",
        "",
    ]
    t = res["throughput"]
    if isinstance(t, str):
        lines.append(f"Throughput: {t}")
    else:
        lines += [
            "| phase | decisions | place / preempt | decisions/s | p50 ms | p99 ms | max ms "
            "| allocated min / mean | fragmentation |",
            "|---|---|---|---|---|---|---|---|---|",
            _throughput_row(f"measured ({t['cycles']:,} cycles)", t),
        ]
        for label, key in (
            ("same, `cost_plan=False`", "throughput_without_plan"),
            ("same, pure-Python `FleetState`", "throughput_pure_python"),
        ):
            other = res.get(key)
            if isinstance(other, dict):
                lines.append(_throughput_row(label, other))
        lines += [
            "",
            f"Fill to {100 * t['fill_alloc']:.1f}% allocated: {t['fill_jobs']:,} jobs "
            f"in {t['fill_s']} s. Measured phase: {t['arrivals']:,} arrivals, "
            f"{t['completions']:,} completions, {t['held_end']:,} jobs waiting at the end; "
            f"wall {t['wall_s']} s (scheduler calls {t['sched_s']} s). {t['latency_note']} "
            f"Cost plan per cycle: p50 {t['plan_ms_p50']:.2f} ms, p99 {t['plan_ms_p99']:.2f} ms.",
        ]
    for title, c in (
        ("", res["cost"]),
        (
            "Cap binding at the optimum too (headroom counted in G + T, as the MILP does):",
            res.get("cost_cap_binding_at_optimum"),
        ),
    ):
        if c is None:
            continue
        lines.append("")
        if title:
            lines += [title, ""]
        if isinstance(c, str):
            lines.append(f"Cost ratio: {c}")
            continue
        lines += [
            "| batch | jobs | demand GPUs | cheapest pools hold | binding caps | greedy USD/h "
            "| MILP USD/h | ratio | without plan | greedy ms | MILP s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for b in c["batches"]:
            lines.append(
                f"| {b['batch']} | {b['jobs']:,} | {b['demand_gpus']:,} "
                f"| {100 * b['cheap_share']:.0f}% | {b['binding_caps']} "
                f"| {b['greedy_usd']:,.0f} | {b['milp_usd']:,.0f} | {b['ratio']:.4f} "
                f"| {b['ratio_queue_order']:.4f} | {b['greedy_ms']:.1f} | {b['milp_s']:.2f} |"
            )
        lines.append("")
        lines.append(
            f"Cost ratio (greedy / MILP, worst batch): {c['cost_ratio_vs_milp']:.4f}. {c['note']}"
        )
    s = res["summary"]
    lines += [
        "",
        f"Goals (default scheduler, cost plan on): >= 100,000 decisions/s: "
        f"{fmt(s['decisions_per_s'], ',.0f')}; p99 <= 1 ms: {fmt(s['p99_ms'], '.4f')}; cost "
        f"ratio <= 1.01: {fmt(s['cost_ratio_vs_milp'], '.4f')}. Without the plan: "
        f"{fmt(s['decisions_per_s_without_plan'], ',.0f')} decisions/s, cost ratio "
        f"{fmt(s['cost_ratio_without_plan'], '.4f')}. With the cap binding at the optimum: "
        f"{fmt(s['cost_ratio_cap_binding_at_optimum'], '.4f')}. Pure-Python `FleetState` "
        f"(the compiled `_fleetc` module set aside): "
        f"{fmt(s['decisions_per_s_pure_python'], ',.0f')} decisions/s, same decisions as "
        f"the compiled path: {s['pure_python_same_decisions']}.",
    ]
    return "\n".join(lines) + "\n"


def pure_throughput(*args: Any) -> dict[str, Any] | str:
    """``run_throughput`` again with ``FleetState``'s compiled module set aside (the path
    a machine without a C compiler runs), for the side-by-side the issue asks for."""
    if FleetState._native is None:
        return "compiled module not built here: every run above is pure Python"
    native, FleetState._native = FleetState._native, None
    try:
        return run_throughput(*args)
    finally:
        FleetState._native = native


def same_decisions(a: dict[str, Any] | str, b: dict[str, Any] | str) -> bool | None:
    """Whether two throughput runs made the same decisions (counts by kind and the
    fleet's allocation at the end): the compiled and pure paths must not differ."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    keys = ("decisions", "place", "preempt", "alloc_min", "alloc_mean", "held_end")
    return all(a[k] == b[k] for k in keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter phases, fewer/smaller batches")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    ap.add_argument("--gpus", type=int, default=500_000, help="fleet size in GPUs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trace", type=Path, default=SHARED / TRACE_FILE, help="openb pod list")
    args = ap.parse_args()
    load_start = machine()
    pools, contracts, tenants, fleet = build(args.gpus, args.seed)
    if not args.trace.is_file():
        sys.exit(f"bench/scheduler.py: trace {args.trace} not found (needs ../shared/data)")
    samples = load_trace(args.trace)
    throughput = run_throughput(pools, contracts, tenants, samples, args.seed, args.quick)
    plain = run_throughput(pools, contracts, tenants, samples, args.seed, args.quick, False)
    pure = pure_throughput(pools, contracts, tenants, samples, args.seed, args.quick)
    cost = run_cost(pools, contracts, tenants, samples, args.seed, args.quick)
    tight = (
        None if args.quick else run_cost(pools, contracts, tenants, samples, args.seed, False, True)
    )
    t_ok = isinstance(throughput, dict)
    c_ok = isinstance(cost, dict)
    summary = {
        "gpus": fleet["gpus"],
        "decisions": throughput["decisions"] if isinstance(throughput, dict) else None,
        "decisions_per_s": throughput["decisions_per_s"] if isinstance(throughput, dict) else None,
        "p50_ms": throughput["p50_ms"] if isinstance(throughput, dict) else None,
        "p99_ms": throughput["p99_ms"] if isinstance(throughput, dict) else None,
        "fragmentation": throughput["fragmentation"] if isinstance(throughput, dict) else None,
        "allocated_min": throughput["alloc_min"] if isinstance(throughput, dict) else None,
        "decisions_per_s_without_plan": (
            plain["decisions_per_s"] if isinstance(plain, dict) else None
        ),
        "decisions_per_s_pure_python": (
            pure["decisions_per_s"] if isinstance(pure, dict) else None
        ),
        "pure_python_same_decisions": same_decisions(throughput, pure),
        "cost_ratio_vs_milp": cost["cost_ratio_vs_milp"] if isinstance(cost, dict) else None,
        "cost_ratio_without_plan": cost["cost_ratio_queue_order"]
        if isinstance(cost, dict)
        else None,
        "cost_ratio_cap_binding_at_optimum": (
            tight["cost_ratio_vs_milp"] if isinstance(tight, dict) else None
        ),
        "milp_s_mean": cost["milp_s_mean"] if isinstance(cost, dict) else None,
        "missing": [x for x, ok in (("throughput", t_ok), ("cost", c_ok)) if not ok],
    }
    res: dict[str, Any] = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "quick": args.quick,
        "machine": load_start,
        "trace": f"{TRACE_FORMAT}: {TRACE_FILE}",
        "trace_jobs": len(samples),
        "fleet": fleet,
        "throughput": throughput,
        "throughput_without_plan": plain,
        "throughput_pure_python": pure,
        "cost": cost,
        "cost_cap_binding_at_optimum": tight,
        "summary": summary,
    }
    res["load_end"] = machine()["load"]
    text = render(res)
    if args.json:
        print(json.dumps({**summary, "fleet_build_s": fleet["fleet_build_s"], "detail": res}))
    else:
        print(text)
    if not args.no_results:
        append_results(text)


if __name__ == "__main__":
    main()
