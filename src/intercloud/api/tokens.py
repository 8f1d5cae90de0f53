"""API token secrets: random, shown once, stored as their SHA-256 only.

A secret is ``ic_`` + 43 URL-safe characters (32 random bytes). The store keeps
``hash_secret(secret)`` and ``prefix_of(secret)`` (to tell tokens apart in lists).
"""

from __future__ import annotations

import hashlib
import secrets

SECRET_PREFIX = "ic_"
#: Characters of the secret kept in clear (``ic_`` and 5 random ones).
PREFIX_CHARS = 8
#: Longest secret accepted from a request (anything longer is not ours).
MAX_SECRET_CHARS = 128


def new_secret() -> str:
    """A fresh secret (``secrets.token_urlsafe``: 256 bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The hex SHA-256 the store keeps (the secret is high-entropy: no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def prefix_of(secret: str) -> str:
    return secret[:PREFIX_CHARS]
