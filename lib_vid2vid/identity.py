"""The host identity: what the host uses to make a frame, beyond vid2vid's own settings.

A job is the same job only if the host would make the same pixels: same checkpoint, VAE, ControlNet units,
other always-on scripts, pixel-changing host options and img2img parameters. Each host adapter hands the job
a JSON-able dict of these (``renderer.host_identity()``); it is part of the job's render key and stored in
the manifest as ``host``. Its sections, all optional::

    renderer     "a1111" (the Script), "webui-api" (the CLI over HTTP), "proxy"
    checkpoint   {"name", "hash"}
    vae          {"name", "hash"}
    controlnet   [unit, ...]  one entry per unit, None when the unit is off
    scripts      {title: args}  the other always-on scripts (ADetailer and friends)
    options      {name: value}  the host options of :data:`PIXEL_OPTIONS` it has
    request      {name: value}  img2img parameters vid2vid's settings do not carry (styles, restore faces ...)

Values must be equal across runs for an unchanged setup, so :func:`stable` turns objects into plain data:
images, arrays and tensors become the SHA-256 of their bytes, objects the dict of their public fields, and
anything else its class name -- never a repr with a memory address.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

MAX_TEXT = 1000
"""Longer strings (base64 images in API units, say) are kept as their SHA-256."""
MAX_DEPTH = 8

PIXEL_OPTIONS = (
    # model, VAE and text encoder (checkpoint and VAE themselves have their own sections)
    "sd_unet", "sd_vae_encode_method",
    "sd_vae_decode_method", "CLIP_stop_at_last_layers", "sdxl_clip_l_skip", "emphasis", "enable_emphasis",
    "comma_padding_backtrack", "sd_hypernetwork", "extra_networks_default_multiplier", "fp8_storage",
    "cache_fp16_weight", "upcast_attn", "token_merging_ratio", "token_merging_ratio_img2img", "pad_cond_uncond",
    "pad_cond_uncond_v0", "s_min_uncond", "skip_early_cond", "sdxl_crop_top", "sdxl_crop_left",
    # noise and samplers
    "randn_source", "eta_noise_seed_delta", "eta_ddim", "eta_ancestral", "ddim_discretize", "s_churn", "s_tmin",
    "s_tmax", "s_noise", "k_sched_type", "sigma_min", "sigma_max", "rho", "always_discard_next_to_last_sigma",
    "sgm_noise_multiplier", "beta_dist_alpha", "beta_dist_beta", "uni_pc_variant", "uni_pc_skip_type",
    "uni_pc_order", "uni_pc_lower_order_final", "enable_quantization", "enable_batch_seeds",
    # img2img
    "img2img_fix_steps", "img2img_color_correction", "img2img_background_color", "initial_noise_multiplier",
    "img2img_extra_noise", "inpainting_mask_weight", "tiling", "face_restoration", "face_restoration_model",
    "code_former_weight", "postprocessing_enable_in_main_ui", "postprocessing_operation_order",
    # compatibility switches that change results
    "use_old_emphasis_implementation", "use_old_karras_scheduler_sigmas", "no_dpmpp_sde_batch_determinism",
    "dont_fix_second_order_samplers_schedule", "use_old_scheduling",
)
"""A1111/Forge options (``shared.opts``, ``/sdapi/v1/options``) that change a frame's pixels: those the
WebUI writes into a picture's infotext, and the compatibility switches. Options a host lacks are left out."""

_LABELS = {"renderer": "renderer", "checkpoint": "checkpoint", "vae": "VAE", "controlnet": "ControlNet",
           "scripts": "script", "options": "option", "request": "img2img"}


