"""Scene cuts of the source: where one shot ends and the next begins.

Every part that must not reach across a cut asks this module: the keyframe choice (a keyframe at each cut, no
propagation across one), colour coherence (a new reference colour per shot), ``reset_at_cuts`` (the scene groups)
and the post stages (no interpolation or deflicker across a cut). For consecutive source frames ``a`` (previous)
and ``b``, RGB uint8 at plan size, a cut lies between them when either test says so (the motion test may veto
the first):

1. **Histograms** (``scene_cut_threshold`` T, 0.4), with ``h(x)`` the 32-bin histogram of BT.601 luma (uint8
   levels // 8, each bin the fraction of pixels)::

       d(a, b) = 1/2 * sum_k |h_k(a) - h_k(b)|        (total variation distance, 0 = same histogram, 1 = disjoint)
       cut when d(a, b) > T, unless the motion test (2.) finds most of b in a: u(a, b) < 1/2

   Motion does not move a histogram, but two shots of the same light do not move it either. A change of light
   within a shot does move it: over the dark first frames of a fade from black d reached 0.41-0.60 while a, moved,
   explained all but 12-29 % of b's texture (since December 2026 no cut there; before, each of those frames started
   a scene of its own; the first frame out of a black one still does, as a black frame has no texture to tell).
   With the motion test off (u0 = 0) the histograms decide alone.

2. **Motion** (``scene_cut_motion`` u0, 0.65; 0 = off): on the grey frames (BT.601 luma, 0..255) shrunk to at
   most :data:`SIDE` pixels on the long side (INTER_AREA), ``A`` and ``B``::

       (dx, dy) = phase correlation shift B -> A             the global motion, however large
       f = DIS "ultrafast" flow B -> A started from (dx, dy),  W = warp(A, f)      frame a carried onto b
       R = blur_1.5(|W - B|)                                   what the motion does not explain
       s = std of B over 7x7 pixels,  T = {s > 6}              the textured pixels of b
       u(a, b) = |{p in T : R(p) > max(10, 0.75 s(p))}| / |T|  share of b's texture that a cannot explain
       cut when |T| >= 1 % of the pixels and u(a, b) > u0

   Within a shot the previous frame moved along the motion explains nearly all of the next one's texture, however
   fast the camera (DIS alone loses a pan of more than about a tenth of the frame a frame; started from the phase
   correlation's shift it follows a third); after a cut it explains almost none, whatever the histograms.

Measured (``python helpers/bench_scene_cuts.py``: the five clips of ``../shared/media`` at 8, 12 and 24 fps and the
synthetic ones at 12, 384 px wide): the nine cuts of Megamind.avi and bikes.mp4 and syn_cut's have u >= 0.74, every
other frame pair u <= 0.59 (a van passing right in front of bikes.mp4's still camera, at 8 fps), so both tests find
every cut and no other; the histogram test alone finds 3 of the 9 (d 0.18-0.34 for the other six, shot / reverse
shot in the same light, while a non-cut reaches 0.18). The motion test costs about 0.8 ms a frame at 384 px
and 1.7 ms at 512x512 on 2 cores. Fades (the same benchmark fades each clip's first shot in from black and out to
it, 24 frames at 12 fps): the histograms alone called 43 of those pairs cuts, the two tests with the motion test's
veto 9, all at the darkest frames, where too little texture is left for the motion test to tell; every true cut
is still found, and no other pair changed its answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

SIDE = 192
"""Long side (pixels) of the grey frames the motion test compares."""
TEXTURE_STD = 6.0
"""A pixel is textured where the grey levels of its 7x7 neighbourhood have at least this standard deviation."""
MIN_TEXTURED = 0.01
"""Below this share of textured pixels (a black or flat frame) the motion test says nothing."""
EXPLAINED = 0.5
"""A histogram jump is no cut where the frame before, moved along the motion, explains more than this share of the
frame's texture (``u < 1 - EXPLAINED``): a fade, a flash or an exposure change within a shot. Every cut of the
benchmark has u >= 0.74, every other pair u <= 0.59 (helpers/bench_scene_cuts.py)."""


def luma_histogram(rgb: np.ndarray, bins: int = 32) -> np.ndarray:
    """Fractions of pixels per luma bin (BT.601 luma, uint8 levels // (256 / bins)), float64 (bins,).
    OpenCV's calcHist counts the same bins when ``bins`` divides 256 (exact below 2**24 pixels), at a third of
    numpy's time; it runs on every source frame, for the scene cuts."""
    return _grey_histogram(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), bins)


