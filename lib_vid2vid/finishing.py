"""Finishing: per-frame filters, grading and an overlay of the original, applied after upscaling.

Frames are RGB uint8 HWC (0..255) in and out; the work is done in float32 0..1 (``x`` below) and rounded
once at the end (clipped, rounded half up: :func:`lib_vid2vid.imaging.to_uint8`). Steps, each optional, in
this order:

1. **Filter** (one of :data:`FILTERS`, strength ``s`` in 0..1; borders mirrored, OpenCV ``REFLECT_101``):

   - ``smooth``:        ``x + s * (box3(x) - x)``               box3 = mean of the 3x3 neighbourhood
   - ``sharpen``:       ``x + 2 s * (x - box5(x))``             unsharp mask, 5x5 mean, amount up to 2
   - ``edge_enhance``:  ``x + s * (4 x - x_N - x_S - x_E - x_W)``  plus the 4-neighbour Laplacian: 1-pixel
     edges and lines stand out, broad areas do not change

2. **Grading**:

   - auto levels: with ``lo, hi`` the 0.5th and 99.5th percentiles of the BT.601 luma
     ``Y = 0.299 R + 0.587 G + 0.114 B``, every channel becomes ``(x - lo) / (hi - lo)`` (same for R, G, B,
     so hues are kept); skipped when ``hi - lo < 1/255`` (a flat frame);
   - gamma: ``x ** (1 / gamma)`` (gamma > 1 brightens the mid-tones; 1 = off);
   - colour match: the frame's LAB mean and standard deviation moved towards its source frame's
     (:func:`lib_vid2vid.blend.colour_coherence` with the source as the reference, strength 0..1).

3. **Overlay** of the original: ``(1 - a) * x + a * source`` with opacity ``a`` (0.1-0.2 brings back real
   texture and lighting).

The source frame is resized to the frame's size (bicubic) when they differ (an upscaled result).
Filter names come from a fixed list: nothing the user types is ever evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import SettingsError
from .imaging import to_uint8

FILTERS = ("none", "sharpen", "smooth", "edge_enhance")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_BORDER = cv2.BORDER_REFLECT_101
_LAPLACE4 = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)


def to_float(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC -> float32 0..1 (float input is returned as float32 unchanged)."""
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.asarray(rgb, np.float32)


def _check_strength(field: str, value: float, hi: float = 1.0) -> float:
    v = float(value)
    if not 0.0 <= v <= hi:
        raise SettingsError(field, f"{value} is outside 0..{hi:g}")
    return v


def apply_filter(x: np.ndarray, name: str, strength: float) -> np.ndarray:
    """The named filter (see the module doc) on float32 0..1 RGB; returns float32, not clipped."""
    if name not in FILTERS:
        raise SettingsError("finish_filter", f"{name!r} is not one of: {', '.join(FILTERS)}")
    s = _check_strength("filter_strength", strength)
    x = to_float(x)
    if name == "none" or s == 0:
        return x
    if name == "smooth":
        return x + np.float32(s) * (cv2.blur(x, (3, 3), borderType=_BORDER) - x)
    if name == "sharpen":
        return x + np.float32(2 * s) * (x - cv2.blur(x, (5, 5), borderType=_BORDER))
    return x + np.float32(s) * cv2.filter2D(x, -1, _LAPLACE4, borderType=_BORDER)  # edge_enhance


def auto_levels(x: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Stretch float32 0..1 RGB so the luma percentiles ``low_pct``/``high_pct`` become 0 and 1."""
    x = to_float(x)
    y = np.clip(x, 0, 1) @ _LUMA
    lo, hi = (float(v) for v in np.percentile(y, [low_pct, high_pct]))
    if hi - lo < 1.0 / 255.0:
        return x
    return (x - np.float32(lo)) * np.float32(1.0 / (hi - lo))


def apply_gamma(x: np.ndarray, gamma: float) -> np.ndarray:
    """``clip(x, 0, 1) ** (1 / gamma)`` on float32 0..1; gamma 1 returns ``x``."""
    if gamma <= 0:
        raise SettingsError("gamma", f"{gamma} must be > 0")
    if gamma == 1:
        return x
    return np.power(np.clip(x, 0, 1), np.float32(1.0 / gamma))


def match_colour(x: np.ndarray, source: np.ndarray, strength: float) -> np.ndarray:
    """Move the LAB mean/std of float32 0..1 ``x`` towards ``source``'s (RGB uint8 or float, same size)."""
    from .blend import colour_coherence, lab_stats

    s = _check_strength("colour_match", strength)
    if s == 0:
        return x
    return colour_coherence(np.clip(x, 0, 1), lab_stats(source), s, as_float=True)


def overlay(x: np.ndarray, source: np.ndarray, opacity: float) -> np.ndarray:
    """``(1 - a) * x + a * source`` in float32 0..1."""
    a = _check_strength("overlay_opacity", opacity)
    if a == 0:
        return x
    return x * np.float32(1 - a) + to_float(source) * np.float32(a)


def fit_source(source: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``source`` (RGB uint8) resized (bicubic) to ``shape[:2]`` = (H, W) if needed."""
    h, w = shape[:2]
    if source.shape[:2] == (h, w):
        return source
    interp = cv2.INTER_CUBIC if h >= source.shape[0] else cv2.INTER_AREA
    return cv2.resize(source, (w, h), interpolation=interp)


@dataclass(frozen=True)
class Finisher:
    """The finishing steps with their settings; call it on each frame (see the module doc)."""

    filter: str = "none"
    strength: float = 0.5
    levels: bool = False
    gamma: float = 1.0
    colour_match: float = 0.0
    overlay: float = 0.0

    def __post_init__(self):
        if self.filter not in FILTERS:
            raise SettingsError("finish_filter", f"{self.filter!r} is not one of: {', '.join(FILTERS)}")
        _check_strength("filter_strength", self.strength)
        _check_strength("colour_match", self.colour_match)
        _check_strength("overlay_opacity", self.overlay)
        if not self.gamma > 0:
            raise SettingsError("gamma", f"{self.gamma} must be > 0")

    @classmethod
    def from_settings(cls, export) -> Finisher:
        """From :class:`lib_vid2vid.params.ExportSettings`."""
        return cls(export.finish_filter, export.filter_strength, export.auto_levels, export.gamma,
                   export.colour_match, export.overlay_opacity)

    @property
    def active(self) -> bool:
        return ((self.filter != "none" and self.strength > 0) or self.levels or self.gamma != 1
                or self.colour_match > 0 or self.overlay > 0)

    @property
    def needs_source(self) -> bool:
        return self.colour_match > 0 or self.overlay > 0

    def __call__(self, frame: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        """Finish one RGB uint8 frame; ``source`` (RGB uint8, any size) is needed when :attr:`needs_source`."""
        if not self.active:
            return frame
        if self.needs_source and source is None:
            raise ValueError("this Finisher needs the source frame (colour match / overlay)")
        x = apply_filter(to_float(frame), self.filter, self.strength)
        if self.levels:
            x = auto_levels(x)
        x = apply_gamma(x, self.gamma)
        if self.needs_source:
            src = fit_source(source, frame.shape)
            x = match_colour(x, src, self.colour_match)
            x = overlay(x, src, self.overlay)
        return to_uint8(x)
