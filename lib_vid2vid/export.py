"""The job's results: the final video (with the source audio of the processed range), the comparison video,
the contact sheet, and on request a zip.

Which frames become the video (``export_stage``): ``final`` = the last post stage that is on, else the last
pass; ``rendered`` = the last pass; ``upscaled`` / ``interpolated`` = that post stage; ``source`` = the source
frames as the passes read them (plan size and rate); ``masks`` = ``frames/masks`` (the passes write them when
a mask is on). The video's rate is the stage's exact rate (a Fraction: 24 fps x 3/2 is 36/1, 30000/1001 x 2 is
60000/1001); the audio is the source's over the processed range, cut to the video's duration.

Streaming: when the exported stage is the last pass, its frames are encoded while they render (fed by the
pipeline's writer thread through ``run.sink``), together with the comparison video and the contact sheet
thumbnails, so a job without post stages does not wait for an encode at the end. When it is a post stage, they
are encoded while that stage writes. A resumed job first re-feeds the frames already on disk; whenever the
stream did not see every frame (or failed), everything is encoded from disk in :func:`finalize_job`.

The job folder then holds (``<stem>`` = the source file's name)::

    <stem>-vid2vid.<ext>           the final video (png: a folder of frames with fps.txt and audio.m4a)
    <stem>-vid2vid-compare.mp4     source | result [| masks], labelled, the result's rate, with audio
    <stem>-vid2vid-contact.png     up to 12 evenly spaced result frames in a grid of 4 columns, numbered
    manifest.json, job.log         every setting, the plan, per-stage totals, ``outputs``
    journal.jsonl                  the per-frame records (seed, denoise, steps ... of each frame)
    <stem>-vid2vid.zip             with zip_result: the videos, contact sheet, manifest, journal and log. The frame
                                   folders are left out: they are large, only needed to resume or re-export,
                                   and stay in the job folder when keep_frames is on.

With ``keep_frames`` off, ``frames/`` is deleted once the final video, comparison video and contact sheet have
been written (never earlier, so an interrupted job can always resume).
"""

from __future__ import annotations

import functools
import math
import shutil
import zipfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import video_writer
from .errors import Vid2VidError
from .postprocess import PostContext, StageInfo, run_post_stages, source_frames, validate_settings
from .workspace import Job, atomic_write_bytes, encode_png, read_png

if TYPE_CHECKING:
    from .loop import JobPlan, Run
    from .params import Settings

COMPARE_MAX_HEIGHT, COMPARE_MAX_WIDTH = 720, 1280
"""Comparison video: panels are scaled down so each is at most 720 px high and all together at most 1280 px wide
(a preview; encoding a double-width full-size video would cost as much again as the result itself)."""
COMPARE_X264 = {"preset": "veryfast", "tune": "zerolatency"}
"""x264 options of the comparison video: frames are encoded as they arrive (no lookahead held back to the end),
so streaming it beside the render costs no time after the last frame."""
SHEET_COUNT, SHEET_COLS, SHEET_THUMB_W, SHEET_LABEL_H, SHEET_PAD = 12, 4, 256, 18, 4
"""Contact sheet: frames, columns, thumbnail width (px, or the frame's if smaller), label strip, gaps."""

FramesFrom = Callable[[int], Iterator[np.ndarray]]


# ------------------------------------------------------------------------------------------- names
def _stem(job: Job) -> str:
    stem = Path(job.manifest["source_file"]["path"]).stem
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "video"


def final_video_path(job: Job, settings: Settings, suffix: str = "") -> Path:
    """``<job>/<video stem>-vid2vid<suffix>.<ext>``; for PNG output a folder of that name."""
    fmt = settings.export.output_format
    name = f"{_stem(job)}-vid2vid{suffix}"
    return job.root / (name if fmt == "png" else f"{name}.{fmt}")


def comparison_path(job: Job) -> Path:
    return job.root / f"{_stem(job)}-vid2vid-compare.mp4"


def contact_sheet_path(job: Job) -> Path:
    return job.root / f"{_stem(job)}-vid2vid-contact.png"


def zip_path(job: Job) -> Path:
    return job.root / f"{_stem(job)}-vid2vid.zip"


