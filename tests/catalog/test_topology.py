from __future__ import annotations

import pytest

from intercloud.catalog.topology import domain_for, network_for


@pytest.mark.parametrize(
    ("instance_type", "count", "expected"),
    [
        ("u-p6e-gb200x72", 4, (72, 18)),
        ("u-p6e-gb200x36", 4, (36, 9)),
        ("p6e-gb200.36xlarge", 4, (36, 9)),  # UltraServer member: the size both guarantee
        ("a4x-highgpu-4g", 4, (72, 18)),
        ("BM.GPU.GB200.4", 4, (72, 18)),
        ("BM.GPU.GB300.4", 4, (72, 18)),
        ("BM.GPU.GB200-v3.4", 4, (72, 18)),  # prefix match
        ("Standard_ND128isr_NDR_GB200_v6", 4, (72, 18)),
        ("Standard_ND128isr_GB300_v6", 4, (72, 18)),
        ("ND128isr_GB300_v6", 4, (72, 18)),  # with or without Azure's Standard_ prefix
        ("trn2u.48xlarge", 16, (64, 4)),
        ("u-p6e-gb200x72", 72, (72, 1)),  # the whole rack sold as one instance
    ],
)
def test_multi_instance_domains(instance_type: str, count: int, expected: tuple[int, int]) -> None:
    assert domain_for(instance_type, count) == expected


@pytest.mark.parametrize(
    ("instance_type", "count", "expected"),
    [
        ("p5.48xlarge", 8, (8, 1)),
        ("BM.GPU.H100.8", 8, (8, 1)),
        ("a3-highgpu-8g", 8, (8, 1)),
        ("m6i.2xlarge", 0, (0, 1)),
        ("u-p6e-gb200x72", 5, (5, 1)),  # count does not divide the domain
        ("u-p6e-gb200x36", 0, (0, 1)),
    ],
)
def test_default_is_one_instance(instance_type: str, count: int, expected: tuple[int, int]) -> None:
    assert domain_for(instance_type, count) == expected


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [
        ("p5.48xlarge", (3200.0, "EFA")),
        ("p5.4xlarge", (100.0, "EFA")),
        ("p4d.24xlarge", (400.0, "EFA")),
        ("p4de.24xlarge", (400.0, "EFA")),
        ("a3-megagpu-8g", (1800.0, "GPUDirect-TCPXO")),
        ("a3-highgpu-8g", (1000.0, "GPUDirect-TCPX")),
        ("BM.GPU.H100.8", (3200.0, "RoCE")),
        ("BM.GPU.L40S.4", (0.0, "RoCE")),  # family prefix: fabric known, bandwidth not
        ("bm.gpu.h100.8", (3200.0, "RoCE")),  # case-insensitive
        ("Standard_ND96isr_H100_v5", (3200.0, "InfiniBand")),
        ("Standard_ND96amsr_A100_v4", (1600.0, "InfiniBand")),
        ("Standard_ND96isr_B200_v9", (0.0, "InfiniBand")),
        ("m6i.2xlarge", (0.0, "")),
        ("", (0.0, "")),
    ],
)
def test_network(instance_type: str, expected: tuple[float, str]) -> None:
    assert network_for(instance_type) == expected


def test_longest_prefix_wins() -> None:
    # "bm.gpu." (RoCE, unknown bandwidth) and "bm.gpu.gb200" (domain) are both prefixes;
    # the exact BM.GPU.A10.4 entry (no cluster network) beats the family prefix.
    assert network_for("BM.GPU.A10.4")[1] == ""
    assert domain_for("BM.GPU.GB200.4", 4) == (72, 18)
    assert domain_for("BM.GPU.H200.8", 8) == (8, 1)
