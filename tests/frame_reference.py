"""Reference hashes of every strategy's frames, so speed work can prove it changed no pixel.

Each case (the default settings, every entry of :data:`lib_vid2vid.params.STRATEGIES`, and a few settings and
shots the strategies do not reach: :func:`cases`) runs a whole job with the :class:`~lib_vid2vid.proxy.ProxyRenderer`
on a small clip (:func:`make_reference_clip`, from :mod:`tests.clips`, :func:`make_sky_pan_clip` or
:func:`make_sky_zoom_clip`), and the SHA-256
of the decoded pixels (RGB uint8 HWC bytes, plus the shape) of every PNG the job keeps under ``frames/``
(each pass, masks) is recorded. Pixels, not file bytes: a cheaper lossless PNG encoding may change the
files but must not change a frame.

The clips are coded losslessly (x264 ``crf 0``), so their decoded pixels do not depend on the encoder's build;
their hashes are stored too (``source``, and ``sources`` by clip name), so a failure can tell "the decoder changed" from "the frames changed".

Float arithmetic differs a little between library versions (numpy's summation, OpenCV's colour conversions and
resizing), so the references are kept per library stack (:func:`stack_key`): CI's two legs (the newest allowed
versions, and the WebUI's pinned ones) each have theirs, both made from the code before the speed work. On a
stack without references the test skips and says so.

The CPU matters too: numpy's float32 ``**`` and ``cbrt`` (colour coherence's LAB conversions) give other last
bits with its AVX-512 (SVML) kernels than without, so every case with colour coherence (the default, every_frame,
the keyframe strategies) makes other frames on a CPU with AVX-512, and so does numpy's OpenBLAS, which picks
AVX-512 kernels of its own for matrix products (temporal_merge's luma). So the cases run in a process of their own
with numpy's, OpenCV's and OpenBLAS's AVX-512 kernels switched off (:data:`NO_AVX512`; :func:`run_case_apart`), and
the references of a library stack hold on every x86-64 CPU with AVX2, with AVX-512 or without.

Add or regenerate the current stack's references (only on purpose, from code whose frames are known good; they
run with :data:`NO_AVX512` too)::

    python -m tests.frame_reference                  # updates tests/data/frame_hashes.json
    python -m tests.frame_reference --add-missing    # only the cases (strategies) the stack's references lack
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "frame_hashes.json"
SIZE = (128, 72)
N_FRAMES = 12
BASE = {"width": SIZE[0], "height": SIZE[1], "seed": 1234, "denoise": 0.5, "report": False}


ROOT = Path(__file__).resolve().parents[1]

def _numpy_cpu(name: str) -> list[str] | dict[str, bool]:
    try:
        from numpy._core import _multiarray_umath as m
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as m
    return getattr(m, name)


NO_AVX512 = {
    # numpy 1.x names its AVX-512 kernel groups one by one, numpy 2.x as X86_V4 and later; a name this numpy does
    # not dispatch only draws an ImportWarning (ignored by default)
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
                                "AVX512_SPR X86_V4",
    # OpenCV's names (its "Dispatched code generation" AVX512_SKX is AVX512-SKX here); it prints a line for each
    # one this CPU does not have
    "OPENCV_CPU_DISABLE": "AVX512F,AVX512-SKX,AVX512-COMMON,AVX512-KNL,AVX512-KNM,AVX512-CNL,AVX512-CLX,AVX512-ICL",
}
"""The environment a reference case runs in: numpy's and OpenCV's AVX-512 kernels off (both read it when they are
imported), and numpy's OpenBLAS on its Haswell (AVX2) kernels where the CPU has AVX2 and FMA, so a CPU with AVX-512
runs the AVX2 kernels every other x86-64 CPU of this project's machines runs. OpenBLAS picks its kernels by the CPU,
not by numpy's switches: its SkylakeX kernels (AVX-512) sum a matrix-vector product such as the luma weights
(``blend._luma255``) in another order, and temporal_merge's frames came out other in their last bits (an Intel CPU
with AVX-512, December 2026); AMD's Zen kernels are the Haswell ones."""
_CPU = _numpy_cpu("__cpu_features__")
if _CPU.get("AVX2") and _CPU.get("FMA3"):
    NO_AVX512["OPENBLAS_CORETYPE"] = "Haswell"

