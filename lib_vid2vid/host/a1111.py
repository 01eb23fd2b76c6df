"""The AUTOMATIC1111 / Forge adapter: the only place (with scripts/vid2vid.py) that imports WebUI modules.

- :class:`A1111Renderer` renders one frame with ``modules.processing.process_images`` on a copy of the
  img2img tab's ``p`` (so the user's checkpoint, LoRAs, sampler, ControlNet units and other always-on
  scripts apply), with the frame's init image, mask, seed, denoise and sigma override.
- :func:`run_script` is what the "vid2vid" Script's ``run(p, *args)`` calls: settings from the script args
  (validated like the CLI's), the job, ``shared.state`` progress and interruption, and the ``Processed``
  the WebUI shows.

Host facts this relies on (A1111 v1.10; Forge keeps them): ``p.sampler_noise_scheduler_override(steps)``
returns steps+1 sigmas; ``shared.state.interrupted`` / ``skipped`` are set by the Interrupt / Skip buttons
and ``/sdapi/v1/interrupt``; ``state.job_count`` sizes the progress bar and ``process_images`` calls
``state.nextjob()`` once per batch.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import params
from ..errors import Interrupted, Vid2VidError
from ..renderer import RenderRequest

SCRIPT_TITLE = "vid2vid"
OPT_PREFIX = "vid2vid_"


# ------------------------------------------------------------------ host access (patched by tests)

def _host():
    """The WebUI modules this adapter uses, imported on first use."""
    from modules import processing, shared  # noqa: PLC0415 - host import, only inside host/

    return processing, shared


def host_option(name: str, default: Any, p: Any = None) -> Any:
    """A vid2vid option from Settings; the request's override_settings win (the host applies those only
    later, inside process_images)."""
    key = OPT_PREFIX + name
    overrides = getattr(p, "override_settings", None) or {}
    if key in overrides:
        return overrides[key]
    _, shared = _host()
    return getattr(shared.opts, key, default) if hasattr(shared, "opts") else default


# ------------------------------------------------------------------ ControlNet

class ControlNetBridge:
    """Feeds each enabled ControlNet unit the current source frame.

    A1111 + sd-webui-controlnet: through its external_code API (``get_all_units_in_processing`` /
    ``update_cn_script_in_processing``), on copies of the units, so the img2img tab's own units stay untouched.
    Forge's built-in ControlNet has no such functions: its units (dataclasses, or dicts from the API) sit in
    ``p.script_args[cn.args_from:cn.args_to]`` and take an HWC uint8 image. Units that carry an image of their
    own keep it, unless ``per_unit`` gives a frame for them. Without ControlNet this does nothing.
    """

    def __init__(self, external_code: Any | None, *, forge: bool = False):
        self.ext = external_code
        self.forge = forge

    @classmethod
    def find(cls) -> ControlNetBridge:
        import importlib

        try:  # Forge: extensions-builtin/sd_forge_controlnet/lib_controlnet
            return cls(importlib.import_module("lib_controlnet.external_code"), forge=True)
        except Exception:  # noqa: BLE001 - not Forge
            pass
        try:  # sd-webui-controlnet: scripts/external_code.py re-exports this module
            return cls(importlib.import_module("internal_controlnet.external_code"))
        except Exception:  # noqa: BLE001 - not installed, or an older layout
            pass
        try:
            from modules import extensions  # noqa: PLC0415

            for ext in extensions.active():
                if "controlnet" in ext.name.lower() and (Path(ext.path) / "scripts" / "external_code.py").is_file():
                    base = "extensions-builtin" if "extensions-builtin" in str(ext.path) else "extensions"
                    return cls(importlib.import_module(f"{base}.{ext.name}.scripts.external_code"))
        except Exception:  # noqa: BLE001 - ControlNet is optional; never break a run over it
            pass
        return cls(None)

    @property
    def available(self) -> bool:
        return self.ext is not None

    def apply(self, p: Any, frame: np.ndarray | None, per_unit: dict[int, np.ndarray] | None = None) -> int:
        """Set the units' images on ``p`` (a per-frame copy); returns how many units got a frame."""
        if self.ext is None or frame is None:
            return 0
        if self.forge:
            return self._apply_forge(p, frame, per_unit)
        units = [_copy_unit(u) for u in self.ext.get_all_units_in_processing(p)]
        fed = 0
        for i, unit in enumerate(units):
            if not getattr(unit, "enabled", False):
                continue
            img = (per_unit or {}).get(i)
            if img is None:
                if getattr(unit, "image", None) is not None:
                    continue  # the user gave this unit its own image
                img = frame
            unit.image = {"image": img, "mask": np.zeros(img.shape[:2] + (3,), np.uint8)}
            fed += 1
        if fed:
            self.ext.update_cn_script_in_processing(p, units)
        return fed

    def _apply_forge(self, p: Any, frame: np.ndarray, per_unit: dict[int, np.ndarray] | None) -> int:
        runner = getattr(p, "scripts", None)
        cn = next((sc for sc in (getattr(runner, "alwayson_scripts", None) or [])
                   if str(sc.title()).lower() == "controlnet"), None)
        if cn is None or not getattr(p, "script_args", None):
            return 0
        args, fed = list(p.script_args), 0
        for i, k in enumerate(range(cn.args_from, min(cn.args_to, len(args)))):
            unit = args[k]
            get = unit.get if isinstance(unit, dict) else (lambda n, u=unit: getattr(u, n, None))
            if not get("enabled"):
                continue
            img = (per_unit or {}).get(i)
            if img is None:
                if get("image") is not None:
                    continue
                img = frame
            # Forge reads image_fg[:, :, 3]; None fails on near-black frames
            new = {"image": np.ascontiguousarray(img, np.uint8), "image_fg": np.zeros(img.shape[:2] + (4,), np.uint8)}
            args[k] = {**unit, **new} if isinstance(unit, dict) else dataclasses.replace(unit, **new)
            fed += 1
        if fed:
            p.script_args = tuple(args) if isinstance(p.script_args, tuple) else args
        return fed


