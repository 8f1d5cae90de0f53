"""Zone names and zone ids, so that a zone can be asked for in either spelling.

AWS gives every Availability Zone an id that is the same in every account
(``use1-az6``) and a name (``us-east-1a``) whose pairing with the ids is chosen per
account for the older regions ("AZ IDs", AWS RAM user guide,
https://docs.aws.amazon.com/ram/latest/userguide/working-with-az-ids.html). The ids
below are those AWS publishes for each region of the bundled catalog (the same ids as
the ``AvailabilityZone`` column of SkyPilot's v8 AWS catalog); the names are the
letters the region's zones use.

Assumption, stated because it cannot be known offline: without the account's own
mapping, a zone name is paired with an id by position (the k-th letter with the k-th
id: ``us-east-1a`` = ``use1-az1``). An account's real mapping (``aws ec2
describe-availability-zones``, or SkyPilot's cached ``az_mappings-*.csv``) can be given
as a CSV with columns ``AvailabilityZoneName,AvailabilityZone`` in
``INTERCLOUD_AWS_AZ_MAPPING``; its pairs replace the assumed ones.

A catalog row whose zone is empty does not say which zones sell it: it stands for every
zone of its region.
"""

from __future__ import annotations

import os
from functools import cache

# region: (zone name letters, zone ids), both in the order AWS lists them.
_AWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "us-east-1": ("abcdef", ("use1-az1", "use1-az2", "use1-az3", "use1-az4", "use1-az5",
                             "use1-az6")),
    "us-east-2": ("abc", ("use2-az1", "use2-az2", "use2-az3")),
    "us-west-1": ("bc", ("usw1-az1", "usw1-az3")),
    "us-west-2": ("abcd", ("usw2-az1", "usw2-az2", "usw2-az3", "usw2-az4")),
    "ca-central-1": ("abd", ("cac1-az1", "cac1-az2", "cac1-az4")),
    "eu-central-1": ("abc", ("euc1-az1", "euc1-az2", "euc1-az3")),
    "eu-north-1": ("abc", ("eun1-az1", "eun1-az2", "eun1-az3")),
    "eu-west-1": ("abc", ("euw1-az1", "euw1-az2", "euw1-az3")),
    "eu-west-2": ("abc", ("euw2-az1", "euw2-az2", "euw2-az3")),
    "eu-west-3": ("abc", ("euw3-az1", "euw3-az2", "euw3-az3")),
    "ap-northeast-1": ("acd", ("apne1-az1", "apne1-az2", "apne1-az4")),
    "ap-northeast-2": ("abcd", ("apne2-az1", "apne2-az2", "apne2-az3", "apne2-az4")),
    "ap-south-1": ("abc", ("aps1-az1", "aps1-az2", "aps1-az3")),
    "ap-southeast-1": ("abc", ("apse1-az1", "apse1-az2", "apse1-az3")),
    "ap-southeast-2": ("abc", ("apse2-az1", "apse2-az2", "apse2-az3")),
    "ap-southeast-3": ("abc", ("apse3-az1", "apse3-az2", "apse3-az3")),
}  # fmt: skip

MAPPING_ENV = "INTERCLOUD_AWS_AZ_MAPPING"


@cache
def _aws_pairs(mapping_file: str | None) -> dict[str, tuple[str, str, str]]:
    """Every spelling (lower case) -> (region, zone name, zone id)."""
    out: dict[str, tuple[str, str, str]] = {}
    for region, (letters, ids) in _AWS.items():
        for letter, zone_id in zip(letters, ids, strict=True):
            name = region + letter
            out[name] = out[zone_id] = (region, name, zone_id)
    if mapping_file:
        from intercloud.settings import read_az_mapping  # SettingError: one line, exit 2

        for name, zone_id in read_az_mapping(mapping_file):
            out[name] = out[zone_id] = (name[:-1], name, zone_id)
    return out


def aws_zone(zone: str) -> tuple[str, str, str] | None:
    """``(region, zone name, zone id)`` of an AWS zone given by name or id, or None."""
    return _aws_pairs(os.environ.get(MAPPING_ENV) or None).get(zone.strip().lower())


def aws_zone_spellings(regions: set[str]) -> list[str]:
    """Every AWS zone name and id of ``regions`` (for suggestions)."""
    pairs = _aws_pairs(os.environ.get(MAPPING_ENV) or None)
    return sorted(k for k, (region, _, _) in pairs.items() if region in regions)


__all__ = ["MAPPING_ENV", "aws_zone", "aws_zone_spellings"]
