"""Depth masks: MiDaS depth per frame, cached per job, or a user-supplied depth video / folder.

Models (:data:`MODELS`; official MiDaS v2.1 / v3.0 weight files, the WebUI keeps them in ``models/midas``)

    ============== ================================== ============================ ======= ================
    kind           weight file                        backbone (timm)              net     normalisation
    ============== ================================== ============================ ======= ================
    dpt_hybrid     dpt_hybrid-midas-501f0c75.pt       vit_base_resnet50_384        384 min mean 0.5, std 0.5
    dpt_large      dpt_large-midas-2f21e586.pt        vit_large_patch16_384        384 min mean 0.5, std 0.5
    midas_v21      midas_v21-f6b98070.pt              resnext101_32x8d (WSL)       384 up  ImageNet
    midas_v21_small midas_v21_small-70d6b9c8.pt       tf_efficientnet_lite3        256 up  ImageNet
    ============== ================================== ============================ ======= ================

    timm builds the backbone (``pretrained=False``, no download); this module builds the MiDaS heads
    (reassemble, ``scratch`` projections, fusion blocks, output head) with the official layer names, so
    the official state_dicts load with ``strict=True``. Inside the WebUI the host loads its own MiDaS
    and hands it over with :meth:`DepthEstimator.from_module`.

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

Normalisation range ``(lo, hi)`` (:class:`DepthCache` ``normalise=``)
    * ``"frame"`` (default): ``lo, hi = min, max`` of this frame. Every frame uses the full 0..1 range,
      which **flickers**: a near object entering the frame rescales the whole map, and MiDaS' own scale
      drifts between frames, so a fixed low-cut selects a jumping area.
    * ``"running"``: ``lo_i = min_{j<=i} min_j``, ``hi_i = max_{j<=i} max_j`` over the frames so far.
      The range only widens, so the mask is steady once the extremes have been seen; it depends only on
      frames ``0..i``, so it is deterministic on resume (rebuilt from the cached ranges on disk).
    * ``"job"``: one range for the whole job: ``lo = min_i q_lo_i``, ``hi = max_i q_hi_i`` where
      ``q_lo_i, q_hi_i`` are the ``percentiles`` (default 2 and 98) of frame ``i``'s raw depth. Steadiest,
      robust to single-pixel outliers, but needs every frame's depth first (:meth:`DepthCache.fill`).
    MiDaS' scale is only relative per frame, so the job-wide modes trade exactness per frame for
    steadiness across frames.

Depth low-cut (:func:`depth_mask`)
    ``m = [d * 255 >= low_cut]`` (0..255, the motion mask's scale): pixels whose normalised depth is
    below the low-cut -- the far background -- **may not change** (mask 0); ``low_cut = 0`` lets the
    whole frame change. A higher low-cut never lets more of the frame change.

Cache (:class:`DepthCache`)
    ``<folder>/000000.png`` ... 16-bit grey PNGs of the per-frame normalised depth
    ``round(65535 * (raw - min) / (max - min))`` plus ``<folder>/depth.jsonl`` with each frame's raw
    ``[min, max, q_lo, q_hi]``, so the raw depth is ``min + png / 65535 * (max - min)`` (error at most
    ``(max - min) / 131070``) and any normalisation mode can be applied later. Written atomically;
    a cached frame is never computed again.

User depth (:class:`DepthSource`)
    A depth video or a folder of numbered images (white = near, as MiDaS and the WebUI save them),
    read as grey 0..1 (16-bit PNGs keep their precision) and resized to the frame size; it replaces the
    model. A frame it does not have is an error naming that frame.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import SettingsError, Vid2VidError

DEFAULT_FOLDER = Path("models") / "midas"
"""Where the WebUI keeps MiDaS weights (relative to the WebUI folder)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
NORMALISE_MODES = ("frame", "running", "job")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ASPECT_TOLERANCE = 0.02


# ------------------------------------------------------------------------------------------ configs


