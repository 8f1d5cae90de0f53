"""Parsing of CLI option values shared by several commands."""

from __future__ import annotations

from intercloud.model import KNOWN_PROVIDERS, canonical_accelerator, canonical_provider


def parse_providers(value: str | None, known: tuple[str, ...] = ()) -> frozenset[str] | None:
    """``aws,gcp`` -> {"aws", "gcp"}; unknown names raise ValueError naming the option."""
    if value is None:
        return None
    names = [canonical_provider(p) for p in value.split(",") if p.strip()]
    if not names:
        raise ValueError("--providers: give at least one provider, e.g. --providers aws,gcp")
    allowed = set(KNOWN_PROVIDERS) | set(known)
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"--providers: unknown provider '{name}' (known: {', '.join(sorted(allowed))})"
            )
    return frozenset(names)


def parse_throughput(value: str | None) -> dict[str, float] | None:
    """``H200=3.1,B200=5`` -> relative-throughput overrides (A100-40GB = 1.0)."""
    if value is None:
        return None
    out: dict[str, float] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, number = item.partition("=")
        canon = canonical_accelerator(name) or name.strip()
        try:
            ratio = float(number) if sep else float("nan")
        except ValueError:
            ratio = float("nan")
        if not (ratio > 0):
            raise ValueError(f"--throughput: '{item.strip()}' must be NAME=POSITIVE_NUMBER")
        out[canon] = ratio
    return out
