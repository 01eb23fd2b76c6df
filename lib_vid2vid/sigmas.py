"""Sigma schedules for the host's noise-schedule override, and the img2img tail the host really samples.

Units: a sigma is the standard deviation of the Gaussian noise in the model's latent space (the k-diffusion
"EDM" convention: ``x_noisy = x + sigma * eps``). Stable Diffusion 1.x/2.x/SDXL checkpoints span sigmas
from about 0.0292 to 14.6146.

A schedule of ``n`` steps is ``n`` strictly descending sigmas followed by a final ``0`` (``n + 1`` values).
Every formula below reproduces the matching ``k_diffusion.sampling.get_sigmas_*`` function of k-diffusion
0.1.1.post1 (computed here in float64 with numpy, no torch). With ``ramp_i = i / (n - 1)`` for
``i = 0 .. n-1`` (``ramp = [0]`` when ``n == 1``):

- ``karras`` (Karras et al. 2022, ``get_sigmas_karras``):
  ``sigma_i = (sigma_max^(1/rho) + ramp_i * (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``
- ``exponential`` (``get_sigmas_exponential``): evenly spaced in log sigma,
  ``sigma_i = exp(log(sigma_max) + ramp_i * (log(sigma_min) - log(sigma_max)))``
- ``polyexponential`` (``get_sigmas_polyexponential``):
  ``sigma_i = exp((1 - ramp_i)^rho * (log(sigma_max) - log(sigma_min)) + log(sigma_min))``;
  rho = 1 is the exponential schedule, rho > 1 spends more steps at small sigmas.
- ``vp`` (continuous variance-preserving, ``get_sigmas_vp``): ``t_i = 1 + ramp_i * (eps_s - 1)``,
  ``sigma_i = sqrt(exp(beta_d * t_i^2 / 2 + beta_min * t_i) - 1)`` (computed with ``expm1``, which keeps
  full precision at small t). sigma_min / sigma_max are not used.
- ``linear`` (this project's own, not in k-diffusion): linear in sigma,
  ``sigma_i = sigma_max + ramp_i * (sigma_min - sigma_max)``.
- ``host``: no override; the host's own scheduler (the WebUI's "Schedule type") is used and the
  functions here return ``None``.

Host facts (AUTOMATIC1111 stable-diffusion-webui v1.10.1, read from its source):

- ``modules/sd_samplers_kdiffusion.py``, ``KDiffusionSampler.get_sigmas(p, steps)``: if the sampler's
  options have ``discard_next_to_last_sigma`` (DPM2, DPM2 a, DPM++ 3M SDE) or the option
  ``always_discard_next_to_last_sigma`` is on, ``steps += 1``; then
  ``sigmas = p.sampler_noise_scheduler_override(steps)`` (this replaces the "Schedule type" and the
  sigma min/max/rho options entirely); then, when discarding, ``sigmas = cat([sigmas[:-2], sigmas[-1:]])``.
  The override must return a torch tensor (the host calls ``torch.cat`` and ``.cpu()`` on it), so the host
  adapter wraps :func:`full_schedule`'s list with ``torch.tensor(..., dtype=torch.float32)``.
- ``modules/sd_samplers_common.py``, ``setup_img2img_steps(p, steps=None)``::

      if opts.img2img_fix_steps or steps is not None:
          requested_steps = (steps or p.steps)
          steps = int(requested_steps / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
          t_enc = requested_steps - 1
      else:
          steps = p.steps
          t_enc = int(min(p.denoising_strength, 0.999) * steps)

- ``KDiffusionSampler.sample_img2img``: ``sigmas = self.get_sigmas(p, steps)``,
  ``sigma_sched = sigmas[steps - t_enc - 1:]``, the latent starts at ``x + noise * sigma_sched[0]``, and the
  sampler runs ``len(sigma_sched) - 1`` steps (the progress bar counts ``t_enc + 1``).
- ``modules/processing.py``, ``StableDiffusionProcessingImg2Img.sample``: before that, the noise is scaled
  by ``p.initial_noise_multiplier`` (default: option "Noise multiplier for img2img", slider 0..1.5), and
  the infotext gets "Noise multiplier" when it is not 1. See :func:`start_noise`.
- The timestep samplers in ``modules/sd_samplers_timesteps.py`` (DDIM, DDIM CFG++, PLMS, UniPC) never call
  the override. LCM (``modules/sd_samplers_lcm.py``) subclasses ``KDiffusionSampler`` and does use it.

Nothing here imports torch or any host module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from .errors import SettingsError

SCHEDULES = ("host", "karras", "exponential", "polyexponential", "vp", "linear")
"""Schedule names accepted by :class:`SigmaSettings` ("host" = no override)."""

SIGMA_MIN_RANGE = (0.001, 1e3)
SIGMA_MAX_LIMIT = 1e4
RHO_RANGE = (0.01, 100.0)
BETA_D_RANGE = (0.001, 100.0)
BETA_MIN_RANGE = (0.0, 100.0)
NOISE_MULTIPLIER_RANGE = (0.0, 1.5)
"""The host's slider range for "Noise multiplier for img2img" (``shared_options.py``)."""