# ------------------------------------------------------------------ host identity

REQUEST_FIELDS = ("styles", "restore_faces", "tiling", "eta", "s_churn", "s_tmin", "s_tmax", "s_noise",
                  "s_min_uncond", "image_cfg_scale", "initial_noise_multiplier", "seed_resize_from_w",
                  "seed_resize_from_h", "refiner_checkpoint", "refiner_switch_at", "override_settings")
"""img2img parameters on ``p`` that change pixels and that vid2vid's settings do not already carry (prompt,
negative prompt, sampler, scheduler, steps, CFG, denoise, seed, size and batch size are settings; each
frame's init image, mask and seed are vid2vid's)."""
_UNIT_NOISE = ("is_ui", "low_vram", "save_detected_map")
"""ControlNet unit fields that do not change pixels."""


def host_identity(p: Any) -> dict[str, Any]:
    """What this WebUI uses to make a frame from ``p`` beyond vid2vid's own settings: checkpoint, VAE,
    ControlNet units, the other always-on scripts' args, pixel-changing options and img2img parameters, as
    plain data that is equal across runs for an unchanged setup (lib_vid2vid/identity.py)."""
    from .. import identity

    _, shared = _host()
    controlnet, scripts = _alwayson_identity(p)
    opts = getattr(shared, "opts", None)
    options = {}
    for name in identity.PIXEL_OPTIONS:
        try:
            options[name] = identity.stable(getattr(opts, name))
        except AttributeError:  # not an option of this host
            continue
    request = {}
    for name in REQUEST_FIELDS:
        if hasattr(p, name):
            value = getattr(p, name)
            if name == "override_settings":  # vid2vid's own options do not change pixels
                value = {k: v for k, v in (value or {}).items() if not str(k).startswith(OPT_PREFIX)}
            request[name] = identity.stable(value)
    return {"renderer": "a1111", "checkpoint": _checkpoint_identity(shared), "vae": _vae_identity(),
            "controlnet": controlnet, "scripts": scripts, "options": options, "request": request}


def _checkpoint_identity(shared: Any) -> dict[str, Any]:
    """Name and short hash (first 10 hex digits of the SHA-256) of the checkpoint the next frame renders with.

    That is the loaded one, except on Forge, which loads the chosen checkpoint on the first generation after a
    start or a change (its ``forge_loading_parameters``): before that ``shared.sd_model`` is None or stale, and
    the chosen checkpoint's hash may not be computed yet. The identity must not depend on whether a render ran
    before: the same checkpoint gives the same name and hash, so a job started first after a WebUI start resumes.
    """
    opts = getattr(shared, "opts", None)
    model = getattr(shared, "sd_model", None)
    info = _pending_checkpoint(model) or getattr(model, "sd_checkpoint_info", None)
    name = getattr(info, "name", None) or getattr(info, "title", None) or getattr(opts, "sd_model_checkpoint", None)
    digest = getattr(info, "shorthash", None) or getattr(info, "sha256", None)
    if not digest and callable(getattr(info, "calculate_shorthash", None)):
        digest = _call(info, "calculate_shorthash")  # what the WebUI does when it loads it (cached by the WebUI)
    digest = digest or getattr(opts, "sd_checkpoint_hash", None) or getattr(model, "sd_model_hash", None)
    return {"name": str(name) if name else None, "hash": str(digest)[:10] if digest else None}


def _pending_checkpoint(model: Any) -> Any:
    """Forge: the CheckpointInfo its next generation loads (``model_data.forge_loading_parameters``); with no
    model loaded on another host, the one the WebUI selected (``sd_models.select_checkpoint``). None otherwise."""
    try:
        from modules import sd_models  # noqa: PLC0415 - host import
    except Exception:  # noqa: BLE001 - a host without it
        return None
    loading = getattr(getattr(sd_models, "model_data", None), "forge_loading_parameters", None)
    if isinstance(loading, dict) and loading.get("checkpoint_info") is not None:
        return loading["checkpoint_info"]
    if model is None and callable(getattr(sd_models, "select_checkpoint", None)):
        try:
            return sd_models.select_checkpoint()
        except Exception:  # noqa: BLE001 - no checkpoint at all: the render says so
            return None
    return None


