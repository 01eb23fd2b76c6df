"""Settings -> the pipeline's stages.

Order of the stages in a frame (see :mod:`lib_vid2vid.loop` for the hooks)::

    ScheduleStage   begin: compile every per-frame schedule and check its range over every frame and pass
                    (a bad one stops the job before any frame); analyse: this frame's values; prepare: denoise,
                    steps, cfg, seed, variation strength, prompt, batch count of the request
    SigmaStage      begin: the sigma override (same for every frame), warnings for samplers that ignore it
    InitStage       prepare: the init image (source | temporal blend [masked] | flow warp with occlusion |
                    previous output | temporal merge)
    NoiseStage      analyse/prepare: the frame's warped latent noise (noise_mode warped; noise_stage.py)
    DepthStage      analyse: depth mask (lib_vid2vid.depth, imported lazily; only with depth_mask)
    MaskStage       analyse: motion, colour-key and user masks, combined with the depth mask
                    (masks.combine_masks); prepare: colour-key fill of the init, inpaint mask;
                    done: the combined mask saved as frames/masks/000000.png (8-bit grey, white = may change)
    LoopbackStage   correct: out = (1 - alpha) * base + alpha * rendered   (only with loopback passes > 1);
                    prepare: with save_each_pass, encodes each finished earlier pass as <video>-vid2vid-pass<k>
    FdcStage        correct: frame delta correction against the previous output, combined mask (delta/spatial)
    ColourStage     correct: LAB statistics matched to the pass's first output frame (with colour_follow_source its
                    means moved by the source's change since)

Masks (float32 HW, 1 = may change) combine as documented in :mod:`lib_vid2vid.masks`:
``R = motion * depth * user`` (``mask_combine = multiply``; ``min`` takes the minimum), then the colour key
``M = max(R, K)`` (``colour_key_op = union``) or ``M = R * (1 - K)`` (``remove``). Masks left off count as
all ones; the motion mask does not exist at frame 0 (nothing moved yet). ``mask_usage`` applies ``M``:

* ``delta``:   ``out = A + (B - A) * M``  (after frame delta correction, if any)
* ``spatial``: ``out = M * B + (1 - M) * A``
* ``inpaint``: ``M`` is the host's inpaint mask, and the init outside it is A, so unmasked pixels stay.

A is the previous output of the pass, or at frame 0 (no previous output) the pass's input frame, so a mask of
zeros keeps the input there. Every stage rebuilds its cross-frame state from disk (the previous output is
handed in by the loop; the colour reference is frame 0 of the pass, re-read on resume), so a resumed job is
byte-identical.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import blend, fdc, flow, masks
from .errors import Vid2VidError
from .imaging import to_uint8, to_uint8_255
from .loop import FrameContext, Run, Stage
from .noise_stage import NoiseStage
from .params import SCHEDULES, Settings, parse_colour, parse_weights, schedule_ranges
from .renderer import RenderRequest
from .scene_cuts import CutDetector, CutFeatures
from .seeds import LOOP_SEED_STRIDE, SEED_MODULUS
from .workspace import Job, atomic_write_bytes


def _f(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) * np.float32(1.0 / 255.0)


def _round_half_up(v: float) -> int:
    return int(math.floor(v + 0.5))


# --------------------------------------------------------------------------------------- schedules


class ScheduleStage(Stage):
    """Per-frame schedules (expressions over frame, loop, t, total, fps; see :mod:`lib_vid2vid.schedule`).

    ``begin`` compiles every non-empty schedule and evaluates it over every frame of every pass
    (``Expr.check_range`` against the range of the setting it replaces, ``params.schedule_ranges``); the
    prompt schedule / folder is checked for every frame too. So a bad schedule raises a
    :class:`~lib_vid2vid.schedule.ScheduleError` (field and column) before any frame is rendered.

    Per frame: ``denoise``, ``cfg`` as evaluated; ``steps`` and ``seed`` rounded half up (seed mod 2**32);
    the seed schedule replaces the seed mode's main seed (the variation subseed stays); the variation strength
    schedule sets ``subseed_strength`` (fixed_variation only); the prompt schedule / folder sets the prompt
    and negative prompt. ``loopback_alpha`` and the temporal weight multiplier are left in
    ``ctx.analysis["schedule"]`` for the loopback and init stages. ``batch_count`` becomes ``n_iter``.
    """

    name = "schedule"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.exprs: dict = {}
        self.prompts = None
        self.total = 0
        self.fps = 1.0

    def begin(self, run: Run) -> None:
        self.total = run.plan.total
        self.fps = float(run.plan.fps)
        self.exprs, self.prompts = check_schedules(self.settings, self.total, self.fps)

    def values(self, index: int, loop: int) -> dict:
        """This frame's schedule values, keyed by the setting they replace (``SCHEDULES``)."""
        out = {}
        for name, expr in self.exprs.items():
            key = SCHEDULES[name] or "temporal_weights_scale"
            out[key] = expr.evaluate(frame=index, loop=loop, total=self.total, fps=self.fps)
        return out

    def analyse(self, ctx: FrameContext) -> None:
        values = self.values(ctx.index, ctx.loop)
        if self.prompts is not None:
            values["prompt"] = self.prompts.for_frame(ctx.index)
        ctx.analysis["schedule"] = values

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        req.n_iter = self.settings.sampling.batch_count
        v = ctx.analysis.get("schedule") or {}
        if "denoise" in v:
            req.denoise = float(v["denoise"])
        if "steps" in v:
            req.steps = _round_half_up(v["steps"])
        if "cfg_scale" in v:
            req.cfg = float(v["cfg_scale"])
        if "seed" in v:
            req.seed = _round_half_up(v["seed"]) % SEED_MODULUS
        if "variation_strength" in v and req.subseed >= 0:
            req.subseed_strength = float(v["variation_strength"])
        if "prompt" in v:
            req.prompt, req.negative_prompt = v["prompt"]


