"""Background removal for image-to-video inputs with ``rembg``, from a local ONNX model file only.

rembg's named models (u2net, isnet-general-use, birefnet ...) are downloaded on first use; this module never
asks for one by name. It opens the file the user gives through rembg's ``u2net_custom`` session, whose
"download" step only checks the path (rembg 2.0.86: ``U2netCustomSession.download_models`` is
``validate_model_path``), so nothing is fetched. rembg accepts a custom model only inside its home folder
(``U2NET_HOME``, which wins over ``REMBG_HOME``); while the session opens, ``U2NET_HOME`` is set to the model's
own folder and then restored.

The model: any ONNX file that takes a float32 ``(1, 3, 320, 320)`` image (ImageNet-normalised RGB, rembg's
u2net input) and gives ``(1, C, h, w)`` whose channel 0 is the foreground map (u2net, u2netp, silueta,
isnet-general-use, isnet-anime do). rembg min-max normalises that map to 0..1 and resizes it to the image
(Lanczos), the alpha ``a``.

Composite (pixels float, RGB 0..255): ``out = a * image + (1 - a) * colour``, rounded once
(:func:`lib_vid2vid.imaging.to_uint8_255`); ``a`` is rembg's uint8 mask / 255.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

from .errors import Vid2VidError
from .imaging import to_uint8_255

INSTALL_HINT = ("pip install --no-deps rembg==2.0.86 onnxruntime pymatting numba llvmlite pooch platformdirs "
                "(rembg imports pymatting and pooch; its other requirements are for its CLI and named models)")
MODEL_SUFFIXES = (".onnx",)

_ENV_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, int, int], object] = {}


def check_model(path: str | os.PathLike) -> Path:
    """The model file, or a one-line error: absent, a folder, or not an ``.onnx`` file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise Vid2VidError(f"remove_background: {p} does not exist: give the path of a rembg ONNX model file on "
                           f"this machine (e.g. u2net.onnx); nothing is downloaded")
    if not p.is_file() or p.suffix.lower() not in MODEL_SUFFIXES:
        raise Vid2VidError(f"remove_background: {p} is not an .onnx file: give a rembg ONNX model file "
                           f"(e.g. u2net.onnx, isnet-general-use.onnx)")
    return p.resolve()


def _import_rembg():
    """rembg, imported with torch's thread count kept: rembg imports pymatting, whose numba functions start
    numba's OpenMP threading layer, and that sets OpenMP's thread count (which torch shares) to the machine's
    cores. A torch that ran with fewer threads would then compute batches in another order (other last bits)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        import rembg  # noqa: PLC0415 - optional; its import loads numba (seconds)
    except ImportError as exc:
        raise Vid2VidError(f"remove_background needs the rembg package ({exc.name or 'rembg'} is missing): "
                           f"{INSTALL_HINT}") from None
    finally:
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return rembg


@contextlib.contextmanager
def _home(folder: Path):
    """``U2NET_HOME`` = ``folder`` while the session opens (rembg accepts custom models only under it)."""
    with _ENV_LOCK:
        before = os.environ.get("U2NET_HOME")
        os.environ["U2NET_HOME"] = str(folder)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("U2NET_HOME", None)
            else:
                os.environ["U2NET_HOME"] = before


def session(path: str | os.PathLike):
    """rembg's ``u2net_custom`` session of the model file (checked first), opened once per file version."""
    model = check_model(path)
    st = model.stat()
    key = (str(model), st.st_size, int(st.st_mtime_ns))
    if key not in _SESSIONS:
        rembg = _import_rembg()
        try:
            with _home(model.parent):
                _SESSIONS[key] = rembg.new_session("u2net_custom", model_path=str(model))
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors: a bad or foreign file
            text = " ".join(str(exc).split())[:200]
            raise Vid2VidError(f"remove_background: {model.name} cannot be opened as a rembg model ({text}): give "
                               f"a u2net-style ONNX file") from None
    return _SESSIONS[key]


def alpha(rgb: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """rembg's foreground mask of ``rgb`` (RGB uint8 HWC): float32 HW in 0..1, 1 = keep."""
    from PIL import Image  # noqa: PLC0415

    sess = session(path)
    try:
        masks = sess.predict(Image.fromarray(rgb))
    except Exception as exc:  # noqa: BLE001 - a model of another shape fails here
        text = " ".join(str(exc).split())[:200]
        raise Vid2VidError(f"remove_background: the model did not run on this image ({text}): it must take a "
                           f"(1, 3, 320, 320) image and give (1, C, h, w), as u2net does") from None
    mask = np.asarray(masks[0].convert("L"), dtype=np.float32) / 255.0
    if mask.shape != rgb.shape[:2]:
        raise Vid2VidError(f"remove_background: the mask is {mask.shape[1]}x{mask.shape[0]} px, the image "
                           f"{rgb.shape[1]}x{rgb.shape[0]}")
    return mask


def replace_background(rgb: np.ndarray, path: str | os.PathLike, colour: tuple[int, int, int]) -> np.ndarray:
    """``rgb`` (RGB uint8 HWC) with its background (rembg's mask) replaced by ``colour`` (R, G, B 0..255);
    see the module docstring for the formula."""
    a = alpha(rgb, path)[..., None]
    out = a * rgb.astype(np.float32) + (1.0 - a) * np.asarray(colour, np.float32)
    return to_uint8_255(out)
