"""Export (lib_vid2vid.export): stage choice, formats with audio, comparison video, contact sheet, zip,
keep_frames, and the streaming encode of the last pass when no post stage runs."""

import zipfile
from fractions import Fraction

import numpy as np
import pytest

from lib_vid2vid import export, video
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import make_plan, run_job
from lib_vid2vid.postprocess import source_frames
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job, read_png


def _settings(clip, tmp_path, **kw):
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=3, denoise=0.6)
    base.update(kw)
    return Settings().replace(**base)


def _png_folder(path):
    return [read_png(p) for p in sorted(path.glob("0*.png"))]


def _decode(path):
    return [f for _, f in video.iter_frames(path)]


def _mad(a, b):
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.fixture(scope="module")
def post_job(tmp_path_factory):
    """One finished job with every stage on disk: masks, pass1, upscaled (Lanczos x2), interpolated (x2)."""
    from tests.clips import make_clip

    tmp = tmp_path_factory.mktemp("post")
    clip = make_clip(tmp / "clip.mp4", n_frames=24, size=(96, 64), fps=Fraction(24), audio=True)
    s = _settings(clip, tmp, upscaler="Lanczos", upscale_factor=2, interpolation_ratio="2", interpolator="linear",
                  motion_mask=True, comparison_video=False)
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    return job, s, make_plan(s, video.probe(clip)), res


@pytest.mark.parametrize(
    "choice, stage, n, size, fps",
    [
        ("final", "interpolated", 48, (192, 128), 48),
        ("interpolated", "interpolated", 48, (192, 128), 48),
        ("upscaled", "upscaled", 24, (192, 128), 24),
        ("rendered", "pass1", 24, (96, 64), 24),
        ("source", "source", 24, (96, 64), 24),
        ("masks", "masks", 24, (96, 64), 24),
    ],
)
def test_each_export_stage_choice(post_job, choice, stage, n, size, fps):
    job, s, plan, _ = post_job
    s2 = s.replace(export_stage=choice, output_format="png")  # lossless: frames compare exactly
    target = export.export_target(s2, 1)
    assert target == stage
    info = export.target_info(job, s2, plan, 1, target)
    assert (info.total, info.fps) == (n, Fraction(fps))
    exp = export.StreamingExport(job, s2, plan, target, info=info, comparison=False, sheet=False)
    exp.feed_all()
    out = _png_folder(exp.close())
    assert len(out) == n and out[0].shape[:2] == (size[1], size[0])
    assert (exp.path / "fps.txt").read_text().strip() == f"{fps}/1"
    if stage == "source":
        expect = list(source_frames(job, s2, plan))
    else:
        expect = [read_png(job.frame_path(stage, i)) for i in range(n)]
    assert all(np.array_equal(a, b) for a, b in zip(out, expect))
    if stage == "masks":
        assert np.all(out[0] == 255) and 0 < out[5].mean() < 255, "frame 0 may change everywhere; later: motion"


@pytest.mark.parametrize("fmt", ["mp4", "webm", "png", "gif"])
def test_audio_survives_every_format_that_carries_it(post_job, fmt):
    job, s, plan, _ = post_job
    s2 = s.replace(output_format=fmt, export_stage="interpolated")
    info = export.target_info(job, s2, plan, 1, "interpolated")
    exp = export.StreamingExport(job, s2, plan, "interpolated", info=info, comparison=False, sheet=False)
    exp.feed_all()
    path = exp.close()
    if fmt == "png":
        assert len(_png_folder(path)) == 48
        assert abs(video.audio_duration(path / "audio.m4a") - 1.0) <= 1 / 48
        return
    probe = video.probe(path)
    assert probe.frame_count == 48
    if fmt == "gif":
        assert not probe.audio  # GIF cannot hold sound
        return
    assert probe.fps == Fraction(48) and abs(probe.duration - 1.0) <= 1 / 48
    assert probe.audio and abs(video.audio_duration(path) - 1.0) <= 1 / 48


def test_comparison_video_has_source_and_result_side_by_side(clip, tmp_path):
    res = run_job(_settings(clip, tmp_path, motion_mask=True, comparison_masks=True), ProxyRenderer())
    m = Job.open(res.job_dir).manifest
    cmp_path = res.job_dir / m["outputs"]["comparison"]
    assert cmp_path.name == "clip-vid2vid-compare.mp4"
    info = video.probe(cmp_path)
    assert info.fps == Fraction(24) and info.frame_count == 24 and info.audio
    strip = 16  # label strip: max(16, 64 / 14) px, even
    assert (info.width, info.height) == (3 * 96, strip + 64)
    frames = _decode(cmp_path)
    job = Job.open(res.job_dir)
    plan = make_plan(Settings.from_dict(m["settings"]), video.probe(clip))
    src = list(source_frames(job, Settings.from_dict(m["settings"]), plan))
    for k in (3, 17):
        f = frames[k]
        left, right, third = f[strip:, :96], f[strip:, 96:192], f[strip:, 192:]
        result = read_png(job.frame_path("pass1", k))
        mask = read_png(job.frame_path("masks", k))
        assert _mad(left, src[k]) < 4 and _mad(right, result) < 4 and _mad(third, mask) < 6
        assert _mad(left, result) > 3 * _mad(left, src[k]), "the halves differ: source on the left"
        assert _mad(right, src[k]) > 3 * _mad(right, result), "result on the right"
    labels = frames[0][:strip]
    for x0 in (0, 96, 192):
        assert labels[:, x0:x0 + 48].max() > 200, "each panel has a white label"


