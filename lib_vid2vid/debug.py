"""Single-frame debug mode: render one frame of the video (or a sweep of settings on it) and nothing else.

Users tune sigma max, schedule and denoising strength on one frame before they spend hours on a video.
:func:`render_single_frame` renders frame ``k`` of the processed range with the job's own stages
(:func:`lib_vid2vid.stages.build_stages`) and the frame loop's own per-frame code
(``pipeline.Run._render_frame``: seed, request, stage ``prepare``, render, batch blend, stage ``correct``),
so what it shows is what the video job renders for that frame. It decodes only the frames it needs
(``video.iter_frames(first_index=...)``), keeps everything in memory and writes nothing unless ``out_dir``
is given; it never creates or touches a job folder.

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

Sweeps
------
Grammar of a sweep (:func:`parse_sweep`)::

    sweep  := axis [ SEP axis ]            at most two axes; SEP is " x " (spaces around x) or "×"
    axis   := NAME "=" value { "," value } NAME: a setting name (dashes allowed: sigma-max)
    value  := text without ","             coerced and range-checked by the setting's spec

e.g. ``sigma_schedule=karras,exponential,host`` (one axis: one row of cells) or
``sigma_max=0.5,1,2 x denoise=0.3,0.5,0.7`` (first axis: rows, second axis: columns). Only settings of the
Sampling, Masks & correction and Temporal tabs can be swept (the video range, size, export and job settings
change which frames exist, not how one is rendered). At most :data:`MAX_SWEEP_CELLS` cells.

:func:`run_sweep` renders the frame once per cell (same resolved seed for all cells) and returns one
labelled grid image and a plot of the sigmas each cell really used. Grid layout, in pixels, for frames of
W x H, C columns and R rows (``GAP`` between cells, white background)::

    title bar            y 0 .. TITLE_H                   full width: "frame k (t s) | rows: A | columns: B"
    column labels        y TITLE_H .. TITLE_H + LABEL_H   above each column, the column's value
    row labels           x 0 .. row_w                     left of each row, the row's value (two axes only)
    cell (r, c)          x = row_w + c (W + GAP),  y = TITLE_H + LABEL_H + r (H + GAP)

``row_w`` is 0 for one axis, else the widest row label plus 2 x ``LABEL_PAD`` (at least ``MIN_ROW_W``).
Each cell holds the corrected output exactly (RGB uint8, no resampling). Every label is drawn by
:func:`label_image`, so the label of a cell can be checked pixel for pixel.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import video
from .errors import SettingsError, Vid2VidError
from .imaging import to_uint8
from .params import SPEC_BY_NAME, Settings, check_range, coerce
from .pipeline import FrameContext, JobPlan, Run, batch_mean, fit_size, make_plan, resolve_seed
from .renderer import Renderer, RenderRequest

DEBUG_DIR = "debug"
"""Sub-folder of the output folder the CLI writes debug images into."""
MAX_SWEEP_CELLS = 36
SWEEP_GROUPS = ("sampling", "correction", "temporal")
"""Setting groups a sweep may vary (see the module docstring)."""
_OVERRIDE_ONLY = ("sigma_min", "sigma_max", "rho")
"""Settings that act only through a sigma override (not with sigma_schedule host)."""
TIME_TOLERANCE = 1e-6
"""Frames: tolerance of the time -> frame rounding (see the module docstring)."""

TITLE_H = 24
LABEL_H = 20
GAP = 2
LABEL_PAD = 6
MIN_ROW_W = 40
_BG = (255, 255, 255)
_TEXT = (20, 20, 20)
_FONT_SIZES = (14, 13, 12, 11, 10, 9, 8)


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


@dataclass
class SweepCell:
    """One cell of a sweep grid. Rectangles are (x0, y0, x1, y1) in grid pixels, x1/y1 exclusive."""

    values: dict[str, Any]
    """The settings this cell overrides, in axis order."""
    row: int
    col: int
    rect: tuple[int, int, int, int]
    col_label: str
    col_label_rect: tuple[int, int, int, int]
    row_label: str | None
    row_label_rect: tuple[int, int, int, int] | None
    result: DebugResult

    @property
    def name(self) -> str:
        """``"sigma_max=0.5, denoise=0.3"``: the legend entry of the schedule plot."""
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.values.items())


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


class _Source:
    """Decoded source frames of one plan (RGB uint8 at output size), decoded on demand and cached."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = settings.video.input
        self.info = video.probe(self.path)
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
            frames = video.iter_frames(self.path, fps=p.fps if v.fps else None, start=p.start, end=p.end,
                                       size=(p.width, p.height), resize_mode=v.resize_mode, first_index=a,
                                       info=self.info)
            try:
                for idx, rgb in frames:
                    if idx > b:
                        break
                    self.frames[idx] = rgb
            finally:
                frames.close()
            if b not in self.frames:
                raise Vid2VidError(f"The video ended before frame {b}: check start/end, or pick a lower frame")


