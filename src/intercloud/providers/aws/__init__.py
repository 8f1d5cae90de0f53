"""The AWS provider: EC2 through boto3 (``pip install 'intercloud[aws]'``).

One job per module: ``settings`` (validated configuration), ``clients`` (boto3 with
botocore's retry modes), ``tags`` (ownership on the cloud side), ``errors`` (EC2 codes
to ``FailureKind``), ``offerings`` (catalog x ``describe_instance_type_offerings``),
``capacity`` (placement groups, capacity reservations, Capacity Blocks), ``provider``
(the asynchronous contract) and ``plugin`` (its registry entry and ``check``).

The names below are imported on first use, so the registry can read the settings and
report a missing boto3 without importing it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intercloud.providers.aws.provider import AwsProvider
    from intercloud.providers.aws.settings import AwsSettings

_LAZY = {
    "AwsProvider": "intercloud.providers.aws.provider",
    "AwsSettings": "intercloud.providers.aws.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["AwsProvider", "AwsSettings"]
