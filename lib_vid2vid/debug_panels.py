"""Debug panel images (pure numpy/OpenCV; the UI and ``helpers/fdc_debug.py`` show them).

:func:`fdc_debug_panel` lays out one frame's frame delta correction as a 3 x 2 grid of equal tiles, each
the frame size, with a label bar above each tile::

    source frame i      | source delta (x gain) | motion mask
    depth mask / none   | raw output (B)        | corrected output

The source delta ``t = src[i] - src[i-1]`` (-1..1) is shown as ``0.5 + gain * t / 2`` per channel,
clipped to 0..1: mid-grey = no change, brighter = that channel went up. Masks are shown as grey
(white = may change).
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import Vid2VidError

LABEL_HEIGHT = 22
GAP = 4


def visualise_delta(src_prev: np.ndarray, src_cur: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """Source delta as RGB uint8: ``round(clip(0.5 + gain * (cur - prev) / 510, 0, 1) * 255)``.

    Inputs RGB uint8 HWC. ``(cur - prev) / 255`` is ``t`` in -1..1, so this is ``0.5 + gain * t / 2``.
    """
    t = cv2.subtract(src_cur, src_prev, dtype=cv2.CV_32F)
    v = 0.5 + t * np.float32(gain / 510.0)
    return cv2.convertScaleAbs(np.clip(v, 0, 1), alpha=255.0)


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """float32 HW 0..1 mask -> RGB uint8 grey image (``round(M * 255)`` in all three channels)."""
    m8 = cv2.convertScaleAbs(np.clip(mask, 0, 1).astype(np.float32), alpha=255.0)
    return cv2.cvtColor(m8, cv2.COLOR_GRAY2RGB)


def _placeholder(h: int, w: int, text: str) -> np.ndarray:
    tile = np.full((h, w, 3), 40, np.uint8)
    size = max(0.4, min(h, w) / 300)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, 1)
    cv2.putText(tile, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, size, (200, 200, 200), 1,
                cv2.LINE_AA)
    return tile


def _label(tile: np.ndarray, text: str, labels: bool) -> np.ndarray:
    if not labels:
        return tile
    bar = np.zeros((LABEL_HEIGHT, tile.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (4, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def grid(tiles: list[np.ndarray], columns: int, gap: int = GAP) -> np.ndarray:
    """Tiles of one size (RGB uint8) in rows of ``columns``, ``gap`` black pixels apart."""
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    out = np.zeros((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = tile
    return out


def fdc_debug_panel(
    src_prev: np.ndarray,
    src_cur: np.ndarray,
    prev_out: np.ndarray,
    raw_out: np.ndarray,
    corrected: np.ndarray,
    motion_mask: np.ndarray | None,
    depth_mask: np.ndarray | None = None,
    labels: bool = True,
    *,
    delta_gain: float = 4.0,
    titles: dict[str, str] | None = None,
) -> np.ndarray:
    """One labelled RGB uint8 panel of a frame's FDC (layout in the module docstring).

    Frames are RGB uint8 HWC of one size; ``motion_mask``/``depth_mask`` float32 HW 0..1 (``None`` shows
    "no motion mask"/"no depth"). ``prev_out`` (A) is accepted for the label of the mean change and to
    check sizes. ``titles`` may override a tile's label by key: ``source``, ``delta``, ``motion``,
    ``depth``, ``raw``, ``corrected``.
    """
    h, w = src_cur.shape[:2]
    for name, img in (("src_prev", src_prev), ("prev_out", prev_out), ("raw_out", raw_out),
                      ("corrected", corrected)):
        if img.shape != src_cur.shape:
            raise Vid2VidError(f"{name} is {img.shape}, src_cur is {src_cur.shape}; give frames of one size")
    for name, m in (("motion_mask", motion_mask), ("depth_mask", depth_mask)):
        if m is not None and m.shape != (h, w):
            raise Vid2VidError(f"{name} is {m.shape}, frames are {(h, w)}; resize the mask to the frame size")

    def mean_change(x: np.ndarray) -> float:
        return float(x.astype(np.float32).mean() - prev_out.astype(np.float32).mean())

    t = {
        "source": "source frame i",
        "delta": f"source delta x{delta_gain:g}",
        "motion": "motion mask" + (f" ({float(motion_mask.mean()) * 100:.0f}% may change)"
                                   if motion_mask is not None else ""),
        "depth": "depth mask",
        "raw": f"raw output (mean {mean_change(raw_out):+.1f} vs prev)",
        "corrected": f"corrected (mean {mean_change(corrected):+.1f} vs prev)",
    }
    t.update(titles or {})
    tiles = [
        _label(src_cur, t["source"], labels),
        _label(visualise_delta(src_prev, src_cur, delta_gain), t["delta"], labels),
        _label(mask_to_rgb(motion_mask) if motion_mask is not None else _placeholder(h, w, "no motion mask"),
               t["motion"], labels),
        _label(mask_to_rgb(depth_mask) if depth_mask is not None else _placeholder(h, w, "no depth"),
               t["depth"], labels),
        _label(raw_out, t["raw"], labels),
        _label(corrected, t["corrected"], labels),
    ]
    return grid(tiles, columns=3)
