"""A live loop at fleet scale for the control-plane benchmark (``bench/control.py``).

``build_fleet_store(store, cloud, ...)`` fills a store with a steady fleet: ``jobs_per``
one-node and ``gangs_per`` three-node jobs RUNNING on every offering of ``cloud`` (each
node on its own RUNNING instance, bound and assigned, its node record running), then
``pending`` PENDING jobs asking for 1 to 4 nodes of H100:8 or A100:8 anywhere. Every
pool is at its configured maximum, so the pending jobs hold: the loop's steady state
with a queue.

How it is built: the first jobs of each offering go through the real live loop
(``live_loop``: submit, provision, launch, bind, start), which writes every row the way
the control plane does; those rows are then cloned in bulk (new ids, the references
between rows rewritten), because creating 10,000 instances one guarded transaction at a
time would take minutes and measure nothing the benchmark is about.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench_cloud import BenchCloud, BenchProvider
from intercloud.config import IntercloudConfig, PoolsConfig
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.live import LiveCapacity
from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.model import Offering
from intercloud.store import Store
from intercloud.store.tables import AttemptModel, InstanceModel, NodeModel, WorkloadModel

#: the bench cloud stands in for AWS (specs may name only known providers); nothing here
#: talks to AWS
PROVIDER = "aws"

__all__ = ["bench_offerings", "build_fleet_store", "live_loop", "pending_spec", "pinned_spec"]

_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1", "eu-central-1")
_GPUS = (("H100", "p5.48xlarge", 98.0), ("A100", "p4d.24xlarge", 33.0))


def bench_offerings(regions: int = 5) -> list[Offering]:
    """``regions`` regions (at most 6) x 2 zones x {H100:8, A100:8}: ``4 * regions``
    offerings; zone b costs 0.5 USD/h more than zone a, a later region 1 USD/h more."""
    out = []
    for r in range(regions):
        region = _REGIONS[r]
        for z in "ab":
            for acc, itype, price in _GPUS:
                out.append(
                    Offering(
                        PROVIDER,
                        region,
                        f"{region}{z}",
                        itype,
                        acc,
                        8,
                        vcpus=192,
                        memory_gib=2048,
                        on_demand_price=price + r + (z == "b") / 2,
                    )
                )
    return out


def pinned_spec(name: str, o: Offering, nodes: int) -> str:
    """A training job of ``nodes`` nodes that only ``o`` can run."""
    return (
        f"kind: training\nname: {name}\nnum_nodes: {nodes}\n"
        f"resources: {{accelerators: {o.accelerator}:8, providers: [{PROVIDER}], "
        f"zones: [{o.zone}], instance_type: {o.instance_type}}}\n"
        "duration: 4h\nrun: 'sleep 3600'\n"
    )


def pending_spec(name: str, rng: random.Random) -> str:
    """A training job of 1 to 4 nodes of H100:8 or A100:8, anywhere."""
    acc = rng.choice(("H100", "A100"))
    return (
        f"kind: training\nname: {name}\nnum_nodes: {rng.choice((1, 1, 2, 4))}\n"
        f"resources: {{accelerators: {acc}:8, providers: [{PROVIDER}]}}\n"
        f"duration: {rng.choice((1, 2, 8))}h\nrun: 'python train.py'\n"
    )


def live_loop(
    store: Store, cloud: BenchCloud, home: Path, max_instances: int, idle_s: float = 3600.0
) -> tuple[Reconciler, LiveCapacity]:
    """The daemon's live loop over ``cloud`` alone (as ``control.daemon`` wires it, with the
    bench provider in place of the registry's), recovered and ready to ``step``."""
    config = IntercloudConfig(
        providers={}, pools=PoolsConfig(max_instances=max_instances, idle_s=idle_s)
    )
    live = LiveCapacity(store, config, home)
    bridge = live.add(PROVIDER, BenchProvider(cloud, PROVIDER))
    loop = Reconciler(store, {PROVIDER: bridge}, decider=FleetDecider(), retry_backoff_s=(0.0, 0.0))
    live.start()
    live.attach(loop)
    live.recover()
    loop.recover()
    return loop, live


def _run_until_running(loop: Reconciler, store: Store, ids: Sequence[int], steps: int) -> None:
    for _ in range(steps):
        loop.step()
        states = {store.get(i).state for i in ids}
        if states == {JobState.RUNNING}:
            return
    raise SystemExit(f"seed jobs not running after {steps} steps: {sorted(states)}")


def build_fleet_store(
    store: Store,
    url: str,
    cloud: BenchCloud,
    home: Path,
    *,
    jobs_per: int,
    gangs_per: int,
    pending: int,
    seed: int = 1,
) -> dict[str, int]:
    """Fill ``store`` (module docstring); returns the counts made."""
    offerings = list(cloud.sells)
    per_pool = jobs_per + 3 * gangs_per
    loop, _live = live_loop(store, cloud, home, max_instances=per_pool)
    templates: list[tuple[Offering, int, int]] = []  # offering, one-node job, gang
    ids: list[int] = []
    for k, o in enumerate(offerings):
        one = store.submit("training", f"seed-{k}-1", pinned_spec(f"seed-{k}-1", o, 1))
        three = store.submit("training", f"seed-{k}-3", pinned_spec(f"seed-{k}-3", o, 3))
        templates.append((o, one, three))
        ids += [one, three]
    _run_until_running(loop, store, ids, steps=12)
    loop.close()

    made = {"running_jobs": 0, "instances": 0}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cloner = _Cloner(conn, cloud)
        for _o, one, three in templates:
            cloner.clone(one, jobs_per - 1)
            cloner.clone(three, gangs_per - 1)
        made["running_jobs"] = len(ids) + cloner.jobs
        made["instances"] = 4 * len(offerings) + cloner.instances
        cloner.flush()
    rng = random.Random(seed)
    rows = []
    with engine.connect() as conn:
        base = dict(conn.execute(_by(WorkloadModel, "id", templates[0][1])).mappings().one())
    for i in range(pending):
        text = pending_spec(f"queued-{i}", rng)
        rows.append(
            {
                **base,
                "name": f"queued-{i}",
                "spec_text": text,
                "state": JobState.PENDING.value,
                "attempt": 0,
                "placement": None,
                "reason": None,
                "reason_code": None,
                "version": 1,
                "submission": None,
                "priority": 0,
                "max_restarts": 0,
                "id": None,
            }
        )
    with engine.begin() as conn:
        for r in rows:
            r.pop("id")
        conn.execute(sa.insert(WorkloadModel.__table__), rows)
    if engine.dialect.name == "postgresql":
        # the planner's statistics of a database that has held such a fleet for more
        # than a minute (autovacuum analyses a table once a tenth of it changed): a
        # database filled a moment ago has none, and plans as if its tables were empty
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    made["pending_jobs"] = pending
    return made


