"""Renderers that need no model: for tests, benchmarks and trying the pipeline without a WebUI.

:class:`ProxyRenderer` imitates what makes img2img video flicker, deterministically and fast on a CPU::

    style(x)  = posterised, edge-darkened box-blur of the init x            (float32 0..1, RGB HWC)
    noise(s)  = N(0, 1) drawn at 1/8 resolution from seed s, bicubic-upsampled (spatially correlated detail)
    n         = noise(seed) * sqrt(1 - v) + noise(subseed) * sqrt(v)          v = subseed_strength
    n         = sqrt(s) * up(N[k, :3]) + sqrt(1 - s) * n     with a warped latent field N (request.noise,
                (images, C, H/8, W/8)) of strength s; up = the same bicubic upsampling as noise(seed)
    out       = (1 - d) * x + d * clip(style(x) + a * n, 0, 1)               d = denoise, a = detail amplitude
    masked    = m * out + (1 - m) * x                                        m = request mask (1 = repaint)

A fixed seed gives the same detail pattern every frame (texture that sticks while the content moves); an
incrementing seed gives new detail every frame (flicker) -- the two failure modes of per-frame img2img. A
warped noise field (``noise_mode = warped``) moves the detail with the content, as it moves a model's texture.
Image i of a batch uses seed + i, as the WebUI does.

:class:`SleepRenderer` stands in for GPU sampling time in overhead benchmarks: it sleeps and returns the
init, using no CPU.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from .noise import mix
from .renderer import RenderRequest


class ProxyRenderer:
    def __init__(self, detail: float = 0.12, levels: int = 6, blur: int = 5):
        self.detail = detail
        self.levels = levels
        self.blur = blur
        self.calls = 0

    def host_identity(self) -> dict:
        """Part of the job's identity: this renderer and its look."""
        return {"renderer": "proxy", "request": {"detail": self.detail, "levels": self.levels, "blur": self.blur}}

    def style(self, init_f: np.ndarray) -> np.ndarray:
        """Posterise a box-blurred image and darken its edges (float32 0..1 RGB HWC in and out)."""
        smooth = cv2.blur(init_f, (self.blur, self.blur))
        q = np.floor(smooth * self.levels + 0.5) / self.levels
        grey = cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)
        edges = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        return q * (1.0 - np.clip(edges, 0, 0.6)[..., None])

    @staticmethod
    def noise(seed: int, height: int, width: int) -> np.ndarray:
        """Spatially correlated N(0,1)-ish noise, float32 (H, W, 3), a pure function of the seed."""
        rng = np.random.default_rng(seed & 0xFFFFFFFF)
        small = rng.standard_normal((max(1, height // 8), max(1, width // 8), 3)).astype(np.float32)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)

    @staticmethod
    def upsample(latent: np.ndarray, height: int, width: int) -> np.ndarray:
        """A latent noise field (C, h, w), C >= 3, as detail noise float32 (H, W, 3): its first three channels,
        upsampled bicubically like :meth:`noise`."""
        small = np.ascontiguousarray(np.asarray(latent, np.float32)[:3].transpose(1, 2, 0))
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        self.calls += 1
        x = request.init.astype(np.float32) / 255.0
        h, w = x.shape[:2]
        styled = self.style(x)
        d = float(request.denoise)
        outs = []
        for k in range(request.batch_size * request.n_iter):
            n = self.noise(request.seed + k, h, w)
            v = float(request.subseed_strength)
            if v > 0 and request.subseed >= 0:
                n = n * np.sqrt(1 - v) + self.noise(request.subseed + k, h, w) * np.sqrt(v)
            if request.noise is not None:
                n = mix(self.upsample(request.noise[k], h, w), n, request.noise_strength)
            out = (1 - d) * x + d * np.clip(styled + self.detail * n, 0, 1)
            if request.mask is not None:
                m = request.mask[..., None].astype(np.float32)
                out = m * out + (1 - m) * x
            outs.append(np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8))
        return outs


class SleepRenderer:
    """Sleeps ``seconds`` per call and returns copies of the init image (no CPU use)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        time.sleep(self.seconds)
        return [request.init.copy() for _ in range(request.batch_size * request.n_iter)]
