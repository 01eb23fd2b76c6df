"""The frame loop end to end: output video, resume byte-exactness, interruption, errors, overlap."""

import dataclasses
import json
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from lib_vid2vid import pipeline, video
from lib_vid2vid.errors import CorruptVideoError, RendererError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import Stage, make_plan, output_size, run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job
from tests.clips import draw_frame, make_clip
from tests.doubles import StopAfter


def _settings(clip, tmp_path, **kw):
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=1234,
                denoise=0.5,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _frames(job_dir, stage):
    d = job_dir / "frames" / stage
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.png"))}


def test_job_produces_video_with_audio_and_right_duration(clip, tmp_path):
    s = _settings(clip, tmp_path, fps=12)
    res = run_job(s, ProxyRenderer())
    assert res.status == "done" and res.frames_done == 12
    info = video.probe(res.video_path)
    assert (info.width, info.height) == (96, 64)
    assert info.frame_count == 12 and info.fps == Fraction(12)
    assert abs(info.duration - 1.0) <= 1 / 12
    assert info.audio, "the source audio must be carried into the result"
    assert abs(video.audio_duration(res.video_path) - info.duration) <= 1 / 12
    m = Job.open(res.job_dir).manifest
    assert m["status"] == "done" and m["stages"]["pass1"]["done"] == 12
    assert len(m["frames"]["pass1"]) == 12 and m["resolved_seed"] == 1234


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"init_mode": "flow_warp"},
        {"init_mode": "temporal_blend", "temporal_weights": "1,2,1"},
        {"fdc_mode": "mean_std", "motion_mask": True},
        {"init_mode": "temporal_merge", "colour_coherence": True, "seed_mode": "increment"},
        {"init_mode": "previous_output", "loopback_passes": 2, "loopback_alpha": 0.6},
    ],
    ids=["source", "flow_warp", "temporal_blend", "fdc_motion", "merge_colour", "loopback2"],
)
def test_interrupted_then_resumed_equals_uninterrupted(clip, tmp_path, extra):
    full = run_job(_settings(clip, tmp_path / "a", **extra), ProxyRenderer())
    passes = extra.get("loopback_passes", 1)
    # stop in the last pass, mid-way
    stop = StopAfter(5)
    s = _settings(clip, tmp_path / "b", **extra)
    calls = {"n": 0}

    def progress(p):
        calls["n"] += 1
        if p.stage == f"pass{passes}":
            stop.progress(p)

    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=progress)
    assert part.status == "interrupted" and part.frames_done == 5
    assert "resume" in part.message
    assert not list(part.job_dir.glob("*.mp4")), "no final video for an unfinished job"
    # running the same settings again resumes the same job folder
    resumed = run_job(s, ProxyRenderer())
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    for p in range(1, passes + 1):
        assert _frames(resumed.job_dir, f"pass{p}") == _frames(full.job_dir, f"pass{p}")


def test_damaged_frame_deleted_then_rerun_equals_uninterrupted(clip, tmp_path):
    """The path the damaged-frame message recommends: delete the file, run the same job again."""
    from lib_vid2vid.errors import Vid2VidError

    extra = dict(max_frames=10, init_mode="flow_warp", fdc_mode="mean", colour_coherence=True)
    full = run_job(_settings(clip, tmp_path / "a", **extra), ProxyRenderer())
    s = _settings(clip, tmp_path / "b", **extra)
    stop = StopAfter(7)
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.frames_done == 7
    job = Job.open(part.job_dir)
    damaged = job.frame_path("pass1", 3)
    damaged.write_bytes(damaged.read_bytes()[:60])  # cut short, as a crash of the disk or a copy would leave it
    with pytest.raises(Vid2VidError, match="000003.png.*damaged; delete it and resume") as err:
        run_job(s, ProxyRenderer())
    assert "\n" not in str(err.value)
    damaged.unlink()
    r = ProxyRenderer()
    res = run_job(s, r)
    assert res.job_dir == part.job_dir and res.status == "done" and res.frames_done == 10
    assert r.calls == 10 - 3  # frames 0..2 are kept, 3.. are rendered again (each follows the one before)
    assert _frames(res.job_dir, "pass1") == _frames(full.job_dir, "pass1")


