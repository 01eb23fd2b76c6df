"""A job is a folder.

Layout of ``<output_dir>/<YYYYmmdd-HHMMSS>-<video name>-<id>/``::

    manifest.json        settings, source probe, versions, status, per-frame state (written atomically)
    job.log              what happened, with warnings (e.g. a sampler that ignores the sigma override)
    job.lock             locked by the run writing into the job (lib_vid2vid/joblock.py): one writer at a time
    frames/<stage>/      000000.png, 000001.png ... zero-based, one folder per stage (pass1, pass2, upscaled ...)
    <name>.<ext>         the final video

Frames are written to a temporary name and renamed, so a frame file either is whole or does not exist.
A frame counts as done when its file exists *and* the manifest lists it; resume continues after the last
contiguous done frame. Finished frames are never overwritten unless the caller asks (``overwrite=True``).
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import platform
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import __version__
from .errors import Vid2VidError
from .joblock import JobLock

MANIFEST = "manifest.json"
FRAME_DIGITS = 6
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")

RENDER_KEY_GROUPS = ("video", "sampling", "correction", "temporal")
"""Setting groups that change rendered frames: a run with the same input and these settings resumes
the unfinished job instead of starting a new one. Export and job settings may change between runs."""


def _io_error(action: str, path: Path, exc: OSError) -> Vid2VidError:
    if exc.errno == errno.ENOSPC:
        return Vid2VidError(f"No space left on the disk while {action} {path}: free some space, then run the "
                            f"same job again to resume (finished frames are kept)")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return Vid2VidError(f"Cannot use {path} as a folder: a file is in the way; choose another output folder")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Vid2VidError(f"Cannot write {path} ({exc.strerror}): choose an output folder you can write to")
    return Vid2VidError(f"Failed {action} {path}: {exc.strerror or exc}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _io_error("writing", path, exc) from None


def encode_png(rgb: np.ndarray, compression: int = 1, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes of an RGB uint8 HWC image (compression 1: fast, still lossless and deterministic).

    ``text`` becomes iTXt chunks (UTF-8) right after the header: "parameters" is where the WebUI's PNG Info
    tab and other tools look for generation parameters.
    """
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise Vid2VidError("PNG encoding failed")
    data = buf.tobytes()
    if text:
        chunks = b"".join(_png_chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))
                          for key, value in text.items())
        end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
        data = data[:end_of_ihdr] + chunks + data[end_of_ihdr:]
    return data


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def read_png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG (as the WebUI's PNG Info reads them)."""
    from PIL import Image

    with Image.open(path) as im:
        return {k: v for k, v in im.info.items() if isinstance(v, str)}


def read_png(path: Path) -> np.ndarray:
    """RGB uint8 HWC from a PNG (or any image OpenCV reads)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise Vid2VidError(f"Cannot read image {path}: the file is damaged; delete it and resume to render it again")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def versions() -> dict[str, str]:
    import av

    out = {"lib_vid2vid": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "opencv": cv2.__version__, "av": av.__version__}
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.__version__
    return out


def source_fingerprint(path: str | Path) -> dict[str, Any]:
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime": int(st.st_mtime)}


def render_key(settings_dict: dict[str, Any], fingerprint: dict[str, Any],
               host: dict[str, Any] | None = None) -> str:
    """Hash of what decides the rendered frames: the source file, the render-affecting settings and the
    host identity (checkpoint, ControlNet units ...: lib_vid2vid/identity.py); without ``host``, the
    "settings key" that finds an unfinished job made with another host setup."""
    from .params import SPECS

    relevant = {s.name: settings_dict.get(s.name) for s in SPECS if s.group in RENDER_KEY_GROUPS}
    what: dict[str, Any] = {"settings": relevant, "source": fingerprint}
    if host:
        what["host"] = host
    blob = json.dumps(what, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Job:
    """One job folder and its manifest."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = Path(root).absolute()
        self.manifest = manifest
        self._lock = threading.RLock()  # stages and the writer thread both record frames
        self.lock: JobLock | None = None
        """The folder's one-writer lock while a run holds it (lib_vid2vid/joblock.py); close() frees it."""
        self._log = self._make_logger()

    # ---- creation and lookup ----

    @classmethod
    def create(cls, output_dir: str | Path, *, video_name: str, settings: dict[str, Any],
               source: dict[str, Any], fingerprint: dict[str, Any], extra: dict[str, Any] | None = None,
               host: dict[str, Any] | None = None, lock: bool = False) -> Job:
        """A new job folder; with ``lock`` it is locked before its manifest exists, so no other run can
        pick it up in between."""
        out = Path(output_dir).absolute()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error("creating the output folder", out, exc) from None
        if not os.access(out, os.W_OK):
            raise Vid2VidError(f"Cannot write to the output folder {out}: choose a folder you can write to")
        stem = _SAFE.sub("_", Path(video_name).stem).strip("_")[:40] or "video"
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            job_id = secrets.token_hex(3)
            root = out / f"{stamp}-{stem}-{job_id}"
            try:
                root.mkdir()
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise _io_error("creating the job folder", root, exc) from None
        held = JobLock.acquire(root) if lock else None
        manifest = {
            "format": 1,
            "id": job_id,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "status": "created",
            "render_key": render_key(settings, fingerprint, host),
            "settings_key": render_key(settings, fingerprint),
            **({"host": host} if host is not None else {}),
            "settings": settings,
            "source": source,
            "source_file": fingerprint,
            "versions": versions(),
            "stages": {},
            "frames": {},
            **(extra or {}),
        }
        job = cls(root, manifest)
        job.lock = held
        job.save()
        job.log(f"created job {root.name} for {fingerprint.get('path')}")
        return job

    @classmethod
    def open(cls, path: str | Path) -> Job:
        root = Path(path)
        mf = root / MANIFEST
        if not mf.is_file():
            raise Vid2VidError(f"{root} is not a vid2vid job folder (no {MANIFEST}): give the folder of a job")
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise Vid2VidError(f"Cannot read {mf} ({exc}): the job's manifest is damaged") from None
        return cls(root, manifest)

    @classmethod
    def resolve(cls, ref: str | Path, output_dir: str | Path) -> Job:
        """A job by folder path, folder name or id (looked up under ``output_dir``)."""
        p = Path(ref)
        if (p / MANIFEST).is_file():
            return cls.open(p)
        ref = str(ref)
        for job in list_jobs(output_dir):
            if job.root.name == ref or job.manifest.get("id") == ref:
                return job
        raise Vid2VidError(f"No job {ref!r} under {output_dir}: pick one from the Jobs tab (or --list-jobs)")

    # ---- manifest ----

    @property
    def status(self) -> str:
        return self.manifest.get("status", "created")

    def set_status(self, status: str, **info: Any) -> None:
        self.manifest["status"] = status
        self.manifest.update(info)
        self.save()

    def save(self) -> None:
        with self._lock:
            data = json.dumps(self.manifest, indent=1).encode("utf-8")
            atomic_write_bytes(self.root / MANIFEST, data)

    # ---- frames ----

    def stage_dir(self, stage: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_]+", stage):
            raise ValueError(f"bad stage name {stage!r}")
        d = self.root / "frames" / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    def frame_path(self, stage: str, index: int) -> Path:
        return self.stage_dir(stage) / f"{index:0{FRAME_DIGITS}d}.png"

    def write_frame(self, stage: str, index: int, rgb: np.ndarray, record: dict[str, Any] | None = None,
                    *, overwrite: bool = False, save_manifest: bool = True, text: dict[str, str] | None = None
                    ) -> Path:
        """Write frame ``index`` of ``stage`` atomically, then record it as done in the manifest."""
        path = self.frame_path(stage, index)
        if path.exists() and not overwrite and self.is_done(stage, index):
            raise Vid2VidError(f"Frame {index} of stage {stage} is already finished in {self.root}: "
                               f"not overwriting it")
        atomic_write_bytes(path, encode_png(rgb, text=text))
        self.mark_done(stage, index, record, save=save_manifest)
        return path

    def read_frame(self, stage: str, index: int) -> np.ndarray:
        return read_png(self.frame_path(stage, index))

    def mark_done(self, stage: str, index: int, record: dict[str, Any] | None = None, *, save: bool = True):
        with self._lock:
            self._mark_done(stage, index, record, save)

    def _mark_done(self, stage: str, index: int, record: dict[str, Any] | None, save: bool) -> None:
        st = self.manifest["stages"].setdefault(stage, {"done": 0})
        if index == st["done"]:
            st["done"] = index + 1
        elif index > st["done"]:
            raise ValueError(f"frame {index} of {stage} written before frame {st['done']}")
        if record is not None:
            log = self.manifest["frames"].setdefault(stage, [])
            if index < len(log):
                log[index] = record
            else:
                log.append(record)
        if save:
            self.save()

    def is_done(self, stage: str, index: int) -> bool:
        return index < self.manifest["stages"].get(stage, {}).get("done", 0)

    def frames_done(self, stage: str) -> int:
        """Contiguous frames of ``stage`` that the manifest lists and whose files exist."""
        n = self.manifest["stages"].get(stage, {}).get("done", 0)
        for i in range(n):
            if not self.frame_path(stage, i).is_file():
                n = i
                break
        return n

    def truncate_stage(self, stage: str, done: int) -> None:
        """Believe only the first ``done`` frames of a stage (files after it are left on disk, untouched)."""
        st = self.manifest["stages"].setdefault(stage, {"done": 0})
        st["done"] = min(st["done"], done)
        log = self.manifest["frames"].get(stage)
        if log is not None:
            del log[done:]
        self.save()

    def set_stage_total(self, stage: str, total: int) -> None:
        self.manifest["stages"].setdefault(stage, {"done": 0})["total"] = total
        self.save()

    # ---- log ----

    def _make_logger(self) -> logging.Logger:
        logger = logging.getLogger(f"lib_vid2vid.job.{self.root.name}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            try:
                handler = logging.FileHandler(self.root / "job.log", encoding="utf-8")
            except OSError:
                handler = logging.NullHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
        return logger

    def log(self, message: str, *, warning: bool = False) -> None:
        (self._log.warning if warning else self._log.info)(message)
        if warning:
            self.manifest.setdefault("warnings", [])
            if message not in self.manifest["warnings"]:
                self.manifest["warnings"].append(message)

    def close(self) -> None:
        for h in list(self._log.handlers):
            h.close()
            self._log.removeHandler(h)
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def list_jobs(output_dir: str | Path) -> list[Job]:
    """Jobs under ``output_dir``, newest first; folders that are not jobs are ignored."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    jobs = []
    for child in sorted(out.iterdir(), reverse=True):
        if (child / MANIFEST).is_file():
            try:
                jobs.append(Job.open(child))
            except Vid2VidError:
                continue
    return jobs


def find_unfinished(output_dir: str | Path, key: str) -> Job | None:
    """The newest unfinished job with this render key, if any."""
    for job in list_jobs(output_dir):
        if job.manifest.get("render_key") == key and job.status != "done":
            return job
    return None
