"""One job over 1, 2, 4, 8 WebUI backends (issue 18): speed-up, a backend killed mid-job, the driver's overhead.

    python helpers/bench_scale.py                  # 240 frames, L = 0.5 s, 1/2/4/8 backends, threads (~5 min)
    python helpers/bench_scale.py --engine ray     # the same with each backend's client in a Ray actor
    python helpers/bench_scale.py --only shots     # only the sequential strategy on a clip of 4 shots

Each backend is a fake WebUI API on loopback (tests/fake_webui.py) that sleeps ``--latency`` L seconds per image
(a GPU's time, no CPU) and returns the init image darkened: deterministic, so every run's frames are compared
byte for byte with the one-backend run. The job is the default strategy (fixed seed, colour coherence: no stage
reads the previous output, so frames render in parallel) on a generated 96x64 clip, without the report.

Per backend count n: the whole ``run_job`` wall time (open, frames, final export), the speed-up against one
backend measured in the same run, the ideal ``ceil(F / n) * L``, and the driver's overhead per frame
``(wall - ideal) / F``. Then the same job on ``--kill-of`` backends with one killed (closes every connection,
answers nothing) after a third of the frames: frames rendered per backend, whether all F frames are there, and
whether they are byte-identical to the one-backend run (none lost, none duplicated: each written once by the
driver).

Shots (``--shots`` S, default 4): a sequential strategy (fdc_vid2vid: frame delta correction reads the previous
output) with ``reset_at_cuts`` on a generated clip of S shots of F / S frames (tests/clips.py make_shots_clip:
each shot its own texture in its own luma band), on 1 and on S backends: the shots render in parallel, each one
frame after another, so the ideal is ``F / S * L``; speed-up, overhead per frame and byte-identity as above.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import format_table, header  # noqa: E402


def _job(clip: Path, out: Path, frames: int, dispatcher, progress=None, **kw):
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job

    s = Settings().replace(input=str(clip), output_dir=str(out), max_frames=frames, width=96, height=64,
                           prompt="bench", seed=3, report=False, **kw)
    t0 = time.perf_counter()
    res = run_job(s, dispatcher, progress=progress)
    wall = time.perf_counter() - t0
    if res.status != "done":
        raise SystemExit(f"job ended {res.status}: {res.message}")
    return res, wall


def _frames(job_dir: Path, frames: int) -> list[bytes]:
    from lib_vid2vid.workspace import Job

    job = Job.open(job_dir)
    return [job.frame_path("pass1", i).read_bytes() for i in range(frames)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--latency", type=float, default=0.5, help="seconds each fake backend sleeps per image")
    ap.add_argument("--backends", default="1,2,4,8", help="backend counts, comma separated")
    ap.add_argument("--kill-of", type=int, default=4, help="backends in the run where one is killed (0: skip)")
    ap.add_argument("--engine", choices=("threads", "ray"), default="threads")
    ap.add_argument("--shots", type=int, default=4, help="shots of the sequential-strategy clip (0: skip)")
    ap.add_argument("--only", choices=("all", "independent", "shots"), default="all")
    args = ap.parse_args(argv)

    from lib_vid2vid.dispatch import webui_dispatcher
    from tests.clips import make_clip
    from tests.fake_webui import FakeWebUI

    header(f"bench_scale: {args.frames} frames, L = {args.latency:g} s per image, engine {args.engine}")
    if args.engine == "ray":  # started before the timed runs; its cost printed on its own
        from lib_vid2vid.dispatch import start_ray

        t0 = time.perf_counter()
        start_ray(cpus=max(int(x) for x in args.backends.split(",")))
        print(f"local Ray instance started in {time.perf_counter() - t0:.1f} s")
    F, L = args.frames, args.latency
    counts = [int(x) for x in args.backends.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        clip = make_clip(tmpd / "clip.mp4", n_frames=F, size=(96, 64), fps=Fraction(24))
        rows, base_wall, want, ready = [], None, None, []
        for n in counts if args.only in ("all", "independent") else ():
            servers = [FakeWebUI().__enter__() for _ in range(n)]
            for s in servers:
                s.delay = L
            t0 = time.perf_counter()
            d = webui_dispatcher([s.url for s in servers], engine=args.engine)
            d.check()  # through the Ray actors: they are up before the timed job
            ready.append(f"{n}: {time.perf_counter() - t0:.1f} s")
            try:
                res, wall = _job(clip, tmpd / f"out{n}", F, d)
            finally:
                d.close()
                for s in servers:
                    s.__exit__(None, None, None)
            frames = _frames(res.job_dir, F)
            if want is None:
                want = frames
            base_wall = base_wall or wall
            ideal = math.ceil(F / n) * L
            rows.append([n, f"{wall:.1f}", f"{base_wall / wall:.2f}x", f"{base_wall / wall / n:.2f}",
                         f"{ideal:.1f}", f"{(wall - ideal) / F * 1000:.0f}",
                         "yes" if frames == want else "NO"])
        if rows:
            print("backends checked and ready (not in the wall times): " + ", ".join(ready))
            print(format_table(["backends", "wall s", "speed-up", "per backend", "ideal s", "overhead ms/frame",
                                "same bytes"], rows))

        if args.shots > 1 and args.only in ("all", "shots"):
            _shots(args, tmpd)

        if args.kill_of > 1 and args.only in ("all", "independent"):
            n = args.kill_of
            servers = [FakeWebUI().__enter__() for _ in range(n)]
            for s in servers:
                s.delay = L
            d = webui_dispatcher([s.url for s in servers], engine=args.engine)
            d.check()
            victim = servers[-1]

            def progress(p):
                if p.done >= F // 3 and not victim.dead:
                    victim.kill()

            try:
                res, wall = _job(clip, tmpd / "kill", F, d, progress)
            finally:
                d.close()
                for s in servers:
                    s.__exit__(None, None, None)
            frames = _frames(res.job_dir, F)
            ideal = F / 3 / n * L + (F - F / 3) / (n - 1) * L
            print(f"\n{n} backends, the last killed after frame {F // 3}: wall {wall:.1f} s (ideal ~{ideal:.1f} s), "
                  f"speed-up {base_wall / wall:.2f}x against one backend")
            print("frames per backend: " + ", ".join(f"{c}{'' if a else ' (out)'}" for _, c, _, a in d.stats()))
            print(f"frames rendered {sum(d.rendered)} of {F}; written {len(frames)}; byte-identical to one backend: "
                  f"{'yes' if frames == want else 'NO'}")
            print("notes: " + "; ".join(d.out_reasons.get(u, "") for u in d.names if u in d.out_reasons))
    return 0


def _shots(args, tmpd: Path) -> None:
    """The sequential strategy on a clip of ``args.shots`` shots, on 1 and on ``args.shots`` backends."""
    from lib_vid2vid.dispatch import webui_dispatcher
    from lib_vid2vid.params import STRATEGIES
    from tests.clips import make_shots_clip
    from tests.fake_webui import FakeWebUI

    S, L = args.shots, args.latency
    per = args.frames // S
    F = per * S
    clip = make_shots_clip(tmpd / "shots.mp4", shots=S, frames_per_shot=per, size=(96, 64), fps=Fraction(24))
    kw = {**STRATEGIES["fdc_vid2vid"], "reset_at_cuts": True}
    rows, base_wall, want = [], None, None
    for n in (1, S):
        servers = [FakeWebUI().__enter__() for _ in range(n)]
        for s in servers:
            s.delay = L
        d = webui_dispatcher([s.url for s in servers], engine=args.engine)
        d.check()
        try:
            res, wall = _job(clip, tmpd / f"shots{n}", F, d, **kw)
        finally:
            d.close()
            for s in servers:
                s.__exit__(None, None, None)
        frames = _frames(res.job_dir, F)
        want = want or frames
        base_wall = base_wall or wall
        ideal = math.ceil(F / min(n, S)) * L if n < S else per * L
        rows.append([n, f"{wall:.1f}", f"{base_wall / wall:.2f}x", f"{ideal:.1f}",
                     f"{(wall - ideal) / F * 1000:.0f}", "yes" if frames == want else "NO"])
    print(f"\nfdc_vid2vid (reads the previous output) with reset_at_cuts on {S} shots of {per} frames "
          f"(the shots in parallel, each one frame after another):")
    print(format_table(["backends", "wall s", "speed-up", "ideal s", "overhead ms/frame", "same bytes"], rows))


if __name__ == "__main__":
    raise SystemExit(main())
