"""Keyframes: the choice, propagation along the source's flow, scene groups, resume, mask-only, outside keyframes."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lib_vid2vid import keyframes as kf
from lib_vid2vid import video
from lib_vid2vid.errors import SettingsError, Vid2VidError
from lib_vid2vid.keyrun import KeyframeRun
from lib_vid2vid.params import STRATEGIES, Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job
from tests.clips import texture
from tests.doubles import StopAfter

H, W = 96, 128


def _restyle(img: np.ndarray) -> np.ndarray:
    """A 'render' unlike its source: channels swapped and inverted, so copying the source cannot pass."""
    return np.ascontiguousarray(255 - img[..., ::-1])


def _affine(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)


def _motion(kind: str, step: int) -> np.ndarray:
    """2x3 affine of a known motion after ``step`` frames, about the frame centre."""
    c = (W / 2, H / 2)
    if kind == "rotation":
        return cv2.getRotationMatrix2D(c, 1.5 * step, 1.0)
    if kind == "zoom":
        return cv2.getRotationMatrix2D(c, 0.0, 1.0 + 0.025 * step)
    raise ValueError(kind)


# ---------------------------------------------------------------- propagation


@pytest.mark.parametrize("scale", [1.0, 0.5], ids=["full-size flows", "half-size flows"])
@pytest.mark.parametrize("kind", ["translation", "rotation", "zoom"])
def test_propagation_follows_known_motion_away_from_borders(kind, scale):
    base = texture(H + 40, W + 40, seed=3)
    if kind == "translation":
        frames = [texture(H, W, dx=2.5 * i, dy=-1.25 * i, seed=3) for i in range(4)]
        key = _restyle(frames[0])
        # the moved render: the render of the unmoved texture, shifted the same way
        expected = [_restyle(f) for f in frames]
    else:
        src0 = base[20:20 + H, 20:20 + W]
        frames = [_affine(src0, _motion(kind, i)) for i in range(4)]
        key = _restyle(frames[0])
        expected = [_affine(key, _motion(kind, i)) for i in range(4)]
    flows: dict[int, np.ndarray] = {}
    ps = kf.PropagationSettings(flow_scale=scale)
    got = {j: (out, unseen) for j, out, unseen in kf.propagate_segment(frames, key, None, ps, flows)}
    assert sorted(got) == [1, 2, 3] and sorted(flows) == [1, 2, 3]
    assert all(f.shape == (H, W, 2) for f in flows.values()), "the flows handed out are at the frame's size"
    if kind == "translation":  # frame j -> j-1 in pixels of the frame: (-2.5, +1.25)
        inner = flows[2][12:-12, 12:-12].reshape(-1, 2)
        assert np.allclose(np.median(inner, axis=0), (-2.5, 1.25), atol=0.25)
    m = 12  # away from the borders (content entering the frame is unseen there)
    for j, (out, unseen) in got.items():
        err = np.abs(out[m:-m, m:-m] - expected[j][m:-m, m:-m].astype(np.float32)).mean()
        copied = np.abs(out[m:-m, m:-m] - frames[j][m:-m, m:-m].astype(np.float32)).mean()
        assert err < 4.0, f"{kind}, frame {j}: mean error {err:.2f} levels against the moved render"
        assert copied > 20, "the propagated frame must be the render's, not the source's"
        assert unseen[m:-m, m:-m].mean() < 0.02


def test_two_keyframes_blend_without_ghosts_and_reproduce_both_ends():
    frames = [texture(H, W, dx=2.0 * i, seed=4) for i in range(5)]
    ka, kb = _restyle(frames[0]), _restyle(frames[4])
    # a keyframe b whose picture does not match a's at all: where the two warps disagree
    kb_other = _restyle(texture(H, W, dx=8.0, seed=11))
    m = 12
    for j, out, _ in kf.propagate_segment(frames, ka, kb_other):
        a = _restyle(frames[j]).astype(np.float32)[m:-m, m:-m]
        b = _restyle(texture(H, W, dx=2.0 * j, seed=11)).astype(np.float32)[m:-m, m:-m]  # b moved to frame j
        o = out[m:-m, m:-m]
        differ = np.abs(a - b).mean(axis=2) > 40
        da, db = np.abs(o - a).mean(axis=2), np.abs(o - b).mean(axis=2)
        assert differ.mean() > 0.2
        assert np.median(np.minimum(da, db)[differ]) < 6.0, f"frame {j}: where the keyframes disagree, blends"
        from_a = (da < db)[differ].mean()
        if j != 2:  # the nearer keyframe supplies them
            assert from_a > 0.9 if j < 2 else from_a < 0.1, f"frame {j}: {from_a:.2f} of them from keyframe a"
    # agreeing keyframes: a plain temporal blend reproduces the moved render everywhere inside
    for j, out, _ in kf.propagate_segment(frames, ka, kb):
        err = np.abs(out[m:-m, m:-m] - _restyle(frames[j])[m:-m, m:-m].astype(np.float32)).mean()
        assert err < 3.0


def test_keyframe_b_given_as_a_function_is_asked_for_once_the_flows_are_done_and_gives_the_same_frames():
    frames = [texture(H, W, dx=2.0 * i, seed=4) for i in range(6)]
    ka, kb = _restyle(frames[0]), _restyle(frames[-1])
    flows: dict[int, np.ndarray] = {}
    asked: list[int] = []

    def later() -> np.ndarray:
        asked.append(len(flows))
        return kb

    lazy = list(kf.propagate_segment(frames, ka, later, None, flows))
    assert asked == [5], "keyframe b is needed only after all five flows of the segment (and only once)"
    eager = list(kf.propagate_segment(frames, ka, kb))
    assert [j for j, _, _ in lazy] == [1, 2, 3, 4]
    for (_, a, ua), (_, b, ub) in zip(lazy, eager):
        assert np.array_equal(a, b) and np.array_equal(ua, ub)


def test_a_segments_flows_are_let_go_as_soon_as_no_frame_left_needs_them():
    """Memory (a job holds one segment's chains beside the next segment's flows): once the chains are made, the
    flows made beforehand (``pre``) are no longer held, and each step of a chain is let go with its frame."""
    import gc
    import weakref

    frames = [texture(H, W, dx=2.0 * i, seed=4) for i in range(7)]  # n = 6: frames 1 .. 5 are made
    ka, kb = _restyle(frames[0]), _restyle(frames[-1])
    pre = kf.segment_flows(frames, kf.PropagationSettings())
    n = len(frames) - 1
    back_refs = [weakref.ref(f) for f in pre.back]
    fwd_refs = [weakref.ref(f) for f in pre.fwd]
    made = kf.propagate_segment(frames, ka, kb, None, None, None, pre=pre)
    del pre
    j, first, _ = next(made)
    gc.collect()
    assert j == 1
    # chain b begins with the last forward flow (it carries b to frame n-1, the last frame made); the other forward
    # flows are composed into chain b and gone, and so is every backward flow after chain a's first step (frame
    # 1's, just made)
    assert [r() is not None for r in fwd_refs] == [False] * (n - 1) + [True]
    assert not any(r() is not None for r in back_refs[1:])
    rest = list(made)
    gc.collect()
    assert [j for j, _, _ in rest] == [2, 3, 4, 5]
    assert all(r() is None for r in back_refs + fwd_refs), "after the last frame no flow of the segment is held"
    # and the frames are the same as those made with flows the propagation computes itself
    again = list(kf.propagate_segment(frames, ka, kb))
    assert np.array_equal(again[0][1], first)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(again[1:], rest))


def test_occlusion_marks_revealed_area_and_entering_border():
    bg = texture(H, W, seed=7)
    obj = texture(32, 32, seed=9)
    obj = np.ascontiguousarray(255 - obj)
    frames = []
    for i in range(3):
        f = bg.copy()
        x = 30 + 6 * i
        f[40:72, x:x + 32] = obj
        frames.append(f)
    key = _restyle(frames[0])
    out = {j: unseen for j, _, unseen in kf.propagate_segment(frames, key, None)}
    revealed = np.zeros((H, W), bool)
    revealed[42:70, 31:36] = True  # behind the object at frame 0, background at frame 1 (object moved 6 px)
    assert out[1][revealed].mean() > 0.6, "the area the object uncovers is not marked unseen"
    far = np.zeros((H, W), bool)
    far[:24, :] = True
    far[:, 100:] = True
    assert out[1][far].mean() < 0.02, "static background far from the object must be seen"
    # a pan: columns entering at the right border are unseen
    pan = [texture(H, W, dx=-5.0 * i, seed=2) for i in range(3)]
    unseen = {j: u for j, _, u in kf.propagate_segment(pan, _restyle(pan[0]), None)}
    assert unseen[2][:, -8:].mean() > 0.8
    assert unseen[2][:, : W - 16].mean() < 0.02



def _still_flat_clip(n: int, seed: int = 5) -> list[np.ndarray]:
    """A still camera over a nearly flat ramp with two textured squares; fresh sensor noise (sigma 1.5 levels) in
    every frame, so the flow is unconstrained on the ramp."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.repeat((100 + 20 * x / W + 10 * y / H)[..., None], 3, axis=2)
    tex = texture(H, W, seed=8).astype(np.float32)
    base[8:32, 8:32] = tex[8:32, 8:32]
    base[64:88, 96:120] = tex[64:88, 96:120]
    return [np.clip(np.rint(base + rng.normal(0, 1.5, base.shape)), 0, 255).astype(np.uint8) for _ in range(n)]


