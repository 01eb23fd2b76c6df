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
from typing import Any

from .errors import SettingsError

MAX_SIDE = 4096
"""Largest output width or height in pixels (SD1.x/SDXL hosts cannot sample larger frames in one piece)."""
MIN_SIDE = 64


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

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def label(self) -> str:
        text = self.name.replace("_", " ").capitalize()
        return f"{text} ({self.unit})" if self.unit else text


def setting(default: Any, help: str, *, unit: str = "", min: float | None = None, max: float | None = None,
            choices: Sequence | None = None, step: float | None = None, widget: str = "",
            ui: bool = True, cli: bool = True) -> Any:
    meta = dict(help=help, unit=unit, min=min, max=max, choices=tuple(choices) if choices else None,
                step=step, widget=widget, ui=ui, cli=cli)
    return field(default=default, metadata={"spec": meta})


RESIZE_MODES = ("just_resize", "crop_and_resize", "resize_and_fill")
SIGMA_SCHEDULES = ("host", "karras", "exponential", "polyexponential", "vp", "linear")
SEED_MODES = ("fixed", "increment", "fixed_variation")
INIT_MODES = ("source", "temporal_blend", "temporal_blend_masked", "flow_warp", "previous_output",
              "temporal_merge")
FDC_MODES = ("none", "clip", "mean", "std", "mean_std")
MASK_USAGES = ("delta", "spatial", "inpaint")
OUTPUT_FORMATS = ("mp4", "webm", "gif", "png")
PREVIEW_MODES = ("video", "frame", "sweep")


@dataclass
class VideoSettings:
    """Tab "Video": what is read from the source and at what size."""

    TAB = "Video"
    input: str = setting("", "Path of the source video on this machine.", widget="video")
    fps: float = setting(0.0, "Frames per second to process; 0 keeps the source rate. Fewer frames render "
                              "faster; the output keeps the source duration.", unit="fps", min=0, max=120)
    start: float = setting(0.0, "Start of the processed range.", unit="s", min=0)
    end: float = setting(0.0, "End of the processed range; 0 means the end of the video.", unit="s", min=0)
    max_frames: int = setting(0, "Stop after this many frames (0 = all): a quick preview of a long video.",
                              min=0)
    width: int = setting(0, "Output width; 0 derives it from the source (long side 512, multiple of 8).",
                         unit="px", min=0, max=MAX_SIDE, step=8)
    height: int = setting(0, "Output height; 0 derives it from the source aspect ratio.", unit="px", min=0,
                          max=MAX_SIDE, step=8)
    resize_mode: str = setting("just_resize", "How the source is fitted to the output size, as in img2img: "
                               "stretch, crop the overflow, or fill the borders.", choices=RESIZE_MODES,
                               widget="radio")


@dataclass
class SamplingSettings:
    """Tab "Sampling": what the host samples with. In the WebUI most come from the img2img tab itself."""

    TAB = "Sampling"
    prompt: str = setting("", "Prompt for every frame.", widget="textarea", ui=False)
    negative_prompt: str = setting("", "Negative prompt for every frame.", widget="textarea", ui=False)
    sampler: str = setting("Euler", "Sampler name as the host spells it. Samplers that ignore a sigma "
                           "override (DDIM, PLMS, UniPC, LCM) make the host use its own schedule.", ui=False)
    scheduler: str = setting("Automatic", "Host scheduler name (A1111 1.9+).", ui=False)
    steps: int = setting(20, "Sampling steps.", min=1, max=150, ui=False)
    cfg_scale: float = setting(7.0, "Classifier-free guidance scale.", min=1, max=30, ui=False)
    denoise: float = setting(0.45, "Denoising strength: how much of each frame is repainted.", min=0, max=1,
                             ui=False)
    seed: int = setting(-1, "Seed; -1 picks one at random once per job (stored in the manifest).", min=-1,
                        ui=False)
    batch_size: int = setting(1, "Images per frame, averaged (batch blend).", min=1, max=16, ui=False)
    seed_mode: str = setting("fixed", "Seed per frame: the same for all frames (least flicker), +1 per frame, "
                             "or fixed with a variation seed.", choices=SEED_MODES, widget="radio")
    variation_seed: int = setting(-1, "Variation seed for fixed_variation; -1 = seed + 1.", min=-1)
    variation_strength: float = setting(0.0, "Strength of the variation seed.", min=0, max=1)
    sigma_schedule: str = setting("host", "Sigma schedule override; 'host' keeps the WebUI's own.",
                                  choices=SIGMA_SCHEDULES)
    sigma_min: float = setting(0.0292, "Smallest sigma of the override schedule.", min=0.001, max=1000)
    sigma_max: float = setting(1.0, "Largest sigma of the override schedule: about 1 repaints style and "
                               "keeps the picture, about 14.6 is the model's full range.", min=0.01, max=1000)
    rho: float = setting(7.0, "Karras / polyexponential curvature.", min=0.1, max=20)


