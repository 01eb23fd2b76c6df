"""The A1111 adapter (lib_vid2vid/host/a1111.py) against a small test double of the WebUI (tests/fake_host)."""

import ast
import base64
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from lib_vid2vid import params, sigmas, video
from lib_vid2vid.workspace import Job

FAKE = Path(__file__).parent / "fake_host"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def host(monkeypatch):
    for name in [m for m in sys.modules if m == "modules" or m.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(FAKE))
    import modules.processing as processing
    import modules.shared as shared

    shared.state.reset()
    processing.calls.clear()
    processing.hooks.clear()
    from lib_vid2vid.host import a1111

    yield a1111, processing, shared
    for name in [m for m in sys.modules if m == "modules" or m.startswith("modules.")]:
        sys.modules.pop(name, None)


def _p(processing, **kw):
    base = dict(prompt="ink drawing", negative_prompt="blur", steps=8, cfg_scale=6.0, denoising_strength=0.4,
                seed=77, width=96, height=64, init_images=[None])  # the img2img image box left empty
    base.update(kw)
    return processing.StableDiffusionProcessingImg2Img(**base)


def _args(**values):
    """Script args in UI order, as the WebUI sends them (every component's value); the plain pipeline
    (no colour coherence, every frame rendered) unless a test asks for more, so renders can be compared with the
    host's images one by one."""
    s = params.Settings().replace(**{"colour_coherence": False, "keyframe_mode": "off", **values})
    return [s.get(n) for n in params.api_arg_names()]


def test_a_default_job_renders_only_its_keyframes(host, clip, tmp_path):
    """The form as it opens (keyframes where the picture changed): the host renders each keyframe once, from its
    own source frame, and every frame of the video is made; the rest are carried along the source's motion."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    defaults = params.Settings().replace(input=str(clip), max_frames=12)
    res = a1111.run_script(_p(processing), [defaults.get(n) for n in params.api_arg_names()])
    assert res.vid2vid["status"] == "done" and res.vid2vid["frames_done"] == 12, res.info
    job = Job.open(res.vid2vid["job_dir"])
    keyframes = job.manifest["keyframes"]["plan"]["frames"]
    assert keyframes[0] == 0 and 1 < len(keyframes) <= 12 // defaults.temporal.keyframe_min_gap + 1
    assert len(processing.calls) == len(keyframes)
    src = [np.asarray(f, np.int16) for _, f in zip(range(12), (f for _, f in video.iter_frames(clip, size=(96, 64))))]
    for call, k in zip(processing.calls, keyframes):
        init = np.asarray(call.init_images[0].convert("RGB"), np.int16)
        assert np.abs(init - src[k]).mean() < np.abs(init - src[k + 1 if k == 0 else k - 1]).mean()
    assert video.probe(res.vid2vid["video"]).frame_count == 12


def test_video_job_through_process_images(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    p = _p(processing)
    processed = a1111.run_script(p, _args(input=str(clip), max_frames=6))
    assert "vid2vid: done, 6/6 frames" in processed.info
    assert processed.vid2vid["video"].endswith(".mp4") and Path(processed.vid2vid["video"]).is_file()
    assert len(processed.images) == 3  # first, middle, last frame as previews
    assert len(processing.calls) == 6
    first = processing.calls[0]
    assert (first.seed, first.steps, first.cfg_scale, first.denoising_strength) == (77, 8, 6.0, 0.4)
    assert first.prompt == "ink drawing" and first.negative_prompt == "blur"
    assert first.do_not_save_samples and first.do_not_save_grid and first.closed
    assert first.init_images[0].size == (96, 64)
    assert shared.state.job_count == 6
    assert "frame 6/6" in shared.state.textinfo
    assert len(shared.state.current_images) == 6
    job = Job.open(processed.vid2vid["job_dir"])
    assert job.manifest["settings"]["prompt"] == "ink drawing" and job.manifest["resolved_seed"] == 77


def test_interrupt_stops_after_current_frame_and_resume_matches(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "a")
    full = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=8, init_mode="previous_output"))

    shared.state.reset()
    processing.calls.clear()
    shared.opts.vid2vid_output_dir = str(tmp_path / "b")

    def press_interrupt(p, n):
        if n == 4:
            shared.state.interrupted = True

    processing.hooks.append(press_interrupt)
    part = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=8, init_mode="previous_output"))
    assert "interrupted, 4/8" in part.info and "resume" in part.info
    processing.hooks.clear()
    processing.calls.clear()
    shared.state.reset()
    resumed = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=8, init_mode="previous_output"))
    assert resumed.vid2vid["job_dir"] == part.vid2vid["job_dir"]
    a = sorted((Path(full.vid2vid["job_dir"]) / "frames" / "pass1").glob("*.png"))
    b = sorted((Path(resumed.vid2vid["job_dir"]) / "frames" / "pass1").glob("*.png"))
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]


def test_frames_do_not_depend_on_global_random_state(host, clip, tmp_path, monkeypatch):
    """The real WebUI draws from torch's global generator while encoding the init image, before it seeds for
    sampling: a host whose output depends on the global torch, numpy and ``random`` state (one per channel) still
    gives the same frames in a full run and in an interrupted run resumed after other random draws."""
    import random

    import torch
    from PIL import Image

    a1111, processing, shared = host
    host_process_images = processing.process_images

    def process_images(p):
        out = host_process_images(p)
        drawn = (int(torch.randint(0, 40, (1,))), int(np.random.randint(0, 40)), random.randint(0, 39))
        out.images = [Image.fromarray((np.asarray(im) + np.array(drawn, np.uint8)).astype(np.uint8))
                      for im in out.images]
        return out

    monkeypatch.setattr(processing, "process_images", process_images)
    args = _args(input=str(clip), max_frames=6, init_mode="previous_output")
    shared.opts.vid2vid_output_dir = str(tmp_path / "full")
    full = a1111.run_script(_p(processing), args)

    shared.state.reset()
    shared.opts.vid2vid_output_dir = str(tmp_path / "resumed")
    processing.calls.clear()
    processing.hooks.append(lambda p, n: setattr(shared.state, "interrupted", n == 3))
    part = a1111.run_script(_p(processing), args)
    assert part.vid2vid["status"] == "interrupted", part.info
    processing.hooks.clear()
    shared.state.reset()
    torch.rand(5), np.random.rand(3), random.random()  # whatever else ran in the process in between
    resumed = a1111.run_script(_p(processing), args)
    assert resumed.vid2vid["job_dir"] == part.vid2vid["job_dir"] and resumed.vid2vid["status"] == "done"
    a = sorted((Path(full.vid2vid["job_dir"]) / "frames" / "pass1").glob("*.png"))
    b = sorted((Path(resumed.vid2vid["job_dir"]) / "frames" / "pass1").glob("*.png"))
    assert len(a) == len(b) == 6
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]


def test_resume_a_listed_job_by_name(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    processing.hooks.append(lambda p, n: setattr(shared.state, "interrupted", n == 2))
    part = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=5))
    processing.hooks.clear()
    processing.calls.clear()
    shared.state.reset()
    name = Path(part.vid2vid["job_dir"]).name
    assert a1111.list_unfinished_jobs() == [name]
    assert "interrupted" in a1111.job_folder(name)
    # a different denoise would start a new job; naming the job resumes it with its own settings
    res = a1111.run_script(_p(processing, denoising_strength=0.9), _args(input=str(clip), resume_job=name))
    assert res.vid2vid["job_dir"] == part.vid2vid["job_dir"] and res.vid2vid["status"] == "done"
    assert {c.denoising_strength for c in processing.calls} == {0.4}


def test_skip_keeps_the_init_for_that_frame(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    processing.hooks.append(lambda p, n: setattr(shared.state, "skipped", n == 1))
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=3, colour_coherence=False))
    assert "skipped (kept as init): [1]" in res.info and not shared.state.skipped
    job = Job.open(res.vid2vid["job_dir"])
    init1 = np.asarray(processing.calls[1].init_images[0])
    assert np.array_equal(job.read_frame("pass1", 1), init1)


def test_sigma_override_reaches_the_sampler_as_a_tensor(host, clip, tmp_path):
    torch = pytest.importorskip("torch")
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    a1111.run_script(_p(processing), _args(input=str(clip), max_frames=1, sigma_schedule="karras", sigma_max=1.0))
    override = processing.calls[0].sampler_noise_scheduler_override
    out = override(11)
    assert isinstance(out, torch.Tensor) and out.shape == (12,)
    expected = sigmas.full_schedule(sigmas.SigmaSettings(schedule="karras", sigma_min=0.0292, sigma_max=1.0), 11)
    assert np.allclose(out.numpy(), expected, atol=1e-6)


def test_base64_video_from_the_api(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    data = "data:video/mp4;base64," + base64.b64encode(Path(clip).read_bytes()).decode()
    res = a1111.run_script(_p(processing), [data, 0.0, 0.0, 0.0, 2])  # input, fps, start, end, max_frames  # a short arg list keeps the defaults
    assert res.vid2vid["status"] == "done"
    assert list((tmp_path / "out" / "uploads").iterdir())


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["/nowhere/video.mp4"], "not found"),
        ([""], "No video given"),
        (["x" * 4999 + "!"], "neither an existing path nor valid base64"),
        (["{clip}", "fast"], "fps"),
    ],
)
def test_bad_script_args_give_one_line_in_the_result(host, clip, tmp_path, args, fragment):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    args = [a.replace("{clip}", str(clip)) if isinstance(a, str) else a for a in args]
    res = a1111.run_script(_p(processing), args)
    assert res.images == [] and res.info.startswith("vid2vid error:") and fragment in res.info
    assert "\n" not in res.info and not processing.calls


def test_a_text_file_or_a_photo_is_refused_before_any_render(host, tmp_path):
    """An uploaded README (FFmpeg's tty demuxer renders text as frames) or photo is not a video: one line."""
    import cv2

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    readme = tmp_path / "README.txt"
    readme.write_text((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8"),
                      encoding="utf-8")
    ok, png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))
    photo = "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()
    for arg, what in ((str(readme), "README.txt is not a video (FFmpeg reads it as a text file"),
                      (photo, "is not a video (FFmpeg reads it as an image")):
        res = a1111.run_script(_p(processing), [arg])
        assert res.images == [] and res.info.startswith("vid2vid error:") and what in res.info, res.info
        assert "\n" not in res.info and not processing.calls
    assert not any(p.name != "uploads" for p in (tmp_path / "out").iterdir())  # no job folder


