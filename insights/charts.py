"""Bar charts drawn on the server as SVG: no chart library, no script, nothing from a CDN, and
nothing the page's CSP refuses (colours come from classes in portal.css, not style attributes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 26


def bar_chart(
    points: Sequence[tuple[str, int]],
    *,
    label: str,
    format_value: Callable[[int], str] = str,
) -> SafeString:
    """An SVG bar per (x label, value); the y axis starts at 0 and is labelled at its top."""
    peak = max((value for _, value in points), default=0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(points), 1)
    bar_w = max(step * 0.7, 1.0)
    total = sum(value for _, value in points)
    parts = [
        format_html(
            '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>', LEFT, TOP + plot_h, WIDTH - RIGHT, TOP + plot_h
        ),
        format_html(
            '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>', LEFT - 6, TOP + 10, format_value(peak)
        ),
        format_html('<text class="tick" x="{}" y="{}" text-anchor="end">0</text>', LEFT - 6, TOP + plot_h),
    ]
    for i, (x_label, value) in enumerate(points):
        height = 0.0 if peak == 0 else plot_h * value / peak
        x = LEFT + i * step + (step - bar_w) / 2
        parts.append(
            format_html(
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
                f"{x:.1f}",
                f"{TOP + plot_h - height:.1f}",
                f"{bar_w:.1f}",
                f"{height:.1f}",
                x_label,
                format_value(value),
            )  # fmt: skip
        )
    # The first, middle and last day under the axis: enough to read the period at any width.
    for i in sorted({0, len(points) // 2, len(points) - 1} if points else set()):
        anchor = "start" if i == 0 else "end" if i == len(points) - 1 else "middle"
        x = {"start": LEFT, "end": WIDTH - RIGHT}.get(anchor, LEFT + i * step + step / 2)
        parts.append(
            format_html(
                '<text class="tick" x="{}" y="{}" text-anchor="{}">{}</text>',
                f"{x:.1f}",
                HEIGHT - 6,
                anchor,
                points[i][0],
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}: {} in all">{}</svg>',
        WIDTH, HEIGHT, label, format_value(total), format_html_join("", "{}", ((part,) for part in parts)),
    )  # fmt: skip
