"""Warp error, flicker index, SSIM fidelity and VideoMetrics (lib_vid2vid.metrics)."""

import json

import cv2
import numpy as np
import pytest

from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.metrics import (
    ColourDriftMeter,
    FidelityMeter,
    FlickerMeter,
    VideoMetrics,
    WarpErrorMeter,
    edge_magnitude,
    luminance,
    measure,
    ssim,
    ssim_edge,
    ssim_luma,
)
from tests.clips import texture

H, W = 96, 128


def panning_clip(n=6):
    """Source frames of a texture moving 1.3 px right and 0.4 px down per frame."""
    return [texture(H, W, 1.3 * t, 0.4 * t, seed=3) for t in range(n)]


def style(frame):
    """A restyle that follows the source exactly (pointwise: inverted colours)."""
    return 255 - frame


def square_scene(x0):
    """Static textured background with a textured 40x40 square whose left edge is at x0."""
    bg, fg = texture(H, W, seed=1), texture(H, W, seed=2)
    im = bg.copy()
    im[28:68, x0 : x0 + 40] = fg[28:68, 20:60]
    return im


# --- warp error ---------------------------------------------------------------------------------


def test_warp_error_is_near_zero_for_output_that_follows_the_source():
    m = WarpErrorMeter()
    assert m.update(panning_clip()[0], style(panning_clip()[0])) is None  # first frame: no pair yet
    m = WarpErrorMeter()
    for s in panning_clip():
        m.update(s, style(s))
    assert m.pairs == 5 and m.frames == 6
    assert m.value < 1e-4  # only bilinear interpolation and flow error remain


def test_warp_error_grows_monotonically_with_per_frame_noise():
    rng = np.random.default_rng(7)
    values = []
    for sigma in (0.0, 0.01, 0.03, 0.1):
        m = WarpErrorMeter()
        for s in panning_clip():
            noisy = style(s).astype(np.float32) / 255 + rng.normal(0, sigma, s.shape).astype(np.float32)
            m.update(s, np.clip(noisy, 0, 1))
        values.append(m.value)
    assert all(a < b for a, b in zip(values, values[1:])), values
    assert values[-1] > 100 * values[0]


def test_warp_error_hand_computed_for_a_static_scene():
    # static source -> zero flow, nothing occluded, warp is the identity; the output brightens by 25/255
    # in the second frame, so E = (25/255)^2 on every pixel and channel
    src = texture(H, W, seed=5)
    assert 25 <= src.min() and src.max() <= 230  # no clipping below
    m = WarpErrorMeter()
    m.update(src, src)
    e = m.update(src, src + np.uint8(25))
    assert e == pytest.approx((25 / 255) ** 2, rel=1e-3)
    assert m.value == pytest.approx((25 / 255) ** 2, rel=1e-3)
    np.testing.assert_array_equal(m.last_mask, 1.0)


def test_warp_error_uses_the_source_flow_not_the_output():
    # the output holds still while the source moves: a temporally "smooth" output that ignores the
    # motion is inconsistent with the source and must score worse than one that follows it
    clip = panning_clip()
    frozen, follow = WarpErrorMeter(), WarpErrorMeter()
    for s in clip:
        frozen.update(s, style(clip[0]))
        follow.update(s, style(s))
    assert frozen.value > 20 * follow.value


def test_warp_error_ignores_the_uncovered_region():
    # the output is garbage only where background is newly uncovered; the occlusion mask removes most of it
    prev, cur = square_scene(30), square_scene(38)
    out_cur = style(cur).copy()
    out_cur[30:66, 31:37] = 0  # wrong pixels exactly in the disoccluded strip
    masked, unmasked_err = WarpErrorMeter(), None
    masked.update(prev, style(prev))
    e = masked.update(cur, out_cur)
    clean = WarpErrorMeter()
    clean.update(prev, style(prev))
    e_clean = clean.update(cur, style(cur))
    unmasked_err = ((out_cur.astype(np.float64) - style(cur)) / 255) ** 2
    assert e - e_clean < 0.25 * unmasked_err.mean()


