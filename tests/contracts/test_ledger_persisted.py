"""The ledger persisted in the store (``contracts/accrual.py``, ``store/ledger_repo.py``):
accrued in increments as time passes, checked against hand-computed figures (a
Capacity Block across a month's end, its instances stopped 30 minutes before the block
ends), never accrued twice (a writer killed inside its transaction, a stale writer),
accrued again when the contracts change, and read by ``contracts status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from intercloud.contracts.accrual import accrue_to_store, contracts_key, drawn_ledger
from intercloud.contracts.ledger import Ledger, accrue
from intercloud.model import Contract, Payment, PricingKind, ReservedBlock
from intercloud.model.usage import UNASSIGNED
from intercloud.providers.contract import InstanceState as S
from intercloud.store import Store, open_store
from intercloud.store.testing import FakeClock
from intercloud.store.usage import usage_intervals

REPO = Path(__file__).resolve().parents[2]
SPEC = "name: llama\nresources:\n  accelerators: H100:8\n"
#: The Capacity Block runs from noon on 31 January to noon on 1 February.
CB_START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
CB_END = CB_START + timedelta(days=1)
JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)


def _contracts(discount: float = 0.2) -> list[Contract]:
    block = ReservedBlock(
        "us-east-1",
        "",
        "p5.48xlarge",
        2,
        CB_START,
        CB_END,
        30.0,
        Payment.UPFRONT,
        capacity_block=True,
    )
    year = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    return [
        Contract("aws-cb", "aws", (block,), *year, 30.0),
        Contract("aws-edp", "aws", (), *year, 0.0, committed_usd=1e6, discount=discount),
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(CB_START)


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = open_store(db_url, clock=clock)
    try:
        yield s
    finally:
        s.close()


def _run(
    store: Store, pricing: PricingKind, usd: float, n: int = 1, contract: str | None = None
) -> list[int]:
    offering = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
    rows = store.request_instances(f"r{usd}{n}", n, offering, pricing, usd, contract=contract)
    for row in rows:
        assert store.transition_instance(row.id, S.REQUESTED, S.RUNNING, "up")
    return [r.id for r in rows]


def _stop(store: Store, ids: list[int]) -> None:
    for i in ids:
        assert store.transition_instance(i, S.RUNNING, S.TERMINATED, "gone")


def _populate(store: Store, clock: FakeClock, checkpoints: list[datetime]) -> None:
    """Noon 31 January: the block's 2 instances start for alpha; 18:00 an on-demand
    instance ($100/h list) starts for beta; 06:00 on 1 February it stops; 11:30 the
    block's instances stop (30 minutes before the block ends). ``checkpoints``: times
    at which the books are kept while this runs."""
    store.create_tenant("alpha")
    store.create_tenant("beta")
    train = store.submit("training", "big", SPEC, tenant="alpha")
    cb = _run(store, PricingKind.RESERVED, 0.0, 2, contract="aws-cb")
    assert store.bind_instances(train, 1, cb)

    def until(t: datetime) -> None:
        while checkpoints and checkpoints[0] <= t:
            clock.now = checkpoints.pop(0)
            accrue_to_store(store, _contracts(), clock.now)
        clock.now = t

    until(CB_START + timedelta(hours=6))
    serve = store.submit("service", "chat", SPEC, tenant="beta")
    od = _run(store, PricingKind.ON_DEMAND, 100.0)
    assert store.bind_instances(serve, 1, od)
    until(datetime(2026, 2, 1, 6, 0, tzinfo=UTC))
    store.unbind_instances(serve, 1)
    _stop(store, od)
    until(CB_END - timedelta(minutes=30))
    store.unbind_instances(train, 1)
    _stop(store, cb)
    until(CB_END + timedelta(hours=6))


def _books(led: Ledger) -> dict[tuple[date, str | None, str, str], tuple[float, float]]:
    out: dict[tuple[date, str | None, str, str], tuple[float, float]] = {}
    for a in led.accruals:
        out[(a.month, a.contract, a.kind.value, a.tenant)] = (
            round(a.node_hours, 4),
            round(a.usd, 4),
        )
    return out


#: By hand. The block: 48 node-hours paid, $1,440 billed upfront in January. January:
#: 2 nodes x 12 h used by alpha at $30. February: 2 x 11.5 h used by alpha, the last
#: half hour of both nodes (1 node-hour) paid and idle. The on-demand instance: 6 h in
#: each month at $100 less 20%, toward the AWS commitment, for beta.
EXPECTED = {
    (JAN, "aws-cb", "reserved", "alpha"): (24.0, 720.0),
    (FEB, "aws-cb", "reserved", "alpha"): (23.0, 690.0),
    (FEB, "aws-cb", "reserved", UNASSIGNED): (1.0, 30.0),
    (JAN, "aws-edp", "committed", "beta"): (6.0, 480.0),
    (FEB, "aws-edp", "committed", "beta"): (6.0, 480.0),
}


@pytest.mark.parametrize(
    "hours",
    [
        [],  # one accrual at the end
        [1, 3, 6, 11.5, 12, 12.25, 17.5, 18, 23.5, 24, 29],  # across every change
        [5.999, 6.001, 12 - 1e-3, 18.5],
    ],
)
def test_increments_add_up_to_the_hand_computed_books(
    store: Store, clock: FakeClock, hours: list[float]
) -> None:
    checkpoints = [CB_START + timedelta(hours=h) for h in hours]
    _populate(store, clock, checkpoints)
    end = CB_END + timedelta(hours=6)
    accrue_to_store(store, _contracts(), end)
    persisted = store.persisted_ledger()
    assert persisted is not None
    mark, led = persisted
    assert mark.accrued_until == end and mark.contracts_key == contracts_key(_contracts())
    assert _books(led) == EXPECTED
    assert dict(led.contract_cash) == {
        "aws-cb": pytest.approx((1440.0, 0.0)),
        "aws-edp": pytest.approx((480.0, 480.0)),
    }
    (pool,) = led.reserved
    got = (pool.paid_node_hours, pool.running_node_hours, pool.used_node_hours, pool.usd)
    assert got == pytest.approx((48.0, 47.0, 47.0, 1440.0))
    # The same books as one accrual of the whole usage.
    whole = accrue(usage_intervals(store, end), _contracts(), end)
    assert _books(whole) == _books(led)


def test_keeping_the_books_twice_at_one_instant_adds_nothing(
    store: Store, clock: FakeClock
) -> None:
    _populate(store, clock, [])
    at = CB_START + timedelta(hours=20)
    assert accrue_to_store(store, _contracts(), at)
    assert not accrue_to_store(store, _contracts(), at)
    assert not accrue_to_store(store, _contracts(), at - timedelta(hours=1))
    persisted = store.persisted_ledger()
    assert persisted is not None
    # alpha: 12 h x 2 in January, 8 h x 2 in February.
    assert _books(persisted[1])[(FEB, "aws-cb", "reserved", "alpha")] == pytest.approx(
        (16.0, 480.0)
    )


def test_a_stale_writer_changes_nothing(store: Store, clock: FakeClock) -> None:
    _populate(store, clock, [])
    at = CB_START + timedelta(hours=10)
    accrue_to_store(store, _contracts(), at)
    mark = store.ledger_mark()
    later = CB_START + timedelta(hours=20)
    part = accrue(usage_intervals(store, later, at), _contracts(), later, since=at)
    assert store.add_ledger(part, contracts_key(_contracts()), mark)
    # A second writer that read the same mark (a daemon that lost its lease).
    assert not store.add_ledger(part, contracts_key(_contracts()), mark)
    persisted = store.persisted_ledger()
    assert persisted is not None
    assert _books(persisted[1])[(JAN, "aws-cb", "reserved", "alpha")] == pytest.approx(
        (24.0, 720.0)
    )


def test_two_writers_at_once_one_wins(store: Store, clock: FakeClock, db_url: str) -> None:
    """Two stores on one database add the same increment at the same moment, five
    times over: each time exactly one of them writes it."""
    import threading

    _populate(store, clock, [])
    key = contracts_key(_contracts())
    others = [open_store(db_url, clock=clock) for _ in range(2)]
    try:
        t = CB_START
        for _ in range(5):
            mark = store.ledger_mark()
            later = t + timedelta(hours=5)
            part = accrue(usage_intervals(store, later, t), _contracts(), later, since=t)
            if mark is None:
                part = accrue(usage_intervals(store, later), _contracts(), later)
            gate = threading.Barrier(2)
            won: list[bool] = []

            def write(
                s: Store, gate: threading.Barrier, won: list[bool], part: Ledger, mark: object
            ) -> None:
                gate.wait()
                won.append(s.add_ledger(part, key, mark))  # type: ignore[arg-type]

            threads = [
                threading.Thread(target=write, args=(s, gate, won, part, mark)) for s in others
            ]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert sorted(won) == [False, True]
            t = later
    finally:
        for s in others:
            s.close()
    persisted = store.persisted_ledger()
    assert persisted is not None
    assert persisted[0].accrued_until == CB_START + timedelta(hours=25)
    books = _books(persisted[1])
    # 25 h of the block: alpha 2 x 12 h in January, 2 x 11.5 h in February
    assert books[(JAN, "aws-cb", "reserved", "alpha")] == (24.0, 720.0)
    assert books[(FEB, "aws-cb", "reserved", "alpha")] == (23.0, 690.0)


_KILLED_MID_WRITE = """
import os, signal, sys
from datetime import datetime
from intercloud.contracts.accrual import accrue_to_store
from intercloud.store import open_store
from intercloud.store.ledger_repo import LedgerRepo
sys.path.insert(0, {tests!r})
from test_ledger_persisted import _contracts

