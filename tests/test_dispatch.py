"""One job over several WebUI backends (lib_vid2vid/dispatch.py, issue 18), against fake WebUIs on loopback."""

from __future__ import annotations

import socket
import sys

import pytest

from lib_vid2vid.dispatch import Dispatcher, import_ray, webui_dispatcher
from lib_vid2vid.errors import RendererError, Vid2VidError
from lib_vid2vid.host.webui_api import WebUIApiRenderer
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.workspace import Job
from tests.fake_webui import FakeWebUI, json_reply

FRAMES = 10


def _settings(clip, out, **kw):
    # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
    base = dict(input=str(clip), output_dir=str(out), max_frames=FRAMES, width=96, height=64, prompt="ink", seed=3,
                report=False, keyframe_mode="off")
    return Settings().replace(**{**base, **kw})


def _frame_bytes(job_dir) -> list[bytes]:
    job = Job.open(job_dir)
    return [job.frame_path("pass1", i).read_bytes() for i in range(FRAMES)]


def _one_backend_run(clip, out, **kw) -> list[bytes]:
    with FakeWebUI() as ui:
        res = run_job(_settings(clip, out, **kw), WebUIApiRenderer(ui.url))
    assert res.status == "done"
    return _frame_bytes(res.job_dir)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("seed_mode", ["fixed", "increment"])
def test_two_backends_one_failing_give_the_bytes_of_one_backend(clip, tmp_path, seed_mode):
    want = _one_backend_run(clip, tmp_path / "one", seed_mode=seed_mode)
    lines: list[str] = []
    with FakeWebUI() as a, FakeWebUI() as b:
        b.fail[2] = (500, {"detail": "CUDA out of memory"})  # b fails on its third frame
        a.hold = b.failed  # a answers nothing before that: b surely gets three frames, however threads run
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, tmp_path / "two", seed_mode=seed_mode), d, notify=lines.append)
        finally:
            d.close()
        assert res.status == "done"
        assert _frame_bytes(res.job_dir) == want
        # every frame rendered once, b's failed one again on a: none lost, none duplicated
        assert len(b.payloads) == 3 and len(a.payloads) == FRAMES - 2
        if seed_mode == "increment":  # each frame's seed rendered exactly once among the answered requests
            assert len({p["seed"] for p in a.payloads + b.payloads[:2]}) == FRAMES
    assert d.alive == [True, False] and d.rendered == [FRAMES - 2, 2]
    assert any("in parallel on 2 backends" in line for line in lines)
    warnings = Job.open(res.job_dir).manifest.get("warnings", [])
    assert any(f"backend {b.url} taken out after 2 frames" in w and "CUDA out of memory" in w for w in warnings)


def test_a_backend_killed_mid_job_loses_no_frame(clip, tmp_path):
    want = _one_backend_run(clip, tmp_path / "one")
    with FakeWebUI() as a, FakeWebUI() as b:
        a.delay = b.delay = 0.05
        d = webui_dispatcher([a.url, b.url])

        def progress(p):
            if p.done == 3 and not b.dead:
                b.kill()

        try:
            res = run_job(_settings(clip, tmp_path / "two"), d, progress=progress)
        finally:
            d.close()
    assert res.status == "done" and _frame_bytes(res.job_dir) == want
    assert d.alive == [True, False] and sum(d.rendered) == FRAMES


def test_sequential_strategy_runs_in_order_and_says_so(clip, tmp_path):
    want = _one_backend_run(clip, tmp_path / "one", init_mode="previous_output")
    lines: list[str] = []
    with FakeWebUI() as a, FakeWebUI() as b:
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, tmp_path / "two", init_mode="previous_output"), d, notify=lines.append)
        finally:
            d.close()
    assert _frame_bytes(res.job_dir) == want
    assert any("one after another" in line and "reads the previous output" in line for line in lines)


