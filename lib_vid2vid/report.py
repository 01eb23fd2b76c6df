"""The job report: how steady and how faithful a finished job's video is.

:func:`report` measures a job folder with :class:`lib_vid2vid.metrics.VideoMetrics` (see that module for
the formulas): each frame of the job's **last pass** (``frames/pass<N>/``) is paired with the source frame
of the same index, decoded exactly as the job decoded it (the manifest's plan: rate, start, end, size and
resize mode), and the summary is written to ``<job>/report.json`` (atomically) and returned.

The report measures the frames the last pass has finished (``frames_done``), so an interrupted job can be
measured too; ``complete`` tells whether that was the whole plan. Frames larger than ``max_side`` (default
256 pixels on the long side) are downscaled before measuring, so a report costs about the same per frame
for any output size: about 30 ms of CPU per frame at 256 pixels, against 150-210 ms at 512, dominated by two
optical flows per frame pair and two SSIMs. The report runs beside the render, but on a 2-core machine with a
fast sampler that CPU is what the job waits for, so the default measures small. The size that was measured
is in ``size``, and every line that quotes the report says it (``format_report``). Finding the scene cuts
(``scene_cuts`` below) costs about 2 ms of CPU per 512x512 frame, nothing when colour coherence (on by default)
found them already: ``helpers/bench_overhead.py --configs default fixed_seed``, side by side before and after,
default 99 -> 95 and fixed_seed 73 -> 75 CPU ms per frame (a noisy machine).

``report.json`` (all numbers rounded to 6 significant digits, ``null`` where undefined)::

    format          1
    job             the job id
    stage           the measured stage, e.g. "pass2"
    source          the source video's path
    total           frames in the job's plan
    complete        whether every planned frame was measured
    frames          frames measured
    size            [width, height] at which they were measured
    warp_error      mean squared error to the flow-warped previous output (0..1 pixel units; lower = steadier)
    flicker         mean absolute luma change where the source holds still (0..1; lower = steadier)
    fidelity        SSIM to the source, of edges by default (higher = closer to the source's layout, max 1)
    fidelity_kind   "edge" or "luma"
    ssim_edge       edge SSIM
    ssim_luma       luminance SSIM
    worst_frames    [[frame index, warp error], ...] of the least steady frames, largest first
    scene_cuts      [frame index, ...]: the first frame of each shot but the first, found in the source as the
                    job finds cuts (its scene_cut_threshold and scene_cut_motion); the pairs of frames across
                    a cut are left out of warp_error and flicker (two unrelated pictures: no flow explains
                    them, and on a video with cuts they would be most of the figure)
    keyframes, fill_renders, flagged_groups    (keyframe jobs only: see keyframe_summary)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import video_decode, video_probe
from .errors import Vid2VidError
from .metrics import VideoMetrics
from .params import Settings
from .scene_cuts import CutDetector
from .workspace import Job, atomic_write_bytes

REPORT_NAME = "report.json"
REPORT_FORMAT = 1
DEFAULT_MAX_SIDE = 256


def last_stage(settings: Settings) -> str:
    """Name of the stage holding the job's final frames (``pass<loopback_passes>``)."""
    return f"pass{settings.temporal.loopback_passes}"


def _plan(job: Job) -> dict[str, Any]:
    plan = job.manifest.get("plan")
    if not plan:
        raise Vid2VidError(f"Job {job.root} has no plan in its manifest: it never started; run it first")
    return plan


