"""A job is a folder.

Layout of ``<output_dir>/<YYYYmmdd-HHMMSS>-<video name>-<id>/``::

    manifest.json        settings, source probe, versions, status, per-stage totals (rewritten atomically)
    journal.jsonl        per-frame bookkeeping: one JSON line appended per finished frame
    job.log              what happened, with warnings (e.g. a sampler that ignores the sigma override)
    job.lock             locked by the run writing into the job (lib_vid2vid/joblock.py): one writer at a time
    frames/<stage>/      000000.png, 000001.png ... zero-based, one folder per stage (pass1, pass2, upscaled ...)
    <name>.<ext>         the final video

Frames are written to a temporary name, flushed to the disk (fsync) and renamed, and the rename is flushed
too, so a frame file either is whole or does not exist, even after a power loss. A frame counts as done when
its file exists *and* the journal lists it; resume continues after the last contiguous done frame. Finished
frames are never overwritten unless the caller asks (``overwrite=True``).

Per-frame bookkeeping costs the same at frame 100,000 as at frame 10: a finished frame appends one line to
``journal.jsonl`` (``{"stage": "pass1", "frame": 5, "record": {...}}``; ``{"stage": "pass1", "keep": 5}``
believes only the first 5 frames of a stage) and flushes it, after the frame file it names is on the disk.
``manifest.json`` is rewritten only when the job's own state changes (status, a stage's total, a new
warning). Opening a job replays the journal into ``manifest["stages"][stage]["done"]`` and
``manifest["frames"][stage]`` (the in-memory shape readers use); reading stops at the first line that is not
whole (a kill -9 mid-append) and the next append cuts the file there.

Compaction rewrites the journal (temporary file, fsync, rename) as one line per stage holding its whole state,
``{"stage": "pass1", "done": 120, "records": [...]}``: when a run ends (any status but running), at the first
write of a run that finds more than :data:`COMPACT_SLACK` lines a killed run left, and when superseded lines
(``truncate_stage``, overwrites) outnumber the live ones. So a finished job opens with one JSON parse per
stage, and a compaction costs O(frames) once per run, never per frame. Jobs made before the journal (manifest
``format`` 1, frames inside ``manifest.json``) open as they are and are migrated on their first write.
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
JOURNAL = "journal.jsonl"
MANIFEST_FORMAT = 2
"""1: per-frame state inside manifest.json (migrated on the first write); 2: per-frame state in the journal."""
FSYNC = True
"""Flush frames, the journal and the manifest to the disk before relying on them (off only in benchmarks)."""
COMPACT_SLACK = 1024
"""Superseded journal lines tolerated beyond the live ones before the journal is rewritten compacted."""
FRAME_DIGITS = 6
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
_LOG = logging.getLogger("lib_vid2vid")

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


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename.

    ``durable``: the data is flushed to the disk before the rename and the rename after it, so once this
    returns the file survives a power loss whole (what resume relies on: frames, the manifest)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _io_error("writing", path, exc) from None


def fsync(fd: int) -> None:
    """Flush an open file's data to the disk (unless :data:`FSYNC` is off)."""
    if FSYNC:
        os.fsync(fd)


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to the disk. Windows cannot open a folder
    for this; NTFS journals the rename itself."""
    if not FSYNC:
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # file systems without folder fsync
            raise
    finally:
        os.close(fd)


_TEMP_NAMES = re.compile(r"\..+\.(?:[0-9a-f]{8}\.part|\d+\.tmp|zip\.tmp)")
"""Hidden temporary names this package writes: ``.<name>.<8 hex>.part`` (video_writer.VideoWriter, a file or a folder
of PNGs), ``.<name>.<pid>.tmp`` (atomic_write_bytes) and ``.<name>.zip.tmp`` (export.write_zip)."""


def remove_temp_files(root: Path) -> int:
    """Delete the temporary files (and ``.part`` folders) a killed run left anywhere under ``root``; only
    names of the forms in :data:`_TEMP_NAMES`. Returns how many were removed. Call it only while no other
    process writes into ``root``."""
    import shutil

    removed = 0
    for folder, dirs, files in os.walk(root):
        for name in [d for d in dirs if _TEMP_NAMES.fullmatch(d)]:
            dirs.remove(name)
            shutil.rmtree(Path(folder, name), ignore_errors=True)
            removed += 1
        for name in files:
            if _TEMP_NAMES.fullmatch(name):
                try:
                    os.unlink(Path(folder, name))
                    removed += 1
                except OSError:
                    pass
    return removed


_PNG_FILTER_PARAMS = ([cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
                      if hasattr(cv2, "IMWRITE_PNG_FILTER") else [])
"""The sub filter where OpenCV can choose it (4.11 and later); older OpenCV (the WebUI's, <4.11) keeps its
default filters: the pixels are the same either way, only the file size and encode time differ."""


def encode_png(rgb: np.ndarray, compression: int = 1, text: dict[str, str] | None = None) -> bytes:
    """PNG bytes of an RGB uint8 HWC image (compression 1: fast, still lossless and deterministic).

    Every row is filtered with "sub" (left neighbour) and deflated with the run-length strategy: on video
    frames that is about half the CPU time of libpng's adaptive filters at the same level, at about the same
    size (box.mp4 at 1024x576: 24 ms and 745 kB against 48 ms and 799 kB; a noisy proxy-renderer frame at
    512x512: 10 ms and 442 kB against 21 ms and 439 kB).

    ``text`` becomes iTXt chunks (UTF-8) right after the header: "parameters" is where the WebUI's PNG Info
    tab and other tools look for generation parameters.
    """
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, compression, *_PNG_FILTER_PARAMS,
                            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
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
    "settings key" that finds an unfinished job made with another host setup.

    A setting with a ``neutral`` value (``params.Spec.neutral``) is left out while it has that value (or is
    missing): adding such a setting in an update does not change the key of any job, so unfinished jobs from
    before the update resume."""
    from .params import NO_NEUTRAL, SPECS

    relevant = {s.name: settings_dict.get(s.name) for s in SPECS if s.group in RENDER_KEY_GROUPS
                and (s.neutral is NO_NEUTRAL or settings_dict.get(s.name, s.neutral) != s.neutral)}
    what: dict[str, Any] = {"settings": relevant, "source": fingerprint}
    if host:
        what["host"] = host
    blob = json.dumps(what, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _Journal:
    """``journal.jsonl``: one JSON object a line, appended and flushed; only whole lines count.

    Reading stops at the first line that is not a whole JSON object (a kill -9 or a full disk mid-append);
    ``valid_size`` is where it ends, and the first append cuts the file there, so a torn line never glues onto
    the next one. Appends are one ``write`` on an ``O_APPEND`` descriptor followed by an fsync."""

    def __init__(self, path: Path):
        self.path = path
        self.lines = 0
        """Whole lines in the file (read or appended)."""
        self.valid_size: int | None = None
        """Bytes of whole lines read; None until read (a journal never read is appended to as it is)."""
        self._fd: int | None = None
        self._reread = False

    def read(self) -> list[Any]:
        """The entries of the whole lines, in order (none if the file does not exist).

        The whole lines are parsed as one JSON array (C speed: 100,000 lines in well under a second); if that
        fails, line by line up to the first line that is not JSON."""
        data = self._read_bytes()
        body = data[:data.rfind(b"\n") + 1]  # json.dumps escapes newlines: each b"\n" ends a line
        try:
            entries = json.loads(b"[" + body[:-1].replace(b"\n", b",") + b"]") if body else []
            if len(entries) != body.count(b"\n"):
                raise ValueError("a line held more than one value")
        except ValueError:
            entries = []
            for line in body.splitlines():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    break
        self.keep_first(len(entries), body)
        return entries

    def keep_first(self, n: int, body: bytes | None = None) -> None:
        """Believe only the first ``n`` lines: the next append cuts the file after them."""
        body = self._read_bytes() if body is None else body
        end = 0
        for _ in range(n):
            end = body.index(b"\n", end) + 1
        self.lines, self.valid_size = n, end

    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise _io_error("reading", self.path, exc) from None

    def append(self, lines: list[bytes]) -> None:
        """Append whole lines (each ending in a newline) and flush them to the disk."""
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            data = b"".join(lines)
            view = memoryview(data)
            while view:  # one write unless interrupted; a short write leaves a torn line, cut on the next run
                view = view[os.write(self._fd, view):]
            fsync(self._fd)
        except OSError as exc:
            self.close()
            self._reread = True  # the append may have stopped mid-line: find the whole lines again first
            raise _io_error("writing", self.path, exc) from None
        self.lines += len(lines)

    def _open(self) -> None:
        if self._reread:
            self._reread = False
            self.read()
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
        if existed and self.valid_size is not None and os.fstat(self._fd).st_size > self.valid_size:
            os.ftruncate(self._fd, self.valid_size)
        if not existed:
            fsync_dir(self.path.parent)

    def rewrite(self, lines: list[bytes]) -> None:
        """Replace the whole journal (compaction, migration) atomically and durably."""
        self.close()
        atomic_write_bytes(self.path, b"".join(lines), durable=True)
        self.lines = len(lines)
        self.valid_size = sum(len(line) for line in lines)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _journal_line(entry: dict[str, Any]) -> bytes:
    return (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")


def _damaged(mf: Path, what: str) -> Vid2VidError:
    return Vid2VidError(f"Cannot read {mf}: {what}; the job's manifest is damaged: restore it or delete the "
                        f"job folder")


def _check_manifest(mf: Path, manifest: Any) -> dict[str, Any]:
    """``manifest`` if it has the shape of a job manifest, else a one-line error."""
    if not isinstance(manifest, dict):
        raise _damaged(mf, f"it holds a JSON {type(manifest).__name__}, not an object")
    for key in ("stages", "frames", "settings"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise _damaged(mf, f'its "{key}" is a {type(manifest[key]).__name__}, not an object')
    for name, st in manifest.get("stages", {}).items():
        if not isinstance(st, dict) or not isinstance(st.get("done", 0), int):
            raise _damaged(mf, f"its stage {name!r} is not an object with a frame count")
    for name, log in manifest.get("frames", {}).items():
        if not isinstance(log, list):
            raise _damaged(mf, f"its frame records of {name!r} are not a list")
    fmt = manifest.get("format", 1)
    if not isinstance(fmt, int) or fmt > MANIFEST_FORMAT:
        raise Vid2VidError(f"{mf} has manifest format {fmt!r}, newer than this vid2vid reads "
                           f"({MANIFEST_FORMAT}): update vid2vid to open this job")
    return manifest


class Job:
    """One job folder: its manifest (``manifest``, the per-frame state replayed from the journal into
    ``manifest["stages"]`` and ``manifest["frames"]``) and its frames."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = Path(root).absolute()
        self.manifest = manifest
        self._lock = threading.RLock()  # stages and the writer thread both record frames
        self.lock: JobLock | None = None
        """The folder's one-writer lock while a run holds it (lib_vid2vid/joblock.py); close() frees it."""
        self._journal = _Journal(self.root / JOURNAL)
        self._pending: list[bytes] = []
        """Journal lines of frames marked done with ``save=False``, appended at the next save."""
        self._appended = False
        """Whether this object has written the journal yet (lines before that are an earlier run's)."""
        manifest.setdefault("stages", {})
        manifest.setdefault("frames", {})
        if manifest.get("format", 1) >= 2:
            self._replay()
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
        fsync_dir(out)
        manifest = {
            "format": MANIFEST_FORMAT,
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
        return cls(root, _check_manifest(mf, manifest))

    @classmethod
    def open_locked(cls, path: str | Path) -> Job:
        """The job at ``path`` read under its lock, held by the returned job until :meth:`close` (raises
        ``JobRunning`` while a run holds it; a lock left by a dead run is taken over and logged)."""
        lock = JobLock.acquire(Path(path))
        try:
            job = cls.open(path)
        except BaseException:
            lock.release()
            raise
        job.lock = lock
        if lock.warning:
            job.log(lock.warning, warning=True)
        return job

    def stored_settings(self):
        """The :class:`lib_vid2vid.params.Settings` the job stored in its manifest (what it runs with when
        resumed)."""
        from .params import Settings

        return Settings.from_stored(self.manifest["settings"])

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
        """Record ``status`` (and ``info``); an ``error`` left by an earlier failed run is dropped unless the
        job fails again."""
        self.manifest["status"] = status
        if status != "failed":
            self.manifest.pop("error", None)
        self.manifest.update(info)
        self.save(run_ended=status not in ("created", "running"))

    def save(self, *, run_ended: bool = False) -> None:
        """Flush the journal (``run_ended``: compacted), then rewrite ``manifest.json`` (without the per-frame
        records) durably."""
        with self._lock:
            self._flush_journal(run_ended)
            self._write_manifest()

    def editing(self) -> Any:
        """The lock to hold while changing :attr:`manifest` from a thread that runs beside the one saving it
        (``with job.editing(): ...``): :meth:`save` serialises the manifest under it."""
        return self._lock

    def _write_manifest(self) -> None:
        head = {k: v for k, v in self.manifest.items() if k != "frames"}  # (saved after a migration only)
        atomic_write_bytes(self.root / MANIFEST, json.dumps(head, indent=1).encode("utf-8"), durable=True)

    # ---- journal ----

    def _replay(self) -> None:
        """Per-frame state from the journal (the manifest's copy of the frame counts is only a summary)."""
        for st in self.manifest["stages"].values():
            st["done"] = 0
        self.manifest["frames"] = {}
        entries = self._journal.read()
        for n, entry in enumerate(entries):
            try:
                if "keep" in entry:
                    self._apply_keep(entry["stage"], int(entry["keep"]))
                elif "done" in entry:
                    self._apply_state(entry["stage"], entry["done"], entry.get("records"))
                else:
                    self._apply_done(entry["stage"], int(entry["frame"]), entry.get("record"))
            except (AttributeError, KeyError, TypeError, ValueError):  # not ours, or out of order:
                self._journal.keep_first(n)  # believe what came before; the next append cuts the rest
                break

    def _live_lines(self) -> int:
        return sum(st.get("done", 0) for st in self.manifest["stages"].values())

    def _compacted(self) -> list[bytes]:
        """One line per stage holding its whole state (``done`` and every record), replaying to the same
        state as the lines it replaces."""
        lines = []
        for stage, st in self.manifest["stages"].items():
            entry: dict[str, Any] = {"stage": stage, "done": st.get("done", 0)}
            if stage in self.manifest["frames"]:
                entry["records"] = self.manifest["frames"][stage]
            lines.append(_journal_line(entry))
        return lines

    def _compaction_due(self, run_ended: bool) -> bool:
        stages = len(self.manifest["stages"])
        if run_ended:  # so that opening a job (resume, listing) reads one line per stage
            return self._journal.lines > stages
        if not self._appended and self._journal.lines > stages + COMPACT_SLACK:
            return True  # lines of a killed run, at the start of the next one
        return self._journal.lines > 2 * self._live_lines() + COMPACT_SLACK  # many frames written again

    def _flush_journal(self, run_ended: bool = False) -> None:
        """Append the pending lines, or rewrite the journal compacted when that is due (see the module
        docstring). A compaction that fails (a full disk) falls back to appending."""
        migrating = self.manifest.get("format", 1) < 2
        if migrating or self._compaction_due(run_ended):
            try:
                self._journal.rewrite(self._compacted())
            except Vid2VidError:
                if migrating:
                    raise
            else:
                self._pending.clear()
                self._appended = True
                if migrating:
                    self.manifest["format"] = MANIFEST_FORMAT
                    self._write_manifest()
                return
        if self._pending:
            lines, self._pending = self._pending, []
            try:
                self._journal.append(lines)
            except Vid2VidError:
                self._pending = lines + self._pending  # still owed: the frames are on the disk
                raise
            self._appended = True

    # ---- frames ----

    def stage_dir(self, stage: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_]+", stage):
            raise ValueError(f"bad stage name {stage!r}")
        d = self.root / "frames" / stage
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            fsync_dir(d.parent)
            fsync_dir(d.parent.parent)
        return d

    def frame_path(self, stage: str, index: int) -> Path:
        return self.stage_dir(stage) / f"{index:0{FRAME_DIGITS}d}.png"

    def write_frame(self, stage: str, index: int, rgb: np.ndarray, record: dict[str, Any] | None = None,
                    *, overwrite: bool = False, save_manifest: bool = True, text: dict[str, str] | None = None
                    ) -> Path:
        """Write frame ``index`` of ``stage`` atomically and durably, then record it as done in the journal
        (``save_manifest=False``: at the next save)."""
        path = self.frame_path(stage, index)
        if path.exists() and not overwrite and self.is_done(stage, index):
            raise Vid2VidError(f"Frame {index} of stage {stage} is already finished in {self.root}: "
                               f"not overwriting it")
        atomic_write_bytes(path, encode_png(rgb, text=text), durable=True)
        self.mark_done(stage, index, record, save=save_manifest)
        return path

    def read_frame(self, stage: str, index: int) -> np.ndarray:
        return read_png(self.frame_path(stage, index))

    def mark_done(self, stage: str, index: int, record: dict[str, Any] | None = None, *, save: bool = True):
        """Record frame ``index`` of ``stage`` as done (its file must already be on the disk): one journal line,
        appended now (``save``) or at the next save."""
        with self._lock:
            self._apply_done(stage, index, record)
            entry: dict[str, Any] = {"stage": stage, "frame": index}
            if record is not None:
                entry["record"] = record
            self._pending.append(_journal_line(entry))
            if save:
                self._flush_journal()

    def _apply_done(self, stage: str, index: int, record: dict[str, Any] | None) -> None:
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

    def _apply_state(self, stage: str, done: int, records: list[Any] | None) -> None:
        """A compacted line: the stage's whole state."""
        if not isinstance(done, int) or done < 0 or not isinstance(records, (list, type(None))):
            raise ValueError(f"bad journal state for {stage}")
        self.manifest["stages"].setdefault(stage, {"done": 0})["done"] = done
        if records is not None:
            self.manifest["frames"][stage] = records
        else:
            self.manifest["frames"].pop(stage, None)

    def _apply_keep(self, stage: str, done: int) -> None:
        st = self.manifest["stages"].setdefault(stage, {"done": 0})
        st["done"] = min(st["done"], done)
        log = self.manifest["frames"].get(stage)
        if log is not None:
            del log[done:]

    def is_done(self, stage: str, index: int) -> bool:
        return index < self.manifest["stages"].get(stage, {}).get("done", 0)

    def frames_done(self, stage: str) -> int:
        """Contiguous frames of ``stage`` that the journal lists and whose files exist."""
        n = self.manifest["stages"].get(stage, {}).get("done", 0)
        for i in range(n):
            if not self.frame_path(stage, i).is_file():
                n = i
                break
        return n

    def truncate_stage(self, stage: str, done: int) -> None:
        """Believe only the first ``done`` frames of a stage (files after it are left on disk, untouched)."""
        with self._lock:
            st = self.manifest["stages"].get(stage, {"done": 0})
            log = self.manifest["frames"].get(stage, [])
            if st["done"] > done or len(log) > done:
                self._pending.append(_journal_line({"stage": stage, "keep": done}))
            self._apply_keep(stage, done)
            self.save()

    def forget_stages(self, stages: list[str]) -> None:
        """Drop ``stages`` from the manifest and the journal (compacted without them; their files stay). If the
        compaction fails their lines stay in the journal, and a reopened job lists them again."""
        with self._lock:
            for stage in stages:
                self.manifest["stages"].pop(stage, None)
                self.manifest["frames"].pop(stage, None)
            self.save(run_ended=True)

    def set_stage_total(self, stage: str, total: int) -> None:
        with self._lock:
            self.manifest["stages"].setdefault(stage, {"done": 0})["total"] = total
            self.save()

    def remove_temp_files(self) -> None:
        """Delete what a killed run left half-written in the job folder (``.part`` videos, ``.tmp`` files);
        only while this process is the job's one writer."""
        n = remove_temp_files(self.root)
        if n:
            self.log(f"removed {n} temporary file(s) left by an interrupted run")

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
            with self._lock:  # several threads log (shots rendered in parallel) while one may save
                warnings = self.manifest.setdefault("warnings", [])
                new = message not in warnings
                if new:
                    warnings.append(message)
            if new:
                try:
                    self.save()
                except Vid2VidError:
                    pass  # job.log has it; the caller is usually reporting this very failure

    def close(self) -> None:
        with self._lock:
            if self._pending:
                self._flush_journal()
            self._journal.close()
        for h in list(self._log.handlers):
            h.close()
            self._log.removeHandler(h)
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def list_jobs(output_dir: str | Path) -> list[Job]:
    """Jobs under ``output_dir``, newest first; folders that are not jobs are ignored, and jobs whose manifest
    cannot be read are skipped with a warning."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    jobs = []
    for child in sorted(out.iterdir(), reverse=True):
        if (child / MANIFEST).is_file():
            try:
                jobs.append(Job.open(child))
            except Vid2VidError as exc:
                _LOG.warning("skipping %s: %s", child.name, exc)
    return jobs


def find_unfinished(output_dir: str | Path, key: str) -> Job | None:
    """The newest unfinished job with this render key, if any."""
    for job in list_jobs(output_dir):
        if job.manifest.get("render_key") == key and job.status != "done":
            return job
    return None
