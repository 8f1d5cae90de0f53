"""A small catalog for spec validation tests."""

from __future__ import annotations

import pytest

from intercloud.catalog import Catalog
from intercloud.model import Offering


def _gpu(
    provider: str,
    region: str,
    itype: str,
    acc: str,
    count: int,
    vcpus: float,
    mem: float,
    price: float,
    domain: int,
    per_domain: int = 1,
) -> Offering:
    return Offering(
        provider=provider,
        region=region,
        zone="",
        instance_type=itype,
        accelerator=acc,
        accelerator_count=count,
        vcpus=vcpus,
        memory_gib=mem,
        on_demand_price=price,
        spot_price=price * 0.4,
        nvlink_domain_gpus=domain,
        instances_per_domain=per_domain,
    )


def make_catalog() -> Catalog:
    rows = [
        _gpu("aws", "us-east-1", "p5.48xlarge", "H100", 8, 192, 2048, 98.32, 8),
        _gpu("aws", "us-east-1", "p5e.48xlarge", "H200", 8, 192, 2048, 110.0, 8),
        _gpu("gcp", "us-central1", "a3-highgpu-8g", "H100", 8, 208, 1872, 88.25, 8),
        _gpu("gcp", "us-central1", "a2-highgpu-1g", "A100", 1, 12, 85, 3.67, 1),
        _gpu("gcp", "us-central1", "a2-highgpu-8g", "A100", 8, 96, 680, 29.39, 8),
        _gpu("azure", "eastus", "Standard_ND96isr_H100_v5", "H100", 8, 96, 1900, 98.32, 8),
        _gpu("aws", "us-east-1", "g6.xlarge", "L4", 1, 4, 16, 0.80, 0),
        _gpu("aws", "us-east-1", "u-p6e-gb200x72", "GB200", 4, 144, 960, 168.0, 72, 18),
        Offering("aws", "us-east-1", "", "m7i.8xlarge", None, 0, 32, 128, 1.61, 0.6),
        Offering("oci", "us-ashburn-1", "", "VM.Standard.E5.Flex", None, 0, 64, 512, 1.2),
    ]
    return Catalog.from_offerings(rows, ["tests/specs"])


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return make_catalog()
