"""Pipeline overhead and memory benchmark (issue 2's targets). Prints its figures; asserts nothing.

    python helpers/bench_pipeline.py                 # both measurements, ~3 minutes on 2 cores
    python helpers/bench_pipeline.py --only overhead --latency 1.0 --frames 60

Overhead: a job of N frames at 1024x576 whose renderer sleeps L seconds per frame (standing in for GPU
sampling, which leaves the CPU free) against N * L. Everything else -- decode, resize, PNG writes,
manifest updates, the H.264 encode with audio -- has to hide behind the sleeps. Target: ratio <= 1.03.
A plain loop of N sleeps is timed in the same run as the floor.

Memory: peak RSS of a 600-frame job against a 60-frame job at the same size, each in its own process
(renderer sleeps 0 s, so the run is as fast as the CPU work allows). Target: within 10 %.

The source is ../shared/media/box.mp4 (640x480, 29.97 fps, 456 frames, audio) read at 40 fps, so 600 output
frames exist, resized to 1024x576.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "helpers"))
MEDIA = ROOT.parent / "shared" / "media"


def _settings(src: Path, out: Path, frames: int):
    from lib_vid2vid.params import Settings

    return Settings().replace(input=str(src), output_dir=str(out), width=1024, height=576, fps=40.0,
                              max_frames=frames, seed=1, denoise=0.5)


def child(args: argparse.Namespace) -> None:
    """Run one job in this process and print a JSON line with wall time and peak RSS."""
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import SleepRenderer

    with tempfile.TemporaryDirectory() as tmp:
        s = _settings(Path(args.source), Path(tmp), args.frames)
        t0 = time.perf_counter()
        res = run_job(s, SleepRenderer(args.latency))
        wall = time.perf_counter() - t0
        assert res.status == "done", res
    from _bench_common import peak_rss_mb  # VmHWM: ru_maxrss carries the parent's peak across exec

    rss_mb = peak_rss_mb()
    print(json.dumps({"frames": res.frames_done, "wall": wall, "rss_mb": rss_mb}))


def run_child(source: Path, frames: int, latency: float) -> dict:
    cmd = [sys.executable, __file__, "--child", "--source", str(source), "--frames", str(frames),
           "--latency", str(latency)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "helpers")])}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sleep_floor(frames: int, latency: float) -> float:
    t0 = time.perf_counter()
    for _ in range(frames):
        time.sleep(latency)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("overhead", "memory"))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--long-frames", type=int, default=600)
    ap.add_argument("--latency", type=float, default=1.0, help="simulated sampling time per frame, seconds")
    ap.add_argument("--source", default=str(MEDIA / "box.mp4"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    src = Path(args.source)
    if not src.is_file():
        sys.exit(f"error: benchmark clip {src} not found: give --source VIDEO")
    from _bench_common import machine

    print(f"machine: {machine()}")
    print(f"source: {src.name} at 40 fps -> 1024x576")
    if args.only in (None, "overhead"):
        floor = sleep_floor(args.frames, args.latency)
        job = run_child(src, args.frames, args.latency)
        ideal = args.frames * args.latency
        print(f"overhead: {args.frames} frames, renderer sleeps {args.latency:g} s/frame")
        print(f"  plain sleep loop   {floor:8.2f} s   ratio {floor / ideal:.4f}")
        print(f"  vid2vid job        {job['wall']:8.2f} s   ratio {job['wall'] / ideal:.4f}   (target <= 1.03)")
    if args.only in (None, "memory"):
        short = run_child(src, args.frames, 0.0)
        long = run_child(src, args.long_frames, 0.0)
        print("memory: peak RSS, renderer sleeps 0 s")
        print(f"  {short['frames']:4d} frames   {short['rss_mb']:7.1f} MB   ({short['wall']:.1f} s)")
        print(f"  {long['frames']:4d} frames   {long['rss_mb']:7.1f} MB   ({long['wall']:.1f} s)   "
              f"ratio {long['rss_mb'] / short['rss_mb']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
