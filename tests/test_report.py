"""The job report: the right frames are paired, the last pass is measured, report.json is written."""

import json

import pytest

from lib_vid2vid import video
from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.metrics import measure
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer, SleepRenderer
from lib_vid2vid.report import REPORT_NAME, format_report, report
from lib_vid2vid.workspace import Job
from tests.doubles import StopAfter


def _settings(clip, tmp_path, **kw):
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=7, denoise=0.5,
                # the plain pipeline: expectations here are computed without the default colour coherence
                colour_coherence=False,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def test_identity_render_pairs_each_output_with_its_own_source_frame(clip, tmp_path):
    # SleepRenderer returns the init, i.e. the source frame: if the report decodes the source at the job's
    # rate and start (12 fps from 0.25 s of a 24 fps clip), every pair is identical and both SSIMs are 1;
    # decoding at 24 fps or from 0 s would pair different frames of the moving square and give less.
    s = _settings(clip, tmp_path, fps=12, start=0.25)
    res = run_job(s, SleepRenderer(0.0))
    assert res.status == "done" and res.frames_done == 9
    rep = report(res.job_dir)
    assert rep["frames"] == 9 and rep["total"] == 9 and rep["complete"] is True
    assert rep["stage"] == "pass1" and rep["size"] == [96, 64]
    assert rep["ssim_edge"] == 1.0 and rep["ssim_luma"] == 1.0 and rep["fidelity"] == 1.0
    # the output changes exactly where the source does, so no flicker over still regions
    assert rep["flicker"] == pytest.approx(0.0, abs=1e-3)


def test_report_measures_the_last_pass_and_writes_report_json(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=10, init_mode="previous_output", loopback_passes=2,
                  loopback_alpha=0.6)
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    src = [f for _, f in video.iter_frames(clip, size=(96, 64))][:10]
    pass1 = [job.read_frame("pass1", i) for i in range(10)]
    pass2 = [job.read_frame("pass2", i) for i in range(10)]
    expected = measure(zip(src, pass2), max_side=512)
    other = measure(zip(src, pass1), max_side=512)
    assert expected["warp_error"] != other["warp_error"], "the two passes must differ for this test to bite"

    rep = report(job)
    assert rep["stage"] == "pass2" and rep["job"] == job.manifest["id"] and rep["source"] == str(clip.resolve())
    for key in ("frames", "size", "warp_error", "flicker", "fidelity", "ssim_edge", "ssim_luma"):
        assert rep[key] == expected[key], key
    on_disk = json.loads((res.job_dir / REPORT_NAME).read_text())
    assert on_disk == rep


