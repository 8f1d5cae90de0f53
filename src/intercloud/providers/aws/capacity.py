"""Capacity bought ahead on EC2: cluster placement groups, capacity reservations and
Capacity Blocks for ML.

These calls are thin and typed: the provider uses ``reservation_target`` when a launch
targets a reservation, ``ensure_placement_group`` before a gang launch, and the planner
(next session) will use ``capacity_block_offers`` / ``purchase_capacity_block`` for
reserved pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

CAPACITY_BLOCK = "capacity-block"


class ReservationUnusable(ValueError):
    """The targeted reservation cannot take this launch; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def ensure_placement_group(
    client: EC2Client, name: str, tags: Mapping[str, str], strategy: str = "cluster"
) -> bool:
    """Create the placement group unless it exists. True if it was created now."""
    try:
        client.create_placement_group(
            GroupName=name,
            Strategy=strategy,  # type: ignore[arg-type]
            TagSpecifications=[
                {
                    "ResourceType": "placement-group",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidPlacementGroup.Duplicate":
            return False
        raise
    return True


@dataclass(frozen=True, slots=True)
class ReservationTarget:
    """How to launch into one capacity reservation."""

    reservation_id: str
    zone: str
    instance_type: str
    available: int
    capacity_block: bool  # a Capacity Block needs MarketType "capacity-block"

    def run_instances_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "CapacityReservationSpecification": {
                "CapacityReservationTarget": {"CapacityReservationId": self.reservation_id}
            },
            "Placement": {"AvailabilityZone": self.zone},
        }
        if self.capacity_block:
            args["InstanceMarketOptions"] = {"MarketType": CAPACITY_BLOCK}
        return args


def reservation_target(
    client: EC2Client, reservation_id: str, instance_type: str, zone: str, count: int
) -> ReservationTarget:
    """Check that ``count`` instances of ``instance_type`` fit the reservation now.

    Raises ``ReservationUnusable`` (a capacity code when it is only full, an
    unsupported one when it can never serve this launch); EC2 errors pass through.
    """
    found = client.describe_capacity_reservations(CapacityReservationIds=[reservation_id])
    rows = found.get("CapacityReservations", [])
    if not rows:
        raise ReservationUnusable(
            "InvalidCapacityReservationId.NotFound", f"no capacity reservation {reservation_id}"
        )
    row = rows[0]
    state = row.get("State", "")
    rtype = row.get("InstanceType", "")
    rzone = row.get("AvailabilityZone", "")
    available = int(row.get("AvailableInstanceCount", 0))
    if rtype != instance_type:
        raise ReservationUnusable(
            "InvalidParameterCombination",
            f"reservation {reservation_id} holds {rtype}, not {instance_type}",
        )
    if zone and rzone != zone:
        raise ReservationUnusable(
            "InvalidParameterCombination", f"reservation {reservation_id} is in {rzone}, not {zone}"
        )
    if state != "active":
        # A Capacity Block is "scheduled" until its start: capacity, not yet usable.
        raise ReservationUnusable(
            "ReservationCapacityExceeded", f"reservation {reservation_id} is {state}, not active"
        )
    if available < count:
        raise ReservationUnusable(
            "ReservationCapacityExceeded",
            f"reservation {reservation_id} has {available} free instance(s), {count} asked",
        )
    return ReservationTarget(
        reservation_id=reservation_id,
        zone=rzone,
        instance_type=rtype,
        available=available,
        capacity_block=row.get("ReservationType") == CAPACITY_BLOCK,
    )


@dataclass(frozen=True, slots=True)
class CapacityBlockOffer:
    """One Capacity Block for ML on sale: ``count`` instances in one zone for a fixed
    window, paid up front."""

    offer_id: str
    instance_type: str
    zone: str
    count: int
    start: datetime
    end: datetime
    duration_hours: int
    upfront_usd: float

    @property
    def usd_per_instance_hour(self) -> float:
        hours = self.duration_hours * self.count
        return self.upfront_usd / hours if hours else 0.0


def capacity_block_offers(
    client: EC2Client,
    instance_type: str,
    count: int,
    duration_hours: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[CapacityBlockOffer]:
    """Capacity Blocks on sale for ``count`` x ``instance_type`` (USD offers only),
    cheapest per instance-hour first."""
    args: dict[str, Any] = {
        "InstanceType": instance_type,
        "InstanceCount": count,
        "CapacityDurationHours": duration_hours,
    }
    if start is not None:
        args["StartDateRange"] = start
    if end is not None:
        args["EndDateRange"] = end
    offers: list[CapacityBlockOffer] = []
    for row in client.describe_capacity_block_offerings(**args).get("CapacityBlockOfferings", []):
        if row.get("CurrencyCode", "USD") != "USD":
            continue
        offers.append(
            CapacityBlockOffer(
                offer_id=row["CapacityBlockOfferingId"],
                instance_type=row["InstanceType"],
                zone=row["AvailabilityZone"],
                count=int(row["InstanceCount"]),
                start=row["StartDate"],
                end=row["EndDate"],
                duration_hours=int(row["CapacityBlockDurationHours"]),
                upfront_usd=float(row["UpfrontFee"]),
            )
        )
    return sorted(offers, key=lambda o: (o.usd_per_instance_hour, o.start))


def purchase_capacity_block(
    client: EC2Client, offer_id: str, tags: Mapping[str, str], platform: str = "Linux/UNIX"
) -> str:
    """Buy one offer; returns the capacity reservation id to target at launch."""
    bought = client.purchase_capacity_block(
        CapacityBlockOfferingId=offer_id,
        InstancePlatform=platform,  # type: ignore[arg-type]
        TagSpecifications=[
            {
                "ResourceType": "capacity-reservation",
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
        ],
    )
    return bought["CapacityReservation"]["CapacityReservationId"]
