"""The Script's image-to-video mode (Stable Video Diffusion) inside a real WebUI (A1111 and/or Forge) on the CPU.

The mode needs diffusers in the WebUI's own Python: Forge (dfdcbab) ships diffusers 0.31.0, A1111 1.10.1 ships none.
Where the WebUI's Python has it, a tiny random-weight SVD model is built with that Python
(tests/tiny_diffusers.py, so its configuration is what that transformers writes) and the mode makes a chained
video of the img2img image over the API; where it has none, the reply's one-line error says what to install.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests

from lib_vid2vid import params, video

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


def _has_diffusers(python: str) -> bool:
    return subprocess.run([python, "-c", "import diffusers, transformers"], capture_output=True,
                          timeout=300).returncode == 0


@pytest.fixture(scope="module")
def webui_diffusers(webui_host):
    return _has_diffusers(webui_host.python())


@pytest.fixture(scope="module")
def tiny_svd(webui_host, webui_diffusers, tmp_path_factory):
    if not webui_diffusers:
        return None
    folder = tmp_path_factory.mktemp(f"tiny-svd-{webui_host.name}") / "svd"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([webui_host.python(), "-c", f"from tests.tiny_diffusers import make_svd; make_svd({str(folder)!r})"],
                   check=True, env=env, cwd=str(ROOT), timeout=600)
    return folder


def _png64(seed=0, size=(96, 64)) -> str:
    from PIL import Image

    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _body(out_dir, model, **svd):
    s = params.Settings().replace(svd_mode=True, svd_width=64, svd_height=64, svd_steps=1, **svd)
    return {"init_images": [_png64()], "prompt": "", "steps": 4, "width": 64, "height": 64, "seed": 42,
            "denoising_strength": 0.5, "sampler_name": "Euler", "script_name": "vid2vid",
            "script_args": params.api_args(s),
            "override_settings": {"vid2vid_output_dir": str(out_dir), "vid2vid_svd_model": str(model)},
            "override_settings_restore_afterwards": True}


def _post(webui, body, timeout=1800):
    r = requests.post(webui["url"] + "/sdapi/v1/img2img", json=body, timeout=timeout)
    assert r.status_code == 200, r.text[:2000]
    return json.loads(r.json()["info"])["extra_generation_params"]


def test_without_diffusers_the_reply_says_what_to_install(webui, webui_diffusers):
    if webui_diffusers:
        pytest.skip("this WebUI's Python has diffusers (the mode itself is tested)")
    reply = _post(webui, _body(webui["tmp"] / "out_missing", "/models/svd-xt"))
    assert reply["vid2vid_status"] == "error"
    error = reply["vid2vid_error"]
    assert "\n" not in error and "-m pip install diffusers==0.31.0" in error, error
    assert str(Path(webui["host"].python()).parent) in error or "python" in error


def test_image_to_video_mode_chains_clips_of_the_img2img_image(webui, webui_diffusers, tiny_svd):
    if not webui_diffusers:
        pytest.skip("this WebUI's Python has no diffusers (the one-line error is tested)")
    out = webui["tmp"] / "out_svd"
    body = _body(out, tiny_svd, svd_frames=27, svd_fps_id=9)  # the tiny model makes 25: two clips
    reply = _post(webui, body)
    assert reply["vid2vid_status"] == "done", reply.get("vid2vid_info")
    job = Path(reply["vid2vid_job_dir"])
    assert job.parent == out / "img2vid"
    manifest = json.loads((job / "manifest.json").read_text())
    assert manifest["kind"] == "img2vid" and manifest["resolved_seed"] == 42  # the request's seed
    assert [c["seed"] for c in manifest["clips"]] == [42, 43]
    info = video.probe(reply["vid2vid_output"])
    assert (info.frame_count, info.width, info.height, round(info.fps)) == (27, 64, 64, 10)
    again = _post(webui, body)  # the same request: the finished job, nothing made anew
    assert again["vid2vid_job_dir"] == str(job) and again["vid2vid_status"] == "done"
    assert "made by an earlier run" in json.dumps(again["vid2vid_notices"])
