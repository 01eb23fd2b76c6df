"""Many videos in one go: each video is its own job (own folder, manifest, lock and resume).

Used by the CLI (``python -m lib_vid2vid A.mp4 B.mov`` or ``python -m lib_vid2vid FOLDER``), the WebUI Script
and its API. Running the same batch again skips the videos whose job is finished (same render key: source,
render settings, host identity) and resumes the unfinished ones.

- Videos are found by container, not by extension (:func:`find_videos`): a file is a video when FFmpeg opens
  it with a video container's demuxer and its picture track has a video codec (the allow-lists of
  :mod:`.video_probe`): a README, a photo or a raw stream in the folder is not counted. Files with a video
  file name are kept even when they do not open, so a damaged ``.mp4`` gets its one-line error instead of
  vanishing from the batch.
- Failures stay local: a video that cannot be read fails with its one-line error and the batch goes on.
- Interrupt stops after the current frame of the current video; the videos after it stay ``pending``.
- Per-video size (:func:`video_settings`): every video keeps its own aspect ratio with the same long side,
  ``max(width, height)`` of the settings (512 when both are 0); fps is the setting's, or each video's own
  when it is 0.
- ``batch.json`` beside the jobs (``<output_dir>/batch.json``, written atomically after every video) holds the
  summary table: video, frames, seconds, state, job folder, output video, report figures or the error.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import glob
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import video_probe
from .errors import Vid2VidError
from .params import Settings
from .pipeline import Progress, StopFn, host_identity, make_plan, output_size, output_size_note, run_job
from .renderer import Renderer
from .workspace import atomic_write_bytes, list_jobs, render_key, source_fingerprint

BATCH_FILE = "batch.json"
DEFAULT_LONG_SIDE = 512
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg",
                            ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".gif"})
"""Only so that a damaged file with a video's name is reported instead of skipped; finding uses the container."""
_GLOB_CHARS = frozenset("*?[")

OK_STATES = ("done", "skipped")
"""States that count as success: rendered in this run, or finished by an earlier run."""


# ---------------------------------------------------------------- finding videos

def is_video(path: str | Path) -> bool:
    """True when ``path`` is a video by container and codec, the test :func:`video_probe.probe` applies to
    every source (:func:`video_probe.is_video`): a text file, a photo or a raw stream is not."""
    return video_probe.is_video(path)


def is_batch(sources: Sequence[str | Path]) -> bool:
    """More than one source, a folder or a glob pattern: a batch. One file: a single job."""
    if len(sources) != 1:
        return len(sources) > 1
    text = str(sources[0])
    return Path(text).is_dir() or (not Path(text).exists() and bool(_GLOB_CHARS & set(text)))


def find_videos(sources: Sequence[str | Path], *, recursive: bool = False, pattern: str = "*",
                exclude: Sequence[str | Path] = ()) -> list[Path]:
    """The videos of a batch, in order, each once.

    A file is taken as given (a missing or unreadable one fails in the batch with its own line); a folder
    contributes its files whose name matches ``pattern`` (with ``recursive``, its sub-folders' too), sorted
    by path, that are videos by container (:func:`is_video`) or have a video file name; a text with ``*?[``
    that is not a file is a glob pattern. Hidden files and anything under ``exclude`` (the output folder) are
    left out.
    """
    out: dict[str, Path] = {}
    skip = [Path(e).absolute() for e in exclude]

    def add(p: Path) -> None:
        out.setdefault(str(p.resolve()), p.absolute())

    def candidates(paths: Sequence[Path]) -> None:
        for p in sorted(paths):
            if not p.is_file() or p.name.startswith(".") or any(_under(p, e) for e in skip):
                continue
            if not fnmatch.fnmatch(p.name, pattern):
                continue
            if p.suffix.lower() in VIDEO_SUFFIXES or is_video(p):
                add(p)

    for source in sources:
        p = Path(source).expanduser()
        if p.is_dir():
            candidates(list(p.rglob("*") if recursive else p.iterdir()))
        elif p.exists() or not (_GLOB_CHARS & set(str(source))):
            add(p)
        else:
            candidates([Path(m) for m in glob.glob(str(p), recursive=recursive)])
    return list(out.values())


