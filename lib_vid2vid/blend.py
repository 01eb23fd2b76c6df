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

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import SettingsError
from .imaging import to_uint8, to_uint8_255

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
    "colour_coherence_uint8",
    "source_lab_means",
    "follow_source",
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
    # the numbers of rgb_to_ycrcb, the blend and ycrcb_to_rgb, computed on planes (one contiguous array per
    # channel, so no per-pixel loop over 3 channels) and interleaved once at the end
    k = np.array([a * s, s, s], dtype=np.float32)
    keep = np.float32(1.0) - k
    ys, yp = _ycrcb_planes(src), _ycrcb_planes(to_float255(previous))
    for c in range(3):
        ys[c] *= keep[c]
        yp[c] *= k[c]
        ys[c] += yp[c]
    y, cr, cb = ys
    r = np.float32(1.402) * cr
    r += y
    b = np.float32(1.772) * cb
    b += y
    g = y - np.float32(0.299) * r
    g -= np.float32(0.114) * b
    g /= np.float32(0.587)
    return _finish(_interleave(np.stack([r, g, b])), as_float)


def _ycrcb_planes(x255: np.ndarray) -> np.ndarray:
    """:func:`rgb_to_ycrcb` as planes (3, ...): Y, Cr, Cb, the same float32 numbers."""
    y = _luma255(x255)
    out = np.empty((3, *y.shape), np.float32)
    out[0] = y
    np.subtract(x255[..., 0], y, out=out[1])
    out[1] /= np.float32(1.402)
    np.subtract(x255[..., 2], y, out=out[2])
    out[2] /= np.float32(1.772)
    return out


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
    """LAB statistics of an RGB uint8 / float 0..1 HWC image (keep these for the reference frame).

    The numbers of ``rgb_to_lab(to_float255(img))`` taken as float64 (N, 3) rows, ``mean(axis=0)`` and
    ``std(axis=0)``, bit for bit (see :func:`_lab_planes` and :func:`_mean_std`)."""
    m, s = _mean_std(_lab_planes(img))
    return LabStats(tuple(float(v) for v in m), tuple(float(v) for v in s))


_SOURCE_SIDE = 128
"""Pixels: :func:`source_lab_means` measures a source frame resized (INTER_AREA) to at most this long a side."""


def source_lab_means(img: np.ndarray) -> tuple[float, float, float]:
    """Mean LAB (L, a, b) of a source frame (RGB uint8 HWC), measured on the frame resized so its longer side is at
    most 128 pixels (area average): only differences of two such means are used (:func:`follow_source`), and the
    small copy costs about 1/16 of the full frame's LAB conversion."""
    h, w = img.shape[:2]
    if max(h, w) > _SOURCE_SIDE:
        f = _SOURCE_SIDE / max(h, w)
        img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    m, _ = _mean_std(_lab_planes(img))
    return (float(m[0]), float(m[1]), float(m[2]))