def test_resume_renders_only_missing_frames(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=10)
    stop = StopAfter(4)
    run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    r = ProxyRenderer()
    res = run_job(s, r)
    assert res.frames_done == 10 and r.calls == 6


def test_new_flag_starts_a_fresh_job(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=3)
    a = run_job(s, ProxyRenderer())
    b = run_job(s, ProxyRenderer(), new=True)
    assert a.job_dir != b.job_dir
    assert _frames(a.job_dir, "pass1") == _frames(b.job_dir, "pass1")


class FailingRenderer(ProxyRenderer):
    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at

    def render(self, request):
        if request.frame_index == self.fail_at:
            raise RendererError("Cannot reach the WebUI at http://127.0.0.1:1: start it with --api")
        return super().render(request)


def test_renderer_failure_keeps_frames_and_job_resumes(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=8)
    with pytest.raises(RendererError):
        run_job(s, FailingRenderer(3))
    job = Job.open(next((tmp_path / "out").iterdir()))
    assert job.status == "failed" and "WebUI" in job.manifest["error"]
    assert job.frames_done("pass1") == 3
    res = run_job(s, ProxyRenderer())
    assert res.job_dir == job.root and res.frames_done == 8


@pytest.mark.parametrize("mode", ["off", "adaptive"])
def test_corrupt_stream_names_the_frame_and_keeps_work(tmp_path, mode):
    """Every frame rendered: the frames before the broken one are kept. Keyframes (the default): the plan reads
    the whole video before the first render, so the job fails before anything is rendered."""
    from tests.clips import make_corrupt_clip

    class Counting(ProxyRenderer):
        renders = 0

        def render(self, request):
            Counting.renders += 1
            return super().render(request)

    src = make_corrupt_clip(tmp_path / "bad.mp4", k=9)
    s = Settings().replace(input=str(src), output_dir=str(tmp_path / "out"), width=96, height=64, seed=1,
                           keyframe_mode=mode)
    with pytest.raises(CorruptVideoError) as err:
        run_job(s, Counting())
    assert err.value.frame == 9 and "9" in str(err.value)
    job = Job.open(next((tmp_path / "out").iterdir()))
    assert job.frames_done("pass1") == (err.value.frame if mode == "off" else 0)
    assert Counting.renders == (err.value.frame if mode == "off" else 0)
    assert job.status == "failed"


def test_analysis_of_next_frame_overlaps_rendering(clip, tmp_path):
    events = []
    lock = threading.Lock()

    class Recorder(Stage):
        def analyse(self, ctx):
            with lock:
                events.append(("analyse", ctx.index, threading.current_thread().name))

    class SlowRenderer(ProxyRenderer):
        def render(self, request):
            with lock:
                events.append(("render_start", request.frame_index, ""))
            time.sleep(0.05)
            with lock:
                events.append(("render_end", request.frame_index, ""))
            return super().render(request)

    run_job(_settings(clip, tmp_path, max_frames=4), SlowRenderer(), stages=[Recorder()])
    for i in range(3):
        start = events.index(("render_start", i, ""))
        end = events.index(("render_end", i, ""))
        nxt = [j for j, e in enumerate(events) if e[0] == "analyse" and e[1] == i + 1][0]
        assert nxt < end, f"analysis of frame {i + 1} should run while frame {i} renders"
        assert start < end
    assert all(e[2].startswith("vid2vid-analyse") for e in events if e[0] == "analyse")


