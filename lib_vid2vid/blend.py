"""Pixel blends against flicker: loopback superimpose, batch blend, temporal blend and merge, colour coherence.

All functions are pure (no state between calls); the frame loop keeps the small window of frames they need.

Units and numerics
------------------
* Image inputs are RGB uint8 HWC (pixels 0..255) or, for chaining, float32 RGB HWC in 0..1 (the project's
  float convention). Every function converts its inputs to float32 on the 0..255 scale
  (``uint8`` as is, float input ``* 255``), does all arithmetic in float32 without any intermediate rounding,
  clips to 0..255 once, and only then converts.
* Outputs are RGB uint8 HWC by default, clipped and rounded **half up** (:func:`lib_vid2vid.imaging.to_uint8_255`:
  0.5 -> 1 and 2.5 -> 3; ``np.rint`` would give 0 and 2). Pass ``as_float=True`` to get float32 RGB in
  0..1 instead (clipped, not rounded) and feed it to the next blend, so a chain rounds only once.
* Luma (used by the change mask) is BT.601: ``Y = 0.299 R + 0.587 G + 0.114 B`` on the 0..255 scale.

Out-of-range settings (alpha, strength, weights) raise :class:`~lib_vid2vid.errors.SettingsError`, since
per-frame schedules can produce them from user text; shape mismatches raise ``ValueError`` (a bug).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import SettingsError
from .imaging import to_uint8_255

__all__ = [
    "to_float255",
    "superimpose",
    "batch_blend",
    "validate_temporal_weights",
    "temporal_window",
    "temporal_blend",
    "change_weights",
    "temporal_blend_masked",
    "rgb_to_ycrcb",
    "ycrcb_to_rgb",
    "temporal_merge",
    "rgb_to_lab",
    "lab_to_rgb",
    "LabStats",
    "lab_stats",
    "colour_coherence",
]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# --------------------------------------------------------------------------------------------- conversions


def to_float255(img: np.ndarray) -> np.ndarray:
    """RGB uint8 (0..255) or float (0..1) HWC -> float32 HWC on the 0..255 scale (a new array)."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32) * np.float32(255.0)
    raise ValueError(f"expected a uint8 or float image, got dtype {a.dtype}")


def _finish(x255: np.ndarray, as_float: bool) -> np.ndarray:
    if as_float:
        return (np.clip(x255, 0.0, 255.0) / np.float32(255.0)).astype(np.float32)
    return to_uint8_255(x255)


