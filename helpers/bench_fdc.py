"""Benchmark: frame delta correction + motion mask, ms per 512x512 frame (median of N runs).

Target (issue 5): FDC + motion mask at most 15 ms per 512x512 frame on a 2-core CPU. Each timed run
does what the frame loop does for one frame: uint8 frames in, source delta, motion mask (low-cut 8,
high-ext 5, soft 2), FDC in the given mode with the motion mask as delta mask, uint8 frame out.

    python helpers/bench_fdc.py [--runs 50] [--size 512] [--media ../shared/media/clip.mp4]
    python helpers/bench_fdc.py --drift      # brightness drift per mode over 200 frames (see fdc.py)

Without ``--media`` it uses synthetic frames (timing does not depend on content).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import cpu_model  # noqa: E402

from lib_vid2vid import fdc, masks  # noqa: E402
from lib_vid2vid.imaging import to_uint8  # noqa: E402


def frames(size: int, media: Path | None) -> list[np.ndarray]:
    if media is not None:
        import av

        out = []
        with av.open(str(media)) as c:
            for k, fr in enumerate(c.decode(video=0)):
                out.append(cv2.resize(fr.to_ndarray(format="rgb24"), (size, size), interpolation=cv2.INTER_AREA))
                if k >= 3:
                    break
        return out
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3)
    return [np.roll(base, 2 * k, axis=1) for k in range(4)]


def one_frame(src_prev, src_cur, prev_out, raw_out, mode):
    m = masks.motion_mask(src_prev, src_cur, low_cut=8, high_ext=5, soft=2.0)
    return fdc.correct_frame(prev_out, raw_out, src_prev, src_cur, mode=mode, delta_mask=m)


def bench(runs: int, size: int, media: Path | None) -> None:
    f = frames(size, media)
    src_prev, src_cur, prev_out, raw_out = f[0], f[1], f[1], f[2]
    print(f"machine: nproc={os.cpu_count()} cpu='{cpu_model()}' cv2 threads={cv2.getNumThreads()} "
          f"numpy {np.__version__} opencv {cv2.__version__}")
    print(f"frame {size}x{size}, median of {runs} runs (after 3 warm-up runs)")

    def timeit(fn) -> float:
        for _ in range(3):
            fn()
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        return statistics.median(ts)

    mm = timeit(lambda: masks.motion_mask(src_prev, src_cur, low_cut=8, high_ext=5, soft=2.0))
    print(f"  motion mask alone            {mm:6.2f} ms")
    for mode in fdc.MODES:
        alone = timeit(lambda mode=mode: fdc.correct_frame(prev_out, raw_out, src_prev, src_cur, mode=mode))
        both = timeit(lambda mode=mode: one_frame(src_prev, src_cur, prev_out, raw_out, mode))
        verdict = "ok" if both <= 15 else "OVER 15 ms"
        print(f"  fdc {mode:9s} alone {alone:6.2f} ms | + motion mask as delta mask {both:6.2f} ms  {verdict}")


def drift(n: int = 200) -> None:
    """Mean grey-level change of the output after 50/100/200 frames, per mode, rounding vs truncation."""
    h = w = 256
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scene = np.stack([0.55 + 0.45 * np.sin(xx / 20) * np.cos(yy / 30), 0.6 + 0.4 * np.cos(xx / 15),
                      0.5 + 0.5 * np.sin(yy / 25)], -1).clip(0, 1).astype(np.float32)
    src0 = to_uint8(scene)
    print(f"scene: {(scene > 0.9).mean() * 100:.0f}% of values > 0.9, {(scene < 0.1).mean() * 100:.0f}% < 0.1; "
          "figures = output mean minus first frame mean, grey levels, averaged over the 10 frames before")

    def run(mode, truncate, moving, noise):
        rng = np.random.default_rng(1)
        a, sp, hist = src0.copy(), src0, []
        for i in range(n):
            if moving:
                sc = np.roll(src0, i, axis=1)
            else:
                sc = np.clip(src0.astype(np.int16) + rng.integers(-2, 3, src0.shape), 0, 255).astype(np.uint8)
            b = to_uint8(np.roll(scene, i if moving else 0, axis=1) + rng.normal(0, noise, scene.shape)
                             + rng.normal(0, 0.02))
            out = fdc.correct(fdc.to_float(a), fdc.to_float(b), fdc.source_delta(sp, sc), mode=mode)
            a = (out * 255).astype(np.uint8) if truncate else to_uint8(out)
            sp = sc
            hist.append(float(a.mean()) - float(src0.mean()))
        hh = np.array(hist)
        return " ".join(f"{hh[k - 10:k].mean():+6.2f}" for k in (50, 100, 200) if k <= n)

    for moving, noise in ((False, 0.04), (True, 0.04), (True, 0.1)):
        print(f"source {'pans 1 px/frame' if moving else 'static + sensor noise'}, renderer noise {noise}:")
        for mode in fdc.MODES:
            print(f"  {mode:9s} round: {run(mode, False, moving, noise)}   truncate: {run(mode, True, moving, noise)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--media", type=Path, help="a clip to take 4 frames from (default: synthetic)")
    ap.add_argument("--drift", action="store_true", help="print the brightness-drift table instead")
    args = ap.parse_args(argv)
    if args.drift:
        drift()
    else:
        bench(args.runs, args.size, args.media)
    return 0


if __name__ == "__main__":
    sys.exit(main())