def report(
    job: Job | str | Path,
    *,
    fidelity: str = "edge",
    max_side: int | None = DEFAULT_MAX_SIDE,
    progress: Callable[[int, int], None] | None = None,
    write: bool = True,
    cuts: bool = True,
) -> dict[str, Any]:
    """Measure a job's last-pass frames against its source; write ``report.json`` and return the dict.

    ``job``: a :class:`~lib_vid2vid.workspace.Job` or the path of a job folder. ``fidelity``: "edge" or
    "luma" (which SSIM is reported as ``fidelity``). ``max_side``: measure at most this many pixels on the
    long side (None = at the output size). ``progress(done, total)`` is called after each frame.
    ``write=False`` only returns the dict. ``cuts``: leave the pairs across the scene cuts found in the source
    out of the warp error and flicker (False: every pair, as ``helpers/bench_consistency.py`` defines its
    figures; ``scene_cuts`` is then empty). Raises Vid2VidError when the job has no finished frame or its
    source video is gone.
    """
    if not isinstance(job, Job):
        job = Job.open(job)
    settings = job.stored_settings()
    plan = _plan(job)
    stage = last_stage(settings)
    done = job.frames_done(stage)
    if done == 0:
        raise Vid2VidError(f"Job {job.root.name} has no finished frame in {stage}: render it before asking "
                           f"for its report")
    source = Path(job.manifest["source_file"]["path"])
    if not source.is_file():
        raise Vid2VidError(f"The job's source video {source} is gone: the report compares the output with it; "
                           f"put the video back at that path")
    width, height, total = int(plan["width"]), int(plan["height"]), int(plan["total"])
    fps = Fraction(str(plan["fps"])) if settings.video.fps else None  # as Run._video_frames decodes
    meter = VideoMetrics(fidelity=fidelity, max_side=max_side)
    detector = CutDetector.of(settings) if cuts else None
    measured = 0
    frames = video_decode.iter_frames(source, fps=fps, start=float(plan["start"]), end=float(plan["end"]),
                               size=(width, height), resize_mode=settings.video.resize_mode,
                               info=video_probe.probe_job_source(job.manifest))
    try:
        for index, src in frames:
            if index >= done:
                break
            meter.update(src, job.read_frame(stage, index), cut=detector is not None and detector.step(src))
            measured += 1
            if progress is not None:
                progress(measured, done)
    finally:
        frames.close()
    if measured < done:
        raise Vid2VidError(f"The source video {source} now has only {measured} frames in the job's range, not "
                           f"{done}: it changed since the job ran; the report cannot pair the frames")
    out: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "job": job.manifest.get("id"),
        "stage": stage,
        "source": str(source),
        "total": total,
        "complete": done >= total,
        **meter.summary(),
        **keyframe_summary(job.manifest),
    }
    if write:
        atomic_write_bytes(job.root / REPORT_NAME, (json.dumps(out, indent=1) + "\n").encode("utf-8"))
    return out


class StreamingReport:
    """Measures the last pass while it renders, on the pipeline's writer thread, so a finished job's
    report costs no wall time. ``push`` must be called in frame order; a resumed job's first push measures
    the frames an earlier run rendered (decoding the source as :func:`report` does) before going on.
    If anything fails, :meth:`finish` falls back to :func:`report`."""

    def __init__(self, job: Job, *, fidelity: str = "edge", max_side: int | None = DEFAULT_MAX_SIDE):
        self.job = job
        self.fidelity = fidelity
        self.max_side = max_side
        self.meter = VideoMetrics(fidelity=fidelity, max_side=max_side)
        self.cuts = CutDetector.of(job.stored_settings())
        self.next = 0
        self.failed: Exception | None = None

    def push(self, index: int, src: np.ndarray, out: np.ndarray, cut: bool | None = None) -> None:
        """Measure frame ``index`` (source and output, RGB uint8 HWC). ``cut``: whether a scene cut lies before it,
        when the job found that already with the same detector (colour coherence does); looked for here when None.
        A job gives it for every frame of the pass or for none."""
        if self.failed is not None:
            return
        try:
            if index > self.next:
                self._catch_up(index)
            if index != self.next:
                raise RuntimeError(f"frame {index} measured after frame {self.next - 1}")
            self.meter.update(src, out, cut=self.cuts.step(src) if cut is None else cut)
            self.next = index + 1
        except Exception as exc:  # noqa: BLE001 - measured again from disk at the end
            self.failed = exc

    def _catch_up(self, upto: int) -> None:
        settings = self.job.stored_settings()
        plan = _plan(self.job)
        stage = last_stage(settings)
        fps = Fraction(str(plan["fps"])) if settings.video.fps else None
        frames = video_decode.iter_frames(self.job.manifest["source_file"]["path"], fps=fps, start=float(plan["start"]),
                                   end=float(plan["end"]), size=(int(plan["width"]), int(plan["height"])),
                                   resize_mode=settings.video.resize_mode,
                                   info=video_probe.probe_job_source(self.job.manifest))
        try:
            for index, src in frames:
                if index >= upto:
                    break
                self.meter.update(src, self.job.read_frame(stage, index), cut=self.cuts.step(src))
                self.next = index + 1
        finally:
            frames.close()

    def finish(self) -> dict[str, Any]:
        """Write ``report.json`` for the finished last pass and return it."""
        settings = self.job.stored_settings()
        stage = last_stage(settings)
        done = self.job.frames_done(stage)
        if self.failed is not None or self.next != done:
            return report(self.job, fidelity=self.fidelity, max_side=self.max_side)
        total = int(_plan(self.job)["total"])
        out = {"format": REPORT_FORMAT, "job": self.job.manifest.get("id"), "stage": stage,
               "source": self.job.manifest["source_file"]["path"], "total": total, "complete": done >= total,
               **self.meter.summary(), **keyframe_summary(self.job.manifest)}
        atomic_write_bytes(self.job.root / REPORT_NAME, (json.dumps(out, indent=1) + "\n").encode("utf-8"))
        return out


