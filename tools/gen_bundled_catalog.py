"""Generate src/intercloud/catalog/data/offerings.csv from hand-typed fact tables.

Every number below was typed from a public source named in SOURCES.md; nothing is read
from another catalog file at run time. Run from the repository root:
    python tools/gen_bundled_catalog.py > src/intercloud/catalog/data/offerings.csv
"""

from __future__ import annotations

import csv
import sys

COLUMNS = (  # noqa: SIM905
    "provider,region,zone,instance_type,accelerator,accelerator_count,vcpus,memory_gib,"
    "on_demand_price,spot_price,nvlink_domain_gpus,instances_per_domain,network_gbps,"
    "fabric,egress_usd_per_gb,arch,source"
).split(",")
EGRESS = {"aws": 0.09, "azure": 0.087, "gcp": 0.12, "oci": 0.0085}
ROWS: list[list[str]] = []


def num(x: float) -> str:
    r = round(x, 5)
    return str(int(r)) if r == int(r) else repr(r)


def add(
    p,
    region,
    itype,
    acc,
    n,
    vcpus,
    mem,
    od,
    spot,
    gbps,
    fabric,
    source,
    *,
    arch="x86_64",
    zone="",
    ipd=1,
    dom=None,
):
    if acc:
        dom = n * ipd if dom is None else dom
    else:
        dom, n = 0, 0
    if spot is not None and spot >= od:
        spot = None
    ROWS.append(
        [
            p,
            region,
            zone,
            itype,
            acc or "",
            str(n),
            num(vcpus),
            num(mem),
            num(od),
            "" if spot is None else num(spot),
            str(dom),
            str(ipd),
            num(gbps),
            fabric,
            num(EGRESS[p]),
            arch,
            source,
        ]
    )


# ----------------------------------------------------------------------------- AWS
# m6i.2xlarge on-demand by region (SkyPilot catalog v8) -> CPU regional multiplier;
# second value: median AZ spot / on-demand of m6i.2xlarge in that region.
AWS_CPU_REGION = {
    "us-east-1": (0.384, 0.39),
    "us-east-2": (0.384, 0.349),
    "us-west-1": (0.448, 0.468),
    "us-west-2": (0.384, 0.373),
    "ca-central-1": (0.428, 0.508),
    "eu-west-1": (0.428, 0.555),
    "eu-west-2": (0.444, 0.379),
    "eu-west-3": (0.448, 0.455),
    "eu-central-1": (0.46, 0.406),
    "eu-north-1": (0.408, 0.566),
    "ap-south-1": (0.404, 0.397),
    "ap-northeast-1": (0.496, 0.4),
    "ap-northeast-2": (0.472, 0.444),
    "ap-southeast-1": (0.48, 0.447),
    "ap-southeast-2": (0.48, 0.402),
}


def aws_cpu_mult(region: str) -> float:
    return AWS_CPU_REGION[region][0] / 0.384


# p4d.24xlarge / p4de.24xlarge / p5.48xlarge: region -> (on-demand, regional spot or None)
# (SkyPilot catalog v8; spot = median of the per-AZ spot prices below on-demand).
P4D = {
    "us-east-1": (21.957642, 8.0001),
    "us-east-2": (21.95764, 6.0965),
    "us-west-2": (21.95764, 8.35265),
    "ca-central-1": (25.25174, 4.5461),
    "eu-west-1": (23.71569, 9.7598),
    "eu-west-2": (28.54493, 10.2712),
    "eu-central-1": (27.43298, 13.3383),
    "eu-north-1": (23.71569, 6.1657),
    "ap-northeast-1": (30.09784, 7.5205),
    "ap-northeast-2": (30.41028, 10.7968),
    "ap-south-1": (26.3444, None),
    "ap-southeast-2": (28.54493, 11.1655),
}
P4DE = {
    "us-east-1": (27.44705, 9.31195),
    "us-west-2": (27.44705, 10.9991),
    "eu-central-1": (34.29122, 8.4246),
    "ap-northeast-1": (37.6223, 15.9785),
    "ap-southeast-1": (32.93646, 13.7534),
}
P5 = {
    "us-east-1": (55.04, 19.2531),
    "us-east-2": (55.04, 11.5616),
    "us-west-1": (68.8, 19.8326),
    "us-west-2": (55.04, 12.9756),
    "ca-central-1": (63.296, None),
    "eu-north-1": (58.8928, 28.3188),
    "eu-west-2": (71.552, 15.7259),
    "ap-northeast-1": (68.8, 23.1449),
    "ap-northeast-2": (75.9552, None),
    "ap-south-1": (66.048, 33.2941),
    "ap-southeast-2": (71.552, 26.5713),
    "ap-southeast-3": (75.9552, None),
}
P5_4XL_REGIONS = (
    "us-east-1",
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "eu-west-2",
)