def _writer_kwargs(job: Job, settings: Settings, plan: JobPlan, fmt: str | None = None) -> dict:
    src = job.manifest["source_file"]["path"]
    has_audio = bool(job.manifest.get("source", {}).get("audio"))
    return dict(fmt=fmt or settings.export.output_format, crf=settings.export.crf,
                png_digits=settings.export.png_digits,
                audio_from=src if (settings.export.keep_audio and has_audio) else None,
                audio_start=plan.start, audio_end=plan.end)


# ----------------------------------------------------------------------------------- what to export
def export_target(settings: Settings, passes: int) -> str:
    """The stage ``export_stage`` names: "pass<N>", "source", "masks", or a post stage name."""
    from .postprocess import enabled_post_stages

    choice = settings.export.export_stage
    last_pass = f"pass{passes}"
    if choice == "final":
        post = enabled_post_stages(settings)
        return post[-1] if post else last_pass
    return {"rendered": last_pass, "source": "source", "masks": "masks"}.get(choice, choice)


def target_info(job: Job, settings: Settings, plan: JobPlan, passes: int, target: str) -> StageInfo:
    """Frame count, exact rate and source mapping of the exported stage."""
    for info in PostContext(job, settings, plan, f"pass{passes}").infos():
        if info.name == target:
            return info
    return StageInfo(target, plan.total, plan.fps)


def stage_frames(job: Job, settings: Settings, plan: JobPlan, info: StageInfo) -> FramesFrom:
    """``from_index -> iterator`` of the exported stage's frames (RGB uint8) from disk or the source."""
    if info.name == "source":
        return lambda k: source_frames(job, settings, plan, k)

    def from_disk(k: int) -> Iterator[np.ndarray]:
        for i in range(k, info.total):
            path = job.frame_path(info.name, i)
            if not path.is_file():
                raise Vid2VidError(f"frames/{info.name}/{path.name} is missing: run the job again to render it, "
                                   f"or export another stage")
            yield read_png(path)

    return from_disk


