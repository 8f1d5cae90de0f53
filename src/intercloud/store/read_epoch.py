"""Reads coalesced over one step of the control loop (``ReadEpochs``).

A loop step reads the live instances, active workloads and live nodes a dozen times
(each handler asks for its own states). Each such read of a row image
(``store.row_image``) costs a connection checkout and a read transaction of three
statements even when no row changed. Inside ``Store.coalesced_reads()`` (the loop wraps
its step in it), a read of an image is answered from the image's last read while this
store has written nothing since: its own writes are always seen (every write
transaction bumps ``Database.write_generation``; one whose writes to an image's table
all came back as rows is carried into the image instead, ``write_journal``, and any
other sends the next read to the database), and other processes' writes are seen at the
next step, as if the step had read a moment earlier. The epoch is per thread: a
server thread sharing the store keeps reading the database each time. The block's
transactions also share one connection (``Database.pinned``): on PostgreSQL one checkout
and one ping per step, not one per transaction.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intercloud.store.db import Database

__all__ = ["ReadEpochs"]

_EPOCHS = itertools.count(1)


class ReadEpochs:
    """Mixin of ``Store``: ``coalesced_reads`` and the token its image reads pass."""

    _db: Database
    _read_local: threading.local

    @contextmanager
    def coalesced_reads(self) -> Iterator[None]:
        """Within the block, on this thread, a row image is read from the database at
        most once per write of this store (module docstring). Nested blocks share the
        outer one's epoch."""
        local = self._read_local
        if getattr(local, "epoch", None) is not None:
            yield
            return
        local.epoch = next(_EPOCHS)
        try:
            with self._db.pinned():  # the block's transactions on one connection
                yield
        finally:
            local.epoch = None

    def _read_token(self) -> Hashable | None:
        """None outside ``coalesced_reads`` (read the database every time)."""
        epoch = getattr(self._read_local, "epoch", None)
        return None if epoch is None else (epoch, self._db.write_generation)
