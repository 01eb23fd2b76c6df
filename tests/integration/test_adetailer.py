"""vid2vid with the real ADetailer (Bing-su/adetailer) in an AUTOMATIC1111 WebUI, on the CPU, offline.

Runs when A1111_DIR is set (see conftest.py) and ADetailer is in the WebUI's extensions/ (a folder with
scripts/!adetailer.py), or A1111_ADETAILER_DIR names one to link in for this module. Its Python packages
(ultralytics, mediapipe) must be in the WebUI's environment. Nothing is downloaded: the WebUI starts with
--ad-no-huggingface (and the fixture's HF_HUB_OFFLINE=1), and the detector is "mediapipe_face_full", whose model
file ships inside the mediapipe wheel.

What it checks: ADetailer runs on every frame inside the WebUI's process_images (each frame's PNG carries its
entries), and the API reply's summary (``vid2vid_frame_params``, and the result text) holds the same entries.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import pytest

from lib_vid2vid.host.a1111 import frame_params
from lib_vid2vid.workspace import read_png_text
from tests.integration import conftest as hosts
from tests.integration import test_webui as base

A1111 = hosts.A1111.dir
ADETAILER_ENV = os.environ.get("A1111_ADETAILER_DIR")
N_FRAMES = 3


def _installed_adetailer() -> Path | None:
    ext = Path(A1111 or ".") / "extensions"
    found = [d for d in (ext.iterdir() if ext.is_dir() else []) if (d / "scripts" / "!adetailer.py").is_file()]
    return found[0] if found else None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not A1111, reason="set A1111_DIR to a WebUI checkout"),
    pytest.mark.skipif(bool(A1111) and not ADETAILER_ENV and _installed_adetailer() is None,
                       reason="no ADetailer extension in the WebUI; set A1111_ADETAILER_DIR to link one in"),
]


# overrides of tests/integration/conftest.py: what this module's WebUI starts with
@pytest.fixture(scope="module")
def webui_host():
    """Only AUTOMATIC1111 (the Forge build has no ADetailer packages)."""
    return hosts.A1111


@pytest.fixture(scope="module")
def webui_extensions():
    return {"adetailer-under-test": Path(ADETAILER_ENV)} if ADETAILER_ENV else {}


@pytest.fixture(scope="module")
def webui_args():
    return ["--ad-no-huggingface"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=N_FRAMES, size=(64, 64), fps=Fraction(8))


def test_adetailer_entries_reach_the_api_reply_as_in_each_frame(webui, clip):
    body = base._request(clip, webui["tmp"] / "out_adetailer", steps=2, size=(64, 64), max_frames=N_FRAMES)
    ad = {"ad_model": "mediapipe_face_full", "ad_prompt": "smile, closed mouth", "ad_confidence": 0.25}
    body["alwayson_scripts"] = {"ADetailer": {"args": [True, False, ad]}}
    extra = json.loads(base._post(webui, body)["info"])["extra_generation_params"]
    info = extra["vid2vid_info"]
    assert f"vid2vid: done, {N_FRAMES}/{N_FRAMES} frames" in info, info
    reply = {k: v for k, v in extra["vid2vid_frame_params"].items() if k.startswith("ADetailer")}
    assert reply["ADetailer model"] == "mediapipe_face_full" and reply["ADetailer prompt"] == "smile, closed mouth"
    assert reply["ADetailer confidence"] == "0.25" and reply.get("ADetailer version")
    files = sorted((Path(extra["vid2vid_job_dir"]) / "frames" / "pass1").glob("*.png"))
    assert len(files) == N_FRAMES
    for f in files:  # ADetailer ran on every frame, and the reply says what each frame's PNG says
        text = read_png_text(f)["parameters"]
        assert {k: v for k, v in frame_params(text).items() if k.startswith("ADetailer")} == reply, f.name
    assert extra["vid2vid_frame_params"] == frame_params(read_png_text(files[-1])["parameters"])
    line = [ln for ln in info.splitlines() if ln.startswith("other scripts on every frame: ")]
    assert len(line) == 1 and "ADetailer model: mediapipe_face_full" in line[0]
    assert "ADetailer prompt: smile, closed mouth" in line[0], line[0]
    # its detector really looked at every frame (random weights draw no faces: nothing to inpaint)
    log = webui["log"].read_text(errors="replace")
    assert log.count("ADetailer: nothing detected on image") >= N_FRAMES, log[-3000:]
