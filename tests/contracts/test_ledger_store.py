"""The ledger fed from a real store (SQLite and PostgreSQL): instance rows cut at their
binds and releases, job-level attempts at their placement's price, and the CLI's
``intercloud contracts status`` on such a store (JSON shape, text, bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from intercloud.contracts.ledger import accrue
from intercloud.contracts.status import contracts_status, to_json
from intercloud.model import Contract, Payment, PricingKind, ReservedBlock
from intercloud.model.usage import UNASSIGNED
from intercloud.providers.contract import InstanceState as S
from intercloud.store import Store, open_store
from intercloud.store.testing import T0, FakeClock
from intercloud.store.usage import usage_intervals

REPO = Path(__file__).resolve().parents[2]
SPEC = "name: llama\nresources:\n  accelerators: H100:8\n"
H = 3600.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = open_store(db_url, clock=clock)
    try:
        yield s
    finally:
        s.close()


def _launch(
    store: Store,
    request: str,
    pricing: PricingKind,
    usd: float,
    contract: str | None = None,
    offering: tuple[str, str, str, str] = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge"),
) -> int:
    (row,) = store.request_instances(request, 1, offering, pricing, usd, contract=contract)
    assert store.transition_instance(row.id, S.REQUESTED, S.RUNNING, "up")
    return row.id


def _populate(store: Store, clock: FakeClock) -> None:
    """T0: an on-demand instance runs; +1 h a reserved one; a job of alpha holds the
    on-demand one from +2 h to +5 h; it ends at +6 h. Beta runs a 2-node job on a
    job-level provider (local) from +1 h to +4 h at $4/h for the gang."""
    store.create_tenant("alpha")
    store.create_tenant("beta", monthly_budget_usd=5.0)
    od = _launch(store, "od", PricingKind.ON_DEMAND, 10.0)
    clock.tick(H)
    _launch(store, "res", PricingKind.RESERVED, 0.0, contract="aws-res")
    job = store.submit("training", "llama", SPEC, tenant="beta")
    rec = store.get(job)
    placement = {
        "provider": "local",
        "region": "local",
        "zone": "",
        "instance_type": "cpu",
        "nodes": 2,
        "pricing": "on_demand",
        "hourly_usd": 4.0,
    }
    assert store.set_fields(job, rec.version, placement=placement)
    store.begin_attempt(job, 1)
    clock.tick(H)
    train = store.submit("training", "big", SPEC, tenant="alpha")
    assert store.bind_instances(train, 1, [od])
    clock.tick(2 * H)
    store.end_attempt(job, 1, "succeeded")
    clock.tick(H)
    store.unbind_instances(train, 1)
    clock.tick(H)
    assert store.transition_instance(od, S.RUNNING, S.TERMINATED, "gone")


def _contracts() -> list[Contract]:
    block = ReservedBlock(
        "us-east-1", "", "p5.48xlarge", 2, T0, T0 + timedelta(days=30), 50.0, Payment.MONTHLY
    )
    return [
        Contract("aws-res", "aws", (block,), T0, T0 + timedelta(days=365), 0.0),
    ]


def test_instances_are_cut_at_binds_and_attempts_priced(store: Store, clock: FakeClock) -> None:
    _populate(store, clock)
    at = T0 + timedelta(hours=10)
    got = sorted(
        (u.provider, u.pricing.value, u.tenant or "-", (u.start - T0) / timedelta(hours=1),
         -1 if u.end is None else (u.end - T0) / timedelta(hours=1), u.nodes, u.usd_per_hour)
        for u in usage_intervals(store, at)
    )  # fmt: skip
    assert got == [
        ("aws", "on_demand", "-", 0.0, 2.0, 1, 10.0),
        ("aws", "on_demand", "-", 5.0, 6.0, 1, 10.0),
        ("aws", "on_demand", "alpha", 2.0, 5.0, 1, 10.0),
        ("aws", "reserved", "-", 1.0, -1, 1, 0.0),
        ("local", "on_demand", "beta", 1.0, 4.0, 2, 2.0),
    ]
    # Before the bind, the on-demand instance is idle only.
    early = usage_intervals(store, T0 + timedelta(hours=1, minutes=30))
    assert {(u.provider, u.tenant) for u in early} == {("aws", None), ("local", "beta")}


def test_ledger_and_status_from_the_store(store: Store, clock: FakeClock) -> None:
    _populate(store, clock)
    at = T0 + timedelta(hours=10)
    led = accrue(usage_intervals(store, at), _contracts(), at)
    cb = {tenant: sum(per.values()) for tenant, per in led.chargeback().items()}
    # alpha: 3 h x $10; beta: 3 h x 2 nodes x $2; unassigned: 3 idle on-demand hours
    # plus the reserved pool's 10 h x 2 nodes paid, all unused (the reserved instance idle).
    assert cb == pytest.approx({"alpha": 30.0, "beta": 12.0, UNASSIGNED: 30.0 + 20 * 50.0})
    (pool,) = led.reserved
    assert (pool.paid_node_hours, pool.running_node_hours, pool.used_node_hours) == (
        pytest.approx(20.0),
        pytest.approx(9.0),
        0.0,
    )
    budgets = {t.name: t.monthly_budget_usd for t in store.tenants()}
    status = contracts_status(usage_intervals(store, at), _contracts(), at, budgets)
    data = to_json(status)
    assert data["contracts"][0]["spent_usd"] == pytest.approx(1000.0)
    assert [a["code"] for a in data["alerts"]] == ["over_budget"]
    assert data["alerts"][0]["tenant"] == "beta"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env["INTERCLOUD_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "intercloud", "contracts", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose SQLite store holds ``_populate``'s usage, with a contracts file."""
    home = tmp_path / "home"
    clock = FakeClock()
    with open_store(f"sqlite:///{home / 'state.db'}", clock=clock) as s:
        _populate(s, clock)
    (home / "contracts.yaml").write_text(
        yaml.safe_dump(
            {
                "contracts": [
                    {
                        "name": "aws-edp",
                        "provider": "aws",
                        "term": {"start": "2026-01-01", "end": "2027-01-01"},
                        "commitment": {"total_usd": 1_000_000.0},
                        "discount": 0.1,
                    }
                ]
            }
        )
    )
    return home


