"""EC2 errors as typed failures: callers compare ``FailureKind``, never messages.

``classify(exc)`` turns anything a boto3 call raised into (kind, provider code,
one-line message). Codes come from the EC2 API error reference; a code not listed is
``UNKNOWN`` unless the HTTP status says the service itself failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError

from intercloud.providers.contract import RETRYABLE_BY_DEFAULT, FailureKind
from intercloud.specs.errors import one_line

EC2_CODES: Mapping[str, FailureKind] = {
    # No capacity for this instance type in this zone (or in the reservation).
    "InsufficientInstanceCapacity": FailureKind.CAPACITY,
    "InsufficientCapacityOnHost": FailureKind.CAPACITY,
    "InsufficientHostCapacity": FailureKind.CAPACITY,
    "InsufficientReservedInstanceCapacity": FailureKind.CAPACITY,
    "InsufficientCapacity": FailureKind.CAPACITY,
    "InsufficientFreeAddressesInSubnet": FailureKind.CAPACITY,
    "ReservationCapacityExceeded": FailureKind.CAPACITY,
    "SpotMaxPriceTooLow": FailureKind.CAPACITY,  # the spot market is above our price
    # Account limits.
    "InstanceLimitExceeded": FailureKind.QUOTA,
    "VcpuLimitExceeded": FailureKind.QUOTA,
    "MaxSpotInstanceCountExceeded": FailureKind.QUOTA,
    "AddressLimitExceeded": FailureKind.QUOTA,
    "VolumeLimitExceeded": FailureKind.QUOTA,
    "PlacementGroupLimitExceeded": FailureKind.QUOTA,
    # Credentials and permissions.
    "UnauthorizedOperation": FailureKind.AUTH,
    "AuthFailure": FailureKind.AUTH,
    "InvalidClientTokenId": FailureKind.AUTH,
    "SignatureDoesNotMatch": FailureKind.AUTH,
    "ExpiredToken": FailureKind.AUTH,
    "RequestExpired": FailureKind.AUTH,
    "OptInRequired": FailureKind.AUTH,
    "PendingVerification": FailureKind.AUTH,
    "Blocked": FailureKind.AUTH,
    "AccessDenied": FailureKind.AUTH,
    # Rate limits (what is left after botocore's own retries).
    "RequestLimitExceeded": FailureKind.THROTTLED,
    "Throttling": FailureKind.THROTTLED,
    "ThrottlingException": FailureKind.THROTTLED,
    "RequestThrottled": FailureKind.THROTTLED,
    "RequestResourceCountExceeded": FailureKind.THROTTLED,
    # The service failed inside.
    "InternalError": FailureKind.UNAVAILABLE,
    "InternalFailure": FailureKind.UNAVAILABLE,
    "ServiceUnavailable": FailureKind.UNAVAILABLE,
    "Unavailable": FailureKind.UNAVAILABLE,
    # This combination cannot be bought here.
    "Unsupported": FailureKind.UNSUPPORTED,
    "UnsupportedOperation": FailureKind.UNSUPPORTED,
    "InvalidParameterCombination": FailureKind.UNSUPPORTED,
    "UnsupportedHibernationConfiguration": FailureKind.UNSUPPORTED,
    "InvalidInstanceType": FailureKind.UNSUPPORTED,
    "InvalidAMIID.NotFound": FailureKind.UNSUPPORTED,
    "InvalidAMIID.Malformed": FailureKind.UNSUPPORTED,
    "InvalidCapacityReservationId.NotFound": FailureKind.UNSUPPORTED,
    "InvalidPlacementGroup.Unknown": FailureKind.UNSUPPORTED,
    "IdempotentParameterMismatch": FailureKind.UNSUPPORTED,  # token reused, other shape
}


@dataclass(frozen=True, slots=True)
class Classified:
    kind: FailureKind
    code: str
    message: str

    @property
    def retryable(self) -> bool:
        return RETRYABLE_BY_DEFAULT[self.kind]


def classify(exc: BaseException) -> Classified:
    """The typed failure behind an exception raised by a boto3/botocore call."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "") or "")
        message = one_line(str(error.get("Message", "") or exc))
        kind = EC2_CODES.get(code)
        if kind is None:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            kind = FailureKind.UNAVAILABLE if status >= 500 else FailureKind.UNKNOWN
        return Classified(kind, code, f"{code}: {message}" if code else message)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return Classified(FailureKind.AUTH, type(exc).__name__, one_line(str(exc)))
    if isinstance(exc, EndpointConnectionError | BotoConnectionError | ReadTimeoutError):
        return Classified(FailureKind.UNAVAILABLE, type(exc).__name__, one_line(str(exc)))
    if isinstance(exc, ResponseParserError):
        # An answer that is not EC2's XML: an HTML error page from a proxy or an
        # emulator that does not implement the call.
        return Classified(FailureKind.UNAVAILABLE, type(exc).__name__, one_line(str(exc))[:300])
    if isinstance(exc, BotoCoreError):
        return Classified(FailureKind.UNKNOWN, type(exc).__name__, one_line(str(exc)))
    return Classified(FailureKind.UNKNOWN, type(exc).__name__, one_line(str(exc)) or repr(exc))