def _grey_histogram(y: np.ndarray, bins: int = 32) -> np.ndarray:
    if 256 % bins == 0 and y.size < 1 << 24:
        h = cv2.calcHist([y], [0], None, [bins], [0, 256]).ravel().astype(np.float64)
    else:
        h = np.bincount((y // (256 // bins)).ravel(), minlength=bins).astype(np.float64)
    return h / max(1, y.size)


def histogram_distance(ha: np.ndarray, hb: np.ndarray) -> float:
    """``d(a, b)`` of two frames from their :func:`luma_histogram` (a caller that streams frames keeps the previous
    frame's histogram instead of computing it again)."""
    return float(0.5 * np.abs(ha - hb).sum())


def scene_cut_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``d(a, b)``: total variation distance of the two frames' luma histograms, 0..1."""
    return histogram_distance(luma_histogram(a), luma_histogram(b))


def small_grey(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC -> grey uint8 HW (BT.601 luma), at most :data:`SIDE` pixels on the long side (INTER_AREA)."""
    return _shrunk(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))


def _shrunk(g: np.ndarray) -> np.ndarray:
    h, w = g.shape
    f = SIDE / max(h, w)
    if f < 1:
        g = cv2.resize(g, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
    return g


def unexplained_texture(grey_a: np.ndarray, grey_b: np.ndarray) -> float | None:
    """``u(a, b)`` of two :func:`small_grey` frames (previous, current): the share of b's textured pixels that a,
    carried along the motion, does not explain, 0..1; None where b has too little texture to tell."""
    from . import flow

    b = grey_b.astype(np.float32)
    m = cv2.blur(b, (7, 7))
    s = np.sqrt(np.maximum(cv2.blur(b * b, (7, 7)) - m * m, 0.0))
    textured = s > TEXTURE_STD
    count = int(np.count_nonzero(textured))
    if count < MIN_TEXTURED * textured.size:
        return None
    a = grey_a.astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(b, a)
    start = np.empty((*b.shape, 2), np.float32)
    start[..., 0], start[..., 1] = dx, dy
    # a new instance each time (it costs nothing measurable at this size): one that was given an initial flow
    # computes later flows from what it kept of the calls before (seen with OpenCV 5.1: after a cut between two
    # 64x64 frames, whose phase correlation said 108 px, the same pair as before came out u 0.71 instead of 0.92)
    f = flow.dis_calc(cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST), "ultrafast", grey_b, grey_a,
                      start)
    carried = flow.warp(a, f)
    r = cv2.GaussianBlur(np.abs(carried - b), (0, 0), 1.5)
    unexplained = r > np.maximum(10.0, 0.75 * s)
    return float(np.count_nonzero(unexplained & textured)) / count


def is_cut(d: float, u: float | None, threshold: float, motion: float, light: bool = False) -> bool:
    """The answer of the two tests from their measures, ``d`` (:func:`histogram_distance`) and ``u``
    (:func:`unexplained_texture`, None: too little texture to tell) of a pair, with ``threshold`` T and ``motion`` u0
    (0 = the histograms alone): a cut when ``u > u0``, or when ``d > T`` and u does not find most of the frame in
    the one before (``u >= 1 - EXPLAINED``, or u unknown). ``light`` (``scene_cut_light``; before December 2026):
    every ``d > T`` is a cut."""
    new_light = d > threshold
    if motion <= 0 or u is None:
        return new_light
    return u > motion or (new_light and (light or u >= 1.0 - EXPLAINED))


@dataclass
class CutFeatures:
    """What the two tests need of one frame."""

    hist: np.ndarray
    grey: np.ndarray | None  # None when the motion test is off


class CutDetector:
    """The two tests above with one setting each (``threshold`` T, ``motion`` u0; 0 = the histogram test alone), and
    ``light`` (``scene_cut_light``): every histogram jump is a cut, the motion's veto off (before December 2026).

    Streamed: :meth:`step` takes the frames in order and says whether a cut lies before the frame it is given;
    callers that see frames out of order pair :meth:`features` with :meth:`between`."""

    def __init__(self, threshold: float, motion: float = 0.0, light: bool = False):
        self.threshold = float(threshold)
        self.motion = float(motion)
        self.light = bool(light)
        self._prev: CutFeatures | None = None

    @classmethod
    def of(cls, settings) -> CutDetector:
        """The detector of a job's :class:`lib_vid2vid.params.Settings` (``scene_cut_threshold``,
        ``scene_cut_motion``, ``scene_cut_light``)."""
        return cls(settings.export.scene_cut_threshold, settings.export.scene_cut_motion, settings.export.scene_cut_light)

    def features(self, rgb: np.ndarray) -> CutFeatures:
        y = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        return CutFeatures(_grey_histogram(y), _shrunk(y) if self.motion > 0 else None)

    def between(self, a: CutFeatures, b: CutFeatures) -> bool:
        """Whether a cut lies between the frames of ``a`` (previous) and ``b``."""
        d = histogram_distance(a.hist, b.hist)
        if self.motion <= 0 or a.grey is None or b.grey is None or a.grey.shape != b.grey.shape:
            return d > self.threshold
        if self.light and d > self.threshold:  # the histograms' answer stands: no need of the motion's
            return True
        return is_cut(d, unexplained_texture(a.grey, b.grey), self.threshold, self.motion, self.light)

    def step(self, rgb: np.ndarray) -> bool:
        """Whether a cut lies between the previous frame given and ``rgb`` (False for the first)."""
        feats = self.features(rgb)
        prev, self._prev = self._prev, feats
        return prev is not None and self.between(prev, feats)


def find_cuts(frames: Iterable[np.ndarray], threshold: float, motion: float = 0.0, light: bool = False) -> list[int]:
    """First frames of every shot but the first: the indices ``i`` (in the iterable's order, streamed) with a cut
    between frames ``i - 1`` and ``i``."""
    detector = CutDetector(threshold, motion, light)
    return [i for i, rgb in enumerate(frames) if detector.step(rgb)]