def test_resume_across_backend_counts(clip, tmp_path):
    want = _one_backend_run(clip, tmp_path / "one")
    out = tmp_path / "out"
    # two backends, stopped after 3 frames; resumed on one backend
    with FakeWebUI() as a, FakeWebUI() as b:
        d = webui_dispatcher([a.url, b.url])
        seen: list[int] = []
        try:
            res = run_job(_settings(clip, out), d, progress=lambda p: seen.append(p.done),
                          should_stop=lambda: bool(seen) and seen[-1] >= 3)
        finally:
            d.close()
        assert res.status == "interrupted" and 0 < res.frames_done < FRAMES
        res = run_job(_settings(clip, out), WebUIApiRenderer(a.url))
    assert res.status == "done" and _frame_bytes(res.job_dir) == want
    # one backend failing at frame 4; resumed on two
    out2 = tmp_path / "out2"
    with FakeWebUI() as a, FakeWebUI() as b:
        a.fail[4] = (500, {"detail": "boom"})
        with pytest.raises(RendererError, match="boom"):
            run_job(_settings(clip, out2), WebUIApiRenderer(a.url))
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, out2), d)
        finally:
            d.close()
        assert res.status == "done" and len(list(out2.iterdir())) == 1  # the same job, resumed
        assert len(a.payloads) + len(b.payloads) == 5 + (FRAMES - 4)
    assert _frame_bytes(res.job_dir) == want


def test_every_backend_failing_is_one_line_and_resumable(clip, tmp_path):
    with FakeWebUI() as a, FakeWebUI() as b:
        a.fail[1] = b.fail[1] = (500, {"detail": "boom"})
        d = webui_dispatcher([a.url, b.url])
        try:
            with pytest.raises(RendererError, match=r"^Every backend failed .*boom.*resume$"):
                run_job(_settings(clip, tmp_path / "out"), d)
        finally:
            d.close()
    (job_dir,) = (tmp_path / "out").iterdir()
    assert Job.open(job_dir).frames_done("pass1") >= 1


