"""Frame delta correction (FDC).

Make each generated frame change from the previous output the way the source video changes.

Notation (all float32, RGB HWC, no rounding between steps):

* ``A`` -- the previous *corrected* output, 0..1.
* ``B`` -- the new raw output from the renderer, 0..1.
* ``t`` -- the source delta, ``src[i] - src[i-1]``, in -1..1.
* ``d = B - A`` -- the output delta, in -1..1.

Statistics are per channel ``k`` over all pixels: ``mean_k``, ``std_k`` (population std), ``min_k``,
``max_k``. The correction ``c`` of ``d`` is, per channel:

=============  ==============================================================================
mode           formula
=============  ==============================================================================
``none``       ``c = d``
``clip``       ``c = clip(d, min_k(t), max_k(t))``
``mean``       ``c = d - mean_k(d) + mean_k(t)``
``std``        ``c = (d - mean_k(d)) * std_k(t) / std_k(d) + mean_k(d)``
``mean_std``   ``c = (d - mean_k(d)) * std_k(t) / std_k(d) + mean_k(t)``
=============  ==============================================================================

When ``std_k(d) < 1e-6`` (a flat channel delta) the scale factor is taken as 0: ``d`` has no spread to
rescale, so the channel gets only its mean term. The corrected frame is ``out = clip(A + c, 0, 1)``.

Masks (float32 HW, 0..1, 1 = may change), applied after the statistics, in this order:

* delta mask ``M_d``:   ``out = A + (out - A) * M_d``  (scales how far each pixel moves from ``A``);
* spatial mask ``M_s``: ``out = M_s * out + (1 - M_s) * A`` (picks the new pixel or keeps the old one).

For a single mask in [0, 1] the two formulas give the same pixels; they differ in intent and in where
the host uses them: the spatial mask is also what the pipeline hands the host as the inpaint mask
(:func:`inpaint_mask`), so the renderer repaints only where ``M_s`` is 1 and FDC keeps ``A`` elsewhere.

Which mode darkens, and why
---------------------------
Measured with ``python helpers/bench_fdc.py --drift`` (synthetic 256x256 scene with 18% of pixels above
0.9; the renderer returns the scene plus per-pixel noise and a global flicker; the output is stored as
uint8 between frames; figures are the mean grey-level change of the output, 0..255, over 200 frames):

* **8-bit truncation is the big one.** Storing each frame with ``(x * 255).astype(uint8)`` biases it by
  -0.5/255 on average. ``mean`` and ``mean_std`` then darkened by 35 and 43..55 levels in 200 frames,
  ``none``/``std`` by at most 1. Reason: those two modes are *open-loop in brightness*:
  ``mean(A + c) = mean(A) + mean(t)`` (before clipping), so the output's level follows only the
  source and never looks at B's level again; every loss is kept and accumulates. ``none`` and ``std``
  are closed-loop, ``mean(A + c) = mean(B)``, re-anchored to the renderer every frame. This module
  therefore rounds to nearest (:func:`lib_vid2vid.imaging.to_uint8`). Rounding removes the drift but not all of the
  wander: in ``mean`` the correction is B plus one offset per channel, the same fraction for every
  pixel, so its rounding error does not average out over the frame -- the level does a random walk of
  about 0.3 level per frame (about 2 levels after 60 frames, either sign). Per-pixel deterministic
  dithering before the uint8 store would remove it (not done here).
* **Clipping of A + c at 0 and 1 with asymmetric deltas.** ``c`` carries B's pixel pattern; where a
  bright pixel of A gets a positive ``c`` it is clipped at 1 and the excess is lost, where a dark pixel
  gets a negative ``c`` it is clipped at 0 and the loss is a gain. An image with more content near white
  than near black (skies, highlights, typical SD output) loses a little each frame, a mostly black image
  gains. In ``mean`` the loss accumulates (open-loop): -2.1, -3.2, -4.3 levels after 50, 100, 200
  frames with noise 0.1, still growing. ``mean_std`` scales ``c`` down to the source's spread, so it
  rarely clips (within 0.6 levels in these runs). ``none``/``std`` lose the clipped mass of one frame only.
* **clip** keeps the small moves and cuts the large ones to the source's range. Output deltas are
  skewed near white (a bright pixel can only move down far), so cutting the tails removes more
  brightening than darkening: 1..3 levels darker than ``none`` with noise 0.04 and 7..8 levels darker
  with noise 0.1 -- a steady offset rather than a growing drift in these runs. With a static source
  (``t`` ~ 0) it freezes the output at A.

In short: ``mean`` darkens (accumulating, from clipping at 1; much worse with truncation), ``clip``
darkens by a steady offset on bright images, ``mean_std`` only darkens if frames are truncated;
``none`` and ``std`` do not drift.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .errors import SettingsError, Vid2VidError

MODES = ("none", "clip", "mean", "std", "mean_std")
"""Statistic modes for :func:`correct`, see the module docstring for the formulas."""

_EPS = 1e-6

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A per-thread scratch buffer reused across frames (contents undefined).

    Allocating fresh 3 MB float32 arrays every frame costs more than the arithmetic on a busy machine
    (page faults on newly mapped memory: 7 ms for one ``cv2.split`` in the benchmark), so the hot path
    writes into these through OpenCV's ``dst=``. Never return a scratch buffer to a caller.
    """
    cache = getattr(_local, "buffers", None)
    if cache is None:
        cache = _local.buffers = {}
    key = (name, tuple(shape), np.dtype(dtype).str)
    buf = cache.get(key)
    if buf is None:
        if len(cache) > 32:  # frame size changed many times: drop the old ones
            cache.clear()
        buf = cache[key] = np.empty(shape, dtype)
    return buf