def follow_source(reference: LabStats, reference_source: Sequence[float], source: Sequence[float]) -> LabStats:
    """The statistics colour coherence matches a frame to when the colours follow the source: the shot's first
    output frame's, its means moved by how the source's have changed since. Per LAB channel c::

        mu_c = mu_ref_c + (mu_src_c - mu_refsrc_c)        sd_c = sd_ref_c

    ``reference``: :func:`lab_stats` of the shot's first output frame; ``reference_source`` and ``source``:
    :func:`source_lab_means` of the source frames of that frame and of this one. A light change or a fade in the
    source moves the output with it, and content entering the frame moves the target by what it moves the source's
    mean (a render of it moves its own mean about as much), so only the render's own colour drift is taken out.
    The spreads stay the reference's: following the source's spread too was measured worse (a moving subject changes
    the spread, and scaling it moves every still pixel: docs/CONSISTENCY.md, "Colour coherence that follows the
    source")."""
    mean = tuple(float(r + s - s0) for r, s, s0 in zip(reference.mean, source, reference_source))
    return LabStats(mean, reference.std)  # type: ignore[arg-type]


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

    The result is what :func:`rgb_to_lab`, the statistics above and :func:`lab_to_rgb` give, float32 for
    float32 (tests/test_colour_exact.py checks it against the plain formulas); see :func:`_matched_linear`
    for how it is computed faster.
    """
    s = _check_unit("colour coherence strength", strength)
    if s == 0:
        return _finish(to_float255(img), as_float)
    x255 = _srgb_encode255(_matched_linear(img, reference, s, own))
    return _finish(x255, as_float)


def colour_coherence_uint8(img: np.ndarray, reference: LabStats, strength: float = 1.0) -> np.ndarray:
    """``imaging.to_uint8(colour_coherence(img, reference, strength, as_float=True))`` (what the frame loop
    writes when colour coherence is the last correction): the same RGB uint8 bytes, with the float round trip
    done in place on one buffer."""
    s = _check_unit("colour coherence strength", strength)
    if s == 0:
        return to_uint8(_finish(to_float255(img), True))
    lin = _matched_linear(img, reference, s)
    if _bounded(reference):
        out = _encode_uint8(lin)
        if out is not None:
            return out
    return _encode_uint8_plain(lin)


def _encode_uint8_plain(lin: np.ndarray) -> np.ndarray:
    """colour_coherence_uint8's last step, element by element, in place on ``lin``: lab_to_rgb's linear RGB
    (before its clip) -> sRGB 0..255 -> _finish(as_float=True) -> to_uint8, the same operations."""
    x = _srgb_encode255(lin)
    np.clip(x, 0.0, 255.0, out=x)
    x /= np.float32(255.0)
    x *= 255.0
    return to_uint8_255(x)


def _bounded(reference: LabStats) -> bool:
    """True if the reference's numbers are finite and moderate, so that the linear RGB of any frame matched to
    it is finite (a frame's LAB is bounded by the clip in the sRGB decode; NaN in a frame shows up in its
    mean, which :func:`_encode_uint8` checks too)."""
    v = np.asarray([*reference.mean, *reference.std], dtype=np.float64)
    return bool(np.isfinite(v).all() and np.abs(v).max() <= 1e4)


_STEP_SHIFT = 14  # the encode table has one entry per 2**14 consecutive float32 bit patterns


def _encode_uint8(lin: np.ndarray) -> np.ndarray | None:
    """:func:`_encode_uint8_plain` by table lookup (None if this machine's arithmetic gave no table, or
    ``lin`` is not finite): the result is a step function of the float32 value, so it is the table entry of
    the value's bucket, plus one from the bucket's threshold on. See :func:`_encode_table`."""
    table = _encode_table()
    if table is None or lin.dtype != np.float32 or not lin.flags.c_contiguous:
        return None
    base, threshold = table
    bits = lin.view(np.uint32)
    idx = bits >> _STEP_SHIFT
    out = np.take(base, idx)
    if (out == _NOT_FINITE).any():
        return None
    out += bits >= np.take(threshold, idx)
    return out.astype(np.uint8)


_NOT_FINITE = 256
_CHECK_WINDOW = 2048
"""The table is checked on this many float32 values either side of each threshold: a monotone step function
can only be off near its steps, where the sRGB curve's rounding error (a few units in the last place) decides
the uint8; 2048 values is hundreds of times that error."""


@functools.cache
def _encode_table() -> tuple[np.ndarray, np.ndarray] | None:
    """Tables over the float32 bit patterns ``b``, bucket ``b >> 14``: (base value uint16, threshold uint32).

    ``_encode_uint8_plain`` is, on 0..1, a step function of the value: clip, the sRGB curve and the roundings
    are monotone, so it rises by one at 255 thresholds. Each bucket of 2**14 consecutive float32 values in
    0..1 holds at most one threshold (they are far apart), found by bisection on the bit patterns with the
    very function; values below 0 give 0, above 1 give 255; NaN patterns are marked not finite. Built once per
    process with this machine's numpy (about 20 ms), then checked: every value within :data:`_CHECK_WINDOW`
    of a threshold gives the table's answer (helpers/check_srgb_steps.py checks every value of 0..1). None
    if a bucket does not have this shape or a check fails: then the plain path runs.
    """

    def f(bits: np.ndarray) -> np.ndarray:
        return _encode_uint8_plain(np.ascontiguousarray(bits, dtype=np.uint32).view(np.float32).copy())

    size = 1 << (32 - _STEP_SHIFT)
    one = int(np.float32(1.0).view(np.uint32))
    inf = int(np.float32(np.inf).view(np.uint32))
    n = (one >> _STEP_SHIFT) + 1  # buckets starting in 0..1
    starts = np.arange(n, dtype=np.uint32) << _STEP_SHIFT
    ends = np.minimum(starts + ((1 << _STEP_SHIFT) - 1), one)
    lo_v, hi_v = f(starts).astype(np.int64), f(ends).astype(np.int64)
    if lo_v[0] != 0 or hi_v[-1] != 255 or np.any(hi_v - lo_v > 1) or np.any(hi_v < lo_v) \
            or np.any(lo_v[1:] < hi_v[:-1]):
        return None
    base = np.full(size, 255, np.uint16)
    base[:n] = lo_v
    base[size // 2:] = 0  # negative values (and -0.0) clip to 0
    base[(inf >> _STEP_SHIFT):size // 2] = _NOT_FINITE  # the bucket of +inf holds NaNs: no lookup there
    base[((inf | 0x80000000) >> _STEP_SHIFT):] = _NOT_FINITE
    threshold = np.full(size, 0xFFFFFFFF, np.uint32)
    steps = np.flatnonzero(hi_v > lo_v)
    lo, hi = starts[steps].astype(np.int64), ends[steps].astype(np.int64)
    while np.any(hi - lo > 1):  # invariant: f(lo) = base, f(hi) = base + 1
        mid = (lo + hi) // 2
        up = f(mid) > lo_v[steps]
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    threshold[steps] = hi
    window = np.arange(-_CHECK_WINDOW, _CHECK_WINDOW + 1)
    bits = np.clip(hi[:, None] + window, 0, one).astype(np.uint32).ravel()
    idx = bits >> _STEP_SHIFT
    if not np.array_equal(f(bits), base[idx] + (bits >= threshold[idx])):
        return None
    base.setflags(write=False)
    threshold.setflags(write=False)
    return base, threshold


# --- the fast path: the same float32 operations as rgb_to_lab / lab_to_rgb, element for element ---------
#
# * LAB is kept as three planes (3, H, W) instead of HWC, so the per-channel arithmetic runs over long
#   contiguous rows; only the two matrix products take the pixels as HWC, called exactly as the plain
#   formulas call them (the same BLAS call per image row).
# * ``np.where(m, A, B)`` computes both branches over the whole image; here the common branch is computed over
#   all elements and the other only where it applies (ufunc ``where=``), which gives the same numbers: + - * /
#   are correctly rounded IEEE operations, and cbrt / ** run on the same values over the whole array as before.
# * The sRGB decode of a frame whose values are one of 256 (a uint8 frame, or the batch mean of one uint8
#   image) is a 256-entry table made with the very same expression (:func:`_decode_tables`).


_RGB2XYZ_W32 = (_RGB2XYZ / _WHITE[:, None]).T.astype(np.float32)  # rgb_to_lab: xyz = lin @ this
_XYZ2RGB_T32 = _XYZ2RGB.T.astype(np.float32)  # lab_to_rgb: lin = (xyz * white) @ this
_WHITE32 = _WHITE.astype(np.float32)


def _srgb_decode(x255: np.ndarray) -> np.ndarray:
    """rgb_to_lab's first step: float RGB 0..255 -> linear RGB 0..1 (float32, same shape, a new array)."""
    c = np.clip(np.asarray(x255, dtype=np.float32) / np.float32(255.0), 0.0, 1.0)
    lin = ((c + np.float32(0.055)) / np.float32(1.055)) ** 2.4
    low = c <= 0.04045
    np.divide(c, np.float32(12.92), out=lin, where=low)
    return lin