# ---------------------------------------------------------------- plain, stable values

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able plain data that is equal across runs for an equal value.

    None/bool/int/str stay (strings longer than :data:`MAX_TEXT` become ``{"sha256", "chars"}``); float stays
    (NaN/inf as text); mappings, dataclasses, pydantic models and plain objects become dicts of their public
    fields; sequences and sets become lists; enums their value; numpy arrays, PIL images, tensors and bytes
    ``{"sha256", ...}`` of their bytes; callables and other objects ``"<module.Class>"``.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else {"sha256": sha256(value.encode("utf-8")), "chars": len(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"sha256": sha256(bytes(value)), "bytes": len(value)}
    if isinstance(value, enum.Enum):
        return stable(value.value, depth)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return stable(value.item(), depth)  # numpy scalars and 0-d arrays are numbers
    if depth >= MAX_DEPTH:
        return "<nested too deeply>"
    image = _pixels(value)
    if image is not None:
        return image
    if isinstance(value, Mapping):
        return {_key(k): stable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((stable(v, depth + 1) for v in value), key=canonical)
    fields = _fields(value)
    if fields is not None:
        return {k: stable(v, depth + 1) for k, v in fields.items()}
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _key(k: Any) -> str:
    if isinstance(k, enum.Enum):
        k = k.value
    return k if isinstance(k, str) else str(k) if isinstance(k, (int, float, bool)) else \
        f"<{type(k).__qualname__}>"


def _pixels(value: Any) -> dict[str, Any] | None:
    """numpy arrays, tensors and PIL images as the hash of their bytes (with shape and type)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor: never kept, only hashed
        try:
            value = value.detach().cpu().float().numpy()
        except Exception:  # noqa: BLE001 - an odd tensor type: name it instead
            return None
    if type(value).__module__ == "numpy":
        import numpy as np

        arr = np.ascontiguousarray(value)
        if arr.dtype == object:
            return None
        return {"sha256": sha256(arr.tobytes()), "shape": list(arr.shape), "dtype": str(arr.dtype)}
    if callable(getattr(value, "tobytes", None)) and hasattr(value, "mode") and hasattr(value, "size"):
        try:  # a PIL image
            return {"sha256": sha256(value.tobytes()), "size": list(value.size), "mode": str(value.mode)}
        except Exception:  # noqa: BLE001
            return None
    return None


def _fields(value: Any) -> dict[str, Any] | None:
    """The public fields of a dataclass, pydantic model or plain object; None for anything else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    for dump in ("model_dump", "dict"):  # pydantic v2, v1
        fn = getattr(value, dump, None)
        if callable(fn) and hasattr(type(value), "__fields__" if dump == "dict" else "model_fields"):
            try:
                return dict(fn())
            except Exception:  # noqa: BLE001 - fall through to the attributes
                break
    if callable(value) or isinstance(value, type):
        return None
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return {k: v for k, v in attrs.items() if not k.startswith("_")}
    return None


def canonical(value: Any) -> str:
    """One text per value: JSON with sorted keys (equal values, equal text; the render key hashes it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def normalise(identity: Mapping[str, Any] | None) -> dict[str, Any]:
    """A host identity as it is stored in the manifest (plain JSON data)."""
    return json.loads(canonical(stable(dict(identity or {}))))


def unit_summary(unit: Any) -> str:
    """A ControlNet unit in a few words: its model (or module), "none" when off."""
    if unit is None:
        return "none"
    if isinstance(unit, Mapping):
        for key in ("model", "module"):
            if unit.get(key) not in (None, "", "None"):
                return _short(unit[key])
    return "on"


# ---------------------------------------------------------------- what differs

def differences(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What differs between two host identities, one short phrase per item, in section order."""
    if old is None:
        return ["the unfinished job was made before vid2vid recorded the host's setup"]
    out: list[str] = []
    for section in [*dict.fromkeys([*old, *new])]:
        a, b = old.get(section), new.get(section)
        if canonical(a) == canonical(b):
            continue
        label = _LABELS.get(section, section)
        if section == "controlnet":
            out += _unit_differences(a or [], b or [])
        elif section in ("checkpoint", "vae"):
            out.append(f"{label} differs (was {_model(a)}, now {_model(b)})")
        elif section in ("scripts", "options", "request") and isinstance(a or {}, Mapping) and \
                isinstance(b or {}, Mapping):
            a, b = a or {}, b or {}
            for name in [*dict.fromkeys([*a, *b])]:
                was, now = a.get(name, _ABSENT), b.get(name, _ABSENT)
                if canonical(was) != canonical(now):
                    out.append(f"{label} {name} differs ({_first_difference(was, now)})")
        else:
            out.append(f"{label} differs ({_first_difference(a, b)})")
    return out


def describe(old: Mapping[str, Any] | None, new: Mapping[str, Any], most: int = 3) -> str:
    """The differences on one line: the first ``most`` of them, and how many more."""
    items = differences(old, new)
    text = "; ".join(items[:most])
    if len(items) > most:
        text += f"; and {len(items) - most} more"
    return text.replace("\n", " ") or "the host's setup differs"


_ABSENT = "<absent>"


def _unit_differences(a: list, b: list) -> list[str]:
    out = []
    for i in range(max(len(a), len(b))):
        ua = a[i] if i < len(a) else None
        ub = b[i] if i < len(b) else None
        if canonical(ua) == canonical(ub):
            continue
        if ua is None or ub is None or unit_summary(ua) != unit_summary(ub):
            out.append(f"ControlNet unit {i} differs (was {unit_summary(ua)}, now {unit_summary(ub)})")
        else:
            out.append(f"ControlNet unit {i} differs ({_first_difference(ua, ub)})")
    return out


def _model(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "none" if value is None else _short(value)
    name, digest = value.get("name"), value.get("hash")
    text = _short(name, 80) if name not in (None, "") else "none"
    tag = f"[{str(digest)[:10]}]"
    return f"{text} {tag}" if digest and not text.endswith(tag) else text  # WebUI titles end in the tag


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """"key.sub: was X, now Y" for the first leaf where ``a`` and ``b`` differ."""
    if isinstance(a, Mapping) and isinstance(b, Mapping) and "sha256" not in a and "sha256" not in b:
        for k in [*dict.fromkeys([*a, *b])]:
            if canonical(a.get(k, _ABSENT)) != canonical(b.get(k, _ABSENT)):
                return _first_difference(a.get(k, _ABSENT), b.get(k, _ABSENT), f"{path}.{k}" if path else str(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if canonical(x) != canonical(y):
                return _first_difference(x, y, f"{path}[{i}]")
    prefix = f"{path}: " if path else ""
    return f"{prefix}was {_short(a)}, now {_short(b)}"


def _short(value: Any, limit: int = 40) -> str:
    if isinstance(value, Mapping) and "sha256" in value:
        return f"data {str(value['sha256'])[:10]}"
    text = value if isinstance(value, str) else canonical(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
