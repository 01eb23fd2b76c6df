"""Headless plots of sigma schedules, drawn with Pillow (no matplotlib).

Used by ``helpers/sigma_schedule.py`` and the single-frame debug mode. Output images are RGB uint8 arrays
shaped (H, W, 3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import SettingsError

BACKGROUND = (255, 255, 255)
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
"""Series colours, in order (the tab10 colours)."""

_AXIS = (0, 0, 0)
_GRID = (225, 225, 225)
_TEXT = (30, 30, 30)
MIN_SIZE = (160, 120)


def _font(px: int):
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.0e}"
    return f"{value:g}"


def plot_schedules(
    named_sigmas: Mapping[str, Sequence[float] | None],
    size: tuple[int, int] = (640, 400),
    *,
    title: str | None = None,
    log_y: bool = False,
    align: str = "start",
) -> np.ndarray:
    """Plot each named schedule as sigma (y) against its index (x); returns RGB uint8 (H, W, 3).

    ``size`` is (width, height) in pixels. ``align="start"`` puts every schedule's first sigma at x = 0
    (x is the sampler step); ``align="end"`` lines up their final zeros, so an img2img tail sits on top of
    the end of its full schedule. ``log_y`` uses a log sigma axis (zeros are not drawn there). A series
    that is None (the host's own schedule) is listed in the legend but not drawn.
    """
    width, height = (int(v) for v in size)
    if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
        raise SettingsError("size", f"{width}x{height} is too small; use at least {MIN_SIZE[0]}x{MIN_SIZE[1]}")
    if align not in ("start", "end"):
        raise SettingsError("align", f"{align!r} is not 'start' or 'end'")

    series = {name: [float(v) for v in values] for name, values in named_sigmas.items() if values is not None}
    longest = max((len(v) for v in series.values()), default=2)
    x_max = max(longest - 1, 1)
    drawn = [v for values in series.values() for v in values if (v > 0 if log_y else True)]
    if log_y:
        y_low = min(drawn, default=0.01) / 1.5
        y_high = max(drawn, default=10.0) * 1.5
    else:
        y_low, y_high = 0.0, (max(drawn, default=1.0) or 1.0) * 1.05

    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    font_px = max(10, min(14, height // 28))
    font = _font(font_px)
    _, text_h = _text_size(draw, "0.9", font)

    left = 12 + _text_size(draw, "0.0001", font)[0]
    right = width - 12
    top = text_h + 18
    bottom = height - (2 * text_h + 18)
    plot_w, plot_h = right - left, bottom - top

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + x / x_max * plot_w
        if log_y:
            frac = (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low))
        else:
            frac = (y - y_low) / (y_high - y_low)
        return px, bottom - frac * plot_h

    # grid and tick labels
    if log_y:
        y_ticks = [10.0**k for k in range(math.ceil(math.log10(y_low)), math.floor(math.log10(y_high)) + 1)]
    else:
        y_ticks = _nice_ticks(y_low, y_high)
    for value in y_ticks:
        _, py = to_px(0, value)
        draw.line([(left, py), (right, py)], fill=_GRID)
        label = _tick_label(value)
        tw, _ = _text_size(draw, label, font)
        draw.text((left - 6 - tw, py - text_h / 2 - 2), label, fill=_TEXT, font=font)
    for value in _nice_ticks(0, x_max, count=min(8, x_max)):
        if value != int(value):
            continue
        px, _ = to_px(value, y_low if not log_y else y_high)
        draw.line([(px, top), (px, bottom)], fill=_GRID)
        label = str(int(value))
        tw, _ = _text_size(draw, label, font)
        draw.text((px - tw / 2, bottom + 4), label, fill=_TEXT, font=font)
    draw.rectangle([left, top, right, bottom], outline=_AXIS)
    x_label = "sampler step" if align == "start" else "step (schedules aligned at their final 0)"
    tw, _ = _text_size(draw, x_label, font)
    draw.text((left + (plot_w - tw) / 2, bottom + text_h + 10), x_label, fill=_TEXT, font=font)
    draw.text((4, max(top - text_h - 6, 2)), "sigma", fill=_TEXT, font=font)
    if title:
        tw, _ = _text_size(draw, title, font)
        draw.text(((width - tw) / 2, 6), title, fill=_TEXT, font=font)

    # series
    legend: list[tuple[str, tuple[int, int, int] | None]] = []
    colour_index = 0
    for name, values in named_sigmas.items():
        if values is None:
            legend.append((f"{name}: host schedule", None))
            continue
        colour = PALETTE[colour_index % len(PALETTE)]
        colour_index += 1
        legend.append((name, colour))
        points = series[name]
        offset = (longest - len(points)) if align == "end" else 0
        pixels = [to_px(offset + i, v) for i, v in enumerate(points) if (v > 0 or not log_y)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2, joint="curve")
        spacing = plot_w / x_max
        if spacing >= 6 or len(pixels) == 1:
            r = 2.5 if spacing >= 6 else 3
            for px, py in pixels:
                draw.ellipse([px - r, py - r, px + r, py + r], fill=colour)

    # legend, top right inside the plot
    if legend:
        line_h = text_h + 6
        box_w = max(_text_size(draw, text, font)[0] for text, _ in legend) + 34
        box_h = line_h * len(legend) + 6
        x0, y0 = right - box_w - 6, top + 6
        draw.rectangle([x0, y0, x0 + box_w, y0 + box_h], fill=BACKGROUND, outline=_GRID)
        for i, (text, colour) in enumerate(legend):
            y = y0 + 4 + i * line_h
            if colour is not None:
                draw.line([(x0 + 6, y + line_h / 2), (x0 + 24, y + line_h / 2)], fill=colour, width=3)
            draw.text((x0 + 30, y), text, fill=_TEXT, font=font)

    return np.asarray(img, dtype=np.uint8)
