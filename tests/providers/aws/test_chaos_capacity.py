"""Chaos: AWS refuses capacity on the scheduler's first choice.

Two providers are enabled: local sites posing as ``gcp`` (dear) and AWS on moto (cheap),
AWS behind a proxy that answers ``RunInstances`` with EC2's
``InsufficientInstanceCapacity``. The job goes to AWS first (cheaper); the refusal puts
the offering in a cool-down (an event, and ``status`` shows it); the next scheduler
step runs the job on gcp by its usual rules, with one ``RunInstances`` call, not a retry
storm. Once AWS answers again and the cool-down is over, the next job goes to AWS.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from chaos_helpers import (
    assert_invariants,
    ic,
    log_tail,
    store_of,
    submit,
    wait_for,
    write_config,
)
from ec2_proxy import Ec2Proxy
from vm_booter import VmBooter

SPEC = (
    "kind: training\nname: {name}\nresources: {{cpus: '2+'}}\n"
    "run: echo ran on $INTERCLOUD_PROVIDER\n"
)


def test_capacity_refusal_cools_the_offering_down_and_the_job_runs_on_the_next(
    tmp_path: Path, moto_endpoint: str, moto_image: str, ec2: Any
) -> None:
    home = tmp_path / "home"
    cluster = f"cap-{uuid.uuid4().hex[:8]}"
    spec1, spec2 = tmp_path / "one.yaml", tmp_path / "two.yaml"
    spec1.write_text(SPEC.format(name="refused-then-gcp"))
    spec2.write_text(SPEC.format(name="back-on-aws"))
    with Ec2Proxy(moto_endpoint) as proxy, VmBooter(ec2, cluster, tmp_path / "vms") as booter:
        write_config(
            home,
            proxy.url,
            cluster,
            moto_image,
            extra="failover: {cooldown_s: {first: 20, max: 60}}\n",
        )
        proxy.refuse_run = "InsufficientInstanceCapacity"
        try:
            job1 = submit(home, spec1)
            # status shows the cool-down while it lasts (looked at as soon as it begins:
            # on a loaded box the job may take longer than the cool-down to finish)
            _wait_blocked(home)
            shown = ic(home, "status").stdout
            assert "cooling down" in shown and "aws/us-east-1" in shown, shown
            st = wait_for(home, job1, ("SUCCEEDED", "FAILED", "CANCELLED"))
            assert st["state"] == "SUCCEEDED", f"{st}\n{log_tail(home)}"
            assert st["placement"]["provider"] == "gcp", st["placement"]
            # one refused launch, then the cool-down: no retry storm
            assert proxy.count("RunInstances") == 1, proxy.calls
            store = store_of(home)
            try:
                blocked = [e for e in store.events(None) if e.kind == "offering_blocked"]
                failed = store.instances(states=["failed"])
            finally:
                store.close()
            assert len(blocked) == 1 and "InsufficientInstanceCapacity" in (
                blocked[0].reason or ""
            ), blocked
            assert [r.provider for r in failed] == ["aws"], failed
            # AWS answers again: once the cool-down is over, the cheaper provider wins
            proxy.refuse_run = None
            _wait_cooled(home)
            job2 = submit(home, spec2)
            st2 = wait_for(home, job2, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=120)
            assert st2["state"] == "SUCCEEDED", f"{st2}\n{log_tail(home)}\n{booter.errors}"
            assert st2["placement"]["provider"] == "aws", st2["placement"]
            assert "ran on aws" in ic(home, "logs", str(job2)).stdout
            assert proxy.count("RunInstances") == 2, proxy.calls
            _wait_released(home)
            assert_invariants(home, [job1, job2], ec2, cluster)
            assert "Traceback" not in log_tail(home, 10**7)
        finally:
            ic(home, "daemon", "stop", timeout=60)


def _wait_released(home: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        store = store_of(home)
        try:
            rows = store.instances(
                states=["requested", "allocated", "running", "draining", "terminating"]
            )
        finally:
            store.close()
        if not rows:
            return
        time.sleep(1)
    raise AssertionError(f"instances still live: {rows}")


def _wait_blocked(home: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        store = store_of(home)
        try:
            if store.active_blocks():
                return
        finally:
            store.close()
        time.sleep(0.2)
    raise AssertionError(f"no cool-down began: {log_tail(home)}")


def _wait_cooled(home: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        store = store_of(home)
        try:
            if not store.active_blocks():
                return
        finally:
            store.close()
        time.sleep(0.5)
    raise AssertionError("the cool-down did not end")
