"""The frame loop.

For each pass (``loopback_passes``; pass 1 reads the video, pass p > 1 reads pass p-1's frames) and each
frame i::

    analyse(i + 1)   source-only CPU work (motion, flow ...) on a worker thread, while the host renders i
    prepare(i)       stages set the init image, mask, seed, denoise ... of the RenderRequest
    render(i)        the Renderer (the host's GPU)
    batch blend      the returned images averaged in float
    correct(i)       stages correct the result in float32 0..1 (FDC, masks, colour coherence ...); the last
                     correcting stage's ``correct_uint8`` rounds to the RGB uint8 frame
    write(i)         PNG written atomically and a journal line appended on the write lane; the job report on the
                     measure lane (both beside the next render)

Memory stays constant: a bounded window of decoded frames (``Stage.before``/``Stage.after`` neighbours plus a
small prefetch queue), the previous output, and one frame in flight on the writer.

Resume: stages keep state across frames only through what is on disk, so a job restarted at frame k
re-reads frame k-1's output and the source window and produces the same bytes an uninterrupted run does.
"""

from __future__ import annotations

import collections
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import blend, scene_groups, video_decode, video_probe, video_resample
from .errors import Interrupted, Vid2VidError
from .imaging import to_uint8
from .params import MAX_SIDE, MIN_SIDE, Settings
from .renderer import Renderer, RenderRequest
from .workspace import Job

ProgressFn = Callable[["Progress"], None]
StopFn = Callable[[], bool]


@dataclass
class Progress:
    stage: str
    done: int
    total: int
    eta_s: float | None = None
    last_frame: np.ndarray | None = None
    """The frame just finished (RGB uint8), for live previews."""

    @property
    def text(self) -> str:
        eta = "" if self.eta_s is None else f", ETA {format_seconds(self.eta_s)}"
        return f"{self.stage}: frame {self.done}/{self.total}{eta}"


