"""Scene cut benchmark: how well the two tests of lib_vid2vid.scene_cuts tell cuts from motion.

    python helpers/bench_scene_cuts.py                       # the five clips of ../shared/media at 8, 12 and 24 fps
    python helpers/bench_scene_cuts.py --fps 12 --width 512

Every consecutive pair of source frames of each clip (read from its start as a job reads it, ``--width`` px wide,
``--frames`` frames at each rate), and of the synthetic clips of :mod:`synthetic_motion` at 12 fps, gets the
histogram distance ``d`` and the motion test's ``u`` (formulas in lib_vid2vid/scene_cuts.py). The true cuts are
:data:`CUTS`, looked at frame by frame: a pair whose frames straddle one is a cut (at other rates the instant of a
cut is known to a twelfth of a second, so every pair that straddles it counts as that cut, found if any of them is
found); every other pair is not. Printed per rate: the cuts each test finds at the default thresholds, the smallest
``u`` of a cut and the largest of a non-cut (the margin the ``scene_cut_motion`` default sits in), the pairs it
would wrongly call cuts, and the motion test's cost per frame. Then fades within a shot (no cut): each clip's first
frames of one shot at 12 fps faded in from black and out to it, and the pairs each test calls a cut.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import MEDIA, ROOT, header  # noqa: E402

sys.path.insert(0, str(ROOT))

CUTS = {"bikes.mp4": (14, 36, 65, 89, 116), "Megamind.avi": (0, 48, 76, 99)}
"""The cuts of the benchmark clips: the last frame of a shot when read at 12 fps from the start (a cut lies
between frames c and c + 1)."""


def source(clip: Path, fps: float, width: int, frames: int):
    from lib_vid2vid import video
    from lib_vid2vid.loop import make_plan
    from lib_vid2vid.params import Settings

    s = Settings().replace(input=str(clip), width=width, height=0, fps=fps, max_frames=frames)
    plan = make_plan(s, video.probe(str(clip)))
    out = []
    for i, rgb in video.iter_frames(str(clip), fps=plan.fps, size=(plan.width, plan.height)):
        if i >= plan.total:
            break
        out.append(rgb)
    return out


def straddles(i: int, fps: float, cut: int) -> bool:
    """Whether frames i - 1 and i (at ``fps``) lie on both sides of a cut between 12-fps frames cut and cut + 1."""
    return (i - 1) / fps < (cut + 1) / 12 - 1e-9 and i / fps > cut / 12 + 1e-9


def measure(frames, threshold: float, motion: float):
    """[(d, u)] of every consecutive pair, and the motion test's seconds per frame."""
    from lib_vid2vid import scene_cuts as sc

    det = sc.CutDetector(threshold, motion)
    feats = [det.features(f) for f in frames]
    out, spent = [], 0.0
    for a, b in zip(feats, feats[1:]):
        t0 = time.perf_counter()
        u = sc.unexplained_texture(a.grey, b.grey)
        spent += time.perf_counter() - t0
        out.append((sc.histogram_distance(a.hist, b.hist), u))
    return out, spent / max(1, len(out))