@dataclass(frozen=True)
class MidasConfig:
    """Architecture and preprocessing of one MiDaS network.

    ``arch``: ``"dpt"`` (ViT, optionally hybrid ResNet+ViT), ``"midas"`` (v2.1, ResNet-like, plain fusion
    blocks) or ``"midas_small"`` (v2.1 small, EfficientNet-like, expanding fusion blocks).
    ``backbone``: timm model names tried in order (new name first, old alias second);
    ``backbone_kwargs`` are passed to ``timm.create_model`` (tests shrink a model with them).
    ``layers``: channels of the four encoder outputs; ``features``: fusion width;
    ``hooks``: ViT block indices read (DPT; for hybrids the first two come from the ResNet stages);
    ``vit_features``: ViT width; ``net``: preprocessing target side in pixels;
    ``resize``: ``"minimal"`` or ``"upper_bound"``; ``mean``/``std`` per RGB channel on 0..1 input.
    """

    arch: str
    backbone: tuple[str, ...]
    layers: tuple[int, int, int, int]
    features: int
    net: int
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hooks: tuple[int, int, int, int] = (0, 0, 0, 0)
    vit_features: int = 0
    hybrid: bool = False
    backbone_kwargs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    filename: str
    config: MidasConfig


MODELS: dict[str, ModelSpec] = {
    "dpt_hybrid": ModelSpec("dpt_hybrid", "dpt_hybrid-midas-501f0c75.pt", MidasConfig(
        "dpt", ("vit_base_r50_s16_384", "vit_base_resnet50_384"), (256, 512, 768, 768), 256, 384, "minimal",
        HALF, HALF, hooks=(0, 1, 8, 11), vit_features=768, hybrid=True)),
    "dpt_large": ModelSpec("dpt_large", "dpt_large-midas-2f21e586.pt", MidasConfig(
        "dpt", ("vit_large_patch16_384",), (256, 512, 1024, 1024), 256, 384, "minimal",
        HALF, HALF, hooks=(5, 11, 17, 23), vit_features=1024)),
    "midas_v21": ModelSpec("midas_v21", "midas_v21-f6b98070.pt", MidasConfig(
        "midas", ("resnext101_32x8d",), (256, 512, 1024, 2048), 256, 384, "upper_bound",
        IMAGENET_MEAN, IMAGENET_STD)),
    "midas_v21_small": ModelSpec("midas_v21_small", "midas_v21_small-70d6b9c8.pt", MidasConfig(
        "midas_small", ("tf_efficientnet_lite3",), (32, 48, 136, 384), 64, 256, "upper_bound",
        IMAGENET_MEAN, IMAGENET_STD)),
}
"""The four MiDaS models, keyed by the WebUI's names."""


def _spec(kind: str) -> ModelSpec:
    try:
        return MODELS[kind]
    except KeyError:
        raise SettingsError("depth_model", f"unknown MiDaS model {kind!r}; choose one of {', '.join(MODELS)}") from None


def kind_from_filename(path: str | Path) -> str | None:
    """The model kind whose official file name ``path`` has, or ``None``."""
    name = Path(path).name
    for spec in MODELS.values():
        if name == spec.filename:
            return spec.kind
    return None


def weights_path(kind: str, location: str | Path | None = None) -> Path:
    """Path of ``kind``'s weight file: ``location`` if it is a file path, else ``location / filename``
    (default folder ``models/midas``). Raises a one-line :class:`Vid2VidError` if it does not exist."""
    spec = _spec(kind)
    loc = Path(location) if location is not None else DEFAULT_FOLDER
    p = loc / spec.filename if (loc.is_dir() or loc.suffix == "") else loc
    if not p.is_file():
        raise Vid2VidError(
            f"{p} not found: download it from the MiDaS release page and place it there, "
            f"or pick a depth video"
        )
    return p


# ------------------------------------------------------------------------------------ preprocessing


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


# ------------------------------------------------------------------------------------------ network


def _torch():
    try:
        import torch
    except ImportError:
        raise Vid2VidError("MiDaS depth needs PyTorch: pip install torch, or pick a depth video") from None
    return torch


def _timm():
    try:
        import timm
    except ImportError:
        raise Vid2VidError("MiDaS depth outside the WebUI needs timm: pip install timm, or pick a depth video") from None
    return timm


def _create_backbone(config: MidasConfig):
    timm = _timm()
    names = [n for n in config.backbone if timm.is_model(n)]
    if not names:
        raise Vid2VidError(
            f"timm {timm.__version__} has no {config.backbone[0]}; install a timm that has it (0.4.12 or newer)"
        )
    return timm.create_model(names[0], pretrained=False, **config.backbone_kwargs)