def _vae_identity() -> dict[str, Any] | None:
    """Name and hash of the VAE file the WebUI loaded over the checkpoint's own (None: the host has no
    modules.sd_vae)."""
    try:
        from modules import sd_vae  # noqa: PLC0415 - host import

        name = sd_vae.get_loaded_vae_name()
        digest = sd_vae.get_loaded_vae_hash() if name else None
    except Exception:  # noqa: BLE001 - an older or different host
        return None
    return {"name": name or "the checkpoint's own", "hash": digest}


def _alwayson_identity(p: Any) -> tuple[list[Any], dict[str, Any]]:
    """(ControlNet units, {title: args} of the other always-on scripts) from ``p.script_args``."""
    from .. import identity

    runner = getattr(p, "scripts", None)
    args = list(getattr(p, "script_args", None) or [])
    units: list[Any] = []
    scripts: dict[str, Any] = {}
    for sc in getattr(runner, "alwayson_scripts", None) or []:
        try:
            title = str(sc.title())
        except Exception:  # noqa: BLE001 - a script whose title() fails is still a script
            title = type(sc).__name__
        lo, hi = getattr(sc, "args_from", None), getattr(sc, "args_to", None)
        own = args[lo:hi] if isinstance(lo, int) and isinstance(hi, int) else []
        if title.lower() == "controlnet":
            units += [_readable(_unit_identity, u) for u in own]
            continue
        name, k = title, 2
        while name in scripts:
            name, k = f"{title} #{k}", k + 1
        scripts[name] = _readable(identity.stable, own)
    return units, scripts


def _readable(describe: Any, value: Any) -> Any:
    """``describe(value)``, or a fixed marker when an extension's object cannot be read (never a traceback)."""
    try:
        return describe(value)
    except Exception as exc:  # noqa: BLE001 - extensions' objects are not ours to trust
        return f"<unreadable {type(value).__qualname__}: {type(exc).__name__}>"


def _unit_identity(unit: Any) -> Any:
    """A ControlNet unit as plain data (its own image as a hash); None when it is off."""
    from .. import identity

    enabled = unit.get("enabled", True) if isinstance(unit, dict) else getattr(unit, "enabled", True)
    if not enabled:
        return None
    data = identity.stable(unit)
    if isinstance(data, dict):
        for key in _UNIT_NOISE:
            data.pop(key, None)
    return data


def _copy_unit(unit: Any) -> Any:
    if isinstance(unit, dict):
        return dict(unit)
    if dataclasses.is_dataclass(unit):
        return dataclasses.replace(unit)
    if callable(getattr(unit, "copy", None)):
        return unit.copy()  # pydantic: copy.copy() of a v1 model shares its __dict__ with the original
    return copy.copy(unit)


def face_restoration_notice(p: Any) -> str | None:
    """One line when "Restore faces" is on but does nothing, else None. The WebUI then still writes "Face
    restoration: <model>" into every infotext: when no restorer has the chosen name, or when the restorer
    could not load its model (A1111's CommonFaceRestoration logs "Unable to load face-restoration model",
    keeps ``net`` None and returns the image unchanged). Ask after a frame: models load on first use."""
    _, shared = _host()
    opts = getattr(shared, "opts", None)
    overrides = getattr(p, "override_settings", None) or {}
    on = getattr(p, "restore_faces", None)
    if on is None:
        on = overrides.get("face_restoration", getattr(opts, "face_restoration", False))
    if not on:
        return None
    name = overrides.get("face_restoration_model", getattr(opts, "face_restoration_model", None))
    found = [r for r in getattr(shared, "face_restorers", None) or [] if name is None or _call(r, "name") == name]
    if not found:
        return (f'"Restore faces" is on but the WebUI has no face restorer {name!r}: frames are not restored '
                f'(their infotext says they are); pick one in Settings > Face restoration, or turn it off')
    if hasattr(found[0], "net") and found[0].net is None:
        return (f'"Restore faces" is on but the WebUI could not load the {name} model (its console says "Unable '
                f'to load face-restoration model"): frames are not restored (their infotext says they are); fix '
                f'the model or turn Restore faces off')
    return None


def _call(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)()
    except Exception:  # noqa: BLE001 - an extension's restorer
        return None


_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
"""One "name: value" entry of an infotext's last line (a value with commas is a JSON string), as the WebUI
writes and reads them."""


def frame_params(infotext: str) -> dict[str, str]:
    """The "name: value" entries of a frame's infotext (its last line, as in the frame's PNG), e.g. Steps,
    Sampler, and those of other scripts such as ADetailer's; quoted values unquoted."""
    lines = (infotext or "").strip().splitlines()
    if not lines or ":" not in lines[-1]:
        return {}
    out = {}
    for key, value in _PARAM.findall(lines[-1]):
        value = value.strip()
        if len(value) > 1 and value[0] == '"' and value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key.strip()] = value
    return out


def stop_requested(state: Any) -> bool:
    """Interrupt, or the first click under "Don't Interrupt in the middle" (``interrupt_after_current``, on by
    default), which only sets ``stopping_generation``: both mean "stop after the current frame"."""
    return bool(getattr(state, "interrupted", False) or getattr(state, "stopping_generation", False))


# ------------------------------------------------------------------ renderer

