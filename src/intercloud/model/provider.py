"""Provider names. One lower-case spelling per provider everywhere in intercloud."""

from __future__ import annotations

KNOWN_PROVIDERS: tuple[str, ...] = ("aws", "azure", "gcp", "oci", "local", "lambda")

_ALIASES: dict[str, str] = {
    "amazon": "aws",
    "ec2": "aws",
    "microsoft": "azure",
    "google": "gcp",
    "googlecloud": "gcp",
    "google-cloud": "gcp",
    "oracle": "oci",
    "lambdalabs": "lambda",
    "lambda-labs": "lambda",
}


def canonical_provider(name: str) -> str:
    """Lower-case canonical provider name (``Google`` -> ``gcp``); unknown names are lower-cased."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)
