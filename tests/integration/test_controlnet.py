"""vid2vid with the real sd-webui-controlnet in an AUTOMATIC1111 WebUI, on the CPU, with random weights.

Runs when A1111_DIR is set (see conftest.py) and a ControlNet extension is in the WebUI's extensions/ (a folder
with scripts/controlnet.py), or A1111_CONTROLNET_DIR names one to link in for this module. That extension builds
every SD1 ControlNet with the full SD1.5 layout, so the test makes a full-size SD1.5-shaped checkpoint and a
ControlNet with random weights (make_sd15_controlnet.py, about 2.8 GB, a few minutes), under the test's tmp or,
when VID2VID_TEST_MODEL_CACHE names a folder, there once for later runs.

What it checks: a unit without an image of its own gets each frame's own source frame as its control image (the
frames follow the source: frame k matches a run whose unit holds source frame k, and not one holding another
frame), and a unit with its own image keeps it for every frame. The init images are blends of neighbouring source
frames (temporal_blend), because the extension itself falls back to the img2img init image for a unit without an
image: with init = source frame it would pass without vid2vid feeding the units.
"""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lib_vid2vid.workspace import read_png_text
from tests.integration import conftest as hosts
from tests.integration import test_webui as base

A1111 = hosts.A1111.dir

CONTROLNET_ENV = os.environ.get("A1111_CONTROLNET_DIR")


def _installed_controlnet() -> Path | None:
    ext = Path(A1111 or ".") / "extensions"
    found = [d for d in (ext.iterdir() if ext.is_dir() else []) if (d / "scripts" / "controlnet.py").is_file()]
    return found[0] if found else None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not A1111, reason="set A1111_DIR to a WebUI checkout"),
    pytest.mark.skipif(bool(A1111) and not CONTROLNET_ENV and _installed_controlnet() is None,
                       reason="no ControlNet extension in the WebUI; set A1111_CONTROLNET_DIR to link one in"),
]
N_FRAMES = 3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    webui_dir = Path(A1111)
    python = os.environ.get("A1111_PYTHON") or str(webui_dir / "venv" / "bin" / "python")
    cache = os.environ.get("VID2VID_TEST_MODEL_CACHE")
    out = Path(cache) / "sd15-controlnet" if cache else tmp_path_factory.mktemp("sd15")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([python, str(Path(__file__).parent / "make_sd15_controlnet.py"), "--webui-dir", str(webui_dir),
                    "--out-dir", str(out)], check=True, env=env, cwd=str(webui_dir), timeout=1800)
    return out


# overrides of tests/integration/conftest.py: what this module's WebUI starts with
@pytest.fixture(scope="module")
def webui_host():
    """Only AUTOMATIC1111: sd-webui-controlnet is its extension (Forge has a ControlNet of its own)."""
    return hosts.A1111


@pytest.fixture(scope="module")
def webui_checkpoint(models):
    return models / "sd15.safetensors"


@pytest.fixture(scope="module")
def webui_extensions():
    return {"sd-webui-controlnet-under-test": Path(CONTROLNET_ENV)} if CONTROLNET_ENV else {}


@pytest.fixture(scope="module")
def webui_args(models):
    return ["--controlnet-dir", str(models / "controlnet")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """64x64 (the render size: the control image is the frame itself), a square that moves 24 px per frame."""
    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=N_FRAMES, size=(64, 64), fps=Fraction(8))


def _decoded_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _png_b64(rgb: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _run(webui, clip, name: str, unit_image: np.ndarray | None) -> list[np.ndarray]:
    """A vid2vid job with one ControlNet unit (no preprocessor); its frames as RGB uint8 HWC arrays."""
    from PIL import Image

    body = base._request(clip, webui["tmp"] / name, steps=2, size=(64, 64), max_frames=N_FRAMES, colour_coherence=False,
                         init_mode="temporal_blend", temporal_weights="1,2,1")
    unit = {"enabled": True, "module": "none", "model": "control_sd15_random", "weight": 1.0,
            "resize_mode": "Just Resize", "processor_res": 64, "pixel_perfect": False, "control_mode": "Balanced",
            "guidance_start": 0.0, "guidance_end": 1.0}
    if unit_image is not None:
        unit["image"] = _png_b64(unit_image)
    body.update(denoising_strength=0.75, alwayson_scripts={"controlnet": {"args": [unit]}})
    info = base._info(base._post(webui, body, timeout=1200))
    assert f"vid2vid: done, {N_FRAMES}/{N_FRAMES} frames" in info, info
    job_dir = Path(info.split("job: ", 1)[1].splitlines()[0])
    files = sorted((job_dir / "frames" / "pass1").glob("*.png"))
    assert len(files) == N_FRAMES
    assert all("ControlNet 0" in read_png_text(f)["parameters"] for f in files)  # the unit ran on every frame
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in grey levels (0..255)."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_each_frame_is_controlled_by_its_own_source_frame(webui, clip):
    source = _decoded_frames(clip)
    assert len(source) == N_FRAMES
    first, last = 0, N_FRAMES - 1
    per_frame = _run(webui, clip, "per_frame", None)
    held_first = _run(webui, clip, "held_first", source[first])  # a unit with its own image: source frame 0
    held_last = _run(webui, clip, "held_last", source[last])
    gaps = [_dist(held_first[k], held_last[k]) for k in range(N_FRAMES)]
    assert min(gaps) > 5.0, gaps  # the control image changes the result measurably (seen: 19.6 levels)
    # frame k of the per-frame run is the run whose unit held source frame k (up to the two decoders' rounding;
    # seen: 0.4 and 0.0 levels), and far from the one holding the other end frame
    near = (_dist(per_frame[first], held_first[first]), _dist(per_frame[last], held_last[last]))
    far = (_dist(per_frame[first], held_last[first]), _dist(per_frame[last], held_first[last]))
    assert max(near) < 0.1 * min(gaps) and min(far) > 0.5 * min(gaps), (near, far, gaps)
    # the middle frame got neither end frame: its own
    mid = N_FRAMES // 2
    assert min(_dist(per_frame[mid], held_first[mid]), _dist(per_frame[mid], held_last[mid])) > 0.2 * gaps[mid]