# --- flicker -------------------------------------------------------------------------------------


def test_flicker_is_zero_for_static_identical_output():
    src = texture(H, W, seed=5)
    m = FlickerMeter()
    for _ in range(4):
        m.update(src, style(src))
    assert m.value == 0.0 and m.pairs == 3


def test_flicker_hand_computed_for_alternating_brightness():
    src = texture(H, W, seed=5)
    m = FlickerMeter()
    for t in range(5):
        out = src + np.uint8(10) if t % 2 else src - np.uint8(10)  # +-10/255 on every channel
        m.update(src, out)
    # luma weights sum to 1, so |dY| = 20/255 on every (still) pixel of every pair
    assert m.value == pytest.approx(20 / 255, rel=1e-4)


def test_flicker_grows_with_flicker_amplitude_and_ignores_moving_regions():
    values = []
    for amp in (0, 3, 10, 30):
        m = FlickerMeter()
        for t in range(6):
            src = square_scene(20 + 5 * t)  # moving square, static background
            out = np.clip(src.astype(int) + (amp if t % 2 else 0), 0, 255).astype(np.uint8)
            m.update(src, out)
        values.append(m.value)
    assert values[0] == 0.0  # output == moving source: the moving square is not counted as flicker
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_flicker_skips_pairs_without_still_regions():
    m = FlickerMeter()
    for s in [texture(H, W, 4 * t, 0, seed=3) for t in range(3)]:  # a fast pan: nothing holds still
        m.update(s, s)
    assert m.value is None and m.skipped == 2


def test_still_mask_tolerates_sensor_noise():
    rng = np.random.default_rng(0)
    base = texture(H, W, seed=5).astype(np.float64)
    a, b = (np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8) for _ in range(2))
    assert FlickerMeter().still_mask(luminance(a), luminance(b)).mean() > 0.99


# --- SSIM ----------------------------------------------------------------------------------------


def _ssim_reference(x, y):
    """Brute-force SSIM: explicit 11x11 Gaussian window at every centre where it fits, float64."""
    k = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    win = np.outer(k, k) / np.outer(k, k).sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(5, x.shape[0] - 5):
        for j in range(5, x.shape[1] - 5):
            px, py = x[i - 5 : i + 6, j - 5 : j + 6], y[i - 5 : i + 6, j - 5 : j + 6]
            mx, my = (win * px).sum(), (win * py).sum()
            vx, vy = (win * (px - mx) ** 2).sum(), (win * (py - my) ** 2).sum()
            cxy = (win * (px - mx) * (py - my)).sum()
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_brute_force_reference():
    rng = np.random.default_rng(1)
    x = rng.random((20, 23))
    y = np.clip(0.7 * x + 0.2 + 0.1 * rng.random((20, 23)), 0, 1)
    assert ssim(x, y) == pytest.approx(_ssim_reference(x, y), abs=1e-9)


def test_ssim_of_constant_images_is_the_luminance_term():
    # uniform images: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b = np.full((16, 16), 0.5), np.full((16, 16), 0.25)
    c1 = 0.01**2
    assert ssim(a, b) == pytest.approx((2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1), rel=1e-9)


def test_ssim_is_one_for_identical_images_and_decreases_with_noise():
    src = texture(H, W, seed=6)
    assert ssim_luma(src, src) == pytest.approx(1.0, abs=1e-9)
    assert ssim_edge(src, src) == pytest.approx(1.0, abs=1e-9)
    rng = np.random.default_rng(2)
    luma, edge = [], []
    for sigma in (2, 8, 25):
        noisy = np.clip(src + rng.normal(0, sigma, src.shape), 0, 255).astype(np.uint8)
        luma.append(ssim_luma(src, noisy))
        edge.append(ssim_edge(src, noisy))
    assert 1.0 > luma[0] > luma[1] > luma[2]
    assert 1.0 > edge[0] > edge[1] > edge[2]