@pytest.mark.parametrize("two_keys", [False, True])
def test_still_camera_keeps_the_keyframe_texture_in_place_on_flat_areas(two_keys):
    frames = _still_flat_clip(5)
    key = _restyle(texture(H, W, seed=21))  # a render with texture everywhere, also where the source is flat
    flat = np.ones((H, W), bool)
    flat[:40, :40] = flat[56:, 88:] = False  # the textured squares and a margin
    flat[:6] = flat[-6:] = False
    flat[:, :6] = flat[:, -6:] = False
    for evidence, limit in ((True, 1.0), (False, None)):
        ps = kf.PropagationSettings(flow_evidence=evidence)
        errs = [float(np.abs(out.astype(np.float32) - key)[flat].mean())
                for _, out, _ in kf.propagate_segment(frames, key, key if two_keys else None, ps)]
        if limit is not None:
            assert max(errs) < limit, f"the texture moved on the flat area: mean error {errs} levels"
        else:  # the raw flow drifts there: what the evidence check is for
            assert max(errs) > 3.0, f"raw DIS kept the texture in place ({errs}): this test no longer shows the drift"


def test_flat_area_inside_a_pan_moves_with_its_textured_surroundings():
    def frame(i: int) -> tuple[np.ndarray, np.ndarray]:
        t = texture(H, W, dx=2.0 * i, seed=3)
        y, x = np.mgrid[0:H, 0:W]
        hole = (np.abs(x - 2.0 * i - 60) < 20) & (np.abs(y - 48) < 20)  # a flat square carried by the pan
        t[hole] = 128
        return t, hole

    frames = [frame(i)[0] for i in range(4)]
    key = texture(H, W, seed=21)
    out = {j: o for j, o, _ in kf.propagate_segment(frames, key, None)}
    for j in (1, 3):
        expected = texture(H, W, dx=2.0 * j, seed=21).astype(np.float32)
        hole = frame(j)[1]
        assert np.abs(out[j] - expected)[hole].mean() < 1.5, f"frame {j}: the flat square did not follow the pan"
        assert np.abs(out[j] - key.astype(np.float32))[hole].mean() > 5.0


# ---------------------------------------------------------------- choice


