"""Warped noise in the WebUI adapter: the always-on companion script (scripts/vid2vid_noise.py) puts vid2vid's noise
into the sampler's noise tensor, against the WebUI double in tests/fake_host."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from lib_vid2vid import params
from tests.test_a1111_adapter import FAKE, _args, _p

ROOT = Path(__file__).resolve().parents[1]
torch = pytest.importorskip("torch")


@pytest.fixture
def fake_host(monkeypatch):
    """(a1111 adapter, fake modules.processing, fake modules.shared), as tests/test_a1111_adapter.py's ``host``."""
    for name in [m for m in sys.modules if m == "modules" or m.startswith("modules.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(FAKE))
    import modules.processing as processing
    import modules.shared as shared

    shared.state.reset()
    processing.calls.clear()
    processing.hooks.clear()
    processing.sampled_noise.clear()
    from lib_vid2vid.host import a1111

    yield a1111, processing, shared
    for name in [m for m in sys.modules if m == "modules" or m.startswith("modules.")]:
        sys.modules.pop(name, None)


def _companion():
    spec = importlib.util.spec_from_file_location("vid2vid_noise_script", ROOT / "scripts" / "vid2vid_noise.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Script()


class Runner:
    """A1111's ScriptRunner.process_before_every_sampling: each always-on script, errors printed, not raised."""

    def __init__(self, *scripts):
        self.alwayson_scripts = list(scripts)

    def process_before_every_sampling(self, p, **kwargs):
        for script in self.alwayson_scripts:
            try:
                script.process_before_every_sampling(p, **kwargs)
            except Exception as exc:  # noqa: BLE001 - as the host does
                print(f"Error running process_before_every_sampling: {exc}", file=sys.stderr)


def _run(a1111, processing, shared, tmp_path, clip, runner, batch_size=1, **values):
    """A job through the adapter; returns (Processed, the RenderRequests of its frames)."""
    shared.opts.vid2vid_output_dir = str(tmp_path / "out")
    p = _p(processing, scripts=runner, script_args=[], batch_size=batch_size)
    seen = []
    real = a1111.A1111Renderer._frame_p

    def frame_p(self, req):
        seen.append(req)
        return real(self, req)

    a1111.A1111Renderer._frame_p = frame_p
    try:
        processed = a1111.run_script(p, _args(input=str(clip), **values))
    finally:
        a1111.A1111Renderer._frame_p = real
    return processed, seen


def test_the_sampler_gets_exactly_our_noise(fake_host, clip, tmp_path):
    a1111, processing, shared = fake_host
    companion = _companion()
    assert companion.title() == "vid2vid noise" and companion.ui(True) == []
    processed, seen = _run(a1111, processing, shared, tmp_path, clip, Runner(companion), max_frames=5,
                           noise_mode="warped", batch_size=2)
    assert "done, 5/5" in processed.info, processed.info
    assert len(processing.sampled_noise) == 5 and len(seen) == 5
    for f, req in enumerate(seen):
        assert req.noise.shape == (2, 4, 8, 12)
        assert processing.sampled_noise[f].numpy().tobytes() == req.noise.tobytes(), f"frame {f}"
        assert not np.array_equal(req.noise[0], req.noise[1])  # each image of the batch its own chain
    # the noise moves between frames (the clip's square moves) but is not redrawn: most of it is kept
    a, b = seen[3].noise, seen[4].noise
    assert 0 < np.mean(a != b) < 0.9


def test_strength_mixes_with_the_hosts_noise_and_its_multiplier(fake_host, clip, tmp_path):
    a1111, processing, shared = fake_host
    s = 0.36
    _, seen = _run(a1111, processing, shared, tmp_path, clip, Runner(_companion()), max_frames=2,
                   noise_mode="warped", noise_strength=s)
    torch_gen = torch.Generator().manual_seed(77)
    host_noise = torch.randn((1, 4, 8, 12), generator=torch_gen).numpy()
    want = math.sqrt(s) * seen[0].noise + math.sqrt(1 - s) * host_noise
    assert np.allclose(processing.sampled_noise[0].numpy(), want, atol=1e-6)


def test_seed_mode_leaves_the_hosts_noise_alone(fake_host, clip, tmp_path):
    a1111, processing, shared = fake_host
    _, seen = _run(a1111, processing, shared, tmp_path, clip, Runner(_companion()), max_frames=2)
    assert all(req.noise is None for req in seen)
    host_noise = torch.randn((1, 4, 8, 12), generator=torch.Generator().manual_seed(77))
    assert torch.equal(processing.sampled_noise[0], host_noise)


def test_without_the_companion_script_the_job_stops_with_one_line(fake_host, clip, tmp_path):
    a1111, processing, shared = fake_host
    processed, _ = _run(a1111, processing, shared, tmp_path, clip, Runner(), max_frames=2, noise_mode="warped")
    assert "vid2vid error" in processed.info and "did not get vid2vid's warped noise" in processed.info
    assert "vid2vid noise" in processed.info and "noise_mode" in processed.info


def test_a_shape_mismatch_is_reported(fake_host, clip, tmp_path, monkeypatch):
    a1111, processing, shared = fake_host
    monkeypatch.setattr(a1111, "host_latent_channels", lambda: 16)  # e.g. a Flux model: 16 latent channels
    processed, _ = _run(a1111, processing, shared, tmp_path, clip, Runner(_companion()), max_frames=1,
                        noise_mode="warped")
    assert "vid2vid error" in processed.info and "(1, 4, 8, 12)" in processed.info
    assert "(1, 16, 8, 12)" in processed.info


def test_companion_is_not_part_of_the_job_identity(fake_host):
    a1111, processing, _ = fake_host
    p = _p(processing, scripts=Runner(_companion()), script_args=[])
    for sc in p.scripts.alwayson_scripts:
        sc.args_from = sc.args_to = 0
    assert a1111.host_identity(p)["scripts"] == {}


def test_settings_reach_the_api_order():
    names = params.api_arg_names()
    assert "noise_mode" in names and "noise_strength" in names


def test_each_batch_iteration_gets_its_own_slice(fake_host):
    a1111, processing, _ = fake_host
    ours = np.arange(4 * 4 * 2 * 3, dtype=np.float32).reshape(4, 4, 2, 3)
    p = _p(processing)
    p.vid2vid_noise = a1111.FrameNoise(ours, 1.0)
    p.iteration, p.initial_noise_multiplier = 1, 1.5
    x = torch.zeros((2, 4, 2, 3))
    _companion().process_before_every_sampling(p, noise=x)
    assert torch.equal(x, torch.from_numpy(ours[2:4]) * 1.5) and p.vid2vid_noise.applied == [1]
    other = _p(processing)  # not a vid2vid frame: untouched
    y = torch.ones((2, 4, 2, 3))
    _companion().process_before_every_sampling(other, noise=y)
    assert torch.equal(y, torch.ones((2, 4, 2, 3)))


def test_the_api_renderer_refuses_warped_noise_with_one_line():
    from lib_vid2vid.errors import SettingsError
    from lib_vid2vid.host.webui_api import WebUIApiRenderer
    from lib_vid2vid.renderer import RenderRequest

    req = RenderRequest(init=np.zeros((64, 64, 3), np.uint8), seed=1, denoise=0.5, steps=1, cfg=1, prompt="",
                        noise=np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(SettingsError, match="noise_mode.*--submit"):
        WebUIApiRenderer("http://127.0.0.1:9").render(req)
