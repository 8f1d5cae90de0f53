"""Chaos: every instance of AWS terminated mid-run (from outside, through the EC2 API),
while a checkpointing training job runs there.

The job checkpoints to the configured ``checkpoint_dir`` (a folder both providers
reach, as a mounted bucket would be). Its node is lost with the instance; the job is
requeued as a new attempt without counting a restart, AWS has no capacity left (the
proxy refuses the relaunch, so the offering cools down) and the job resumes from its
last checkpoint on the local site posing as ``gcp``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from chaos_helpers import (
    CHECKPOINTING_RUN,
    assert_invariants,
    ic,
    job_status,
    live_ec2,
    log_tail,
    submit,
    wait_for,
    write_config,
)
from ec2_proxy import Ec2Proxy
from vm_booter import VmBooter


def test_all_instances_terminated_mid_run_resume_from_the_checkpoint_elsewhere(
    tmp_path: Path, moto_endpoint: str, moto_image: str, ec2: Any
) -> None:
    home = tmp_path / "home"
    shared = tmp_path / "shared-checkpoints"
    cluster = f"lost-{uuid.uuid4().hex[:8]}"
    run = CHECKPOINTING_RUN.format(steps=14, step_s=1)
    spec = tmp_path / "train.yaml"
    spec.write_text(
        "kind: training\nname: resumable\nresources: {cpus: '2+'}\nrun: |\n"
        + "".join(f"  {line}\n" for line in run.splitlines())
    )
    with Ec2Proxy(moto_endpoint) as proxy, VmBooter(ec2, cluster, tmp_path / "vms") as booter:
        write_config(
            home,
            proxy.url,
            cluster,
            moto_image,
            extra=f"checkpoint_dir: {shared}\nfailover: {{cooldown_s: {{first: 120}}}}\n",
        )
        try:
            job = submit(home, spec)
            ckpt = shared / str(job)
            st = wait_for(home, job, ("RUNNING",), timeout_s=90)
            assert st["placement"]["provider"] == "aws", st["placement"]
            deadline = time.monotonic() + 60
            while _step(ckpt) < 3:
                assert time.monotonic() < deadline, f"no checkpoint\n{log_tail(home)}"
                time.sleep(0.3)
            # AWS loses every instance, and has no capacity to give them back
            proxy.refuse_run = "InsufficientInstanceCapacity"
            gone = live_ec2(ec2, cluster)
            assert gone, "no instance to terminate"
            booter.power_off(gone)  # the VMs die with their instances, as on EC2
            ec2.terminate_instances(InstanceIds=gone)
            st = wait_for(home, job, ("SUCCEEDED", "FAILED", "CANCELLED"), timeout_s=120)
            assert st["state"] == "SUCCEEDED", f"{st}\n{log_tail(home)}\n{booter.errors}"
            assert st["placement"]["provider"] == "gcp", st["placement"]
            assert st["restarts"] == 0, st  # a lost node is not the job's failure
            resumes = (ckpt / "resumes").read_text().split("\n")
            first, second = (line.split() for line in resumes if line)
            assert first[1:] == ["aws", "0"], resumes
            assert second[1] == "gcp" and int(second[2]) >= 3, resumes  # from the checkpoint
            assert _step(ckpt) == 14
            logs = ic(home, "logs", str(job)).stdout
            assert "finished at step 14 on gcp" in logs, logs
            assert_invariants(home, [job], ec2, cluster, ckpt=shared)
            assert job_status(home, job)["attempts"][0]["state"] != "SUCCEEDED"
        finally:
            ic(home, "daemon", "stop", timeout=60)


def _step(ckpt: Path) -> int:
    try:
        return int((ckpt / "step").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0
