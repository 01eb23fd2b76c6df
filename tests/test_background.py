"""Background removal for image to video (lib_vid2vid/background.py) with rembg and a tiny ONNX model built here.

The model is a 1x1 convolution and a sigmoid exported with torch.onnx.export, in rembg's u2net shape (input
(1, 3, 320, 320), output (1, 1, 320, 320)): about 1 where a pixel is red, about 0 where it is blue, so the
expected mask of a half-red, half-blue image is known. Nothing is downloaded.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from lib_vid2vid import background, img2vid, params
from lib_vid2vid.errors import Vid2VidError

REMBG_SKIP = "rembg is not installed (pip install --no-deps rembg onnxruntime pymatting numba llvmlite pooch platformdirs)"


def _red_blue(h=64, w=96) -> np.ndarray:
    """Left half pure red (the foreground of the tiny model), right half pure blue. RGB uint8 HWC."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2, 0] = 255
    rgb[:, w // 2:, 2] = 255
    return rgb


def _tiny_model(path, in_channels=3):
    """A u2net-shaped ONNX file: out = sigmoid(10 * (r - b)) on the normalised input (red -> 1, blue -> 0)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx", reason="onnx is not installed (torch.onnx.export needs it to build the test model)")
    net = torch.nn.Sequential(torch.nn.Conv2d(in_channels, 1, 1), torch.nn.Sigmoid())
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0, 0, 0] = 10.0
        net[0].weight[0, -1, 0, 0] = -10.0
        net[0].bias.zero_()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation note
        torch.onnx.export(net, torch.zeros(1, in_channels, 320, 320), str(path), dynamo=False,
                          input_names=["input"], output_names=["mask"])
    return path


# ------------------------------------------------------------------ without rembg


def test_an_absent_model_is_one_line_and_no_job_is_made(tmp_path):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(_red_blue()).save(image)
    s = params.Img2VidSettings(width=64, height=64, steps=1, seed=1, output_dir=str(tmp_path / "out"),
                               remove_background=str(tmp_path / "nowhere" / "u2net.onnx"))
    with pytest.raises(Vid2VidError, match=r"u2net.onnx does not exist: give the path of a rembg ONNX model file"):
        img2vid.run_image(image, object(), s)
    assert not (tmp_path / "out").exists()
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(Vid2VidError, match=r"is not an \.onnx file"):
        background.check_model(folder)


def test_without_rembg_the_error_says_what_to_install(tmp_path, monkeypatch):
    model = tmp_path / "u2net.onnx"
    model.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "rembg", None)  # import rembg -> ImportError
    monkeypatch.setattr(background, "_SESSIONS", {})
    with pytest.raises(Vid2VidError) as err:
        background.replace_background(_red_blue(), model, (255, 255, 255))
    text = str(err.value)
    assert "\n" not in text and "needs the rembg package" in text and "pip install --no-deps rembg" in text


# ------------------------------------------------------------------ with rembg


@pytest.fixture
def rembg():
    """rembg, imported the way the module does (torch's thread count kept), or a skip."""
    import importlib.util

    if importlib.util.find_spec("rembg") is None:
        pytest.skip(REMBG_SKIP)
    return background._import_rembg()


def test_importing_rembg_keeps_torchs_thread_count(rembg):
    """pymatting's numba threading layer resets OpenMP's thread count on import; torch's is put back."""
    import subprocess

    code = ("import torch; before = torch.get_num_threads(); from lib_vid2vid import background; "
            "background._import_rembg(); print(before, torch.get_num_threads())")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["1", "1"]


def test_background_is_replaced_by_the_colour_and_the_foreground_kept(rembg, tmp_path, monkeypatch):
    models = tmp_path / "elsewhere"  # not under rembg's home: the session is opened from the file's own folder
    models.mkdir()
    model = _tiny_model(models / "tiny.onnx")
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(background, "_SESSIONS", {})
    rgb = _red_blue()
    a = background.alpha(rgb, model)
    assert a.shape == rgb.shape[:2] and a.dtype == np.float32
    assert a[:, :40].min() > 0.99 and a[:, 56:].max() < 0.01  # away from the edge Lanczos smooths
    out = background.replace_background(rgb, model, (10, 200, 30))
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert (out[:, :40] == rgb[:, :40]).all()
    assert (out[:, 56:] == np.array([10, 200, 30], np.uint8)).all()
    assert os.environ["U2NET_HOME"] == str(tmp_path / "home")  # restored
    assert not (tmp_path / "home").exists()  # nothing was written there (nor downloaded)


def test_a_model_of_another_shape_is_one_line(rembg, tmp_path, monkeypatch):
    model = _tiny_model(tmp_path / "gray.onnx", in_channels=1)
    monkeypatch.setattr(background, "_SESSIONS", {})
    with pytest.raises(Vid2VidError, match=r"the model did not run on this image .*as u2net does"):
        background.alpha(_red_blue(), model)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(Vid2VidError, match=r"junk.onnx cannot be opened as a rembg model"):
        background.alpha(_red_blue(), junk)


def test_image_to_video_conditions_on_the_image_without_its_background(rembg, tmp_path, monkeypatch):
    """The first clip is conditioned on the composited image; the background settings are part of the job's
    identity only when removal is on (earlier jobs keep their keys)."""
    from PIL import Image

    from tests.test_img2vid import FakeSVD

    monkeypatch.setattr(background, "_SESSIONS", {})
    model = _tiny_model(tmp_path / "tiny.onnx")
    image = tmp_path / "redblue.png"
    Image.fromarray(_red_blue(64, 128)).save(image)
    seen = []

    class Recording(FakeSVD):
        def clip(self, image, **kw):
            seen.append(image.copy())
            return super().clip(image, **kw)

    s = params.Img2VidSettings(width=128, height=64, steps=1, seed=2, output_dir=str(tmp_path / "out"),
                               remove_background=str(model), background_colour="0,255,0")
    s.validate()
    r = img2vid.run_image(image, Recording(native=3), s)
    assert r.state == "done" and r.frames == 3
    cond = seen[0]
    assert (cond[:, :56] == [255, 0, 0]).all() and (cond[:, 72:] == [0, 255, 0]).all()
    plain = params.Img2VidSettings(**{**s.to_dict(), "remove_background": ""}).to_dict()
    fp, host = {"path": "x"}, {"h": 1}
    assert img2vid.job_key(plain, fp, host) == img2vid.job_key(
        {k: plain[k] for k in img2vid.PIXEL_SETTINGS}, fp, host)
    assert img2vid.job_key(s.to_dict(), fp, host) != img2vid.job_key(plain, fp, host)
    other = params.Img2VidSettings(**{**s.to_dict(), "background_colour": "#000000"}).to_dict()
    assert img2vid.job_key(other, fp, host) != img2vid.job_key(s.to_dict(), fp, host)
