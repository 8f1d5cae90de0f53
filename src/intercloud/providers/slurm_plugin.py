"""The ``slurm`` provider's plugin: section ``providers.slurm`` of ``config.yaml``.

    slurm:
      conf: /etc/slurm/slurm.conf  # the cluster's slurm.conf (default: Slurm's own default)
      partitions: [gpu, cpu]       # the partitions intercloud may use (default: all)
      account: lab-a               # sbatch --account (default: none)
      work_root: /shared/intercloud  # a folder every node sees at this path
      region: lab                  # the region its offerings are sold in (default: slurm)
      start_wait_s: 3              # one placement waits this long for a queued gang to start
      provision_timeout_s: 300     # a gang still queued this long after its sbatch: cancelled
      kill_grace_s: 5
      time_margin_s: 600           # --time = the job's expected duration + this
      fence_s: 60                  # a rank stops itself when the controller is away this long
      down_after_s: 90             # ... and is reported lost after this long (> fence_s)
      gpu_type: H100               # the accelerator of GPUs whose GRES has no type (gpu:4)
      queue_nodes: 8               # nodes per CPU offering that may wait in Slurm's queue
                                   # beyond the free ones (default: the offering's nodes; 0: none)

Needs Slurm's client commands here (``sbatch``, ``squeue``, ``scontrol``, ``scancel``)
and a shared folder (``work_root``) between this machine and the nodes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intercloud.model import canonical_accelerator
from intercloud.providers.registry import (
    AnyProvider,
    ProviderCheck,
    ProviderContext,
    ProviderPlugin,
    offerings_by_region,
)
from intercloud.providers.slurm_provider import NAME, SlurmConfig, SlurmProvider

#: an absolute path without whitespace or control characters: it is written into batch
#: scripts and command lines unquoted by the shell on the nodes
_PATH = r"^/[^\s\x00-\x1f\x7f]*$"
#: a region is one part of an offering key (``provider/region/instance_type``)
REGION = r"^[A-Za-z0-9_.-]{1,64}$"


class SlurmSettings(BaseModel):
    """The ``providers.slurm`` section (module docstring)."""

    # strict: a quoted number or a YAML boolean is no number (it was read as 300 or 1)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    conf: str | None = Field(default=None, pattern=_PATH)
    partitions: tuple[str, ...] = Field(default=(), strict=False)  # a YAML list
    account: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: default: ``intercloud-<store id>`` (each database its own job names)
    namespace: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    region: str = Field(default="slurm", pattern=REGION)
    work_root: str = Field(default="/tmp/intercloud-slurm", pattern=_PATH)
    bin_dir: str | None = Field(default=None, pattern=_PATH)
    provision_timeout_s: float = Field(default=300.0, gt=0, le=86400, allow_inf_nan=False)
    start_wait_s: float = Field(default=3.0, gt=0, le=600, allow_inf_nan=False)
    kill_grace_s: float = Field(default=5.0, ge=0, le=3600, allow_inf_nan=False)
    time_margin_s: float = Field(default=600.0, ge=0, le=7 * 86400, allow_inf_nan=False)
    fence_s: int = Field(default=60, ge=0, le=86400)
    down_after_s: float = Field(default=90.0, gt=0, le=86400, allow_inf_nan=False)
    #: the accelerator of GPUs whose GRES has no type (``Gres=gpu:4``), e.g. H100
    gpu_type: str | None = None
    #: nodes per CPU offering queued ahead in Slurm's queue (None: the offering's nodes)
    queue_nodes: int | None = Field(default=None, ge=0, le=100_000)

    @field_validator("gpu_type")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        if value is not None and canonical_accelerator(value) is None:
            raise ValueError(f"unknown accelerator {value!r}")
        return canonical_accelerator(value) if value else None

    @model_validator(mode="after")
    def _fence_before_down(self) -> SlurmSettings:
        if self.fence_s and self.down_after_s <= self.fence_s:
            raise ValueError("down_after_s must be longer than fence_s (a node is reported "
                             "lost only after it has stopped itself)")  # fmt: skip
        for p in self.partitions:
            if not p or any(c in p for c in ", \t\n"):
                raise ValueError(f"partitions: {p!r} is not a partition name")
        return self


class SlurmPlugin(ProviderPlugin[SlurmSettings]):
    """An existing Slurm cluster."""

    name = NAME
    settings_model = SlurmSettings

    def create(self, settings: SlurmSettings, ctx: ProviderContext) -> AnyProvider:
        from intercloud.control.live import agent_log_root

        return SlurmProvider(
            SlurmConfig(
                conf=settings.conf,
                partitions=settings.partitions,
                account=settings.account,
                namespace=settings.namespace or f"intercloud-{ctx.store_id or 'check'}",
                region=settings.region,
                log_root=agent_log_root(ctx.home, ctx.store_id or "no-store"),
                work_root=settings.work_root,
                bin_dir=settings.bin_dir,
                provision_timeout_s=settings.provision_timeout_s,
                start_wait_s=settings.start_wait_s,
                kill_grace_s=settings.kill_grace_s,
                time_margin_s=settings.time_margin_s,
                fence_s=settings.fence_s,
                down_after_s=settings.down_after_s,
                gpu_type=settings.gpu_type,
                queue_nodes=settings.queue_nodes,
            )
        )

    def check(self, settings: SlurmSettings, ctx: ProviderContext) -> ProviderCheck:
        """The controller answers (``scontrol ping``), the configured partitions exist,
        and its node shapes as offerings; else the one-line reason."""
        provider = self.create(settings, ctx)
        assert isinstance(provider, SlurmProvider)
        try:
            provider.cli.ping()
        except Exception as exc:  # not installed, unreachable, bad slurm.conf
            why = " ".join(str(exc).split())[:300]
            return ProviderCheck(NAME, enabled=True, reachable=False, reason=why)
        try:
            offerings = provider.offerings()
        except Exception as exc:  # an unknown partition
            why = " ".join(str(exc).split())[:300]
            return ProviderCheck(NAME, enabled=True, reachable=True, credentials=True, reason=why)
        names: dict[str, list[str]] = {}
        for o in offerings:
            names.setdefault(o.region, []).append(f"{o.zone}/{o.instance_type}")
        return ProviderCheck(
            NAME, enabled=True, reachable=True, credentials=True,
            offerings=offerings_by_region(names),
            reason=None if offerings else "no usable nodes in its partitions",
        )  # fmt: skip


PLUGIN = SlurmPlugin()

__all__ = ["PLUGIN", "SlurmPlugin", "SlurmSettings"]
