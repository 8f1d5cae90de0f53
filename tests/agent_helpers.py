"""Instance rows for agent tests (the full instance repository lives elsewhere: these
tests insert the few rows they need directly), and agent processes on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from intercloud.agent.bootstrap import new_bootstrap_secret, secret_hash
from intercloud.agent.protocol import Assignment
from intercloud.store import Store
from intercloud.store.agent_repo import BOOTSTRAP_HASH_KEY
from intercloud.store.tables import InstanceModel


def insert_instance(
    store: Store,
    request_id: str,
    slot: int = 0,
    *,
    secret: str | None = None,
    state: str = "allocated",
    provider_instance_id: str | None = None,
    workload_id: int | None = None,
) -> int:
    """One instance row of launch ``request_id`` whose bootstrap secret is ``secret``."""
    now = datetime.now(UTC)
    extra: dict[str, Any] = {BOOTSTRAP_HASH_KEY: secret_hash(secret)} if secret else {}
    values = {
        "request_id": request_id,
        "slot": slot,
        "provider": "aws",
        "region": "us-east-1",
        "zone": "us-east-1a",
        "instance_type": "p5.48xlarge",
        "pricing": "on_demand",
        "usd_per_hour": 1.0,
        "state": state,
        "provider_instance_id": provider_instance_id,
        "workload_id": workload_id,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "extra": extra,
    }
    with store._db.write() as conn:
        result = conn.execute(sa.insert(InstanceModel).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def set_instance_state(store: Store, instance_id: int, state: str) -> None:
    with store._db.write() as conn:
        conn.execute(
            sa.update(InstanceModel).where(InstanceModel.id == instance_id).values(state=state)
        )


def clear_assignment(store: Store, instance_id: int) -> None:
    """What unbinding does to the row: no assignment any more."""
    with store._db.write() as conn:
        conn.execute(
            sa.update(InstanceModel)
            .where(InstanceModel.id == instance_id)
            .values(assignment=None, assignment_state=None, workload_id=None)
        )


def job(run: str, *, job_id: str = "7", attempt: int = 1, rank: int = 0, **kw: Any) -> Assignment:
    return Assignment(job_id=job_id, attempt=attempt, rank=rank, run=run, **kw)


def secret() -> str:
    return new_bootstrap_secret()


def wait_for(check: Callable[[], Any], timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def agent_env(
    home: Path, url: str, request_id: str, bootstrap: str, instance: str = "i-test", slot: int = 0
) -> dict[str, str]:
    """The environment user-data would give the agent, on this machine."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "INTERCLOUD_AGENT_CONTROL_URL": url,
        "INTERCLOUD_AGENT_REQUEST_ID": request_id,
        "INTERCLOUD_AGENT_BOOTSTRAP_SECRET": bootstrap,
        "INTERCLOUD_AGENT_INSTANCE_ID": instance,
        "INTERCLOUD_AGENT_SLOT": str(slot),
        "INTERCLOUD_AGENT_HOME": str(home / "agent"),
    }


def start_agent(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "intercloud.agent", "--poll-wait", "1"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal the process group and wait; its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