def p5_mult(region: str) -> float:
    return P5[region][0] / 55.04


def p5_spot_ratio(region: str) -> float | None:
    od, spot = P5[region]
    return None if spot is None else spot / od


for r, (od, spot) in P4D.items():
    add("aws", r, "p4d.24xlarge", "A100", 8, 96, 1152, od, spot, 400, "EFA", "aws-p4-2026-10")
for r, (od, spot) in P4DE.items():
    add("aws", r, "p4de.24xlarge", "A100-80GB", 8, 96, 1152, od, spot, 400, "EFA", "aws-p4-2026-10")
for r, (od, spot) in P5.items():
    add("aws", r, "p5.48xlarge", "H100", 8, 192, 2048, od, spot, 3200, "EFA", "aws-p5-2026-10")
for r in P5_4XL_REGIONS:
    od, spot = P5[r]
    add(
        "aws",
        r,
        "p5.4xlarge",
        "H100",
        1,
        16,
        256,
        od / 8,
        None if spot is None else spot / 8,
        100,
        "EFA",
        "aws-p5-2026-10",
    )
# p5e: Capacity-Block-first launch region only; priced as p5en (see SOURCES.md).
add(
    "aws",
    "us-east-2",
    "p5e.48xlarge",
    "H200",
    8,
    192,
    2048,
    63.296,
    None,
    3200,
    "EFA",
    "aws-p5e-2026-10",
)
for r in ("us-east-1", "us-east-2", "us-west-2", "ap-northeast-1"):
    od = 63.296 * p5_mult(r)
    ratio = p5_spot_ratio(r)
    add(
        "aws",
        r,
        "p5en.48xlarge",
        "H200",
        8,
        192,
        2048,
        od,
        None if ratio is None else od * ratio,
        3200,
        "EFA",
        "aws-p5en-2026-10",
    )
for r in ("us-east-1", "us-east-2", "us-west-2"):
    od = 113.9328 * p5_mult(r)
    ratio = p5_spot_ratio(r)
    add(
        "aws",
        r,
        "p6-b200.48xlarge",
        "B200",
        8,
        192,
        2048,
        od,
        None if ratio is None else od * ratio,
        3200,
        "EFA",
        "aws-p6-b200-2026-10",
    )
# EC2 UltraServers (Capacity Blocks only, Dallas Local Zone): per-instance shape of
# p6e-gb200.36xlarge; price = UltraServer hourly rate / instances.
for name, ipd in (("u-p6e-gb200x72", 18), ("u-p6e-gb200x36", 9)):
    add(
        "aws",
        "us-east-1",
        name,
        "GB200",
        4,
        144,
        960,
        761.904 / 18,
        None,
        1600,
        "EFA",
        "aws-p6e-gb200-2026-04",
        arch="arm64",
        zone="us-east-1-dfw-2a",
        ipd=ipd,
    )