# ------------------------------------------------------------------------------------ label drawing
@functools.lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def label_strip(labels: list[str], panel_w: int, height: int) -> np.ndarray:
    """A black strip ``height`` px tall holding one white label per ``panel_w``-wide panel (RGB uint8)."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (panel_w * len(labels), height), (0, 0, 0))
    draw = ImageDraw.Draw(im)
    font = _font(max(8, int(height * 0.7)))
    for k, text in enumerate(labels):
        draw.text((k * panel_w + 6, height // 2), text, fill=(255, 255, 255), font=font, anchor="lm")
    return np.asarray(im, np.uint8)


# -------------------------------------------------------------------------------- comparison video
def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    interp = cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(img, (w, h), interpolation=interp)


class ComparisonWriter:
    """Source | result [| masks] side by side under a label strip, at the result's rate, with audio.

    Panels have the result's size (scaled down to fit :data:`COMPARE_MAX_HEIGHT` / :data:`COMPARE_MAX_WIDTH`,
    even sizes); the source
    and masks are resized to it. Result frame ``j`` is shown beside source frame ``info.source_index(j)``.
    ``write`` must be called for j = 0, 1, 2 ... in order.
    """

    def __init__(self, path: Path, job: Job, settings: Settings, plan: JobPlan, info: StageInfo, label: str,
                 masks: bool):
        self.job, self.settings, self.plan, self.info = job, settings, plan, info
        self.labels = ["source", label] + (["masks"] if masks else [])
        self.masks = masks
        self._src = source_frames(job, settings, plan)
        self._src_index, self._src_frame = -1, None
        self._strip: np.ndarray | None = None
        self._size: tuple[int, int] | None = None
        self.writer = video_writer.VideoWriter(path, info.fps, **_writer_kwargs(job, settings, plan, fmt="mp4"),
                                        options=COMPARE_X264)

    def _source(self, i: int) -> np.ndarray:
        while self._src_index < i:
            self._src_frame = next(self._src)
            self._src_index += 1
        assert self._src_frame is not None
        return self._src_frame

    def write(self, j: int, result: np.ndarray) -> None:
        if self._size is None:
            h, w = result.shape[:2]
            s = min(1.0, COMPARE_MAX_HEIGHT / h, COMPARE_MAX_WIDTH / (w * len(self.labels)))
            self._size = (_even(w * s), _even(h * s))
            self._strip = label_strip(self.labels, self._size[0], _even(max(16, self._size[1] / 14)))
        w, h = self._size
        si = self.info.source_index(j)
        panels = [_fit(self._source(si), w, h), _fit(result, w, h)]
        if self.masks:
            panels.append(_fit(read_png(self.job.frame_path("masks", si)), w, h))
        self.writer.write(np.vstack([self._strip, np.hstack(panels)]))

    def close(self) -> Path:
        self._src.close()
        return self.writer.close()

    def abort(self) -> None:
        self._src.close()
        self.writer.abort()


# ---------------------------------------------------------------------------------- contact sheet
def sheet_indices(total: int, count: int = SHEET_COUNT) -> list[int]:
    """``count`` evenly spaced frame indices from 0 to total-1 (all frames when there are fewer)."""
    if total <= count:
        return list(range(total))
    return sorted({round(k * (total - 1) / (count - 1)) for k in range(count)})


def sheet_layout(n: int, width: int, height: int) -> dict:
    """Grid geometry (px) for ``n`` frames of ``width`` x ``height``: cols, rows, thumbnail w/h, sheet w/h."""
    cols = min(SHEET_COLS, n)
    rows = math.ceil(n / cols)
    tw = min(SHEET_THUMB_W, width)
    th = max(1, round(height * tw / width))
    return dict(cols=cols, rows=rows, thumb_w=tw, thumb_h=th, width=cols * tw + (cols + 1) * SHEET_PAD,
                height=rows * (th + SHEET_LABEL_H) + (rows + 1) * SHEET_PAD)


class ContactSheet:
    """Collect :func:`sheet_indices` frames as they stream by into a grid; ``save`` writes the PNG.

    Cell k (row-major) holds frame ``indices[k]`` at (``pad + c (tw + pad)``, ``pad + r (th + label + pad)``)
    with its frame number ("#<index>", the index in frames/<stage>/) in the strip below it. Cells are drawn as
    the frames arrive, so saving at the end only encodes the PNG.
    """

    BACKGROUND = 24

    def __init__(self, total: int):
        self.indices = sheet_indices(total)
        self.layout: dict | None = None
        self.canvas: np.ndarray | None = None
        self.filled: set[int] = set()

    def cell_origin(self, k: int) -> tuple[int, int]:
        """(x, y) of cell k's thumbnail in the sheet, px."""
        lay = self.layout
        assert lay is not None
        r, c = divmod(k, lay["cols"])
        return (SHEET_PAD + c * (lay["thumb_w"] + SHEET_PAD),
                SHEET_PAD + r * (lay["thumb_h"] + SHEET_LABEL_H + SHEET_PAD))

    def write(self, j: int, rgb: np.ndarray) -> None:
        if j not in self.indices:
            return
        if self.layout is None:
            self.layout = lay = sheet_layout(len(self.indices), rgb.shape[1], rgb.shape[0])
            self.canvas = np.full((lay["height"], lay["width"], 3), self.BACKGROUND, np.uint8)
        lay, canvas = self.layout, self.canvas
        tw, th = lay["thumb_w"], lay["thumb_h"]
        x, y = self.cell_origin(self.indices.index(j))
        canvas[y:y + th, x:x + tw] = _fit(rgb, tw, th)
        canvas[y + th:y + th + SHEET_LABEL_H, x:x + tw] = _text_strip(f"#{j}", tw, SHEET_LABEL_H, self.BACKGROUND)
        self.filled.add(j)

    def save(self, path: Path) -> Path:
        assert self.canvas is not None and len(self.filled) == len(self.indices), "contact sheet: frames missing"
        atomic_write_bytes(path, encode_png(self.canvas))
        return path


