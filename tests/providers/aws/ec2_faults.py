"""Faults EC2 returns and moto never does, injected through botocore's event hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw:
    """The raw body botocore reads from an ``AWSResponse``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def ec2_error_response(code: str, status: int = 400) -> AWSResponse:
    """An HTTP answer shaped like EC2's own error body (XML ``Response/Errors/Error``)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>injected {code}</Message>"
        "</Error></Errors><RequestID>test-request</RequestID></Response>"
    ).encode()
    return AWSResponse("https://ec2.test/", status, {"Content-Type": "text/xml"}, _Raw(body))


def error_on_call(code: str, status: int = 400) -> Callable[..., Any]:
    """A ``before-call`` handler: the call fails with ``code`` without reaching the
    server (and without botocore's retries, as after they gave up)."""

    def handler(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return ec2_error_response(code, status), parsed

    return handler
