"""Invisible watermark of generated frames, and a tool that reads it back.

The mark is a short text embedded with invisible-watermark's ``dwtDct`` method, the one Stability's reference
scripts use: the text's bits go into the DCT coefficients of blocks of the U channel's wavelet (DWT) band.
It needs frames of at least 256 x 256 pixels; it holds in lossless frames (the job's PNGs) of textured pictures,
and is often lost in flat areas (a smooth gradient) and by lossy compression (JPEG, H.264): it marks the frames,
it does not survive an mp4. Optional: ``pip install --no-deps invisible-watermark PyWavelets`` (invisible-
watermark's own requirements name opencv-python, which would clash with opencv-python-headless).

Read back::

    python -m lib_vid2vid.watermark FRAME.png ... --length 7      # the text, one line per image
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import Vid2VidError

METHOD = "dwtDct"
MIN_PIXELS = 256 * 256
INSTALL = ("pip install --no-deps invisible-watermark PyWavelets (--no-deps: its requirements name opencv-python, "
           "which clashes with opencv-python-headless)")


def _lib():
    try:
        import imwatermark  # noqa: PLC0415 - optional
    except ImportError:
        raise Vid2VidError(f"The invisible watermark needs invisible-watermark: {INSTALL}") from None
    return imwatermark


def check_size(width: int, height: int) -> None:
    if width * height < MIN_PIXELS:
        raise Vid2VidError(f"the invisible watermark needs frames of at least 256 x 256 pixels ({width} x {height} "
                           f"given): make larger frames or leave the watermark off")


def embed(rgb: np.ndarray, text: str) -> np.ndarray:
    """``rgb`` (RGB uint8 HWC, at least 256 x 256 pixels) with ``text`` (UTF-8) embedded, RGB uint8 HWC."""
    lib = _lib()
    check_size(rgb.shape[1], rgb.shape[0])
    enc = lib.WatermarkEncoder()
    enc.set_watermark("bytes", text.encode("utf-8"))
    bgr = enc.encode(np.ascontiguousarray(rgb[..., ::-1]), METHOD)
    return np.ascontiguousarray(np.asarray(bgr, np.uint8)[..., ::-1])


def read(rgb: np.ndarray, length: int) -> str:
    """The ``length``-byte text embedded in ``rgb`` (RGB uint8 HWC); unreadable bytes come back as U+FFFD."""
    lib = _lib()
    dec = lib.WatermarkDecoder("bytes", 8 * int(length))
    data = dec.decode(np.ascontiguousarray(rgb[..., ::-1]), METHOD)
    return bytes(data).decode("utf-8", errors="replace")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib_vid2vid.watermark",
                                 description="Read the invisible watermark of frames (PNG files of a job).")
    ap.add_argument("images", nargs="+", metavar="IMAGE")
    ap.add_argument("--length", type=int, required=True, help="length of the embedded text in bytes (UTF-8)")
    args = ap.parse_args(argv)
    from PIL import Image, UnidentifiedImageError

    try:
        for name in args.images:
            try:
                with Image.open(Path(name)) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except (OSError, UnidentifiedImageError):
                raise Vid2VidError(f"{name} cannot be read as an image: give PNG frames") from None
            print(f"{name}: {read(rgb, args.length)}")
    except Vid2VidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