def keyframe_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """For a keyframe job (lib_vid2vid/keyrun.py): ``keyframes`` (how many), ``fill_renders`` (light renders of
    unseen regions) and ``flagged_groups`` (the scene groups problem detection flagged, with why); {} otherwise."""
    info = manifest.get("keyframes") or {}
    plan = info.get("plan")
    if not plan:
        return {}
    return {"keyframes": len(plan.get("frames", [])), "fill_renders": len(info.get("fill_renders", [])),
            "flagged_groups": [g for g in info.get("groups", []) if g.get("flagged")]}


def format_report(rep: dict[str, Any]) -> str:
    """One line for logs and the UI, e.g.
    ``warp error 0.00097, flicker 0.0031, fidelity (edge SSIM) 0.586 over 48 frames at 384x288``."""

    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    size = rep.get("size") or [0, 0]
    text = (f"warp error {num(rep.get('warp_error'), '.2g')}, flicker {num(rep.get('flicker'), '.2g')}, "
            f"fidelity ({rep.get('fidelity_kind', 'edge')} SSIM) {num(rep.get('fidelity'), '.3f')} "
            f"over {rep.get('frames', 0)} frames at {size[0]}x{size[1]}")
    if not rep.get("complete", True):
        text += f" (job unfinished: {rep.get('frames', 0)} of {rep.get('total')} frames)"
    if rep.get("colour_drift") is not None:
        text += f"; colour drift {rep['colour_drift']:.3f}"
    cuts = len(rep.get("scene_cuts") or [])
    if cuts:
        text += f"; {cuts} scene cut{'s' if cuts > 1 else ''}, not counted as flicker"
    if "keyframes" in rep:
        text += f"; {rep['keyframes']} keyframes"
        flagged = rep.get("flagged_groups") or []
        if flagged:
            text += ", flagged scenes " + ", ".join(f"{g['first']}-{g['last']}" for g in flagged)
    return text


BENCHMARK_SCALE = {
    "warp_error": {"per_frame": 3.9e-3, "fixed_seed": 0.94e-3, "best": 0.80e-3},
    "flicker": {"per_frame": 32e-3, "fixed_seed": 3.3e-3, "best": 0.47e-3},
    "fidelity": {"per_frame": 0.684},
}
"""Figures of README "Consistency" (helpers/bench_consistency.py: five clips, the proxy renderer): plain
per-frame img2img (a new seed each frame), a fixed seed, and the steadiest strategy. A scale to read a
job's figures against, not a promise for a real checkpoint."""