def check_schedules(settings: Settings, total: int, fps: float) -> tuple[dict, object | None]:
    """Compile every non-empty schedule and evaluate it at every frame ``0 .. total-1`` of every pass, against
    the range of the setting it replaces; build the prompt schedule or folder and check it for every frame.

    Returns (compiled schedules by field name, the prompt schedule or None). Raises a ScheduleError /
    SettingsError naming the field (and the frame) on the first problem. ``run_job`` calls it with the job's
    plan before a job folder exists; ``ScheduleStage.begin`` again for the run (a resumed job too).
    """
    from .prompts import PromptSchedule
    from .schedule import compile_expr

    t, s = settings.temporal, settings.sampling
    exprs = {}
    for name, (lo, hi) in schedule_ranges().items():
        text = getattr(t, name)
        if not text.strip():
            continue
        expr = compile_expr(name, text)
        expr.check_range(lo, hi, total=total, fps=fps, loops=t.loopback_passes)
        exprs[name] = expr
    prompts = None
    if t.prompt_schedule.strip():
        prompts = PromptSchedule.from_text(t.prompt_schedule, s.prompt, s.negative_prompt, field="prompt_schedule")
    elif t.prompt_folder.strip():
        prompts = PromptSchedule.from_folder(t.prompt_folder, s.prompt, s.negative_prompt, field="prompt_folder")
    if prompts is not None:
        prompts.check(total)
    return exprs, prompts


# --------------------------------------------------------------------------------------- sigmas


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
        self.named = {"schedule": s.sigma_schedule, "sigma_min": s.sigma_min, "sigma_max": s.sigma_max,
                      "rho": s.rho}
        # a renderer that samples in its own way (diffusers) says itself which samplers take the override
        warn = getattr(run.renderer, "override_warning", None) or sigmas.override_warning
        warning = warn(s.sampler, s.sigma_schedule)
        if warning:
            run.job.log(warning, warning=True)
        supported = getattr(run.renderer, "sigma_schedules", None)
        if supported is not None and s.sigma_schedule not in supported:
            run.job.log(f"this renderer cannot apply the {s.sigma_schedule} sigma schedule (it can: "
                        f"{', '.join(supported)}); the host's own schedule is used", warning=True)
        used = sigmas.used_sigmas(cfg, s.steps, s.denoise, sampler_name=s.sampler)
        run.job.manifest["sigmas"] = {"schedule": sigmas.full_schedule(cfg, s.steps), "img2img_tail": used,
                                      "text": sigmas.describe(used)}


    def prepare(self, ctx: FrameContext, request: RenderRequest) -> None:
        named = getattr(self, "named", None)
        if named:
            request.extra["sigma_override"] = named


