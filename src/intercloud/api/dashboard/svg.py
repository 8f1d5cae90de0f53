"""Server-side SVG charts: no chart library, no script, every number escaped. A chart
is a few polylines over axes with a legend; the page embeds the markup as is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

#: Colour-blind-safe palette (Okabe-Ito), cycled.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 220, 48, 28, 24, 28


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for m in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if v <= m:
            return float(m)
    return float(v)


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    y_label: str,
    title: str,
    dashed: frozenset[str] = frozenset(),
) -> Markup:
    """One polyline per ``(name, values)`` over ``labels`` (x ticks: first, middle,
    last). ``dashed``: names drawn dashed (targets, capacity)."""
    n = max(len(labels), 1)
    top = _nice_max(max((v for _, vals in series for v in vals), default=0.0))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return PAD_T + ph - ph * v / top

    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {W} {H + 18 * len(series)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line x1="{PAD_L}" y1="{PAD_T + ph}" x2="{W - PAD_R}" y2="{PAD_T + ph}" stroke="#888"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + ph}" stroke="#888"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = top * frac
        out.append(
            f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{v:g}</text>"
        )
    for i in sorted({0, (n - 1) // 2, n - 1}):
        if i < len(labels):
            out.append(
                f'<text x="{x(i):.1f}" y="{H - 8}" text-anchor="middle" font-size="11">'
                f"{escape(labels[i])}</text>"
            )
    out.append(f'<text x="{PAD_L}" y="12" font-size="12" fill="#555">{escape(y_label)}</text>')
    for k, (name, vals) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vals))
        dash = ' stroke-dasharray="6 4"' if name in dashed else ""
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{pts}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        ly = H + 14 + 18 * k
        out.append(
            f'<rect x="{PAD_L}" y="{ly - 9}" width="12" height="10" fill="{colour}"/>'
            f'<text x="{PAD_L + 18}" y="{ly}" font-size="12">{escape(name)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def hhmm(t: datetime) -> str:
    return t.strftime("%H:%M")