def _steadiness(value: float | None, scale: dict[str, float]) -> str:
    if value is None:
        return "not measured"
    times = scale["per_frame"] / value if value > 0 else float("inf")
    if value <= scale["fixed_seed"]:
        word = "steady"
    elif value < scale["per_frame"]:
        word = "some flicker"
    else:
        word = "flickers like plain per-frame img2img"
    return f"{word} ({times:.1f}x below per-frame img2img)" if times >= 1 else f"{word} ({1 / times:.1f}x above it)"


def report_reading(rep: dict[str, Any], *, html: bool = False) -> str:
    """The report for a person: each figure with what it means and its scale, and a one-line reading.

    Steadiness: warp error and flicker against plain per-frame img2img (BENCHMARK_SCALE: "N x below
    per-frame" = per-frame's figure / this job's); "steady" at or below a fixed seed's figure. Fidelity: edge
    SSIM to the source, 1 = the source's layout exactly; per-frame img2img kept 0.68 at denoise 0.45.
    """
    import html as _html

    warp, flick, fid = rep.get("warp_error"), rep.get("flicker"), rep.get("fidelity")
    lines = [
        ("Warp error", "how much each frame differs from the previous one moved along the motion",
         "n/a" if warp is None else f"{warp:.2g}", _steadiness(warp, BENCHMARK_SCALE["warp_error"])),
        ("Flicker", "brightness change where the source holds still",
         "n/a" if flick is None else f"{flick:.2g}", _steadiness(flick, BENCHMARK_SCALE["flicker"])),
        ("Colour drift", "how far the output's brightness wanders from the source's within a shot (luma 0..1)",
         "n/a" if rep.get("colour_drift") is None else f"{rep['colour_drift']:.3f}",
         "n/a" if rep.get("colour_drift") is None else
         ("keeps the source's light" if rep["colour_drift"] <= 0.02 else
          "drifts from the source's light: a fade or a light change the output does not follow")),
        ("Fidelity", "edge similarity to the source (1 = same layout)",
         "n/a" if fid is None else f"{fid:.3f}",
         "n/a" if fid is None else ("keeps the source's layout" if fid >= 0.6 else
                                    "restyles the layout strongly" if fid >= 0.4 else "the layout is mostly lost")),
    ]
    size = rep.get("size") or [0, 0]
    verdict = ("Reading: " + (lines[0][3].split(" (")[0] if warp is not None else "steadiness not measured")
               + (", " + lines[3][3] if fid is not None else "")
               + f" (measured over {rep.get('frames', 0)} frames at {size[0]}x{size[1]}; scale: the README's "
               "benchmark, proxy renderer)")
    if not rep.get("complete", True):
        verdict += f"; job unfinished: {rep.get('frames', 0)} of {rep.get('total')} frames"
    worst = rep.get("worst_frames") or []
    if worst and warp:
        lines.append(("Least steady frames", "the frames that change most against the motion (worth a look)",
                      ", ".join(f"{int(i)}" for i, _e in worst),
                      ", ".join(f"{e / warp:.1f}x the mean" for _i, e in worst)))
    cuts = rep.get("scene_cuts") or []
    if cuts:
        shown = ", ".join(str(int(i)) for i in cuts[:12]) + (f" and {len(cuts) - 12} more" if len(cuts) > 12 else "")
        lines.append(("Scene cuts", "where a new shot starts: the change across a cut is not counted as flicker",
                      shown, f"{len(cuts)} found in the source"))
    if not html:
        return verdict + "\n" + "\n".join(f"{n}: {v} - {s} ({m})" for n, m, v, s in lines)
    e = _html.escape
    rows = "".join(f"<tr><td>{e(n)}</td><td>{e(v)}</td><td>{e(s)}</td><td>{e(m)}</td></tr>" for n, m, v, s in lines)
    return f"<div>{e(verdict)}</div><table class='vid2vid-report-table'>{rows}</table>"
