"""The live loop as the daemon assembles it (``control.live.LiveCapacity`` + the job
``Reconciler`` + the fleet decider) on a fake cloud: a job makes the scheduler launch
an instance, runs on it, and the idle instance is released; a capacity refusal cools
the offering down and the job runs on the next one; a provider whose calls all fail is
marked down and its jobs hold with that reason. The node agents are played through the
store (``agents``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from control_helpers import spec
from fake_cloud import OFFER, OTHER, FakeCloud, FakeProvider

from intercloud.config import IntercloudConfig, PoolsConfig, load_config
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.live import OK_REFRESH, LiveCapacity
from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.providers.contract import FailureKind
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import Store
from intercloud.store.records import AssignmentState
from intercloud.store.testing import FakeClock

A = AssignmentState


def agents(store: Store, exit_code: int = 0) -> None:
    """Every node agent starts what it was assigned and ends it with ``exit_code``."""
    for r in store.instances(bound=True):
        if r.state not in ("running", "draining"):
            continue
        if r.assignment_state is A.ASSIGNED:
            store.set_assignment_state(r.id, A.ASSIGNED, A.STARTED)
        elif r.assignment_state is A.STARTED:
            if (r.assignment or {}).get("kill"):
                store.set_assignment_state(r.id, A.STARTED, A.KILLED)
            else:
                store.set_assignment_state(r.id, A.STARTED, A.EXITED, exit_code=exit_code)


def config(tmp_path: Path, text: str) -> IntercloudConfig:
    (tmp_path / "config.yaml").write_text(text)
    return load_config({"INTERCLOUD_HOME": str(tmp_path)}, tmp_path)


def loop(
    store: Store, clock: FakeClock, cfg: IntercloudConfig, provider: FakeProvider, home: Path
) -> tuple[Reconciler, LiveCapacity]:
    live = LiveCapacity(store, cfg, home, clock=clock)
    bridges = {"fake": live.add("fake", provider)}
    live.start()
    rec = Reconciler(
        store,
        bridges,
        decider=FleetDecider(),
        retry_backoff_s=(0.0, 0.0),
        wall_clock=lambda: clock().timestamp(),
    )
    live.attach(rec)
    live.recover()
    rec.recover()
    return rec, live


def run_until(
    rec: Reconciler, store: Store, clock: FakeClock, done: Callable[[], bool], steps: int = 40
) -> None:
    for _ in range(steps):
        rec.step()
        agents(store)
        clock.tick(1)
        if done():
            return
    raise AssertionError(f"not done after {steps} steps: {store.instances()}")


JOB = spec("python train.py", instance_type="gpu8")


def test_a_job_launches_an_instance_runs_there_and_the_idle_instance_goes(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    cfg = config(tmp_path, "providers: {local: {}}\npools: {idle_s: 30, max_instances: 2}\n")
    provider = FakeProvider(FakeCloud())
    rec, _ = loop(store, clock, cfg, provider, tmp_path)
    try:
        job = store.submit("training", "j", JOB)
        run_until(rec, store, clock, lambda: store.get(job).state is JobState.SUCCEEDED)
        (inst,) = store.instances()
        assert inst.state == "running" and inst.idle  # back in its pool
        assert len(provider.launch_calls) == 1  # one launch, by the scheduler's PROVISION
        clock.tick(31)
        run_until(rec, store, clock, lambda: store.instances()[0].state == "terminated")
        assert rec.busy == 0  # nothing keeps the daemon up any more
    finally:
        rec.close()


def test_a_refused_offering_cools_down_and_the_job_runs_on_the_next(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    cfg = config(tmp_path, "providers: {local: {}}\nfailover: {cooldown_s: {first: 600}}\n")
    cloud = FakeCloud(refuse={OFFER: FailureKind.CAPACITY})
    provider = FakeProvider(cloud)
    rec, _ = loop(store, clock, cfg, provider, tmp_path)
    try:
        job = store.submit("training", "j", JOB)
        run_until(rec, store, clock, lambda: store.get(job).state is JobState.SUCCEEDED)
        (block,) = store.active_blocks(clock())
        assert block.zone == OFFER[2] and block.kind == FailureKind.CAPACITY.value
        used = [r for r in store.instances() if r.state != "failed"]
        assert [r.zone for r in used] == [OTHER[2]]  # ran in the other zone
        refused = [c for c in provider.launch_calls if c.offering == OFFER]
        assert len(refused) == 1  # no retry storm while it cools down
        events = [e for e in store.events() if e.kind == "offering_blocked"]
        assert events and "fake refuses" in (events[0].reason or "")
    finally:
        rec.close()


def test_a_provider_failing_every_call_is_down_and_its_jobs_say_so(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    cfg = config(tmp_path, "providers: {local: {}}\nfailover: {down_after_s: 5}\n")
    cloud = FakeCloud()
    provider = FakeProvider(cloud)
    rec, _ = loop(store, clock, cfg, provider, tmp_path)
    try:
        rec.step()  # offerings known while it answers
        cloud.down = True
        job = store.submit("training", "j", JOB)
        run_until(rec, store, clock, lambda: store.get(job).reason_code is ReasonCode.PROVIDER_DOWN)
        (health,) = store.provider_health()
        assert health.down and "unreachable" in (health.error or "")
        assert "provider fake is down since" in (store.get(job).reason or "")
        cloud.down = False  # it answers again: the job runs there
        run_until(rec, store, clock, lambda: store.get(job).state is JobState.SUCCEEDED)
        assert not store.provider_health()[0].down
    finally:
        rec.close()


def test_a_contract_reserved_block_is_a_pool_used_before_on_demand(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    (tmp_path / "contracts.yaml").write_text(
        "contracts:\n"
        "  - name: fake-reserved\n"
        "    provider: fake\n"
        "    term: {start: 2025-01-01, end: 2027-01-01}\n"
        "    reserved_blocks:\n"
        "      - {instance_type: gpu8, region: r1, count: 1, usd_per_node_hour: 7.0,\n"
        "         start: 2025-01-01, end: 2027-01-01}\n"
    )
    cfg = config(
        tmp_path, "providers: {local: {}}\ncontracts: [contracts.yaml]\npools: {idle_s: 60}\n"
    )
    provider = FakeProvider(FakeCloud())
    rec, _ = loop(store, clock, cfg, provider, tmp_path)
    try:
        job = store.submit("training", "j", JOB)
        run_until(rec, store, clock, lambda: store.get(job).state is JobState.SUCCEEDED)
        placement = store.get(job).placement
        assert placement is not None and placement["pricing"] == "reserved"
        reserved = [r for r in store.instances() if r.contract == "fake-reserved"]
        assert [r.pricing for r in reserved] == ["reserved"]
        # the contract keeps its reserved instance warm; on-demand ones launched while it
        # came up are released once idle
        clock.tick(400)
        run_until(
            rec,
            store,
            clock,
            lambda: all(
                r.state == "terminated" for r in store.instances() if r.pricing == "on_demand"
            ),
        )
        assert [r.state for r in store.instances() if r.contract] == ["running"]
    finally:
        rec.close()


def test_a_provider_total_caps_launches_across_its_offerings(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    # the fake provider has no plugin, so its limit is set beside the file's validation
    pools = PoolsConfig.model_validate(
        {"max_instances": 4, "providers": {"fake": {"max_instances": 1}}}
    )
    cfg = replace(config(tmp_path, "providers: {local: {}}\n"), pools=pools)
    provider = FakeProvider(FakeCloud())
    rec, _ = loop(store, clock, cfg, provider, tmp_path)
    try:
        jobs = [
            store.submit("training", f"j{i}", JOB.replace("python", f"python{i}")) for i in range(2)
        ]
        for _ in range(6):
            rec.step()
            clock.tick(1)  # no agent plays here: a started job stays running
        assert len(store.instances()) == 1  # the second gang waits for the provider's total
        states = sorted(store.get(j).state.value for j in jobs)
        assert states[0] == "PENDING" and states[1] != "PENDING"  # one runs, one waits
    finally:
        rec.close()


def test_successive_successes_are_written_every_ok_refresh_and_errors_always(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    cfg = config(tmp_path, "providers: {local: {}}\nfailover: {down_after_s: 600}\n")
    cloud = FakeCloud()
    rec, _ = loop(store, clock, cfg, FakeProvider(cloud), tmp_path)
    try:
        rec.step()
        (first,) = store.provider_health()
        assert first.last_ok_at == clock()
        start = clock()
        clock.tick(1)
        rec.step()  # answered again a second later: nothing written
        assert store.provider_health()[0].updated_at == first.updated_at
        clock.tick(OK_REFRESH.total_seconds())
        rec.step()  # older than OK_REFRESH: written again
        assert store.provider_health()[0].last_ok_at == clock() > start
        cloud.down = True
        clock.tick(1)
        rec.step()  # an error is always written
        failing = store.provider_health()[0]
        assert failing.first_error_at == clock() and not failing.down
        cloud.down = False
        clock.tick(1)
        rec.step()  # and the success after it too, however soon
        healthy = store.provider_health()[0]
        assert healthy.first_error_at is None and healthy.last_ok_at == clock()
    finally:
        rec.close()
