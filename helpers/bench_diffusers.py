"""Seconds per frame of the diffusers renderer and of image to video with tiny random-weight models on the CPU.
Prints its figures; asserts nothing.

    python helpers/bench_diffusers.py                      # SD and SDXL jobs, SVD clips (~2 minutes on 2 cores)
    python helpers/bench_diffusers.py --frames 24 --size 256x256 --steps 10

What it shows is the wiring, not a model's speed (a real SD 1.5 UNet is ~1000x the tiny one's work; real
speeds need a GPU): for each tiny model a whole vid2vid job (default settings: fixed seed + colour coherence)
of N frames from a small clip, with the time inside ``render`` (the diffusers pipeline call) measured beside the
job's wall time, so ``job s/frame - render s/frame`` is what the job adds around the pipeline. For SVD, a
chained image-to-video job (two clips) against the time inside the clip calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Timed:
    """Wraps a renderer or SVD generator and adds up the seconds spent inside ``render`` / ``clip``."""

    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _timed(self, fn, *a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1

    def render(self, request):
        return self._timed(self.inner.render, request)

    def clip(self, image, **kw):
        return self._timed(self.inner.clip, image, **kw)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", default="256x256", help="WxH of the vid2vid jobs (multiples of 8)")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    w, h = (int(v) for v in args.size.split("x"))

    import numpy as np
    from PIL import Image

    from lib_vid2vid import img2vid, params
    from lib_vid2vid.host.diffusers import DiffusersRenderer, SVDGenerator
    from lib_vid2vid.pipeline import run_job
    from tests import tiny_diffusers as tiny
    from tests.clips import make_clip

    print(f"load average {os.getloadavg()[0]:.1f}, torch threads 1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", n_frames=args.frames, size=(w, h), fps=Fraction(12), audio=False)
        for kind, make in (("sd", tiny.make_sd), ("sdxl", tiny.make_sdxl)):
            renderer = Timed(DiffusersRenderer(make(tmp / kind)))
            s = params.Settings().replace(input=str(clip), output_dir=str(tmp / f"out-{kind}"), width=w, height=h,
                                          seed=1, denoise=0.5, steps=args.steps, prompt="a watercolour cat",
                                          comparison_video=False)
            t = time.perf_counter()
            res = run_job(s, renderer)
            wall = time.perf_counter() - t
            n = res.frames_done
            rows.append((f"tiny {kind} img2img {w}x{h}, {args.steps} steps x denoise 0.5", n, wall / n,
                         renderer.seconds / n))
        gen = Timed(SVDGenerator(tiny.make_svd(tmp / "svd")))
        image = tmp / "image.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
        s = params.Img2VidSettings(width=64, height=64, steps=args.steps, seed=1, frames=40,
                                   output_dir=str(tmp / "out-svd"))
        t = time.perf_counter()
        r = img2vid.run_image(image, gen, s)
        wall = time.perf_counter() - t
        rows.append((f"tiny svd_xt 64x64, {args.steps} steps, 40 frames (2 clips)", r.frames, wall / r.frames,
                     gen.seconds / r.frames))
    print("| job | frames | job s/frame | inside the pipeline s/frame | job - pipeline s/frame |")
    print("|---|--:|--:|--:|--:|")
    for name, n, per, inside in rows:
        print(f"| {name} | {n} | {per:.3f} | {inside:.3f} | {per - inside:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