OPENBLAS_AVX512_CORES = ("SkylakeX", "Cooperlake", "SapphireRapids")
"""OpenBLAS's names of its kernel sets that use AVX-512 (``openblas_get_corename``)."""

_CV_CPU_AVX_512F, _CV_CPU_AVX512_SKX = 13, 256  # OpenCV's CpuFeatures (cvdef.h), not exported to Python


def stack_key() -> str:
    """The library versions that decide the frames' float arithmetic, e.g. "numpy 2.4 / opencv 5.0"."""
    import cv2

    def major_minor(v: str) -> str:
        return ".".join(v.split(".")[:2])

    return f"numpy {major_minor(np.__version__)} / opencv {major_minor(cv2.__version__)}"


def numpy_avx512_targets() -> list[str]:
    """The AVX-512 targets this numpy was built to dispatch (numpy 1.x: AVX512F, AVX512_SKX ...; 2.x: X86_V4 and
    later)."""
    return [t for t in _numpy_cpu("__cpu_dispatch__") if "AVX512" in t or t == "X86_V4"]


def numpy_avx512() -> bool:
    """True if numpy dispatches to AVX-512 kernels on this CPU in this process: one of its AVX-512 targets is on
    (numpy 2.x lists the CPU's AVX512F etc. as present even with its X86_V4 target off)."""
    features = _numpy_cpu("__cpu_features__")
    return any(features.get(t) for t in numpy_avx512_targets())


def avx512_in_use() -> list[str]:
    """The libraries that run AVX-512 kernels in this process: [] on a CPU without AVX-512, or with
    :data:`NO_AVX512` in the environment since before they were imported."""
    import cv2

    used = ["numpy"] if numpy_avx512() else []
    if cv2.checkHardwareSupport(_CV_CPU_AVX_512F) or cv2.checkHardwareSupport(_CV_CPU_AVX512_SKX):
        used.append("OpenCV")
    if openblas_core() in OPENBLAS_AVX512_CORES:
        used.append("numpy's OpenBLAS")
    return used