@dataclass
class CorrectionSettings:
    """Tab "Masks & correction"."""

    TAB = "Masks & correction"
    fdc_mode: str = setting("none", "Frame delta correction: fit each output's change from the previous "
                            "output to the source's change.", choices=FDC_MODES)
    motion_mask: bool = setting(False, "Let only the pixels that moved in the source change.")
    motion_low_cut: int = setting(8, "Motion mask: source changes below this (0..255) may not change the output.",
                           min=0, max=255)
    motion_high_ext: int = setting(5, "Motion mask dilation kernel (odd, 1 = none).", unit="px", min=1, max=15,
                            step=2)
    motion_soft: float = setting(2.0, "Soft edge of the motion mask (gaussian sigma).", unit="px", min=0,
                               max=32)
    mask_usage: str = setting("delta", "How the mask is applied: scale the change (delta), mix outputs "
                              "(spatial) or hand it to the host as an inpaint mask.", choices=MASK_USAGES)


@dataclass
class TemporalSettings:
    """Tab "Temporal": what each frame's init image is made of."""

    TAB = "Temporal"
    init_mode: str = setting("source", "Init image of each frame: the source frame, a blend of neighbouring "
                             "source frames, the previous output warped by optical flow, the previous output, "
                             "or a luminance/colour merge.", choices=INIT_MODES)
    init_strength: float = setting(0.5, "For flow_warp / previous_output / temporal_merge: weight of the "
                                   "previous output in the init (0 = source only).", min=0, max=1)
    temporal_weights: str = setting("1,2,1", "Odd-length weights of neighbouring source frames for "
                                    "temporal_blend, centred on the current frame.")
    loopback_passes: int = setting(1, "Render the whole video this many times, each pass on the last.",
                                   min=1, max=10)
    loopback_alpha: float = setting(0.5, "Loopback superimpose: out = (1 - alpha) * base + alpha * render.",
                                    min=0, max=1)
    colour_coherence: bool = setting(False, "Match each frame's colours (LAB mean/std) to the first frame.")


@dataclass
class ExportSettings:
    """Tab "Post-process & export"."""

    TAB = "Post-process & export"
    output_format: str = setting("mp4", "Video container of the result.", choices=OUTPUT_FORMATS,
                                 widget="radio")
    crf: int = setting(18, "Quality (lower is better, larger files); mp4 and webm.", min=0, max=51)
    keep_audio: bool = setting(True, "Carry the source audio of the processed range into the result.")


@dataclass
class PreviewSettings:
    """Single-frame debug mode (shown in the Sampling tab): tune on one frame before rendering the video."""

    TAB = "Sampling"
    preview_mode: str = setting("video", "Render the whole video, only one frame, or a sweep of settings on one "
                                "frame (a labelled grid).", choices=PREVIEW_MODES, widget="radio", cli=False)
    preview_frame: int = setting(0, "Frame to render in frame/sweep mode (index in the processed range).", min=0,
                                 cli=False)
    preview_sweep: str = setting("", "Sweep in sweep mode, e.g. 'sigma_max=0.5,1,2 x denoise=0.3,0.5'.",
                                 cli=False)