def _number(field: str, value) -> float:
    if isinstance(value, bool):
        raise SettingsError(field, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SettingsError(field, f"must be a finite number, got {value!r}")
    return number


def _in_range(field: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise SettingsError(field, f"{value:g} is outside {bracket}{low:g}, {high:g}]; pick a value inside")


@dataclass(frozen=True)
class SigmaSettings:
    """The user's sigma schedule. Validated on construction; bad values raise a one-line SettingsError.

    sigma_min, sigma_max: latent-space noise std of the last non-zero and the first sigma
    (karras, exponential, polyexponential, linear). rho: curvature for karras (7 in the paper) and
    polyexponential (1 = exponential). beta_d, beta_min, eps_s: the vp schedule's parameters (its sigma range
    follows from them). initial_noise_multiplier: the host's img2img noise multiplier (1 = unchanged).
    """

    schedule: str = "karras"
    sigma_min: float = 0.0292
    sigma_max: float = 1.0
    rho: float = 7.0
    beta_d: float = 19.9
    beta_min: float = 0.1
    eps_s: float = 1e-3
    initial_noise_multiplier: float = 1.0

    def __post_init__(self):
        name = str(self.schedule).strip().lower()
        if name not in SCHEDULES:
            raise SettingsError("schedule", f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        values = {
            f: _number(f, getattr(self, f))
            for f in ("sigma_min", "sigma_max", "rho", "beta_d", "beta_min", "eps_s", "initial_noise_multiplier")
        }
        _in_range("sigma_min", values["sigma_min"], *SIGMA_MIN_RANGE)
        if values["sigma_max"] <= values["sigma_min"]:
            raise SettingsError(
                "sigma_max",
                f"{values['sigma_max']:g} must be greater than sigma_min ({values['sigma_min']:g})",
            )
        _in_range("sigma_max", values["sigma_max"], values["sigma_min"], SIGMA_MAX_LIMIT, low_open=True)
        _in_range("rho", values["rho"], *RHO_RANGE)
        _in_range("beta_d", values["beta_d"], *BETA_D_RANGE)
        _in_range("beta_min", values["beta_min"], *BETA_MIN_RANGE)
        _in_range("eps_s", values["eps_s"], 0.0, 1.0, low_open=True)
        _in_range("initial_noise_multiplier", values["initial_noise_multiplier"], *NOISE_MULTIPLIER_RANGE)
        object.__setattr__(self, "schedule", name)
        for f, v in values.items():
            object.__setattr__(self, f, v)


def _ramp(n: int) -> np.ndarray:
    """``i / (n - 1)`` for i = 0..n-1 in float64, like ``torch.linspace(0, 1, n)`` (``[0]`` for n = 1)."""
    return np.linspace(0.0, 1.0, n, dtype=np.float64)


def _with_zero(sigmas: np.ndarray) -> list[float]:
    return [float(s) for s in sigmas] + [0.0]


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """Karras et al. (2022): ``(smax^(1/rho) + ramp * (smin^(1/rho) - smax^(1/rho)))^rho``, then 0."""
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    return _with_zero((hi + _ramp(n) * (lo - hi)) ** rho)


def exponential(n: int, sigma_min: float, sigma_max: float) -> list[float]:
    """Evenly spaced in log sigma from sigma_max down to sigma_min, then 0."""
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return _with_zero(np.exp(hi + _ramp(n) * (lo - hi)))


def polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> list[float]:
    """``exp((1 - ramp)^rho * (log smax - log smin) + log smin)``, then 0 (rho = 1 is exponential)."""
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    return _with_zero(np.exp((1.0 - _ramp(n)) ** rho * (hi - lo) + lo))


def vp(n: int, beta_d: float = 19.9, beta_min: float = 0.1, eps_s: float = 1e-3) -> list[float]:
    """Continuous VP: ``t = 1 .. eps_s`` evenly, ``sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)``, then 0."""
    t = 1.0 + _ramp(n) * (eps_s - 1.0)
    return _with_zero(np.sqrt(np.expm1(beta_d * t**2 / 2.0 + beta_min * t)))


def linear(n: int, sigma_min: float, sigma_max: float) -> list[float]:
    """Linear in sigma: ``sigma_max + ramp * (sigma_min - sigma_max)``, then 0."""
    return _with_zero(sigma_max + _ramp(n) * (sigma_min - sigma_max))


def _check_steps(field: str, steps, minimum: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise SettingsError(field, f"must be a whole number, got {steps!r}")
    if steps < minimum:
        raise SettingsError(field, f"must be at least {minimum}, got {steps}")
    return int(steps)


def full_schedule(settings: SigmaSettings, steps: int) -> list[float] | None:
    """What ``p.sampler_noise_scheduler_override(steps)`` returns: ``steps + 1`` floats, descending, last 0.

    ``steps`` is the count the host passes, already adjusted by the host (img2img_fix_steps scaling, +1 for
    samplers that discard the penultimate sigma); 0 gives ``[0.0]``, as k-diffusion does.
    Returns None for the "host" schedule (no override).
    """
    n = _check_steps("steps", steps, 0)
    s = settings
    if s.schedule == "host":
        return None
    if s.schedule == "karras":
        return karras(n, s.sigma_min, s.sigma_max, s.rho)
    if s.schedule == "exponential":
        return exponential(n, s.sigma_min, s.sigma_max)
    if s.schedule == "polyexponential":
        return polyexponential(n, s.sigma_min, s.sigma_max, s.rho)
    if s.schedule == "vp":
        return vp(n, s.beta_d, s.beta_min, s.eps_s)
    return linear(n, s.sigma_min, s.sigma_max)


def override_function(settings: SigmaSettings) -> Callable[[int], list[float]] | None:
    """The callable to hand to the host as ``sampler_noise_scheduler_override`` (wrap its list in a tensor)."""
    if settings.schedule == "host":
        return None
    return lambda steps: full_schedule(settings, steps)


def _check_denoise(denoise) -> float:
    d = _number("denoise", denoise)
    _in_range("denoise", d, 0.0, 1.0)
    return d


def host_img2img_steps(steps: int, denoise: float, *, fix_steps: bool = False) -> tuple[int, int]:
    """``(steps, t_enc)`` exactly as ``setup_img2img_steps`` in the host's ``sd_samplers_common.py``.

    Without fix_steps: ``(steps, int(min(denoise, 0.999) * steps))``. With fix_steps:
    ``(int(steps / min(denoise, 0.999)) if denoise > 0 else 0, steps - 1)``. The first value is the
    schedule length the host asks for (before the discard +1).
    """
    requested = _check_steps("steps", steps, 1)
    d = _check_denoise(denoise)
    if fix_steps:
        total = int(requested / min(d, 0.999)) if d > 0 else 0
        return total, requested - 1
    return requested, int(min(d, 0.999) * requested)


def override_steps(steps: int, denoise: float, *, fix_steps: bool = False, discard_penultimate: bool = False) -> int:
    """The ``steps`` argument the host passes to ``sampler_noise_scheduler_override`` for img2img."""
    total, _ = host_img2img_steps(steps, denoise, fix_steps=fix_steps)
    return total + (1 if discard_penultimate else 0)


ScheduleSource = Union[Sequence[float], Callable[[int], Sequence[float]]]


def img2img_tail(
    full: ScheduleSource,
    steps: int,
    denoise: float,
    *,
    fix_steps: bool = False,
    discard_penultimate: bool = False,
) -> list[float]:
    """The sigmas a k-diffusion sampler really runs in img2img (``sigma_sched`` in the host).

    Host formula (``modules/sd_samplers_kdiffusion.py``, ``KDiffusionSampler.get_sigmas`` and
    ``sample_img2img``; ``modules/sd_samplers_common.py``, ``setup_img2img_steps``)::

        total, t_enc = setup_img2img_steps(steps, denoise, fix_steps)   # see host_img2img_steps
        n = total + 1 if discard_penultimate else total
        sigmas = override(n)                                             # n + 1 values
        if discard_penultimate: sigmas = sigmas[:-2] + sigmas[-1:]       # back to total + 1 values
        tail = sigmas[total - t_enc - 1:]                                # Python slice semantics

    ``full`` is either the override itself (a callable ``n -> sigmas``, e.g. ``override_function(settings)``)
    or the list it returned for ``n = override_steps(...)``; a list of another length raises ValueError,
    since the host would have asked for a different schedule. Without fix_steps the tail has
    ``int(min(denoise, 0.999) * steps) + 1`` steps (denoise 0 still runs one step at the last non-zero
    sigma); with fix_steps it has ``steps`` steps (none for denoise 0: the tail is ``[0.0]``).
    """
    total, t_enc = host_img2img_steps(steps, denoise, fix_steps=fix_steps)
    n = total + (1 if discard_penultimate else 0)
    sigmas = [float(s) for s in (full(n) if callable(full) else full)]
    if len(sigmas) != n + 1:
        raise ValueError(
            f"the host asks the override for {n} steps ({n + 1} sigmas) but the schedule has {len(sigmas)};"
            f" pass full_schedule(settings, {n}) or the override function itself"
        )
    if discard_penultimate:
        sigmas = sigmas[:-2] + sigmas[-1:]
    return sigmas[total - t_enc - 1 :]


def used_sigmas(
    settings: SigmaSettings,
    steps: int,
    denoise: float,
    *,
    fix_steps: bool = False,
    sampler_name: str | None = None,
    always_discard: bool = False,
) -> list[float] | None:
    """The img2img tail for these settings and sampler, or None for the "host" schedule."""
    override = override_function(settings)
    if override is None:
        return None
    discard = discards_penultimate(sampler_name, always_discard=always_discard)
    return img2img_tail(override, steps, denoise, fix_steps=fix_steps, discard_penultimate=discard)


def start_noise(tail: Sequence[float], initial_noise_multiplier: float = 1.0, extra_noise: float = 0.0) -> float:
    """Standard deviation (latent units) of the noise the host adds to the init latent before sampling.

    ``processing.py`` scales the noise by ``initial_noise_multiplier`` first, then
    ``sample_img2img`` adds ``noise * tail[0]`` and, if the option "img2img_extra_noise" is > 0,
    ``noise * extra_noise`` more (same noise tensor, so the two add linearly):
    ``std = initial_noise_multiplier * (tail[0] + extra_noise)``. The sampler still believes it starts at
    ``tail[0]``: a multiplier below 1 under-noises the latent (keeps more of the init image).
    """
    m = _number("initial_noise_multiplier", initial_noise_multiplier)
    _in_range("initial_noise_multiplier", m, *NOISE_MULTIPLIER_RANGE)
    extra = _number("extra_noise", extra_noise)
    if not tail:
        raise ValueError("empty sigma tail")
    return m * (float(tail[0]) + extra)


# --- samplers (AUTOMATIC1111 v1.10.1: sd_samplers_kdiffusion.py, sd_samplers_timesteps.py, sd_samplers_lcm.py)

SAMPLER_ALIASES: dict[str, tuple[str, ...]] = {
    "DPM++ 2M": ("k_dpmpp_2m",),
    "DPM++ SDE": ("k_dpmpp_sde",),
    "DPM++ 2M SDE": ("k_dpmpp_2m_sde",),
    "DPM++ 2M SDE Heun": ("k_dpmpp_2m_sde_heun",),
    "DPM++ 2S a": ("k_dpmpp_2s_a",),
    "DPM++ 3M SDE": ("k_dpmpp_3m_sde",),
    "Euler a": ("k_euler_a", "k_euler_ancestral"),
    "Euler": ("k_euler",),
    "LMS": ("k_lms",),
    "Heun": ("k_heun",),
    "DPM2": ("k_dpm_2",),
    "DPM2 a": ("k_dpm_2_a",),
    "DPM fast": ("k_dpm_fast",),
    "DPM adaptive": ("k_dpm_ad",),
    "Restart": ("restart",),
    "DDIM": ("ddim",),
    "DDIM CFG++": ("ddim_cfgpp",),
    "PLMS": ("plms",),
    "UniPC": ("unipc",),
    "LCM": ("k_lcm",),
}
"""Every built-in sampler name of the host with its aliases."""

OVERRIDE_IGNORED_SAMPLERS = frozenset({"DDIM", "DDIM CFG++", "PLMS", "UniPC"})
"""Timestep samplers: they never call ``sampler_noise_scheduler_override``."""

DISCARD_PENULTIMATE_SAMPLERS = frozenset({"DPM2", "DPM2 a", "DPM++ 3M SDE"})
"""Samplers with ``discard_next_to_last_sigma`` in their options."""

_PARTIAL_OVERRIDE = {
    "DPM fast": "DPM fast uses only the first and last non-zero sigma and the step count of the override, "
    "and spaces its own steps between them",
    "DPM adaptive": "DPM adaptive uses only the first and last non-zero sigma of the override and chooses "
    "its own steps",
    "Restart": "Restart keeps only the first and last non-zero sigma of the override when 20 or more steps "
    "run (it rebuilds a Karras schedule between them and adds restart segments)",
    "LCM": "LCM follows the override's sigmas but tells the model the nearest of its 50 LCM timesteps, "
    "so close sigmas behave alike",
}

_SCHEDULER_SUFFIXES = (
    "Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "SGMUniform",
    "KL Optimal", "Align Your Steps", "Simple", "Normal", "DDIM", "Beta",
)  # fmt: skip
"""Schedule-type labels the host strips from old combined names such as "DPM++ 2M Karras"."""

_LOOKUP = {name.lower(): name for name in SAMPLER_ALIASES} | {
    alias.lower(): name for name, aliases in SAMPLER_ALIASES.items() for alias in aliases
}


def canonical_sampler(sampler_name: str | None) -> str | None:
    """The host's sampler name for a name, alias or old "<sampler> <schedule>" form; None if unknown.

    Case-insensitive: "euler A", "k_euler_a" and "Euler a Karras" all give "Euler a".
    """
    if sampler_name is None:
        return None
    name = " ".join(str(sampler_name).split()).lower()
    if name in _LOOKUP:
        return _LOOKUP[name]
    for suffix in sorted(_SCHEDULER_SUFFIXES, key=len, reverse=True):
        tail = " " + suffix.lower()
        if name.endswith(tail) and name[: -len(tail)] in _LOOKUP:
            return _LOOKUP[name[: -len(tail)]]
    return None


def discards_penultimate(sampler_name: str | None, *, always_discard: bool = False) -> bool:
    """True when the host drops the next-to-last sigma (and asks the override for one step more).

    ``always_discard`` is the host option "Always discard next-to-last sigma"
    (``always_discard_next_to_last_sigma``), which applies to every sampler.
    """
    return bool(always_discard) or canonical_sampler(sampler_name) in DISCARD_PENULTIMATE_SAMPLERS


def override_warning(sampler_name: str | None, schedule: str = "karras") -> str | None:
    """One line telling the user that this sampler ignores or reshapes the sigma override; None if honoured.

    No warning for the "host" schedule (nothing is overridden) or an empty sampler name (the host then
    uses its default, DPM++ 2M). Unknown names (extension samplers) get a warning that nothing is known.
    """
    if str(schedule).strip().lower() == "host" or sampler_name is None or not str(sampler_name).strip():
        return None
    name = canonical_sampler(sampler_name)
    if name is None:
        return (
            f"sampler {sampler_name!r} is not a built-in AUTOMATIC1111 sampler; it may ignore the "
            f"{schedule} sigma schedule"
        )
    if name in OVERRIDE_IGNORED_SAMPLERS:
        return (
            f"{name} ignores the {schedule} sigma schedule (it samples on the host's own timesteps); "
            "pick a k-diffusion sampler such as Euler a or DPM++ 2M"
        )
    if name in _PARTIAL_OVERRIDE:
        return _PARTIAL_OVERRIDE[name]
    return None


def _fmt(sigma: float) -> str:
    if sigma == 0:
        return "0"
    if abs(sigma) >= 10:
        return f"{sigma:.1f}"
    if abs(sigma) >= 0.1:
        return f"{sigma:.2f}"
    return f"{sigma:.2g}"


def describe(sigmas: Sequence[float] | None, max_values: int = 8) -> str:
    """Compact text for the UI and infotext, e.g. ``"20 steps: 1.00 0.85 0.72 ... 0.047 0.029 0"``.

    Shows every sigma when there are at most ``max_values``, else the first three, "...", and the last
    three (the final 0 included). None reads "host schedule".
    """
    if sigmas is None:
        return "host schedule"
    values = [float(s) for s in sigmas]
    steps = max(len(values) - 1, 0)
    label = f"{steps} step" + ("" if steps == 1 else "s")
    if len(values) <= max(max_values, 7):
        shown = [_fmt(v) for v in values]
    else:
        shown = [_fmt(v) for v in values[:3]] + ["..."] + [_fmt(v) for v in values[-3:]]
    return f"{label}: {' '.join(shown)}"