def _text_strip(text: str, width: int, height: int, background: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), (background,) * 3)
    ImageDraw.Draw(im).text((2, height // 2), text, fill=(230, 230, 230), font=_font(height - 4), anchor="lm")
    return np.asarray(im, np.uint8)


# ------------------------------------------------------------------------------------------ export
class StreamingExport:
    """Encode the exported stage as its frames arrive: final video, comparison video, contact sheet.

    ``push(index, frame)`` must be called in index order from one thread; the first push re-feeds the frames
    before it (from disk or the source). A failure while streaming is logged and turns the stream off;
    :func:`finalize_job` then encodes everything from disk. ``feed_all`` encodes from disk (errors raise).
    """

    def __init__(self, job: Job, settings: Settings, plan: JobPlan, stage: str, fps: Fraction | None = None, *,
                 info: StageInfo | None = None, frames: FramesFrom | None = None, comparison: bool | None = None,
                 sheet: bool = True, label: str | None = None):
        self.job = job
        self.settings = settings
        self.plan = plan
        self.stage = stage
        self.info = info or StageInfo(stage, plan.total, fps or plan.fps)
        self.fps = fps or self.info.fps
        self.total = self.info.total
        self.path = final_video_path(job, settings)
        self.frames_from = frames or stage_frames(job, settings, plan, self.info)
        self.comparison = settings.export.comparison_video if comparison is None else comparison
        self.sheet_on = sheet
        self.label = label or ("vid2vid" if stage.startswith("pass") else
                               stage if stage in ("source", "masks") else f"vid2vid {stage}")
        self._writer: video_writer.VideoWriter | None = None
        self._compare: ComparisonWriter | None = None
        self._sheet: ContactSheet | None = None
        self._next = 0
        self._started = False
        self.failed: Exception | None = None
        self.outputs: dict[str, Path] = {}

    def _open(self) -> None:
        self._started = True
        self._writer = video_writer.VideoWriter(self.path, self.fps, **_writer_kwargs(self.job, self.settings, self.plan))
        if self.comparison:
            masks = self.settings.export.comparison_masks and self._masks_available()
            self._compare = ComparisonWriter(comparison_path(self.job), self.job, self.settings, self.plan,
                                             self.info, self.label, masks)
        if self.sheet_on:
            self._sheet = ContactSheet(self.total)

    def _masks_available(self) -> bool:
        from .postprocess import masks_on

        if masks_on(self.settings):
            return True
        self.job.log("comparison_masks: no mask is on, so the comparison video has no masks panel", warning=True)
        return False

    def _write(self, index: int, rgb: np.ndarray) -> None:
        if not self._started:
            self._open()
            if index:  # a resumed job: frames written by an earlier run
                for k, f in zip(range(index), self.frames_from(0)):
                    self._write(k, f)
        if index != self._next:
            raise RuntimeError(f"frames pushed out of order: {index} after {self._next - 1}")
        self._writer.write(rgb)
        if self._compare is not None:
            self._compare.write(index, rgb)
        if self._sheet is not None:
            self._sheet.write(index, rgb)
        self._next += 1

    def push(self, index: int, rgb: np.ndarray) -> None:
        if self.failed is not None:
            return
        try:
            self._write(index, rgb)
        except Exception as exc:  # noqa: BLE001 - fall back to encoding from disk at the end
            self.failed = exc
            self.job.log(f"streaming encode failed, will encode from the frames on disk: {exc}", warning=True)
            self.abort()

    def feed_all(self) -> None:
        """Encode every frame from disk (or the source); errors propagate."""
        for k, f in enumerate(self.frames_from(0)):
            self._write(k, f)

    @property
    def complete(self) -> bool:
        return self.failed is None and self._writer is not None and self._next == self.total

    def close(self) -> Path:
        """Finish every output (``outputs``: video, comparison, contact_sheet) and return the final video."""
        from concurrent.futures import ThreadPoolExecutor

        assert self._writer is not None
        if self._next != self.total:
            raise RuntimeError(f"{self.stage}: {self._next} of {self.total} frames encoded")
        sheet, self._sheet = self._sheet, None
        with ThreadPoolExecutor(1, thread_name_prefix="vid2vid-sheet") as pool:
            # the PNG is encoded while the final video's encoder flushes its held-back frames
            saved = pool.submit(sheet.save, contact_sheet_path(self.job)) if sheet is not None else None
            self.outputs["video"] = self._writer.close()
            self._writer = None
            if self._compare is not None:
                self.outputs["comparison"] = self._compare.close()
                self._compare = None
            if saved is not None:
                self.outputs["contact_sheet"] = saved.result()
        return self.outputs["video"]

    def abort(self) -> None:
        for w in (self._writer, self._compare):
            if w is not None:
                w.abort()
        self._writer = self._compare = self._sheet = None


def export_stage(job: Job, settings: Settings, plan: JobPlan, stage: str, *, total: int | None = None,
                 fps: Fraction | None = None, suffix: str = "") -> Path:
    """Encode frames 0..total-1 of ``stage`` from disk into ``final_video_path(..., suffix)`` (video only)."""
    total = plan.total if total is None else total
    frames = (job.read_frame(stage, i) for i in range(total))
    return video_writer.encode_frames(frames, final_video_path(job, settings, suffix), fps or plan.fps,
                               **_writer_kwargs(job, settings, plan))


def attach_export(run: Run) -> None:
    """Check the post/export settings (before any frame renders), then set up the exporter: it streams the
    last pass when that is the exported stage; ``finalize_job`` runs the post stages and finishes it."""
    validate_settings(run.settings)
    target = export_target(run.settings, run.passes)
    info = target_info(run.job, run.settings, run.plan, run.passes, target)
    exporter = StreamingExport(run.job, run.settings, run.plan, target, info=info)
    run.exporter = exporter  # type: ignore[attr-defined]
    if target == run.stage_name(run.passes - 1):
        run.sink = exporter.push


def finalize_job(run: Run) -> Path:
    """After the passes: post stages (resumable), the final video, comparison video and contact sheet, the
    manifest's ``outputs``, deleting frames (keep_frames off) and the zip (zip_result)."""
    job, settings = run.job, run.settings
    exporter: StreamingExport | None = getattr(run, "exporter", None)
    if exporter is None:
        target = export_target(settings, run.passes)
        exporter = StreamingExport(job, settings, run.plan, target,
                                   info=target_info(job, settings, run.plan, run.passes, target))
    run_post_stages(run, sinks={exporter.stage: exporter.push})
    if not exporter.complete:
        exporter.abort()
        exporter = StreamingExport(job, settings, run.plan, exporter.stage, info=exporter.info)
        exporter.feed_all()
    path = exporter.close()
    run.exporter = exporter  # type: ignore[attr-defined]
    info = exporter.info
    job.manifest["export"] = {"stage": info.name, "frames": info.total,
                              "fps": f"{info.fps.numerator}/{info.fps.denominator}",
                              "duration": float(Fraction(info.total) / info.fps)}
    job.manifest["outputs"] = {k: p.name for k, p in exporter.outputs.items()}
    job.log(f"exported {path} ({info.total} frames of {info.name} at {info.fps} fps)")
    if not settings.job.keep_frames:
        delete_frames(job)
    if settings.export.zip_result:
        z = write_zip(job, list(exporter.outputs.values()))
        job.manifest["outputs"]["zip"] = z.name
    job.save()
    return path


def delete_frames(job: Job) -> None:
    """Remove ``frames/`` (only called once every result file is written)."""
    folder = job.root / "frames"
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
        job.manifest["frames_deleted"] = True
        job.log("keep_frames is off: deleted frames/ (the job can no longer resume or re-export)")


def write_zip(job: Job, outputs: list[Path]) -> Path:
    """``<stem>-vid2vid.zip``: the result files (a PNG-sequence folder with its files), manifest.json,
    journal.jsonl (the per-frame records) and job.log, stored under their names in the job folder. Written to a temporary name, then renamed."""
    job.save()
    target = zip_path(job)
    tmp = target.with_name(f".{target.name}.tmp")
    files: list[Path] = []
    for p in outputs:
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    files += [job.root / "manifest.json", job.root / "journal.jsonl", job.root / "job.log"]
    with zipfile.ZipFile(tmp, "w") as zf:
        for f in files:
            if f.is_file():
                packed = f.suffix in (".json", ".log", ".txt")
                zf.write(f, f.relative_to(job.root).as_posix(),
                         compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED)
    tmp.replace(target)
    job.log(f"zipped the results into {target.name}")
    return target