# --------------------------------------------------------------------------------------- init


class InitStage(Stage):
    """Builds each frame's init image from the pass input, its neighbours and the previous output.

    * ``temporal_blend`` / ``temporal_blend_masked``: :func:`blend.temporal_blend` (``_masked`` with
      ``temporal_threshold`` / ``temporal_softness``) of the pass inputs ``i-k .. i+k``; the weights'
      neighbours (not the centre) are multiplied by the temporal weights schedule, if any.
    * ``previous_output``: ``(1 - s) * input + s * prev_output``  (``s = init_strength``).
    * ``flow_warp``: ``W = warp(prev_output, flow_cur_to_prev)`` with the DIS flow of the *source* frames;
      ``init = input + s * (1 - O) * (W - input)`` where ``O`` is :func:`flow.occlusion_mask` of the
      forward-backward pair (1 = occluded: the previous output cannot supply that pixel, so it takes the
      input), or ``O = 0`` with ``flow_occlusion`` off. Float32, rounded half up once.
    * ``temporal_merge``: :func:`blend.temporal_merge` with ``s`` and ``merge_luma_share``.
    """

    name = "init"

    def __init__(self, settings: Settings):
        t = settings.temporal
        self.mode = t.init_mode
        self.strength = t.init_strength
        self.weights = parse_weights(t.temporal_weights)
        self.threshold, self.softness = t.temporal_threshold, t.temporal_softness
        self.luma_share = t.merge_luma_share
        self.occlusion = t.flow_occlusion
        if self.mode in ("temporal_blend", "temporal_blend_masked"):
            self.before = self.after = len(self.weights) // 2

    def reads_previous_output(self) -> bool:
        return self.mode in ("previous_output", "flow_warp", "temporal_merge")

    def analyse(self, ctx: FrameContext) -> None:
        if self.mode == "flow_warp" and ctx.prev_video is not None:
            if self.occlusion:
                cur_to_prev, prev_to_cur = flow.bidirectional_flow(ctx.prev_video, ctx.video)
                ctx.analysis["occlusion"] = flow.occlusion_mask(cur_to_prev, prev_to_cur)
                ctx.analysis["flow_prev_to_cur"] = prev_to_cur  # warped noise reuses the pair
            else:
                cur_to_prev = flow.flow_current_to_previous(ctx.prev_video, ctx.video)
            ctx.analysis["flow_cur_to_prev"] = cur_to_prev

    def _weights(self, ctx: FrameContext) -> list[float]:
        scale = (ctx.analysis.get("schedule") or {}).get("temporal_weights_scale")
        if scale is None:
            return self.weights
        k = len(self.weights) // 2
        out = [w if j == k else w * float(scale) for j, w in enumerate(self.weights)]
        if sum(out) <= 0:  # zero centre weight and a zero multiplier: the current frame alone
            out = [1.0 if j == k else 0.0 for j in range(len(out))]
        return out

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        mode = self.mode
        if mode in ("temporal_blend", "temporal_blend_masked"):
            k = len(self.weights) // 2
            frames = [ctx.neighbours[o][0] if o in ctx.neighbours else None for o in range(-k, k + 1)]
            if mode == "temporal_blend":
                req.init = blend.temporal_blend(frames, self._weights(ctx))
            else:
                req.init = blend.temporal_blend_masked(frames, self._weights(ctx), self.threshold, self.softness)
            return
        prev = ctx.prev_output
        if prev is None or self.strength == 0:
            return
        if mode == "previous_output":
            req.init = blend.superimpose(ctx.frame, prev, self.strength)
        elif mode == "flow_warp":
            warped = flow.warp_previous_to_current(prev, ctx.analysis["flow_cur_to_prev"])
            occ = ctx.analysis.get("occlusion")
            if occ is None:
                req.init = blend.superimpose(ctx.frame, warped, self.strength)
            else:
                w = (np.float32(self.strength) * (np.float32(1.0) - occ))[..., None]
                base = ctx.frame.astype(np.float32)
                req.init = to_uint8_255(base + w * (warped.astype(np.float32) - base))
        elif mode == "temporal_merge":
            req.init = blend.temporal_merge(ctx.frame, prev, self.strength, luma_share=self.luma_share)