real = LedgerRepo._add_pools

def add_pools_then_die(conn, pools):
    real(conn, pools)  # accruals and cash written, the mark not yet moved
    os.kill(os.getpid(), signal.SIGKILL)

LedgerRepo._add_pools = staticmethod(add_pools_then_die)
store = open_store({url!r})
accrue_to_store(store, _contracts(), datetime.fromisoformat({at!r}))
"""


def test_a_writer_killed_inside_its_transaction_leaves_no_trace(
    store: Store, clock: FakeClock, db_url: str
) -> None:
    _populate(store, clock, [])
    first = CB_START + timedelta(hours=3)
    accrue_to_store(store, _contracts(), first)
    at = CB_END + timedelta(hours=6)
    script = _KILLED_MID_WRITE.format(
        tests=str(Path(__file__).parent), url=db_url, at=at.isoformat()
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == -9, r.stderr
    mark = store.ledger_mark()
    assert mark is not None and mark.accrued_until == first
    # The loop restarted: it accrues the same stretch once.
    assert accrue_to_store(store, _contracts(), at)
    persisted = store.persisted_ledger()
    assert persisted is not None
    assert _books(persisted[1]) == EXPECTED


def test_changed_contracts_accrue_the_history_again(store: Store, clock: FakeClock) -> None:
    _populate(store, clock, [CB_START + timedelta(hours=h) for h in (4, 13)])
    at = CB_END + timedelta(hours=6)
    accrue_to_store(store, _contracts(), at)
    cheaper = _contracts(discount=0.5)
    assert accrue_to_store(store, cheaper, at + timedelta(hours=1))
    persisted = store.persisted_ledger()
    assert persisted is not None
    mark, led = persisted
    assert mark.contracts_key == contracts_key(cheaper)
    assert _books(led)[(JAN, "aws-edp", "committed", "beta")] == pytest.approx((6.0, 300.0))


def test_status_draws_the_persisted_ledger_and_the_tail(store: Store, clock: FakeClock) -> None:
    _populate(store, clock, [])
    accrue_to_store(store, _contracts(), CB_START + timedelta(hours=15))
    at = CB_END + timedelta(hours=6)
    led, until = drawn_ledger(store, _contracts(), at)
    assert until == CB_START + timedelta(hours=15)
    assert _books(led) == EXPECTED
    fresh = accrue(usage_intervals(store, at), _contracts(), at)
    assert led.months == fresh.months
    assert dict(led.recent_usd_per_hour) == pytest.approx(dict(fresh.recent_usd_per_hour))
    assert dict(led.contract_cash) == {k: pytest.approx(v) for k, v in fresh.contract_cash.items()}
    # Before the mark, or under other contracts: from the usage alone.
    assert drawn_ledger(store, _contracts(), CB_START + timedelta(hours=2))[1] is None
    assert drawn_ledger(store, _contracts(discount=0.1), at)[1] is None


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env["INTERCLOUD_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


CONTRACTS_YAML = """
contracts:
  - name: local-edp
    provider: local
    term: {start: 2026-01-01, end: 2027-01-01}
    commitment: {total_usd: 1000}
    discount: 0.5
