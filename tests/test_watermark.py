"""The optional invisible watermark (lib_vid2vid/watermark.py) and its use in image to video."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("imwatermark", reason="invisible-watermark is not installed (pip install --no-deps "
                                          "invisible-watermark PyWavelets)")

from lib_vid2vid import img2vid, watermark  # noqa: E402
from lib_vid2vid.errors import Vid2VidError  # noqa: E402
from tests.test_img2vid import FakeSVD, _image, _settings  # noqa: E402


def _textured(seed=0, size=(320, 256)):
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_embed_and_read_back():
    rgb = _textured()
    marked = watermark.embed(rgb, "vid2vid")
    assert marked.shape == rgb.shape and marked.dtype == np.uint8 and not np.array_equal(marked, rgb)
    assert watermark.read(marked, 7) == "vid2vid"
    assert watermark.read(rgb, 7) != "vid2vid"
    with pytest.raises(Vid2VidError, match="at least 256 x 256"):
        watermark.embed(_textured(size=(128, 128)), "x")


def test_img2vid_marks_every_frame_and_the_tool_reads_it(tmp_path, capsys):
    img = _image(tmp_path / "a.png", size=(300, 300))
    s = _settings(tmp_path / "out", width=256, height=256, frames=7, watermark="v2v", colour_coherence=False)
    r = img2vid.run_image(img, FakeSVD(native=4), s)
    frames = sorted((r.job_dir / "frames" / img2vid.STAGE).glob("*.png"))
    assert len(frames) == 7
    assert all(watermark.read(np.asarray(Image.open(p)), 3) == "v2v" for p in frames)
    plain = img2vid.run_image(img, FakeSVD(native=4), _settings(tmp_path / "out", width=256, height=256, frames=7,
                                                                colour_coherence=False))
    assert plain.job_dir != r.job_dir  # the watermark is part of the job's identity
    assert watermark.main([str(frames[0]), "--length", "3"]) == 0
    assert capsys.readouterr().out.strip() == f"{frames[0]}: v2v"
    with pytest.raises(Vid2VidError, match="at least 256 x 256"):
        img2vid.run_image(img, FakeSVD(), _settings(tmp_path / "small", watermark="v2v"))
    assert not (tmp_path / "small").exists()  # refused before a job folder exists
