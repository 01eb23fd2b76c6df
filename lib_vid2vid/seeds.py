"""Per-frame seeds: fixed, incrementing, or fixed with a variation seed (A1111 subseed) and strength.

A job resolves its random seeds (``-1``) exactly once, at job start, with :func:`resolve_seed` and an RNG
the caller owns; the resolved numbers go into the manifest. After that every frame's seed is a pure
function of (mode, resolved seeds, frame index, loop index) -- :func:`frame_seed` -- so a resumed job
renders every frame with the same seed it had the first time.

Modes (``f`` = output frame index, ``p`` = loopback pass index, ``S = LOOP_SEED_STRIDE``, all seeds taken
modulo 2**32)::

    "fixed"            seed = base                          subseed = -1                        strength = 0
    "increment"        seed = base + f + p*S                subseed = -1                        strength = 0
    "fixed_variation"  seed = base                          subseed = variation + f + p*S       strength = v

In ``fixed_variation`` the main noise stays the same for every frame (stable) and a per-frame variation
noise, mixed in with strength ``v`` (A1111's ``subseed_strength``, 0..1), keeps the result from freezing
into one texture. The pass offset ``p*S`` gives each loopback pass its own noise; with S = 1,000,000 two
passes only share seeds for videos longer than a million frames.
"""

from __future__ import annotations

import math
import random

import numpy as np

from .errors import SettingsError

__all__ = ["SEED_MODES", "SEED_MODULUS", "LOOP_SEED_STRIDE", "resolve_seed", "frame_seed"]

SEED_MODES = ("fixed", "increment", "fixed_variation")
SEED_MODULUS = 2**32
"""Seeds are unsigned 32-bit (what A1111 and numpy accept); everything is reduced modulo this."""
LOOP_SEED_STRIDE = 1_000_000
"""Seed offset between loopback passes (see module docstring)."""


def _check_seed(field: str, value: int, allow_random: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise SettingsError(field, f"must be a whole number, got {value!r}")
    v = int(value)
    if v == -1 and allow_random:
        return v
    if v == -1:
        raise SettingsError(field, "is -1 (random): resolve it once per job with seeds.resolve_seed() first")
    if v < 0:
        hint = " (-1 means random)" if allow_random else ""
        raise SettingsError(field, f"must be >= 0{hint}, got {v}")
    return v


def resolve_seed(seed: int, rng: random.Random | np.random.Generator, field: str = "seed") -> int:
    """Return ``seed`` (mod 2**32), or for ``-1`` draw one from ``rng`` in 0 .. 2**32 - 1.

    Call once per job (for the base seed, then for the variation seed, in that order) and store the
    results; the same ``rng`` state gives the same seeds.
    """
    v = _check_seed(field, seed, allow_random=True)
    if v != -1:
        return v % SEED_MODULUS
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, SEED_MODULUS, dtype=np.uint64))
    return rng.randrange(SEED_MODULUS)


def frame_seed(
    mode: str,
    base_seed: int,
    frame_index: int,
    loop_index: int = 0,
    variation_seed: int = -1,
    variation_strength: float = 0.0,
) -> tuple[int, int, float]:
    """Seeds for one frame -> ``(seed, subseed, subseed_strength)`` for a RenderRequest.

    ``base_seed`` and (in ``fixed_variation``) ``variation_seed`` must already be resolved (>= 0, see
    :func:`resolve_seed`). ``variation_strength`` in 0..1 is used only by ``fixed_variation``; the other
    modes return ``subseed = -1, subseed_strength = 0.0``. Formulas in the module docstring.
    """
    if mode not in SEED_MODES:
        raise SettingsError("seed mode", f"unknown mode {mode!r}; use one of {', '.join(SEED_MODES)}")
    base = _check_seed("seed", base_seed, allow_random=False)
    if frame_index < 0 or loop_index < 0:
        raise ValueError(f"frame_index and loop_index must be >= 0, got {frame_index}, {loop_index}")
    offset = int(frame_index) + int(loop_index) * LOOP_SEED_STRIDE
    if mode == "fixed":
        return base % SEED_MODULUS, -1, 0.0
    if mode == "increment":
        return (base + offset) % SEED_MODULUS, -1, 0.0
    var = _check_seed("variation seed", variation_seed, allow_random=False)
    strength = float(variation_strength)
    if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise SettingsError("variation strength", f"must be between 0 and 1, got {variation_strength!r}")
    return base % SEED_MODULUS, (var + offset) % SEED_MODULUS, strength