def test_edge_ssim_ignores_a_brightness_shift_but_not_blur():
    # why edge SSIM is the default fidelity: a style may change brightness; it should keep the edges
    src = texture(H, W, seed=6)
    brighter = np.clip(src.astype(int) + 20, 0, 255).astype(np.uint8)
    assert src.max() + 20 <= 255
    assert ssim_edge(src, brighter) == pytest.approx(1.0, abs=1e-6)
    assert ssim_luma(src, brighter) < 0.99
    blurred = cv2.GaussianBlur(src, (0, 0), 2.0)
    assert ssim_edge(src, blurred) < 0.9


def test_edge_magnitude_of_a_step_reads_its_height():
    g = np.zeros((9, 12), np.float32)
    g[:, 6:] = 0.8
    mag = edge_magnitude(g)
    # Sobel x at columns 5 and 6: (1 + 2 + 1) * 0.8 = 3.2 across the step, / 4 = 0.8 = the step height
    np.testing.assert_allclose(mag[:, 5:7], 0.8, atol=1e-6)
    np.testing.assert_allclose(mag[:, :4], 0.0, atol=1e-7)


def test_ssim_matches_skimage_if_available():
    metrics = pytest.importorskip("skimage.metrics")
    src = texture(H, W, seed=6)
    out = cv2.GaussianBlur(255 - src, (0, 0), 1.0)
    ys, yo = luminance(src).astype(np.float64), luminance(out).astype(np.float64)
    ref = metrics.structural_similarity(
        ys, yo, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim(ys, yo) == pytest.approx(ref, abs=1e-6)


def test_fidelity_meter_is_the_mean_of_per_frame_ssim():
    src = texture(H, W, seed=6)
    noisy = np.clip(src + np.random.default_rng(3).normal(0, 10, src.shape), 0, 255).astype(np.uint8)
    m = FidelityMeter(kind="luma")
    m.update(src, src)
    m.update(src, noisy)
    assert m.value == pytest.approx((1.0 + ssim_luma(src, noisy)) / 2)
    assert FidelityMeter().kind == "edge"


def test_colour_drift_is_the_widest_range_of_the_offset_within_a_shot():
    """A constant restyle (every frame 20 levels darker) does not drift; an output that keeps its light while the
    source fades drifts by the fade; a cut starts the range afresh."""
    src = texture(H, W, seed=6)
    fade = [np.clip(src.astype(np.float32) * (1 - 0.05 * i), 0, 255).astype(np.uint8) for i in range(5)]
    darker = ColourDriftMeter()
    for f in fade:
        darker.update(f, np.clip(f.astype(np.int16) - 20, 0, 255).astype(np.uint8))
    assert darker.value == pytest.approx(0.0, abs=0.002)
    pinned = ColourDriftMeter()
    for f in fade:
        pinned.update(f, fade[0])
    y = [float(luminance(f).mean()) for f in fade]
    assert pinned.value == pytest.approx(y[0] - y[-1], abs=1e-6) and pinned.value > 0.1
    vm = VideoMetrics()
    for i, f in enumerate(fade[:3] + fade[:3]):
        vm.update(f, fade[0] if i < 3 else fade[3], cut=(i == 3))  # a cut at 3: each shot's own range
    assert vm.summary()["colour_drift"] == pytest.approx(y[0] - y[2], rel=1e-5)


# --- VideoMetrics ----------------------------------------------------------------------------------


def test_video_metrics_summary():
    clip = panning_clip(4)
    vm = VideoMetrics()
    assert vm.summary()["warp_error"] is None
    for s in clip:
        vm.update(s, style(s))
    summary = vm.summary()
    assert set(summary) == {
        "frames",
        "size",
        "warp_error",
        "flicker",
        "fidelity",
        "fidelity_kind",
        "ssim_edge",
        "ssim_luma",
        "worst_frames",
        "scene_cuts",
        "colour_drift",
    }
    assert summary["frames"] == 4 and summary["size"] == [W, H]
    assert summary["fidelity_kind"] == "edge" and summary["fidelity"] == summary["ssim_edge"]
    assert summary["fidelity"] == pytest.approx(1.0, abs=1e-6)
    assert summary["warp_error"] < 1e-4 and summary["scene_cuts"] == []
    json.dumps(summary)  # JSON-ready
    for v in (summary["warp_error"], summary["ssim_luma"]):
        assert v == float(f"{v:.6g}")  # rounded to 6 significant digits
    assert measure(zip(clip, map(style, clip))) == summary


def test_video_metrics_resizes_output_and_downscales_for_speed():
    src = texture(H, W, seed=6)
    big_out = cv2.resize(src, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC)  # e.g. after upscaling
    vm = VideoMetrics(max_side=64)
    vm.update(src, big_out)
    vm.update(src, big_out)
    s = vm.summary()
    assert s["size"] == [64, 48]
    assert s["ssim_luma"] > 0.98 and s["flicker"] == 0.0


def test_mismatched_frames_raise_one_line_errors():
    with pytest.raises(Vid2VidError, match="resize"):
        WarpErrorMeter().update(texture(32, 32), texture(32, 40))
    with pytest.raises(Vid2VidError, match="RGB uint8"):
        VideoMetrics().update(texture(32, 32)[..., 0], texture(32, 32))
    vm = VideoMetrics()
    vm.update(texture(32, 32), texture(32, 32))
    with pytest.raises(Vid2VidError, match="size changed"):
        vm.update(texture(40, 40), texture(40, 40))
    with pytest.raises(Vid2VidError, match="fidelity kind"):
        VideoMetrics(fidelity="psnr")


def test_worst_frames_name_the_least_steady_pairs():
    """A video steady but for one jump: that frame is named first among the worst, with its warp error."""
    import numpy as np

    clip = panning_clip(6)
    outs = [style(s) for s in clip]
    outs[4] = np.ascontiguousarray(255 - outs[4])  # frame 4 breaks from frame 3 (and frame 5 from it)
    vm = VideoMetrics()
    for s, o in zip(clip, outs):
        vm.update(s, o)
    worst = vm.summary()["worst_frames"]
    assert len(worst) == 3 and {worst[0][0], worst[1][0]} == {4, 5}
    assert worst[0][1] >= worst[1][1] >= worst[2][1] and worst[2][1] < worst[1][1] / 10


def test_a_scene_cut_starts_the_steadiness_meters_afresh():
    """Frames 0-2 and 3-5 are two shots: told of the cut at 3, the warp error and the flicker are those of the
    pairs inside the shots alone (the same figures as two meters, one per shot, merged); fidelity counts every
    frame."""
    shot_a, shot_b = panning_clip(3), [np.ascontiguousarray(255 - s) for s in panning_clip(3)]
    frames = shot_a + shot_b
    outs = [style(s) for s in frames]
    outs[4] = np.clip(outs[4].astype(np.int16) + 6, 0, 255).astype(np.uint8)  # a little flicker inside shot b
    told, blind = VideoMetrics(), VideoMetrics()
    for i, (s, o) in enumerate(zip(frames, outs)):
        told.update(s, o, cut=i == 3)
        blind.update(s, o)
    warp, flick = WarpErrorMeter(), FlickerMeter()
    e, f = [], []
    for shot in (range(0, 3), range(3, 6)):
        warp.restart()
        flick.restart()
        for i in shot:
            e.append(warp.update(frames[i], outs[i]))
            f.append(flick.update(frames[i], outs[i]))
    e, f = [x for x in e if x is not None], [x for x in f if x is not None]
    got = told.summary()
    assert got["scene_cuts"] == [3] and len(e) == 4 and f and min(e) > 0
    assert got["warp_error"] == pytest.approx(sum(e) / len(e), rel=1e-5)
    assert got["flicker"] == pytest.approx(sum(f) / len(f), rel=1e-5)
    assert blind.summary()["warp_error"] > 2 * got["warp_error"]  # the pair across the cut, counted
    assert 3 not in [i for i, _ in got["worst_frames"]] and got["fidelity"] == blind.summary()["fidelity"]
