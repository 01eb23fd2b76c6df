"""Where a flow judge moves what the source shows still: how much of a warp error lies there.

    python helpers/judge_still_pixels.py                    # cup.mp4; fixed_seed, every_frame, both keyframe strategies
    python helpers/judge_still_pixels.py --clips cup.mp4,bikes.mp4 --methods fixed_seed,keyframes_adaptive

A plain wall shows no motion of its own, so a flow may give it any motion and still explain the source: DIS (both
presets) spreads the motion of a subject over the plain wall around it, Farneback keeps it still. A restyled frame
puts texture on the wall, and a judge that moves the wall then counts texture that stays where it is (correct on a
still camera) as error; a texture dragged with the subject (what a user sees as a swimming halo) it counts as none.

For each clip (decoded as ``bench_consistency.py`` decodes it: 48 frames at 12 fps, 384 px wide) this runs each
strategy as a job with the proxy renderer (as that benchmark does) and, for each judge, splits the frame pairs::

    still_t = erode(G_2(max_c |S_t - S_{t-1}|) < THR / 255, a SIDE x SIDE square)

(the source unchanged, by less than ``--threshold`` grey levels after a Gaussian of 2 px, everywhere within SIDE/2
pixels: the picture itself says nothing moves there), and prints per judge: the share of still pixels, the judge's
median motion on them (pixels), each strategy's warp error as a multiple of the floor as the judge has it, and the
same with the judge's motion set to zero on the still pixels (and those pixels counted as valid), output and floor
alike. The warp error is the benchmark's: ``E = mean_t sum(M_t * mean_c (O_t - warp(O_{t-1}, w_t))^2) / sum(M_t)``
with ``w_t`` the judge's flow from frame t to t-1 and ``M_t`` its forward-backward valid mask.

This is a diagnosis, not a judge: holding still pixels still would in turn favour texture that stays on the screen
where the camera pans over a plain sky (unchanged too, but moving). It says how much of a judge's verdict rests on
motion the picture cannot show.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_consistency as bc  # noqa: E402

DEFAULT_METHODS = "fixed_seed,every_frame,keyframes,keyframes_adaptive"
DEFAULT_JUDGES = "dis:medium,farneback,dis:fast:0.05:1"


def still_mask(src: np.ndarray, prev: np.ndarray, threshold: float = 3.0, side: int = 11) -> np.ndarray:
    """bool HW: where the source (RGB float32 0..1, HWC) is unchanged from ``prev`` by less than ``threshold``
    grey levels (of 255) after a Gaussian of 2 px, everywhere in the ``side`` x ``side`` square around."""
    d = cv2.GaussianBlur(np.abs(src - prev).max(axis=2), (0, 0), 2)
    return cv2.erode((d < threshold / 255).astype(np.uint8), np.ones((side, side), np.uint8)).astype(bool)


def pair_errors(flow: np.ndarray, valid: np.ndarray, still: np.ndarray,
                pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
    """For each ``(frame t, frame t-1)`` of ``pairs`` (RGB float32 0..1): the warp error (0..1 squared) under
    ``flow`` (HW2, frame t -> t-1, pixels) over ``valid`` (HW 0..1), and under the same flow set to zero on
    ``still`` with those pixels valid."""
    from lib_vid2vid.flow import warp

    zeroed = flow.copy()
    zeroed[still] = 0
    valid0 = valid.copy()
    valid0[still] = 1
    out = []
    for cur, prev in pairs:
        got = []
        for w, v in ((flow, valid), (zeroed, valid0)):
            err = ((cur - warp(prev, w, border="replicate")) ** 2).mean(axis=2)
            got.append(float((err * v).sum() / max(float(v.sum()), 1e-9)))
        out.append((got[0], got[1]))
    return out


def run_outputs(clip: str, method: str, common: dict, tmp_root: str) -> list[np.ndarray]:
    """The last pass of one proxy job of ``method`` on ``clip`` (RGB uint8 HWC frames)."""
    from lib_vid2vid.params import STRATEGIES, Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import ProxyRenderer
    from lib_vid2vid.report import last_stage
    from lib_vid2vid.workspace import Job

    out_dir = tempfile.mkdtemp(prefix="job-", dir=tmp_root)
    try:
        preset = {k: v for k, v in STRATEGIES[method].items() if k not in bc.FORCED}
        settings = Settings().replace(**preset, **common, input=str(bc.MEDIA / clip), output_dir=out_dir,
                                      report=False, comparison_video=False)
        res = run_job(settings, ProxyRenderer(), new=True)
        if res.status != "done":
            raise SystemExit(f"error: {method} on {clip} ended {res.status}: {res.message}")
        job, stage = Job.open(res.job_dir), last_stage(settings)
        return [job.read_frame(stage, i) for i in range(res.total)]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="cup.mp4", help="comma-separated file names in ../shared/media")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated strategies (default {DEFAULT_METHODS})")
    ap.add_argument("--judge-flow", default=DEFAULT_JUDGES, help=f"comma-separated judges (default {DEFAULT_JUDGES})")
    ap.add_argument("--threshold", type=float, default=3.0, help="grey levels of change below which a pixel is still")
    ap.add_argument("--side", type=int, default=11, help="the square (pixels) that must be still around a pixel")
    args = ap.parse_args(argv)
    from lib_vid2vid.flow import compute_flow, occlusion_mask
    from lib_vid2vid.params import STRATEGIES

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in STRATEGIES]
    if unknown:
        print(f"error: unknown strategy {unknown[0]}; known: {', '.join(STRATEGIES)}", file=sys.stderr)
        return 2
    try:
        judges = [bc.parse_judge(j) for j in args.judge_flow.split(",") if j]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if any(j.method in (bc.TRUTH, bc.AGREE) for j in judges):
        print("error: --judge-flow takes flow judges here (METHOD[:QUALITY[:ALPHA:BETA]]), not truth or agree",
              file=sys.stderr)
        return 2
    common = {"width": 384, "height": 0, "fps": 12, "start": 0.0, "end": 0.0, "max_frames": 48, "seed": 1,
              "denoise": 0.45}
    print(f"command: python helpers/judge_still_pixels.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"still: the source changes by < {args.threshold:g}/255 within {args.side // 2} px; warp error as a multiple "
          f"of the floor, as the judge has it -> with the judge's motion zero on still pixels")
    tmp_root = tempfile.mkdtemp(prefix="still-")
    try:
        for clip in [c for c in args.clips.split(",") if c]:
            srcs = [f.astype(np.float32) / 255 for f in bc.source_frames(clip, common)]
            outs = {m: [f.astype(np.float32) / 255 for f in run_outputs(clip, m, common, tmp_root)] for m in methods}
            for judge in judges:
                kw = {"method": judge.method, "quality": judge.quality}
                sums = {name: np.zeros(2) for name in ["floor", *methods]}
                share, motion = [], []
                for t in range(1, len(srcs)):
                    s, p = srcs[t], srcs[t - 1]
                    w = compute_flow(s, p, **kw)
                    valid = 1.0 - occlusion_mask(w, compute_flow(p, s, **kw), alpha=judge.alpha, beta=judge.beta)
                    still = still_mask(s, p, args.threshold, args.side)
                    share.append(float(still.mean()))
                    if still.any():
                        motion.append(float(np.median(np.linalg.norm(w[still], axis=1))))
                    for name in sums:
                        pair = (s, p) if name == "floor" else (outs[name][t], outs[name][t - 1])
                        sums[name] += np.array(pair_errors(w, valid, still, [pair])[0])
                floor = sums["floor"]
                cells = "  ".join(f"{m} {sums[m][0] / floor[0]:.2f} -> {sums[m][1] / floor[1]:.2f}" for m in methods)
                print(f"{clip}  {judge.name}: still {np.mean(share):.0%}, judge's median motion there "
                      f"{np.mean(motion) if motion else 0:.2f} px; floor {floor[0] / (len(srcs) - 1) * 1e3:.3f} -> "
                      f"{floor[1] / (len(srcs) - 1) * 1e3:.3f}e-3; {cells}", flush=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