def test_cli_json_shape(home: Path) -> None:
    at = (T0 + timedelta(hours=10)).isoformat()
    r = _cli(home, "--json", "--contracts", str(home / "contracts.yaml"), "--at", at)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {
        "at",
        "persisted_until",
        "contracts",
        "by_kind",
        "chargeback",
        "total_usd",
        "alerts",
    }
    assert data["persisted_until"] is None  # no daemon kept the books here
    (c,) = data["contracts"]
    assert {
        "name",
        "provider",
        "committed_usd",
        "spent_usd",
        "projected_usd",
        "unused_usd",
        "on_track",
        "alerts",
        "years",
        "months",
        "reserved",
    } <= set(c)
    # The on-demand instance's 6 h at $10 less 10% count toward the commitment.
    assert c["spent_usd"] == pytest.approx(54.0)
    assert c["on_track"] is False
    assert [a["code"] for a in c["alerts"]] == ["under_consumption"]
    assert c["alerts"][0]["text"].endswith("of the aws commitment (aws-edp) is unused by 2027-01")
    assert data["chargeback"]["alpha"] == {"2026-01": pytest.approx(27.0)}
    assert data["by_kind"]["committed"] == pytest.approx(54.0)


def test_cli_text_and_config_contracts(home: Path) -> None:
    (home / "config.yaml").write_text("contracts: [contracts.yaml]\n")
    r = _cli(home, "--at", "2026-01-01T22:00:00Z")
    assert r.returncode == 0, r.stderr
    assert "aws-edp (aws, 2026-01 to 2027-01): committed $1,000,000, spent $54" in r.stdout
    assert "NOT on track" in r.stdout
    assert "chargeback beta: 2026-01 $12" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--at", "yesterday"), "error: --at: expected an ISO time"),
        (("--contracts", "nope.yaml"), "nope.yaml"),
    ],
)
def test_cli_bad_input_is_one_line(home: Path, args: tuple[str, ...], message: str) -> None:
    r = _cli(home, *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_cli_bad_contract_names_the_field(home: Path) -> None:
    bad = home / "bad.yaml"
    bad.write_text(
        "contracts:\n  - name: x\n    provider: aws\n"
        "    term: {start: 2026-02-01, end: 2026-01-01}\n"
    )
    r = _cli(home, "--contracts", str(bad))
    assert r.returncode == 2
    assert "contracts[0].term.end" in r.stderr and "Traceback" not in r.stderr
