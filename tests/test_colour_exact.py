"""The fast colour coherence computes the very numbers of the plain formulas (tests/blend_reference.py, the code
before the speed work), bit for bit: the frames must not change (tests/test_frames_unchanged.py checks whole
jobs on a small clip; these check each claim the fast path rests on, on many more values)."""

from __future__ import annotations

import numpy as np
import pytest

from lib_vid2vid import blend
from lib_vid2vid.imaging import to_uint8
from tests import blend_reference as ref

RNG = np.random.default_rng(13)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def smooth_image(h: int, w: int, lo: int = 0, hi: int = 256) -> np.ndarray:
    """An RGB uint8 image with smooth gradients and noise (more like a frame than uniform noise)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w, 1), y / max(h, 1), (x + y) / max(w + h, 1)], axis=-1) * (hi - lo) + lo
    return np.clip(base + RNG.normal(0, 12, (h, w, 3)), lo, hi - 1).astype(np.uint8)


def frames():
    """uint8 frames of several kinds: natural-ish, noise, dark (the other branch of f), flat, tiny shapes."""
    yield smooth_image(48, 64)
    yield RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    yield smooth_image(40, 40, 0, 20)  # dark: L below 8, the linear piece of f
    yield smooth_image(33, 31, 235, 256)  # bright: clipped at the top
    yield np.full((8, 8, 3), 77, np.uint8)  # flat: std 0
    yield RNG.integers(0, 256, (1, 1, 3), dtype=np.uint8)
    yield RNG.integers(0, 256, (1, 129, 3), dtype=np.uint8)


def test_decode_tables_hold_the_formula_for_every_level_at_every_position():
    # the plain decode of each level, computed where the level sits at every offset of a SIMD register (and
    # in a long array, as in a frame): a table is only right if the formula does not depend on position
    as_mean, lin_u8, lin_mean = blend._decode_tables()
    levels = np.arange(256, dtype=np.uint8)
    for shift in range(0, 67, 3):
        row = np.roll(np.tile(levels, 9), shift).reshape(1, -1, 3)
        want = ref.rgb_to_lab(ref.to_float255(row))
        assert same_bits(blend._srgb_decode(ref.to_float255(row)), blend._linear_rgb(row))
        assert same_bits(blend._lab_planes(row), np.moveaxis(want, -1, 0))
    # the batch mean of one uint8 image holds exactly the table's float values
    img = RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    assert same_bits(blend.batch_blend([img]), as_mean[img])
    c = np.clip(ref.to_float255(as_mean) / np.float32(255.0), 0.0, 1.0)
    plain = np.where(c <= 0.04045, c / np.float32(12.92), ((c + np.float32(0.055)) / np.float32(1.055)) ** 2.4)
    assert same_bits(lin_mean, plain)
    assert same_bits(lin_u8, blend._srgb_decode(levels.astype(np.float32)))


@pytest.mark.parametrize("kind", ["uint8", "batch mean", "other floats"])
def test_lab_planes_equal_rgb_to_lab(kind):
    for u8 in frames():
        img = {"uint8": u8, "batch mean": blend.batch_blend([u8]),
               "other floats": blend.superimpose(u8, 255 - u8, 0.3, as_float=True)}[kind]
        want = np.moveaxis(ref.rgb_to_lab(ref.to_float255(img)), -1, 0)
        assert same_bits(blend._lab_planes(img), want), (kind, u8.shape)


def test_float_values_off_the_table_are_computed_not_looked_up():
    img = blend.batch_blend([smooth_image(16, 16)])
    img[3, 4, 1] = np.nextafter(img[3, 4, 1], np.float32(2))  # one value off the table
    img[5, 5, 0] = -0.0  # equal to 0.0, other bits
    img[6, 6, 2] = 1.5  # out of range: clipped by the formula
    want = np.moveaxis(ref.rgb_to_lab(ref.to_float255(img)), -1, 0)
    assert same_bits(blend._lab_planes(img), want)


@pytest.mark.parametrize("n", [1, 2, 3, 1000, 65535, 65536, 65537, 3 * 65536 + 5])
def test_statistics_sum_in_numpys_order(n):
    # values of very different sizes, so that any other summation order gives other last bits
    x = (RNG.normal(0, 1, (n, 3)) * [40, 1e-3, 300]).astype(np.float32)
    x[::5] *= np.float32(1e-7)
    flat = x.astype(np.float64)
    mean, std = blend._mean_std(np.ascontiguousarray(x.T))
    assert same_bits(mean, flat.mean(axis=0))
    assert same_bits(std, flat.std(axis=0))
    assert same_bits(np.array(ref._mean_std(flat)), np.array((mean, std)))


def test_sum_in_order_is_left_to_right():
    # 1 + 2**-53 + 2**-53 ... : left to right every small term is lost; any pairing would keep some
    x = np.array([1.0] + [2.0**-53] * 70000, dtype=np.float64)
    assert blend._sum_in_order(x) == 1.0
    assert np.sum(x) > 1.0  # numpy's pairwise sum of a 1-D array: a different order, a different number


@pytest.mark.parametrize("strength", [1.0, 0.35, 0.0])
def test_colour_coherence_equals_the_plain_formulas(strength):
    refs = [blend.lab_stats(smooth_image(20, 30)), blend.lab_stats(np.full((4, 4, 3), 9, np.uint8)),
            blend.LabStats((60.0, 30.0, -40.0), (45.0, 70.0, 3.0))]
    for u8 in frames():
        for stats in refs:
            assert ref.lab_stats(u8) == blend.lab_stats(u8)
            for img in (u8, blend.batch_blend([u8]), blend.superimpose(u8, 255 - u8, 0.3, as_float=True)):
                want_f = ref.colour_coherence(img, stats, strength, as_float=True)
                assert same_bits(blend.colour_coherence(img, stats, strength, as_float=True), want_f)
                want = ref.colour_coherence(img, stats, strength)
                assert same_bits(blend.colour_coherence(img, stats, strength), want)
                assert same_bits(blend.colour_coherence_uint8(img, stats, strength), to_uint8(want_f))
                own = refs[0]  # a fixed transform (image to video): these statistics instead of the frame's
                assert same_bits(blend.colour_coherence(img, stats, strength, own=own),
                                 ref.colour_coherence(img, stats, strength, own=own))


def test_colour_stage_writes_what_correct_then_rounding_gives(tmp_path):
    # the loop asks the last correcting stage for uint8 directly; the colour stage must give to_uint8(correct())
    from types import SimpleNamespace

    from lib_vid2vid.stages import ColourStage

    stage = ColourStage()
    stage.reference, stage.loop = blend.lab_stats(smooth_image(24, 24)), 0
    ctx = SimpleNamespace(index=3, loop=0, analysis={"colour_ref": False})
    image = blend.batch_blend([smooth_image(24, 24, 30, 200)])
    assert same_bits(stage.correct_uint8(ctx, image), to_uint8(stage.correct(ctx, image)))
    ctx.analysis["colour_ref"] = True  # a shot's first frame is the reference itself: rounded as it is
    assert same_bits(stage.correct_uint8(ctx, image), to_uint8(image))


def test_encode_table_equals_the_plain_last_step():
    # the last step (linear RGB -> the uint8 the loop writes) by table: a dense sample of every float32 in 0..1,
    # every value near each of the 255 thresholds, and the values outside 0..1
    table = blend._encode_table()
    assert table is not None, "no sRGB encode table on this machine: the plain path runs (slower, same bytes)"
    base, threshold = table
    one = int(np.float32(1.0).view(np.uint32))
    steps = threshold[threshold != 0xFFFFFFFF].astype(np.int64)
    assert len(steps) == 255
    near = (steps[:, None] + np.arange(-5000, 5001)).ravel()
    bits = np.concatenate([np.arange(0, one + 1, 997), np.clip(near, 0, one)]).astype(np.uint32)
    lin = bits.view(np.float32)
    outside = np.array([-0.0, -1e-30, -0.5, -3.0e38, 1.0000001, 2.0, 3.0e38, 1e-45], np.float32)
    for values in (lin, outside, RNG.normal(0.5, 0.6, 100_000).astype(np.float32)):
        assert same_bits(blend._encode_uint8(values), blend._encode_uint8_plain(values.copy()))
    for odd in (np.nan, np.inf, -np.inf):  # their buckets hold NaN patterns: the plain path decides
        assert blend._encode_uint8(np.array([0.5, odd], np.float32)) is None


def test_colour_coherence_of_a_frame_with_nan_takes_the_plain_path():
    img = blend.batch_blend([smooth_image(12, 12)])
    img[2, 3, 1] = np.nan
    stats = blend.lab_stats(smooth_image(12, 12))
    with np.errstate(invalid="ignore"):  # NaN -> uint8: whatever the platform's cast gives, the same both ways
        want = to_uint8(ref.colour_coherence(img, stats, 1.0, as_float=True))
        got = blend.colour_coherence_uint8(img, stats, 1.0)
    assert same_bits(got, want)


@pytest.mark.parametrize("strength,share", [(0.5, 0.5), (1.0, 0.5), (0.3, 0.9), (0.0, 0.5), (1.0, 0.0)])
def test_temporal_merge_equals_the_plain_formulas(strength, share):
    for u8 in frames():
        prev = 255 - u8[::-1] if u8.shape[0] > 1 else 255 - u8
        for src, pr in ((u8, prev), (blend.batch_blend([u8]), blend.batch_blend([prev]))):
            for as_float in (False, True):
                want = ref.temporal_merge(src, pr, strength, luma_share=share, as_float=as_float)
                got = blend.temporal_merge(src, pr, strength, luma_share=share, as_float=as_float)
                assert same_bits(got, want), (u8.shape, strength, share, as_float)
