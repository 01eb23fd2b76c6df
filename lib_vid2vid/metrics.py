"""Temporal consistency and fidelity metrics for a restyled video, measured while streaming.

Every meter takes frames one at a time with ``update(src, out)`` (source frame, output frame; RGB uint8
HWC, or float 0..1) and keeps only the previous frame, so memory does not grow with video length.
``.value`` is the running video-level number, or ``None`` before it is defined. All pixel values are
converted to float 0..1 before anything is measured, so the numbers do not depend on bit depth.

Warp error (lower = more temporally consistent), as in Lai et al. 2018, "Learning Blind Video Temporal
Consistency", with the roles of the two frames mirrored (we warp t-1 onto t; they warp t+1 onto t):

    w_t   = compute_flow(S_t, S_{t-1})                  flow of the SOURCE, current -> previous
    M_t   = 1 - occlusion_mask(w_t, flow(S_{t-1}, S_t)) non-occluded pixels (forward-backward check,
                                                         alpha=0.01, beta=0.5, and in-frame targets)
    W_t   = warp(O_{t-1}, w_t)                           previous OUTPUT carried onto frame t
    E_t   = sum_p M_t(p) * mean_c (O_t(p, c) - W_t(p, c))^2  /  sum_p M_t(p)
    E     = mean of E_t over the frame pairs t = 1..T-1 that have at least one non-occluded pixel

``mean_c`` is the mean over the three RGB channels, pixels in 0..1, so E is a mean squared error per
channel value. This equals the number printed by Lai et al.'s reference code, which divides the
channel-summed squared error by the sum of a 3-channel occlusion mask.

Flicker index (lower = steadier): with BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` in 0..1,

    D_t     = max over a 5x5 neighbourhood of |G(Y(S_t)) - G(Y(S_{t-1}))|   (G: Gaussian blur, sigma 1 px)
    still_t = D_t < threshold                            (default 0.02, about 5/255)
    F_t     = mean over still_t of |Y(O_t) - Y(O_{t-1})|  (output luma, not blurred)
    F       = mean of F_t over the pairs where at least 1% of the pixels are still (min_still_fraction);
              a pair with less (a camera pan) has no region to judge and is skipped

It needs no flow: where the source does not change, the output should not either. The blur keeps
sensor noise (up to about 3/255 per pixel) from breaking "still" regions; the neighbourhood maximum keeps
pixels of a moving texture that happen not to change (zero crossings) out of them. A perfect output that
follows the source still reads at most ``threshold`` (and in practice far less) in slowly moving regions.

Colour drift against the source (lower = the output keeps the source's light): per shot (frames between cuts),

    o_t     = mean Y(O_t) - mean Y(S_t)                   (luma 0..1)
    drift   = max over shots of (max_t o_t - min_t o_t)

A restyle may brighten or darken the whole video (o_t constant); drift counts only how that offset changes within a
shot: an output that keeps the first frame's light while the source fades, or a propagated frame whose colour
strays from its keyframes'.

Fidelity to the source: SSIM (Wang et al. 2004: Gaussian window sigma 1.5 truncated to 11x11,
K1 = 0.01, K2 = 0.03, data range L = 1, population (co)variances, mean over the map without the
5-pixel border a full window does not cover; identical to ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``) of either

- ``"luma"``: the BT.601 luminance of source and output, or
- ``"edge"``: the Sobel gradient magnitude ``sqrt(Gx^2 + Gy^2) / 4`` of that luminance (3x3 Sobel; the
  division makes a vertical step of height h read h), also with L = 1.

**Edge SSIM is the default.** A restyle is *meant* to change colours, brightness and texture, which
luminance SSIM punishes as loss of fidelity; what should survive is the layout - where the edges are.
Edge SSIM also drops for blur and for ghosting (doubled edges), the typical failure of methods that buy
low warp error by blending frames, so "lowest warp error at equal fidelity" is a fair comparison with it.
The video-level fidelity is the mean over frames of the per-frame SSIM.

Scene cuts: a pair of frames across a cut shows two unrelated pictures; no flow explains it, so its E_t and
F_t would measure only how different the two shots are (on a clip with cuts such pairs can be most of E).
:class:`VideoMetrics` leaves them out when told where the cuts are (``update(..., cut=True)`` on the first
frame of a shot): the steadiness meters start afresh there; fidelity, a per-frame figure, counts every frame.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from .errors import Vid2VidError
from .flow import compute_flow, occlusion_mask, warp

__all__ = [
    "FidelityMeter",
    "FlickerMeter",
    "VideoMetrics",
    "WarpErrorMeter",
    "edge_magnitude",
    "luminance",
    "measure",
    "ssim",
    "ssim_edge",
    "ssim_luma",
]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # 11x11 window
_K1, _K2 = 0.01, 0.03
FIDELITY_KINDS = ("edge", "luma")


def _to_float(image: np.ndarray, name: str) -> np.ndarray:
    """RGB uint8 HWC or float 0..1 -> a new float32 RGB array in 0..1."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise Vid2VidError(f"{name}: expected an RGB image shaped (H, W, 3), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)  # a copy: meters keep it as "previous frame"
    raise Vid2VidError(f"{name}: expected uint8 0..255 or float 0..1 pixels, got dtype {image.dtype}")


