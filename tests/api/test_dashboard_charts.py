"""The dashboard's pure parts: utilisation series from running stretches (time-weighted
per bucket), and the server-side SVG (every label escaped, dashed lines marked)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intercloud.api.dashboard.series import busy_series
from intercloud.api.dashboard.svg import line_chart
from intercloud.store.stats import Stretch

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _s(start_min: float, end_min: float | None, provider: str, gpus: int, acc: str) -> Stretch:
    end = None if end_min is None else NOW + timedelta(minutes=end_min)
    return Stretch(1, "t", NOW + timedelta(minutes=start_min), end, provider, "r1", acc, gpus, 1)


def test_series_weigh_each_stretch_by_its_overlap_with_each_bucket() -> None:
    stretches = [
        _s(-90, -45, "aws", 8, "H100"),  # half of bucket 0 (from -60)
        _s(-30, None, "gcp", 4, "A100"),  # bucket 1 whole, still running
        _s(-20, -10, "aws", 2, "H100"),  # a third of bucket 1
        _s(-5, -1, "aws", 0, "H100"),  # no GPUs: not in the GPU series
    ]
    starts, series = busy_series(stretches, NOW, timedelta(hours=1), 2, "provider", "gpus")
    assert starts == [NOW - timedelta(hours=1), NOW - timedelta(minutes=30)]
    assert {s.label: s.points for s in series} == {
        "aws": (4.0, round(2 / 3, 3)),
        "gcp": (0.0, 4.0),
    }
    _, by_gpu = busy_series(stretches, NOW, timedelta(hours=1), 2, "gpu", "gpus")
    assert [s.label for s in by_gpu] == ["A100", "H100"]
    _, nodes = busy_series(stretches, NOW, timedelta(hours=1), 2, "region", "nodes")
    assert {s.label: s.points for s in nodes} == {
        "aws/r1": (0.5, round(1 / 3 + 4 / 30, 3)),
        "gcp/r1": (0.0, 1.0),
    }
    with pytest.raises(ValueError, match="by:"):
        busy_series(stretches, NOW, timedelta(hours=1), 2, "tenant")


def test_svg_escapes_every_label_and_marks_dashed_lines() -> None:
    svg = str(
        line_chart(
            ["<b>", "09:00"],
            [("<script>alert(1)</script>", [1.0, 3.0]), ("planned", [0.0, 4.0])],
            "GPUs & more",
            'a "title"',
            dashed=frozenset({"planned"}),
        )
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "&lt;b&gt;" in svg and "GPUs &amp; more" in svg and "a &quot;title&quot;" in svg
    assert svg.count("<polyline") == 2 and svg.count("stroke-dasharray") == 1
    assert ">5<" in svg  # the y axis tops at the next round number above 4