def _under(path: Path, folder: Path) -> bool:
    try:
        path.absolute().relative_to(folder)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- per-video settings

def long_side(settings: Settings) -> int:
    """The batch's long side in pixels: the larger of width and height, 512 when both are 0."""
    return max(settings.video.width, settings.video.height) or DEFAULT_LONG_SIDE


def video_settings(settings: Settings, path: str | Path, info: video_probe.VideoInfo) -> Settings:
    """The settings of one video of a batch: its path, and its own size (its aspect ratio, the batch's long
    side; :func:`pipeline.output_size`). fps stays as set (0: the video's own)."""
    w, h = output_size(info.width, info.height, 0, 0, long_side(settings))
    return settings.replace(input=str(path), width=w, height=h, resume_job="")


# ---------------------------------------------------------------- the batch

@dataclass
class BatchItem:
    """One row of the summary: a video and what happened to it."""

    video: str
    state: str = "pending"
    """pending (not started), done, skipped (finished by an earlier run), interrupted, failed."""
    frames: int = 0
    total: int | None = None
    seconds: float = 0.0
    """Wall-clock seconds spent on this video in this run."""
    job_dir: str | None = None
    output: str | None = None
    width: int | None = None
    height: int | None = None
    fps: str | None = None
    report: dict[str, Any] | None = None
    error: str | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.video).name


@dataclass
class BatchProgress:
    """Where a batch is: video ``number`` (1-based) of ``count``, and that video's frame progress."""

    number: int
    count: int
    video: str
    frame: Progress

    @property
    def text(self) -> str:
        """e.g. "video 3/12 (dance.mp4), pass1: frame 40/250"."""
        f = self.frame
        return f"video {self.number}/{self.count} ({Path(self.video).name}), {f.stage}: frame {f.done}/{f.total}"


@dataclass
class BatchResult:
    items: list[BatchItem]
    path: Path
    """batch.json"""

    @property
    def status(self) -> str:
        """done (every video done or skipped), interrupted, or failed (some video failed)."""
        states = {i.state for i in self.items}
        if "interrupted" in states or "pending" in states:
            return "interrupted"
        return "failed" if "failed" in states else "done"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.state] = out.get(item.state, 0) + 1
        return out


def run_batch(settings: Settings, renderer: Renderer, videos: Sequence[str | Path], *, new: bool = False,
              should_stop: StopFn | None = None, progress: Callable[[BatchProgress], None] | None = None,
              notify: Callable[[str], None] | None = None) -> BatchResult:
    """Run every video as its own job with ``settings`` (per-video size, :func:`video_settings`); skip
    finished ones, resume unfinished ones; a failure is recorded and the batch goes on; a stop ends the
    batch after the current frame. ``batch.json`` is rewritten after each video."""
    stop = should_stop or (lambda: False)
    out_dir = Path(settings.job.output_dir)
    items = [BatchItem(video=str(v)) for v in videos]
    if not items:
        raise Vid2VidError("No videos found: give video files, a folder that holds videos, or a glob pattern")
    from .postprocess import validate_settings

    validate_settings(settings)  # a bad upscaler or export setting would fail every video: say it once
    path = out_dir / BATCH_FILE
    started = _now()
    host = host_identity(renderer)
    _write(path, items, started)
    for number, item in enumerate(items, 1):
        if stop():
            break
        t0 = time.monotonic()
        try:
            _run_one(item, settings, renderer, host, new=new, should_stop=stop, notify=notify,
                     progress=None if progress is None else
                     (lambda p, n=number, v=item.video: progress(BatchProgress(n, len(items), v, p))))
        except Vid2VidError as exc:
            item.state, item.error = "failed", _one_line(str(exc))
        except KeyboardInterrupt:
            item.state = "interrupted"
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in one video must not cost the others
            item.state, item.error = "failed", _one_line(f"{type(exc).__name__}: {exc}")
        finally:
            item.seconds = round(time.monotonic() - t0, 3)
            _write(path, items, started)
        if notify is not None and item.state == "failed":
            notify(item.error if str(item.error).startswith(item.name) else f"{item.name}: {item.error}")
        if item.state == "interrupted":
            break
    return BatchResult(items, path)


