"""Consistency benchmark: every temporal strategy on real clips -> warp error, flicker, fidelity.

    python helpers/bench_consistency.py -o consistency.png        # all clips, ~3-4 minutes on 2 cores
    python helpers/bench_consistency.py --clips cup.mp4 --frames 24 --workers 2
    python helpers/bench_consistency.py --judge-flow dis:medium,farneback,dis:fast:0.05:1   # three judges side by side

What runs. Each clip of ``../shared/media`` (cup.mp4, box.mp4, Megamind.avi, bikes.mp4,
carphone_pristine.mp4; ``--clips`` picks some) is decoded from its start at ``--fps`` (12) for
``--frames`` (48) frames, i.e. 4 seconds, resized to ``--width`` (384) pixels wide with the height from
the aspect ratio (multiple of 8). Each strategy of :data:`lib_vid2vid.params.STRATEGIES` -- read when the
benchmark runs, so a new preset joins the table without editing this file -- and, as ``<name>+warped``, the
strategies named by ``--warped`` (default fixed_seed and per_frame) with ``noise_mode=warped`` (the noise
carried along the source's flow, lib_vid2vid/noise.py), is applied on top of the default settings and run as a full job through :func:`lib_vid2vid.pipeline.run_job` in a temporary job
folder (deleted afterwards). Every job gets the same size, rate, frame count, seed (1) and denoising
strength (``--denoise``, 0.45); a preset that sets one of these has that value overridden (a note is
printed), so the methods differ only in how they build, correct and blend frames.

The renderer is :class:`lib_vid2vid.proxy.ProxyRenderer`, a model-free imitation of img2img that is
deterministic and fast on a CPU. For an init image ``x`` (float 0..1), denoising strength ``d``, seed ``s``::

    style(x) = posterised (6 levels), edge-darkened 5x5 box blur of x      (the "restyle": same init, same style)
    n(s)     = N(0, 1) noise drawn at 1/8 resolution from seed s and upsampled bicubically
               (spatially correlated "detail" that depends only on the seed, like diffusion's texture)
    out      = (1 - d) * x + d * clip(style(x) + 0.12 * n(s), 0, 1)

An incrementing seed gives new detail every frame (flicker); a fixed seed gives the same detail pattern
at the same screen position while the content moves (texture sticking) -- the two failure modes of
per-frame img2img. With warped noise ``n(s)`` is replaced by the job's warped latent field upsampled the same
way, so the detail moves with the content. A batch averages images drawn with seeds s, s+1, ...; an inpaint mask keeps the init
outside it. No diffusion model runs, so the numbers compare the temporal machinery, not a checkpoint.

Metrics. :func:`lib_vid2vid.report.report` -- the same report every finished job gets, but counting the pairs
across scene cuts too (``cuts=False``, as these figures always have) -- pairs each last-pass frame with its
source frame and runs :class:`lib_vid2vid.metrics.VideoMetrics`:

- warp error: mean squared difference (0..1 pixel units, shown x 1e-3) between each output frame and the
  previous output warped onto it with the *source's* optical flow, over non-occluded pixels (lower = steadier);
- flicker: mean absolute change of output luma (0..1, shown x 1e-3) where the source holds still (lower = steadier);
- fidelity: SSIM of the Sobel edge magnitude of source and output luma (higher = the layout survives; 1 = same
  edges), which also drops for blur and ghosting;
- colour drift: per shot (cuts as the job finds them), the range of mean output luma less mean source luma (0..1,
  shown x 1e-3; lower = the output keeps the source's light; lib_vid2vid.metrics.ColourDriftMeter), the worst shot;
- frames rendered: renderer calls (loopback renders every frame once per pass; keyframes: the keyframes plus
  the light renders of unseen regions, if any);
- the floor: the warp error of the clip's source frames themselves, decoded as the jobs decode them (what flow
  errors, lighting changes and occlusions alone produce); each strategy's warp error is also shown as a
  multiple of its clip's floor.

The judge flow. The warp error and the floor need the source's optical flow, and the keyframe strategies
carry their keyframes along the very flow the job report measures with (DIS medium, forward-backward check
alpha 0.01, beta 0.5): a frame warped along flow F scores near zero when judged by F. ``--judge-flow``
names one or more judges, comma-separated, each ``METHOD[:QUALITY[:ALPHA:BETA]]`` (METHOD ``dis`` or
``farneback``, QUALITY ``ultrafast | fast | medium`` as in :func:`lib_vid2vid.flow.compute_flow`; ALPHA and
BETA the forward-backward thresholds of :func:`lib_vid2vid.flow.occlusion_mask`). For a judge J with flow
``F_J`` and thresholds ``(a_J, b_J)``, every clip is measured as (O = output frames, S = source frames, float
0..1 RGB)::

    w_t  = F_J(S_t -> S_{t-1})          M_t = 1 - occlusion_mask(w_t, F_J(S_{t-1} -> S_t), alpha=a_J, beta=b_J)
    E_t  = sum_p M_t(p) * mean_c (O_t(p, c) - warp(O_{t-1}, w_t)(p, c))^2 / sum_p M_t(p)
    E_J  = mean of E_t over the pairs with at least one measured pixel        (warp error under judge J)
    floor_J = E_J with O = S                                                 (the clip's floor under judge J)

and, with BT.601 luma Y (0..1), the motion-compensated flicker: what the output changes from frame to frame
beyond what the source changes, both after following the motion (0 for O = S, and for an output whose
texture moves with the content; a texture stuck to the screen or new detail each frame raises it)::

    D_t(X) = Y(X_t) - warp(Y(X_{t-1}), w_t)
    MCF_t  = sum_p M_t(p) * |D_t(O)(p) - D_t(S)(p)| / sum_p M_t(p)          MCF_J = mean of MCF_t

The default, ``dis:medium:0.01:0.5``, is the job report's own meter (so the figures stay comparable with
earlier ones; the benchmark checks that its number equals the report's); ``farneback`` (OpenCV's
polynomial-expansion flow, an algorithm the strategies never use) is an independent judge. The first judge
is the one of the means table, the equal-fidelity verdict and the plot; every judge gets its own floor
table and a line per keyframe strategy: its largest multiple of the floor over the clips, on how many clips it
renders at most a quarter of the frames, and the clips on which it beats fixed_seed, fdc_vid2vid and every_frame.

The ground truth. Flows disagree where a picture is flat or moves fast, and a keyframe strategy carried along
one of them is judged kindly by it. ``--synthetic`` (all, or names) adds clips whose motion is known exactly
(:mod:`synthetic_motion`: dead-leaves pictures, a camera that pans -- 3 px/frame, or 20 -> 40 px/frame --, zooms
and turns, objects that cross and occlude each other, a cut; written losslessly, FFV1, at the benchmark's size
and rate, so a job decodes exactly the generated frames) and the judge ``truth``: the formulas above with ``w_t``
the generator's exact flow and ``M_t`` its valid mask (occluded, disoccluded and out-of-frame pixels, a 3-pixel
band along every object edge, pairs across a cut excluded). Its floor is the bilinear resampling error of the
source alone (near 0); a restyled output's own detail is resampled too, so its multiples of that floor are large
(the absolute values, x1e-3, compare strategies). On a real clip the truth is unknown: n/a.

    python helpers/bench_consistency.py --synthetic --clips '' --judge-flow dis:medium,farneback,dis:fast:0.05:1

Where the flows agree. On a real clip the judge ``agree[:PX]`` (PX default 1) counts only the pixels whose motion
two unrelated algorithms find alike: ``M_t`` of DIS medium (forward-backward checked as above) times
``|F_DIS(S_t -> S_{t-1}) - F_Farneback(S_t -> S_{t-1})| <= PX``, with ``w_t`` DIS medium's flow. It leaves out
flat areas and fast motion, where any flow is a guess and a texture that moves with the picture is judged by
whichever guess the judge makes; what it keeps, it measures with more confidence, but it measures less of the
frame (each clip's share of pixels measured is printed above its floor table).

"Equal fidelity": a method's mean fidelity over the clips is within ``--tolerance`` (0.02 SSIM) of the
``per_frame`` baseline's, on either side. It is two-sided on purpose: a method that stays closer to the
source than the baseline restyles less, and the extreme -- returning the source unchanged -- would win on
warp error with fidelity 1. Among those methods the one with the lowest mean warp error is marked best.
Means are over clips, each clip weighted equally.

Variants. ``--variant NAME:SETTING=VALUE,...`` (repeatable) adds strategy NAME with those settings changed, as
the method ``NAME+SETTING=VALUE+...``, beside the strategies ``--methods`` names (e.g. a keyframe strategy with
and without one rule, side by side on the same frames and judges)::

    python helpers/bench_consistency.py --methods keyframes_adaptive --variant keyframes_adaptive:keyframe_max_motion=48

A SETTING ``propagation.FIELD`` changes a field of :class:`lib_vid2vid.keyframes.PropagationSettings` instead (how
the frames between keyframes are made; those are not user settings): a benchmark-only switch for comparing
propagation designs on the same jobs, e.g. ``--variant keyframes_adaptive:propagation.pick=residual``.

Cuts. A pair of frames across a scene cut shows two unrelated pictures: no flow explains it, and its warp error
(often 100 times a normal pair's) measures only the two frames' contrast, yet it counts in the mean like any
other pair, for the floor and for every strategy (on bikes.mp4, cut at frame 15, the pair 14-15 is most of the
Farneback and DIS fast means). A judge spelled ``...:nocut`` (e.g. ``farneback:nocut``,
``dis:fast:0.05:1:nocut``) leaves out the pairs across a cut as the jobs find cuts with their default settings
(:class:`lib_vid2vid.scene_cuts.CutDetector`: luma histograms, or the motion test; until December 2026 the histograms
alone, which missed 6 of the 9 cuts of Megamind.avi and bikes.mp4), as ``truth`` does. The default judge counts
them, as the benchmark always has (it measures each job's report with ``cuts=False``; a job's own report leaves
them out since December 2026). A strategy that blends two shots across a cut it missed scores *lower* there than
one that cuts cleanly: the blend brings the second frame of the pair closer to the first.

``-o FILE.png`` draws the means and the per-clip points (warp error against fidelity) with Pillow;
``--json FILE`` writes every number.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import MEDIA, fmt_seconds, format_table, header  # noqa: E402

DEFAULT_CLIPS = ("cup.mp4", "box.mp4", "Megamind.avi", "bikes.mp4", "carphone_pristine.mp4")
BASELINE = "per_frame"
FORCED = ("input", "output_dir", "width", "height", "fps", "start", "end", "max_frames", "seed", "denoise")
"""Settings every job shares; a preset's own value for one of them is overridden."""
METRICS = ("warp_error", "flicker", "fidelity")
DEFAULT_JUDGE = "dis:medium:0.01:0.5"
"""The job report's warp-error meter (lib_vid2vid.metrics.WarpErrorMeter's defaults)."""
TRUTH = "truth"
"""The ground-truth judge: the exact flow and occlusions of a synthetic clip (--synthetic), none on real clips."""
AGREE = "agree"
"""The judge that measures only where two unrelated flows agree: DIS medium's pixels (forward-backward checked)
where Farneback medium's flow is within ``agree_px`` pixels of it (spelling ``agree[:PX][:nocut]``)."""
RIVALS = ("fixed_seed", "fdc_vid2vid", "every_frame")
"""What a keyframe strategy must beat on every clip (issue 14; every_frame was called recommended then)."""
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""BT.601 luma weights (RGB), as lib_vid2vid.metrics.luminance."""


@dataclass(frozen=True)
class Judge:
    """The flow (method, quality) and forward-backward thresholds (alpha, beta) a warp error is judged by."""

    method: str = "dis"
    quality: str = "medium"
    alpha: float = 0.01
    beta: float = 0.5
    skip_cuts: bool = False
    """Leave out the pairs across a scene cut of the source (as the jobs detect cuts by default,
    :class:`lib_vid2vid.scene_cuts.CutDetector`): judge spelling ``...:nocut``. The judge ``truth`` always leaves
    them out."""
    agree_px: float = 1.0
    """Judge ``agree``: the largest distance (pixels) between the DIS and the Farneback flow of a measured pixel."""

    @property
    def name(self) -> str:
        if self.method == TRUTH:
            return TRUTH
        if self.method == AGREE:
            return f"{AGREE}:{self.agree_px:g}" + (":nocut" if self.skip_cuts else "")
        return f"{self.method}:{self.quality}:{self.alpha:g}:{self.beta:g}" + (":nocut" if self.skip_cuts else "")

    def meter(self, truth=None) -> JudgeMeter | TruthMeter:
        """A meter of this judge; ``truth``: the synthetic clip being measured (for the judge ``truth``)."""
        return TruthMeter(self, truth) if self.method == TRUTH else JudgeMeter(self)


class TruthMeter:
    """The warp error and motion-compensated flicker of one synthetic clip under its ground truth (judge
    ``truth``): the formulas of :class:`JudgeMeter` with ``w_t`` the generator's exact flow and ``M_t`` its
    valid mask (helpers/synthetic_motion.py: occluded, disoccluded, out-of-frame pixels, layer edges and pairs
    across a cut excluded). ``clip`` None (a real clip): no value."""

    def __init__(self, judge: Judge, clip=None) -> None:
        self.judge, self.clip = judge, clip
        self._t = 0
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._we: list[float] = []
        self._mcf: list[float] = []

    def update(self, src: np.ndarray, out: np.ndarray) -> None:
        from lib_vid2vid.flow import warp

        t, self._t = self._t, self._t + 1
        if self.clip is None:
            return
        s = src.astype(np.float32) * np.float32(1 / 255)
        o = out.astype(np.float32) * np.float32(1 / 255)
        prev, self._prev = self._prev, (s, o)
        if prev is None:
            return
        w, valid = self.clip.truth(t)
        n = float(valid.sum())
        if n <= 0:
            return
        ps, po = prev
        wo = warp(po, w, border="replicate")
        self._we.append(float(((o - wo) ** 2).mean(axis=2)[valid].mean()))
        d_out = o @ _LUMA - wo @ _LUMA
        d_src = s @ _LUMA - warp(ps, w, border="replicate") @ _LUMA
        self._mcf.append(float(np.abs(d_out - d_src)[valid].mean()))

    value = property(lambda self: sum(self._we) / len(self._we) if self._we else None)
    mc_flicker = property(lambda self: sum(self._mcf) / len(self._mcf) if self._mcf else None)




class JudgeMeter:
    """Warp error and motion-compensated flicker of one video under one judge (formulas in the module
    docstring), fed ``update(src, out)`` in frame order (RGB uint8 HWC, equal sizes). Both come from the same
    two flows per pair; the warp error is :class:`lib_vid2vid.metrics.WarpErrorMeter`'s formula."""

    def __init__(self, judge: Judge) -> None:
        self.judge = judge
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._cut_detector = None
        self._we: list[float] = []
        self._mcf: list[float] = []
        self._cover: list[float] = []
        self.cuts = 0
        """Pairs left out as cuts (``skip_cuts``)."""

    def update(self, src: np.ndarray, out: np.ndarray) -> None:
        from lib_vid2vid.flow import compute_flow, occlusion_mask, warp
        from lib_vid2vid.params import Settings
        from lib_vid2vid.scene_cuts import CutDetector

        s = src.astype(np.float32) * np.float32(1 / 255)
        o = out.astype(np.float32) * np.float32(1 / 255)
        prev, self._prev = self._prev, (s, o)
        cut = False
        if self.judge.skip_cuts:
            if self._cut_detector is None:
                self._cut_detector = CutDetector.of(Settings())
            cut = self._cut_detector.step(src)
        if prev is None:
            return
        if cut:
            self.cuts += 1
            return
        ps, po = prev
        agree = self.judge.method == AGREE
        kw = {"method": "dis" if agree else self.judge.method, "quality": self.judge.quality}
        w = compute_flow(s, ps, **kw)
        valid = 1.0 - occlusion_mask(w, compute_flow(ps, s, **kw), alpha=self.judge.alpha, beta=self.judge.beta)
        if agree:
            other = compute_flow(s, ps, method="farneback", quality=self.judge.quality)
            valid *= np.linalg.norm(w - other, axis=2) <= self.judge.agree_px
        self._cover.append(float(valid.mean()))
        n = float(valid.sum())
        if n <= 0:
            return
        wo = warp(po, w, border="replicate")
        self._we.append(float((((o - wo) ** 2).mean(axis=2) * valid).sum() / n))
        d_out = o @ _LUMA - wo @ _LUMA
        d_src = s @ _LUMA - warp(ps, w, border="replicate") @ _LUMA
        self._mcf.append(float((np.abs(d_out - d_src) * valid).sum() / n))

    @property
    def value(self) -> float | None:
        """The warp error E_J (0..1 pixel units, squared), None before a pair counted."""
        return sum(self._we) / len(self._we) if self._we else None

    @property
    def mc_flicker(self) -> float | None:
        """The motion-compensated flicker MCF_J (0..1 luma), None before a pair counted."""
        return sum(self._mcf) / len(self._mcf) if self._mcf else None

    @property
    def coverage(self) -> float | None:
        """The mean share of the pixels a pair measures (``M_t``'s mean), over the pairs judged."""
        return sum(self._cover) / len(self._cover) if self._cover else None


