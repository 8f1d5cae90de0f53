"""Group commit (``api.group_commit``) and ``Store.write_batch`` on both backends:
concurrent submissions share one transaction, each is answered with its own id only
once stored, with its audit row; a bad write fails alone; a batch is all or nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from intercloud.api.group_commit import GroupCommitter
from intercloud.store import Store
from intercloud.store.errors import UnknownTenant


def _args(name: str, tenant: str = "default") -> dict[str, Any]:
    return {
        "kind": "training",
        "name": name,
        "spec_text": f"kind: training\nname: {name}\nrun: 'true'\n",
        "tenant": tenant,
        "submission": {"plan": {"provider": "local"}},
    }


def _audit(name: str) -> dict[str, Any]:
    return {"method": "POST", "path": "/v1/workloads", "status": 201, "tenant": name}


class _Gated:
    """The store's ``write_batch``, counting calls; the first waits for ``gate``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[int] = []
        self.gate = threading.Event()
        self._write = store.write_batch

    def __call__(
        self, submissions: Sequence[Mapping[str, Any]], audits: Sequence[Mapping[str, Any]] = ()
    ) -> list[int]:
        if not self.calls:
            self.gate.wait(30)
        self.calls.append(len(submissions) + len(audits))
        return self._write(submissions, audits)


def test_concurrent_submissions_share_a_commit_and_get_their_own_ids(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated = _Gated(store)
    monkeypatch.setattr(store, "write_batch", gated)
    committer = GroupCommitter(store)

    async def main() -> list[int]:
        first = asyncio.ensure_future(committer.submit(_args("j0"), _audit("a0")))
        await asyncio.sleep(0.2)  # the committer holds j0, blocked in its write
        rest = [committer.submit(_args(f"j{i}"), _audit(f"a{i}")) for i in range(1, 50)]
        waiting = asyncio.gather(*rest)
        await asyncio.sleep(0.2)
        gated.gate.set()
        return [await first, *await waiting]

    try:
        ids = asyncio.run(main())
    finally:
        committer.close()
    assert len(set(ids)) == 50
    assert gated.calls == [2, 98]  # j0 with its audit row, then the 49 others with theirs
    for i, job_id in enumerate(ids):
        assert store.get(job_id).name == f"j{i}"
    targets = {a.tenant: a.target for a in store.audit(limit=1000)}
    assert all(targets[f"a{i}"] == f"workload {job_id}" for i, job_id in enumerate(ids))
    assert all(store.events(job_id)[0].reason == "submitted" for job_id in ids)


def test_a_bad_write_fails_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    gated = _Gated(store)
    monkeypatch.setattr(store, "write_batch", gated)
    committer = GroupCommitter(store)

    async def main() -> list[Any]:
        calls = [
            asyncio.ensure_future(c)
            for c in (
                committer.submit(_args("good1"), None),
                committer.submit(_args("bad", tenant="nobody"), None),
                committer.audit(_audit("a")),
                committer.submit(_args("good2"), None),
            )
        ]
        await asyncio.sleep(0.2)  # all queued: the first write holds good1 at the gate
        gated.gate.set()
        return list(await asyncio.gather(*calls, return_exceptions=True))

    try:
        good1, bad, audited, good2 = asyncio.run(main())
    finally:
        committer.close()
    assert isinstance(bad, UnknownTenant)
    # a batch holding the bad one was refused, then its writes were tried one by one
    assert max(gated.calls) >= 3 and gated.calls[-3:] == [1, 1, 1]
    assert audited is None
    assert store.get(good1).name == "good1" and store.get(good2).name == "good2"
    assert [w.name for w in store.list_workloads()] == ["good1", "good2"]


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(UnknownTenant):
        store.write_batch([_args("x"), _args("y", tenant="nobody")], [_audit("a")])
    assert store.list_workloads() == [] and store.audit() == []


def test_daemon_checks_refuse_or_report_stored(store: Store) -> None:
    def refuse() -> None:
        raise RuntimeError("the daemon serves another database")

    def broken() -> None:
        raise RuntimeError("the daemon could not start")

    refusing = GroupCommitter(store, before_submit=refuse)
    try:
        with pytest.raises(RuntimeError, match="another database"):
            asyncio.run(refusing.submit(_args("refused"), None))
        assert store.list_workloads() == []
    finally:
        refusing.close()
    starting = GroupCommitter(store, after_submit=broken)
    try:
        with pytest.raises(RuntimeError, match=r"job (\d+) is stored, but the daemon") as err:
            asyncio.run(starting.submit(_args("kept"), None))
    finally:
        starting.close()
    job_id = int(str(err.value).split()[1])
    assert store.get(job_id).name == "kept"


def test_batches_of_every_size_keep_order_fields_and_audit_targets(store: Store) -> None:
    """Batches of several sizes (on PostgreSQL one prepared statement serves them all):
    each row as given, ids in the submissions' order, each audit row aimed at its own
    submission or left as given, the ``submitted`` event of each."""
    store.create_tenant("other")
    seen: list[int] = []
    for size in (1, 7, 2, 40, 3, 1, 12):
        subs = [
            {
                **_args(f"n{size}-{i}", tenant="other" if i % 3 == 0 else "default"),
                "priority": i - 2,
                "max_restarts": i % 4,
                "kind": "batch" if i % 2 else "training",
                "submission": None if i % 5 == 0 else {"i": i, "text": 'é\n"q"'},
            }
            for i in range(size)
        ]
        audits = [{**_audit(f"s{size}-{i}"), "target_of": i} for i in range(size)]
        audits.insert(1, {**_audit(f"plain{size}"), "target": "tenant x", "token_id": 5})
        ids = store.write_batch(subs, audits)
        assert ids == sorted(ids) and len(set(ids)) == size
        assert not set(ids) & set(seen)
        seen += ids
        for i, job_id in enumerate(ids):
            w = store.get(job_id)
            assert (w.name, w.tenant, w.priority, w.max_restarts, w.kind.value) == (
                f"n{size}-{i}",
                "other" if i % 3 == 0 else "default",
                i - 2,
                i % 4,
                "batch" if i % 2 else "training",
            )
            assert w.submission == subs[i]["submission"]
            assert w.spec_text == subs[i]["spec_text"]
            assert w.state.value == "PENDING" and w.version == 1
            assert [e.reason for e in store.events(job_id)] == ["submitted"]
    rows = {a.tenant: a for a in store.audit(limit=10_000)}
    for size in (1, 7, 2, 40, 3, 12):
        assert rows[f"plain{size}"].target == "tenant x" and rows[f"plain{size}"].token_id == 5
    by_name = {store.get(i).name: i for i in seen}
    for size in (1, 7, 2, 40, 3, 12):
        for i in range(size):
            assert rows[f"s{size}-{i}"].target == f"workload {by_name[f'n{size}-{i}']}"
