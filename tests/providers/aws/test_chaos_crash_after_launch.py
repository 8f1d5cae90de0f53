"""Chaos: the daemon is killed (SIGKILL) between ``run_instances`` and its record.

The proxy in front of moto lets the ``RunInstances`` call through, and as soon as moto
has answered (the instance exists) and before the daemon hears it, the test kills the
daemon. The next daemon adopts the instance by its tags (``recover``): exactly one set
of instances exists, ``RunInstances`` was called once, and the job completes on it.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
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


def _daemon_pid(home: Path) -> int:
    return int((home / "daemon.pid").read_text().split()[0])


def test_a_daemon_killed_between_launch_and_record_adopts_exactly_one_set(
    tmp_path: Path, moto_endpoint: str, moto_image: str, ec2: Any
) -> None:
    home = tmp_path / "home"
    cluster = f"crash-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: training\nname: adopted\nresources: {cpus: '2+', providers: [aws]}\n"
        "run: echo ran on $INTERCLOUD_PROVIDER\n"
    )
    killed: list[int] = []

    def kill_daemon() -> None:
        if not killed:
            pid = _daemon_pid(home)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with Ec2Proxy(moto_endpoint) as proxy, VmBooter(ec2, cluster, tmp_path / "vms") as booter:
        write_config(home, proxy.url, cluster, moto_image)
        proxy.after_run = kill_daemon
        try:
            job = submit(home, spec)
            deadline = time.monotonic() + 30
            while not killed:
                assert time.monotonic() < deadline, f"RunInstances never came\n{log_tail(home)}"
                time.sleep(0.2)
            while psutil.pid_exists(killed[0]):
                time.sleep(0.1)
            # the launch happened, its record did not: the row still waits for it
            store = store_of(home)
            try:
                assert [r.state for r in store.instances()] == ["requested"]
                assert store.get(job).state.value == "PENDING"
            finally:
                store.close()
            out = ic(home, "daemon", "start")
            assert out.returncode == 0, out.stderr
            st = wait_for(home, job, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=90)
            assert st["state"] == "SUCCEEDED", f"{st}\n{log_tail(home)}\n{booter.errors}"
            assert st["placement"]["provider"] == "aws"
            assert proxy.count("RunInstances") == 1, proxy.calls
            every = ec2.describe_instances(
                Filters=[{"Name": "tag:intercloud:cluster", "Values": [cluster]}]
            )
            ids = [i["InstanceId"] for r in every["Reservations"] for i in r["Instances"]]
            assert len(ids) == 1, ids  # exactly one set (of one instance)
            assert len(booter.vms) == 1
            assert_invariants(home, [job], ec2, cluster)
        finally:
            ic(home, "daemon", "stop", timeout=60)