def parse_judge(text: str) -> Judge:
    """``METHOD[:QUALITY[:ALPHA:BETA]]`` -> Judge; omitted parts keep the report's (medium, 0.01, 0.5).
    Raises ValueError with a one-line message saying what to write."""
    from lib_vid2vid.flow import METHODS, QUALITIES

    parts = [p.strip() for p in text.strip().split(":")]
    hint = ("write METHOD[:QUALITY[:ALPHA:BETA]][:nocut], e.g. farneback or dis:fast:0.02:1:nocut, or truth, or "
            "agree[:PX]")
    if parts == [TRUTH]:
        return Judge(TRUTH, "", 0.0, 0.0)
    skip_cuts = len(parts) > 1 and parts[-1] == "nocut"
    if skip_cuts:
        parts = parts[:-1]
    if parts[0] == AGREE:
        if len(parts) > 2:
            raise ValueError(f"judge flow {text!r}: write agree[:PX][:nocut], e.g. agree:1")
        try:
            px = float(parts[1]) if len(parts) == 2 else 1.0
        except ValueError:
            raise ValueError(f"judge flow {text!r}: PX must be a number of pixels, e.g. agree:1") from None
        if not px > 0:
            raise ValueError(f"judge flow {text!r}: PX must be > 0, e.g. agree:1")
        return Judge(AGREE, skip_cuts=skip_cuts, agree_px=px)
    if len(parts) not in (1, 2, 4) or not parts[0]:
        raise ValueError(f"judge flow {text!r}: {hint}")
    if parts[0] not in METHODS:
        raise ValueError(f"judge flow {text!r}: method must be one of {', '.join(METHODS)}; {hint}")
    if len(parts) >= 2 and parts[1] not in QUALITIES:
        raise ValueError(f"judge flow {text!r}: quality must be one of {', '.join(QUALITIES)}; {hint}")
    kw: dict = {"method": parts[0], "skip_cuts": skip_cuts}
    if len(parts) >= 2:
        kw["quality"] = parts[1]
    if len(parts) == 4:
        try:
            kw["alpha"], kw["beta"] = float(parts[2]), float(parts[3])
        except ValueError:
            raise ValueError(f"judge flow {text!r}: ALPHA and BETA must be numbers; {hint}") from None
        if not (kw["alpha"] >= 0 and kw["beta"] >= 0):
            raise ValueError(f"judge flow {text!r}: ALPHA and BETA must be >= 0; {hint}")
    return Judge(**kw)