def _run_one(item: BatchItem, settings: Settings, renderer: Renderer, host: dict[str, Any], *, new: bool,
             should_stop: StopFn, notify: Callable[[str], None] | None,
             progress: Callable[[Progress], None] | None) -> None:
    info = video_probe.probe(item.video)
    vs = video_settings(settings, item.video, info)
    note = output_size_note(info.width, info.height, 0, 0, long_side(settings))
    if note and notify is not None:  # the batch gives each video an explicit size: its plan has no note
        notify(f"{item.name}: {note}")
    plan = make_plan(vs, info)
    item.width, item.height, item.total = plan.width, plan.height, plan.total
    item.fps = f"{plan.fps.numerator}/{plan.fps.denominator}" if plan.fps.denominator != 1 else str(plan.fps)
    if not new:
        finished = finished_job(vs, host)
        if finished is not None:
            _fill_from_job(item, finished)
            item.state = "skipped"
            return
    try:
        result = run_job(vs, renderer, new=new, should_stop=should_stop, progress=progress, notify=notify)
    except Exception:
        failed = _job_with_key(vs, host, done=False)  # the failed job keeps its frames for a resume
        if failed is not None:
            _fill_from_job(item, failed)
        raise
    item.state = "done" if result.status == "done" else "interrupted"
    item.frames, item.total = result.frames_done, result.total
    item.job_dir = str(result.job_dir)
    item.output = str(result.video_path) if result.video_path else None
    item.report = result.report
    item.notices = list(result.notices)


def finished_job(settings: Settings, host: dict[str, Any]):
    """The newest finished job of this video with these render settings and host identity, or None."""
    return _job_with_key(settings, host, done=True)


def _job_with_key(settings: Settings, host: dict[str, Any], *, done: bool):
    key = render_key(settings.to_dict(), source_fingerprint(settings.video.input), host)
    for job in list_jobs(settings.job.output_dir):
        if (job.status == "done") == done and job.manifest.get("render_key") == key:
            return job
    return None


def _fill_from_job(item: BatchItem, job) -> None:
    from .report import REPORT_NAME

    m = job.manifest
    item.job_dir = str(job.root)
    item.output = m.get("video")
    passes = [k for k in m.get("stages", {}) if k.startswith("pass")]
    last = m["stages"][max(passes, key=lambda k: int(k[4:]))] if passes else {}
    item.frames = int(last.get("done", 0))
    item.total = last.get("total", item.total)
    report = job.root / REPORT_NAME
    if report.is_file():
        try:
            item.report = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            item.report = None


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "failed"


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _write(path: Path, items: list[BatchItem], started: str) -> None:
    result = BatchResult(items, path)
    data = {"format": 1, "started": started, "updated": _now(), "status": result.status,
            "counts": result.counts(), "videos": [asdict(i) for i in items]}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=1).encode("utf-8"))


def read_batch(path: str | Path) -> dict[str, Any]:
    """A batch.json as written by :func:`run_batch`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the summary table

def items_from_reply(videos: Sequence[dict[str, Any]]) -> list[BatchItem]:
    """BatchItems from the Script's reply (``vid2vid_videos``: frames as ``frames_done``)."""
    names = {f.name for f in fields(BatchItem)}
    return [BatchItem(**{k: v for k, v in {**d, "frames": d.get("frames_done", 0)}.items() if k in names})
            for d in videos]


def summary_table(items: Sequence[BatchItem]) -> str:
    """The summary as aligned text: video, frames, seconds, state, job folder, report figures (or the error)."""
    from .report import format_report

    rows = [("video", "frames", "seconds", "state", "job folder", "report / error")]
    for i in items:
        frames = f"{i.frames}/{i.total}" if i.total is not None else "-"
        last = i.error or (format_report(i.report) if i.report else "")
        rows.append((i.name, frames, f"{i.seconds:.1f}", i.state, Path(i.job_dir).name if i.job_dir else "-", last))
    widths = [max(len(r[k]) for r in rows) for k in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)