# g5 / g6 / g6e: (size, vcpus, mem, gpus, us-east-1 price, network Gbps)
G5 = [
    ("xlarge", 4, 16, 1, 1.006, 10),
    ("2xlarge", 8, 32, 1, 1.212, 10),
    ("4xlarge", 16, 64, 1, 1.624, 25),
    ("8xlarge", 32, 128, 1, 2.448, 25),
    ("12xlarge", 48, 192, 4, 5.672, 40),
    ("16xlarge", 64, 256, 1, 4.096, 25),
    ("24xlarge", 96, 384, 4, 8.144, 50),
    ("48xlarge", 192, 768, 8, 16.288, 100),
]
G6 = [
    ("xlarge", 4, 16, 1, 0.8048, 10),
    ("2xlarge", 8, 32, 1, 0.9776, 10),
    ("4xlarge", 16, 64, 1, 1.3232, 25),
    ("8xlarge", 32, 128, 1, 2.0144, 25),
    ("12xlarge", 48, 192, 4, 4.6016, 40),
    ("16xlarge", 64, 256, 1, 3.3968, 25),
    ("24xlarge", 96, 384, 4, 6.6752, 50),
    ("48xlarge", 192, 768, 8, 13.3504, 100),
]
G6E = [
    ("xlarge", 4, 32, 1, 1.861, 20),
    ("2xlarge", 8, 64, 1, 2.24208, 20),
    ("4xlarge", 16, 128, 1, 3.00424, 20),
    ("8xlarge", 32, 256, 1, 4.52856, 25),
    ("12xlarge", 48, 384, 4, 10.49264, 100),
    ("16xlarge", 64, 512, 1, 7.57719, 35),
    ("24xlarge", 96, 768, 4, 15.06559, 200),
    ("48xlarge", 192, 1536, 8, 30.13118, 400),
]
G_FAMILIES = [
    (
        "g5",
        "A10G",
        G5,
        0.636 / 1.006,
        (
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "ca-central-1",
            "eu-central-1",
            "eu-west-1",
            "eu-west-2",
            "eu-north-1",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
        ),
    ),
    (
        "g6",
        "L4",
        G6,
        0.629 / 0.8048,
        (
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "ca-central-1",
            "eu-central-1",
            "eu-west-2",
            "eu-north-1",
            "ap-northeast-1",
            "ap-south-1",
            "ap-southeast-2",
        ),
    ),
    (
        "g6e",
        "L40S",
        G6E,
        1.701 / 1.861,
        ("us-east-1", "us-east-2", "us-west-2", "eu-central-1", "eu-north-1", "ap-northeast-1"),
    ),
]
for fam, acc, sizes, spot_ratio, regions in G_FAMILIES:
    for r in regions:
        m = aws_cpu_mult(r)
        for size, vcpus, mem, gpus, price, gbps in sizes:
            fabric = "EFA" if gbps >= 100 else "ethernet"
            add(
                "aws",
                r,
                f"{fam}.{size}",
                acc,
                gpus,
                vcpus,
                mem,
                price * m,
                price * m * spot_ratio,
                gbps,
                fabric,
                "aws-g-2026-09",
            )