def _shots() -> list[np.ndarray]:
    """30 frames: shot A (0-9) panning; a cut at 10 to shot B, still for 10-19, then a fast pan 20-29."""
    frames = [texture(H, W, dx=2.0 * i, seed=1) for i in range(10)]
    dark = lambda img: (img // 3).astype(np.uint8)  # noqa: E731 - another histogram: a cut
    frames += [dark(texture(H, W, seed=5)) for _ in range(10)]
    frames += [dark(texture(H, W, dx=9.0 * (i + 1), seed=5)) for i in range(10)]
    return frames


def test_interval_choice_with_a_cut_and_user_changes():
    frames = _shots()
    plan = kf.choose_keyframes(iter(frames), 30, mode="interval", interval=4)
    assert plan.groups == [(0, 9), (10, 29)]
    assert plan.frames == [0, 4, 8, 10, 14, 18, 22, 26]
    assert plan.reasons[0] == "start" and plan.reasons[10] == "cut" and plan.reasons[4] == "interval"
    plan = kf.choose_keyframes(iter(frames), 30, mode="interval", interval=4, add=[5, 29], remove=[4, 18])
    assert plan.frames == [0, 5, 8, 10, 14, 22, 26, 29] and plan.reasons[5] == "user"
    with pytest.raises(SettingsError, match="starts a scene"):
        kf.choose_keyframes(iter(frames), 30, mode="interval", remove=[10])
    with pytest.raises(SettingsError, match="outside the processed range"):
        kf.choose_keyframes(iter(frames), 30, mode="interval", add=[30])


def test_adaptive_choice_follows_change_against_the_last_keyframe():
    frames = _shots()
    plan = kf.choose_keyframes(iter(frames), 30, mode="adaptive", min_gap=2, max_gap=9, threshold=1.0,
                               colour_weight=10, motion_weight=5)
    assert plan.groups == [(0, 9), (10, 29)]
    still = [f for f in plan.frames if 10 <= f < 20]
    moving = [f for f in plan.frames if 20 <= f < 30]
    assert still == [10, 19], f"the still stretch needs only the cut and the max-gap keyframe, got {still}"
    assert len(moving) >= 3 and all(plan.reasons[f] == "adaptive" for f in moving)
    assert all(b - a >= 2 for a, b in zip(plan.frames, plan.frames[1:]) if plan.group_of(a) == plan.group_of(b))
    # scores are against the last keyframe: in the still stretch they stay near zero
    assert all(plan.scores[i] < 0.2 for i in range(12, 19))


def test_segments_never_cross_a_cut():
    plan = kf.choose_keyframes(iter(_shots()), 30, mode="interval", interval=4)
    segs = plan.segments()
    covered = [t for s in segs for t in range(s.a, s.last + 1)]
    assert covered == list(range(30))
    for s in segs:
        g = plan.group_of(s.a)
        assert g[0] <= s.last <= g[1] and (s.b is None or g[0] <= s.b <= g[1])
    assert [s for s in segs if s.a == 8][0] == kf.Segment(8, None, 9)


# ---------------------------------------------------------------- jobs


def _pan_clip(path: Path, n: int = 16, cut: int | None = 10, size=(96, 64)) -> Path:
    """A textured pan (3 px a frame), losslessly coded; from ``cut`` on another, darker shot."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(12))
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        s.options = {"crf": "0", "preset": "fast"}
        for i in range(n):
            img = texture(h, w, dx=3.0 * i, seed=1)
            if cut is not None and i >= cut:
                img = (texture(h, w, dx=-2.0 * i, seed=6) // 3).astype(np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def _settings(clip, out, **kw):
    values = dict(STRATEGIES["keyframes"], input=str(clip), output_dir=str(out), width=96, height=64, seed=7,
                  denoise=0.5, report=False, comparison_video=False)
    values.update(kw)
    return Settings().replace(**values)


def _frames(job_dir: Path, stage: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((job_dir / "frames" / stage).glob("*.png"))}


def test_job_renders_only_keyframes_and_never_propagates_across_a_cut(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4")
    r = ProxyRenderer()
    res = run_job(_settings(clip, tmp_path / "out"), r)
    assert res.status == "done" and res.frames_done == 16
    m = Job.open(res.job_dir).manifest
    plan = kf.KeyframePlan.from_dict(m["keyframes"]["plan"])
    assert plan.groups == [(0, 9), (10, 15)]
    assert plan.frames == [0, 4, 8, 10, 14]
    assert r.calls == 5, "only the keyframes are rendered"
    records = m["frames"]["pass1"]
    assert records[9]["from"] == [8], "frame 9 ends its scene: only keyframe 8 may supply it"
    assert records[5]["from"] == [4, 8] and records[11]["from"] == [10, 14]
    job = Job.open(res.job_dir)
    for slot, index in enumerate(plan.frames):  # a scene's first keyframe is its render, the others harmonized
        out, render = job.read_frame("pass1", index), job.read_frame("keys", slot)
        assert np.array_equal(out, job.read_frame("keys_harmonized", slot))
        if index in (0, 10):
            assert np.array_equal(out, render)
        else:  # the render's colours, the detail carried from the keyframe before
            assert not np.array_equal(out, render)
            assert np.abs(cv2.GaussianBlur(out.astype(np.float32), (0, 0), 8)
                          - cv2.GaussianBlur(render.astype(np.float32), (0, 0), 8)).mean() < 2.0
        assert m["frames"]["keys"][slot]["frame"] == index
    # frame 9 is made from shot A only: its brightness is shot A's, not the darker shot B's
    src = [f for _, f in video.iter_frames(clip, size=(96, 64))]
    out9 = job.read_frame("pass1", 9).astype(np.float32)
    assert abs(out9.mean() - src[9].mean()) < abs(out9.mean() - src[10].mean())


def test_fast_propagation_follows_the_pan_from_half_size_flows_and_resumes_with_the_same_bytes(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, size=(128, 96))
    accurate = run_job(_settings(clip, tmp_path / "a", width=128, height=96), ProxyRenderer())
    fast = run_job(_settings(clip, tmp_path / "b", width=128, height=96, keyframe_flow="fast"), ProxyRenderer())
    assert Job.open(fast.job_dir).manifest["keyframes"]["propagation"]["flow_scale"] == kf.FAST_FLOW_SCALE
    assert Job.open(accurate.job_dir).manifest["keyframes"]["propagation"]["flow_scale"] == 1.0
    ja, jf = Job.open(accurate.job_dir), Job.open(fast.job_dir)
    src = [f for _, f in video.iter_frames(clip, size=(128, 96))]
    m = 12
    # propagated frames: the same pan, carried along coarser flows. Measured: 0.05-0.07 of the distance to the
    # source with each keyframe its render, 0.08-0.25 with harmonized keyframes (keyframe 4 takes keyframe 0's detail
    # along each job's own flows, so the fast job's keyframe 4 differs from the accurate one's too)
    for t in (1, 2, 3, 5, 6, 7):
        a, f = ja.read_frame("pass1", t).astype(np.float32), jf.read_frame("pass1", t).astype(np.float32)
        near = np.abs(f - a)[m:-m, m:-m].mean()
        apart = np.abs(a - src[t])[m:-m, m:-m].mean()
        assert near < 0.35 * apart, f"frame {t}: {near:.1f} levels from the accurate frame ({apart:.1f} from the source)"
    assert _frames(fast.job_dir, "pass1") != _frames(accurate.job_dir, "pass1")
    s = _settings(clip, tmp_path / "c", width=128, height=96, keyframe_flow="fast")
    stop = StopAfter(6, stage="pass1")
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted"
    resumed = run_job(s, ProxyRenderer())
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    assert _frames(resumed.job_dir, "pass1") == _frames(fast.job_dir, "pass1")


@pytest.mark.parametrize("stop_stage,n", [("keyframes", 2), ("pass1", 4), ("pass1", 6), ("pass1", 8)])
def test_interrupted_then_resumed_gives_the_same_bytes(tmp_path, stop_stage, n):
    clip = _pan_clip(tmp_path / "pan.mp4")
    full = run_job(_settings(clip, tmp_path / "a"), ProxyRenderer())
    s = _settings(clip, tmp_path / "b")
    stop = StopAfter(n, stage=stop_stage)
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted"
    job = Job.open(part.job_dir)
    if stop_stage == "keyframes":
        assert job.frames_done("keys") == n
    else:  # pass1 reports its frames once the keyframes are done; it may have propagated more beside them
        assert n <= job.frames_done("pass1") < 16 and job.frames_done("keys") == 5
    r = ProxyRenderer()
    resumed = run_job(s, r)
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    assert r.calls == (5 - n if stop_stage == "keyframes" else 0)
    for stage in ("keys", "pass1"):
        assert _frames(resumed.job_dir, stage) == _frames(full.job_dir, stage), stage


def test_the_keyframe_choice_reports_its_progress_and_a_stop_during_it_loses_nothing(tmp_path):
    """The choice decodes the whole video before the first render (minutes on a long one): it is reported frame by
    frame as its own stage, and the user can stop it; the next run chooses again and renders the same frames."""
    clip = _pan_clip(tmp_path / "pan.mp4")
    full = run_job(_settings(clip, tmp_path / "a", keyframe_mode="adaptive"), ProxyRenderer())
    s = _settings(clip, tmp_path / "b", keyframe_mode="adaptive")
    reports: list[tuple[str, int, int]] = []
    stop = StopAfter(7, stage="choosing keyframes")

    def progress(p):
        reports.append((p.stage, p.done, p.total))
        stop.progress(p)

    r = ProxyRenderer()
    part = run_job(s, r, should_stop=stop, progress=progress)
    assert part.status == "interrupted" and r.calls == 0
    assert reports == [("choosing keyframes", i, 16) for i in range(1, 8)]
    job = Job.open(part.job_dir)
    assert "keyframes" not in job.manifest and job.frames_done("keys") == 0
    reports.clear()
    resumed = run_job(s, ProxyRenderer(), progress=progress)
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    stages = [stage for stage, _, _ in reports]
    first_render = stages.index("keyframes")
    assert reports[:first_render] == [("choosing keyframes", i, 16) for i in range(1, 17)]
    assert "choosing keyframes" not in stages[first_render:]
    for stage in ("keys", "pass1"):
        assert _frames(resumed.job_dir, stage) == _frames(full.job_dir, stage), stage
    # once chosen, the plan is the job's: a run stopped after a keyframe resumes without choosing again
    later = StopAfter(1, stage="keyframes")
    s = _settings(clip, tmp_path / "c", keyframe_mode="adaptive")
    assert run_job(s, ProxyRenderer(), should_stop=later, progress=later.progress).status == "interrupted"
    reports.clear()
    assert run_job(s, ProxyRenderer(), progress=progress).status == "done"
    assert reports and not [r for r in reports if r[0] == "choosing keyframes"]


class _WatchingRenderer(ProxyRenderer):
    """Counts, when it starts its ``at``-th render, the propagated frames already on disk under ``out`` (waiting up
    to ``wait_s`` seconds for ``want`` of them); renders from ``slow_from`` on take ``slow_s`` seconds."""

    def __init__(self, out: Path, at: int = 0, want: int = 0, wait_s: float = 0.0, slow_from: int = 0,
                 slow_s: float = 0.0):
        super().__init__()
        self.out, self.at, self.want, self.wait_s = out, at, want, wait_s
        self.slow_from, self.slow_s = slow_from, slow_s
        self.seen: int | None = None

    def _propagated(self) -> int:
        return len(list(self.out.glob("*/frames/pass1/*.png")))

    def render(self, req):
        import time

        if self.calls + 1 == self.at:
            end = time.monotonic() + self.wait_s
            while self._propagated() < self.want and time.monotonic() < end:
                time.sleep(0.02)
            self.seen = self._propagated()
        if self.slow_from and self.calls + 1 >= self.slow_from:
            time.sleep(self.slow_s)
        return super().render(req)


def test_propagation_runs_beside_the_keyframe_renders_and_writes_the_same_bytes(tmp_path, monkeypatch):
    clip = _pan_clip(tmp_path / "pan.mp4")  # keyframes 0, 4, 8, 10, 14: five renders
    beside = _WatchingRenderer(tmp_path / "a", at=5, want=4, wait_s=60.0)
    overlapped = run_job(_settings(clip, tmp_path / "a"), beside)
    assert overlapped.status == "done" and beside.calls == 5
    assert beside.seen is not None and beside.seen >= 4, (
        "frames 0-3 (keyframes 0 and 4) must be propagated while the last keyframe is still to render")
    monkeypatch.setattr(KeyframeRun, "overlap", False)
    after = _WatchingRenderer(tmp_path / "b", at=5)
    sequential = run_job(_settings(clip, tmp_path / "b"), after)
    assert after.seen == 0, "one phase after the other: nothing is propagated before the last render"
    for stage in ("keys", "pass1"):
        assert _frames(overlapped.job_dir, stage) == _frames(sequential.job_dir, stage), stage
    a, b = Job.open(overlapped.job_dir).manifest, Job.open(sequential.job_dir).manifest
    assert a["keyframes"]["unseen"] == b["keyframes"]["unseen"] and a["keyframes"]["groups"] == b["keyframes"]["groups"]
    assert a["frames"]["pass1"] == b["frames"]["pass1"]


def test_a_job_paced_by_its_propagation_says_so_and_names_the_fast_flows(tmp_path, monkeypatch):
    """Renders that cost nothing: the propagation goes on after the last keyframe and sets the job's pace; the job
    says so in its log and result notes, and with full-size flows names keyframe_flow fast (with fast flows it does
    not). Slow renders (2 s each): the propagation keeps up beside them, nothing is said (what is left after the
    last render, the last segment and the tail, takes about 30 ms at this size on free cores; renders this slow
    leave room for a machine loaded 20 times over: it failed once at 0.4 s under a pip install, two benchmarks
    and another test run)."""
    from lib_vid2vid import keyrun
    from lib_vid2vid.proxy import SleepRenderer

    monkeypatch.setattr(keyrun, "PACE_HINT_MIN_S", 0.0)  # the test's jobs are short; the share still decides
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, size=(128, 96))
    res = run_job(_settings(clip, tmp_path / "a", width=128, height=96), SleepRenderer(0))
    hint = [n for n in res.notices if "the propagation set this job's pace" in n]
    assert len(hint) == 1 and "keyframe_flow fast" in hint[0], res.notices
    assert hint[0] in (res.job_dir / "job.log").read_text()
    res = run_job(_settings(clip, tmp_path / "b", width=128, height=96, keyframe_flow="fast"), SleepRenderer(0))
    hint = [n for n in res.notices if "the propagation set this job's pace" in n]
    assert len(hint) == 1 and "keyframe_flow fast" not in hint[0], res.notices
    res = run_job(_settings(clip, tmp_path / "c", width=128, height=96), _WatchingRenderer(tmp_path, slow_from=1,
                                                                                            slow_s=2.0))
    assert res.status == "done"
    assert not [n for n in res.notices if "pace" in n], res.notices


def test_an_error_in_the_propagation_stops_the_keyframe_renders_and_is_raised(tmp_path, monkeypatch):
    clip = _pan_clip(tmp_path / "pan.mp4")

    def broken(*args, **kwargs):
        raise Vid2VidError("propagation broke")

    monkeypatch.setattr(kf, "propagate_segment", broken)
    r = _WatchingRenderer(tmp_path / "out", slow_from=3, slow_s=1.0)  # the first segment's keyframes come fast
    with pytest.raises(Vid2VidError, match="propagation broke"):
        run_job(_settings(clip, tmp_path / "out"), r)
    assert r.calls < 5, "the renders stop once the propagation has failed"
    job = Job.open(next((tmp_path / "out").iterdir()))
    assert job.status == "failed" and job.frames_done("keys") == r.calls


def test_a_job_resumed_after_an_update_changed_the_propagation_rules_keeps_its_own(tmp_path, monkeypatch):
    clip = _pan_clip(tmp_path / "pan.mp4")
    started_with = dataclasses.asdict(kf.PropagationSettings())
    full = run_job(_settings(clip, tmp_path / "a"), ProxyRenderer())
    s = _settings(clip, tmp_path / "b")
    stop = StopAfter(6, stage="pass1")
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted"
    assert Job.open(part.job_dir).manifest["keyframes"]["propagation"] == started_with
    # "the update": other default rules for every PropagationSettings() made from now on
    monkeypatch.setattr(kf, "PropagationSettings", functools.partial(
        kf.PropagationSettings, pick="nearer", seen_residual=0.0, flow_evidence=False, ghost_low=4.0, ghost_high=8.0))
    changed = run_job(_settings(clip, tmp_path / "c"), ProxyRenderer())
    assert _frames(changed.job_dir, "pass1") != _frames(full.job_dir, "pass1"), "the new rules must change frames"
    resumed = run_job(s, ProxyRenderer())
    assert resumed.job_dir == part.job_dir and resumed.status == "done"
    assert _frames(resumed.job_dir, "pass1") == _frames(full.job_dir, "pass1")
    assert Job.open(resumed.job_dir).manifest["keyframes"]["propagation"] == started_with


def test_mask_only_keeps_unmasked_pixels_byte_identical(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=10)
    mask = np.zeros((64, 96), np.uint8)
    mask[10:50, 20:70] = 255
    mask_path = tmp_path / "mask.png"
    cv2.imwrite(str(mask_path), mask)
    s = _settings(clip, tmp_path / "out", user_mask_kind="image", user_mask_path=str(mask_path),
                  keyframe_mask_only=True)
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    changed = 0
    for i, src in video.iter_frames(clip, size=(96, 64)):
        out = job.read_frame("pass1", i)
        outside = mask == 0
        assert np.array_equal(out[outside], src[outside]), f"frame {i}: an unmasked pixel changed"
        changed += int((out[~outside] != src[~outside]).any())
    assert changed == 10, "the masked region is restyled in every frame"


def test_mask_only_with_the_colour_key_alone_changes_the_keyed_pixels_only(tmp_path):
    """The colour key added (union) to no other mask selected every pixel, so mask-only changed the whole frame:
    the keyed pixels are the region that changes; the others are the source's, exactly."""
    from lib_vid2vid import masks

    frames = []
    for i in range(8):
        f = texture(64, 96, dx=2 * i, seed=2)
        f[12:44, 24 + i: 64 + i] = (0, 255, 0)  # a green screen moving right
        frames.append(f)
    clip = video.encode_frames(frames, tmp_path / "green.mp4", 12)
    s = _settings(clip, tmp_path / "out", colour_key=True, keyframe_mask_only=True)
    res = run_job(s, ProxyRenderer())
    job = Job.open(res.job_dir)
    assert job.manifest["keyframes"]["propagation"]["key_alone_selects"] is True
    for i, src in video.iter_frames(clip, size=(96, 64)):
        out = job.read_frame("pass1", i)
        keyed = masks.colour_key_mask(src, (0, 255, 0), s.correction.colour_key_range) > 0
        assert 500 < keyed.sum() < 0.5 * keyed.size
        assert np.array_equal(out[~keyed], src[~keyed]), f"frame {i}: a pixel off the key changed"
        assert (out[keyed] != src[keyed]).any(), f"frame {i}: the keyed pixels were not restyled"


def test_a_masked_job_propagates_beside_the_renders_with_the_masks_and_bytes_of_one_phase_after_the_other(
        tmp_path, monkeypatch):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=10)  # keyframes 0, 4, 8
    mask = np.zeros((64, 96), np.uint8)
    mask[10:50, 20:70] = 255
    mask_path = tmp_path / "mask.png"
    cv2.imwrite(str(mask_path), mask)

    def settings(out):
        return _settings(clip, out, user_mask_kind="image", user_mask_path=str(mask_path), motion_mask=True,
                         keyframe_mask_only=True)

    beside = _WatchingRenderer(tmp_path / "a", at=3, want=4, wait_s=60.0)
    overlapped = run_job(settings(tmp_path / "a"), beside)
    assert overlapped.status == "done" and beside.seen is not None and beside.seen >= 4
    assert "propagated while they render" in (overlapped.job_dir / "job.log").read_text()
    monkeypatch.setattr(KeyframeRun, "overlap", False)
    sequential = run_job(settings(tmp_path / "b"), ProxyRenderer())
    for stage in ("keys", "pass1", "masks"):
        a, b = _frames(overlapped.job_dir, stage), _frames(sequential.job_dir, stage)
        assert len(a) == (3 if stage == "keys" else 10) and a == b, stage