def seed_global_generators(seed: int) -> None:
    """Seed torch (CPU and every accelerator), numpy and Python's ``random`` global generators from the frame's
    seed, so a frame's pixels do not depend on what ran in the process before it.

    The WebUI draws from torch's global generator while encoding the init image (before it seeds its own noise
    for sampling), so without this the first frame after a resume, or after any other request, can differ from
    the same frame in an uninterrupted run. numpy's seed must fit in 32 bits: ``seed mod 2**32``.
    """
    import torch  # noqa: PLC0415 - the host always has torch

    seed = int(seed)
    torch.manual_seed(seed)  # also seeds CUDA (and other accelerators) when present
    np.random.seed(seed % 2**32)
    random.seed(seed)


class A1111Renderer:
    """Renders frames through the WebUI's own ``process_images`` on copies of the img2img tab's ``p``."""

    def __init__(self, p: Any, *, controlnet: ControlNetBridge | None = None):
        self.p = p
        self.controlnet = controlnet or ControlNetBridge(None)
        self.last_infotext = ""
        self.skipped_frames: list[int] = []
        self._notices: list[str] = []
        self._host_checked = False

    def take_notices(self) -> list[str]:
        """Every note about the host found so far (see :func:`face_restoration_notice`). Each call returns them
        all: the loop logs a note once per job, so each job of a batch says it, not only the first."""
        return list(self._notices)

    def _check_host(self) -> None:
        """After the first frame: options that are on but do nothing, said once."""
        if self._host_checked:
            return
        self._host_checked = True
        note = face_restoration_notice(self.p)
        if note:
            print(f"vid2vid: {note}")
            self._notices.append(note)

    def _frame_p(self, req: RenderRequest) -> Any:
        p2 = copy.copy(self.p)
        # copy.copy shares the lists process_images appends to every frame (Forge keeps latents there): fresh
        # ones per frame, or memory grows with the video
        for name in ("extra_result_images", "latents_after_sampling", "pixels_after_sampling"):
            if isinstance(getattr(p2, name, None), list):
                setattr(p2, name, [])
        p2.override_settings = dict(getattr(self.p, "override_settings", None) or {})
        p2.init_images = [Image.fromarray(req.init)]
        p2.image_mask = None if req.mask is None else Image.fromarray(
            np.clip(req.mask * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
        if req.mask is not None:
            p2.mask_blur = 0
            p2.inpainting_fill = 1  # "original": repaint from the init inside the mask
            p2.inpaint_full_res = False
            p2.override_settings.update({"return_mask": False, "return_mask_composite": False})
        p2.width, p2.height = req.width, req.height
        p2.seed, p2.subseed, p2.subseed_strength = int(req.seed), int(req.subseed), float(req.subseed_strength)
        p2.denoising_strength = float(req.denoise)
        p2.steps, p2.cfg_scale = int(req.steps), float(req.cfg)
        p2.prompt, p2.negative_prompt = req.prompt, req.negative_prompt
        p2.batch_size, p2.n_iter = int(req.batch_size), int(req.n_iter)
        p2.do_not_save_samples = True
        p2.do_not_save_grid = True
        p2.extra_generation_params = dict(getattr(self.p, "extra_generation_params", None) or {})
        p2.extra_generation_params.update(req.extra.get("infotext", {}))
        if req.sigmas is not None:
            schedule = req.sigmas

            def override(steps: int):
                import torch  # noqa: PLC0415 - the host always has torch

                return torch.tensor(schedule(steps), dtype=torch.float32)

            p2.sampler_noise_scheduler_override = override
        self.controlnet.apply(p2, req.control_image)
        return p2

    def host_identity(self) -> dict[str, Any]:
        """Part of the job's identity: see :func:`host_identity`."""
        return host_identity(self.p)

    def depth_estimator(self, kind: str):
        """The host's own MiDaS (A1111: ldm's loader reading models/midas, fetched by the WebUI on first use).
        None on hosts without it (Forge has no ldm): the depth stage then loads a weight file itself."""
        try:
            from ldm.modules.midas import api as midas_api  # noqa: PLC0415 - host import
            from modules import sd_models  # noqa: PLC0415
        except ImportError:
            return None
        from ..depth_estimator import DepthEstimator

        enable = getattr(sd_models, "enable_midas_autodownload", None)
        if enable:
            enable()
        model, _transform = midas_api.load_model(kind)
        return DepthEstimator.from_module(model, kind)

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        processing, shared = _host()
        state = shared.state
        if stop_requested(state):
            raise Interrupted("interrupted in the WebUI")
        p2 = self._frame_p(request)
        seed_global_generators(request.seed)
        try:
            processed = processing.process_images(p2)
        finally:
            close = getattr(p2, "close", None)
            if close:
                close()
        if state.interrupted or (getattr(state, "stopping_generation", False) and not processed.images):
            raise Interrupted("interrupted in the WebUI")
        want = request.batch_size * request.n_iter
        if getattr(state, "skipped", False):
            state.skipped = False
            self.skipped_frames.append(request.frame_index)
            return [request.init.copy() for _ in range(want)]
        images = [np.asarray(im.convert("RGB")) for im in processed.images[:want]]
        if len(images) < want:
            raise Vid2VidError(f"The WebUI returned {len(images)} images for frame {request.frame_index}, "
                               f"expected {want}")
        infotexts = getattr(processed, "infotexts", None) or [getattr(processed, "info", "")]
        self.last_infotext = infotexts[0] if infotexts else ""
        self._check_host()
        return images


# ------------------------------------------------------------------ the Script's run()

def settings_from_script(p: Any, args: tuple | list) -> params.Settings:
    """Settings from the Script's args, with the img2img tab's own values (prompt, sampler, size ...)."""
    base = params.Settings().replace(
        prompt=p.prompt or "",
        negative_prompt=p.negative_prompt or "",
        sampler=getattr(p, "sampler_name", None) or "Euler",
        scheduler=getattr(p, "scheduler", None) or "Automatic",
        steps=int(p.steps),
        cfg_scale=float(p.cfg_scale),
        denoise=float(p.denoising_strength if p.denoising_strength is not None else 0.45),
        seed=int(p.seed) if p.seed is not None and int(p.seed) >= 0 else -1,
        batch_size=int(p.batch_size),
        width=int(p.width) // 8 * 8,
        height=int(p.height) // 8 * 8,
        output_dir=str(host_option("output_dir", "outputs/vid2vid", p) or "outputs/vid2vid"),
    )
    return params.settings_from_api_args(list(args), base=base)


def materialise_input(value: str, output_dir: str | Path) -> str:
    """A server path as is; base64 video data (API) saved once under ``<output_dir>/uploads/``."""
    text = (value or "").strip()
    if not text:
        raise Vid2VidError("No video given: upload one in the Video tab or give its path on the server")
    if len(text) < 4096 and Path(text).expanduser().exists():
        return str(Path(text).expanduser())
    is_data_url = text.startswith("data:")  # base64 whatever its length (a tiny clip is shorter than 4096)
    if is_data_url:
        text = text.split(",", 1)[-1]
    if len(text) < 4096 and not is_data_url:
        raise Vid2VidError(f"Video not found: {value!r}: give an existing path on the server or base64 video data")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Vid2VidError("The video argument is neither an existing path nor valid base64 data") from None
    uploads = Path(output_dir) / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"{hashlib.sha256(data).hexdigest()[:16]}.video"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def split_batch_input(args: tuple | list) -> tuple[list, list[str] | None]:
    """(script args, the batch's sources or None). The video argument is a batch when it is a list (API:
    paths or base64 videos), several lines (one path per line), a folder on the server or a glob pattern; the
    args then carry "" in its place."""
    from .. import batch

    args = list(args)
    at = params.api_arg_names().index("input")
    value = args[at] if len(args) > at else None
    if isinstance(value, (list, tuple)):
        sources = [str(v) for v in value]
    elif isinstance(value, str) and len(value) < 4096:
        sources = [line.strip() for line in value.splitlines() if line.strip()]
        if not batch.is_batch(sources):
            return args, None
    else:
        return args, None
    args[at] = ""
    return args, sources


def _is_data(text: str) -> bool:
    return text.startswith("data:") or len(text) >= 4096


def _run_batch(p: Any, settings: params.Settings, sources: list[str]) -> Any:
    """Each video its own job (lib_vid2vid/batch.py); the result lists every video with its state."""
    from .. import batch
    from ..report import format_report

    _, shared = _host()
    state = shared.state
    out_dir = settings.job.output_dir
    paths = [materialise_input(src, out_dir) if _is_data(src) else src for src in sources]
    videos = batch.find_videos(paths, exclude=[out_dir])
    if not videos:
        raise Vid2VidError("No videos found: give video paths on the server (one per line), a folder that holds "
                           "videos, or upload videos")
    renderer = A1111Renderer(p, controlnet=ControlNetBridge.find())
    passes = settings.temporal.loopback_passes
    current = {"number": 0}

    def progress(bp: batch.BatchProgress) -> None:
        if bp.number != current["number"]:  # a new video: the WebUI's bar counts this video's frames
            current["number"] = bp.number
            state.job_count = bp.frame.total * passes
            state.job_no = 0
        state.textinfo = f"vid2vid {bp.text}"
        if bp.frame.last_frame is not None:
            state.assign_current_image(Image.fromarray(bp.frame.last_frame))

    result = batch.run_batch(settings, renderer, videos, new=settings.job.new_job,
                             should_stop=lambda: stop_requested(state), progress=progress,
                             notify=lambda line: print(f"vid2vid: {line}"))
    counts = ", ".join(f"{n} {k}" for k, n in result.counts().items())
    lines = [f"vid2vid batch: {result.status}, {len(result.items)} videos ({counts})"]
    for n, item in enumerate(result.items, 1):
        frames = f"{item.frames}/{item.total}" if item.total is not None else "-"
        lines.append(f"{n}. {item.name}: {item.state}, {frames} frames"
                     + (f", {item.output}" if item.output else "")
                     + (f": {item.error}" if item.error else "")
                     + (f"; report: {format_report(item.report)}" if item.report else ""))
    notices = list(dict.fromkeys(n for item in result.items for n in item.notices))
    lines += notices
    if result.status == "interrupted":
        lines.append("Interrupted: press Generate again to resume the batch (finished videos are skipped)")
    lines.append(f"batch: {result.path}")
    previews = []
    for item in result.items:
        if item.job_dir and item.total:
            previews += _preview_images(Path(item.job_dir), f"pass{passes}", item.total)[1:2]
    videos_info = [{"video": i.video, "state": i.state, "job_dir": i.job_dir, "output": i.output,
                    "frames_done": i.frames, "total": i.total, "seconds": i.seconds, "width": i.width,
                    "height": i.height, "error": i.error, "report": i.report, "notices": i.notices}
                   for i in result.items]
    frame = frame_params(renderer.last_infotext)
    scripts = _scripts_params(p, frame)
    if scripts:
        lines.insert(-1, "other scripts on every frame: " + ", ".join(f"{k}: {v}" for k, v in scripts.items()))
    return _processed(p, previews, "\n".join(lines), {"status": result.status, "batch": str(result.path),
                                                       "videos": videos_info, "notices": notices,
                                                       "frame_params": frame})


def _preview_images(job_dir: Path, stage: str, total: int) -> list[Image.Image]:
    frames = job_dir / "frames" / stage
    picks = sorted({0, total // 2, total - 1})
    out = []
    for i in picks:
        f = frames / f"{i:06d}.png"
        if f.is_file():
            out.append(Image.open(f).convert("RGB"))
    return out


def run_script(p: Any, args: tuple | list) -> Any:
    """The body of the vid2vid Script's ``run``: returns a ``modules.processing.Processed``."""
    processing, shared = _host()
    state = shared.state
    try:
        args, sources = split_batch_input(args)
        settings = settings_from_script(p, args)
        if sources is not None:
            return _run_batch(p, settings, sources)
        settings = settings.replace(input=materialise_input(settings.video.input, settings.job.output_dir))
        if settings.preview.preview_mode != "video":
            return _run_preview(p, settings)
        return _run_video(p, settings)
    except Vid2VidError as exc:
        print(f"vid2vid: {exc}")
        state.textinfo = f"vid2vid: {exc}"
        return _processed(p, [], f"vid2vid error: {exc}", {"status": "error", "error": str(exc)})


def _processed(p: Any, images: list, info: str, result: dict[str, Any]) -> Any:
    """A Processed whose ``info`` the UI shows, and whose extra_generation_params carry ``result`` as
    ``vid2vid_*`` keys for API callers (the API's reply holds extra_generation_params, not ``info``)."""
    processing, _ = _host()
    p.extra_generation_params = dict(getattr(p, "extra_generation_params", None) or {})
    p.extra_generation_params.update({f"vid2vid_{k}": v for k, v in result.items()})
    p.extra_generation_params["vid2vid_info"] = info
    processed = processing.Processed(p, images, getattr(p, "seed", -1), info,
                                     infotexts=[info] * max(1, len(images)))
    processed.vid2vid = dict(result)
    return processed


def _run_video(p: Any, settings: params.Settings) -> Any:
    from .. import video_probe
    from ..pipeline import make_plan, run_job

    processing, shared = _host()
    state = shared.state
    info = video_probe.probe(settings.video.input)
    plan = make_plan(settings, info)
    renderer = A1111Renderer(p, controlnet=ControlNetBridge.find())
    passes = settings.temporal.loopback_passes
    state.job_count = plan.total * passes * settings.sampling.batch_size and plan.total * passes
    state.job_no = 0

    def progress(pr) -> None:
        state.textinfo = f"vid2vid {pr.stage}: frame {pr.done}/{pr.total}"  # the WebUI shows its own ETA
        if pr.last_frame is not None:
            state.assign_current_image(Image.fromarray(pr.last_frame))

    result = run_job(settings, renderer, resume=settings.job.resume_job or None, new=settings.job.new_job,
                     should_stop=lambda: stop_requested(state), progress=progress,
                     notify=lambda line: print(f"vid2vid: {line}"))
    previews = _preview_images(result.job_dir, f"pass{passes}", plan.total)
    lines = [f"vid2vid: {result.status}, {result.frames_done}/{result.total} frames",
             f"job: {result.job_dir}", *result.notices]
    if result.video_path:
        lines.append(f"video: {result.video_path}")
    if result.message:
        lines.append(result.message)
    if renderer.skipped_frames:
        lines.append(f"skipped (kept as init): {renderer.skipped_frames}")
    if result.report:
        from ..report import format_report

        lines.append(f"report: {format_report(result.report)}")
    frame = frame_params(renderer.last_infotext)
    scripts = _scripts_params(p, frame)
    if scripts:
        lines.append("other scripts on every frame: " + ", ".join(f"{k}: {v}" for k, v in scripts.items()))
    info = "\n".join(lines)
    return _processed(p, previews, info, {"status": result.status, "job_dir": str(result.job_dir),
                                          "video": str(result.video_path) if result.video_path else None,
                                          "frames_done": result.frames_done, "total": result.total,
                                          "notices": list(result.notices), "frame_params": frame})


def _scripts_params(p: Any, frame: dict[str, str]) -> dict[str, str]:
    """The entries of ``frame`` (a frame's infotext parameters) written by the other always-on scripts:
    names starting with a script's title (ADetailer's "ADetailer model", "ADetailer confidence" ...)."""
    titles = []
    for sc in getattr(getattr(p, "scripts", None), "alwayson_scripts", None) or []:
        title = _call(sc, "title")
        if title and str(title).lower() != SCRIPT_TITLE:
            titles.append(str(title))
    return {k: v for k, v in frame.items() if any(k.startswith(t) for t in titles)}


def _run_preview(p: Any, settings: params.Settings) -> Any:
    from .. import debug_fdc, debug_render, debug_sweep

    processing, _ = _host()
    renderer = A1111Renderer(p, controlnet=ControlNetBridge.find())
    frame = settings.preview.preview_frame
    if settings.preview.preview_mode == "frame":
        res = debug_render.render_single_frame(settings, renderer, frame=frame)
        images = [Image.fromarray(res.output)]
        info = f"vid2vid single frame {frame}: sigmas {json.dumps(getattr(res, 'sigmas_text', ''))}"
        return _processed(p, images, info, {"status": "preview", "frame": frame})
    elif settings.preview.preview_mode == "fdc_debug":
        panel, res = debug_fdc.fdc_debug(settings, renderer, frame=frame)
        info = f"vid2vid FDC debugger, frame {frame}: {res.note}"
        return _processed(p, [Image.fromarray(panel), Image.fromarray(res.output)], info,
                          {"status": "preview", "frame": frame})
    else:
        grid, plot, _cells = debug_sweep.run_sweep(settings, renderer,
                                                   debug_sweep.parse_sweep(settings.preview.preview_sweep), frame=frame)
        images = [Image.fromarray(grid), Image.fromarray(plot)]
        info = f"vid2vid sweep on frame {frame}: {settings.preview.preview_sweep}"
        return _processed(p, images, info, {"status": "preview", "frame": frame})


# ------------------------------------------------------------------ UI glue

_HOST_COMPONENTS: dict[str, Any] = {}
"""img2img components captured through Script.after_component (steps, denoise, sampler) for the sigma preview."""
_WATCHED = {"img2img_steps": "steps", "img2img_denoising_strength": "denoise", "img2img_sampling": "sampler"}


def remember_component(elem_id: str | None, component: Any) -> None:
    if elem_id in _WATCHED:
        _HOST_COMPONENTS[_WATCHED[elem_id]] = component


def output_dir() -> str:
    return str(host_option("output_dir", "") or "outputs/vid2vid")


def sigmas_text(values: dict[str, Any]) -> str:
    """The img2img tail the host will use for the shown settings (steps/denoise/sampler from the img2img tab)."""
    from .. import sigmas
    from ..errors import SettingsError

    if values.get("sigma_schedule", "host") == "host":
        return "host schedule (no override)"
    try:
        cfg = sigmas.SigmaSettings(schedule=values["sigma_schedule"], sigma_min=float(values["sigma_min"]),
                                   sigma_max=float(values["sigma_max"]), rho=float(values["rho"]))
        steps = int(values.get("steps") or 20)
        denoise = float(values.get("denoise") if values.get("denoise") is not None else 0.45)
        sampler = values.get("sampler")
        used = sigmas.used_sigmas(cfg, steps, denoise, fix_steps=bool(host_option_raw("img2img_fix_steps", False)),
                                  sampler_name=sampler)
    except SettingsError as exc:
        return f"invalid: {exc}"
    text = sigmas.describe(used)
    warning = sigmas.override_warning(sampler, values["sigma_schedule"]) if sampler else None
    return f"{text}\n{warning}" if warning else text


def host_option_raw(name: str, default: Any) -> Any:
    try:
        _, shared = _host()
        return getattr(shared.opts, name, default)
    except Exception:  # noqa: BLE001 - outside a host
        return default


def open_job_folder(name: str) -> str:
    """Open a job's folder in the desktop's file manager, as the WebUI's own folder buttons do (disabled by
    the WebUI with --hide-ui-dir-config); returns a line for the UI."""
    from ..workspace import Job

    if not name:
        return "Pick a job first."
    try:
        job = Job.resolve(name, output_dir())
        from modules import shared  # noqa: PLC0415

        if getattr(shared.cmd_opts, "hide_ui_dir_config", False):
            return f"{job.root} (opening folders is disabled on this server)"
        try:
            from modules.util import open_folder  # noqa: PLC0415 - A1111 1.7+
        except ImportError:
            from modules.ui_common import open_folder  # noqa: PLC0415 - older hosts
        open_folder(str(job.root))
        return f"opened {job.root}"
    except Vid2VidError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a headless server has no file manager
        return f"{name}: cannot open a file manager here ({exc})"


def list_unfinished_jobs() -> list[str]:
    from ..workspace import list_jobs

    return [job.root.name for job in list_jobs(output_dir()) if job.status != "done"]


def job_folder(name: str) -> str:
    from ..workspace import Job

    if not name:
        return ""
    try:
        job = Job.resolve(name, output_dir())
    except Vid2VidError as exc:
        return str(exc)
    stages = ", ".join(f"{k} {v.get('done', 0)}/{v.get('total', '?')}" for k, v in job.manifest["stages"].items())
    return f"{job.root}  ({job.status}; {stages})"


def suggest_prompt(video_path: str, samples: int = 4, top: int = 20) -> str:
    """Interrogate a few frames across the video with the host's DeepBooru (tags) or CLIP; most frequent first."""
    from collections import Counter

    from .. import video_decode, video_probe

    if not video_path:
        return "Give a video first."
    try:
        info = video_probe.probe(video_path)
        n = info.frame_count
        wanted = sorted({int(n * (k + 0.5) / samples) for k in range(samples)})
        frames = [rgb for i, rgb in video_decode.iter_frames(video_path) if i in wanted]
    except Vid2VidError as exc:
        return str(exc)
    tags: Counter[str] = Counter()
    try:
        from modules import deepbooru  # noqa: PLC0415

        deepbooru.model.start()
        try:
            for rgb in frames:
                tags.update(t.strip() for t in deepbooru.model.tag_multi(Image.fromarray(rgb)).split(",") if t.strip())
        finally:
            deepbooru.model.stop()
    except Exception as exc_db:  # noqa: BLE001 - fall back to CLIP
        try:
            _, shared = _host()
            for rgb in frames:
                caption = shared.interrogator.interrogate(Image.fromarray(rgb))
                if not caption or caption.strip() == "<error>":  # the host swallowed its own failure
                    raise RuntimeError("the interrogator failed; see the console")
                tags.update(t.strip() for t in caption.split(",") if t.strip())
        except Exception as exc_clip:  # noqa: BLE001
            return f"Interrogation failed (DeepBooru: {exc_db}; CLIP: {exc_clip})"
    return ", ".join(t for t, _ in tags.most_common(top))


def build_ui(script: Any) -> list[Any]:
    import gradio as gr

    from .. import ui

    defaults = {
        "output_format": host_option("output_format", "mp4"),
        "crf": host_option("crf", 18),
        "keep_frames": host_option("keep_frames", True),
    }
    from .. import postprocess

    host = {"list_jobs": list_unfinished_jobs, "job_folder": job_folder, "open_folder": open_job_folder,
            "sigmas_text": sigmas_text,
            "suggest_prompt": suggest_prompt, **_HOST_COMPONENTS,
            "choices": {"upscaler": list(dict.fromkeys(["None", *postprocess.available_upscalers()]))}}
    return ui.build(gr, elem_id=script.elem_id, defaults=defaults, host=host)


class HostUpscaler:
    """One of the WebUI's upscalers (``shared.sd_upscalers``: R-ESRGAN 4x+, 4x+ Anime6B, ...) as an Upscaler."""

    def __init__(self, data: Any, scale: float):
        self.data = data
        self.name = data.name
        self.scale = float(scale)

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        from ..pipeline import fit_size

        img = Image.fromarray(rgb)
        if not getattr(self, "_checked", False):
            # the WebUI hands the image back unchanged when a model cannot load, then silently resizes it
            # with Lanczos: try the model once and stop with a clear line instead
            scaler = self.data.scaler
            do = getattr(scaler, "do_upscale", None)
            if do is not None:
                scaler.scale = self.scale  # Lanczos/Nearest read it; upscale() sets it the same way
            if do is not None and do(img, self.data.data_path).size == img.size:
                raise Vid2VidError(f"upscaler {self.name}: the WebUI could not load its model (see the console); "
                                   f"choose another upscaler")
            self._checked = True
        out = self.data.scaler.upscale(img, self.scale, self.data.data_path)
        h, w = rgb.shape[:2]
        return fit_size(np.asarray(out.convert("RGB")), round(w * self.scale), round(h * self.scale))


def webui_upscalers() -> dict[str, Any]:
    """{name: factory(scale)} for the WebUI's upscalers (asked afresh each time, so new models show up)."""
    try:
        _, shared = _host()
        found = list(getattr(shared, "sd_upscalers", None) or [])
    except Exception:  # noqa: BLE001 - outside a host
        return {}
    return {d.name: (lambda scale, d=d: HostUpscaler(d, scale)) for d in found
            if d.name not in ("None", "") and getattr(d, "scaler", None) is not None}


def register_postprocess() -> None:
    """Offer the WebUI's upscalers by name, and look for RIFE weights in its models/RIFE folder."""
    from .. import postprocess

    postprocess.register_upscaler_provider(webui_upscalers)
    try:
        from modules import paths  # noqa: PLC0415

        postprocess.register_rife_dir(Path(paths.models_path) / "RIFE")
    except Exception:  # noqa: BLE001 - older hosts without modules.paths.models_path
        pass


def register_settings() -> None:
    """Settings > vid2vid: output folder, keep intermediate frames, default codec and quality."""
    from modules import script_callbacks, shared  # noqa: PLC0415

    def on_ui_settings():
        section = ("vid2vid", "vid2vid")
        add = shared.opts.add_option
        add(OPT_PREFIX + "output_dir", shared.OptionInfo("outputs/vid2vid", "Output folder for vid2vid jobs",
                                                         section=section))
        add(OPT_PREFIX + "keep_frames", shared.OptionInfo(True, "Keep intermediate PNG frames (needed to resume)",
                                                          section=section))
        add(OPT_PREFIX + "output_format", shared.OptionInfo("mp4", "Default video format", gr_radio(),
                                                            {"choices": list(params.OUTPUT_FORMATS)},
                                                            section=section))
        add(OPT_PREFIX + "crf", shared.OptionInfo(18, "Default quality (CRF, lower is better)", gr_slider(),
                                                  {"minimum": 0, "maximum": 51, "step": 1}, section=section))

    script_callbacks.on_ui_settings(on_ui_settings)


def gr_radio():
    import gradio as gr

    return gr.Radio


def gr_slider():
    import gradio as gr

    return gr.Slider