def format_seconds(s: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour on."""
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# ---------------------------------------------------------------- planning

@dataclass(frozen=True)
class JobPlan:
    """What will be processed: output size in pixels, frame rate, source range in seconds, frame count; ``note``
    is one line for the user when the output size departs from the usual rule (:func:`output_size_note`)."""

    width: int
    height: int
    fps: Fraction
    start: float
    end: float
    total: int
    note: str = ""

    @property
    def duration(self) -> float:
        return self.total / float(self.fps)


def output_size(src_w: int, src_h: int, width: int, height: int, long_side: int = 512) -> tuple[int, int]:
    """Output (width, height) in pixels, multiples of 8, for a source shown at ``src_w`` x ``src_h`` pixels.

    Both 0: the long side becomes ``long_side`` and the other follows the aspect ratio. When that short side
    would be below MIN_SIDE (64 px; a source wider or taller than about 8:1 at 512), it is MIN_SIDE and the long
    side grows to keep the aspect ratio, ``MIN_SIDE * long_src / short_src``, up to MAX_SIDE (4096 px). One 0: it
    follows the aspect ratio of the other, at least MIN_SIDE. Rounded to the nearest multiple of 8. Sizes given
    are kept. :func:`output_size_note` says when the size is not the plain rule's.
    """
    return _output_size(src_w, src_h, width, height, long_side)[:2]


def output_size_note(src_w: int, src_h: int, width: int, height: int, long_side: int = 512) -> str:
    """One line for the user when :func:`output_size` grows the long side past ``long_side`` to keep the aspect
    ratio, or has to stretch the picture (a side raised to MIN_SIDE, the long side cut to MAX_SIDE); else ""."""
    return _output_size(src_w, src_h, width, height, long_side)[2]


def _round8(px: float) -> int:
    return int(round(px / 8)) * 8


def _output_size(src_w: int, src_h: int, width: int, height: int, long_side: int) -> tuple[int, int, str]:
    """(width, height, note) of :func:`output_size` and :func:`output_size_note`."""
    source = f"the {src_w}x{src_h} source"
    if width and height:
        return width, height, ""
    if width or height:
        given, other = ("width", "height") if width else ("height", "width")
        size = _round8(width * src_h / src_w) if width else _round8(height * src_w / src_h)
        if size >= MIN_SIDE:
            return (width or size), (height or size), ""
        w, h = (width or MIN_SIDE), (height or MIN_SIDE)
        keep = _round8(MIN_SIDE * (src_w / src_h if width else src_h / src_w))
        return w, h, (f"{source} is stretched to {w}x{h}: a {given} of {width or height} px gives it a {other} of "
                      f"{size} px, under the {MIN_SIDE} px minimum; give a {given} of {keep} px or more to keep its "
                      f"aspect ratio")
    scale = long_side / max(src_w, src_h)
    w, h = _round8(src_w * scale), _round8(src_h * scale)
    if min(w, h) >= MIN_SIDE:
        return w, h, ""
    scale = MIN_SIDE / min(src_w, src_h)  # the short side at its minimum: the long side grows to keep the aspect
    w, h = _round8(src_w * scale), _round8(src_h * scale)
    if max(w, h) <= MAX_SIDE:
        return w, h, (f"{source} gets {w}x{h}: its short side at the {MIN_SIDE} px minimum, the long side grows "
                      f"from {long_side} to {max(w, h)} px to keep the aspect ratio")
    w, h = min(w, MAX_SIDE), min(h, MAX_SIDE)
    return w, h, (f"{source} is stretched to {w}x{h}: with its short side at the {MIN_SIDE} px minimum the long "
                  f"side would pass the {MAX_SIDE} px maximum; crop the video or set width and height yourself")


def make_plan(settings: Settings, info: video_probe.VideoInfo) -> JobPlan:
    v = settings.video
    fps = Fraction(v.fps).limit_denominator(1001) if v.fps else Fraction(info.fps)
    end = min(v.end, info.duration) if v.end else info.duration
    if v.start >= end:
        raise Vid2VidError(f"start ({v.start:g} s) is at or past the end of the video ({end:.3f} s): "
                           f"choose a start inside the video")
    total = video_resample.output_frame_count(info, fps if v.fps else None, v.start, end)
    if v.max_frames:
        total = min(total, v.max_frames)
    if total <= 0:
        raise Vid2VidError("The chosen range holds no frames: widen start/end or raise fps")
    w, h = output_size(info.width, info.height, v.width, v.height)
    note = output_size_note(info.width, info.height, v.width, v.height)
    return JobPlan(width=w, height=h, fps=fps, start=v.start, end=min(end, v.start + total / float(fps)),
                   total=total, note=note)


# ---------------------------------------------------------------- frames and stages

@dataclass
class FrameContext:
    """Everything a stage may look at for frame ``index`` of pass ``loop`` (0-based)."""

    index: int
    loop: int
    total: int
    fps: Fraction
    frame: np.ndarray
    """This pass's input, RGB uint8 HWC: the source frame in pass 0, the previous pass's output later."""
    video: np.ndarray
    """The source video frame, RGB uint8 HWC at output size."""
    neighbours: dict[int, tuple[np.ndarray, np.ndarray]]
    """offset -> (input frame, video frame) for the window the stages asked for (offset 0 included)."""
    prev_output: np.ndarray | None = None
    """This pass's finished output of frame index-1 (RGB uint8), None at index 0."""
    analysis: dict[str, Any] = field(default_factory=dict)
    """What the stages' ``analyse`` found, by key; ``scene_cut`` (bool): a scene cut of the source lies between
    frames index-1 and index, as :meth:`lib_vid2vid.scene_cuts.CutDetector.of` the job's settings finds it (set
    from the job's stored cuts with reset_at_cuts, or by colour coherence; the job report takes it)."""

    @property
    def time(self) -> float:
        return self.index / float(self.fps)

    @property
    def prev_video(self) -> np.ndarray | None:
        n = self.neighbours.get(-1)
        return None if n is None else n[1]


class Stage:
    """A pluggable step of the frame loop. Override what you need; every hook is optional.

    ``before``/``after``: how many neighbouring frames the stage reads (the window the loop keeps).
    ``analyse`` runs on a worker thread ahead of time and may read only the context's frames and
    neighbours, never ``prev_output``. ``prepare`` runs in frame order on the main thread; ``correct`` and
    ``done`` in frame order too, on the main thread or, when no stage reads the previous output, on the
    finish lane beside the next frame's render.
    """

    name = "stage"
    before = 0
    after = 0

    def begin(self, run: Run) -> None: ...

    def analyse(self, ctx: FrameContext) -> None: ...

    def prepare(self, ctx: FrameContext, request: RenderRequest) -> None: ...

    def correct(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        """``image`` and the result: float32 RGB HWC in 0..1."""
        return image

    def correct_uint8(self, ctx: FrameContext, image: np.ndarray) -> np.ndarray:
        """``correct``, then the frame's one rounding to RGB uint8 (:func:`imaging.to_uint8`): the loop calls
        this for the last correcting stage. A stage may compute the same bytes in one go (colour coherence)."""
        return to_uint8(self.correct(ctx, image))

    def done(self, ctx: FrameContext, out: np.ndarray) -> None:
        """Called with the finished frame (RGB uint8, exactly what is written to disk)."""

    def reads_previous_output(self) -> bool:
        """True if prepare/correct use ``ctx.prev_output``. When no stage does, corrections run on the writer
        thread, overlapping the next frame's render (``correct`` and ``done`` must then not touch state that
        ``prepare`` reads)."""
        return False

    def end(self, run: Run) -> None: ...


# ---------------------------------------------------------------- prefetch

class _Prefetch:
    """Run an iterator on a background thread into a bounded queue (exceptions are re-raised in order)."""

    _DONE = object()

    def __init__(self, it: Iterator, depth: int = 4):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(it,), daemon=True, name="vid2vid-decode")
        self._thread.start()

    def _fill(self, it: Iterator) -> None:
        try:
            for item in it:
                while not self._stop.is_set():
                    try:
                        self._q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._q.put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._q.put(("error", exc))
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    def __iter__(self):
        while True:
            kind, item = self._q.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


class _Lanes:
    """Ordered worker threads for the work after a render, so it runs beside the next render and on both cores:

    ``finish``   batch mean and the stages' corrections (only when no stage reads the previous output)
    ``write``    PNG and journal line, then the streaming export
    ``measure``  the streaming job report

    Each lane runs its frames in frame order on one thread; :meth:`submit` first waits for the lane's previous
    frame (so at most one frame waits per lane, and a failure there is raised here). One thread submits to a
    lane: the main thread to ``finish`` (deferred) or to ``write``/``measure``, the ``finish`` thread to those.
    """

    NAMES = ("finish", "write", "measure")

    def __init__(self) -> None:
        self._pools = {n: ThreadPoolExecutor(1, thread_name_prefix=f"vid2vid-{n}") for n in self.NAMES}
        self._pending: dict[str, Future | None] = dict.fromkeys(self.NAMES)

    def submit(self, lane: str, fn: Callable[..., Any], *args: Any) -> None:
        self.wait(lane)
        self._pending[lane] = self._pools[lane].submit(fn, *args)

    def wait(self, lane: str) -> None:
        """Wait until the lane's queued frame is done (re-raises its error)."""
        pending, self._pending[lane] = self._pending[lane], None
        if pending is not None:
            pending.result()

    def drain(self) -> None:
        """Wait for every queued frame, upstream lanes first (``finish`` feeds the others)."""
        for lane in self.NAMES:
            self.wait(lane)

    def shutdown(self) -> None:
        for lane in self.NAMES:
            self._pools[lane].shutdown(wait=True)


# ---------------------------------------------------------------- scene groups

@dataclass
class _ShotSpan:
    """Frames ``start .. end-1`` of the shot that begins at ``first``, journalled under ``stage``."""

    shots: _Shots
    first: int
    start: int
    end: int
    stage: str


class _Shots:
    """The frames of one pass rendered shot by shot in parallel, and their way into the pass's journal.

    A shot's frame is written to the pass's folder (atomic PNG) and journalled under the shot's own stage
    (``scene_groups.group_stage``, frame 0 = where this run started the shot) at once, so a resumed job knows it;
    it enters the pass's journal (and the streaming export) when every frame before it has (:meth:`promote`).
    ``write`` and ``promote`` run on the shots' write lanes, one at a time under a lock."""

    def __init__(self, run: Run, loop: int, done: int):
        self.run, self.loop, self.stage = run, loop, Run.stage_name(loop)
        self.next = done
        """Frames of the pass in its journal (all before this index)."""
        self.finished: dict[int, dict[str, Any]] = {}
        """Frames on the disk, not yet in the pass's journal -> their records."""
        self.count = 0
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()

    def resume_points(self, shots: list[tuple[int, int]]) -> list[_ShotSpan]:
        """What is left of each shot: frames an earlier run journalled under a shot stage (files present) count
        as finished; each shot goes on after its last finished frame."""
        job = self.run.job
        prefix = scene_groups.group_stage(self.stage, 0)[:-6]
        for name, st in list(job.manifest["stages"].items()):
            if not name.startswith(prefix):
                continue
            first, n = int(name[len(prefix):]), int(st.get("done", 0))
            records = job.manifest["frames"].get(name, [])
            for j in range(n):
                i = first + j
                if i >= self.next and job.frame_path(self.stage, i).is_file() and j < len(records):
                    self.finished[i] = dict(records[j])
        todo = []
        for a, b in shots:
            r = a
            while r < b and (r < self.next or r in self.finished):
                r += 1
            for i in [i for i in self.finished if r <= i < b]:
                del self.finished[i]  # after a gap: rendered again
            if r < b:
                name = scene_groups.group_stage(self.stage, r)
                if job.manifest["stages"].get(name, {}).get("done"):  # its frame r is missing: start it again
                    job.truncate_stage(name, 0)
                todo.append(_ShotSpan(self, a, r, b, name))
        return todo

    def write(self, span: _ShotSpan, index: int, out: np.ndarray, record: dict[str, Any], text: str | None) -> None:
        from .workspace import atomic_write_bytes, encode_png

        run = self.run
        job = run.job
        atomic_write_bytes(job.frame_path(self.stage, index),
                           encode_png(out, text={"parameters": text} if text else None), durable=True)
        job.mark_done(span.stage, index - span.start, record)
        with self.lock:
            self.finished[index] = record
            self.count += 1
            self.promote()
            total = run.plan.total
            left = total - self.next - len(self.finished)
            rate = self.count / max(time.perf_counter() - self.t0, 1e-9)
            eta = (left + total * (run.passes - self.loop - 1)) / rate
            run.progress(Progress(self.stage, total - left, total, eta, out))

    def promote(self) -> None:
        """Journal the finished frames that follow the pass's last one, in order (the streaming export too)."""
        run = self.run
        sink = run.sink if self.loop == run.passes - 1 else None
        while self.next in self.finished:
            i = self.next
            run.job.mark_done(self.stage, i, self.finished.pop(i))
            if sink is not None:
                sink(i, run.job.read_frame(self.stage, i))
            self.next += 1

    def finish(self) -> None:
        """Every frame of the pass is in its journal: the shot stages are forgotten."""
        job = self.run.job
        if self.next < self.run.plan.total:
            raise Vid2VidError(f"{self.stage}: frames {self.next} and on were not rendered; run the job again "
                               f"to resume")
        prefix = scene_groups.group_stage(self.stage, 0)[:-6]
        job.forget_stages([n for n in job.manifest["stages"] if n.startswith(prefix)])


# ---------------------------------------------------------------- the run

@dataclass
class JobResult:
    job_dir: Path
    status: str
    """"done", "interrupted" or "failed"."""
    frames_done: int
    total: int
    video_path: Path | None = None
    message: str = ""
    report: dict[str, Any] | None = None
    """Warp error, flicker and fidelity of the finished video (report.json), when measured."""
    notices: list[str] = field(default_factory=list)
    """One-line notes about how the job was chosen (e.g. "not resuming <job>: checkpoint differs ...") and
    about the host (an option that is on but does nothing: the renderer's ``take_notices``)."""


class Run:
    """One execution of a job (new or resumed)."""

    def __init__(self, job: Job, settings: Settings, plan: JobPlan, renderer: Renderer,
                 stages: list[Stage], *, should_stop: StopFn | None = None, progress: ProgressFn | None = None,
                 finalize: Callable[[Run], Path | None] | None = None,
                 sink: Callable[[int, np.ndarray], None] | None = None):
        self.job = job
        self.settings = settings
        self.plan = plan
        self.renderer = renderer
        self.stages = stages
        self.should_stop = should_stop or (lambda: False)
        self.progress = progress or (lambda p: None)
        self.finalize = finalize
        self.sink = sink
        """Called on the write lane with (index, frame) after each frame of the last pass is on disk."""
        self.meter: Any = None
        """A StreamingReport fed (index, source, output) on the measure lane for the last pass, in frame order."""
        self.seed = int(job.manifest["resolved_seed"])
        self.variation_seed = int(job.manifest.setdefault(  # jobs made before it was stored resolve it now
            "resolved_variation_seed", resolve_seed(settings.sampling.variation_seed)))
        self.input_path = job.manifest["source_file"]["path"]
        self._source_info: video_probe.VideoInfo | None = None
        self.passes = settings.temporal.loopback_passes
        self.before = max([s.before for s in stages] + [1])
        self.after = max([s.after for s in stages] + [0])
        self.notify: Callable[[str], None] | None = None
        """Gets one-line notes meant for the user before the frames start (how the pass uses several backends)."""
        self.notices: list[str] = []
        """The renderer's notes about the host in this run (logged once each as job warnings)."""
        self.base_request: dict[str, Any] = {}
        """Fields every request starts from (stages may add to it in ``begin``, e.g. a sigma schedule)."""
        self.cut_detector: Callable[[], scene_groups.CutDetector] | None = None
        """With ``reset_at_cuts``: makes the job's scene-cut detector (the pipeline hands it in); the cuts are found
        with it before the first frame."""
        self.stage_factory: Callable[[], list[Stage]] | None = None
        """Builds a fresh set of stages: each shot rendered in parallel (scene groups) gets its own."""
        self.cuts: list[int] | None = None
        """First frames of the shots after the first (``reset_at_cuts``): there the previous output is None."""
        self._shot: _ShotSpan | None = None
        """Set on the run of one shot of a pass rendered in scene groups (:meth:`_run_groups`)."""

    # ---- sources ----

    @staticmethod
    def stage_name(loop: int) -> str:
        return f"pass{loop + 1}"

    def _video_frames(self, first: int) -> Iterator[tuple[int, np.ndarray]]:
        p = self.plan
        v = self.settings.video
        fps = p.fps if v.fps else None
        if self._source_info is None:  # probed once, with the geometry the job was made with
            self._source_info = video_probe.probe_job_source(self.job.manifest)
        for idx, rgb in video_decode.iter_frames(self.input_path, fps=fps, start=p.start, end=p.end,
                                          size=(p.width, p.height), resize_mode=v.resize_mode,
                                          first_index=first, info=self._source_info):
            if idx >= p.total:
                return
            yield idx, rgb

    def _scan_source(self, what: str) -> Iterator[tuple[int, np.ndarray]]:
        """The source frames (index, RGB uint8 HWC at output size) from the first, for a scan before the first
        render (scene cuts, the keyframe choice: on a long video minutes of decoding). Each frame is reported as
        progress of ``what`` (no ETA: ``Progress.eta_s`` is the job's); a stop from the user raises
        :class:`~lib_vid2vid.errors.Interrupted` (nothing was written: the next run scans again)."""
        total = self.plan.total
        frames = self._video_frames(0)
        try:
            for i, rgb in frames:
                if self.should_stop():
                    raise Interrupted(f"stopped while {what}")
                yield i, rgb
                self.progress(Progress(what, i + 1, total))
        finally:
            frames.close()  # type: ignore[attr-defined]

    def _bundles(self, loop: int, first: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(index, pass input, video frame) from ``first`` on."""
        prev_stage = self.stage_name(loop - 1) if loop else None
        for idx, rgb in self._video_frames(first):
            frame = rgb if prev_stage is None else self.job.read_frame(prev_stage, idx)
            yield idx, frame, rgb

    # ---- loop ----

    def execute(self) -> JobResult:
        job = self.job
        job.set_status("running")
        job.remove_temp_files()  # what a killed run left (its lock is gone: no other run writes here)
        try:
            for stage in self.stages:
                stage.begin(self)  # a bad schedule or missing weights fail here, before any frame
            t = self.settings.temporal
            if t.reset_at_cuts and t.keyframe_mode == "off" and any(st.reads_previous_output() for st in self.stages):
                self._find_cuts()
            for loop in range(self.passes):
                stopped = self._run_pass(loop)
                if stopped:
                    return self._stopped()
            video_path = self.finalize(self) if self.finalize else None
        except Interrupted:
            return self._stopped()
        except KeyboardInterrupt:  # Ctrl-C twice: stopped at once, still resumable
            self._stopped("Stopped at once")
            raise
        except Vid2VidError as exc:
            job.log(str(exc), warning=True)
            job.set_status("failed", error=str(exc))
            raise
        except BaseException as exc:
            job.set_status("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            for stage in self.stages:
                stage.end(self)
        done = job.frames_done(self.stage_name(self.passes - 1))
        job.remove_temp_files()
        job.set_status("done", video=str(video_path) if video_path else None)
        job.log(f"done: {done} frames, video {video_path}")
        return JobResult(job.root, "done", done, self.plan.total, video_path)

    def read_output(self, loop: int, index: int) -> np.ndarray:
        """Finished output frame ``index`` of pass ``loop`` (RGB uint8), from the disk."""
        return self.job.read_frame(self.stage_name(loop), index)

    def _stopped(self, how: str = "Interrupted") -> JobResult:
        last = self.stage_name(self.passes - 1)
        done = self.job.frames_done(last)
        where, shown = "", done
        if self.passes > 1:  # the frames of the pass it stopped in, not the last pass's (none yet in pass 1)
            at = next((k for k in range(self.passes) if self.job.frames_done(self.stage_name(k)) < self.plan.total),
                      self.passes - 1)
            where, shown = f" in {self.stage_name(at)} of {self.passes}", self.job.frames_done(self.stage_name(at))
        msg = (f"{how}{where} after frame {shown} of {self.plan.total}: run the same job again to resume "
               f"({self.job.root})")
        self.job.log(msg)
        self.job.set_status("interrupted")
        return JobResult(self.job.root, "interrupted", done, self.plan.total, None, msg)

    def _run_pass(self, loop: int) -> bool:
        """Render pass ``loop``; True if the user stopped it."""
        stage_name = self.stage_name(loop)
        job = self.job
        total = self.plan.total
        cuts = set(self.cuts or ())
        shot = self._shot
        why_sequential = ""
        if shot is None:
            why_sequential = self._groups_plan(loop)
            if why_sequential == "":
                return self._run_groups(loop)
            job.set_stage_total(stage_name, total)
            start, end = job.frames_done(stage_name), total
            job.truncate_stage(stage_name, start)
            if start >= total:
                return False
            if start:
                job.log(f"{stage_name}: resuming at frame {start}")
        else:
            start, end = shot.start, shot.end
        prev_output = job.read_frame(stage_name, start - 1) if start and start not in cuts else None
        first = max(0, start - self.before)

        feed = _Prefetch(self._bundles(loop, first), depth=4 + self.after)
        window: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        feed_it = iter(feed)
        exhausted = False

        def fill(upto: int) -> None:
            nonlocal exhausted
            while not exhausted and (not window or max(window) < upto):
                try:
                    idx, frame, vid = next(feed_it)
                except StopIteration:
                    exhausted = True
                    return
                window[idx] = (frame, vid)

        def context(i: int) -> FrameContext | None:
            fill(i + self.after)
            if i not in window:
                return None
            for k in [k for k in window if k < i - self.before]:
                del window[k]
            neigh = {k - i: window[k] for k in range(i - self.before, i + self.after + 1) if k in window}
            frame, vid = window[i]
            ctx = FrameContext(index=i, loop=loop, total=total, fps=self.plan.fps, frame=frame, video=vid,
                               neighbours=neigh)
            if self.cuts is not None:
                ctx.analysis["scene_cut"] = i in cuts  # the shots' first frames, found once for the job
            return ctx

        def analyse(ctx: FrameContext) -> FrameContext:
            for stage in self.stages:
                stage.analyse(ctx)
            return ctx

        # When no stage reads the previous output, a frame's correction (colour coherence, loopback blend ...)
        # runs on the finish lane while the host renders the next frame; writes and the report always do.
        deferred = not any(st.reads_previous_output() for st in self.stages)
        parallel = self._announce(stage_name, deferred, why_sequential or "") if shot is None else False
        analyser = ThreadPoolExecutor(1, thread_name_prefix="vid2vid-analyse")
        lanes = _Lanes()
        render_times: list[float] = []
        inflight: collections.deque[tuple[FrameContext, RenderRequest, Future]] = collections.deque()
        finished_at: list[float] = [time.perf_counter()]
        try:
            first_ctx = context(start)
            if first_ctx is None:
                raise Vid2VidError(f"The video ended before frame {start}: it may have changed since the job "
                                   f"started; start a new job")
            nxt: Future = analyser.submit(analyse, first_ctx)
            del first_ctx  # its neighbours must not outlive the window
            for i in range(start, end):
                ctx = nxt.result()
                ctx.prev_output = None if i in cuts else prev_output  # reset_at_cuts: a shot starts afresh
                following, stop_error = None, None
                if i + 1 < end:
                    try:
                        following = context(i + 1)
                    except Vid2VidError as exc:  # e.g. corrupt from frame i+1 on: finish frame i first
                        stop_error = exc
                    if following is None and stop_error is None:
                        stop_error = Vid2VidError(f"The video has only {i + 1} frames in the chosen range, "
                                                  f"not {total}: check start/end")
                nxt = analyser.submit(analyse, following) if following is not None else None

                if parallel:
                    req = self._request(ctx)
                    inflight.append((ctx, req, self.renderer.submit(req)))  # type: ignore[attr-defined]
                    del ctx
                    last = following is None
                    keep = 0 if last else 2 * max(1, getattr(self.renderer, "parallel", 1))
                    while len(inflight) > keep:
                        if not self._wait_unless_stopped(inflight[0][2]):
                            return self._stop_in_flight(lanes, loop, inflight)
                        done, preview = self._collect(lanes, loop, inflight)
                        finished_at.append(time.perf_counter())
                        gaps = finished_at[-21:]
                        mean = (gaps[-1] - gaps[0]) / (len(gaps) - 1)
                        remaining = (total - done) + total * (self.passes - loop - 1)
                        self.progress(Progress(stage_name, done, total, mean * remaining, preview))
                    if stop_error is not None:
                        lanes.drain()
                        raise stop_error
                    if not last and self.should_stop():
                        return self._stop_in_flight(lanes, loop, inflight)
                    continue

                t0 = time.perf_counter()
                if deferred:
                    req, images, text = self._sample(ctx)
                    out = fit_size(images[0], self.plan.width, self.plan.height)  # preview only
                else:
                    out, record = self._render_frame(ctx)
                render_times.append(time.perf_counter() - t0)

                if deferred:
                    lanes.submit("finish", self._finish_and_hand_off, lanes, loop, ctx, req, images, text)
                else:
                    self._hand_off(lanes, loop, i, out, record, ctx.video, ctx.analysis.get("scene_cut"))
                    prev_output = out

                if stop_error is not None:
                    lanes.drain()
                    raise stop_error
                done = i + 1
                if shot is None:
                    mean = sum(render_times[-20:]) / len(render_times[-20:])
                    remaining = (total - done) + total * (self.passes - loop - 1)
                    self.progress(Progress(stage_name, done, total, mean * remaining, out))
                if done < end and self.should_stop():
                    lanes.drain()
                    return True
            lanes.drain()
        finally:
            feed.close()
            analyser.shutdown(wait=True, cancel_futures=True)
            lanes.shutdown()
        return False

    # ---- scene groups (reset_at_cuts): the shots of a pass in parallel

    def _find_cuts(self) -> None:
        """``cuts``: the job's stored scene cuts, or found now by decoding the source (and stored)."""
        stored = self.job.manifest.get(scene_groups.MANIFEST_KEY)
        if stored is not None:
            self.cuts = [int(c) for c in stored]
            return
        if self.cut_detector is None:
            return
        t0 = time.perf_counter()
        self.cuts = scene_groups.find_cuts(self._scan_source("finding scene cuts"), self.cut_detector())
        self.job.manifest[scene_groups.MANIFEST_KEY] = self.cuts
        self.job.save()
        shown = ", ".join(map(str, self.cuts[:20])) + (" ..." if len(self.cuts) > 20 else "")
        self.job.log(f"reset_at_cuts: {len(self.cuts) + 1} shots (cuts before frames {shown or 'none'}; "
                     f"source scanned in {time.perf_counter() - t0:.1f} s)")

    def _groups_plan(self, loop: int) -> str | None:
        """Whether pass ``loop`` renders shot by shot: "" if it does (several backends, a stage reads the
        previous output, ``reset_at_cuts`` found more than one shot; or an earlier run left shots rendered apart,
        which one backend finishes shot after shot), else why not; None when the question does not arise (one
        backend, or no stage reads the previous output)."""
        prefix = scene_groups.group_stage(self.stage_name(loop), 0)[:-6]
        if self.cuts is not None and self.stage_factory is not None and any(
                name.startswith(prefix) and st.get("done") for name, st in self.job.manifest["stages"].items()):
            return ""
        n = int(getattr(self.renderer, "parallel", 1) or 1)
        if n <= 1 or not any(st.reads_previous_output() for st in self.stages) or \
                not callable(getattr(self.renderer, "submit", None)):
            return None
        names = {st.name for st in self.stages}
        if self.cuts is None:
            return "set reset_at_cuts to render the shots of the video in parallel"
        if len(self.cuts) == 0:
            return "reset_at_cuts found a single shot"
        if self.stage_factory is None:
            return "this run's stages were given, not built"
        if "noise" in names:
            return "warped noise is one chain over the whole pass"
        if "depth" in names and not self.settings.correction.depth_source.strip():
            return "the depth mask is normalised over every frame before it"
        if self.passes > 1 and self.settings.temporal.save_each_pass:
            return "save_each_pass encodes the earlier pass as the next one starts"
        return ""

    def _run_groups(self, loop: int) -> bool:
        """Pass ``loop`` shot by shot in parallel: one thread per backend alive takes the longest shot left and
        renders it as the sequential loop does (its own stages, previous output None at the cut); frames go to
        the pass's folder as they finish and into its journal in frame order (:class:`_Shots`). True if
        stopped."""
        stage_name = self.stage_name(loop)
        job, total = self.job, self.plan.total
        job.set_stage_total(stage_name, total)
        done = job.frames_done(stage_name)
        job.truncate_stage(stage_name, done)
        if done >= total:
            return False
        readers = ", ".join(st.name for st in self.stages if st.reads_previous_output())
        n = int(getattr(self.renderer, "parallel", 1) or 1)
        if n > 1:
            line = (f"{stage_name}: {len(self.cuts or ()) + 1} shots (scene groups) render in parallel on {n} "
                    f"backends, each shot one frame after another ({readers} reads the previous output; "
                    f"reset_at_cuts starts it afresh at each cut); this machine writes the frames in order")
        else:
            line = (f"{stage_name}: one backend finishes the shots an earlier run rendered apart, shot after shot "
                    f"({readers} reads the previous output; reset_at_cuts starts it afresh at each cut)")
        job.log(line)
        if self.notify is not None:
            self.notify(line)
        shots = _Shots(self, loop, done)
        todo = shots.resume_points(scene_groups.groups(self.cuts or (), total))
        if done or shots.finished:
            job.log(f"{stage_name}: resuming with {done} frames in order and {len(shots.finished)} more of "
                    f"shots rendered apart; {len(todo)} shots to go")
        shots.promote()
        for key, empty in (("colour_refs", list), ("colour_ref_sources", dict)):
            if key in job.manifest:  # created here, not by a shot's thread while another saves
                job.manifest[key].setdefault(stage_name, empty())
        workers = max(1, min(len(todo), n))
        if workers > 1:
            todo.sort(key=lambda span: span.start - span.end)  # longest first: the last to finish is short
        pending = collections.deque(todo)
        lock = threading.Lock()
        errors: list[BaseException] = []
        stopped = threading.Event()

        def work() -> None:
            while not errors and not stopped.is_set():
                with lock:
                    if not pending:
                        return
                    span = pending.popleft()
                try:
                    if self._run_shot(loop, span, stopped):
                        stopped.set()
                except BaseException as exc:  # noqa: BLE001 - raised on the driver's thread
                    errors.append(exc)
                    stopped.set()

        threads = [threading.Thread(target=work, daemon=True, name=f"vid2vid-shot-{k}") for k in range(workers)]
        for t in threads:
            t.start()
        interrupted = False
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)
                if not interrupted and (stopped.is_set() or self.should_stop()):
                    stopped.set()  # at once: the other shots' renders in flight are cut short
                    self._interrupt_renderer()
                    interrupted = True
        if errors:
            raise next((e for e in errors if not isinstance(e, Interrupted)), errors[0])
        if stopped.is_set():
            return True
        shots.finish()
        return False

    def _run_shot(self, loop: int, span: _ShotSpan, stopped: threading.Event) -> bool:
        """One shot (or its rest) with a fresh set of stages on a copy of this run; True if stopped (by the user,
        or because another shot failed)."""
        import copy

        assert self.stage_factory is not None
        sub = copy.copy(self)
        sub.stages = self.stage_factory()
        sub._shot, sub.meter, sub.sink, sub.notify = span, None, None, None
        sub.base_request = dict(self.base_request)
        sub.progress = lambda p: None
        sub.should_stop = lambda: stopped.is_set() or self.should_stop()
        begun: list[Stage] = []
        try:
            for stage in sub.stages:
                stage.begin(sub)
                begun.append(stage)
            return sub._run_pass(loop)
        finally:
            for stage in begun:
                stage.end(sub)

    def _announce(self, stage_name: str, deferred: bool, why: str = "") -> bool:
        """Say in the job log (and to ``notify``) how the pass uses several backends; True if its frames render
        in parallel (the renderer takes ``submit`` and no stage reads the previous output)."""
        n = int(getattr(self.renderer, "parallel", 1) or 1)
        if n <= 1 or not callable(getattr(self.renderer, "submit", None)):
            return False
        if deferred:
            line = (f"{stage_name}: frames render in parallel on {n} backends (no stage reads the previous "
                    f"output); this machine writes them in order")
        else:
            readers = ", ".join(st.name for st in self.stages if st.reads_previous_output())
            line = (f"{stage_name}: frames render one after another ({readers} reads the previous output"
                    f"{'; ' + why if why else ''}); the other {n - 1} backends stand by for a failing one")
        self.job.log(line)
        if self.notify is not None:
            self.notify(line)
        return deferred

    def _collect(self, lanes: _Lanes, loop: int, inflight: collections.deque[tuple[FrameContext, RenderRequest,
                                                                                   Future]]) -> tuple[int, np.ndarray]:
        """Wait for the oldest frame in flight and queue its finish; returns the frames done after it and its
        rendered image (RGB uint8, before corrections: the preview the sequential path shows too)."""
        ctx, req, future = inflight.popleft()
        images = future.result()
        self._host_notices()
        if not images:
            raise Vid2VidError(f"The renderer returned no image for frame {ctx.index}")
        lanes.submit("finish", self._finish_and_hand_off, lanes, loop, ctx, req, images, infotext(req))
        return ctx.index + 1, fit_size(images[0], self.plan.width, self.plan.height)

    def _wait_unless_stopped(self, future: Future, poll_s: float = 0.2) -> bool:
        """Wait for ``future``; False as soon as the user asks to stop (polled every ``poll_s`` seconds)."""
        from concurrent.futures import wait

        while not wait([future], timeout=poll_s).done:
            if self.should_stop():
                return False
        return True

    def _interrupt_renderer(self) -> None:
        """Ask the renderer to cut the renders in flight short (several backends: ``Dispatcher.interrupt``)."""
        ask = getattr(self.renderer, "interrupt", None)
        if callable(ask):
            ask()

    def _stop_in_flight(self, lanes: _Lanes, loop: int,
                        inflight: collections.deque[tuple[FrameContext, RenderRequest, Future]]) -> bool:
        """A stop with frames in flight: interrupt them, keep (write) those that had finished, in frame order up
        to the first that had not; True (stopped)."""
        self._interrupt_renderer()
        while inflight:
            future = inflight[0][2]
            if future.cancelled() or future.exception() is not None:
                break
            self._collect(lanes, loop, inflight)
        inflight.clear()
        lanes.drain()
        return True

    def _hand_off(self, lanes: _Lanes, loop: int, index: int, out: np.ndarray, record: dict[str, Any],
                  src: np.ndarray, cut: bool | None = None) -> None:
        """Frame ``index`` is final: queue its write (then export) and, in the last pass, its measurement
        (``cut``: the frame's ``scene_cut`` analysis, when a stage found it)."""
        lanes.submit("write", self._write, loop, index, out, record)
        if loop == self.passes - 1 and self.meter is not None:
            lanes.submit("measure", self.meter.push, index, src, out, cut)

    def _write(self, loop: int, index: int, out: np.ndarray, record: dict[str, Any]) -> None:
        text = record.pop("_infotext", None)
        if self._shot is not None:
            self._shot.shots.write(self._shot, index, out, record, text)
            return
        self.job.write_frame(self.stage_name(loop), index, out, record,
                             text={"parameters": text} if text else None)
        if loop == self.passes - 1 and self.sink is not None:
            self.sink(index, out)

    def _finish_and_hand_off(self, lanes: _Lanes, loop: int, ctx: FrameContext, req: RenderRequest,
                             images: list[np.ndarray], text: str) -> None:
        out, record = self._finish(ctx, req, images, text)
        self._hand_off(lanes, loop, ctx.index, out, record, ctx.video, ctx.analysis.get("scene_cut"))

    def _render_frame(self, ctx: FrameContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Prepare, render and correct frame ``ctx.index``: (output RGB uint8, manifest record)."""
        return self._finish(ctx, *self._sample(ctx))

    def _sample(self, ctx: FrameContext) -> tuple[RenderRequest, list[np.ndarray], str]:
        """The request for the frame and what the renderer returned for it, with its infotext."""
        req = self._request(ctx)
        images = self.renderer.render(req)
        self._host_notices()
        if not images:
            raise Vid2VidError(f"The renderer returned no image for frame {ctx.index}")
        return req, images, getattr(self.renderer, "last_infotext", "") or infotext(req)

    def _request(self, ctx: FrameContext) -> RenderRequest:
        """The frame's render request: seeds, the settings, ``base_request``, then every stage's ``prepare``."""
        s = self.settings.sampling
        from .seeds import frame_seed

        seed, subseed, subseed_strength = frame_seed(s.seed_mode, self.seed, ctx.index, ctx.loop,
                                                     self.variation_seed, s.variation_strength)
        req = RenderRequest(init=ctx.frame, seed=seed, subseed=subseed, subseed_strength=subseed_strength,
                            denoise=s.denoise, steps=s.steps, cfg=s.cfg_scale, prompt=s.prompt,
                            negative_prompt=s.negative_prompt, batch_size=s.batch_size,
                            control_image=ctx.video, frame_index=ctx.index,
                            extra={"sampler": s.sampler, "scheduler": s.scheduler})
        for name, value in self.base_request.items():
            setattr(req, name, value)
        for stage in self.stages:
            stage.prepare(ctx, req)
        req.extra["infotext"] = {"vid2vid": self._summary(ctx)}
        return req

    def _host_notices(self) -> None:
        """The renderer's new one-line notes about the host (``take_notices``), each logged once."""
        take = getattr(self.renderer, "take_notices", None)
        for note in (take() if callable(take) else None) or []:
            if note not in self.notices:
                self.notices.append(note)
                self.job.log(note, warning=True)

    def _finish(self, ctx: FrameContext, req: RenderRequest, images: list[np.ndarray],
                text: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Batch mean, the stages' corrections, rounding once: (output RGB uint8, manifest record)."""
        s = self.settings.sampling
        correcting = [st for st in self.stages if type(st).correct is not Stage.correct]
        if len(images) == 1 and not correcting:
            out = fit_size(images[0], self.plan.width, self.plan.height)  # no float round trip needed
        else:
            image = batch_mean(images, self.plan.width, self.plan.height)
            for stage in correcting[:-1]:
                image = stage.correct(ctx, image)
            out = correcting[-1].correct_uint8(ctx, image) if correcting else to_uint8(image)
        for stage in self.stages:
            stage.done(ctx, out)
        record = {"seed": req.seed, "subseed": req.subseed, "subseed_strength": req.subseed_strength,
                  "denoise": round(req.denoise, 6), "steps": req.steps, "cfg": req.cfg}
        if req.prompt != s.prompt:
            record["prompt"] = req.prompt
        record["_infotext"] = text
        return out, record

    def _summary(self, ctx: FrameContext) -> str:
        """The vid2vid part of a frame's infotext: where it comes from and the settings that made it."""
        t, c, s = self.settings.temporal, self.settings.correction, self.settings.sampling
        parts = [f"frame {ctx.index + 1}/{ctx.total}", f"pass {ctx.loop + 1}/{self.passes}",
                 f"init {t.init_mode}", f"seed mode {s.seed_mode}"]
        if s.noise_mode != "seed":
            parts.append(f"noise {s.noise_mode} {s.noise_strength:g}")
        if c.fdc_mode != "none":
            parts.append(f"fdc {c.fdc_mode}")
        if c.motion_mask:
            parts.append(f"motion mask {c.motion_low_cut}/{c.motion_high_ext}")
        sig = self.job.manifest.get("sigmas")
        if sig:
            parts.append(f"sigmas {s.sigma_schedule} {sig.get('text', '')}")
        return "; ".join(parts)


def fit_size(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """An RGB uint8 HWC image at (width, height): hosts may round sizes; resize back if they did."""
    if img.shape[:2] == (height, width) and img.dtype == np.uint8:
        return img
    import cv2

    return cv2.resize(np.asarray(img, np.uint8), (width, height), interpolation=cv2.INTER_AREA)


def infotext(req: RenderRequest) -> str:
    """A WebUI-style parameters text for renderers that do not return one."""
    fields = {"Steps": req.steps, "CFG scale": req.cfg, "Seed": req.seed, "Size": f"{req.width}x{req.height}",
              "Denoising strength": req.denoise, "Sampler": req.extra.get("sampler", "")}
    if req.subseed_strength:
        fields.update({"Variation seed": req.subseed, "Variation seed strength": req.subseed_strength})
    fields.update(req.extra.get("infotext", {}))
    text = req.prompt + (f"\nNegative prompt: {req.negative_prompt}" if req.negative_prompt else "")
    return text + "\n" + ", ".join(f"{k}: {v}" for k, v in fields.items() if v != "")


def batch_mean(images: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Mean of RGB uint8 HWC images as float32 0..1 (:func:`blend.batch_blend`), each resized to
    (width, height) first if the host changed it."""
    return blend.batch_blend([fit_size(img, width, height) for img in images])


# ---------------------------------------------------------------- job entry point

def resolve_seed(seed: int) -> int:
    """A seed as stored in the manifest: ``seeds.resolve_seed`` with a fresh random source for -1."""
    from . import seeds

    return seeds.resolve_seed(seed, random.SystemRandom())
