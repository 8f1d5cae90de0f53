"""The ``ray`` provider's plugin: section ``providers.ray`` of ``config.yaml``.

    ray:
      address: 10.0.0.5:6379       # an existing cluster: host:port of its GCS, or ray://host:10001
      namespace: lab-a             # prefixes its placement groups' and actors' names
                                   # (default: intercloud-<store id>)
      region: lab                  # the region its offerings are sold in (default: ray)
      provision_timeout_s: 30      # a gang not placed by then: no capacity now
      kill_grace_s: 5
      call_timeout_s: 30           # a call unanswered this long: the cluster is unreachable
      lost_after_s: 90             # unreachable this long: its nodes are lost, jobs move on

Needs the ``ray`` extra (``pip install 'intercloud[ray]'``) here and intercloud on the
cluster's nodes. ``ray`` is imported only when this provider is used.
"""

from __future__ import annotations

import importlib.util

from pydantic import BaseModel, ConfigDict, Field, field_validator

from intercloud.providers.ray_provider import NAME, RayConfig, RayProvider, host_port
from intercloud.providers.registry import (
    AnyProvider,
    ProviderCheck,
    ProviderContext,
    ProviderPlugin,
    offerings_by_region,
)

#: an absolute path without whitespace or control characters (on every node)
_PATH = r"^/[^\s\x00-\x1f\x7f]*$"
#: a region is one part of an offering key (``provider/region/instance_type``)
REGION = r"^[A-Za-z0-9_.-]{1,64}$"

#: How long ``check`` waits for the cluster's port.
CONNECT_TIMEOUT_S = 3.0


class RaySettings(BaseModel):
    """The ``providers.ray`` section (module docstring)."""

    # strict: a quoted number or a YAML boolean is no number (it was read as 90 or 1)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    address: str = Field(min_length=1)
    #: default: ``intercloud-<store id>`` (each database its own names)
    namespace: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    region: str = Field(default="ray", pattern=REGION)
    work_root: str = Field(default="/tmp/intercloud-ray", pattern=_PATH)
    provision_timeout_s: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    kill_grace_s: float = Field(default=5.0, ge=0, le=3600, allow_inf_nan=False)
    call_timeout_s: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)
    #: longer than Ray's GCS reconnect timeout (60 s unless the cluster sets
    #: ``RAY_gcs_rpc_server_reconnect_timeout_s``): by then its nodes have stopped
    lost_after_s: float = Field(default=90.0, gt=0, le=86400, allow_inf_nan=False)

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host_port(value)
        return value


class RayPlugin(ProviderPlugin[RaySettings]):
    """An existing Ray cluster."""

    name = NAME
    settings_model = RaySettings

    def create(self, settings: RaySettings, ctx: ProviderContext) -> AnyProvider:
        from intercloud.control.live import agent_log_root

        return RayProvider(
            RayConfig(
                address=settings.address,
                namespace=settings.namespace or f"intercloud-{ctx.store_id or 'check'}",
                region=settings.region,
                log_root=agent_log_root(ctx.home, ctx.store_id or "no-store"),
                work_root=settings.work_root,
                provision_timeout_s=settings.provision_timeout_s,
                kill_grace_s=settings.kill_grace_s,
                call_timeout_s=settings.call_timeout_s,
                lost_after_s=settings.lost_after_s,
            )
        )

    def check(self, settings: RaySettings, ctx: ProviderContext) -> ProviderCheck:
        """Reachable (its port answers within ``CONNECT_TIMEOUT_S``, then a connection),
        and its node shapes as offerings; an unreachable cluster is the one-line reason."""
        if importlib.util.find_spec("ray") is None:
            why = "ray is not installed (pip install 'intercloud[ray]')"
            return ProviderCheck(NAME, enabled=True, reason=why)
        provider = self.create(settings, ctx)
        assert isinstance(provider, RayProvider)
        try:
            offerings = provider.offerings()
        except Exception as exc:  # unreachable, or a port that answers but is no Ray cluster
            why = " ".join(str(exc).split())[:300]
            return ProviderCheck(NAME, enabled=True, reachable=False, reason=why)
        finally:
            provider.close()
        names: dict[str, list[str]] = {}
        for o in offerings:
            names.setdefault(o.region, []).append(o.instance_type)
        return ProviderCheck(
            NAME, enabled=True, reachable=True, credentials=True,
            offerings=offerings_by_region(names),
            reason=None if offerings else "the cluster has no live nodes",
        )  # fmt: skip


PLUGIN = RayPlugin()

__all__ = ["PLUGIN", "RayPlugin", "RaySettings"]