# CPU: (family, arch, memory GiB per vCPU, us-east-1 price of .large, {size: Gbps})
SIZES = {
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "16xlarge": 64,
    "48xlarge": 192,
}
AWS_CPU = [
    (
        "m7i",
        "x86_64",
        4,
        0.1008,
        {
            "xlarge": 12.5,
            "2xlarge": 12.5,
            "4xlarge": 12.5,
            "8xlarge": 12.5,
            "16xlarge": 25,
            "48xlarge": 50,
        },
    ),
    (
        "c7i",
        "x86_64",
        2,
        0.08925,
        {
            "xlarge": 12.5,
            "2xlarge": 12.5,
            "4xlarge": 12.5,
            "8xlarge": 12.5,
            "16xlarge": 25,
            "48xlarge": 50,
        },
    ),
    (
        "m7g",
        "arm64",
        4,
        0.0816,
        {"xlarge": 12.5, "2xlarge": 15, "4xlarge": 15, "8xlarge": 15, "16xlarge": 30},
    ),
    (
        "c7g",
        "arm64",
        2,
        0.0725,
        {"xlarge": 12.5, "2xlarge": 15, "4xlarge": 15, "8xlarge": 15, "16xlarge": 30},
    ),
    (
        "m8g",
        "arm64",
        4,
        0.08976,
        {
            "xlarge": 12.5,
            "2xlarge": 15,
            "4xlarge": 15,
            "8xlarge": 15,
            "16xlarge": 30,
            "48xlarge": 50,
        },
    ),
]
for fam, arch, gib_per_vcpu, large_price, sizes in AWS_CPU:
    for r, (_, spot_ratio) in AWS_CPU_REGION.items():
        m = aws_cpu_mult(r)
        for size, gbps in sizes.items():
            vcpus = SIZES[size]
            od = large_price * vcpus / 2 * m
            add(
                "aws",
                r,
                f"{fam}.{size}",
                None,
                0,
                vcpus,
                vcpus * gib_per_vcpu,
                od,
                od * spot_ratio,
                gbps,
                "ethernet",
                "aws-cpu-2026-09",
                arch=arch,
            )

# ----------------------------------------------------------------------------- Azure
# East US Linux pay-as-you-go; other regions assumed equal (see SOURCES.md).
AZ_ND = [
    (
        "Standard_ND96asr_v4",
        "A100",
        96,
        900,
        27.1968,
        1600,
        ("eastus", "southcentralus", "westus2", "westeurope"),
    ),
    (
        "Standard_ND96amsr_A100_v4",
        "A100-80GB",
        96,
        1900,
        32.77,
        1600,
        ("eastus", "southcentralus", "westus2", "westus3", "westeurope"),
    ),
    (
        "Standard_ND96isr_H100_v5",
        "H100",
        96,
        1900,
        98.32,
        3200,
        (
            "eastus",
            "eastus2",
            "southcentralus",
            "westus3",
            "westeurope",
            "swedencentral",
            "uksouth",
        ),
    ),
    (
        "Standard_ND96isr_H200_v5",
        "H200",
        96,
        1850,
        84.80,
        3200,
        ("eastus2", "westus3", "swedencentral"),
    ),
]
for name, acc, vcpus, mem, od, gbps, regions in AZ_ND:
    for r in regions:
        add("azure", r, name, acc, 8, vcpus, mem, od, None, gbps, "InfiniBand", "azure-nd-2026-11")
for r in ("eastus", "southcentralus", "westus3"):
    add(
        "azure",
        r,
        "Standard_ND128isr_NDR_GB200_v6",
        "GB200",
        4,
        128,
        900,
        108.16,
        None,
        1600,
        "InfiniBand",
        "azure-gb200-2026-09",
        arch="arm64",
        ipd=18,
    )

AZ_SPOT_NC = 0.67877 / 3.673  # NC24ads_A100_v4 East US spot / on-demand
AZ_NC = [
    ("Standard_NC24ads_A100_v4", "A100-80GB", 1, 24, 220, 3.673, 0.67877, 20),
    ("Standard_NC48ads_A100_v4", "A100-80GB", 2, 48, 440, 9.554, 9.554 * AZ_SPOT_NC, 40),
    ("Standard_NC96ads_A100_v4", "A100-80GB", 4, 96, 880, 19.108, 19.108 * AZ_SPOT_NC, 80),
    ("Standard_NC40ads_H100_v5", "H100", 1, 40, 320, 6.98, 1.289904, 40),
    ("Standard_NC80adis_H100_v5", "H100", 2, 80, 640, 17.64, 17.64 * AZ_SPOT_NC, 80),
]
AZ_NC_REGIONS = {
    "A100": (
        "eastus",
        "eastus2",
        "southcentralus",
        "westus2",
        "westus3",
        "westeurope",
        "northeurope",
    ),
    "H100": ("eastus", "eastus2", "southcentralus", "westus3", "swedencentral"),
}
for name, acc, n, vcpus, mem, od, spot, gbps in AZ_NC:
    for r in AZ_NC_REGIONS["H100" if acc == "H100" else "A100"]:
        add("azure", r, name, acc, n, vcpus, mem, od, spot, gbps, "ethernet", "azure-nc-2026-11")

