"""The consistency benchmark's judge flow (helpers/bench_consistency.py --judge-flow): the warp error is really
measured with the named flow and thresholds, equals the formula computed by hand with OpenCV, and the default
judge is the job report's meter."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib_vid2vid.metrics import VideoMetrics

HELPERS = Path(__file__).resolve().parents[1] / "helpers"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(HELPERS))
    try:
        yield importlib.import_module("bench_consistency")
    finally:
        sys.path.remove(str(HELPERS))


def _clip(n: int = 3, size: tuple[int, int] = (96, 72)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(sources, outputs), RGB uint8 HWC. Sources: a smooth random texture moved by a sub-pixel translation
    plus a small rotation each frame. Outputs: the source plus a detail pattern that stays on the screen
    (texture sticking) and a little per-frame noise."""
    w, h = size
    rng = np.random.default_rng(7)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (h * 2, w * 2, 3)).astype(np.float32), (0, 0), 3.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    stuck = cv2.GaussianBlur(rng.normal(0, 25, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    srcs, outs = [], []
    for i in range(n):
        m = cv2.getRotationMatrix2D((w, h), 1.5 * i, 1.0)
        m[:, 2] += (1.7 * i - w / 2, 0.9 * i - h / 2)
        frame = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        srcs.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
        noise = rng.normal(0, 4, (h, w, 3)).astype(np.float32)
        outs.append(np.clip(np.rint(frame + stuck + noise), 0, 255).astype(np.uint8))
    return srcs, outs


def _flow_by_hand(a: np.ndarray, b: np.ndarray, method: str, quality: str) -> np.ndarray:
    """OpenCV flow a -> b on BT.601 grey uint8, written out (DIS presets; Farneback 'medium' parameters)."""
    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    if method == "dis":
        preset = {"medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST}[quality]
        return cv2.DISOpticalFlow_create(preset).calc(ga, gb, None)
    assert quality == "medium"
    return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 5, 21, 5, 7, 1.5, 0)


def _remap(img: np.ndarray, f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255 @ np.array([0.299, 0.587, 0.114], np.float32)


def _by_hand(srcs, outs, method, quality, alpha, beta) -> tuple[float, float]:
    """The docstring's (E_J, MCF_J): means over pairs of the masked mean squared error (0..1 pixels, mean over
    channels) and of the masked |luma change of the output - luma change of the source| after the motion."""
    errors, flickers = [], []
    for t in range(1, len(srcs)):
        w = _flow_by_hand(srcs[t], srcs[t - 1], method, quality)
        wb = _remap(_flow_by_hand(srcs[t - 1], srcs[t], method, quality), w)
        h, width = w.shape[:2]
        xs = np.arange(width)[None, :] + w[..., 0]
        ys = np.arange(h)[:, None] + w[..., 1]
        occluded = (((w + wb) ** 2).sum(axis=2) > alpha * ((w**2).sum(axis=2) + (wb**2).sum(axis=2)) + beta)
        occluded |= (xs < -0.5) | (xs > width - 0.5) | (ys < -0.5) | (ys > h - 0.5)
        valid = ~occluded
        assert valid.mean() > 0.5  # the synthetic motion is mostly trackable
        prev = outs[t - 1].astype(np.float32) / 255
        cur = outs[t].astype(np.float32) / 255
        sq = ((cur - _remap(prev, w)) ** 2).mean(axis=2)
        errors.append(float(sq[valid].mean()))
        d_out = _luma(outs[t]) - _remap(_luma(outs[t - 1]), w)
        d_src = _luma(srcs[t]) - _remap(_luma(srcs[t - 1]), w)
        flickers.append(float(np.abs(d_out - d_src)[valid].mean()))
    return float(np.mean(errors)), float(np.mean(flickers))


def test_parse_judge(bench):
    assert bench.parse_judge("dis") == bench.Judge("dis", "medium", 0.01, 0.5)
    assert bench.parse_judge(bench.DEFAULT_JUDGE) == bench.Judge()
    assert bench.parse_judge("farneback") == bench.Judge("farneback", "medium", 0.01, 0.5)
    assert bench.parse_judge("dis:fast:0.05:1") == bench.Judge("dis", "fast", 0.05, 1.0)
    assert bench.parse_judge("dis:fast:0.05:1").name == "dis:fast:0.05:1"
    for bad in ("raft", "dis:slow", "dis:fast:0.05", "dis:fast:x:1", "dis:fast:-1:1", ""):
        with pytest.raises(ValueError, match="METHOD"):
            bench.parse_judge(bad)


@pytest.mark.parametrize("text", ["dis:medium:0.01:0.5", "farneback", "dis:fast:0.05:1"])
def test_judge_equals_the_formula_by_hand(bench, text):
    srcs, outs = _clip(3)
    j = bench.parse_judge(text)
    mcf: dict = {}
    got = bench.judge_warp_errors(zip(srcs, outs), [j], mc_flicker=mcf)[j.name]
    want, want_mcf = _by_hand(srcs, outs, j.method, j.quality, j.alpha, j.beta)
    assert got == pytest.approx(want, rel=1e-4)
    assert mcf[j.name] == pytest.approx(want_mcf, rel=1e-4)


def test_two_judges_give_different_numbers(bench):
    srcs, outs = _clip(3)
    judges = [bench.parse_judge("dis"), bench.parse_judge("farneback")]
    got = bench.judge_warp_errors(zip(srcs, outs), judges)
    a, b = got[judges[0].name], got[judges[1].name]
    assert a > 0 and b > 0
    assert a != pytest.approx(b, rel=1e-3)
    # the floor (output = source) depends on the judge even more: the flows' own errors are all it measures
    floors = bench.judge_warp_errors(zip(srcs, srcs), judges)
    fa, fb = floors[judges[0].name], floors[judges[1].name]
    assert max(fa, fb) > 1.5 * min(fa, fb)


def test_mc_flicker_zero_on_the_source_and_higher_for_a_stuck_texture(bench):
    srcs, outs = _clip(3)
    j = bench.parse_judge("farneback")
    mcf: dict = {}
    bench.judge_warp_errors(zip(srcs, srcs), [j], mc_flicker=mcf)
    assert mcf[j.name] == 0.0
    # brightening the whole output by a constant follows the source exactly: still 0 (up to uint8 rounding)
    bright = [np.clip(s.astype(np.int16) + 20, 0, 255).astype(np.uint8) for s in srcs]
    bench.judge_warp_errors(zip(srcs, bright), [j], mc_flicker=mcf)
    follows = mcf[j.name]
    bench.judge_warp_errors(zip(srcs, outs), [j], mc_flicker=mcf)  # texture stuck to the screen + noise
    assert mcf[j.name] > 5 * follows + 0.005


def test_default_judge_is_the_job_reports_meter(bench):
    srcs, outs = _clip(4)
    vm = VideoMetrics(max_side=None)
    for s, o in zip(srcs, outs):
        vm.update(s, o)
    got = bench.judge_warp_errors(zip(srcs, outs), [bench.parse_judge(bench.DEFAULT_JUDGE)])
    assert got[bench.DEFAULT_JUDGE] == pytest.approx(vm.warp_error.value, rel=1e-6)
