"""Propagation benchmark: milliseconds per propagated frame (lib_vid2vid.keyframes), wall and CPU.

    python helpers/bench_propagation.py                       # box.mp4 and bikes.mp4 at 512x512, K = 4
    python helpers/bench_propagation.py --size 1024x576 --interval 8 --clips cup.mp4
    python helpers/bench_propagation.py --code ../main .      # before / after, interleaved run by run

What is timed. The first ``--frames`` (48) frames of each clip at 12 fps, resized to ``--size``, split into
segments of ``--interval`` frames; each segment's keyframes are stand-in renders (the source frames inverted;
the content does not change the cost). For every segment, :func:`lib_vid2vid.keyframes.propagate_segment` runs
with both keyframes and every frame it yields is filled (:func:`lib_vid2vid.keyframes.fill_styled`, the jobs'
default; ``fill_unseen`` in a checkout from before it),
i.e. everything the job does for a propagated frame but decoding, the PNG write and the report (with a checkout
that harmonizes keyframes, keyframe b is harmonized with a first, as in a job). The time per
propagated frame is the segment's wall time divided by its propagated frames, median over segments and
``--repeat`` runs; **CPU** is the process's CPU time (all threads) over the same segments, per propagated frame:
on a shared machine it moves far less with the load than the wall time, and on 2 free cores the wall time is
about CPU / 1.5-2 (OpenCV runs the flows and remaps on both cores). Per video frame: the same wall time spread over
the segment's K frames (a keyframe's own frame costs no propagation). ``flows``: the flows alone
(``keyframes.segment_flows`` of the same segment, DIS and the evidence check, as a job computes them; the
pairs one by one in a checkout from before it), timed separately. **One DIS flow**: one
DIS medium flow of the same size from one reused OpenCV instance, timed beside it (the same for every checkout):
the frame's time in units of it is the ratio the load moves least. OpenCV uses its default threads (2 on the
2-core machine). The target (issue 14): at most 40 ms per 512x512 frame on 2 cores. **Once keyframe b is in**:
keyframe b is handed over as a function (as a job does), and the time from its call (the segment's flows and
chains done) to the segment's last frame, per propagated frame, is what a job beside the renders still has to do
after the render of a segment's second keyframe.

Variants, timed side by side and interleaved run by run: ``evidence`` (the default propagation, flows kept where
the frames show motion, :func:`lib_vid2vid.flow.evidence_flow`) and ``raw DIS`` (``PropagationSettings(
flow_evidence=False)``) and ``no residual`` (``pick=nearer, seen_residual=0``: without the source residual of each
carried keyframe, which picks and keeps pixels, as before December 2026), ``fast`` (``flow_scale=0.5``, the
``keyframe_flow=fast`` propagation: the flows on half-size frames) and ``2/3`` (``flow_scale=0.67``); ``--variants evidence`` times the default
only. ``--code DIR [DIR ...]`` times the
``lib_vid2vid`` of each checkout (each in its own process, interleaved run by run), e.g. main against a branch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import MEDIA, ROOT, format_table, header, load_average  # noqa: E402

VARIANTS = {"evidence": {}, "raw DIS": {"flow_evidence": False}, "no residual": {"pick": "nearer", "seen_residual": 0.0},
            "fast": {"flow_scale": 0.5}, "2/3": {"flow_scale": 0.67}}
"""Variant -> PropagationSettings fields changed from the default."""


def child(args: argparse.Namespace) -> int:
    """One run of one clip and variant with the lib_vid2vid on sys.path; prints a JSON line."""
    sys.path.insert(0, args.child_code)  # the checkout under test, before this one (_bench_common adds it)
    import cv2
    import numpy as np

    from lib_vid2vid import keyframes as kf
    from lib_vid2vid import video

    w, h = (int(x) for x in args.size.lower().split("x"))
    frames = [f for i, f in video.iter_frames(MEDIA / args.clip, fps=Fraction(12), size=(w, h)) if i < args.frames]
    frames = frames[: args.frames]
    changes = VARIANTS[args.variant]
    evidence = changes.get("flow_evidence", True)
    try:
        ps = kf.PropagationSettings(flow_quality=args.quality, **changes)
    except TypeError:  # a checkout from before the field
        ps = kf.PropagationSettings(flow_quality=args.quality)
    fill = getattr(kf, "fill_styled", kf.fill_unseen)  # the jobs' default fill of the checkout under test
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[:2]]
    dis.calc(grey[1], grey[0], None)  # warm
    totals, flows, one_flow, per_video, after_b = [], [], [], [], []
    lazy = hasattr(kf, "Keyframe")  # a checkout whose propagate_segment takes keyframe b as a function
    harmonizes = hasattr(kf, "harmonize_keyframe")  # a checkout that harmonizes keyframe b with a (December 2026)
    cpu = wall = 0.0
    made_frames = 0
    for a in range(0, len(frames) - args.interval, args.interval):
        seg = frames[a:a + args.interval + 1]
        ka, kb = 255 - seg[0], 255 - seg[-1]
        n = len(seg) - 2
        asked: list[float] = []

        def key_b(kb: np.ndarray = kb, asked: list[float] = asked) -> np.ndarray:
            asked.append(time.perf_counter())
            return kb

        c0, t0 = time.process_time(), time.perf_counter()
        extra = {"harmonized": lambda img: None} if harmonizes else {}  # as a job: keyframe b harmonized first
        for j, made, unseen in kf.propagate_segment(seg, ka, key_b if lazy else kb, ps, **extra):
            fill(made, unseen, seg[j])
        end = time.perf_counter()
        dt = end - t0
        if asked:
            after_b.append((end - asked[0]) * 1000 / n)
        cpu += time.process_time() - c0
        wall += dt
        made_frames += n
        totals.append(dt * 1000 / n)
        per_video.append(totals[-1] * n / args.interval)  # the keyframe's own frame costs nothing
        t0 = time.perf_counter()
        if hasattr(kf, "segment_flows"):  # the segment's flows as the job computes them
            kf.segment_flows(seg, ps)
        else:
            scale = changes.get("flow_scale", 1.0)
            greys = [cv2.cvtColor(s, cv2.COLOR_RGB2GRAY) for s in seg]
            if scale < 1.0:  # the flows are computed on the frames resized so (their resize is timed with them)
                fsize = (max(8, round(w * scale)), max(8, round(h * scale)))
                greys = [cv2.resize(g, fsize, interpolation=cv2.INTER_AREA) for g in greys]
            for k in range(len(greys) - 1):
                if "evidence" in kf._pair_flows.__code__.co_varnames:
                    kf._pair_flows(greys[k], greys[k + 1], args.quality, evidence)
                else:
                    kf._pair_flows(greys[k], greys[k + 1], args.quality)
        flows.append((time.perf_counter() - t0) * 1000 / n)
        g0, g1 = (cv2.cvtColor(s, cv2.COLOR_RGB2GRAY) for s in frames[a:a + 2])
        t0 = time.perf_counter()
        dis.calc(g1, g0, None)
        one_flow.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"totals": totals, "flows": flows, "one_flow": one_flow, "per_video": per_video, "after_b": after_b,
                      "cpu": cpu * 1000 / made_frames, "wall": wall * 1000 / made_frames,
                      "threads": cv2.getNumThreads(), "code": str(Path(kf.__file__).parents[1])}))
    return 0


def run_child(args: argparse.Namespace, code: Path, clip: str, variant: str) -> dict:
    cmd = [sys.executable, __file__, "--child", str(code), "--clip", clip, "--variant", variant, "--size", args.size,
           "--frames", str(args.frames), "--interval", str(args.interval), "--quality", args.quality]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT / "helpers")])}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(code))
    if out.returncode:
        sys.exit(f"error: {clip} {variant} ({code}) failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(res["code"]).resolve() != code:
        sys.exit(f"error: the child imported {res['code']}, not {code}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="box.mp4,bikes.mp4")
    ap.add_argument("--size", default="512x512", help="WxH in pixels (default 512x512)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--interval", type=int, default=4, help="keyframe interval K (default 4)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quality", default="medium", help="DIS preset of the flows (default medium)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--code", nargs="+", type=Path, default=None,
                    help="checkouts whose lib_vid2vid to time, side by side (default: this one)")
    ap.add_argument("--child", dest="child_code", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--clip", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_code:
        return child(args)

    import cv2

    codes = [c.resolve() for c in args.code] if args.code else [ROOT]
    for code in codes:
        if not (code / "lib_vid2vid" / "__init__.py").is_file():
            sys.exit(f"error: {code} has no lib_vid2vid: give checkouts of this project to --code")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"error: unknown variant {unknown[0]!r}: use {', '.join(VARIANTS)}")
    names = [c.name for c in codes]
    short = {c: (c.name if names.count(c.name) == 1 else str(c)) for c in codes}
    header("Propagation benchmark (lib_vid2vid.keyframes.propagate_segment)")
    print(f"setup: {args.frames} frames at 12 fps, {args.size}, keyframe interval {args.interval}, DIS {args.quality}, "
          f"{args.repeat} runs, OpenCV threads {cv2.getNumThreads()}, code: {', '.join(str(c) for c in codes)}")
    rows = []
    for clip in [c.strip() for c in args.clips.split(",") if c.strip()]:
        runs: dict[tuple[Path, str], list[dict]] = {(c, v): [] for c in codes for v in variants}
        for _ in range(args.repeat):
            for code in codes:
                for v in variants:
                    runs[(code, v)].append(run_child(args, code, clip, v))
        for (code, v), rs in runs.items():
            def med(key: str, rs: list[dict] = rs) -> float:
                return statistics.median(x for r in rs for x in r[key])
            total, fl, one, video_frame = med("totals"), med("flows"), med("one_flow"), med("per_video")
            cpu = statistics.median(r["cpu"] for r in rs)
            tail = f"{med('after_b'):.1f}" if all(r.get("after_b") for r in rs) else "n/a"
            rows.append([clip] + ([short[code]] if len(codes) > 1 else []) + [
                v, f"{total:.1f}", f"{cpu:.1f}", f"{fl:.1f}", f"{total - fl:.1f}", f"{one:.1f}", f"{total / one:.2f}",
                f"{video_frame:.1f}", tail])
        print(f"  {clip} done, load average {load_average()}", flush=True)
    print()
    print(format_table(["clip"] + (["code"] if len(codes) > 1 else []) + [
        "flows", "ms / propagated frame", "CPU ms / propagated frame", "of which flows", "the rest",
        "one DIS flow (ms)", "frame / one flow", "ms / video frame", "ms / frame once keyframe b is in"], rows))
    print("frame / one flow: the propagated frame's wall time in units of one DIS medium flow of the same size timed "
          "beside it (the ratio the machine's load moves least; times the flow's ms on free cores gives the free-core "
          "cost)")
    print("once keyframe b is in: the segment's time from the moment it asks for its second keyframe (its flows "
          "and chains done) to its last frame, per propagated frame: what is left of a segment after the render of "
          "its second keyframe when a job propagates beside the renders (n/a: a checkout that takes the keyframe "
          "as an image only)")
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