def build_model(kind_or_config: str | MidasConfig):
    """An untrained MiDaS network (``torch.nn.Module``, eval mode) whose ``state_dict`` keys are the
    official ones. Pass a kind from :data:`MODELS` or a :class:`MidasConfig` (tests use small ones).

    Works under ``with torch.device("meta"):`` to list keys and shapes without allocating weights.
    """
    config = kind_or_config if isinstance(kind_or_config, MidasConfig) else _spec(kind_or_config).config
    nn = _torch().nn
    net = _make_net_class(nn)(config)
    return net.eval()


_NET_CLASS = None


def _make_net_class(nn):
    """Define the torch module classes on first use (torch is imported lazily)."""
    global _NET_CLASS
    if _NET_CLASS is not None:
        return _NET_CLASS
    torch = _torch()
    F = torch.nn.functional

    class ResidualUnit(nn.Module):
        """``relu -> conv3x3 -> relu -> conv3x3``, plus the skip. MiDaS v2.1's unit runs its first ReLU in
        place, so its skip adds ``relu(x)``, not ``x``; ``relu_skip`` reproduces that for its weights."""

        def __init__(self, ch: int, relu_skip: bool):
            super().__init__()
            self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1, bias=True)
            self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=True)
            self.relu_skip = relu_skip

        def forward(self, x):
            a = F.relu(x)
            y = self.conv2(F.relu(self.conv1(a)))
            return y + (a if self.relu_skip else x)

    class Fusion(nn.Module):
        """``out = rcu2(x + rcu1(skip))``, upsampled bilinearly (``align_corners=True``) to ``size`` (or x2),
        then a 1x1 ``out_conv`` to ``out_ch`` channels (absent in MiDaS v2.1's plain block)."""

        def __init__(self, ch: int, out_ch: int | None, relu_skip: bool = False):
            super().__init__()
            if out_ch is not None:
                self.out_conv = nn.Conv2d(ch, out_ch, 1, 1, 0, bias=True)
            else:
                self.out_conv = None
            self.resConfUnit1 = ResidualUnit(ch, relu_skip)
            self.resConfUnit2 = ResidualUnit(ch, relu_skip)

        def forward(self, x, skip=None, size=None):
            if skip is not None:
                x = x + self.resConfUnit1(skip)
            x = self.resConfUnit2(x)
            if size is None:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            else:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
            return self.out_conv(x) if self.out_conv is not None else x

    class Upsample2(nn.Module):
        def __init__(self, align_corners: bool):
            super().__init__()
            self.align_corners = align_corners

        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=self.align_corners)

    class ProjectReadout(nn.Module):
        """DPT "project" readout: patch tokens concatenated with the class token, ``Linear(2C, C)`` + GELU."""

        def __init__(self, c: int):
            super().__init__()
            self.project = nn.Sequential(nn.Linear(2 * c, c), nn.GELU())

        def forward(self, tokens):
            patches = tokens[:, 1:]
            cls = tokens[:, :1].expand_as(patches)
            return self.project(torch.cat((patches, cls), dim=-1))

    def reassemble(c_vit: int, c_out: int, resample) -> nn.Sequential:
        # indices 1 and 2 (token transpose, unflatten) carry no weights; kept so the names are 0, 3, 4
        layers = [ProjectReadout(c_vit), nn.Identity(), nn.Identity(), nn.Conv2d(c_vit, c_out, 1, 1, 0)]
        if resample is not None:
            layers.append(resample)
        return nn.Sequential(*layers)

    class MidasNetwork(nn.Module):
        """MiDaS / DPT depth network: ``forward(x: N,3,h,w normalised) -> N,h,w`` relative inverse depth."""

        def __init__(self, config: MidasConfig):
            super().__init__()
            self.config = config
            c = config
            self.pretrained = nn.Module()
            self.scratch = nn.Module()
            backbone = _create_backbone(c)
            if c.arch == "dpt":
                self.pretrained.model = backbone
                L = c.layers
                v = c.vit_features
                posts = {
                    0: lambda: reassemble(v, L[0], nn.ConvTranspose2d(L[0], L[0], 4, 4, 0)),
                    1: lambda: reassemble(v, L[1], nn.ConvTranspose2d(L[1], L[1], 2, 2, 0)),
                    2: lambda: reassemble(v, L[2], None),
                    3: lambda: reassemble(v, L[3], nn.Conv2d(L[3], L[3], 3, 2, 1)),
                }
                for i in range(2 if c.hybrid else 0, 4):
                    setattr(self.pretrained, f"act_postprocess{i + 1}", posts[i]())
                widths = (c.features,) * 4
                outs = (c.features,) * 4
            elif c.arch == "midas":
                r = backbone
                act = r.act1 if hasattr(r, "act1") else r.relu  # timm / torchvision name
                self.pretrained.layer1 = nn.Sequential(r.conv1, r.bn1, act, r.maxpool, r.layer1)
                self.pretrained.layer2 = r.layer2
                self.pretrained.layer3 = r.layer3
                self.pretrained.layer4 = r.layer4
                widths = (c.features,) * 4
                outs = (None,) * 4
            elif c.arch == "midas_small":
                e = backbone
                # timm's bn1 applies the activation itself; index 2 is gen-efficientnet's act1 (no weights)
                stem_act = e.act1 if hasattr(e, "act1") else nn.Identity()
                self.pretrained.layer1 = nn.Sequential(e.conv_stem, e.bn1, stem_act, *e.blocks[0:2])
                self.pretrained.layer2 = nn.Sequential(*e.blocks[2:3])
                self.pretrained.layer3 = nn.Sequential(*e.blocks[3:5])
                self.pretrained.layer4 = nn.Sequential(*e.blocks[5:9])
                f = c.features
                widths = (f, 2 * f, 4 * f, 8 * f)
                outs = (f, f, 2 * f, 4 * f)
            else:
                raise ValueError(f"unknown arch {c.arch!r}")
            for i in range(4):
                setattr(self.scratch, f"layer{i + 1}_rn", nn.Conv2d(c.layers[i], widths[i], 3, 1, 1, bias=False))
            relu_skip = c.arch == "midas"
            for i in (3, 2, 1, 0):
                setattr(self.scratch, f"refinenet{i + 1}", Fusion(widths[i], outs[i], relu_skip))
            f = c.features
            self.scratch.output_conv = nn.Sequential(
                nn.Conv2d(f, f // 2, 3, 1, 1),
                Upsample2(align_corners=c.arch == "dpt"),
                nn.Conv2d(f // 2, 32, 3, 1, 1),
                nn.ReLU(),
                nn.Conv2d(32, 1, 1, 1, 0),
                nn.ReLU(),
            )

        # ---- encoders
        def _dpt_features(self, x):
            vit = self.pretrained.model
            n, _, h, w = x.shape
            gh, gw = h // 16, w // 16
            feats: list = []
            if self.config.hybrid:
                bb = vit.patch_embed.backbone
                y = bb.stem(x)
                for i, stage in enumerate(bb.stages):
                    y = stage(y)
                    if i < 2:
                        feats.append(y)
                y = bb.norm(y)
                tokens = vit.patch_embed.proj(y)
            else:
                tokens = vit.patch_embed.proj(x)
            tokens = tokens.flatten(2).transpose(1, 2)
            tokens = torch.cat((vit.cls_token.expand(n, -1, -1), tokens), dim=1)
            tokens = tokens + _resize_pos_embed(vit.pos_embed, gh, gw)
            hooks = self.config.hooks
            first = 2 if self.config.hybrid else 0
            wanted = {hooks[i]: i for i in range(first, 4)}
            for b, block in enumerate(vit.blocks[: max(wanted) + 1]):
                tokens = block(tokens)
                i = wanted.get(b)
                if i is not None:
                    post = getattr(self.pretrained, f"act_postprocess{i + 1}")
                    t = post[0](tokens)  # readout -> N, gh*gw, C
                    t = t.transpose(1, 2).reshape(n, t.shape[-1], gh, gw)
                    for layer in post[3:]:
                        t = layer(t)
                    feats.append(t)
            return feats

        def forward(self, x):
            if self.config.arch == "dpt":
                l1, l2, l3, l4 = self._dpt_features(x)
            else:
                p = self.pretrained
                l1 = p.layer1(x)
                l2 = p.layer2(l1)
                l3 = p.layer3(l2)
                l4 = p.layer4(l3)
            s = self.scratch
            r1, r2, r3, r4 = s.layer1_rn(l1), s.layer2_rn(l2), s.layer3_rn(l3), s.layer4_rn(l4)
            path = s.refinenet4(r4, size=r3.shape[2:])
            path = s.refinenet3(path, r3, size=r2.shape[2:])
            path = s.refinenet2(path, r2, size=r1.shape[2:])
            path = s.refinenet1(path, r1)
            return s.output_conv(path).squeeze(1)

    def _resize_pos_embed(pos, gh: int, gw: int):
        """Class-token embedding kept; the square patch grid resized bilinearly to ``gh x gw``."""
        cls, grid = pos[:, :1], pos[0, 1:]
        g = int(math.sqrt(grid.shape[0]))
        grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bilinear")
        grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)
        return torch.cat((cls, grid), dim=1)

    _NET_CLASS = MidasNetwork
    return _NET_CLASS


def _read_state_dict(path: Path) -> dict:
    torch = _torch()
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged file, a pickle with code in it, not a torch file ...
        raise Vid2VidError(
            f"cannot read MiDaS weights {path} ({type(exc).__name__}); download the file again"
        ) from None
    if isinstance(sd, dict) and "optimizer" in sd and "model" in sd:  # a training checkpoint
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise Vid2VidError(f"{path} holds no state_dict; give an official MiDaS .pt file")
    return sd


def load_model(path: str | Path, kind_or_config: str | MidasConfig | None = None):
    """Build the network and load the weight file at ``path`` with ``strict=True``; returns it in eval mode.

    ``kind_or_config`` defaults to the kind whose official file name ``path`` has. Wrong or damaged
    files raise a one-line :class:`Vid2VidError`.
    """
    p = Path(path)
    if kind_or_config is None:
        kind_or_config = kind_from_filename(p)
        if kind_or_config is None:
            raise SettingsError("depth_model", f"cannot tell the MiDaS model from the name {p.name}; name the model")
    if isinstance(kind_or_config, str):
        p = weights_path(kind_or_config, p)
    elif not p.is_file():
        raise Vid2VidError(f"{p} not found: give the path of the MiDaS weight file")
    sd = _read_state_dict(p)
    net = build_model(kind_or_config)
    what = kind_or_config if isinstance(kind_or_config, str) else "this MiDaS"
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError:
        own = net.state_dict()
        missing = [k for k in own if k not in sd]
        extra = [k for k in sd if k not in own]
        shape = [k for k in own if k in sd and tuple(own[k].shape) != tuple(getattr(sd[k], "shape", ()))]
        detail = "; ".join(f"{n} {what_} (e.g. {ks[0]})" for n, what_, ks in (
            (len(missing), "missing", missing), (len(extra), "unexpected", extra), (len(shape), "wrong shape", shape)) if ks)
        raise Vid2VidError(f"{p.name} does not fit the {what} network: {detail}; pick the matching model") from None
    return net.eval()


# ------------------------------------------------------------------------------------------ estimator


class DepthEstimator:
    """Runs a MiDaS network on RGB uint8 frames.

    ``estimator(rgb)`` -> float32 HW normalised depth 0..1 (1 = near), per-frame min/max;
    ``estimator.predict(rgb)`` -> float32 HW raw relative inverse depth at the frame size (for
    :class:`DepthCache`, which can normalise across frames). Inference is under ``torch.inference_mode``.
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
        return cls(net.to(device), _spec(kind).config, kind)

    @classmethod
    def from_module(cls, module, kind: str) -> DepthEstimator:
        """Wrap a network the host already loaded (e.g. the WebUI's ``ldm.modules.midas`` model for
        ``kind``). It must map the normalised ``N,3,h,w`` input to ``N,h,w`` (or ``N,1,h,w``) inverse depth;
        the preprocessing is ``kind``'s. Device and dtype follow the module's first parameter."""
        return cls(module, _spec(kind).config, kind)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Raw relative inverse depth (larger = nearer), float32 HW at the frame's size."""
        torch = _torch()
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


# ------------------------------------------------------------------------------------- normalising


def normalise(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``clip((raw - lo) / (hi - lo), 0, 1)`` as float32 HW; all zeros when ``hi <= lo`` (flat map)."""
    if not hi > lo:
        return np.zeros(raw.shape, np.float32)
    lo32, hi32 = np.float32(lo), np.float32(hi)
    d = (raw.astype(np.float32) - lo32) / (hi32 - lo32)  # division: the maximum maps to exactly 1
    return np.clip(d, 0.0, 1.0, out=d)


def depth_mask(depth: np.ndarray, low_cut: float) -> np.ndarray:
    """Depth mask: ``1`` where ``depth * 255 >= low_cut`` else ``0`` (float32 HW).

    ``depth`` float32 HW 0..1 (1 = near); ``low_cut`` 0..255 (0 = the whole frame may change). Pixels
    farther than the low-cut may not change.
    """
    if not 0 <= low_cut <= 255:
        raise SettingsError("depth_low_cut", f"{low_cut} is outside 0..255")
    if low_cut <= 0:
        return np.ones(depth.shape[:2], np.float32)
    return (depth.astype(np.float32, copy=False) * np.float32(255.0) >= np.float32(low_cut)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- cache


def _stats(raw: np.ndarray, percentiles: tuple[float, float]) -> list[float]:
    q_lo, q_hi = np.percentile(raw, percentiles)
    return [float(raw.min()), float(raw.max()), float(q_lo), float(q_hi)]


class DepthCache:
    """Depth computed once per job: ``<folder>/NNNNNN.png`` (16-bit) + ``depth.jsonl`` (see the module docstring).

    ``folder`` is the cache folder (e.g. ``job.root / "depth"``); ``normalise`` is ``"frame"``,
    ``"running"`` or ``"job"``; ``percentiles`` (0..100) give ``q_lo, q_hi`` for ``"job"``.
    ``depth.jsonl`` is append-only: a header line ``{"percentiles": [lo, hi]}``, then one line
    ``{"i": index, "s": [min, max, q_lo, q_hi]}`` per frame, written after the frame's PNG. A frame counts
    as cached when it has both; a torn last line is ignored. A header with other percentiles starts anew.
    """

    STATS = "depth.jsonl"

    def __init__(self, folder: str | Path, *, normalise: str = "frame", percentiles: tuple[float, float] = (2.0, 98.0)):
        if normalise not in NORMALISE_MODES:
            raise SettingsError("depth_normalise", f"unknown {normalise!r}; choose one of {', '.join(NORMALISE_MODES)}")
        lo, hi = percentiles
        if not 0 <= lo < hi <= 100:
            raise SettingsError("depth_percentiles", f"{percentiles} must satisfy 0 <= low < high <= 100")
        self.folder = Path(folder)
        self.mode = normalise
        self.percentiles = (float(lo), float(hi))
        self._stats: dict[int, list[float]] = {}
        self._run: tuple[int, float, float] | None = None  # memo of the running range: (index, lo, hi)
        self._fresh = True
        self._load()

    def _load(self) -> None:
        p = self.folder / self.STATS
        try:
            lines = p.read_text().splitlines()
        except OSError:
            return
        try:
            header = json.loads(lines[0]) if lines else {}
        except ValueError:
            header = {}
        if [float(x) for x in header.get("percentiles", ())] != list(self.percentiles):
            return  # another percentile setting (or no header): recompute, the log is rewritten
        self._fresh = False
        for line in lines[1:]:
            try:
                rec = json.loads(line)
                self._stats[int(rec["i"])] = [float(x) for x in rec["s"]][:4]
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from an interrupted run
        self._stats = {k: v for k, v in self._stats.items() if len(v) == 4 and self.path(k).is_file()}

    def path(self, index: int) -> Path:
        return self.folder / f"{int(index):06d}.png"

    def has(self, index: int) -> bool:
        return index in self._stats

    def put(self, index: int, raw: np.ndarray) -> None:
        """Store frame ``index``'s raw depth (float32 HW): the 16-bit PNG first, then its stats line."""
        from .workspace import _io_error, atomic_write_bytes

        index = int(index)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error("creating", self.folder, exc) from None
        st = _stats(raw, self.percentiles)
        u16 = np.rint(normalise(raw, st[0], st[1]) * 65535.0).astype(np.uint16)
        ok, buf = cv2.imencode(".png", u16, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise Vid2VidError(f"PNG encoding failed for depth frame {index}")
        atomic_write_bytes(self.path(index), buf.tobytes())
        log = self.folder / self.STATS
        try:
            if self._fresh:
                atomic_write_bytes(log, (json.dumps({"percentiles": list(self.percentiles)}) + "\n").encode())
                self._fresh = False
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"i": index, "s": st}) + "\n")
        except OSError as exc:
            raise _io_error("writing", log, exc) from None
        self._stats[index] = st
        if self._run is not None and self._run[0] >= index:
            self._run = None

    def raw(self, index: int) -> np.ndarray:
        """Frame ``index``'s raw depth rebuilt from the cache: ``min + png / 65535 * (max - min)``."""
        u16 = self._png(index)
        lo, hi = self._stats[index][:2]
        return np.float32(lo) + u16.astype(np.float32) * np.float32((hi - lo) / 65535.0)

    def _png(self, index: int) -> np.ndarray:
        if index not in self._stats:
            raise Vid2VidError(f"depth for frame {index} is not cached in {self.folder}")
        p = self.path(index)
        u16 = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if u16 is None or u16.dtype != np.uint16 or u16.ndim != 2:
            raise Vid2VidError(f"depth cache file {p} is missing or damaged; delete it and run the job again")
        return u16

    def range(self, index: int) -> tuple[float, float]:
        """``(lo, hi)`` used to normalise frame ``index`` in this cache's mode."""
        if self.mode == "frame":
            if index not in self._stats:
                raise Vid2VidError(f"depth for frame {index} is not cached in {self.folder}")
            lo, hi = self._stats[index][:2]
        elif self.mode == "running":
            start, lo, hi = (0, math.inf, -math.inf) if self._run is None or self._run[0] > index else (
                self._run[0] + 1, self._run[1], self._run[2])
            for j in range(start, index + 1):
                s = self._stats.get(j)
                if s is None:
                    raise Vid2VidError(f"running depth range of frame {index} needs frame {j}'s depth first")
                lo, hi = min(lo, s[0]), max(hi, s[1])
            self._run = (index, lo, hi)
        else:
            if not self._stats:
                raise Vid2VidError("job depth range needs the depth of every frame first (DepthCache.fill)")
            lo = min(s[2] for s in self._stats.values())
            hi = max(s[3] for s in self._stats.values())
        return float(lo), float(hi)

    def depth(self, index: int) -> np.ndarray:
        """Normalised depth of a cached frame, float32 HW 0..1 (1 = near)."""
        if self.mode == "frame":
            return self._png(index).astype(np.float32) / np.float32(65535)
        return normalise(self.raw(index), *self.range(index))

    def get(self, index: int, frame: np.ndarray, estimator) -> np.ndarray:
        """Normalised depth of frame ``index`` (RGB uint8 ``frame``): from the cache, or computed with
        ``estimator.predict`` and cached first. The model never runs twice for one frame."""
        if not self.has(index):
            self.put(index, estimator.predict(frame))
        return self.depth(index)

    def fill(self, frames, estimator, progress=None) -> int:
        """Compute and cache every ``(index, frame)`` of ``frames`` not cached yet (for ``"job"`` mode);
        returns how many were computed. ``progress(done_index)`` is called after each frame."""
        n = 0
        for index, frame in frames:
            if not self.has(index):
                self.put(index, estimator.predict(frame))
                n += 1
            if progress is not None:
                progress(index)
        return n


