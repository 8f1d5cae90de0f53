"""Types of the compiled FleetState hot path (``_fleetc.c``; optional)."""

from collections.abc import Sequence, Set

import numpy as np
import numpy.typing as npt

def bulk_level(
    nodes: Sequence[int], lvl: list[int], pos: list[int], bo: list[int], bn: list[int], new: int
) -> None: ...
def bulk_full(
    nodes: Sequence[int],
    step: int,
    dcount: list[int],
    domain: npt.NDArray[np.int32],
    dfree: list[list[int]],
    dpos: list[int],
    dbuck: list[list[int]] | None,
    dbpos: list[int],
    datl: list[list[int]],
    p: int,
) -> None: ...
def fits(
    nodes: Sequence[int],
    node_pool: list[int],
    pool: int,
    usable: list[bool],
    lvl: list[int],
    vcpu: list[float],
    slots: int,
    vcpus: float,
) -> bool: ...
def all_idle(nodes: Sequence[int], usable: list[bool], lvl: list[int], slots: int) -> bool: ...
def take_vcpus(vcpu: list[float], nodes: Sequence[int], vcpus: float) -> list[float]: ...
def copy_items(dst: list[float], src: list[float], nodes: Sequence[int]) -> None: ...
def take_from(
    bucket: list[int],
    exclude: Set[int] | None,
    vcpu: list[float],
    v: float,
    n: int,
    out: list[int],
) -> bool: ...
def take_domain_idle(
    dbuck: list[list[int]], dfree: list[list[int]], n: int, out: list[int]
) -> list[int] | None: ...
