"""A ControlNet unit's own control video or folder of images (a pose, depth or edge video made elsewhere).

The setting ``controlnet_inputs`` holds one line per unit, ``UNIT: PATH`` (units numbered from 0 as in the
img2img tab). For frame ``i`` of the job that unit gets frame ``i`` of its video, decoded with the job's own
frame rate, range, size and resize mode (so it stays in step with the source), or the ``i``-th image (by
name) of its folder, resized to the output size. A control shorter than the job holds its last frame. Units
not named keep the rule of lib_vid2vid/host/a1111.py's ControlNetBridge: an empty unit gets the source frame,
a unit with its own image keeps it.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import SettingsError, Vid2VidError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FIELD = "controlnet_inputs"


def parse(text: str) -> dict[int, str]:
    """``"0: /data/pose.mp4"`` lines -> {unit: path}; blank lines are ignored."""
    out: dict[int, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        unit, sep, path = line.partition(":")
        if not sep or not unit.strip().isdigit() or not path.strip():
            raise SettingsError(FIELD, f"{line.strip()!r}: write one unit per line as 'UNIT: path', e.g. "
                                       f"'1: /data/pose.mp4' (units count from 0)")
        if int(unit) in out:
            raise SettingsError(FIELD, f"unit {int(unit)} is given twice")
        out[int(unit)] = path.strip()
    return out


def check(text: str) -> dict[int, str]:
    """Parse and check that every path exists (a video file or a folder with images)."""
    units = parse(text)
    for unit, path in units.items():
        p = Path(path).expanduser()
        if p.is_dir():
            if not _images(p):
                raise SettingsError(FIELD, f"unit {unit}: the folder {p} holds no images "
                                           f"({', '.join(IMAGE_SUFFIXES)})")
        elif not p.is_file():
            raise SettingsError(FIELD, f"unit {unit}: {p} does not exist on the server: give a control video or a "
                                       f"folder of images")
    return units


def _images(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())


class ControlFrames:
    """Frame ``i`` of each unit's control, RGB uint8 HWC at the output size. Videos are read forward, one
    frame kept per unit; asking for an earlier frame (a second loopback pass) starts that video again."""

    def __init__(self, units: dict[int, str], *, size: tuple[int, int], fps: Fraction | None = None,
                 start: float = 0.0, end: float | None = None, resize_mode: str = "just_resize"):
        self.units = {u: Path(p).expanduser() for u, p in units.items()}
        self.size, self.fps, self.start, self.end, self.resize_mode = size, fps, start, end, resize_mode
        self._readers: dict[int, tuple[Iterator, int, np.ndarray | None]] = {}
        self._folders = {u: _images(p) for u, p in self.units.items() if p.is_dir()}

    def frames(self, index: int) -> dict[int, np.ndarray]:
        return {unit: self._frame(unit, index) for unit in self.units}

    def _frame(self, unit: int, index: int) -> np.ndarray:
        if unit in self._folders:
            files = self._folders[unit]
            return _load(files[min(index, len(files) - 1)], self.size)
        it, nxt, last = self._readers.get(unit, (None, 0, None))
        if it is None or index < nxt - 1:
            it, nxt, last = self._open(unit), 0, None
        while nxt <= index:
            try:
                _i, last = next(it)
            except StopIteration:
                break  # shorter than the job: hold its last frame
            nxt += 1
        self._readers[unit] = (it, nxt, last)
        if last is None:
            raise Vid2VidError(f"ControlNet unit {unit}: no frame could be read from {self.units[unit]}")
        return last

    def _open(self, unit: int) -> Iterator:
        from .video_decode import iter_frames

        return iter_frames(self.units[unit], fps=self.fps, start=self.start, end=self.end or None,
                                 size=self.size, resize_mode=self.resize_mode)


def _load(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        if rgb.size != tuple(size):
            rgb = rgb.resize(tuple(size), Image.LANCZOS)
        return np.asarray(rgb, dtype=np.uint8)
