"""Small fleets and traces for the twin's tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from intercloud.twin.fleet_spec import Fleet, parse_fleet
from intercloud.twin.traces.columns import TraceColumns


def fleet(pools: str, extra: str = "") -> Fleet:
    """A fleet of one AWS zone whose pools are the YAML flow mappings in ``pools``
    (one per line)."""
    body = "\n".join(f"              - {line.strip()}" for line in pools.strip().splitlines())
    text = f"""
name: test
providers:
  - name: aws
    regions:
      - name: us-east-1
        zones:
          - name: us-east-1a
            pools:
{body}
{extra}
"""
    return parse_fleet(text, source="test.yaml")


def trace(
    rows: Sequence[tuple[float, float, int]],
    *,
    tenants: Sequence[int] | None = None,
    spot: bool = False,
    priority: Sequence[int] | None = None,
    tenant_names: tuple[str, ...] = ("t",),
) -> TraceColumns:
    """Jobs ``(submit_s, duration_s, gpus)``."""
    n = len(rows)
    return TraceColumns(
        submit_s=np.array([r[0] for r in rows], dtype=np.float64),
        duration_s=np.array([r[1] for r in rows], dtype=np.float64),
        gpus=np.array([r[2] for r in rows], dtype=np.int64),
        tenant=np.array(tenants if tenants is not None else [0] * n, dtype=np.int32),
        gpu_type=np.full(n, -1, dtype=np.int32),
        priority=np.array(priority if priority is not None else [0] * n, dtype=np.int64),
        spot_allowed=np.full(n, spot, dtype=np.bool_),
        tenant_names=tenant_names,
        gpu_type_names=(),
    )


def random_trace(n: int, seed: int, days: float = 10.0, spot: float = 0.3) -> TraceColumns:
    rng = np.random.default_rng(seed)
    return TraceColumns(
        submit_s=np.sort(rng.uniform(0, days * 86_400, n)),
        duration_s=rng.lognormal(8.5, 1.0, n),
        gpus=rng.choice([1, 4, 8, 16, 32], n).astype(np.int64),
        tenant=rng.integers(0, 2, n).astype(np.int32),
        gpu_type=np.full(n, -1, np.int32),
        priority=rng.integers(0, 2, n).astype(np.int64),
        spot_allowed=rng.random(n) < spot,
        tenant_names=("a", "b"),
        gpu_type_names=(),
    )
