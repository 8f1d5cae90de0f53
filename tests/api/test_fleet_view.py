"""The fleet view: pools, instances and utilisation from the instances table."""

from __future__ import annotations

from pathlib import Path

from intercloud.api.fleet_view import fleet_view
from intercloud.catalog.loader import load_catalog
from intercloud.store import open_store


def test_pools_and_utilisation_by_provider_and_gpu(tmp_path: Path) -> None:
    catalog = load_catalog()
    h100 = next(o for o in catalog.offerings if o.provider == "aws" and o.accelerator == "H100")
    key = (h100.provider, h100.region, h100.zone, h100.instance_type)
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        empty = fleet_view(store, catalog)
        assert empty["pools"] == [] and empty["by_provider"] == {}
        store.request_instances("r1", 2, key, "on_demand", 98.3)
        view = fleet_view(store, catalog)
    [pool] = view["pools"]
    assert pool["instances"] == 2 and pool["busy"] == 0 and pool["by_state"] == {"requested": 2}
    assert pool["accelerator"] == "H100" and pool["gpus_per_instance"] == h100.accelerator_count
    aws = view["by_provider"]["aws"]
    assert aws["instances"] == 2 and aws["gpus"] == 2 * h100.accelerator_count
    assert aws["busy_gpus"] == 0 and aws["utilisation"] == 0.0
    assert aws["usd_per_hour"] == round(2 * 98.3, 6)
    assert view["by_gpu"]["H100"]["gpus"] == 2 * h100.accelerator_count
    assert len(view["instances"]) == 2