def judge_warp_errors(pairs, judges: list[Judge], *, mc_flicker: dict | None = None,
                      truth=None, coverage: dict | None = None) -> dict[str, float | None]:
    """Warp error of a video under each judge (see the docstring), from ``(source, output)`` RGB uint8 HWC
    frame pairs of equal size, in frame order. Returns {judge name: mean E_t, or None if no pair counted};
    ``mc_flicker``, if given, receives {judge name: MCF_J} the same way. ``truth``: the
    :class:`synthetic_motion.SyntheticClip` the frames are, for the judge ``truth`` (None: it gives None)."""
    meters = {j.name: j.meter(truth) for j in judges}
    for src, out in pairs:
        for m in meters.values():
            m.update(src, out)
    if mc_flicker is not None:
        mc_flicker.update({name: m.mc_flicker for name, m in meters.items()})
    if coverage is not None:  # ``coverage`` receives {judge name: mean share of the pixels measured}
        coverage.update({name: getattr(m, "coverage", None) for name, m in meters.items()})
    return {name: m.value for name, m in meters.items()}


def parse_variant(text: str, strategies: dict[str, dict]) -> tuple[str, dict]:
    """``NAME:SETTING=VALUE[,SETTING=VALUE...]`` -> (method name ``NAME+SETTING=VALUE+...``, the preset: strategy
    NAME with those settings). Values are coerced and checked as the settings' own (lib_vid2vid.params). Raises
    ValueError with a one-line message saying what to write."""
    from lib_vid2vid.errors import Vid2VidError
    from lib_vid2vid.params import Settings

    hint = "write NAME:SETTING=VALUE[,SETTING=VALUE...], e.g. keyframes_adaptive:keyframe_max_motion=48"
    name, sep, rest = text.strip().partition(":")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise ValueError(f"variant {text!r}: {hint}")
    if name not in strategies:
        raise ValueError(f"variant {text!r}: unknown strategy {name}; known: {', '.join(strategies)}")
    changes: dict[str, str] = {}
    prop: dict[str, object] = {}
    for part in rest.split(","):
        key, eq, value = (x.strip() for x in part.partition("="))
        if not eq or not key:
            raise ValueError(f"variant {text!r}: {part.strip()!r} is not SETTING=VALUE; {hint}")
        if key in FORCED:
            raise ValueError(f"variant {text!r}: {key} is the same for every job (use the benchmark's own option)")
        if key.startswith(PROPAGATION_PREFIX):
            prop[key[len(PROPAGATION_PREFIX):]] = value
            continue
        changes[key] = value
    try:
        prop = propagation_changes(prop)
    except ValueError as exc:
        raise ValueError(f"variant {text!r}: {exc}") from None
    preset = {**strategies[name], **changes}
    try:
        coerced = Settings().replace(**preset)
    except Vid2VidError as exc:
        raise ValueError(f"variant {text!r}: {exc}") from None
    preset = {**strategies[name], **{k: coerced.get(k) for k in changes}}
    label = name + "".join(f"+{k}={preset[k]:g}" if isinstance(preset[k], float) else f"+{k}={preset[k]}"
                           for k in changes)
    label += "".join(f"+{PROPAGATION_PREFIX}{k}={v:g}" if isinstance(v, float) else f"+{PROPAGATION_PREFIX}{k}={v}"
                     for k, v in prop.items())
    if prop:
        preset[PROPAGATION_KEY] = prop
    return label, preset


