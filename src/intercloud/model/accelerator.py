"""Accelerator types and their relative training throughput.

Relative throughput is per GPU, normalised to an A100-40GB (SXM) = 1.0, for large-model
training in BF16. Figures are rounded from public results and vendor claims (MLPerf
Training v3.1 to v5.0 per-GPU time-to-train ratios; NVIDIA H100/H200/Blackwell and AMD
MI300X/MI355X launch material). They are meant to rank alternatives, not to predict a
particular model's step time; users override them (``intercloud plan --throughput``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Accelerator:
    """One accelerator model (per GPU/chip)."""

    name: str
    vendor: str
    memory_gib: float
    relative_throughput: float


# name, vendor, memory GiB, relative training throughput (A100-40GB = 1.0)
_TABLE: tuple[Accelerator, ...] = (
    Accelerator("T4", "NVIDIA", 16, 0.15),
    Accelerator("P100", "NVIDIA", 16, 0.25),
    Accelerator("V100", "NVIDIA", 16, 0.45),
    Accelerator("V100-32GB", "NVIDIA", 32, 0.47),
    Accelerator("A10", "NVIDIA", 24, 0.40),
    Accelerator("A10G", "NVIDIA", 24, 0.38),
    Accelerator("L4", "NVIDIA", 24, 0.33),
    Accelerator("L40S", "NVIDIA", 48, 1.00),
    Accelerator("RTXPRO6000", "NVIDIA", 96, 1.30),
    Accelerator("A100", "NVIDIA", 40, 1.00),
    Accelerator("A100-80GB", "NVIDIA", 80, 1.10),
    Accelerator("H100", "NVIDIA", 80, 2.50),
    Accelerator("H100-MEGA", "NVIDIA", 80, 2.55),
    Accelerator("H200", "NVIDIA", 141, 2.90),
    Accelerator("B200", "NVIDIA", 180, 5.00),
    Accelerator("B300", "NVIDIA", 270, 6.50),
    Accelerator("GB200", "NVIDIA", 186, 5.50),
    Accelerator("GB300", "NVIDIA", 279, 7.00),
    Accelerator("MI300X", "AMD", 192, 2.20),
    Accelerator("MI325X", "AMD", 256, 2.50),
    Accelerator("MI355X", "AMD", 288, 4.50),
    Accelerator("Trainium1", "AWS", 32, 0.90),
    Accelerator("Trainium2", "AWS", 96, 2.20),
    Accelerator("Inferentia2", "AWS", 32, 0.50),
    Accelerator("TPU-v5p", "Google", 95, 2.20),
    Accelerator("TPU-v6e", "Google", 32, 2.00),
)

ACCELERATORS: dict[str, Accelerator] = {a.name: a for a in _TABLE}
_BY_LOWER: dict[str, str] = {a.name.lower(): a.name for a in _TABLE}
_ALIASES: dict[str, str] = {
    "a100-40gb": "A100",
    "h100-80gb": "H100",
    "h100-sxm": "H100",
    "mi300": "MI300X",
    "rtx-pro-6000": "RTXPRO6000",
    "trn1": "Trainium1",
    "trn2": "Trainium2",
    "inf2": "Inferentia2",
}


def canonical_accelerator(name: str) -> str | None:
    """Return the canonical spelling of ``name`` (case-insensitive, aliases), or None."""
    key = name.strip().lower()
    return _BY_LOWER.get(key) or _ALIASES.get(key)


def relative_throughput(name: str, overrides: dict[str, float] | None = None) -> float:
    """Per-GPU throughput of ``name`` relative to an A100-40GB; 1.0 if unknown."""
    if overrides and name in overrides:
        return overrides[name]
    acc = ACCELERATORS.get(name)
    return acc.relative_throughput if acc else 1.0