class FakeUnit:
    def __init__(self, enabled, image=None):
        self.enabled = enabled
        self.image = image

    def copy(self):  # as pydantic models do
        return FakeUnit(self.enabled, self.image)


class FakeExternalCode:
    def __init__(self, units):
        self.units = units
        self.updated = []

    def get_all_units_in_processing(self, p):
        return self.units

    def update_cn_script_in_processing(self, p, units):
        self.updated.append(list(units))


def test_controlnet_units_get_the_source_frame(host):
    a1111, _, _ = host
    own = np.zeros((4, 4, 3), np.uint8)
    units = [FakeUnit(True), FakeUnit(False), FakeUnit(True, image={"image": own})]
    ext = FakeExternalCode(units)
    bridge = a1111.ControlNetBridge(ext)
    frame = np.full((4, 4, 3), 9, np.uint8)
    assert bridge.apply(object(), frame) == 1
    sent = ext.updated[-1]
    assert sent[0].image["image"] is frame and sent[1].image is None
    assert sent[2].image["image"] is own  # the user's own image for that unit stays
    assert units[0].image is None  # the img2img tab's own units are not modified
    frame2 = np.full((4, 4, 3), 10, np.uint8)
    assert bridge.apply(object(), frame2) == 1 and ext.updated[-1][0].image["image"] is frame2
    assert a1111.ControlNetBridge(None).apply(object(), frame) == 0  # no ControlNet: nothing breaks


def test_forge_controlnet_units_in_script_args(host):
    import dataclasses

    a1111, _, _ = host

    @dataclasses.dataclass
    class ForgeUnit:
        enabled: bool = False
        image: object = None
        image_fg: object = None

    class CN:
        args_from, args_to = 1, 4

        def title(self):
            return "ControlNet"

    class Runner:
        alwayson_scripts = [CN()]

    class P:
        scripts = Runner()
        script_args = ("other", ForgeUnit(True), ForgeUnit(False), {"enabled": True, "image": None}, "after")

    p = P()
    frame = np.full((8, 6, 3), 7, np.uint8)
    assert a1111.ControlNetBridge(object(), forge=True).apply(p, frame) == 2
    assert p.script_args[0] == "other" and p.script_args[4] == "after"
    assert np.array_equal(p.script_args[1].image, frame) and p.script_args[1].image_fg.shape == (8, 6, 4)
    assert p.script_args[2].image is None
    assert np.array_equal(p.script_args[3]["image"], frame)
    assert P.script_args[1].image is None  # the tab's own unit objects are untouched


