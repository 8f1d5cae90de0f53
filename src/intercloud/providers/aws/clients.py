"""EC2 clients configured once: botocore's retry modes, timeouts, optional endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from intercloud.providers.aws.settings import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def client_config(settings: AwsSettings) -> Config:
    """Throttling and transient errors are retried by botocore itself (standard or
    adaptive mode, which also rate-limits the client); what is left reaches us typed."""
    return Config(
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        user_agent_extra="intercloud",
    )


def make_ec2_client(settings: AwsSettings, region: str) -> EC2Client:
    """One EC2 client for ``region`` (thread-safe; a boto3 session is not, so each
    client gets its own)."""
    session = boto3.session.Session(profile_name=settings.profile, region_name=region)
    return session.client(
        "ec2",
        region_name=region,
        endpoint_url=settings.endpoint_url,
        config=client_config(settings),
    )
