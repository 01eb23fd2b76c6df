"""Colour coherence and temporal merge as the plain formulas compute them: the code of lib_vid2vid/blend.py
before the speed work (main at fc94abb), kept verbatim (less the argument checks) as the reference that
tests/test_colour_exact.py compares the fast paths with, bit for bit. Do not "improve" it: it is the
definition of the bytes."""

from __future__ import annotations

import numpy as np

from lib_vid2vid.blend import LabStats, _finish, to_float255
from lib_vid2vid.imaging import to_uint8

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
    round trip). ``reference`` comes from :func:`lab_stats`.
    """
    s = float(strength)
    x = to_float255(img)
    if s == 0:
        return _finish(x, as_float)
    lab = rgb_to_lab(x)
    if own is None:  # ``own``: added on main since (img2vid), the plain formula as there
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


def colour_coherence_uint8(img: np.ndarray, reference: LabStats, strength: float = 1.0) -> np.ndarray:
    """What the frame loop wrote when colour coherence was the last correction."""
    return to_uint8(colour_coherence(img, reference, strength, as_float=True))


# --- temporal merge (main at fc94abb) ---------------------------------------------------------------------

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _luma255(x255: np.ndarray) -> np.ndarray:
    return x255 @ _LUMA


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
    s = float(strength)
    a = float(luma_share)

    src = to_float255(source)
    if s == 0:
        return _finish(src, as_float)
    ys = rgb_to_ycrcb(src)
    yp = rgb_to_ycrcb(to_float255(previous))
    k = np.array([a * s, s, s], dtype=np.float32)
    out = ys * (np.float32(1.0) - k) + yp * k
    return _finish(ycrcb_to_rgb(out), as_float)


