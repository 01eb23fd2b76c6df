"""Single-frame debug mode: render one frame of the video and nothing else.

Users tune sigma max, schedule and denoising strength on one frame before they spend hours on a video.
:func:`render_single_frame` renders frame ``k`` of the processed range with the job's own stages
(:func:`lib_vid2vid.stages.build_stages`) and the frame loop's own per-frame code
(``pipeline.Run._render_frame``: seed, request, stage ``prepare``, render, batch blend, stage ``correct``),
so what it shows is what the video job renders for that frame. It decodes only the frames it needs
(``video_decode.iter_frames(first_index=...)``), keeps everything in memory and writes nothing unless
``out_dir`` is given; it never creates or touches a job folder. Sweeps (:mod:`.debug_sweep`) and the FDC
debugger (:mod:`.debug_fdc`) are built on :func:`render_single_frame`.

Frames that depend on the previous output
-----------------------------------------
A video frame may depend on the output of the frame before it (init modes flow_warp / previous_output /
temporal_merge, FDC, the motion mask as delta/spatial/inpaint mask), so on the whole chain back to frame 0.
The debug render does not render that whole chain by default; it renders a short *warm-up*:

* ``warmup`` frames before ``k`` are rendered first, in order, the first of them as if it started the
  video (no previous output), and each hands its output to the next, as the loop does. The default is 1
  when the settings read the previous output (so frame k sees a real stylised previous frame, rendered
  from the source of k-1) and 0 otherwise (one render).
* With colour coherence, frame 0 of each pass is rendered too: it is the colour reference the video uses,
  and frame 0 never depends on a previous output, so the reference is exact.
* With loopback passes, pass p renders the frames pass p+1 reads (the window of ``before``/``after``
  neighbours around its frames), each pass with the same warm-up rule.

The result says whether it is **exact** (byte-equal to the video's frame k): true when the settings are
stateless (:func:`reads_previous_output` is false; every frame then renders alone, as in the video), or
every chain it depends on starts at frame 0 (``k <= warmup``, in every pass), and every frame a stage read
back (e.g. the colour reference) is itself exact. Pass ``warmup=k`` for an exact render of a stateful frame
(k + 1 renders per pass). ``DebugResult.note`` says which case applies. Side files a stage writes (the
mask PNGs) go to a scratch folder deleted after the render; ``save_each_pass`` is off for debug renders.

Frame by time
-------------
``time_s`` is seconds into the processed range (0 = the ``start`` setting). The frame shown at that time
is ``floor(time_s * fps)``, with a tolerance of 1e-6 frame so that a time computed in floating point as
``k / fps`` (e.g. 5 / 24 s at 24 fps) picks frame k and not k - 1.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import video_decode, video_probe
from .errors import SettingsError, Vid2VidError
from .imaging import to_uint8
from .params import Settings
from .pipeline import FrameContext, JobPlan, Run, batch_mean, fit_size, make_plan, resolve_seed
from .renderer import Renderer, RenderRequest

DEBUG_DIR = "debug"
"""Sub-folder of the output folder the CLI writes debug images into."""
TIME_TOLERANCE = 1e-6
"""Frames: tolerance of the time -> frame rounding (see the module docstring)."""


# ---------------------------------------------------------------- results

@dataclass
class DebugResult:
    """One debug render of frame ``frame``. Images are RGB uint8 HWC at the output size; mask float32 HW."""

    frame: int
    time_s: float
    """Seconds into the processed range: ``frame / fps``."""
    settings: Settings
    """The settings used (seed resolved)."""
    seed: int
    """The seed the request carried (after the seed mode)."""
    init: np.ndarray
    """The init image handed to the renderer."""
    mask: np.ndarray | None
    """The inpaint mask handed to the renderer (1 = may change), None = whole frame."""
    rendered: np.ndarray
    """What the renderer returned (the batch mean when it returned several images), before correction."""
    output: np.ndarray
    """The corrected frame: what the video job writes for this frame."""
    sigmas: list[float] | None
    """The img2img tail the host samples (``sigmas.img2img_tail``), None for the host's own schedule."""
    sigmas_text: str
    """``sigmas.describe(sigmas)``, e.g. "10 steps: 1.00 0.80 ... 0"."""
    warning: str | None
    """The sampler's warning about the sigma override (``sigmas.override_warning``), if any."""
    exact: bool
    """True when ``output`` is byte-equal to what the video job renders for this frame."""
    note: str
    """Why the result is (or is not) exact, and how many frames were rendered."""
    renders: int
    """Renderer calls made (warm-up frames included)."""
    combined_mask: np.ndarray | None = None
    """The combined mask the stages computed for this frame (float32 HW, 1 = may change; motion, colour
    key, user and depth masks), whatever ``mask_usage`` does with it; None without masks."""
    log: list[str] = field(default_factory=list)
    """Messages the stages logged (e.g. sampler warnings)."""
    paths: dict[str, Path] = field(default_factory=dict)
    """Files written when ``out_dir`` was given: output, init, raw, mask, sigmas."""


