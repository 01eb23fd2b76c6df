"""Depth of one frame with a MiDaS network: preprocessing, inference, the raw and the normalised depth.

Preprocessing (as MiDaS' ``Resize`` + ``NormalizeImage``)
    ``x = rgb / 255`` (float32), resized with bicubic interpolation (``cv2.INTER_CUBIC``, no clipping)
    keeping the aspect ratio to a size that is a multiple of 32: with ``s_w = net / W`` and
    ``s_h = net / H``, *minimal* (DPT) uses the scale closer to 1, *upper_bound* (v2.1) the smaller one;
    each side is then ``round(s * side / 32) * 32`` (NumPy's round, half to even), floored instead when
    that exceeds ``net`` (upper_bound), and at least 32. Then ``(x - mean) / std`` per channel, CHW.
    E.g. a 512x512 frame -> 384x384 (DPT, v2.1) or 256x256 (small); 1920x1080 -> 384x224 (v2.1) and
    672x384 (DPT, minimal fits the height).

Output
    The network returns relative inverse depth (disparity, arbitrary scale and shift, larger = nearer).
    It is resized to the frame size with bicubic interpolation (``torch`` ``bicubic``,
    ``align_corners=False``) -- the *raw* depth, float32 HW. The *normalised* depth is
    ``d = clip((raw - lo) / (hi - lo), 0, 1)`` so **1 = near, 0 = far**; a flat map (``hi <= lo``) gives 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .depth_mask import normalise
from .errors import SettingsError, Vid2VidError
from .midas_model import MidasConfig, import_torch, kind_from_filename, load_model, model_spec


def _multiple_of(x: float, m: int = 32, max_val: int | None = None) -> int:
    y = int(np.round(x / m) * m)
    if max_val is not None and y > max_val:
        y = int(math.floor(x / m) * m)
    return max(y, m)


def net_input_size(width: int, height: int, net: int, resize: str) -> tuple[int, int]:
    """MiDaS' network input ``(width, height)`` for a ``width x height`` frame (see the module docstring)."""
    s_h, s_w = net / height, net / width
    if resize == "upper_bound":
        s = min(s_w, s_h)
        return _multiple_of(s * width, max_val=net), _multiple_of(s * height, max_val=net)
    if resize == "minimal":
        s = s_w if abs(1 - s_w) < abs(1 - s_h) else s_h
        return _multiple_of(s * width), _multiple_of(s * height)
    raise ValueError(f"unknown resize method {resize!r}")


def preprocess(rgb: np.ndarray, config: MidasConfig) -> np.ndarray:
    """RGB uint8 HWC -> float32 CHW network input (``(rgb / 255 resized bicubic - mean) / std``)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise Vid2VidError(f"depth needs an RGB uint8 HWC frame, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    nw, nh = net_input_size(w, h, config.net, config.resize)
    x = rgb.astype(np.float32) * np.float32(1 / 255)
    x = cv2.resize(x, (nw, nh), interpolation=cv2.INTER_CUBIC)
    x = (x - np.asarray(config.mean, np.float32)) / np.asarray(config.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


class DepthEstimator:
    """Runs a MiDaS network on RGB uint8 frames.

    ``estimator(rgb)`` -> float32 HW normalised depth 0..1 (1 = near), per-frame min/max;
    ``estimator.predict(rgb)`` -> float32 HW raw relative inverse depth at the frame size (for
    :class:`~lib_vid2vid.depth_cache.DepthCache`, which can normalise across frames). Inference is under
    ``torch.inference_mode``.
    """

    def __init__(self, net, config: MidasConfig, kind: str = "custom"):
        self.net = net.eval()
        self.config = config
        self.kind = kind
        self.calls = 0

    @classmethod
    def from_file(cls, path: str | Path, kind: str | None = None, *, device: str = "cpu") -> DepthEstimator:
        """Load an official weight file (``path`` = the file, or the folder holding it when ``kind`` is given)."""
        if kind is None:
            kind = kind_from_filename(path)
            if kind is None:
                raise SettingsError("depth_model", f"cannot tell the MiDaS model from {Path(path).name}; name the model")
        net = load_model(path, kind)
        return cls(net.to(device), model_spec(kind).config, kind)

    @classmethod
    def from_module(cls, module, kind: str) -> DepthEstimator:
        """Wrap a network the host already loaded (e.g. the WebUI's ``ldm.modules.midas`` model for
        ``kind``). It must map the normalised ``N,3,h,w`` input to ``N,h,w`` (or ``N,1,h,w``) inverse depth;
        the preprocessing is ``kind``'s. Device and dtype follow the module's first parameter."""
        return cls(module, model_spec(kind).config, kind)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Raw relative inverse depth (larger = nearer), float32 HW at the frame's size."""
        torch = import_torch()
        x = torch.from_numpy(preprocess(rgb, self.config))[None]
        param = next(self.net.parameters(), None)
        if param is not None:
            x = x.to(device=param.device, dtype=param.dtype)
        with torch.inference_mode():
            y = self.net(x)
            if y.ndim == 3:
                y = y[:, None]
            y = torch.nn.functional.interpolate(y.float(), size=rgb.shape[:2], mode="bicubic", align_corners=False)
        self.calls += 1
        return np.ascontiguousarray(y[0, 0].cpu().numpy(), dtype=np.float32)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Normalised depth, float32 HW 0..1, 1 = near (per-frame min/max; see the module docstring)."""
        raw = self.predict(rgb)
        return normalise(raw, float(raw.min()), float(raw.max()))
