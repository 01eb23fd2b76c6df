"""The consistency benchmark's judge flow (helpers/bench_consistency.py --judge-flow): the warp error is really
measured with the named flow and thresholds, equals the formula computed by hand with OpenCV, and the default
judge is the job report's meter."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib_vid2vid.metrics import VideoMetrics

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(HELPERS))
    try:
        yield importlib.import_module("bench_consistency")
    finally:
        sys.path.remove(str(HELPERS))


def _clip(n: int = 3, size: tuple[int, int] = (96, 72)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(sources, outputs), RGB uint8 HWC. Sources: a smooth random texture moved by a sub-pixel translation
    plus a small rotation each frame. Outputs: the source plus a detail pattern that stays on the screen
    (texture sticking) and a little per-frame noise."""
    w, h = size
    rng = np.random.default_rng(7)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (h * 2, w * 2, 3)).astype(np.float32), (0, 0), 3.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    stuck = cv2.GaussianBlur(rng.normal(0, 25, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    srcs, outs = [], []
    for i in range(n):
        m = cv2.getRotationMatrix2D((w, h), 1.5 * i, 1.0)
        m[:, 2] += (1.7 * i - w / 2, 0.9 * i - h / 2)
        frame = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        srcs.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
        noise = rng.normal(0, 4, (h, w, 3)).astype(np.float32)
        outs.append(np.clip(np.rint(frame + stuck + noise), 0, 255).astype(np.uint8))
    return srcs, outs


def _flow_by_hand(a: np.ndarray, b: np.ndarray, method: str, quality: str) -> np.ndarray:
    """OpenCV flow a -> b on BT.601 grey uint8, written out (DIS presets; Farneback 'medium' parameters)."""
    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    if method == "dis":
        preset = {"medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST}[quality]
        return cv2.DISOpticalFlow_create(preset).calc(ga, gb, None)
    assert quality == "medium"
    return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 5, 21, 5, 7, 1.5, 0)


def _remap(img: np.ndarray, f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255 @ np.array([0.299, 0.587, 0.114], np.float32)


def _by_hand(srcs, outs, method, quality, alpha, beta, agree_px=None) -> tuple[float, float]:
    """The docstring's (E_J, MCF_J): means over pairs of the masked mean squared error (0..1 pixels, mean over
    channels) and of the masked |luma change of the output - luma change of the source| after the motion.
    ``agree_px``: also leave out the pixels where Farneback's flow is farther than that from ``method``'s."""
    errors, flickers = [], []
    for t in range(1, len(srcs)):
        w = _flow_by_hand(srcs[t], srcs[t - 1], method, quality)
        wb = _remap(_flow_by_hand(srcs[t - 1], srcs[t], method, quality), w)
        h, width = w.shape[:2]
        xs = np.arange(width)[None, :] + w[..., 0]
        ys = np.arange(h)[:, None] + w[..., 1]
        occluded = (((w + wb) ** 2).sum(axis=2) > alpha * ((w**2).sum(axis=2) + (wb**2).sum(axis=2)) + beta)
        occluded |= (xs < -0.5) | (xs > width - 0.5) | (ys < -0.5) | (ys > h - 0.5)
        valid = ~occluded
        assert valid.mean() > 0.5  # the synthetic motion is mostly trackable
        if agree_px is not None:
            other = _flow_by_hand(srcs[t], srcs[t - 1], "farneback", "medium")
            valid &= np.sqrt(((w - other) ** 2).sum(axis=2)) <= agree_px
        prev = outs[t - 1].astype(np.float32) / 255
        cur = outs[t].astype(np.float32) / 255
        sq = ((cur - _remap(prev, w)) ** 2).mean(axis=2)
        errors.append(float(sq[valid].mean()))
        d_out = _luma(outs[t]) - _remap(_luma(outs[t - 1]), w)
        d_src = _luma(srcs[t]) - _remap(_luma(srcs[t - 1]), w)
        flickers.append(float(np.abs(d_out - d_src)[valid].mean()))
    return float(np.mean(errors)), float(np.mean(flickers))


def test_parse_judge(bench):
    assert bench.parse_judge("dis") == bench.Judge("dis", "medium", 0.01, 0.5)
    assert bench.parse_judge(bench.DEFAULT_JUDGE) == bench.Judge()
    assert bench.parse_judge("farneback") == bench.Judge("farneback", "medium", 0.01, 0.5)
    assert bench.parse_judge("dis:fast:0.05:1") == bench.Judge("dis", "fast", 0.05, 1.0)
    assert bench.parse_judge("dis:fast:0.05:1").name == "dis:fast:0.05:1"
    for bad in ("raft", "dis:slow", "dis:fast:0.05", "dis:fast:x:1", "dis:fast:-1:1", ""):
        with pytest.raises(ValueError, match="METHOD"):
            bench.parse_judge(bad)


def test_parse_variant(bench):
    from lib_vid2vid.params import STRATEGIES

    name, preset = bench.parse_variant("keyframes_adaptive:keyframe_max_motion=48", STRATEGIES)
    assert name == "keyframes_adaptive+keyframe_max_motion=48"
    assert preset == {**STRATEGIES["keyframes_adaptive"], "keyframe_max_motion": 48.0}
    name, preset = bench.parse_variant("keyframes_adaptive: keyframe_min_gap=3, keyframe_max_motion=24.5", STRATEGIES)
    assert name == "keyframes_adaptive+keyframe_min_gap=3+keyframe_max_motion=24.5"
    assert preset["keyframe_min_gap"] == 3 and preset["keyframe_max_motion"] == 24.5
    assert STRATEGIES["keyframes_adaptive"].get("keyframe_max_motion", 0.0) == 0.0  # the strategy itself unchanged
    for bad, match in (("keyframes_adaptive", "NAME:SETTING"), ("nope:seed_mode=fixed", "unknown strategy"),
                       ("keyframes_adaptive:keyframe_max_motion", "SETTING=VALUE"),
                       ("keyframes_adaptive:no_such=1", "unknown setting"),
                       ("keyframes_adaptive:keyframe_max_motion=-1", "minimum"),
                       ("keyframes_adaptive:seed=3", "same for every job")):
        with pytest.raises(ValueError, match=match):
            bench.parse_variant(bad, STRATEGIES)


@pytest.mark.parametrize("text", ["dis:medium:0.01:0.5", "farneback", "dis:fast:0.05:1"])
def test_judge_equals_the_formula_by_hand(bench, text):
    srcs, outs = _clip(3)
    j = bench.parse_judge(text)
    mcf: dict = {}
    got = bench.judge_warp_errors(zip(srcs, outs), [j], mc_flicker=mcf)[j.name]
    want, want_mcf = _by_hand(srcs, outs, j.method, j.quality, j.alpha, j.beta)
    assert got == pytest.approx(want, rel=1e-4)
    assert mcf[j.name] == pytest.approx(want_mcf, rel=1e-4)


def test_agree_judge_measures_only_where_dis_and_farneback_agree(bench):
    srcs, outs = _clip(3)
    j = bench.parse_judge("agree:0.5")
    assert (j.method, j.agree_px, j.name) == ("agree", 0.5, "agree:0.5")
    assert bench.parse_judge("agree").agree_px == 1.0 and bench.parse_judge("agree:2:nocut").skip_cuts
    for bad in ("agree:x", "agree:0", "agree:1:2"):
        with pytest.raises(ValueError, match="agree"):
            bench.parse_judge(bad)
    plain = bench.Judge()
    cover: dict = {}
    got = bench.judge_warp_errors(zip(srcs, outs), [j, plain], coverage=cover)
    want, _ = _by_hand(srcs, outs, "dis", "medium", 0.01, 0.5, agree_px=0.5)
    assert got[j.name] == pytest.approx(want, rel=1e-4)
    assert got[j.name] != pytest.approx(got[plain.name], rel=1e-3), "it must leave pixels out"
    assert 0.05 < cover[j.name] < cover[plain.name] <= 1.0


def test_nocut_judge_leaves_out_the_pairs_across_a_cut(bench):
    """``...:nocut`` skips a pair whose source frames' luma histograms differ by more than 0.4 and judges every
    other pair as the plain judge does: on a clip with a cut in the middle it equals the plain judge on each
    side's pairs, and it is far below the plain judge, which counts the cut pair."""
    srcs, outs = _clip(3)
    dark = [np.ascontiguousarray(s // 4) for s in srcs]  # another shot: a quarter of the brightness
    j, jn = bench.parse_judge("dis"), bench.parse_judge("dis:nocut")
    assert jn == bench.Judge(skip_cuts=True) and jn.name == "dis:medium:0.01:0.5:nocut"
    assert bench.parse_judge("farneback:nocut").method == "farneback"
    assert bench.parse_judge("dis:fast:0.05:1:nocut") == bench.Judge("dis", "fast", 0.05, 1.0, True)
    got = bench.judge_warp_errors(zip(srcs + dark, outs + dark), [j, jn])
    first = bench.judge_warp_errors(zip(srcs, outs), [j])[j.name]
    second = bench.judge_warp_errors(zip(dark, dark), [j])[j.name]
    assert got[jn.name] == pytest.approx((2 * first + 2 * second) / 4, rel=1e-6)
    assert got[j.name] > 3 * got[jn.name]


def test_nocut_judge_finds_cuts_as_the_jobs_do(bench):
    """A cut between two shots of the same light (histograms within 0.2) is left out too: the judge asks the jobs'
    own scene cut tests."""
    from tests.clips import same_light_cut_frames

    frames = same_light_cut_frames()
    meter, plain = bench.JudgeMeter(bench.parse_judge("dis:nocut")), bench.JudgeMeter(bench.parse_judge("dis"))
    for f in frames:
        meter.update(f, f)
        plain.update(f, f)
    assert (meter.cuts, plain.cuts) == (1, 0)
    assert len(meter._we) == len(frames) - 2 and len(plain._we) == len(frames) - 1


def test_parse_variant_reaches_propagation_settings_and_run_one_applies_them(bench, monkeypatch, tmp_path):
    from lib_vid2vid import keyframes as kf
    from lib_vid2vid.errors import Vid2VidError
    from lib_vid2vid.params import STRATEGIES

    name, preset = bench.parse_variant("keyframes_adaptive:propagation.pick=nearer,propagation.seen_residual=0,"
                                       "keyframe_min_gap=3", STRATEGIES)
    assert name == "keyframes_adaptive+keyframe_min_gap=3+propagation.pick=nearer+propagation.seen_residual=0"
    assert preset[bench.PROPAGATION_KEY] == {"pick": "nearer", "seen_residual": 0.0}
    assert preset["keyframe_min_gap"] == 3
    for bad, match in (("keyframes_adaptive:propagation.nope=1", "not a PropagationSettings field"),
                       ("keyframes_adaptive:propagation.seen_residual=x", "not a float"),
                       ("keyframes_adaptive:propagation.flow_evidence=maybe", "true or false")):
        with pytest.raises(ValueError, match=match):
            bench.parse_variant(bad, STRATEGIES)
    seen = []

    def fake_run_job(settings, renderer, new):  # records what the job's runner would build, then stops
        seen.append(kf.PropagationSettings())
        raise Vid2VidError("stop")

    monkeypatch.setattr("lib_vid2vid.pipeline.run_job", fake_run_job)
    made = kf.PropagationSettings
    row = bench.run_one("cup.mp4", name, preset, {"width": 64}, str(tmp_path))
    assert row["error"] == "stop"
    assert seen[0].pick == "nearer" and seen[0].seen_residual == 0.0
    assert kf.PropagationSettings is made and kf.PropagationSettings().pick == "residual"  # restored


def test_two_judges_give_different_numbers(bench):
    srcs, outs = _clip(3)
    judges = [bench.parse_judge("dis"), bench.parse_judge("farneback")]
    got = bench.judge_warp_errors(zip(srcs, outs), judges)
    a, b = got[judges[0].name], got[judges[1].name]
    assert a > 0 and b > 0
    assert a != pytest.approx(b, rel=1e-3)
    # the floor (output = source) depends on the judge even more: the flows' own errors are all it measures
    floors = bench.judge_warp_errors(zip(srcs, srcs), judges)
    fa, fb = floors[judges[0].name], floors[judges[1].name]
    assert max(fa, fb) > 1.5 * min(fa, fb)


def test_mc_flicker_zero_on_the_source_and_higher_for_a_stuck_texture(bench):
    srcs, outs = _clip(3)
    j = bench.parse_judge("farneback")
    mcf: dict = {}
    bench.judge_warp_errors(zip(srcs, srcs), [j], mc_flicker=mcf)
    assert mcf[j.name] == 0.0
    # brightening the whole output by a constant follows the source exactly: still 0 (up to uint8 rounding)
    bright = [np.clip(s.astype(np.int16) + 20, 0, 255).astype(np.uint8) for s in srcs]
    bench.judge_warp_errors(zip(srcs, bright), [j], mc_flicker=mcf)
    follows = mcf[j.name]
    bench.judge_warp_errors(zip(srcs, outs), [j], mc_flicker=mcf)  # texture stuck to the screen + noise
    assert mcf[j.name] > 5 * follows + 0.005


def test_default_judge_is_the_job_reports_meter(bench):
    srcs, outs = _clip(4)
    vm = VideoMetrics(max_side=None)
    for s, o in zip(srcs, outs):
        vm.update(s, o)
    got = bench.judge_warp_errors(zip(srcs, outs), [bench.parse_judge(bench.DEFAULT_JUDGE)])
    assert got[bench.DEFAULT_JUDGE] == pytest.approx(vm.warp_error.value, rel=1e-6)


# ---------------------------------------------------------------- the ground-truth judge (synthetic clips)


@pytest.fixture(scope="module")
def synth():
    sys.path.insert(0, str(HELPERS))
    try:
        yield importlib.import_module("synthetic_motion")
    finally:
        sys.path.remove(str(HELPERS))


def _warp(img: np.ndarray, f: np.ndarray) -> np.ndarray:
    return _remap(img.astype(np.float32), f)


def _rms(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.sqrt((np.abs(a - b.astype(np.float32)).mean(axis=2)[where] ** 2).mean()))


@pytest.mark.parametrize("name", ["syn_pan", "syn_fastpan", "syn_zoomrot", "syn_static", "syn_skypan", "syn_cut"])
def test_true_flow_warps_the_previous_frame_onto_the_next(synth, name):
    """Away from occlusions the generator's flow carries frame t-1 onto frame t to about one level (bilinear
    resampling of a band-limited picture); the same flow off by one pixel leaves errors many times larger."""
    clip = synth.clip_set(160, 10)[name]
    assert clip.size == (160, 88) and clip.frames == 10
    for t in (1, 4, 9):
        f, valid = clip.truth(t)
        prev, cur = clip.frame(t - 1), clip.frame(t)
        assert f.shape == (88, 160, 2) and f.dtype == np.float32 and valid.dtype == bool
        assert valid.mean() > 0.6
        exact = _rms(_warp(prev, f), cur, valid)
        off = _rms(_warp(prev, f + np.float32([1.0, 0.0])), cur, valid)
        assert exact < 1.6
        assert off > 3 * exact + 1.0


def test_syn_wall_is_a_plain_still_wall_behind_objects_the_truth_follows(synth):
    """syn_wall (cup.mp4's kind of shot): the wall does not move and has almost nothing for a flow to hold on to
    (its pixels within a few levels of their neighbours'), the objects move and turn; away from their edges the
    true flow carries frame t-1 onto frame t, wall and objects alike."""
    clip = synth.clip_set(160, 10)["syn_wall"]
    for t in (1, 5, 9):
        f, valid = clip.truth(t)
        frame, layer = clip.render(t)
        wall = valid & (layer == 0)
        objects = valid & (layer > 0)
        assert wall.mean() > 0.6 and objects.sum() > 200
        assert np.abs(f[wall]).max() < 1e-4  # a still camera
        assert np.linalg.norm(f[objects], axis=1).min() > 0.5  # every object pixel moves
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1))
        assert np.median(gradient[wall]) <= 1.0  # levels per pixel (of whole grey levels): flat
        assert _rms(_warp(clip.frame(t - 1), f), frame, valid) < 1.6


def test_syn_skypan_pans_over_a_plain_sky_the_truth_moves_with_the_camera(synth):
    """syn_skypan (the opposite of syn_wall): the camera pans, and the sky, most of the frame, is as plain as the
    wall but moves with the camera; the ground below the horizon is textured and moves the same way; the truth
    carries frame t-1 onto frame t."""
    clip = synth.clip_set(160, 10)["syn_skypan"]
    k = 160 / 384
    for t in (1, 5, 9):
        f, valid = clip.truth(t)
        frame, layer = clip.render(t)
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1))
        background = valid & (layer == 0)
        rows = np.arange(clip.size[1])[:, None]
        sky, ground = background & (rows < 0.3 * clip.size[1]), background & (rows > 0.85 * clip.size[1])
        assert sky.sum() > 1000 and ground.sum() > 300
        assert np.median(gradient[sky]) <= 1.0 < np.median(gradient[ground])  # levels per pixel: plain / textured
        for part in (sky, ground):  # the camera moves right by 4 px a frame: a point was 4 px further right before
            assert np.allclose(f[part], [4.0 * k, 0.0], atol=1e-3)
        assert _rms(_warp(clip.frame(t - 1), f), frame, valid) < 1.6


def test_syn_skyzoom_zooms_over_a_plain_sky_the_truth_spreads_from_the_centre(synth):
    """syn_skyzoom: the camera zooms in (1.2 % a frame) and turns over a plain sky above textured ground; the true
    flow points back towards the frame's centre, longer the farther a pixel is from it, in the sky as on the
    ground, and carries frame t-1 onto frame t."""
    clip = synth.clip_set(160, 10)["syn_skyzoom"]
    w, h = clip.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.stack([xx - (w - 1) / 2, yy - (h - 1) / 2], axis=-1)
    for t in (1, 5, 9):
        f, valid = clip.truth(t)
        frame, layer = clip.render(t)
        background = valid & (layer == 0)
        sky = background & (yy < 0.3 * h)
        assert sky.sum() > 1000
        inward = (f * r).sum(axis=2)[sky]  # zooming in: a sky pixel was nearer the centre a frame before
        assert (inward < 0).mean() > 0.99
        far, near = sky & (np.linalg.norm(r, axis=2) > 60), sky & (np.linalg.norm(r, axis=2) < 35)
        assert np.linalg.norm(f[far], axis=1).mean() > 1.5 * np.linalg.norm(f[near], axis=1).mean()
        prev = clip.frame(t - 1)
        exact = _rms(_warp(prev, f), frame, valid)
        assert exact < 1.6
        ground = background & (yy > 0.85 * h)  # the plain sky barely tells a shifted flow; the ground does
        assert _rms(_warp(prev, f + np.float32([1.0, 0.0])), frame, ground) > 3 * _rms(_warp(prev, f), frame, ground) + 1


def test_truth_masks_revealed_and_entering_pixels(synth):
    """A still background with one object moving right by 6 px per frame: the background it uncovers and a
    band along its edges are not valid; the object itself and the rest of the background are, with the object's
    flow -6 px (back to where it was) and zero elsewhere. A camera pan leaves the entering columns invalid."""
    sprite = synth.Sprite(5, "ellipse", 12, 10, (40, 30), (6.0, 0.0))
    clip = synth.SyntheticClip("t", (synth.Shot(3, 3, (200, 150), sprites=(sprite,)),), size=(96, 64))
    f, valid = clip.truth(1)
    _, layer_prev = clip.render(0)
    _, layer = clip.render(1)
    revealed = (layer_prev == 1) & (layer == 0)
    assert revealed.sum() > 50 and not valid[revealed].any()
    inner = cv2.erode((layer == 1).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert inner.any() and valid[inner].all()
    np.testing.assert_allclose(f[inner], np.broadcast_to([-6.0, 0.0], f[inner].shape), atol=1e-4)
    far = cv2.erode((layer == 0).astype(np.uint8) & (layer_prev == 0), np.ones((9, 9), np.uint8)) > 0
    assert valid[far].all() and np.abs(f[far]).max() < 1e-4
    pan = synth.SyntheticClip("p", (synth.Shot(3, 3, (200, 150), cv=(5.0, 0.0)),), size=(96, 64))
    f, valid = pan.truth(2)
    # the camera moves right: the picture moves left, a pixel was 5 px further right in the frame before
    np.testing.assert_allclose(f, np.broadcast_to([5.0, 0.0], f.shape), atol=1e-4)
    assert not valid[:, 91:].any() and valid[:, :88].all()  # columns 91.. come from outside frame 1


def test_a_cut_has_no_valid_pixel_and_the_file_decodes_exactly(synth, tmp_path):
    from lib_vid2vid import video

    clip = synth.clip_set(128, 6)["syn_cut"]
    assert [s.frames for s in clip.shots] == [3, 3]
    assert not clip.truth(3)[1].any() and clip.truth(4)[1].mean() > 0.6
    path = clip.write(tmp_path / "c.mkv", fps=12)
    got = [rgb for _, rgb in video.iter_frames(path, fps=12, size=clip.size)]
    assert len(got) == 6
    for t, rgb in enumerate(got):
        assert np.array_equal(rgb, clip.frame(t))
    assert np.array_equal(clip.frame(2), synth.clip_set(128, 6)["syn_cut"].frame(2))  # deterministic
    # the second shot has its own palette: the jobs' cut detection (luma histogram distance > 0.4) sees the cut,
    # and only it
    from lib_vid2vid.scene_cuts import scene_cut_distance

    dist = [scene_cut_distance(clip.frame(t - 1), clip.frame(t)) for t in range(1, 6)]
    assert dist[2] > 0.5 and max(dist[:2] + dist[3:]) < 0.1


def test_truth_judge_floor_near_zero_and_a_stuck_texture_scores_high(bench, synth):
    clip = synth.clip_set(128, 5)["syn_fastpan"]
    srcs = [clip.frame(t) for t in range(5)]
    rng = np.random.default_rng(3)
    stuck = cv2.GaussianBlur(rng.normal(0, 20, srcs[0].shape).astype(np.float32), (0, 0), 1.5)
    outs = [np.clip(s + stuck, 0, 255).astype(np.uint8) for s in srcs]
    j = bench.parse_judge("truth")
    assert j.name == "truth"
    mcf: dict = {}
    floor = bench.judge_warp_errors(zip(srcs, srcs), [j], truth=clip, mc_flicker=mcf)["truth"]
    assert floor < 2e-5 and mcf["truth"] < 2e-3
    # the pattern stays on the screen while the picture moves 20 px and more a frame: warped along the true flow it
    # meets an unrelated part of itself, E ~ 2 var(pattern) (less where the clip to 0..255 cuts it)
    stuck_error = bench.judge_warp_errors(zip(srcs, outs), [j], truth=clip)["truth"]
    assert stuck_error > 0.5 * 2 * float(stuck.var()) / 255**2 and stuck_error > 10 * floor
    # by hand: the masked mean squared error of the output warped along the true flow
    want = []
    for t in range(1, 5):
        f, valid = clip.truth(t)
        d = ((outs[t].astype(np.float32) - _warp(outs[t - 1], f)) / 255) ** 2
        want.append(float(d.mean(axis=2)[valid].mean()))
    assert bench.judge_warp_errors(zip(srcs, outs), [j], truth=clip)["truth"] == pytest.approx(np.mean(want), rel=1e-4)
    # a real clip (no generator) has no truth
    assert bench.judge_warp_errors(zip(srcs, outs), [j])["truth"] is None


def test_still_pixels_are_where_the_source_holds_still_and_a_judge_that_moves_them_is_measured_apart():
    """helpers/judge_still_pixels.py: a plain wall with a square moving across it. The wall away from the square is
    still; a judge flow that drags the whole frame by 2 px counts a restyled wall's still texture as error, and
    with its motion zeroed on the still pixels it does not."""
    sys.path.insert(0, str(HELPERS))
    try:
        still_tool = importlib.import_module("judge_still_pixels")
    finally:
        sys.path.remove(str(HELPERS))
    h, w = 64, 96
    wall = np.full((h, w, 3), 0.8, np.float32)
    prev, cur = wall.copy(), wall.copy()
    prev[20:40, 10:30] = 0.2
    cur[20:40, 14:34] = 0.2  # the square moved 4 px right
    still = still_tool.still_mask(cur, prev, threshold=3.0, side=11)
    assert not still[20:40, 10:34].any(), "the square and what it uncovers are not still"
    assert still[:, 50:].all() and still[:8].all(), "the wall away from it is"
    rng = np.random.default_rng(1)
    grain = cv2.GaussianBlur(rng.normal(0, 0.05, (h, w, 3)).astype(np.float32), (0, 0), 1.5)
    out_prev, out_cur = prev + grain, cur + grain  # the style's texture stays on the wall
    right = np.zeros((h, w, 2), np.float32)  # frame t -> t-1: cur(x) = prev(x + w)
    right[20:40, 14:34, 0] = -4.0
    drag = right.copy()
    drag[..., 0] = np.where(right[..., 0] != 0, -4.0, -2.0)  # a judge that drags the wall with the square
    valid = np.ones((h, w), np.float32)
    valid[18:42, 8:36] = 0  # what the square uncovers has no match (a judge's occlusion check)
    pair = [(out_cur, out_prev)]
    as_judged, zeroed = still_tool.pair_errors(drag, valid, still, pair)[0]
    truth, truth_zeroed = still_tool.pair_errors(right, valid, still, pair)[0]
    assert truth == truth_zeroed, "zeroing changes nothing where the judge already holds the wall still"
    assert as_judged > 4 * truth, (as_judged, truth)
    assert truth < zeroed < 0.5 * as_judged, "off the still pixels (round the square) the judge's drag is kept"