def test_comparison_of_an_interpolated_result_follows_its_rate(post_job):
    job, s, plan, _ = post_job
    s2 = s.replace(comparison_video=True)
    info = export.target_info(job, s2, plan, 1, "interpolated")
    exp = export.StreamingExport(job, s2, plan, "interpolated", info=info, sheet=False)
    exp.feed_all()
    exp.close()
    cmp_info = video.probe(exp.outputs["comparison"])
    assert cmp_info.frame_count == 48 and cmp_info.fps == Fraction(48) and abs(cmp_info.duration - 1.0) < 1e-6
    strip = 16  # panels are 192x128: even(max(16, 128 / 14)) = 16
    frames = _decode(exp.outputs["comparison"])
    src = list(source_frames(job, s2, plan))
    # output frame 7 (t = 3.5 source frames) shows source frame 3 beside it
    assert _mad(frames[7][strip:, :192], np.repeat(np.repeat(src[3], 2, 0), 2, 1)) < 8
    assert _mad(frames[7][strip:, :192], np.repeat(np.repeat(src[5], 2, 0), 2, 1)) > 10


def test_contact_sheet_grid(clip, tmp_path):
    res = run_job(_settings(clip, tmp_path), ProxyRenderer())
    sheet_path = res.job_dir / "clip-vid2vid-contact.png"
    sheet = read_png(sheet_path)
    assert export.sheet_indices(24) == [0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23]
    # 4 columns x 3 rows of 96x64 thumbnails with an 18 px label strip, 4 px gaps
    assert sheet.shape == (3 * (64 + 18) + 4 * 4, 4 * 96 + 5 * 4, 3)
    for k, idx in enumerate(export.sheet_indices(24)):
        r, c = divmod(k, 4)
        x, y = 4 + c * 100, 4 + r * 86
        cell = sheet[y:y + 64, x:x + 96]
        assert np.array_equal(cell, read_png(res.job_dir / f"frames/pass1/{idx:06d}.png")), idx
        assert sheet[y + 64:y + 82, x:x + 40].max() > 150, "a frame number under each cell"
    lay = export.sheet_layout(5, 1024, 576)
    assert (lay["cols"], lay["rows"], lay["thumb_w"], lay["thumb_h"]) == (4, 2, 256, 144)
    assert export.sheet_indices(5) == [0, 1, 2, 3, 4]


def test_zip_holds_results_not_frames_and_keep_frames_off_deletes_frames(clip, tmp_path):
    res = run_job(_settings(clip, tmp_path, zip_result=True, keep_frames=False, max_frames=8), ProxyRenderer())
    m = Job.open(res.job_dir).manifest
    z = res.job_dir / m["outputs"]["zip"]
    assert z.name == "clip-vid2vid.zip"
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(["clip-vid2vid.mp4", "clip-vid2vid-compare.mp4",
                                                "clip-vid2vid-contact.png", "manifest.json", "journal.jsonl",
                                                "job.log"])
        assert zf.read("clip-vid2vid.mp4") == res.video_path.read_bytes()
    # (the pipeline's final frame count may re-create an empty frames/pass1 folder: no frame files remain)
    assert not list(res.job_dir.glob("frames/**/*.png")) and m["frames_deleted"] is True
    assert video.probe(res.video_path).frame_count == 8


def test_keep_frames_off_keeps_frames_of_an_unfinished_job(clip, tmp_path):
    seen = {}
    s = _settings(clip, tmp_path, keep_frames=False, upscaler="Lanczos", max_frames=8)
    part = run_job(s, ProxyRenderer(), progress=lambda p: seen.update(p=p),
                   should_stop=lambda: seen.get("p") is not None and seen["p"].stage == "upscaled")
    assert part.status == "interrupted"
    assert len(list((part.job_dir / "frames" / "pass1").glob("*.png"))) == 8
    assert len(list((part.job_dir / "frames" / "upscaled").glob("*.png"))) == 1
    done = run_job(s, ProxyRenderer())
    assert done.status == "done" and not list(done.job_dir.glob("frames/**/*.png"))
    assert video.probe(done.video_path).width == 192


def test_no_post_stages_streams_the_last_pass(clip, tmp_path, monkeypatch):
    def no_disk_encode(self):
        raise AssertionError("the last pass should have been encoded while it rendered")

    monkeypatch.setattr(export.StreamingExport, "feed_all", no_disk_encode)
    res = run_job(_settings(clip, tmp_path), ProxyRenderer())
    assert video.probe(res.video_path).frame_count == 24
    outputs = Job.open(res.job_dir).manifest["outputs"]
    assert set(outputs) == {"video", "comparison", "contact_sheet"}