# --------------------------------------------------------------------------------------- masks


class DepthStage(Stage):
    """Depth mask from :mod:`lib_vid2vid.depth` (imported lazily): ``ctx.analysis["depth_mask"]``.

    Depth is float32 HW 0..1 (1 = near), from (first that applies):

    1. ``depth_source``: a user depth video (resampled like the clip) or folder of numbered images;
    2. the renderer's own MiDaS, if it offers ``depth_estimator(kind)`` (the WebUI adapter hands over the
       host's loaded model this way);
    3. the MiDaS weight file ``depth_weights`` (a file, or a folder holding the official file name;
       empty = ``models/midas``), built with timm.

    Model depth is cached per job in ``<job>/depth`` (:class:`depth_cache.DepthCache`, 16-bit PNG + ranges)
    and normalised with the *running* range (min/max over frames 0..i), so the mask does not jump when MiDaS
    rescales a frame and a resumed job rebuilds exactly the same depth from the cache. The mask is
    ``depth_mask.depth_mask(depth, depth_low_cut)``: pixels farther than the low-cut may not change.
    """

    name = "depth"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.source = None
        self.cache = None
        self.estimator = None
        self.size = (0, 0)

    def begin(self, run: Run) -> None:
        try:
            from . import depth_cache, depth_estimator, depth_mask, depth_user, midas_model
        except ImportError as exc:
            raise Vid2VidError(f"depth_mask: the depth module cannot be loaded ({exc}); turn depth_mask off") from None
        self.depth_mask = depth_mask.depth_mask
        c, v = self.settings.correction, self.settings.video
        plan = run.plan
        self.size = (plan.width, plan.height)
        src = c.depth_source.strip()
        if src:
            from pathlib import Path

            if Path(src).is_dir():
                self.source = depth_user.DepthSource.from_folder(src)
            else:
                self.source = depth_user.DepthSource.from_video(src, fps=plan.fps if v.fps else None,
                                                                start=plan.start, end=plan.end)
            if self.source.count < plan.total:
                self.source.check_count(plan.total)  # names the first frame without depth
            run.job.manifest["depth"] = {"source": src}
            return
        host = getattr(run.renderer, "depth_estimator", None)
        self.estimator = host(c.depth_model) if callable(host) else None
        if self.estimator is None:
            path = midas_model.weights_path(c.depth_model, c.depth_weights.strip() or None)
            self.estimator = depth_estimator.DepthEstimator.from_file(path, c.depth_model)
        self.cache = depth_cache.DepthCache(run.job.root / "depth", normalise="running")
        run.job.manifest["depth"] = {"model": c.depth_model, "cache": "depth", "normalise": "running"}

    def analyse(self, ctx: FrameContext) -> None:
        if self.source is not None:
            d = self.source.get(ctx.index, self.size)
        else:
            d = self.cache.get(ctx.index, ctx.video, self.estimator)
        ctx.analysis["depth"] = d
        ctx.analysis["depth_mask"] = self.depth_mask(d, self.settings.correction.depth_low_cut)

    def end(self, run: Run) -> None:
        if self.source is not None:
            self.source.close()


def _colour_key_seed(base: int, index: int, loop: int) -> int:
    return (base + index + loop * LOOP_SEED_STRIDE) % SEED_MODULUS


