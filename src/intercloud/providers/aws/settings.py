"""Settings of the AWS provider, as they will sit under ``providers.aws`` in config.yaml.

Unknown fields and bad values are refused with one line naming the field
(``AwsSettings.parse``), the same errors specs give.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intercloud.specs.errors import SpecError, problem_from_validation

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_TAG_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class AwsSettings(BaseModel):
    """Where and how the AWS provider works.

    ``cluster_id`` names this intercloud installation: every instance it launches is
    tagged ``{tag_prefix}:cluster={cluster_id}``, and lookups, adoption and sweeps only
    ever see (and only ever terminate) instances with that tag. ``endpoint_url`` points
    the EC2 client elsewhere (moto's server in tests). ``subnets`` maps a zone to the
    subnet to launch in there; without one EC2 uses the default VPC.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: list[str] = Field(default_factory=lambda: ["us-east-1"], min_length=1)
    cluster_id: str = Field(default="intercloud", min_length=1, max_length=128)
    tag_prefix: str = "intercloud"
    endpoint_url: str | None = None
    profile: str | None = None
    image_id: str | None = None  # default machine image (AMI) when a request names none
    subnets: dict[str, str] = Field(default_factory=dict)  # zone -> subnet id
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    max_attempts: int = Field(default=5, ge=1, le=20)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=60.0, gt=0)
    launch_workers: int = Field(default=4, ge=1, le=64)
    offerings_ttl_s: float = Field(default=600.0, ge=0)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        for region in value:
            if not _REGION.match(region):
                raise ValueError(f"{region!r} is not an AWS region name (like us-east-1)")
        if len(set(value)) != len(value):
            raise ValueError("a region is listed twice")
        return value

    @field_validator("tag_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _TAG_PREFIX.match(value) or value.lower().startswith("aws"):
            raise ValueError("must be 1-40 letters, digits, '_', '.', '-' and not start with 'aws'")
        return value

    @classmethod
    def parse(cls, data: dict[str, Any], source: str = "providers.aws") -> AwsSettings:
        """Validate a config mapping; raise ``SpecError`` (one line, naming the field)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problem = problem_from_validation(exc, cls)
            raise SpecError(problem.field, problem.problem, source) from None
