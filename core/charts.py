"""The geometry of the small server-rendered charts (inline SVG drawn by the templates): no
script and nothing loaded from the internet."""

from __future__ import annotations


def bar_chart(
    rows: list[tuple[str, int]],
    *,
    width: int = 480,
    bar: int = 20,
    label_width: int = 150,
    gap: int = 8,
    room: int = 40,
) -> dict:
    """Horizontal bars: ``rows`` of (label, count); ``room`` is kept right of the longest bar
    for its count."""
    top = max((count for _, count in rows), default=0) or 1
    scale = (width - label_width - room) / top
    bars = []
    for i, (label, count) in enumerate(rows):
        y = i * (bar + gap)
        length = round(count * scale)
        bars.append(
            {
                "label": label,
                "count": count,
                "y": y,
                "text_y": round(y + bar * 0.7, 1),
                "length": length,
                "count_x": label_width + length + 6,
            }
        )
    return {
        "bars": bars,
        "width": width,
        "height": max(len(rows) * (bar + gap) - gap, bar),
        "bar": bar,
        "label_width": label_width,
        "label_x": label_width - 8,
    }
