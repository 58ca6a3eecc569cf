"""The geometry of the dashboard's line chart (its bars: ``core.charts.bar_chart``), drawn by
the templates as inline SVG (no script, nothing loaded from elsewhere). Each chart has a text
alternative on the page (a table)."""

from __future__ import annotations

LINE_WIDTH, LINE_HEIGHT = 480, 200
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 40, 28, 12, 16


def _step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if top / step <= 5:
            return step
    return max(1, top // 5)


def line_chart(points: list[dict], series: tuple[str, ...]) -> dict:
    """Cumulative lines over months: ``points`` of ``{"month": date, <series>: n}``."""
    top = max((point[name] for point in points for name in series), default=0) or 1
    step = _step(top)
    top = -(-top // step) * step
    inner_w = LINE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    inner_h = LINE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base = MARGIN_TOP + inner_h
    spread = max(len(points) - 1, 1)

    def x(i: int) -> float:
        return round(MARGIN_LEFT + (i / spread if len(points) > 1 else 0.5) * inner_w, 1)

    def y(n: int) -> float:
        return round(base - n / top * inner_h, 1)

    lines = [
        {
            "name": name,
            "points": " ".join(f"{x(i)},{y(p[name])}" for i, p in enumerate(points)),
            "dots": [{"x": x(i), "y": y(p[name]), "n": p[name]} for i, p in enumerate(points)],
        }
        for name in series
    ]
    every = max(1, -(-len(points) // 6))  # at most about six month labels
    ticks = [
        {"x": x(i), "label": p["month"].strftime("%b %Y")}
        for i, p in enumerate(points)
        if i % every == 0 or i == len(points) - 1
    ]
    grid = [{"y": y(n), "n": n} for n in range(0, top + 1, step)]
    return {
        "width": LINE_WIDTH,
        "height": LINE_HEIGHT,
        "lines": lines,
        "ticks": ticks,
        "grid": grid,
        "left": MARGIN_LEFT,
        "right": LINE_WIDTH - MARGIN_RIGHT,
        "base": base,
        "tick_y": base + 18,
    }
