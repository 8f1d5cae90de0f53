"""Fixtures for the AWS provider: moto's EC2 server on loopback, started by the tests.

``moto_endpoint`` starts ``moto_server`` (from the venv running the tests) on 127.0.0.1
on a free port once per session, waits until it answers and stops it at the end. Each
test gets its own ``cluster_id``, so tests sharing the server never see each other's
instances (as two intercloud installations in one account would not).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from intercloud.providers.aws import AwsProvider, AwsSettings

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@pytest.fixture(scope="session", autouse=True)
def _fake_aws_credentials() -> Iterator[None]:
    """Never let a test reach a real account: fake keys, no user config files."""
    mp = pytest.MonkeyPatch()
    for key, value in FAKE_CREDENTIALS.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    yield
    mp.undo()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint(_fake_aws_credentials: None) -> Iterator[str]:
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.fail(f"{server} is missing: install the dev extra (moto[server])")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited with {proc.returncode} before answering")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not answer within 30 s")
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_image(moto_endpoint: str) -> str:
    """An AMI that moto knows (it ships a list of Amazon-owned images)."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    return str(images[0]["ImageId"])


@pytest.fixture
def settings(moto_endpoint: str, moto_image: str) -> AwsSettings:
    return AwsSettings(
        regions=[REGION],
        endpoint_url=moto_endpoint,
        cluster_id=f"test-{uuid.uuid4().hex[:10]}",
        image_id=moto_image,
        retry_mode="standard",
        max_attempts=3,
        connect_timeout_s=2,
        read_timeout_s=10,
    )


@pytest.fixture
def provider(settings: AwsSettings) -> Iterator[AwsProvider]:
    prov = AwsProvider(settings)
    yield prov
    prov.close()


@pytest.fixture
def ec2(moto_endpoint: str) -> Any:
    """A plain client on the same server: the world outside intercloud (a person, the
    cloud itself) acting on instances."""
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
