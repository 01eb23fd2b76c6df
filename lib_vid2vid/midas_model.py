"""MiDaS networks: the four official models, their weight files, and the network built on a timm backbone.

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
    and hands it over with :meth:`.depth_estimator.DepthEstimator.from_module`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError, Vid2VidError

DEFAULT_FOLDER = Path("models") / "midas"
"""Where the WebUI keeps MiDaS weights (relative to the WebUI folder)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


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


def model_spec(kind: str) -> ModelSpec:
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
    spec = model_spec(kind)
    loc = Path(location) if location is not None else DEFAULT_FOLDER
    p = loc / spec.filename if (loc.is_dir() or loc.suffix == "") else loc
    if not p.is_file():
        raise Vid2VidError(
            f"{p} not found: download it from the MiDaS release page and place it there, "
            f"or pick a depth video"
        )
    return p

def import_torch():
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
    config = kind_or_config if isinstance(kind_or_config, MidasConfig) else model_spec(kind_or_config).config
    nn = import_torch().nn
    net = _make_net_class(nn)(config)
    return net.eval()


_NET_CLASS = None


def _make_net_class(nn):
    """Define the torch module classes on first use (torch is imported lazily)."""
    global _NET_CLASS
    if _NET_CLASS is not None:
        return _NET_CLASS
    torch = import_torch()
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
    torch = import_torch()
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