def test_unreachable_backend_is_one_line_naming_it(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    dead = f"http://127.0.0.1:{_free_port()}"
    with FakeWebUI() as a:
        rc = main([str(clip), "--backend", a.url, "--backend", dead, "--output-dir", str(tmp_path / "out"),
                   "--quiet"])
        assert not a.payloads
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"Cannot reach the WebUI at {dead}" in err
    assert "--backend" in err and "--api-url" not in err  # the advice names the option that gave the address
    assert not (tmp_path / "out").exists()


def test_backend_with_another_model_is_named(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    with FakeWebUI() as a, FakeWebUI() as b:
        a.options = {"sd_model_checkpoint": "v1-5.safetensors [6ce0161689]"}
        b.options = {"sd_model_checkpoint": "dreamshaper_8.safetensors [879db523c3]"}
        rc = main([str(clip), "--backend", a.url, "--backend", b.url, "--output-dir", str(tmp_path), "--quiet"])
        assert not b.payloads and not a.payloads
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert f"Backend {b.url} has another setup than {a.url}" in err
    assert "dreamshaper_8.safetensors" in err and "v1-5.safetensors" in err


def test_cli_runs_a_job_on_two_backends(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    with FakeWebUI() as a, FakeWebUI() as b:
        argv = [str(clip), "--backend", a.url, "--backend", b.url, "--width", "96", "--height", "64",
                "--max-frames", "6", "--keyframe-mode", "off", "--output-dir", str(tmp_path), "--quiet"]
        assert main(argv) == 0
        assert len(a.payloads) + len(b.payloads) == 6
    err = capsys.readouterr().err
    assert "in parallel on 2 backends" in err
    assert f"backend {a.url}: {len(a.payloads)} frames" in err and f"backend {b.url}: {len(b.payloads)} frames" in err


def test_missing_engine_package_is_one_line(clip, tmp_path, monkeypatch, capsys):
    from lib_vid2vid.__main__ import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(Vid2VidError, match=r"pip install \.\[ray\]") as info:
        import_ray()
    assert "\n" not in str(info.value)
    with FakeWebUI() as a:
        rc = main([str(clip), "--backend", a.url, "--engine", "ray", "--output-dir", str(tmp_path / "out"),
                   "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err == f"error: {info.value}\n"


def test_engine_flags_need_backends(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    assert main([str(clip), "--engine", "ray", "--output-dir", str(tmp_path), "--quiet"]) == 1
    assert "need --backend URL" in capsys.readouterr().err


def test_dispatcher_needs_a_backend():
    with pytest.raises(Vid2VidError, match="--backend URL"):
        Dispatcher([])


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install .[ray])")
    yield ray
    ray.shutdown()


def test_ray_engine_two_backends_one_failing_give_the_bytes_of_one(ray_local, clip, tmp_path):
    want = _one_backend_run(clip, tmp_path / "one")
    with FakeWebUI() as a, FakeWebUI() as b:
        b.fail[2] = (500, {"detail": "boom"})
        a.hold = b.failed
        d = webui_dispatcher([a.url, b.url], engine="ray")
        try:
            res = run_job(_settings(clip, tmp_path / "two"), d)
        finally:
            d.close()
        assert len(b.payloads) == 3 and len(a.payloads) == FRAMES - 2
    assert res.status == "done" and _frame_bytes(res.job_dir) == want
    assert d.alive == [True, False]
    # the actor's own one-line error, not Ray's wrapper with the remote traceback
    assert d.out_reasons[b.url] == "The WebUI answered HTTP 500 for /sdapi/v1/img2img: boom"


def test_keyframes_render_in_parallel_with_the_bytes_of_one_backend(clip, tmp_path):
    kw = dict(keyframe_mode="interval", keyframe_interval=2)
    want = _one_backend_run(clip, tmp_path / "one", **kw)
    lines: list[str] = []
    with FakeWebUI() as a, FakeWebUI() as b:
        b.fail[1] = (500, {"detail": "boom"})
        a.hold = b.failed  # b surely gets two keyframes (else the count below depends on thread timing)
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, tmp_path / "two", **kw), d, notify=lines.append)
        finally:
            d.close()
        keys = len(Job.open(res.job_dir).manifest["keyframes"]["plan"]["frames"])
        assert len(a.payloads) + len(b.payloads) == keys + 1  # b's failed keyframe rendered again on a
    assert res.status == "done" and _frame_bytes(res.job_dir) == want
    assert any(f"{keys} keyframes render in parallel on 2 backends" in line for line in lines)


@pytest.mark.parametrize("held", ["a", "b"])
def test_parallel_keyframes_do_not_depend_on_which_backend_answers_first(clip, tmp_path, held):
    """Keyframes coming back out of order (one backend answers nothing before the other has answered one) give
    the frames of one backend: they are corrected and written in keyframe order (colour coherence takes
    keyframe 0's output as its reference)."""
    kw = dict(keyframe_mode="interval", keyframe_interval=2)
    want = _one_backend_run(clip, tmp_path / "one", **kw)
    with FakeWebUI() as a, FakeWebUI() as b:
        slow, fast = (a, b) if held == "a" else (b, a)
        slow.hold = fast.answered
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, tmp_path / "two", **kw), d)
        finally:
            d.close()
        assert fast.payloads  # the held backend blocks on its first keyframe: the other one renders
    assert res.status == "done" and _frame_bytes(res.job_dir) == want


# ---- scene groups: strategies that read the previous output, shot by shot in parallel (reset_at_cuts)

SHOTS, PER_SHOT = 4, 5


@pytest.fixture
def shots_clip(tmp_path):
    from tests.clips import make_shots_clip

    return make_shots_clip(tmp_path / "shots.mp4", shots=SHOTS, frames_per_shot=PER_SHOT)


def _shot_settings(clip, out, **kw):
    kw = {"fdc_mode": "mean_std", "motion_mask": True, "reset_at_cuts": True, "seed_mode": "increment",
          "keyframe_mode": "off", **kw}
    return Settings().replace(input=str(clip), output_dir=str(out), width=96, height=64, prompt="ink", seed=3,
                              report=False, **kw)


def _all_frames(job_dir, total=SHOTS * PER_SHOT) -> list[bytes]:
    job = Job.open(job_dir)
    return [job.frame_path("pass1", i).read_bytes() for i in range(total)]


def _one_backend_shots(clip, out, **kw) -> tuple[list[bytes], Job]:
    with FakeWebUI() as ui:
        res = run_job(_shot_settings(clip, out, **kw), WebUIApiRenderer(ui.url))
    assert res.status == "done"
    return _all_frames(res.job_dir), Job.open(res.job_dir)


def test_shots_render_in_parallel_with_the_bytes_of_one_backend(shots_clip, tmp_path):
    want, one = _one_backend_shots(shots_clip, tmp_path / "one")
    assert one.manifest["scene_cuts"] == [5, 10, 15]
    lines: list[str] = []
    with FakeWebUI() as a, FakeWebUI() as b:
        a.delay = b.delay = 0.02
        b.fail[3] = (500, {"detail": "CUDA out of memory"})  # b fails in the middle of its shot: a takes it on
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_shot_settings(shots_clip, tmp_path / "two"), d, notify=lines.append)
        finally:
            d.close()
        answered = a.payloads + b.payloads[:3]
    assert res.status == "done" and _all_frames(res.job_dir) == want
    assert any("4 shots (scene groups) render in parallel on 2 backends" in line and "fdc" in line for line in lines)
    # each frame rendered once among the answered requests; both backends took part before b went out
    assert sorted(p["seed"] for p in answered) == sorted({p["seed"] for p in answered}) and len(answered) == 20
    assert d.rendered[1] == 3 and d.alive == [True, False]
    job = Job.open(res.job_dir)
    assert job.frames_done("pass1") == 20 and not [s for s in job.manifest["stages"] if s != "pass1"]
    assert [r["seed"] for r in job.manifest["frames"]["pass1"]] == [r["seed"] for r in one.manifest["frames"]["pass1"]]


