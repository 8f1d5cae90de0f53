"""The ``local`` provider: this machine as one free offering.

``local_offerings()`` returns exactly one ``Offering`` (provider, region, zone and
instance type all ``local``; price 0.0; no spot; no egress) with this machine's vCPU
count and memory. ``INTERCLOUD_LOCAL_GPUS=NAME:COUNT`` (for example ``H100:8``) makes
the same machine carry COUNT emulated GPUs of canonical type NAME in one NVLink domain,
so GPU workloads can be exercised locally. A malformed value raises ``CatalogError``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

from intercloud.catalog.errors import CatalogError
from intercloud.model import Offering, canonical_accelerator

ENV_GPUS = "INTERCLOUD_LOCAL_GPUS"
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def memory_gib() -> float:
    """Physical memory of this machine in GiB (0.0 if it cannot be found)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 0.0
    return round(pages * size / 2**30, 1) if pages > 0 and size > 0 else 0.0


def parse_local_gpus(value: str) -> tuple[str, int] | None:
    """``"H100:8"`` -> ``("H100", 8)``; ``""`` -> None; anything else raises CatalogError."""
    value = value.strip()
    if not value:
        return None
    name, sep, count = value.partition(":")
    canonical = canonical_accelerator(name)
    if not sep or canonical is None or not count.strip().isdigit() or int(count) < 1:
        raise CatalogError(
            f"{ENV_GPUS}={value!r}: expected NAME:COUNT with a known accelerator name "
            "and a count >= 1, e.g. H100:8"
        )
    return canonical, int(count)


def local_offerings(env: Mapping[str, str] | None = None) -> list[Offering]:
    """One offering describing this machine (see the module docstring)."""
    gpus = parse_local_gpus((os.environ if env is None else env).get(ENV_GPUS, ""))
    accelerator, count = gpus if gpus else (None, 0)
    return [
        Offering(
            provider="local",
            region="local",
            zone="",
            # The same names the local provider's default site uses (providers/local_config).
            instance_type=f"local-{accelerator}x{count}" if accelerator else "local-cpu",
            accelerator=accelerator,
            accelerator_count=count,
            vcpus=float(os.cpu_count() or 1),
            memory_gib=memory_gib(),
            on_demand_price=0.0,
            spot_price=None,
            nvlink_domain_gpus=count,
            instances_per_domain=1,
            arch=_ARCH.get(platform.machine().lower(), platform.machine().lower() or "x86_64"),
        )
    ]