def test_mask_only_needs_a_mask():
    with pytest.raises(SettingsError, match="keyframe_mask_only"):
        Settings().replace(keyframe_mode="interval", keyframe_mask_only=True)


@pytest.mark.parametrize("values,field", [({"fdc_mode": "mean"}, "fdc_mode"), ({"init_mode": "flow_warp"}, "init_mode"),
                                          ({"loopback_passes": 2}, "loopback_passes")])
def test_settings_that_need_every_previous_output_are_refused(values, field):
    with pytest.raises(SettingsError, match=field):
        Settings().replace(keyframe_mode="interval", **values)


def test_keyframes_from_outside_are_propagated_without_rendering(tmp_path):
    from lib_vid2vid.keyrun import export_keyframes

    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=9)
    s = _settings(clip, tmp_path / "out")
    plan, paths = export_keyframes(s, tmp_path / "keys")
    assert plan.frames == [0, 4, 8] and [p.name for p in paths] == ["000000.png", "000004.png", "000008.png"]
    src = {i: f for i, f in video.iter_frames(clip, size=(96, 64))}
    from lib_vid2vid.workspace import read_png

    for p, i in zip(paths, plan.frames):
        assert np.array_equal(read_png(p), src[i])
        cv2.imwrite(str(p), cv2.cvtColor(_restyle(src[i]), cv2.COLOR_RGB2BGR))  # "restyled outside"
    r = ProxyRenderer()
    res = run_job(s.replace(keyframe_folder=str(tmp_path / "keys")), r)
    assert res.status == "done" and r.calls == 0
    job = Job.open(res.job_dir)
    for i in plan.frames:
        assert np.array_equal(job.read_frame("pass1", i), _restyle(src[i]))
    m = 12
    mid = job.read_frame("pass1", 2).astype(np.float32)[m:-m, m:-m]
    assert np.abs(mid - _restyle(src[2]).astype(np.float32)[m:-m, m:-m]).mean() < 6.0
    assert not [w for w in job.manifest.get("warnings", []) if "resized" in w]
    big = cv2.resize(cv2.imread(str(tmp_path / "keys" / "000004.png")), (192, 128))  # restyled and upscaled
    cv2.imwrite(str(tmp_path / "keys" / "000004.png"), big)
    res = run_job(s.replace(keyframe_folder=str(tmp_path / "keys"), new_job=True), ProxyRenderer(), new=True)
    said = [w for w in Job.open(res.job_dir).manifest.get("warnings", []) if "resized" in w]
    assert len(said) == 1 and "000004.png is 192x128, the job's frames 96x64" in said[0]
    (tmp_path / "keys" / "000004.png").unlink()
    with pytest.raises(Exception, match="000004.png is missing"):
        run_job(s.replace(keyframe_folder=str(tmp_path / "keys"), new_job=True), ProxyRenderer(), new=True)


def test_keyframes_from_outside_are_harmonized_only_when_asked(tmp_path):
    """``keyframe_folder_harmonize``: keyframes from a folder take the keyframe before them's fine detail as renders
    do. A folder holding a job's own renders, harmonized, makes that job's frames pixel for pixel; not harmonized, its
    keyframes are the files as given."""
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=9)
    s = _settings(clip, tmp_path / "out", seed_mode="increment")  # each keyframe its own detail
    rendered = Job.open(run_job(s, ProxyRenderer()).job_dir)
    plan = rendered.manifest["keyframes"]["plan"]["frames"]
    assert plan == [0, 4, 8]
    keys = tmp_path / "keys"
    keys.mkdir()
    for slot, index in enumerate(plan):
        (keys / f"{index:06d}.png").write_bytes((rendered.root / "frames" / "keys" / f"{slot:06d}.png").read_bytes())
    assert not np.array_equal(rendered.read_frame("pass1", 4), rendered.read_frame("keys", 1)), \
        "the rendered job's keyframe 4 is harmonized"

    def folder_job(name: str, harmonize: bool) -> Job:
        r = ProxyRenderer()
        res = run_job(s.replace(output_dir=str(tmp_path / name), keyframe_folder=str(keys),
                                keyframe_folder_harmonize=harmonize), r)
        assert res.status == "done" and r.calls == 0
        return Job.open(res.job_dir)

    def pixels(job: Job) -> list[bytes]:  # the PNGs' text differs: a keyframe from a folder has no render settings
        return [job.read_frame("pass1", t).tobytes() for t in range(9)]

    asked = folder_job("asked", True)
    assert pixels(asked) == pixels(rendered)
    given = folder_job("given", False)
    for slot, index in enumerate(plan):
        assert np.array_equal(given.read_frame("pass1", index), rendered.read_frame("keys", slot))
    assert pixels(given) != pixels(rendered)


def test_cli_propagates_keyframes_from_a_folder_without_a_webui(tmp_path, capsys):
    """Keyframes from a folder render nothing: the CLI runs the job without asking for a WebUI (no renderer flag
    given); a render fill, a renderer asked for or a job to resume whose settings render, still take one."""
    from lib_vid2vid import __main__ as cli
    from lib_vid2vid.keyrun import export_keyframes

    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=9)
    s = _settings(clip, tmp_path / "out")
    _plan, paths = export_keyframes(s, tmp_path / "keys")
    for p in paths:
        cv2.imwrite(str(p), cv2.cvtColor(_restyle(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)),
                                         cv2.COLOR_RGB2BGR))
    argv = [str(clip), "--strategy", "keyframes", "--width", "96", "--height", "64", "--keyframe-folder",
            str(tmp_path / "keys"), "--output-dir", str(tmp_path / "out"), "--api-url", "http://127.0.0.1:9"]
    assert cli.main([*argv[:-2], "--quiet"]) == 0, capsys.readouterr().err
    (job,) = [Job.open(d) for d in (tmp_path / "out").iterdir() if d.is_dir() and (d / "manifest.json").is_file()]
    assert job.status == "done" and job.manifest.get("host") in (None, {})
    args = cli.build_parser().parse_args(argv)
    args.renderer_asked = False
    assert not cli._renders_nothing(args, s), "an --api-url asks for that WebUI"
    args = cli.build_parser().parse_args(argv[:-2])
    args.renderer_asked = False
    assert cli._renders_nothing(args, s.replace(keyframe_folder=str(tmp_path / "keys")))
    assert not cli._renders_nothing(args, s.replace(keyframe_folder=str(tmp_path / "keys"), keyframe_fill="render"))
    args.renderer_asked = True
    assert not cli._renders_nothing(args, s.replace(keyframe_folder=str(tmp_path / "keys")))
    from lib_vid2vid.renderer import NoRenderer

    with pytest.raises(Vid2VidError, match="start the WebUI with --api"):
        NoRenderer().render(None)