def test_the_scan_for_cuts_reports_its_progress_and_a_stop_during_it_loses_nothing(shots_clip, tmp_path):
    from tests.doubles import StopAfter

    reports: list[tuple[str, int, int]] = []
    stop = StopAfter(3, stage="finding scene cuts")

    def progress(p):
        reports.append((p.stage, p.done, p.total))
        stop.progress(p)

    with FakeWebUI() as ui:
        s = _shot_settings(shots_clip, tmp_path / "out")
        part = run_job(s, WebUIApiRenderer(ui.url), should_stop=stop, progress=progress)
        assert part.status == "interrupted" and not ui.payloads
        assert reports == [("finding scene cuts", i, 20) for i in range(1, 4)]
        assert "scene_cuts" not in Job.open(part.job_dir).manifest
        reports.clear()
        res = run_job(s, WebUIApiRenderer(ui.url), progress=progress)
    assert res.status == "done" and Job.open(res.job_dir).manifest["scene_cuts"] == [5, 10, 15]
    assert reports[:20] == [("finding scene cuts", i, 20) for i in range(1, 21)]
    assert reports[20][0] == "pass1"


def test_reset_at_cuts_starts_each_shot_afresh(shots_clip, tmp_path):
    """At a cut the init of previous_output is the source frame's (as at frame 0); without reset_at_cuts the
    last output of the shot before goes into it."""
    def inits(out, **kw):
        with FakeWebUI() as ui:
            res = run_job(_shot_settings(shots_clip, out, fdc_mode="none", motion_mask=False, **kw),
                          WebUIApiRenderer(ui.url))
            assert res.status == "done"
            return {p["seed"] - 3: p["init_images"][0] for p in ui.payloads}

    source = inits(tmp_path / "src", init_mode="source")
    reset = inits(tmp_path / "reset", init_mode="previous_output", init_strength=1.0)
    carried = inits(tmp_path / "carry", init_mode="previous_output", init_strength=1.0, reset_at_cuts=False)
    for cut in (0, 5, 10, 15):
        assert reset[cut] == source[cut]
    for k in (1, 6, 11):
        assert reset[k] != source[k]  # inside a shot the previous output is used
    assert carried[5] != source[5] and carried[4] == reset[4]


