"""The stages wired into the frame loop, end to end: masks, temporal tricks, schedules, seeds, strategies."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from lib_vid2vid import flow, params, video
from lib_vid2vid.errors import SettingsError, Vid2VidError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.schedule import ScheduleError
from lib_vid2vid.workspace import Job
from tests.clips import make_two_shot_clip
from tests.doubles import StopAfter


def _settings(clip, tmp_path, **kw):
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=1234, denoise=0.5,
                # the plain pipeline: expectations here are computed without the default colour coherence
                colour_coherence=False,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _frames(job_dir, stage):
    d = Path(job_dir) / "frames" / stage
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.png"))}


def _source(clip, n=24):
    return [rgb for _, rgb in zip(range(n), (f for _, f in video.iter_frames(clip, size=(96, 64))))]


class Spy(ProxyRenderer):
    """Records every request (a copy of the init and the per-frame fields)."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def render(self, request):
        self.requests.append(dict(index=request.frame_index, init=request.init.copy(), denoise=request.denoise,
                                  steps=request.steps, cfg=request.cfg, seed=request.seed,
                                  subseed=request.subseed, subseed_strength=request.subseed_strength,
                                  prompt=request.prompt, negative=request.negative_prompt,
                                  n_iter=request.n_iter, batch_size=request.batch_size,
                                  mask=None if request.mask is None else request.mask.copy()))
        out = super().render(request)
        self.requests[-1]["images"] = [o.copy() for o in out]
        return out


# ------------------------------------------------------------------------------------------------ masks


def test_colour_key_fill_changes_only_keyed_pixels_of_the_init(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=3, colour_key=True, colour_key_target="40,40,40", colour_key_range=6,
                  colour_key_fill="noise", colour_key_noise=1.0)
    run_job(s, spy)
    src = _source(clip, 3)
    for req in spy.requests:
        frame = src[req["index"]].astype(int)
        keyed = np.all(np.abs(frame - 40) <= 6, axis=2)  # the background of the test clip
        assert 1000 < keyed.sum() < keyed.size, "the grey background is keyed, the strip and square are not"
        init = req["init"].astype(int)
        assert np.array_equal(init[~keyed], frame[~keyed]), "pixels outside the key are the source"
        changed = np.any(init != frame, axis=2)
        assert changed[keyed].mean() > 0.9, "keyed pixels are filled with noise"


def test_colour_key_hex_target_and_inpaint_fill_reach_the_init(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=1, colour_key=True, colour_key_target="#ffffff", colour_key_range=30,
                  colour_key_fill="telea", colour_key_radius=3)
    run_job(s, spy)
    frame = _source(clip, 1)[0].astype(int)
    keyed = np.all(np.abs(frame - 255) <= 30, axis=2)  # the white square and white strip cells
    init = spy.requests[0]["init"].astype(int)
    assert keyed.sum() > 50
    assert np.array_equal(init[~keyed], frame[~keyed])
    assert init[keyed].mean() < 200, "white pixels are inpainted from their darker surroundings"


def test_user_mask_of_zeros_with_spatial_usage_keeps_the_previous_output(clip, tmp_path):
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((64, 96), np.uint8))
    s = _settings(clip, tmp_path, max_frames=5, user_mask_kind="image", user_mask_path=str(black),
                  mask_usage="spatial")
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    first = _source(clip, 1)[0]
    for i in range(5):
        # nothing may change: frame 0 keeps the pass input, every later frame the previous output
        assert np.array_equal(job.read_frame("pass1", i), first)


