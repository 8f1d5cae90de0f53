"""Data-transfer prices: what moving input data from where it lives to a placement costs.

List prices, USD per GB, for the first priced tier (2025-2026 public pricing pages):
- AWS: internet egress $0.09/GB (first 10 TB/month), inter-region $0.02/GB
  (aws.amazon.com/ec2/pricing/on-demand/, "Data Transfer").
- Azure: internet egress $0.087/GB (first 10 TB after 100 GB free), inter-region within a
  continent $0.02/GB (azure.microsoft.com/pricing/details/bandwidth/).
- Google Cloud: premium-tier internet egress $0.12/GB (first TB), inter-region within a
  continent $0.02/GB (cloud.google.com/vpc/network-pricing).
- Oracle: first 10 TB/month free, then $0.0085/GB, both internet and inter-region
  (oracle.com/cloud/networking/pricing/).
The source side pays: egress is billed by the provider that holds the data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EgressPrice:
    internet_usd_per_gb: float
    inter_region_usd_per_gb: float


EGRESS: dict[str, EgressPrice] = {
    "aws": EgressPrice(0.09, 0.02),
    "azure": EgressPrice(0.087, 0.02),
    "gcp": EgressPrice(0.12, 0.02),
    "oci": EgressPrice(0.0085, 0.0085),
    "lambda": EgressPrice(0.0, 0.0),
    "local": EgressPrice(0.0, 0.0),
}
_DEFAULT = EgressPrice(0.09, 0.02)


def internet_egress(provider: str) -> float:
    """Internet egress price of ``provider`` in USD/GB (AWS's if unknown)."""
    return EGRESS.get(provider, _DEFAULT).internet_usd_per_gb


def transfer_usd_per_gb(
    src_provider: str, src_region: str, dst_provider: str, dst_region: str
) -> float:
    """Price per GB of moving data from (src_provider, src_region) to (dst_provider, dst_region)."""
    if src_provider == dst_provider:
        if src_region == dst_region:
            return 0.0
        return EGRESS.get(src_provider, _DEFAULT).inter_region_usd_per_gb
    return internet_egress(src_provider)