def test_shots_resume_across_backend_counts(shots_clip, tmp_path):
    want, _ = _one_backend_shots(shots_clip, tmp_path / "one")
    out = tmp_path / "out"
    # two backends, stopped after a few frames of the first two shots: the second journalled apart; resumed on
    # one backend
    with FakeWebUI() as a, FakeWebUI() as b:
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_shot_settings(shots_clip, out), d,
                          should_stop=lambda: len(a.payloads) + len(b.payloads) >= 6)
        finally:
            d.close()
        assert res.status == "interrupted"
        job = Job.open(res.job_dir)
        assert [s for s in job.manifest["stages"] if s.startswith("shot_pass1_")]
        assert len(job.manifest["frames"]["pass1"]) < len(a.payloads) + len(b.payloads)  # some kept apart
        lines: list[str] = []
        res = run_job(_shot_settings(shots_clip, out), WebUIApiRenderer(a.url), notify=lines.append)
        assert res.status == "done" and len(a.payloads) + len(b.payloads) == 20  # none rendered twice
        assert any("one backend finishes the shots an earlier run rendered apart" in line for line in lines)
    assert _all_frames(res.job_dir) == want
    # one backend stopped after 7 frames, resumed on two
    out2 = tmp_path / "out2"
    with FakeWebUI() as a, FakeWebUI() as b:
        res = run_job(_shot_settings(shots_clip, out2), WebUIApiRenderer(a.url), should_stop=lambda: len(a.payloads) >= 7)
        assert res.status == "interrupted" and res.frames_done == 7
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_shot_settings(shots_clip, out2), d)
        finally:
            d.close()
        assert res.status == "done" and len(a.payloads) + len(b.payloads) == 20
    assert _all_frames(res.job_dir) == want



# ---- health between frames, a prompt stop, progress

def test_a_backend_that_loads_another_model_is_taken_out_between_frames(clip, tmp_path):
    want = _one_backend_run(clip, tmp_path / "one")
    with FakeWebUI() as a, FakeWebUI() as b:
        a.delay = b.delay = 0.02
        d = webui_dispatcher([a.url, b.url])
        d.health_every = 0  # asked before every frame

        previews: list = []

        def progress(p):
            previews.append(p.last_frame)

        def options(handler):  # b loads another model once it has rendered a frame: the next health check sees it
            model = "dreamshaper_8.safetensors [879db523c3]" if b.payloads else "fake"
            json_reply({"sd_model_checkpoint": model})(handler)

        b.options_reply = options
        try:
            res = run_job(_settings(clip, tmp_path / "two"), d, progress=progress)
        finally:
            d.close()
        assert len(a.payloads) + len(b.payloads) == FRAMES  # b's frame waiting for it went to a, none twice
    assert res.status == "done" and _frame_bytes(res.job_dir) == want
    assert d.alive == [True, False] and "dreamshaper_8.safetensors" in d.out_reasons[b.url]
    # the parallel path shows the latest finished frame (the render, as the sequential path does)
    assert len(previews) == FRAMES and all(f is not None and f.shape == (64, 96, 3) for f in previews)
    warnings = Job.open(res.job_dir).manifest.get("warnings", [])
    assert any(f"backend {b.url} taken out" in w and "another setup" in w for w in warnings)


