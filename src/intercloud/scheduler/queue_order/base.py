"""The queue-order extension point (kube-scheduler's QueueSort) and its registry.

A policy turns the pending queue into the order in which the core tries requests. It is
called once per scheduling cycle, so it works on numpy arrays built from the queue, never
per request in Python beyond reading the fields. Every policy breaks remaining ties by
``(submit_s, job_id)``, then by position in ``pending``, so the same input always gives
the same order.

Adding a policy: write one module with a class that has a unique ``name`` and an
``order`` method, decorate it with :func:`register`, and import the module in
``queue_order/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from intercloud.scheduler.requests import GangRequest

if TYPE_CHECKING:
    from intercloud.scheduler.tenancy import TenantLedger


class QueueOrder(Protocol):
    """A queue-order policy, chosen by ``name`` in config."""

    name: ClassVar[str]

    def order(
        self, pending: Sequence[GangRequest], ledger: TenantLedger, now_s: float
    ) -> list[int]:
        """Indices into ``pending``, each exactly once, in scheduling order (first = try
        first). Pure: reads ``ledger`` (its clock may advance to ``now_s``) and changes
        nothing else; deterministic, ties by ``(submit_s, job_id)``."""
        ...


_P = TypeVar("_P", bound=type[QueueOrder])
_SUBMIT = attrgetter("submit_s")
_JOB_ID = attrgetter("job_id")
_PRIORITY = attrgetter("priority")

POLICIES: dict[str, Callable[[], QueueOrder]] = {}
"""Registered policies by name (a factory each; the classes take no arguments)."""


def register(cls: _P) -> _P:
    """Class decorator: make ``cls`` available as ``get_policy(cls.name)``."""
    if cls.name in POLICIES:
        raise ValueError(f"queue order {cls.name!r} registered twice")
    POLICIES[cls.name] = cls
    return cls


def get_policy(name: str) -> QueueOrder:
    """A new instance of the policy called ``name``; ``KeyError`` naming the known ones."""
    try:
        factory = POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise KeyError(f"unknown queue order {name!r} (known: {known})") from None
    return factory()


def tie_keys(
    pending: Sequence[GangRequest],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``(submit_s, job_id)`` arrays of ``pending``, the tie-breakers of every policy."""
    n = len(pending)
    submit = np.fromiter(map(_SUBMIT, pending), dtype=np.float64, count=n)
    job_id = np.fromiter(map(_JOB_ID, pending), dtype=np.int64, count=n)
    return submit, job_id


def neg_priority(pending: Sequence[GangRequest]) -> npt.NDArray[np.int64]:
    """``-priority`` of ``pending`` (ascending sort puts high priority first)."""
    return -np.fromiter(map(_PRIORITY, pending), dtype=np.int64, count=len(pending))