def test_stop_after_current_image_counts_as_interrupt(host, clip, tmp_path):
    """A1111's Interrupt button under "Don't Interrupt in the middle" only sets stopping_generation, and the
    next process_images returns no image: that is a stop, not an error."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    processing.hooks.append(lambda p, n: setattr(shared.state, "stopping_generation", n == 2))
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=6))
    assert res.vid2vid["status"] == "interrupted", res.info
    assert res.vid2vid["frames_done"] == 2


def test_frame_copies_do_not_share_growing_lists(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    p = _p(processing, extra_result_images=[], latents_after_sampling=[])
    processing.hooks.append(lambda p2, n: p2.extra_result_images.append(n))
    a1111.run_script(p, _args(input=str(clip), max_frames=3))
    assert p.extra_result_images == []
    assert [c.extra_result_images for c in processing.calls] == [[0], [1], [2]]


def test_settings_section_registers_options(host):
    a1111, _, shared = host
    import modules.script_callbacks as cb

    cb.ui_settings_callbacks.clear()
    pytest.importorskip("gradio")
    a1111.register_settings()
    cb.ui_settings_callbacks[0]()
    assert {"vid2vid_output_dir", "vid2vid_keep_frames", "vid2vid_output_format", "vid2vid_crf"} <= set(
        shared.opts.data_labels)


def test_only_host_and_scripts_import_webui_modules():
    offenders = []
    for path in (ROOT / "lib_vid2vid").rglob("*.py"):
        if "host" in path.relative_to(ROOT / "lib_vid2vid").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("modules", "ldm", "sgm")]
    assert not offenders


def test_sigma_preview_text(host):
    a1111, _, _ = host
    text = a1111.sigmas_text({"sigma_schedule": "karras", "sigma_min": 0.03, "sigma_max": 1.0, "rho": 7,
                              "steps": 20, "denoise": 0.5, "sampler": "DDIM"})
    assert "steps" in text and "DDIM" in text  # the tail, and a warning for a sampler that ignores it


def test_sigma_preview_shows_the_hosts_own_schedule(host):
    """With the host schedule the preview shows the tail the WebUI will run, asked from its own sampler."""
    a1111, _, _ = host
    import modules.sd_samplers as sd_samplers

    values = {"sigma_schedule": "host", "steps": 10, "denoise": 0.3, "sampler": "Euler", "scheduler": "Exponential"}
    text = a1111.sigmas_text(values)
    full = sigmas.exponential(10, sd_samplers.SIGMA_MIN, sd_samplers.SIGMA_MAX)
    assert text.splitlines()[0] == sigmas.describe(sigmas.img2img_tail(full, 10, 0.3))
    assert text.startswith("4 steps:") and "Exponential" in text and sd_samplers.asked[-1] == ("Euler", "Exponential", 10)
    # a sampler without sigmas: said in one line, no traceback
    assert "did not give its sigmas" in a1111.sigmas_text({**values, "sampler": "DDIM"})


def test_sigma_preview_handles_cleared_boxes(host):
    """A cleared number box (None) or junk counts as its default: no TypeError, a schedule is still shown."""
    a1111, _, _ = host
    cleared = a1111.sigmas_text({"sigma_schedule": "karras", "sigma_min": None, "sigma_max": None, "rho": "",
                                 "steps": None, "denoise": None, "sampler": "Euler"})
    default = a1111.sigmas_text({"sigma_schedule": "karras", "sigma_min": 0.0292, "sigma_max": 1.0, "rho": 7.0,
                                 "steps": 20, "denoise": 0.45, "sampler": "Euler"})
    assert cleared == default and cleared.startswith("10 steps")
    assert a1111.sigmas_text({"sigma_schedule": "karras", "sigma_min": 5, "sigma_max": 1, "rho": 7,
                              "steps": 20, "denoise": 0.5}).startswith("invalid: ")


def test_depth_mask_uses_the_hosts_midas(host, clip, tmp_path):
    pytest.importorskip("torch")
    a1111, processing, shared = host
    import ldm.modules.midas.api as midas_api
    import modules.sd_models as sd_models

    midas_api.loaded.clear()
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=3, depth_mask=True,
                                                 depth_model="midas_v21_small", depth_low_cut=40))
    assert res.vid2vid["status"] == "done", res.info
    assert midas_api.loaded == ["midas_v21_small"] and sd_models.autodownload_enabled
    assert (Path(res.vid2vid["job_dir"]) / "frames" / "masks" / "000002.png").is_file()


def test_preview_modes_render_without_a_job(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    one = a1111.run_script(_p(processing), _args(input=str(clip), preview_mode="frame", preview_frame=5))
    assert one.vid2vid["status"] == "preview" and len(one.images) == 1 and len(processing.calls) == 1
    assert one.images[0].size == (96, 64)
    processing.calls.clear()
    grid = a1111.run_script(_p(processing), _args(input=str(clip), preview_mode="sweep", preview_frame=2,
                                                  preview_sweep="denoise=0.2,0.6 x cfg_scale=3,9"))
    assert len(processing.calls) == 4 and len(grid.images) == 2  # the grid and the schedule plot
    assert {(c.denoising_strength, c.cfg_scale) for c in processing.calls} == {(0.2, 3), (0.2, 9), (0.6, 3), (0.6, 9)}
    assert not (tmp_path / "out").exists() or not [d for d in (tmp_path / "out").iterdir() if d.name != "uploads"]


def test_fdc_debugger_panel_in_the_script(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input=str(clip), preview_mode="fdc_debug", preview_frame=4,
                                                 fdc_mode="mean_std", motion_mask=True))
    assert res.vid2vid["status"] == "preview", res.info
    panel, output = res.images
    assert panel.size[0] >= 3 * 96 and panel.size[1] >= 2 * 64  # a 3x2 grid of labelled tiles
    assert output.size == (96, 64)
    bad = a1111.run_script(_p(processing), _args(input=str(clip), preview_mode="fdc_debug", preview_frame=0))
    assert "previous frame" in bad.info


def test_prompt_help_counts_tags_across_sampled_frames(host, clip):
    a1111, _, _ = host
    text = a1111.suggest_prompt(str(clip), samples=4)
    tags = [t.strip() for t in text.split(",")]
    assert tags[:2] == ["video", "frame"] or tags[:2] == ["frame", "video"]  # in every sampled frame
    assert any(t.startswith("level_") for t in tags)
    assert "Give a video" in a1111.suggest_prompt("")
    assert "not found" in a1111.suggest_prompt("/nowhere.mp4")


def test_webui_upscalers_are_offered_by_name(host, clip, tmp_path):
    a1111, processing, shared = host
    from lib_vid2vid import postprocess

    a1111.register_postprocess()
    try:
        assert "R-ESRGAN 4x+" in postprocess.available_upscalers()
        shared.opts.vid2vid_output_dir = str(tmp_path / "out")
        res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=3, upscaler="R-ESRGAN 4x+",
                                                     upscale_factor=2, comparison_video=False))
        assert res.vid2vid["status"] == "done", res.info
        from lib_vid2vid import video

        info = video.probe(res.vid2vid["video"])
        assert (info.width, info.height) == (192, 128)
        # a model that cannot load is a clear error, not a silent Lanczos resize
        bad = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=3, upscaler="Missing-model",
                                                     upscale_factor=2, comparison_video=False))
        assert "could not load its model" in bad.info
        ok = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=2, upscaler="Lanczos (WebUI)",
                                                    upscale_factor=2, comparison_video=False))
        assert ok.vid2vid["status"] == "done", ok.info
        assert list(dict.fromkeys(["None", *postprocess.available_upscalers()])).count("None") == 1
    finally:
        postprocess.unregister_upscaler_provider(a1111.webui_upscalers)


def _opener(folder, code, message=""):
    """A stand-in ``xdg-open`` on PATH that records its argument and exits with ``code``."""
    folder.mkdir(exist_ok=True)
    script = folder / "xdg-open"
    script.write_text(f'#!/bin/sh\necho "$1" >> "{folder}/opened"\necho "{message}" >&2\nexit {code}\n')
    script.chmod(0o755)
    return folder / "opened"


def test_open_a_listed_jobs_folder(host, clip, tmp_path, monkeypatch):
    """Open folder says what happened: opened on the server's desktop, or why not, with download links."""
    a1111, processing, shared = host
    import os
    from types import SimpleNamespace

    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=2))
    name = Path(res.vid2vid["job_dir"]).name
    monkeypatch.setenv("DISPLAY", ":0")
    good = _opener(tmp_path / "good", 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'good'}{os.pathsep}{os.environ['PATH']}")
    assert a1111.open_job_folder(name).startswith("Asked the server's desktop to open")
    assert good.read_text().strip() == res.vid2vid["job_dir"]
    _opener(tmp_path / "bad", 3, "xdg-open: no method available for opening")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bad'}{os.pathsep}{os.environ['PATH']}")
    text = a1111.open_job_folder(name)
    assert text.startswith("Cannot open") and "xdg-open failed (xdg-open: no method available" in text
    assert 'data-kind="video"' in text and "download=" in text  # the download offered instead
    remote = SimpleNamespace(client=SimpleNamespace(host="203.0.113.7"))
    assert "this browser is on another machine" in a1111.open_job_folder(name, remote)
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert "no desktop" in a1111.open_job_folder(name)
    assert "report: warp error" in res.info
    shared.cmd_opts.hide_ui_dir_config = True
    try:
        assert "disabled" in a1111.open_job_folder(name)
    finally:
        shared.cmd_opts.hide_ui_dir_config = False
    assert "No job" in a1111.open_job_folder("nope")


# ---- a resumed job is the same job; one writer per job

class _AlwaysOn:
    def __init__(self, title, lo, hi):
        self._title, self.args_from, self.args_to = title, lo, hi

    def title(self):
        return self._title


class _Runner:
    def __init__(self, scripts):
        self.alwayson_scripts = scripts


@dataclasses.dataclass
class CNUnit:
    """As sd-webui-controlnet's units reach script_args (a dataclass, or a pydantic model in some versions)."""

    enabled: bool = True
    module: str = "canny"
    model: str = "control_v11p_sd15_canny"
    weight: float = 1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    image: object = None


def _setup(processing, units=(), ad_model="face_yolov8n.pt", **kw):
    """An img2img p whose script_args hold ControlNet units and ADetailer's args, as the WebUI hands them over."""
    n = len(units)
    runner = _Runner([_AlwaysOn("ControlNet", 1, 1 + n), _AlwaysOn("ADetailer", 1 + n, 3 + n)])
    return _p(processing, scripts=runner, script_args=(0, *units, True, {"ad_model": ad_model}), **kw)


def _interrupted(a1111, processing, shared, p, clip, frames=2, total=5):
    processing.hooks.append(lambda p2, n: setattr(shared.state, "interrupted", n == frames))
    part = a1111.run_script(p, _args(input=str(clip), max_frames=total))
    assert part.vid2vid["status"] == "interrupted" and part.vid2vid["frames_done"] == frames, part.info
    processing.hooks.clear()
    processing.calls.clear()
    shared.state.reset()
    return Path(part.vid2vid["job_dir"])


def test_controlnet_removed_starts_a_new_job_and_says_why(host, clip, tmp_path):
    """The issue's case: interrupted with a ControlNet unit, run again without it."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    part = _interrupted(a1111, processing, shared, _setup(processing, [CNUnit()]), clip, total=8)
    res = a1111.run_script(_setup(processing, [CNUnit(enabled=False)]), _args(input=str(clip), max_frames=8))
    assert res.vid2vid["status"] == "done" and Path(res.vid2vid["job_dir"]) != part
    line = f"not resuming {part.name}: ControlNet unit 0 differs (was control_v11p_sd15_canny, now none)"
    assert line in res.info.splitlines()
    assert line in (Path(res.vid2vid["job_dir"]) / "job.log").read_text()
    assert len(processing.calls) == 8 and Job.open(part).frames_done("pass1") == 2
    processing.calls.clear()
    shared.state.reset()
    again = a1111.run_script(_setup(processing, [CNUnit()]), _args(input=str(clip), max_frames=8))
    assert Path(again.vid2vid["job_dir"]) == part and len(processing.calls) == 6  # same units: resumed
    assert Job.open(part).manifest["host"]["controlnet"][0]["model"] == "control_v11p_sd15_canny"


def _own_image(v):
    img = np.full((64, 96, 3), 40, np.uint8)
    img[10, 10] = v
    return img


@pytest.mark.parametrize("change,fragment", [
    ("nothing", None),
    ("checkpoint", "checkpoint differs (was v1-5-pruned-emaonly.safetensors [6ce0161689], now "
                   "dreamshaper_8.safetensors [879db523c3])"),
    ("vae", "VAE differs (was the checkpoint's own, now vae-ft-mse-840000.safetensors ["),
    ("unit_image", "ControlNet unit 0 differs (image.image: was data "),
    ("unit_weight", "ControlNet unit 0 differs (weight: was 1.0, now 0.6)"),
    ("adetailer", "script ADetailer differs ([1].ad_model: was face_yolov8n.pt, now hand_yolov8n.pt)"),
    ("styles", "img2img styles differs (was [], now [\"noir\"])"),
    ("clip_skip", "option CLIP_stop_at_last_layers differs (was 1, now 2)"),
])
def test_every_part_of_the_hosts_setup_decides_the_job(host, clip, tmp_path, change, fragment):
    a1111, processing, shared = host
    import modules.sd_vae as sd_vae

    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    shared.opts.CLIP_stop_at_last_layers = 1

    def p(unit_image=41, weight=1.0, ad_model="face_yolov8n.pt", styles=()):
        # fresh objects every time, as every click of Generate makes
        unit = CNUnit(weight=weight, image={"image": _own_image(unit_image), "mask": np.zeros((64, 96, 3), np.uint8)})
        return _setup(processing, [unit, CNUnit(enabled=False)], ad_model=ad_model, styles=list(styles))

    part = _interrupted(a1111, processing, shared, p(), clip)
    kw = {}
    if change == "checkpoint":
        shared.sd_model.sd_checkpoint_info = type(shared.sd_model.sd_checkpoint_info)(
            "dreamshaper_8.safetensors", "879db523c30d3b9017143d56705015e15a2cb5628762c11d086fed9538abd7fd")
    elif change == "vae":
        sd_vae.loaded_vae_file = "/models/VAE/vae-ft-mse-840000.safetensors"
    elif change == "unit_image":
        kw["unit_image"] = 42  # one pixel differs
    elif change == "unit_weight":
        kw["weight"] = 0.6
    elif change == "adetailer":
        kw["ad_model"] = "hand_yolov8n.pt"
    elif change == "styles":
        kw["styles"] = ["noir"]
    elif change == "clip_skip":
        shared.opts.CLIP_stop_at_last_layers = 2
    res = a1111.run_script(p(**kw), _args(input=str(clip), max_frames=5))
    assert res.vid2vid["status"] == "done", res.info
    if fragment is None:
        assert Path(res.vid2vid["job_dir"]) == part and len(processing.calls) == 3 and "not resuming" not in res.info
    else:
        assert Path(res.vid2vid["job_dir"]) != part and len(processing.calls) == 5
        assert f"not resuming {part.name}: {fragment}" in res.info


class _ForgeCheckpoint:
    """Forge's CheckpointInfo of a file not hashed before: its short hash is known once computed (at load)."""

    def __init__(self, name):
        self.name, self.title, self.sha256, self.shorthash = name, name, None, None

    def calculate_shorthash(self):
        self.sha256 = "ad5789806f" + "0" * 54
        self.shorthash = self.sha256[:10]
        self.title = f"{self.name} [{self.shorthash}]"
        return self.shorthash