def test_user_mask_folder_threshold_and_invert(clip, tmp_path):
    folder = tmp_path / "masks_in"
    folder.mkdir()
    for n in range(1, 5):  # numbered from 1, as ffmpeg writes them
        m = np.full((64, 96), 200, np.uint8)
        m[:, 48:] = 50
        cv2.imwrite(str(folder / f"{n:06d}.png"), m)
    s = _settings(clip, tmp_path, max_frames=4, user_mask_kind="folder", user_mask_path=str(folder),
                  user_mask_threshold=128, user_mask_invert=True, mask_usage="spatial", seed_mode="increment")
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    outs = [job.read_frame("pass1", i) for i in range(4)]
    src0 = _source(clip, 1)[0]
    # grey 200 >= 128 -> 1, inverted -> 0 on the left: the left half never changes from the input
    for o in outs:
        assert np.array_equal(o[:, :48], src0[:, :48])
    # the right half (50 < 128 -> 0, inverted -> 1) is rendered anew each frame
    assert not np.array_equal(outs[1][:, 48:], outs[0][:, 48:])
    saved = cv2.imread(str(res.job_dir / "frames" / "masks" / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert saved.ndim == 2 and saved.dtype == np.uint8
    assert (saved[:, :48] == 0).all() and (saved[:, 48:] == 255).all()


def test_missing_user_mask_path_is_a_settings_error(clip, tmp_path):
    with pytest.raises(SettingsError) as err:
        _settings(clip, tmp_path, user_mask_kind="folder")
    assert err.value.field == "user_mask_path"
    with pytest.raises(SettingsError, match="colour_key_target"):
        _settings(clip, tmp_path, colour_key=True, colour_key_target="green")


def test_combined_masks_are_saved_as_grey_pngs(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=5, motion_mask=True, motion_low_cut=8, motion_high_ext=1,
                  motion_soft=0.0)
    res = run_job(s, ProxyRenderer())
    d = res.job_dir / "frames" / "masks"
    names = sorted(p.name for p in d.glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(5)]
    src = _source(clip, 5)
    m0 = cv2.imread(str(d / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert m0.ndim == 2 and m0.dtype == np.uint8 and (m0 == 255).all(), "frame 0: no motion yet, all may change"
    for i in range(1, 5):
        m = cv2.imread(str(d / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        delta = src[i].astype(np.float32) - src[i - 1].astype(np.float32)
        grey = np.abs(delta @ np.array([0.299, 0.587, 0.114], np.float32))
        expected = np.where(grey >= 8, 255, 0)
        assert np.array_equal(m, expected), f"mask {i} is the motion mask (low cut 8, no dilation, hard)"
        assert 0 < (m == 255).mean() < 0.5, "the moving square and the index strip moved, the rest did not"
    assert Job.open(res.job_dir).manifest["masks"]["folder"] == "frames/masks"


def test_inpaint_usage_hands_the_combined_mask_to_the_host(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=3, motion_mask=True, motion_low_cut=8, motion_high_ext=3,
                  colour_key=True, colour_key_target="255,255,255", colour_key_range=20, mask_usage="inpaint")
    run_job(s, spy)
    assert spy.requests[0]["mask"] is not None  # frame 0: the colour key alone (union with all ones)
    req = spy.requests[2]
    src = _source(clip, 3)
    white = np.all(src[2].astype(int) >= 235, axis=2)
    assert (req["mask"][white] == 1).all(), "keyed pixels are repainted whatever the motion says (union)"
    assert (req["mask"] == 0).any()


class FakeMidas:
    """Stands in for a MiDaS network: raw inverse depth = the frame's luma (bright = near)."""

    def __init__(self):
        self.calls = 0

    def predict(self, rgb):
        self.calls += 1
        return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


class DepthRenderer(ProxyRenderer):
    """A renderer that offers its host's depth model, as the WebUI adapter does."""

    def __init__(self):
        super().__init__()
        self.midas = FakeMidas()
        self.kinds = []

    def depth_estimator(self, kind):
        self.kinds.append(kind)
        return self.midas


def test_user_depth_folder_restricts_changes_to_near_pixels(clip, tmp_path):
    folder = tmp_path / "depth_in"
    folder.mkdir()
    for i in range(4):
        d = np.zeros((64, 96), np.uint8)
        d[:, :48] = 255  # left half near
        cv2.imwrite(str(folder / f"depth_{i:04d}.png"), d)
    s = _settings(clip, tmp_path, max_frames=4, depth_mask=True, depth_source=str(folder), depth_low_cut=128,
                  mask_usage="spatial", seed_mode="increment")
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    src0 = _source(clip, 1)[0]
    outs = [job.read_frame("pass1", i) for i in range(4)]
    for o in outs:
        assert np.array_equal(o[:, 48:], src0[:, 48:]), "far pixels never change"
    assert not np.array_equal(outs[2][:, :48], outs[1][:, :48]), "near pixels are rendered"
    m = cv2.imread(str(res.job_dir / "frames" / "masks" / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert (m[:, :48] == 255).all() and (m[:, 48:] == 0).all()
    with pytest.raises(Vid2VidError, match="frame 4"):  # too few depth maps: found before any frame
        run_job(s.replace(max_frames=6, output_dir=str(tmp_path / "b")), ProxyRenderer())


def test_model_depth_is_cached_once_per_frame_and_resumes_exactly(clip, tmp_path):
    kw = dict(depth_mask=True, depth_model="midas_v21_small", depth_low_cut=100, motion_mask=True,
              fdc_mode="mean", loopback_passes=2)
    r = DepthRenderer()
    full = run_job(_settings(clip, tmp_path / "a", **kw), r)
    assert r.kinds == ["midas_v21_small"]
    assert r.midas.calls == 24, "depth runs once per frame; pass 2 reads the cache"
    assert len(list((full.job_dir / "depth").glob("*.png"))) == 24
    masks = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((full.job_dir / "frames/masks").glob("*.png"))]
    assert any((m == 0).any() for m in masks[1:]), "the dark background is far: it may not change"
    s = _settings(clip, tmp_path / "b", **kw)
    stop = StopAfter(9, "pass1")
    part = run_job(s, DepthRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted"
    r2 = DepthRenderer()
    resumed = run_job(s, r2)
    assert r2.midas.calls < 24, "the resumed run reuses the cached depth"
    for p in ("pass1", "pass2", "masks"):
        assert _frames(full.job_dir, p) == _frames(resumed.job_dir, p)


def test_missing_midas_weights_name_the_expected_file(clip, tmp_path):
    empty = tmp_path / "midas"
    empty.mkdir()
    s = _settings(clip, tmp_path, max_frames=2, depth_mask=True, depth_model="dpt_hybrid", depth_weights=str(empty))
    with pytest.raises(Vid2VidError, match="dpt_hybrid-midas-501f0c75.pt"):
        run_job(s, ProxyRenderer())
    assert not list((tmp_path / "out").glob("*/frames/pass1/*.png"))


# ------------------------------------------------------------------------------------------ temporal


def test_flow_warp_occluded_pixels_take_the_source(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=4, init_mode="flow_warp", init_strength=1.0, flow_occlusion=True)
    run_job(s, spy)
    src = _source(clip, 4)
    occluded_total = 0
    for req in spy.requests[1:]:
        i = req["index"]
        occ = flow.occlusion_mask(*flow.bidirectional_flow(src[i - 1], src[i])) > 0
        occluded_total += occ.sum()
        assert np.array_equal(req["init"][occ], src[i][occ]), "occluded: the source, not the warped output"
    assert occluded_total > 0, "the moving square uncovers background"
    spy2 = Spy()
    run_job(s.replace(flow_occlusion=False, output_dir=str(tmp_path / "b")), spy2)
    i = 2
    occ = flow.occlusion_mask(*flow.bidirectional_flow(src[i - 1], src[i])) > 0
    assert not np.array_equal(spy2.requests[i]["init"][occ], src[i][occ]), "without occlusion: warped output"


def test_batch_count_reaches_the_host_and_samples_are_averaged(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=1, batch_size=2, batch_count=2)
    res = run_job(s, spy)
    req = spy.requests[0]
    assert req["n_iter"] == 2 and req["batch_size"] == 2 and len(req["images"]) == 4
    mean = np.mean([im.astype(np.float64) for im in req["images"]], axis=0)
    out = Job.open(res.job_dir).read_frame("pass1", 0).astype(np.float64)
    assert np.abs(out - mean).max() <= 0.5 + 1e-3, "the output is the rounded mean of the 4 samples"
    assert not np.array_equal(out, req["images"][0])


def test_temporal_blend_masked_uses_threshold_and_softness(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=3, init_mode="temporal_blend_masked", temporal_weights="1,2,1",
                  temporal_threshold=0, temporal_softness=0)
    run_job(s, spy)
    src = _source(clip, 4)
    # threshold 0, hard: any luma difference drops the neighbour, equal pixels blend to themselves
    y = [f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) for f in src]
    init = spy.requests[1]["init"]
    changed = (np.abs(y[0] - y[1]) > 0) & (np.abs(y[2] - y[1]) > 0)
    assert changed.any()
    assert np.array_equal(init[changed], src[1][changed])


def test_colour_key_and_temporal_schedules_validate_at_settings_time(clip, tmp_path):
    with pytest.raises(ScheduleError) as err:
        _settings(clip, tmp_path, denoise_schedule="0.5 + foo")
    assert err.value.field == "denoise_schedule" and err.value.position == 7
    assert "column 7" in str(err.value)
    with pytest.raises(ScheduleError, match="steps_schedule"):
        _settings(clip, tmp_path, steps_schedule="500")  # constant: its range is known without the video
    with pytest.raises(SettingsError, match="variation_strength_schedule"):
        _settings(clip, tmp_path, variation_strength_schedule="0.5")  # seed_mode fixed: it would do nothing
    with pytest.raises(SettingsError, match="prompt_folder"):
        _settings(clip, tmp_path, prompt_schedule="0: a cat", prompt_folder=str(tmp_path))
    with pytest.raises(SettingsError, match="prompt_schedule"):
        _settings(clip, tmp_path, prompt_schedule="zero: a cat")


def test_out_of_range_schedule_fails_before_any_frame(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, denoise_schedule="0.5 + 0.1 * frame")
    with pytest.raises(ScheduleError) as err:
        run_job(s, spy)
    assert err.value.field == "denoise_schedule" and err.value.position == 1
    assert "frame 6" in str(err.value) and "column 1" in str(err.value)
    assert spy.requests == []
    assert not (tmp_path / "out").exists()  # checked over the whole plan before a job folder exists


def test_schedules_reach_the_renderer_per_frame(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=5, prompt="base", negative_prompt="nb",
                  denoise_schedule="0.2 + 0.05 * frame", steps_schedule="0: 10, 4: 14", cfg_schedule="1 + t * 24",
                  seed_schedule="100 + 2 * frame", prompt_schedule="0-1: a cat --neg ugly\n3-: a dog")
    res = run_job(s, spy)
    r = spy.requests
    assert [q["denoise"] for q in r] == pytest.approx([0.2, 0.25, 0.3, 0.35, 0.4])
    assert [q["steps"] for q in r] == [10, 11, 12, 13, 14]
    assert [q["cfg"] for q in r] == pytest.approx([1, 2, 3, 4, 5])
    assert [q["seed"] for q in r] == [100, 102, 104, 106, 108]
    assert [(q["prompt"], q["negative"]) for q in r] == [("a cat", "ugly"), ("a cat", "ugly"), ("base", "nb"),
                                                         ("a dog", "nb"), ("a dog", "nb")]
    rec = Job.open(res.job_dir).manifest["frames"]["pass1"]
    assert [f["steps"] for f in rec] == [10, 11, 12, 13, 14] and rec[3]["prompt"] == "a dog"


def test_prompt_folder_reaches_the_renderer(clip, tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    for i, text in enumerate(["red --neg dull", "green", "blue"]):
        (folder / f"{i:06d}.txt").write_text(text, encoding="utf-8")
    spy = Spy()
    run_job(_settings(clip, tmp_path, max_frames=3, negative_prompt="nb", prompt_folder=str(folder)), spy)
    assert [(q["prompt"], q["negative"]) for q in spy.requests] == [("red", "dull"), ("green", "nb"),
                                                                    ("blue", "nb")]
    with pytest.raises(SettingsError, match="000003.txt"):  # a missing file is found before any frame
        run_job(_settings(clip, tmp_path / "b", max_frames=4, prompt_folder=str(folder)), Spy())


def test_fixed_variation_resolves_the_variation_seed_once(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=3, seed_mode="fixed_variation", variation_seed=-1,
                  variation_strength=0.3, variation_strength_schedule="0.1 * frame")
    res = run_job(s, spy)
    var = Job.open(res.job_dir).manifest["resolved_variation_seed"]
    assert 0 <= var < 2**32
    assert [q["seed"] for q in spy.requests] == [1234] * 3
    assert [q["subseed"] for q in spy.requests] == [(var + i) % 2**32 for i in range(3)]
    assert [q["subseed_strength"] for q in spy.requests] == pytest.approx([0.0, 0.1, 0.2])


def test_loopback_alpha_schedule_uses_the_loop_variable(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=3, loopback_passes=2, loopback_alpha_schedule="0 if loop == 0 else 1")
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    src = _source(clip, 3)
    for i in range(3):
        assert np.array_equal(job.read_frame("pass1", i), src[i]), "alpha 0: the pass keeps its input"
    assert not np.array_equal(job.read_frame("pass2", 1), src[1]), "alpha 1: the render itself"


def test_temporal_weights_schedule_zero_leaves_the_centre_frame(clip, tmp_path):
    spy = Spy()
    s = _settings(clip, tmp_path, max_frames=3, init_mode="temporal_blend", temporal_weights="1,2,1",
                  temporal_weights_schedule="0 if frame == 1 else 1")
    run_job(s, spy)
    src = _source(clip, 4)
    assert np.array_equal(spy.requests[1]["init"], src[1])
    f = [x.astype(np.float32) for x in src]
    expected1 = np.floor((f[0] + 2 * f[1] + f[2]) / 4 + 0.5)
    assert np.abs(spy.requests[1]["init"] - expected1).max() > 10, "scale 1 would have blended the neighbours"
    # frame 2 is the last of the job (max_frames 3): its missing right neighbour is left out, 1,2 renormalised
    expected2 = np.floor((f[1] + 2 * f[2]) / 3 + 0.5)
    assert np.abs(spy.requests[2]["init"] - expected2).max() <= 1


def test_merge_luma_share_keeps_the_source_luminance_at_zero(clip, tmp_path):
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    src = _source(clip, 3)
    diffs = {}
    for share in (0.0, 1.0):
        spy = Spy()
        run_job(_settings(clip, tmp_path / str(share), max_frames=3, init_mode="temporal_merge", init_strength=1.0,
                          merge_luma_share=share), spy)
        out1 = Job.open(next((tmp_path / str(share) / "out").iterdir())).read_frame("pass1", 1)
        init = spy.requests[2]["init"].astype(np.float32)
        diffs[share] = (np.abs(init @ luma - src[2].astype(np.float32) @ luma),
                        np.abs(init @ luma - out1.astype(np.float32) @ luma))
    # share 0: the luminance is the source's (up to rounding and clipping of the colour channels)
    assert np.median(diffs[0.0][0]) <= 1.0
    # share 1 with strength 1: the luminance is the previous output's
    assert np.median(diffs[1.0][1]) <= 1.0 and np.median(diffs[1.0][0]) > 1.0


def test_save_each_pass_writes_every_earlier_pass(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=4, loopback_passes=3, save_each_pass=True)
    res = run_job(s, ProxyRenderer())
    stem = res.video_path.stem
    for k in (1, 2):
        p = res.job_dir / f"{stem}-pass{k}.mp4"
        assert p.is_file()
        assert video.probe(p).frame_count == 4
    assert not (res.job_dir / f"{stem}-pass3.mp4").exists(), "the last pass is the result video"


# ------------------------------------------------------------------------------------------ resume


RESUME_CASES = {
    "flow_warp_occlusion": ({"init_mode": "flow_warp", "flow_occlusion": True, "init_strength": 0.7}, 1),
    "masks_depth_off": ({"motion_mask": True, "fdc_mode": "mean_std", "mask_usage": "spatial",
                         "depth_mask": False}, 1),
    "colour_key_user_mask": ({"colour_key": True, "colour_key_target": "#282828", "colour_key_range": 8,
                              "colour_key_fill": "noise", "colour_key_noise": 0.5, "user_mask_kind": "image",
                              "mask_usage": "delta", "motion_mask": True, "colour_key_op": "remove"}, 1),
    "schedules": ({"denoise_schedule": "0.3 + 0.2 * sin(t * 3)", "seed_schedule": "7 + frame // 3",
                   "cfg_schedule": "0: 5, 23: 9", "init_mode": "temporal_blend",
                   "temporal_weights_schedule": "0.5 + 0.5 * cos(frame)",
                   "prompt_schedule": "0-9: a\n10-: b"}, 1),
    "loopback3_stop_in_pass2": ({"loopback_passes": 3, "loopback_alpha_schedule": "0.4 + 0.2 * loop",
                                 "init_mode": "previous_output", "save_each_pass": True,
                                 "colour_coherence": True}, 2),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_interrupted_then_resumed_equals_uninterrupted(clip, tmp_path, case):
    extra, stop_pass = RESUME_CASES[case]
    extra = dict(extra)
    if extra.get("user_mask_kind") == "image":
        m = np.zeros((64, 96), np.uint8)
        m[:, 20:80] = 255
        cv2.imwrite(str(tmp_path / "user.png"), m)
        extra["user_mask_path"] = str(tmp_path / "user.png")
    full = run_job(_settings(clip, tmp_path / "a", **extra), ProxyRenderer())
    s = _settings(clip, tmp_path / "b", **extra)
    stop = StopAfter(7, f"pass{stop_pass}")
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted"
    resumed = run_job(s, ProxyRenderer())
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    passes = extra.get("loopback_passes", 1)
    for p in range(1, passes + 1):
        a, b = _frames(full.job_dir, f"pass{p}"), _frames(resumed.job_dir, f"pass{p}")
        assert len(a) == 24 and a == b, f"pass {p} differs after resume"
    assert _frames(full.job_dir, "masks") == _frames(resumed.job_dir, "masks")
    if extra.get("save_each_pass"):
        stem = resumed.video_path.stem
        assert (resumed.job_dir / f"{stem}-pass1.mp4").is_file() and (resumed.job_dir / f"{stem}-pass2.mp4").is_file()


# ------------------------------------------------------------------------------------------ strategies


@pytest.mark.parametrize("name", list(params.STRATEGIES))
def test_every_strategy_runs_end_to_end(clip, tmp_path, name):
    s = _settings(clip, tmp_path, max_frames=6, **params.STRATEGIES[name])
    res = run_job(s, ProxyRenderer())
    assert res.status == "done" and res.frames_done == 6
    assert video.probe(res.video_path).frame_count == 6


def test_strategies_are_complete_and_distinct():
    keys = {frozenset(v) for v in params.STRATEGIES.values()}
    assert {"every_frame", "keyframes_adaptive"} <= params.STRATEGIES.keys()
    values = [tuple(sorted(v.items())) for v in params.STRATEGIES.values()]
    assert len(set(values)) == len(values), "no two presets are the same"
    # each preset sets every strategy-deciding field, so presets do not leak into each other
    assert all(params._PLAIN.keys() <= k for k in keys)
    assert params.STRATEGIES["fdc_vid2vid"]["sigma_schedule"] == "karras"
    assert params.STRATEGIES["fdc_vid2vid"]["sigma_max"] == 1.0
    assert params.STRATEGIES["loopback_temporal_blend"]["loopback_passes"] >= 2


def test_colour_coherence_restarts_at_each_scene_cut(tmp_path):
    """Two shots: the second is matched to its own first frame, not to the first shot's colours; a job
    resumed inside the second shot finds the same reference again."""
    path = make_two_shot_clip(tmp_path / "cuts.mp4")
    base = dict(input=str(path), output_dir=str(tmp_path / "a"), width=64, height=64, seed=1, denoise=0.3,
                colour_coherence=True)
    full = run_job(Settings().replace(**base), ProxyRenderer())
    job = Job.open(full.job_dir)
    assert job.manifest["colour_refs"]["pass1"] == [6]
    assert sorted(job.manifest["colour_ref_sources"]["pass1"]) == ["0", "6"]  # each shot's source colours
    late = job.read_frame("pass1", 9).astype(float)
    assert late[..., 2].mean() > 2 * late[..., 0].mean()  # still blue: not pulled to the red shot
    seen = {"n": 0}
    b = Settings().replace(**{**base, "output_dir": str(tmp_path / "b")})
    run_job(b, ProxyRenderer(), should_stop=lambda: seen["n"] >= 8, progress=lambda p: seen.update(n=p.done))
    resumed = run_job(b, ProxyRenderer())
    a_frames = sorted((full.job_dir / "frames" / "pass1").glob("*.png"))
    b_frames = sorted((resumed.job_dir / "frames" / "pass1").glob("*.png"))
    assert [f.read_bytes() for f in a_frames] == [f.read_bytes() for f in b_frames]


def test_a_failure_before_the_first_frame_marks_the_job_failed(clip, tmp_path):
    s = _settings(clip, tmp_path, depth_mask=True, depth_weights=str(tmp_path / "missing.pt"))
    with pytest.raises(Vid2VidError):
        run_job(s, ProxyRenderer())
    job = Job.open(next((tmp_path / "out").iterdir()))
    assert job.status == "failed" and job.frames_done("pass1") == 0
