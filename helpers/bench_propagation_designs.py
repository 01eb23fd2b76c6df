"""Propagation designs side by side: keyframe propagation alone, without running jobs.

    python helpers/bench_propagation_designs.py                         # synthetic clips, judge truth
    python helpers/bench_propagation_designs.py --clips bikes.mp4,cup.mp4 --synthetic '' \\
        --judge-flow dis:medium,farneback,dis:fast:0.05:1
    python helpers/bench_propagation_designs.py --design default --design before:pick=nearer,seen_residual=0 --references

What runs. For each clip (synthetic clips of helpers/synthetic_motion.py, generated in memory, and/or real clips
of ``VID2VID_MEDIA`` decoded as the consistency benchmark decodes them: ``--fps`` 12, ``--width`` 384) the first
``--frames`` (24) frames are split into scene groups at scene cuts (luma histogram distance > 0.4, as the jobs do)
and every ``--interval`` (4)th frame of a group is a keyframe, rendered with the proxy renderer of the consistency
benchmark (lib_vid2vid.proxy, denoise 0.45, seed 1 + frame index, no colour coherence). Every other frame is
made by :func:`lib_vid2vid.keyframes.propagate_segment` with each design's
:class:`lib_vid2vid.keyframes.PropagationSettings`, its unseen pixels filled as the jobs fill them by default
(the source in the style around them). A design is ``NAME:FIELD=VALUE,...`` (fields of PropagationSettings, and
``fill=source`` or ``fill=render``: unseen pixels from the source as it is, or from a proxy render of the frame,
instead of the source shifted by the style around them; ``default`` alone is the default settings).
``--references`` adds the source itself (the floor) and every frame rendered with seed 1 (a stand-in for fixed_seed, without its colour
coherence) as columns. The output
frames are judged as in bench_consistency.py (warp error x1e-3 under each judge; ``truth``: the synthetic clip's
exact flow, n/a on a real clip). Same keyframe renders for every design, so the columns differ only in how the
frames between keyframes are made. This is a screening bench: the jobs (bench_consistency.py --variant) also
choose keyframes adaptively and apply colour coherence.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_consistency import judge_warp_errors, parse_judge, source_frames  # noqa: E402

DESIGNS = ("default", "before:pick=nearer,seen_residual=0", "no-pick:pick=nearer", "no-rescue:seen_residual=0",
           "raw:flow_evidence=False")
"""The designs run when no --design is given."""


def parse_design(text: str):
    from lib_vid2vid.keyframes import PropagationSettings

    name, _, rest = text.partition(":")
    ps = PropagationSettings()
    fields = {f.name: f for f in dataclasses.fields(ps)}
    changes = {}
    fill = "styled"
    for part in filter(None, (x.strip() for x in rest.split(","))):
        key, _, value = (x.strip() for x in part.partition("="))
        if key == "fill":
            if value not in ("styled", "source", "render"):
                raise SystemExit(f"design {text!r}: fill is styled, source or render")
            fill = value
            continue
        if key not in fields:
            raise SystemExit(f"design {text!r}: unknown field {key}; known: {', '.join(fields)}")
        cur = getattr(ps, key)
        changes[key] = (value.lower() in ("1", "true", "yes")) if isinstance(cur, bool) else type(cur)(value)
    return name, dataclasses.replace(ps, **changes), fill


def keyframe_render(src: np.ndarray, index: int, denoise: float) -> np.ndarray:
    from lib_vid2vid.proxy import ProxyRenderer
    from lib_vid2vid.renderer import RenderRequest

    req = RenderRequest(init=src, seed=1 + index, denoise=denoise, steps=20, cfg=7.0, prompt="")
    return ProxyRenderer().render(req)[0]


def propagate(frames: list[np.ndarray], keys: dict[int, np.ndarray], groups, ps, fill: str = "styled",
              denoise: float = 0.45, unseen_share: list | None = None) -> list[np.ndarray]:
    """Every frame: keyframes as rendered, the others propagated; unseen pixels from the source shifted by the
    style around them (``fill`` styled, the jobs' default: :func:`lib_vid2vid.keyframes.fill_styled`), the source
    (source) or a proxy render of the frame (render: as keyframe_fill=render's light render, which repaints just
    those pixels). ``unseen_share`` receives each propagated frame's unseen share."""
    from lib_vid2vid import keyframes as kf

    out: list[np.ndarray | None] = [None] * len(frames)
    for first, last in groups:
        ks = [k for k in sorted(keys) if first <= k <= last]
        for j, a in enumerate(ks):
            out[a] = keys[a]
            b = ks[j + 1] if j + 1 < len(ks) else None
            end = b if b is not None else last
            for off, fr, unseen in kf.propagate_segment(frames[a:end + 1], keys[a], keys[b] if b is not None else None,
                                                        ps):
                if unseen_share is not None:
                    unseen_share.append(float(unseen.mean()))
                src = frames[a + off]
                if fill == "render" and unseen.any():
                    src = keyframe_render(src, a + off, denoise)
                out[a + off] = (kf.fill_styled if fill == "styled" else kf.fill_unseen)(fr, unseen, src)
    return out  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="", help="real clips (file names in VID2VID_MEDIA), comma-separated")
    ap.add_argument("--synthetic", default="all", help="synthetic clip names, comma-separated, or all ('' none)")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--interval", type=int, default=4)
    ap.add_argument("--denoise", type=float, default=0.45)
    ap.add_argument("--design", action="append", default=[], help="NAME:FIELD=VALUE,... (repeatable)")
    ap.add_argument("--judge-flow", default="truth")
    ap.add_argument("--references", action="store_true",
                    help="also judge the source itself (floor) and every frame rendered with seed 1 (fixed_seed)")
    args = ap.parse_args(argv)

    from synthetic_motion import clip_set

    from lib_vid2vid.scene_cuts import scene_cut_distance

    designs = [parse_design(d) for d in (args.design or DESIGNS)]
    judges = [parse_judge(j) for j in args.judge_flow.split(",")]
    clips = []
    if args.synthetic:
        cs = clip_set(args.width, args.frames)
        names = list(cs) if args.synthetic == "all" else args.synthetic.split(",")
        clips += [(n, [cs[n].frame(t) for t in range(args.frames)], cs[n]) for n in names]
    common = {"width": args.width, "height": 0, "fps": args.fps, "start": 0.0, "end": 0.0,
              "max_frames": args.frames, "seed": 1, "denoise": args.denoise}
    for c in filter(None, args.clips.split(",")):
        try:
            frames = list(source_frames(c, common))
        except Exception as exc:  # noqa: BLE001 - a benchmark prints and goes on
            print(f"{c}: {exc}")
            continue
        clips.append((c, frames[:args.frames], None))
    table = {}
    for name, frames, truth in clips:
        starts = [0] + [i for i in range(1, len(frames)) if scene_cut_distance(frames[i - 1], frames[i]) > 0.4]
        groups = [(s, (starts[j + 1] - 1) if j + 1 < len(starts) else len(frames) - 1) for j, s in enumerate(starts)]
        keys = {k: keyframe_render(frames[k], k, args.denoise) for g0, g1 in groups
                for k in range(g0, g1 + 1, args.interval)}
        refs = [("floor", frames), ("fixed_seed", [keyframe_render(f, 0, args.denoise) for f in frames])] \
            if args.references else []
        for dname, out in refs:
            table[(name, dname)] = judge_warp_errors(list(zip(frames, out)), judges, truth=truth)
        for dname, ps, fill in designs:
            t0 = time.perf_counter()
            share: list[float] = []
            out = propagate(frames, keys, groups, ps, fill, args.denoise, share)
            judged = judge_warp_errors(list(zip(frames, out)), judges, truth=truth)
            table[(name, dname)] = judged
            print(f"{name:24s} {dname:10s} " + "  ".join(
                f"{j.name}={judged[j.name] * 1e3:.3f}" if judged.get(j.name) is not None else f"{j.name}=n/a"
                for j in judges) + f"   unseen {100 * float(np.mean(share)) if share else 0:.1f} %"
                f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    columns = [d for d, _ in refs] + [d for d, _, _ in designs]
    print()
    for j in judges:
        print(f"judge {j.name}: warp error x1e-3 (groups {', '.join(n for n, _, _ in clips)})")
        print("clip | " + " | ".join(columns))
        for name, _, _ in clips:
            vals = [table[(name, d)].get(j.name) for d in columns]
            print(name + " | " + " | ".join("n/a" if v is None else f"{v * 1e3:.3f}" for v in vals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