def test_a_stop_interrupts_the_frames_in_flight_and_keeps_the_finished(clip, tmp_path):
    want = _one_backend_run(clip, tmp_path / "one")
    out = tmp_path / "out"
    with FakeWebUI() as a, FakeWebUI() as b:
        a.delay, b.delay = 0.05, 30.0  # b would hold its frame for 30 s: the stop must not wait for it
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, out), d, should_stop=lambda: b.started >= 1 and len(a.payloads) >= 4)
        finally:
            d.close()
        assert res.status == "interrupted"
        assert b.interrupts >= 1 and b.cut_short == 1  # its render was cut short ...
        done = Job.open(res.job_dir).frames_done("pass1")
        assert done == res.frames_done and done < len(a.payloads) + len(b.payloads)  # ... and not written
        b.delay = 0.0
        res = run_job(_settings(clip, out), WebUIApiRenderer(a.url))
    assert res.status == "done" and _frame_bytes(res.job_dir) == want


def test_a_stop_interrupts_the_shots_in_flight(shots_clip, tmp_path):
    want, _ = _one_backend_shots(shots_clip, tmp_path / "one")
    out = tmp_path / "out"
    with FakeWebUI() as a, FakeWebUI() as b:
        a.delay, b.delay = 0.02, 30.0
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_shot_settings(shots_clip, out), d, should_stop=lambda: len(a.payloads) >= 3)
        finally:
            d.close()
        assert res.status == "interrupted" and b.interrupts >= 1 and b.cut_short == 1
        b.delay = 0.0
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_shot_settings(shots_clip, out), d)
        finally:
            d.close()
    assert res.status == "done" and _all_frames(res.job_dir) == want


def test_cli_progress_note_has_the_eta_and_each_backends_rate():
    from lib_vid2vid.__main__ import progress_note
    from lib_vid2vid.loop import Progress

    d = Dispatcher([object(), object()], ["http://127.0.0.1:7860", "http://10.0.0.2:7861"])
    try:
        d.rendered, d.busy_s, d.alive = [4, 1], [2.0, 1.0], [True, False]
        note = progress_note(Progress("pass1", 5, 10, 75.0), d)
    finally:
        d.close()
    assert note == "ETA 1:15 | 127.0.0.1:7860 2.0/s, 10.0.0.2:7861 -"
    assert progress_note(Progress("pass1", 5, 10, None), object()) == ""


def test_a_stop_interrupts_the_keyframes_in_flight(clip, tmp_path):
    kw = dict(keyframe_mode="interval", keyframe_interval=2)
    want = _one_backend_run(clip, tmp_path / "one", **kw)
    out = tmp_path / "out"
    with FakeWebUI() as a, FakeWebUI() as b:
        a.delay, b.delay = 0.02, 30.0
        d = webui_dispatcher([a.url, b.url])
        try:
            res = run_job(_settings(clip, out, **kw), d, should_stop=lambda: b.started >= 1 and len(a.payloads) >= 2)
        finally:
            d.close()
        assert res.status == "interrupted" and b.interrupts >= 1 and b.cut_short == 1
        b.delay = 0.0
        res = run_job(_settings(clip, out, **kw), WebUIApiRenderer(a.url))
    assert res.status == "done" and _frame_bytes(res.job_dir) == want


def test_ray_engine_renders_shots_in_parallel_with_the_bytes_of_one(ray_local, shots_clip, tmp_path):
    want, _ = _one_backend_shots(shots_clip, tmp_path / "one")
    lines: list[str] = []
    with FakeWebUI() as a, FakeWebUI() as b:
        b.fail[2] = (500, {"detail": "boom"})
        d = webui_dispatcher([a.url, b.url], engine="ray")
        try:
            res = run_job(_shot_settings(shots_clip, tmp_path / "two"), d, notify=lines.append)
        finally:
            d.close()
        assert len(a.payloads) + len(b.payloads) == SHOTS * PER_SHOT + 1  # b's failed frame again on a
    assert res.status == "done" and _all_frames(res.job_dir) == want
    assert any("4 shots (scene groups) render in parallel on 2 backends" in line for line in lines)
