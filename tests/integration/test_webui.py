"""vid2vid inside a real WebUI (AUTOMATIC1111 and/or Forge) on the CPU, with a random-weight checkpoint.

Each test runs once per host whose checkout is configured (A1111_DIR, FORGE_DIR; see conftest.py for the
``webui`` fixture, the checkpoints it builds and the other variables), and is skipped for a host that is not.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from lib_vid2vid import params, video
from lib_vid2vid.workspace import read_png_text

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from fractions import Fraction

    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=24, size=(96, 64), fps=Fraction(24))


def _request(src, out_dir, *, steps=2, size=(64, 64), **settings):
    """An img2img request running vid2vid on ``src``: every frame rendered unless ``settings`` ask for keyframes
    (the default job renders keyframes only: test_job_over_the_api_gives_a_video_with_audio)."""
    s = params.Settings().replace(**{"keyframe_mode": "off", **settings, "input": str(src)})
    return {
        "init_images": [],  # the img2img image box left empty
        "prompt": "a watercolour painting", "negative_prompt": "", "steps": steps, "cfg_scale": 5,
        "width": size[0], "height": size[1], "denoising_strength": 0.5, "seed": 42, "sampler_name": "Euler",
        "script_name": "vid2vid", "script_args": params.api_args(s),
        "override_settings": {"vid2vid_output_dir": str(out_dir)}, "override_settings_restore_afterwards": True,
    }


def _png_b64(w, h):
    import base64
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _post(webui, body, timeout=600):
    r = requests.post(webui["url"] + "/sdapi/v1/img2img", json=body, timeout=timeout)
    assert r.status_code == 200, r.text[:2000]
    return r.json()


def _info(reply):
    """The vid2vid result text: the API reply carries it in extra_generation_params."""
    return json.loads(reply["info"])["extra_generation_params"]["vid2vid_info"]


def test_script_is_listed_for_img2img_only(webui):
    scripts = requests.get(webui["url"] + "/sdapi/v1/scripts", timeout=30).json()
    assert "vid2vid" in scripts["img2img"]
    assert "vid2vid" not in scripts["txt2img"]
    config = requests.get(webui["url"] + "/config", timeout=30).text
    for name in ("input", "init_mode", "fdc_mode", "output_format", "resume_job"):
        assert f"script_vid2vid_{name}" in config


def test_job_over_the_api_gives_a_video_with_audio(webui, source):
    """The default job (keyframes where the picture changed): the WebUI renders the keyframes, with the sigma
    override and its own infotext; every frame of the video is made, with the source's audio."""
    out = webui["tmp"] / "out_basic"
    default = params.Settings().temporal.keyframe_mode
    reply = _post(webui, _request(source, out, max_frames=12, sigma_schedule="karras", sigma_max=1.0,
                                  keyframe_mode=default))
    info = _info(reply)
    assert "vid2vid: done, 12/12 frames" in info, info
    path = Path(info.split("video: ", 1)[1].splitlines()[0])
    probe = video.probe(path)
    assert probe.frame_count == 12 and (probe.width, probe.height) == (64, 64) and probe.audio
    keys = json.loads((path.parent / "manifest.json").read_text())["keyframes"]["plan"]["frames"]
    assert keys[0] == 0 and 1 < len(keys) < 12, keys
    assert len(list(path.parent.glob("frames/pass1/*.png"))) == 12
    text = read_png_text(path.parent / "frames" / "keys" / "000001.png")["parameters"]
    assert "a watercolour painting" in text and "Steps: 2" in text and "Seed: 42" in text
    assert f"vid2vid: \"frame {keys[1] + 1}/12; pass 1/1" in text and "sigmas karras 2 steps: 1.00" in text


def _job_dir(info):
    return Path(info.split("job: ", 1)[1].splitlines()[0])


def test_script_args_by_name_and_a_list_of_the_wrong_length(webui, source):
    """``script_args`` as one dict of named values runs the job with them; a positional list one value short
    (built for another version of vid2vid) is a one-line error instead of shifted settings: the WebUI's own
    splice of the request's list into every script's args, as lib_vid2vid/host/a1111.py reads it."""
    from lib_vid2vid.workspace import Job

    out = webui["tmp"] / "out_named"
    body = _request(source, out)
    body["script_args"] = [{"input": str(source), "max_frames": 2, "init_mode": "temporal_blend"}]
    info = _info(_post(webui, body))
    assert "vid2vid: done, 2/2 frames" in info, info
    assert Job.open(_job_dir(info)).manifest["settings"]["init_mode"] == "temporal_blend"
    body = _request(source, out, max_frames=2)
    body["script_args"] = body["script_args"][:-1]
    extra = json.loads(_post(webui, body)["info"])["extra_generation_params"]
    n = len(params.api_arg_names())
    assert extra["vid2vid_status"] == "error", extra
    assert f"got {n - 1} values but this vid2vid takes {n}" in extra["vid2vid_info"]
    body["script_args"] = body["script_args"] + [None, None]
    extra = json.loads(_post(webui, body)["info"])["extra_generation_params"]
    assert f"got {n + 1} values but this vid2vid takes {n}" in extra["vid2vid_info"]


