"""Diversification caps: no provider above a configured share of the GPUs the fleet runs.

Definition (exact; the greedy path, the batch optimizer and the tests use it as written):

* ``G`` — the fleet's running GPUs: every allocated GPU on every provider and every
  pricing kind, **reserved included**.
* ``g_p`` — provider ``p``'s *capped* GPUs: its allocated GPUs on on-demand, spot and
  committed pools. GPUs on reserved pools (capacity already paid for) are **exempt**:
  they never count toward any ``g_p``, and a placement on a reserved pool is never
  refused by a cap.
* Placing ``x`` more GPUs on a capped (non-reserved) pool of provider ``p`` is allowed iff

      G + x <= min_fleet_gpus            (the fleet is still small: caps do not bind yet)
      or  g_p + x <= share_p * (G + x)   (p stays within its share after the placement).

  ``share_p`` is ``max_share[p]`` (a provider missing from the mapping is uncapped; a
  single float caps every provider alike); a share of 1 or more never binds.

Why reserved GPUs count in ``G`` but not in ``g_p``: ``G`` is the literal fleet size
(what the dashboard shows as running); exempting paid capacity only from the numerator
means using it can never *shrink* any provider's headroom, only grow everyone's, so
"reserved first" and the caps never fight. Caps bound what the fleet buys at market
prices from one provider, relative to everything it runs. Caps are checked when placing;
a provider left above its share because the fleet shrank is not preempted, it simply gets
no new capped GPUs until it is back under.

Every check is O(1).
"""

from __future__ import annotations

from collections.abc import Mapping

from intercloud.model import canonical_provider

_EPS = 1e-9


def cap_exceeded(provider: str, share_after: float, cap: float) -> str:
    """``cap: aws would run 41.2% of the fleet's GPUs (cap 40%)``."""
    return (
        f"cap: {provider} would run {share_after * 100:.1f}% of the fleet's GPUs "
        f"(cap {round(cap * 100, 6):g}%)"
    )


class DiversificationCaps:
    """Per-provider share caps with a minimum-fleet threshold (module docstring: the
    definition). ``max_share`` maps provider names to shares in (0, 1], or is one share
    for all; ``min_fleet_gpus`` is the fleet size up to which caps do not bind."""

    def __init__(self, max_share: Mapping[str, float] | float, min_fleet_gpus: int = 0) -> None:
        if min_fleet_gpus < 0:
            raise ValueError(f"min_fleet_gpus must be >= 0, got {min_fleet_gpus}")
        self._default: float
        self._share: dict[str, float]
        if isinstance(max_share, Mapping):
            self._default = 1.0
            self._share = {canonical_provider(k): float(v) for k, v in max_share.items()}
        else:
            self._default = float(max_share)
            self._share = {}
        for name, s in [*self._share.items(), ("*", self._default)]:
            if not s > 0:
                raise ValueError(f"max_share of {name} must be positive, got {s}")
        self.min_fleet_gpus = int(min_fleet_gpus)

    def share(self, provider: str) -> float:
        """The share cap of ``provider`` (1.0 or more: uncapped)."""
        return self._share.get(canonical_provider(provider), self._default)

    def binds(self, provider: str) -> bool:
        """Whether ``provider`` has a cap below 100% at all."""
        return self.share(provider) < 1.0

    def allows(
        self,
        provider: str,
        gpus: float,
        allocated_by_provider_nonreserved: Mapping[str, float] | float,
        allocated_total: float,
    ) -> bool:
        """May ``gpus`` more GPUs go to a capped (non-reserved) pool of ``provider``?

        ``allocated_by_provider_nonreserved`` is ``g_p`` for this provider, or a mapping
        from provider name to ``g_p``; ``allocated_total`` is ``G``. Placements on
        reserved pools are exempt: do not call this for them.
        """
        s = self.share(provider)
        if s >= 1.0:
            return True
        g = _capped(provider, allocated_by_provider_nonreserved)
        after = allocated_total + gpus
        return after <= self.min_fleet_gpus + _EPS or g + gpus <= s * after + _EPS

    def headroom(
        self,
        provider: str,
        allocated_by_provider_nonreserved: Mapping[str, float] | float,
        allocated_total: float,
    ) -> float:
        """The largest ``x`` that ``allows`` (inf if uncapped; may be negative: none).

        The allowed ``x`` form the interval ``x <= max(min_fleet - G,
        (share x G - g_p) / (1 - share))``.
        """
        s = self.share(provider)
        if s >= 1.0:
            return float("inf")
        g = _capped(provider, allocated_by_provider_nonreserved)
        return max(self.min_fleet_gpus - allocated_total, (s * allocated_total - g) / (1.0 - s))

    def reason(
        self,
        provider: str,
        gpus: float,
        allocated_by_provider_nonreserved: Mapping[str, float] | float,
        allocated_total: float,
    ) -> str:
        """Why ``allows`` refuses (empty string when it allows)."""
        if self.allows(provider, gpus, allocated_by_provider_nonreserved, allocated_total):
            return ""
        g = _capped(provider, allocated_by_provider_nonreserved)
        after = allocated_total + gpus
        return cap_exceeded(
            canonical_provider(provider), (g + gpus) / after if after else 1.0, self.share(provider)
        )


def _capped(provider: str, by_provider: Mapping[str, float] | float) -> float:
    if isinstance(by_provider, Mapping):
        return float(by_provider.get(canonical_provider(provider), 0.0))
    return float(by_provider)
