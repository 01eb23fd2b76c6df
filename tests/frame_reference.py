"""Reference hashes of every strategy's frames, so speed work can prove it changed no pixel.

Each case (the default settings and every entry of :data:`lib_vid2vid.params.STRATEGIES`) runs a whole job
with the :class:`~lib_vid2vid.proxy.ProxyRenderer` on one small clip from :mod:`tests.clips`, and the SHA-256
of the decoded pixels (RGB uint8 HWC bytes, plus the shape) of every PNG the job keeps under ``frames/``
(each pass, masks) is recorded. Pixels, not file bytes: a cheaper lossless PNG encoding may change the
files but must not change a frame.

The clip is coded losslessly (x264 ``crf 0``), so its decoded pixels do not depend on the encoder's build;
their hashes are stored too, so a failure can tell "the decoder changed" from "the frames changed".

Float arithmetic differs a little between library versions (numpy's summation, OpenCV's colour conversions and
resizing), so the references are kept per library stack (:func:`stack_key`): CI's two legs (the newest allowed
versions, and the WebUI's pinned ones) each have theirs, both made from the code before the speed work. On a
stack without references the test skips and says so.

The key also says whether numpy runs its AVX-512 (SVML) kernels: numpy's float32 ``**`` and ``cbrt`` (colour
coherence's LAB conversions) give other last bits with them than without, so the default's frames differ
between a CPU with AVX-512 and one without. To check the other kind on one machine, switch them off with
``NPY_DISABLE_CPU_FEATURES="AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"`` (numpy 1.26) or
``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL"`` (numpy 2.4).

Add or regenerate the current stack's references (only on purpose, from code whose frames are known good)::

    python -m tests.frame_reference                  # updates tests/data/frame_hashes.json
    python -m tests.frame_reference --add-missing    # only the cases (strategies) the stack's references lack
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "frame_hashes.json"
SIZE = (128, 72)
N_FRAMES = 12
BASE = {"width": SIZE[0], "height": SIZE[1], "seed": 1234, "denoise": 0.5, "report": False}


def stack_key() -> str:
    """The library versions (and numpy's SIMD kernels) that decide the frames' float arithmetic, e.g.
    "numpy 2.4 / opencv 5.0", or "numpy 2.4 / opencv 5.1 / AVX512_SKX" where numpy runs its AVX-512 kernels."""
    import cv2

    def major_minor(v: str) -> str:
        return ".".join(v.split(".")[:2])

    key = f"numpy {major_minor(np.__version__)} / opencv {major_minor(cv2.__version__)}"
    return key + (" / AVX512_SKX" if numpy_avx512() else "")


def numpy_avx512() -> bool:
    """True if numpy dispatches to its AVX-512 (Skylake-X and later) kernels on this CPU in this process."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get("AVX512_SKX"))


def load() -> dict:
    """The stored references of every stack: {stack key: {"source": [...], "cases": {...}}}."""
    return json.loads(DATA.read_text())["stacks"] if DATA.is_file() else {}


def cases() -> dict[str, dict]:
    """Case name -> settings on top of :data:`BASE`: "default" (nothing more), every strategy, and settings that
    change how frames are made beyond the strategies: "keyframes+fast flow" (``keyframe_flow = fast``)."""
    from lib_vid2vid.params import STRATEGIES

    return {"default": {}, **{name: dict(values) for name, values in STRATEGIES.items()},
            "keyframes+fast flow": {**STRATEGIES["keyframes"], "keyframe_flow": "fast"}}


def make_reference_clip(folder: Path) -> Path:
    from tests.clips import make_clip

    return make_clip(Path(folder) / "ref.mp4", n_frames=N_FRAMES, size=SIZE, fps=Fraction(24), audio=False,
                     options={"crf": "0"})


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


def run_case(clip: Path, out_dir: Path, values: dict) -> dict[str, str]:
    """Run one case with the proxy renderer; its frame hashes."""
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.proxy import ProxyRenderer

    s = Settings().replace(input=str(clip), output_dir=str(out_dir), **{**BASE, **values})
    res = run_job(s, ProxyRenderer())
    if res.status != "done":
        raise AssertionError(f"job ended {res.status}: {res.message}")
    return frame_hashes(res.job_dir)


def generate(only: set[str] | None = None) -> dict:
    """Reference hashes of every case (or of the cases named in ``only``)."""
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_reference_clip(Path(tmp))
        ref = {"source": source_hashes(clip), "cases": {}}
        for name, values in cases().items():
            if only is None or name in only:
                ref["cases"][name] = run_case(clip, Path(tmp) / name, values)
    return ref


def main() -> None:
    stacks = load()
    if "--add-missing" in sys.argv[1:]:  # a new strategy: add its frames, keep the known-good ones as they are
        old = stacks.get(stack_key())
        if old is None:
            raise SystemExit(f"no references for {stack_key()} yet: run without --add-missing")
        ref = generate(set(cases()) - set(old["cases"]))
        if ref["source"] != old["source"]:
            raise SystemExit("the reference clip decodes to other pixels than the stored references: regenerate all")
        ref["cases"] = {**old["cases"], **ref["cases"]}
    else:
        ref = generate()
    stacks[stack_key()] = ref
    DATA.write_text(json.dumps({"stacks": stacks}, indent=1, sort_keys=True) + "\n")
    n = sum(len(v) for v in ref["cases"].values())
    print(f"wrote {DATA} for {stack_key()}: {len(ref['cases'])} cases, {n} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
