"""The one float -> uint8 rule (lib_vid2vid.imaging): clip, then round half up."""

import numpy as np
import pytest

from lib_vid2vid import imaging


def f32(*values):
    return np.array(values, np.float32)


def test_halves_round_up_on_the_0_255_scale():
    assert imaging.to_uint8_255(f32(0.5, 1.5, 2.5, 3.5, 126.5, 127.5, 254.5)).tolist() == [1, 2, 3, 4, 127, 128, 255]


def test_just_below_a_half_rounds_down():
    below = [np.nextafter(np.float32(v), np.float32(0)) for v in (0.5, 1.5, 2.5, 254.5)]
    assert float(below[0]) == pytest.approx(0.49999997, abs=1e-8)  # float32 0.49999997 + 0.5 is 1.0
    assert imaging.to_uint8_255(np.array(below, np.float32)).tolist() == [0, 1, 2, 254]
    assert imaging.to_uint8_255(np.array([0.49999999999999994, 2.4999999999999996])).tolist() == [0, 2]  # float64


def test_other_values_round_to_nearest_and_clip():
    assert imaging.to_uint8_255(f32(0.0, 0.49, 0.51, 2.49, 254.51, 255.0, 255.4, 300.0, -0.4, -3.0)).tolist() == [
        0, 0, 1, 2, 255, 255, 255, 255, 0, 0]


def test_the_0_1_scale_is_the_same_rule_times_255():
    # each value times 255 is exactly k + 0.5 in float32, so these are true halves
    halves = np.array([np.float32((k + 0.5) / 255) for k in (0, 2, 4, 100, 254)], np.float32)
    assert (halves * np.float32(255)).tolist() == [0.5, 2.5, 4.5, 100.5, 254.5]
    assert imaging.to_uint8(halves).tolist() == [1, 3, 5, 101, 255]
    x = np.random.default_rng(0).uniform(-0.1, 1.1, (32, 48, 3)).astype(np.float32)
    out = imaging.to_uint8(x)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out, imaging.to_uint8_255(x * np.float32(255)))
    assert imaging.to_uint8(f32(-0.1, 1.0, 1.3)).tolist() == [0, 255, 255]
