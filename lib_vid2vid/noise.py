"""Sampling noise that moves with the picture: a latent Gaussian noise field carried along the source's flow.

A fixed seed gives every frame the same noise, so the model's texture stays put on the screen while the
picture moves under it; a new seed every frame flickers. Here the noise of frame t is the noise of frame t-1
transported along the optical flow of the *source* frames, fresh where the flow cannot supply it, and still
exactly white Gaussian at every frame (i.i.d. N(0, 1) per latent pixel and channel), which is what a sampler
expects. This is the integral-noise idea of "How I Warped Your Noise" (Chang et al., ICLR 2024) on a finite
grid, with the nearest-cell transport Go-with-the-Flow (Burgert et al., CVPR 2025) uses for speed.

Method
------
The state is a *fine* white field: ``K x K`` cells per latent pixel (``K = SUBCELLS = 4``; at 512x512 the
latent is 64x64 and the fine grid 256x256, one cell per 2x2 image pixels), every cell holding an independent
N(0, 1) value per channel (``D = batch x channels`` values) and the sub-cell position ``r`` (|r| <= 0.5 fine px
per axis) of the "particle" it holds. The latent noise is the integral of the fine field over each latent
pixel, normalised::

    Z[b, c, i, j] = (1 / K) * sum_{u, v < K} V[K*i + u, K*j + v, b*C + c]        (sum of K^2 i.i.d. N(0,1) / K)

so Z is exactly i.i.d. N(0, 1) whenever the fine cells are: a sub-latent-pixel motion changes which fine cells a
latent pixel integrates (gradually, unlike a nearest-neighbour warp of Z itself, which jumps 8 image pixels at
a time), and no interpolation ever blends two values (a bilinear warp of Z would: variance < 1, neighbours
correlated, the blur the sampler turns into mush).

One step t-1 -> t, with ``F`` the flow t-1 -> t and ``B`` the flow t -> t-1 of the source frames (DIS at the
frames' size, area-averaged to the fine grid, in fine cells: :func:`fine_flows`)::

    F[c]   = 0 where |F[c]| < STILL            (2 cells = 4 image px = half a latent pixel per frame): "still"
    p      = c + r[c] + F[c]                   where the particle of fine cell c of frame t-1 lands
    drop   c if O[c] = 1 and c moves           O: forward-backward check of F and B (flow.occlusion_mask): its
                                               content is not in frame t (a still particle is never dropped here)
    t(c)   = floor(p + 0.5)                    the cell it lands in; dropped if outside the grid
    winner per cell: a moving particle before a still one, then the smallest |p - t|^2, then the lowest
                     source index              collisions (contraction; something moving over still content)
    second chance: a loser takes the neighbouring cell on its side (along its larger residual) if no particle
                   landed there (smallest distance wins again)
    V'[t] = V[c], r'[t] = p - t                for winners
    V'[e] ~ N(0, 1) fresh, r'[e] = 0           every cell no particle reached (disocclusion, expansion, border)

Every cell of frame t holds either one surviving value (each value survives in at most one cell) or a fresh
one, chosen from the positions only, never from the values: so V' is again i.i.d. N(0, 1), and Z with it. The
sub-cell positions ``r`` accumulate fractional motion (2.25 cells per frame moves a particle 9 cells in 4
frames) instead of rounding it away every frame.

What it cannot do: move a white field by a fraction of a latent pixel without renewing part of it. A shift of
``v`` latent pixels (0 < v < 1) swaps a fraction ``v`` of each latent pixel's fine cells for its neighbour's,
so ``Z_t`` equals the shifted ``Z_{t-1}`` interpolated plus a fresh part of variance ``2 v (1 - v)``; whole
latent pixels move exactly. A fixed seed instead keeps the (smooth, after decoding) texture in place, which
for slow motion is the smaller error: hence :data:`STILL`, below which the noise stays in place. The noise also
follows DIS wherever DIS's flow is unconstrained (flat areas); judged by an independent flow that shows as texture
moving the wrong way (helpers/bench_consistency.py ``--judge-flow``; README "Consistency").

Determinism: fresh values of frame f, pass p come from ``numpy.random.default_rng(SeedSequence([seed, p, f,
TAG]))``; frame 0 is all fresh. Everything else is integer indexing and float32 additions in a fixed order, so
frame f's noise is a pure function of (seed, pass, source frames 0..f) and can be recomputed from the source
alone (``noise_stage.py`` checkpoints the state so a resume recomputes at most a few frames).

Cost per frame (``python helpers/bench_noise.py``, 512x512, fine grid 256x256): the step (transport with
``numpy.minimum.at`` over one int64 key per cell, occlusion check, gathers of whole rows) plus the integral is
O(cells x D); the two DIS flows dominate (O(pixels)) and run on the analysis thread beside the host's render.
Figures: README, "Warped noise".

:func:`mix` combines the warped field with the host's own (seeded) noise, ``sqrt(s) * warped + sqrt(1 - s) *
fresh``: variance 1 for independent fields, ``s = 1`` is the warped field exactly, ``s = 0`` today's noise.
:func:`request_noise` is what a backend (A1111/Forge's companion script, the diffusers backend, the proxy)
calls to get the latent noise for a :class:`~lib_vid2vid.renderer.RenderRequest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import flow
from .errors import Vid2VidError

__all__ = [
    "LATENT_FACTOR",
    "NOISE_MODES",
    "SUBCELLS",
    "NoiseState",
    "WarpedNoise",
    "fine_flows",
    "to_grid",
    "latent_shape",
    "mix",
    "request_noise",
]

NOISE_MODES = ("seed", "warped")
LATENT_FACTOR = 8
"""Image pixels per latent pixel (SD 1.x / 2.x / XL, SD3 and Flux VAEs)."""
SUBCELLS = 4
"""Fine cells per latent pixel along each axis (one fine cell = 2x2 image pixels)."""
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5
"""Forward-backward check of :func:`flow.occlusion_mask` in fine cells (squared lengths)."""
FLOW_SCALE = 1.0
"""Image scale the noise's DIS flows are computed at (1 = the frame's own size; 0.5 = the fine grid's)."""
STILL = 2.0
"""Flow vectors shorter than this (fine cells; 2 = 4 image pixels = half a latent pixel per frame) count as no
motion. Below half a latent pixel, moving a white field renews more of it (2 v (1 - v), module docstring) than
leaving it in place costs, and DIS's noise on a still picture (0.1-0.5 px) would random-walk it. Consistency
benchmark (cup, bikes, carphone, Megamind; 24 frames) warp error x1e-3 for 1 / 2 / 3 / 4 cells:
cup 0.375 / 0.314 / 0.310 / 0.332, bikes 0.964 / 0.907 / 0.903 / 0.914, carphone 0.936 / 0.717 / 0.696 / 0.721,
Megamind 0.795 / 0.756 / 0.742 / 0.748. The price: a pan slower than 4 px per frame keeps its noise in place,
as a fixed seed does."""
TAG = 0x6E6F6973
"""Mixed into the seed sequence so warped noise never equals another numpy draw of the job seed ("nois")."""