class MaskStage(Stage):
    """Motion, colour-key and user masks, combined with the depth mask; applied by ``mask_usage``.

    ``analyse`` (source only): ``motion_mask`` (from source frames i-1 and i; none at frame 0),
    ``colour_key_mask`` (on the source frame i), ``user_mask`` (``masks.UserMaskSource``, frame i at the output
    size), and ``mask`` = ``masks.combine_masks(motion, depth, user, colour_key)``. ``prepare``: the colour-key
    fill (``masks.fill_masked``; noise seeded with ``job seed + i + pass * 1e6``) replaces the keyed pixels of
    the init; with ``mask_usage = inpaint`` the mask goes to the host and the init outside it is the previous
    output. ``done``: the combined mask as ``frames/masks/<i>.png`` (8-bit grey, ``round(M * 255)``, all
    white where no mask applies), written atomically in pass 1 or when missing.
    """

    name = "masks"

    def __init__(self, settings: Settings):
        self.settings = settings
        c = settings.correction
        self.low_cut, self.high_ext, self.soft = c.motion_low_cut, c.motion_high_ext, c.motion_soft
        self.motion = c.motion_mask
        self.usage = c.mask_usage
        self.key = parse_colour(c.colour_key_target) if c.colour_key else None
        self.user: masks.UserMaskSource | None = None
        self.job: Job | None = None
        self.seed = 0
        self.size = (0, 0)
        self.announce = True
        """``begin`` logs its notes about the settings (False: a second mask stage of the same run)."""

    def begin(self, run: Run) -> None:
        c = self.settings.correction
        self.job = run.job
        self.seed = run.seed
        self.size = (run.plan.width, run.plan.height)
        self.user = masks.user_mask_source(self.settings, run.input_path)
        if self.user is not None:
            v = self.settings.video
            if self.announce and c.user_mask_kind in ("video", "alpha") and (v.fps or v.start):
                run.job.log("user mask video: its frames are matched to output frames in decoding order; with "
                            "fps or start set they may not line up with the source", warning=True)
        run.job.stage_dir("masks")
        run.job.manifest["masks"] = {"folder": "frames/masks", "combine": c.mask_combine,
                                     "colour_key_op": c.colour_key_op, "usage": c.mask_usage}

    def reads_previous_output(self) -> bool:
        return self.usage == "inpaint"

    def analyse(self, ctx: FrameContext) -> None:
        c = self.settings.correction
        motion = None
        if self.motion and ctx.prev_video is not None:
            motion = masks.motion_mask(ctx.prev_video, ctx.video, low_cut=self.low_cut, high_ext=self.high_ext,
                                       soft=self.soft)
        key = masks.colour_key_mask(ctx.video, self.key, c.colour_key_range) if self.key is not None else None
        user = self.user.get(ctx.index, self.size) if self.user is not None else None
        ctx.analysis.update(motion_mask=motion, colour_key_mask=key, user_mask=user)
        ctx.analysis["mask"] = masks.combine_masks(motion, ctx.analysis.get("depth_mask"), user, key,
                                                   how=c.mask_combine, colour_key_op=c.colour_key_op)

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        c = self.settings.correction
        key = ctx.analysis.get("colour_key_mask")
        if key is not None and c.colour_key_fill != "none":
            req.init = masks.fill_masked(req.init, key, c.colour_key_fill, noise_level=c.colour_key_noise,
                                         seed=_colour_key_seed(self.seed, ctx.index, ctx.loop),
                                         radius=c.colour_key_radius)
        m = ctx.analysis.get("mask")
        if self.usage == "inpaint" and m is not None:
            req.mask = m
            if ctx.prev_output is not None:
                req.init = _blend_init_outside_mask(req.init, ctx.prev_output, m)

    def done(self, ctx: FrameContext, out: np.ndarray) -> None:
        assert self.job is not None
        path = self.job.frame_path("masks", ctx.index)
        if ctx.loop > 0 and path.is_file():
            return
        m = ctx.analysis.get("mask")
        grey = np.full(out.shape[:2], 255, np.uint8) if m is None else fdc.inpaint_mask(m)
        ok, buf = cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise Vid2VidError("PNG encoding of a mask failed")
        atomic_write_bytes(path, buf.tobytes())

    def end(self, run: Run) -> None:
        if self.user is not None:
            self.user.close()


MotionMaskStage = MaskStage
"""Former name (the motion mask is one of the masks MaskStage combines)."""


