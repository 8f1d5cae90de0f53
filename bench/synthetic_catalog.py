"""A large synthetic catalog for planner benchmarks (deterministic for a given seed).

Four providers x 10 regions x 3 zones, eleven GPU configurations and CPU shapes. Rows
are spread evenly so that any request filtered to half the regions of two providers
still matches over a thousand rows per accelerator configuration: the benchmark's
"≥ 1,000 matching rows per request" is a property of this layout, and ``bench/plan.py``
checks it per request.
"""

from __future__ import annotations

import numpy as np

from intercloud.catalog import Catalog
from intercloud.model import Offering

PROVIDERS = ("aws", "gcp", "azure", "oci")
REGIONS_PER_PROVIDER = 10
ZONES_PER_REGION = 3

# (accelerator, count, base on-demand USD/h, vCPU options, memory GiB per vCPU,
#  NVLink domain GPUs, instances per domain)
GPU_CONFIGS: tuple[tuple[str, int, float, tuple[int, ...], float, int, int], ...] = (
    ("H100", 8, 88.0, (192, 208, 224), 10.0, 8, 1),
    ("H100", 1, 11.0, (24, 26, 32), 9.0, 1, 1),
    ("H200", 8, 100.0, (192, 224), 10.0, 8, 1),
    ("B200", 8, 140.0, (224, 256), 10.0, 8, 1),
    ("GB200", 4, 85.0, (144,), 6.5, 72, 18),
    ("A100", 8, 32.0, (96, 128), 12.0, 8, 1),
    ("A100-80GB", 8, 40.0, (96, 128), 12.0, 8, 1),
    ("L4", 1, 0.8, (4, 8, 16), 4.0, 1, 1),
    ("L4", 4, 3.6, (48, 64), 4.0, 4, 1),
    ("A10G", 1, 1.0, (4, 8, 16), 4.0, 1, 1),
    ("MI300X", 8, 48.0, (192,), 10.0, 8, 1),
)
CPU_SHAPES: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 96)


def regions_of(provider: str) -> tuple[str, ...]:
    return tuple(f"{provider}-region-{i}" for i in range(REGIONS_PER_PROVIDER))


def synthetic_catalog(rows: int = 100_000, seed: int = 7, cpu_share: float = 0.34) -> Catalog:
    """``rows`` offerings: ``cpu_share`` of them CPU-only, the rest split over GPU configs."""
    rng = np.random.default_rng(seed)
    n_cpu = int(rows * cpu_share)
    per_gpu = (rows - n_cpu) // len(GPU_CONFIGS)
    n_cpu = rows - per_gpu * len(GPU_CONFIGS)
    offerings: list[Offering] = []
    locations = [
        (p, r, f"{r}-{'abc'[z]}")
        for p in PROVIDERS
        for r in regions_of(p)
        for z in range(ZONES_PER_REGION)
    ]

    def place(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        where = rng.integers(0, len(locations), n)
        factor = rng.uniform(0.8, 1.5, n).round(4)
        spot = np.where(rng.random(n) < 0.85, rng.uniform(0.25, 0.6, n).round(4), np.nan)
        return where, factor, spot

    for acc, count, base, vcpu_opts, mem_per_vcpu, domain, per_domain in GPU_CONFIGS:
        where, factor, spot = place(per_gpu)
        variant = rng.integers(0, 40, per_gpu)
        vcpus = rng.choice(np.asarray(vcpu_opts), per_gpu)
        for i in range(per_gpu):
            p, r, z = locations[where[i]]
            price = round(base * factor[i], 4)
            offerings.append(
                Offering(
                    p,
                    r,
                    z,
                    f"{p}.{acc.lower()}x{count}.v{variant[i]}",
                    acc,
                    count,
                    float(vcpus[i]),
                    float(vcpus[i]) * mem_per_vcpu,
                    price,
                    None if np.isnan(spot[i]) else round(price * spot[i], 4),
                    nvlink_domain_gpus=domain,
                    instances_per_domain=per_domain,
                )
            )
    where, factor, spot = place(n_cpu)
    vcpus = rng.choice(np.asarray(CPU_SHAPES), n_cpu)
    mem_ratio = rng.choice(np.asarray((2.0, 4.0, 8.0)), n_cpu)
    variant = rng.integers(0, 60, n_cpu)
    for i in range(n_cpu):
        p, r, z = locations[where[i]]
        v = float(vcpus[i])
        price = round(0.045 * v * mem_ratio[i] ** 0.3 * factor[i], 5)
        offerings.append(
            Offering(
                p,
                r,
                z,
                f"{p}.cpu{int(v)}m{int(mem_ratio[i])}.v{variant[i]}",
                None,
                0,
                v,
                v * mem_ratio[i],
                price,
                None if np.isnan(spot[i]) else round(price * spot[i], 5),
            )
        )
    return Catalog.from_offerings(offerings, sources=(f"synthetic(rows={rows}, seed={seed})",))
