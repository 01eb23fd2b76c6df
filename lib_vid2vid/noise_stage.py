"""The ``noise_mode = warped`` stage: each frame's latent noise, warped along the source's flow (lib_vid2vid/noise.py).

Per pass p the chain starts at frame 0 with fresh noise and advances one step per frame with the flow between
source frames i-1 and i (:func:`noise.fine_flows`); ``analyse(i)`` (the analysis thread, in frame order) leaves
``ctx.analysis["noise"]``, float32 (batch_size x batch_count, channels, h/8, w/8), and ``prepare`` puts it on the
request with the strength (``noise_strength``), where the renderer mixes it with its own seeded noise.

Resume: the chain is a pure function of the job seed, the pass and the source frames, so frame k's noise can be
recomputed from the source alone. To keep that short, the state after every :data:`CHECKPOINT_EVERY`-th frame
is written to ``noise/pass<p>/<frame>.bin`` in the job folder (the two latest are kept; 1.5 MB each at
512x512); a run that starts at frame k loads the latest checkpoint at or before k and recomputes the frames
after it from the source (decode, flow and one step each: at most CHECKPOINT_EVERY - 1 of them). A missing or
damaged checkpoint only means a longer recomputation, never other noise. The folder is removed when the job's
last pass is complete.

Measured (``python helpers/bench_noise.py``, 512x512, CPU time): a checkpoint is 1.57 MB and ~1 ms to write,
every 16th frame; recomputing one frame of the chain (decode + two DIS flows + step) ~60 ms, so a resume spends
at most ~1 s here. Writing the state every frame instead would write 1.57 MB per frame; recomputing from frame 0
would make a resume at frame k cost k x ~60 ms (10 minutes of video at 24 fps: ~15 minutes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import noise
from .errors import Vid2VidError
from .loop import FrameContext, Run, Stage
from .noise import NoiseState, WarpedNoise
from .params import Settings
from .renderer import RenderRequest
from .workspace import atomic_write_bytes

CHECKPOINT_EVERY = 16
"""Frames between two state checkpoints (a resume recomputes at most this many - 1 frames)."""
FLOW_QUALITY = "medium"
"""DIS preset of the noise's own flow (at the fine grid's size, half the image's)."""


def renderer_channels(renderer: object) -> int:
    """Latent channels the renderer samples (its ``latent_channels``; 4 when it does not say)."""
    value = getattr(renderer, "latent_channels", None)
    if callable(value):
        value = value()
    return int(value) if value else 4


class NoiseStage(Stage):
    """Warped latent noise per frame (module docstring)."""

    name = "noise"
    before = 1

    def __init__(self, settings: Settings):
        s = settings.sampling
        self.strength = float(s.noise_strength)
        self.batch = int(s.batch_size) * int(s.batch_count)
        self.run: Run | None = None
        self.field: WarpedNoise | None = None
        self.state: NoiseState | None = None
        self.loop = -1

    def begin(self, run: Run) -> None:
        self.run = run
        self.channels = renderer_channels(run.renderer)
        self.state, self.loop = None, -1

    def _dir(self, loop: int) -> Path:
        return self.run.job.root / "noise" / f"pass{loop + 1}"

    def _field(self, loop: int) -> WarpedNoise:
        if self.field is None or self.loop != loop:
            p = self.run.plan
            self.field = WarpedNoise(self.run.seed, p.width, p.height, channels=self.channels, batch=self.batch,
                                     loop=loop)
            self.loop, self.state = loop, None
        return self.field

    def analyse(self, ctx: FrameContext) -> None:
        field = self._field(ctx.loop)
        state = self.state
        if ctx.index == 0:
            state = field.first(0)
        elif state is not None and state.frame == ctx.index - 1 and ctx.prev_video is not None:
            state = field.step(state, *self._flows(field, ctx))
        else:
            state = self._rebuild(field, ctx)
        self.state = state
        if ctx.index and ctx.index % CHECKPOINT_EVERY == 0:
            self._checkpoint(ctx.loop, state)
        ctx.analysis["noise"] = field.latent(state)

    @staticmethod
    def _flows(field: WarpedNoise, ctx: FrameContext):
        """The pair of fine-grid flows of frames i-1 -> i: the init stage's full-size DIS pair when it computed
        one (flow_warp with occlusion: the same computation, so the same bytes), else computed here."""
        fw, bw = ctx.analysis.get("flow_prev_to_cur"), ctx.analysis.get("flow_cur_to_prev")
        if fw is not None and bw is not None and FLOW_QUALITY == "medium" and noise.FLOW_SCALE == 1.0:
            return noise.to_grid(fw, field.grid), noise.to_grid(bw, field.grid)
        return noise.fine_flows(ctx.prev_video, ctx.video, field.grid, FLOW_QUALITY)

    def prepare(self, ctx: FrameContext, req: RenderRequest) -> None:
        req.noise = ctx.analysis["noise"]
        req.noise_strength = self.strength

    # ---- checkpoints and resume

    def _checkpoint(self, loop: int, state: NoiseState) -> None:
        folder = self._dir(loop)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / f"{state.frame:06d}.bin", state.to_bytes())
        for old in sorted(folder.glob("[0-9]*.bin"))[:-2]:
            old.unlink(missing_ok=True)

    def _load(self, loop: int, upto: int, field: WarpedNoise) -> NoiseState | None:
        """The latest readable checkpoint of pass ``loop`` at or before frame ``upto`` (None: none)."""
        folder = self._dir(loop)
        names = sorted(folder.glob("[0-9]*.bin"), reverse=True) if folder.is_dir() else []
        n = field.rows * field.cols
        for path in names:
            try:
                frame = int(path.stem)
                if frame > upto:
                    continue
                state = NoiseState.from_bytes(path.read_bytes())
            except (OSError, ValueError):
                continue
            if state.frame == frame and state.values.shape == (n, field.depth):
                return state
        return None

    def _rebuild(self, field: WarpedNoise, ctx: FrameContext) -> NoiseState:
        """The state of frame ``ctx.index`` from the latest state at or before it (this run's own, or a checkpoint,
        or frame 0) and the source frames after it; checkpoints on the way. Frames analysed out of order (the
        keyframe strategy renders every k-th frame first) come here and cost one step per frame in between."""
        state = self._load(ctx.loop, ctx.index, field)
        own = self.state
        if own is not None and own.frame <= ctx.index and (state is None or own.frame > state.frame):
            state = own
        if state is None:
            state = field.first(0)
        if state.frame == ctx.index:
            return state
        prev = None
        frames = self.run._video_frames(state.frame)
        try:
            for idx, rgb in frames:
                if idx > state.frame:
                    state = field.advance(state, prev, rgb, FLOW_QUALITY)
                    if idx % CHECKPOINT_EVERY == 0 and idx < ctx.index:
                        self._checkpoint(ctx.loop, state)
                prev = rgb
                if idx >= ctx.index:
                    break
        finally:
            frames.close()
        if state.frame != ctx.index:
            raise Vid2VidError(f"warped noise: the video ended before frame {ctx.index}; start a new job")
        return state

    def end(self, run: Run) -> None:
        last = run.stage_name(run.passes - 1)
        if run.job.frames_done(last) >= run.plan.total:
            shutil.rmtree(run.job.root / "noise", ignore_errors=True)

