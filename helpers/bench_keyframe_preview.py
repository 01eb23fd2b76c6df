"""The WebUI's "Show keyframes" preview: seconds per clip, and why the frames are decoded at the output size.

    python helpers/bench_keyframe_preview.py                     # bikes.mp4 and cup.mp4, interval and adaptive
    python helpers/bench_keyframe_preview.py --clips box.mp4 --repeat 3

What is timed. :func:`lib_vid2vid.keyframe_view.preview` on the whole clip at its own size (rounded down to a
multiple of 8, as the WebUI's size is): the job's own keyframe plan with the frames decoded at the output size and
streamed, and the first 60 keyframes' thumbnails (96 px high). Beside it, in the same run, the plan chosen from the
frames decoded at thumbnail size (96 px high), with its time and whether it is the job's plan: the cheaper decode
is only taken if it gives the same keyframes. Median of ``--repeat`` runs, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench_common import MEDIA, format_table, header, load_average  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", default=["bikes.mp4", "cup.mp4"])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    from lib_vid2vid import keyframe_view, keyrun, params, video

    header("Keyframe preview (the WebUI's Show keyframes): seconds per clip")
    rows = []
    for clip in args.clips:
        path = MEDIA / clip
        info = video.probe(path)
        for mode in ("interval", "adaptive"):
            full = params.Settings().replace(input=str(path), keyframe_mode=mode, width=info.width // 8 * 8,
                                             height=info.height // 8 * 8)
            small = full.replace(width=0, height=keyframe_view.PREVIEW_HEIGHT)
            t_full, t_small = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                items, text = keyframe_view.preview(full)
                t_full.append(time.perf_counter() - t)
                t = time.perf_counter()
                small_plan = keyrun.choose_for_settings(small)
                t_small.append(time.perf_counter() - t)
            job_plan = keyrun.choose_for_settings(full)
            rows.append([clip, f"{info.width}x{info.height}", job_plan.total, mode, len(job_plan.frames),
                         f"{statistics.median(t_full):.2f}", len(items), f"{statistics.median(t_small):.2f}",
                         len(small_plan.frames), "yes" if small_plan.frames == job_plan.frames else "no"])
    print(format_table(["clip", "size", "frames", "mode", "keyframes", "preview s", "thumbnails",
                        "plan at 96 px s", "its keyframes", "same plan"], rows))
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