PROPAGATION_PREFIX = "propagation."
"""A variant's ``propagation.FIELD=VALUE`` changes a field of :class:`lib_vid2vid.keyframes.PropagationSettings`
(how the frames between keyframes are made; not a user setting): a benchmark-only switch, so propagation designs
can be compared side by side on the same jobs and judges."""
PROPAGATION_KEY = "_propagation"
"""Where a variant's preset carries its PropagationSettings changes ({field: value}); run_one applies them."""


def propagation_changes(raw: dict[str, object]) -> dict[str, object]:
    """{field: text or value} -> {field: value of the field's type}; ValueError for an unknown field."""
    import dataclasses

    from lib_vid2vid.keyframes import PropagationSettings

    defaults = PropagationSettings()
    known = {f.name for f in dataclasses.fields(defaults)}
    out: dict[str, object] = {}
    for key, value in raw.items():
        if key not in known:
            raise ValueError(f"{PROPAGATION_PREFIX}{key}: not a PropagationSettings field; known: {', '.join(sorted(known))}")
        cur = getattr(defaults, key)
        if isinstance(value, str):
            if isinstance(cur, bool):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(f"{PROPAGATION_PREFIX}{key}={value}: write true or false")
                value = value.lower() in ("true", "1")
            else:
                try:
                    value = type(cur)(value)
                except ValueError:
                    raise ValueError(f"{PROPAGATION_PREFIX}{key}={value}: not a {type(cur).__name__}") from None
        out[key] = value
    return out


def source_frames(clip: str | Path, common: dict):
    """The clip's source frames (RGB uint8 HWC), decoded as a job decodes them, in order. ``clip``: a file
    name in MEDIA, or a path."""
    from lib_vid2vid import video
    from lib_vid2vid.loop import make_plan
    from lib_vid2vid.params import Settings

    settings = Settings().replace(**common, input=str(MEDIA / clip))  # MEDIA / an absolute path = that path
    plan = make_plan(settings, video.probe(settings.video.input))
    for i, rgb in video.iter_frames(settings.video.input, fps=plan.fps, start=plan.start, end=plan.end,
                                    size=(plan.width, plan.height)):
        if i >= plan.total:
            break
        yield rgb


def _drift_per_shot(pairs, meter, cuts):
    """The (source, output) pairs as they come, fed to a ColourDriftMeter that starts afresh at each cut the job's
    CutDetector finds (the colour drift is per shot, as in the job report)."""
    prev = None
    for src, out in pairs:
        feats = cuts.features(src)
        if prev is not None and cuts.between(prev, feats):
            meter.restart()
        prev = feats
        meter.update(src, out)
        yield src, out


