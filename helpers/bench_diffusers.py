"""Seconds per frame of the diffusers renderer and of image to video with tiny random-weight models on the CPU.
Prints its figures; asserts nothing.

    python helpers/bench_diffusers.py                      # SD and SDXL jobs, SVD clips (~2 minutes on 2 cores)
    python helpers/bench_diffusers.py --frames 24 --size 256x256 --steps 10
    python helpers/bench_diffusers.py --ray --workers 1,2  # the tiny SD job on 1 and 2 Ray CPU workers (~2 min)

What it shows is the wiring, not a model's speed (a real SD 1.5 UNet is ~1000x the tiny one's work; real
speeds need a GPU): for each tiny model a whole vid2vid job (default settings: fixed seed + colour coherence)
of N frames from a small clip, with the time inside ``render`` (the diffusers pipeline call) measured beside the
job's wall time, so ``job s/frame - render s/frame`` is what the job adds around the pipeline. For SVD, a
chained image-to-video job (two clips) against the time inside the clip calls.

``--ray``: the tiny SD job in this process, then on N local Ray CPU workers (lib_vid2vid/dispatch_ray.py; every
worker loads the model once, before the timing), side by side in one run, each job's frames compared byte for
byte with the in-process run. Per row: job s/frame and the speed-up against the in-process renderer; the
workers' seconds inside the pipeline per frame (all workers added up: the rendering's work); what each Ray call
costs beyond its pipeline (transport, pickling: ms/frame); and the driver's wall time per frame beyond the
busiest worker's calls (what the job owner adds that the workers do not hide). Ray's start and the workers'
model loads are printed apart: they are paid once per job. The runs are interleaved (in-process, 1 worker,
2 workers, again ...) ``--rounds`` times and each row shows its median round, so a change in the machine's
other load falls on every row alike.
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
    ap.add_argument("--ray", action="store_true", help="only the Ray workers' comparison (needs the ray extra)")
    ap.add_argument("--workers", default="1,2", help="with --ray: worker counts to time, e.g. 1,2")
    ap.add_argument("--rounds", type=int, default=3, help="with --ray: interleaved rounds (median reported)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.ray:
        return ray_main(args)
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


def ray_main(args) -> int:
    """The tiny SD job in this process and on each worker count of ``--workers``, interleaved ``--rounds`` times
    (see the module docstring); per row the median round."""
    import statistics

    w, h = (int(v) for v in args.size.split("x"))
    counts = [int(c) for c in args.workers.split(",")]

    from lib_vid2vid import params
    from lib_vid2vid.dispatch import start_ray
    from lib_vid2vid.dispatch_ray import diffusers_dispatcher
    from lib_vid2vid.host.diffusers import DiffusersRenderer
    from lib_vid2vid.pipeline import run_job
    from tests import tiny_diffusers as tiny
    from tests.clips import make_clip

    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", n_frames=args.frames, size=(w, h), fps=Fraction(12), audio=False)
        model = tiny.make_sd(tmp / "sd")
        runs = 0

        def job(renderer):
            nonlocal runs
            runs += 1
            s = params.Settings().replace(input=str(clip), output_dir=str(tmp / f"run{runs}"), width=w, height=h,
                                          seed=1, denoise=0.5, steps=args.steps, prompt="a watercolour cat",
                                          comparison_video=False, report=False)
            t = time.perf_counter()
            res = run_job(s, renderer)
            wall = time.perf_counter() - t
            frames = [p.read_bytes() for p in sorted((res.job_dir / "frames" / "pass1").glob("*.png"))]
            return res.frames_done, wall, frames

        local = Timed(DiffusersRenderer(model))
        t = time.perf_counter()
        start_ray(None, cpus=sum(counts))
        print(f"Ray start (local instance): {time.perf_counter() - t:.1f} s")
        pools = {}
        for k in counts:
            t = time.perf_counter()
            pools[k] = diffusers_dispatcher(str(model), workers=k)
            inside = ", ".join(f"{x.info['load_s']:.1f}" for x in pools[k].renderers)
            print(f"{k} worker(s) started and loaded the model: {time.perf_counter() - t:.1f} s ({inside} s of it "
                  f"inside each worker's load)")
        results: dict[str, list[tuple]] = {}
        want = None
        try:
            for _ in range(args.rounds):
                before = local.seconds
                n, wall, want_ = job(local)
                want = want or want_
                results.setdefault("in this process (1 renderer)", []).append(
                    (n, wall / n, (local.seconds - before) / n, None, wall / n - (local.seconds - before) / n,
                     want_ == want))
                for k, d in pools.items():
                    pipe0, busy0 = sum(x.pipeline_s for x in d.renderers), list(d.busy_s)
                    n, wall, frames = job(d)
                    pipe = sum(x.pipeline_s for x in d.renderers) - pipe0
                    busy = [b - b0 for b, b0 in zip(d.busy_s, busy0)]
                    results.setdefault(f"{k} Ray CPU worker{'s' if k > 1 else ''}", []).append(
                        (n, wall / n, pipe / n, 1000 * (sum(busy) - pipe) / n, wall / n - max(busy) / n,
                         frames == want))
                loads.append(os.getloadavg()[0])
        finally:
            for d in pools.values():
                d.close()
    print(f"tiny SD img2img {w}x{h}, {args.steps} steps x denoise 0.5, default strategy (frames in parallel), "
          f"{args.rounds} interleaved rounds, median round per row; torch threads 1 per renderer; load average "
          f"{' -> '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores")
    print("| renderer | frames | job s/frame | speed-up | pipeline s/frame (all workers) | Ray call beyond the "
          "pipeline ms/frame | driver beyond the busiest worker s/frame | bytes = in-process |")
    print("|---|--:|--:|--:|--:|--:|--:|:-:|")
    base = statistics.median(r[1] for r in results["in this process (1 renderer)"])
    for name, rs in results.items():
        n, per, inside, call_ms, driver, _ = sorted(rs, key=lambda r: r[1])[len(rs) // 2]
        same = all(r[5] for r in rs)
        print(f"| {name} | {n} | {per:.3f} | {base / per:.2f}x | {inside:.3f} | "
              f"{'-' if call_ms is None else f'{call_ms:.1f}'} | {driver:.3f} | {'yes' if same else 'NO'} |")
    return 0

if __name__ == "__main__":
    sys.exit(main())