def test_a_job_started_before_forge_loads_its_checkpoint_resumes(host, clip, tmp_path):
    """Forge loads the chosen checkpoint on the first generation after a start: before it, no model is loaded
    and the hash may not be known. A job started then must have the identity it has after the load."""
    a1111, processing, shared = host
    import modules.sd_models as sd_models

    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    info = _ForgeCheckpoint("forge-sd15.safetensors")
    sd_models.model_data = type("ModelData", (), {"forge_loading_parameters": {"checkpoint_info": info}})()
    shared.opts.sd_model_checkpoint = info.title
    shared.sd_model = None

    def load_on_first_use(p, n):
        if shared.sd_model is None:
            info.calculate_shorthash()
            shared.sd_model = type("Model", (), {"sd_checkpoint_info": info, "sd_model_hash": info.shorthash})()

    processing.hooks.append(load_on_first_use)
    part = _interrupted(a1111, processing, shared, _p(processing), clip)
    assert Job.open(part).manifest["host"]["checkpoint"] == {"name": "forge-sd15.safetensors", "hash": "ad5789806f"}
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=5))
    assert Path(res.vid2vid["job_dir"]) == part and "not resuming" not in res.info, res.info
    assert res.vid2vid["status"] == "done" and len(processing.calls) == 3


def test_resuming_a_listed_job_needs_its_setup(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    part = _interrupted(a1111, processing, shared, _setup(processing, [CNUnit()]), clip)
    res = a1111.run_script(_setup(processing, []), _args(input=str(clip), resume_job=part.name))
    assert res.info == (f"vid2vid error: Job {part.name} was made with another setup: ControlNet unit 0 differs "
                        f"(was control_v11p_sd15_canny, now none); restore that setup to resume it, or start a new job")
    assert not processing.calls
    res = a1111.run_script(_setup(processing, [CNUnit()]), _args(input=str(clip), resume_job=part.name))
    assert res.vid2vid["status"] == "done" and Path(res.vid2vid["job_dir"]) == part


def test_second_tab_on_a_running_job_gets_one_line(host, clip, tmp_path):
    import os

    from lib_vid2vid.joblock import JobLock

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    part = _interrupted(a1111, processing, shared, _p(processing), clip)
    with JobLock.acquire(part):  # the first tab's run
        for extra in ({}, {"resume_job": part.name}):
            res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=5, **extra))
            assert res.info.startswith(f"vid2vid error: Job {part.name} is running (PID {os.getpid()} on ")
            assert "\n" not in res.info and res.vid2vid["status"] == "error" and not processing.calls
        res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=5, new_job=True))
        assert res.vid2vid["status"] == "done" and Path(res.vid2vid["job_dir"]) != part
    assert Job.open(part).frames_done("pass1") == 2


def _batch_rows(res):
    return [(Path(v["video"]).name, v["state"]) for v in res.vid2vid["videos"]]


def test_a_folder_batch_through_the_script_interrupt_and_generate_again(host, tmp_path):
    """A folder on the server: each video its own job at its own size (the img2img tab's 96x96 gives the
    long side), the corrupt one fails alone; Interrupt in the second video, Generate again resumes it."""
    from tests.test_batch import _folder

    a1111, processing, shared = host
    folder = _folder(tmp_path)
    args = _args(input=str(folder), init_mode="previous_output")
    shared.opts.vid2vid_output_dir = str(tmp_path / "ref")
    ref = a1111.run_script(_p(processing, width=96, height=96), args)
    names = ["a_portrait.mp4", "b_landscape.video", "c_corrupt.mp4"]
    assert _batch_rows(ref) == list(zip(names, ["done", "done", "failed"])) and ref.vid2vid["status"] == "failed"
    sizes = [Job.open(v["job_dir"]).manifest["plan"] for v in ref.vid2vid["videos"]]
    assert [(s["width"], s["height"]) for s in sizes] == [(64, 96), (96, 64), (96, 96)]
    assert "3. c_corrupt.mp4: failed" in ref.info and "frame 3" in ref.info
    assert len(ref.images) == 2  # a preview of each finished video

    shared.state.reset()
    processing.calls.clear()
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    processing.hooks.append(lambda p, n: setattr(shared.state, "interrupted", n == 8 + 4))
    part = a1111.run_script(_p(processing, width=96, height=96), args)
    assert _batch_rows(part) == list(zip(names, ["done", "interrupted", "pending"]))
    assert part.vid2vid["videos"][1]["frames_done"] == 4 and "Generate again" in part.info
    assert shared.state.textinfo == "vid2vid video 2/3 (b_landscape.video), pass1: frame 4/10"
    assert shared.state.job_count == 10

    processing.hooks.clear()
    processing.calls.clear()
    shared.state.reset()
    again = a1111.run_script(_p(processing, width=96, height=96), args)
    assert _batch_rows(again) == list(zip(names, ["skipped", "done", "failed"]))
    assert [v["job_dir"] for v in again.vid2vid["videos"][:2]] == [v["job_dir"] for v in part.vid2vid["videos"][:2]]
    assert [c.width for c in processing.calls] == [96] * (10 - 4) + [96] * 3  # b's missing frames, then c
    assert [c.height for c in processing.calls] == [64] * (10 - 4) + [96] * 3
    frames = [sorted((Path(r.vid2vid["videos"][1]["job_dir"]) / "frames" / "pass1").glob("*.png")) for r in (ref, again)]
    assert [f.read_bytes() for f in frames[0]] == [f.read_bytes() for f in frames[1]]


def test_a_list_of_paths_and_base64_videos_from_the_api(host, clip, tmp_path):
    from tests.clips import make_clip

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    other = make_clip(tmp_path / "tall.mp4", n_frames=3, size=(64, 96), audio=False)
    data = "data:video/mp4;base64," + base64.b64encode(Path(clip).read_bytes()).decode()
    args = _args(max_frames=3)
    args[params.api_arg_names().index("input")] = [data, str(other), str(tmp_path / "missing.mp4")]
    res = a1111.run_script(_p(processing), args)
    rows = res.vid2vid["videos"]
    assert [v["state"] for v in rows] == ["done", "done", "failed"] and res.vid2vid["status"] == "failed"
    assert Path(rows[0]["video"]).parent == tmp_path / "out" / "uploads"
    assert all(Path(v["output"]).is_file() for v in rows[:2]) and "not found" in rows[2]["error"]
    assert Path(res.vid2vid["batch"]).name == "batch.json"


# ---- what the host does on every frame, said in the result

class _Restorer:
    """As A1111's CodeFormer/GFPGAN restorers: ``net`` stays None when the model cannot load."""

    def __init__(self, name, net):
        self._name, self.net = name, net

    def name(self):
        return self._name