@dataclass
class JobSettings:
    """Tab "Jobs"."""

    TAB = "Jobs"
    output_dir: str = setting("outputs/vid2vid", "Folder that holds one sub-folder per job.", widget="path")
    keep_frames: bool = setting(True, "Keep the PNG frames of each stage (needed to resume).")
    resume_job: str = setting("", "Resume this unfinished job (its folder name or id) with its own settings; "
                              "empty starts a new job, or resumes one with the same video and settings.",
                              cli=False)


GROUPS: tuple[tuple[str, type], ...] = (
    ("video", VideoSettings),
    ("sampling", SamplingSettings),
    ("correction", CorrectionSettings),
    ("temporal", TemporalSettings),
    ("export", ExportSettings),
    ("preview", PreviewSettings),
    ("job", JobSettings),
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
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if t is str:
            if raw is None:
                return ""
            if not isinstance(raw, str):
                raise ValueError
            return raw
    except (TypeError, ValueError):
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


# ---- strategies: named presets the benchmark and the UI's "strategy" menu iterate over ----

STRATEGIES: dict[str, dict[str, Any]] = {
    "per_frame": {"init_mode": "source", "fdc_mode": "none", "seed_mode": "increment"},
    "fixed_seed": {"init_mode": "source", "fdc_mode": "none", "seed_mode": "fixed"},
    "fdc_vid2vid": {"init_mode": "source", "fdc_mode": "mean_std", "motion_mask": True, "seed_mode": "fixed"},
    "loopback_temporal_blend": {"init_mode": "temporal_blend", "loopback_passes": 2, "loopback_alpha": 0.5,
                                "seed_mode": "fixed"},
    "temporal_merge": {"init_mode": "temporal_merge", "init_strength": 0.5, "seed_mode": "fixed"},
    "flow_warp": {"init_mode": "flow_warp", "init_strength": 0.5, "seed_mode": "fixed"},
}
"""Named combinations of settings. Adding one here adds it to the consistency benchmark's table."""


# ---- forms: CLI, API script_args, UI ----

def ui_specs() -> list[Spec]:
    """The settings the WebUI shows, in tab then field order (the API's script_args order)."""
    return [s for s in SPECS if s.ui]


def api_arg_names() -> list[str]:
    return [s.name for s in ui_specs()]


def settings_from_api_args(args: Sequence[Any], *, base: Settings | None = None) -> Settings:
    """Settings from the WebUI's positional script args (UI order). Fewer args keep the defaults."""
    names = api_arg_names()
    if len(args) > len(names):
        raise SettingsError("script_args", f"got {len(args)} values but vid2vid takes at most {len(names)}: "
                                           f"{', '.join(names)}")
    return Settings.from_dict(dict(zip(names, args)), base=base)


def add_cli_arguments(parser: argparse.ArgumentParser, *, skip: Iterable[str] = ()) -> None:
    """Add one flag per setting, grouped by tab, with its help, unit and range."""
    skip = set(skip)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in SPECS:
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
        help_text = spec.help + (f" [{', '.join(extra)}]" if extra else "") + " (default: %(default)s)"
        if spec.type is bool:
            grp.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction,
                             default=None, help=help_text.replace("%(default)s", str(spec.default)))
        else:
            grp.add_argument(spec.flag, dest=spec.name, default=None, metavar=spec.unit.upper() or None,
                             choices=spec.choices, help=help_text.replace("%(default)s", repr(spec.default)),
                             type=str if spec.type is str else _cli_number(spec))


def _cli_number(spec: Spec):
    def parse(text: str):
        return coerce(spec, text)
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