def latent_shape(width: int, height: int, channels: int = 4) -> tuple[int, int, int]:
    """(channels, height / 8, width / 8) of the latent of a ``width`` x ``height`` pixel image."""
    return channels, height // LATENT_FACTOR, width // LATENT_FACTOR


@dataclass
class NoiseState:
    """The fine field after frame ``frame``: ``values`` float32 (cells, D) i.i.d. N(0, 1); ``offsets`` float32
    (cells, 2) sub-cell (x, y) position of each cell's particle in fine cells, each in [-0.5, 0.5]."""

    frame: int
    values: np.ndarray
    offsets: np.ndarray

    def to_bytes(self) -> bytes:
        """``frame`` (int64) then values and offsets (float32), for a checkpoint file."""
        head = np.array([self.frame, *self.values.shape, *self.offsets.shape], np.int64)
        return head.tobytes() + np.ascontiguousarray(self.values).tobytes() + np.ascontiguousarray(
            self.offsets).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> NoiseState:
        head = np.frombuffer(data[:40], np.int64)
        frame, n, d, n2, two = (int(v) for v in head)
        if n != n2 or two != 2 or len(data) != 40 + 4 * n * (d + 2):
            raise ValueError("not a noise checkpoint")
        values = np.frombuffer(data, np.float32, n * d, 40).reshape(n, d).copy()
        offsets = np.frombuffer(data, np.float32, n * 2, 40 + 4 * n * d).reshape(n, 2).copy()
        return cls(frame, values, offsets)