def run_one(clip: str, method: str, preset: dict, common: dict, tmp_root: str,
            judges: tuple[Judge, ...] = (Judge(),), path: str | None = None, truth=None) -> dict:
    """One job (clip x strategy) with the proxy renderer; returns its report, renderer calls and the warp
    error under each judge (``judged``: {judge name: value}). ``path``: the clip's file when it is not
    ``MEDIA / clip`` (a synthetic clip, whose generator ``truth`` is)."""
    from lib_vid2vid.errors import Vid2VidError
    from lib_vid2vid.metrics import ColourDriftMeter
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import ProxyRenderer
    from lib_vid2vid.report import last_stage, report
    from lib_vid2vid.scene_cuts import CutDetector
    from lib_vid2vid.workspace import Job

    out_dir = Path(tempfile.mkdtemp(prefix="job-", dir=tmp_root))
    row = {"clip": clip, "method": method}
    t0 = time.perf_counter()
    from lib_vid2vid import keyrun

    prop = preset.get(PROPAGATION_KEY) or {}
    made = keyrun.kf.PropagationSettings
    try:
        values = {**{k: v for k, v in preset.items() if k not in FORCED and k != PROPAGATION_KEY}, **common,
                  "input": str(MEDIA / (path or clip)), "output_dir": str(out_dir)}
        settings = Settings().replace(**values)
        renderer = ProxyRenderer()
        if prop:  # the job's keyframe runner makes its PropagationSettings() with these fields changed
            keyrun.kf.PropagationSettings = functools.partial(made, **prop)
        try:
            res = run_job(settings, renderer, new=True)
        finally:
            keyrun.kf.PropagationSettings = made
        if res.status != "done":
            raise Vid2VidError(f"job ended {res.status}: {res.message}")
        rep = report(res.job_dir, max_side=None, write=False, cuts=False)  # every pair, as the figures always were
        row.update({k: rep[k] for k in (*METRICS, "ssim_luma", "frames", "size")})
        row["rendered"] = renderer.calls
        job, stage = Job.open(res.job_dir), last_stage(settings)
        pairs = ((src, job.read_frame(stage, i)) for i, src in enumerate(source_frames(path or clip, common)))
        drift = ColourDriftMeter()
        row["mc_flicker"] = {}
        row["judged"] = judge_warp_errors(_drift_per_shot(pairs, drift, CutDetector.of(settings)), list(judges),
                                          mc_flicker=row["mc_flicker"], truth=truth)
        row["colour_drift"] = drift.value
    except Vid2VidError as exc:
        row["error"] = str(exc)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    row["seconds"] = time.perf_counter() - t0
    return row


def floor_one(clip: str, common: dict, judges: tuple[Judge, ...] = (Judge(),), path: str | None = None,
              truth=None) -> dict:
    """The floor of a clip: the warp error (and flicker) of its source frames themselves, decoded as a job
    decodes them, measured like a job's report (``warp_error``) and under each judge (``judged``). What flow
    errors, lighting and occlusions alone give."""
    from lib_vid2vid.metrics import VideoMetrics

    meter = VideoMetrics(max_side=None)
    frames = list(source_frames(path or clip, common))
    for rgb in frames:
        meter.update(rgb, rgb)
    coverage: dict = {}
    judged = judge_warp_errors(((rgb, rgb) for rgb in frames), list(judges), truth=truth, coverage=coverage)
    return {"clip": clip, "warp_error": meter.warp_error.value, "flicker": meter.flicker.value, "judged": judged,
            "coverage": coverage}


def print_floor_table(rows: list[dict], methods: list[str], clips: list[str], floors: dict[str, dict],
                      judge: str | None = None) -> None:
    """Per clip: the floor, then each strategy's warp error as a multiple of it, its fidelity and renders.
    ``judge``: a judge name (the rows' and floors' ``judged`` values), or None for ``warp_error``."""
    table = []
    for c in clips:
        fl = floors[c]["warp_error"] if judge is None else floors[c]["judged"][judge]
        cells = [c, _f(fl, 1e3)]
        for m in methods:
            r = next(r for r in rows if r["method"] == m and r["clip"] == c)
            if "error" in r or not fl:
                cells.append("error" if "error" in r else "n/a")
                continue
            we = r["warp_error"] if judge is None else r["judged"][judge]
            if judge == TRUTH:  # the floor is near 0: the value itself (x1e-3) says more than the multiple
                cells.append(f"{we * 1e3:.3f} ({we / fl:.0f}x) / {r['fidelity']:.3f} / {r['rendered']}")
                continue
            cells.append(f"{we / fl:.2f}x / {r['fidelity']:.3f} / {r['rendered']}")
        table.append(cells)
    print(format_table(["clip", "floor x1e-3", *methods], table, align="lr" + "r" * len(methods)))


def print_mc_flicker_table(rows: list[dict], methods: list[str], clips: list[str], names: list[str]) -> None:
    """One row per judge and clip (then the judge's mean over clips): each strategy's MCF_J x 1e-3."""
    table = []
    for name in names:
        means: dict[str, list[float]] = {m: [] for m in methods}
        for c in clips:
            cells = [name, c]
            for m in methods:
                r = next(r for r in rows if r["method"] == m and r["clip"] == c)
                v = None if "error" in r else r["mc_flicker"].get(name)
                cells.append(_f(v, 1e3))
                if v is not None:
                    means[m].append(v)
            table.append(cells)
        table.append([name, "**mean**", *(f"**{_f(_mean(means[m]), 1e3)}**" for m in methods)])
    print(format_table(["judge", "clip", *methods], table, align="ll" + "r" * len(methods)))


