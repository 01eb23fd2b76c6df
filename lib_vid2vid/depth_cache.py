"""Depth computed once per job and kept on disk, normalised per frame, over the frames so far, or per job.

Normalisation range ``(lo, hi)`` (:class:`DepthCache` ``normalise=``)
    * ``"frame"`` (default): ``lo, hi = min, max`` of this frame. Every frame uses the full 0..1 range,
      which **flickers**: a near object entering the frame rescales the whole map, and MiDaS' own scale
      drifts between frames, so a fixed low-cut selects a jumping area.
    * ``"running"``: ``lo_i = min_{j<=i} min_j``, ``hi_i = max_{j<=i} max_j`` over the frames so far.
      The range only widens, so the mask is steady once the extremes have been seen; it depends only on
      frames ``0..i``, so it is deterministic on resume (rebuilt from the cached ranges on disk).
    * ``"job"``: one range for the whole job: ``lo = min_i q_lo_i``, ``hi = max_i q_hi_i`` where
      ``q_lo_i, q_hi_i`` are the ``percentiles`` (default 2 and 98) of frame ``i``'s raw depth. Steadiest,
      robust to single-pixel outliers, but needs every frame's depth first (:meth:`DepthCache.fill`).
    MiDaS' scale is only relative per frame, so the job-wide modes trade exactness per frame for
    steadiness across frames.

Cache (:class:`DepthCache`)
    ``<folder>/000000.png`` ... 16-bit grey PNGs of the per-frame normalised depth
    ``round(65535 * (raw - min) / (max - min))`` plus ``<folder>/depth.jsonl`` with each frame's raw
    ``[min, max, q_lo, q_hi]``, so the raw depth is ``min + png / 65535 * (max - min)`` (error at most
    ``(max - min) / 131070``) and any normalisation mode can be applied later. Written atomically;
    a cached frame is never computed again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from .depth_mask import normalise
from .errors import SettingsError, Vid2VidError

NORMALISE_MODES = ("frame", "running", "job")


def _stats(raw: np.ndarray, percentiles: tuple[float, float]) -> list[float]:
    q_lo, q_hi = np.percentile(raw, percentiles)
    return [float(raw.min()), float(raw.max()), float(q_lo), float(q_hi)]


class DepthCache:
    """Depth computed once per job: ``<folder>/NNNNNN.png`` (16-bit) + ``depth.jsonl`` (see the module docstring).

    ``folder`` is the cache folder (e.g. ``job.root / "depth"``); ``normalise`` is ``"frame"``,
    ``"running"`` or ``"job"``; ``percentiles`` (0..100) give ``q_lo, q_hi`` for ``"job"``.
    ``depth.jsonl`` is append-only: a header line ``{"percentiles": [lo, hi]}``, then one line
    ``{"i": index, "s": [min, max, q_lo, q_hi]}`` per frame, written after the frame's PNG. A frame counts
    as cached when it has both; a torn last line is ignored. A header with other percentiles starts anew.
    """

    STATS = "depth.jsonl"

    def __init__(self, folder: str | Path, *, normalise: str = "frame", percentiles: tuple[float, float] = (2.0, 98.0)):
        if normalise not in NORMALISE_MODES:
            raise SettingsError("depth_normalise", f"unknown {normalise!r}; choose one of {', '.join(NORMALISE_MODES)}")
        lo, hi = percentiles
        if not 0 <= lo < hi <= 100:
            raise SettingsError("depth_percentiles", f"{percentiles} must satisfy 0 <= low < high <= 100")
        self.folder = Path(folder)
        self.mode = normalise
        self.percentiles = (float(lo), float(hi))
        self._stats: dict[int, list[float]] = {}
        self._run: tuple[int, float, float] | None = None  # memo of the running range: (index, lo, hi)
        self._fresh = True
        self._load()

    def _load(self) -> None:
        p = self.folder / self.STATS
        try:
            lines = p.read_text().splitlines()
        except OSError:
            return
        try:
            header = json.loads(lines[0]) if lines else {}
        except ValueError:
            header = {}
        if [float(x) for x in header.get("percentiles", ())] != list(self.percentiles):
            return  # another percentile setting (or no header): recompute, the log is rewritten
        self._fresh = False
        for line in lines[1:]:
            try:
                rec = json.loads(line)
                self._stats[int(rec["i"])] = [float(x) for x in rec["s"]][:4]
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from an interrupted run
        self._stats = {k: v for k, v in self._stats.items() if len(v) == 4 and self.path(k).is_file()}

    def path(self, index: int) -> Path:
        return self.folder / f"{int(index):06d}.png"

    def has(self, index: int) -> bool:
        return index in self._stats

    def put(self, index: int, raw: np.ndarray) -> None:
        """Store frame ``index``'s raw depth (float32 HW): the 16-bit PNG first, then its stats line."""
        from .workspace import _io_error, atomic_write_bytes

        index = int(index)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error("creating", self.folder, exc) from None
        st = _stats(raw, self.percentiles)
        u16 = np.rint(normalise(raw, st[0], st[1]) * 65535.0).astype(np.uint16)
        ok, buf = cv2.imencode(".png", u16, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise Vid2VidError(f"PNG encoding failed for depth frame {index}")
        atomic_write_bytes(self.path(index), buf.tobytes())
        log = self.folder / self.STATS
        try:
            if self._fresh:
                atomic_write_bytes(log, (json.dumps({"percentiles": list(self.percentiles)}) + "\n").encode())
                self._fresh = False
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"i": index, "s": st}) + "\n")
        except OSError as exc:
            raise _io_error("writing", log, exc) from None
        self._stats[index] = st
        if self._run is not None and self._run[0] >= index:
            self._run = None

    def raw(self, index: int) -> np.ndarray:
        """Frame ``index``'s raw depth rebuilt from the cache: ``min + png / 65535 * (max - min)``."""
        u16 = self._png(index)
        lo, hi = self._stats[index][:2]
        return np.float32(lo) + u16.astype(np.float32) * np.float32((hi - lo) / 65535.0)

    def _png(self, index: int) -> np.ndarray:
        if index not in self._stats:
            raise Vid2VidError(f"depth for frame {index} is not cached in {self.folder}")
        p = self.path(index)
        u16 = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if u16 is None or u16.dtype != np.uint16 or u16.ndim != 2:
            raise Vid2VidError(f"depth cache file {p} is missing or damaged; delete it and run the job again")
        return u16

    def range(self, index: int) -> tuple[float, float]:
        """``(lo, hi)`` used to normalise frame ``index`` in this cache's mode."""
        if self.mode == "frame":
            if index not in self._stats:
                raise Vid2VidError(f"depth for frame {index} is not cached in {self.folder}")
            lo, hi = self._stats[index][:2]
        elif self.mode == "running":
            start, lo, hi = (0, math.inf, -math.inf) if self._run is None or self._run[0] > index else (
                self._run[0] + 1, self._run[1], self._run[2])
            for j in range(start, index + 1):
                s = self._stats.get(j)
                if s is None:
                    raise Vid2VidError(f"running depth range of frame {index} needs frame {j}'s depth first")
                lo, hi = min(lo, s[0]), max(hi, s[1])
            self._run = (index, lo, hi)
        else:
            if not self._stats:
                raise Vid2VidError("job depth range needs the depth of every frame first (DepthCache.fill)")
            lo = min(s[2] for s in self._stats.values())
            hi = max(s[3] for s in self._stats.values())
        return float(lo), float(hi)

    def depth(self, index: int) -> np.ndarray:
        """Normalised depth of a cached frame, float32 HW 0..1 (1 = near)."""
        if self.mode == "frame":
            return self._png(index).astype(np.float32) / np.float32(65535)
        return normalise(self.raw(index), *self.range(index))

    def get(self, index: int, frame: np.ndarray, estimator) -> np.ndarray:
        """Normalised depth of frame ``index`` (RGB uint8 ``frame``): from the cache, or computed with
        ``estimator.predict`` and cached first. The model never runs twice for one frame."""
        if not self.has(index):
            self.put(index, estimator.predict(frame))
        return self.depth(index)

    def fill(self, frames, estimator, progress=None) -> int:
        """Compute and cache every ``(index, frame)`` of ``frames`` not cached yet (for ``"job"`` mode);
        returns how many were computed. ``progress(done_index)`` is called after each frame."""
        n = 0
        for index, frame in frames:
            if not self.has(index):
                self.put(index, estimator.predict(frame))
                n += 1
            if progress is not None:
                progress(index)
        return n
