"""The fleet's capacity and failover settings as the control loop uses them
(``FleetSettings``), derived from ``$INTERCLOUD_HOME/config.yaml`` (``intercloud.config``:
its ``pools``, ``caps`` and ``failover`` sections, validated there with one-line errors).

Pool limits are per offering (``pools.offerings["provider/region/instance_type"]``, else
``pools.max_instances``); an idle instance is released after ``pools.idle_s``; caps are
the most share of the fleet's GPUs per provider; cool-downs grow from
``failover.cooldown_s.first`` (doubling) to ``.max``; a provider whose calls all fail for
``failover.down_after_s`` is down. The store's cool-downs and down providers are added
each cycle (``snapshot.with_store_state``), contracts by the caller.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from intercloud.control.failover import CooldownPolicy
from intercloud.control.snapshot import FleetPolicy
from intercloud.model import Contract
from intercloud.providers.base import OfferingKey

if TYPE_CHECKING:
    from intercloud.config import IntercloudConfig

__all__ = ["FleetSettings", "fleet_settings"]


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The snapshot's policy (without the store's state and contracts), the cool-down
    growth and the provider-down time."""

    policy: FleetPolicy = field(default_factory=FleetPolicy)
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    down_after_s: float = 300.0


def _contracts(config: IntercloudConfig, providers: Collection[str]) -> tuple[Contract, ...]:
    """Every contract of the files ``config.yaml`` names (``SpecError``: one line); a
    contract may name any enabled provider (``providers`` too)."""
    if not config.contracts:
        return ()
    from intercloud.catalog import load_bundled
    from intercloud.contracts.spec import load_contracts

    names = sorted({*config.enabled, *providers})
    catalog = load_bundled()  # unknown instance types and regions are bad input
    return tuple(
        c for path in config.contracts for c in load_contracts(path, catalog, names).contracts
    )


def fleet_settings(config: IntercloudConfig, providers: Collection[str] = ()) -> FleetSettings:
    """The settings of ``config`` (a validated ``config.yaml``, or its defaults);
    ``providers``: names enabled besides the configuration's (contracts may use them)."""
    pools = config.pools

    def limit(key: OfferingKey) -> int:
        provider, region, _zone, instance_type = key
        return pools.rule(provider, region, instance_type).max_instances

    policy = FleetPolicy(
        default_max_instances=pools.max_instances,
        limit_of=limit,
        idle_release_s=pools.idle_s,
        caps=dict(config.caps) or None,
        contracts=_contracts(config, providers),
    )
    cool = config.failover.cooldown_s
    cooldown = CooldownPolicy(first_s=cool.first, max_s=cool.max)
    return FleetSettings(policy, cooldown, config.failover.down_after_s)