def to_float(img: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC (0..255) -> float32 HWC 0..1 (``img / 255``)."""
    if img.dtype != np.uint8:
        raise Vid2VidError(f"expected an RGB uint8 image, got dtype {img.dtype}; convert frames to uint8 first")
    return img.astype(np.float32) * np.float32(1.0 / 255.0)


def source_delta(src_prev: np.ndarray, src_cur: np.ndarray) -> np.ndarray:
    """Source delta ``t = src_cur - src_prev`` as float32 HWC in -1..1; inputs RGB uint8 HWC."""
    _check_pair(src_prev, src_cur, "source frames")
    t = cv2.subtract(src_cur, src_prev, dtype=cv2.CV_32F)
    t *= np.float32(1.0 / 255.0)
    return t


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise Vid2VidError(f"{what} differ in size: {a.shape} vs {b.shape}; resize them to the same frame size")
    if a.ndim != 3 or a.shape[2] != 3:
        raise Vid2VidError(f"{what} must be RGB HWC with 3 channels, got shape {a.shape}")


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std of an HWC float32 array, each shape (C,)."""
    mean, std = cv2.meanStdDev(x)
    return mean.reshape(-1).astype(np.float32), std.reshape(-1).astype(np.float32)


def _split(x: np.ndarray, tag: str) -> list[np.ndarray]:
    mv = [scratch(f"{tag}{k}", x.shape[:2], x.dtype) for k in range(x.shape[2])]
    return list(cv2.split(x, mv))


def _channel_minmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.empty(x.shape[2], np.float32)
    hi = np.empty(x.shape[2], np.float32)
    for k, ch in enumerate(_split(x, "mm")):
        lo[k], hi[k], _, _ = cv2.minMaxLoc(ch)
    return lo, hi


def _clip_channels(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """``clip(x[..., k], lo[k], hi[k])`` per channel (split/clip/merge: ~5x faster than numpy broadcasting)."""
    chans = [np.clip(ch, float(lo[k]), float(hi[k]), out=ch) for k, ch in enumerate(_split(x, "cl"))]
    return cv2.merge(chans, dst) if dst is not None else cv2.merge(chans)


def _affine(mode: str, d: np.ndarray, t: np.ndarray, eps: float) -> np.ndarray:
    """3x4 matrix ``[diag(scale) | offset]`` with ``c = d * scale + offset`` per channel (mean/std modes)."""
    d_mean, d_std = _channel_stats(d)
    t_mean, t_std = _channel_stats(t)
    if mode == "mean":
        scale = np.ones(3, np.float32)
        offset = t_mean - d_mean
    else:
        scale = np.where(d_std > eps, t_std / np.maximum(d_std, eps), 0.0).astype(np.float32)
        target_mean = d_mean if mode == "std" else t_mean
        # (d - mean_d) * scale + target_mean == d * scale + (target_mean - mean_d * scale)
        offset = target_mean - d_mean * scale
    m = np.zeros((3, 4), np.float32)
    m[[0, 1, 2], [0, 1, 2]] = scale
    m[:, 3] = offset
    return m


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise SettingsError("fdc_mode", f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


def apply_delta_mask(a: np.ndarray, out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Delta mask: ``A + (out - A) * M``. ``a``, ``out`` float32 HWC 0..1; ``mask`` float32 HW 0..1."""
    m = _mask3(mask, a)
    return a + (out - a) * m


def inpaint_mask(mask: np.ndarray) -> np.ndarray:
    """The spatial mask as the host's inpaint mask: uint8 HW, ``round(M * 255)``, white = repaint."""
    return cv2.convertScaleAbs(np.clip(mask, 0.0, 1.0).astype(np.float32), alpha=255.0)


def _mask3(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    if mask.shape != like.shape[:2]:
        raise Vid2VidError(
            f"mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} but the frame is "
            f"{like.shape[1]}x{like.shape[0]}; resize the mask to the frame size"
        )
    return mask.astype(np.float32, copy=False)[:, :, None]


def _core(a, b, t, mode, delta_mask, spatial_mask, full_scale: float, out_u8: bool) -> np.ndarray:
    """Shared FDC in units where white = ``full_scale`` (1.0 for float frames, 255.0 for uint8 frames).

    ``a``/``b`` may be uint8 or float32 (not rounded: every step runs in float32, OpenCV promotes the
    uint8 operands). The two masks fold into one: delta then spatial gives
    ``A + Ms * (A + Md * (out - A) - A) = A + (Md * Ms) * (out - A)``.
    """
    _check_mode(mode)
    _check_pair(a, b, "previous and new output")
    if t.shape != a.shape:
        raise Vid2VidError(f"source delta {t.shape} and output {a.shape} differ in size; resize the source")
    f32 = cv2.CV_32F
    shape = a.shape
    if mode == "none":
        out = scratch("out", shape)
        if b.dtype == np.uint8:
            cv2.add(b, 0, dst=out, dtype=f32)  # clip(A + (B - A), 0, 1) == B
        else:
            np.copyto(out, b)
    else:
        d = cv2.subtract(b, a, dst=scratch("d", shape), dtype=f32)
        c = scratch("c", shape)
        if mode == "clip":
            lo, hi = _channel_minmax(t)
            _clip_channels(d, lo, hi, dst=c)
        else:
            cv2.transform(d, _affine(mode, d, t, _EPS * full_scale), dst=c)
        out = cv2.add(c, a, dst=scratch("out", shape), dtype=f32)
        np.clip(out, 0.0, full_scale, out=out)
    m = None
    for mask in (delta_mask, spatial_mask):
        if mask is not None:
            mm = _mask3(mask, a)[:, :, 0]
            m = mm if m is None else cv2.multiply(m, mm, dst=scratch("m", mm.shape), dtype=f32)
    if m is not None:
        e = cv2.subtract(out, a, dst=scratch("e", shape), dtype=f32)
        cv2.multiply(e, cv2.merge([m, m, m], scratch("m3", shape)), dst=e)
        if out_u8:
            return cv2.add(e, a, dtype=cv2.CV_8U)  # rounds to nearest and saturates; a fresh array
        return cv2.add(e, a, dtype=f32)
    if out_u8:
        return cv2.add(out, 0, dtype=cv2.CV_8U)
    return out.copy()


def correct(
    a: np.ndarray,
    b: np.ndarray,
    t: np.ndarray,
    *,
    mode: str,
    delta_mask: np.ndarray | None = None,
    spatial_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Frame delta correction in float32: ``clip(A + c(B - A, t), 0, 1)``, then the masks.

    ``a`` (previous corrected output), ``b`` (new output): float32 HWC 0..1. ``t``: source delta,
    float32 HWC -1..1. Masks: float32 HW 0..1, 1 = may change. Returns float32 HWC 0..1, unrounded.
    """
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    return _core(a, b, t.astype(np.float32, copy=False), mode, delta_mask, spatial_mask, 1.0, False)


def correct_frame(
    prev_out_u8: np.ndarray,
    new_out_u8: np.ndarray,
    src_prev_u8: np.ndarray,
    src_cur_u8: np.ndarray,
    *,
    mode: str,
    delta_mask: np.ndarray | None = None,
    spatial_mask: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`correct` on RGB uint8 HWC frames; returns RGB uint8 HWC, rounded once at the end.

    ``prev_out_u8`` is A (the previous *corrected* output), ``new_out_u8`` is B (the renderer's new
    frame), ``src_prev_u8``/``src_cur_u8`` are source frames i-1 and i at the output size. Computed in
    float32 in 0..255 units (the formulas are scale-invariant), without rounding between steps.
    """
    for name, img in (("previous output", prev_out_u8), ("new output", new_out_u8),
                      ("source frame i-1", src_prev_u8), ("source frame i", src_cur_u8)):
        if img.dtype != np.uint8:
            raise Vid2VidError(f"{name} must be RGB uint8, got {img.dtype}")
    _check_pair(src_prev_u8, src_cur_u8, "source frames")
    t = cv2.subtract(src_cur_u8, src_prev_u8, dst=scratch("t", src_cur_u8.shape), dtype=cv2.CV_32F)  # 0..255 units
    return _core(prev_out_u8, new_out_u8, t, mode, delta_mask, spatial_mask, 255.0, True)