@pytest.mark.parametrize("restorers,restore,said", [
    ([_Restorer("CodeFormer", None)], True, "could not load the CodeFormer model"),
    ([_Restorer("GFPGAN", object())], True, "no face restorer 'CodeFormer'"),
    ([_Restorer("CodeFormer", object())], True, None),
    ([_Restorer("CodeFormer", None)], False, None),
])
def test_restore_faces_that_does_nothing_is_said_once(host, clip, tmp_path, capsys, restorers, restore, said):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    shared.face_restorers = restorers
    shared.opts.face_restoration_model = "CodeFormer"
    res = a1111.run_script(_p(processing, restore_faces=restore), _args(input=str(clip), max_frames=3))
    assert res.vid2vid["status"] == "done"
    log = (Path(res.vid2vid["job_dir"]) / "job.log").read_text()
    if said is None:
        assert res.vid2vid["notices"] == [] and "Restore faces" not in log + res.info
        return
    assert len(res.vid2vid["notices"]) == 1 and said in res.vid2vid["notices"][0]
    assert res.info.count(said) == 1 and log.count(said) == 1  # once, not once per frame
    assert capsys.readouterr().out.count(said) == 1  # the console too
    assert Job.open(res.vid2vid["job_dir"]).manifest["warnings"] == res.vid2vid["notices"]


def test_restore_faces_that_does_nothing_is_said_in_every_job_of_a_batch(host, tmp_path, capsys):
    """One renderer serves the whole batch and finds the note on its first frame; each job's log still says it
    once (its frames are affected too), the reply and the console once."""
    from tests.clips import make_clip

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    shared.face_restorers = [_Restorer("CodeFormer", None)]
    shared.opts.face_restoration_model = "CodeFormer"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(folder / name, n_frames=3, size=(64, 64), audio=False)
    res = a1111.run_script(_p(processing, restore_faces=True), _args(input=str(folder)))
    said = "could not load the CodeFormer model"
    rows = res.vid2vid["videos"]
    assert [v["state"] for v in rows] == ["done", "done"]
    for v in rows:
        assert (Path(v["job_dir"]) / "job.log").read_text().count(said) == 1
        assert len(v["notices"]) == 1 and said in v["notices"][0]
    assert res.vid2vid["notices"] == rows[0]["notices"] and res.info.count(said) == 1
    assert capsys.readouterr().out.count(said) == 1


def test_adetailer_entries_reach_the_api_reply_of_a_batch(host, clip, tmp_path, monkeypatch):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    plain = processing.process_images

    def with_adetailer(p):
        processed = plain(p)
        processed.infotexts = [text + ", ADetailer model: face_yolov8n.pt, ADetailer version: 24.1"
                               for text in processed.infotexts]
        return processed

    monkeypatch.setattr(processing, "process_images", with_adetailer)
    args = _args(max_frames=2)
    args[params.api_arg_names().index("input")] = [str(clip)]
    res = a1111.run_script(_setup(processing), args)
    assert [v["state"] for v in res.vid2vid["videos"]] == ["done"]
    assert res.vid2vid["frame_params"]["ADetailer model"] == "face_yolov8n.pt"
    assert "other scripts on every frame: ADetailer model: face_yolov8n.pt, ADetailer version: 24.1" in res.info


def test_adetailer_entries_reach_the_api_reply(host, clip, tmp_path, monkeypatch):
    """ADetailer runs inside process_images on every frame and writes its entries into the infotext."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    plain = processing.process_images

    def with_adetailer(p):
        processed = plain(p)
        extra = ', ADetailer model: face_yolov8n.pt, ADetailer prompt: "smile, closed mouth", ADetailer version: 24.1'
        processed.infotexts = [text + extra for text in processed.infotexts]
        return processed

    monkeypatch.setattr(processing, "process_images", with_adetailer)
    p = _setup(processing)
    res = a1111.run_script(p, _args(input=str(clip), max_frames=2))
    frame = res.vid2vid["frame_params"]
    assert frame["ADetailer model"] == "face_yolov8n.pt" and frame["ADetailer prompt"] == "smile, closed mouth"
    assert frame["Steps"] == "8"
    assert p.extra_generation_params["vid2vid_frame_params"] == frame  # the API reply's info JSON holds these
    assert ("other scripts on every frame: ADetailer model: face_yolov8n.pt, ADetailer prompt: smile, closed "
            "mouth, ADetailer version: 24.1") in res.info
    png = Job.open(res.vid2vid["job_dir"]).frame_path("pass1", 1)
    from lib_vid2vid.workspace import read_png_text

    assert a1111.frame_params(read_png_text(png)["parameters"]) == frame  # as in each frame's PNG
    # keyframes (the default): the host renders, and ADetailer acts on, the keyframes only; the line says so
    res = a1111.run_script(_setup(processing), _args(input=str(clip), max_frames=6, keyframe_mode="adaptive"))
    assert res.vid2vid["status"] == "done" and "other scripts on every keyframe: ADetailer model" in res.info


@pytest.mark.parametrize("upload", [False, True], ids=["paths", "upload"])
def test_cli_submits_a_batch_to_the_script(host, tmp_path, capsys, upload):
    """python -m lib_vid2vid FOLDER --submit: one request whose video argument lists the videos; the Script (here
    behind a fake WebUI's HTTP API) runs each as its own job; the CLI prints the table from the reply."""
    import json

    from lib_vid2vid import __main__ as cli_main
    from tests.fake_webui import FakeWebUI, json_reply
    from tests.test_batch import _folder

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "server")
    folder = _folder(tmp_path)
    with FakeWebUI() as web:
        def run_script(h):
            body = web.payloads[0]
            p = _p(processing, prompt=body["prompt"], seed=body["seed"], width=body["width"], height=body["height"],
                   denoising_strength=body["denoising_strength"], steps=body["steps"])
            a1111.run_script(p, body["script_args"])
            json_reply({"images": [], "info": json.dumps({"extra_generation_params": p.extra_generation_params})})(h)

        web.reply[0] = run_script
        argv = [str(folder), "--submit", "--api-url", web.url, "--prompt", "ink", "--seed", "7", "--width", "96",
                "--output-dir", str(tmp_path / "local"), *(["--upload"] if upload else [])]
        assert cli_main.main(argv) == cli_main.EXIT_ERROR  # the corrupt video failed
    sent = web.payloads[0]["script_args"][params.api_arg_names().index("input")]
    assert len(sent) == 3 and (sent[0] == str(folder / "a_portrait.mp4")) != upload
    assert (web.payloads[0]["width"], web.payloads[0]["height"]) == (96, 96)  # the long side
    lines = capsys.readouterr().out.splitlines()
    table = lines[[k for k, line in enumerate(lines) if line.startswith("video ")][0]:]  # after the server's lines
    assert [row.split()[3] for row in table[1:4]] == ["done", "done", "failed"]
    assert table[1].split()[1] == "8/8" and "frame 3" in table[3]
    rows = json.loads((tmp_path / "server" / "batch.json").read_text())["videos"]
    assert [(r["width"], r["height"]) for r in rows] == [(64, 96), (96, 64), (96, 96)]
    assert not (tmp_path / "local").exists()  # the jobs live on the server


# ---- the result area, progress, jobs (issue 17)

def _served(monkeypatch):
    """A stand-in for the WebUI's ui_tempdir.register_tmp_file: records the files it is asked to serve."""
    import types

    served = []
    fake = types.ModuleType("modules.ui_tempdir")
    fake.register_tmp_file = lambda demo, name: served.append(name)
    monkeypatch.setitem(sys.modules, "modules.ui_tempdir", fake)
    return served


def test_result_area_plays_the_video_and_links_every_file(host, clip, tmp_path, monkeypatch):
    """The result carries the job's files; the result area shows the video in a player whose URL is the
    WebUI's file route for a file it was told to serve, and links the comparison video, zip and report."""
    import html as _html
    import re
    import urllib.parse

    from lib_vid2vid import ui_result

    a1111, processing, shared = host
    served = _served(monkeypatch)
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=4, zip_result=True))
    files = res.vid2vid["files"]
    assert {"video", "comparison", "zip", "report", "log"} <= set(files)
    page = a1111.result_area(ui_result.extract(res.js()))
    src = _html.unescape(re.search(r'<video[^>]*id="vid2vid_player"[^>]*src="([^"]+)"', page).group(1))
    assert src.startswith("file=") and urllib.parse.unquote(src[len("file="):]) == files["video"]
    assert files["video"] in served
    for kind in ("zip", "report", "comparison"):
        assert f'data-kind="{kind}"' in page
    assert "Warp error" in page and "Reading:" in page  # the report with its scale


