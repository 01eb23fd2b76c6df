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
import os
import random
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import params, ui_result
from ..errors import Interrupted, Vid2VidError
from ..renderer import RenderRequest

SCRIPT_TITLE = "vid2vid"
NOISE_SCRIPT_TITLE = "vid2vid noise"
"""The always-on companion script (scripts/vid2vid_noise.py) that hands warped noise to the sampler."""
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
                if _has_own_image(getattr(unit, "image", None)):
                    continue  # the user gave this unit its own image
                img = frame
            entry = {"image": img, "mask": np.zeros(img.shape[:2] + (3,), np.uint8)}
            # a unit in "Merge" input mode takes a list of images (the extension asserts it is a list)
            unit.image = [entry] if _merge_mode(unit) else entry
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
                if _has_own_image(get("image")):
                    continue
                img = frame
            # Forge reads image_fg[:, :, 3]; None fails on near-black frames
            new = {"image": np.ascontiguousarray(img, np.uint8), "image_fg": np.zeros(img.shape[:2] + (4,), np.uint8)}
            args[k] = {**unit, **new} if isinstance(unit, dict) else dataclasses.replace(unit, **new)
            fed += 1
        if fed:
            p.script_args = tuple(args) if isinstance(p.script_args, tuple) else args
        return fed


def _has_own_image(image: Any) -> bool:
    """Whether a unit carries an image of its own (an empty Merge list does not)."""
    return image is not None and not (isinstance(image, (list, tuple)) and not image)


def _merge_mode(unit: Any) -> bool:
    """sd-webui-controlnet's InputMode.MERGE (value "merge"), on a unit object or dict."""
    mode = unit.get("input_mode") if isinstance(unit, dict) else getattr(unit, "input_mode", None)
    return str(getattr(mode, "value", mode) or "").lower() == "merge"


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
        if title == NOISE_SCRIPT_TITLE:
            continue  # ours, no args: acts only on vid2vid's own frames
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


# ------------------------------------------------------------------ warped noise

class FrameNoise:
    """vid2vid's noise for one frame, on that frame's ``p`` (``p.vid2vid_noise``), until the companion script
    copies it into the sampler's noise. ``noise``: float32 (batch_size * n_iter, C, h, w); ``applied``: the
    batch iterations that received it; ``error``: why one did not."""

    def __init__(self, noise: np.ndarray, strength: float):
        self.noise, self.strength = noise, float(strength)
        self.applied: list[int] = []
        self.error = ""


def apply_frame_noise(p: Any, noise: Any) -> None:
    """The companion script's ``process_before_every_sampling``: overwrite the host's noise tensor in place with
    vid2vid's (``noise.request_noise``: ``sqrt(s) * ours * m + sqrt(1 - s) * host``, m the img2img noise
    multiplier the host already applied). Does nothing for a ``p`` that is not one of vid2vid's frames.

    Route (A1111 1.10 and Forge, modules/processing.py ``StableDiffusionProcessingImg2Img.sample``): ``x =
    self.rng.next()`` (times the noise multiplier), then ``scripts.process_before_every_sampling(p, x=init_latent,
    noise=x, ...)``, then ``sampler.sample_img2img(p, init_latent, x, ...)``, which adds ``x * sigma`` to the init
    latent: the tensor we overwrite is the one the sampler uses."""
    job = getattr(p, "vid2vid_noise", None)
    if not isinstance(job, FrameNoise) or noise is None:
        return
    import math

    import torch  # noqa: PLC0415 - the host always has torch

    it = int(getattr(p, "iteration", 0) or 0)
    bs = int(noise.shape[0])
    ours = job.noise[it * bs:(it + 1) * bs]
    if tuple(ours.shape) != tuple(noise.shape):
        job.error = (f"the sampler's noise is {tuple(noise.shape)} but vid2vid's warped noise is "
                     f"{tuple(ours.shape)} (batch, channels, height/8, width/8)")
        raise Vid2VidError(f"vid2vid warped noise: {job.error}")
    mult = float(getattr(p, "initial_noise_multiplier", None) or 1.0)
    t = torch.from_numpy(np.ascontiguousarray(ours)).to(device=noise.device, dtype=noise.dtype)
    with torch.no_grad():
        if job.strength >= 1.0:
            noise.copy_(t if mult == 1.0 else t * mult)
        else:
            noise.mul_(math.sqrt(1.0 - job.strength)).add_(t, alpha=math.sqrt(job.strength) * mult)
    job.applied.append(it)


