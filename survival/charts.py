"""The geometry of the Kaplan-Meier chart of the endpoints report: inline SVG drawn by the
template (no script, nothing from the internet), in the house style of ``core.charts``."""

from __future__ import annotations

# Arm A solid, arm B dashed: the curves differ without colour too.
ARM_STYLES = {
    "A": {"stroke": "#1f5fa8", "dash": ""},
    "B": {"stroke": "#b5541c", "dash": "6 3"},
}


def km_chart(summary, *, width: int = 640, height: int = 320) -> dict:
    """Step curves of each arm of ``summary`` (``selectors.EndpointSummary``, months), with
    censoring ticks, a survival axis (0-100 %) and a month axis ticked where numbers at risk are
    given."""
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
        points, previous = [], 1.0
        for t, s in arm.km.steps:
            points.append(f"{x(t)},{y(previous)}")
            points.append(f"{x(t)},{y(s)}")
            previous = s
        last_time = max([t for t, _ in arm.km.steps] + [t for t, _ in arm.km.censor_marks])
        points.append(f"{x(last_time)},{y(previous)}")
        style = ARM_STYLES.get(arm.arm, ARM_STYLES["A"])
        lines.append(
            {
                "arm": arm.arm,
                "label": arm.label,
                "points": " ".join(points),
                "stroke": style["stroke"],
                "dash": style["dash"],
                "marks": [
                    {"x": x(t), "y1": y(s) - 4, "y2": y(s) + 4} for t, s in arm.km.censor_marks
                ],
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
