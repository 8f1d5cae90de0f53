"""The batch optimizer (MILP) against its greedy reference."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from intercloud.model import PricingKind, SpotPolicy, Topology
from intercloud.scheduler.cost import DiversificationCaps, PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.optimizer import (
    BatchAssignment,
    BatchOptimizer,
    FleetUsage,
    greedy_batch,
    solve_batch,
)
from intercloud.scheduler.optimizer.synthetic import synthetic_batch
from intercloud.scheduler.requests import DecisionKind, GangRequest

K = PricingKind


def pool(provider: str, price: float, kind: PricingKind = K.ON_DEMAND, npd: int = 1) -> PoolSpec:
    return PoolSpec(provider, "r1", "r1a", "t", kind, "H100", 8, 96, 1000, npd, 10, price)


def job(j: int, gpus: int = 8, tenant: str = "t", **kw: object) -> GangRequest:
    return GangRequest(j, tenant, 1, gpus, ("H100",), **kw)  # type: ignore[arg-type]


def test_the_plan_gives_the_contested_pool_to_the_gang_that_would_lose_most() -> None:
    # queue order alone would put job 1 on aws (cheapest) and job 2 on azure (48 USD/h);
    # the cost plan (``cost.plan``) leaves aws to job 2, whose only other pool is dear
    pc = PoolCosts([pool("aws", 8), pool("gcp", 8.8), pool("azure", 40)])
    a = job(1)
    b = job(2, providers=frozenset({"aws", "azure"}))
    free = np.array([8.0, 80.0, 80.0])
    g = greedy_batch([a, b], pc, free, now_s=0)
    m = solve_batch([a, b], pc, free, now_s=0)
    assert m.pool.tolist() == [1, 0] and m.usd_per_hour == 16.8 and m.status == "optimal"
    assert g.pool.tolist() == [1, 0] and g.usd_per_hour == m.usd_per_hour
    assert m.by_job([a, b]) == {1: 1, 2: 0}


def test_milp_places_as_much_as_possible_first() -> None:
    # one 8-GPU slot cheap, 12 GPUs dear: queue order alone would put the 4-GPU job in
    # the cheap pool and leave an 8-GPU job out; the MILP (and the greedy's cost plan,
    # which places as many units as it can first) place all three
    pc = PoolCosts([pool("aws", 8), pool("gcp", 16)])
    jobs = [job(1, 4), job(2, 8), job(3, 8)]
    free = np.array([8.0, 12.0])
    g = greedy_batch(jobs, pc, free, now_s=0)
    m = solve_batch(jobs, pc, free, now_s=0)
    assert m.placed_gpus == 20 and m.pool.tolist() == [1, 0, 1]  # dearer, but all placed
    assert g.placed_gpus == 20 and g.pool.tolist() == [1, 0, 1]


def test_caps_atomic_batch_and_threshold() -> None:
    pc = PoolCosts([pool("aws", 1), pool("gcp", 2), pool("oci", 0.5, K.RESERVED)])
    caps = DiversificationCaps({"aws": 0.5}, min_fleet_gpus=0)
    jobs = [job(i) for i in range(6)]
    free = np.array([80.0, 80.0, 16.0])
    m = solve_batch(jobs, pc, free, now_s=0, caps=caps)
    # 48 GPUs: reserved 16 first (exempt), aws at most half of the fleet: 24
    placed_aws = int(sum(8 for p in m.pool if p == 0))
    assert placed_aws == 24 and m.placed_gpus == 48
    g = greedy_batch(jobs, pc, free, now_s=0, caps=caps)
    assert g.placed_gpus == 48 and g.usd_per_hour >= m.usd_per_hour
    # under the threshold the cap does not bind at all
    loose = DiversificationCaps({"aws": 0.5}, min_fleet_gpus=1000)
    assert solve_batch(jobs, pc, free, now_s=0, caps=loose).pool.tolist() == [2, 2, 0, 0, 0, 0]


def _check(
    res: BatchAssignment,
    reqs: list[GangRequest],
    pc: PoolCosts,
    free: np.ndarray,
    dom: np.ndarray,
    caps: DiversificationCaps,
    usage: FleetUsage,
    quota: dict[tuple[str, str], float],
) -> None:
    used = np.zeros(len(pc))
    doms = np.zeros(len(pc))
    by_tenant: dict[str, float] = {}
    capped = {p: 0.0 for p in pc.providers}
    for r, p in zip(reqs, res.pool.tolist(), strict=True):
        if p < 0:
            continue
        assert p in pc.rank(r, 0).tolist()
        used[p] += r.gpus
        doms[p] += r.topology == Topology.NVLINK_DOMAIN
        by_tenant[r.tenant] = by_tenant.get(r.tenant, 0) + r.gpus
        if pc.capped[p]:
            capped[pc.providers[pc.provider[p]]] += r.gpus
    assert (used <= free + 1e-9).all() and (doms <= dom + 1e-9).all()
    for (tenant, _), limit in quota.items():
        assert by_tenant.get(tenant, 0) <= limit + 1e-9
    total = usage.total_gpus + res.placed_gpus
    for prov, x in capped.items():
        if x > 0:
            g = usage.capped_gpus.get(prov, 0.0)
            ok = usage.total_gpus + x <= caps.min_fleet_gpus or g + x <= caps.share(prov) * total
            assert ok + 1e-9, (prov, x, total)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_jobs=st.integers(1, 14),
    min_fleet=st.sampled_from([0, 40, 400]),
    share=st.sampled_from([0.3, 0.5, 1.0]),
    quota_limit=st.sampled_from([None, 24.0, 64.0]),
)
def test_never_exceeds_capacity_caps_quotas_and_milp_beats_greedy(
    seed: int, n_jobs: int, min_fleet: int, share: float, quota_limit: float | None
) -> None:
    rng = np.random.default_rng(seed)
    kinds = [K.ON_DEMAND, K.SPOT, K.RESERVED, K.COMMITTED]
    pools = [
        pool(  # keywords in the order the values are drawn
            provider=["aws", "gcp", "azure"][i % 3],
            kind=kinds[int(rng.integers(4))],
            npd=int(rng.choice([1, 4])),
            price=float(rng.uniform(10, 40)),
        )
        for i in range(6)
    ]
    pc = PoolCosts(pools)
    reqs = [
        GangRequest(
            j,
            f"t{j % 2}",
            int(rng.integers(1, 4)),
            int(rng.choice([1, 2, 4, 8])),
            ("H100",),
            spot=SpotPolicy.ALLOWED if rng.random() < 0.5 else SpotPolicy.NEVER,
            topology=Topology.NVLINK_DOMAIN if rng.random() < 0.2 else Topology.ANY,
            duration_s=float(rng.uniform(600, 36000)),
        )
        for j in range(n_jobs)
    ]
    free = rng.integers(0, 5, len(pools)).astype(float) * 8
    dom = np.floor(free / 8 / np.array([p.nodes_per_domain for p in pools]))
    caps = DiversificationCaps({"aws": share, "gcp": share}, min_fleet)
    usage = FleetUsage(float(rng.integers(0, 100)), {"aws": float(rng.integers(0, 30))})
    quota = {} if quota_limit is None else {("t0", "H100"): quota_limit}
    kw = {"now_s": 0.0, "caps": caps, "usage": usage, "quota": quota}
    g = greedy_batch(reqs, pc, free, dom, **kw)  # type: ignore[arg-type]
    m = solve_batch(reqs, pc, free, dom, mip_rel_gap=0.0, **kw)  # type: ignore[arg-type]
    for res in (g, m):
        _check(res, reqs, pc, free, dom, caps, usage, quota)

    def units(res: BatchAssignment) -> int:
        return sum(r.gpus for r, p in zip(reqs, res.pool.tolist(), strict=True) if p >= 0)

    assert units(m) >= units(g)
    if units(m) == units(g):
        assert m.usd_per_hour <= g.usd_per_hour + 1e-6


def test_policy_decisions() -> None:
    pc = PoolCosts([pool("aws", 8)])
    opt = BatchOptimizer(pc, max_batch=3)
    reqs = [job(1), job(2), GangRequest(3, "t", 1, 8, ("B200",)), job(4)]
    out = opt.decide(reqs, np.array([8.0]), now_s=0)
    assert [d.kind for d in out] == [DecisionKind.PLACE, DecisionKind.HOLD, DecisionKind.REJECT]
    assert out[0].pool == 0 and out[0].node_ids == ()


def test_synthetic_batch_has_the_benchmark_shape_and_milp_wins() -> None:
    sb = synthetic_batch(200, 60, seed=1)
    assert sb.cheap_share <= 0.5
    pc = PoolCosts(sb.pools, sb.contracts)
    kw = {"now_s": sb.now_s, "caps": sb.caps, "usage": sb.usage}
    g = greedy_batch(sb.requests, pc, sb.free_gpus, sb.free_domains, **kw)  # type: ignore[arg-type]
    m = solve_batch(sb.requests, pc, sb.free_gpus, sb.free_domains, time_limit_s=5, **kw)  # type: ignore[arg-type]
    assert m.placed_gpus >= g.placed_gpus
    if m.placed_gpus == g.placed_gpus:
        assert m.usd_per_hour <= g.usd_per_hour + 1e-6


# ------------------------------------------------------ the aggregated (class) model
def _brute_force(
    reqs: list[GangRequest],
    pc: PoolCosts,
    free: np.ndarray,
    dom: np.ndarray,
    caps: DiversificationCaps,
    usage: FleetUsage,
    quota: dict[tuple[str, str], float],
) -> tuple[int, float]:
    """The lexicographic optimum by enumeration, job by job (no classes): the most GPUs
    placed, then the least USD per hour."""
    options = []
    for r in reqs:
        ids, usd = pc.ranked_usd_per_hour(r, 0.0)
        options.append([(-1, 0.0), *zip(ids.tolist(), usd.tolist(), strict=True)])
    best = (0, 0.0)
    for choice in itertools.product(*options):
        used = np.zeros(len(pc))
        doms = np.zeros(len(pc))
        by_tenant: dict[str, float] = {}
        capped: dict[str, float] = {}
        placed, usd = 0, 0.0
        for r, (p, c) in zip(reqs, choice, strict=True):
            if p < 0:
                continue
            placed += r.gpus
            usd += c
            used[p] += r.gpus
            doms[p] += r.topology == Topology.NVLINK_DOMAIN
            by_tenant[r.tenant] = by_tenant.get(r.tenant, 0.0) + r.gpus
            if pc.capped[p]:
                prov = pc.providers[pc.provider[p]]
                capped[prov] = capped.get(prov, 0.0) + r.gpus
        if (used > free + 1e-9).any() or (doms > dom + 1e-9).any():
            continue
        if any(by_tenant.get(t, 0.0) > limit + 1e-9 for (t, _), limit in quota.items()):
            continue
        total = usage.total_gpus + placed
        if not all(
            usage.total_gpus + x <= caps.min_fleet_gpus + 1e-9
            or usage.capped_gpus.get(prov, 0.0) + x <= caps.share(prov) * total + 1e-9
            for prov, x in capped.items()
        ):
            continue
        if placed > best[0] or (placed == best[0] and usd < best[1] - 1e-9):
            best = (placed, usd)
    return best


def test_aggregated_milp_equals_the_per_job_optimum() -> None:
    """Jobs drawn from a few shapes (so classes hold several jobs): the class model's
    optimum is the per-job one, found by enumerating every assignment."""
    kinds = [K.ON_DEMAND, K.SPOT, K.RESERVED]
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n_pools = int(rng.integers(2, 5))
        pools = [
            pool(
                provider=["aws", "gcp", "azure"][int(rng.integers(3))],
                kind=kinds[int(rng.integers(3))],
                npd=int(rng.choice([1, 2])),
                price=float(rng.uniform(10, 40)),
            )
            for _ in range(n_pools)
        ]
        pc = PoolCosts(pools)
        shapes = [
            (
                int(rng.integers(1, 3)),
                int(rng.choice([4, 8])),
                SpotPolicy.ALLOWED if rng.random() < 0.5 else SpotPolicy.NEVER,
                Topology.NVLINK_DOMAIN if rng.random() < 0.25 else Topology.ANY,
            )
            for _ in range(int(rng.integers(1, 4)))
        ]
        n_jobs = int(rng.integers(2, 7 if n_pools <= 3 else 6))
        reqs = []
        for j in range(n_jobs):
            nodes, gpn, spot, topo = shapes[int(rng.integers(len(shapes)))]
            reqs.append(
                GangRequest(j, f"t{j % 2}", nodes, gpn, ("H100",), spot=spot, topology=topo)
            )
        free = rng.integers(0, 5, n_pools).astype(float) * 8
        dom = np.floor(free / 8 / np.array([p.nodes_per_domain for p in pools]))
        caps = DiversificationCaps({"aws": 0.5, "gcp": 0.4}, int(rng.choice([0, 30])))
        usage = FleetUsage(float(rng.integers(0, 60)), {"aws": float(rng.integers(0, 20))})
        quota = {("t0", "H100"): 16.0} if rng.random() < 0.5 else {}
        kw = {"now_s": 0.0, "caps": caps, "usage": usage, "quota": quota}
        m = solve_batch(reqs, pc, free, dom, mip_rel_gap=0.0, **kw)  # type: ignore[arg-type]
        assert m.status == "optimal", seed
        _check(m, reqs, pc, free, dom, caps, usage, quota)
        placed, usd = _brute_force(reqs, pc, free, dom, caps, usage, quota)
        assert (m.placed_gpus, round(m.usd_per_hour, 6)) == (placed, round(usd, 6)), seed


def test_many_identical_jobs_solve_to_optimal_and_respect_every_limit() -> None:
    """1,500 jobs of 3 shapes: 3 classes, one integer column per (class, pool)."""
    pools = [
        pool("aws", 10),
        pool("aws", 11, K.SPOT),
        pool("gcp", 12),
        pool("gcp", 13, npd=4),
        pool("azure", 14),
        pool("azure", 15, npd=4),
        pool("oci", 9, K.RESERVED),
        pool("oci", 30),
    ]
    pc = PoolCosts(pools)
    reqs = []
    for j in range(1500):
        kind = j % 3
        if kind == 0:
            reqs.append(job(j, 8, tenant="t0", spot=SpotPolicy.ALLOWED))
        elif kind == 1:
            reqs.append(GangRequest(j, "t1", 2, 8, ("H100",)))
        else:
            reqs.append(GangRequest(j, "t1", 4, 8, ("H100",), topology=Topology.NVLINK_DOMAIN))
    free = np.array([800.0, 400.0, 960.0, 1280.0, 640.0, 1280.0, 1600.0, 4000.0])
    dom = np.floor(free / 8 / np.array([p.nodes_per_domain for p in pools]))
    caps = DiversificationCaps({"aws": 0.3, "gcp": 0.3, "azure": 0.3}, min_fleet_gpus=0)
    usage = FleetUsage(20_000.0, {"aws": 5_000.0, "gcp": 4_000.0, "azure": 3_000.0})
    quota = {("t0", "H100"): 3_000.0}
    kw = {"now_s": 0.0, "caps": caps, "usage": usage, "quota": quota}
    m = solve_batch(reqs, pc, free, dom, time_limit_s=30, **kw)  # type: ignore[arg-type]
    assert m.status == "optimal" and m.solve_s < 20
    _check(m, reqs, pc, free, dom, caps, usage, quota)
    g = greedy_batch(reqs, pc, free, dom, **kw)  # type: ignore[arg-type]
    _check(g, reqs, pc, free, dom, caps, usage, quota)
    assert m.placed_gpus >= g.placed_gpus
    if m.placed_gpus == g.placed_gpus:
        assert m.usd_per_hour <= g.usd_per_hour + 1e-6


def test_disaggregation_is_deterministic_and_serves_earlier_jobs_first() -> None:
    # six identical 8-GPU jobs (one class) interleaved with three 16-GPU jobs that only
    # azure may take: 16 GPUs are left in each pool, two slots, cheapest pool first
    pc = PoolCosts([pool("aws", 1), pool("gcp", 2), pool("azure", 3)])
    free = np.array([16.0, 16.0, 64.0])
    only_azure = frozenset({"azure"})
    reqs = []
    for j in range(9):
        reqs.append(
            job(j, 8) if j % 3 else GangRequest(j, "t", 2, 8, ("H100",), providers=only_azure)
        )
    big = [r for r in reqs if r.gpus == 16]
    small = [r for r in reqs if r.gpus == 8]
    m = solve_batch(reqs, pc, free, now_s=0)
    again = solve_batch(reqs, pc, free, now_s=0)
    assert m.status == "optimal" and m.pool.tolist() == again.pool.tolist()
    at = m.by_job(reqs)
    # the class's first two jobs get the cheapest pool, the next two the next one, ...
    assert [at[r.job_id] for r in big] == [2, 2, 2]
    assert [at[r.job_id] for r in small] == [0, 0, 1, 1, 2, 2]
    # the order of the batch decides which jobs of a class get the cheaper pools
    rev = list(reversed(reqs))
    at_rev = solve_batch(rev, pc, free, now_s=0).by_job(rev)
    assert [at_rev[r.job_id] for r in reversed(small)] == [0, 0, 1, 1, 2, 2]
    assert m.usd_per_hour == solve_batch(rev, pc, free, now_s=0).usd_per_hour
