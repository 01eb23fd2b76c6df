"""Propagation benchmark: milliseconds of CPU work per propagated frame (lib_vid2vid.keyframes).

    python helpers/bench_propagation.py                       # box.mp4 and bikes.mp4 at 512x512, K = 4
    python helpers/bench_propagation.py --size 1024x576 --interval 8 --clips cup.mp4

What is timed. The first ``--frames`` (48) frames of each clip at 12 fps, resized to ``--size``, split into
segments of ``--interval`` frames; each segment's keyframes are stand-in renders (the source frames inverted;
the content does not change the cost). For every segment, :func:`lib_vid2vid.keyframes.propagate_segment` runs
with both keyframes and every frame it yields is filled and rounded (:func:`lib_vid2vid.keyframes.fill_unseen`),
i.e. everything the job does for a propagated frame but decoding, the PNG write and the report. The time per
propagated frame is the segment's wall time divided by its propagated frames, median over segments and
``--repeat`` runs; per video frame, the same time spread over the segment's K frames (a keyframe's own frame
costs no propagation). The parts: the two DIS flows per frame pair (``flows``) and the rest (composition, occlusion,
warps, blend), timed separately on the same frames. OpenCV uses its default threads (2 on the 2-core machine).
The target (issue 14): at most 40 ms per 512x512 frame on 2 cores. Each clip is timed twice, interleaved run by run:
with the flows kept where the frames show motion (``evidence``, :func:`lib_vid2vid.flow.evidence_flow`, the default)
and with DIS's flows as they come (``raw DIS``, ``PropagationSettings(flow_evidence=False)``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import MEDIA, format_table, header, load_average  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="box.mp4,bikes.mp4")
    ap.add_argument("--size", default="512x512", help="WxH in pixels (default 512x512)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--interval", type=int, default=4, help="keyframe interval K (default 4)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quality", default="medium", help="DIS preset of the flows (default medium)")
    args = ap.parse_args(argv)

    import cv2

    from lib_vid2vid import flow, video
    from lib_vid2vid import keyframes as kf

    w, h = (int(x) for x in args.size.lower().split("x"))
    header("Propagation benchmark (lib_vid2vid.keyframes.propagate_segment)")
    print(f"setup: {args.frames} frames at 12 fps, {w}x{h}, keyframe interval {args.interval}, DIS {args.quality}, "
          f"{args.repeat} runs, OpenCV threads {cv2.getNumThreads()}")
    variants = {"evidence": True, "raw DIS": False}  # flow_evidence on (the default) and off, timed side by side
    rows = []
    for clip in [c.strip() for c in args.clips.split(",") if c.strip()]:
        frames = [f for i, f in video.iter_frames(MEDIA / clip, fps=Fraction(12), size=(w, h)) if i < args.frames]
        frames = frames[: args.frames]
        times = {v: ([], [], [], []) for v in variants}
        for _, (label, evidence) in [(r, v) for r in range(args.repeat) for v in variants.items()]:
            ps = kf.PropagationSettings(flow_quality=args.quality, flow_evidence=evidence)
            totals, flows, one_flow, per_video = times[label]
            for a in range(0, len(frames) - args.interval, args.interval):
                seg = frames[a:a + args.interval + 1]
                ka, kb = 255 - seg[0], 255 - seg[-1]
                n = len(seg) - 2
                t0 = time.perf_counter()
                for j, made, unseen in kf.propagate_segment(seg, ka, kb, ps):
                    kf.fill_unseen(made, unseen, seg[j])
                totals.append((time.perf_counter() - t0) * 1000 / n)
                per_video.append(totals[-1] * n / args.interval)  # the keyframe's own frame costs nothing
                t0 = time.perf_counter()
                for k in range(len(seg) - 1):
                    kf._pair_flows(seg[k], seg[k + 1], args.quality, evidence)
                flows.append((time.perf_counter() - t0) * 1000 / n)
                t0 = time.perf_counter()
                flow.compute_flow(seg[1], seg[0], quality=args.quality)
                one_flow.append((time.perf_counter() - t0) * 1000)
        for label, (totals, flows, one_flow, per_video) in times.items():
            total, fl, one = statistics.median(totals), statistics.median(flows), statistics.median(one_flow)
            video_frame = statistics.median(per_video)
            rows.append([clip, label, f"{total:.1f}", f"{fl:.1f}", f"{total - fl:.1f}", f"{one:.1f}", f"{total / one:.2f}",
                         f"{video_frame:.1f}", f"{video_frame / one:.2f}"])
    print()
    print(format_table(["clip", "flows", "ms / propagated frame", "of which flows", "the rest", "one DIS flow (ms)",
                        "frame / one flow", "ms / video frame", "video frame / one flow"], rows))
    print("frame / one flow: the propagated frame's time in units of one DIS flow of the same size, timed beside it "
          "(the ratio the machine's load moves least; times the flow's ms on free cores gives the free-core cost)")
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