AZ_T4_SPOT = 0.1694 / 0.526
AZ_T4 = [
    ("Standard_NC4as_T4_v3", 1, 4, 28, 0.526, 8),
    ("Standard_NC8as_T4_v3", 1, 8, 56, 0.752, 8),
    ("Standard_NC16as_T4_v3", 1, 16, 110, 1.204, 8),
    ("Standard_NC64as_T4_v3", 4, 64, 440, 4.352, 32),
]
AZ_T4_REGIONS = (
    "eastus",
    "eastus2",
    "southcentralus",
    "westus2",
    "westeurope",
    "northeurope",
    "uksouth",
    "southeastasia",
    "japaneast",
    "australiaeast",
    "centralindia",
)
for name, n, vcpus, mem, od, gbps in AZ_T4:
    for r in AZ_T4_REGIONS:
        add(
            "azure",
            r,
            name,
            "T4",
            n,
            vcpus,
            mem,
            od,
            od * AZ_T4_SPOT,
            gbps,
            "ethernet",
            "azure-nc-2026-11",
        )
for name, n, vcpus, mem, od, gbps in (
    ("Standard_NV36ads_A10_v5", 1, 36, 440, 3.20, 40),
    ("Standard_NV72ads_A10_v5", 2, 72, 880, 6.52, 80),
):
    for r in ("eastus", "southcentralus", "westus2", "westeurope", "northeurope"):
        add("azure", r, name, "A10", n, vcpus, mem, od, None, gbps, "ethernet", "azure-nv-2026-09")

AZ_CPU_REGIONS = (
    "eastus",
    "eastus2",
    "centralus",
    "southcentralus",
    "westus2",
    "westus3",
    "northeurope",
    "westeurope",
    "uksouth",
    "swedencentral",
    "japaneast",
    "southeastasia",
    "australiaeast",
    "centralindia",
)
AZ_CPU_NET = {2: 12.5, 4: 12.5, 8: 12.5, 16: 12.5, 32: 16, 48: 24, 64: 30, 96: 35}
for fam, per_vcpu in (("s", 0.048), ("as", 0.043)):
    for r in AZ_CPU_REGIONS:
        for vcpus, gbps in AZ_CPU_NET.items():
            add(
                "azure",
                r,
                f"Standard_D{vcpus}{fam}_v5",
                None,
                0,
                vcpus,
                vcpus * 4,
                per_vcpu * vcpus,
                None,
                gbps,
                "ethernet",
                "azure-cpu-2026-04",
            )

