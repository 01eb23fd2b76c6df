"""Cost of warped noise (lib_vid2vid/noise.py) per frame: transport, flows, checkpoints.

    python helpers/bench_noise.py                       # box.mp4 at 512x512, 24 frames
    python helpers/bench_noise.py --clip bikes.mp4 --size 1024x576

Decodes ``--frames`` frames of the clip (from ``../shared/media`` or a path) at ``--size``, then times, per frame
and in one run: the noise step alone (``WarpedNoise.step`` with given flows, occlusion check included, and
``latent``), the two DIS flows at the frame's size shrunk to the fine grid (``fine_flows``), a state checkpoint
(bytes and write time, no fsync), and a frame of a resume's recomputation (decode + flows + step). Medians
over the frames of the CPU time this process used (``time.process_time``: all its threads, so DIS's worker
threads count; less inflated by other work on the machine than wall time, whose load is printed too).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import MEDIA, header  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="box.mp4", help="a clip in ../shared/media, or a path (default box.mp4)")
    ap.add_argument("--size", default="512x512", help="frame size WxH in pixels, multiples of 8 (default 512x512)")
    ap.add_argument("--frames", type=int, default=24, help="frames to time (default 24)")
    args = ap.parse_args(argv)

    import numpy as np

    from lib_vid2vid import video
    from lib_vid2vid.noise import WarpedNoise, fine_flows
    from lib_vid2vid.noise_stage import FLOW_QUALITY
    from lib_vid2vid.workspace import atomic_write_bytes

    width, height = (int(v) for v in args.size.lower().split("x"))
    path = MEDIA / args.clip
    header("Warped noise cost per frame")
    frames = []
    t0 = time.process_time()
    for _, rgb in video.iter_frames(str(path), size=(width, height)):
        frames.append(rgb)
        if len(frames) > args.frames:
            break
    decode = (time.process_time() - t0) / len(frames)
    field = WarpedNoise(1, width, height)
    state = field.first()
    t_flow, t_step, t_latent, t_ckpt, nbytes = [], [], [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for a, b in zip(frames, frames[1:]):
            t = time.process_time()
            fw, bw = fine_flows(a, b, field.grid, FLOW_QUALITY)
            t_flow.append(time.process_time() - t)
            t = time.process_time()
            state = field.step(state, fw, bw)
            t_step.append(time.process_time() - t)
            t = time.process_time()
            z = field.latent(state)
            t_latent.append(time.process_time() - t)
            t = time.process_time()
            data = state.to_bytes()
            atomic_write_bytes(Path(tmp) / "state.bin", data)
            t_ckpt.append(time.process_time() - t)
            nbytes = len(data)
    ms = {k: statistics.median(v) * 1e3 for k, v in
          {"step": t_step, "latent": t_latent, "flows": t_flow, "checkpoint": t_ckpt}.items()}
    print(f"clip {path.name} at {width}x{height}: latent {tuple(z.shape)}, fine grid {field.cols}x{field.rows}, "
          f"{len(t_step)} frames, flow DIS {FLOW_QUALITY}; mean |z| {float(np.abs(z).mean()):.3f}")
    print("CPU time per frame (all threads of this process), median:")
    print(f"noise step (transport + occlusion check)   {ms['step']:7.2f} ms")
    print(f"latent integral                            {ms['latent']:7.2f} ms")
    print(f"  noise itself, given the flows            {ms['step'] + ms['latent']:7.2f} ms   (target <= 5 ms at 512x512)")
    print(f"two DIS flows + shrink to the fine grid    {ms['flows']:7.2f} ms   (analysis thread, beside the render)")
    print(f"  per frame in a job                       {ms['step'] + ms['latent'] + ms['flows']:7.2f} ms")
    print(f"checkpoint: {nbytes / 1e6:.2f} MB, write  {ms['checkpoint']:7.2f} ms   (every 16th frame)")
    print(f"resume: one recomputed frame (decode {decode * 1e3:.1f} + flows + step) "
          f"{decode * 1e3 + ms['flows'] + ms['step']:7.2f} ms; at most 15 per resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
