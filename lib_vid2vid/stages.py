"""Settings -> the pipeline's stages, and the job's final export.

Order of the stages in a frame (see :mod:`lib_vid2vid.pipeline` for the hooks)::

    SigmaStage          begin: the sigma override (same for every frame), warnings for samplers that ignore it
    InitStage           prepare: the init image (source | temporal blend | flow warp | previous output | merge)
    MotionMaskStage     analyse: motion mask from the source; prepare: inpaint mask when mask_usage = inpaint
    LoopbackStage       correct: out = (1 - alpha) * base + alpha * rendered   (only with loopback passes > 1)
    FdcStage            correct: frame delta correction against the previous output, delta/spatial mask
    ColourStage         correct: LAB statistics matched to the pass's first output frame

Every stage rebuilds its cross-frame state from disk (the previous output is handed in by the loop; the
colour reference is frame 0 of the pass, re-read on resume), so a resumed job is byte-identical.
"""

from __future__ import annotations

import numpy as np

from . import blend, fdc, flow, masks
from .params import Settings, parse_weights
from .pipeline import FrameContext, Run, Stage
from .renderer import RenderRequest
from .workspace import Job


def _f(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) * np.float32(1.0 / 255.0)


class SigmaStage(Stage):
    name = "sigmas"

    def __init__(self, settings: Settings):
        self.settings = settings

    def begin(self, run: Run) -> None:
        from . import sigmas

        s = self.settings.sampling
        if s.sigma_schedule == "host":
            return
        cfg = sigmas.SigmaSettings(schedule=s.sigma_schedule, sigma_min=s.sigma_min, sigma_max=s.sigma_max,
                                   rho=s.rho)
        run.base_request["sigmas"] = sigmas.override_function(cfg)
        warning = sigmas.override_warning(s.sampler, s.sigma_schedule)
        if warning:
            run.job.log(warning, warning=True)
        used = sigmas.used_sigmas(cfg, s.steps, s.denoise, sampler_name=s.sampler)
        run.job.manifest["sigmas"] = {"schedule": sigmas.full_schedule(cfg, s.steps), "img2img_tail": used,
                                      "text": sigmas.describe(used)}


class InitStage(Stage):
    """Builds each frame's init image from the pass input, its neighbours and the previous output."""

    name = "init"

    def __init__(self, settings: Settings):
        t = settings.temporal
        self.mode = t.init_mode
        self.strength = t.init_strength
        self.weights = parse_weights(t.temporal_weights)
        if self.mode in ("temporal_blend", "temporal_blend_masked"):
            self.before = self.after = len(self.weights) // 2

    def analyse(self, ctx: FrameContext) -> None:
        if self.mode == "flow_warp" and ctx.prev_video is not None:
            ctx.analysis["flow_cur_to_prev"] = flow.flow_current_to_previous(ctx.prev_video, ctx.video)

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        mode = self.mode
        if mode in ("temporal_blend", "temporal_blend_masked"):
            k = len(self.weights) // 2
            frames = [ctx.neighbours[o][0] if o in ctx.neighbours else None for o in range(-k, k + 1)]
            fn = blend.temporal_blend if mode == "temporal_blend" else blend.temporal_blend_masked
            req.init = fn(frames, self.weights)
            return
        prev = ctx.prev_output
        if prev is None or self.strength == 0:
            return
        if mode == "previous_output":
            req.init = blend.superimpose(ctx.frame, prev, self.strength)
        elif mode == "flow_warp":
            warped = flow.warp_previous_to_current(prev, ctx.analysis["flow_cur_to_prev"])
            req.init = blend.superimpose(ctx.frame, warped, self.strength)
        elif mode == "temporal_merge":
            req.init = blend.temporal_merge(ctx.frame, prev, self.strength)


class MotionMaskStage(Stage):
    """Motion mask from the source delta; handed to the host (inpaint) or used by FDC (delta/spatial)."""

    name = "motion_mask"

    def __init__(self, settings: Settings):
        c = settings.correction
        self.low_cut, self.high_ext, self.soft = c.motion_low_cut, c.motion_high_ext, c.motion_soft
        self.usage = c.mask_usage

    def analyse(self, ctx: FrameContext) -> None:
        if ctx.prev_video is not None:
            ctx.analysis["motion_mask"] = masks.motion_mask(ctx.prev_video, ctx.video, low_cut=self.low_cut,
                                                            high_ext=self.high_ext, soft=self.soft)

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        m = ctx.analysis.get("motion_mask")
        if self.usage == "inpaint" and m is not None and ctx.prev_output is not None:
            req.mask = m
            req.init = _blend_init_outside_mask(req.init, ctx.prev_output, m)


def _blend_init_outside_mask(init: np.ndarray, prev: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Outside the inpaint mask keep the previous output (so unmasked pixels stay as they were)."""
    m = mask[..., None]
    return np.clip(m * init + (1 - m) * prev + 0.5, 0, 255).astype(np.uint8)


class LoopbackStage(Stage):
    name = "loopback"

    def __init__(self, settings: Settings):
        self.alpha = settings.temporal.loopback_alpha

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        return blend.superimpose(ctx.frame, image, self.alpha, as_float=True)


class FdcStage(Stage):
    name = "fdc"

    def __init__(self, settings: Settings):
        c = settings.correction
        self.mode = c.fdc_mode
        self.use_mask = c.motion_mask and c.mask_usage in ("delta", "spatial")
        self.usage = c.mask_usage

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        if ctx.prev_output is None or ctx.prev_video is None:
            return image
        t = fdc.source_delta(ctx.prev_video, ctx.video)
        mask = ctx.analysis.get("motion_mask") if self.use_mask else None
        return fdc.correct(_f(ctx.prev_output), image, t, mode=self.mode,
                           delta_mask=mask if self.usage == "delta" else None,
                           spatial_mask=mask if self.usage == "spatial" else None)


class ColourStage(Stage):
    """Colour coherence: match LAB statistics to frame 0 of the pass (re-read from disk on resume)."""

    name = "colour"

    def __init__(self):
        self.reference: blend.LabStats | None = None
        self.run: Run | None = None

    def begin(self, run: Run) -> None:
        self.run = run

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        if ctx.index == 0:
            return image
        if self.reference is None:
            assert self.run is not None
            self.reference = blend.lab_stats(self.run.job.read_frame(Run.stage_name(ctx.loop), 0))
        return blend.colour_coherence(image, self.reference, 1.0, as_float=True)

    def done(self, ctx: FrameContext, out: np.ndarray) -> None:
        if ctx.index == 0:
            self.reference = blend.lab_stats(out)


def build_stages(settings: Settings, job: Job | None = None) -> list[Stage]:
    c, t = settings.correction, settings.temporal
    stages: list[Stage] = [SigmaStage(settings), InitStage(settings)]
    if c.motion_mask:
        stages.append(MotionMaskStage(settings))
    if t.loopback_passes > 1 and t.loopback_alpha < 1:
        stages.append(LoopbackStage(settings))
    if c.fdc_mode != "none" or (c.motion_mask and c.mask_usage != "inpaint"):
        stages.append(FdcStage(settings))
    if t.colour_coherence:
        stages.append(ColourStage())
    return stages
