"""Turning a stage's frames into the final video, with the source audio of the processed range.

The last pass is encoded while it renders (:class:`StreamingExport`, fed on the writer thread), so a job
does not wait for an encode at the end. A resumed job first re-feeds the frames already on disk. When
post-processing follows the passes, or the stream was not complete, :func:`export_stage` encodes from disk.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import video
from .workspace import Job

if TYPE_CHECKING:
    from .params import Settings
    from .pipeline import JobPlan, Run


def final_video_path(job: Job, settings: Settings, suffix: str = "") -> Path:
    """``<job>/<video stem>-vid2vid<suffix>.<ext>``; for PNG output a folder of that name."""
    stem = Path(job.manifest["source_file"]["path"]).stem
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "video"
    fmt = settings.export.output_format
    name = f"{safe}-vid2vid{suffix}"
    return job.root / (name if fmt == "png" else f"{name}.{fmt}")


def _writer_kwargs(job: Job, settings: Settings, plan: JobPlan) -> dict:
    src = job.manifest["source_file"]["path"]
    has_audio = bool(job.manifest.get("source", {}).get("audio"))
    return dict(fmt=settings.export.output_format, crf=settings.export.crf,
                audio_from=src if (settings.export.keep_audio and has_audio) else None,
                audio_start=plan.start, audio_end=plan.end)


class StreamingExport:
    """Encode frames as they are written. ``push`` must be called in index order from one thread."""

    def __init__(self, job: Job, settings: Settings, plan: JobPlan, stage: str, fps: Fraction | None = None):
        self.job = job
        self.settings = settings
        self.plan = plan
        self.stage = stage
        self.fps = fps or plan.fps
        self.path = final_video_path(job, settings)
        self._writer: video.VideoWriter | None = None
        self._next = 0
        self.failed: Exception | None = None

    def push(self, index: int, rgb: np.ndarray) -> None:
        if self.failed is not None:
            return
        try:
            if self._writer is None:
                self._writer = video.VideoWriter(self.path, self.fps, **_writer_kwargs(self.job, self.settings,
                                                                                        self.plan))
                for k in range(index):  # a resumed job: frames rendered by an earlier run
                    self._writer.write(self.job.read_frame(self.stage, k))
                self._next = index
            if index != self._next:
                raise RuntimeError(f"frames pushed out of order: {index} after {self._next - 1}")
            self._writer.write(rgb)
            self._next += 1
        except Exception as exc:  # noqa: BLE001 - fall back to encoding from disk at the end
            self.failed = exc
            self.job.log(f"streaming encode failed, will encode from the frames on disk: {exc}", warning=True)
            self.abort()

    @property
    def complete(self) -> bool:
        return self.failed is None and self._writer is not None and self._next == self.plan.total

    def close(self) -> Path:
        assert self._writer is not None
        path = self._writer.close()
        self._writer = None
        return path

    def abort(self) -> None:
        if self._writer is not None:
            w, self._writer = self._writer, None
            abort = getattr(w, "abort", None)
            if abort:
                abort()


def export_stage(job: Job, settings: Settings, plan: JobPlan, stage: str, *, total: int | None = None,
                 fps: Fraction | None = None, suffix: str = "") -> Path:
    """Encode frames 0..total-1 of ``stage`` from disk into the final video."""
    total = plan.total if total is None else total
    frames = (job.read_frame(stage, i) for i in range(total))
    return video.encode_frames(frames, final_video_path(job, settings, suffix), fps or plan.fps,
                               **_writer_kwargs(job, settings, plan))


def attach_export(run: Run) -> None:
    """Encode the last pass while it renders; ``finalize_job`` closes it (or encodes from disk)."""
    exporter = StreamingExport(run.job, run.settings, run.plan, run.stage_name(run.passes - 1))
    run.sink = exporter.push
    run.exporter = exporter  # type: ignore[attr-defined]


def finalize_job(run: Run) -> Path:
    exporter: StreamingExport | None = getattr(run, "exporter", None)
    last = run.stage_name(run.passes - 1)
    if exporter is not None and exporter.complete:
        path = exporter.close()
    else:
        if exporter is not None:
            exporter.abort()
        path = export_stage(run.job, run.settings, run.plan, last)
    run.job.log(f"exported {path}")
    return path
