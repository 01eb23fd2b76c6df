"""RIFE HDv3 flow network (IFNet) in PyTorch, written for this project to load ``flownet.pkl`` HDv3 weights.

What the network computes (Huang et al., "Real-Time Intermediate Flow Estimation", HDv3 variant):
given two frames ``I0``, ``I1`` (float32 RGB 0..1, NCHW) it estimates, for the moment half-way between
them, a backward flow to each frame ``F_t0``, ``F_t1`` (pixels, channels x,y) and a fusion logit ``m``;
the middle frame is ``sigmoid(m) * warp(I0, F_t0) + (1 - sigmoid(m)) * warp(I1, F_t1)``.
HDv3 has no timestep input: it always predicts t = 0.5 (longer or shorter steps are built by bisection in
:mod:`lib_vid2vid.interpolate`).

Coarse to fine over three :class:`FlowBlock` stages working at 1/4, 1/2 and 1/1 of the image size (times
``1/scale``). Each stage sees both warped frames, the current mask and the current flow, and adds a
correction. Every stage runs twice, once with the frames in order and once swapped (flow halves swapped,
mask negated); the two answers are averaged, which keeps the result symmetric in time. Here both
directions go through the network as one batch of 2N.

Inside a stage the input is shrunk by ``s`` (bilinear, flow divided by ``s``), encoded by two stride-2
3x3 convolutions (so features are at 1/(4s) of the image), refined by four residual pairs of 3x3
convolutions, and decoded by two stride-2 4x4 transposed convolutions into 4 flow + 1 mask channels, then
enlarged by ``s`` again (flow times ``s``). Every convolution except the last of each head is followed by a
per-channel PReLU. The frame size must be a multiple of ``32 / scale`` (:func:`pad_multiple`).

Parameter names follow the published state dict (``block{0,1,2}.conv0.0.0.weight`` ...), so the shipped
weights load as they are; the teacher block (``block_tea``) used only in training is not built and its
weights are ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: channel width of the HDv3 flow blocks
WIDTH = 90
#: image channels per stage: warped I0 (3) + warped I1 (3) + mask (1) + flow (4)
STAGE_IN = 3 + 3 + 1 + 4


def pad_multiple(scale: float = 1.0) -> int:
    """Frame sides must be multiples of this: the coarsest stage shrinks by ``4/scale`` and then by 4 more
    in its encoder, and the decoder must land back on the same size (32 for scale 1, 64 for scale 0.5)."""
    return max(32, int(round(32 / scale)))


def _conv_prelu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.PReLU(cout))


class FlowBlock(nn.Module):
    """One coarse-to-fine stage: (frames+mask (7 ch), flow (4 ch)) -> (flow delta (4), mask delta (1))."""

    def __init__(self, cin: int = STAGE_IN, c: int = WIDTH):
        super().__init__()
        half = c // 2
        self.conv0 = nn.Sequential(_conv_prelu(cin, half, 2), _conv_prelu(half, c, 2))
        for k in range(4):
            self.add_module(f"convblock{k}", nn.Sequential(_conv_prelu(c, c), _conv_prelu(c, c)))
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(c, half, 4, 2, 1), nn.PReLU(half), nn.ConvTranspose2d(half, 4, 4, 2, 1)
        )
        self.conv2 = nn.Sequential(
            nn.ConvTranspose2d(c, half, 4, 2, 1), nn.PReLU(half), nn.ConvTranspose2d(half, 1, 4, 2, 1)
        )

    def forward(self, x: torch.Tensor, flow: torch.Tensor, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        if s != 1:
            x = F.interpolate(
                x, scale_factor=1.0 / s, mode="bilinear", align_corners=False, recompute_scale_factor=False
            )
            flow = (
                F.interpolate(
                    flow,
                    scale_factor=1.0 / s,
                    mode="bilinear",
                    align_corners=False,
                    recompute_scale_factor=False,
                )
                / s
            )
        h = self.conv0(torch.cat((x, flow), 1))
        for k in range(4):
            h = h + getattr(self, f"convblock{k}")(h)
        d_flow, d_mask = self.conv1(h), self.conv2(h)
        if s != 1:
            d_flow = (
                F.interpolate(
                    d_flow, scale_factor=s, mode="bilinear", align_corners=False, recompute_scale_factor=False
                )
                * s
            )
            d_mask = F.interpolate(
                d_mask, scale_factor=s, mode="bilinear", align_corners=False, recompute_scale_factor=False
            )
        return d_flow, d_mask


def backward_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` (N,C,H,W) at ``p + flow(p)`` (flow N,2,H,W in pixels, x then y); bilinear, edges
    clamped. Pixel centres map to [-1, 1] with ``align_corners=True``, i.e. 1 px = 2/(side-1)."""
    n, _, h, w = flow.shape
    ys = torch.linspace(-1.0, 1.0, h, device=flow.device, dtype=flow.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=flow.dtype)
    gx = xs.view(1, 1, w) + flow[:, 0] * (2.0 / max(w - 1, 1))
    gy = ys.view(1, h, 1) + flow[:, 1] * (2.0 / max(h - 1, 1))
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)


_SWAP = [2, 3, 0, 1]  # (F_t0, F_t1) -> (F_t1, F_t0)


class IFNetHDv3(nn.Module):
    """Three :class:`FlowBlock` stages; ``forward(i0, i1)`` returns the middle frame (N,3,H,W, 0..1)."""

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.block0 = FlowBlock(STAGE_IN, width)
        self.block1 = FlowBlock(STAGE_IN, width)
        self.block2 = FlowBlock(STAGE_IN, width)

    def forward(self, i0: torch.Tensor, i1: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        n, _, h, w = i0.shape
        m = pad_multiple(scale)
        if h % m or w % m:
            raise ValueError(f"IFNetHDv3 needs sides divisible by {m}, got {h}x{w}")
        flow = i0.new_zeros((n, 4, h, w))
        mask = i0.new_zeros((n, 1, h, w))
        w0, w1 = i0, i1
        for block, s in zip((self.block0, self.block1, self.block2), (4 / scale, 2 / scale, 1 / scale)):
            x = torch.cat((torch.cat((w0, w1, mask), 1), torch.cat((w1, w0, -mask), 1)), 0)
            f = torch.cat((flow, flow[:, _SWAP]), 0)
            d_flow, d_mask = block(x, f, s)
            flow = flow + (d_flow[:n] + d_flow[n:, _SWAP]) / 2
            mask = mask + (d_mask[:n] - d_mask[n:]) / 2
            w0 = backward_warp(i0, flow[:, :2])
            w1 = backward_warp(i1, flow[:, 2:])
        alpha = torch.sigmoid(mask)
        return w0 * alpha + w1 * (1 - alpha)


def load_hdv3_state(path, map_location="cpu") -> dict[str, torch.Tensor]:
    """Read an HDv3 ``flownet.pkl`` safely (``weights_only=True``: tensors only, no code) and return the
    state dict for :class:`IFNetHDv3`: ``module.`` prefixes dropped, training-only ``block_tea`` removed."""
    raw = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(raw, dict):
        raise TypeError(f"expected a state dict, got {type(raw).__name__}")
    out = {}
    for k, v in raw.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        if not k.startswith("block_tea."):
            out[k] = v
    return out
