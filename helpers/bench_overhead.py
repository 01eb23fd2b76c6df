"""What a job costs beside a fast sampler: overhead at 0.05, 0.1 and 1 s per frame, and the ceiling.

    python helpers/bench_overhead.py                       # the full table (~15-25 minutes on 2 cores)
    python helpers/bench_overhead.py --sizes 1024x576 --latencies 0.1 --frames 120 --configs default

For each size (default 512x512 and 1024x576) and each configuration (the default settings and every strategy
of :data:`lib_vid2vid.params.STRATEGIES`; a strategy equal to the default (keyframes_adaptive) is listed once with it),
each in its own child process:

* **overhead at L s/frame**: a job of ``--frames`` frames (``--slow-frames`` at L >= 0.5 s) from box.mp4
  (read at 40 fps, resized to the size) whose renderer stands in for the host's sampler: per call it spends
  ``(1 - g) * L`` sleeping (the GPU, the CPU free) and ``g * L`` in pure-Python work that holds the GIL
  (the host's sampling loop; ``--gil-share`` g, default 0.2). The Python work is a fixed count of
  iterations, calibrated in the child before the runs, so threads that take the GIL make it last longer, as
  they would in the WebUI. Right after the job the same child times a **plain loop** calling the same
  renderer as many times as the job did (the keyframe strategies render their keyframes only):
  ``ratio = job wall / plain loop wall`` is what the job adds, measured side by side (the machine's load hits
  both); **added ms/frame** = (job wall - plain loop wall) / frames, the time per frame beyond the renders.
* **ceiling**: the same job with a renderer that costs nothing (returns the init at once): frames per second,
  and the CPU time it used (all threads, user + system) per frame, which other work on the machine changes
  far less than the wall time. On 2 free cores the ceiling is at best 2000 / (CPU ms per frame).

Wall time is the whole ``run_job`` (open, frames, final export with audio, the job report). Prints the machine,
the load average at start and end, and one table per size.

Before/after in one run: ``--code DIR [DIR ...]`` measures the ``lib_vid2vid`` of each checkout (e.g. main and a
branch), each configuration of each size with every checkout in turn, so the machine's load hits them alike;
``--latencies`` with no value measures the ceiling only::

    python helpers/bench_overhead.py --code ../main . --latencies --ceiling-frames 60
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


class GilRenderer:
    """Sleeps ``(1 - gil_share) * seconds`` and runs ``gil_share * seconds`` worth of pure-Python work per
    call (``iters_per_s`` calibrated iterations, holding the GIL); returns copies of the init."""

    def __init__(self, seconds: float, gil_share: float, iters_per_s: float):
        self.sleep_s = seconds * (1.0 - gil_share)
        self.iters = int(seconds * gil_share * iters_per_s)
        self.calls = 0

    def render(self, request):
        self.calls += 1
        time.sleep(self.sleep_s)
        python_work(self.iters)
        return [request.init.copy() for _ in range(request.batch_size * request.n_iter)]


def python_work(n: int) -> int:
    """``n`` iterations of plain Python arithmetic (holds the GIL, releases it only at the switch interval)."""
    x = 0
    for i in range(n):
        x = (x + i * 7) & 0xFFFF
    return x


def calibrate(seconds: float = 0.3) -> float:
    """Iterations of :func:`python_work` per second in this process (best of 3)."""
    best = 0.0
    for _ in range(3):
        n = 200_000
        t0 = time.perf_counter()
        python_work(n)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads), seconds."""
    import resource

    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def preset_of(config: str) -> dict:
    """A configuration's settings: ``default``, a strategy name, or either with changes, ``NAME:SETTING=VALUE,...``
    (e.g. ``keyframes:keyframe_flow=fast``), read as bench_consistency's ``--variant``."""
    from bench_consistency import PROPAGATION_KEY, parse_variant

    from lib_vid2vid.params import STRATEGIES

    known = {"default": {}, **STRATEGIES}
    if ":" not in config:
        if config not in known:
            sys.exit(f"error: configuration {config!r} is neither default nor a strategy ({', '.join(STRATEGIES)})")
        return dict(known[config])
    try:
        _, preset = parse_variant(config, known)
    except ValueError as exc:
        sys.exit(f"error: --configs {exc}")
    if PROPAGATION_KEY in preset:
        sys.exit(f"error: configuration {config!r}: propagation.* fields are for bench_consistency only")
    return preset