def test_window_memory_is_bounded(tmp_path, monkeypatch):
    """Decoded frames alive at any time do not depend on the clip's length.

    Every (pass input, video frame) the decoder hands the loop is tracked by a weak reference; at each frame
    the live ones are counted, wherever the pipeline keeps them (window, prefetch queue, contexts in flight).
    They are the window the stages ask for (before + after + 1), the older neighbours the previous frame's
    context still holds on the writer thread, the prefetch queue (4 + after) and the one frame the decoder
    holds: 14 here, whatever the length. The bound below leaves room for one more window.
    """
    import weakref

    from lib_vid2vid.pipeline import Run
    from tests.clips import make_clip

    n = 72
    clip = make_clip(tmp_path / "long.mp4", n_frames=n, size=(96, 64), fps=Fraction(24), audio=False)
    decoded: list[weakref.ref] = []
    real_bundles = Run._bundles

    def tracked(self, loop, first):
        for idx, frame, vid in real_bundles(self, loop, first):
            decoded.extend((weakref.ref(frame), weakref.ref(vid)))
            yield idx, frame, vid

    monkeypatch.setattr(Run, "_bundles", tracked)
    sizes, live = [], []

    class Spy(Stage):
        before = 2
        after = 2

        def prepare(self, ctx, req):
            sizes.append(len(ctx.neighbours))
            live.append(len({id(r()) for r in decoded if r() is not None}))

    run_job(_settings(clip, tmp_path), ProxyRenderer(), stages=[Spy()])
    assert max(sizes) == 5 and len(sizes) == n
    window, prefetch = Spy.before + Spy.after + 1, 4 + Spy.after
    assert max(live) <= 2 * window + prefetch < n, live


def test_progress_reports_frames_and_eta(clip, tmp_path):
    seen = []
    run_job(_settings(clip, tmp_path, max_frames=5), ProxyRenderer(), progress=seen.append)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert all(p.total == 5 for p in seen)
    assert seen[-1].eta_s == 0 and seen[0].last_frame.shape == (64, 96, 3)
    assert "frame 5/5" in seen[-1].text


def test_seed_modes_reach_the_renderer(clip, tmp_path):
    seeds = []

    class Spy(ProxyRenderer):
        def render(self, request):
            seeds.append((request.seed, request.subseed, request.subseed_strength))
            return super().render(request)

    run_job(_settings(clip, tmp_path, max_frames=3, seed_mode="increment"), Spy())
    assert [s[0] for s in seeds] == [1234, 1235, 1236]


def test_output_size_rules():
    assert output_size(1920, 1080, 0, 0) == (512, 288)
    assert output_size(1080, 1920, 0, 0) == (288, 512)
    assert output_size(640, 480, 320, 0) == (320, 240)
    assert output_size(640, 480, 0, 240) == (320, 240)
    assert output_size(640, 480, 128, 64) == (128, 64)
    assert pipeline.output_size_note(1920, 1080, 0, 0) == pipeline.output_size_note(640, 480, 320, 0) == ""


def test_output_size_keeps_the_aspect_of_a_video_wider_than_8_to_1():
    # at 512 px the short side would be 16 px: it is 64, and the long side grows to keep 2000:64
    assert output_size(2000, 64, 0, 0) == (2000, 64)
    assert output_size(64, 2000, 0, 0) == (64, 2000)
    assert output_size(1000, 100, 0, 0) == (640, 64)  # 10:1
    assert output_size(2000, 64, 0, 0, long_side=1024) == (2000, 64)
    note = pipeline.output_size_note(2000, 64, 0, 0)
    assert "2000x64" in note and "long side grows from 512 to 2000 px to keep the aspect ratio" in note
    assert output_size(512, 64, 0, 0) == (512, 64) and pipeline.output_size_note(512, 64, 0, 0) == ""  # 8:1 fits
    # past MAX_SIDE at 64 px the picture must be stretched: said, not silent
    assert output_size(100000, 64, 0, 0) == (4096, 64)
    assert "stretched" in pipeline.output_size_note(100000, 64, 0, 0)
    # sizes the user gives are kept; a side derived from one under 64 px is raised, and the note says so
    assert output_size(2000, 64, 640, 480) == (640, 480) and pipeline.output_size_note(2000, 64, 640, 480) == ""
    assert output_size(2000, 64, 512, 0) == (512, 64)
    note = pipeline.output_size_note(2000, 64, 512, 0)
    assert "stretched to 512x64" in note and "give a width of 2000 px or more" in note