def test_render_fill_renders_unseen_regions_and_counts_them(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=12)  # keyframes 0, 8; 9-11 only from 8: holes at the left
    r = ProxyRenderer()
    res = run_job(_settings(clip, tmp_path / "out", keyframe_fill="render", keyframe_fill_min=0.001,
                            keyframe_interval=8), r)
    m = Job.open(res.job_dir).manifest
    fills = m["keyframes"]["fill_renders"]
    assert fills and r.calls == 2 + len(fills), "keyframes plus one light render per frame with holes"
    assert all(m["frames"]["pass1"][t].get("fill") == "render" for t in fills)
    assert set(int(k) for k in m["keyframes"]["unseen"]) >= set(fills)


def test_cli_dry_run_lists_keyframes(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4")
    out = subprocess.run([sys.executable, "-m", "lib_vid2vid", str(clip), "--strategy", "keyframes", "--dry-run",
                          "--output-dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert "5 keyframes of 16 frames (2 scene groups)" in out.stdout
    assert "frames 10-15: 10 (cut), 14 (interval)" in out.stdout
    assert "renders: 5 keyframes of 16 frames (31%); the others are carried along the source's motion (full-size " \
           "flows); pixels no keyframe sees: the source in the style around them" in out.stdout, out.stdout
    assert not (tmp_path / "o").exists(), "a dry run makes no job"
    fast = subprocess.run([sys.executable, "-m", "lib_vid2vid", str(clip), "--strategy", "keyframes", "--dry-run",
                           "--keyframe-flow", "fast", "--keyframe-fill", "render", "--output-dir", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert fast.returncode == 0, fast.stderr
    assert "(half-size flows, keyframe_flow fast); pixels no keyframe sees: a light render" in fast.stdout, fast.stdout
    folder = subprocess.run([sys.executable, "-m", "lib_vid2vid", str(clip), "--strategy", "keyframes", "--dry-run",
                             "--keyframe-folder", str(tmp_path / "keys"), "--keyframe-folder-harmonize",
                             "--output-dir", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert folder.returncode == 0, folder.stderr
    assert (f"renders nothing: 5 keyframes of 16 frames (31%) read from {tmp_path / 'keys'} (harmonized: "
            in folder.stdout), folder.stdout


class _Unsteady(ProxyRenderer):
    """Every other keyframe comes back inverted: a scene whose keyframes do not agree."""

    def render(self, request):
        out = super().render(request)
        return [255 - o for o in out] if self.calls % 2 == 0 else out


def test_problem_detection_flags_only_the_group_that_pops(tmp_path, unharmonized):
    clip = _pan_clip(tmp_path / "pan.mp4")
    steady = run_job(_settings(clip, tmp_path / "a"), ProxyRenderer())
    groups = Job.open(steady.job_dir).manifest["keyframes"]["groups"]
    assert [(g["first"], g["last"], g["flagged"]) for g in groups] == [(0, 9, False), (10, 15, False)]
    assert all(0.5 < g["change_ratio"] < 2.5 for g in groups)
    # keyframes 0, 4, 8 | 10, 14: calls 2 (frame 4) and 4 (frame 10) come back inverted
    bad = run_job(_settings(clip, tmp_path / "b"), _Unsteady())
    groups = Job.open(bad.job_dir).manifest["keyframes"]["groups"]
    assert groups[0]["flagged"] and groups[0]["change_ratio"] > 2.5 and "as much as the source" in groups[0]["why"]
    note = next(note for note in bad.notices if "scene frames 0-9" in note)
    # what to do, in frames: each gap of the scene halved (keyframes 0, 4, 8; the scene ends at 9), or its
    # keyframes with another seed
    assert "add keyframes 2, 6, 9 (keyframe_add" in note and "render keyframes 0, 4, 8 again with another seed" in note
    assert "scene frames 0-9" in (bad.job_dir / "job.log").read_text()
    from lib_vid2vid.report import format_report, report

    rep = report(bad.job_dir, write=False)
    assert rep["keyframes"] == 5 and [g["first"] for g in rep["flagged_groups"]] == [0, 10]  # 10: inverted, 14 not
    assert "5 keyframes, flagged scenes 0-9, 10-15" in format_report(rep)


class _Recording(ProxyRenderer):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def render(self, request):
        self.sizes.append(request.init.shape[:2])
        return super().render(request)


def test_keyframe_grid_renders_tiles_once_and_resumes_byte_exact(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=21)  # keyframes 0, 4, ... 20: six, a 2x2 grid and a half one
    r = _Recording()
    full = run_job(_settings(clip, tmp_path / "a", keyframe_grid=2), r)
    assert full.status == "done" and r.sizes == [(128, 192), (128, 192)]
    job = Job.open(full.job_dir)
    records = job.manifest["frames"]["keys"]
    assert [rec["grid"] for rec in records] == [[0, 0], [0, 1], [0, 2], [0, 3], [16, 0], [16, 1]]
    # one render: the tiles are the split of the renderer's image of the tiled inits
    src = {i: f for i, f in video.iter_frames(clip, size=(96, 64))}
    tiled = np.concatenate([np.concatenate([src[0], src[4]], 1), np.concatenate([src[8], src[12]], 1)], 0)
    from lib_vid2vid.renderer import RenderRequest

    want = ProxyRenderer().render(RenderRequest(init=tiled, seed=7, denoise=0.5, steps=20, cfg=7.0, prompt=""))[0]
    got = job.read_frame("keys", 3).astype(np.int16)  # colour coherence moves it a little: compare the layout
    assert np.abs(got - want[64:, 96:].astype(np.int16)).mean() < 12
    assert np.abs(got - ProxyRenderer().render(RenderRequest(init=src[12], seed=7, denoise=0.5, steps=20, cfg=7.0,
                                                             prompt=""))[0].astype(np.int16)).mean() > 1, \
        "a tile of the grid render is not the keyframe's render on its own"
    s = _settings(clip, tmp_path / "b", keyframe_grid=2)
    stop = StopAfter(4, stage="keyframes")
    part = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted" and Job.open(part.job_dir).frames_done("keys") == 4
    resumed = run_job(s, ProxyRenderer())
    assert resumed.status == "done"
    for stage in ("keys", "pass1"):
        assert _frames(resumed.job_dir, stage) == _frames(full.job_dir, stage), stage
    with pytest.raises(Exception, match="above the 4096"):
        run_job(_settings(clip, tmp_path / "c", keyframe_grid=3, width=1400, height=64), ProxyRenderer())


def test_candidates_wait_for_picks_and_a_pick_survives_resume(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=9)  # keyframes 0, 4, 8
    s = _settings(clip, tmp_path / "out", keyframe_candidates=2, colour_coherence=False)
    r = ProxyRenderer()
    first = run_job(s, r)
    assert first.status == "interrupted" and r.calls == 6 and "keyframe_picks" in first.message
    job = Job.open(first.job_dir)
    cands = [job.read_frame("candidates", k) for k in range(6)]
    assert not np.array_equal(cands[2], cands[3]), "the two candidates of a keyframe differ (other seeds)"
    sheet = (first.job_dir / "candidates" / "000004.png")
    from lib_vid2vid.workspace import read_png

    assert np.array_equal(read_png(sheet), np.concatenate([cands[2], cands[3]], axis=1))
    # pick candidate 1 of keyframe 4, stop during propagation, then resume with another pick: the first one stays
    stop = StopAfter(3, stage="pass1")
    r = ProxyRenderer()
    part = run_job(s.replace(keyframe_picks="4:1"), r, should_stop=stop, progress=stop.progress)
    assert part.job_dir == first.job_dir and part.status == "interrupted" and r.calls == 0
    done = run_job(s.replace(keyframe_picks="4:0, 8:1"), ProxyRenderer())
    assert done.job_dir == first.job_dir and done.status == "done"
    job = Job.open(done.job_dir)
    assert job.manifest["keyframes"]["picks"] == {"0": 0, "4": 1, "8": 0}
    assert np.array_equal(job.read_frame("keys", 1), cands[3]) and np.array_equal(job.read_frame("keys", 2), cands[4])
    assert np.array_equal(job.read_frame("pass1", 8), job.read_frame("keys_harmonized", 2))  # the picks, harmonized
    with pytest.raises(SettingsError, match="does not exist"):
        s.replace(keyframe_picks="4:2")
    with pytest.raises(SettingsError, match="colour_coherence"):
        _settings(clip, tmp_path, keyframe_candidates=2)


def test_keyframe_strip_shows_the_keyframes_before_rendering(tmp_path):
    from lib_vid2vid.keyrun import keyframe_strip

    clip = _pan_clip(tmp_path / "pan.mp4")
    plan, strip = keyframe_strip(_settings(clip, tmp_path / "o"), height=32)
    assert plan.frames == [0, 4, 8, 10, 14]
    assert strip.shape == (32, 5 * 48, 3) and strip.dtype == np.uint8
    src = {i: f for i, f in video.iter_frames(clip, size=(96, 64))}
    thumb = cv2.resize(src[10], (48, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(strip[:16, 3 * 48:4 * 48].astype(int) - thumb[:16].astype(int)).mean() < 1  # above the label
    assert not (tmp_path / "o").exists()


def test_cli_dry_run_refuses_what_the_run_refuses_before_its_job_folder(tmp_path, capsys):
    """A dry run that says all is well must not be followed by a run that refuses the same settings."""
    from lib_vid2vid.__main__ import main

    clip = _pan_clip(tmp_path / "pan.mp4")
    for flag, value, fragment in (("--interpolation-ratio", "abc", "interpolation_ratio"),
                                  ("--denoise-schedule", "0.2-frame*0.1", "denoise_schedule")):
        code = main([str(clip), "--dry-run", "--quiet", "--output-dir", str(tmp_path / "o"), flag, value])
        err = capsys.readouterr().err
        assert code == 1 and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_cli_dry_run_of_a_batch_is_refused_not_run(tmp_path):
    a, b = _pan_clip(tmp_path / "a.mp4", n=4, cut=None), _pan_clip(tmp_path / "b.mp4", n=4, cut=None)
    out = subprocess.run([sys.executable, "-m", "lib_vid2vid", str(a), str(b), "--strategy", "keyframes",
                          "--dry-run", "--renderer", "proxy", "--output-dir", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 2 and "--dry-run/--export-keyframes takes one video" in out.stderr
    assert not (tmp_path / "o").exists()


def test_adaptive_choice_counts_change_only_inside_the_mask():
    still = texture(H, W, seed=1)
    frames = []
    for i in range(16):
        f = still.copy()
        f[:, W // 2:] = texture(H, W // 2, dx=6.0 * i, seed=8)  # the right half pans fast, the left holds still
        frames.append(f)
    kw = dict(mode="adaptive", min_gap=2, max_gap=12, threshold=1.0, colour_weight=10, motion_weight=5)
    everywhere = kf.choose_keyframes(iter(frames), 16, **kw)
    left = np.zeros((H, W), np.float32)
    left[:, : W // 2 - 8] = 1.0
    masked = kf.choose_keyframes(iter(frames), 16, weights=lambda i, rgb: left, **kw)
    assert len(everywhere.frames) >= 4, everywhere.frames
    assert masked.frames == [0, 12], "outside the mask nothing that moves may ask for a keyframe"


def test_blend_with_scratch_arrays_gives_the_fresh_result_call_after_call_and_keeps_its_inputs():
    from lib_vid2vid.flow import WorkArrays

    rng = np.random.default_rng(2)
    work = WorkArrays()
    ps = kf.PropagationSettings()
    for _ in range(2):
        a, b = (rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(2))
        va, vb = (np.clip(rng.random((H, W), dtype=np.float32) * 1.2 - 0.1, 0, 1).astype(np.float32) for _ in range(2))
        kept = (va.copy(), vb.copy())
        out, unseen = kf.blend_two(a, va, 0.25, b, vb, 0.75, ps, work)
        fresh, fresh_unseen = kf.blend_two(a, va, 0.25, b, vb, 0.75, ps)
        assert np.array_equal(out, fresh) and np.array_equal(unseen, fresh_unseen)
        assert np.array_equal(va, kept[0]) and np.array_equal(vb, kept[1])
        assert unseen.any() and (~unseen).any()


def test_adaptive_choice_after_accumulated_motion():
    """max_motion: a keyframe once the picture has travelled that many pixels since the last one (summed frame to
    frame), however little the score says; none on the still stretch, where only max_gap counts."""
    frames = _shots()
    kw = dict(mode="adaptive", min_gap=2, max_gap=9, threshold=100.0, colour_weight=10, motion_weight=5)
    off = kf.choose_keyframes(iter(frames), 30, **kw)
    assert off.frames == [0, 9, 10, 19, 28], "the score alone (threshold 100) never asks for a keyframe"
    plan = kf.choose_keyframes(iter(frames), 30, max_motion=30.0, **kw)
    pan_b = [f for f in plan.frames if 20 <= f < 30]
    assert [f for f in plan.frames if f < 20] == [0, 9, 10, 19], "2 px a frame: 18 px in 9 frames, under 30"
    # 9 px a frame: 36 px after 4 frames (27 after 3); DIS measures a little less or more, so 3 or 4 apart
    assert len(pan_b) >= 2 and all(plan.reasons[f] == "motion" for f in pan_b)
    gaps = np.diff([19, *pan_b])
    assert all(3 <= g <= 5 for g in gaps), (pan_b, gaps)
    # min_gap still holds: a limit under one frame's motion gives a keyframe every min_gap frames
    fast = kf.choose_keyframes(iter(frames), 30, max_motion=1.0, **{**kw, "min_gap": 3})
    assert [f for f in fast.frames if 20 <= f < 30] == [22, 25, 28]


def test_a_job_that_stored_its_rules_before_a_field_existed_keeps_the_value_it_was_made_with():
    """fill_sigma became a field (4 px) after jobs began to store their rules: a job that stored them without it
    was made with 8 px and resumes with 8; one that stored it keeps what it stored; today's jobs get 4. The same for
    fill_prior (border today, none before it was a field)."""
    today = dataclasses.asdict(kf.PropagationSettings())
    assert today["fill_sigma"] == 4.0
    older = {k: v for k, v in today.items() if k not in ("fill_sigma", "fill_prior")}
    assert kf.propagation_from_stored(older).fill_sigma == 8.0
    assert kf.propagation_from_stored(older) == dataclasses.replace(kf.PropagationSettings(), fill_sigma=8.0,
                                                                    fill_prior="none")
    assert kf.propagation_from_stored({**older, "fill_sigma": 6.0}).fill_sigma == 6.0
    assert kf.propagation_from_stored(today) == kf.PropagationSettings()
    # the camera prior came later still: a job that stored fill_sigma but not it was made without it
    assert today["fill_prior"] == "camera"
    assert kf.propagation_from_stored({**older, "fill_sigma": 4.0}).fill_prior == "none"
    # and a job that stored the pan-only prior keeps it (the zoom and turn came after it)
    assert kf.propagation_from_stored({**today, "fill_prior": "border"}).fill_prior == "border"
    # and the flows' scale (fast propagation) later again: every job that did not store it had full-size flows
    assert kf.propagation_from_stored({k: v for k, v in today.items() if k != "flow_scale"}).flow_scale == 1.0
    assert kf.propagation_from_stored({**today, "flow_scale": 0.5}).flow_scale == 0.5
    # and harmonized keyframes: a job that did not store the field made each keyframe its render
    assert today["harmonize"] == 1.0
    assert kf.propagation_from_stored({k: v for k, v in today.items() if not k.startswith("harmonize")}).harmonize == 0
    # and the colour guard: a job that did not store it let a propagated frame's colour stray
    assert today["colour_guard"] == 2.0
    assert kf.propagation_from_stored({k: v for k, v in today.items() if k != "colour_guard"}).colour_guard == 0
    # and the evidence check's texture_k with the prior's weight: a job that did not store them had 1e-2 and 0.01
    assert (today["texture_k"], today["fill_prior_weight"]) == (2.5e-3, 0.04)
    older = kf.propagation_from_stored({k: v for k, v in today.items() if k not in ("texture_k", "fill_prior_weight")})
    assert (older.texture_k, older.fill_prior_weight) == (1e-2, 0.01)


def test_the_colour_guard_moves_a_frame_back_by_what_its_colour_strays_beyond_the_guard():
    src = np.full((8, 8, 3), 100, np.uint8)
    off_a, off_b = np.array([10.0, 0.0, -4.0]), np.array([20.0, 0.0, -4.0])
    kept = np.full((8, 8, 3), (115, 101, 95), np.uint8)  # offsets 15, 1, -5 against 15, 0, -4 wanted at tau 0.5
    assert kf.guard_colour(kept, src, off_a, off_b, 0.5, 2.0) is kept
    strayed = np.full((8, 8, 3), (105, 90, 96), np.uint8)  # 10 under, 10 under, level
    out = kf.guard_colour(strayed, src, off_a, off_b, 0.5, 2.0)
    assert kf.mean_rgb(out).tolist() == [113.0, 98.0, 96.0]  # moved up by 10 - 2, to within the guard
    assert kf.guard_colour(strayed, src, off_a, off_b, 0.5, 0.0).reshape(-1, 3)[0].tolist() == [115, 100, 96]


class _Brighter(ProxyRenderer):
    """Every other keyframe comes back 60 levels brighter: keyframes whose colours disagree."""

    def render(self, request):
        out = super().render(request)
        return [np.clip(o.astype(np.int16) + 60, 0, 255).astype(np.uint8) for o in out] if self.calls % 2 == 0 else out


@pytest.mark.parametrize("guard", [2.0, 0.0])
def test_propagated_frames_keep_to_their_keyframes_colour_within_the_guard(tmp_path, guard, monkeypatch):
    """Between two keyframes whose colours disagree, the frames take pixels of one or the other (the ghost rule),
    so their mean colour need not lie between the keyframes': with the guard it does, to within the guard."""
    monkeypatch.setattr(kf, "propagation_for", lambda flow: dataclasses.replace(kf.PropagationSettings(),
                                                                                colour_guard=guard))
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None)
    res = run_job(_settings(clip, tmp_path / "o", keyframe_interval=5, colour_coherence=False), _Brighter())
    job = Job.open(res.job_dir)
    keys = job.manifest["keyframes"]["plan"]["frames"]
    assert keys == [0, 5, 10, 15]
    src = [rgb for _, rgb in video.iter_frames(clip, size=(96, 64))]
    out = [job.read_frame("pass1", i) for i in range(16)]
    offset = {k: kf.mean_rgb(out[k]) - kf.mean_rgb(src[k]) for k in keys}
    worst = 0.0
    for a, b in zip(keys, keys[1:]):
        for t in range(a + 1, b):
            want = offset[a] + (t - a) / (b - a) * (offset[b] - offset[a])
            worst = max(worst, float(np.abs(kf.mean_rgb(out[t]) - kf.mean_rgb(src[t]) - want).max()))
    if guard:
        assert worst <= guard + 1.0, worst  # + rounding and the clip at 255 (measured 2.46; 20.2 without the guard)
    else:
        assert worst > 3 * 2.0, f"the frames kept to their keyframes' colour anyway ({worst}): this test shows nothing"


# ---------------------------------------------------------------- propagation designs (PropagationSettings)


def test_blend_takes_the_preferred_keyframe_where_the_warps_disagree():
    """Where the two warps disagree beyond ghost_high the blend is one source per pixel: without ``prefer_a`` the
    one with the larger weight (a, temporal 0.9), with it the one it names, also against the weights."""
    a = np.full((8, 8, 3), 40, np.uint8)
    b = np.full((8, 8, 3), 200, np.uint8)
    ones = np.ones((8, 8), np.float32)
    ps = kf.PropagationSettings()
    out, unseen = kf.blend_two(a, ones, 0.9, b, ones, 0.1, ps)
    assert not unseen.any() and (out == 40).all()
    prefer = np.zeros((8, 8), bool)
    prefer[:, :4] = True
    out, _ = kf.blend_two(a, ones, 0.9, b, ones, 0.1, ps, prefer_a=prefer)
    assert (out[2:-2, :2] == 40).all() and (out[2:-2, -2:] == 200).all()


def test_residual_rescue_keeps_pixels_the_forward_backward_check_drops_when_the_warp_explains_the_source():
    """A still clip with the forward-backward check made impossible (beta < 0): every propagated pixel is unseen;
    with ``seen_residual`` the keyframes still supply them, since warping their sources explains every frame."""
    frames = _still_flat_clip(4)
    key = _restyle(texture(H, W, seed=21))
    strict = kf.PropagationSettings(seen_beta=-1.0, seen_residual=0.0)
    for two in (False, True):
        got = list(kf.propagate_segment(frames, key, key if two else None, strict))
        assert got and all(u.all() for _, _, u in got)
        rescued = list(kf.propagate_segment(frames, key, key if two else None,
                                            kf.PropagationSettings(seen_beta=-1.0, seen_residual=4.0)))
        assert all(not u.any() for _, _, u in rescued)
        assert all(np.abs(out.astype(np.float32) - key)[8:-8, 8:-8].mean() < 1.5 for _, out, _ in rescued)


def test_residual_pick_takes_the_keyframe_whose_source_matches_the_frame():
    """Frames 0-1 show picture P, frames 2-4 picture Q (no motion; cuts are the plan's business, not this
    function's): frame 2, halfway between the keyframes, ties on temporal weight and the default pick takes
    keyframe a where the warps disagree; ``pick=residual`` takes b, whose source (Q) is frame 2. Frames 1 and 3
    match the nearer keyframe's source: both picks agree there."""
    p = texture(H, W, seed=5)
    q = texture(H, W, seed=6)
    frames = [p, p, q, q, q]
    key_a = np.zeros_like(p)
    key_b = np.full_like(p, 255)
    ps = kf.PropagationSettings(seen_beta=1e6, seen_alpha=1.0, pick="nearer")  # every pixel seen: the pick decides
    out = {j: f for j, f, _ in kf.propagate_segment(frames, key_a, key_b, ps)}
    res = {j: f for j, f, _ in kf.propagate_segment(frames, key_a, key_b,
                                                    kf.PropagationSettings(seen_beta=1e6, seen_alpha=1.0,
                                                                           pick="residual"))}
    assert out[1].mean() < 20  # nearer a: black
    assert res[1].mean() < 20  # frame 1 is P: a's source matches it
    assert out[3].mean() > 235 and res[3].mean() > 235  # frame 3 is Q: b both ways
    assert res[2].mean() > 235 and out[2].mean() < 200  # frame 2 (Q, halfway): residual takes b entirely


def test_pair_flows_side_by_side_are_the_flows_computed_one_after_the_other():
    """The two directions of a pair run in two threads, each with its own scratch arrays: the same flows as
    computed one after the other in one thread (a shared scratch array would mix the two)."""
    from lib_vid2vid import flow
    from lib_vid2vid.flow import WorkArrays

    rng = np.random.default_rng(5)
    a = cv2.GaussianBlur(rng.integers(0, 256, (H, W), dtype=np.uint8), (0, 0), 1.5)
    b = np.roll(a, (2, 3), axis=(0, 1))
    b[:30, :40] = 128  # a flat patch: the evidence check fills it from around
    ps = kf.PropagationSettings()
    still = flow.still_residual(a, b)
    want_ba = flow.evidence_flow(flow.compute_flow(b, a), b, a, still=still, fill_sigma=ps.fill_sigma,
                                 prior=ps.fill_prior, prior_weight=ps.fill_prior_weight, texture_k=ps.texture_k)
    want_ab = flow.evidence_flow(flow.compute_flow(a, b), a, b, still=still, fill_sigma=ps.fill_sigma,
                                 prior=ps.fill_prior, prior_weight=ps.fill_prior_weight, texture_k=ps.texture_k)
    works = (WorkArrays(), WorkArrays())
    for _ in range(3):
        ba, ab = kf._pair_flows(a, b, "medium", True, works=works)
        assert np.array_equal(ba, want_ba) and np.array_equal(ab, want_ab)
    assert np.abs(ab[40:, 50:] - (3, 2)).mean() < 0.5  # and they are the motion


@pytest.mark.parametrize("changes", [{}, {"flow_evidence": False}, {"flow_scale": 0.5}])
def test_a_segments_flows_from_the_pool_are_each_pairs_flows_in_order(changes):
    """segment_flows hands every direction of every pair to the flow pool, several pairs at a time: each flow is
    still the one its pair gives alone, in its place (a scratch array shared by two running flows, or a flow
    collected out of order, would show here)."""
    from lib_vid2vid import flow

    rng = np.random.default_rng(8)
    base = cv2.GaussianBlur(rng.integers(0, 256, (H + 40, W + 40, 3), dtype=np.uint8), (0, 0), 1.5)
    sources = [np.ascontiguousarray(base[2 * k: 2 * k + H, 3 * k: 3 * k + W]) for k in range(7)]  # 6 pairs, a pan
    sources[4] = sources[4].copy()
    sources[4][10:40, 10:50] = 128  # a flat patch in one frame: its pairs differ from the others
    ps = kf.PropagationSettings(**changes)
    sf = kf.segment_flows(sources, ps)
    fgreys = sf.fgreys
    assert len(sf.back) == len(sf.fwd) == 6
    for k in range(6):
        tex = ((flow.texture_confidence(fgreys[k], texture_k=ps.texture_k),
                flow.texture_confidence(fgreys[k + 1], texture_k=ps.texture_k)) if ps.flow_evidence else None)
        want_back, want_fwd = kf._pair_flows(fgreys[k], fgreys[k + 1], ps.flow_quality, ps.flow_evidence, tex,
                                             fill_sigma=ps.fill_sigma * ps.flow_scale, prior=ps.fill_prior,
                                             prior_weight=ps.fill_prior_weight, texture_k=ps.texture_k)
        assert np.array_equal(sf.back[k], want_back) and np.array_equal(sf.fwd[k], want_fwd), k
    scale = ps.flow_scale
    assert np.abs(np.median(sf.fwd[0].reshape(-1, 2), axis=0) - (-3 * scale, -2 * scale)).max() < 0.5


def test_an_error_in_a_segments_flows_reaches_the_caller_and_stops_the_pairs_not_started(monkeypatch):
    calls: list[int] = []
    real = kf._FlowCheck.flow

    def failing(self, src, dst, texture, still, work):
        calls.append(1)
        if len(calls) == 3:
            raise Vid2VidError("flow broke")
        return real(self, src, dst, texture, still, work)

    monkeypatch.setattr(kf._FlowCheck, "flow", failing)
    rng = np.random.default_rng(9)
    sources = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(12)]
    with pytest.raises(Vid2VidError, match="flow broke"):
        kf.segment_flows(sources)
    kf._pair_pool().submit(lambda: None).result()  # the pool is free again: whatever was started has ended
    assert len(calls) <= 2 * (kf._PAIRS_IN_FLIGHT + 1) < 22  # the later pairs were never started


def test_styled_fill_with_its_scratch_arrays_gives_the_same_frames_call_after_call_and_from_two_threads():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    cases = []
    h, w = 240, 320  # big enough for two threads to overlap
    for k in range(3):
        source = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        unseen = np.zeros((h, w), bool)
        unseen[30 * k: 30 * k + 90, 15: 180 + 60 * k] = True
        cases.append((frame, unseen, source))
    first = [kf.fill_styled(*c) for c in cases]
    assert all((f[c[1]] != c[0][c[1]]).any() for f, c in zip(first, cases))  # the holes were filled
    again = [kf.fill_styled(*c) for c in reversed(cases)][::-1]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(lambda c: kf.fill_styled(*c), cases * 8))
    for k in range(len(cases)):
        assert np.array_equal(again[k], first[k])
        assert all(np.array_equal(t, first[k]) for t in threaded[k::3])
    assert not any(np.shares_memory(x, y) for x in first for y in first if x is not y)


def test_styled_fill_carries_the_style_shift_into_holes_and_the_source_far_from_any_seen_pixel():
    rng = np.random.default_rng(3)
    source = rng.integers(40, 200, (H, W, 3), dtype=np.uint8)
    shift = np.array([30, -20, 10], np.int16)  # the "style": a colour shift of every seen pixel
    frame = np.clip(source.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    unseen = np.zeros((H, W), bool)
    unseen[40:52, 20:32] = True  # a small hole inside seen pixels
    unseen[:, 72:] = True  # at the right edge, a band far wider than the reach (sigma 12 px)
    frame[unseen] = 0  # what the propagation left there does not matter
    out = kf.fill_styled(frame, unseen, source)
    assert np.array_equal(out[~unseen], frame[~unseen])  # seen pixels untouched
    hole = out[40:52, 20:32].astype(np.int16) - source[40:52, 20:32]
    assert np.abs(hole - shift).max() <= 2  # the hole takes the source plus the shift around it
    far = out[:, 124:].astype(np.int16) - source[:, 124:]
    assert np.abs(far).max() <= 2  # beyond the reach: the source, as fill_unseen gives
    plain = kf.fill_unseen(frame, unseen, source)
    assert np.abs(plain[40:52, 20:32].astype(np.int16) - source[40:52, 20:32]).max() == 0
    assert np.array_equal(kf.fill_styled(frame, np.zeros((H, W), bool), source), frame)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_pair_flows_work_in_a_process_forked_after_they_ran():
    """A forked child has none of its parent's threads: the worker of the side-by-side flows is made anew there
    (else the second direction would wait for ever in the queue of a thread that does not exist)."""
    import multiprocessing

    rng = np.random.default_rng(6)
    a = cv2.GaussianBlur(rng.integers(0, 256, (H, W), dtype=np.uint8), (0, 0), 1.5)
    b = np.roll(a, 2, axis=1)
    want = kf._pair_flows(a, b, "medium")  # the parent's worker thread now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(kf._pair_flows, (a, b, "medium")).get(timeout=60)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


# ---------------------------------------------------------------- harmonized keyframes


def _detail(img: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    f = img.astype(np.float32)
    return f - cv2.GaussianBlur(f, (0, 0), sigma)


def test_harmonize_keyframe_takes_the_carried_detail_only_where_it_is_seen_and_explained():
    ps = kf.PropagationSettings()
    a, b = texture(64, 96, seed=1), texture(64, 96, seed=2)  # two renders: other detail, about the same colours
    seen = np.zeros((64, 96), np.float32)
    seen[:, :48] = 1.0  # keyframe a sees the left half
    residual = np.zeros((64, 96), np.float32)
    residual[32:, :] = ps.harmonize_residual  # the motion does not explain the bottom half
    out = kf.harmonize_keyframe(b, a, seen, residual, ps)
    # seen and explained: b's colours and shading (its Gaussian of 4 px) with a's detail instead of its own
    want = b.astype(np.float32) - _detail(b) + _detail(a)
    ok = (want >= 0) & (want <= 255)
    assert np.abs(out[:32, :48] - want[:32, :48])[ok[:32, :48]].max() <= 0.5 + 1e-3
    assert np.abs(_detail(out)[4:20, 4:32] - _detail(a)[4:20, 4:32]).mean() < 0.5 * np.abs(
        _detail(out)[4:20, 4:32] - _detail(b)[4:20, 4:32]).mean()
    assert np.array_equal(out[:, 48:], b[:, 48:]), "where a does not see it, b stays its render"
    assert np.array_equal(out[32:], b[32:]), "where the motion does not explain it, b stays its render"
    assert np.array_equal(kf.harmonize_keyframe(b, a, seen, residual, dataclasses.replace(ps, harmonize=0.0)), b)


def test_a_keyframe_takes_the_detail_of_the_one_before_along_the_motion(tmp_path):
    """On a pan, keyframe 4's output carries keyframe 0's detail moved along the pan, so the frames between them do
    not cross-fade from one texture to another; without harmonizing its detail is its own render's."""
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=10)  # keyframes 0, 4, 8; the picture moves 3 px a frame
    res = run_job(_settings(clip, tmp_path / "out"), ProxyRenderer())
    job = Job.open(res.job_dir)
    k0, k4, render4 = job.read_frame("pass1", 0), job.read_frame("pass1", 4), job.read_frame("keys", 1)
    src = [f for _, f in video.iter_frames(clip, size=(96, 64))]
    assert np.abs(src[4][:, 12:].astype(int) - src[0][:, :-12]).mean() < 2, "the picture moves 12 px right"
    # what the renderer added to the source (its detail noise, drawn from the seed at fixed screen positions)
    style0, style4, raw4 = (x.astype(np.float32) - y for x, y in ((k0, src[0]), (k4, src[4]), (render4, src[4])))
    moved = np.zeros_like(style0)
    moved[:, 12:] = style0[:, :-12]  # keyframe 0's, carried 4 frames along the pan
    inner = (slice(8, -8), slice(24, -8))

    def corr(x, y):
        return float(np.corrcoef(_detail(x)[inner].ravel(), _detail(y)[inner].ravel())[0, 1])

    assert corr(style4, moved) > 0.9 > 0.75 > corr(raw4, moved)  # measured: 0.94 against 0.58


@pytest.mark.parametrize("frames", [2, 9])
def test_keyframes_with_a_temporal_blend_init_run_to_the_video_end(clip, tmp_path, frames):
    """temporal_blend reads each keyframe's neighbours; the last segment's next frame is past the video's end,
    and the job ran into "The video ended before frame N" there. Each keyframe's init is its 1,2,1 blend."""
    inits: dict[int, np.ndarray] = {}

    class Recording(ProxyRenderer):
        def render(self, request):
            inits[request.frame_index] = request.init.copy()
            return super().render(request)

    s = _settings(clip, tmp_path, max_frames=frames, init_mode="temporal_blend", init_strength=1.0,
                  colour_coherence=False)
    res = run_job(s, Recording())
    assert res.status == "done" and res.frames_done == frames
    src = [rgb for _, rgb in zip(range(frames), (f for _, f in video.iter_frames(clip, size=(96, 64))))]
    keys = Job.open(res.job_dir).manifest["keyframes"]["plan"]["frames"]
    assert sorted(inits) == keys
    for k in keys:  # nearer the blend of its neighbours than its own frame (the ends clamp to the video)
        nb = [src[max(0, k - 1)], src[k], src[min(frames - 1, k + 1)]]
        blend = (nb[0].astype(np.float32) + 2 * nb[1] + nb[2]) / 4
        init = inits[k].astype(np.float32)
        assert np.abs(init - blend).mean() < np.abs(init - src[k]).mean(), k


def test_each_output_frame_says_how_it_was_made_in_its_png_text(clip, tmp_path):
    """What the WebUI's PNG Info shows for an output frame: a keyframe its render's parameters (prompt, seed,
    ...), any other frame the keyframes it was carried from."""
    from lib_vid2vid.workspace import read_png_text

    res = run_job(_settings(clip, tmp_path, max_frames=10, keyframe_mode="interval", keyframe_interval=4),
                  ProxyRenderer())
    job = Job.open(res.job_dir)
    keys = job.manifest["keyframes"]["plan"]["frames"]
    assert keys == [0, 4, 8]
    for t in range(10):
        text = read_png_text(job.frame_path("pass1", t))
        if t in keys:
            assert text == read_png_text(job.frame_path("keys", keys.index(t))) and "Seed: 7" in text["parameters"]
        elif t < 8:
            a = t // 4 * 4
            assert text == {"vid2vid": f"frame {t + 1}/10: carried along the source's motion from the keyframes at "
                                       f"frames {a + 1}/10 and {a + 5}/10 (their settings: frames/keys)"}
        else:
            assert text["vid2vid"].endswith("from the keyframe at frame 9/10 (its settings: frames/keys)")


@pytest.mark.parametrize("values", [
    dict(seed_mode="increment"), dict(seed_mode="fixed_variation", variation_strength=0.3),
    dict(sigma_schedule="karras", sigma_max=1.0), dict(noise_mode="warped"),
    dict(motion_mask=True), dict(motion_mask=True, mask_usage="spatial"), dict(motion_mask=True, mask_usage="inpaint"),
    dict(colour_key=True), dict(init_mode="temporal_blend"), dict(init_mode="temporal_blend_masked"),
    dict(batch_size=2), dict(batch_count=2), dict(denoise_schedule="0.3 + 0.01*t"), dict(seed_schedule="t"),
    dict(prompt_schedule="0-4: a cat\n5-20: a dog"), dict(keyframe_fill="render"), dict(colour_coherence=False),
    dict(save_each_pass=True), dict(reset_at_cuts=True), dict(keyframe_flow="fast"), dict(keyframe_grid=2),
    dict(colour_key=True, keyframe_mask_only=True),
], ids=lambda v: ",".join(f"{k}={v}" for k, v in v.items())[:40])
def test_per_frame_settings_run_on_the_default_keyframes(clip, tmp_path, values):
    """The default renders keyframes, so every per-frame setting a user may turn on meets them: each job makes every
    frame (a temporal_blend init never finished before 2026-12-07), and the host renders its keyframes (a grid: one
    render per 2x2 keyframes) and nothing else but the light renders of a render fill."""
    calls = []

    class Counting(ProxyRenderer):
        def render(self, request):
            calls.append(request.frame_index)
            return super().render(request)

    s = Settings().replace(input=str(clip), output_dir=str(tmp_path), width=96, height=64, seed=3, max_frames=9,
                           report=False, comparison_video=False, **values)
    res = run_job(s, Counting())
    assert res.status == "done" and res.frames_done == 9
    keys = Job.open(res.job_dir).manifest["keyframes"]["plan"]["frames"]
    assert 1 < len(keys) < 9
    assert {i for i in calls if i in keys} == set(keys[::s.temporal.keyframe_grid ** 2])
    assert all(i in keys for i in calls) or s.temporal.keyframe_fill == "render"


def test_ctrl_c_while_waiting_for_the_propagation_stops_it_and_waits_for_it_to_end():
    """The CLI's second Ctrl-C raises KeyboardInterrupt wherever the main thread is. Waiting for the propagation
    beside the renders, it must stop that thread and wait for it: the job then closes its outputs, which the
    propagation was feeding, and a thread left inside OpenCV when the process ends aborts the process."""
    import signal
    import threading
    import time

    from lib_vid2vid import keyrun

    gate = keyrun._KeyGate(3)
    ended: list[bool] = []

    done = threading.Event()

    def propagation() -> None:  # works until told to stop (or 20 s), then takes a moment to finish its frame
        t0 = time.monotonic()
        while not gate.aborted and time.monotonic() - t0 < 20:
            time.sleep(0.01)
        time.sleep(0.2)
        ended.append(True)
        done.set()

    worker = threading.Thread(target=propagation, daemon=True)
    worker.start()
    main = threading.main_thread().ident
    threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()  # Ctrl-C while the main thread waits
    with pytest.raises(KeyboardInterrupt):
        keyrun._join(done, gate)
    assert gate.aborted and ended == [True]