"""


def test_the_daemon_keeps_the_books_and_status_reads_them(tmp_path: Path) -> None:
    """A real daemon runs a job on the local provider with a ledger step every pass;
    ``contracts status`` then reads the ledger it persisted."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "contracts.yaml").write_text(CONTRACTS_YAML)
    (home / "config.yaml").write_text("contracts: [contracts.yaml]\n")
    (home / "job.yaml").write_text("name: tick\nrun: sleep 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env |= {
        "INTERCLOUD_HOME": str(home),
        "INTERCLOUD_LEDGER_EVERY_S": "0",
        "INTERCLOUD_LOCAL_CPUS": "8",
        "INTERCLOUD_DAEMON_IDLE_EXIT": "2",
    }
    try:
        r = subprocess.run(
            [sys.executable, "-m", "intercloud", "run", str(home / "job.yaml")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert r.returncode == 0, r.stderr
        with open_store(f"sqlite:///{home / 'state.db'}") as s:
            mark = s.ledger_mark()
        assert mark is not None
        r = _cli(home, "contracts", "status", "--json")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["persisted_until"] is not None
        (c,) = data["contracts"]
        assert c["name"] == "local-edp"
    finally:
        subprocess.run(
            [sys.executable, "-m", "intercloud", "daemon", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
            cwd=REPO,
        )


def test_a_ledger_step_that_fails_never_stops_the_loop(
    store: Store,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The store unreachable while the books are kept: one warning, no exception into the
    loop, and the next pass accrues what this one could not."""
    from intercloud.contracts import accrual
    from intercloud.store import StoreError

    _populate(store, clock, [])

    def down(*args: object, **kw: object) -> list[object]:
        raise StoreError("state.db: unreachable")

    step = accrual.LedgerAccrual(store, _contracts(), every_s=0, clock=lambda: clock.now)
    monkeypatch.setattr(accrual, "usage_intervals", down)
    assert step() is False
    assert "ledger: not kept" in caplog.text and store.ledger_mark() is None
    monkeypatch.undo()
    assert step() is False
    persisted = store.persisted_ledger()
    assert persisted is not None and _books(persisted[1]) == EXPECTED