def test_api_renders_a_keyframe_of_a_finished_job_again(webui, source):
    """A keyframe job over the API, then ``resume_job`` (no video) with ``redo_keyframes``: that keyframe alone is
    rendered again with the next seed, the frames before the keyframe before it keep their bytes."""
    from lib_vid2vid.keyrun import RESEED_STEP
    from lib_vid2vid.workspace import Job

    out = webui["tmp"] / "out_redo"
    info = _info(_post(webui, _request(source, out, max_frames=9, keyframe_mode="interval", keyframe_interval=4)))
    assert "vid2vid: done, 9/9 frames" in info, info
    job_dir = _job_dir(info)
    before = [p.read_bytes() for p in sorted((job_dir / "frames" / "pass1").glob("*.png"))]
    seed = Job.open(job_dir).manifest["frames"]["keys"][1]["seed"]
    body = _request(source, out)
    body["script_args"] = [{"resume_job": job_dir.name, "redo_keyframes": "4"}]
    info = _info(_post(webui, body))
    assert "vid2vid: done, 9/9 frames" in info and str(job_dir) in info, info
    job = Job.open(job_dir)
    assert job.manifest["keyframes"]["reseed"] == {"4": 1}
    assert job.manifest["frames"]["keys"][1]["seed"] == (seed + RESEED_STEP) % 2**32
    after = [p.read_bytes() for p in sorted((job_dir / "frames" / "pass1").glob("*.png"))]
    assert after[0] == before[0] and after[4] != before[4]


def _frames(job_dir, stage="pass1"):
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted((job_dir / "frames" / stage).glob("*.png"))]


def test_interrupt_then_resume_matches_an_uninterrupted_run(webui, source):
    host = webui["host"]
    n, size = host.interrupt_frames, host.interrupt_size
    body = _request(source, webui["tmp"] / "out_interrupt", steps=host.interrupt_steps, size=(size, size),
                    max_frames=n)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("reply", _post(webui, body)))
    t.start()
    deadline = time.time() + 300
    while time.time() < deadline:
        prog = requests.get(webui["url"] + "/sdapi/v1/progress?skip_current_image=true", timeout=30).json()
        if prog.get("state", {}).get("job_count") == n and prog["state"].get("job_no", 0) >= host.interrupt_after:
            break  # process_images counts one job per frame
        time.sleep(0.05)
    requests.post(webui["url"] + "/sdapi/v1/interrupt", timeout=30)
    t.join(timeout=600)
    info = _info(result["reply"])
    assert "vid2vid: interrupted" in info and "resume" in info, info
    job_dir = _job_dir(info)
    done_before = len(list((job_dir / "frames" / "pass1").glob("*.png")))
    assert host.interrupt_after - 1 <= done_before < n
    # another request in between (another seed, another size) moves the host's global random state, which the
    # WebUI draws from while it encodes an init image
    _post(webui, {**body, "script_name": None, "script_args": [], "init_images": [_png_b64(64, 64)], "seed": 7,
                  "width": 64, "height": 64})
    resumed = _info(_post(webui, body))
    assert f"vid2vid: done, {n}/{n}" in resumed and str(job_dir) in resumed
    fresh = _info(_post(webui, {**body, "override_settings": {"vid2vid_output_dir": str(webui["tmp"] / "fresh")}}))
    fresh_dir = _job_dir(fresh)
    a = [p.read_bytes() for p in sorted((job_dir / "frames" / "pass1").glob("*.png"))]
    b = [p.read_bytes() for p in sorted((fresh_dir / "frames" / "pass1").glob("*.png"))]
    assert len(a) == len(b) == n and a == b


