"""``Placement`` and ``JobPlacement`` as the store keeps them: what ``to_stored`` writes
``from_stored`` reads back, the JSON stays what readers of the plain dict expect, and a
malformed one is a one-line error naming the field."""

from __future__ import annotations

import pytest

from intercloud.model import JobPlacement, Placement, PricingKind

P = Placement(
    provider="aws",
    region="us-east-1",
    zone="us-east-1a",
    instance_type="p5.48xlarge",
    nodes=2,
    accelerator="H100",
    accelerator_count=8,
    pricing=PricingKind.SPOT,
    hourly_usd=40.0,
    total_usd=80.0,
    duration_hours=2.0,
    option=1,
)


def test_round_trips() -> None:
    assert Placement.from_stored(P.to_stored()) == P
    cpu = Placement("local", "local", "", "local-cpu", 1, None, 0, PricingKind.ON_DEMAND, 0, 0, 0)
    assert Placement.from_stored(cpu.to_stored()) == cpu
    jp = JobPlacement(P, ranks=2, cpus_per_node=4.0, memory_gib_per_node=16.0)
    assert JobPlacement.from_stored(jp.to_stored()) == jp


def test_the_stored_json_is_the_plain_placement_plus_the_gang() -> None:
    stored = JobPlacement(P, 2, 4.0, 16.0).to_stored()
    assert stored == {**P.to_dict(), "ranks": 2, "cpus_per_node": 4.0, "memory_gib_per_node": 16.0}
    assert stored["pricing"] == "spot" and stored["gpus"] == 16
    assert P.where == "aws/us-east-1/us-east-1a p5.48xlarge"
    assert Placement.from_stored({**stored, "zone": ""}).where == "aws/us-east-1 p5.48xlarge"


def test_older_rows_without_optional_keys_read_with_defaults() -> None:
    old = {"provider": "local", "region": "local", "zone": "", "instance_type": "local-cpu",
           "ranks": 3}  # fmt: skip
    jp = JobPlacement.from_stored(old)
    assert (jp.ranks, jp.cpus_per_node, jp.memory_gib_per_node) == (3, 1.0, 0.0)
    assert jp.placement.pricing is PricingKind.ON_DEMAND and jp.placement.option is None


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({}, "stored placement: missing field 'provider'"),
        ({**P.to_stored()}, "stored placement: missing field 'ranks'"),
        ({**P.to_stored(), "ranks": "two"}, "stored placement: ranks 'two' is not valid"),
        (
            {**P.to_stored(), "ranks": 1, "pricing": "barter"},
            "stored placement: pricing 'barter' is not valid",
        ),
    ],
)
def test_malformed_is_one_line_naming_the_field(stored: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        JobPlacement.from_stored(stored)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
