import random

import numpy as np
import pytest

from lib_vid2vid.errors import SettingsError
from lib_vid2vid.seeds import LOOP_SEED_STRIDE, SEED_MODULUS, frame_seed, resolve_seed


def test_fixed_mode_ignores_frame_and_loop():
    assert frame_seed("fixed", 42, 0) == (42, -1, 0.0)
    assert frame_seed("fixed", 42, 7, loop_index=2) == (42, -1, 0.0)
    # variation arguments do not apply outside fixed_variation
    assert frame_seed("fixed", 42, 7, variation_seed=5, variation_strength=0.5) == (42, -1, 0.0)


def test_increment_mode():
    assert frame_seed("increment", 42, 0) == (42, -1, 0.0)
    assert frame_seed("increment", 42, 7) == (49, -1, 0.0)
    assert frame_seed("increment", 42, 7, loop_index=1) == (42 + 7 + LOOP_SEED_STRIDE, -1, 0.0)
    assert LOOP_SEED_STRIDE == 1_000_000
    # wraps modulo 2**32
    assert frame_seed("increment", SEED_MODULUS - 1, 2) == (1, -1, 0.0)


def test_fixed_variation_mode():
    assert frame_seed("fixed_variation", 42, 7, 0, 1000, 0.3) == (42, 1007, 0.3)
    assert frame_seed("fixed_variation", 42, 0, 0, 1000, 0.3) == (42, 1000, 0.3)
    assert frame_seed("fixed_variation", 42, 7, 1, 1000, 0.3) == (42, 1000 + 7 + LOOP_SEED_STRIDE, 0.3)
    assert frame_seed("fixed_variation", 42, 3, 0, SEED_MODULUS - 1, 1.0) == (42, 2, 1.0)


def test_bad_mode_and_values():
    with pytest.raises(SettingsError, match="seed mode"):
        frame_seed("random", 1, 0)
    with pytest.raises(SettingsError, match="resolve_seed"):
        frame_seed("fixed", -1, 0)
    with pytest.raises(SettingsError, match="variation seed"):
        frame_seed("fixed_variation", 1, 0, 0, -1, 0.5)
    with pytest.raises(SettingsError, match="variation strength"):
        frame_seed("fixed_variation", 1, 0, 0, 5, 1.5)
    with pytest.raises(SettingsError, match="seed"):
        frame_seed("increment", 1.5, 0)


def test_resolve_seed_deterministic_per_rng():
    a = resolve_seed(-1, random.Random(5))
    b = resolve_seed(-1, random.Random(5))
    assert a == b and 0 <= a < SEED_MODULUS
    # base then variation from one job RNG: reproducible pair, and distinct draws
    r1, r2 = random.Random(9), random.Random(9)
    pair1 = (resolve_seed(-1, r1), resolve_seed(-1, r1, "variation seed"))
    pair2 = (resolve_seed(-1, r2), resolve_seed(-1, r2, "variation seed"))
    assert pair1 == pair2 and pair1[0] != pair1[1]
    g = resolve_seed(-1, np.random.default_rng(3))
    assert g == resolve_seed(-1, np.random.default_rng(3)) and 0 <= g < SEED_MODULUS
    assert resolve_seed(1234, random.Random(0)) == 1234
    assert resolve_seed(SEED_MODULUS + 5, random.Random(0)) == 5
    with pytest.raises(SettingsError, match="-1 means random"):
        resolve_seed(-2, random.Random(0))
