"""What each role may do.

- ``admin``: everything, every tenant (the whole fleet, the audit log, tenants' limits);
- ``tenant-admin``: its tenant's work (submit, cancel, read), its tokens (creating
  and revoking ``tenant-admin``, ``member`` and ``viewer`` tokens of its tenant: its
  members) and its quotas, within the quotas an admin gave it;
- ``member``: submit, cancel and read its tenant's work;
- ``viewer``: read its tenant's work.
"""

from __future__ import annotations

from enum import StrEnum

from intercloud.store.records import Role

__all__ = ["Action", "Role", "allowed", "may_grant"]


class Action(StrEnum):
    READ = "read"  # its tenant's workloads, queue, logs, tenant
    SUBMIT = "submit"  # submit and cancel its tenant's workloads
    MANAGE_TOKENS = "manage_tokens"  # its tenant's tokens
    MANAGE_QUOTAS = "manage_quotas"  # its tenant's quotas, within what an admin gave
    ADMIN = "admin"  # tenants and their limits, every tenant, fleet, audit


_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.TENANT_ADMIN: frozenset(
        {Action.READ, Action.SUBMIT, Action.MANAGE_TOKENS, Action.MANAGE_QUOTAS}
    ),
    Role.MEMBER: frozenset({Action.READ, Action.SUBMIT}),
    Role.VIEWER: frozenset({Action.READ}),
}


def allowed(role: Role, action: Action) -> bool:
    return action in _ALLOWED[role]


def may_grant(role: Role, granted: Role) -> bool:
    """Whether a token of ``role`` may create one of ``granted`` (never above itself;
    only an admin makes admins)."""
    if role is Role.ADMIN:
        return True
    return role is Role.TENANT_ADMIN and granted is not Role.ADMIN