def _settings(src: Path, out: Path, frames: int, size: tuple[int, int], config: str):
    from lib_vid2vid.params import Settings

    return Settings().replace(input=str(src), output_dir=str(out), width=size[0], height=size[1], fps=40.0,
                              max_frames=frames, seed=1, denoise=0.5, **preset_of(config))


def child(args: argparse.Namespace) -> None:
    """One configuration at one size: the ceiling, then per latency the plain loop and the job. JSON out."""
    sys.path.insert(0, args.child_code)  # the checkout under test, before this one
    import numpy as np

    import lib_vid2vid
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import SleepRenderer
    from lib_vid2vid.renderer import RenderRequest

    size = tuple(int(v) for v in args.size.split("x"))
    src = Path(args.source)
    res: dict = {"config": args.config, "size": args.size, "code": str(Path(lib_vid2vid.__file__).parents[1])}
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), cpu_seconds()
        r = run_job(_settings(src, Path(tmp) / "ceiling", args.ceiling_frames, size, args.config), SleepRenderer(0))
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert r.status == "done", r
        res["ceiling_fps"] = r.frames_done / wall
        res["cpu_ms_per_frame"] = 1000 * cpu / r.frames_done
        ips = calibrate()
        res["iters_per_s"] = ips
        req = RenderRequest(init=np.zeros((size[1], size[0], 3), np.uint8), seed=1, denoise=0.5, steps=20, cfg=7.0,
                            prompt="")
        for lat in args.latencies:
            n = args.slow_frames if lat >= 0.5 else args.frames
            s = _settings(src, Path(tmp) / f"l{lat}", n, size, args.config)
            rend = GilRenderer(lat, args.gil_share, ips)
            t0 = time.perf_counter()
            r = run_job(s, rend)
            job = time.perf_counter() - t0
            assert r.status == "done", r
            # the plain loop makes the job's own renderer calls (P per frame for P passes, the keyframes only
            # for the keyframe strategies), right after it
            calls = max(1, rend.calls)
            rend = GilRenderer(lat, args.gil_share, ips)
            t0 = time.perf_counter()
            for _ in range(calls):
                rend.render(req)
            plain = time.perf_counter() - t0
            res[str(lat)] = {"frames": n, "calls": calls, "plain": plain, "job": job, "ideal": calls * lat}
    print(json.dumps(res))


