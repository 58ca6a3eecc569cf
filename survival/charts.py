"""The geometry of the Kaplan-Meier chart of the endpoints report: inline SVG drawn by the
template (no script, nothing from the internet), in the house style of ``core.charts``."""

from __future__ import annotations

# Arm A solid, arm B dashed: the curves differ without colour too.
ARM_STYLES = {
    "A": {"stroke": "#1f5fa8", "dash": ""},
    "B": {"stroke": "#b5541c", "dash": "6 3"},
}


def _draw(points: list[tuple[float, float]], point: tuple[float, float]) -> None:
    """Add ``point`` to a polyline, dropping the points a straight run makes useless: the
    curve's vertices stay at most a few per pixel column, however many steps it has."""
    if points and points[-1] == point:
        return
    if len(points) >= 2:
        (x0, y0), (x1, y1) = points[-2], points[-1]
        if (x0 == x1 == point[0]) or (y0 == y1 == point[1]):
            points[-1] = point
            return
    points.append(point)


def km_chart(summary, *, width: int = 640, height: int = 320) -> dict:
    """Step curves of each arm of ``summary`` (``selectors.EndpointSummary``, months), with
    censoring ticks (one per pixel column at most), a survival axis (0-100 %) and a month axis
    ticked where numbers at risk are given."""
    left, right, top, bottom = 48, width - 16, 12, height - 36
    horizon = (
        max([*summary.at_times, *(t for a in summary.arms for t, _ in a.km.steps)], default=0.0)
        or 1.0
    )

    def x(t: float) -> float:
        return round(left + (right - left) * t / horizon, 1)

    def y(s: float) -> float:
        return round(bottom - (bottom - top) * s, 1)

    lines = []
    for arm in summary.arms:
        points: list[tuple[float, float]] = []
        previous = 1.0
        for t, s in arm.km.steps:
            _draw(points, (x(t), y(previous)))
            _draw(points, (x(t), y(s)))
            previous = s
        last_time = max([t for t, _ in arm.km.steps] + [t for t, _ in arm.km.censor_marks])
        _draw(points, (x(last_time), y(previous)))
        # One tick per pixel column: ticks closer than that are one mark on the screen.
        marks = {round(x(t)): y(s) for t, s in arm.km.censor_marks}
        style = ARM_STYLES.get(arm.arm, ARM_STYLES["A"])
        lines.append(
            {
                "arm": arm.arm,
                "label": arm.label,
                "points": " ".join(f"{px},{py}" for px, py in points),
                "stroke": style["stroke"],
                "dash": style["dash"],
                "marks": [{"x": mx, "y1": my - 4, "y2": my + 4} for mx, my in marks.items()],
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "grid": [{"y": y(p / 100), "label": f"{p} %"} for p in (0, 25, 50, 75, 100)],
        "ticks": [{"x": x(t), "label": f"{t:g}"} for t in summary.at_times],
        "tick_y": bottom + 16,
        "axis_label_y": height - 4,
        "axis_label_x": round((left + right) / 2),
        "lines": lines,
    }
