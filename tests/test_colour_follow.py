"""Colour coherence that follows the source (``colour_follow_source``, lib_vid2vid.blend.follow_source): the first
frame's colours moved by the source's change since, so a fade or a light change in the source reaches the output
and only the render's own colour drift is taken out."""
from fractions import Fraction

import cv2
import numpy as np
import pytest

from lib_vid2vid import blend
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job
from tests.clips import texture, write_h264


def _lab_l(rgb: np.ndarray) -> float:
    """Mean L* (0..100) by OpenCV's own conversion, independent of lib_vid2vid.blend."""
    return float(cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0].mean())


def _job(clip, tmp_path, name, **kw):
    """Every frame rendered unless ``kw`` asks for keyframes."""
    s = Settings().replace(**{"input": str(clip), "output_dir": str(tmp_path / name), "width": 96, "height": 64,
                              "seed": 7, "denoise": 0.5, "colour_coherence": True, "keyframe_mode": "off", **kw})
    res = run_job(s, ProxyRenderer())
    assert res.status == "done"
    job = Job.open(res.job_dir)
    return job, [job.read_frame("pass1", i) for i in range(res.frames_done)]


def _source(clip, n):
    from lib_vid2vid import video
    return [rgb for _, rgb in zip(range(n), (f for _, f in video.iter_frames(clip, size=(96, 64))))]


def test_follow_source_moves_the_reference_means_by_the_source_change_and_keeps_its_spread():
    ref = blend.LabStats((50.0, 4.0, -3.0), (20.0, 5.0, 6.0))
    t = blend.follow_source(ref, (40.0, 1.0, 1.0), (30.0, 2.5, -1.0))
    assert t.mean == pytest.approx((40.0, 5.5, -5.0)) and t.std == ref.std
    assert blend.follow_source(ref, (40.0, 1.0, 1.0), (40.0, 1.0, 1.0)) == ref  # an unchanged source: pinned


def test_source_means_are_those_of_the_whole_frame_measured_small():
    img = texture(360, 480, seed=3)
    whole = blend.lab_stats(img).mean
    small = blend.source_lab_means(img)
    assert small == pytest.approx(whole, abs=0.6)  # L* 0..100, a* b* about -100..100
    little = texture(64, 96, seed=3)
    assert blend.source_lab_means(little) == pytest.approx(blend.lab_stats(little).mean, abs=1e-9)


def test_a_fade_in_the_source_reaches_the_output_only_when_the_colours_follow_it(tmp_path):
    """A still textured picture fading from full light to 55 %: pinned to the first frame, the output keeps its
    light; following the source, the output's L* falls with the source's."""
    base = texture(64, 96, seed=5).astype(np.float32)
    frames = [np.clip(base * (1 - 0.04 * i), 0, 255).astype(np.uint8) for i in range(12)]
    clip = write_h264(tmp_path / "fade.mp4", frames, Fraction(12), {"crf": "10"})
    src = [_lab_l(f) for f in _source(clip, 12)]
    assert src[0] - src[-1] > 12  # the fade is large in L*
    _, follow = _job(clip, tmp_path, "follow")
    _, pinned = _job(clip, tmp_path, "pinned", colour_follow_source=False)
    f, p = [_lab_l(o) for o in follow], [_lab_l(o) for o in pinned]
    for i in range(1, 12):
        assert abs((f[i] - f[0]) - (src[i] - src[0])) < 1.0, (i, f, src)
        assert abs(p[i] - p[0]) < 1.0, (i, p)
    # keyframes (the default): the keyframes and the frames carried between them follow the fade too
    _, keyed = _job(clip, tmp_path, "keyed", keyframe_mode="adaptive")
    k = [_lab_l(o) for o in keyed]
    for i in range(1, 12):
        assert abs((k[i] - k[0]) - (src[i] - src[0])) < 1.0, (i, k, src)


def test_the_reference_source_is_kept_for_a_resumed_job(tmp_path):
    base = texture(64, 96, seed=5).astype(np.float32)
    frames = [np.clip(base * (1 - 0.04 * i), 0, 255).astype(np.uint8) for i in range(12)]
    clip = write_h264(tmp_path / "fade.mp4", frames, Fraction(12), {"crf": "10"})
    job, full = _job(clip, tmp_path, "a")
    kept = job.manifest["colour_ref_sources"]["pass1"]["0"]
    assert kept == pytest.approx(list(blend.source_lab_means(_source(clip, 1)[0])))
    s = Settings().replace(input=str(clip), output_dir=str(tmp_path / "b"), width=96, height=64, seed=7,
                           denoise=0.5, colour_coherence=True, keyframe_mode="off")
    seen = {"n": 0}
    part = run_job(s, ProxyRenderer(), should_stop=lambda: seen["n"] >= 5, progress=lambda p: seen.update(n=p.done))
    assert part.status == "interrupted"
    resumed = run_job(s, ProxyRenderer())
    again = [Job.open(resumed.job_dir).read_frame("pass1", i) for i in range(12)]
    assert all(np.array_equal(a, b) for a, b in zip(full, again))