def test_sigma_override_is_what_the_sampler_runs(webui, source):
    """The override reaches the host's sampler: the same job at other sigmas renders other pixels, at the same
    sigmas the same pixels, and with the host's own schedule neither."""
    def frames(tag, **settings):
        body = _request(source, webui["tmp"] / f"out_sigmas_{tag}", steps=4, max_frames=1, colour_coherence=False,
                        **settings)
        info = _info(_post(webui, body))
        assert "vid2vid: done, 1/1" in info, info
        return _frames(_job_dir(info))

    low = frames("low", sigma_schedule="karras", sigma_max=0.5)
    low_again = frames("low_again", sigma_schedule="karras", sigma_max=0.5)
    high = frames("high", sigma_schedule="karras", sigma_max=3.0)
    host_own = frames("host", sigma_schedule="host")
    assert len(low) == len(low_again) == len(high) == len(host_own) == 1
    assert np.array_equal(low[0], low_again[0])  # deterministic, so any difference comes from the sigmas
    assert not np.array_equal(low[0], high[0]) and not np.array_equal(low[0], host_own[0])
    assert not np.array_equal(high[0], host_own[0])


def test_flow_warp_with_fdc_and_motion_mask(webui, source):
    """flow_warp init, FDC mean_std and the motion mask (delta) together: where the source did not move the
    output keeps the previous output's pixels; where it moved, the render changes them."""
    body = _request(source, webui["tmp"] / "out_flow", steps=2, max_frames=6, init_mode="flow_warp",
                    init_strength=0.5, fdc_mode="mean_std", motion_mask=True, mask_usage="delta",
                    colour_coherence=False)
    info = _info(_post(webui, body))
    assert "vid2vid: done, 6/6 frames" in info, info
    job_dir = _job_dir(info)
    out = _frames(job_dir)
    masks = [np.asarray(Image.open(p).convert("L")) for p in sorted((job_dir / "frames" / "masks").glob("*.png"))]
    assert len(out) == len(masks) == 6
    text = read_png_text(job_dir / "frames" / "pass1" / "000003.png")["parameters"]
    assert "init flow_warp" in text and "fdc mean_std" in text and "motion mask" in text, text
    for i in range(1, 6):
        still, moved = masks[i] == 0, masks[i] == 255
        assert still.mean() > 0.5 and moved.any()  # the square and the index strip move, the background does not
        change = np.abs(out[i].astype(int) - out[i - 1].astype(int)).max(axis=2)
        assert change[still].max() <= 1, f"frame {i}: a pixel the source kept changed by {change[still].max()}"
        assert change[moved].max() > 8, f"frame {i}: nothing changed where the source moved"


def test_bad_video_argument_is_reported(webui, tmp_path):
    reply = _post(webui, _request(tmp_path / "missing.mp4", tmp_path / "out"))
    assert "vid2vid error:" in _info(reply) and reply["images"] == []


def _cli(*args: str, timeout: float = 600):
    """``python -m lib_vid2vid ARGS`` from this checkout; the finished process (it must have succeeded)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lib_vid2vid", *args], capture_output=True, text=True, cwd=str(ROOT),
                       timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    return r


def _done_video(stdout: str) -> Path:
    """The video the CLI's ``done: N frames -> VIDEO`` line names."""
    return Path([ln for ln in stdout.splitlines() if ln.startswith("done:")][0].split("-> ", 1)[1])


def test_cli_submits_a_whole_job(webui, source, tmp_path):
    r = _cli(str(source), "--submit", "--upload", "--api-url", webui["url"], "--prompt", "ink", "--steps", "2",
             "--max-frames", "5", "--seed", "3", "--width", "64", "--height", "64")
    assert "vid2vid: done, 5/5 frames" in r.stdout
    # the job lives in the WebUI's vid2vid output folder (the fixture's settings put it under tmp) with its video
    job_dir = _job_dir(r.stdout)
    assert job_dir.parent == webui["output_dir"] and job_dir.is_dir()
    path = Path(r.stdout.split("video: ", 1)[1].splitlines()[0])
    assert path.parent == job_dir and video.probe(path).frame_count == 5


def test_cli_keyframe_job_against_the_webui_propagates_beside_the_renders(webui, source, tmp_path):
    r = _cli(str(source), "--api-url", webui["url"], "--prompt", "ink", "--steps", "2", "--max-frames", "12",
             "--width", "64", "--height", "64", "--strategy", "keyframes", "--output-dir", str(tmp_path / "out"),
             "--quiet", timeout=900)
    path = _done_video(r.stdout)
    assert video.probe(path).frame_count == 12
    log = (path.parent / "job.log").read_text()
    assert "3 keyframes of 12 frames" in log and "propagated while they render" in log, log


def test_cli_per_frame_mode_against_the_webui(webui, source, tmp_path):
    r = _cli(str(source), "--api-url", webui["url"], "--prompt", "ink", "--steps", "2", "--max-frames", "4",
             "--width", "64", "--height", "64", "--sigma-schedule", "karras", "--output-dir", str(tmp_path / "out"),
             "--quiet")
    path = _done_video(r.stdout)
    assert video.probe(path).frame_count == 4
