"""Scene cuts (lib_vid2vid.scene_cuts): the histogram test, the motion test, and the parts that must not reach across
a cut (keyframes, colour coherence, reset_at_cuts, the post stages) agreeing on them."""

from __future__ import annotations

import numpy as np
import pytest

from lib_vid2vid import keyrun, postprocess
from lib_vid2vid import scene_cuts as sc
from lib_vid2vid.loop import make_plan
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.video import probe
from lib_vid2vid.workspace import Job
from tests.clips import SAME_LIGHT_CUT, make_same_light_cut_clip, noise_canvas, same_light_cut_frames


def _u(a: np.ndarray, b: np.ndarray) -> float | None:
    return sc.unexplained_texture(sc.small_grey(a), sc.small_grey(b))


def test_the_motion_explains_a_moved_frame_and_not_another_picture():
    canvas = noise_canvas(216, 600, seed=1)
    a = canvas[:, :384]
    for step in (4, 16, 48, 128):  # up to a third of the frame's width a frame
        assert _u(a, canvas[:, step:step + 384]) < 0.4, step
    assert _u(a, noise_canvas(216, 384, seed=2)) > 0.85
    assert _u(a, a) == 0.0


def test_the_answer_for_a_pair_does_not_depend_on_the_pairs_before():
    a, b = noise_canvas(216, 384, seed=1), noise_canvas(216, 384, seed=2)
    first = _u(a, b)
    # small unrelated pictures, whose phase correlation reports shifts larger than the frame
    shots = [noise_canvas(64, 64, seed=s) for s in range(10, 20)]
    sc.find_cuts(shots, 0.4, 0.65)
    assert _u(a, b) == first


def test_too_little_texture_says_nothing():
    flat = np.full((64, 96, 3), 120, np.uint8)
    assert _u(flat, flat) is None
    speck = flat.copy()
    speck[30, 40] = 250  # texture in a 7x7 window: under 1 % of the frame
    assert _u(flat, speck) is None


def test_a_cut_between_shots_of_the_same_light_is_found_by_the_motion_test_only():
    frames = same_light_cut_frames()
    assert sc.scene_cut_distance(frames[SAME_LIGHT_CUT - 1], frames[SAME_LIGHT_CUT]) < 0.2  # threshold 0.4
    assert sc.find_cuts(frames, 0.4, 0.0) == []
    assert sc.find_cuts(frames, 0.4, 0.65) == [SAME_LIGHT_CUT]


def test_fast_motion_and_an_object_crossing_the_frame_are_no_cut():
    pan = noise_canvas(216, 384 + 96 * 8, seed=3)
    panning = [pan[:, 96 * i:96 * i + 384] for i in range(8)]  # 96 px a frame: a quarter of the width
    assert sc.find_cuts(panning, 0.4, 0.65) == []
    background, thing = noise_canvas(216, 384, seed=4), noise_canvas(140, 140, seed=5)
    crossing = []
    for i in range(8):  # a 140 px object (a quarter of the frame) crossing a still shot, 30 px a frame
        f = background.copy()
        x = 20 + 30 * i
        f[40:180, x:x + 140] = thing
        crossing.append(f)
    assert sc.find_cuts(crossing, 0.4, 0.65) == []