@functools.cache
def _decode_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 values of a uint8 level in a batch mean of one image, 0..1; linear RGB of uint8 level v;
    linear RGB of that batch-mean value): every value the sRGB decode can meet in a frame loop without other
    corrections, computed by the same functions as the frame would be."""
    levels = np.arange(256, dtype=np.uint8).reshape(1, 256, 1)
    as_mean = batch_blend([levels]).reshape(256)
    lin_u8 = _srgb_decode(to_float255(levels)).reshape(256)
    lin_mean = _srgb_decode(to_float255(as_mean)).reshape(256)
    for a in (as_mean, lin_u8, lin_mean):
        a.setflags(write=False)
    return as_mean, lin_u8, lin_mean


def _lookup(levels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[levels]`` for uint8 levels (OpenCV's LUT for HWC images with up to 4 channels)."""
    if levels.ndim == 3 and levels.shape[2] <= 4:
        return cv2.LUT(levels, table)
    return np.take(table, levels)


def _linear_rgb(img: np.ndarray) -> np.ndarray:
    """``_srgb_decode(to_float255(img))`` for an RGB uint8 or float 0..1 image: from a table when every value
    is one the table holds (checked bit for bit), else computed."""
    a = np.asarray(img)
    as_mean, lin_u8, lin_mean = _decode_tables()
    if a.dtype == np.uint8:
        return _lookup(a, lin_u8)
    if a.dtype == np.float32 and a.ndim == 3 and a.shape[2] == 3 and a.flags.c_contiguous and a.size:
        levels = cv2.convertScaleAbs(a, alpha=255.0)  # the nearest level; checked next
        if np.array_equal(_lookup(levels, as_mean).view(np.uint32), a.view(np.uint32)):
            return _lookup(levels, lin_mean)
    return _srgb_decode(to_float255(a))