# ---------------------------------------------------------------- helpers the loop needs

class _MemoryJob:
    """Stands in for :class:`lib_vid2vid.workspace.Job`: manifest and frames in memory, log lines in a
    list. Side files a stage insists on writing (``stage_dir``/``frame_path``) go to a scratch folder that
    is deleted after the render; no job folder is created or touched."""

    def __init__(self, settings: Settings, seed: int, input_path: str, scratch: Path):
        self.root = scratch
        """A temporary folder (deleted after the render) for stages that write side files, e.g. masks."""
        self.manifest: dict[str, Any] = {
            "settings": settings.to_dict(), "resolved_seed": seed, "source_file": {"path": input_path},
            "stages": {}, "frames": {},
        }
        if settings.sampling.variation_seed >= 0:
            self.manifest["resolved_variation_seed"] = settings.sampling.variation_seed
        self.frames: dict[tuple[str, int], np.ndarray] = {}
        self.exact: dict[tuple[str, int], bool] = {}
        self.messages: list[str] = []
        self.reads: list[tuple[str, int]] = []

    def log(self, message: str, *, warning: bool = False) -> None:
        self.messages.append(("warning: " if warning else "") + str(message))

    def read_frame(self, stage: str, index: int) -> np.ndarray:
        key = (stage, index)
        if key not in self.frames:
            raise Vid2VidError(f"The single-frame render does not compute frame {index} of {stage}, which a "
                               f"stage needs: render the video instead, or a lower frame")
        self.reads.append(key)
        return self.frames[key]

    def write_frame(self, stage: str, index: int, rgb: np.ndarray, record: dict | None = None, **_: Any) -> None:
        self.frames[(stage, index)] = rgb

    def stage_dir(self, stage: str) -> Path:
        d = self.root / "frames" / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    def frame_path(self, stage: str, index: int) -> Path:
        return self.stage_dir(stage) / f"{index:06d}.png"

    def frames_done(self, stage: str) -> int:
        n = 0
        while (stage, n) in self.frames:
            n += 1
        return n

    def save(self) -> None: ...

    def editing(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def close(self) -> None: ...


class _Recorder:
    """Renderer wrapper that keeps the last request and its images."""

    def __init__(self, inner: Renderer):
        self.inner = inner
        self.calls = 0
        self.request: RenderRequest | None = None
        self.images: list[np.ndarray] = []

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        images = list(self.inner.render(request))
        self.calls += 1
        self.request, self.images = request, images
        return images


def reads_previous_output(settings: Settings) -> bool:
    """True when the settings make a frame depend on the previous output of its pass: init modes flow_warp,
    previous_output and temporal_merge (init_strength > 0), FDC, and any mask (delta/spatial masks scale the
    change from the previous output, an inpaint mask keeps it outside the mask). The default warm-up is then
    1, and a render whose chain does not start at frame 0 is reported approximate. Keep this in step with
    :func:`lib_vid2vid.stages.build_stages`."""
    c, t = settings.correction, settings.temporal
    any_mask = c.motion_mask or c.colour_key or c.user_mask_kind != "none" or c.depth_mask
    return ((t.init_mode in ("flow_warp", "previous_output", "temporal_merge") and t.init_strength > 0)
            or c.fdc_mode != "none" or any_mask)


def frame_at_time(time_s: float, fps: Fraction, total: int) -> int:
    """Index of the frame shown ``time_s`` seconds into the processed range: ``floor(time_s * fps)``."""
    t = float(time_s)
    if not math.isfinite(t) or t < 0:
        raise SettingsError("debug_time", f"{time_s!r} s: give a time of 0 or more seconds")
    k = math.floor(t * float(fps) + TIME_TOLERANCE)
    if k >= total:
        raise SettingsError("debug_time", f"{t:g} s is past the processed range ({total / float(fps):.3f} s, "
                                          f"{total} frames): pick an earlier time")
    return k


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def render_plan(k: int, warmup: int, passes: int, before: int, after: int, total: int,
                colour_reference: bool) -> list[list[tuple[int, int]]]:
    """Per pass, the contiguous frame ranges (first, last) to render, in order, for frame ``k`` of the last
    pass. Each range is a chain started with no previous output (see the module docstring)."""
    plan: list[list[tuple[int, int]]] = [[] for _ in range(passes)]
    need = [(max(0, k - warmup), k)]
    for p in reversed(range(passes)):
        if colour_reference:
            need = need + [(0, 0)]
        plan[p] = _merge(need)
        need = [(max(0, a - before), min(total - 1, b + after)) for a, b in plan[p]]
    return plan


class SourceFrames:
    """Decoded source frames of one plan (RGB uint8 at output size), decoded on demand and cached."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.video.input
        self.info = video_probe.probe(self.path)
        self.plan: JobPlan = make_plan(settings, self.info)
        self.frames: dict[int, np.ndarray] = {}

    def same_video(self, settings: Settings) -> bool:
        return self.settings.video == settings.video

    def ensure(self, indices: Iterable[int]) -> None:
        missing = sorted(set(indices) - set(self.frames))
        if not missing:
            return
        p, v = self.plan, self.settings.video
        for a, b in _merge((i, i) for i in missing):
            frames = video_decode.iter_frames(self.path, fps=p.fps if v.fps else None, start=p.start,
                                              end=p.end, size=(p.width, p.height), resize_mode=v.resize_mode,
                                              first_index=a, info=self.info)
            try:
                for idx, rgb in frames:
                    if idx > b:
                        break
                    self.frames[idx] = rgb
            finally:
                frames.close()
            if b not in self.frames:
                raise Vid2VidError(f"The video ended before frame {b}: check start/end, or pick a lower frame")


def _context(job: _MemoryJob, source: SourceFrames, run: Run, loop: int, i: int) -> tuple[FrameContext, bool]:
    """Frame i's context as the loop builds it (neighbours ``i - before .. i + after`` inside the range), and
    whether its inputs are exact (pass > 0 reads the previous pass's outputs)."""
    total = run.plan.total
    prev_stage = Run.stage_name(loop - 1) if loop else None
    exact = True
    neigh = {}
    for j in range(max(0, i - run.before), min(total - 1, i + run.after) + 1):
        if prev_stage is None:
            inp = source.frames[j]
        else:
            inp = job.frames[(prev_stage, j)]
            exact &= job.exact[(prev_stage, j)]
        neigh[j - i] = (inp, source.frames[j])
    ctx = FrameContext(index=i, loop=loop, total=total, fps=run.plan.fps, frame=neigh[0][0], video=neigh[0][1],
                       neighbours=neigh)
    return ctx, exact


# ---------------------------------------------------------------- single frame

def resolved_seeds(settings: Settings) -> Settings:
    """``settings`` with a random seed (-1) and a random variation seed resolved to fixed ones."""
    s = settings.sampling
    changes: dict[str, Any] = {}
    if s.seed < 0:
        changes["seed"] = resolve_seed(s.seed)
    if s.seed_mode == "fixed_variation" and s.variation_seed < 0:
        changes["variation_seed"] = resolve_seed(s.variation_seed)
    return settings.replace(**changes) if changes else settings


def pick_frame(plan: JobPlan, frame: int | None, time_s: float | None, default: int) -> int:
    """The frame index asked for by ``frame`` or ``time_s`` (seconds; not both), else ``default``, checked."""
    if frame is not None and time_s is not None:
        raise SettingsError("debug_frame", "give a frame index or a time, not both")
    if time_s is not None:
        return frame_at_time(time_s, plan.fps, plan.total)
    k = default if frame is None else frame
    if isinstance(k, bool) or int(k) != k or k < 0 or k >= plan.total:
        raise SettingsError("debug_frame", f"{k!r} is outside the processed range: pick a frame from 0 to "
                                           f"{plan.total - 1}")
    return int(k)


def render_single_frame(settings: Settings, renderer: Renderer, *, frame: int | None = None,
                        time_s: float | None = None, out_dir: str | Path | None = None,
                        warmup: int | None = None, _source: SourceFrames | None = None) -> DebugResult:
    """Render frame ``frame`` (index in the processed range) or the frame at ``time_s`` seconds into it.

    Neither given: ``settings.preview.preview_frame``. ``warmup``: frames before it rendered first (default
    1 when the settings read the previous output, else 0; see the module docstring). A seed of -1 is
    resolved once here and reported in ``result.settings``. Writes PNGs only when ``out_dir`` is given
    (:func:`save_debug_frame`).
    """
    from . import sigmas as sg
    from .stages import build_stages

    settings = resolved_seeds(settings)
    source = _source if _source is not None and _source.same_video(settings) else SourceFrames(settings)
    plan = source.plan
    k = pick_frame(plan, frame, time_s, settings.preview.preview_frame)
    if warmup is None:
        warmup = 1 if reads_previous_output(settings) else 0
    if isinstance(warmup, bool) or int(warmup) != warmup or warmup < 0:
        raise SettingsError("warmup", f"{warmup!r}: give 0 or more frames")

    stateful = reads_previous_output(settings)
    # save_each_pass only encodes videos of finished passes: no part of a single-frame render
    run_settings = settings.replace(save_each_pass=False) if settings.temporal.save_each_pass else settings
    last: tuple[RenderRequest, list[np.ndarray], dict[str, Any]] | None = None
    with tempfile.TemporaryDirectory(prefix="vid2vid-debug-") as scratch:
        job = _MemoryJob(run_settings, settings.sampling.seed, settings.video.input, Path(scratch))
        recorder = _Recorder(renderer)
        stages = build_stages(run_settings, job)  # type: ignore[arg-type]
        run = Run(job, run_settings, plan, recorder, stages)  # type: ignore[arg-type]
        passes = run.passes
        ranges = render_plan(k, int(warmup), passes, run.before, run.after, plan.total,
                             settings.temporal.colour_coherence)
        source.ensure(j for a, b in ranges[0]
                      for j in range(max(0, a - run.before), min(plan.total, b + run.after + 1)))
        for stage in stages:
            stage.begin(run)
        try:
            for loop in range(passes):
                for a, b in ranges[loop]:
                    prev_output, prev_exact = None, True
                    for i in range(a, b + 1):
                        ctx, exact = _context(job, source, run, loop, i)
                        for stage in stages:
                            stage.analyse(ctx)
                        ctx.prev_output = prev_output
                        job.reads.clear()
                        out, record = run._render_frame(ctx)  # the loop's own per-frame code
                        if stateful and i > 0:
                            exact &= prev_output is not None and prev_exact
                        exact &= all(job.exact[key] for key in job.reads)
                        job.write_frame(Run.stage_name(loop), i, out, record)
                        job.exact[(Run.stage_name(loop), i)] = exact
                        prev_output, prev_exact = out, exact
                        if loop == passes - 1 and i == k:
                            assert recorder.request is not None
                            last = (recorder.request, recorder.images, ctx.analysis)
        finally:
            for stage in stages:
                stage.end(run)
    assert last is not None
    req, images, analysis = last
    s = settings.sampling
    sampler = req.extra.get("sampler", s.sampler)
    used = None
    if req.sigmas is not None:
        used = sg.img2img_tail(req.sigmas, req.steps, req.denoise,
                               discard_penultimate=sg.discards_penultimate(sampler))
    if len(images) == 1:
        rendered = fit_size(images[0], plan.width, plan.height)
    else:
        rendered = to_uint8(batch_mean(images, plan.width, plan.height))
    exact = job.exact[(Run.stage_name(passes - 1), k)]
    renders = recorder.calls
    if exact:
        note = (f"exact: equals frame {k} of the video ({renders} render{'s' if renders != 1 else ''})")
    else:
        note = (f"approximate: frame {k} depends on the previous outputs back to frame 0, and the warm-up of "
                f"{warmup} frame(s) started that chain at frame {ranges[-1][-1][0]} as if the video began there; "
                f"use warmup={k} for the exact frame ({renders} renders)")
    result = DebugResult(
        frame=k, time_s=k / float(plan.fps), settings=settings, seed=req.seed, init=req.init, mask=req.mask,
        rendered=rendered, output=job.frames[(Run.stage_name(passes - 1), k)], sigmas=used,
        sigmas_text=sg.describe(used), warning=sg.override_warning(sampler, s.sigma_schedule), exact=exact,
        note=note, renders=renders, log=list(job.messages), combined_mask=analysis.get("mask"),
    )
    if out_dir is not None:
        result.paths = save_debug_frame(result, out_dir)
    return result


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write RGB uint8 ``image`` as a PNG atomically; returns ``path``."""
    from .workspace import atomic_write_bytes, encode_png

    atomic_write_bytes(path, encode_png(image))
    return path


def prepare_dir(out_dir: str | Path) -> Path:
    """Create the debug output folder, or a one-line error saying to choose a writable one."""
    d = Path(out_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Vid2VidError(f"Cannot create the debug folder {d} ({exc.strerror or exc}): choose an output "
                           f"folder you can write to") from None
    return d


def save_debug_frame(result: DebugResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``debug_frame_NNNNNN.png`` (the output) and ``_init``, ``_raw`` (before correction), ``_mask``
    (8-bit grey, white = may change; only with a mask) and ``_sigmas`` (plot; only with an override)."""
    from .plot import plot_schedules

    d = prepare_dir(out_dir)
    stem = f"debug_frame_{result.frame:06d}"
    paths = {"output": write_png(d / f"{stem}.png", result.output),
             "init": write_png(d / f"{stem}_init.png", result.init),
             "raw": write_png(d / f"{stem}_raw.png", result.rendered)}
    if result.mask is not None:
        grey = np.clip(np.asarray(result.mask, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        paths["mask"] = write_png(d / f"{stem}_mask.png", np.repeat(grey[..., None], 3, axis=2))
    if result.sigmas is not None:
        plot = plot_schedules({result.settings.sampling.sigma_schedule: result.sigmas},
                              title=f"sigmas used at frame {result.frame}: {result.sigmas_text}")
        paths["sigmas"] = write_png(d / f"{stem}_sigmas.png", plot)
    return paths