def _check_pair(src: np.ndarray, out: np.ndarray) -> None:
    if np.shape(src)[:2] != np.shape(out)[:2]:
        raise Vid2VidError(
            f"metrics: source frame is {np.shape(src)[1]}x{np.shape(src)[0]} but output frame is "
            f"{np.shape(out)[1]}x{np.shape(out)[0]}; resize one of them first (VideoMetrics does this for you)"
        )


def luminance(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image, float32 (H, W) in 0..1 (input RGB uint8 HWC or float 0..1)."""
    return _to_float(image, "image") @ _LUMA


def edge_magnitude(grey: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude ``sqrt(Gx^2 + Gy^2) / 4`` of a float (H, W) image; float32.

    3x3 Sobel, reflected borders. A vertical step of height h gives h next to the step; the maximum
    (a full-range diagonal corner) is sqrt(2).
    """
    grey = np.asarray(grey, dtype=np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT101)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT101)
    return cv2.magnitude(gx, gy) * np.float32(0.25)


def ssim(x: np.ndarray, y: np.ndarray, *, data_range: float = 1.0) -> float:
    """Mean SSIM of two single-channel float images (H, W) with values spanning ``data_range``.

    Gaussian window sigma 1.5, 11x11; C1 = (0.01 L)^2, C2 = (0.03 L)^2; population statistics;

        SSIM(p) = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))

    averaged over the pixels at least 5 from every edge (where the window fits); images smaller than
    11x11 raise Vid2VidError. Computed in float64 (small variances suffer from cancellation in float32).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise Vid2VidError(f"ssim: expected two (H, W) images of the same size, got {x.shape} and {y.shape}")
    r = _SSIM_RADIUS
    if min(x.shape) < 2 * r + 1:
        raise Vid2VidError(
            f"ssim: images must be at least {2 * r + 1}x{2 * r + 1} pixels, got {x.shape[1]}x{x.shape[0]}"
        )
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (2 * r + 1, 2 * r + 1), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT101)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    smap = num / den
    return float(smap[r:-r, r:-r].mean())


def ssim_luma(src: np.ndarray, out: np.ndarray) -> float:
    """SSIM of the BT.601 luminance of two RGB images (uint8 HWC or float 0..1)."""
    _check_pair(src, out)
    return ssim(luminance(src), luminance(out))


def ssim_edge(src: np.ndarray, out: np.ndarray) -> float:
    """SSIM of the Sobel gradient magnitude of the luminance of two RGB images (data range 1)."""
    _check_pair(src, out)
    return ssim(edge_magnitude(luminance(src)), edge_magnitude(luminance(out)))


class _Mean:
    """Running mean of per-frame (or per-pair) values; None until the first value."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, v: float) -> None:
        self.total += float(v)
        self.count += 1

    @property
    def value(self) -> float | None:
        return self.total / self.count if self.count else None