def _planes(x: np.ndarray) -> np.ndarray:
    """(..., 3) -> (3, ...) contiguous (a copy)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def _interleave(p: np.ndarray) -> np.ndarray:
    """(3, ...) -> (..., 3) contiguous (a copy)."""
    if p.ndim == 3:
        return cv2.merge([p[0], p[1], p[2]]).reshape(*p.shape[1:], 3)
    return np.ascontiguousarray(np.moveaxis(p, 0, -1))


def _lab_planes(img: np.ndarray) -> np.ndarray:
    """``rgb_to_lab(to_float255(img))`` as float32 planes (3, ...): L, a, b, bit for bit."""
    xyz = _linear_rgb(img) @ _RGB2XYZ_W32
    f = np.cbrt(xyz)
    dark = ~(xyz > _D**3)
    if dark.any():
        np.divide(xyz, np.float32(3 * _D * _D), out=f, where=dark)
        np.add(f, np.float32(4.0 / 29.0), out=f, where=dark)
    fx, fy, fz = _planes(f)
    lab = np.empty((3, *fy.shape), np.float32)
    lab[0] = 116.0 * fy - 16.0
    lab[1] = 500.0 * (fx - fy)
    lab[2] = 200.0 * (fy - fz)
    return lab


def _matched_linear(img: np.ndarray, reference: LabStats, strength: float,
                    own: LabStats | None = None) -> np.ndarray:
    """The frame matched to the reference, as lab_to_rgb's linear RGB before its clip (float32 HWC)."""
    lab = _lab_planes(img)
    if own is None:
        mu, sd = _mean_std(lab)
    else:
        mu, sd = np.asarray(own.mean, dtype=np.float64), np.asarray(own.std, dtype=np.float64)
    mu_r = np.asarray(reference.mean, dtype=np.float64)
    sd_r = np.asarray(reference.std, dtype=np.float64)
    scale = np.where(sd < _FLAT_STD, 1.0, sd_r / np.maximum(sd, _FLAT_STD))
    per_plane = (slice(None),) + (None,) * (lab.ndim - 1)
    out = (lab - mu.astype(np.float32)[per_plane]) * scale.astype(np.float32)[per_plane]
    out += mu_r.astype(np.float32)[per_plane]
    if strength != 1.0:  # at full strength the blend is ``matched`` itself (lab * 0 + matched * 1)
        out = lab * np.float32(1.0 - strength) + out * np.float32(strength)
    # lab_to_rgb up to its matrix product, plane by plane
    f = np.empty_like(out)
    np.add(out[0], np.float32(16.0), out=f[1])
    f[1] /= np.float32(116.0)
    np.add(f[1], out[1] / np.float32(500.0), out=f[0])
    np.subtract(f[1], out[2] / np.float32(200.0), out=f[2])
    xyz = f**3
    dark = ~(f > _D)
    if dark.any():
        np.subtract(f, np.float32(4.0 / 29.0), out=f, where=dark)
        np.multiply(np.float32(3 * _D * _D), f, out=xyz, where=dark)
    xyz *= _WHITE32[per_plane]
    return _interleave(xyz) @ _XYZ2RGB_T32