def _blend_init_outside_mask(init: np.ndarray, prev: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Outside the inpaint mask keep the previous output (so unmasked pixels stay as they were)."""
    m = mask[..., None]
    return np.clip(m * init + (1 - m) * prev + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------- loopback


class LoopbackStage(Stage):
    """Loopback superimpose ``out = (1 - alpha) * input + alpha * rendered`` (alpha per frame if scheduled).

    With ``save_each_pass``, when pass p (> 1) starts, each earlier pass k without its video yet is encoded
    from its frames on disk as ``<video>-vid2vid-pass<k>.<ext>`` (atomic: a video exists whole or not at all,
    so a resumed job encodes what is missing). The last pass is the result video itself.
    """

    name = "loopback"

    def __init__(self, settings: Settings):
        self.alpha = settings.temporal.loopback_alpha
        self.save_each_pass = settings.temporal.save_each_pass
        self.run: Run | None = None
        self.saved: set[int] = set()

    def begin(self, run: Run) -> None:
        self.run = run

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        if self.save_each_pass and ctx.loop > 0 and ctx.loop - 1 not in self.saved:
            for k in range(ctx.loop):
                if k not in self.saved:
                    self._save_pass(k)
                    self.saved.add(k)

    def _save_pass(self, loop: int) -> None:
        from .export import export_stage, final_video_path

        run = self.run
        assert run is not None
        suffix = f"-pass{loop + 1}"
        if final_video_path(run.job, run.settings, suffix).exists():
            return
        path = export_stage(run.job, run.settings, run.plan, Run.stage_name(loop), suffix=suffix)
        run.job.log(f"saved pass {loop + 1} as {path.name}")

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        alpha = (ctx.analysis.get("schedule") or {}).get("loopback_alpha", self.alpha)
        return blend.superimpose(ctx.frame, image, alpha, as_float=True)


# --------------------------------------------------------------------------------------- corrections


class FdcStage(Stage):
    """Frame delta correction (``fdc_mode``) against the previous output, then the combined mask (delta/spatial).

    At frame 0 of a pass (no previous output) there is nothing to correct against; the mask still applies
    with the pass input as A.
    """

    name = "fdc"

    def __init__(self, settings: Settings):
        c = settings.correction
        self.mode = c.fdc_mode
        self.usage = c.mask_usage

    def reads_previous_output(self) -> bool:
        return True

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        mask = ctx.analysis.get("mask") if self.usage in ("delta", "spatial") else None
        if ctx.prev_output is None or ctx.prev_video is None:
            if mask is None:
                return image
            a = _f(ctx.frame)
            return fdc.apply_delta_mask(a, image, mask)  # delta and spatial agree when there is no correction
        t = fdc.source_delta(ctx.prev_video, ctx.video)
        return fdc.correct(_f(ctx.prev_output), image, t, mode=self.mode,
                           delta_mask=mask if self.usage == "delta" else None,
                           spatial_mask=mask if self.usage == "spatial" else None)


class ColourStage(Stage):
    """Colour coherence: match LAB statistics to the first frame of the current shot.

    The reference is frame 0 of the pass, and again the first frame after each scene cut of the source
    (:mod:`lib_vid2vid.scene_cuts`, as the keyframes and the post stages find them): matching a new shot to
    the colours of the previous one would recolour it. Cuts found are recorded in the manifest
    (``colour_refs``), so a resumed job re-reads the same reference frame from disk.

    With ``colour_follow_source`` the target is the reference's statistics with its means moved by the source's
    change since the reference frame (:func:`lib_vid2vid.blend.follow_source`); the reference's source means are
    kept in the manifest (``colour_ref_sources``: stage -> frame -> L, a, b) for a resumed job.
    """

    name = "colour"

    def __init__(self, settings: Settings | None = None):
        self.cuts = CutDetector.of(settings) if settings is not None else CutDetector(0.4)
        self.follow = bool(settings.temporal.colour_follow_source) if settings is not None else False
        self.reference: blend.LabStats | None = None
        self.reference_source: tuple[float, float, float] | None = None
        self.run: Run | None = None
        self.loop = -1
        self._feats: tuple[int, CutFeatures] | None = None  # (frame, its source frame's features)

    def begin(self, run: Run) -> None:
        self.run = run
        self._feats = None
        run.job.manifest.setdefault("colour_refs", {})
        if self.follow:
            run.job.manifest.setdefault("colour_ref_sources", {})

    def analyse(self, ctx: FrameContext) -> None:
        cut = ctx.analysis.get("scene_cut")  # reset_at_cuts: the job's stored cuts decide (its scene groups)
        if cut is None:
            prev = ctx.prev_video
            feats = self.cuts.features(ctx.video)
            cut = False
            if prev is not None:
                kept = self._feats if self._feats is not None and self._feats[0] == ctx.index - 1 else None
                cut = self.cuts.between(kept[1] if kept is not None else self.cuts.features(prev), feats)
            self._feats = (ctx.index, feats)  # frames come in order: the next one needs no second look at this one
            ctx.analysis["scene_cut"] = cut  # the job report takes it instead of looking again
        ctx.analysis["colour_ref"] = ctx.index == 0 or cut

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        if ctx.analysis.get("colour_ref", ctx.index == 0):
            return image  # this frame starts a shot: it is the reference
        return blend.colour_coherence(image, self._target(ctx), 1.0, as_float=True)

    def correct_uint8(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        if ctx.analysis.get("colour_ref", ctx.index == 0):
            return to_uint8(image)
        return blend.colour_coherence_uint8(image, self._target(ctx), 1.0)  # = to_uint8(correct(...))

    def _target(self, ctx: FrameContext) -> blend.LabStats:
        reference = self._reference(ctx)
        if not self.follow or self.reference_source is None:
            return reference
        return blend.follow_source(reference, self.reference_source, blend.source_lab_means(ctx.video))

    def _reference(self, ctx: FrameContext) -> blend.LabStats:
        if self.reference is None or self.loop != ctx.loop:
            assert self.run is not None
            stage = Run.stage_name(ctx.loop)
            refs = [c for c in self.run.job.manifest["colour_refs"].get(stage, []) if c < ctx.index]
            ref = max(refs, default=0)
            self.reference = blend.lab_stats(self.run.read_output(ctx.loop, ref))
            kept = self.run.job.manifest.get("colour_ref_sources", {}).get(stage, {}).get(str(ref))
            self.reference_source = tuple(kept) if kept is not None else None  # type: ignore[assignment]
            self.loop = ctx.loop
        return self.reference

    def done(self, ctx: FrameContext, out: np.ndarray) -> None:
        if ctx.analysis.get("colour_ref", ctx.index == 0):
            self.reference = blend.lab_stats(out)
            self.loop = ctx.loop
            stage = Run.stage_name(ctx.loop)
            save = False
            if self.follow:
                self.reference_source = blend.source_lab_means(ctx.video)
                if self.run is not None:
                    job = self.run.job
                    with job.editing():
                        job.manifest["colour_ref_sources"].setdefault(stage, {})[str(ctx.index)] = \
                            list(self.reference_source)
                    save = True
            if ctx.index and self.run is not None:
                refs = self.run.job.manifest["colour_refs"].setdefault(stage, [])
                if ctx.index not in refs:
                    refs.append(ctx.index)
                    save = True
            if save and self.run is not None:
                self.run.job.save()  # before the frame's journal line: a resume must find this cut and its source


def build_stages(settings: Settings, job: Job | None = None) -> list[Stage]:
    c, t = settings.correction, settings.temporal
    stages: list[Stage] = [ScheduleStage(settings), SigmaStage(settings), InitStage(settings)]
    if settings.sampling.noise_mode == "warped":
        stages.append(NoiseStage(settings))
    if c.depth_mask:
        stages.append(DepthStage(settings))
    if masks.any_mask(settings):
        stages.append(MaskStage(settings))
    if t.loopback_passes > 1 and (t.loopback_alpha < 1 or t.loopback_alpha_schedule.strip() or t.save_each_pass):
        stages.append(LoopbackStage(settings))
    if c.fdc_mode != "none" or (masks.any_mask(settings) and c.mask_usage != "inpaint"):
        stages.append(FdcStage(settings))
    if t.colour_coherence:
        stages.append(ColourStage(settings))
    return stages
