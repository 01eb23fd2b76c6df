"""Finishing filters, grading and overlay (lib_vid2vid.finishing) against hand-computed small arrays."""

import numpy as np
import pytest

from lib_vid2vid import finishing as fin
from lib_vid2vid.errors import SettingsError
from lib_vid2vid.imaging import to_uint8
from lib_vid2vid.params import Settings


def dot(bg=100, centre=200, n=9):
    """n x n grey image of level ``bg`` with one pixel of ``centre`` in the middle."""
    img = np.full((n, n, 3), bg, np.uint8)
    img[n // 2, n // 2] = centre
    return img


def grey_levels(img):
    assert np.all(img[..., 0] == img[..., 1]) and np.all(img[..., 1] == img[..., 2])
    return img[..., 0].astype(int)


def run(img, name, s):
    return grey_levels(to_uint8(fin.apply_filter(fin.to_float(img), name, s)))


def test_smooth_is_a_3x3_mean_mix():
    # 3x3 mean over the 9 pixels that include the dot: (200 + 8 * 100) / 9 = 111.1
    out = run(dot(), "smooth", 1.0)
    expect = np.full((9, 9), 100)
    expect[3:6, 3:6] = 111
    assert np.array_equal(out, expect)
    # s = 0.5: centre 0.5 * 200 + 0.5 * 111.1 = 155.6, its 8 neighbours 0.5 * 100 + 0.5 * 111.1 = 105.6
    out = run(dot(), "smooth", 0.5)
    expect[3:6, 3:6] = 106
    expect[4, 4] = 156
    assert np.array_equal(out, expect)


def test_sharpen_is_an_unsharp_mask_with_a_5x5_mean():
    # amount 2 s = 0.5; 5x5 mean next to the dot = 100 + 100 / 25 = 104
    # centre 200 + 0.5 * (200 - 104) = 248; the other 24 pixels of the 5x5 block 100 + 0.5 * (100 - 104) = 98
    out = run(dot(), "sharpen", 0.25)
    expect = np.full((9, 9), 100)
    expect[2:7, 2:7] = 98
    expect[4, 4] = 248
    assert np.array_equal(out, expect)


def test_edge_enhance_adds_the_4_neighbour_laplacian():
    # centre 200 + 0.1 * (4 * 200 - 4 * 100) = 240; N/S/E/W 100 + 0.1 * (400 - 200 - 300) = 90; diagonals 100
    out = run(dot(), "edge_enhance", 0.1)
    expect = np.full((9, 9), 100)
    expect[4, 4] = 240
    expect[3, 4] = expect[5, 4] = expect[4, 3] = expect[4, 5] = 90
    assert np.array_equal(out, expect)


@pytest.mark.parametrize("name", ["smooth", "sharpen", "edge_enhance"])
def test_filters_leave_flat_areas_alone_and_strength_zero_is_identity(name):
    flat = np.full((6, 7, 3), (30, 120, 220), np.uint8)
    assert np.array_equal(to_uint8(fin.apply_filter(flat, name, 1.0)), flat)
    img = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    assert np.array_equal(to_uint8(fin.apply_filter(img, name, 0.0)), img)
    assert np.array_equal(to_uint8(fin.apply_filter(img, "none", 1.0)), img)


def test_unknown_filter_is_a_clear_error():
    with pytest.raises(SettingsError, match="finish_filter.*'blur' is not one of: none, sharpen"):
        fin.apply_filter(dot(), "blur", 0.5)
    with pytest.raises(SettingsError, match="finish_filter"):
        Settings().replace(finish_filter="os.system('x')")
    with pytest.raises(SettingsError, match="finish_filter"):
        fin.Finisher(filter="emboss")


def test_auto_levels_stretches_luma_percentiles_to_black_and_white():
    img = np.full((4, 4, 3), 50, np.uint8)
    img[2:] = 200
    out = to_uint8(fin.auto_levels(img))
    assert set(np.unique(out[:2])) == {0} and set(np.unique(out[2:])) == {255}
    # the same affine map on every channel: 255 * (x - 50) / 150, so 140 -> 153 and (80, 140, 200) keeps its hue
    img[0, 0] = 140
    img[0, 1] = (80, 140, 200)
    out = to_uint8(fin.auto_levels(img))
    assert out[0, 0].tolist() == [153, 153, 153] and out[0, 1].tolist() == [51, 153, 255]
    flat = np.full((3, 3, 3), 77, np.uint8)
    assert np.array_equal(to_uint8(fin.auto_levels(flat)), flat)


def test_gamma():
    img = np.array([[[0, 64, 255]]], np.uint8)
    # 255 * (64 / 255) ** 0.5 = sqrt(64 * 255) = 127.75 -> 128
    assert to_uint8(fin.apply_gamma(fin.to_float(img), 2.0)).tolist() == [[[0, 128, 255]]]
    assert to_uint8(fin.apply_gamma(fin.to_float(img), 1.0)).tolist() == img.tolist()


def test_colour_match_moves_a_flat_frame_to_the_source_colour():
    result = np.full((8, 8, 3), (200, 50, 50), np.uint8)
    source = np.full((8, 8, 3), (50, 100, 200), np.uint8)
    out = to_uint8(fin.match_colour(fin.to_float(result), source, 1.0))
    assert np.abs(out.astype(int) - source).max() <= 1
    assert np.array_equal(to_uint8(fin.match_colour(fin.to_float(result), source, 0.0)), result)


def test_overlay_of_the_original():
    x = np.full((2, 2, 3), 200, np.uint8)
    src = np.full((2, 2, 3), 100, np.uint8)
    assert np.all(to_uint8(fin.overlay(fin.to_float(x), src, 0.25)) == 175)  # 0.75 * 200 + 0.25 * 100


def test_finisher_order_and_upscaled_source():
    img = dot()
    src_small = np.full((3, 3, 3), 0, np.uint8)  # resized to 9x9 for the overlay
    f = fin.Finisher(filter="smooth", strength=1.0, levels=True, gamma=2.0, overlay=0.5)
    assert f.active and f.needs_source
    # by hand: smooth -> 100 everywhere, 111.1 in the 3x3 block; levels map 100 -> 0 and 111.1 -> 1;
    # gamma keeps 0 and 1; overlay with black halves: 0 and 0.5 -> 0 and 128
    out = grey_levels(f(img, src_small))
    expect = np.zeros((9, 9), int)
    expect[3:6, 3:6] = 128
    assert np.array_equal(out, expect)
    with pytest.raises(ValueError, match="source"):
        f(img)
    idle = fin.Finisher()
    assert not idle.active and idle(img) is img


def test_finisher_from_settings():
    s = Settings().replace(finish_filter="sharpen", filter_strength=0.3, gamma=1.5, colour_match=0.2)
    f = fin.Finisher.from_settings(s.export)
    assert (f.filter, f.strength, f.gamma, f.colour_match, f.overlay, f.levels) == ("sharpen", 0.3, 1.5, 0.2, 0.0,
                                                                                      False)
