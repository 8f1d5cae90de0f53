"""The tags that make an EC2 instance intercloud's: who owns it and which request made it.

Tags are the durable record on the cloud side. A control loop that crashed between
``run_instances`` and writing its own record finds the instances again by these tags,
and the sweep finds those no job owns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import FilterTypeDef, TagTypeDef

    from intercloud.providers.contract import LaunchRequest

MAX_TAG_VALUE = 256


@dataclass(frozen=True, slots=True)
class TagKeys:
    """Tag keys under one prefix (``intercloud:cluster`` ...)."""

    prefix: str

    @property
    def cluster(self) -> str:
        return f"{self.prefix}:cluster"

    @property
    def request(self) -> str:
        return f"{self.prefix}:request"

    @property
    def job(self) -> str:
        return f"{self.prefix}:job"

    @property
    def attempt(self) -> str:
        return f"{self.prefix}:attempt"

    @property
    def rank(self) -> str:
        return f"{self.prefix}:rank"

    @property
    def pricing(self) -> str:
        return f"{self.prefix}:pricing"

    @property
    def terminating(self) -> str:
        """Set just before intercloud terminates an instance, so an instance that ends
        without it was ended by someone else (a spot reclaim, a person, a failure)."""
        return f"{self.prefix}:terminating"

    def label(self, name: str) -> str:
        return f"{self.prefix}:label:{name}"


def launch_tags(keys: TagKeys, cluster_id: str, request: LaunchRequest) -> list[TagTypeDef]:
    """Tags every instance of ``request`` is born with (ranks are tagged after launch)."""
    tags: dict[str, str] = {
        keys.cluster: cluster_id,
        keys.request: request.request_id,
        keys.pricing: str(request.pricing),
        "Name": f"{cluster_id}-{request.request_id}"[:MAX_TAG_VALUE],
    }
    if request.job_id:
        tags[keys.job] = request.job_id
        tags[keys.attempt] = str(request.attempt)
    for name, value in request.labels.items():
        tags[keys.label(name)] = value
    return [{"Key": k, "Value": v[:MAX_TAG_VALUE]} for k, v in tags.items()]


def cluster_filter(keys: TagKeys, cluster_id: str) -> FilterTypeDef:
    return {"Name": f"tag:{keys.cluster}", "Values": [cluster_id]}


def request_filter(keys: TagKeys, request_id: str) -> FilterTypeDef:
    return {"Name": f"tag:{keys.request}", "Values": [request_id]}


def tag_map(tags: Iterable[TagTypeDef] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or () if "Key" in t and "Value" in t}


def labels_of(keys: TagKeys, tags: Mapping[str, str]) -> dict[str, str]:
    """The caller's labels back from an instance's tags."""
    head = keys.label("")
    return {k[len(head) :]: v for k, v in tags.items() if k.startswith(head)}
