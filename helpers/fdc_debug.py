"""FDC debugger: one panel PNG for one frame's frame delta correction.

Source frames i-1 and i come from two images (``--src-prev``/``--src-cur``) or from a video and a frame
index (``--video clip.mp4 --frame 12`` uses decoded frames 11 and 12, 0-based). The previous corrected
output (A) and the new raw output (B) are images. Sources are resized (INTER_AREA) to the output size.

    python helpers/fdc_debug.py --video clip.mp4 --frame 12 --prev-out out/000011.png \
        --raw-out raw/000012.png --mode mean_std --low-cut 8 --high-ext 5 --soft 2 --mask-use delta \
        --out panel.png

Prints one line per failure (no traceback) and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib_vid2vid import fdc, masks  # noqa: E402
from lib_vid2vid.debug_panels import fdc_debug_panel  # noqa: E402
from lib_vid2vid.errors import Vid2VidError  # noqa: E402


def read_rgb(path: Path) -> np.ndarray:
    """Image file -> RGB uint8 HWC."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise Vid2VidError(f"cannot read image {path}: {type(exc).__name__}; give a PNG or JPEG") from exc


def video_pair(path: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoded frames ``index - 1`` and ``index`` (0-based) of a video as RGB uint8 HWC (PyAV)."""
    import av

    if index < 1:
        raise Vid2VidError(f"--frame must be >= 1 (frame {index} has no previous frame)")
    prev = None
    try:
        with av.open(str(path)) as container:
            for k, frame in enumerate(container.decode(video=0)):
                if k == index - 1:
                    prev = frame.to_ndarray(format="rgb24")
                elif k == index:
                    return prev, frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError) as exc:
        raise Vid2VidError(f"cannot read video {path}: {exc}") from exc
    raise Vid2VidError(f"video {path} has fewer than {index + 1} frames; pick a smaller --frame")


def fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Write an FDC debugger panel PNG for one frame.")
    src = ap.add_argument_group("source frames (two images, or a video and a frame index)")
    src.add_argument("--src-prev", type=Path, help="source frame i-1 image")
    src.add_argument("--src-cur", type=Path, help="source frame i image")
    src.add_argument("--video", type=Path, help="source video (uses frames FRAME-1 and FRAME)")
    src.add_argument("--frame", type=int, help="0-based frame index i in --video")
    ap.add_argument("--prev-out", type=Path, required=True, help="previous corrected output A (image)")
    ap.add_argument("--raw-out", type=Path, required=True, help="new raw output B (image)")
    ap.add_argument("--mode", choices=fdc.MODES, default="mean_std", help="FDC statistic mode")
    ap.add_argument("--low-cut", type=float, default=8, help="motion low-cut, grey levels 0..255")
    ap.add_argument("--high-ext", type=int, default=1, help="motion dilation, odd 1..15 (1 = none)")
    ap.add_argument("--soft", type=float, default=0.0, help="motion soft edges, gaussian sigma px")
    ap.add_argument("--mask-use", choices=("none", "delta", "spatial"), default="none",
                    help="apply the motion mask as FDC delta or spatial mask")
    ap.add_argument("--depth", type=Path, help="optional depth mask image (grey, white = may change)")
    ap.add_argument("--delta-gain", type=float, default=4.0, help="gain of the source-delta view")
    ap.add_argument("--no-labels", action="store_true", help="omit the tile labels")
    ap.add_argument("--out", type=Path, required=True, help="panel PNG to write")
    return ap


def run(args: argparse.Namespace) -> Path:
    prev_out = read_rgb(args.prev_out)
    raw_out = read_rgb(args.raw_out)
    if prev_out.shape != raw_out.shape:
        raise Vid2VidError(f"--prev-out {prev_out.shape} and --raw-out {raw_out.shape} differ in size")
    h, w = raw_out.shape[:2]
    if args.video is not None:
        if args.frame is None:
            raise Vid2VidError("--video needs --frame (0-based index of frame i)")
        src_prev, src_cur = video_pair(args.video, args.frame)
    elif args.src_prev is not None and args.src_cur is not None:
        src_prev, src_cur = read_rgb(args.src_prev), read_rgb(args.src_cur)
    else:
        raise Vid2VidError("give --src-prev and --src-cur, or --video and --frame")
    src_prev, src_cur = fit(src_prev, w, h), fit(src_cur, w, h)
    motion = masks.motion_mask(src_prev, src_cur, low_cut=args.low_cut, high_ext=args.high_ext, soft=args.soft)
    depth = None
    if args.depth is not None:
        depth = masks.UserMaskSource("image", args.depth, threshold=None).get(0, (w, h))
    corrected = fdc.correct_frame(
        prev_out, raw_out, src_prev, src_cur, mode=args.mode,
        delta_mask=motion if args.mask_use == "delta" else None,
        spatial_mask=motion if args.mask_use == "spatial" else None,
    )
    panel = fdc_debug_panel(src_prev, src_cur, prev_out, raw_out, corrected, motion, depth,
                            labels=not args.no_labels, delta_gain=args.delta_gain,
                            titles={"corrected": f"corrected [{args.mode}, mask {args.mask_use}]"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR)):
        raise Vid2VidError(f"cannot write {args.out}; check the folder is writable and the name ends in .png")
    return args.out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = run(args)
    except Vid2VidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