def openblas_core() -> str | None:
    """The kernel set (e.g. "Haswell", "SkylakeX") of the OpenBLAS numpy loaded in this process, None if numpy
    uses another BLAS or the library cannot be asked (read through its ``openblas_get_corename``)."""
    import ctypes
    import re

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for lib in sorted(set(re.findall(r"(/\S*openblas\S*\.so[\w.]*)", maps))):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                       "openblas_get_corename"):
            fn = getattr(handle, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


def load() -> dict:
    """The stored references of every stack: {stack key: {"source": [...], "cases": {...}}}."""
    return json.loads(DATA.read_text())["stacks"] if DATA.is_file() else {}


CLIP = "clip"
"""A case's key naming the clip it runs on (:data:`CLIPS`; the reference clip when absent), not a setting."""


def cases() -> dict[str, dict]:
    """Case name -> settings on top of :data:`BASE`: "default" (nothing more), every strategy, and what changes
    how frames are made beyond the strategies: "keyframes+fast flow" (``keyframe_flow = fast``), and keyframes on a
    pan and on a zoom over a plain sky (the camera prior of the propagation's evidence check acts only where the
    frame's borders agree on a pan or a zoom, which they never do on the reference clip)."""
    from lib_vid2vid.params import STRATEGIES

    return {"default": {}, **{name: dict(values) for name, values in STRATEGIES.items()},
            "keyframes+fast flow": {**STRATEGIES["keyframes"], "keyframe_flow": "fast"},
            "keyframes on a sky pan": {**STRATEGIES["keyframes"], CLIP: "sky pan"},
            "keyframes on a sky zoom": {**STRATEGIES["keyframes"], CLIP: "sky zoom"}}


def make_reference_clip(folder: Path) -> Path:
    from tests.clips import make_clip

    return make_clip(Path(folder) / "ref.mp4", n_frames=N_FRAMES, size=SIZE, fps=Fraction(24), audio=False,
                     options={"crf": "0"})


def _sky_world(cols: int) -> np.ndarray:
    """RGB uint8 (SIZE height, ``cols`` x 4 wide): a plain sky (the upper 28 rows, one colour) over ground of 4x4
    blocks of random levels (integers only, so every numpy builds the same picture)."""
    h = SIZE[1]
    rng = np.random.default_rng(5)
    world = np.empty((h, cols * 4, 3), np.uint8)
    world[:28] = (110, 150, 215)
    world[28:] = np.repeat(np.repeat(rng.integers(0, 256, ((h - 28) // 4, cols, 3), dtype=np.uint8), 4, axis=0),
                           4, axis=1)
    return world


def _write_lossless(path: Path, frames: Iterable[np.ndarray]) -> Path:
    """RGB uint8 frames as a lossless x264 clip (crf 0, yuv444p) at 24 fps."""
    from tests.clips import write_h264

    return write_h264(path, list(frames), Fraction(24), {"crf": "0", "preset": "fast"}, pix_fmt="yuv444p")


def make_sky_pan_clip(folder: Path) -> Path:
    """A camera panning 3 px a frame over the ground of :func:`_sky_world` under its plain sky: the borders
    agree on the pan, and the sky's upper part is beyond the reach of the ground's motion."""
    w = SIZE[0]
    world = _sky_world((w + 3 * N_FRAMES) // 4 + 1)
    return _write_lossless(Path(folder) / "sky_pan.mp4", (world[:, 3 * i:3 * i + w] for i in range(N_FRAMES)))


def make_sky_zoom_clip(folder: Path) -> Path:
    """:func:`_sky_world` under a camera zooming in about a point below the horizon (nearest neighbour, in
    integers: frame i shows the point ``c + (p - c) * (64 - i) // 64`` of the first, so every numpy builds the same
    frames): a zoom of about 1.7 % a frame, which no one shift of the borders explains."""
    w, h = SIZE
    world = _sky_world(w // 4)
    cx, cy = w // 2, 40
    xs, ys = np.arange(w), np.arange(h)
    return _write_lossless(Path(folder) / "sky_zoom.mp4",
                           (world[cy + ((ys - cy) * (64 - i)) // 64][:, cx + ((xs - cx) * (64 - i)) // 64]
                            for i in range(N_FRAMES)))


CLIPS = {"reference": make_reference_clip, "sky pan": make_sky_pan_clip, "sky zoom": make_sky_zoom_clip}
"""Clip name -> its maker (into a folder)."""


def make_clips(folder: Path) -> dict[str, Path]:
    return {name: make(Path(folder)) for name, make in CLIPS.items()}


def clip_of(values: dict) -> str:
    return values.get(CLIP, "reference")


def pixel_hash(rgb: np.ndarray) -> str:
    """SHA-256 of an image's shape and bytes (C order)."""
    h = hashlib.sha256(repr((rgb.shape, str(rgb.dtype))).encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()


def source_hashes(clip: Path) -> list[str]:
    from lib_vid2vid import video

    return [pixel_hash(rgb) for _, rgb in video.iter_frames(clip, size=SIZE)]


def frame_hashes(job_dir: Path) -> dict[str, str]:
    """"stage/file.png" -> pixel hash for every PNG under the job's frames/ folder."""
    import cv2

    out = {}
    for p in sorted((Path(job_dir) / "frames").rglob("*.png")):
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise AssertionError(f"cannot read {p}")
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        out[p.relative_to(Path(job_dir) / "frames").as_posix()] = pixel_hash(img)
    return out


def run_case(clips: dict[str, Path], out_dir: Path, values: dict) -> dict[str, str]:
    """Run one case with the proxy renderer on its clip (of ``clips``, :func:`make_clips`); its frame hashes."""
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import ProxyRenderer

    settings = {k: v for k, v in values.items() if k != CLIP}
    s = Settings().replace(input=str(clips[clip_of(values)]), output_dir=str(out_dir), **{**BASE, **settings})
    res = run_job(s, ProxyRenderer())
    if res.status != "done":
        raise AssertionError(f"job ended {res.status}: {res.message}")
    return frame_hashes(res.job_dir)


def run_case_apart(clips: dict[str, Path], out_dir: Path, name: str, timeout: float = 900) -> dict[str, str]:
    """:func:`run_case` of the case ``name`` in a process of its own, with :data:`NO_AVX512`; its frame hashes."""
    proc = _apart(["--case", name, "--out", str(out_dir), "--clips", json.dumps({k: str(v) for k, v in clips.items()})],
                  capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"the case {name!r} failed in its process (exit {proc.returncode}):\n"
                             + proc.stderr[-4000:])
    return json.loads(proc.stdout)


def _apart(args: list[str], **run_kwargs: Any) -> subprocess.CompletedProcess:
    """``python -m tests.frame_reference ARGS`` in a process of its own, with :data:`NO_AVX512`."""
    return subprocess.run([sys.executable, "-m", "tests.frame_reference", *args], cwd=ROOT,
                          env={**os.environ, **NO_AVX512}, **run_kwargs)


def generate(only: set[str] | None = None) -> dict:
    """Reference hashes of every case (or of the cases named in ``only``)."""
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp))
        ref = {"source": source_hashes(clips["reference"]), "cases": {},
               "sources": {name: source_hashes(p) for name, p in clips.items() if name != "reference"}}
        for name, values in cases().items():
            if only is None or name in only:
                ref["cases"][name] = run_case(clips, Path(tmp) / name, values)
    return ref


def _without_avx512() -> None:
    """Stop with a one-line reason if this process runs AVX-512 kernels (its environment lacked NO_AVX512)."""
    used = avx512_in_use()
    if used:
        raise SystemExit(f"{' and '.join(used)} run AVX-512 kernels in this process: the references are made and "
                         "checked without them; set the environment of tests.frame_reference.NO_AVX512 first")


def _run_one(argv: list[str]) -> None:
    """``--case NAME --out DIR --clips JSON``: one case's frame hashes as JSON on standard output."""
    opts = dict(zip(argv[::2], argv[1::2]))
    _without_avx512()
    clips = {k: Path(v) for k, v in json.loads(opts["--clips"]).items()}
    print(json.dumps(run_case(clips, Path(opts["--out"]), cases()[opts["--case"]])))


def main() -> None:
    if "--case" in sys.argv[1:]:
        _run_one(sys.argv[1:])
        return
    if any(os.environ.get(k) != v for k, v in NO_AVX512.items()):  # numpy and cv2 read it at import: start again
        sys.exit(_apart(sys.argv[1:]).returncode)
    _without_avx512()
    stacks = load()
    if "--add-missing" in sys.argv[1:]:  # a new strategy: add its frames, keep the known-good ones as they are
        old = stacks.get(stack_key())
        if old is None:
            raise SystemExit(f"no references for {stack_key()} yet: run without --add-missing")
        ref = generate(set(cases()) - set(old["cases"]))
        if ref["source"] != old["source"]:
            raise SystemExit("the reference clip decodes to other pixels than the stored references: regenerate all")
        known = old.get("sources", {})
        changed = [n for n in ref["sources"] if n in known and ref["sources"][n] != known[n]]
        if changed:
            raise SystemExit(f"the {changed[0]} clip decodes to other pixels than the stored references: regenerate "
                             "all")
        ref["cases"] = {**old["cases"], **ref["cases"]}
    else:
        ref = generate()
    stacks[stack_key()] = ref
    DATA.write_text(json.dumps({"stacks": stacks}, indent=1, sort_keys=True) + "\n")
    n = sum(len(v) for v in ref["cases"].values())
    print(f"wrote {DATA} for {stack_key()}: {len(ref['cases'])} cases, {n} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