class WarpErrorMeter:
    """Streaming warp error (see the module docstring for the formula); lower is better.

    ``update(src, out)`` returns this pair's E_t, or None for the first frame and for a pair whose every
    pixel is occluded (that pair is skipped and counted in ``skipped``). ``value`` is the mean E_t.
    Flow options (``method``, ``quality``, ``scale``) go to :func:`lib_vid2vid.flow.compute_flow`;
    ``alpha``/``beta``/``motion_boundaries`` to :func:`lib_vid2vid.flow.occlusion_mask`.
    """

    def __init__(
        self,
        *,
        method: str = "dis",
        quality: str = "medium",
        scale: float = 1.0,
        alpha: float = 0.01,
        beta: float = 0.5,
        motion_boundaries: bool = False,
    ) -> None:
        self.flow_kwargs = {"method": method, "quality": quality, "scale": scale}
        self.occ_kwargs = {"alpha": alpha, "beta": beta, "motion_boundaries": motion_boundaries}
        self._mean = _Mean()
        self._prev_src: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self.frames = 0
        self.skipped = 0
        self.last_mask: np.ndarray | None = None
        """Non-occluded mask M_t of the last pair (float32 HW, 1 = measured), for debugging panels."""

    def restart(self) -> None:
        """Forget the previous frame: the next :meth:`update` pairs with nothing (a scene cut lies before it)."""
        self._prev_src = self._prev_out = None

    def update(self, src: np.ndarray, out: np.ndarray) -> float | None:
        _check_pair(src, out)
        src_f = _to_float(src, "src")
        out_f = _to_float(out, "out")
        self.frames += 1
        prev_src, prev_out = self._prev_src, self._prev_out
        self._prev_src, self._prev_out = src_f, out_f
        if prev_src is None:
            return None
        if prev_src.shape != src_f.shape:
            raise Vid2VidError("warp error: the frame size changed in the middle of the video")
        flow_cur_to_prev = compute_flow(src_f, prev_src, **self.flow_kwargs)
        flow_prev_to_cur = compute_flow(prev_src, src_f, **self.flow_kwargs)
        valid = 1.0 - occlusion_mask(flow_cur_to_prev, flow_prev_to_cur, **self.occ_kwargs)
        self.last_mask = valid
        n = float(valid.sum())
        if n <= 0.0:
            self.skipped += 1
            return None
        warped = warp(prev_out, flow_cur_to_prev, border="replicate")
        sq = ((out_f - warped) ** 2).mean(axis=2)
        e = float((sq * valid).sum() / n)
        self._mean.add(e)
        return e

    @property
    def pairs(self) -> int:
        """Number of frame pairs that entered the mean."""
        return self._mean.count

    @property
    def value(self) -> float | None:
        return self._mean.value


class FlickerMeter:
    """Streaming flicker index (see the module docstring); lower is better.

    ``threshold``: a source pixel counts as still when its blurred luma changes by less than this
    (0..1 units) everywhere in its ``neighbourhood`` x ``neighbourhood`` window; ``blur_sigma`` in pixels
    (0 = no blur). ``update`` returns this pair's F_t, or None for the first frame and for pairs where
    fewer than ``min_still_fraction`` of the pixels are still (counted in ``skipped``).
    """

    def __init__(
        self,
        *,
        threshold: float = 0.02,
        neighbourhood: int = 5,
        blur_sigma: float = 1.0,
        min_still_fraction: float = 0.01,
    ) -> None:
        if not (0.0 < threshold <= 1.0):
            raise Vid2VidError(f"flicker threshold must be in (0, 1], got {threshold}")
        if neighbourhood < 1 or blur_sigma < 0:
            raise Vid2VidError("flicker neighbourhood must be >= 1 pixel and blur_sigma >= 0")
        self.threshold = float(threshold)
        self.neighbourhood = int(neighbourhood)
        self.blur_sigma = float(blur_sigma)
        self.min_still_fraction = float(min_still_fraction)
        self._mean = _Mean()
        self._prev_src_y: np.ndarray | None = None
        self._prev_out_y: np.ndarray | None = None
        self.frames = 0
        self.skipped = 0

    def restart(self) -> None:
        """Forget the previous frame: the next :meth:`update` pairs with nothing (a scene cut lies before it)."""
        self._prev_src_y = self._prev_out_y = None

    def update(self, src: np.ndarray, out: np.ndarray) -> float | None:
        _check_pair(src, out)
        src_y, out_y = luminance(src), luminance(out)
        self.frames += 1
        prev_src_y, prev_out_y = self._prev_src_y, self._prev_out_y
        self._prev_src_y, self._prev_out_y = src_y, out_y
        if prev_src_y is None:
            return None
        if prev_src_y.shape != src_y.shape:
            raise Vid2VidError("flicker: the frame size changed in the middle of the video")
        still = self.still_mask(prev_src_y, src_y) > 0.5
        if not still.any() or still.mean() < self.min_still_fraction:
            self.skipped += 1
            return None
        f = float(np.abs(out_y - prev_out_y)[still].mean())
        self._mean.add(f)
        return f

    def still_mask(self, prev_y: np.ndarray, cur_y: np.ndarray) -> np.ndarray:
        """float32 (H, W), 1 where the source luma (float 0..1) holds still between the two frames."""
        a, b = prev_y, cur_y
        if self.blur_sigma > 0:
            a = cv2.GaussianBlur(a, (0, 0), self.blur_sigma, borderType=cv2.BORDER_REFLECT101)
            b = cv2.GaussianBlur(b, (0, 0), self.blur_sigma, borderType=cv2.BORDER_REFLECT101)
        d = np.abs(b - a)
        if self.neighbourhood > 1:
            d = cv2.dilate(d, np.ones((self.neighbourhood, self.neighbourhood), np.uint8))
        return (d < self.threshold).astype(np.float32)

    @property
    def pairs(self) -> int:
        return self._mean.count

    @property
    def value(self) -> float | None:
        return self._mean.value