def _srgb_encode255(lin: np.ndarray) -> np.ndarray:
    """lab_to_rgb's last step, in place on ``lin``: linear RGB -> sRGB 0..255 (float32, clipped)."""
    np.clip(lin, 0.0, 1.0, out=lin)
    c = lin ** (1 / 2.4)
    c *= np.float32(1.055)
    c -= np.float32(0.055)
    low = lin <= 0.0031308
    np.multiply(lin, np.float32(12.92), out=c, where=low)
    np.clip(c, 0.0, 1.0, out=c)
    c *= np.float32(255.0)
    return c


def _mean_std(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-plane mean and population standard deviation (float64) of float32 planes (C, ...), as numpy's
    ``flat.mean(axis=0)`` and ``flat.std(axis=0)`` give them for the float64 (N, C) array of the same values,
    bit for bit: numpy reduces axis 0 of a C-contiguous (N, C) array row by row, so each column is summed
    strictly in order, ``((x0 + x1) + x2) + ...``, and so is it here (:func:`_sum_in_order`)::

        mean = sum(x) / N,   std = sqrt(sum((x - mean)**2) / N)      (float64)
    """
    n = planes[0].size
    mean = np.array([_sum_in_order(p.reshape(-1)) for p in planes]) / n
    var = np.array([_sum_in_order(p.reshape(-1), m) for p, m in zip(planes, mean)]) / n
    return mean, np.sqrt(var)


_SUM_CHUNK = 1 << 16


def _sum_in_order(x: np.ndarray, minus: np.float64 | None = None) -> np.float64:
    """``x0 + x1 + ... `` in float64, strictly left to right (of ``(x_i - minus)**2`` with ``minus``): a running
    sum (``np.cumsum``, sequential by definition) over cache-sized chunks, each chunk's first term added to the
    sum so far."""
    total = None
    buf = np.empty(min(_SUM_CHUNK, x.size), np.float64)
    for i in range(0, x.size, _SUM_CHUNK):
        d = buf[: min(_SUM_CHUNK, x.size - i)]
        d[:] = x[i : i + d.size]
        if minus is not None:
            d -= minus
            d *= d
        if total is not None:
            d[0] = total + d[0]
        np.cumsum(d, out=d)
        total = d[-1]
    return np.float64(0.0) if total is None else total