def host_latent_channels() -> int:
    """Channels of the loaded model's latent (A1111: ``sd_model.latent_channels``; Forge: its VAE's); 4 if unknown."""
    try:
        _, shared = _host()
        model = shared.sd_model
        value = getattr(model, "latent_channels", None)
        if value is None:
            value = model.forge_objects.vae.latent_channels
        return int(value)
    except Exception:  # noqa: BLE001 - no model loaded yet, or another host
        return 4


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

    def __init__(self, p: Any, *, controlnet: ControlNetBridge | None = None, control_frames: Any = None):
        self.p = p
        self.controlnet = controlnet or ControlNetBridge(None)
        self.control_frames = control_frames
        """A ControlFrames (lib_vid2vid/control_inputs.py): units with their own control video or folder."""
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
        # the job's own (a resumed job's stored ones, not those of the request that resumes it)
        if req.extra.get("sampler"):
            p2.sampler_name = req.extra["sampler"]
        if req.extra.get("scheduler") and hasattr(p2, "scheduler"):
            p2.scheduler = req.extra["scheduler"]
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
        if req.noise is not None:
            p2.vid2vid_noise = FrameNoise(req.noise, req.noise_strength)
        per_unit = self.control_frames.frames(req.frame_index) if self.control_frames is not None else None
        self.controlnet.apply(p2, req.control_image, per_unit)
        return p2

    @property
    def latent_channels(self) -> int:
        """Latent channels of the host's model, for warped noise."""
        return host_latent_channels()

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
        noise = getattr(p2, "vid2vid_noise", None)
        if noise is not None and len(noise.applied) < request.n_iter and processed.images:
            raise Vid2VidError(f"frame {request.frame_index}: the sampler did not get vid2vid's warped noise ("
                               + (noise.error or f"the always-on script '{NOISE_SCRIPT_TITLE}' did not run: check "
                                  f"that scripts/vid2vid_noise.py is loaded and the console for its error")
                               + "); or set noise_mode to seed")
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
    settings = params.settings_from_api_args(list(args), base=base)
    own = host_resize_mode(p)
    if own is not None and settings.video.resize_mode == params.SPEC_BY_NAME["resize_mode"].default:
        settings = settings.replace(resize_mode=own)  # the img2img tab's own Resize mode (the UI hides ours)
    return settings


HOST_RESIZE_MODES = {0: "just_resize", 1: "crop_and_resize", 2: "resize_and_fill", 3: "just_resize"}
"""The img2img tab's "Resize mode" (``p.resize_mode``: just resize, crop and resize, resize and fill, just
resize (latent upscale)) as vid2vid's resize_mode."""


def host_resize_mode(p: Any) -> str | None:
    """vid2vid's resize mode for the img2img tab's own, or None when ``p`` has none."""
    try:
        return HOST_RESIZE_MODES.get(int(getattr(p, "resize_mode", None)))
    except (TypeError, ValueError):
        return None


def materialise_input(value: str, output_dir: str | Path, *, api: bool = True) -> str:
    """A server path as is; base64 video data (API) saved once under ``<output_dir>/uploads/``. ``api``:
    the request came over the API (errors then name the API's forms, else the UI's)."""
    text = (value or "").strip()
    if not text:
        raise Vid2VidError("No video given: upload one in the Video tab or give its path on the server" if not api
                           else "No video given: put a path on the server or base64 video data in the video "
                                "argument (script_args[0])")
    if len(text) < 4096 and Path(text).expanduser().exists():
        return str(Path(text).expanduser())
    is_data_url = text.startswith("data:")  # base64 whatever its length (a tiny clip is shorter than 4096)
    if is_data_url:
        text = text.split(",", 1)[-1]
    if len(text) < 4096 and not is_data_url:
        if not api:
            raise Vid2VidError(f"Video not found: there is no file {value.strip()!r} on the server. Upload the "
                               f"video in the Video tab, or give the full path of a video file on the server")
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


def _rendered_frames(settings: params.Settings) -> str:
    """What the host renders, for the result's line on other scripts (ADetailer acts on keyframes only)."""
    return "every frame" if settings.temporal.keyframe_mode == "off" else "every keyframe"


def _is_data(text: str) -> bool:
    return text.startswith("data:") or len(text) >= 4096


def _run_batch(p: Any, settings: params.Settings, sources: list[str]) -> Any:
    """Each video its own job (lib_vid2vid/batch.py); the result lists every video with its state."""
    from .. import batch
    from ..report import format_report

    _, shared = _host()
    state = shared.state
    out_dir = settings.job.output_dir
    paths = [materialise_input(src, out_dir, api=from_api(p)) if _is_data(src) else src for src in sources]
    videos = batch.find_videos(paths, exclude=[out_dir])
    if not videos:
        raise Vid2VidError("No videos found: give video paths on the server (one per line), a folder that holds "
                           "videos, or upload videos")
    if settings.video.controlnet_inputs.strip():
        raise Vid2VidError("A ControlNet unit's own control video follows one video, not a batch: clear "
                           "\"ControlNet: a unit's own control video\" (Video tab), or run the videos one by one")
    renderer = A1111Renderer(p, controlnet=ControlNetBridge.find())
    passes = settings.temporal.loopback_passes
    current = {"number": 0}

    bar = WebUIProgress(state, passes)

    def progress(bp: batch.BatchProgress) -> None:
        if bp.number != current["number"]:  # a new video: the WebUI's bar counts this video's frames
            current["number"] = bp.number
            state.job_count = bp.frame.total * passes
            state.job_no = 0
        bar.update(bp.frame)
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
            stills = final_stills(Path(item.job_dir)) if item.state in ("done", "skipped") else []
            previews += (stills or _preview_images(Path(item.job_dir), f"pass{passes}", item.total))[1:2]
    videos_info = [{"video": i.video, "state": i.state, "job_dir": i.job_dir, "output": i.output,
                    "frames_done": i.frames, "total": i.total, "seconds": i.seconds, "width": i.width,
                    "height": i.height, "error": i.error, "report": i.report, "notices": i.notices,
                    "files": ui_result.job_files(i.job_dir) if i.job_dir else {}} for i in result.items]
    frame = frame_params(renderer.last_infotext)
    scripts = _scripts_params(p, frame)
    if scripts:
        lines.insert(-1, f"other scripts on {_rendered_frames(settings)}: "
                     + ", ".join(f"{k}: {v}" for k, v in scripts.items()))
    return _processed(p, previews, "\n".join(lines), {"status": result.status, "batch": str(result.path),
                                                       "videos": videos_info, "notices": notices,
                                                       "frame_params": frame})