class ColourDriftMeter:
    """Streaming colour drift against the source (module docstring); lower is better. ``restart`` at a cut."""

    def __init__(self) -> None:
        self._low = self._high = None
        self.worst: float | None = None

    def restart(self) -> None:
        self._low = self._high = None

    def update(self, src: np.ndarray, out: np.ndarray) -> float:
        """This frame's offset o_t (luma 0..1)."""
        _check_pair(src, out)
        o = float(luminance(out).mean() - luminance(src).mean())
        self._low = o if self._low is None else min(self._low, o)
        self._high = o if self._high is None else max(self._high, o)
        self.worst = max(self.worst or 0.0, self._high - self._low)
        return o

    @property
    def value(self) -> float | None:
        return self.worst


class FidelityMeter:
    """Streaming mean SSIM between each source frame and its output frame; higher is better (max 1).

    ``kind``: ``"edge"`` (default; SSIM of Sobel gradient magnitude) or ``"luma"`` (SSIM of luminance).
    """

    def __init__(self, *, kind: str = "edge") -> None:
        if kind not in FIDELITY_KINDS:
            raise Vid2VidError(f"fidelity kind {kind!r} is unknown; use one of {', '.join(FIDELITY_KINDS)}")
        self.kind = kind
        self._mean = _Mean()

    def update(self, src: np.ndarray, out: np.ndarray) -> float:
        s = ssim_edge(src, out) if self.kind == "edge" else ssim_luma(src, out)
        self._mean.add(s)
        return s

    @property
    def frames(self) -> int:
        return self._mean.count

    @property
    def value(self) -> float | None:
        return self._mean.value


def _round(v: float | None, digits: int = 6) -> float | None:
    """Round to ``digits`` significant digits (warp errors are small numbers)."""
    return None if v is None else float(f"{v:.{digits}g}")


WORST = 3
"""How many of the least steady frames a summary names (``worst_frames``)."""