def run_child(args: argparse.Namespace, config: str, size: str, code: Path = ROOT) -> dict:
    """One child process measuring ``config`` at ``size`` with the lib_vid2vid of checkout ``code``."""
    cmd = [sys.executable, __file__, "--child", str(code), "--source", args.source, "--config", config, "--size", size,
           "--frames", str(args.frames), "--slow-frames", str(args.slow_frames),
           "--ceiling-frames", str(args.ceiling_frames), "--gil-share", str(args.gil_share),
           "--latencies", *[str(v) for v in args.latencies]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT / "helpers")])}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(code))
    if out.returncode:
        sys.exit(f"error: {config} at {size} ({code}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _short(code: Path, codes: list[Path]) -> str:
    """A checkout's name in the table: its folder name, or the path if two share a name."""
    names = [c.name for c in codes]
    return code.name if names.count(code.name) == 1 else str(code)


def configs(names: list[str] | None) -> list[str]:
    """The default, then every strategy whose settings differ from the default's."""
    from lib_vid2vid.params import STRATEGIES

    out = ["default"] + [k for k in STRATEGIES if k not in same_as_default()]
    if names is None:
        return out
    for name in names:
        preset_of(name)  # a clear error for a name that is not one
    return [c for c in out if c in names] + [c for c in names if ":" in c]


def same_as_default() -> list[str]:
    """The strategy whose settings are the default's, if one is (presets are distinct: at most one)."""
    from lib_vid2vid.params import default_strategy

    name = default_strategy()
    return [name] if name else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["512x512", "1024x576"])
    ap.add_argument("--latencies", nargs="*", type=float, default=[0.05, 0.1, 1.0],
                    help="simulated sampling seconds per frame (none: the ceiling only)")
    ap.add_argument("--frames", type=int, default=60, help="frames per job at latencies below 0.5 s")
    ap.add_argument("--slow-frames", type=int, default=20, help="frames per job at latencies of 0.5 s or more")
    ap.add_argument("--ceiling-frames", type=int, default=60, help="frames of the zero-cost-renderer job")
    ap.add_argument("--gil-share", type=float, default=0.2, help="part of each call spent in pure Python")
    ap.add_argument("--configs", nargs="+", default=None, help="default and/or strategy names, each optionally with changed settings, NAME:FIELD=VALUE,... "
                         "(e.g. keyframes:keyframe_flow=fast; default: all)")
    ap.add_argument("--source", default=str(MEDIA / "box.mp4"))
    ap.add_argument("--code", nargs="+", type=Path, default=None,
                    help="checkouts whose lib_vid2vid to measure side by side (default: this one)")
    ap.add_argument("--child", dest="child_code", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_code:
        child(args)
        return
    if not Path(args.source).is_file():
        sys.exit(f"error: benchmark clip {args.source} not found: give --source VIDEO")
    from _bench_common import format_table, header, load_average

    header("vid2vid overhead beside a fast sampler, and the ceiling")
    same = same_as_default()
    print(f"source: {Path(args.source).name} at 40 fps; {args.frames} frames per job below 0.5 s/frame, "
          f"{args.slow_frames} at 0.5 s or more, {args.ceiling_frames} for the ceiling; renderer: "
          f"{args.gil_share:.0%} of each call pure Python holding the GIL, the rest asleep"
          + (f"; default = {', '.join(same)}" if same else ""))
    codes = [c.resolve() for c in args.code] if args.code else [ROOT]
    for code in codes:
        if not (code / "lib_vid2vid" / "__init__.py").is_file():
            sys.exit(f"error: {code} has no lib_vid2vid: give checkouts of this project to --code")
    for size in args.sizes:
        rows = []
        for config in configs(args.configs):
            for code in codes:
                r = run_child(args, config, size, code)
                name = config + (" (= " + ", ".join(same) + ")" if config == "default" and same else "")
                row = ([name, _short(code, codes)] if len(codes) > 1 else [name]) + [
                    f"{r['ceiling_fps']:.1f}", f"{r['cpu_ms_per_frame']:.0f}"]
                ms = [r[str(lat)] for lat in args.latencies]
                row += [" / ".join(f"{m['calls']}:{m['frames']}" for m in ms)] if ms else []
                row += [f"{m['job'] / m['plain']:.2f}" for m in ms]
                row += [f"{1000 * (m['job'] - m['plain']) / m['frames']:.0f}" for m in ms]
                rows.append(row)
                print(f"  {size} {config} {code}: " + json.dumps(r), flush=True)
        print(f"\n{size}: ratio = job wall / plain loop of the job's renderer calls, side by side (renders:frames: "
              f"the keyframe strategies render their keyframes only); added = (job - plain loop) / frames; "
              f"ceiling = frames/s with a renderer that costs nothing")
        head = ["configuration"] + (["code"] if len(codes) > 1 else []) + ["ceiling fps", "CPU ms/frame"]
        head += ["renders:frames"] if args.latencies else []
        print(format_table(head + [f"ratio @ {v:g} s" for v in args.latencies]
                           + [f"added ms/frame @ {v:g} s" for v in args.latencies], rows))
        print(flush=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
