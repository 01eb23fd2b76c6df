"""process_images double: records each p it gets and returns a deterministic image per batch item.

The image is the init darkened by denoising_strength, plus seed % 7 on every pixel, so tests can see which
seed, init and denoise reached the host. ``hooks`` run inside process_images (to press Interrupt/Skip).
When ``p.scripts`` has ``process_before_every_sampling`` (an always-on scripts runner), each batch iteration
draws its noise as A1111 1.10 does in ``StableDiffusionProcessingImg2Img.sample`` (seeded, times the noise
multiplier), calls the hook with ``noise=`` and records the tensor it would sample with in ``sampled_noise``.
"""

import numpy as np
from PIL import Image

from modules import shared

calls = []
hooks = []
sampled_noise = []


class Processed:
    def __init__(self, p, images_list, seed=-1, info="", infotexts=None, **kw):
        self.images = images_list
        self.seed = seed
        self.info = info
        self.infotexts = infotexts or [info] * len(images_list)
        self.prompt = getattr(p, "prompt", "")
        self.extra_generation_params = dict(getattr(p, "extra_generation_params", None) or {})

    def js(self):
        """The generation info JSON the WebUI puts in its hidden generation_info box (and the API's info)."""
        import json

        return json.dumps({"prompt": self.prompt, "seed": self.seed, "info": self.info,
                           "extra_generation_params": self.extra_generation_params}, default=str)


class StableDiffusionProcessingImg2Img:
    def __init__(self, **kw):
        self.prompt = ""
        self.negative_prompt = ""
        self.sampler_name = "Euler"
        self.scheduler = "Automatic"
        self.steps = 20
        self.cfg_scale = 7.0
        self.denoising_strength = 0.5
        self.seed = 1234
        self.subseed = -1
        self.subseed_strength = 0.0
        self.batch_size = 1
        self.n_iter = 1
        self.width = 96
        self.height = 64
        self.init_images = [None]
        self.image_mask = None
        self.sampler_noise_scheduler_override = None
        self.extra_generation_params = {}
        self.closed = False
        self.__dict__.update(kw)

    def close(self):
        self.closed = True


def process_images(p):
    calls.append(p)
    for hook in list(hooks):
        hook(p, len(calls) - 1)
    if shared.state.stopping_generation or shared.state.interrupted:
        return Processed(p, [], p.seed, "")  # the host's loop breaks before sampling
    runner = getattr(p, "scripts", None)
    if runner is not None and hasattr(runner, "process_before_every_sampling"):
        import torch

        for n in range(p.n_iter):
            p.iteration = n
            gen = torch.Generator().manual_seed(p.seed + n * p.batch_size)
            x = torch.randn((p.batch_size, 4, p.height // 8, p.width // 8), generator=gen)
            multiplier = getattr(p, "initial_noise_multiplier", None) or 1.0
            if multiplier != 1.0:
                x *= multiplier
            runner.process_before_every_sampling(p, x=None, noise=x, c=None, uc=None)
            sampled_noise.append(x.clone())
    init = np.asarray(p.init_images[0].convert("RGB")).astype(np.float32)
    images = []
    for k in range(p.batch_size * p.n_iter):
        out = init * (1 - 0.5 * p.denoising_strength) + (p.seed + k) % 7
        images.append(Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)))
    shared.state.nextjob()
    info = f"{p.prompt}\nSteps: {p.steps}, Seed: {p.seed}, Denoising strength: {p.denoising_strength}"
    return Processed(p, images, p.seed, info, infotexts=[info] * len(images))
