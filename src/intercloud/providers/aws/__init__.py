"""The AWS provider: EC2 through boto3 (``pip install 'intercloud[aws]'``).

One job per module: ``settings`` (validated configuration), ``clients`` (boto3 with
botocore's retry modes), ``tags`` (ownership on the cloud side), ``errors`` (EC2 codes
to ``FailureKind``), ``offerings`` (catalog x ``describe_instance_type_offerings``),
``capacity`` (placement groups, capacity reservations, Capacity Blocks) and
``provider`` (the asynchronous contract).
"""

from intercloud.providers.aws.provider import AwsProvider
from intercloud.providers.aws.settings import AwsSettings

__all__ = ["AwsProvider", "AwsSettings"]