def keyframe_verdict(rows: list[dict], methods: list[str], clips: list[str], floors: dict[str, dict],
                     judge: str) -> list[str]:
    """Lines for each keyframe strategy under ``judge``: its largest multiple of the floor over the clips,
    and on how many clips its warp error is below each of :data:`RIVALS`' (the default-switch conditions)."""
    lines = []
    by = {(r["method"], r["clip"]): r for r in rows if "error" not in r}
    for m in methods:
        if not m.startswith("keyframes"):
            continue
        ratios = {c: by[(m, c)]["judged"][judge] / floors[c]["judged"][judge] for c in clips
                  if (m, c) in by and floors[c]["judged"][judge]}
        if not ratios:
            continue
        worst = max(ratios, key=ratios.get)
        parts = [f"{m}: at most {ratios[worst]:.2f}x the floor ({worst}); "
                 f"<= 2x on {sum(v <= 2 for v in ratios.values())}/{len(ratios)} clips, "
                 f"<= 1.5x on {sum(v <= 1.5 for v in ratios.values())}/{len(ratios)}"]
        share = {c: by[(m, c)]["rendered"] / by[(m, c)]["frames"] for c in ratios if by[(m, c)].get("frames")}
        if share:
            most = max(share, key=share.get)
            parts.append(f"renders <= 1/4 of the frames on {sum(v <= 0.25 for v in share.values())}/{len(share)} "
                         f"clips (most: {by[(m, most)]['rendered']}/{by[(m, most)]['frames']}, {most})")
        for rival in RIVALS:
            if rival not in methods:
                continue
            both = [c for c in clips if (m, c) in by and (rival, c) in by and by[(m, c)]["judged"][judge] is not None
                    and by[(rival, c)]["judged"][judge] is not None]
            wins = [c for c in both if by[(m, c)]["judged"][judge] < by[(rival, c)]["judged"][judge]]
            losses = [c for c in both if c not in wins]
            parts.append(f"beats {rival} on {len(wins)}/{len(wins) + len(losses)}"
                         + (f" (not on {', '.join(losses)})" if losses else ""))
        lines.append("; ".join(parts))
    return lines


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def summarise(rows: list[dict], methods: list[str], tolerance: float) -> dict:
    """Per-method means over clips, the equal-fidelity threshold and the best method under it."""
    means: dict[str, dict] = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m and "error" not in r]
        means[m] = {k: _mean([r[k] for r in mine]) for k in METRICS}
        means[m]["colour_drift"] = _mean([r.get("colour_drift") for r in mine])
        means[m]["rendered"] = sum(r["rendered"] for r in mine)
        means[m]["clips"] = len(mine)
    base = BASELINE if BASELINE in means and means[BASELINE]["fidelity"] is not None else methods[0]
    threshold = None if means[base]["fidelity"] is None else means[base]["fidelity"] - tolerance
    upper = None if threshold is None else means[base]["fidelity"] + tolerance
    eligible = [m for m in methods if threshold is not None and means[m]["fidelity"] is not None
                and threshold - 1e-12 <= means[m]["fidelity"] <= upper + 1e-12
                and means[m]["warp_error"] is not None]
    best = min(eligible, key=lambda m: means[m]["warp_error"]) if eligible else None
    per_clip_best = {}
    for clip in dict.fromkeys(r["clip"] for r in rows):
        by = {r["method"]: r for r in rows if r["clip"] == clip and "error" not in r}
        if base not in by or by[base]["fidelity"] is None:
            continue
        ok = [m for m, r in by.items() if r["fidelity"] is not None and r["warp_error"] is not None
              and abs(r["fidelity"] - by[base]["fidelity"]) <= tolerance + 1e-12]
        if ok:
            per_clip_best[clip] = min(ok, key=lambda m: by[m]["warp_error"])
    return {"means": means, "baseline": base, "threshold": threshold, "upper": upper, "eligible": eligible,
            "best": best,
            "per_clip_best": per_clip_best}


def _f(v: float | None, scale: float = 1.0, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v * scale, fmt)


def print_table(rows: list[dict], methods: list[str], clips: list[str], summ: dict) -> None:
    table = []
    for m in methods:
        for c in clips:
            r = next(r for r in rows if r["method"] == m and r["clip"] == c)
            if "error" in r:
                table.append([m, c, "error", "", "", "", "", ""])
                continue
            table.append([m, c, _f(r["warp_error"], 1e3), _f(r["flicker"], 1e3), _f(r["fidelity"]),
                          _f(r.get("colour_drift"), 1e3, ".1f"), r["rendered"], ""])
        mm = summ["means"][m]
        mark = []
        if m in summ["eligible"]:
            mark.append("yes")
        elif summ["threshold"] is not None:
            mark.append("no")
        if m == summ["best"]:
            mark.append("BEST")
        if m == summ["baseline"]:
            mark.append("baseline")
        table.append([f"**{m}**", "**mean**", f"**{_f(mm['warp_error'], 1e3)}**", f"**{_f(mm['flicker'], 1e3)}**",
                      f"**{_f(mm['fidelity'])}**", f"**{_f(mm.get('colour_drift'), 1e3, '.1f')}**",
                      f"**{mm['rendered']}**", " ".join(mark)])
    print(format_table(["method", "clip", "warp error x1e-3", "flicker x1e-3", "fidelity (edge SSIM)",
                        "colour drift x1e-3", "frames rendered", "equal fidelity"], table, align="llrrrrrl"))


# ---------------------------------------------------------------- plot (Pillow)

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def _ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-12:
        out.append(round(t, 12))
        t += step
    return out