# ----------------------------------------------------------------------------- GCP
# Regional multipliers (region list price / us-central1 list price) typed from
# Cyclenerd/google-cloud-pricing-cost-calculator pricing.yml.
A2_MULT = {  # a2-highgpu-1g, version generated 2025-03-06
    "us-central1": 1.0,
    "us-east1": 1.0,
    "us-west1": 1.0,
    "us-east5": 1.0,
    "us-east4": 3.934354926 / 3.673385,
    "us-west4": 3.934354926 / 3.673385,
    "us-west3": 4.325068684 / 3.673385,
    "europe-west1": 3.747369 / 3.673385,
    "europe-west2": 4.389553684 / 3.673385,
    "europe-west3": 4.389553684 / 3.673385,
    "europe-west4": 3.747972 / 3.673385,
    "asia-east1": 3.790142 / 3.673385,
    "asia-northeast1": 4.049590926 / 3.673385,
    "asia-northeast3": 4.049590926 / 3.673385,
    "asia-south1": 4.324983684 / 3.673385,
    "asia-southeast1": 4.013757926 / 3.673385,
    "me-west1": 4.0407237 / 3.673385,
}
_A3 = 22.1224999756438  # a3-highgpu-2g us-central1, version generated 2026-02-12
A3_MULT = {
    "us-central1": 1.0,
    "us-east1": 1.0,
    "us-west1": 1.0,
    "us-east4": 22.1389390378082 / _A3,
    "us-east5": 24.8958002536438 / _A3,
    "us-west4": 24.9122386098082 / _A3,
    "europe-west1": 24.3424616496438 / _A3,
    "europe-west4": 28.1351197938082 / _A3,
    "asia-northeast1": 31.660847658137 / _A3,
    "asia-southeast1": 28.5695732418082 / _A3,
}
_C2 = 1.56606  # c2-standard-30 us-central1, version generated 2026-02-12
CPU_MULT = {
    "us-central1": 1.0,
    "us-east1": 1.0,
    "us-west1": 1.0,
    "us-east4": 1.76358 / _C2,
    "us-west4": 1.76358 / _C2,
    "europe-west1": 1.72275 / _C2,
    "europe-west4": 1.72404 / _C2,
    "europe-west2": 2.01759 / _C2,
    "asia-northeast1": 2.00892 / _C2,
    "asia-southeast1": 1.93188 / _C2,
    "asia-south1": 1.88094 / _C2,
}
GCP_SPOT = 0.6  # spot/on-demand of g2, a2, a3 in us-central1 on Google's page (2026-09)

for r in (
    "us-central1",
    "us-east1",
    "us-west1",
    "us-west3",
    "us-west4",
    "europe-west4",
    "asia-northeast1",
    "asia-northeast3",
    "asia-southeast1",
    "me-west1",
):
    for n, vcpus, mem, gbps in (
        (1, 12, 85, 24),
        (2, 24, 170, 32),
        (4, 48, 340, 50),
        (8, 96, 680, 100),
    ):
        od = 3.673385 * n * A2_MULT[r]
        add(
            "gcp",
            r,
            f"a2-highgpu-{n}g",
            "A100",
            n,
            vcpus,
            mem,
            od,
            od * GCP_SPOT,
            gbps,
            "ethernet",
            "gcp-a2-2026-09",
        )
for r in ("us-central1", "us-east4", "us-east5", "europe-west4", "asia-southeast1"):
    for n, vcpus, mem, gbps in (
        (1, 12, 170, 24),
        (2, 24, 340, 32),
        (4, 48, 680, 50),
        (8, 96, 1360, 100),
    ):
        od = 5.06879789 * n * A2_MULT[r]
        add(
            "gcp",
            r,
            f"a2-ultragpu-{n}g",
            "A100-80GB",
            n,
            vcpus,
            mem,
            od,
            od * GCP_SPOT,
            gbps,
            "ethernet",
            "gcp-a2-2026-09",
        )
A3_REGIONS = (
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-west1",
    "us-west4",
    "europe-west1",
    "europe-west4",
    "asia-northeast1",
    "asia-southeast1",
)
for r in A3_REGIONS:
    m = A3_MULT[r]
    add(
        "gcp",
        r,
        "a3-highgpu-8g",
        "H100",
        8,
        208,
        1872,
        87.8328 * m,
        52.568 * m,
        1000,
        "GPUDirect-TCPX",
        "gcp-a3-2026-09",
    )
    if r != "us-east1":
        add(
            "gcp",
            r,
            "a3-megagpu-8g",
            "H100",
            8,
            208,
            1872,
            93.400712807 * m,
            55.894488548 * m,
            1800,
            "GPUDirect-TCPXO",
            "gcp-a3-2026-09",
        )