def _context(job: _MemoryJob, source: _Source, run: Run, loop: int, i: int) -> tuple[FrameContext, bool]:
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

def _resolved(settings: Settings) -> Settings:
    s = settings.sampling
    changes: dict[str, Any] = {}
    if s.seed < 0:
        changes["seed"] = resolve_seed(s.seed)
    if s.seed_mode == "fixed_variation" and s.variation_seed < 0:
        changes["variation_seed"] = resolve_seed(s.variation_seed)
    return settings.replace(**changes) if changes else settings


def _pick_frame(plan: JobPlan, frame: int | None, time_s: float | None, default: int) -> int:
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
                        warmup: int | None = None, _source: _Source | None = None) -> DebugResult:
    """Render frame ``frame`` (index in the processed range) or the frame at ``time_s`` seconds into it.

    Neither given: ``settings.preview.preview_frame``. ``warmup``: frames before it rendered first (default
    1 when the settings read the previous output, else 0; see the module docstring). A seed of -1 is
    resolved once here and reported in ``result.settings``. Writes PNGs only when ``out_dir`` is given
    (:func:`save_debug_frame`).
    """
    from . import sigmas as sg
    from .stages import build_stages

    settings = _resolved(settings)
    source = _source if _source is not None and _source.same_video(settings) else _Source(settings)
    plan = source.plan
    k = _pick_frame(plan, frame, time_s, settings.preview.preview_frame)
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


def _png(path: Path, image: np.ndarray) -> Path:
    from .workspace import atomic_write_bytes, encode_png

    atomic_write_bytes(path, encode_png(image))
    return path


