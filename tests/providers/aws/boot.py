"""The VM-boot harness: plays an EC2 instance's first boot on this machine.

A cloud VM runs its user-data as its first boot (cloud-init). Here the harness reads an
instance's user-data back through the EC2 API (``DescribeInstanceAttribute``, as an
operator or cloud-init's metadata source would see it) and runs that exact script with
bash in a sandbox: a temporary folder as its home and agent home, its own environment
with what the instance metadata service would tell (the instance id and launch index)
and this interpreter as the node's Python, where intercloud is importable, so the
script's install step is skipped. The real bootstrap path and node agent then run end
to end against whatever control URL the script names.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def read_user_data(ec2: Any, instance_id: str) -> str:
    """The instance's user-data, decoded; "" when it has none."""
    attr = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    value = (attr.get("UserData") or {}).get("Value")
    return base64.b64decode(value).decode() if value else ""


def launch_index(ec2: Any, instance_id: str) -> int:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return int(found[0]["Instances"][0].get("AmiLaunchIndex", 0))


@dataclass
class BootedVM:
    """One sandboxed boot: the script's process (its own session) and its files."""

    instance_id: str
    slot: int
    user_data: str
    sandbox: Path
    process: subprocess.Popen[bytes]

    @property
    def boot_log(self) -> Path:
        return self.sandbox / "boot.log"

    @property
    def agent_home(self) -> Path:
        return self.sandbox / "agent"

    def power_off(self) -> None:
        """The VM is gone, as a terminated instance is: SIGKILL every process of the
        sandbox at once (the boot script's session and the node sessions the agent's
        supervisors started, found by their working folder or agent home)."""
        import psutil

        root = str(self.sandbox)
        for _ in range(3):  # again, in case something forked while we looked
            victims = []
            with contextlib.suppress(psutil.Error):
                victims += psutil.Process(self.process.pid).children(recursive=True)
            for proc in psutil.process_iter():
                try:
                    cwd = proc.cwd()
                    env = proc.environ()
                except (psutil.Error, OSError):
                    continue
                if cwd.startswith(root) or env.get("INTERCLOUD_AGENT_HOME", "").startswith(root):
                    victims.append(proc)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            for proc in victims:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            if not victims:
                break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 20.0) -> int:
        """Shut the VM down: SIGTERM to the boot script's session (the agent stops, the
        script ends); SIGKILL after ``timeout_s``. Its exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def boot(ec2: Any, instance_id: str, sandbox: Path) -> BootedVM:
    """Run ``instance_id``'s user-data in ``sandbox`` (created); returns at once."""
    user_data = read_user_data(ec2, instance_id)
    if not user_data.startswith("#!"):
        raise AssertionError(f"{instance_id} has no boot script as user-data: {user_data[:80]!r}")
    slot = launch_index(ec2, instance_id)
    (sandbox / "home").mkdir(parents=True, exist_ok=True)
    script = sandbox / "user-data"
    script.write_text(user_data)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(sandbox / "home"),
        "LANG": "C.UTF-8",
        # what the instance metadata service would answer
        "INTERCLOUD_AGENT_INSTANCE_ID": instance_id,
        "INTERCLOUD_AGENT_SLOT": str(slot),
        "INTERCLOUD_AGENT_IMDS_URL": "http://127.0.0.1:9",
        # the image: this interpreter (intercloud importable) and a private agent home
        "INTERCLOUD_AGENT_PYTHON": sys.executable,
        "INTERCLOUD_AGENT_HOME": str(sandbox / "agent"),
    }
    with (sandbox / "boot.log").open("ab") as log:
        proc = subprocess.Popen(
            ["bash", str(script)],
            cwd=sandbox,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return BootedVM(instance_id, slot, user_data, sandbox, proc)