# a3-ultragpu-8g: per-GPU on-demand and spot by region (Billing Catalog, 2026-10-13).
for r, od_gpu, spot_gpu in (
    ("us-central1", 10.4365, 6.2607),
    ("us-east4", 10.4365, 5.6357),
    ("us-west1", 10.4365, 6.2607),
    ("europe-west1", 11.4934, 6.8944),
    ("asia-south1", 12.5245, 6.7805),
):
    add(
        "gcp",
        r,
        "a3-ultragpu-8g",
        "H200",
        8,
        224,
        2952,
        od_gpu * 8,
        spot_gpu * 8,
        3200,
        "RoCE",
        "gcp-a3u-2026-10",
    )
for r in ("us-central1", "us-east1"):
    add(
        "gcp",
        r,
        "a4-highgpu-8g",
        "B200",
        8,
        224,
        3968,
        90.22,
        39.6336,
        3200,
        "RoCE",
        "gcp-a4-2026-09",
    )
    add(
        "gcp",
        r,
        "a4x-highgpu-4g",
        "GB200",
        4,
        140,
        884,
        90.22 / 2,
        None,
        2000,
        "RoCE",
        "gcp-a4-2026-09",
        arch="arm64",
        ipd=18,
    )
# g2: L4 + vCPU + memory component rates implied by g2-standard-4 and -48 (see SOURCES.md)
_G2_CPU, _G2_MEM = 0.0249884, 0.0029275
_G2_L4 = 0.706832276 - 4 * _G2_CPU - 16 * _G2_MEM
for r in (
    "us-central1",
    "us-east1",
    "us-east4",
    "us-west1",
    "us-west4",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "asia-east1",
    "asia-northeast1",
    "asia-south1",
    "asia-southeast1",
):
    for vcpus, n, gbps in (
        (4, 1, 10),
        (8, 1, 16),
        (12, 1, 16),
        (16, 1, 32),
        (24, 2, 32),
        (32, 1, 32),
        (48, 4, 50),
        (96, 8, 100),
    ):
        mem = vcpus * 4
        od = (n * _G2_L4 + vcpus * _G2_CPU + mem * _G2_MEM) * A2_MULT[r]
        add(
            "gcp",
            r,
            f"g2-standard-{vcpus}",
            "L4",
            n,
            vcpus,
            mem,
            od,
            od * GCP_SPOT,
            gbps,
            "ethernet",
            "gcp-g2-2026-09",
        )
GCP_CPU_SPOT = 0.26861 / 0.7256  # n4-standard-16 us-central1 (SkyPilot catalog v8)
GCP_CPU = [
    (
        "n2-standard",
        lambda v: v * 0.031611 + v * 4 * 0.004237,
        {2: 10, 4: 10, 8: 16, 16: 32, 32: 32, 64: 32},
    ),
    (
        "c3-standard",
        lambda v: v * 0.03398 + v * 4 * 0.00456,
        {4: 23, 8: 23, 22: 32, 44: 32, 88: 62, 176: 100},
    ),
    (
        "n4-standard",
        lambda v: v * 0.7256 / 16,
        {2: 10, 4: 10, 8: 16, 16: 32, 32: 32, 64: 50, 80: 50},
    ),
]
for fam, price, sizes in GCP_CPU:
    for r, m in CPU_MULT.items():
        for vcpus, gbps in sizes.items():
            od = price(vcpus) * m
            add(
                "gcp",
                r,
                f"{fam}-{vcpus}",
                None,
                0,
                vcpus,
                vcpus * 4,
                od,
                od * GCP_CPU_SPOT,
                gbps,
                "ethernet",
                "gcp-cpu-2026-02",
            )