def _check_unit(field: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise SettingsError(field, f"must be between 0 and 1, got {value!r}")
    return v


def _same_shape(arrays: Sequence[np.ndarray], what: str) -> None:
    shapes = {tuple(np.shape(a)) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"{what}: all images must have the same shape, got {sorted(shapes)}")


# ------------------------------------------------------------------------------------ loopback superimpose


def superimpose(base: np.ndarray, rendered: np.ndarray, alpha: float, *, as_float: bool = False) -> np.ndarray:
    """Loopback superimpose: ``out = (1 - alpha) * base + alpha * rendered``.

    ``base`` is the pass's input frame, ``rendered`` what the host returned for it; ``alpha`` in 0..1
    (0 keeps ``base``, 1 keeps ``rendered``). Images RGB uint8 or float 0..1 HWC; see module docstring
    for the output.
    """
    a = _check_unit("superimpose alpha", alpha)
    _same_shape([base, rendered], "superimpose")
    b = to_float255(base)
    r = to_float255(rendered)
    out = b * np.float32(1.0 - a) + r * np.float32(a)
    return _finish(out, as_float)


# --------------------------------------------------------------------------------------------- batch blend


def batch_blend(samples: Sequence[np.ndarray]) -> np.ndarray:
    """Average the samples of one frame (batch_size x batch_count of them): ``out = sum_k s_k / n``.

    ``samples``: RGB uint8 (or float 0..1) HWC images of one shape. Returns float32 RGB HWC in 0..1, not
    rounded: the frame loop's corrections follow and it rounds once at the end. Summed in float32 on the
    0..255 scale (exact for uint8), then multiplied by ``1 / (255 n)``.
    """
    if len(samples) == 0:
        raise ValueError("batch_blend: no samples")
    _same_shape(samples, "batch_blend")
    acc = np.zeros(np.shape(samples[0]), dtype=np.float32)
    for s in samples:
        acc += s if s.dtype == np.uint8 else to_float255(s)  # uint8 adds exactly, without a float copy
    acc *= 1.0 / (255.0 * len(samples))
    return acc


# ----------------------------------------------------------------------------------------- temporal blend


def validate_temporal_weights(weights: Sequence[float], field: str = "temporal weights") -> list[float]:
    """Check a temporal weight list: odd length, finite, non-negative, positive sum. Returns it as floats.

    Weights are *relative*; :func:`temporal_blend` normalises them, so ``[1, 2, 1]`` means 1/4, 1/2, 1/4.
    """
    try:
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        raise SettingsError(field, f"must be a list of numbers, got {weights!r}") from None
    if len(w) % 2 != 1:
        raise SettingsError(field, f"needs an odd number of weights (centre frame in the middle), got {len(w)}")
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise SettingsError(field, f"weights must be finite and >= 0, got {w}")
    if sum(w) <= 0:
        raise SettingsError(field, "at least one weight must be positive")
    return w


def temporal_window(index: int, total: int | None, size: int) -> list[int | None]:
    """Source frame indices ``index-k .. index+k`` for an odd window ``size = 2k + 1``.

    Indices outside the video (``< 0`` or ``>= total``) are ``None``; ``total=None`` means the length is
    unknown (streaming), so only ``< 0`` is cut. The frame loop fetches these frames (``None`` -> pass None)
    and hands the list to :func:`temporal_blend`.
    """
    if size % 2 != 1 or size < 1:
        raise ValueError(f"window size must be odd and positive, got {size}")
    k = size // 2
    out: list[int | None] = []
    for j in range(index - k, index + k + 1):
        out.append(j if j >= 0 and (total is None or j < total) else None)
    return out


def _present(frames: Sequence[np.ndarray | None], weights: Sequence[float]) -> tuple[list[float], int]:
    w = validate_temporal_weights(weights)
    if len(frames) != len(w):
        raise ValueError(f"temporal blend: {len(frames)} frames for {len(w)} weights")
    c = len(w) // 2
    if frames[c] is None:
        raise ValueError("temporal blend: the centre frame is missing")
    _same_shape([f for f in frames if f is not None], "temporal blend")
    return w, c


def temporal_blend(
    frames: Sequence[np.ndarray | None], weights: Sequence[float], *, as_float: bool = False
) -> np.ndarray:
    """Init for frame i as a weighted mix of source frames ``i-k .. i+k``.

    ``frames[j]`` is source frame ``i - k + j`` (RGB uint8 or float 0..1 HWC) or ``None`` where that frame
    is outside the video; ``frames[k]`` (the centre, frame i) must exist. ``weights`` has the same odd
    length ``2k + 1``. Formula, over the set P of frames that exist::

        out = sum_{j in P} w_j * frames[j] / sum_{j in P} w_j

    i.e. the weights are normalised, and at the edges of the video they are **renormalised over the frames
    that exist** (frame 0 with ``[1, 2, 1]`` gives ``(2 * f0 + f1) / 3``). If every existing weight is 0
    (e.g. ``[1, 0, 0]`` at frame 0), the centre frame is returned unchanged.
    """
    w, c = _present(frames, weights)
    total = sum(wj for f, wj in zip(frames, w) if f is not None)
    if total <= 0:
        return _finish(to_float255(frames[c]), as_float)
    acc = np.zeros(np.shape(frames[c]), dtype=np.float32)
    for f, wj in zip(frames, w):
        if f is not None and wj:
            acc += to_float255(f) * np.float32(wj)
    return _finish(acc / np.float32(total), as_float)


def _luma255(x255: np.ndarray) -> np.ndarray:
    return x255 @ _LUMA


def change_weights(diff: np.ndarray, threshold: float, softness: float) -> np.ndarray:
    """Soft "source changed" mask from a luma difference (0..255 units) -> float32 in 0..1, 1 = changed.

    ``m = clip((diff - threshold) / softness, 0, 1)``: 0 at or below ``threshold``, 1 at or above
    ``threshold + softness``, linear between. ``softness = 0`` is a hard step (``diff > threshold`` -> 1).
    """
    if not (math.isfinite(threshold) and threshold >= 0):
        raise SettingsError("change threshold", f"must be >= 0 (luma levels 0..255), got {threshold!r}")
    if not (math.isfinite(softness) and softness >= 0):
        raise SettingsError("change softness", f"must be >= 0 (luma levels 0..255), got {softness!r}")
    d = np.asarray(diff, dtype=np.float32)
    if softness == 0:
        return (d > np.float32(threshold)).astype(np.float32)
    return np.clip((d - np.float32(threshold)) / np.float32(softness), 0.0, 1.0).astype(np.float32)


def temporal_blend_masked(
    frames: Sequence[np.ndarray | None],
    weights: Sequence[float],
    threshold: float = 12.0,
    softness: float = 12.0,
    *,
    as_float: bool = False,
    return_mask: bool = False,
):
    """Temporal blend that keeps the current frame wherever the source changed.

    Same ``frames`` / ``weights`` layout as :func:`temporal_blend` (c = centre index, frame i). For each
    existing neighbour j != c, a per-pixel change mask ``m_j = change_weights(|Y(frames[j]) - Y(frames[c])|,
    threshold, softness)`` (luma, 0..255 levels) turns that neighbour's weight down where it differs::

        w'_j(x) = w_j * (1 - m_j(x))      (j != c),     w'_c(x) = w_c
        out(x)  = sum_j w'_j(x) * frames[j](x) / sum_j w'_j(x)

    So a pixel that changed against every neighbour is the current frame exactly; an unchanged pixel is
    the plain :func:`temporal_blend`; a pixel that changed against one neighbour is blended from the others.
    Where the per-pixel weight sum is 0 (centre weight 0 and every neighbour changed) the current frame is
    used. Frames outside the video count as absent, exactly as in :func:`temporal_blend`.

    With ``return_mask=True`` returns ``(image, mask)`` where ``mask`` is float32 HW, the per-pixel maximum
    of ``m_j`` over the existing neighbours (1 = the source changed there; 0 everywhere if there are none).
    """
    w, c = _present(frames, weights)
    centre = to_float255(frames[c])
    y_c = _luma255(centre)
    acc = centre * np.float32(w[c])
    wsum = np.full(y_c.shape, np.float32(w[c]), dtype=np.float32)
    mask = np.zeros(y_c.shape, dtype=np.float32)
    for j, (f, wj) in enumerate(zip(frames, w)):
        if j == c or f is None:
            continue
        fj = to_float255(f)
        m = change_weights(np.abs(_luma255(fj) - y_c), threshold, softness)
        np.maximum(mask, m, out=mask)
        if wj:
            wpix = np.float32(wj) * (np.float32(1.0) - m)
            acc += fj * wpix[..., None]
            wsum += wpix
    safe = wsum > 0
    out = np.where(safe[..., None], acc / np.where(safe, wsum, np.float32(1.0))[..., None], centre)
    img = _finish(out.astype(np.float32), as_float)
    return (img, mask) if return_mask else img


# ----------------------------------------------------------------------------------------- temporal merge

# BT.601 full-range YCrCb without the +128 offset (it cancels in any affine blend):
#   Y = 0.299 R + 0.587 G + 0.114 B,  Cr = (R - Y) / 1.402,  Cb = (B - Y) / 1.772
# and its exact inverse R = Y + 1.402 Cr, B = Y + 1.772 Cb, G = (Y - 0.299 R - 0.114 B) / 0.587.


def rgb_to_ycrcb(x255: np.ndarray) -> np.ndarray:
    """float RGB (0..255) HWC -> float32 Y, Cr, Cb (BT.601 full range; Cr/Cb centred on 0, not 128)."""
    x = np.asarray(x255, dtype=np.float32)
    y = _luma255(x)
    cr = (x[..., 0] - y) / np.float32(1.402)
    cb = (x[..., 2] - y) / np.float32(1.772)
    return np.stack([y, cr, cb], axis=-1)


def ycrcb_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`rgb_to_ycrcb` -> float32 RGB on the 0..255 scale (not clipped)."""
    y, cr, cb = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    r = y + np.float32(1.402) * cr
    b = y + np.float32(1.772) * cb
    g = (y - np.float32(0.299) * r - np.float32(0.114) * b) / np.float32(0.587)
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def temporal_merge(
    source: np.ndarray,
    previous: np.ndarray,
    strength: float,
    *,
    luma_share: float = 0.5,
    as_float: bool = False,
) -> np.ndarray:
    """Pull the current source frame toward the previous generated frame, mostly in colour.

    ``source`` = current source frame, ``previous`` = previous generated (output) frame, both RGB uint8 or
    float 0..1 HWC. Working in YCrCb (BT.601, see :func:`rgb_to_ycrcb`) with ``s = strength`` in 0..1 and
    ``a = luma_share`` in 0..1 (default 0.5)::

        Y_out     = (1 - a*s) * Y_src  + a*s * Y_prev        (luminance: structure stays with the source)
        CrCb_out  = (1 - s)   * CrCb_src + s * CrCb_prev     (chroma: biased fully toward the previous output)

    So ``s = 0`` returns the source unchanged; ``s = 1`` (default ``a``) gives luminance halfway between
    source and previous output, and exactly the previous output's chroma. The result is converted back to
    RGB and clipped to 0..255 once. (The whole map is linear in RGB, so nothing is lost in the round trip.)
    """
    s = _check_unit("temporal merge strength", strength)
    a = _check_unit("temporal merge luma share", luma_share)
    _same_shape([source, previous], "temporal merge")
    src = to_float255(source)
    if s == 0:
        return _finish(src, as_float)
    ys = rgb_to_ycrcb(src)
    yp = rgb_to_ycrcb(to_float255(previous))
    k = np.array([a * s, s, s], dtype=np.float32)
    out = ys * (np.float32(1.0) - k) + yp * k
    return _finish(ycrcb_to_rgb(out), as_float)


# -------------------------------------------------------------------------------------- colour coherence

# sRGB (D65) <-> CIE L*a*b*, the standard formulas: sRGB gamma decode, linear RGB -> XYZ, XYZ/white,
# f(t) = t^(1/3) above (6/29)^3 else t / (3 (6/29)^2) + 4/29; L = 116 f(Y) - 16, a = 500 (f(X) - f(Y)),
# b = 200 (f(Y) - f(Z)). L in 0..100, a and b roughly -128..127.

_RGB2XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=np.float64,
)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_WHITE = _RGB2XYZ.sum(axis=1)  # XYZ of RGB (1, 1, 1): the D65 white the matrix is built for
_D = 6.0 / 29.0


def rgb_to_lab(x255: np.ndarray) -> np.ndarray:
    """float RGB (0..255, sRGB) HWC -> float32 CIE LAB (D65): L 0..100, a/b about -128..127."""
    c = np.clip(np.asarray(x255, dtype=np.float32) / np.float32(255.0), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / np.float32(12.92), ((c + np.float32(0.055)) / np.float32(1.055)) ** 2.4)
    xyz = lin @ (_RGB2XYZ / _WHITE[:, None]).T.astype(np.float32)
    f = np.where(xyz > _D**3, np.cbrt(xyz), xyz / np.float32(3 * _D * _D) + np.float32(4.0 / 29.0))
    lab = np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab` -> float32 sRGB on the 0..255 scale (clipped to 0..255)."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + np.float32(16.0)) / np.float32(116.0)
    fx = fy + lab[..., 1] / np.float32(500.0)
    fz = fy - lab[..., 2] / np.float32(200.0)
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > _D, f**3, np.float32(3 * _D * _D) * (f - np.float32(4.0 / 29.0)))
    lin = (xyz * _WHITE.astype(np.float32)) @ _XYZ2RGB.T.astype(np.float32)
    lin = np.clip(lin, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, lin * np.float32(12.92), np.float32(1.055) * lin ** (1 / 2.4) - np.float32(0.055))
    return (np.clip(c, 0.0, 1.0) * np.float32(255.0)).astype(np.float32)


@dataclass(frozen=True)
class LabStats:
    """Per-channel LAB mean and population standard deviation (L, a, b) of a reference frame."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def lab_stats(img: np.ndarray) -> LabStats:
    """LAB statistics of an RGB uint8 / float 0..1 HWC image (keep these for the reference frame)."""
    lab = rgb_to_lab(to_float255(img)).reshape(-1, 3).astype(np.float64)
    m = lab.mean(axis=0)
    s = lab.std(axis=0)
    return LabStats(tuple(float(v) for v in m), tuple(float(v) for v in s))


_FLAT_STD = 1e-3  # a channel with std below this (LAB units) is flat: only its mean is moved


def colour_coherence(
    img: np.ndarray, reference: LabStats, strength: float = 1.0, *, as_float: bool = False,
    own: LabStats | None = None,
) -> np.ndarray:
    """Match a frame's LAB colour statistics to a reference (the first frame or the last keyframe).

    Per LAB channel c, with the frame's mean/std ``mu_c, sd_c`` and the reference's ``mu_r, sd_r``::

        matched_c = (lab_c - mu_c) * (sd_r / sd_c) + mu_r        (if sd_c < 1e-3: matched_c = lab_c - mu_c + mu_r)
        out_c     = (1 - strength) * lab_c + strength * matched_c

    then back to sRGB, clipped, rounded once. ``strength`` in 0..1; 0 returns the frame unchanged (no LAB
    round trip). ``reference`` comes from :func:`lab_stats`. ``own``, when given, stands for the frame's own
    ``mu_c, sd_c``: one fixed transform applied to several frames (image to video moves a whole clip by what
    matches its first frame to the frame before the join).
    """
    s = _check_unit("colour coherence strength", strength)
    x = to_float255(img)
    if s == 0:
        return _finish(x, as_float)
    lab = rgb_to_lab(x)
    if own is None:
        mu, sd = _mean_std(lab.reshape(-1, 3).astype(np.float64))
    else:
        mu, sd = np.asarray(own.mean, dtype=np.float64), np.asarray(own.std, dtype=np.float64)
    mu_r = np.asarray(reference.mean, dtype=np.float64)
    sd_r = np.asarray(reference.std, dtype=np.float64)
    scale = np.where(sd < _FLAT_STD, 1.0, sd_r / np.maximum(sd, _FLAT_STD))
    matched = (lab - mu.astype(np.float32)) * scale.astype(np.float32) + mu_r.astype(np.float32)
    # at full strength the blend is ``matched`` itself (lab * 0 + matched * 1: the same numbers)
    out = matched if s == 1.0 else lab * np.float32(1.0 - s) + matched * np.float32(s)
    return _finish(lab_to_rgb(out), as_float)


def _mean_std(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population standard deviation of a float64 (N, C) array: the numbers
    ``flat.mean(axis=0)`` and ``flat.std(axis=0)`` give, bit for bit (the same sums in the same order), with
    the mean summed once instead of twice and the deviations squared in place."""
    n = flat.shape[0]
    mean = flat.sum(axis=0) / n
    dev = flat - mean
    np.multiply(dev, dev, out=dev)
    return mean, np.sqrt(dev.sum(axis=0) / n)
