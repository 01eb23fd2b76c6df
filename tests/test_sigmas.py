"""Sigma schedules, the img2img tail the host really samples, sampler facts, and the schedule plot."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # until pyproject sets pytest's pythonpath
    sys.path.insert(0, str(ROOT))

from lib_vid2vid import sigmas as sg  # noqa: E402
from lib_vid2vid.errors import SettingsError  # noqa: E402
from lib_vid2vid.plot import PALETTE, plot_schedules  # noqa: E402

HELPER = ROOT / "helpers" / "sigma_schedule.py"

# --- k-diffusion reference -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kd():
    """``k_diffusion.sampling`` (package k-diffusion==0.1.1.post1), computing in float64.

    The package's ``__init__`` imports its training stack (torchvision, clip, kornia, ...). When that fails,
    the unmodified ``sampling.py`` is loaded from the installed package under a stub parent package: the
    ``get_sigmas_*`` functions only need torch and math (plus torchdiffeq, torchsde, scipy, tqdm at import).
    The functions compute in torch's default dtype, so the test switches it to float64: at float32 they
    are themselves only good to about 1e-6 relative.
    """
    pytest.importorskip("torch")
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        pytest.skip("k-diffusion is not installed: pip install --no-deps k-diffusion==0.1.1.post1")
    try:
        module = importlib.import_module("k_diffusion.sampling")
    except ImportError:
        for dep in ("scipy", "torchdiffeq", "torchsde", "tqdm"):
            pytest.importorskip(dep)
        path = Path(spec.origin).parent / "sampling.py"
        package = types.ModuleType("_kdiffusion_ref")
        package.__path__ = []
        sys.modules["_kdiffusion_ref"] = package
        sys.modules["_kdiffusion_ref.utils"] = types.ModuleType("_kdiffusion_ref.utils")
        file_spec = importlib.util.spec_from_file_location("_kdiffusion_ref.sampling", path)
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield module
    torch.set_default_dtype(old)
    for name in ("_kdiffusion_ref", "_kdiffusion_ref.utils"):
        sys.modules.pop(name, None)


def _close(ours, ref):
    ref = [float(v) for v in ref]
    assert len(ours) == len(ref)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


STEPS = (0, 1, 2, 5, 20, 50)
RANGES = ((0.0292, 14.6146), (0.1, 1.0), (0.002, 80.0))
RHOS = (1.0, 3.0, 7.0)


@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("sigma_min,sigma_max", RANGES)
@pytest.mark.parametrize("rho", RHOS)
def test_karras_and_polyexponential_match_k_diffusion(kd, n, sigma_min, sigma_max, rho):
    for name, ref in (("karras", kd.get_sigmas_karras), ("polyexponential", kd.get_sigmas_polyexponential)):
        settings = sg.SigmaSettings(schedule=name, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho)
        _close(sg.full_schedule(settings, n), ref(n, sigma_min, sigma_max, rho))


@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("sigma_min,sigma_max", RANGES)
def test_exponential_matches_k_diffusion(kd, n, sigma_min, sigma_max):
    settings = sg.SigmaSettings(schedule="exponential", sigma_min=sigma_min, sigma_max=sigma_max)
    _close(sg.full_schedule(settings, n), kd.get_sigmas_exponential(n, sigma_min, sigma_max))


@pytest.mark.parametrize("n", STEPS)
@pytest.mark.parametrize("beta_d,beta_min,eps_s", [(19.9, 0.1, 1e-3), (10.0, 0.5, 1e-2), (5.0, 0.0, 0.1)])
def test_vp_matches_k_diffusion(kd, n, beta_d, beta_min, eps_s):
    settings = sg.SigmaSettings(schedule="vp", beta_d=beta_d, beta_min=beta_min, eps_s=eps_s)
    _close(sg.full_schedule(settings, n), kd.get_sigmas_vp(n, beta_d, beta_min, eps_s))


# --- our own definitions ---------------------------------------------------------------------------------


def test_linear_is_linear_in_sigma():
    assert sg.linear(4, 0.1, 1.0) == pytest.approx([1.0, 0.7, 0.4, 0.1, 0.0], abs=1e-12)
    assert sg.linear(1, 0.1, 1.0) == [1.0, 0.0]


def test_karras_by_hand():
    # n = 3: ramp 0, 0.5, 1 between 4^(1/2) = 2 and 1^(1/2) = 1 with rho = 2 -> 4, 2.25, 1.
    assert sg.karras(3, 1.0, 4.0, rho=2.0) == pytest.approx([4.0, 2.25, 1.0, 0.0], abs=1e-12)
    assert sg.exponential(3, 1.0, 4.0) == pytest.approx([4.0, 2.0, 1.0, 0.0], abs=1e-12)


@pytest.mark.parametrize("schedule", [s for s in sg.SCHEDULES if s != "host"])
@pytest.mark.parametrize("steps", [1, 2, 7, 30])
def test_full_schedule_shape(schedule, steps):
    settings = sg.SigmaSettings(schedule=schedule, sigma_min=0.05, sigma_max=2.0)
    full = sg.full_schedule(settings, steps)
    assert len(full) == steps + 1
    assert full[-1] == 0.0
    assert all(a > b for a, b in zip(full, full[1:])), full
    assert all(isinstance(v, float) for v in full)
    if schedule != "vp":
        assert full[0] == pytest.approx(2.0, rel=1e-12)
        if steps > 1:
            assert full[-2] == pytest.approx(0.05, rel=1e-12)


def test_host_schedule_is_no_override():
    settings = sg.SigmaSettings(schedule="host")
    assert sg.full_schedule(settings, 20) is None
    assert sg.override_function(settings) is None
    assert sg.used_sigmas(settings, 20, 0.5) is None
    assert sg.describe(None) == "host schedule"


def test_zero_steps_is_just_zero():
    assert sg.full_schedule(sg.SigmaSettings(), 0) == [0.0]


# --- settings validation ---------------------------------------------------------------------------------


def test_settings_are_normalised():
    s = sg.SigmaSettings(schedule=" Karras ", sigma_min=1, sigma_max=3)
    assert s.schedule == "karras"
    assert isinstance(s.sigma_min, float) and s.sigma_max == 3.0


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"schedule": "cosine"}, "schedule"),
        ({"sigma_min": 0.0005}, "sigma_min"),
        ({"sigma_min": 0.0}, "sigma_min"),
        ({"sigma_min": 2000.0, "sigma_max": 3000.0}, "sigma_min"),
        ({"sigma_min": float("nan")}, "sigma_min"),
        ({"sigma_min": "small"}, "sigma_min"),
        ({"sigma_min": True}, "sigma_min"),
        ({"sigma_min": 1.0, "sigma_max": 1.0}, "sigma_max"),
        ({"sigma_min": 1.0, "sigma_max": 0.5}, "sigma_max"),
        ({"sigma_max": 1e5}, "sigma_max"),
        ({"sigma_max": float("inf")}, "sigma_max"),
        ({"rho": 0.0}, "rho"),
        ({"rho": -7.0}, "rho"),
        ({"beta_d": 0.0}, "beta_d"),
        ({"beta_min": -0.1}, "beta_min"),
        ({"eps_s": 0.0}, "eps_s"),
        ({"eps_s": 1.5}, "eps_s"),
        ({"initial_noise_multiplier": 2.0}, "initial_noise_multiplier"),
    ],
)
def test_settings_errors(kwargs, field):
    with pytest.raises(SettingsError) as info:
        sg.SigmaSettings(**kwargs)
    assert info.value.field == field
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize("steps", [-1, 2.5, "20", True])
def test_bad_steps(steps):
    with pytest.raises(SettingsError) as info:
        sg.full_schedule(sg.SigmaSettings(), steps)
    assert info.value.field == "steps"


@pytest.mark.parametrize("steps,denoise,field", [(0, 0.5, "steps"), (20, -0.1, "denoise"), (20, 1.5, "denoise")])
def test_bad_tail_inputs(steps, denoise, field):
    with pytest.raises(SettingsError) as info:
        sg.used_sigmas(sg.SigmaSettings(), steps, denoise)
    assert info.value.field == field


# --- the img2img tail ------------------------------------------------------------------------------------


def _host_reference(override, steps, denoise, fix_steps, discard):
    """Line-by-line transcript of A1111 v1.10.1 setup_img2img_steps + get_sigmas + sample_img2img."""
    if fix_steps:
        requested_steps = steps
        steps = int(requested_steps / min(denoise, 0.999)) if denoise > 0 else 0
        t_enc = requested_steps - 1
    else:
        t_enc = int(min(denoise, 0.999) * steps)
    n = steps + (1 if discard else 0)
    sigmas = list(override(n))
    if discard:
        sigmas = sigmas[:-2] + sigmas[-1:]
    return sigmas[steps - t_enc - 1 :]


# (steps, denoise, fix_steps) -> (n asked of the override without discard, start index, sampler steps),
# all computed by hand from the host formula.
TAIL_TABLE = [
    (20, 0.75, False, 20, 4, 16),
    (20, 0.0, False, 20, 19, 1),  # denoise 0 still runs one step at the last non-zero sigma
    (20, 1.0, False, 20, 0, 20),  # int(0.999 * 20) = 19
    (20, 0.999, False, 20, 0, 20),
    (1, 0.5, False, 1, 0, 1),
    (1, 1.0, False, 1, 0, 1),
    (1, 0.0, False, 1, 0, 1),
    (10, 0.7, False, 10, 2, 8),  # 0.7 * 10 = 7.000000000000001 -> 7
    (100, 0.29, False, 100, 71, 29),  # 0.29 * 100 = 28.999999999999996 -> 28
    (20, 0.75, True, 26, 6, 20),  # int(20 / 0.75) = 26, t_enc = 19
    (20, 0.0, True, 0, -20, 0),  # host asks for 0 steps; the tail is [0]
    (20, 1.0, True, 20, 0, 20),  # int(20 / 0.999) = 20
    (20, 0.999, True, 20, 0, 20),
    (1, 0.5, True, 2, 1, 1),
    (1, 1.0, True, 1, 0, 1),
    (1, 0.0, True, 0, -1, 0),
    (3, 0.3, True, 10, 7, 3),  # 3 / 0.3 = 10.000000000000002 -> 10
]


@pytest.mark.parametrize("steps,denoise,fix,n,start,run", TAIL_TABLE)
@pytest.mark.parametrize("discard", [False, True])
def test_img2img_tail_matches_host(steps, denoise, fix, n, start, run, discard):
    settings = sg.SigmaSettings(schedule="karras", sigma_min=0.03, sigma_max=1.0)
    override = sg.override_function(settings)
    asked = n + (1 if discard else 0)
    assert sg.override_steps(steps, denoise, fix_steps=fix, discard_penultimate=discard) == asked

    tail = sg.img2img_tail(override, steps, denoise, fix_steps=fix, discard_penultimate=discard)

    full = sg.full_schedule(settings, asked)
    if discard:
        full = full[:-2] + full[-1:]
    assert len(full) == n + 1
    assert tail == full[start:]
    if run == 0:
        assert tail == [0.0]
    assert len(tail) - 1 == run
    assert tail == _host_reference(override, steps, denoise, fix, discard)
    # the list form gives the same tail as the callable form
    assert sg.img2img_tail(sg.full_schedule(settings, asked), steps, denoise, fix_steps=fix,
                           discard_penultimate=discard) == tail  # fmt: skip


def test_tail_by_hand_karras():
    # 20 karras steps from 1 to 0.03, rho 7, denoise 0.75: the sampler starts at index 4 of 20.
    tail = sg.used_sigmas(sg.SigmaSettings(sigma_min=0.03, sigma_max=1.0), 20, 0.75)
    hi, lo = 1.0, 0.03 ** (1 / 7)
    assert tail[0] == pytest.approx((hi + 4 / 19 * (lo - hi)) ** 7, rel=1e-12)
    assert tail[-2] == pytest.approx(0.03, rel=1e-12)
    assert len(tail) == 17


def test_discard_drops_the_penultimate_sigma():
    settings = sg.SigmaSettings(sigma_min=0.03, sigma_max=1.0)
    tail = sg.used_sigmas(settings, 10, 1.0, sampler_name="DPM2")
    eleven = sg.full_schedule(settings, 11)  # the host asks for one step more
    assert tail == eleven[:10] + [0.0]
    assert 0.03 not in tail  # sigma_min was the penultimate value and is gone


def test_tail_rejects_a_list_of_the_wrong_length():
    full = sg.full_schedule(sg.SigmaSettings(), 20)
    with pytest.raises(ValueError, match="26 steps"):
        sg.img2img_tail(full, 20, 0.75, fix_steps=True)


def test_start_noise():
    tail = [0.5, 0.2, 0.0]
    assert sg.start_noise(tail) == 0.5
    assert sg.start_noise(tail, initial_noise_multiplier=0.9, extra_noise=0.1) == pytest.approx(0.54)
    with pytest.raises(SettingsError):
        sg.start_noise(tail, initial_noise_multiplier=2.0)


# --- samplers --------------------------------------------------------------------------------------------


def test_ignored_samplers_are_the_timestep_samplers():
    assert sg.OVERRIDE_IGNORED_SAMPLERS == {"DDIM", "DDIM CFG++", "PLMS", "UniPC"}


@pytest.mark.parametrize("name,canonical", [
    ("DDIM", "DDIM"), ("ddim", "DDIM"), ("plms", "PLMS"), ("UniPC", "UniPC"), ("DDIM CFG++", "DDIM CFG++"),
])  # fmt: skip
def test_ignoring_samplers_warn(name, canonical):
    warning = sg.override_warning(name, "karras")
    assert warning is not None and canonical in warning and "ignores" in warning and "\n" not in warning
    assert sg.override_warning(name, "host") is None  # nothing is overridden


@pytest.mark.parametrize("name", ["Euler a", "k_euler_a", "euler A", "DPM++ 2M", "DPM++ 2M Karras",
                                  "dpm++ 2m sde exponential", "Heun", "DPM2 a", "LMS"])  # fmt: skip
def test_honouring_samplers_do_not_warn(name):
    assert sg.override_warning(name) is None


@pytest.mark.parametrize("name", ["DPM fast", "DPM adaptive", "Restart", "LCM", "k_lcm"])
def test_partial_samplers_warn(name):
    warning = sg.override_warning(name)
    assert warning and "ignores" not in warning


def test_unknown_sampler_warns_and_empty_does_not():
    assert "not a built-in" in sg.override_warning("Fancy Sampler 3000")
    assert sg.override_warning(None) is None
    assert sg.override_warning("  ") is None


def test_canonical_sampler():
    assert sg.canonical_sampler("DPM++ 2M SDE Karras") == "DPM++ 2M SDE"
    assert sg.canonical_sampler("DPM++ 2M SDE Heun") == "DPM++ 2M SDE Heun"
    assert sg.canonical_sampler("k_dpm_ad") == "DPM adaptive"
    assert sg.canonical_sampler("nope") is None


def test_discards_penultimate():
    for name in ("DPM2", "DPM2 a", "k_dpm_2_a", "DPM2 a Karras", "DPM++ 3M SDE", "dpm++ 3m sde exponential"):
        assert sg.discards_penultimate(name), name
    for name in ("Euler a", "DPM++ 2M", "DPM++ 2M SDE", None, "unknown"):
        assert not sg.discards_penultimate(name), name
    assert sg.discards_penultimate("Euler", always_discard=True)


# --- describe --------------------------------------------------------------------------------------------


def test_describe():
    assert sg.describe([1.0, 0.5, 0.0]) == "2 steps: 1.00 0.50 0"
    assert sg.describe([0.3, 0.0]) == "1 step: 0.30 0"
    assert sg.describe([0.0]) == "0 steps: 0"
    assert sg.describe([14.6146, 0.0292, 0.0]) == "2 steps: 14.6 0.029 0"
    long = sg.describe(sg.full_schedule(sg.SigmaSettings(sigma_min=0.03, sigma_max=1.0), 20))
    assert long.startswith("20 steps: 1.00 ")
    assert " ... " in long and long.endswith(" 0.03 0")
    assert len(long.split()) == 2 + 3 + 1 + 3


# --- plot and helper -------------------------------------------------------------------------------------


def _pixels_of(img, colour):
    return int(np.all(img == np.array(colour, dtype=np.uint8), axis=-1).sum())


@pytest.mark.parametrize("log_y", [False, True])
def test_plot_size_and_content(log_y):
    settings = sg.SigmaSettings(sigma_min=0.03, sigma_max=1.0)
    named = {"karras": sg.full_schedule(settings, 12), "tail": sg.used_sigmas(settings, 12, 0.5), "host": None}
    img = plot_schedules(named, (320, 200), title="test", log_y=log_y, align="end")
    assert img.shape == (200, 320, 3) and img.dtype == np.uint8
    assert (img != 255).any(axis=-1).sum() > 2000  # axes, text and lines, not a blank canvas
    assert _pixels_of(img, PALETTE[0]) > 50  # the first series is drawn in the first colour
    assert _pixels_of(img, PALETTE[1]) > 50
    assert _pixels_of(img, PALETTE[2]) == 0  # None ("host") is not drawn


def test_plot_rejects_tiny_size():
    with pytest.raises(SettingsError):
        plot_schedules({"a": [1.0, 0.0]}, (50, 50))


def test_helper_writes_png(tmp_path):
    out = tmp_path / "sched.png"
    argv = [sys.executable, str(HELPER), "--schedule", "karras", "--schedule", "exponential", "--steps", "12",
            "--sigma-max", "1", "--denoise", "0.75", "--size", "400x250", "-o", str(out)]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "karras: 12 steps: 1.00" in result.stdout
    assert "karras img2img (denoise 0.75): 10 steps" in result.stdout  # int(0.75 * 12) + 1
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (400, 250)


def test_helper_reports_bad_settings(tmp_path):
    argv = [sys.executable, str(HELPER), "--sigma-min", "2", "--sigma-max", "1", "-o", str(tmp_path / "x.png")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: sigma_max: 1 must be greater than sigma_min (2)"]
    assert not (tmp_path / "x.png").exists()


def test_math_is_torch_free():
    code = "import sys, lib_vid2vid.sigmas, lib_vid2vid.plot; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
