"""The ``aws`` provider's plugin: section ``providers.aws`` is ``AwsSettings``.

Importing this module needs neither boto3 nor botocore: ``check`` reports a missing SDK
as "install intercloud[aws]", and ``create`` raises that line.

Credentials come from botocore's own chain (environment variables, the shared files,
``profile``, an instance role) of this process's environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from intercloud.providers.aws.settings import AwsSettings
from intercloud.providers.registry import (
    AnyProvider,
    ProviderCheck,
    ProviderContext,
    ProviderPlugin,
    offerings_by_region,
)

if TYPE_CHECKING:
    from intercloud.providers.aws.provider import AwsProvider

NAME = "aws"
NO_SDK = "boto3 is not installed: pip install 'intercloud[aws]'"
NO_CREDENTIALS = (
    "no AWS credentials found (environment variables, ~/.aws/credentials, "
    "a profile or an instance role)"
)
#: Bounds of ``check``'s calls: it must answer in seconds, whatever the settings say.
CHECK_CONNECT_TIMEOUT_S = 3.0
CHECK_READ_TIMEOUT_S = 10.0


def _sdk_missing() -> bool:
    try:
        import boto3  # noqa: F401
        import botocore  # noqa: F401
    except ImportError:
        return True
    return False


def quick_settings(settings: AwsSettings) -> AwsSettings:
    """``settings`` for a check: short timeouts, one attempt, no cached offerings."""
    return settings.model_copy(
        update={
            "retry_mode": "standard",
            "max_attempts": 1,
            "connect_timeout_s": min(settings.connect_timeout_s, CHECK_CONNECT_TIMEOUT_S),
            "read_timeout_s": min(settings.read_timeout_s, CHECK_READ_TIMEOUT_S),
            "offerings_ttl_s": 0.0,
            "launch_workers": 1,
        }
    )


class AwsPlugin(ProviderPlugin[AwsSettings]):
    """EC2 through boto3, behind the asynchronous contract."""

    name = NAME
    settings_model = AwsSettings

    def create(self, settings: AwsSettings, ctx: ProviderContext) -> AnyProvider:
        if _sdk_missing():
            raise ValueError(NO_SDK)
        from intercloud.providers.aws.provider import AwsProvider

        return AwsProvider(settings)

    def check(self, settings: AwsSettings, ctx: ProviderContext) -> ProviderCheck:
        """Credentials through botocore's chain; reachability with one cheap call per
        region (``describe_instance_type_offerings``, one attempt, short timeouts);
        offerings by region from ``AwsProvider.offerings()``."""
        if _sdk_missing():
            return ProviderCheck(NAME, enabled=True, reason=NO_SDK)
        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            session = boto3.session.Session(profile_name=settings.profile)
            found = session.get_credentials()
        except BotoCoreError as exc:  # ProfileNotFound, a broken shared file
            return ProviderCheck(NAME, enabled=True, credentials=False, reason=_line(exc))
        if found is None:
            return ProviderCheck(NAME, enabled=True, credentials=False, reason=NO_CREDENTIALS)
        from intercloud.providers.aws.provider import AwsProvider

        provider = AwsProvider(quick_settings(settings))
        try:
            return self._probe(provider)
        finally:
            provider.close()

    def _probe(self, provider: AwsProvider) -> ProviderCheck:
        from intercloud.providers.aws.errors import classify
        from intercloud.providers.contract import FailureKind, ProviderCallFailed

        def refused(kind: FailureKind, message: str) -> ProviderCheck:
            if kind is FailureKind.AUTH:
                why = f"credentials refused: {message}"
                return ProviderCheck(NAME, True, reachable=True, credentials=False, reason=why)
            if kind is FailureKind.UNAVAILABLE:
                why = f"endpoint unreachable: {message}"
                return ProviderCheck(NAME, True, reachable=False, credentials=True, reason=why)
            return ProviderCheck(NAME, True, reachable=True, credentials=True, reason=message)

        for region in provider.settings.regions:
            try:
                provider.client(region).describe_instance_type_offerings(
                    LocationType="region", MaxResults=5
                )
            except Exception as exc:
                failure = classify(exc)
                return refused(failure.kind, f"{region}: {failure.message}")
        try:
            offerings = provider.offerings()
        except ProviderCallFailed as exc:
            return refused(exc.kind, _line(exc))
        names: dict[str, list[str]] = {r: [] for r in provider.settings.regions}
        # GPU offerings first, the largest first: what a lab looks for.
        offerings.sort(key=lambda o: (-o.accelerator_count, o.instance_type))
        for offering in offerings:
            names.setdefault(offering.region, []).append(offering.instance_type)
        return ProviderCheck(
            NAME,
            enabled=True,
            reachable=True,
            credentials=True,
            offerings=offerings_by_region(names),
        )


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


PLUGIN = AwsPlugin()

__all__ = ["NO_CREDENTIALS", "NO_SDK", "PLUGIN", "AwsPlugin", "quick_settings"]
