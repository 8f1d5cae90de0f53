"""Topology facts SkyPilot's catalogs do not carry: NVLink domains and the scale-out fabric.

Both tables are keyed by instance type. A lookup tries the exact name first, then the
longest matching prefix; names are compared case-insensitively with Azure's ``Standard_``
prefix removed (``Standard_ND96isr_H100_v5`` and ``ND96isr_H100_v5`` are the same size).

NVLink domains (``domain_for``)
    Default: one instance is its own domain (``accelerator_count`` GPUs, 1 instance).
    The table lists rack-scale systems whose NVLink domain spans several instances:
    GB200/GB300 NVL72 (72 GPUs) on AWS (EC2 UltraServers), GCP (A4X), OCI
    (BM.GPU.GB200/GB300.4 superclusters) and Azure (ND GB200/GB300 v6), the 36-GPU
    AWS u-p6e-gb200x36, and the 64-chip Trn2 UltraServer (NeuronLink, 4 x trn2u.48xlarge).

    A bare ``p6e-gb200.36xlarge`` is only sold as a member of an UltraServer, either the
    x36 or the x72. The row does not say which, so it gets the domain both guarantee:
    36 GPUs in 9 instances. That never promises a gang more NVLink reach than it gets;
    the ``u-p6e-gb200x72`` row carries the full 72.

Fabric (``network_for``)
    Scale-out network per instance, in Gbit/s, and its kind, from the providers'
    instance pages (AWS EC2 accelerated-computing specs, GCP GPU machine types,
    OCI bare-metal GPU shapes, Azure ND-series docs, 2025). Unknown: ``(0.0, "")``;
    a known fabric whose bandwidth varies by size has bandwidth 0.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")

EFA = "EFA"
TCPX = "GPUDirect-TCPX"
TCPXO = "GPUDirect-TCPXO"
ROCE = "RoCE"
INFINIBAND = "InfiniBand"

# instance type (normalised) -> GPUs in one NVLink domain. Instances per domain =
# domain GPUs / GPUs per instance.
_DOMAIN_EXACT: dict[str, int] = {
    "u-p6e-gb200x72": 72,
    "u-p6e-gb200x36": 36,
    "p6e-gb200.36xlarge": 36,  # UltraServer member; see module docstring
    "trn2u.48xlarge": 64,
    "a4x-highgpu-4g": 72,
    "nd128isr_ndr_gb200_v6": 72,
    "nd128isr_gb300_v6": 72,
}
_DOMAIN_PREFIX: dict[str, int] = {
    "bm.gpu.gb200": 72,  # BM.GPU.GB200.4 and later -v2/-v3 revisions
    "bm.gpu.gb300": 72,
}

# instance type (normalised) -> (Gbit/s per instance, fabric)
_NETWORK_EXACT: dict[str, tuple[float, str]] = {
    # AWS
    "p4d.24xlarge": (400.0, EFA),
    "p4de.24xlarge": (400.0, EFA),
    "p5.4xlarge": (100.0, EFA),
    "p5.48xlarge": (3200.0, EFA),
    "p5e.48xlarge": (3200.0, EFA),
    "p5en.48xlarge": (3200.0, EFA),
    "p6-b200.48xlarge": (3200.0, EFA),
    "p6e-gb200.36xlarge": (1600.0, EFA),
    "u-p6e-gb200x72": (1600.0, EFA),
    "u-p6e-gb200x36": (1600.0, EFA),
    "trn1.32xlarge": (800.0, EFA),
    "trn1n.32xlarge": (1600.0, EFA),
    "trn2.48xlarge": (3200.0, EFA),
    "trn2u.48xlarge": (3200.0, EFA),
    # GCP
    "a3-highgpu-8g": (1000.0, TCPX),
    "a3-edgegpu-8g": (1000.0, TCPX),
    "a3-megagpu-8g": (1800.0, TCPXO),
    "a3-ultragpu-8g": (3200.0, ROCE),
    "a4-highgpu-8g": (3200.0, ROCE),
    # OCI
    "bm.gpu4.8": (1600.0, ROCE),
    "bm.gpu.a100-v2.8": (1600.0, ROCE),
    "bm.gpu.h100.8": (3200.0, ROCE),
    "bm.gpu.h200.8": (3200.0, ROCE),
    "bm.gpu.b200.8": (3200.0, ROCE),
    "bm.gpu.mi300x.8": (3200.0, ROCE),
    "bm.gpu.a10.4": (100.0, ""),  # 2 x 50 Gbps front-end only, no cluster network
    # Azure
    "nd96asr_v4": (1600.0, INFINIBAND),
    "nd96asr_a100_v4": (1600.0, INFINIBAND),
    "nd96amsr_a100_v4": (1600.0, INFINIBAND),
    "nd96isr_h100_v5": (3200.0, INFINIBAND),
    "nd96isr_h200_v5": (3200.0, INFINIBAND),
    "nd96isr_mi300x_v5": (3200.0, INFINIBAND),
    "nd128isr_ndr_gb200_v6": (1600.0, INFINIBAND),
    "nd128isr_gb300_v6": (1600.0, INFINIBAND),
}
_NETWORK_PREFIX: dict[str, tuple[float, str]] = {
    "a4x-": (0.0, ROCE),
    "bm.gpu.": (0.0, ROCE),  # OCI bare-metal GPU shapes sit on the RDMA cluster network
    "nd96": (0.0, INFINIBAND),
    "nd128": (0.0, INFINIBAND),
    "nd40rs": (0.0, INFINIBAND),
}


def _normalise(instance_type: str) -> str:
    key = instance_type.strip().lower()
    return key.removeprefix("standard_")


def _by_prefix(table: dict[str, T], key: str) -> T | None:
    best: str | None = None
    for prefix in table:
        if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return None if best is None else table[best]


def _lookup(exact: dict[str, T], prefixes: dict[str, T], instance_type: str) -> T | None:
    key = _normalise(instance_type)
    hit = exact.get(key)
    return hit if hit is not None else _by_prefix(prefixes, key)


@lru_cache(maxsize=4096)
def domain_for(instance_type: str, accelerator_count: int) -> tuple[int, int]:
    """``(nvlink_domain_gpus, instances_per_domain)`` of ``instance_type``.

    ``accelerator_count`` is GPUs per instance. Unlisted types, and listed ones whose
    count does not divide the domain, form a domain of their own: ``(count, 1)``.
    """
    domain = _lookup(_DOMAIN_EXACT, _DOMAIN_PREFIX, instance_type)
    count = accelerator_count
    if domain is None or count <= 0 or count > domain or domain % count:
        return (max(count, 0), 1)
    return (domain, domain // count)


@lru_cache(maxsize=4096)
def network_for(instance_type: str) -> tuple[float, str]:
    """``(network_gbps, fabric)`` of one ``instance_type``; ``(0.0, "")`` if unknown."""
    hit = _lookup(_NETWORK_EXACT, _NETWORK_PREFIX, instance_type)
    return hit if hit is not None else (0.0, "")