def final_stills(job_dir: Path, count: int = 3) -> list[Image.Image]:
    """First, middle and last frame of the job's final video (after every post stage: upscale, interpolation,
    finishing), decoded from the file itself; a PNG-sequence result is read from its folder. [] when the job
    has no final video."""
    files = ui_result.job_files(job_dir)
    path = Path(files["video"]) if "video" in files else None
    if path is None:
        return []
    try:
        n = int(json.loads((Path(job_dir) / "manifest.json").read_text())["export"]["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        n = 0
    return video_stills(path, n, count)


def video_stills(path: Path, n: int, count: int = 3) -> list[Image.Image]:
    """First, middle and last frame of the video file ``path`` of ``n`` frames (0: unknown, the first and
    last), decoded from the file itself; a PNG-sequence folder is read from its files. [] when it cannot be
    read."""
    try:
        if path.is_dir():
            pngs = sorted(path.glob("*.png"))
            picks = sorted({0, len(pngs) // 2, len(pngs) - 1}) if pngs else []
            return [Image.open(pngs[i]).convert("RGB") for i in picks]
        import av  # noqa: PLC0415 - a vid2vid dependency

        picks = {0, n // 2, n - 1} if n > 0 else {0}
        kept: dict[int, Image.Image] = {}
        last, index = None, -1
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):  # only the picks are kept
                if index in picks:
                    kept[index] = frame.to_image()
                last = frame
        if last is not None and index not in kept:
            kept[index] = last.to_image()
    except Exception:  # noqa: BLE001 - stills are a convenience: the video itself is linked
        return []
    return [kept[i].convert("RGB") for i in sorted(kept)][:count]


def _preview_images(job_dir: Path, stage: str, total: int) -> list[Image.Image]:
    frames = job_dir / "frames" / stage
    picks = sorted({0, total // 2, total - 1})
    out = []
    for i in picks:
        f = frames / f"{i:06d}.png"
        if f.is_file():
            out.append(Image.open(f).convert("RGB"))
    return out


def resumed_settings(settings: params.Settings) -> params.Settings | None:
    """The stored settings of the job ``resume_job`` names, or None when it names none. A resumed job runs with
    them (:func:`lib_vid2vid.pipeline.run_job`), so its plan, its progress and its units' control videos come from
    them too, and an API request that resumes it need not give the video again."""
    name = settings.job.resume_job.strip()
    if not name:
        return None
    from ..workspace import Job

    return Job.resolve(name, settings.job.output_dir).stored_settings()


def run_script(p: Any, args: tuple | list, script: Any = None) -> Any:
    """The body of the vid2vid Script's ``run`` (``script``: that Script, for its ``args_from``/``args_to``):
    returns a ``modules.processing.Processed``."""
    processing, shared = _host()
    state = shared.state
    try:
        args, sources = split_batch_input(script_args_in_order(p, args, script))
        settings = settings_from_script(p, args)
        if settings.svd.svd_mode:
            return _run_img2vid(p, settings)
        if sources is not None:
            return _run_batch(p, settings, sources)
        stored = resumed_settings(settings)
        if stored is not None:  # the job to resume brings its own video (whatever the box still holds)
            settings = settings.replace(input=stored.video.input)
        settings = settings.replace(input=materialise_input(settings.video.input, settings.job.output_dir,
                                                            api=from_api(p)))
        if settings.preview.preview_mode != "video":
            return _run_preview(p, settings)
        return _run_video(p, settings, stored)
    except Vid2VidError as exc:
        message = str(exc) if from_api(p) else ui_words(exc)
        print(f"vid2vid: {message}")
        state.textinfo = f"vid2vid: {message}"
        _toast(message)
        return _processed(p, [], f"vid2vid error: {message}", {"status": "error", "error": message})


def script_args_in_order(p: Any, args: tuple | list, script: Any = None) -> list:
    """The Script's args as positional values in UI order. Over the API, ``script_args`` may be one dict of named
    values (``[{"input": ..., "fps": 12}]``; what follows it in ``args`` belongs to other scripts); a positional
    list must hold every value (:func:`params.check_api_arg_count`), as far as the request shows its length."""
    args = list(args)
    if not from_api(p):
        return args
    if args and isinstance(args[0], dict):
        return params.api_args_from_named(args[0])
    given = api_script_arg_count(p, script)
    if given is not None:
        params.check_api_arg_count(given)
    return args


def api_script_arg_count(p: Any, script: Any = None) -> int | None:
    """How many values the API request's ``script_args`` held, or None when ``p`` does not show it.

    The WebUI (A1111 1.10 and Forge: ``Api.init_script_args``) starts from a list of every script's defaults,
    ``max(args_to)`` long, and puts the request's list in place of the selected script's slice
    ``[args_from, args_to)``, so the list grows or shrinks by the difference::

        given = len(p.script_args) - max(s.args_to for s in p.scripts.scripts) + (args_to - args_from)
    """
    try:
        full = len(p.script_args)
        total = max(int(s.args_to) for s in p.scripts.scripts if getattr(s, "args_to", None) is not None)
        slot = (int(script.args_to) - int(script.args_from)) if script is not None else len(params.api_arg_names())
    except (AttributeError, TypeError, ValueError):
        return None
    return full - total + slot


def from_api(p: Any) -> bool:
    """Whether ``p`` came from ``/sdapi/v1/img2img`` (A1111 1.8+ and Forge set ``p.is_api``)."""
    return bool(getattr(p, "is_api", False))


def ui_words(exc: Vid2VidError) -> str:
    """The error as the UI says it: a setting by its label and tab ("Neighbour weights (Temporal tab): ...")
    instead of its id."""
    from ..errors import SettingsError

    if isinstance(exc, SettingsError) and exc.field in params.SPEC_BY_NAME:
        spec = params.SPEC_BY_NAME[exc.field]
        if spec.ui:
            return f"{spec.label()} ({spec.tab} tab): {exc.detail}"
    return str(exc)


def _toast(message: str) -> None:
    """A warning pop-up in the browser, as the WebUI's own (gradio 3.41+ and 4, inside an event); nothing
    outside one."""
    try:
        import gradio as gr  # noqa: PLC0415 - the host's gradio

        gr.Warning(f"vid2vid: {message}")
    except Exception:  # noqa: BLE001 - no event context (API, tests)
        pass


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


def control_frames(settings: params.Settings, plan: Any) -> Any:
    """The units' own control videos/folders (the ``controlnet_inputs`` setting) in step with the job's
    frames, or None."""
    from .. import control_inputs

    units = control_inputs.check(settings.video.controlnet_inputs)
    if not units:
        return None
    return control_inputs.ControlFrames(units, size=(plan.width, plan.height),
                                        fps=plan.fps if settings.video.fps else None, start=plan.start,
                                        end=plan.end, resize_mode=settings.video.resize_mode)


class WebUIProgress:
    """Keeps the WebUI's progress bar on the frames of this job, the ones done before a resume included.

    The WebUI computes percent = ``job_no / job_count`` (plus the current frame's sampling steps) and
    ETA = ``elapsed / percent - elapsed`` with elapsed = now - ``time_start``. After each frame of pass k:
    ``job_no = (k - 1) * total + done`` and ``job_count = total * passes``; ``time_start`` is moved so that
    the WebUI's ETA equals the loop's (mean render time of this run x frames left): with p = job_no /
    job_count, ``time_start = now - eta * p / (1 - p)``. Post stages leave the bar full.
    """

    def __init__(self, state: Any, passes: int, clock=time.time):
        self.state, self.passes, self.clock = state, passes, clock

    def update(self, pr: Any) -> None:
        stage = str(pr.stage)
        if not (stage.startswith("pass") and stage[4:].isdigit()) or not pr.total:
            return
        done = (int(stage[4:]) - 1) * pr.total + pr.done
        count = pr.total * self.passes
        self.state.job_count, self.state.job_no = count, min(done, count)
        share = self.state.job_no / count
        if pr.eta_s is not None and 0 < share < 1:
            self.state.time_start = self.clock() - float(pr.eta_s) * share / (1 - share)


def _run_video(p: Any, settings: params.Settings, stored: params.Settings | None = None) -> Any:
    """``stored``: the settings of the job ``resume_job`` names (:func:`resumed_settings`), which it runs with."""
    from .. import video_probe
    from ..pipeline import make_plan, run_job

    processing, shared = _host()
    state = shared.state
    planned = stored or settings  # the settings the job runs with
    info = video_probe.probe(planned.video.input)
    plan = make_plan(planned, info)
    renderer = A1111Renderer(p, controlnet=ControlNetBridge.find(), control_frames=control_frames(planned, plan))
    passes = planned.temporal.loopback_passes
    state.job_count = plan.total * passes
    state.job_no = 0
    bar = WebUIProgress(state, passes)

    def progress(pr) -> None:
        state.textinfo = f"vid2vid {pr.stage}: frame {pr.done}/{pr.total}"  # the WebUI shows its own ETA
        bar.update(pr)
        if pr.last_frame is not None:
            state.assign_current_image(Image.fromarray(pr.last_frame))

    result = run_job(settings, renderer, resume=settings.job.resume_job or None, new=settings.job.new_job,
                     should_stop=lambda: stop_requested(state), progress=progress,
                     notify=lambda line: print(f"vid2vid: {line}"))
    previews = final_stills(result.job_dir) if result.status == "done" else []
    if not previews:
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
        lines.append(f"other scripts on {_rendered_frames(planned)}: "
                     + ", ".join(f"{k}: {v}" for k, v in scripts.items()))
    info = "\n".join(lines)
    return _processed(p, previews, info, {"status": result.status, "job_dir": str(result.job_dir),
                                          "job": result.job_dir.name,
                                          "video": str(result.video_path) if result.video_path else None,
                                          "frames_done": result.frames_done, "total": result.total,
                                          "notices": list(result.notices), "frame_params": frame,
                                          "files": ui_result.job_files(result.job_dir),
                                          "report": result.report})


# ------------------------------------------------------------------ image to video (Stable Video Diffusion)

_SVD = None
"""The img2vid.GeneratorCache of this WebUI process: the SVD model stays loaded between generations."""


def _svd_cache():
    global _SVD
    if _SVD is None:
        from .. import img2vid

        _SVD = img2vid.GeneratorCache()
    return _SVD


def webui_device() -> str:
    """The WebUI's torch device as text ("cuda:0", "cpu" ...; "auto" when the host says none)."""
    try:
        from modules import devices  # noqa: PLC0415 - host import

        return str(devices.device) if getattr(devices, "device", None) is not None else "auto"
    except Exception:  # noqa: BLE001 - a host without modules.devices
        return "auto"


class SDModelOffDevice:
    """While SVD runs on a GPU, the WebUI's own SD model leaves it (``svd_free_vram``, on by default): A1111
    moves ``shared.sd_model`` to the CPU (``sd_models.send_model_to_cpu``) and back after
    (``send_model_to_device``); Forge unloads its models (``backend.memory_management.unload_all_models``) and
    loads them again itself at the next generation. Between generations the SVD model waits in CPU RAM
    (``SVDGenerator.park``). On the CPU nothing moves. ``note`` says what was done (for the result)."""

    def __init__(self, device: str, enabled: bool):
        self.device = device
        self.generator: Any = None
        self.active = enabled and device.startswith("cuda")
        self.note = ""
        self._model = None

    def __enter__(self):
        if not self.active:
            return self
        try:
            from backend import memory_management  # noqa: PLC0415 - Forge only

            memory_management.unload_all_models()
            memory_management.soft_empty_cache()
            self.note = "Forge's models were unloaded from the GPU while SVD ran (Forge loads them again)"
        except ImportError:
            from modules import sd_models  # noqa: PLC0415 - A1111

            _, shared = _host()
            self._model = getattr(shared, "sd_model", None)
            if self._model is not None:
                sd_models.send_model_to_cpu(self._model)
                self.note = "the WebUI's SD model was moved to the CPU while SVD ran, and back after"
        return self

    def use(self, generator: Any) -> Any:
        """The SVD generator (loaded after the SD model left) onto its device; parked again at the end."""
        self.generator = generator
        if self.active:
            generator.unpark()
        return generator

    def __exit__(self, *exc):
        if not self.active:
            return False
        if self.generator is not None:
            self.generator.park()
        if self._model is not None:
            from modules import sd_models  # noqa: PLC0415

            sd_models.send_model_to_device(self._model)
        return False


def _run_img2vid(p: Any, settings: params.Settings) -> Any:
    """The Script's image-to-video mode (lib_vid2vid/img2vid.py inside the WebUI): the img2img image (or the
    images named), the img2img seed, jobs under ``<output folder>/img2vid``; the mp4 in the result area."""
    from .. import img2vid

    _, shared = _host()
    state = shared.state
    model = str(host_option("svd_model", "", p) or "").strip()
    if not model:
        raise Vid2VidError("Image to video needs a Stable Video Diffusion model: set its path in Settings > "
                           "vid2vid > \"Stable Video Diffusion model\" (a diffusers folder such as "
                           "stable-video-diffusion-img2vid-xt, or a .safetensors file with a configuration folder)")
    missing = img2vid.webui_missing_packages()
    if missing:
        raise Vid2VidError(missing)
    out_root = Path(settings.job.output_dir) / "img2vid"
    s = params.img2vid_settings_from_webui(settings, seed=settings.sampling.seed, output_dir=str(out_root))
    images = img2vid.webui_images(settings.svd.svd_images, getattr(p, "init_images", None), out_root)
    device = webui_device()
    config = str(host_option("svd_model_config", "", p) or "").strip() or None

    def on_image(number: int, image: Path) -> None:
        state.job_count, state.job_no = 0, 0
        state.textinfo = f"vid2vid image to video: image {number}/{len(images)} {image.name}"

    def progress(number: int, image: Path, done: int, total: int) -> None:
        state.job_count, state.job_no = total, done
        state.textinfo = f"vid2vid image to video: image {number}/{len(images)} {image.name}, frame {done}/{total}"

    with SDModelOffDevice(device, bool(host_option("svd_free_vram", True, p))) as moved:
        state.textinfo = "vid2vid image to video: loading the SVD model"
        generator = moved.use(_svd_cache().get(model, config, device))
        results = img2vid.run_images(images, generator, s, new=settings.job.new_job,
                                     should_stop=lambda: stop_requested(state), progress=progress, on_image=on_image)
    return _img2vid_processed(p, results, len(images), [moved.note] if moved.note else [])


def _img2vid_item(r: Any) -> dict[str, Any]:
    files = {}
    if r.video and Path(r.video).is_file():
        files["video"] = str(r.video)
    if r.job_dir and (Path(r.job_dir) / "job.log").is_file():
        files["log"] = str(Path(r.job_dir) / "job.log")
    state = "done" if r.state == "skipped" else r.state
    notices = ["made by an earlier run: tick \"New job\" (Jobs tab) to make it again"] if r.state == "skipped" else []
    return {"video": r.image.name, "state": state, "status": state, "job_dir": str(r.job_dir) if r.job_dir else None,
            "job": Path(r.job_dir).name if r.job_dir else None, "output": str(r.video) if r.video else None,
            "frames_done": r.frames, "total": r.frames if state == "done" else None, "error": r.error,
            "files": files, "notices": notices}


def _img2vid_processed(p: Any, results: list, wanted: int, notices: list[str]) -> Any:
    items = [_img2vid_item(r) for r in results]
    stopped = len(results) < wanted or any(i["state"] == "interrupted" for i in items)
    status = "interrupted" if stopped else ("done" if all(i["state"] == "done" for i in items) else "failed")
    lines = [f"vid2vid image to video: {status}, {len(items)}/{wanted} images"]
    for n, item in enumerate(items, 1):
        lines.append(f"{n}. {item['video']}: {item['state']}, {item['frames_done']} frames"
                     + (f", {item['output']}" if item["output"] else "") + (f": {item['error']}" if item["error"] else ""))
    lines += notices
    if stopped:
        lines.append("Interrupted: press Generate again to resume (finished clips and images are kept)")
    previews = []
    for r in results:
        if r.video and Path(r.video).is_file():
            previews += video_stills(Path(r.video), r.frames)
    if len(items) == 1:
        result = {**items[0], "status": status if items[0]["state"] != "failed" else "error", "notices":
                  items[0]["notices"] + notices, "mode": "img2vid"}
        if result["status"] == "error":
            result["error"] = items[0]["error"]
    else:
        result = {"status": status, "videos": items, "notices": notices, "mode": "img2vid"}
    return _processed(p, previews, "\n".join(lines), result)


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
    from .. import debug_fdc, debug_render, debug_sweep, video_probe
    from ..pipeline import make_plan

    processing, _ = _host()
    frames = None
    if settings.video.controlnet_inputs.strip():
        frames = control_frames(settings, make_plan(settings, video_probe.probe(settings.video.input)))
    renderer = A1111Renderer(p, controlnet=ControlNetBridge.find(), control_frames=frames)
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
"""img2img components captured through Script.after_component (steps, denoise, sampler, schedule type) for
the sigma preview."""
_WATCHED = {"img2img_steps": "steps", "img2img_denoising_strength": "denoise", "img2img_sampling": "sampler",
            "img2img_scheduler": "scheduler", "img2img_width": "width", "img2img_height": "height"}
RESULT_ANCHOR = "generation_info_img2img"
"""The img2img output panel's hidden generation-info box (A1111 1.10 and Forge): it changes after every
generation, and the result area is created right after it (inside the output panel) and redrawn from it."""
_UI: dict[str, Any] = {}
"""Components of our own UI the result area updates (the "Resume job" box)."""


def remember_component(elem_id: str | None, component: Any) -> None:
    if elem_id in _WATCHED:
        _HOST_COMPONENTS[_WATCHED[elem_id]] = component
    elif elem_id == RESULT_ANCHOR and "resume_job" in _UI and "result" not in _UI:
        _attach_result_area(component)


def _attach_result_area(generation_info: Any) -> None:
    """The result area under the WebUI's output: redrawn whenever a generation finishes. For a finished job
    that was picked in "Resume job", that box is cleared, so the next Generate starts a new job."""
    import gradio as gr

    area = gr.HTML("", elem_id="vid2vid_result")
    area.do_not_save_to_config = True
    _UI["result"] = area
    resume = _UI["resume_job"]

    def show(info, resume_value):
        result = ui_result.extract(info)
        return result_area(result), clear_finished_resume(result, resume_value)

    generation_info.change(fn=show, inputs=[generation_info, resume], outputs=[area, resume])


def result_area(result: dict[str, Any] | None) -> str:
    """The result area's HTML for a vid2vid result (see lib_vid2vid/ui_result.py), files linked through the
    WebUI's file route."""
    return ui_result.result_html(result, file_url)


def clear_finished_resume(result: dict[str, Any] | None, resume_value: str) -> str:
    """The "Resume job" box after a generation: emptied when it named the job that has just finished."""
    if not result or not resume_value or result.get("status") != "done":
        return resume_value
    names = {str(result.get("job") or ""), Path(str(result.get("job_dir") or "")).name}
    return "" if resume_value.strip() in names or Path(resume_value.strip()).name in names else resume_value


def file_url(path: str) -> str | None:
    """A URL the browser can load ``path`` from: the WebUI's ``file=<path>`` route (relative to the page, so
    a WebUI under a sub-path works), with the file registered as one the WebUI made, as its own gallery
    does (files outside the WebUI's folder are refused otherwise). None when the file does not exist."""
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        return None
    try:
        from modules import shared, ui_tempdir  # noqa: PLC0415 - host import

        ui_tempdir.register_tmp_file(getattr(shared, "demo", None), absolute)
    except Exception:  # noqa: BLE001 - no demo (API only): files under the WebUI's folder still load
        pass
    return "file=" + urllib.parse.quote(absolute.replace(os.sep, "/") if os.sep != "/" else absolute)


def output_dir() -> str:
    return str(host_option("output_dir", "") or "outputs/vid2vid")


def _number(values: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """A form value as ``kind``; None, "" or junk (a cleared box) -> ``default``."""
    value = values.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        return default


def host_full_schedule(sampler: str | None, scheduler: str | None, steps: int) -> list[float] | None:
    """The whole schedule of ``steps`` steps (steps + 1 sigmas) that the WebUI's own sampler and schedule type
    make for the loaded model, asked from the WebUI itself (``KDiffusionSampler.get_sigmas``, no override);
    None when it cannot say (no model loaded, a sampler without sigmas such as DDIM)."""
    try:
        from types import SimpleNamespace

        from modules import sd_samplers  # noqa: PLC0415 - host import

        _, shared = _host()
        sampler_obj = sd_samplers.create_sampler(sampler or "Euler", shared.sd_model)
        fake_p = SimpleNamespace(sampler_noise_scheduler_override=None, scheduler=scheduler or "Automatic",
                                 hr_scheduler=None, is_hr_pass=False, extra_generation_params={},
                                 steps=steps, sampler_name=sampler)
        sigmas = sampler_obj.get_sigmas(fake_p, steps)
        return [float(v) for v in sigmas]
    except Exception:  # noqa: BLE001 - the preview says it cannot tell
        return None


def sigmas_text(values: dict[str, Any]) -> str:
    """The img2img tail the host will run for the shown settings (steps, denoise, sampler and schedule type
    from the img2img tab): the override's, or with the "host" schedule the WebUI's own. A cleared box counts
    as its default; a value out of range is one line, never a traceback."""
    from .. import sigmas
    from ..errors import SettingsError

    steps = max(1, _number(values, "steps", int, 20))
    denoise = min(1.0, max(0.0, _number(values, "denoise", float, 0.45)))
    sampler, scheduler = values.get("sampler") or None, values.get("scheduler") or None
    schedule = values.get("sigma_schedule") or "host"
    fix_steps = bool(host_option_raw("img2img_fix_steps", False))
    discard = sigmas.discards_penultimate(sampler, always_discard=bool(host_option_raw(
        "always_discard_next_to_last_sigma", False)))
    where = f"{sampler or 'the sampler'}, {steps} steps, denoise {denoise:g}"
    if schedule == "host":
        n = sigmas.override_steps(steps, denoise, fix_steps=fix_steps, discard_penultimate=discard)
        full = host_full_schedule(sampler, scheduler, n)
        if full is None or len(full) != n + 1:
            return (f"the WebUI's own schedule ({scheduler or 'Automatic'}, no override): the WebUI did not "
                    f"give its sigmas for {sampler or 'this sampler'} (no model loaded yet, or a sampler "
                    f"without sigmas such as DDIM)")
        tail = sigmas.img2img_tail(full, steps, denoise, fix_steps=fix_steps, discard_penultimate=discard)
        return f"{sigmas.describe(tail)}\n(the WebUI's own schedule: {scheduler or 'Automatic'}; {where})"
    defaults = {n: params.SPEC_BY_NAME[n].default for n in ("sigma_min", "sigma_max", "rho")}
    try:
        cfg = sigmas.SigmaSettings(schedule=schedule, **{n: _number(values, n, float, d) for n, d in defaults.items()})
        used = sigmas.used_sigmas(cfg, steps, denoise, fix_steps=fix_steps, sampler_name=sampler,
                                  always_discard=bool(host_option_raw("always_discard_next_to_last_sigma", False)))
    except (SettingsError, ValueError) as exc:
        return f"invalid: {exc}"
    text = f"{sigmas.describe(used)}\n({schedule} override; {where})"
    warning = sigmas.override_warning(sampler, schedule) if sampler else None
    return f"{text}\n{warning}" if warning else text


def host_option_raw(name: str, default: Any) -> Any:
    try:
        _, shared = _host()
        return getattr(shared.opts, name, default)
    except Exception:  # noqa: BLE001 - outside a host
        return default


def _job_links(job: Any) -> str:
    files = ui_result.job_files(job.root)
    links = ui_result._links(files, file_url)
    return f"Download instead: {links}" if links else "It has no result files yet."


def open_job_folder(name: str, request: Any = None) -> str:
    """Open a job's folder in the server's file manager, as the WebUI's own folder buttons do, only where that
    can work: the browser on the server's own machine, a desktop session, not --hide-ui-dir-config. Says
    plainly when it cannot (a remote browser, a headless server, the opener failing) and offers the job's
    files for download instead. Returns HTML for the UI."""
    import html

    from ..workspace import Job

    if not name:
        return "Pick a job first."
    try:
        job = Job.resolve(name, output_dir())
    except Vid2VidError as exc:
        return html.escape(str(exc))
    where = f"<code>{html.escape(str(job.root))}</code>"
    reason = _cannot_open_folder(request)
    if reason is None:
        reason = _open_folder(str(job.root))
    if reason is None:
        return f"Asked the server's desktop to open {where}."
    return f"Cannot open {where}: {html.escape(reason)}. {_job_links(job)}"


def _cannot_open_folder(request: Any) -> str | None:
    """Why a folder cannot be opened for this browser, or None."""
    import platform

    try:
        from modules import shared  # noqa: PLC0415

        if getattr(shared.cmd_opts, "hide_ui_dir_config", False):
            return "opening folders is disabled on this server (--hide-ui-dir-config)"
    except Exception:  # noqa: BLE001
        pass
    client = getattr(getattr(request, "client", None), "host", None)
    if client and client not in ("127.0.0.1", "::1", "localhost"):
        return "the folder is on the server, and this browser is on another machine"
    if platform.system() == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "the server has no desktop to show it"
    return None


def _open_folder(path: str) -> str | None:
    """Run the desktop's opener and wait briefly for it to fail; None when it did not (it may still open)."""
    import platform
    import subprocess

    system = platform.system()
    try:
        if system == "Windows":
            os.startfile(path)  # noqa: S606 - a folder path, no shell
            return None
        cmd = ["open", path] if system == "Darwin" else ["xdg-open", path]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            return None  # still running: the file manager is starting
        if proc.returncode:
            text = (err or b"").decode(errors="replace").strip().splitlines()
            return f"{cmd[0]} failed ({text[-1] if text else f'exit {proc.returncode}'})"
        return None
    except OSError as exc:
        return f"no file manager here ({exc})"


def job_state(job: Any) -> str:
    """A job's state for people: running (another run holds its lock), done, interrupted, failed: <error>,
    stopped (a run ended without recording why, e.g. the WebUI was killed), not started."""
    from ..joblock import is_locked

    if is_locked(job.root):
        return "running"
    status = job.status
    if status == "failed":
        error = str(job.manifest.get("error") or "").strip()
        return f"failed: {error}" if error else "failed"
    if status in ("running", "created"):
        done = sum(int(v.get("done", 0)) for v in (job.manifest.get("stages") or {}).values())
        return "stopped (the run ended without finishing)" if done else "not started"
    return status


def _job_progress(job: Any) -> str:
    stages = job.manifest.get("stages") or {}
    return ", ".join(f"{k} {v.get('done', 0)}/{v.get('total', '?')}" for k, v in stages.items())


def list_jobs_with_state() -> list[tuple[str, str]]:
    """(label, folder name) of every job, newest first: the Jobs tab's list."""
    from ..workspace import list_jobs

    out = []
    for job in list_jobs(output_dir()):
        progress = _job_progress(job)
        state = job_state(job)
        if len(state) > 90:
            state = state[:87] + "..."
        out.append((f"{job.root.name}: {state}" + (f" ({progress})" if progress else ""), job.root.name))
    return out


def list_unfinished_jobs() -> list[str]:
    from ..workspace import list_jobs

    return [job.root.name for job in list_jobs(output_dir()) if job.status != "done"]


def job_resumable(name: str) -> bool:
    """Whether the job ``name`` has work left (any state but done)."""
    return name in list_unfinished_jobs()


def job_folder(name: str) -> str:
    """HTML about a picked job: its state, progress, folder, and its files for download."""
    import html

    from ..workspace import Job

    if not name:
        return ""
    try:
        job = Job.resolve(name, output_dir())
    except Vid2VidError as exc:
        return html.escape(str(exc))
    state = job_state(job)
    files = ui_result._links(ui_result.job_files(job.root), file_url)
    return (f"<div><strong>{html.escape(state)}</strong> ({html.escape(_job_progress(job))})</div>"
            f"<div>Folder on the server: <code>{html.escape(str(job.root))}</code></div>"
            + (f"<div>Download: {files}</div>" if files else ""))


def job_root(name: str) -> Path | None:
    """The folder of the job ``name`` in the output folder, or None."""
    from ..workspace import Job

    try:
        return Job.resolve(name, output_dir()).root
    except Vid2VidError:
        return None


GENERATE_BUTTON = "#img2img_generate"
"""The img2img tab's Generate button (A1111 1.10 and Forge): the Jobs tab presses it to resume a job."""


def delete_job(name: str) -> str:
    """Delete a job's folder (not while a run holds it). Returns a line for the UI."""
    import shutil

    from ..joblock import JobLock
    from ..workspace import Job

    if not name:
        return "Pick a job first."
    try:
        job = Job.resolve(name, output_dir())
        lock = JobLock.acquire(job.root)  # JobRunning when a run holds it
    except Vid2VidError as exc:
        return str(exc)
    try:
        shutil.rmtree(job.root)
    except OSError as exc:
        return f"Could not delete {job.root}: {exc}"
    finally:
        lock.release()
    return f"Deleted {job.root.name}."


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

    host = {"list_jobs": list_jobs_with_state, "job_folder": job_folder, "resumable": job_resumable, "open_folder": open_job_folder,
            "delete_job": delete_job, "sigmas_text": sigmas_text, "job_root": job_root, "file_url": file_url,
            "generate_button": GENERATE_BUTTON,
            "suggest_prompt": suggest_prompt, **_HOST_COMPONENTS, "own_settings": sorted(ui.HOST_OWN),
            "choices": {"upscaler": list(dict.fromkeys(["None", *postprocess.available_upscalers()]))}}
    comps = ui.build(gr, elem_id=script.elem_id, defaults=defaults, host=host)
    _UI.clear()
    _UI["resume_job"] = comps[params.api_arg_names().index("resume_job")]
    return comps


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
        add(OPT_PREFIX + "svd_model", shared.OptionInfo(
            "", "Stable Video Diffusion model for image to video: a diffusers folder (e.g. "
                "stable-video-diffusion-img2vid-xt) or a .safetensors file on this machine; never downloaded",
            section=section))
        add(OPT_PREFIX + "svd_model_config", shared.OptionInfo(
            "", "Configuration folder for a single-file SVD model (a diffusers SVD folder; its weights need not be "
                "there)", section=section))
        add(OPT_PREFIX + "svd_free_vram", shared.OptionInfo(
            True, "Image to video on a GPU: move the WebUI's SD model off the GPU while SVD runs (SVD-XT needs "
                  "most of a 16 GB card); the SVD model waits in RAM between generations", section=section))

    script_callbacks.on_ui_settings(on_ui_settings)


def gr_radio():
    import gradio as gr

    return gr.Radio


def gr_slider():
    import gradio as gr

    return gr.Slider
