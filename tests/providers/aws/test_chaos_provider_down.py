"""Chaos: moto's server stopped while a checkpointing job runs on AWS, then restarted.

AWS (its own moto server, on a fixed port) is cheaper than the local site posing as
``gcp``. With moto stopped every AWS call fails; after ``failover.down_after_s`` AWS is
down: the running job is requeued from its checkpoint (no restart counted) and resumes
on gcp, a new job goes to gcp too, and ``check`` and ``status`` say why. moto then comes
back on the same port with none of its old state: the rows of the instances that
vanished end (their jobs had moved already), AWS is up again, and new work goes there.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from chaos_helpers import (
    CHECKPOINTING_RUN,
    assert_invariants,
    ic,
    log_tail,
    store_of,
    submit,
    wait_for,
    write_config,
)
from vm_booter import VmBooter

from conftest import REGION, _free_port


class Moto:
    """A moto server of this test alone, stoppable and restartable on one port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        server = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not answer"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


@pytest.fixture
def moto() -> Iterator[Moto]:
    server = Moto()
    server.start()
    yield server
    server.stop()


def _spec(path: Path, name: str, run: str) -> Path:
    path.write_text(
        f"kind: training\nname: {name}\nresources: {{cpus: '2+'}}\nrun: |\n"
        + "".join(f"  {line}\n" for line in run.splitlines())
    )
    return path


def test_provider_down_moves_its_work_and_takes_new_work_when_back(
    tmp_path: Path, moto: Moto, _fake_aws_credentials: None
) -> None:
    home = tmp_path / "home"
    shared = tmp_path / "shared-checkpoints"
    cluster = f"down-{uuid.uuid4().hex[:8]}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto.url)
    image = str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    train = _spec(tmp_path / "train.yaml", "train", CHECKPOINTING_RUN.format(steps=16, step_s=1))
    quick = "echo ran on $INTERCLOUD_PROVIDER"
    write_config(
        home,
        moto.url,
        cluster,
        image,
        extra=f"checkpoint_dir: {shared}\nfailover: {{down_after_s: 3}}\n",
    )
    with VmBooter(ec2, cluster, tmp_path / "vms") as booter:
        try:
            job = submit(home, train)
            st = wait_for(home, job, ("RUNNING",), timeout_s=90)
            assert st["placement"]["provider"] == "aws", st["placement"]
            ckpt = shared / str(job)
            deadline = time.monotonic() + 60
            while not (ckpt / "step").exists() or int((ckpt / "step").read_text() or 0) < 2:
                assert time.monotonic() < deadline, log_tail(home)
                time.sleep(0.3)

            moto.stop()
            st = wait_for(home, job, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=120)
            assert st["state"] == "SUCCEEDED", f"{st}\n{log_tail(home)}"
            assert st["placement"]["provider"] == "gcp", st["placement"]
            assert st["restarts"] == 0, st
            resumes = [ln.split() for ln in (ckpt / "resumes").read_text().splitlines()]
            assert [r[1] for r in resumes] == ["aws", "gcp"] and int(resumes[1][2]) >= 2
            # while AWS is down: new work goes elsewhere, and the CLI says why
            other = submit(home, _spec(tmp_path / "b.yaml", "while-down", quick))
            st = wait_for(home, other, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=60)
            assert st["placement"]["provider"] == "gcp", st
            shown = ic(home, "status").stdout
            assert "down: provider aws is down since" in shown, shown
            check = ic(home, "check")
            assert check.returncode == 1 and "aws" in check.stderr, check

            # moto returns on the same port, with none of its old instances
            moto.start()
            deadline = time.monotonic() + 60
            while True:
                store = store_of(home)
                try:
                    live = store.instances(
                        states=["requested", "allocated", "running", "draining", "terminating"]
                    )
                    down = [h.name for h in store.provider_health() if h.down]
                finally:
                    store.close()
                if not live and not down:
                    break
                assert time.monotonic() < deadline, f"{live} {down}\n{log_tail(home)}"
                time.sleep(0.5)
            back = submit(home, _spec(tmp_path / "c.yaml", "back", quick))
            st = wait_for(home, back, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=90)
            assert st["state"] == "SUCCEEDED", f"{st}\n{log_tail(home)}\n{booter.errors}"
            assert st["placement"]["provider"] == "aws", st["placement"]
            assert "provider aws is down" not in ic(home, "status").stdout
            assert_invariants(home, [job, other, back], ec2, cluster, ckpt=shared)
        finally:
            ic(home, "daemon", "stop", timeout=60)