def _prepare_dir(out_dir: str | Path) -> Path:
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

    d = _prepare_dir(out_dir)
    stem = f"debug_frame_{result.frame:06d}"
    paths = {"output": _png(d / f"{stem}.png", result.output),
             "init": _png(d / f"{stem}_init.png", result.init),
             "raw": _png(d / f"{stem}_raw.png", result.rendered)}
    if result.mask is not None:
        grey = np.clip(np.asarray(result.mask, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        paths["mask"] = _png(d / f"{stem}_mask.png", np.repeat(grey[..., None], 3, axis=2))
    if result.sigmas is not None:
        plot = plot_schedules({result.settings.sampling.sigma_schedule: result.sigmas},
                              title=f"sigmas used at frame {result.frame}: {result.sigmas_text}")
        paths["sigmas"] = _png(d / f"{stem}_sigmas.png", plot)
    return paths


# ---------------------------------------------------------------- sweeps

_SEP = re.compile(r"\s+[xX]\s+|\s*×\s*")


def format_value(value: Any) -> str:
    """Label text of a swept value: numbers with ``:g``, booleans on/off, text as is."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_sweep(text: str) -> list[dict[str, Any]]:
    """The cells of a sweep, row-major: one ``{name: value}`` dict per combination, in axis order.

    Grammar in the module docstring. Raises SettingsError (field "sweep") naming the axis for an unknown
    or unsweepable setting, a bad or out-of-range value, an empty or repeated value, more than two axes,
    the same setting twice, or more than :data:`MAX_SWEEP_CELLS` cells.
    """
    axes = sweep_axes(text)
    names = [n for n, _ in axes]
    return [dict(zip(names, combo)) for combo in itertools.product(*(vals for _, vals in axes))]


def sweep_axes(text: str) -> list[tuple[str, list[Any]]]:
    """The axes of a sweep: ``[(setting name, [values])]``, one or two of them (see :func:`parse_sweep`)."""
    if not isinstance(text, str) or not text.strip():
        raise SettingsError("sweep", "is empty: give e.g. 'sigma_schedule=karras,exponential' or "
                                     "'sigma_max=0.5,1,2 x denoise=0.3,0.5'")
    parts = _SEP.split(text.strip())
    if len(parts) > 2:
        raise SettingsError("sweep", f"{len(parts)} axes in {text.strip()!r}: a sweep has one or two axes "
                                     f"(rows x columns)")
    axes: list[tuple[str, list[Any]]] = []
    for n, part in enumerate(parts, 1):
        if "=" not in part:
            raise SettingsError("sweep", f"axis {n} {part.strip()!r}: write it as name=value1,value2,...")
        raw_name, raw_values = part.split("=", 1)
        name = raw_name.strip().lstrip("-").replace("-", "_")
        spec = SPEC_BY_NAME.get(name)
        if spec is None:
            raise SettingsError("sweep", f"axis {n}: unknown setting {raw_name.strip()!r}; --help lists them")
        if spec.group not in SWEEP_GROUPS:
            raise SettingsError("sweep", f"axis {name}: {name} cannot be swept (it changes which frames are "
                                         f"rendered, not how); sweep a sampling, mask/correction or temporal "
                                         f"setting")
        if any(name == a for a, _ in axes):
            raise SettingsError("sweep", f"axis {name}: the same setting is on both axes; use it once")
        values: list[Any] = []
        for raw in raw_values.split(","):
            if not raw.strip():
                raise SettingsError("sweep", f"axis {name}: empty value in {raw_values.strip()!r}; separate "
                                             f"values with single commas")
            try:
                value = coerce(spec, raw.strip())
                check_range(spec, value)
            except SettingsError as exc:
                raise SettingsError("sweep", f"axis {name}: {exc.args[0].split(': ', 1)[-1]}") from None
            if value in values:
                raise SettingsError("sweep", f"axis {name}: value {raw.strip()!r} is given twice")
            values.append(value)
        axes.append((name, values))
    cells = math.prod(len(v) for _, v in axes)
    if cells > MAX_SWEEP_CELLS:
        raise SettingsError("sweep", f"{cells} cells: at most {MAX_SWEEP_CELLS} (each cell renders the frame "
                                     f"once); use fewer values")
    return axes


def _axes_of_cells(cells: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    if not cells:
        raise SettingsError("sweep", "has no cells")
    names = list(cells[0])
    if not 1 <= len(names) <= 2:
        raise SettingsError("sweep", f"{len(names)} axes: a sweep has one or two axes")
    axes = []
    for n in names:
        vals: list[Any] = []
        for c in cells:
            if list(c) != names:
                raise SettingsError("sweep", "every cell must set the same settings, in the same order")
            if c[n] not in vals:
                vals.append(c[n])
        axes.append((n, vals))
    expected = [dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in axes))]
    if list(cells) != expected:
        raise SettingsError("sweep", "the cells do not form a full grid in row-major order: build them with "
                                     "parse_sweep")
    return axes


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit_text(text: str, width: int) -> tuple[str, Any, tuple[int, int, int, int]]:
    """(shown text, font, bbox): the largest font of ``_FONT_SIZES`` that fits ``width`` pixels, else the
    smallest with the text cut and ended by "..."."""
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for px in _FONT_SIZES:
        font = _font(px)
        box = draw.textbbox((0, 0), text, font=font)
        if box[2] - box[0] <= width:
            return text, font, box
    font = _font(_FONT_SIZES[-1])
    for cut in range(len(text) - 1, 0, -1):
        shown = text[:cut] + "..."
        box = draw.textbbox((0, 0), shown, font=font)
        if box[2] - box[0] <= width:
            return shown, font, box
    return "", font, (0, 0, 0, 0)


def label_image(text: str, width: int, height: int) -> np.ndarray:
    """A label tile: ``text`` centred in a white (height, width) RGB uint8 image, dark text, shrunk to fit."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (int(width), int(height)), _BG)
    shown, font, box = _fit_text(text, int(width) - 4)
    if shown:
        x = (width - (box[2] - box[0])) / 2 - box[0]
        y = (height - (box[3] - box[1])) / 2 - box[1]
        ImageDraw.Draw(img).text((round(x), round(y)), shown, fill=_TEXT, font=font)
    return np.asarray(img, dtype=np.uint8)


def sweep_title(frame: int, time_s: float, axes: Sequence[tuple[str, Sequence[Any]]]) -> str:
    """The grid's title line, e.g. ``"frame 12 (0.500 s) | rows: sigma_max | columns: denoise"``."""
    head = f"frame {frame} ({time_s:.3f} s)"
    if len(axes) == 1:
        return f"{head} | columns: {axes[0][0]}"
    return f"{head} | rows: {axes[0][0]} | columns: {axes[1][0]}"


def _row_width(labels: Sequence[str]) -> int:
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = _font(_FONT_SIZES[0])
    widest = max(draw.textbbox((0, 0), t, font=font)[2] for t in labels)
    return max(MIN_ROW_W, widest + 2 * LABEL_PAD)


def run_sweep(settings: Settings, renderer: Renderer, sweep: str | Sequence[dict[str, Any]], *,
              frame: int | None = None, time_s: float | None = None, out_dir: str | Path | None = None,
              warmup: int | None = None) -> tuple[np.ndarray, np.ndarray, list[SweepCell]]:
    """Render one frame once per sweep cell -> (grid RGB uint8, schedule plot RGB uint8, cells).

    ``sweep``: sweep text or :func:`parse_sweep`'s cells. Every cell is validated against ``settings``
    before anything renders (a bad combination names the cell). The seed is resolved once for all cells.
    With ``out_dir``, writes :func:`save_sweep`'s two PNGs. Nothing of the rest of the video is rendered.
    """
    from .plot import plot_schedules

    cells_values = parse_sweep(sweep) if isinstance(sweep, str) else [dict(c) for c in sweep]
    axes = _axes_of_cells(cells_values)
    for name, _ in axes:
        if SPEC_BY_NAME.get(name) is None or SPEC_BY_NAME[name].group not in SWEEP_GROUPS:
            raise SettingsError("sweep", f"axis {name}: not a setting that can be swept")
    base = _resolved(settings)
    cell_settings = []
    for values in cells_values:
        try:
            cell_settings.append(base.replace(**values))
        except SettingsError as exc:
            label = ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
            raise SettingsError("sweep", f"cell {label}: {exc}") from None
    inert = [n for n, _ in axes if n in _OVERRIDE_ONLY]
    if inert and all(cs.sampling.sigma_schedule == "host" for cs in cell_settings):
        raise SettingsError("sweep", f"axis {inert[0]}: has no effect with sigma_schedule host (the host's own "
                                     f"schedule); set sigma_schedule, e.g. karras, or sweep it too")

    source = _Source(base)
    k = _pick_frame(source.plan, frame, time_s, base.preview.preview_frame)
    results = [render_single_frame(s, renderer, frame=k, warmup=warmup, _source=source) for s in cell_settings]

    w, h = source.plan.width, source.plan.height
    two = len(axes) == 2
    row_vals = axes[0][1] if two else [None]
    col_vals = axes[-1][1]
    row_labels = [format_value(v) for v in row_vals] if two else []
    row_w = _row_width(row_labels) if two else 0
    grid_w = row_w + len(col_vals) * w + (len(col_vals) - 1) * GAP
    grid_h = TITLE_H + LABEL_H + len(row_vals) * h + (len(row_vals) - 1) * GAP
    grid = np.full((grid_h, grid_w, 3), 255, np.uint8)
    title = sweep_title(k, results[0].time_s, axes)
    grid[:TITLE_H] = label_image(title, grid_w, TITLE_H)

    def paste(rect: tuple[int, int, int, int], img: np.ndarray) -> None:
        x0, y0, x1, y1 = rect
        grid[y0:y1, x0:x1] = img

    cells: list[SweepCell] = []
    for n, (values, result) in enumerate(zip(cells_values, results)):
        r, c = divmod(n, len(col_vals))
        x = row_w + c * (w + GAP)
        y = TITLE_H + LABEL_H + r * (h + GAP)
        rect = (x, y, x + w, y + h)
        col_label = format_value(values[axes[-1][0]])
        col_rect = (x, TITLE_H, x + w, TITLE_H + LABEL_H)
        row_label = format_value(values[axes[0][0]]) if two else None
        row_rect = (0, y, row_w, y + h) if two else None
        paste(rect, result.output)
        if r == 0:
            paste(col_rect, label_image(col_label, w, LABEL_H))
        if two and c == 0:
            paste(row_rect, label_image(row_label, row_w, h))
        cells.append(SweepCell(values=values, row=r, col=c, rect=rect, col_label=col_label,
                               col_label_rect=col_rect, row_label=row_label, row_label_rect=row_rect,
                               result=result))

    plot = plot_schedules({cell.name: cell.result.sigmas for cell in cells},
                          size=(640, max(400, 140 + 20 * len(cells))),
                          title=f"img2img sigmas used at frame {k}")
    if out_dir is not None:
        save_sweep(grid, plot, k, out_dir)
    return grid, plot, cells


def sweep_paths(out_dir: str | Path, frame: int) -> tuple[Path, Path]:
    """Where :func:`save_sweep` writes: ``sweep_NNNNNN_grid.png`` and ``sweep_NNNNNN_sigmas.png``."""
    d = Path(out_dir)
    return d / f"sweep_{frame:06d}_grid.png", d / f"sweep_{frame:06d}_sigmas.png"


def save_sweep(grid: np.ndarray, plot: np.ndarray, frame: int, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the sweep grid and the schedule plot (see :func:`sweep_paths`); returns their paths."""
    _prepare_dir(out_dir)
    grid_path, plot_path = sweep_paths(out_dir, frame)
    return _png(grid_path, grid), _png(plot_path, plot)


def preview(settings: Settings, renderer: Renderer, *, out_dir: str | Path | None = None
            ) -> DebugResult | tuple[np.ndarray, np.ndarray, list[SweepCell]]:
    """The UI's preview modes: "frame" -> :func:`render_single_frame` at ``preview_frame``; "sweep" ->
    :func:`run_sweep` of ``preview_sweep`` at ``preview_frame``. Mode "video" is not a preview."""
    p = settings.preview
    if p.preview_mode == "frame":
        return render_single_frame(settings, renderer, frame=p.preview_frame, out_dir=out_dir)
    if p.preview_mode == "sweep":
        return run_sweep(settings, renderer, p.preview_sweep, frame=p.preview_frame, out_dir=out_dir)
    raise SettingsError("preview_mode", "is 'video': choose 'frame' or 'sweep' for a single-frame preview")


# ---------------------------------------------------------------- FDC debugger (UI and API)

def fdc_debug(settings: Settings, renderer: Renderer, *, frame: int) -> tuple[np.ndarray, DebugResult]:
    """The FDC debugger panel of frame ``frame`` (>= 1) with the current settings.

    Renders frame ``frame - 1`` (the previous output A) and then ``frame`` with one warm-up frame, so A and
    the raw/corrected outputs are what a video job starting at ``frame - 1`` would produce. The panel shows
    the source, the source delta, the motion (combined) mask, the depth mask when depth is on, the raw
    output and the corrected output. Returns (panel RGB uint8, the frame's DebugResult).
    """
    from . import masks
    from .debug_panels import fdc_debug_panel

    if frame < 1:
        raise SettingsError("preview_frame", "the FDC debugger needs a previous frame: pick frame 1 or later")
    prev = render_single_frame(settings, renderer, frame=frame - 1, warmup=0)
    cur = render_single_frame(prev.settings, renderer, frame=frame, warmup=1)
    plan_w, plan_h = cur.output.shape[1], cur.output.shape[0]
    v = settings.video
    src = {}
    plan = make_plan(prev.settings, video.probe(v.input))
    for idx, rgb in video.iter_frames(v.input, fps=plan.fps if v.fps else None, start=plan.start, end=plan.end,
                                      size=(plan_w, plan_h), resize_mode=v.resize_mode, first_index=frame - 1):
        src[idx] = rgb
        if idx >= frame:
            break
    c = settings.correction
    motion = cur.combined_mask
    if motion is None:
        motion = masks.motion_mask(src[frame - 1], src[frame], low_cut=c.motion_low_cut,
                                   high_ext=c.motion_high_ext, soft=c.motion_soft)
    panel = fdc_debug_panel(src[frame - 1], src[frame], prev.output, cur.rendered, cur.output, motion,
                            None, titles={"corrected": f"corrected ({c.fdc_mode})"})
    return panel, cur
