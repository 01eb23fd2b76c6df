"""Keyframes: which frames the host renders, and how every other frame is carried from them.

Choice (:func:`choose_keyframes`, on the source frames at output size, before anything is rendered)
---------------------------------------------------------------------------------------------------
The video is split into **scene groups** at scene cuts (:mod:`lib_vid2vid.scene_cuts`: the luma histograms of
consecutive source frames, or their motion, say a new shot begins; as colour coherence and the post stages find
them). The first frame of every group is a keyframe; nothing is propagated across a cut. Inside a group:

* ``interval``: frames ``g + m * K`` (``g`` the group's first frame, ``K`` the interval);
* ``adaptive``: scanning forward, frame ``i`` becomes a keyframe when ``i - k >= max_gap`` or when
  ``i - k >= min_gap`` and (``score(i, k) >= threshold`` or ``motion(i, k) >= max_motion``), where ``k`` is the
  *last keyframe* (not the previous frame) and, on the grey source frames at most :data:`CHOICE_SIDE` pixels on
  the long side, with ``f = flow(i -> k)`` and ``V = 1 - occlusion_mask(f, flow(k -> i))`` (1 = frame k can
  supply the pixel)::

      M(i, k)     = 1 - sum(w * V) / sum(w)                          share of frame i that k cannot supply
      C(i, k)     = sum(w * V * |S_i - warp(S_k, f)|) / sum(w * V)   colour residual after motion, 0..1
      score(i, k) = colour_weight * C + motion_weight * M

  ``w`` is the user / colour-key mask when there is one (only the area that changes counts), else 1.
  ``motion(i, k)`` is the source's motion accumulated frame to frame since the keyframe, in pixels of the output
  size (``r`` = output width / choice width; ``max_motion`` 0 turns the rule off)::

      motion(i, k) = r * sum_{j = k+1 .. i} sum(w * |flow(j -> j-1)|) / sum(w)

  Propagation composes one flow per frame, so its errors grow with the path the picture travels, not with the
  frame count: under a fast pan or zoom this rule shortens the gaps where a fixed score cannot tell (a pan keeps
  most of the frame suppliable for a while), and a slow shot keeps long gaps.

User additions and removals are frame numbers (0-based, in the processed range): an added frame is a keyframe
(adaptive: later scores are taken against it), a removed one is not. A group's first frame cannot be removed.

Propagation (:func:`propagate_segment`)
---------------------------------------
Every frame ``t`` between two keyframes ``a < t < b`` of a group is made from both rendered keyframes ``K_a``,
``K_b``, each carried along the *source's* optical flow. Flows are computed between consecutive source frames
(DIS, both directions), kept only where the frames show the motion (:func:`lib_vid2vid.flow.evidence_flow`: zero
where no motion explains the frames as well, the textured neighbours' motion on flat areas, so a texture does not
swim on a still shot; ``PropagationSettings.flow_evidence``) and composed, so each keyframe is resampled once, not
once per step::

      F_t = f(t -> t-1) + warp(F_{t-1}, f(t -> t-1))       F_{a+1} = f(a+1 -> a)        (t -> a)
      B_t = f(t -> t+1) + warp(B_{t+1}, f(t -> t+1))       B_{b-1} = f(b-1 -> b)        (t -> b)
      Va_t = (1 - O(t -> t-1)) * warp(Va_{t-1}, f(t -> t-1))        O: flow.occlusion_mask (fw-bw check, out of
      Vb_t = (1 - O(t -> t+1)) * warp(Vb_{t+1}, f(t -> t+1))           frame), so V = 1 where the keyframe sees t

      A = warp(K_a, F_t), B = warp(K_b, B_t)                 both on frame t's grid, float 0..255
      wa = (b - t) / (b - a) * soft(Va),  wb = (t - a) / (b - a) * soft(Vb)    temporal distance x validity
      D  = blur(mean_c |A - B|)           where the two warps disagree (misaligned structure, not fine texture)
      s  = clip((D - ghost_low) / (ghost_high - ghost_low), 0, 1)
      weights: (1 - s) * (wa, wb) / (wa + wb) + s * (one-hot, below)     one source per pixel
      out = weights . (A, B)   where wa + wb > 0;   unseen (wa + wb = 0): the fill (:func:`fill_styled`: the
                                                     source in the style around it; the source; or a light render)

``soft(V)`` is V blurred a little, so a switch from one keyframe to the other at an occlusion edge is not a seam.
Both keyframes are also judged by how well their carried *source* frames explain the source frame t
(docs/CONSISTENCY.md, "Propagation under fast motion")::

      Ra = blur_2(|grey(warp(S_a, F_t)) - grey(S_t)|),  Rb likewise         levels 0..255
      Va <- max(Va, clip(2 - 2 Ra / r, 0, 1)),  Vb likewise      r = seen_residual (6): a pixel the fw-bw check
                                                                 drops is still carried where the warp explains it
      one-hot above: a where Ra < Rb + m, m = +pick_margin (2) where (b - t) Va >= (t - a) Vb (a nearer), else -2

(``PropagationSettings(pick="nearer", seen_residual=0)``: the larger weight alone chooses and only the fw-bw check
decides what a keyframe sees, as before December 2026.)
A frame after the last keyframe of its group has only ``K_a`` (one-sided; ``Va`` raised the same way).

**Harmonized keyframes** (:func:`harmonize_keyframe`, ``PropagationSettings.harmonize``; December 2026). Two
renders of a moving subject carry different fine texture, and the frames between them cross-fade from one to the
other: the texture shimmers although each render is steady. So before a segment is made, keyframe b takes keyframe
a's fine detail wherever a sees it and the source's motion explains it, and keeps its own colours, shading and
the detail of what is new or changed (with ``G_s *`` a Gaussian blur of sigma s = ``harmonize_sigma`` pixels,
``F_b`` the composed flow b -> a, ``Ra_b`` and ``Va_b`` the residual and raised validity of frame b as above)::

      g     = Va_b * clip(2 - 2 Ra_b / harmonize_residual, 0, 1)        a sees b's pixel, and the motion explains it
      K_b' = K_b + harmonize * g * ((A - G_s * A) - (K_b - G_s * K_b))   A = warp(K_a', F_b); K_a' for a harmonized a

``K_b'`` is keyframe b's output and the keyframe the next segment starts from, so a texture travels with the
picture through a whole scene group; the first keyframe of a group is its render. Keyframes from a folder
(``keyframe_folder``) are the user's and are not changed, unless ``keyframe_folder_harmonize`` asks for the same
rule (keyframes restyled one by one elsewhere carry unrelated fine detail, as separate renders do).

With ``PropagationSettings.flow_scale`` s < 1 (``keyframe_flow = fast``: s = 1/2) the
flows, their checks, ``F``, ``B``, the residuals ``Ra``, ``Rb`` (blur sigma 2s), the raised ``Va``, ``Vb``, their
weights ``soft(V) V`` (blur sigma 1.5s) and the pick's margin are computed on the source frames resized by s and
resized back (bilinear, flows times 1/s); the keyframes are warped and blended at full size.
Everything is a pure function of the source frames and the keyframe renders, so a resumed job writes the same
bytes.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import flow
from .errors import SettingsError, Vid2VidError
from .imaging import to_uint8_255
from .params import parse_frame_list

__all__ = ["KEYFRAME_MODES", "KeyframePlan", "PropagationSettings", "Segment", "choose_keyframes", "fill_styled",
           "fill_unseen", "harmonize_keyframe", "parse_frame_list", "propagate_segment", "propagation_from_stored",
           "propagation_for"]

KEYFRAME_MODES = ("off", "interval", "adaptive")
CHOICE_SIDE = 256
"""Long side (pixels) at which the adaptive choice measures motion and colour."""


# ---------------------------------------------------------------- the plan


@dataclass
class KeyframePlan:
    """Keyframes of a job: source frame indices (0-based, sorted), why each was chosen, the scene groups."""

    total: int
    frames: list[int]
    reasons: dict[int, str]
    """"start" (first frame), "cut" (first frame of a scene), "interval", "adaptive", "max_gap", "user"."""
    groups: list[tuple[int, int]]
    """Scene groups as (first, last) frame indices, inclusive, in order, covering 0 .. total-1."""
    scores: dict[int, float] = field(default_factory=dict)
    """Adaptive mode: the score each frame had against the last keyframe before it (rounded)."""

    def __post_init__(self) -> None:
        self._slot = {f: j for j, f in enumerate(self.frames)}

    def slot(self, index: int) -> int | None:
        """Position of frame ``index`` among the keyframes, None if it is not one."""
        return self._slot.get(index)

    def group_of(self, index: int) -> tuple[int, int]:
        for g in self.groups:
            if g[0] <= index <= g[1]:
                return g
        raise IndexError(index)

    def segments(self) -> list[Segment]:
        """The propagation segments in frame order: each keyframe with the frames up to the next keyframe of its
        group (exclusive) or the end of its group."""
        out = []
        for first, last in self.groups:
            keys = [f for f in self.frames if first <= f <= last]
            for j, a in enumerate(keys):
                b = keys[j + 1] if j + 1 < len(keys) else None
                out.append(Segment(a, b, (b - 1) if b is not None else last))
        return out

    def to_dict(self) -> dict:
        return {"total": self.total, "frames": list(self.frames),
                "reasons": {str(k): v for k, v in sorted(self.reasons.items())},
                "groups": [list(g) for g in self.groups],
                "scores": {str(k): v for k, v in sorted(self.scores.items())}}

    @classmethod
    def from_dict(cls, d: dict) -> KeyframePlan:
        return cls(total=int(d["total"]), frames=[int(f) for f in d["frames"]],
                   reasons={int(k): v for k, v in d.get("reasons", {}).items()},
                   groups=[(int(a), int(b)) for a, b in d["groups"]],
                   scores={int(k): float(v) for k, v in d.get("scores", {}).items()})

    def describe(self) -> str:
        """One line per group: its range and its keyframes with their reasons."""
        lines = [f"{len(self.frames)} keyframes of {self.total} frames ({len(self.groups)} scene group"
                 f"{'s' if len(self.groups) != 1 else ''}):"]
        for first, last in self.groups:
            keys = [f"{f} ({self.reasons.get(f, '?')})" for f in self.frames if first <= f <= last]
            lines.append(f"  frames {first}-{last}: " + ", ".join(keys))
        return "\n".join(lines)


@dataclass(frozen=True)
class Segment:
    """Keyframe ``a``, the next keyframe ``b`` of the same group (None: the group ends first) and ``last``, the
    last frame made from this segment (``b - 1``, or the group's last frame)."""

    a: int
    b: int | None
    last: int


def _small_grey(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grey uint8, RGB float32 0..1) at most CHOICE_SIDE pixels on the long side."""
    h, w = rgb.shape[:2]
    scale = min(1.0, CHOICE_SIDE / max(h, w))
    small = rgb if scale >= 1.0 else cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))),
                                                interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), small.astype(np.float32) * np.float32(1 / 255)


def change_score(cur: tuple[np.ndarray, np.ndarray], key: tuple[np.ndarray, np.ndarray],
                 weights: np.ndarray | None, colour_weight: float, motion_weight: float
                 ) -> tuple[float, float, float]:
    """(score, C, M) of a frame against the last keyframe (see the module docstring); inputs from _small_grey."""
    f_ik = flow.compute_flow(cur[0], key[0], quality="fast")
    f_ki = flow.compute_flow(key[0], cur[0], quality="fast")
    valid = 1.0 - flow.occlusion_mask(f_ik, f_ki)
    w = np.ones_like(valid) if weights is None else cv2.resize(
        weights.astype(np.float32), valid.shape[::-1], interpolation=cv2.INTER_AREA)
    wsum = float(w.sum())
    if wsum <= 0:
        return 0.0, 0.0, 0.0
    wv = w * valid
    m = 1.0 - float(wv.sum()) / wsum
    warped = flow.warp(key[1], f_ik)
    resid = np.abs(cur[1] - warped).mean(axis=2)
    c = float((resid * wv).sum() / max(float(wv.sum()), 1e-6))
    return colour_weight * c + motion_weight * m, c, m


def mean_motion(cur: np.ndarray, prev: np.ndarray, weights: np.ndarray | None) -> float:
    """Weighted mean length (pixels of these grey images) of the DIS fast flow ``cur -> prev``."""
    f = flow.compute_flow(cur, prev, quality="fast")
    mag = np.sqrt(f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1])
    if weights is None:
        return float(mag.mean())
    w = cv2.resize(weights.astype(np.float32), mag.shape[::-1], interpolation=cv2.INTER_AREA)
    wsum = float(w.sum())
    return float((mag * w).sum() / wsum) if wsum > 0 else 0.0


def choose_keyframes(frames: Iterable[np.ndarray], total: int, *, mode: str = "interval", interval: int = 4,
                     min_gap: int = 2, max_gap: int = 12, threshold: float = 1.0, colour_weight: float = 25.0,
                     motion_weight: float = 10.0, max_motion: float = 0.0, cut_threshold: float = 0.4,
                     cut_motion: float = 0.0, cut_light: bool = False, add: Sequence[int] = (),
                     remove: Sequence[int] = (), weights: Callable[[int, np.ndarray], np.ndarray | None] | None = None,
                     on_key: Callable[[int], None] | None = None) -> KeyframePlan:
    """Choose the keyframes of a video (see the module docstring). ``frames``: the source frames in order, RGB
    uint8 HWC at output size (streamed: only the last keyframe and the previous frame are kept). ``weights(i,
    frame)``: float32 HW 0..1, where changes count (a mask), or None for all pixels. ``max_motion``: adaptive
    mode's accumulated-motion limit in output pixels (0: off). ``cut_threshold``, ``cut_motion``, ``cut_light``: the
    scene cut tests (:class:`lib_vid2vid.scene_cuts.CutDetector`). ``on_key(i)`` is called as soon as frame ``i`` is
    chosen, before the next frame is read (a preview keeps only the keyframes' thumbnails)."""
    from .scene_cuts import CutDetector

    if mode not in ("interval", "adaptive"):
        raise SettingsError("keyframe_mode", f"{mode!r}: choose interval or adaptive")
    bad = [f for f in (*add, *remove) if f >= total]
    if bad:
        raise SettingsError("keyframe_add" if bad[0] in add else "keyframe_remove",
                            f"frame {bad[0]} is outside the processed range (0..{total - 1})")
    both = sorted(set(add) & set(remove))
    if both:
        raise SettingsError("keyframe_remove", f"frame {both[0]} is both added and removed")
    add_set, remove_set = set(add), set(remove)
    keys: list[int] = []
    reasons: dict[int, str] = {}
    scores: dict[int, float] = {}
    starts: list[int] = []
    cuts = CutDetector(cut_threshold, cut_motion, cut_light)
    key_small = None
    prev_small = None
    travelled = 0.0  # adaptive: motion(i, last keyframe), output pixels
    last_key = 0
    n = 0
    for i, rgb in enumerate(frames):
        if i >= total:
            break
        n = i + 1
        cut = cuts.step(rgb)
        reason = None
        small = _small_grey(rgb) if mode == "adaptive" else None
        wts = weights(i, rgb) if weights and mode == "adaptive" and i > 0 and not cut else None
        if mode == "adaptive" and max_motion > 0 and i > 0 and not cut:
            travelled += mean_motion(small[0], prev_small[0], wts) * rgb.shape[1] / small[0].shape[1]
        if i == 0 or cut:
            starts.append(i)
            if i in remove_set:
                raise SettingsError("keyframe_remove", f"frame {i} starts a scene: it is always a keyframe (nothing "
                                                       f"is propagated across a cut); remove another frame")
            reason = "start" if i == 0 else "cut"
        elif i in add_set:
            reason = "user"
        elif i in remove_set:
            reason = None
        elif mode == "interval":
            if (i - starts[-1]) % interval == 0:
                reason = "interval"
        else:
            gap = i - last_key
            if gap >= max_gap:
                reason = "max_gap"
            elif gap >= min_gap:
                score, _, _ = change_score(small, key_small, wts, colour_weight, motion_weight)
                scores[i] = round(score, 4)
                if score >= threshold:
                    reason = "adaptive"
                elif max_motion > 0 and travelled >= max_motion:
                    reason = "motion"
        prev_small = small
        if reason is not None:
            keys.append(i)
            reasons[i] = reason
            last_key = i
            if on_key is not None:
                on_key(i)
            travelled = 0.0
            key_small = small
    if n < total:
        raise Vid2VidError(f"The video has only {n} frames in the chosen range, not {total}: check start/end")
    groups = [(s, (starts[j + 1] - 1) if j + 1 < len(starts) else total - 1) for j, s in enumerate(starts)]
    return KeyframePlan(total=total, frames=keys, reasons=reasons, groups=groups, scores=scores)


# ---------------------------------------------------------------- propagation


@dataclass
class PropagationSettings:
    flow_quality: str = "medium"
    """DIS preset of the consecutive-frame flows."""
    flow_evidence: bool = True
    """Keep each flow only where the frames show the motion (:func:`lib_vid2vid.flow.evidence_flow`): no drift
    of the carried texture in flat areas of a still shot. False: DIS's flow as it comes (before December 2026)."""
    fill_sigma: float = 4.0
    """Pixels: how far the motion of textured pixels reaches into flat areas in the evidence check
    (:func:`lib_vid2vid.flow.evidence_flow`'s ``fill_sigma``); 8 before December 2026 (a halo of dragged texture round
    a subject moving in front of a plain wall)."""
    fill_prior: str = "camera"
    """What a flat pixel beyond the fill's reach takes (:func:`lib_vid2vid.flow.evidence_flow`'s ``prior``): the
    camera's motion when the frame's borders agree on a pan or tilt, or else on a zoom or turn (``camera``); on a pan
    or tilt only (``border``, until the zoom came: a plain sky held still under a zoom); or zero (``none``, before
    December 2026: a plain sky held still under a pan, its carried texture stuck to the screen)."""
    fill_prior_weight: float = 0.04
    """:func:`lib_vid2vid.flow.evidence_flow`'s ``prior_weight``, in units of the blurred texture confidence: 0.01
    until December 2026, when ``texture_k`` went down four times (a flat pixel's confidence ``~ lmin / texture_k``
    went up four times, and the prior's hold on it is kept by a weight four times larger)."""
    texture_k: float = 2.5e-3
    """:func:`lib_vid2vid.flow.texture_confidence`'s ``texture_k`` in the evidence check: the structure tensor's
    smaller eigenvalue (image 0..1, Sobel) at which a pixel's own motion counts half. 1e-2 until December 2026:
    faint texture (gradients of about 2 levels a pixel in both directions count half, 4 before) now shows its own
    motion rather than its neighbours' (docs/CONSISTENCY.md, "Trusting moderate texture")."""
    validity_blur: float = 1.5
    """Gaussian sigma (pixels) that softens the validity masks before they weight the blend."""
    ghost_low: float = 24.0
    ghost_high: float = 48.0
    """Disagreement (mean |A - B| over channels, 0..255, blurred) from which the blend turns into one source per
    pixel, and at which it is one source entirely."""
    ghost_blur: float = 1.0
    pick: str = "residual"
    """Where the two warps disagree, which keyframe a pixel takes: ``residual`` (the keyframe whose *source*
    frame, warped the same way, matches the source frame t better: blurred |grey(warp(S_a, F_t)) - grey(S_t)|
    against the same for b, ``pick_margin`` levels in favour of the nearer one) or ``nearer`` (the larger temporal
    x validity weight; before December 2026)."""
    pick_margin: float = 2.0
    seen_alpha: float = 0.01
    seen_beta: float = 0.5
    """Forward-backward check of each step's validity (:func:`lib_vid2vid.flow.occlusion_mask`'s alpha, beta)."""
    seen_residual: float = 6.0
    """Levels (0 = off, as before December 2026): a pixel the forward-backward check drops is still taken from a
    keyframe whose source, warped the same way, matches source frame t to within half this (blurred grey
    residual), fading out at it. 4 until the styled fill (docs/CONSISTENCY.md, "Unseen pixels in the style
    around them")."""
    harmonize: float = 1.0
    """How much of keyframe a's fine detail keyframe b takes where a sees it and the motion explains it
    (:func:`harmonize_keyframe`; 0 = off, each keyframe its own render, as before December 2026)."""
    harmonize_sigma: float = 4.0
    """Pixels: the Gaussian that splits a keyframe into its colours and shading (kept) and its fine detail."""
    harmonize_residual: float = 4.0
    """Levels: the source residual of the carried keyframe up to which its detail is taken (fully below half)."""
    unseen_below: float = 0.02
    """A pixel is unseen when its summed validity (0..2) is below this."""
    colour_guard: float = 2.0
    """Levels (0..255; 0 = off, as before December 2026): a propagated frame whose mean colour departs from the
    source's by more than its keyframes do (interpolated) is moved back to within this (:func:`guard_colour`)."""
    flow_scale: float = 1.0
    """The flows, their evidence checks, forward-backward checks and chains are computed on the source frames
    resized by this (INTER_AREA), and the composed flows and validities resized back (bilinear, flows times the
    size ratio) before the keyframes are warped and judged at full size. 1: at full size. 0.5 is the ``fast``
    propagation (``keyframe_flow``): about 40 % of the CPU, coarser motion at objects' edges (docs/CONSISTENCY.md,
    "Fast propagation")."""
    key_alone_selects: bool = True
    """With ``keyframe_mask_only`` and the colour key as the only mask, added (``colour_key_op`` union): the keyed
    pixels are the region that changes. False (before December 2026): the key added to no other mask selected the
    whole frame, so every pixel changed."""


FAST_FLOW_SCALE = 0.5
"""``flow_scale`` of the ``keyframe_flow = "fast"`` propagation."""


_BEFORE_STORED = {"fill_sigma": 8.0, "fill_prior": "none", "fill_prior_weight": 0.01, "flow_scale": 1.0,
                  "harmonize": 0.0, "colour_guard": 0.0, "texture_k": 1e-2, "key_alone_selects": False}
"""Fields added after jobs began to store their rules, and the value each had before it was a field: what a job
that did not store it was made with."""


def propagation_for(flow: str) -> PropagationSettings:
    """Today's rules for a job's ``keyframe_flow`` setting (``accurate`` or ``fast``)."""
    ps = PropagationSettings()
    return dataclasses.replace(ps, flow_scale=FAST_FLOW_SCALE) if flow == "fast" else ps


def propagation_from_stored(stored: dict) -> PropagationSettings:
    """The PropagationSettings a job stored in its manifest (``keyframes.propagation``, its fields by name), so a
    job resumed after an update that changed the defaults makes its remaining frames by the rules it started with.
    Names this version does not know are ignored; a field the job did not store takes the value it had before it
    was a field (:data:`_BEFORE_STORED`), any other today's default."""
    ps = PropagationSettings()
    known = {f.name for f in dataclasses.fields(ps)}
    values = {**_BEFORE_STORED, **{k: v for k, v in stored.items() if k in known}}
    return dataclasses.replace(ps, **values)


FLOW_WORKERS = 2
"""Worker threads of the flow pool: each computes one direction of a pair at a time (DIS, then the evidence check)
while the calling thread prepares the next pairs' textures. OpenCV's DIS keeps only part of its work on more than
one core, so two flows side by side use 2 cores better than one after the other (helpers/bench_propagation.py);
each worker holds a set of scratch arrays of the frame size while a segment's flows are made, so not more."""

_PAIR_POOL: ThreadPoolExecutor | None = None
_PAIR_POOL_LOCK = threading.Lock()


def _pair_pool() -> ThreadPoolExecutor:
    """The flow pool (:data:`FLOW_WORKERS` threads), made once per process."""
    global _PAIR_POOL
    with _PAIR_POOL_LOCK:
        if _PAIR_POOL is None:
            _PAIR_POOL = ThreadPoolExecutor(FLOW_WORKERS, thread_name_prefix="vid2vid-flow")
        return _PAIR_POOL


def _forget_pair_pool() -> None:
    """In a forked child: the parent's worker threads do not exist there, and an executor that believes it has
    them would queue work nobody runs (a process pool of the benchmarks forks after propagating)."""
    global _PAIR_POOL, _PAIR_POOL_LOCK
    _PAIR_POOL, _PAIR_POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pair_pool)

_PAIRS_IN_FLIGHT = 2
"""Pairs of a segment handed to the flow pool and not yet collected: enough that a worker finds the next flow ready
when it finishes one."""


@dataclass(frozen=True)
class _FlowCheck:
    """How one direction of a pair is computed: DIS ``quality`` and, with ``evidence``, the arguments of
    :func:`lib_vid2vid.flow.evidence_flow`."""

    quality: str
    evidence: bool = True
    fill_sigma: float = PropagationSettings.fill_sigma
    prior: str = PropagationSettings.fill_prior
    prior_weight: float = PropagationSettings.fill_prior_weight
    texture_k: float = PropagationSettings.texture_k

    def flow(self, src: np.ndarray, dst: np.ndarray, texture: np.ndarray | None, still: np.ndarray | None,
             work: flow.WorkArrays | None) -> np.ndarray:
        """Flow ``src -> dst`` (grey uint8 HW frames; float32 HW2 pixels). ``texture``: ``texture_confidence`` of
        ``src``; ``still``: ``still_residual`` of the pair (None: computed here)."""
        f = flow.compute_flow(src, dst, quality=self.quality)
        if not self.evidence:
            return f
        return flow.evidence_flow(f, src, dst, texture=texture, still=still, work=work, fill_sigma=self.fill_sigma,
                                  prior=self.prior, prior_weight=self.prior_weight, texture_k=self.texture_k)


def _pair_flows(a: np.ndarray, b: np.ndarray, quality: str, evidence: bool = True,
                textures: tuple[np.ndarray, np.ndarray] | None = None,
                works: tuple[flow.WorkArrays, flow.WorkArrays] | None = None,
                fill_sigma: float = PropagationSettings.fill_sigma, prior: str = PropagationSettings.fill_prior,
                prior_weight: float = PropagationSettings.fill_prior_weight,
                texture_k: float = PropagationSettings.texture_k) -> tuple[np.ndarray, np.ndarray]:
    """(flow b -> a, flow a -> b) of two consecutive source frames (a before b); DIS, then, with ``evidence``,
    :func:`lib_vid2vid.flow.evidence_flow` (zero where the frames show no motion, neighbours' motion where flat, the
    camera's beyond their reach).
    ``textures``: ``flow.texture_confidence`` of (a, b) if the caller has them (each frame serves two pairs).
    The two directions are computed side by side, the second in the flow pool (OpenCV releases the GIL).
    ``works``: scratch arrays for (b -> a, a -> b), one set per direction. A segment's pairs:
    :func:`segment_flows`, which keeps the pool busy from one pair to the next."""
    ga = a if a.ndim == 2 else cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    gb = b if b.ndim == 2 else cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    ta, tb = textures if textures is not None else (None, None)
    wba, wab = works if works is not None else (None, None)
    check = _FlowCheck(quality, evidence, fill_sigma, prior, prior_weight, texture_k)
    still = flow.still_residual(ga, gb) if evidence else None  # |A - B| blurred: the same for both directions
    other = _pair_pool().submit(check.flow, ga, gb, ta, still, wab)
    try:
        ba = check.flow(gb, ga, tb, still, wba)
    finally:
        ab = other.result()
    return ba, ab


class _Grid:
    """Pixel grid of one frame size, reused for every remap of a segment, and the segment's scratch arrays
    (:class:`lib_vid2vid.flow.WorkArrays`: a temporary is not allocated and page-faulted anew per frame)."""

    def __init__(self, h: int, w: int):
        self.xy = flow.pixel_grid(h, w)
        self.h, self.w = h, w
        self.work = flow.WorkArrays()

    def buf(self, name: str, ch: int = 1, dtype: type = np.float32) -> np.ndarray:
        """Scratch array ``name`` of the frame size (H, W) or (H, W, ch)."""
        return self.work.get(name, (self.h, self.w) if ch == 1 else (self.h, self.w, ch), dtype)

    def map(self, f: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The sampling positions ``(x + dx, y + dy)`` of a flow, float32 (H, W, 2), for :meth:`remap` (in the
        scratch array ``out`` when given)."""
        return cv2.add(self.xy, f, dst=out)  # numpy adds the same floats, slower

    @staticmethod
    def remap(img: np.ndarray, m: np.ndarray, border: int = cv2.BORDER_REPLICATE, out: np.ndarray | None = None
              ) -> np.ndarray:
        """``out(x, y) = img(m(x, y))``, bilinear (OpenCV, 1/32 px steps): flow.warp with the map made once."""
        return cv2.remap(img, m, None, cv2.INTER_LINEAR, dst=out, borderMode=border, borderValue=0)

    def warp(self, img: np.ndarray, f: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        return self.remap(img, self.map(f, self.buf("warp_map", 2)), border)


class _Upsize:
    """The flows' grid to the frame's (``flow_scale``): a flow or validity of the small grid resized to the frame
    size (bilinear; flows times the size ratio per axis), in the frame grid's scratch array ``tag``. The same
    array back when the two grids are one (``flow_scale`` 1: nothing is resampled)."""

    def __init__(self, small: _Grid, full: _Grid):
        self.same = small is full
        self.full = full
        self.ratio = (full.w / small.w, full.h / small.h, 0.0, 0.0)  # per channel (cv2: numpy's broadcast is slow)

    def flow(self, f: np.ndarray, tag: str) -> np.ndarray:
        if self.same:
            return f
        out = None if tag == "out" else self.full.buf("up_" + tag, 2)  # "out": kept by the caller, a new array
        out = cv2.resize(f, (self.full.w, self.full.h), dst=out, interpolation=cv2.INTER_LINEAR)
        return cv2.multiply(out, self.ratio, dst=out)

    def valid(self, v: np.ndarray, tag: str) -> np.ndarray:
        if self.same:
            return v
        return cv2.resize(v, (self.full.w, self.full.h), dst=self.full.buf("up_" + tag),
                          interpolation=cv2.INTER_LINEAR)


def _seen(fw: np.ndarray, bw: np.ndarray, grid: _Grid, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """``1 - flow.occlusion_mask(fw, bw)`` (default alpha 0.01, beta 0.5, out-of-frame targets occluded) as float32,
    with the grid built once: 1 where the pixel of ``fw``'s frame is found again in the other frame."""
    buf = grid.buf
    m = grid.map(fw, buf("seen_map", 2))
    bw_w = grid.remap(bw, m, out=buf("seen_bw", 2))
    sq = np.add(fw, bw_w, out=buf("seen_sq", 2))
    sq *= sq
    x, y = cv2.split(sq, [buf("seen_x"), buf("seen_y")])
    diff = cv2.add(x, y, dst=buf("seen_diff"))  # |fw + bw_w|^2 (cv2.transform sums the channels the same, slower)
    sq = np.multiply(fw, fw, out=sq)
    sq += np.multiply(bw_w, bw_w, out=bw_w)
    x, y = cv2.split(sq, [x, y])
    norms = cv2.add(x, y, dst=x)  # |fw|^2 + |bw_w|^2
    norms *= np.float32(alpha)
    norms += np.float32(beta)
    ok = np.less_equal(diff, norms, out=buf("seen_ok", dtype=np.bool_))
    inside = cv2.inRange(m, (-0.5, -0.5), (grid.w - 0.5, grid.h - 0.5), dst=buf("seen_in", dtype=np.uint8))
    return np.logical_and(ok, inside, out=ok).astype(np.float32)


def _compose_chain(steps: Iterable[tuple[np.ndarray, np.ndarray]], grid: _Grid
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Composed flows and validity along a chain of one-step flows.

    ``steps``: ``(s_k, v_k)`` in chain order, ``s_k`` the flow from frame k+1 of the chain to frame k (chain frame 0
    is the keyframe), ``v_k`` where that step is reliable (1); taken one at a time (a generator may make each when
    it is needed, and let it go after). Returns, for chain frames 1..len(steps), the flow to frame 0 and where
    frame 0 sees them: ``C_1 = s_0``, ``C_k = s_{k-1} + warp(C_{k-1}, s_{k-1})``;
    ``V_k = v_{k-1} * warp(V_{k-1}, s_{k-1})``."""
    flows, vals = [], []
    for k, (s, v) in enumerate(steps):
        if k == 0:
            flows.append(s)
            vals.append(v)
        else:
            m = grid.map(s, grid.buf("chain_map", 2))
            flows.append(s + grid.remap(flows[-1], m, out=grid.buf("chain_f", 2)))
            vals.append(v * grid.remap(vals[-1], m, cv2.BORDER_CONSTANT, grid.buf("chain_v")))
    return flows, vals


_MEAN3 = np.full((1, 3), 1.0 / 3.0, np.float32)

Keyframe = np.ndarray | Callable[[], np.ndarray]
"""A keyframe's render (RGB uint8 HWC), or a function that returns it when it is needed."""


def blend_two(a: np.ndarray, va: np.ndarray, ta: float, b: np.ndarray | None, vb: np.ndarray | None,
              tb: float, ps: PropagationSettings, work: flow.WorkArrays | None = None,
              prefer_a: np.ndarray | None = None, soft: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Blend two warped keyframes (RGB uint8 HWC) by temporal weight (``ta``, ``tb``) and validity (float32 HW
    0..1, not modified) with the anti-ghosting rule of the module docstring. Returns (RGB uint8 HWC, unseen mask
    bool HW); the weighted sum is rounded to the nearest level by OpenCV (``cv2.blendLinear``), one pass in C++
    instead of six in numpy: this runs for nearly every frame of a video. ``work``: scratch arrays to reuse.
    ``soft``: ``soft(V) V`` of a and b (:func:`_soft_weight`) when the caller has them already (not modified)."""
    if b is None:
        return a, va < ps.unseen_below
    assert vb is not None
    h, w = va.shape
    work = work if work is not None else flow.WorkArrays()

    def buf(name: str, dtype: type = np.float32) -> np.ndarray:
        return work.get("blend_" + name, (h, w), dtype)

    if soft is None:
        wa = _soft_weight(va, ps.validity_blur, buf("wa"), buf("g"))
        wb = _soft_weight(vb, ps.validity_blur, buf("wb"), buf("g"))
        wa *= np.float32(ta)
        wb *= np.float32(tb)
    else:
        wa = np.multiply(soft[0], np.float32(ta), out=buf("wa"))
        wb = np.multiply(soft[1], np.float32(tb), out=buf("wb"))
    den = np.add(wa, wb, out=buf("den"))
    np.maximum(den, np.float32(1e-6), out=den)
    na = np.divide(wa, den, out=buf("na"))
    mean = cv2.transform(cv2.absdiff(a, b, dst=work.get("blend_ad", a.shape, np.uint8)), _MEAN3,
                         dst=buf("mean", np.uint8))  # mean over channels, 0..255
    diff = buf("diff")
    np.copyto(diff, mean)
    if ps.ghost_blur > 0:
        diff = cv2.GaussianBlur(diff, (0, 0), ps.ghost_blur, dst=buf("g"))
    s = np.subtract(diff, np.float32(ps.ghost_low), out=buf("s"))
    s *= np.float32(1.0 / max(ps.ghost_high - ps.ghost_low, 1e-6))
    np.clip(s, np.float32(0), np.float32(1), out=s)
    pa = np.greater_equal(wa, wb, out=buf("ge", np.bool_)) if prefer_a is None else prefer_a
    onehot = np.copyto(den, pa) or den
    onehot -= na
    onehot *= s
    na += onehot  # (1 - s) na + s onehot
    # where only one keyframe sees the pixel at all, it alone (its validity weight may be small but it is the source)
    a_only = np.less(vb, np.float32(ps.unseen_below), out=buf("a_only", np.bool_))
    b_only = np.less(va, np.float32(ps.unseen_below), out=buf("b_only", np.bool_))
    unseen = a_only & b_only
    fill = buf("fill")
    fill.fill(1.0)
    cv2.copyTo(fill, a_only.view(np.uint8), na)  # na[a_only] = 1
    fill.fill(0.0)
    cv2.copyTo(fill, np.logical_xor(b_only, unseen, out=b_only).view(np.uint8), na)  # na[b_only & ~a_only] = 0
    out = cv2.blendLinear(a, b, na, np.subtract(np.float32(1), na, out=den))
    return out, unseen


def _soft_weight(v: np.ndarray, sigma: float, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``soft(V) V`` (float32 HW, in ``out``): the validity times itself blurred by ``sigma`` pixels (none at 0)."""
    if sigma <= 0:
        np.copyto(out, v)
        return out
    return np.multiply(cv2.GaussianBlur(v, (0, 0), sigma, dst=scratch), v, out=out)


@dataclass
class SegmentFlows:
    """What :func:`propagate_segment` computes from a segment's source frames alone before its chains, most of its
    work: the frame and flow grids, the grey frames of the flows' grid, and the flows of each consecutive pair
    (``back[k]``: frame k+1 -> k, ``fwd[k]``: k -> k+1, on the flows' grid). Made by :func:`segment_flows`, which a
    job runs for the next segment while this one's frames are made."""

    grid: _Grid
    fgrid: _Grid
    up: _Upsize
    fgreys: list[np.ndarray]
    back: list[np.ndarray]
    fwd: list[np.ndarray]


def segment_flows(sources: Sequence[np.ndarray], ps: PropagationSettings | None = None) -> SegmentFlows:
    """The flows of a segment's consecutive source frames (RGB uint8 HWC, keyframe a's first): DIS both ways per
    pair, with the evidence check (:func:`_pair_flows`), on frames scaled by ``ps.flow_scale``."""
    ps = ps or PropagationSettings()
    h, w = sources[0].shape[:2]
    grid = _Grid(h, w)
    greys = [cv2.cvtColor(np.ascontiguousarray(src), cv2.COLOR_RGB2GRAY) for src in sources]
    fgrid, fgreys, up = grid, greys, _Upsize(grid, grid)  # the flows' grid: the frame's, or smaller (flow_scale)
    if ps.flow_scale < 1.0:
        fw, fh = max(8, round(w * ps.flow_scale)), max(8, round(h * ps.flow_scale))
        fgrid = _Grid(fh, fw)
        fgreys = [cv2.resize(g, (fw, fh), interpolation=cv2.INTER_AREA) for g in greys]
        up = _Upsize(fgrid, grid)
    def texture(k: int) -> np.ndarray | None:
        return flow.texture_confidence(fgreys[k], texture_k=ps.texture_k, work=fgrid.work) if ps.flow_evidence else None

    check = _FlowCheck(ps.flow_quality, ps.flow_evidence, ps.fill_sigma * ps.flow_scale, ps.fill_prior,
                       ps.fill_prior_weight, ps.texture_k)
    works: queue.SimpleQueue[flow.WorkArrays] = queue.SimpleQueue()  # one set per worker: a get never waits
    for _ in range(FLOW_WORKERS):
        works.put(flow.WorkArrays())

    def direction(src: np.ndarray, dst: np.ndarray, tex: np.ndarray | None, still: np.ndarray | None
                  ) -> np.ndarray:
        work = works.get()
        try:
            return check.flow(src, dst, tex, still, work)
        finally:
            works.put(work)

    # Both directions of every pair go to the flow pool, at most _PAIRS_IN_FLIGHT pairs ahead of the last one
    # collected (what they hold: their textures and residuals), while this thread prepares the next pair.
    pool = _pair_pool()
    pending: collections.deque[tuple[Future, Future]] = collections.deque()
    back, fwd = [], []  # back[k]: flow k+1 -> k; fwd[k]: flow k -> k+1
    try:
        tex_b = texture(0)  # each frame's texture serves the pair before it and the one after it, and no other
        for k in range(len(sources) - 1):
            tex_a, tex_b = tex_b, texture(k + 1)
            still = flow.still_residual(fgreys[k], fgreys[k + 1]) if ps.flow_evidence else None
            pending.append((pool.submit(direction, fgreys[k + 1], fgreys[k], tex_b, still),
                            pool.submit(direction, fgreys[k], fgreys[k + 1], tex_a, still)))
            while len(pending) > _PAIRS_IN_FLIGHT:
                f_back, f_fwd = pending.popleft()
                back.append(f_back.result())
                fwd.append(f_fwd.result())
        while pending:
            f_back, f_fwd = pending.popleft()
            back.append(f_back.result())
            fwd.append(f_fwd.result())
    finally:
        for pair in pending:  # an error or an interrupt: what has not started is not started
            for fut in pair:
                fut.cancel()
    return SegmentFlows(grid, fgrid, up, fgreys, back, fwd)


def propagate_segment(sources: Sequence[np.ndarray], key_a: np.ndarray, key_b: Keyframe | None,
                      ps: PropagationSettings | None = None, flows: dict[int, np.ndarray] | None = None,
                      harmonized: Callable[[np.ndarray], None] | None = None, pre: SegmentFlows | None = None
                      ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Frames 1 .. len(sources)-1 of a segment (or 1 .. len-2 when ``key_b`` is given: the last source is the
    next keyframe's), carried from the keyframe renders.

    ``sources``: RGB uint8 HWC source frames from keyframe a on (and up to keyframe b when ``key_b`` is given);
    ``key_a``, ``key_b``: their rendered frames (RGB uint8); ``key_b`` may be a function that returns it, called
    once the flows and their chains (everything that needs only the sources, most of the work) are done: a job
    computes them while keyframe b is still rendering. Yields ``(offset from a, frame RGB uint8 HWC, unseen
    mask bool HW)``; the caller fills the unseen pixels (:func:`fill_unseen`). ``flows``, when given, receives the
    flow of each frame to the one before it, by offset (``flows[j]``: frame a+j -> a+j-1), as they are computed.
    Keyframes are warped as uint8 (OpenCV's bilinear remap, 1/32 px steps, rounded). Only what a made frame uses is
    computed: with ``key_b``, chain a stops at frame n-1 and chain b at frame 1 (a keyframe's own frame is the caller's).
    ``harmonized``: with ``key_b`` and ``ps.harmonize`` > 0, keyframe b is harmonized with ``key_a``
    (:func:`harmonize_keyframe`, module docstring) before the frames are made from it, and this is called with the
    result (RGB uint8 HWC), which is keyframe b's output and the next segment's ``key_a``; None: b as given.
    ``pre``: :func:`segment_flows` of these ``sources`` with these ``ps``, made beforehand (the same frames); it is
    used up (its flows are let go here as soon as the frames no longer need them).

    Memory: each one-step flow, validity and chain step is let go as soon as no frame left needs it, so at any
    time a job holds one segment's chains (shrinking as its frames are made) beside the next segment's flows."""
    ps = ps or PropagationSettings()
    n = len(sources) - 1
    if n < 1:
        return
    sf = pre if pre is not None else segment_flows(sources, ps)
    grid, fgrid, up, fgreys, back, fwd = sf.grid, sf.fgrid, sf.up, sf.fgreys, sf.back, sf.fwd
    sf.back, sf.fwd = [], []  # held here alone, and let go once the chains are made (a ``pre`` is used up)
    if flows is not None:
        for k in range(n):
            flows[k + 1] = up.flow(back[k], "out")
    last = n if key_b is None else n - 1  # the last frame made
    if last < 1:
        return
    fa, va = _compose_chain(((back[k], _seen(back[k], fwd[k], fgrid, ps.seen_alpha, ps.seen_beta))
                             for k in range(last)), fgrid)  # index j-1 -> frame j; seen: frame k+1 in k
    ka = np.ascontiguousarray(key_a)
    # the residuals, their rescue of the validity and the pick are computed on the flows' grid, then resized
    if key_b is None:
        back = fwd = None  # type: ignore[assignment]
        for j in range(1, n + 1):
            v = va[j - 1]
            if ps.seen_residual > 0:
                v = _rescue(v, _residual(fgreys, 0, j, fa[j - 1], fgrid, "a", ps.flow_scale), ps.seen_residual,
                            fgrid.buf("rescue_a"))
            out, unseen = blend_two(grid.warp(ka, up.flow(fa[j - 1], "fa")), up.valid(v, "va"), 1.0, None, None, 0.0,
                                    ps)
            fa[j - 1] = va[j - 1] = None  # type: ignore[call-overload]
            yield j, out, unseen
        return
    # chain from b backwards: chain frame 0 = b = n, chain frame m = n - m, step m-1: flow (n-m) -> (n-m+1);
    # seen: frame k in k+1. Each forward flow is let go once it is a step of the chain (memory: the chain's flows
    # replace them one by one); harmonizing keeps the last one.
    fwd_last = fwd[n - 1]

    def steps_b() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for m in range(1, last + 1):
            step, fwd[n - m] = fwd[n - m], None
            yield step, _seen(step, back[n - m], fgrid, ps.seen_alpha, ps.seen_beta)

    fb, vb = _compose_chain(steps_b(), fgrid)
    kb = np.ascontiguousarray(key_b() if callable(key_b) else key_b)
    if harmonized is not None and ps.harmonize > 0:  # n >= 2 here: chain a has frames 1 .. n-1
        # one more step of chain a, as _compose_chain takes it: frame n (= b) -> n-1, then along F_{n-1} to a
        m = fgrid.map(back[n - 1], fgrid.buf("chain_map", 2))
        f_n = back[n - 1] + fgrid.remap(fa[n - 2], m, out=fgrid.buf("chain_f", 2))
        v_n = _seen(back[n - 1], fwd_last, fgrid, ps.seen_alpha, ps.seen_beta)
        v_n *= fgrid.remap(va[n - 2], m, cv2.BORDER_CONSTANT, fgrid.buf("chain_v"))
        r_n = _residual(fgreys, 0, n, f_n, fgrid, "h", ps.flow_scale)
        if ps.seen_residual > 0:
            v_n = _rescue(v_n, r_n, ps.seen_residual, fgrid.buf("rescue_h"))
        kb = harmonize_keyframe(kb, grid.warp(ka, up.flow(f_n, "fa")), up.valid(v_n, "seen_h"), up.valid(r_n, "res_h"),
                                ps)
        harmonized(kb)
    back = fwd = fwd_last = None  # type: ignore[assignment]
    for j in range(1, n):
        sfa, sfb, sva, svb = fa[j - 1], fb[n - j - 1], va[j - 1], vb[n - j - 1]  # on the flows' grid
        fa_j, fb_j = up.flow(sfa, "fa"), up.flow(sfb, "fb")
        a = grid.remap(ka, grid.map(fa_j, grid.buf("warp_map", 2)), out=grid.work.get("warp_a", ka.shape, np.uint8))
        b = grid.remap(kb, grid.map(fb_j, grid.buf("warp_map", 2)), out=grid.work.get("warp_b", kb.shape, np.uint8))
        prefer_a = None
        wva, wvb = sva, svb
        if ps.pick == "residual" or ps.seen_residual > 0:
            ra = _residual(fgreys, 0, j, sfa, fgrid, "a", ps.flow_scale)
            rb = _residual(fgreys, n, j, sfb, fgrid, "b", ps.flow_scale)
            if ps.seen_residual > 0:
                wva = _rescue(wva, ra, ps.seen_residual, fgrid.buf("rescue_a"))
                wvb = _rescue(wvb, rb, ps.seen_residual, fgrid.buf("rescue_b"))
            if ps.pick == "residual":  # the nearer keyframe (temporal x forward-backward validity) wins ties
                nearer_a = np.greater_equal(np.multiply(sva, np.float32(n - j), out=fgrid.buf("pick_wa")),
                                            np.multiply(svb, np.float32(j), out=fgrid.buf("pick_wb")),
                                            out=fgrid.buf("pick_near", dtype=np.bool_))
                margin = fgrid.buf("pick_m")
                margin.fill(-ps.pick_margin)
                margin[nearer_a] = np.float32(ps.pick_margin)
                margin += rb
                prefer_a = np.less(up.valid(ra, "ra"), up.valid(margin, "margin"),
                                   out=grid.buf("pick_a", dtype=np.bool_))
        soft = (up.valid(_soft_weight(wva, ps.validity_blur * ps.flow_scale, fgrid.buf("soft_a"), fgrid.buf("soft_g")),
                         "soft_a"),
                up.valid(_soft_weight(wvb, ps.validity_blur * ps.flow_scale, fgrid.buf("soft_b"), fgrid.buf("soft_g")),
                         "soft_b"))
        out, unseen = blend_two(a, up.valid(wva, "wva"), (n - j) / n, b, up.valid(wvb, "wvb"), j / n, ps, grid.work,
                                prefer_a, soft)
        # each chain step serves one frame: let it go (the next segment's flows are made meanwhile)
        fa[j - 1] = fb[n - j - 1] = va[j - 1] = vb[n - j - 1] = None  # type: ignore[call-overload]
        yield j, out, unseen


def harmonize_keyframe(key_b: np.ndarray, carried_a: np.ndarray, seen: np.ndarray, residual: np.ndarray,
                       ps: PropagationSettings) -> np.ndarray:
    """Keyframe b (RGB uint8 HWC) with keyframe a's fine detail where a sees it and the motion explains it (the
    module docstring's ``K_b'``). ``carried_a``: keyframe a warped onto b's grid (RGB uint8 HWC); ``seen``: where
    a sees b's pixels (float32 HW 0..1, ``Va_b``); ``residual``: the carried source's residual there (float32 HW,
    levels 0..255, ``Ra_b``). Returns RGB uint8 HWC (rounded)."""
    g = np.multiply(residual, np.float32(-2.0 / ps.harmonize_residual))
    g += np.float32(2.0)
    np.clip(g, np.float32(0), np.float32(1), out=g)
    g *= seen
    g *= np.float32(ps.harmonize)
    b = key_b.astype(np.float32)
    d = np.subtract(carried_a, b, dtype=np.float32)  # (A - G A) - (K_b - G K_b) = D - G D, D = A - K_b: one blur
    d -= cv2.GaussianBlur(d, (0, 0), ps.harmonize_sigma)
    d *= cv2.merge([g, g, g])
    b += d
    return np.clip(np.rint(b), 0, 255).astype(np.uint8)


def _residual(greys: list[np.ndarray], k: int, t: int, f: np.ndarray, grid: _Grid, tag: str = "",
              scale: float = 1.0) -> np.ndarray:
    """Blurred (sigma 2 px of the full-size frame: ``2 scale`` on frames ``scale`` times its size)
    |grey(warp(S_k, f)) - grey(S_t)|, levels 0..255, float32 HW: how well the flow ``f`` (t -> k) explains source
    frame t from the keyframe's source frame. In the grid's scratch array ``"res_r" + tag`` (valid until the next
    call with that tag)."""
    warped = grid.remap(greys[k], grid.map(f, grid.buf("warp_map", 2)), out=grid.buf("res_w8", dtype=np.uint8))
    d = grid.buf("res_d")
    np.copyto(d, warped)
    np.subtract(d, greys[t], out=d)
    return cv2.GaussianBlur(np.abs(d, out=d), (0, 0), 2.0 * scale, dst=grid.buf("res_r" + tag))


def _rescue(valid: np.ndarray, resid: np.ndarray, thr: float, out: np.ndarray | None = None) -> np.ndarray:
    """``max(valid, clip(2 - 2 resid / thr, 0, 1))``: a pixel the forward-backward check drops is still seen
    where the warp explains the source well (residual below thr/2 levels: 1, fading out at thr). ``out``: where
    to write it (not ``valid``, which is kept)."""
    r = np.multiply(resid, np.float32(-2.0 / thr), out=out)
    r += np.float32(2.0)
    np.clip(r, np.float32(0), np.float32(1), out=r)
    return np.maximum(valid, r, out=r)


def fill_unseen(frame: np.ndarray, unseen: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The propagated frame (RGB uint8) with its unseen pixels taken from the source (a new array)."""
    out = frame.copy()
    if unseen.any():
        cv2.copyTo(np.ascontiguousarray(source), np.ascontiguousarray(unseen).view(np.uint8), out)  # out[unseen] = source[unseen]
    return out


STYLE_SIGMA = 12.0
"""Pixels: how far :func:`fill_styled` reaches for the style shift of the seen pixels around a hole."""


def mean_rgb(img: np.ndarray) -> np.ndarray:
    """Per-channel mean (float64, 0..255) of an RGB uint8 HWC image: OpenCV's sum (exact for uint8) over the pixel
    count, the same numbers as numpy's float64 mean at a small fraction of its time."""
    return np.asarray(cv2.sumElems(np.ascontiguousarray(img))[:3], dtype=np.float64) / (img.shape[0] * img.shape[1])


def guard_colour(frame: np.ndarray, source: np.ndarray, offset_a: np.ndarray, offset_b: np.ndarray, tau: float,
                 guard: float) -> np.ndarray:
    """A propagated frame (RGB uint8 HWC) kept within ``guard`` levels of its keyframes' colour: with the keyframes'
    offsets ``o_k = mean(K_k) - mean(S_k)`` per RGB channel (0..255) and ``tau = (t - a) / (b - a)``::

        d   = (1 - tau) o_a + tau o_b - (mean(P_t) - mean(S_t))        how far the frame's colour has strayed
        out = P_t + sign(d) max(0, |d| - guard)                        per channel, clipped, rounded

    A frame whose colour keeps to its keyframes' (|d| <= guard: nearly all) is returned as it is. One that strays,
    e.g. the frames before a keyframe after a step of the camera's exposure (box.mp4's frames 141-145 at 12 fps
    cross-faded 8 levels darker toward keyframe 146, rendered after a step of -9 levels, then popped back), is moved
    back by what exceeds the guard."""
    d = (1.0 - tau) * offset_a + tau * offset_b - (mean_rgb(frame) - mean_rgb(source))
    shift = np.sign(d) * np.maximum(0.0, np.abs(d) - guard)
    if not shift.any():
        return frame
    return to_uint8_255(frame.astype(np.float32) + shift.astype(np.float32))


def fill_styled(frame: np.ndarray, unseen: np.ndarray, source: np.ndarray, sigma: float = STYLE_SIGMA) -> np.ndarray:
    """The propagated frame (RGB uint8 HWC) with its unseen pixels taken from the source *shifted by the style of
    the seen pixels around them* (a new array), so a revealed area is not a patch of unstyled source that jumps
    when a keyframe reaches it. With ``V`` = 1 where seen, ``X`` the propagated frame and ``S`` the source (levels
    0..255, per channel), ``G`` a Gaussian of ``sigma`` pixels (applied at 1/4 size, bilinear back)::

        D    = G * (V (X - S)) / G * V            the style shift around each pixel (normalised convolution)
        c    = clip(4 G * V, 0, 1)                 how much seen area there is around it
        fill = clip(S + c D, 0, 255), rounded      where unseen; X elsewhere

    Far from any seen pixel (``c`` -> 0) it is the source, as :func:`fill_unseen`. Measured in jobs
    (helpers/bench_consistency.py, docs/CONSISTENCY.md, "Propagation under fast motion"): bikes.mp4, whose propagated frames
    have the most unseen pixels, 2.16x -> 1.33x the floor under DIS medium."""
    out = fill_unseen(frame, unseen, source)  # V (X - S) below is then X - S: 0 where unseen
    if not unseen.any():
        return out
    h, w = unseen.shape
    sw, sh = max(1, w // 4), max(1, h // 4)
    work = _fill_work()
    source = np.ascontiguousarray(source)
    unseen8 = np.ascontiguousarray(unseen).view(np.uint8)
    shift = cv2.subtract(out, source, dst=work.get("fill_shift", out.shape), dtype=cv2.CV_32F)
    d = cv2.GaussianBlur(cv2.resize(shift, (sw, sh), interpolation=cv2.INTER_AREA), (0, 0), sigma / 4)
    seen_f = work.get("fill_seen_f", (h, w))
    np.copyto(seen_f, np.logical_not(unseen, out=work.get("fill_seen", (h, w), np.bool_)))
    v = cv2.GaussianBlur(cv2.resize(seen_f, (sw, sh), interpolation=cv2.INTER_AREA), (0, 0), sigma / 4)
    d /= np.maximum(v, np.float32(1e-3))[..., None]  # D, at 1/4 size
    d *= np.clip(v * np.float32(4), np.float32(0), np.float32(1))[..., None]  # c D
    d = cv2.resize(d, (w, h), dst=shift, interpolation=cv2.INTER_LINEAR)
    d = cv2.add(d, source, dst=d, dtype=cv2.CV_32F)
    styled = cv2.convertScaleAbs(np.maximum(d, np.float32(0), out=d),
                                 dst=work.get("fill_styled", out.shape, np.uint8))  # S + c D rounded, 0..255
    cv2.copyTo(styled, unseen8, out)
    return out


_FILL_WORK = threading.local()


def _fill_work() -> flow.WorkArrays:
    """This thread's scratch arrays for :func:`fill_styled` (full-size temporaries are not allocated and
    page-faulted anew per frame)."""
    work = getattr(_FILL_WORK, "work", None)
    if work is None:
        work = _FILL_WORK.work = flow.WorkArrays()
    return work


def suggested_additions(groups: list[dict]) -> list[int]:
    """Keyframes to add in flagged groups: the middle of every gap of at least 2 frames between a group's
    keyframes (and between its last keyframe and its end), so each gap halves."""
    out: list[int] = []
    for g in groups:
        keys = sorted(int(k) for k in g.get("keyframes") or [])
        ends = keys + [int(g["last"]) + 1]
        for a, b in zip(ends, ends[1:]):
            if b - a >= 2:
                out.append((a + b) // 2)
    return sorted(set(out))