def test_result_area_shows_an_error_box_in_the_uis_words(host, clip, tmp_path):
    from lib_vid2vid import ui_result

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input="/nowhere/clip.mp4"))
    assert "Upload the video in the Video tab" in res.info and "base64" not in res.info
    page = a1111.result_area(ui_result.extract(res.js()))
    assert 'class="vid2vid-error" role="alert"' in page and "Upload the video in the Video tab" in page
    # the API keeps its own words
    api = a1111.run_script(_p(processing, is_api=True), _args(input="/nowhere/clip.mp4"))
    assert "base64 video data" in api.info
    # a setting named by its label and tab in the UI
    args = _args(input=str(clip))
    args[params.api_arg_names().index("temporal_weights")] = "1,2"
    bad = a1111.run_script(_p(processing), args)
    assert "Neighbour weights (Temporal tab):" in bad.info


def test_stills_are_of_the_final_video_after_post_stages(host, clip, tmp_path):
    """The gallery shows frames of the exported video: after a 2x upscale they have the upscaled size."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=4, upscaler="Lanczos",
                                                 upscale_factor=2, comparison_video=False))
    assert res.vid2vid["status"] == "done", res.info
    assert len(res.images) == 3 and {im.size for im in res.images} == {(192, 128)}


def test_webui_progress_counts_the_done_frames_of_a_resumed_job(host):
    """Resumed at 125/250: the bar shows 50% after frame 126 (not 1%) and ends at 100%, and the WebUI's ETA
    (elapsed / share - elapsed) equals the loop's estimate for the frames left."""
    from lib_vid2vid.loop import Progress

    a1111, _, shared = host
    state = shared.state
    now = [1000.0]
    bar = a1111.WebUIProgress(state, passes=1, clock=lambda: now[0])
    bar.update(Progress("pass1", 126, 250, eta_s=124 * 2.0))
    assert (state.job_no, state.job_count) == (126, 250)
    share = state.job_no / state.job_count
    elapsed = now[0] - state.time_start
    assert elapsed / share - elapsed == pytest.approx(248.0)
    bar.update(Progress("pass1", 250, 250, eta_s=0.0))
    assert state.job_no == state.job_count == 250
    two = a1111.WebUIProgress(state, passes=2, clock=lambda: now[0])
    two.update(Progress("pass2", 10, 250, eta_s=100.0))
    assert (state.job_no, state.job_count) == (260, 500)
    two.update(Progress("upscaled", 3, 500))  # post stages leave the bar alone
    assert state.job_no == 260


def test_a_resumed_job_in_the_webui_ends_at_full_progress(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    processing.hooks.append(lambda p, n: setattr(shared.state, "interrupted", n == 3))
    a1111.run_script(_p(processing), _args(input=str(clip), max_frames=6))
    processing.hooks.clear()
    shared.state.reset()
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=6))
    assert res.vid2vid["status"] == "done"
    assert shared.state.job_no == shared.state.job_count == 6


def test_finished_job_is_cleared_from_resume_job(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=2))
    name = Path(res.vid2vid["job_dir"]).name
    assert a1111.clear_finished_resume(res.vid2vid, name) == ""
    assert a1111.clear_finished_resume(res.vid2vid, "another-job") == "another-job"
    assert a1111.clear_finished_resume({**res.vid2vid, "status": "interrupted"}, name) == name


def test_jobs_tab_states_and_delete(host, clip, tmp_path):
    """Each job with its state (done, interrupted, failed with its error, running), and delete."""
    from lib_vid2vid.joblock import JobLock
    from lib_vid2vid.workspace import Job

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    done = Path(a1111.run_script(_p(processing), _args(input=str(clip), max_frames=2)).vid2vid["job_dir"])
    processing.calls.clear()
    processing.hooks.append(lambda p, n: setattr(shared.state, "interrupted", n == 1))
    part = Path(a1111.run_script(_p(processing), _args(input=str(clip), max_frames=4)).vid2vid["job_dir"])
    processing.hooks.clear()
    shared.state.reset()
    failed = Job.open(part)
    states = dict((n, label) for label, n in a1111.list_jobs_with_state())
    assert states[done.name].startswith(f"{done.name}: done")
    assert states[part.name].startswith(f"{part.name}: interrupted") and "pass1 1/4" in states[part.name]
    failed.set_status("failed", error="Cannot decode frame 2")
    failed.close()
    assert dict((n, label) for label, n in a1111.list_jobs_with_state())[part.name].endswith(
        "failed: Cannot decode frame 2 (pass1 1/4)")
    lock = JobLock.acquire(part)
    try:
        assert "running" in dict((n, label) for label, n in a1111.list_jobs_with_state())[part.name]
        assert "is running" in a1111.delete_job(part.name) and part.is_dir()
    finally:
        lock.release()
    assert a1111.delete_job(part.name) == f"Deleted {part.name}." and not part.exists()
    assert [n for _l, n in a1111.list_jobs_with_state()] == [done.name]
    assert "<strong>done</strong>" in a1111.job_folder(done.name)


def test_the_webuis_own_resize_mode_applies(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    s = a1111.settings_from_script(_p(processing, resize_mode=1), _args(input=str(clip)))
    assert s.video.resize_mode == "crop_and_resize"
    s = a1111.settings_from_script(_p(processing, resize_mode=1), _args(input=str(clip), resize_mode="resize_and_fill"))
    assert s.video.resize_mode == "resize_and_fill"  # an API caller that set ours keeps it


def test_controlnet_merge_mode_unit_gets_a_list(host):
    """A unit in sd-webui-controlnet's "Merge" input mode takes a list of images (its unfold asserts
    ``isinstance(unit.image, list)``): an empty one gets [the frame], one with its own images keeps them."""
    import enum

    a1111, _, _ = host

    class InputMode(enum.Enum):
        SIMPLE = "simple"
        MERGE = "merge"

    empty = FakeUnit(True, image=None)
    empty.input_mode = InputMode.MERGE
    empty_list = FakeUnit(True, image=[])
    empty_list.input_mode = InputMode.MERGE
    own = FakeUnit(True, image=[{"image": np.zeros((4, 4, 3), np.uint8)}])
    own.input_mode = InputMode.MERGE
    for u in (empty, empty_list, own):
        u.copy = (lambda u=u: _copy_with_mode(u))
    ext = FakeExternalCode([empty, empty_list, own])
    frame = np.full((4, 4, 3), 9, np.uint8)
    assert a1111.ControlNetBridge(ext).apply(object(), frame) == 2
    sent = ext.updated[-1]
    for unit in sent[:2]:
        assert isinstance(unit.image, list) and unit.image[0]["image"] is frame
    assert sent[2].image is own.image


def _copy_with_mode(unit):
    out = FakeUnit(unit.enabled, unit.image)
    out.input_mode = unit.input_mode
    return out


def test_a_units_own_control_video_and_folder(host, clip, tmp_path, monkeypatch):
    """controlnet_inputs: unit 1 takes frame i of its own control video (decoded like the source), unit 2
    the i-th image of a folder; unit 0 (empty) the source frame."""
    from fractions import Fraction

    from PIL import Image

    from lib_vid2vid import control_inputs, video
    from tests.clips import make_clip

    a1111, processing, shared = host
    control = make_clip(tmp_path / "pose.mp4", n_frames=24, size=(96, 64), fps=Fraction(24))
    folder = tmp_path / "depth"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 48, 3), 50 + 100 * i, np.uint8)).save(folder / f"{i:04d}.png")
    text = f"1: {control}\n2: {folder}"
    assert control_inputs.parse(text) == {1: str(control), 2: str(folder)}
    with pytest.raises(Exception, match="UNIT: path"):
        control_inputs.parse("pose.mp4")
    with pytest.raises(Exception, match="does not exist"):
        control_inputs.check("0: /nowhere/pose.mp4")
    frames = control_inputs.ControlFrames(control_inputs.check(text), size=(96, 64))
    want = [rgb for _i, rgb in video.iter_frames(control, size=(96, 64))]
    for i in (0, 1, 2, 1, 3):  # forward, and back again (a second loopback pass)
        got = frames.frames(i)
        assert np.array_equal(got[1], want[i])
        assert got[2].shape == (64, 96, 3) and int(got[2][0, 0, 0]) == (50 if i == 0 else 150)  # the last holds

    units = [FakeUnit(True), FakeUnit(True), FakeUnit(True)]
    ext = FakeExternalCode(units)
    bridge = a1111.ControlNetBridge(ext)
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    from lib_vid2vid.host import a1111 as mod

    seen = []
    original = mod.A1111Renderer._frame_p

    def spy(self, req):
        p2 = original(self, req)
        seen.append([u.image["image"] for u in ext.updated[-1]])
        return p2

    monkeypatch.setattr(mod.ControlNetBridge, "find", classmethod(lambda cls: bridge))
    monkeypatch.setattr(mod.A1111Renderer, "_frame_p", spy)
    res = a1111.run_script(_p(processing), _args(input=str(clip), max_frames=3, controlnet_inputs=text))
    assert res.vid2vid["status"] == "done", res.info
    src = [rgb for _i, rgb in video.iter_frames(clip, size=(96, 64))]
    ctl = [rgb for _i, rgb in video.iter_frames(control, size=(96, 64))]
    for i, images in enumerate(seen):
        assert np.array_equal(images[0], src[i]) and np.array_equal(images[1], ctl[i])
        assert int(images[2][0, 0, 0]) == (50 if i == 0 else 150)