def plot(rows: list[dict], methods: list[str], summ: dict, path: Path, title: str) -> None:
    """Scatter of warp error (x, 1e-3) against fidelity (y): small dots per clip, big discs for the means,
    the equal-fidelity threshold as a dashed line (the region below it is shaded)."""
    from PIL import Image, ImageDraw, ImageFont

    def font(px: int):
        try:
            return ImageFont.load_default(size=px)
        except TypeError:  # Pillow < 10.1
            return ImageFont.load_default()

    W, H = 1100, 690
    left, right, top, bottom = 80, 300, 70, 70
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    f_small, f_text, f_title = font(13), font(15), font(18)
    pts = [(r["warp_error"] * 1e3, r["fidelity"]) for r in rows
           if "error" not in r and r["warp_error"] is not None and r["fidelity"] is not None]
    if not pts:
        return
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = 0.0, max(xs) * 1.08
    y0, y1 = min(ys) - 0.03, max(ys) + 0.03
    if summ["threshold"] is not None:
        y0 = min(y0, summ["threshold"] - 0.03)
    xt, yt = _ticks(x0, x1), _ticks(y0, y1)
    x0, x1 = min(x0, xt[0]), max(x1, xt[-1])
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (W - left - right),
                H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom))

    if summ["threshold"] is not None:
        _, ty = px(0, summ["threshold"])
        d.rectangle([left, ty, W - right, H - bottom], fill=(244, 244, 244))
    for t in xt:
        x, _ = px(t, y0)
        d.line([x, top, x, H - bottom], fill=(225, 225, 225))
        d.text((x, H - bottom + 6), f"{t:g}", fill="black", font=f_small, anchor="mt")
    for t in yt:
        _, y = px(x0, t)
        d.line([left, y, W - right, y], fill=(225, 225, 225))
        d.text((left - 6, y), f"{t:.2f}", fill="black", font=f_small, anchor="rm")
    d.rectangle([left, top, W - right, H - bottom], outline="black")
    if summ["threshold"] is not None:
        _, ty = px(0, summ["threshold"])
        for xa in range(left, W - right, 12):
            d.line([xa, ty, min(xa + 6, W - right), ty], fill=(90, 90, 90), width=2)
        d.text((W - right - 6, ty - 4), f"equal fidelity: {summ['threshold']:.3f} .. {summ['upper']:.3f}",
               fill=(60, 60, 60), font=f_small, anchor="rb")
        _, tu = px(0, summ["upper"])
        for xa in range(left, W - right, 12):
            d.line([xa, tu, min(xa + 6, W - right), tu], fill=(90, 90, 90), width=2)
    d.text((left + (W - left - right) / 2, H - 22), "warp error (x 1e-3, lower = steadier)", fill="black",
           font=f_text, anchor="mm")
    d.text((12, top - 24), "fidelity: edge SSIM (higher = closer to the source)", fill="black", font=f_text)
    d.text((W / 2, 10), title, fill="black", font=f_title, anchor="mt")
    ly = top + 10
    for k, m in enumerate(methods):
        colour = PALETTE[k % len(PALETTE)]
        for r in rows:
            if r["method"] == m and "error" not in r and r["warp_error"] is not None and r["fidelity"] is not None:
                x, y = px(r["warp_error"] * 1e3, r["fidelity"])
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        mm = summ["means"][m]
        if mm["warp_error"] is not None and mm["fidelity"] is not None:
            x, y = px(mm["warp_error"] * 1e3, mm["fidelity"])
            rad = 9 if m == summ["best"] else 7
            d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=colour, outline="black", width=2)
        label = m + (" (best)" if m == summ["best"] else "") + (" (baseline)" if m == summ["baseline"] else "")
        d.ellipse([W - right + 16, ly - 6, W - right + 28, ly + 6], fill=colour, outline="black")
        d.text((W - right + 36, ly), label, fill="black", font=f_text, anchor="lm")
        ly += 24
    d.text((W - right + 16, ly + 10), "big disc: mean over clips", fill=(80, 80, 80), font=f_small)
    d.text((W - right + 16, ly + 28), "small dot: one clip", fill=(80, 80, 80), font=f_small)
    d.text((W - right + 16, ly + 46), "dashed: the equal-fidelity band", fill=(80, 80, 80), font=f_small)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS),
                    help="comma-separated file names in ../shared/media (default: all five; '' for none)")
    ap.add_argument("--synthetic", nargs="?", const="all", default="",
                    help="also the synthetic clips with known motion (helpers/synthetic_motion.py): 'all' (the "
                         "default when the option is given) or comma-separated names; adds the judge 'truth'")
    ap.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    ap.add_argument("--fps", type=float, default=12.0, help="processing rate, frames per second (default 12)")
    ap.add_argument("--width", type=int, default=384, help="output width in pixels, multiple of 8 (default 384)")
    ap.add_argument("--denoise", type=float, default=0.45, help="denoising strength of every job (default 0.45)")
    ap.add_argument("--tolerance", type=float, default=0.02,
                    help="equal fidelity: mean edge SSIM within this of the baseline's (default 0.02)")
    ap.add_argument("--methods", default="", help="comma-separated strategy names (default: every strategy)")
    ap.add_argument("--warped", default="fixed_seed,per_frame",
                    help="strategies also run with noise_mode=warped (strength 1), as '<name>+warped' "
                         "(default: fixed_seed,per_frame; '' for none)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:SETTING=VALUE,...",
                    help="also run strategy NAME with these settings changed, as 'NAME+SETTING=VALUE...' "
                         "(repeatable; runs whatever --methods says)")
    ap.add_argument("--workers", type=int, default=1, help="jobs run in parallel processes (default 1)")
    ap.add_argument("--judge-flow", default=DEFAULT_JUDGE,
                    help="comma-separated judges of the warp error and the floor, each METHOD[:QUALITY[:ALPHA:BETA]] "
                         f"(default {DEFAULT_JUDGE}, the job report's; e.g. {DEFAULT_JUDGE},farneback). The first "
                         "one is used for the means table and the plot")
    ap.add_argument("-o", "--output", type=Path, help="write the scatter plot to this PNG")
    ap.add_argument("--json", type=Path, help="write every number to this JSON file")
    args = ap.parse_args(argv)

    from lib_vid2vid.params import STRATEGIES, Settings

    strategies = dict(STRATEGIES)
    for name in [w.strip() for w in args.warped.split(",") if w.strip()]:
        if name not in STRATEGIES:
            print(f"error: --warped names unknown strategy {name}; known: {', '.join(STRATEGIES)}", file=sys.stderr)
            return 2
        strategies[f"{name}+warped"] = {**STRATEGIES[name], "noise_mode": "warped", "noise_strength": 1.0}
    methods = [m for m in strategies if not args.methods or m in args.methods.split(",")]
    unknown = [m for m in args.methods.split(",") if m and m not in strategies] if args.methods else []
    if unknown:
        print(f"error: unknown strategy {', '.join(unknown)}; known: {', '.join(strategies)}", file=sys.stderr)
        return 2
    for text in args.variant:
        try:
            name, preset = parse_variant(text, STRATEGIES)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        strategies[name] = preset
        if name not in methods:
            methods.append(name)
    clips = [c.strip() for c in args.clips.split(",") if c.strip()]
    missing = [c for c in clips if not (MEDIA / c).is_file()]
    if missing:
        print(f"error: clip {missing[0]} not found in {MEDIA}: give --clips with files that exist there "
              f"(or set VID2VID_MEDIA to the folder of the sample clips)", file=sys.stderr)
        return 2
    from synthetic_motion import clip_set

    synthetic = clip_set(args.width, args.frames)
    wanted = [c.strip() for c in args.synthetic.split(",") if c.strip()]
    wanted = list(synthetic) if wanted == ["all"] else wanted
    unknown_syn = [c for c in wanted if c not in synthetic]
    if unknown_syn:
        print(f"error: unknown synthetic clip {unknown_syn[0]}; known: all, {', '.join(synthetic)}", file=sys.stderr)
        return 2
    synthetic = {c: synthetic[c] for c in wanted}
    clips += list(synthetic)
    if not clips:
        print("error: no clip: give --clips or --synthetic", file=sys.stderr)
        return 2
    if synthetic and TRUTH not in args.judge_flow.split(","):
        args.judge_flow += "," + TRUTH

    try:
        judges = tuple(dict.fromkeys(parse_judge(t) for t in args.judge_flow.split(",") if t.strip()))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not judges:
        print(f"error: --judge-flow is empty; give at least one judge, e.g. {DEFAULT_JUDGE}", file=sys.stderr)
        return 2
    names = [j.name for j in judges]
    primary = names[0]

    t_start = time.perf_counter()
    header("Consistency benchmark (proxy img2img renderer; see the docstring)")
    common = {"width": args.width, "height": 0, "fps": args.fps, "start": 0.0, "end": 0.0,
              "max_frames": args.frames, "seed": 1, "denoise": args.denoise}
    print(f"setup: {len(clips)} clips x {len(methods)} strategies; first {args.frames} frames at {args.fps:g} fps, "
          f"width {args.width} px (height from the aspect ratio), denoise {args.denoise:g}, seed 1, "
          f"ProxyRenderer(detail=0.12, levels=6, blur=5)")
    for m in methods:
        overridden = sorted(k for k in strategies[m] if k in FORCED)
        if overridden:
            print(f"note: strategy {m} sets {', '.join(overridden)}; the common value is used instead")
    defaults = Settings().to_dict()
    for m in methods:
        changed = {k: v for k, v in strategies[m].items() if k not in FORCED and defaults.get(k, object()) != v}
        print(f"  {m}: " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "(the defaults)"))
    print("judges of the warp error and the floor: " + ", ".join(names) + f" (means table and plot: {primary})")
    print(flush=True)

    for c, sc in synthetic.items():
        print(f"synthetic clip {c}: {sc.note} ({sc.size[0]}x{sc.size[1]}, {sc.frames} frames, lossless FFV1)")
    tasks = [(c, m, strategies[m], common) for c in clips for m in methods]
    with tempfile.TemporaryDirectory(prefix="vid2vid-bench-") as tmp:
        paths = {c: str(sc.write(Path(tmp) / f"{c}.mkv", fps=args.fps)) for c, sc in synthetic.items()}
        tasks = [(*t, tmp, judges, paths.get(t[0]), synthetic.get(t[0])) for t in tasks]
        if args.workers > 1:
            with ProcessPoolExecutor(args.workers) as pool:
                futures = [pool.submit(run_one, *t) for t in tasks]
                rows = [f.result() for f in futures]
        else:
            rows = []
            for t in tasks:
                rows.append(run_one(*t))
                print(f"  {t[0]:<22} {t[1]:<26} {rows[-1]['seconds']:5.1f} s"  # progress on stderr
                      + (f"  ERROR: {rows[-1]['error']}" if "error" in rows[-1] else ""), file=sys.stderr, flush=True)

        floors = {c: floor_one(c, common, judges, paths.get(c), synthetic.get(c)) for c in clips}
    default = parse_judge(DEFAULT_JUDGE).name
    for r in [*rows, *floors.values()]:  # the default judge must be the report's meter, number for number
        if "error" in r or default not in r["judged"]:
            continue
        a, b = r["warp_error"], r["judged"][default]
        if a is not None and b is not None and abs(a - b) > 1e-5 * max(abs(a), abs(b)):
            print(f"warning: {r['clip']} {r.get('method', 'floor')}: judge {default} gives {b:.6g}, the job report "
                  f"{a:.6g}: the benchmark decodes the source differently from the report")
    if primary != default:  # the means table, the verdict and the plot use the first judge
        for r in [*rows, *floors.values()]:
            if "error" not in r:
                r["report_warp_error"], r["warp_error"] = r["warp_error"], r["judged"][primary]
    summ = summarise(rows, methods, args.tolerance)
    sizes = {r["clip"]: r.get("size") for r in rows if r.get("size")}
    print("measured sizes: " + ", ".join(f"{c} {s[0]}x{s[1]}" for c, s in sizes.items()))
    print()
    print_table(rows, methods, clips, summ)
    print()
    print("Floor: the warp error of each clip's source frames themselves (what flow errors, lighting and occlusions "
          "alone give). Each cell: warp error as a multiple of the floor / fidelity (edge SSIM) / frames rendered.")
    if TRUTH in names:
        print("Judge truth (synthetic clips): each cell is the warp error x1e-3 (its multiple of the floor) / fidelity / "
              "frames rendered; real clips have no truth (n/a).")
    print()
    for name in names:
        print(f"judge {name}:")
        print()
        if name.startswith(AGREE):
            print("pixels measured (the floor's pairs): " + ", ".join(
                f"{c} {floors[c]['coverage'][name]:.0%}" for c in clips
                if floors[c].get("coverage", {}).get(name) is not None))
            print()
        print_floor_table(rows, methods, clips, floors, name)
        print()
        for line in keyframe_verdict(rows, methods, clips, floors, name):
            print("  " + line)
        print()
    print("Motion-compensated flicker x1e-3 (output change beyond the source's, after following the motion; "
          "0 = the source's own; see the docstring), per judge, per clip and the mean over clips:")
    print()
    print_mc_flicker_table(rows, methods, clips, names)
    print()
    base = summ["baseline"]
    if summ["threshold"] is not None:
        print(f"equal fidelity: mean edge SSIM within {args.tolerance:g} of {base}'s "
              f"({summ['means'][base]['fidelity']:.3f}): {summ['threshold']:.3f} .. {summ['upper']:.3f}")
        print(f"methods at equal fidelity: {', '.join(summ['eligible']) or 'none'}")
        print(f"best warp error at equal fidelity: {summ['best'] or 'none'}"
              + (f" ({summ['means'][summ['best']]['warp_error'] * 1e3:.3f}e-3, "
                 f"{summ['means'][base]['warp_error'] / summ['means'][summ['best']]['warp_error']:.1f}x lower than "
                 f"{base})" if summ["best"] and summ["means"][base]["warp_error"] else ""))
        print("best per clip: " + ", ".join(f"{c}: {m}" for c, m in summ["per_clip_best"].items()))
        from lib_vid2vid.params import default_strategy

        default = default_strategy()
        if default in methods:
            verdict = "is" if summ["best"] == default else "is NOT"
            print(f"the default ({default}) {verdict} the best method on warp error at equal fidelity")
    errors = [r for r in rows if "error" in r]
    for r in errors:
        print(f"error: {r['method']} on {r['clip']}: {r['error']}")
    if args.output:
        plot(rows, methods, summ, args.output,
             f"{len(clips)} clips, {args.frames} frames at {args.fps:g} fps, width {args.width}, denoise {args.denoise:g}")
        print(f"plot: {args.output}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                         "floors": floors, "summary": summ}, indent=1))
        print(f"json: {args.json}")
    print(f"total time: {fmt_seconds(time.perf_counter() - t_start)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
