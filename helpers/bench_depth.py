"""Benchmark: MiDaS depth on the CPU, ms per frame and peak RSS.

Depth is the host GPU's job inside the WebUI; this measures what it costs on a CPU (issue 5). By default
the network has **random weights** (timm builds the backbone with ``pretrained=False``): the time per
frame does not depend on the weights' values, only on the architecture and the input size. Each timed
run does what :class:`lib_vid2vid.depth_estimator.DepthEstimator` does for one frame: preprocessing (resize to the
model's input, normalise), the network, bicubic resize of the output to the frame size, per-frame
normalisation to 0..1.

    python helpers/bench_depth.py [--kind midas_v21_small] [--size 512] [--runs 10] [--threads 2]
    python helpers/bench_depth.py --weights models/midas/midas_v21_small-70d6b9c8.pt   # real weights

Needs torch and timm (timm needs torchvision).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import cpu_model  # noqa: E402

from lib_vid2vid import depth_estimator, midas_model  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", default="midas_v21_small", choices=list(midas_model.MODELS))
    ap.add_argument("--weights", help="official weight file (default: random weights)")
    ap.add_argument("--size", type=int, default=512, help="square frame side in pixels")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rss0 = peak_rss_mb()
    t = time.perf_counter()
    if args.weights:
        est = depth_estimator.DepthEstimator.from_file(args.weights, args.kind)
        what = f"weights {args.weights}"
    else:
        torch.manual_seed(0)
        net = midas_model.build_model(args.kind)
        est = depth_estimator.DepthEstimator(net, midas_model.MODELS[args.kind].config, args.kind)
        what = "random weights"
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    cfg = est.config
    net_w, net_h = depth_estimator.net_input_size(args.size, args.size, cfg.net, cfg.resize)
    est(frame)  # warm-up
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        d = est(frame)
        times.append((time.perf_counter() - t) * 1000)
    assert d.shape == (args.size, args.size)
    n_params = sum(p.numel() for p in est.net.parameters())
    print(f"MiDaS {args.kind} ({what}, {n_params / 1e6:.1f} M parameters), frame {args.size}x{args.size} "
          f"-> network input {net_w}x{net_h}")
    print(f"CPU: {cpu_model()}, torch {torch.__version__}, {args.threads} threads")
    print(f"build {build_s:.2f} s; per frame: median {statistics.median(times):.0f} ms, "
          f"min {min(times):.0f} ms, max {max(times):.0f} ms over {args.runs} runs")
    print(f"peak RSS {peak_rss_mb():.0f} MiB (before the model: {rss0:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