# -------------------------------------------------------------------------------------- user depth


def _grey01(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16, grey or BGR(A) -> float32 HW 0..1 (BT.601 luma for colour)."""
    scale = np.float32(1 / 65535) if img.dtype == np.uint16 else np.float32(1 / 255)
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY) if img.dtype == np.uint8 else (
            img[:, :, 2] * 0.299 + img[:, :, 1] * 0.587 + img[:, :, 0] * 0.114)
    return img.astype(np.float32) * scale


def _fit(grey: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    w, h = int(size[0]), int(size[1])
    gh, gw = grey.shape[:2]
    if (gw, gh) == (w, h):
        return grey
    if abs((gw / gh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise Vid2VidError(f"{what} is {gw}x{gh} but the frame is {w}x{h}; give depth maps with the frame's aspect ratio")
    interp = cv2.INTER_AREA if gw * gh > w * h else cv2.INTER_LINEAR
    return cv2.resize(grey, (w, h), interpolation=interp)


class DepthSource:
    """User-supplied depth (white = near) instead of the model: :meth:`from_video` or :meth:`from_folder`.

    ``get(index, size)`` -> float32 HW 0..1 at ``size = (width, height)``. Folder files pair with frames by
    the last run of digits in their names, the smallest number being frame 0 (as the user masks do).
    ``check_count(n)`` raises when the source does not have exactly ``n`` frames, naming the first frame
    without depth (or the first extra one).
    """

    def __init__(self, kind: str, path: Path, count: int):
        self.kind = kind
        self.path = path
        self.count = count
        self._files: dict[int, Path] = {}
        self._start = 0
        self._iter = None
        self._next = 0
        self._video_args: dict[str, Any] = {}

    @classmethod
    def from_folder(cls, path: str | Path) -> DepthSource:
        p = Path(path)
        if not p.is_dir():
            raise Vid2VidError(f"depth folder {p} not found; give a folder of numbered depth images")
        files: dict[int, Path] = {}
        for f in sorted(p.iterdir()):
            groups = re.findall(r"\d+", f.stem)
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES or not groups:
                continue
            n = int(groups[-1])
            if n in files:
                raise Vid2VidError(f"depth folder {p}: {files[n].name} and {f.name} both have number {n}; keep one")
            files[n] = f
        if not files:
            raise Vid2VidError(f"depth folder {p} has no numbered images; name them like 000000.png")
        start = min(files)
        count = 0
        while start + count in files:
            count += 1
        src = cls("folder", p, count)
        src._files, src._start = files, start
        return src

    @classmethod
    def from_video(cls, path: str | Path, *, fps=None, start: float = 0.0, end: float | None = None) -> DepthSource:
        """A depth video, resampled like the clip when given the job's ``fps``/``start``/``end``."""
        from . import video

        p = Path(path)
        if not p.is_file():
            raise Vid2VidError(f"depth video {p} not found; check the path")
        info = video.probe(p)
        src = cls("video", p, video.output_frame_count(info, fps, start, end))
        src._video_args = {"fps": fps, "start": start, "end": end, "info": info}
        return src

    def check_count(self, n_frames: int) -> None:
        if self.count < n_frames:
            raise Vid2VidError(
                f"depth {self.kind} {self.path} has {self.count} frames but the clip has {n_frames}: "
                f"frame {self.count} has no depth map; give depth for every frame"
            )
        if self.count > n_frames:
            raise Vid2VidError(
                f"depth {self.kind} {self.path} has {self.count} frames but the clip has {n_frames} "
                f"(frame {n_frames} onward has no clip frame); trim it to the clip"
            )

    def _raw(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise Vid2VidError(
                f"depth {self.kind} {self.path} has no depth map for frame {index} ({self.count} frames); "
                "give depth for every frame"
            )
        if self.kind == "folder":
            f = self._files[self._start + index]
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise Vid2VidError(f"cannot read depth image {f} for frame {index}; replace it with a PNG")
            return _grey01(img)
        from . import video

        if self._iter is None or index < self._next:
            self._iter = video.iter_frames(self.path, first_index=index, **self._video_args)
        while True:
            try:
                k, rgb = next(self._iter)
            except StopIteration:
                self._iter = None
                raise Vid2VidError(f"depth video {self.path} ended before frame {index}; give depth for every frame") from None
            self._next = k + 1
            if k == index:
                return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)

    def get(self, index: int, size: tuple[int, int]) -> np.ndarray:
        """Depth of frame ``index`` (0-based), float32 HW 0..1 (1 = near) resized to ``size = (w, h)``."""
        return np.clip(_fit(self._raw(index), size, f"depth map for frame {index}"), 0.0, 1.0)

    def close(self) -> None:
        self._iter = None
