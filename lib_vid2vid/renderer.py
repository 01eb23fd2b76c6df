"""The seam between lib_vid2vid and whatever samples images.

The A1111 adapter, the HTTP API client, the standalone diffusers backend and the tests' deterministic
renderer all implement :class:`Renderer`. Nothing above this module knows which host is behind it.

Image conventions: ``init`` and every returned image are RGB uint8 arrays, shape (H, W, 3).
``mask`` is float32 (H, W) in 0..1, where 1 means "may be repainted" (the host's inpaint mask, white).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class RenderRequest:
    init: np.ndarray
    """RGB uint8 HWC init image, already at the output size."""
    seed: int
    denoise: float
    """img2img denoising strength, 0..1."""
    steps: int
    cfg: float
    prompt: str
    negative_prompt: str = ""
    mask: np.ndarray | None = None
    """float32 HW in 0..1, 1 = repaint; None = whole frame."""
    subseed: int = -1
    subseed_strength: float = 0.0
    sigmas: Callable[[int], list[float]] | None = None
    """Sigma schedule override: called with the step count the host asks for, returns that many + 1 descending
    sigmas ending in 0 (``sigmas.override_function``); None = the host's own schedule."""
    batch_size: int = 1
    n_iter: int = 1
    control_image: np.ndarray | None = None
    """RGB uint8 HWC frame for ControlNet units (normally the source frame)."""
    frame_index: int = 0
    noise: np.ndarray | None = None
    """Warped latent noise (``noise_mode = warped``): float32 (batch_size * n_iter, C, H/8, W/8), i.i.d. N(0, 1);
    image k of the request samples with ``noise.mix(noise[k], own_seed_noise_k, noise_strength)``
    (:func:`lib_vid2vid.noise.request_noise`). None: the host's own seeded noise."""
    noise_strength: float = 1.0
    extra: dict = field(default_factory=dict)
    """Host-specific pass-through (sampler name, scheduler, ...)."""

    @property
    def width(self) -> int:
        return int(self.init.shape[1])

    @property
    def height(self) -> int:
        return int(self.init.shape[0])


@runtime_checkable
class Renderer(Protocol):
    """Optionally also ``host_identity() -> dict``: what the host uses to make a frame beyond the request
    (checkpoint, VAE, ControlNet units ...; lib_vid2vid/identity.py). It is part of a job's identity: a job is
    resumed only by a host with an equal one.

    Optionally also ``latent_channels`` (int, or a method returning it): the channels of the latent the host
    samples, for warped noise (4 when absent: SD 1.x/2.x/XL; SD3 and Flux have 16).

    Optionally also ``take_notices() -> list[str]``: one-line notes about the host (e.g. an option that is on
    but does nothing), asked after every frame; a note may come again in later calls: the loop writes each
    into the job log once per job and the job's result carries them."""

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        """Return batch_size * n_iter RGB uint8 HWC images of the request's size."""
        ...


class NoRenderer:
    """The renderer of a job that renders nothing: its keyframes come from a folder and the pixels no keyframe sees
    are filled without a render (``keyframe_fill`` styled or source). No host is needed, and the job has no host
    identity. A render request means the job needed one after all: one line says what to start."""

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        from .errors import Vid2VidError

        raise Vid2VidError("This job renders frames: start the WebUI with --api (or give --renderer), then run the "
                           "same command again to resume")

