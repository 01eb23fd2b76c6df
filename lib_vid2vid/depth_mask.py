"""Normalised depth and the depth mask (the low-cut that keeps the far background unchanged).

The *normalised* depth is ``d = clip((raw - lo) / (hi - lo), 0, 1)`` so **1 = near, 0 = far**; a flat map
(``hi <= lo``) gives 0. ``raw`` is MiDaS' relative inverse depth (:mod:`.depth_estimator`); where ``lo`` and
``hi`` come from is the cache's normalisation mode (:mod:`.depth_cache`).

Depth low-cut (:func:`depth_mask`)
    ``m = [d * 255 >= low_cut]`` (0..255, the motion mask's scale): pixels whose normalised depth is
    below the low-cut -- the far background -- **may not change** (mask 0); ``low_cut = 0`` lets the
    whole frame change. A higher low-cut never lets more of the frame change.
"""

from __future__ import annotations

import numpy as np

from .errors import SettingsError


def normalise(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``clip((raw - lo) / (hi - lo), 0, 1)`` as float32 HW; all zeros when ``hi <= lo`` (flat map)."""
    if not hi > lo:
        return np.zeros(raw.shape, np.float32)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    d = (raw.astype(np.float32) - lo32) / (hi32 - lo32)  # division: the maximum maps to exactly 1
    return np.clip(d, 0.0, 1.0, out=d)


def depth_mask(depth: np.ndarray, low_cut: float) -> np.ndarray:
    """Depth mask: ``1`` where ``depth * 255 >= low_cut`` else ``0`` (float32 HW).

    ``depth`` float32 HW 0..1 (1 = near); ``low_cut`` 0..255 (0 = the whole frame may change). Pixels
    farther than the low-cut may not change.
    """
    if not 0 <= low_cut <= 255:
        raise SettingsError("depth_low_cut", f"{low_cut} is outside 0..255")
    if low_cut <= 0:
        return np.ones(depth.shape[:2], np.float32)
    return (depth.astype(np.float32, copy=False) * np.float32(255.0) >= np.float32(low_cut)).astype(np.float32)
