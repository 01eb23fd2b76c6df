"""Like the WebUI's sd_samplers: create_sampler(name, model).get_sigmas(p, steps) gives the schedule of the
sampler's "Schedule type" (p.scheduler; "Automatic" = Karras here) for an SD1 model's sigma range; DDIM has
no sigmas (its own timesteps), as in the WebUI."""

from lib_vid2vid import sigmas

SIGMA_MIN, SIGMA_MAX = 0.0292, 14.6146
asked = []


class _Sampler:
    def __init__(self, name):
        self.name = name

    def get_sigmas(self, p, steps):
        asked.append((self.name, p.scheduler, steps))
        if p.scheduler == "Exponential":
            return sigmas.exponential(steps, SIGMA_MIN, SIGMA_MAX)
        return sigmas.karras(steps, SIGMA_MIN, SIGMA_MAX, 7.0)


def create_sampler(name, model):
    if name == "DDIM":
        raise AttributeError("'VanillaStableDiffusionSampler' object has no attribute 'get_sigmas'")
    return _Sampler(name)
