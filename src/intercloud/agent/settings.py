"""The agent's settings: from its environment (set by user-data), command-line flags
(which win), and the cloud's instance metadata for what user-data cannot know."""

from __future__ import annotations

import argparse
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from intercloud.agent.bootstrap import (
    DEFAULT_AGENT_HOME,
    ENV_BOOTSTRAP_SECRET,
    ENV_CONTROL_URL,
    ENV_HOME,
    ENV_IMDS_URL,
    ENV_INSTANCE_ID,
    ENV_REQUEST_ID,
    ENV_SLOT,
)

#: EC2's instance metadata service (IMDSv2: a session token first, then the reads).
DEFAULT_IMDS_URL = "http://169.254.169.254"
IMDS_TIMEOUT_S = 1.0


class SettingsError(ValueError):
    """A missing or bad setting; the message names it (one line)."""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the agent needs. ``slot`` is its index in the launch request (EC2's
    ``ami-launch-index``); ``provider_instance_id`` the cloud's id of this machine."""

    control_url: str
    request_id: str
    bootstrap_secret: str
    slot: int
    provider_instance_id: str
    address: str
    home: Path
    poll_wait_s: float = 20.0
    retry_max_s: float = 10.0
    log_chunk: int = 256 * 1024


class Imds:
    """A minimal IMDSv2 reader; every read returns None when metadata is unreachable."""

    def __init__(self, base_url: str = DEFAULT_IMDS_URL, timeout_s: float = IMDS_TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._dead = False

    def _session(self) -> str | None:
        if self._token is None and not self._dead:
            req = urllib.request.Request(
                f"{self.base_url}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    self._token = resp.read().decode().strip()
            except (OSError, ValueError):
                self._dead = True  # one timeout is enough: not on EC2
        return self._token

    def get(self, path: str) -> str | None:
        token = self._session()
        if token is None:
            return None
        req = urllib.request.Request(
            f"{self.base_url}/latest/meta-data/{path}",
            headers={"X-aws-ec2-metadata-token": token},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return str(resp.read().decode().strip())
        except (OSError, ValueError):
            return None


def load_settings(argv: Sequence[str], environ: Mapping[str, str]) -> AgentSettings:
    """Settings from flags, else the environment, else instance metadata.
    SettingsError naming the variable for a missing or bad one."""
    p = argparse.ArgumentParser(prog="python -m intercloud.agent", description=__doc__)
    p.add_argument("--control-url", default=environ.get(ENV_CONTROL_URL))
    p.add_argument("--request-id", default=environ.get(ENV_REQUEST_ID))
    p.add_argument("--slot", default=environ.get(ENV_SLOT))
    p.add_argument("--instance-id", default=environ.get(ENV_INSTANCE_ID))
    p.add_argument("--home", default=environ.get(ENV_HOME) or DEFAULT_AGENT_HOME)
    p.add_argument("--poll-wait", type=float, default=20.0)
    args = p.parse_args(list(argv))
    if not args.control_url:
        raise SettingsError(f"{ENV_CONTROL_URL} is not set (the control plane's agent URL)")
    if not args.control_url.startswith(("http://", "https://")):
        raise SettingsError(f"{ENV_CONTROL_URL}: expected http(s)://..., got {args.control_url!r}")
    if not args.request_id:
        raise SettingsError(f"{ENV_REQUEST_ID} is not set (the launch request id)")
    secret = environ.get(ENV_BOOTSTRAP_SECRET, "")
    if not secret:
        raise SettingsError(f"{ENV_BOOTSTRAP_SECRET} is not set")
    imds = Imds(environ.get(ENV_IMDS_URL) or DEFAULT_IMDS_URL)
    instance_id = args.instance_id or imds.get("instance-id") or ""
    if not instance_id:
        raise SettingsError(f"{ENV_INSTANCE_ID} is not set and instance metadata did not answer")
    slot_text = args.slot
    if slot_text is None:
        slot_text = ("" if args.instance_id else imds.get("ami-launch-index")) or "0"
    if not str(slot_text).isdigit():
        raise SettingsError(f"{ENV_SLOT}: expected a whole number, got {slot_text!r}")
    # an instance id given by hand means "not on EC2" (a test, a sandbox): no more IMDS
    address = "" if args.instance_id else (imds.get("local-ipv4") or "")
    if args.poll_wait <= 0:
        raise SettingsError(f"--poll-wait: expected seconds > 0, got {args.poll_wait}")
    return AgentSettings(
        control_url=args.control_url.rstrip("/"),
        request_id=args.request_id,
        bootstrap_secret=secret,
        slot=int(slot_text),
        provider_instance_id=instance_id,
        address=address,
        home=Path(os.path.expanduser(args.home)),
        poll_wait_s=args.poll_wait,
    )