def test_a_new_histogram_is_a_cut_with_or_without_the_motion_test():
    frames = same_light_cut_frames()
    frames[SAME_LIGHT_CUT:] = [(f // 3).astype(np.uint8) for f in frames[SAME_LIGHT_CUT:]]  # another light
    assert sc.scene_cut_distance(frames[SAME_LIGHT_CUT - 1], frames[SAME_LIGHT_CUT]) > 0.4
    assert sc.find_cuts(frames, 0.4, 0.0) == [SAME_LIGHT_CUT] == sc.find_cuts(frames, 0.4, 0.65)
    assert sc.find_cuts(frames, 1.0, 0.0) == []  # threshold 1: never by histograms


def test_a_fade_within_a_shot_is_no_cut_unless_asked_or_the_histograms_decide_alone():
    """A slow pan fading in from a dark start: the dark frames' histograms jump from frame to frame (d > 0.4), but
    each frame, moved along the motion, explains most of the next one's texture, so the motion test vetoes them. A
    real cut after the fade is still found, and with the motion test off the histograms decide alone (as before)."""
    pan = noise_canvas(216, 384 + 4 * 16, seed=6)
    # from 2/16 of the light (a darker first frame has too little texture for the motion test to tell) to all of it
    fade = [(pan[:, 4 * i:4 * i + 384].astype(np.float32) * ((i + 1) / 16)).astype(np.uint8) for i in range(1, 16)]
    jumps = [i for i in range(1, len(fade)) if sc.scene_cut_distance(fade[i - 1], fade[i]) > 0.4]
    assert len(jumps) >= 2, "the test needs histogram jumps inside the fade"
    assert sc.find_cuts(fade, 0.4, 0.65) == []
    assert sc.find_cuts(fade, 0.4, 0.0) == jumps
    assert sc.find_cuts(fade, 0.4, 0.65, light=True) == jumps  # scene_cut_light: every jump, as before
    other = noise_canvas(216, 384, seed=7)
    assert sc.find_cuts([*fade, other, other], 0.4, 0.65) == [len(fade)]
    # a job stored before the setting keeps the old rule; a new one has the veto
    stored = Settings().to_dict()
    del stored["scene_cut_light"]
    assert sc.CutDetector.of(Settings.from_stored(stored)).light is True
    assert sc.CutDetector.of(Settings()).light is False


def test_streamed_and_pairwise_answers_agree():
    frames = same_light_cut_frames()
    det = sc.CutDetector(0.4, 0.65)
    streamed = [det.step(f) for f in frames]
    pairwise = [False] + [det.between(det.features(a), det.features(b)) for a, b in zip(frames, frames[1:])]
    assert streamed == pairwise
    assert [i for i, c in enumerate(streamed) if c] == [SAME_LIGHT_CUT]


@pytest.fixture
def cut_clip(tmp_path):
    return make_same_light_cut_clip(tmp_path / "same_light.mp4")


def _settings(clip, tmp_path, **kw) -> Settings:
    # every frame rendered unless a test asks for keyframes (the default renders keyframes only)
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=1, denoise=0.3,
                keyframe_mode="off")
    return Settings().replace(**{**base, **kw})


@pytest.mark.parametrize("motion, cuts", [(0.65, [SAME_LIGHT_CUT]), (0.0, [])], ids=["default", "histograms"])
def test_every_part_finds_the_same_cuts(cut_clip, tmp_path, motion, cuts):
    # the keyframe plan: a keyframe at the cut, two scene groups
    s = _settings(cut_clip, tmp_path / "k", keyframe_mode="interval", keyframe_interval=4, scene_cut_motion=motion)
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    plan = job.manifest["keyframes"]["plan"]
    assert [f for f, why in plan["reasons"].items() if why == "cut"] == [str(c) for c in cuts]
    assert len(plan["groups"]) == 1 + len(cuts)
    job.close()
    # colour coherence: a new reference at the cut
    res = run_job(_settings(cut_clip, tmp_path / "c", colour_coherence=True, scene_cut_motion=motion), ProxyRenderer())
    job = Job.open(res.job_dir)
    assert job.manifest["colour_refs"].get("pass1", []) == cuts
    # the post stages (cuts as "between i and i + 1")
    settings = Settings.from_stored(job.manifest["settings"])
    plan = make_plan(settings, probe(settings.video.input))
    assert postprocess.source_scene_cuts(job, settings, plan) == [c - 1 for c in cuts]
    job.close()
    # reset_at_cuts: the scene groups of a pass
    res = run_job(_settings(cut_clip, tmp_path / "r", reset_at_cuts=True, init_mode="previous_output",
                            scene_cut_motion=motion), ProxyRenderer())
    job = Job.open(res.job_dir)
    assert job.manifest["scene_cuts"] == cuts
    job.close()


def test_the_keyframe_dry_run_plan_uses_the_motion_test(cut_clip, tmp_path):
    from lib_vid2vid import video

    s = _settings(cut_clip, tmp_path, keyframe_mode="adaptive", keyframe_min_gap=2, keyframe_max_gap=20)
    frames = (rgb for _, rgb in video.iter_frames(str(cut_clip), size=(96, 64)))
    plan = keyrun.plan_from_settings(s, frames, 12)
    assert plan.reasons.get(SAME_LIGHT_CUT) == "cut" and plan.groups == [(0, SAME_LIGHT_CUT - 1),
                                                                          (SAME_LIGHT_CUT, 11)]


def test_a_job_stored_before_the_motion_test_keeps_the_histograms_alone():
    stored = Settings().to_dict()
    del stored["scene_cut_motion"]
    assert Settings.from_stored(stored).export.scene_cut_motion == 0.0
    assert Settings().export.scene_cut_motion == 0.65
