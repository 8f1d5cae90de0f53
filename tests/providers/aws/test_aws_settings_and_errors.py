"""Settings validation (one line naming the field) and EC2 error classification."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserError

from intercloud.providers.aws import AwsSettings
from intercloud.providers.aws.errors import EC2_CODES, classify
from intercloud.providers.contract import RETRYABLE_BY_DEFAULT, FailureKind
from intercloud.specs.errors import SpecError


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"region": ["us-east-1"]}, "region", "unknown field; did you mean 'regions'?"),
        ({"regions": []}, "regions", "at least 1"),
        ({"regions": ["us-east-1", "Virginia"]}, "regions", "'Virginia' is not an AWS region"),
        ({"regions": ["us-east-1", "us-east-1"]}, "regions", "listed twice"),
        ({"tag_prefix": "aws:x"}, "tag_prefix", "not start with 'aws'"),
        ({"retry_mode": "legacy"}, "retry_mode", "expected 'standard' or 'adaptive'"),
        ({"max_attempts": 0}, "max_attempts", "at least 1"),
        ({"subnets": ["subnet-1"]}, "subnets", "expected a mapping"),
    ],
)
def test_bad_settings_give_one_line_naming_the_field(
    data: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(SpecError) as err:
        AwsSettings.parse(data, source="config.yaml: providers.aws")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"config.yaml: providers.aws: {field}")
    assert words in message


def test_good_settings_keep_their_values() -> None:
    s = AwsSettings.parse(
        {
            "regions": ["us-east-1", "eu-west-1", "us-gov-west-1"],
            "endpoint_url": "http://127.0.0.1:5000",
            "subnets": {"us-east-1a": "subnet-1"},
            "retry_mode": "standard",
        }
    )
    assert s.regions == ["us-east-1", "eu-west-1", "us-gov-west-1"]
    assert s.subnets == {"us-east-1a": "subnet-1"} and s.tag_prefix == "intercloud"


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"msg of\n{code}"},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        "RunInstances",
    )  # fmt: skip


def test_every_listed_ec2_code_classifies_to_its_kind() -> None:
    for code, kind in EC2_CODES.items():
        got = classify(client_error(code))
        assert (got.kind, got.code) == (kind, code)
        assert got.retryable is RETRYABLE_BY_DEFAULT[kind]
        assert "\n" not in got.message and code in got.message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("BrandNewError", 400), FailureKind.UNKNOWN),
        (client_error("BrandNewError", 503), FailureKind.UNAVAILABLE),
        (NoCredentialsError(), FailureKind.AUTH),
        (ProfileNotFound(profile="lab"), FailureKind.AUTH),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), FailureKind.UNAVAILABLE),
        (ResponseParserError("Unable to parse <html>500</html>"), FailureKind.UNAVAILABLE),
        (RuntimeError("boom"), FailureKind.UNKNOWN),
    ],
)
def test_other_exceptions_classify(exc: BaseException, kind: FailureKind) -> None:
    assert classify(exc).kind is kind
