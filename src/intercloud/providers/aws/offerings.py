"""What AWS sells where: the catalog's prices intersected with EC2's own offering list.

The catalog prices by region (zone ""); ``describe_instance_type_offerings`` at
availability-zone level says in which zones each type exists for this account. The
result has one ``Offering`` per (region, zone, instance type) with the catalog's prices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from intercloud.model import Offering

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

# EC2 accepts at most 200 values in one filter.
_FILTER_CHUNK = 200


def zones_by_type(client: EC2Client, instance_types: Sequence[str]) -> dict[str, list[str]]:
    """Instance type -> sorted zones of the client's region where it is offered."""
    found: dict[str, set[str]] = {}
    paginator = client.get_paginator("describe_instance_type_offerings")
    for start in range(0, len(instance_types), _FILTER_CHUNK):
        chunk = list(instance_types[start : start + _FILTER_CHUNK])
        pages = paginator.paginate(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": chunk}],
        )
        for page in pages:
            for row in page.get("InstanceTypeOfferings", []):
                itype, zone = row.get("InstanceType"), row.get("Location")
                if itype and zone:
                    found.setdefault(itype, set()).add(zone)
    return {itype: sorted(zones) for itype, zones in found.items()}


def zonal_offerings(
    catalog_rows: Iterable[Offering], region: str, zones: dict[str, list[str]]
) -> list[Offering]:
    """The catalog's AWS rows of ``region``, one per zone where EC2 offers the type.

    A catalog row that already names a zone is kept only if EC2 offers it there. Types
    EC2 does not offer in the region are dropped (the catalog may be ahead or behind).
    """
    out: list[Offering] = []
    for row in catalog_rows:
        if row.provider != "aws" or row.region != region:
            continue
        offered = zones.get(row.instance_type, [])
        if row.zone:
            if row.zone in offered:
                out.append(row)
            continue
        out.extend(replace(row, zone=zone) for zone in offered)
    return out