def _white_square(rgb):
    """Width and height in pixels of the white square below the index strip of a tests/clips.py frame."""
    ys, xs = np.nonzero(rgb[rgb.shape[0] // 4 + 2 :, :, 0] > 128)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_plan_of_a_2000x64_video_keeps_its_aspect_and_says_so(tmp_path):
    clip = make_clip(tmp_path / "strip.mp4", n_frames=4, size=(2000, 64), audio=False)
    s = _settings(clip, tmp_path, width=0, height=0)
    plan = make_plan(s, video.probe(clip))
    assert (plan.width, plan.height) == (2000, 64)
    assert "long side grows from 512 to 2000 px" in plan.note
    frame = next(video.iter_frames(clip, size=(plan.width, plan.height)))[1]
    assert _white_square(frame) == (16, 16)  # drawn 16x16; a 512x64 output made it 4x16


def test_plan_of_an_anamorphic_video_has_its_display_aspect(tmp_path):
    # coded 96x72 with pixels 4/3 as wide as tall: shown 128x72, so 512x288, and the square stays square
    clip = make_clip(tmp_path / "sar.mp4", n_frames=4, size=(96, 72), pixel_aspect=Fraction(4, 3), audio=False)
    s = _settings(clip, tmp_path, width=0, height=0)
    plan = make_plan(s, video.probe(clip))
    assert (plan.width, plan.height) == (512, 288) and plan.note == ""
    w, h = _white_square(next(video.iter_frames(clip, size=(plan.width, plan.height)))[1])
    assert abs(w - 72) <= 2 and abs(h - 72) <= 2  # 18 px at 128x72, times 4


def _drop_new_fields(job_dir):
    """Rewrite the job's manifest without the ``source`` fields the probe did not store before mirrors and pixel
    aspects were read."""
    path = job_dir / "manifest.json"
    m = json.loads(path.read_text())
    m["source"] = {k: v for k, v in m["source"].items() if k not in ("mirror", "pixel_aspect")}
    path.write_text(json.dumps(m))


def test_job_made_before_mirrors_were_read_resumes_as_it_was_made(tmp_path, monkeypatch):
    from lib_vid2vid import video_probe

    clip = make_clip(tmp_path / "mirror.mp4", n_frames=4, hflip=True, audio=False)
    s = _settings(clip, tmp_path, denoise=0.0, init_mode="source", colour_coherence=False,
                  max_frames=4)  # each frame is its source frame
    with monkeypatch.context() as old:  # the probe before: the mirror matrix read as a half turn
        read = video_probe._first_frame_geometry
        old.setattr(video_probe, "_first_frame_geometry",
                    lambda p: dataclasses.replace(read(p), rotation=180, mirror=False))
        part = run_job(s, ProxyRenderer(), should_stop=lambda: True)
    assert part.status == "interrupted" and part.frames_done < 4
    _drop_new_fields(part.job_dir)
    resumed = run_job(s, ProxyRenderer())
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    job = Job.open(resumed.job_dir)
    for i in range(4):  # the frames before and after the resume: one orientation, the job's
        turned = np.rot90(draw_frame(i, n_frames=4), 2)
        assert np.abs(job.read_frame("pass1", i).astype(int) - turned.astype(int)).mean() < 2.0
    fresh = Job.open(run_job(s, ProxyRenderer(), new=True).job_dir)  # a new job shows the mirror
    mirrored = draw_frame(3, n_frames=4)[:, ::-1]
    assert np.abs(fresh.read_frame("pass1", 3).astype(int) - mirrored.astype(int)).mean() < 2.0


def test_job_planned_before_the_8_to_1_rule_keeps_its_size(tmp_path, monkeypatch):
    from lib_vid2vid import loop

    clip = make_clip(tmp_path / "strip.mp4", n_frames=3, size=(2000, 64), audio=False)
    s = _settings(clip, tmp_path, width=0, height=0, max_frames=3)
    with monkeypatch.context() as old:  # the rule before: the short side raised to 64, the long side kept
        old.setattr(loop, "output_size", lambda *a, **k: (512, 64))
        old.setattr(loop, "output_size_note", lambda *a, **k: "")
        part = run_job(s, ProxyRenderer(), should_stop=lambda: True)
    assert part.status == "interrupted"
    notes = []
    resumed = run_job(s, ProxyRenderer(), notify=notes.append)
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    assert video.probe(resumed.video_path).width == 512
    assert any("keeps the output size 512x64" in n for n in notes)


def test_random_seed_is_resolved_once_and_stored(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=2, seed=-1)
    res = run_job(s, ProxyRenderer())
    m = Job.open(res.job_dir).manifest
    assert 0 <= m["resolved_seed"] < 2**32
    assert {f["seed"] for f in m["frames"]["pass1"]} == {m["resolved_seed"]}


def test_frames_are_rgb_at_output_size(clip, tmp_path):
    res = run_job(_settings(clip, tmp_path, max_frames=2, denoise=0.0), ProxyRenderer())
    out = Job.open(res.job_dir).read_frame("pass1", 0)
    src = next(video.iter_frames(clip, size=(96, 64)))[1]
    assert out.shape == (64, 96, 3)
    assert np.abs(out.astype(int) - src.astype(int)).max() <= 1  # denoise 0 returns the init


def test_corrected_frames_are_rounded_half_up(clip, tmp_path):
    # a correction that lands on exact halves (k + 0.5 levels): the frame written is k + 1 (imaging's rule)
    halves = {0: 0.5, 1: 2.5, 2: 126.5}

    class Halves(Stage):
        def correct(self, ctx, image):
            return np.full_like(image, np.float32(halves[ctx.index] / 255))

    res = run_job(_settings(clip, tmp_path, max_frames=3), ProxyRenderer(), stages=[Halves()])
    job = Job.open(res.job_dir)
    assert [set(np.unique(job.read_frame("pass1", i)).tolist()) for i in range(3)] == [{1}, {3}, {127}]


def test_every_frame_carries_its_parameters(clip, tmp_path):
    from lib_vid2vid.workspace import read_png_text

    res = run_job(_settings(clip, tmp_path, max_frames=2, prompt="a fox", fdc_mode="mean"), ProxyRenderer())
    text = read_png_text(res.job_dir / "frames" / "pass1" / "000001.png")["parameters"]
    assert text.startswith("a fox\n") and "Seed: 1234" in text and "Denoising strength: 0.5" in text
    assert "vid2vid: frame 2/2" in text and "fdc mean" in text


def test_rerun_with_corrected_export_settings_resumes_with_them(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=6, output_format="mp4")
    stop = StopAfter(3)
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    res = run_job(s.replace(output_format="webm", crf=30), ProxyRenderer())
    assert res.job_dir == part.job_dir and res.video_path.suffix == ".webm"
    assert Job.open(res.job_dir).manifest["settings"]["crf"] == 30


def test_bad_post_settings_fail_before_a_job_folder_exists(clip, tmp_path):
    from lib_vid2vid.errors import Vid2VidError

    with pytest.raises(Vid2VidError, match="upscaler"):
        run_job(_settings(clip, tmp_path, upscaler="no-such-upscaler"), ProxyRenderer())
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def _prompt_folder(tmp_path, texts):
    folder = tmp_path / "prompts"
    folder.mkdir()
    for k, text in texts.items():
        (folder / f"{k:06d}.txt").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(folder)


BAD_PLANS = {
    # frame-dependent schedules fail their range only at some frames of the plan (12 frames, 2 passes)
    "denoise-falls-below-0": (dict(denoise_schedule="0.2-frame*0.1"), "denoise_schedule", "at frame 3"),
    "steps-above-150-late": (dict(steps_schedule="20 + frame*12"), "steps_schedule", "at frame 11"),
    "alpha-in-pass-2": (dict(loopback_passes=2, loopback_alpha_schedule="0.5 + loop"), "loopback_alpha_schedule",
                        "loop 1"),
    "keyframes": (dict(cfg_schedule="0: 7, 11: 40"), "cfg_schedule", "gives 31 at frame 8"),
    "no-such-folder": (dict(prompt_folder="{tmp}/nowhere"), "prompt_folder", "is not a folder"),
    "file-missing": (dict(prompt_folder={k: "a cat" for k in range(11)}), "prompt_folder", "frame 11"),
    "empty-file": (dict(prompt_folder={**{k: "a cat" for k in range(12)}, 7: "  "}), "prompt_folder",
                   "000007.txt has no prompt"),
    "not-utf8": (dict(prompt_folder={**{k: "a cat" for k in range(12)}, 9: b"\xff\xfe\xfa"}), "prompt_folder",
                 "not UTF-8"),
}


@pytest.mark.parametrize("name", list(BAD_PLANS))
def test_schedules_and_prompt_sources_fail_over_the_whole_plan_before_a_job_folder_exists(clip, tmp_path, name):
    from lib_vid2vid.errors import SettingsError

    changes, field, words = BAD_PLANS[name]
    changes = dict(changes)
    if isinstance(changes.get("prompt_folder"), dict):
        changes["prompt_folder"] = _prompt_folder(tmp_path, changes["prompt_folder"])
    elif "prompt_folder" in changes:
        changes["prompt_folder"] = changes["prompt_folder"].format(tmp=tmp_path)
    s = _settings(clip, tmp_path, max_frames=12, **changes)  # settings alone cannot tell: they pass
    with pytest.raises(SettingsError) as err:
        run_job(s, ProxyRenderer())
    assert err.value.field == field and words in str(err.value), str(err.value)
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_renderer_notices_are_logged_once_and_returned(clip, tmp_path):
    """A renderer's notes about the host (take_notices) reach the job log and the result once each, however
    often the renderer repeats them."""

    class Noting(ProxyRenderer):
        def take_notices(self):
            return ["the host ignores option X"]

    s = Settings().replace(input=str(clip), max_frames=3, output_dir=str(tmp_path / "out"))
    res = run_job(s, Noting())
    assert res.notices == ["the host ignores option X"]
    assert (res.job_dir / "job.log").read_text().count("the host ignores option X") == 1
    assert Job.open(res.job_dir).manifest["warnings"] == ["the host ignores option X"]


def test_a_job_begun_at_another_reading_of_the_sources_rate_goes_on_at_it(tmp_path):
    """A variable-rate video was read at its average rate before December 2026 and at its grid's rate since: a
    job begun before goes on at the rate it was planned at (its frames keep their times), and says so; a new
    job is told the rate a variable-rate video gets."""
    import json

    from tests.clips import make_vfr_clip

    clip = make_vfr_clip(tmp_path / "vfr.mp4", audio=True)
    info = video.probe(clip)
    assert info.fps == 50 and info.before_grid is not None
    s = _settings(clip, tmp_path)
    lines: list[str] = []
    stop = StopAfter(3)
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress, notify=lines.append)
    assert any("frame rate varies" in line and "50 fps" in line for line in lines)
    manifest = part.job_dir / "manifest.json"
    m = json.loads(manifest.read_text())
    m["plan"]["fps"] = info.before_grid["fps"]  # as a job planned before the change stored it
    manifest.write_text(json.dumps(m))
    lines.clear()
    res = run_job(s, ProxyRenderer(), notify=lines.append)
    assert res.job_dir == part.job_dir and res.status == "done"
    assert any(f"began at {info.before_grid['fps']} fps" in line for line in lines)
    old = Fraction(info.before_grid["fps"])
    assert res.frames_done == round(info.duration * old) < round(info.duration * 50)
    assert Job.open(res.job_dir).stored_settings().video.fps == 0  # what resumes it is unchanged


def test_a_stop_in_the_first_of_two_passes_says_which_pass_and_its_frames(clip, tmp_path):
    s = _settings(clip, tmp_path, init_mode="previous_output", loopback_passes=2, loopback_alpha=0.6, max_frames=10)
    stop = StopAfter(4, stage="pass1")
    res = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert res.status == "interrupted" and res.frames_done == 0  # of the last pass, as before
    assert res.message.startswith("Interrupted in pass1 of 2 after frame 4 of 10"), res.message