class _Cloner:
    """Copies of a RUNNING job with its attempt, nodes and instances (new ids; the ids
    inside placements, allocations, node extras and assignments rewritten)."""

    def __init__(self, conn: sa.Connection, cloud: BenchCloud) -> None:
        self.conn = conn
        self.cloud = cloud
        self.jobs = 0
        self.instances = 0
        self._batches: dict[str, list[dict[str, Any]]] = {}
        self._next_job = _max_id(conn, WorkloadModel) + 1
        self._next_inst = _max_id(conn, InstanceModel) + 1
        self._seq: Iterator[int] = itertools.count(1)

    def clone(self, job: int, copies: int) -> None:
        c = self.conn
        w = dict(c.execute(_by(WorkloadModel, "id", job)).mappings().one())
        atts = [dict(r) for r in c.execute(_by(AttemptModel, "workload_id", job)).mappings()]
        nodes = [dict(r) for r in c.execute(_by(NodeModel, "workload_id", job)).mappings()]
        insts = [dict(r) for r in c.execute(_by(InstanceModel, "workload_id", job)).mappings()]
        for _ in range(copies):
            jid = self._next_job
            self._next_job += 1
            imap = {}
            for inst in insts:
                imap[inst["id"]] = self._next_inst
                self._next_inst += 1
            rid = f"clone-{next(self._seq)}"
            vms = self.cloud.add_running(
                rid, (inst["provider"], inst["region"], inst["zone"], inst["instance_type"]),
                len(insts),
            )  # fmt: skip
            subst = _Subst(job, jid, imap)
            self._add(WorkloadModel, {**subst(w), "id": jid, "name": f"{w['name']}-{jid}"})
            for a in atts:
                self._add(AttemptModel, {**subst(a), "id": None})
            for n in nodes:
                self._add(NodeModel, {**subst(n), "id": None})
            ranked = sorted(insts, key=lambda r: r["rank"])
            for slot, (inst, vm) in enumerate(zip(ranked, vms, strict=True)):
                self._add(
                    InstanceModel,
                    {**subst(inst), "id": imap[inst["id"]], "request_id": rid, "slot": slot,
                     "provider_instance_id": vm, "address": self.cloud.vms[vm].address},
                )  # fmt: skip
            self.jobs += 1
            self.instances += len(insts)

    def _add(self, model: Any, row: dict[str, Any]) -> None:
        if row.get("id") is None:
            row.pop("id", None)
        self._batches.setdefault(model.__tablename__, []).append(row)

    def flush(self) -> None:
        order = (WorkloadModel, AttemptModel, NodeModel, InstanceModel)
        for model in order:
            rows = self._batches.pop(model.__tablename__, [])
            for i in range(0, len(rows), 2000):
                self.conn.execute(sa.insert(model.__table__), rows[i : i + 2000])
        if self.conn.dialect.name == "postgresql":
            for model in (WorkloadModel, InstanceModel):
                t = model.__tablename__
                self.conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                        f"(SELECT max(id) FROM {t}))"
                    )
                )


_JOB_KEYS = frozenset({"job_id", "workload_id", "for_job", "INTERCLOUD_JOB_ID"})


class _Subst:
    """Rewrites job and instance ids inside a row (JSON included)."""

    def __init__(self, old_job: int, new_job: int, imap: dict[int, int]) -> None:
        self.old_job, self.new_job, self.imap = old_job, new_job, imap
        self.old_alloc, self.new_alloc = f"{old_job}-a", f"{new_job}-a"

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: self._value(k, v) for k, v in row.items()}
        if "workload_id" in row and row["workload_id"] == self.old_job:
            out["workload_id"] = self.new_job
        return out

    def _value(self, key: str, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: self._value(k, x) for k, x in v.items()}
        if isinstance(v, list):
            return [self._value(key, x) for x in v]
        if key in ("instance_id", "instances") and isinstance(v, int):
            return self.imap.get(v, v)
        if key in _JOB_KEYS and v == self.old_job:
            return self.new_job
        if key in _JOB_KEYS and v == str(self.old_job):
            return str(self.new_job)
        if key == "key" and isinstance(v, str) and v.startswith(f"{self.old_job}/"):
            return f"{self.new_job}/{v.split('/', 1)[1]}"
        if isinstance(v, str) and v.startswith(self.old_alloc):
            return self.new_alloc + v[len(self.old_alloc) :]
        return v


def _by(model: Any, column: str, value: int) -> sa.Select[Any]:
    t = model.__table__
    return sa.select(t).where(t.c[column] == value)


def _max_id(conn: sa.Connection, model: Any) -> int:
    t = model.__table__
    return int(conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0)