class VideoMetrics:
    """Warp error, flicker index and fidelity of one video, fed frame by frame.

    ``update(src_u8, out_u8)``: the source frame and the matching output frame (RGB uint8 HWC). If the
    output has another size (e.g. after upscaling) it is resized to the source size (INTER_AREA);
    with ``max_side`` both are then downscaled so the longer side is at most ``max_side`` pixels, which
    makes long jobs cheaper to measure (the numbers depend on the measuring size; ``summary`` reports it).
    ``fidelity`` picks which SSIM is reported as ``"fidelity"``; both SSIMs are always in the summary.
    """

    def __init__(
        self,
        *,
        fidelity: str = "edge",
        max_side: int | None = None,
        flicker_threshold: float = 0.02,
        flow_quality: str = "medium",
        flow_scale: float = 1.0,
    ) -> None:
        if fidelity not in FIDELITY_KINDS:
            raise Vid2VidError(
                f"fidelity kind {fidelity!r} is unknown; use one of {', '.join(FIDELITY_KINDS)}"
            )
        if max_side is not None and max_side < 16:
            raise Vid2VidError(f"metrics max_side must be at least 16 pixels, got {max_side}")
        self.fidelity_kind = fidelity
        self.max_side = max_side
        self.warp_error = WarpErrorMeter(quality=flow_quality, scale=flow_scale)
        self.flicker = FlickerMeter(threshold=flicker_threshold)
        self.colour_drift = ColourDriftMeter()
        self.ssim_edge = FidelityMeter(kind="edge")
        self.ssim_luma = FidelityMeter(kind="luma")
        self.frames = 0
        self.size: tuple[int, int] | None = None
        """(width, height) at which the frames are measured."""
        self.worst: list[tuple[float, int]] = []
        """The WORST pairs with the largest warp error: (E_t, index of the later frame), largest first."""
        self.cuts: list[int] = []
        """Indices of the frames given with ``cut=True``: each starts a shot, and the pair before it is not measured."""

    def _prepare(self, src: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        src = np.asarray(src)
        out = np.asarray(out)
        for name, im in (("source", src), ("output", out)):
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise Vid2VidError(
                    f"metrics: {name} frame must be RGB uint8 (H, W, 3), got {im.dtype} {im.shape}"
                )
        h, w = src.shape[:2]
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
        if self.max_side is not None and max(h, w) > self.max_side:
            f = self.max_side / max(h, w)
            size = (max(1, round(w * f)), max(1, round(h * f)))
            src = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
            out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
        return src, out

    def update(self, src_u8: np.ndarray, out_u8: np.ndarray, *, cut: bool = False) -> None:
        """Measure the next frame (RGB uint8 HWC source and output). ``cut``: a scene cut lies between the previous
        frame and this one: the warp error and the flicker do not pair them (module docstring)."""
        src, out = self._prepare(src_u8, out_u8)
        size = (int(src.shape[1]), int(src.shape[0]))
        if self.size is not None and size != self.size:
            raise Vid2VidError("metrics: the source frame size changed in the middle of the video")
        self.size = size
        if cut and self.frames > 0:
            self.warp_error.restart()
            self.flicker.restart()
            self.colour_drift.restart()
            self.cuts.append(self.frames)
        e_t = self.warp_error.update(src, out)
        if e_t is not None:
            self.worst = sorted(self.worst + [(float(e_t), self.frames)], key=lambda w: -w[0])[:WORST]
        self.flicker.update(src, out)
        self.colour_drift.update(src, out)
        self.ssim_edge.update(src, out)
        self.ssim_luma.update(src, out)
        self.frames += 1

    def summary(self) -> dict:
        """JSON-ready dict; values rounded to 6 significant digits, None where undefined.

        Keys: frames, size [w, h], warp_error (lower better), flicker (lower better), fidelity (higher
        better), fidelity_kind ("edge" | "luma"), ssim_edge, ssim_luma, worst_frames ([frame index, its warp
        error E_t] of the WORST least steady frames, largest first: where to look), scene_cuts (the frames
        given with ``cut=True``: each starts a shot; the pairs before them are left out of warp error and flicker),
        colour_drift (lower better; per shot).
        """
        fid = self.ssim_edge if self.fidelity_kind == "edge" else self.ssim_luma
        return {
            "frames": self.frames,
            "size": list(self.size) if self.size else None,
            "warp_error": _round(self.warp_error.value),
            "flicker": _round(self.flicker.value),
            "fidelity": _round(fid.value),
            "fidelity_kind": self.fidelity_kind,
            "ssim_edge": _round(self.ssim_edge.value),
            "ssim_luma": _round(self.ssim_luma.value),
            "worst_frames": [[index, _round(e)] for e, index in self.worst],
            "scene_cuts": list(self.cuts),
            "colour_drift": _round(self.colour_drift.value),
        }


def measure(pairs: Iterable[tuple[np.ndarray, np.ndarray]], **kwargs) -> dict:
    """Feed ``(source, output)`` RGB uint8 frame pairs to a :class:`VideoMetrics` and return its summary."""
    vm = VideoMetrics(**kwargs)
    for src, out in pairs:
        vm.update(src, out)
    return vm.summary()