_NONE = np.iinfo(np.int64).max
_SOURCE_MASK = (1 << 40) - 1


def _take_rows(a: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``a[index]`` for a C-contiguous float32 (n, d) array, copying rows as whole items when d is 1, 2 or 4."""
    d = a.shape[1]
    item = {1: np.float32, 2: np.float64, 4: np.complex128}.get(d)
    if item is None:
        return a[index]
    return np.ascontiguousarray(a).view(item).reshape(-1).take(index).view(np.float32).reshape(-1, d)


def fine_flows(prev_src: np.ndarray, cur_src: np.ndarray, grid: tuple[int, int],
               quality: str = "medium", scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(flow prev -> cur, flow cur -> prev)`` of two RGB uint8 HWC source frames on the fine noise grid
    ``grid`` = (rows, cols): DIS (``quality`` one of :data:`flow.QUALITIES`) on the frames area-shrunk to
    ``scale`` (default :data:`FLOW_SCALE`) times their size, then :func:`to_grid`; float32 (rows, cols, 2) in
    fine cells, (x, y)."""
    h, w = prev_src.shape[:2]
    scale = FLOW_SCALE if scale is None else float(scale)
    fh, fw_ = max(8, round(h * scale)), max(8, round(w * scale))
    if (fh, fw_) != (h, w):
        prev_src = cv2.resize(prev_src, (fw_, fh), interpolation=cv2.INTER_AREA)
        cur_src = cv2.resize(cur_src, (fw_, fh), interpolation=cv2.INTER_AREA)
    return (to_grid(flow.compute_flow(prev_src, cur_src, quality=quality), grid),
            to_grid(flow.compute_flow(cur_src, prev_src, quality=quality), grid))


def to_grid(flow_px: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A flow in pixels of its own grid (H, W, 2) -> the fine grid (rows, cols, 2) in fine cells: area average,
    vectors scaled by the size ratio along each axis."""
    rows, cols = grid
    h, w = flow_px.shape[:2]
    f = flow_px if (h, w) == (rows, cols) else cv2.resize(flow_px, (cols, rows), interpolation=cv2.INTER_AREA)
    f = np.array(f, np.float32)
    f[..., 0] *= np.float32(cols / w)
    f[..., 1] *= np.float32(rows / h)
    return f


class WarpedNoise:
    """The warped-noise chain of one job pass: ``first()``, then ``step()`` per frame, ``latent()`` per frame.

    ``seed``: the job's resolved seed; ``loop``: the pass (0-based); ``width``/``height``: the image size in
    pixels (multiples of 8); ``channels``: latent channels (4 for SD 1.x/2.x/XL, 16 for SD3/Flux); ``batch``:
    images per frame (each its own independent chain: batch_size x batch_count).
    """

    def __init__(self, seed: int, width: int, height: int, *, channels: int = 4, batch: int = 1, loop: int = 0,
                 subcells: int = SUBCELLS):
        if width % LATENT_FACTOR or height % LATENT_FACTOR or width <= 0 or height <= 0:
            raise Vid2VidError(f"warped noise needs a size in multiples of {LATENT_FACTOR} pixels, got "
                               f"{width}x{height}")
        self.seed, self.loop = int(seed), int(loop)
        self.channels, self.batch, self.k = int(channels), int(batch), int(subcells)
        self.h, self.w = height // LATENT_FACTOR, width // LATENT_FACTOR
        self.rows, self.cols = self.h * self.k, self.w * self.k
        self.depth = self.batch * self.channels
        gy, gx = np.mgrid[0:self.rows, 0:self.cols].astype(np.float32)
        self._grid = np.stack([gx.ravel(), gy.ravel()], axis=1)  # (cells, 2) x, y
        self._index = np.arange(self.rows * self.cols, dtype=np.int64)

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the fine grid."""
        return self.rows, self.cols

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(batch, channels, latent rows, latent cols) of :meth:`latent`."""
        return self.batch, self.channels, self.h, self.w

    def _fresh(self, frame: int, count: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed % 2**32, self.loop, int(frame), TAG]))
        return rng.standard_normal((count, self.depth), dtype=np.float32)

    def first(self, frame: int = 0) -> NoiseState:
        """The state of a chain's first frame: all fresh."""
        n = self.rows * self.cols
        return NoiseState(frame, self._fresh(frame, n), np.zeros((n, 2), np.float32))

    def step(self, state: NoiseState, flow_fw: np.ndarray, flow_bw: np.ndarray | None = None,
             occluded: np.ndarray | None = None) -> NoiseState:
        """The state of frame ``state.frame + 1`` (formulas in the module docstring).

        ``flow_fw``: flow t-1 -> t, ``flow_bw``: t -> t-1, float32 (rows, cols, 2) in fine cells. ``occluded``
        (rows, cols), 1 = the t-1 content is not in frame t, taken as given; default: the forward-backward check
        of the two flows (:meth:`_occluded`) for the particles that move, or nothing occluded without ``flow_bw``.
        """
        rows, cols = self.grid
        if flow_fw.shape != (rows, cols, 2):
            raise Vid2VidError(f"warped noise: the flow is {flow_fw.shape[1]}x{flow_fw.shape[0]}, the noise "
                               f"grid {cols}x{rows}")
        n = rows * cols
        fw = np.ascontiguousarray(flow_fw, np.float32).reshape(-1, 2)
        fw2 = np.einsum("ij,ij->i", fw, fw)
        still = fw2 < np.float32(STILL * STILL)
        if occluded is None and flow_bw is not None:
            occluded = self._occluded(fw, fw2, flow_bw) & ~still
        if STILL > 0:
            fw = np.where(still[:, None], np.float32(0), fw)
        pos = self._grid + state.offsets
        pos += fw
        target = np.floor(pos + np.float32(0.5))
        resid = pos - target
        cell = target.astype(np.int32)
        tx, ty = cell[:, 0], cell[:, 1]
        outside = cell.view(np.uint32)  # negative coordinates wrap to huge ones: one comparison per axis
        lost = (outside[:, 0] >= cols) | (outside[:, 1] >= rows)
        if occluded is not None:
            lost |= np.asarray(occluded).reshape(-1) >= 0.5
        tgt = ty.astype(np.int64) * cols + tx
        tgt[lost] = n  # a dump cell past the grid
        # winner per target cell: a moving particle before a still one (what moves onto still content covers
        # it), then the smallest squared distance to the cell centre (quantised to 10 bits), then the lowest
        # source index; one int64 key (still << 50 | distance << 40 | source) so one unbuffered minimum decides
        r2 = resid * resid
        d2 = r2[:, 0] + r2[:, 1]
        d2 *= np.float32(2048)
        key = np.minimum(d2.astype(np.int64), 1023)
        key <<= 40
        key |= self._index
        key |= still.astype(np.int64) << 50
        best = np.full(n + 1, _NONE, np.int64)
        np.minimum.at(best, tgt, key)
        best = best[:n]
        filled = best != _NONE
        win = best & _SOURCE_MASK
        win[~filled] = 0
        # second chance: a collision's losers take the neighbouring cell on their side of the cell they lost,
        # if nobody landed there (noisy flow would otherwise throw away noise and leave holes next to collisions)
        losers = np.flatnonzero(~lost & (win[np.minimum(tgt, n - 1)] != self._index))
        if len(losers):
            r = resid[losers]
            along_x = np.abs(r[:, 0]) >= np.abs(r[:, 1])
            ax = tx[losers] + np.where(along_x, np.where(r[:, 0] >= 0, 1, -1), 0)
            ay = ty[losers] + np.where(along_x, 0, np.where(r[:, 1] >= 0, 1, -1))
            inside = (ax >= 0) & (ax < cols) & (ay >= 0) & (ay < rows)
            alt = np.where(inside, ay.astype(np.int64) * cols + ax, n)
            alt[inside] = np.where(filled[alt[inside]], n, alt[inside])
            ra = pos[losers] - np.stack([ax, ay], axis=1).astype(np.float32)
            ra2 = ra * ra
            d2 = np.minimum(((ra2[:, 0] + ra2[:, 1]) * np.float32(1024)).astype(np.int64), 1023)
            second = np.full(n + 1, _NONE, np.int64)
            np.minimum.at(second, alt, (d2 << 40) | losers)
            second = second[:n]
            took = second != _NONE
            win[took] = second[took] & _SOURCE_MASK
            filled |= took
            resid[losers] = ra  # only read for the cells they took
        # rows gathered as one 8- or 16-byte item each (a 1-D take), not row by row
        values = _take_rows(state.values, win)
        offsets = _take_rows(resid, win)
        empty = np.flatnonzero(~filled)
        if len(empty):
            values[empty] = self._fresh(state.frame + 1, len(empty))
            offsets[empty] = 0.0
        return NoiseState(state.frame + 1, values, offsets)

    def _occluded(self, fw: np.ndarray, fw2: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
        """Forward-backward check, as :func:`flow.occlusion_mask` without its out-of-frame part (a particle that
        leaves the grid is dropped anyway): ``|F + B(c + F)|^2 > alpha (|F|^2 + |B(c + F)|^2) + beta``, bool (n,)."""
        rows, cols = self.grid
        where = (self._grid + fw).reshape(rows, cols, 2)
        bw = cv2.remap(np.ascontiguousarray(flow_bw, np.float32), where, None, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).reshape(-1, 2)
        both = fw + bw
        diff = np.einsum("ij,ij->i", both, both)
        norms = fw2 + np.einsum("ij,ij->i", bw, bw)
        return diff > np.float32(OCCLUSION_ALPHA) * norms + np.float32(OCCLUSION_BETA)

    def advance(self, state: NoiseState, prev_src: np.ndarray, cur_src: np.ndarray,
                quality: str = "medium") -> NoiseState:
        """:meth:`step` with the flows of two RGB uint8 source frames (frames ``state.frame`` and the next)."""
        fw, bw = fine_flows(prev_src, cur_src, self.grid, quality)
        return self.step(state, fw, bw)

    def latent(self, state: NoiseState) -> np.ndarray:
        """The latent noise of the state's frame: float32 (batch, channels, h, w), i.i.d. N(0, 1)."""
        k = self.k
        v = state.values.reshape(self.h, k, self.w, k, self.depth)
        rows = v[:, 0].copy()
        for u in range(1, k):  # explicit order: sum over the rows of each block, then over its columns
            rows += v[:, u]
        z = rows[:, :, 0].copy()
        for u in range(1, k):
            z += rows[:, :, u]
        z *= np.float32(1.0 / k)
        return np.ascontiguousarray(z.reshape(self.h, self.w, self.batch, self.channels).transpose(2, 3, 0, 1))


def mix(warped: np.ndarray, fresh: np.ndarray | None, strength: float) -> np.ndarray:
    """``sqrt(s) * warped + sqrt(1 - s) * fresh`` (float32): unit variance for independent unit-variance fields.
    ``s = 1`` returns ``warped`` itself (``fresh`` may then be None)."""
    s = float(strength)
    if not (math.isfinite(s) and 0.0 <= s <= 1.0):
        raise Vid2VidError(f"noise strength must be between 0 and 1, got {strength!r}")
    if s == 1.0:
        return warped
    if fresh is None or fresh.shape != warped.shape:
        got = None if fresh is None else fresh.shape
        raise Vid2VidError(f"noise strength {s:g} mixes in the host's own noise, which must have the shape "
                           f"{warped.shape}, got {got}")
    return (np.float32(math.sqrt(s)) * warped + np.float32(math.sqrt(1.0 - s)) * fresh).astype(np.float32)


def request_noise(request, fresh: np.ndarray | None = None, *, index: int | None = None) -> np.ndarray | None:
    """The latent noise a backend must sample a :class:`~lib_vid2vid.renderer.RenderRequest` with.

    None when the request carries no warped noise (``noise_mode = seed``): the backend uses its own seeded noise.
    Otherwise float32 (batch, channels, h, w) -- or (channels, h, w) for image ``index`` of the request's
    ``batch_size x n_iter`` images -- ``mix(request.noise, fresh, request.noise_strength)``; ``fresh`` is the
    backend's own seeded noise of that shape (needed only when the strength is below 1). The diffusers backend
    passes it where the pipeline adds noise to the init latent (``latents``/``noise``); A1111/Forge's companion
    script copies it into the sampler's noise tensor.
    """
    warped = getattr(request, "noise", None)
    if warped is None:
        return None
    if index is not None:
        warped = warped[index]
    return mix(warped, fresh, getattr(request, "noise_strength", 1.0))
