"""The keyframe strategy's run: render the keyframes, then carry them to every other frame.

:class:`KeyframeRun` is a :class:`~lib_vid2vid.loop.Run` whose one pass has two phases (``keyframe_mode`` on):

1. **keys**: the keyframes of the plan (:func:`lib_vid2vid.keyframes.choose_keyframes`, chosen once and stored in
   the manifest as ``keyframes``) are rendered in order through the renderer with every stage, as any frame
   would be (schedules, sigma override, masks, ControlNet image, seeds: a keyframe is frame ``index`` of the
   video), without a previous output (keyframes are independent renders). They are stored as the stage
   ``keys`` in keyframe order (``frames/keys/000000.png`` is the first keyframe; each journal record names its
   ``frame``). With ``keyframe_folder`` set, the keyframes are read from ``<folder>/<frame:06d>.png`` instead
   (restyled outside, e.g. from ``--export-keyframes``) and nothing is rendered; they are used as given, or
   harmonized as renders are (below) with ``keyframe_folder_harmonize``. With ``keyframe_grid`` g > 1,
   g x g keyframes are tiled into one image and rendered once (one style), then split and corrected one by one.
   With ``keyframe_candidates`` N > 1, N candidates of each keyframe are rendered first (stage ``candidates``, side
   by side in ``<job>/candidates/``); the job stops until ``keyframe_picks`` names the ones to take.
2. **pass1**: every frame in order: a keyframe is its render, harmonized with the keyframe before it in its scene
   (:func:`lib_vid2vid.keyframes.harmonize_keyframe`; stage ``keys_harmonized``); any other frame is propagated from its two
   neighbouring keyframes of the same scene group (:func:`lib_vid2vid.keyframes.propagate_segment`); pixels no
   keyframe sees come from the source shifted by the style around them (``keyframe_fill = styled``,
   :func:`lib_vid2vid.keyframes.fill_styled`), the source (``source``) or from a light render of that frame, an
   inpaint of just those pixels (``render``, when they are at least ``keyframe_fill_min`` of the frame). With
   ``keyframe_mask_only`` the combined mask decides where a frame may differ from the source:
   ``out = S + M * (X - S)``, so unmasked pixels are the source's, exactly.

Both phases resume after their last finished frame; a propagated frame is a pure function of the source frames
and the keyframes on disk, so a resumed job writes the same bytes. The manifest's ``keyframes`` entry holds the
plan, and the counts of fill renders and unseen pixels.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import keyframes as kf
from .errors import Vid2VidError
from .imaging import to_uint8_255
from .loop import FrameContext, Progress, Run, Stage, infotext
from .params import Settings
from .renderer import RenderRequest

KEYS_STAGE = "keys"
HARMONIZED_STAGE = "keys_harmonized"
"""Each keyframe as the output shows it, by slot (:func:`lib_vid2vid.keyframes.harmonize_keyframe`; a scene group's
first keyframe is its render): kept so that a resumed job starts its first segment from the same keyframe."""
RESEED_STEP = 7919
"""A keyframe re-rendered with another seed (:func:`redo_keyframes`, the k-th time) takes ``seed + k *
RESEED_STEP`` (mod 2**32); candidates take multiples of 100003."""
_KEPT_STAGES = ("keys", "candidates", "pass1", "masks", "depth", HARMONIZED_STAGE)
"""Stages a re-rendered keyframe leaves alone (pass1 is cut where the keyframe is first used); every other stage
(the post stages) is made again from the new pass1."""


def plan_from_settings(settings: Settings, frames, total: int, weights=None, on_key=None) -> kf.KeyframePlan:
    """Choose the keyframes of ``frames`` (RGB uint8 at output size) with the job's settings (``on_key``: see
    :func:`lib_vid2vid.keyframes.choose_keyframes`)."""
    t = settings.temporal
    return kf.choose_keyframes(
        frames, total, mode=t.keyframe_mode, interval=t.keyframe_interval, min_gap=t.keyframe_min_gap,
        max_gap=t.keyframe_max_gap, threshold=t.keyframe_threshold, colour_weight=t.keyframe_colour_weight,
        motion_weight=t.keyframe_motion_weight, max_motion=t.keyframe_max_motion,
        cut_threshold=settings.export.scene_cut_threshold, cut_motion=settings.export.scene_cut_motion,
        cut_light=settings.export.scene_cut_light,
        add=kf.parse_frame_list(t.keyframe_add, "keyframe_add"),
        remove=kf.parse_frame_list(t.keyframe_remove, "keyframe_remove"), weights=weights, on_key=on_key)


def choice_weights(settings: Settings, plan: Any, input_path: str | Path) -> _ChoiceWeights | None:
    """Where a change counts for the adaptive choice (``weights`` of :func:`lib_vid2vid.keyframes.choose_keyframes`):
    the user / colour-key mask of each frame at the output size (``plan``: the job's JobPlan), combined as the
    passes combine them, or None without one. The job and everything that shows its plan before rendering (the
    CLI's dry run and export, the WebUI's strip) use this, so what is shown is what the job renders."""
    from . import masks
    from .params import parse_colour

    c = settings.correction
    if settings.temporal.keyframe_mode != "adaptive":
        return None
    key_colour = parse_colour(c.colour_key_target) if c.colour_key else None
    user = masks.user_mask_source(settings, input_path)
    if key_colour is None and user is None:
        return None
    return _ChoiceWeights(settings, (plan.width, plan.height), key_colour, user)


class _ChoiceWeights:
    """``weights(index, rgb)`` of the adaptive choice (see :func:`choice_weights`); ``close()`` its mask reader."""

    def __init__(self, settings: Settings, size: tuple[int, int], key_colour: Any, user: Any) -> None:
        self.c, self.size, self.key_colour, self.user = settings.correction, size, key_colour, user

    def __call__(self, index: int, rgb: np.ndarray) -> np.ndarray | None:
        from . import masks

        c = self.c
        key = masks.colour_key_mask(rgb, self.key_colour, c.colour_key_range) if self.key_colour is not None else None
        mask = self.user.get(index, self.size) if self.user is not None else None
        return masks.combine_masks(None, None, mask, key, how=c.mask_combine, colour_key_op=c.colour_key_op)

    def close(self) -> None:
        if self.user is not None:
            self.user.close()


def keyframe_path(folder: str | Path, index: int) -> Path:
    """Where a keyframe of source frame ``index`` is exported and read back: ``<folder>/<index:06d>.png``."""
    return Path(folder) / f"{index:06d}.png"


class _FillMaskStage(Stage):
    """Hands the unseen pixels of a propagated frame to the host as its inpaint mask (light render)."""

    name = "keyframe_fill"

    def prepare(self, ctx: FrameContext, request: RenderRequest) -> None:
        m = ctx.analysis.get("fill_mask")
        if m is not None:
            request.mask = m


class _KeysStopped(Exception):
    """The keyframe phase ended without the keyframe the propagation waits for (stopped or failed)."""


class _KeyGate:
    """How many keyframes (slots, in order) are final on disk, told by the keyframe phase to the propagation that
    runs beside it: :meth:`wait` blocks until a slot is there, or returns False once the phase has ended without
    it (stopped, failed) or the run is aborted."""

    def __init__(self, total: int) -> None:
        self._cond = threading.Condition()
        self.total = total
        self.done = 0
        self.finished = False
        """Every keyframe is on disk, or the keyframe phase has returned (stopped): nothing more will come."""
        self.aborted = False
        """One side failed: the other stops at its next frame."""

    def advance(self, done: int) -> None:
        with self._cond:
            self.done = max(self.done, done)
            self.finished = self.finished or self.done >= self.total
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self.aborted = True
            self._cond.notify_all()

    def wait(self, slot: int) -> bool:
        """True once keyframe ``slot`` is final; False if it will not come (the phase ended, or an abort)."""
        with self._cond:
            self._cond.wait_for(lambda: self.done > slot or self.finished or self.aborted)
            return self.done > slot and not self.aborted


def _join(ended: threading.Event, gate: _KeyGate) -> None:
    """Wait until the propagation's thread has ``ended``. A Ctrl-C meanwhile (the CLI's second: stop at once)
    aborts it and waits on: it stops at its next frame, and only then may the job close its outputs (the
    propagation writes frames and feeds the streaming encoder) and the process end (a thread left inside OpenCV
    or FFmpeg when the interpreter shuts down takes the process down with "terminate called without an active
    exception"). The interrupt is raised again once it has ended. (An event, not ``Thread.join``: a join cut
    short by Ctrl-C may report the thread ended while it runs on, CPython gh-90882.)"""
    interrupted: BaseException | None = None
    while not ended.is_set():
        try:
            ended.wait()
        except KeyboardInterrupt as exc:
            gate.abort()
            interrupted = exc
    if interrupted is not None:
        raise interrupted


PACE_HINT_SHARE = 0.25
PACE_HINT_MIN_S = 10.0
""":meth:`KeyframeRun._pace_hint`: the propagation's time after the last keyframe render that makes the job say the
propagation set its pace (a share of the phase's wall time, and seconds)."""


class KeyframeRun(Run):
    """A Run of the keyframe strategy (module docstring). Loopback passes are not supported (one pass)."""

    overlap = True
    """Propagate beside the keyframe renders when nothing in the propagation needs the renderer or the stages the
    renders use (:meth:`_overlaps`); False: one phase after the other (benchmarks compare the two)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.kplan: kf.KeyframePlan | None = None
        t = self.settings.temporal
        self.fill = t.keyframe_fill
        self.fill_min = t.keyframe_fill_min
        self.mask_only = t.keyframe_mask_only
        self.folder = t.keyframe_folder.strip()
        self.folder_harmonize = t.keyframe_folder_harmonize
        self.grid = t.keyframe_grid
        self.candidates = t.keyframe_candidates
        self.stop_message: str | None = None
        self.ps = kf.propagation_for(t.keyframe_flow)
        self._mask_stages = [st for st in self.stages if st.name in ("depth", "masks")]

    # ---- the plan ----

    def keyframe_plan(self) -> kf.KeyframePlan:
        """The job's keyframe plan: from the manifest, or chosen now (and stored) on the first run."""
        if self.kplan is not None:
            return self.kplan
        stored = self.job.manifest.get("keyframes")
        if stored and stored.get("plan"):
            self.kplan = kf.KeyframePlan.from_dict(stored["plan"])
            if "propagation" in stored:  # the rules the job started with, whatever today's defaults are
                self.ps = kf.propagation_from_stored(stored["propagation"])
            else:  # a job from before the rules were stored: today's, from now on
                stored["propagation"] = dataclasses.asdict(self.ps)
            return self.kplan
        scan = self._scan_source("choosing keyframes")
        weights = choice_weights(self.settings, self.plan, self.input_path)
        try:
            self.kplan = plan_from_settings(self.settings, (rgb for _, rgb in scan), self.plan.total, weights=weights)
        finally:
            scan.close()
            if weights is not None:
                weights.close()
        self.job.manifest["keyframes"] = {"plan": self.kplan.to_dict(), "fill_renders": [], "unseen": {},
                                          "propagation": dataclasses.asdict(self.ps)}
        self.job.log(self.kplan.describe())
        self.job.save()
        if self.notify is not None:  # a default job renders only these: say so before the first render
            n, total = len(self.kplan.frames), self.kplan.total
            self.notify(f"keyframes: {n} of {total} frames ({n / max(1, total):.0%}) are rendered; the others are "
                        f"carried along the source's motion (keyframe_mode off renders every frame)")
        return self.kplan

    def _request(self, ctx: FrameContext) -> RenderRequest:
        """The frame's request; a keyframe re-rendered with another seed (manifest ``keyframes.reseed``: {frame:
        k}) gets ``seed + k * RESEED_STEP``."""
        req = super()._request(ctx)
        k = int(((self.job.manifest.get("keyframes") or {}).get("reseed") or {}).get(str(ctx.index), 0))
        if k and self.keyframe_plan().slot(ctx.index) is not None:
            req.seed = (int(req.seed) + k * RESEED_STEP) % 2**32
        return req

    def _redo_keys(self, plan: kf.KeyframePlan, slots: list[int]) -> bool:
        """Render again the keyframes of ``slots`` (manifest ``keyframes.redo``, set by :func:`redo_keyframes`),
        each with its new seed, over its render in ``keys``; True if stopped (the rest stays to do)."""
        job = self.job
        info = job.manifest["keyframes"]
        for n, slot in enumerate(sorted(slots)):
            index = plan.frames[slot]
            window: dict[int, np.ndarray] = {}
            frames = self._video_frames(max(0, index - self.before))
            try:
                for i, rgb in frames:
                    window[i] = rgb
                    if i >= min(index + self.after, self.plan.total - 1):
                        break
            finally:
                frames.close()
            ctx = self._context(index, window[index], window[index], window)
            for stage in self.stages:
                stage.analyse(ctx)
            out, record = self._render_frame(ctx)
            record["frame"] = index
            text = record.pop("_infotext", None)
            job.write_frame(KEYS_STAGE, slot, out, record, overwrite=True, text={"parameters": text} if text else None)
            info["redo"] = [x for x in info.get("redo", []) if x != slot]
            job.log(f"keyframes: frame {index} rendered again with seed {record.get('seed')}")
            job.save()
            self.progress(Progress("keyframes", n + 1, len(slots), None, out))
            if n + 1 < len(slots) and self.should_stop():
                return True
        return False

    def read_output(self, loop: int, index: int) -> np.ndarray:
        """A finished output frame: a keyframe's render from the keys stage (pass1 may not have it yet)."""
        slot = self.keyframe_plan().slot(index)
        if slot is not None and self.job.frames_done(KEYS_STAGE) > slot:
            return self.job.read_frame(KEYS_STAGE, slot)
        return super().read_output(loop, index)

    # ---- the pass ----

    def _run_pass(self, loop: int) -> bool:
        if loop:
            raise Vid2VidError("The keyframe strategy renders one pass: set loopback_passes to 1")
        plan = self.keyframe_plan()
        if self._overlaps():
            return self._keys_beside_propagation(plan)
        if self._render_keys(plan):
            return True
        return self._propagate(plan)

    def _overlaps(self) -> bool:
        """Whether the propagation may run beside the keyframe renders: only when it needs neither the renderer
        (``keyframe_fill = render``), nor a depth stage (its model and its cache serve the keyframes' renders;
        the mask stage is made anew for the propagation, :meth:`_own_mask_stages`), nor every keyframe first
        (candidates wait for picks); keyframes read from a folder take no time to overlap."""
        return (self.overlap and self.candidates <= 1 and not self.folder and self.fill != "render"
                and all(st.name == "masks" for st in self._mask_stages))

    def _own_mask_stages(self) -> list[Stage]:
        """A mask stage of the propagation's own, begun (its user-mask reader keeps its place in the mask video,
        and the keyframes' stage reads other frames meanwhile); the same masks, frame for frame."""
        own = [type(st)(self.settings) for st in self._mask_stages]
        for st in own:
            st.announce = False  # the run's own mask stage has said what there is to say
            st.begin(self)
        return own

    def _keys_beside_propagation(self, plan: kf.KeyframePlan) -> bool:
        """Both phases at once: the keyframes render here (the renderer's thread), while a worker thread propagates
        each segment as soon as its two keyframes are on disk. The renders of a GPU host leave the CPU idle, so
        the propagation, CPU work that needs only the source and the two keyframes, costs the job no time but that
        of the segments after the last render. The frames are the same bytes as one phase after the other (a
        propagated frame is a pure function of the sources and the keyframes). The propagation reports its
        progress once the keyframes are done. True if stopped; an error on either side stops the other."""
        gate = _KeyGate(len(plan.frames))
        user_stop = self.should_stop
        self.should_stop = lambda: user_stop() or gate.aborted
        outcome: dict[str, Any] = {}
        own = self._own_mask_stages()

        ended = threading.Event()

        def propagate() -> None:
            try:
                outcome["stopped"] = self._propagate(plan, gate, own)
            except BaseException as exc:  # handed to the renderer's thread, raised there
                outcome["error"] = exc
                gate.abort()
            finally:
                try:
                    for st in own:
                        st.end(self)
                finally:
                    ended.set()

        rendering = self.job.frames_done(KEYS_STAGE) < len(plan.frames)
        if rendering:
            self.job.log("keyframes: the frames between them are propagated while they render")
        worker = threading.Thread(target=propagate, name="vid2vid-propagate", daemon=True)
        t0 = time.perf_counter()
        worker.start()
        try:
            keys_stopped = self._render_keys(plan, gate)
            t_keys = time.perf_counter()
        except BaseException:
            gate.abort()
            raise
        finally:
            gate.finish()
            _join(ended, gate)
            worker.join()
            self.should_stop = user_stop
        if "error" in outcome:
            raise outcome["error"]
        stopped = keys_stopped or bool(outcome.get("stopped"))
        if rendering and not stopped:
            self._pace_hint(t_keys - t0, time.perf_counter() - t_keys)
        return stopped

    def _pace_hint(self, keys_s: float, after_s: float) -> None:
        """A job-log line and a result note when the propagation, not the renders, set the job's pace: it went on
        for ``after_s`` seconds after the last keyframe render (``keys_s`` seconds of renders beside it), at least
        :data:`PACE_HINT_SHARE` of the two and :data:`PACE_HINT_MIN_S`; with full-size flows it names the fast ones."""
        if after_s < PACE_HINT_MIN_S or after_s < PACE_HINT_SHARE * (keys_s + after_s):
            return
        note = (f"keyframes: the propagation set this job's pace (it went on {after_s:.0f} s after the last "
                f"keyframe render, of {keys_s + after_s:.0f} s)")
        if self.ps.flow_scale >= 1.0:
            note += ("; keyframe_flow fast carries the frames along half-size flows, 2.8-2.9x faster and "
                     "somewhat less steady (docs/CONSISTENCY.md, 'Fast propagation')")
        self.job.log(note)
        self.notices.append(note)

    def _context(self, index: int, frame: np.ndarray, video_frame: np.ndarray,
                 window: dict[int, np.ndarray]) -> FrameContext:
        neigh = {k - index: (window[k], window[k]) for k in range(index - self.before, index + self.after + 1)
                 if k in window and k != index}
        neigh[0] = (frame, video_frame)
        return FrameContext(index=index, loop=0, total=self.plan.total, fps=self.plan.fps, frame=frame,
                            video=video_frame, neighbours=neigh)

    def _slide_window(self, window: dict[int, np.ndarray], frames: Iterator[tuple[int, np.ndarray]],
                      index: int) -> None:
        """Move the source window (source index -> RGB uint8) to keyframe ``index``: read ``frames`` up to
        ``index + after`` (or the video's end), drop what is before ``index - before``."""
        upto = min(index + self.after, self.plan.total - 1)
        while not window or max(window) < upto:
            try:
                i, rgb = next(frames)
            except StopIteration:
                break
            window[i] = rgb
        if index not in window:
            raise Vid2VidError(f"The video ended before frame {index}: start a new job")
        for k in [k for k in window if k < index - self.before]:
            del window[k]

    def _render_keys(self, plan: kf.KeyframePlan, gate: _KeyGate | None = None) -> bool:
        """Phase 1: render (or read) the keyframes not yet done; True if stopped. ``gate``: told each keyframe
        that is final (the ones kept from before once any redo is done, then each as it is written)."""
        job = self.job
        n = len(plan.frames)
        job.set_stage_total(KEYS_STAGE, n)
        start = job.frames_done(KEYS_STAGE)
        job.truncate_stage(KEYS_STAGE, start)
        redo = [slot for slot in (job.manifest.get("keyframes") or {}).get("redo") or [] if slot < start]
        if redo and self._redo_keys(plan, redo):
            return True
        if gate is not None:
            gate.advance(start)
        if start >= n:
            return False
        if self.candidates > 1:
            return self._render_candidates(plan, start)
        if start:
            job.log(f"keyframes: resuming at keyframe {start} of {n}")
        size = self.grid * self.grid
        batch0 = start - start % size  # a grid is rendered whole; a resumed one again, writing what is missing
        first = max(0, plan.frames[batch0] - self.before)
        window: dict[int, np.ndarray] = {}
        frames = self._video_frames(first)
        parallel = size == 1 and not self.folder and self._keys_in_parallel(n - start)
        pending: collections.deque[tuple[int, FrameContext, RenderRequest, Future]] = collections.deque()

        def write(slot: int, ctx: FrameContext, out: np.ndarray, record: dict[str, Any]) -> None:
            record["frame"] = ctx.index
            text = record.pop("_infotext", None)
            job.write_frame(KEYS_STAGE, slot, out, record, text={"parameters": text} if text else None)
            if gate is not None:
                gate.advance(slot + 1)
            self.progress(Progress("keyframes", slot + 1, n, None, out))

        def collect(keep: int) -> bool:
            """Finish and write the keyframes in flight, oldest first, until ``keep`` are left; False if the user
            asked to stop while they rendered."""
            while len(pending) > keep:
                if not self._wait_unless_stopped(pending[0][3]):
                    return False
                slot, ctx, req, future = pending.popleft()
                images = future.result()
                self._host_notices()
                if not images:
                    raise Vid2VidError(f"The renderer returned no image for keyframe {ctx.index}")
                write(slot, ctx, *self._finish(ctx, req, images, infotext(req)))
            return True

        def stop_now() -> bool:
            """Interrupt the keyframes in flight; keep those that had finished, in order up to the first that had
            not."""
            self._interrupt_renderer()
            while pending and not pending[0][3].cancelled() and pending[0][3].exception() is None:
                collect(len(pending) - 1)
            pending.clear()
            return True

        try:
            for b in range(batch0, n, size):
                ctxs = []
                for slot in range(b, min(b + size, n)):
                    index = plan.frames[slot]
                    self._slide_window(window, frames, index)
                    ctx = self._context(index, window[index], window[index], window)
                    if not self.folder:
                        for stage in self.stages:
                            stage.analyse(ctx)
                    ctxs.append(ctx)
                if parallel:  # keyframes are independent renders: any backend; written in order here
                    req = self._request(ctxs[0])
                    pending.append((b, ctxs[0], req, self.renderer.submit(req)))  # type: ignore[attr-defined]
                    if not collect(2 * max(1, getattr(self.renderer, "parallel", 1))) or (
                            b + 1 < n and self.should_stop()):
                        return stop_now()
                    continue
                if self.folder:
                    made = [(self._outside_keyframe(c.index), {"from": str(keyframe_path(self.folder, c.index))})
                            for c in ctxs]
                elif size == 1:
                    made = [self._render_frame(ctxs[0])]
                else:
                    made = self._render_grid(ctxs)
                for slot, ctx, (out, record) in zip(range(b, b + size), ctxs, made):
                    if slot >= start:
                        write(slot, ctx, out, record)
                if b + size < n and self.should_stop():
                    return True
            if not collect(0):
                return stop_now()
        finally:
            close = getattr(frames, "close", None)
            if close:
                close()
        return False

    def _keys_in_parallel(self, count: int) -> bool:
        """True (and said in the job log and to ``notify``) if the renderer has several backends: the keyframes
        then render in parallel, since none reads another's output."""
        n = int(getattr(self.renderer, "parallel", 1) or 1)
        if n <= 1 or not callable(getattr(self.renderer, "submit", None)):
            return False
        line = (f"keyframes: {count} keyframes render in parallel on {n} backends (independent renders); the "
                f"propagation to the other frames runs here, in order")
        self.job.log(line)
        if self.notify is not None:
            self.notify(line)
        return True

    def _stopped(self, how: str = "Interrupted") -> Any:
        result = super()._stopped(how)
        if self.stop_message:
            result.message = self.stop_message
        return result

    def _render_candidates(self, plan: kf.KeyframePlan, start: int) -> bool:
        """Phase 1 with ``keyframe_candidates`` N > 1: render N candidates of each keyframe (stage ``candidates``,
        keyframe slot * N + candidate; candidate c with seed + c * 100003), save each keyframe's side by side as
        ``<job>/candidates/<frame:06d>.png``; then, once ``keyframe_picks`` is given, take each keyframe's pick into
        ``keys`` (recorded in the manifest's ``keyframes.picks``; a keyframe already taken keeps it). True if
        stopped, also when the picks are still to be made."""
        from .params import parse_picks
        from .workspace import atomic_write_bytes, encode_png

        job = self.job
        n, count = len(plan.frames), self.candidates
        stage = "candidates"
        job.set_stage_total(stage, n * count)
        done = job.frames_done(stage)
        job.truncate_stage(stage, done)
        sheets = job.root / "candidates"
        if done < n * count:
            first_slot = done // count
            window: dict[int, np.ndarray] = {}
            frames = self._video_frames(max(0, plan.frames[first_slot] - self.before))
            try:
                for slot in range(first_slot, n):
                    index = plan.frames[slot]
                    self._slide_window(window, frames, index)
                    outs = []
                    for c in range(count):
                        if slot * count + c < done:
                            outs.append(job.read_frame(stage, slot * count + c))
                            continue
                        ctx = self._context(index, window[index], window[index], window)
                        for st in self.stages:
                            st.analyse(ctx)
                        req = self._request(ctx)
                        req.seed = (req.seed + c * 100003) % 2**32
                        images = self.renderer.render(req)
                        self._host_notices()
                        if not images:
                            raise Vid2VidError(f"The renderer returned no image for keyframe {index}")
                        text = getattr(self.renderer, "last_infotext", "") or infotext(req)
                        out, record = self._finish(ctx, req, images, text)
                        record.update(frame=index, candidate=c)
                        text = record.pop("_infotext", None)
                        job.write_frame(stage, slot * count + c, out, record,
                                        text={"parameters": text} if text else None)
                        outs.append(out)
                        self.progress(Progress("candidates", slot * count + c + 1, n * count, None, out))
                    sheets.mkdir(exist_ok=True)
                    atomic_write_bytes(keyframe_path(sheets, index), encode_png(np.concatenate(outs, axis=1)))
                    if slot + 1 < n and self.should_stop():
                        return True
            finally:
                close = getattr(frames, "close", None)
                if close:
                    close()
        picks_text = self.settings.job.keyframe_picks.strip()
        if not picks_text:
            self.stop_message = (f"{count} candidates of each of the {n} keyframes are in {sheets} (side by side, "
                                 f"the first is 0): pick them with keyframe_picks, e.g. '{plan.frames[0]}:1' "
                                 f"(others take 0), and run the same job again")
            job.log(self.stop_message)
            return True
        picks = parse_picks(picks_text, count)
        unknown = sorted(set(picks) - set(plan.frames))
        if unknown:
            raise Vid2VidError(f"keyframe_picks: frame {unknown[0]} is not a keyframe (they are "
                               f"{', '.join(map(str, plan.frames))})")
        recorded = job.manifest.setdefault("keyframes", {}).setdefault("picks", {})
        for slot in range(start, n):
            index = plan.frames[slot]
            c = picks.get(index, 0)
            recorded[str(index)] = c
            record = dict(job.manifest["frames"][stage][slot * count + c])
            job.write_frame(KEYS_STAGE, slot, job.read_frame(stage, slot * count + c), record)
        job.save()
        return False

    def _render_grid(self, ctxs: list[FrameContext]) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """Up to grid x grid keyframes in one render: each keyframe's request (all stages prepared) tiled row by
        row into one image of grid x (width, height) pixels (empty cells repeat the last keyframe), rendered with
        the first keyframe's seed, prompt and settings, split again; each tile then corrected as its own frame."""
        from .loop import fit_size, infotext
        from .params import MAX_SIDE

        g = self.grid
        w, h = self.plan.width, self.plan.height
        if g * w > MAX_SIDE or g * h > MAX_SIDE:
            raise Vid2VidError(f"keyframe_grid {g}: {g} x {w}x{h} frames make a {g * w}x{g * h} image, above the "
                               f"{MAX_SIDE} pixels a side the hosts sample in one piece (and your host may allow "
                               f"less); use a smaller grid or frame size")
        reqs = [self._request(c) for c in ctxs]
        cells = reqs + [reqs[-1]] * (g * g - len(reqs))

        def tile(images: list[np.ndarray]) -> np.ndarray:
            return np.concatenate([np.concatenate(images[r * g:(r + 1) * g], axis=1) for r in range(g)], axis=0)

        masks = None
        if any(r.mask is not None for r in cells):
            masks = tile([r.mask if r.mask is not None else np.ones((h, w), np.float32) for r in cells])
        control = tile([r.control_image for r in cells]) if all(r.control_image is not None for r in cells) else None
        big = dataclasses.replace(reqs[0], init=tile([r.init for r in cells]), mask=masks, control_image=control)
        images = self.renderer.render(big)
        self._host_notices()
        if not images:
            raise Vid2VidError(f"The renderer returned no image for the keyframe grid from frame {ctxs[0].index}")
        text = getattr(self.renderer, "last_infotext", "") or infotext(big)
        images = [fit_size(img, g * w, g * h) for img in images]
        out = []
        for k, (ctx, req) in enumerate(zip(ctxs, reqs)):
            r, c = divmod(k, g)
            tiles = [np.ascontiguousarray(img[r * h:(r + 1) * h, c * w:(c + 1) * w]) for img in images]
            frame, record = self._finish(ctx, req, tiles, text)
            record["grid"] = [ctxs[0].index, k]
            out.append((frame, record))
        return out

    def _outside_keyframe(self, index: int) -> np.ndarray:
        from .loop import fit_size
        from .workspace import read_png

        path = keyframe_path(self.folder, index)
        if not path.is_file():
            raise Vid2VidError(f"keyframe {index}: {path} is missing: put a restyled PNG of every exported keyframe "
                               f"in keyframe_folder (same names), or clear keyframe_folder to render them")
        try:
            img = read_png(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to replace
            raise Vid2VidError(f"keyframe {index}: {path} cannot be read as an image ({exc}): save it as PNG") from None
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        h, w = img.shape[:2]
        if (w, h) != (self.plan.width, self.plan.height) and not getattr(self, "_told_size", False):
            self._told_size = True  # once a job: a restyler that upscales does it to every keyframe
            self.job.log(f"keyframe {index}: {path.name} is {w}x{h}, the job's frames {self.plan.width}x"
                         f"{self.plan.height}: resized (and so are the other keyframes of another size)", warning=True)
        return fit_size(np.ascontiguousarray(img[..., :3]), self.plan.width, self.plan.height)

    def _propagate(self, plan: kf.KeyframePlan, gate: _KeyGate | None = None,
                   mask_stages: list[Stage] | None = None) -> bool:
        """Phase 2: every frame of pass1 from the keyframes; True if stopped. ``gate``: the keyframe phase running
        beside it (:meth:`_keys_beside_propagation`), which says when each keyframe is on disk; ``mask_stages``:
        the mask stages to use (default: the run's)."""
        mask_stages = self._mask_stages if mask_stages is None else mask_stages
        job = self.job
        stage = self.stage_name(0)
        total = self.plan.total
        job.set_stage_total(stage, total)
        start = job.frames_done(stage)
        job.truncate_stage(stage, start)
        if start >= total:
            return False
        if start:
            job.log(f"{stage}: resuming at frame {start}")
        segments = [s for s in plan.segments() if s.last >= start]
        frames = self._video_frames(max(0, segments[0].a - self.before))
        buffer: dict[int, np.ndarray] = {}
        keys: dict[int, np.ndarray] = {}
        # keyframes from a folder are the user's, as given, unless they asked for them harmonized
        harmonize = self.ps.harmonize > 0 and (not self.folder or self.folder_harmonize)
        harmonized_done = 0  # HARMONIZED_STAGE's frames done, counted here rather than looked up on disk each time
        if harmonize:  # believe the harmonized keyframes up to the first segment's start; the rest is made again
            harmonized_done = min(job.frames_done(HARMONIZED_STAGE), plan.slot(segments[0].a) + 1)
            job.truncate_stage(HARMONIZED_STAGE, harmonized_done)
        with job.editing():
            info = job.manifest.setdefault("keyframes", {})
            info.setdefault("fill_renders", [])
            info.setdefault("unseen", {})

        def source(upto: int) -> None:
            while not buffer or max(buffer) < upto:
                try:
                    i, rgb = next(frames)
                except StopIteration:
                    raise Vid2VidError(f"The video ended before frame {upto}: start a new job") from None
                buffer[i] = rgb

        def key(index: int) -> np.ndarray:
            """Keyframe ``index`` as the segments use it: harmonized (in memory, or from HARMONIZED_STAGE when a
            resumed job starts from it), else its render."""
            if index not in keys:
                slot = plan.slot(index)
                if gate is not None and not gate.wait(slot):
                    raise _KeysStopped
                if harmonize and index != plan.group_of(index)[0] and slot < harmonized_done:
                    keys[index] = job.read_frame(HARMONIZED_STAGE, slot)
                else:
                    keys[index] = job.read_frame(KEYS_STAGE, slot)
            return keys[index]

        def harmonized(index: int, img: np.ndarray) -> None:
            nonlocal harmonized_done
            keys[index] = img
            job.write_frame(HARMONIZED_STAGE, plan.slot(index), img, {"frame": index}, overwrite=True)
            harmonized_done = plan.slot(index) + 1

        prev_out = job.read_frame(stage, start - 1) if start else None
        prev_flows: dict[int, np.ndarray] = {}
        measure = ThreadPoolExecutor(1, thread_name_prefix="vid2vid-measure")
        measuring: Future | None = None
        # the next segment's flows (its sources alone) are computed beside this segment's frames: on 2 cores the
        # flows of one pair leave part of the CPU idle, and they are most of a propagated frame's work
        ahead = ThreadPoolExecutor(1, thread_name_prefix="vid2vid-flows-ahead")
        next_flows: Future | None = None

        def seg_end(seg: kf.Segment) -> int:
            return seg.b if seg.b is not None else seg.last

        try:
            for i, seg in enumerate(segments):
                end = seg_end(seg)
                source(min(end + self.after, total - 1))  # the blend's neighbours stop at the video's end
                for k in [k for k in buffer if k < seg.a - self.before]:
                    del buffer[k]
                for k in [k for k in keys if k < seg.a]:
                    del keys[k]
                pre = next_flows.result() if next_flows is not None else None
                next_flows = None
                following = segments[i + 1] if i + 1 < len(segments) else None
                if following is not None and following.last > following.a:
                    source(min(seg_end(following) + self.after, total - 1))
                    next_flows = ahead.submit(kf.segment_flows, [buffer[k] for k in range(following.a,
                                                                                           seg_end(following) + 1)],
                                              self.ps)
                made: Iterator = iter(())
                seg_flows: dict[int, np.ndarray] = {}
                offsets: list[np.ndarray] | None = None  # the keyframes' mean colour less their sources' (guard)
                if seg.last > seg.a:
                    # keyframe b is read once the flows are done: beside the renders, it may be rendering still
                    made = kf.propagate_segment([buffer[k] for k in range(seg.a, end + 1)], key(seg.a),
                                                functools.partial(key, seg.b) if seg.b is not None else None,
                                                self.ps, seg_flows,
                                                functools.partial(harmonized, seg.b) if harmonize and seg.b is not None
                                                else None, pre=pre)
                if harmonize and harmonized_done == plan.slot(seg.a):  # a group's first keyframe: its render
                    harmonized(seg.a, key(seg.a))
                for t in range(seg.a, seg.last + 1):
                    if t == seg.a:
                        frame, record = key(t), {"keyframe": t}
                    else:
                        j, made_frame, unseen = next(made)
                        assert j == t - seg.a
                        if t < start:
                            continue
                        frame, record = self._fill(t, made_frame, unseen, buffer, seg)
                        if self.ps.colour_guard > 0:  # keyframe b is in (and harmonized) once a frame is made
                            if offsets is None:
                                offsets = [kf.mean_rgb(key(k)) - kf.mean_rgb(buffer[k])
                                           for k in (seg.a, seg.b if seg.b is not None else seg.a)]
                            tau = (t - seg.a) / (seg.b - seg.a) if seg.b is not None else 0.0
                            frame = kf.guard_colour(frame, buffer[t], *offsets, tau, self.ps.colour_guard)
                    if t < start:
                        continue
                    frame = self._finish_propagated(t, frame, buffer, mask_stages)
                    back = seg_flows.pop(t - seg.a, None) if t > seg.a else prev_flows.pop(t, None)
                    prev_out = self._frame_stats(t, frame, buffer, prev_out, record, plan, back)
                    job.write_frame(stage, t, frame, record, text=self._frame_text(t, seg, plan))
                    if t == plan.group_of(t)[1]:
                        self._check_group(plan.group_of(t))
                    if self.sink is not None:
                        self.sink(t, frame)
                    if self.meter is not None:  # the job report, beside the next frames (it keeps its own state)
                        if measuring is not None:
                            measuring.result()
                        measuring = measure.submit(self.meter.push, t, buffer[t], frame)
                    if gate is None or gate.finished:  # beside the renders, their progress is the one shown
                        self.progress(Progress(stage, t + 1, total, None, frame))
                    if t + 1 < total and self.should_stop():
                        job.save()
                        return True
                # the next keyframe's flow (end -> end - 1) is all its statistics need of this segment's
                prev_flows = {end: seg_flows[end - seg.a]} if end - seg.a in seg_flows else {}
        except _KeysStopped:
            job.save()
            return True
        finally:
            ahead.shutdown(wait=True, cancel_futures=True)
            measure.shutdown(wait=True)
            close = getattr(frames, "close", None)
            if close:
                close()
        job.save()
        return False

    def _frame_text(self, t: int, seg: kf.Segment, plan: kf.KeyframePlan) -> dict[str, str] | None:
        """PNG text of output frame ``t`` (what the WebUI's PNG Info shows): a keyframe keeps its render's
        (prompt, seed, sampler, ...); any other frame names the keyframes it was carried from (1-based, as the
        render's own "frame 4/12")."""
        from .workspace import read_png_text

        total = plan.total
        if t == seg.a:
            return read_png_text(self.job.frame_path(KEYS_STAGE, plan.slot(t))) or None
        if seg.b is None:
            keys = f"the keyframe at frame {seg.a + 1}/{total} (its settings: frames/keys)"
        else:
            keys = f"the keyframes at frames {seg.a + 1}/{total} and {seg.b + 1}/{total} (their settings: frames/keys)"
        return {"vid2vid": f"frame {t + 1}/{total}: carried along the source's motion from {keys}"}

    def _frame_stats(self, t: int, frame: np.ndarray, buffer: dict[int, np.ndarray], prev_out: np.ndarray | None,
                     record: dict[str, Any], plan: kf.KeyframePlan, back: np.ndarray | None) -> np.ndarray:
        """Problem-detection statistics of frame ``t`` into its record, on luma Y (BT.601, 0..1), with ``f`` the
        source's flow t -> t-1 (``back``, or computed)::

            change        = mean |Y(out_t) - warp(Y(out_t-1), f)|     what the output does beyond the motion
            source_change = mean |Y(src_t) - warp(Y(src_t-1), f)|     the same of the source
            offset        = mean Y(out_t) - mean Y(src_t)

        (change and source_change are 0 at a group's first frame.) Returns the frame (the next previous output)."""
        from . import flow

        def luma(img: np.ndarray) -> np.ndarray:
            return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)

        y_out, y_src = luma(frame), luma(buffer[t])
        record["offset"] = round(float(y_out.mean() - y_src.mean()), 6)
        if plan.group_of(t)[0] == t or prev_out is None:
            record["change"] = record["source_change"] = 0.0
            return frame
        if back is None:
            back = flow.compute_flow(buffer[t], buffer[t - 1], quality=self.ps.flow_quality)
        record["change"] = round(float(np.abs(y_out - flow.warp(luma(prev_out), back)).mean()), 6)
        record["source_change"] = round(float(np.abs(y_src - flow.warp(luma(buffer[t - 1]), back)).mean()), 6)
        return frame

    def _check_group(self, group: tuple[int, int]) -> None:
        """Compare a finished scene group's frame-to-frame change and colour with its source's (records of pass1):

            change ratio = (sum change + 0.005 n) / (sum source_change + 0.005 n)     n = frames of the group
            colour drift = max offset - min offset over the group                     (luma 0..1)
            unseen share = unseen pixels / all pixels of the group

        A group is flagged when the change ratio is above ``keyframe_problem_ratio`` or the colour drift above 0.05
        (manifest ``keyframes.groups``, a job-log warning and a result note: add keyframes to that group with
        ``keyframe_add``, or pick another seed)."""
        limit = self.settings.temporal.keyframe_problem_ratio
        first, last = group
        with self.job.editing():
            records = self.job.manifest["frames"].get(self.stage_name(0), [])[first:last + 1]
        if len(records) < last - first + 1:
            return
        n = len(records)
        change = sum(r.get("change", 0.0) for r in records)
        source = sum(r.get("source_change", 0.0) for r in records)
        offsets = [r.get("offset", 0.0) for r in records]
        ratio = (change + 0.005 * n) / (source + 0.005 * n)  # 0.005: about 1.3 levels, the noise floor
        drift = max(offsets) - min(offsets)
        plan = self.keyframe_plan()
        size = self.plan.width * self.plan.height
        unseen = sum(int(r.get("unseen", 0)) for r in records) / (size * n)
        why = []
        if limit > 0 and ratio > limit:
            why.append(f"changes {ratio:.1f}x as much as the source")
        if limit > 0 and drift > 0.05:
            why.append(f"colour drifts by {drift:.3f}")
        entry = {"first": first, "last": last, "keyframes": [f for f in plan.frames if first <= f <= last],
                 "change_ratio": round(ratio, 4), "colour_drift": round(drift, 4), "unseen_share": round(unseen, 4),
                 "flagged": bool(why), "why": "; ".join(why)}
        with self.job.editing():
            groups = self.job.manifest["keyframes"].setdefault("groups", [])
            groups[:] = [g for g in groups if g.get("first") != first] + [entry]
            groups.sort(key=lambda g: g["first"])
        if why:
            add = kf.suggested_additions([entry])
            ways = [f"add keyframes {', '.join(map(str, add))} (keyframe_add, a new job)"] if add else []
            if redo_refusal(self.settings) is None:
                ways.append(f"render keyframes {', '.join(map(str, entry['keyframes']))} again with another seed "
                            f"(Jobs tab; API redo_keyframes with resume_job; CLI --resume JOB --redo-keyframes)")
            note = (f"keyframes: scene frames {first}-{last} {entry['why']}: "
                    + (" or ".join(ways) if ways else "add keyframes there (keyframe_add) or try another seed"))
            self.job.log(note, warning=True)
            if note not in self.notices:
                self.notices.append(note)

    def _fill(self, t: int, made_frame: np.ndarray, unseen: np.ndarray, buffer: dict[int, np.ndarray],
              seg: kf.Segment) -> tuple[np.ndarray, dict[str, Any]]:
        """A propagated frame with its unseen pixels filled (source, or a light render): (RGB uint8, record)."""
        src = buffer[t]
        count = int(unseen.sum())
        record: dict[str, Any] = {"from": [seg.a] + ([seg.b] if seg.b is not None else []), "unseen": count}
        filled = (kf.fill_styled if self.fill == "styled" else kf.fill_unseen)(made_frame, unseen, src)
        info = self.job.manifest["keyframes"]
        if count:
            with self.job.editing():
                info["unseen"][str(t)] = count
        if self.fill != "render" or count < self.fill_min * unseen.size:
            return filled, record
        hole = cv2.dilate(unseen.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
        ctx = self._context(t, filled, src, buffer)
        for stage in self.stages:
            stage.analyse(ctx)
        ctx.analysis["fill_mask"] = hole
        saved = self.stages
        self.stages = [*saved, _FillMaskStage()]
        try:
            rendered, rec = self._render_frame(ctx)
        finally:
            self.stages = saved
        rec.pop("_infotext", None)
        m = hole[..., None]
        out = to_uint8_255(filled.astype(np.float32) + m * (rendered.astype(np.float32) - filled.astype(np.float32)))
        if t not in info["fill_renders"]:
            info["fill_renders"].append(t)
        record.update(fill="render", seed=rec.get("seed"))
        return out, record

    def _finish_propagated(self, t: int, frame: np.ndarray, buffer: dict[int, np.ndarray],
                           mask_stages: list[Stage]) -> np.ndarray:
        """Masks of frame ``t`` (saved as frames/masks), and mask-only: ``out = S + M * (X - S)``."""
        if not mask_stages:
            return frame
        ctx = self._context(t, buffer[t], buffer[t], buffer)
        for st in mask_stages:
            st.analyse(ctx)
        mask = ctx.analysis.get("mask")
        if self.mask_only and self.ps.key_alone_selects and self._key_alone(ctx):
            mask = ctx.analysis["mask"] = ctx.analysis["colour_key_mask"]  # the keyed pixels, not all of them
        if self.mask_only and mask is not None:
            src = buffer[t].astype(np.float32)
            frame = to_uint8_255(src + mask[..., None] * (frame.astype(np.float32) - src))
        for st in mask_stages:
            st.done(ctx, frame)
        return frame


    def _key_alone(self, ctx: FrameContext) -> bool:
        """The colour key is the only mask of this frame and is added to the others (``colour_key_op`` union):
        added to no mask, it would select every pixel (:func:`lib_vid2vid.masks.combine_masks`)."""
        a = ctx.analysis
        return (a.get("colour_key_mask") is not None and self.settings.correction.colour_key_op == "union"
                and all(a.get(k) is None for k in ("motion_mask", "depth_mask", "user_mask")))


def redo_refusal(s: Settings) -> str | None:
    """Why a keyframe of a job with these settings cannot be rendered again with another seed, or None."""
    t = s.temporal
    return ("it renders candidates: pick another candidate instead" if t.keyframe_candidates > 1 else
            "its keyframes are rendered together in a grid" if t.keyframe_grid > 1 else
            "its keyframes come from a folder" if t.keyframe_folder.strip() else
            "its noise is warped along the motion, not taken from the seed" if s.sampling.noise_mode != "seed"
            else None)


def redo_keyframes(job_root: str | Path, frames: list[int]) -> str:
    """Mark keyframes of a job (finished or stopped) to be rendered again with another seed when it resumes
    (problem detection flagged their scene): each frame's seed offset k grows by one (manifest
    ``keyframes.reseed``, see :data:`RESEED_STEP`), its slot goes into ``keyframes.redo``, pass1 is cut at the
    first frame made from it (the frame after the keyframe before it in its scene) and the post stages are made
    again; nothing before that frame changes (with harmonized keyframes the later keyframes of its scene take its
    detail, so the rest of the scene is made again too). The job's state becomes "interrupted": resume it to render.
    Not with candidates (pick another one), a keyframe grid (its keyframes share one render), keyframes from a
    folder, or warped noise (the keyframe's noise does not come from its seed). Returns a line for the UI."""
    from .errors import SettingsError
    from .workspace import Job

    job = Job.open_locked(job_root)  # JobRunning while a run holds it
    try:
        info = job.manifest.get("keyframes") or {}
        if not info.get("plan"):
            raise Vid2VidError(f"Job {job.root.name} has no keyframe plan (not a keyframe job, or not started)")
        plan = kf.KeyframePlan.from_dict(info["plan"])
        s = job.stored_settings()
        why = redo_refusal(s)
        if why:
            raise Vid2VidError(f"Cannot render a keyframe of {job.root.name} again with another seed: {why}")
        if not frames:
            raise SettingsError("keyframes", "give the keyframes to render again (frame numbers)")
        done = job.frames_done(KEYS_STAGE)
        if done < int(((job.manifest.get("stages") or {}).get(KEYS_STAGE) or {}).get("done", 0)):
            raise Vid2VidError(f"The frames of {job.root.name} were deleted (keep_frames off): start a new job")
        for f in frames:
            slot = plan.slot(f)
            if slot is None:
                raise SettingsError("keyframes", f"frame {f} is not a keyframe of {job.root.name} (they are "
                                                 f"{', '.join(map(str, plan.frames))})")
            if slot >= done:
                raise Vid2VidError(f"Keyframe {f} of {job.root.name} is not rendered yet: resume the job first")
        reseed = info.setdefault("reseed", {})
        for f in frames:
            reseed[str(f)] = int(reseed.get(str(f), 0)) + 1
        info["redo"] = sorted(set(info.get("redo") or []) | {plan.slot(f) for f in frames})
        cut = []
        for f in frames:
            first, _last = plan.group_of(f)
            before = [k for k in plan.frames if first <= k < f]
            cut.append(before[-1] + 1 if before else f)
        keep = min(min(cut), job.frames_done("pass1"))
        job.truncate_stage("pass1", keep)
        for stage in list(job.manifest.get("stages") or {}):
            if stage not in _KEPT_STAGES:
                job.truncate_stage(stage, 0)
        job.set_status("interrupted")
        job.manifest["keyframes"] = info
        seeds = ", ".join(f"{f} (+{reseed[str(f)]})" for f in sorted(set(frames)))
        job.log(f"keyframes {seeds} to be rendered again with another seed; pass1 kept up to frame {keep}")
        job.save()
    finally:
        job.close()
    return (f"Keyframes {', '.join(map(str, sorted(set(frames))))} of {job.root.name} will be rendered again with "
            f"another seed; frames from {keep} on are made again.")


def export_keyframes(settings: Settings, folder: str | Path, progress: Any = None
                     ) -> tuple[kf.KeyframePlan, list[Path]]:
    """Choose the keyframes of ``settings``' video and write their *source* frames as ``<folder>/<frame:06d>.png``
    (RGB, output size), for restyling outside; read back with ``keyframe_folder``. One decode of the video: each
    keyframe is written as soon as it is chosen. Returns the plan and the files."""
    from .workspace import atomic_write_bytes, encode_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def write(index: int, rgb: np.ndarray) -> None:
        path = keyframe_path(folder, index)
        atomic_write_bytes(path, encode_png(rgb))
        paths.append(path)

    kplan = choose_for_settings(settings, progress=progress, on_keyframe=write)
    return kplan, paths


def choose_for_settings(settings: Settings, progress: Any = None, on_keyframe: Any = None) -> kf.KeyframePlan:
    """The keyframe plan a job with these settings would use (the CLI's --dry-run shows it), decoding the video
    once, a frame at a time. ``progress(done, total)`` after each frame; ``on_keyframe(index, rgb)`` with each
    keyframe's source frame (RGB uint8 at output size) as soon as it is chosen."""
    from . import video
    from .loop import make_plan

    info = video.probe(settings.video.input)
    plan = make_plan(settings, info)
    v = settings.video
    stream = video.iter_frames(settings.video.input, fps=plan.fps if v.fps else None, start=plan.start, end=plan.end,
                               size=(plan.width, plan.height), resize_mode=v.resize_mode, info=info)
    current: dict[int, np.ndarray] = {}

    def frames():
        for i, rgb in stream:
            current.clear()
            current[i] = rgb  # the chooser decides on frame i before it reads the next one
            yield rgb
            if progress is not None:
                progress(i + 1, plan.total)

    def chosen(index: int) -> None:
        if on_keyframe is not None:
            on_keyframe(index, current[index])

    weights = choice_weights(settings, plan, settings.video.input)
    try:
        return plan_from_settings(settings, frames(), plan.total, weights=weights, on_key=chosen)
    finally:
        stream.close()
        if weights is not None:
            weights.close()


def keyframe_thumbnails(settings: Settings, height: int = 72, max_keys: int = 48
                        ) -> tuple[kf.KeyframePlan, list[tuple[int, np.ndarray]]]:
    """The keyframe plan of ``settings``' video (exactly the one a job would choose: the frames are decoded at the
    output size, streamed, one at a time) and ``(frame, thumbnail)`` of its first ``max_keys`` keyframes: RGB uint8,
    ``height`` pixels high. Only thumbnails are kept, never the video."""
    thumbs: list[tuple[int, np.ndarray]] = []

    def keep(index: int, rgb: np.ndarray) -> None:
        if len(thumbs) < max_keys:
            width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
            thumbs.append((index, cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)))

    kplan = choose_for_settings(settings, on_keyframe=keep)
    return kplan, thumbs


def keyframe_strip(settings: Settings, height: int = 72, max_keys: int = 48) -> tuple[kf.KeyframePlan, np.ndarray]:
    """The keyframe plan of ``settings``' video and a strip of its keyframes' source frames for a UI to show
    before rendering: RGB uint8, thumbnails ``height`` pixels high side by side (at most ``max_keys``, the first
    ones), each labelled with its frame number and reason ("c" marks a scene cut)."""
    kplan, thumbs = keyframe_thumbnails(settings, height, max_keys)
    strip = []
    for i, thumb in thumbs:
        t = thumb.copy()
        label = f"{i}{'c' if kplan.reasons.get(i) == 'cut' else ''}"
        cv2.putText(t, label, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(t, label, (3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        strip.append(t)
    return kplan, np.concatenate(strip, axis=1)