def main(argv: list[str] | None = None) -> int:
    from lib_vid2vid import scene_cuts as sc
    from lib_vid2vid.params import Settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", default="8,12,24", help="comma-separated frame rates (default 8,12,24)")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--frames", type=int, default=400, help="at most this many frames per clip and rate")
    args = ap.parse_args(argv)
    ex = Settings().export
    thr, motion = ex.scene_cut_threshold, ex.scene_cut_motion
    header(f"Scene cuts: histogram test d > {thr}, motion test u > {motion}; {args.width} px wide")
    clips = sorted(p for p in MEDIA.glob("*") if p.suffix in (".mp4", ".avi"))
    for fps in (float(f) for f in args.fps.split(",")):
        cut_u, non_u, hist_found, both_found, total, false_cuts, costs, pairs = [], [], 0, 0, 0, [], [], 0
        rows: list[tuple[str, list, list[list[int]]]] = []
        for clip in clips:
            frames = source(clip, fps, args.width, args.frames)
            res, cost = measure(frames, thr, motion)
            costs.append(cost)
            groups = [[i for i in range(1, len(frames)) if straddles(i, fps, c)] for c in CUTS.get(clip.name, ())]
            rows.append((clip.name, res, [g for g in groups if g]))
        if fps == 12:
            import synthetic_motion as sm

            for name, c in sm.clip_set(args.width, 48).items():
                frames = [c.frame(t) for t in range(c.frames)]
                res, _ = measure(frames, thr, motion)
                rows.append((name, res, [[t] for t in range(1, c.frames) if c._where(t)[1] == 0]))
        for name, res, groups in rows:
            in_cut = {i for g in groups for i in g}
            pairs += len(res)
            for g in groups:
                total += 1
                hist_found += any(res[i - 1][0] > thr for i in g)
                us = [res[i - 1][1] for i in g if res[i - 1][1] is not None]
                cut_u.append((max(us) if us else 0.0, name, g))
                both_found += any(sc.is_cut(*res[i - 1], thr, motion) for i in g)
            for i, (d, u) in enumerate(res, start=1):
                if i in in_cut:
                    continue
                non_u.append((u or 0.0, name, i))
                if sc.is_cut(d, u, thr, motion):
                    false_cuts.append(f"{name} {i - 1}->{i} (d {d:.3f}, u {u or 0:.3f})")
        cut_u.sort()
        non_u.sort(reverse=True)
        print(f"\n{fps:g} fps: {pairs} frame pairs, {total} cuts")
        print(f"  histogram test alone: {hist_found}/{total} cuts found")
        print(f"  both tests:           {both_found}/{total} cuts found, {len(false_cuts)} false: "
              f"{'; '.join(false_cuts) or 'none'}")
        print("  u of the cuts, smallest: " + ", ".join(f"{u:.3f} ({n} at {g[0]})" for u, n, g in cut_u[:3]))
        print("  u of the other pairs, largest: " + ", ".join(f"{u:.3f} ({n} {i - 1}->{i})" for u, n, i in non_u[:3]))
        print(f"  motion test: {1000 * sum(costs) / len(costs):.2f} ms per frame pair at {args.width} px (mean over "
              "the clips)")
    fades(clips, args.width, thr, motion)
    return 0


def fades(clips, width: int, thr: float, motion: float, n: int = 24) -> None:
    """Fades within a shot, which are no cut: each clip's first ``n`` frames at 12 fps of one shot (after a cut at
    its start), faded in from black, frame i times (i + 1) / n, the same frames faded out; the pairs each test
    calls a cut."""
    import numpy as np

    from lib_vid2vid import scene_cuts as sc

    print(f"\nfades within a shot ({n} frames at 12 fps, from or to black; none is a cut):")
    for clip in clips:
        cuts = CUTS.get(clip.name, ())
        start = cuts[0] + 1 if cuts and cuts[0] < 2 else 0
        stop = min([c + 1 for c in cuts if c + 1 > start] + [start + n])
        frames = source(clip, 12.0, width, stop)[start:]
        gains = [(i + 1) / len(frames) for i in range(len(frames))]
        for name, g in (("in", gains), ("out", gains[::-1])):
            faded = [(f.astype(np.float32) * k).astype(np.uint8) for f, k in zip(frames, g)]
            res, _ = measure(faded, thr, motion)
            hist = [i for i, (d, _u) in enumerate(res, start=1) if d > thr]
            either = [i for i, (d, u) in enumerate(res, start=1) if d > thr or (u or 0.0) > motion]
            both = [i for i, (d, u) in enumerate(res, start=1) if sc.is_cut(d, u, thr, motion)]
            print(f"  {clip.name} frames {start}-{start + len(frames) - 1}, fade {name}: histogram test alone "
                  f"{len(hist)} {hist}; either test (before the motion test's veto, December 2026) {len(either)}; "
                  f"both tests {len(both)} {both}")


if __name__ == "__main__":
    raise SystemExit(main())
