"""Tenants in the live loop (local provider emulating GPUs, both store backends): a
tenant's guarantee without borrowing, or its per-type quota, holds its second 4-GPU gang
with the quota reason while another tenant's gang runs beside it; a tenant within its
guarantee reclaims borrowed GPUs (the borrower is requeued, not failed); a tiny monthly
budget holds with the budget reason; the reasons show in queue and status."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from control_helpers import all_terminal, run_until

from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.providers.local import LocalProvider
from intercloud.providers.local_config import LocalConfig, LocalSite
from intercloud.sdk import Client
from intercloud.store import Store

S = JobState


@pytest.fixture(autouse=True)
def _default_decider(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTERCLOUD_DECIDER", "INTERCLOUD_QUEUE_POLICY", "INTERCLOUD_PREEMPTION"):
        monkeypatch.delenv(name, raising=False)


def _loop(store: Store, root: Path, *sites: LocalSite) -> Reconciler:
    provider = LocalProvider(LocalConfig(root=root, sites=sites, kill_grace_s=2.0))
    rec = Reconciler(store, {provider.name: provider})
    rec.recover()
    return rec


def _gpu_site(region: str, price: float = 0.0) -> LocalSite:
    return LocalSite(
        region=region, cpu_slots=2, memory_gib=8, gpu_type="H100", gpu_slots=4,
        on_demand_price=price,
    )  # fmt: skip


def _submit(store: Store, name: str, tenant: str, run: str = "sleep 30", gpus: int = 4) -> int:
    doc: dict[str, object] = {"kind": "training", "name": name, "tenant": tenant}
    doc["resources"] = {"accelerators": f"H100:{gpus}"} if gpus else {"cpus": "1+"}
    doc["run"] = run
    return store.submit("training", name, yaml.safe_dump(doc), tenant=tenant)


def _cancel_all(store: Store, rec: Reconciler, *jobs: int) -> None:
    for j in jobs:
        if not store.get(j).state.terminal:
            store.request_cancel(j)
    run_until(rec, all_terminal(store, *jobs))


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (
            {"guarantees": {"H100": 4}, "can_borrow": False},
            "over quota: research uses 4 of 4 guaranteed H100 and may not borrow (needs 4)",
        ),
        ({"quotas": {"H100": 4}}, "over quota: research runs 4 of its 4 H100 quota (needs 4)"),
    ],
    ids=["guarantee-no-borrow", "quota"],
)
def test_a_tenant_over_its_gpus_waits_while_another_runs(
    store: Store, root: Path, db_url: str, limits: dict[str, object], reason: str
) -> None:
    store.create_tenant("research", **limits)  # type: ignore[arg-type]
    store.create_tenant("vision")
    rec = _loop(store, root, _gpu_site("a"), _gpu_site("b"))
    first = _submit(store, "r1", "research")
    second = _submit(store, "r2", "research")
    other = _submit(store, "v1", "vision")
    run_until(rec, lambda: all(store.get(j).state is S.RUNNING for j in (first, other)))
    for _ in range(3):
        rec.step()
    w = store.get(second)
    assert w.state is S.PENDING and w.reason == reason
    with Client(home=root.parent / "home", db_url=db_url, autostart=False) as client:
        [queued] = [q for q in client.queue() if q["id"] == second]
        assert queued["reason"] == reason
        assert client.status(second)["reason"] == reason
        shown = client.tenant("research")
        assert shown["running_gpus"] == {"H100": 4}
    # the quota frees when its first gang ends
    store.request_cancel(first)
    run_until(rec, lambda: store.get(second).state is S.RUNNING)
    assert store.get(other).state is S.RUNNING
    _cancel_all(store, rec, first, second, other)


def test_a_tiny_monthly_budget_holds_with_the_budget_reason(
    store: Store, root: Path, db_url: str
) -> None:
    store.create_tenant("tiny", monthly_budget_usd=0.01)
    rec = _loop(store, root, _gpu_site("a", price=2.0), _gpu_site("b", price=2.0))
    held = _submit(store, "t1", "tiny", run="true")
    free_to_run = _submit(store, "d1", "default", run="true")
    run_until(rec, all_terminal(store, free_to_run))
    for _ in range(3):
        rec.step()
    w = store.get(held)
    assert w.state is S.PENDING
    assert w.reason == ("over budget: tiny spent 0.00 of 0.01 USD this month; this job needs ~2.00")
    with Client(home=root.parent / "home", db_url=db_url, autostart=False) as client:
        [queued] = [q for q in client.queue() if q["id"] == held]
        assert queued["reason"] == w.reason
    # raising the budget lets it run (the loop reads the store every cycle)
    store.update_tenant("tiny", monthly_budget_usd=5.0)
    run_until(rec, all_terminal(store, held))
    assert store.get(held).state is S.SUCCEEDED


LONG_FIRST = 'if [ "$INTERCLOUD_ATTEMPT" = 1 ]; then sleep 30; fi'


def test_a_tenant_within_its_guarantee_reclaims_borrowed_gpus(store: Store, root: Path) -> None:
    store.create_tenant("research", guarantees={"H100": 4})
    store.create_tenant("vision")  # no guarantee: all it runs is borrowed
    rec = _loop(store, root, _gpu_site("a"), _gpu_site("b"))
    v1 = _submit(store, "v1", "vision", run=LONG_FIRST)
    v2 = _submit(store, "v2", "vision", run=LONG_FIRST)
    run_until(rec, lambda: all(store.get(j).state is S.RUNNING for j in (v1, v2)))
    mine = _submit(store, "r1", "research", run="true")
    run_until(rec, lambda: store.get(mine).state is not S.PENDING)
    # one borrowed gang was requeued as a new attempt (not failed), the other runs on
    [victim] = [j for j in (v1, v2) if store.get(j).state is S.PENDING]
    [kept] = [j for j in (v1, v2) if j != victim]
    w = store.get(victim)
    assert (w.attempt, w.restarts) == (2, 0), w.reason
    assert (w.reason or "").startswith(f"preempted for job {mine} ")
    assert store.get(kept).state is S.RUNNING
    run_until(rec, all_terminal(store, mine, victim))
    assert store.get(mine).state is S.SUCCEEDED and store.get(victim).state is S.SUCCEEDED
    assert [a.state for a in store.attempts(victim)] == ["preempted", "succeeded"]
    _cancel_all(store, rec, kept)
