"""User-supplied depth instead of the model: a depth video or a folder of numbered depth images.

User depth (:class:`DepthSource`)
    A depth video or a folder of numbered images (white = near, as MiDaS and the WebUI save them),
    read as grey 0..1 (16-bit PNGs keep their precision) and resized to the frame size; it replaces the
    model. A frame it does not have is an error naming that frame.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import Vid2VidError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
ASPECT_TOLERANCE = 0.02


def _grey01(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16, grey or BGR(A) -> float32 HW 0..1 (BT.601 luma for colour)."""
    scale = np.float32(1 / 65535) if img.dtype == np.uint16 else np.float32(1 / 255)
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY) if img.dtype == np.uint8 else (
            img[:, :, 2] * 0.299 + img[:, :, 1] * 0.587 + img[:, :, 0] * 0.114)
    return img.astype(np.float32) * scale


def _fit(grey: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    w, h = int(size[0]), int(size[1])
    gh, gw = grey.shape[:2]
    if (gw, gh) == (w, h):
        return grey
    if abs((gw / gh) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        raise Vid2VidError(f"{what} is {gw}x{gh} but the frame is {w}x{h}; give depth maps with the frame's aspect ratio")
    interp = cv2.INTER_AREA if gw * gh > w * h else cv2.INTER_LINEAR
    return cv2.resize(grey, (w, h), interpolation=interp)


class DepthSource:
    """User-supplied depth (white = near) instead of the model: :meth:`from_video` or :meth:`from_folder`.

    ``get(index, size)`` -> float32 HW 0..1 at ``size = (width, height)``. Folder files pair with frames by
    the last run of digits in their names, the smallest number being frame 0 (as the user masks do).
    ``check_count(n)`` raises when the source does not have exactly ``n`` frames, naming the first frame
    without depth (or the first extra one).
    """

    def __init__(self, kind: str, path: Path, count: int):
        self.kind = kind
        self.path = path
        self.count = count
        self._files: dict[int, Path] = {}
        self._start = 0
        self._iter = None
        self._next = 0
        self._video_args: dict[str, Any] = {}

    @classmethod
    def from_folder(cls, path: str | Path) -> DepthSource:
        p = Path(path)
        if not p.is_dir():
            raise Vid2VidError(f"depth folder {p} not found; give a folder of numbered depth images")
        files: dict[int, Path] = {}
        for f in sorted(p.iterdir()):
            groups = re.findall(r"\d+", f.stem)
            if not f.is_file() or f.suffix.lower() not in IMAGE_SUFFIXES or not groups:
                continue
            n = int(groups[-1])
            if n in files:
                raise Vid2VidError(f"depth folder {p}: {files[n].name} and {f.name} both have number {n}; keep one")
            files[n] = f
        if not files:
            raise Vid2VidError(f"depth folder {p} has no numbered images; name them like 000000.png")
        start = min(files)
        count = 0
        while start + count in files:
            count += 1
        src = cls("folder", p, count)
        src._files, src._start = files, start
        return src

    @classmethod
    def from_video(cls, path: str | Path, *, fps=None, start: float = 0.0, end: float | None = None) -> DepthSource:
        """A depth video, resampled like the clip when given the job's ``fps``/``start``/``end``."""
        from . import video_probe, video_resample

        p = Path(path)
        if not p.is_file():
            raise Vid2VidError(f"depth video {p} not found; check the path")
        info = video_probe.probe(p)
        src = cls("video", p, video_resample.output_frame_count(info, fps, start, end))
        src._video_args = {"fps": fps, "start": start, "end": end, "info": info}
        return src

    def check_count(self, n_frames: int) -> None:
        if self.count < n_frames:
            raise Vid2VidError(
                f"depth {self.kind} {self.path} has {self.count} frames but the clip has {n_frames}: "
                f"frame {self.count} has no depth map; give depth for every frame"
            )
        if self.count > n_frames:
            raise Vid2VidError(
                f"depth {self.kind} {self.path} has {self.count} frames but the clip has {n_frames} "
                f"(frame {n_frames} onward has no clip frame); trim it to the clip"
            )

    def _raw(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise Vid2VidError(
                f"depth {self.kind} {self.path} has no depth map for frame {index} ({self.count} frames); "
                "give depth for every frame"
            )
        if self.kind == "folder":
            f = self._files[self._start + index]
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise Vid2VidError(f"cannot read depth image {f} for frame {index}; replace it with a PNG")
            return _grey01(img)
        from . import video_decode

        if self._iter is None or index < self._next:
            self._iter = video_decode.iter_frames(self.path, first_index=index, **self._video_args)
        while True:
            try:
                k, rgb = next(self._iter)
            except StopIteration:
                self._iter = None
                raise Vid2VidError(f"depth video {self.path} ended before frame {index}; give depth for every frame") from None
            self._next = k + 1
            if k == index:
                return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)

    def get(self, index: int, size: tuple[int, int]) -> np.ndarray:
        """Depth of frame ``index`` (0-based), float32 HW 0..1 (1 = near) resized to ``size = (w, h)``."""
        return np.clip(_fit(self._raw(index), size, f"depth map for frame {index}"), 0.0, 1.0)

    def close(self) -> None:
        self._iter = None
