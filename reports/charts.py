"""Inline SVG charts for the HTML report, computed here as plain geometry so
the template only draws rectangles and polylines (no chart library, nothing
to download, nothing the Content-Security-Policy has to allow).

- posture: one stacked bar per target (findings by status) and per control
  framework (controls by standing);
- trend: passed and failed findings per target over the stored runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from audits.model import STATUS_ORDER, TrendPoint

BAR_WIDTH = 420.0  # px of the longest bar; others scale to their share
TREND_WIDTH, TREND_HEIGHT = 420.0, 90.0
STANDINGS = tuple(s.value for s in STATUS_ORDER)  # worst first, as every report orders statuses


@dataclass(frozen=True)
class Segment:
    status: str
    x: float
    width: float
    count: int


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class TrendLine:
    target: str
    runs: int
    peak: int
    passed: str  # SVG polyline points
    failed: str
    last: tuple[int, int]  # (passed, failed) in the newest run


def stacked_bars(rows: Sequence[tuple[str, Mapping[str, int]]], order: Sequence[str] = STANDINGS) -> list[Bar]:
    """One bar per (label, counts), all on one scale: the largest total spans BAR_WIDTH."""
    longest = max((sum(c.values()) for _, c in rows), default=0) or 1
    bars = []
    for label, counts in rows:
        x, segments = 0.0, []
        for status in order:
            n = counts.get(status, 0)
            if n:
                width = round(BAR_WIDTH * n / longest, 2)
                segments.append(Segment(status, round(x, 2), width, n))
                x += width
        bars.append(Bar(label, sum(counts.values()), tuple(segments)))
    return bars


def framework_bars(soc2: Sequence[str], nist: Sequence[tuple[str, Sequence[str]]]) -> list[Bar]:
    """Controls by standing: SOC 2 criteria, NIST 800-53 controls, and the
    NIST controls of each FedRAMP baseline. `soc2` holds each criterion's
    standing; `nist` each control's (standing, FedRAMP levels)."""
    rows: list[tuple[str, Mapping[str, int]]] = [
        ("SOC 2 criteria", Counter(soc2)),
        ("NIST 800-53 controls", Counter(state for state, _ in nist)),
    ]
    for level in ("LOW", "MODERATE", "HIGH"):
        states = Counter(state for state, levels in nist if level in {lv.upper() for lv in levels})
        if states:
            rows.append((f"FedRAMP {level.lower()}", states))
    return stacked_bars([(label, counts) for label, counts in rows if counts])


def trend_lines(points: Sequence[TrendPoint]) -> list[TrendLine]:
    """Per target: passed and failed findings over the runs, oldest left."""
    runs = list(dict.fromkeys(p.run_id for p in points))
    if not runs:
        return []
    step = TREND_WIDTH / max(len(runs) - 1, 1)
    lines = []
    for target in sorted({p.target for p in points}):
        by_run = {p.run_id: p for p in points if p.target == target}
        peak = max(max(p.passed, p.failed) for p in by_run.values()) or 1

        def polyline(value: str, by_run: dict[str, TrendPoint] = by_run, peak: int = peak) -> str:
            coords = []
            for i, run in enumerate(runs):
                if run in by_run:
                    y = TREND_HEIGHT - TREND_HEIGHT * getattr(by_run[run], value) / peak
                    coords.append(f"{round(i * step, 1)},{round(y, 1)}")
            return " ".join(coords)

        newest = by_run[max(by_run, key=runs.index)]
        lines.append(TrendLine(target, len(by_run), peak, polyline("passed"), polyline("failed"),
                               (newest.passed, newest.failed)))
    return lines


__all__ = ["Bar", "Segment", "TrendLine", "framework_bars", "stacked_bars", "trend_lines"]