# ----------------------------------------------------------------------------- OCI
# One global price list (OCI prices every commercial region the same).
OCI_BROAD = (
    "us-ashburn-1",
    "us-phoenix-1",
    "us-chicago-1",
    "us-sanjose-1",
    "ca-toronto-1",
    "sa-saopaulo-1",
    "uk-london-1",
    "eu-frankfurt-1",
    "eu-amsterdam-1",
    "ap-tokyo-1",
    "ap-osaka-1",
    "ap-sydney-1",
    "ap-mumbai-1",
    "ap-singapore-1",
    "af-johannesburg-1",
)
OCI_A100 = (
    "us-ashburn-1",
    "us-phoenix-1",
    "us-sanjose-1",
    "uk-london-1",
    "eu-frankfurt-1",
    "eu-amsterdam-1",
    "ap-osaka-1",
    "ap-tokyo-1",
)
OCI_HOPPER = (
    "us-ashburn-1",
    "us-chicago-1",
    "us-phoenix-1",
    "uk-london-1",
    "eu-frankfurt-1",
    "ap-osaka-1",
)
OCI_NEWEST = ("us-ashburn-1", "us-chicago-1", "us-phoenix-1")
OCI_GPU = [
    ("VM.GPU.A10.1", "A10", 1, 30, 240, 2.0, 24, "ethernet", OCI_BROAD[:13], "x86_64", 1),
    ("VM.GPU.A10.2", "A10", 2, 60, 480, 4.0, 48, "ethernet", OCI_BROAD[:13], "x86_64", 1),
    ("BM.GPU.A10.4", "A10", 4, 128, 1024, 8.0, 100, "ethernet", OCI_BROAD[:13], "x86_64", 1),
    ("BM.GPU.L40S.4", "L40S", 4, 224, 1024, 14.0, 800, "RoCE", OCI_HOPPER, "x86_64", 1),
    ("BM.GPU4.8", "A100", 8, 128, 2048, 24.4, 1600, "RoCE", OCI_A100, "x86_64", 1),
    ("BM.GPU.A100-v2.8", "A100-80GB", 8, 256, 2048, 32.0, 1600, "RoCE", OCI_A100, "x86_64", 1),
    ("BM.GPU.H100.8", "H100", 8, 224, 2048, 80.0, 3200, "RoCE", OCI_HOPPER, "x86_64", 1),
    ("BM.GPU.H200.8", "H200", 8, 224, 3072, 80.0, 3200, "RoCE", OCI_HOPPER, "x86_64", 1),
    ("BM.GPU.B200.8", "B200", 8, 256, 4096, 112.0, 3200, "RoCE", OCI_NEWEST, "x86_64", 1),
    ("BM.GPU.GB200.4", "GB200", 4, 144, 960, 64.0, 1600, "RoCE", OCI_NEWEST, "arm64", 18),
    ("BM.GPU.MI300X.8", "MI300X", 8, 224, 2048, 48.0, 3200, "RoCE", OCI_NEWEST, "x86_64", 1),
]
for name, acc, n, vcpus, mem, od, gbps, fabric, regions, arch, ipd in OCI_GPU:
    for r in regions:
        add(
            "oci",
            r,
            name,
            acc,
            n,
            vcpus,
            mem,
            od,
            None,
            gbps,
            fabric,
            "oci-gpu-2026-10",
            arch=arch,
            ipd=ipd,
        )
# E5 Flex at fixed points: $0.03 per OCPU-hour (1 OCPU = 2 vCPU) + $0.002 per GB-hour;
# preemptible capacity is 50% off.
E5_POINTS = (
    (2, 8),
    (4, 16),
    (8, 32),
    (8, 64),
    (16, 64),
    (16, 128),
    (32, 128),
    (32, 256),
    (64, 256),
    (96, 384),
    (128, 512),
)
for r in OCI_BROAD:
    for vcpus, mem in E5_POINTS:
        od = 0.03 * vcpus / 2 + 0.002 * mem
        add(
            "oci",
            r,
            f"VM.Standard.E5.Flex-{vcpus}-{mem}",
            None,
            0,
            vcpus,
            mem,
            od,
            od * 0.5,
            min(vcpus / 2, 40),
            "ethernet",
            "oci-cpu-2026-10",
        )

w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(COLUMNS)
w.writerows(ROWS)