class _ApiScripts:
    """The WebUI's script runner as the API sees it: an always-on script (2 args), vid2vid (one slot per API
    setting) and another selectable script (3 args) after it."""

    def __init__(self):
        from types import SimpleNamespace

        n = len(params.api_arg_names())
        self.always = SimpleNamespace(args_from=1, args_to=3)
        self.vid2vid = SimpleNamespace(args_from=3, args_to=3 + n)
        self.after = SimpleNamespace(args_from=3 + n, args_to=6 + n)
        self.scripts = [self.always, self.vid2vid, self.after]

    def request(self, processing, script_args):
        """(p, the args vid2vid's run gets) for ``script_args``, as A1111 1.10's Api.init_script_args and
        ScriptRunner.run build them: every script's defaults, the request's list in place of vid2vid's slice."""
        full = [0, "always-a", "always-b"] + _args() + ["after-a", "after-b", "after-c"]
        full[self.vid2vid.args_from:self.vid2vid.args_to] = script_args
        full[0] = 1
        p = _p(processing, is_api=True, scripts=self, script_args=full)
        return p, full[self.vid2vid.args_from:self.vid2vid.args_to]


def test_api_script_args_by_name(host, clip, tmp_path):
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    api = _ApiScripts()
    p, args = api.request(processing, [{"input": str(clip), "max_frames": 3, "colour_coherence": False}])
    assert args[1:4] == ["after-a", "after-b", "after-c"]  # what follows the dict is the next script's
    res = a1111.run_script(p, args, script=api.vid2vid)
    assert res.vid2vid["status"] == "done", res.info
    job = Job.open(res.vid2vid["job_dir"])
    assert job.frames_done("pass1") == 3 and job.manifest["settings"]["colour_coherence"] is False
    for named, fragment in (({"fsp": 12}, "fsp: unknown setting"), ({"prompt": "x"}, "prompt: not a script arg")):
        p, args = api.request(processing, [named])
        res = a1111.run_script(p, args, script=api.vid2vid)
        assert res.vid2vid["status"] == "error" and fragment in res.info and "\n" not in res.info


def test_api_resumes_a_job_by_name_without_its_video_and_renders_keyframes_again(host, clip, tmp_path):
    """``resume_job`` alone brings the job's video and settings (plan, progress); with ``redo_keyframes`` the
    named keyframes are rendered again with another seed first, and only they are rendered."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    api = _ApiScripts()
    p, args = api.request(processing, [{"input": str(clip), "max_frames": 9, "keyframe_mode": "interval",
                                        "keyframe_interval": 4}])
    p.sampler_name, p.scheduler = "DPM++ 2M", "Karras"
    res = a1111.run_script(p, args, script=api.vid2vid)
    assert res.vid2vid["status"] == "done" and len(processing.calls) == 3, res.info  # keyframes 0, 4, 8
    name = Path(res.vid2vid["job_dir"]).name
    processing.calls.clear()
    shared.state.reset()
    p, args = api.request(processing, [{"resume_job": name, "redo_keyframes": "4"}])
    res = a1111.run_script(p, args, script=api.vid2vid)
    assert res.vid2vid["status"] == "done" and len(processing.calls) == 1, res.info
    call = processing.calls[0]  # the job's sampler, not the request's (Euler)
    assert (call.sampler_name, call.scheduler) == ("DPM++ 2M", "Karras")
    job = Job.open(res.vid2vid["job_dir"])
    assert job.root.name == name and job.manifest["keyframes"]["reseed"] == {"4": 1}
    assert shared.state.job_count == 9, "the progress counts the job's own frames"
    processing.calls.clear()
    p, args = api.request(processing, [{"resume_job": name, "redo_keyframes": "8", "input": "/gone/clip.mp4"}])
    res = a1111.run_script(p, args, script=api.vid2vid)  # a stale video in the box does not stop the resume
    assert res.vid2vid["status"] == "done" and len(processing.calls) == 1, res.info
    p, args = api.request(processing, [{"resume_job": "no-such-job", "redo_keyframes": "4"}])
    res = a1111.run_script(p, args, script=api.vid2vid)
    assert res.vid2vid["status"] == "error" and "No job 'no-such-job'" in res.info and "\n" not in res.info


def test_cli_submit_resumes_a_job_on_the_webui_and_renders_keyframes_again(host, clip, tmp_path, capsys):
    """python -m lib_vid2vid --submit --resume JOB --redo-keyframes 4: one request that names the job (in the
    WebUI's output folder) and the keyframes by name, no video; the Script renders keyframe 4 again, then resumes."""
    import json

    from lib_vid2vid import __main__ as cli_main
    from tests.fake_webui import FakeWebUI, json_reply

    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "server")
    api = _ApiScripts()
    p, args = api.request(processing, [{"input": str(clip), "max_frames": 9, "keyframe_mode": "interval",
                                        "keyframe_interval": 4}])
    res = a1111.run_script(p, args, script=api.vid2vid)
    assert res.vid2vid["status"] == "done", res.info
    name = Path(res.vid2vid["job_dir"]).name
    processing.calls.clear()
    with FakeWebUI() as web:
        def run_script(h):
            p, args = api.request(processing, web.payloads[-1]["script_args"])
            a1111.run_script(p, args, script=api.vid2vid)
            json_reply({"images": [], "info": json.dumps({"extra_generation_params": p.extra_generation_params})})(h)

        web.reply[0] = run_script
        argv = ["--submit", "--resume", name, "--redo-keyframes", "4", "--api-url", web.url,
                "--output-dir", str(tmp_path / "local")]
        assert cli_main.main(argv) == 0
    assert web.payloads[0]["script_args"] == [{"resume_job": name, "redo_keyframes": "4"}]
    assert len(processing.calls) == 1  # keyframe 4 alone
    assert Job.open(res.vid2vid["job_dir"]).manifest["keyframes"]["reseed"] == {"4": 1}
    assert "vid2vid: done, 9/9 frames" in capsys.readouterr().out
    assert not (tmp_path / "local").exists()  # the job lives on the server
    with pytest.raises(SystemExit):
        cli_main.main(["--submit", "--resume", name, "--upload", "--api-url", "http://127.0.0.1:9"])
    assert "leave out --upload" in capsys.readouterr().err


@pytest.mark.parametrize("change", [-1, 1])
def test_api_positional_script_args_of_another_length_are_one_line(host, clip, tmp_path, change):
    """A list built for a version with one setting fewer (or more): the values after it would shift."""
    a1111, processing, shared = host
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    api = _ApiScripts()
    full = _args(input=str(clip), max_frames=2)
    p, args = api.request(processing, full)
    assert a1111.run_script(p, args, script=api.vid2vid).vid2vid["status"] == "done"
    wrong = full[:-1] if change < 0 else full + [None]
    p, args = api.request(processing, wrong)
    res = a1111.run_script(p, args, script=api.vid2vid)
    n = len(params.api_arg_names())
    assert res.vid2vid["status"] == "error" and "\n" not in res.info
    assert f"script_args: got {n + change} values but this vid2vid takes {n}" in res.info
    assert len(processing.calls) == 2  # the full list's job only


# ------------------------------------------------------------------ image to video (the Script's SVD mode)


from lib_vid2vid.img2vid import webui_missing_packages as _REAL_MISSING  # noqa: E402


def _svd_host(a1111, monkeypatch, generator, shared, tmp_path, model="/models/svd-xt"):
    """The mode with a stand-in SVD (tests/test_img2vid.FakeSVD) behind the WebUI's generator cache."""
    from lib_vid2vid import img2vid

    made = []

    def factory(model, config=None, device="auto"):
        made.append((model, config, device))
        return generator

    monkeypatch.setattr(a1111, "_SVD", img2vid.GeneratorCache(factory))
    monkeypatch.setattr(img2vid, "webui_missing_packages", lambda: None)
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    shared.opts.vid2vid_svd_model = model
    return made


