"""Errors the store raises. Every message is one line, fit to show a user as is."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be used: missing or unwritable home, corrupt file, locked
    beyond the busy timeout, server unreachable. The message names the database and the
    problem in one line; nothing stored has been changed by the failed operation."""


class StoreLocked(StoreError):
    """Another connection held the database's lock longer than the busy timeout."""


class UnknownWorkload(KeyError):
    """No workload with that id (in that tenant)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown workload"


class InvalidRequest(ValueError):
    """A well-formed request the current state does not allow (cancel a finished job,
    submit to an unknown tenant, an unknown field name)."""


class NodeAlreadyStarted(RuntimeError):
    """A node (workload, attempt, rank) was already recorded as starting: starting it
    again could run the same node twice at once."""


class UnknownTenant(InvalidRequest):
    """No tenant of that name (the message says how to create one)."""


class TenantExists(InvalidRequest):
    """A tenant of that name exists already."""
