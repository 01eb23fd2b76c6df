"""Blends against hand-computed arrays (values worked out in the comments)."""

import numpy as np
import pytest

from lib_vid2vid import blend
from lib_vid2vid.errors import SettingsError


def px(*rgb_values):
    """A 1 x N RGB uint8 image from N (r, g, b) tuples (or N grey levels)."""
    rows = [(v, v, v) if np.isscalar(v) else v for v in rgb_values]
    return np.array([rows], dtype=np.uint8)


def grey(v, h=2, w=2):
    return np.full((h, w, 3), v, dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ superimpose


def test_superimpose_formula():
    base = px((10, 20, 30))
    rend = px((110, 120, 131))
    # 0.75*10 + 0.25*110 = 35; 0.75*20 + 0.25*120 = 45; 0.75*30 + 0.25*131 = 55.25 -> 55
    assert blend.superimpose(base, rend, 0.25).tolist() == [[[35, 45, 55]]]


def test_superimpose_halves_round_up_and_endpoints():
    base = px((0, 2, 4))
    rend = px((1, 3, 5))
    # 0.5, 2.5, 4.5 -> 1, 3, 5 (np.rint would give 0, 2, 4)
    assert blend.superimpose(base, rend, 0.5).tolist() == [[[1, 3, 5]]]
    assert np.array_equal(blend.superimpose(base, rend, 0.0), base)
    assert np.array_equal(blend.superimpose(base, rend, 1.0), rend)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_superimpose_rejects_alpha(alpha):
    with pytest.raises(SettingsError, match="superimpose alpha"):
        blend.superimpose(grey(0), grey(1), alpha)


def test_superimpose_shape_mismatch():
    with pytest.raises(ValueError):
        blend.superimpose(grey(0, 2, 2), grey(0, 2, 3), 0.5)


# ------------------------------------------------------------------------------------------------ batch blend


def test_batch_blend_mean():
    # float32 0..1, not rounded: (0 + 1 + 2 + 4) / 4 = 1.75 levels, (10 + 11 + 13) / 3 = 11.33, (0 + 255) / 2
    for samples, want in [((0, 1, 2, 4), 1.75), ((10, 11, 13), 34 / 3), ((0, 255), 127.5)]:
        mean = blend.batch_blend([px(v) for v in samples])
        assert mean.dtype == np.float32 and mean.shape == (1, 1, 3)
        assert mean * 255 == pytest.approx(np.full((1, 1, 3), want), abs=1e-4)
    assert blend.batch_blend([np.float32(0.5) * np.ones((1, 1, 3), np.float32), px(0)]) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        blend.batch_blend([])
    with pytest.raises(ValueError):
        blend.batch_blend([grey(0, 2, 2), grey(0, 2, 3)])


def test_chain_rounds_once():
    # batch mean 0.5 kept as float, then half of it over a black base: 0.25 -> 0.
    # Rounding in between would give 0.5 -> 1, then 0.5 -> 1.
    mean = blend.batch_blend([px(0), px(1)])
    assert mean.dtype == np.float32
    assert blend.superimpose(px(0), mean, 0.5).tolist() == px(0).tolist()


# ------------------------------------------------------------------------------------------------ temporal


VALUES = [0, 8, 40, 100, 200]  # source frames 0..4, each a flat grey image


def window_frames(index, weights):
    idx = blend.temporal_window(index, len(VALUES), len(weights))
    return [None if j is None else grey(VALUES[j]) for j in idx]


def test_temporal_window_indices():
    assert blend.temporal_window(0, 5, 3) == [None, 0, 1]
    assert blend.temporal_window(2, 5, 3) == [1, 2, 3]
    assert blend.temporal_window(4, 5, 3) == [3, 4, None]
    assert blend.temporal_window(1, 3, 5) == [None, 0, 1, 2, None]
    assert blend.temporal_window(0, None, 3) == [None, 0, 1]
    assert blend.temporal_window(9, None, 3) == [8, 9, 10]


@pytest.mark.parametrize(
    "index, weights, expected",
    [
        (2, [1, 2, 1], 47),  # (8 + 2*40 + 100) / 4 = 47
        (0, [1, 2, 1], 3),  # edge: (2*0 + 8) / 3 = 2.67 -> 3
        (4, [1, 2, 1], 167),  # edge: (100 + 2*200) / 3 = 166.67 -> 167
        (1, [1, 1, 1, 1, 1], 37),  # (0 + 8 + 40 + 100) / 4 = 37
        (2, [1], 40),  # a one-frame window is the frame itself
        (0, [1, 0, 0], 0),  # every existing weight 0 -> centre frame
        (3, [0, 0, 1], 200),  # only the next frame counts
    ],
)
def test_temporal_blend(index, weights, expected):
    out = blend.temporal_blend(window_frames(index, weights), weights)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert (out == expected).all(), out[0, 0]


@pytest.mark.parametrize("weights", [[1, 1], [1, -1, 1], [0, 0, 0], [1, float("inf"), 1], ["a"]])
def test_temporal_weights_rejected(weights):
    with pytest.raises(SettingsError, match="temporal weights"):
        blend.validate_temporal_weights(weights)


def test_temporal_blend_needs_centre():
    with pytest.raises(ValueError):
        blend.temporal_blend([grey(0), None, grey(0)], [1, 1, 1])


def test_change_weights_soft_and_hard():
    d = np.array([0, 10, 15, 20, 30, 40], dtype=np.float32)
    assert blend.change_weights(d, 10, 20).tolist() == [0, 0, 0.25, 0.5, 1, 1]
    assert blend.change_weights(d, 10, 0).tolist() == [0, 0, 1, 1, 1, 1]


def test_temporal_blend_masked_hand_computed():
    # three pixels, weights [1, 1, 1]; frames prev / cur / next are grey levels
    prev = px(100, 100, 120)
    cur = px(100, 160, 100)
    nxt = px(106, 160, 100)
    out, mask = blend.temporal_blend_masked([prev, cur, nxt], [1, 1, 1], threshold=10, softness=20, return_mask=True)
    # A: diffs 0 and 6, below 10 -> plain mean (100 + 100 + 106) / 3 = 102
    # B: prev differs by 60 -> m = 1, weight 0 -> (160 + 160) / 2 = 160 (plain blend would give 140)
    # C: prev differs by 20 -> m = (20 - 10) / 20 = 0.5 -> (0.5*120 + 100 + 100) / 2.5 = 104
    assert out[0, :, 0].tolist() == [102, 160, 104]
    assert mask[0].tolist() == pytest.approx([0.0, 1.0, 0.5], abs=1e-5)


def test_temporal_blend_masked_uses_luma():
    # red (255,0,0) has luma 76.245, blue (0,0,255) 29.07: difference 47.175
    red, blue = px((255, 0, 0)), px((0, 0, 255))
    frames = [red, blue, None]  # last frame of the video: no next frame
    # threshold above the difference: unchanged -> (red + blue) / 2 = (127.5, 0, 127.5) -> (128, 0, 128)
    assert blend.temporal_blend_masked(frames, [1, 1, 1], 48, 0).tolist() == [[[128, 0, 128]]]
    # threshold below: changed -> the current frame exactly
    assert blend.temporal_blend_masked(frames, [1, 1, 1], 47, 0).tolist() == blue.tolist()


def test_temporal_blend_masked_centre_weight_zero():
    prev, cur, nxt = px(0), px(100), px(200)
    # both neighbours changed and the centre has weight 0 -> the current frame
    assert blend.temporal_blend_masked([prev, cur, nxt], [1, 0, 1], 10, 0).tolist() == cur.tolist()
    # nothing changed (huge threshold) -> (0 + 200) / 2 = 100 as in the plain blend
    assert blend.temporal_blend_masked([prev, cur, nxt], [1, 0, 1], 255, 0).tolist() == px(100).tolist()


def test_temporal_blend_masked_edge_of_video():
    # frame 0: no previous frame; next changed -> current frame; mask from the one neighbour
    cur, nxt = px(50, 50), px(50, 150)
    out, mask = blend.temporal_blend_masked([None, cur, nxt], [1, 2, 1], 10, 0, return_mask=True)
    # pixel 0 unchanged: (2*50 + 50) / 3 = 50; pixel 1 changed: 50
    assert out[0, :, 0].tolist() == [50, 50]
    assert mask[0].tolist() == [0.0, 1.0]


# ------------------------------------------------------------------------------------------------ temporal merge


def test_temporal_merge_zero_strength_is_source():
    src = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(blend.temporal_merge(src, grey(0, 4, 5), 0.0), src)


def test_temporal_merge_grey():
    # grey has no chroma: Y_out = (1 - s/2)*100 + (s/2)*200
    assert blend.temporal_merge(grey(100), grey(200), 1.0).tolist() == grey(150).tolist()
    assert blend.temporal_merge(grey(100), grey(200), 0.5).tolist() == grey(125).tolist()


def test_temporal_merge_colour():
    # prev (200, 100, 50): Y = 0.299*200 + 0.587*100 + 0.114*50 = 124.2.
    # Linear in RGB: out = Y_out + (1-s)*(src - Y_src) + s*(prev - Y_prev); the grey source has src - Y_src = 0.
    # s = 1:   Y_out = 0.5*100 + 0.5*124.2 = 112.1 -> (112.1 + 75.8, 112.1 - 24.2, 112.1 - 74.2) = (187.9, 87.9, 37.9)
    # s = 0.5: Y_out = 0.75*100 + 0.25*124.2 = 106.05 -> 106.05 + 0.5*(75.8, -24.2, -74.2) = (143.95, 93.95, 68.95)
    src, prev = px(100), px((200, 100, 50))
    assert blend.temporal_merge(src, prev, 1.0).tolist() == [[[188, 88, 38]]]
    assert blend.temporal_merge(src, prev, 0.5).tolist() == [[[144, 94, 69]]]


def test_temporal_merge_clips_once():
    # white source, red previous, s = 1: Y_prev = 76.245, Y_out = 0.5*255 + 0.5*76.245 = 165.6225
    # R = 165.6225 + 178.755 = 344.4 -> 255; G = B = 165.6225 - 76.245 = 89.38 -> 89
    assert blend.temporal_merge(px(255), px((255, 0, 0)), 1.0).tolist() == [[[255, 89, 89]]]


def test_temporal_merge_luma_share():
    # luma_share 0: luminance stays the source's; grey prev has no chroma -> unchanged source
    assert blend.temporal_merge(grey(100), grey(200), 1.0, luma_share=0.0).tolist() == grey(100).tolist()
    with pytest.raises(SettingsError, match="temporal merge strength"):
        blend.temporal_merge(grey(0), grey(0), 1.5)


def test_ycrcb_round_trip_exact():
    x = np.random.default_rng(2).integers(0, 256, (8, 8, 3)).astype(np.float32)
    assert np.abs(blend.ycrcb_to_rgb(blend.rgb_to_ycrcb(x)) - x).max() < 1e-3


# ------------------------------------------------------------------------------------------------ colour coherence


def srgb_to_L(v):
    """CIE L* of a grey sRGB level v (0..255), straight from the standard formulas."""
    c = v / 255.0
    y = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 116 * y ** (1 / 3) - 16 if y > (6 / 29) ** 3 else 903.2963 * y


def L_to_srgb(L):
    y = ((L + 16) / 116) ** 3 if L > 8 else L / 903.2963
    c = y * 12.92 if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055
    return c * 255


def test_lab_known_values():
    lab = blend.rgb_to_lab(np.array([[[255, 255, 255], [255, 0, 0], [0, 0, 0]]], np.float32))
    assert lab[0, 0] == pytest.approx([100, 0, 0], abs=0.01)
    assert lab[0, 1] == pytest.approx([53.24, 80.09, 67.20], abs=0.02)  # published CIELAB of sRGB red
    assert lab[0, 2] == pytest.approx([0, 0, 0], abs=0.01)
    assert blend.lab_stats(grey(100)).mean[0] == pytest.approx(srgb_to_L(100), abs=0.01)


def test_lab_round_trip_of_every_grey_level_and_colours():
    # both pieces of the sRGB curve: levels 0..10 are on its linear part, 11.. on the power part
    levels = np.arange(256, dtype=np.float32)
    greys = np.repeat(levels[None, :, None], 3, axis=2)
    lab = blend.rgb_to_lab(greys)
    # CIE L* of sRGB greys 5, 30 and 128 (128: the often quoted 53.59)
    assert lab[0, [5, 30, 128], 0] == pytest.approx([1.37, 11.26, 53.59], abs=0.01)
    assert blend.lab_to_rgb(np.array([[[11.2636, 0, 0]]], np.float32))[0, 0] == pytest.approx([30] * 3, abs=0.01)
    assert np.abs(blend.lab_to_rgb(lab) - greys).max() < 0.01
    colours = np.random.default_rng(5).integers(0, 256, (16, 16, 3)).astype(np.float32)
    assert np.abs(blend.lab_to_rgb(blend.rgb_to_lab(colours)) - colours).max() < 0.05
    # what a user sees: matching a dark grey frame to its own statistics leaves it as it is
    assert blend.colour_coherence(grey(30), blend.lab_stats(grey(30)), 1.0).tolist() == grey(30).tolist()


def test_colour_coherence_zero_is_identity():
    img = np.random.default_rng(3).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    ref = blend.lab_stats(grey(200))
    assert np.array_equal(blend.colour_coherence(img, ref, 0.0), img)


def test_colour_coherence_flat_grey_moves_mean():
    ref = blend.lab_stats(grey(150))
    # flat image: std 0 -> only the mean moves; full strength lands on the reference grey
    assert blend.colour_coherence(grey(100), ref, 1.0).tolist() == grey(150).tolist()
    # half strength: L halfway between L(100) and L(150), converted back by hand
    want = L_to_srgb((srgb_to_L(100) + srgb_to_L(150)) / 2)  # about 124.4
    out = blend.colour_coherence(grey(100), ref, 0.5)
    assert (out == int(np.floor(want + 0.5))).all(), (out[0, 0], want)


def test_colour_coherence_matches_statistics():
    rng = np.random.default_rng(4)
    ref_img = rng.integers(90, 200, (32, 32, 3)).astype(np.uint8)
    ref_img[..., 0] = np.clip(ref_img[..., 0].astype(int) + 40, 0, 255)  # reddish reference
    img = rng.integers(40, 120, (32, 32, 3)).astype(np.uint8)
    ref = blend.lab_stats(ref_img)
    before = blend.lab_stats(img)
    after = blend.lab_stats(blend.colour_coherence(img, ref, 1.0))
    assert abs(before.mean[0] - ref.mean[0]) > 10  # the frames really differ before matching
    for c in range(3):
        assert after.mean[c] == pytest.approx(ref.mean[c], abs=0.6)
        assert after.std[c] == pytest.approx(ref.std[c], abs=0.6)
    with pytest.raises(SettingsError, match="colour coherence strength"):
        blend.colour_coherence(img, ref, -0.5)
