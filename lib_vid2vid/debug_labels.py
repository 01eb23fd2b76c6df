"""Label tiles for debug images: text centred on white, in the largest font that fits, cut with "..." else.

Every label of a sweep grid is drawn by :func:`label_image`, so a test can check a label pixel for pixel.
Pillow draws the text (its default font; Pillow < 10.1 has one fixed size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_BG = (255, 255, 255)
_TEXT = (20, 20, 20)
_FONT_SIZES = (14, 13, 12, 11, 10, 9, 8)


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit_text(text: str, width: int) -> tuple[str, Any, tuple[int, int, int, int]]:
    """(shown text, font, bbox): the largest font of ``_FONT_SIZES`` that fits ``width`` pixels, else the
    smallest with the text cut and ended by "..."."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for px in _FONT_SIZES:
        font = _font(px)
        box = draw.textbbox((0, 0), text, font=font)
        if box[2] - box[0] <= width:
            return text, font, box
    font = _font(_FONT_SIZES[-1])
    for cut in range(len(text) - 1, 0, -1):
        shown = text[:cut] + "..."
        box = draw.textbbox((0, 0), shown, font=font)
        if box[2] - box[0] <= width:
            return shown, font, box
    return "", font, (0, 0, 0, 0)


def label_image(text: str, width: int, height: int) -> np.ndarray:
    """A label tile: ``text`` centred in a white (height, width) RGB uint8 image, dark text, shrunk to fit."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (int(width), int(height)), _BG)
    shown, font, box = _fit_text(text, int(width) - 4)
    if shown:
        x = (width - (box[2] - box[0])) / 2 - box[0]
        y = (height - (box[3] - box[1])) / 2 - box[1]
        ImageDraw.Draw(img).text((round(x), round(y)), shown, fill=_TEXT, font=font)
    return np.asarray(img, dtype=np.uint8)


def widest_label(labels: Sequence[str]) -> int:
    """Width in pixels of the widest of ``labels`` in the largest label font."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font(_FONT_SIZES[0])
    return max(draw.textbbox((0, 0), t, font=font)[2] for t in labels)
