"""Parsing of CLI option values shared by several commands."""

from __future__ import annotations

import math
from collections.abc import Collection

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


#: Relative throughputs accepted (an A100-40GB is 1; a B200 about 5). Below the least, a
#: job would take 0 hours and cost $0 on every other GPU (durations scale by the ratio).
MIN_THROUGHPUT = 0.001
MAX_THROUGHPUT = 1000.0


def parse_throughput(value: str | None, known: Collection[str] = ()) -> dict[str, float] | None:
    """``H200=3.1,B200=5`` -> relative-throughput overrides (A100-40GB = 1.0).

    Every item must be ``NAME=NUMBER`` with a known accelerator name (intercloud's or
    one of ``known``, the catalog's) and a number from 0.001 to 1000, each name once;
    anything else raises ValueError naming the item.
    """
    if value is None:
        return None
    out: dict[str, float] = {}
    for item in value.split(","):
        text = item.strip()
        if not text:
            raise ValueError(f"--throughput: empty item in {value!r}; use NAME=NUMBER,...")
        name, sep, number = text.partition("=")
        bounds = f"must be NAME=NUMBER with {MIN_THROUGHPUT:g} <= NUMBER <= {MAX_THROUGHPUT:g}"
        if not sep:
            raise ValueError(f"--throughput: {text!r} {bounds}")
        canon = canonical_accelerator(name) or (name.strip() if name.strip() in known else None)
        if canon is None:
            raise ValueError(f"--throughput: unknown accelerator {name.strip()!r} in {text!r}")
        try:
            ratio = float(number)
        except ValueError:
            ratio = math.nan
        if not (MIN_THROUGHPUT <= ratio <= MAX_THROUGHPUT):  # NaN fails too
            raise ValueError(f"--throughput: {text!r} {bounds}")
        if canon in out:
            raise ValueError(f"--throughput: {canon} given twice")
        out[canon] = ratio
    return out
