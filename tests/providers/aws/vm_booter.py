"""Plays the EC2 fleet's side while a real daemon drives it: every instance of the
cluster that moto reports running is booted once (``boot.boot``: its own user-data in a
sandbox, so its node agent enrols with the daemon's agent server), and a booted VM whose
instance ended (terminated by intercloud, or from outside: a reclaim) is shut down."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from boot import BootedVM, boot


class VmBooter:
    """A background thread booting the instances tagged ``cluster`` (see module)."""

    def __init__(self, ec2: Any, cluster: str, root: Path, interval_s: float = 0.3) -> None:
        self.ec2 = ec2
        self.cluster = cluster
        self.root = root
        self.interval_s = interval_s
        self.vms: dict[str, BootedVM] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vm-booter", daemon=True)

    def __enter__(self) -> VmBooter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for vm in self.vms.values():
            vm.stop()

    def _instances(self) -> list[tuple[str, str]]:
        found = self.ec2.describe_instances(
            Filters=[{"Name": "tag:intercloud:cluster", "Values": [self.cluster]}]
        )
        return [
            (i["InstanceId"], i["State"]["Name"])
            for r in found["Reservations"]
            for i in r["Instances"]
        ]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for iid, state in self._instances():
                    vm = self.vms.get(iid)
                    if state == "running" and vm is None:
                        self.vms[iid] = boot(self.ec2, iid, self.root / iid)
                    elif state in ("shutting-down", "terminated", "stopped") and vm is not None:
                        vm.power_off()  # the cloud ended it: everything on it is gone
            except Exception as exc:  # moto stopped on purpose in some tests
                self.errors.append(str(exc))
            self._stop.wait(self.interval_s)

    def power_off(self, instance_ids: list[str]) -> None:
        """Turn the booted VMs of ``instance_ids`` off now (before the API says so)."""
        for iid in instance_ids:
            vm = self.vms.get(iid)
            if vm is not None:
                vm.power_off()

    def wait_for(self, count: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.vms) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.vms)} of {count} VMs booted: {self.errors}")
            time.sleep(0.1)


def main() -> None:
    """``python tests/providers/aws/vm_booter.py --endpoint URL --cluster ID --root DIR``:
    boot the cluster's instances on moto until Ctrl-C or SIGTERM (the README's demo),
    then shut every booted VM down."""
    import argparse
    import signal

    import boto3

    parser = argparse.ArgumentParser(description="Boot moto's instances of a cluster here")
    parser.add_argument("--endpoint", required=True, help="moto's URL")
    parser.add_argument("--cluster", required=True, help="the aws provider's cluster_id")
    parser.add_argument("--root", type=Path, required=True, help="folder for the VMs")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    ec2 = boto3.client("ec2", region_name=args.region, endpoint_url=args.endpoint)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill: stop the VMs too
    print(f"booting instances of cluster {args.cluster} under {args.root}", flush=True)
    with VmBooter(ec2, args.cluster, args.root) as booter:
        seen = 0
        try:
            while True:
                time.sleep(1)
                if len(booter.vms) != seen:
                    seen = len(booter.vms)
                    print(f"{seen} VM(s) booted: {', '.join(booter.vms)}", flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