def test_unfinished_job_is_measured_up_to_its_last_frame(clip, tmp_path):
    stop = StopAfter(5)
    res = run_job(_settings(clip, tmp_path, fps=12), ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert res.status == "interrupted"
    seen = []
    rep = report(res.job_dir, progress=lambda done, total: seen.append((done, total)))
    assert rep["frames"] == 5 and rep["total"] == 12 and rep["complete"] is False
    assert seen == [(k, 5) for k in range(1, 6)]
    assert "5 of 12" in format_report(rep)


def test_max_side_and_no_write(clip, tmp_path):
    res = run_job(_settings(clip, tmp_path, max_frames=4, report=False), ProxyRenderer())
    assert res.report is None and not (res.job_dir / REPORT_NAME).exists()  # report=False: none measured
    rep = report(res.job_dir, max_side=48, write=False, fidelity="luma")
    assert rep["size"] == [48, 32] and rep["fidelity_kind"] == "luma" and rep["fidelity"] == rep["ssim_luma"]
    assert not (res.job_dir / REPORT_NAME).exists()


def test_job_without_frames_or_source_gives_one_line_errors(clip, tmp_path):
    res = run_job(_settings(clip, tmp_path, max_frames=3), ProxyRenderer())
    moved = clip.with_name("elsewhere.mp4")
    clip.rename(moved)
    with pytest.raises(Vid2VidError, match="source video .* is gone") as err:
        report(res.job_dir)
    assert "\n" not in str(err.value)
    moved.rename(clip)
    (res.job_dir / "frames" / "pass1" / "000000.png").unlink()
    with pytest.raises(Vid2VidError, match="no finished frame in pass1"):
        report(res.job_dir)


def test_format_report_line():
    rep = {"frames": 48, "size": [384, 288], "warp_error": 0.000970266, "flicker": 0.00312424,
           "fidelity": 0.585594, "fidelity_kind": "edge", "complete": True, "total": 48}
    assert format_report(rep) == ("warp error 0.00097, flicker 0.0031, fidelity (edge SSIM) 0.586 over 48 "
                                  "frames at 384x288")
    assert "n/a" in format_report({**rep, "warp_error": None})


def test_streaming_report_equals_the_report_from_disk_even_after_resume(clip, tmp_path):
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import ProxyRenderer
    from lib_vid2vid.report import report

    s = Settings().replace(input=str(clip), output_dir=str(tmp_path), width=96, height=64, seed=3, max_frames=12,
                           init_mode="flow_warp", keyframe_mode="off")
    seen = {"n": 0}

    def progress(p):
        seen["n"] = p.done

    part = run_job(s, ProxyRenderer(), should_stop=lambda: seen["n"] >= 5, progress=progress)
    assert part.status == "interrupted" and part.report is None
    done = run_job(s, ProxyRenderer())
    assert done.report["frames"] == 12 and done.report["complete"]
    from_disk = report(done.job_dir, write=False)
    for key in ("warp_error", "flicker", "fidelity", "ssim_luma"):
        assert done.report[key] == pytest.approx(from_disk[key], rel=1e-5), key
    assert (done.job_dir / "report.json").is_file()


def test_a_jobs_report_is_measured_at_most_256_pixels_wide_and_says_so(clip, tmp_path):
    """The streaming report downscales (it costs CPU beside the render); the size it measured is reported."""
    res = run_job(_settings(clip, tmp_path, max_frames=3, width=320, height=192), SleepRenderer(0.0))
    assert res.report["size"] == [256, 154] and res.report["frames"] == 3
    assert "at 256x154" in format_report(res.report)
    assert report(res.job_dir, write=False)["size"] == [256, 154]  # measured again: the same size


@pytest.mark.parametrize("motion, colour", [(0.65, False), (0.65, True), (0.0, False)],
                         ids=["cuts", "cuts-found-by-colour-coherence", "histograms-miss-it"])
def test_the_pair_across_a_scene_cut_is_not_counted_as_flicker(tmp_path, monkeypatch, motion, colour):
    """Two shots in the same light (only the motion test finds the cut): the report leaves the pair across the
    cut out of the warp error and the worst frames, and says where the cut is; the report read again from disk
    agrees with the one measured while rendering. With colour coherence, which looks for cuts itself, the report
    takes its answers instead of looking at each frame a second time."""
    from lib_vid2vid import scene_cuts
    from lib_vid2vid.metrics import WarpErrorMeter
    from tests.clips import SAME_LIGHT_CUT, make_same_light_cut_clip

    cut_clip = make_same_light_cut_clip(tmp_path / "cut.mp4")
    looks = []
    features = scene_cuts.CutDetector.features
    monkeypatch.setattr(scene_cuts.CutDetector, "features", lambda self, rgb: looks.append(1) or features(self, rgb))
    res = run_job(_settings(cut_clip, tmp_path, scene_cut_motion=motion, colour_coherence=colour), ProxyRenderer())
    assert len(looks) == 12  # each source frame looked at once: by colour coherence, or by the report
    rep = res.report
    job = Job.open(res.job_dir)
    src = [f for _, f in video.iter_frames(cut_clip, size=(96, 64))]
    meter = WarpErrorMeter()
    pair = {t: meter.update(s, job.read_frame("pass1", t)) for t, s in enumerate(src)}  # pair t: frames t-1, t
    others = [e for t, e in pair.items() if e is not None and t != SAME_LIGHT_CUT]
    assert pair[SAME_LIGHT_CUT] > 3 * max(others), "the pair across the cut must stand out for this test to bite"
    if motion:
        assert rep["scene_cuts"] == [SAME_LIGHT_CUT]
        assert rep["warp_error"] == pytest.approx(sum(others) / len(others), rel=1e-5)
        assert SAME_LIGHT_CUT not in [i for i, _ in rep["worst_frames"]]
        assert "1 scene cut, not counted as flicker" in format_report(rep)
    else:  # a cut the job does not see is measured like any pair
        assert rep["scene_cuts"] == []
        assert rep["worst_frames"][0][0] == SAME_LIGHT_CUT
    again = report(job, write=False)
    assert again["scene_cuts"] == rep["scene_cuts"]
    assert again["warp_error"] == pytest.approx(rep["warp_error"], rel=1e-5)
    job.close()


def test_the_benchmarks_report_counts_every_pair(tmp_path):
    """``cuts=False`` (helpers/bench_consistency.py's figures): the pair across the cut counts, as it always did."""
    from lib_vid2vid.metrics import measure as measure_all
    from tests.clips import make_same_light_cut_clip

    cut_clip = make_same_light_cut_clip(tmp_path / "cut.mp4")
    res = run_job(_settings(cut_clip, tmp_path), ProxyRenderer())
    job = Job.open(res.job_dir)
    src = [f for _, f in video.iter_frames(cut_clip, size=(96, 64))]
    every = measure_all(((s, job.read_frame("pass1", t)) for t, s in enumerate(src)), max_side=256)
    plain = report(job, write=False, cuts=False)
    assert plain["scene_cuts"] == [] and res.report["scene_cuts"]
    assert plain["warp_error"] == every["warp_error"] and plain["flicker"] == every["flicker"]
    assert plain["warp_error"] > res.report["warp_error"]
    job.close()
