"""Warped noise in a real WebUI (A1111 1.10 and/or Forge, CPU): the sampler receives exactly vid2vid's noise.

A small spy extension (written to the test's tmp folder and linked into the WebUI's extensions/ beside vid2vid)
wraps ``KDiffusionSampler.sample_img2img`` and saves the ``noise`` argument of every call, i.e. the tensor the
sampler adds to the init latent, after every always-on script's ``process_before_every_sampling`` ran. The test
recomputes each frame's warped noise outside the WebUI but with its Python (the same job settings through the
proxy renderer: the noise depends only on the job seed, the pass, the source frames and the OpenCV build that
computes their flow) and compares the two, bit for bit.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests

from lib_vid2vid import params
from tests.integration.conftest import _env

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]

SPY = '''"""Test spy: saves the noise every img2img k-diffusion sampling receives (vid2vid's integration test)."""
import os

import numpy as np

from modules import sd_samplers_kdiffusion

DUMPS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "dumps")
os.makedirs(DUMPS, exist_ok=True)
_orig = sd_samplers_kdiffusion.KDiffusionSampler.sample_img2img


def _spy(self, p, x, noise, *args, **kwargs):
    n = len(os.listdir(DUMPS))
    np.save(os.path.join(DUMPS, f"{n:04d}.npy"), noise.detach().float().cpu().numpy())
    return _orig(self, p, x, noise, *args, **kwargs)


if not getattr(sd_samplers_kdiffusion.KDiffusionSampler.sample_img2img, "_vid2vid_spy", False):
    _spy._vid2vid_spy = True
    sd_samplers_kdiffusion.KDiffusionSampler.sample_img2img = _spy
'''


@pytest.fixture(scope="module")
def spy_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("noise-spy")
    (d / "scripts").mkdir()
    (d / "scripts" / "noise_spy.py").write_text(SPY)
    return d


@pytest.fixture(scope="module")
def webui_extensions(spy_dir):
    return {"vid2vid-noise-spy": spy_dir}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from fractions import Fraction

    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=24, size=(96, 64), fps=Fraction(24))


def _settings(src, out_dir, size, **kw):
    return params.Settings().replace(input=str(src), output_dir=str(out_dir), width=size, height=size, seed=42,
                                     denoise=0.5, steps=2, max_frames=4, fps=6, noise_mode="warped",
                                     **{"keyframe_mode": "off", **kw})


def _post(webui, s, size, steps):
    body = {"init_images": [], "prompt": "a watercolour painting", "negative_prompt": "", "steps": steps,
            "cfg_scale": 5, "width": size, "height": size, "denoising_strength": 0.5, "seed": 42,
            "sampler_name": "Euler", "script_name": "vid2vid", "script_args": params.api_args(s),
            "override_settings": {"vid2vid_output_dir": str(s.job.output_dir)},
            "override_settings_restore_afterwards": True}
    r = requests.post(webui["url"] + "/sdapi/v1/img2img", json=body, timeout=1200)
    assert r.status_code == 200, r.text[:2000]
    return json.loads(r.json()["info"])["extra_generation_params"]["vid2vid_info"]


EXPECTED = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from lib_vid2vid import params
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer

class Recorder(ProxyRenderer):
    def __init__(self):
        super().__init__()
        self.noises = []

    def render(self, request):
        self.noises.append(request.noise)
        return super().render(request)

src, out, size, strength = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
s = params.Settings().replace(input=src, output_dir=out, width=size, height=size, seed=42, denoise=0.5, steps=2,
                              max_frames=4, fps=6, noise_mode="warped", noise_strength=strength)
rec = Recorder()
run_job(s, rec)
for k, z in enumerate(rec.noises):
    np.save(f"{out}/{k:04d}.npy", z)
"""


def _expected(webui, src, out, size, strength):
    """Each frame's warped noise as vid2vid computes it with the WebUI's own Python and libraries (the flows, so
    the noise after frame 0, depend on the OpenCV build), through the proxy renderer outside the WebUI."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([webui["host"].python(), "-c", EXPECTED, str(ROOT), str(src), str(out), str(size), str(strength)],
                   check=True, env=_env(), cwd=str(out), timeout=600)
    return [np.load(f) for f in sorted(out.glob("*.npy"))]


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_sampler_receives_exactly_our_noise(webui, source, spy_dir, strength, tmp_path):
    host = webui["host"]
    size, steps = (64, host.interrupt_steps) if host.name == "forge" else (96, 2)
    dumps = spy_dir / "dumps"
    for f in dumps.glob("*.npy"):
        f.unlink()
    s = _settings(source, webui["tmp"] / f"out_noise_{strength}", size, noise_strength=strength)
    info = _post(webui, s, size, steps)
    assert "vid2vid: done, 4/4 frames" in info, info
    got = [np.load(f) for f in sorted(dumps.glob("*.npy"))]
    want = _expected(webui, source, tmp_path / "proxy", size, strength)
    assert len(got) == len(want) == 4
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape == (1, 4, size // 8, size // 8)
        if strength == 1.0:
            assert g.tobytes() == w.tobytes(), f"frame {k}: the sampler's noise is not vid2vid's"
        else:  # mixed with the WebUI's own seed noise: correlated with ours by sqrt(s), still unit variance
            c = float(np.mean(g * w))
            assert abs(c - math.sqrt(strength)) < 0.25 and abs(float(g.var()) - 1) < 0.4, (k, c, g.var())
    assert not np.array_equal(got[0], got[1]), "the noise moves with the clip's square (14 px per frame at 6 fps)"