def _photo(seed=0, size=(96, 64)):
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def test_image_to_video_mode_makes_an_mp4_of_the_img2img_image(host, tmp_path, monkeypatch):
    """The img2img image and seed, a job under <output>/img2vid, the mp4 in the result area like a vid2vid job;
    no frame goes through the WebUI's sampler. Generate again: the same job, already done."""
    import html as _html
    import re
    import urllib.parse

    from lib_vid2vid import ui_result, video
    from tests.test_img2vid import FakeSVD

    a1111, processing, shared = host
    fake = FakeSVD(native=4)
    made = _svd_host(a1111, monkeypatch, fake, shared, tmp_path)
    served = _served(monkeypatch)
    args = _args(svd_mode=True, svd_frames=7, svd_width=64, svd_height=64, svd_steps=2)
    res = a1111.run_script(_p(processing, init_images=[_photo()]), args)
    assert "vid2vid image to video: done, 1/1 images" in res.info, res.info
    assert processing.calls == []  # the WebUI's sampler is not used
    assert made == [("/models/svd-xt", None, "auto")]
    job = Path(res.vid2vid["job_dir"])
    assert job.parent == tmp_path / "out" / "img2vid"
    manifest = Job.open(job).manifest
    assert manifest["kind"] == "img2vid" and manifest["resolved_seed"] == 77  # the img2img tab's seed
    assert fake.calls == [77, 78]  # 4 + 3 frames: two clips of 4, the second drops its copy of frame 3
    assert video.probe(res.vid2vid["output"]).frame_count == 7
    assert len(res.images) == 3  # first, middle, last frame of the mp4
    page = a1111.result_area(ui_result.extract(res.js()))
    src = _html.unescape(re.search(r'<video[^>]*id="vid2vid_player"[^>]*src="([^"]+)"', page).group(1))
    assert urllib.parse.unquote(src[len("file="):]) == res.vid2vid["output"] and res.vid2vid["output"] in served
    assert 'data-kind="log"' in page
    again = a1111.run_script(_p(processing, init_images=[_photo()]), args)
    assert again.vid2vid["job_dir"] == str(job) and fake.calls == [77, 78]
    assert "made by an earlier run" in a1111.result_area(ui_result.extract(again.js()))
    assert len(made) == 1  # the model stayed loaded


def test_image_to_video_mode_interrupt_and_generate_again_resumes(host, tmp_path, monkeypatch):
    from tests.test_img2vid import FakeSVD

    a1111, processing, shared = host
    full_fake = FakeSVD(native=4)
    _svd_host(a1111, monkeypatch, full_fake, shared, tmp_path / "a")
    args = _args(svd_mode=True, svd_frames=10, svd_width=64, svd_height=64)
    full = a1111.run_script(_p(processing, init_images=[_photo()]), args)

    fake = FakeSVD(native=4)
    _svd_host(a1111, monkeypatch, fake, shared, tmp_path / "b")
    original = fake.clip

    def clip_then_interrupt(image, **kw):
        shared.state.interrupted = True
        return original(image, **kw)

    fake.clip = clip_then_interrupt
    part = a1111.run_script(_p(processing, init_images=[_photo()]), args)
    assert part.vid2vid["status"] == "interrupted" and "press Generate again" in part.info
    assert part.vid2vid["frames_done"] == 4
    shared.state.reset()
    fake.clip = original
    resumed = a1111.run_script(_p(processing, init_images=[_photo()]), args)
    assert resumed.vid2vid["status"] == "done" and resumed.vid2vid["job_dir"] == part.vid2vid["job_dir"]

    def frames(res):
        return [f.read_bytes() for f in sorted((Path(res.vid2vid["job_dir"]) / "frames" / "svd").glob("*.png"))]

    assert len(frames(full)) == 10 and frames(resumed) == frames(full)


def test_image_to_video_mode_a_folder_on_the_server(host, tmp_path, monkeypatch):
    from tests.test_img2vid import FakeSVD

    a1111, processing, shared = host
    _svd_host(a1111, monkeypatch, FakeSVD(native=3), shared, tmp_path)
    folder = tmp_path / "stills"
    folder.mkdir()
    for n in range(2):
        _photo(n).save(folder / f"s{n}.png")
    (folder / "notes.txt").write_text("not an image")
    res = a1111.run_script(_p(processing), _args(svd_mode=True, svd_images=str(folder), svd_width=64, svd_height=64))
    rows = res.vid2vid["videos"]
    assert [(r["video"], r["state"], r["frames_done"]) for r in rows] == [("s0.png", "done", 3), ("s1.png", "done", 3)]
    assert all(Path(r["output"]).is_file() for r in rows)


@pytest.mark.parametrize("setup, fragment", [
    ({"model": ""}, 'set its path in Settings > vid2vid > "Stable Video Diffusion model"'),
    ({"missing": True}, "-m pip install diffusers==0.31.0"),
    ({"image": False}, "Image to video needs an image: put one in the img2img tab's image box"),
    ({"svd_width": 100}, "Width (px) (Image to video tab): 100 px: use a multiple of 64"),
])
def test_image_to_video_mode_errors_are_one_line(host, tmp_path, monkeypatch, setup, fragment):
    from lib_vid2vid import img2vid
    from tests.test_img2vid import FakeSVD

    a1111, processing, shared = host
    _svd_host(a1111, monkeypatch, FakeSVD(), shared, tmp_path, model=setup.get("model", "/models/svd"))
    if setup.get("missing"):  # the WebUI's Python without diffusers (A1111 1.10)
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "diffusers" else real(name, *a))
        monkeypatch.setattr(img2vid, "webui_missing_packages", _REAL_MISSING)
    width = {"svd_width": setup["svd_width"]} if "svd_width" in setup else {}
    images = [_photo()] if setup.get("image", True) else [None]
    res = a1111.run_script(_p(processing, init_images=images), _args(svd_mode=True, **width))
    assert res.vid2vid["status"] == "error" and fragment in res.info, res.info
    assert "\n" not in res.vid2vid["error"]
    assert not (tmp_path / "out" / "img2vid").exists() or not any((tmp_path / "out" / "img2vid").glob("*/manifest.json"))


class _Parking:
    def __init__(self, log):
        self.log = log

    def park(self):
        self.log.append("svd parked")

    def unpark(self):
        self.log.append("svd on gpu")


def test_sd_model_leaves_the_gpu_while_svd_runs_on_a1111(host, monkeypatch):
    """On a GPU: the SD model to the CPU before SVD loads onto the GPU, back after (even when SVD fails), SVD
    parked in RAM; on the CPU or with the option off nothing moves."""
    import modules.sd_models as sd_models

    a1111, _, shared = host
    log = []
    monkeypatch.setattr(sd_models, "send_model_to_cpu", lambda m: log.append(f"{m} to cpu"), raising=False)
    monkeypatch.setattr(sd_models, "send_model_to_device", lambda m: log.append(f"{m} to gpu"), raising=False)
    monkeypatch.setattr(shared, "sd_model", "sd", raising=False)
    monkeypatch.setitem(sys.modules, "backend", None)  # not Forge
    with a1111.SDModelOffDevice("cuda:0", True) as moved:
        log.append("load svd")
        moved.use(_Parking(log))
    assert log == ["sd to cpu", "load svd", "svd on gpu", "svd parked", "sd to gpu"]
    assert "moved to the CPU while SVD ran" in moved.note
    log.clear()
    with pytest.raises(RuntimeError), a1111.SDModelOffDevice("cuda", True) as moved:
        moved.use(_Parking(log))
        raise RuntimeError("out of memory")
    assert log == ["sd to cpu", "svd on gpu", "svd parked", "sd to gpu"]
    for device, enabled in (("cpu", True), ("cuda:0", False)):
        log.clear()
        with a1111.SDModelOffDevice(device, enabled) as moved:
            moved.use(_Parking(log))
        assert log == [] and moved.note == ""


def test_forge_unloads_its_models_while_svd_runs(host, monkeypatch):
    import types

    a1111, _, _ = host
    log = []
    mm = types.SimpleNamespace(unload_all_models=lambda: log.append("unload"),
                               soft_empty_cache=lambda: log.append("empty cache"))
    monkeypatch.setitem(sys.modules, "backend", types.SimpleNamespace(memory_management=mm))
    monkeypatch.setitem(sys.modules, "backend.memory_management", mm)
    with a1111.SDModelOffDevice("cuda:0", True) as moved:
        moved.use(_Parking(log))
    assert log == ["unload", "empty cache", "svd on gpu", "svd parked"] and "Forge" in moved.note


def test_image_to_video_mode_with_a_tiny_svd_model(host, tmp_path, monkeypatch, tiny_models):
    """The real SVD pipeline (tiny random weights) inside the Script: frames, fps and the mp4."""
    from tests.diffusers_skip import require_diffusers

    require_diffusers()
    from lib_vid2vid import img2vid, video

    a1111, processing, shared = host
    monkeypatch.setattr(a1111, "_SVD", img2vid.GeneratorCache())
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    shared.opts.vid2vid_svd_model = str(tiny_models("svd"))
    res = a1111.run_script(_p(processing, init_images=[_photo()]),
                           _args(svd_mode=True, svd_width=64, svd_height=64, svd_steps=1, svd_frames=5, svd_fps_id=9))
    assert res.vid2vid["status"] == "done", res.info
    info = video.probe(res.vid2vid["output"])
    assert (info.frame_count, info.width, info.height, round(info.fps)) == (5, 64, 64, 10)
