"""Resize a decoded frame to the job's size the way the WebUI does (stretch, crop, or fill the borders)."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import VideoError

RESIZE_MODES = ("just_resize", "crop_and_resize", "resize_and_fill")


def _scale(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize to w x h: INTER_AREA when shrinking both sides, Lanczos otherwise."""
    H, W = img.shape[:2]
    if (W, H) == (w, h):
        return img
    interp = cv2.INTER_AREA if (w <= W and h <= H) else cv2.INTER_LANCZOS4
    return cv2.resize(img, (w, h), interpolation=interp)


def resize_frame(rgb: np.ndarray, width: int, height: int, mode: str = "just_resize",
                 source_size: tuple[int, int] | None = None) -> np.ndarray:
    """Resize an RGB uint8 HWC frame to ``width`` x ``height`` the way the WebUI's ``images.resize_image`` does.

    ``source_size`` = (W, H) pixels is the size the frame is shown at when that is not its array's size (non-square
    pixels): the crop and the bands follow that shape, and the frame is still scaled only once.

    * ``just_resize``: stretch to the target size (aspect ratio not kept).
    * ``crop_and_resize``: scale so the frame covers the target, then centre-crop the overflow.
    * ``resize_and_fill``: scale so the frame fits inside the target, centre it, and fill the empty bands by
      repeating the nearest edge row (top/bottom bands) or column (left/right bands), as the WebUI
      stretches the edge rows. Unlike the WebUI, an odd leftover row is filled too.

    Scaled sizes use the WebUI's integer formulas, e.g. ``src_h = H * width // W``.
    """
    if mode not in RESIZE_MODES:
        raise VideoError(f"Unknown resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise VideoError(f"Target size {width}x{height} is empty: give a width and height of at least 1")
    W, H = source_size if source_size is not None else (rgb.shape[1], rgb.shape[0])
    if mode == "just_resize":
        return _scale(rgb, width, height)
    ratio = width / height
    src_ratio = W / H
    if mode == "crop_and_resize":
        sw = width if ratio > src_ratio else W * height // H
        sh = height if ratio <= src_ratio else H * width // W
        scaled = _scale(rgb, max(sw, 1), max(sh, 1))
        x0 = sw // 2 - width // 2
        y0 = sh // 2 - height // 2
        return np.ascontiguousarray(scaled[y0 : y0 + height, x0 : x0 + width])
    # resize_and_fill
    sw = width if ratio < src_ratio else W * height // H
    sh = height if ratio >= src_ratio else H * width // W
    sw, sh = max(sw, 1), max(sh, 1)
    scaled = _scale(rgb, sw, sh)
    out = np.empty((height, width, rgb.shape[2]), dtype=rgb.dtype)
    x0 = width // 2 - sw // 2
    y0 = height // 2 - sh // 2
    out[y0 : y0 + sh, x0 : x0 + sw] = scaled
    if y0 > 0:
        out[:y0, x0 : x0 + sw] = scaled[:1]
    if y0 + sh < height:
        out[y0 + sh :, x0 : x0 + sw] = scaled[-1:]
    if x0 > 0:
        out[:, :x0] = out[:, x0 : x0 + 1]
    if x0 + sw < width:
        out[:, x0 + sw :] = out[:, x0 + sw - 1 : x0 + sw]
    return out
