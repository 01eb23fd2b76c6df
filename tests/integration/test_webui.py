"""vid2vid inside a real AUTOMATIC1111 WebUI, on the CPU, with a tiny random-weight SD1 checkpoint.

Runs only when A1111_DIR points to a WebUI checkout whose environment is ready (``--skip-prepare-environment``
works); A1111_PYTHON names its Python (default: $A1111_DIR/venv/bin/python). The test makes its own checkpoint
(tests/integration/make_tiny_sd.py), links this repository into the WebUI's extensions/ folder for the
duration, starts the WebUI on a free loopback port, and removes the link afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from lib_vid2vid import params, video
from lib_vid2vid.workspace import read_png_text

ROOT = Path(__file__).resolve().parents[2]
A1111 = os.environ.get("A1111_DIR")
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not A1111, reason="set A1111_DIR to a WebUI checkout")]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def webui(tmp_path_factory, webui_checkpoint, webui_extensions, webui_args):
    webui_dir = Path(A1111)
    python = os.environ.get("A1111_PYTHON") or str(webui_dir / "venv" / "bin" / "python")
    tmp = tmp_path_factory.mktemp("webui")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "DO_NOT_TRACK": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    ckpt = webui_checkpoint or tmp / "model" / "tiny.safetensors"
    if webui_checkpoint is None:
        subprocess.run([python, str(Path(__file__).parent / "make_tiny_sd.py"), "--webui-dir", str(webui_dir),
                        "--out-dir", str(tmp / "model")], check=True, env=env, cwd=str(webui_dir), timeout=300)
    link = webui_dir / "extensions" / "sd-webui-vid2vid-under-test"
    links = [link] + [webui_dir / "extensions" / name for name in webui_extensions]
    link.parent.mkdir(exist_ok=True)
    for lk, target in zip(links, [ROOT, *webui_extensions.values()]):
        if lk.is_symlink():
            lk.unlink()
        lk.symlink_to(target, target_is_directory=True)
    # what the WebUI does for an extension on a normal start: run its install.py (through the WebUI's launch module)
    subprocess.run([python, "-c", "import runpy, sys; sys.argv = ['install.py']; "
                    f"runpy.run_path({str(link / 'install.py')!r})"], check=True, env=env, cwd=str(webui_dir),
                   timeout=600)
    port = _free_port()
    log = open(tmp / "webui.log", "w")
    proc = subprocess.Popen(
        [python, "launch.py", "--skip-prepare-environment", "--use-cpu", "all", "--no-half", "--api",
         "--port", str(port), "--skip-torch-cuda-test", "--no-download-sd-model", "--disable-safe-unpickle",
         "--ckpt", str(ckpt), "--ui-settings-file", str(tmp / "config.json"),
         "--ui-config-file", str(tmp / "ui-config.json"), *webui_args],
        cwd=str(webui_dir), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"WebUI exited: {(tmp / 'webui.log').read_text()[-3000:]}")
            # No request before the WebUI prints its startup time: one that comes before it adds its middleware
            # kills it ("Cannot add middleware after an application has started"), and its API answers while it
            # still computes the scripts' default args (an img2img request then gets script_args cut short).
            if "Startup time:" in (tmp / "webui.log").read_text(errors="replace"):
                try:
                    if requests.get(url + "/sdapi/v1/options", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
            time.sleep(1)
        else:
            raise RuntimeError(f"WebUI did not start: {(tmp / 'webui.log').read_text()[-3000:]}")
        yield {"url": url, "tmp": tmp, "log": tmp / "webui.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        for lk in links:
            lk.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from fractions import Fraction

    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=24, size=(96, 64), fps=Fraction(24))


def _request(src, out_dir, *, steps=2, size=(64, 64), **settings):
    s = params.Settings().replace(input=str(src), **settings)
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
    out = webui["tmp"] / "out_basic"
    reply = _post(webui, _request(source, out, max_frames=12, sigma_schedule="karras", sigma_max=1.0))
    info = _info(reply)
    assert "vid2vid: done, 12/12 frames" in info, info
    path = Path(info.split("video: ", 1)[1].splitlines()[0])
    probe = video.probe(path)
    assert probe.frame_count == 12 and (probe.width, probe.height) == (64, 64) and probe.audio
    frame = next(path.parent.glob("frames/pass1/000003.png"))
    text = read_png_text(frame)["parameters"]
    assert "a watercolour painting" in text and "Steps: 2" in text and "Seed: 42" in text
    assert "vid2vid: \"frame 4/12; pass 1/1" in text and "sigmas karras 2 steps: 1.00" in text


def test_interrupt_then_resume_matches_an_uninterrupted_run(webui, source):
    body = _request(source, webui["tmp"] / "out_interrupt", steps=20, size=(128, 128), max_frames=16)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("reply", _post(webui, body)))
    t.start()
    deadline = time.time() + 300
    while time.time() < deadline:
        prog = requests.get(webui["url"] + "/sdapi/v1/progress?skip_current_image=true", timeout=30).json()
        if prog.get("state", {}).get("job_count") == 16 and prog["state"].get("job_no", 0) >= 4:
            break  # process_images counts one job per frame
        time.sleep(0.05)
    requests.post(webui["url"] + "/sdapi/v1/interrupt", timeout=30)
    t.join(timeout=600)
    info = _info(result["reply"])
    assert "vid2vid: interrupted" in info and "resume" in info, info
    job_dir = Path(info.split("job: ", 1)[1].splitlines()[0])
    done_before = len(list((job_dir / "frames" / "pass1").glob("*.png")))
    assert 3 <= done_before < 16
    # another request in between (another seed, another size) moves the host's global random state, which the
    # WebUI draws from while it encodes an init image
    _post(webui, {**body, "script_name": None, "script_args": [], "init_images": [_png_b64(64, 64)], "seed": 7,
                  "width": 64, "height": 64})
    resumed = _info(_post(webui, body))
    assert "vid2vid: done, 16/16" in resumed and str(job_dir) in resumed
    fresh = _info(_post(webui, {**body, "override_settings": {"vid2vid_output_dir": str(webui["tmp"] / "fresh")}}))
    fresh_dir = Path(fresh.split("job: ", 1)[1].splitlines()[0])
    a = [p.read_bytes() for p in sorted((job_dir / "frames" / "pass1").glob("*.png"))]
    b = [p.read_bytes() for p in sorted((fresh_dir / "frames" / "pass1").glob("*.png"))]
    assert len(a) == len(b) == 16 and a == b


def test_bad_video_argument_is_reported(webui, tmp_path):
    reply = _post(webui, _request(tmp_path / "missing.mp4", tmp_path / "out"))
    assert "vid2vid error:" in _info(reply) and reply["images"] == []


def test_cli_submits_a_whole_job(webui, source, tmp_path):
    import subprocess
    import sys

    out = webui["tmp"] / "out_cli"
    r = subprocess.run([sys.executable, "-m", "lib_vid2vid", str(source), "--submit", "--upload", "--api-url",
                        webui["url"], "--prompt", "ink", "--steps", "2", "--max-frames", "5", "--seed", "3",
                        "--width", "64", "--height", "64"],
                       capture_output=True, text=True, cwd=str(ROOT), timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert "vid2vid: done, 5/5 frames" in r.stdout
    assert out  # the job lives in the WebUI's vid2vid output folder


def test_cli_per_frame_mode_against_the_webui(webui, source, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lib_vid2vid", str(source), "--api-url", webui["url"],
                        "--prompt", "ink", "--steps", "2", "--max-frames", "4", "--width", "64", "--height", "64",
                        "--sigma-schedule", "karras", "--output-dir", str(tmp_path / "out"), "--quiet"],
                       capture_output=True, text=True, cwd=str(ROOT), timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    path = Path([ln for ln in r.stdout.splitlines() if ln.startswith("done:")][0].split("-> ", 1)[1])
    assert video.probe(path).frame_count == 4
