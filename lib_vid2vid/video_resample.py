"""Frame-rate resampling and trimming: which output frames a range of a video gives, and when each is shown.

Resampling rule
---------------
Output frame ``k`` is shown at ``t_k = start + k / fps_out`` and takes the *last* source frame whose
timestamp is ``<= t_k`` (tolerance: one tick of the stream's time base, since containers round timestamps, e.g.
to 1 ms in webm, plus the source's jitter, ``VideoInfo.jitter``; at most a quarter source frame). The number of output frames is
``N = floor((end - start) * fps_out + 1/2)`` (at least 1), so the output duration ``N / fps_out`` equals the
processed source range ``end - start`` within half an output frame. ``fps=None`` keeps the source rate.
Times are seconds from the first source frame; frame rates are exact :class:`fractions.Fraction`.
"""

from __future__ import annotations

import math
from fractions import Fraction

from .errors import VideoError
from .video_probe import VideoInfo


def to_fraction(x, what: str) -> Fraction:
    try:
        f = Fraction(x) if not isinstance(x, float) else Fraction(x).limit_denominator(1_000_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise VideoError(f"{what} {x!r} is not a number: give e.g. 12, 29.97 or 30000/1001") from None
    return f


def exact_duration(info: VideoInfo) -> Fraction:
    if not info.is_vfr:
        return Fraction(info.frame_count) / info.fps
    return Fraction(info.duration)


def plan_output(info: VideoInfo, fps=None, start: float = 0.0, end: float | None = None) -> tuple[Fraction, Fraction, int]:
    """Validate a range and rate and return ``(fps_out, start, N)`` (see the module's resampling rule).

    ``start``/``end`` are seconds from the first source frame; ``end=None`` or past the end means the end.
    """
    fps_out = info.fps if fps is None else to_fraction(fps, "Frame rate")
    if fps_out <= 0:
        raise VideoError(f"Frame rate must be positive, got {fps}: give e.g. 12 or 30000/1001")
    dur = exact_duration(info)
    s = Fraction(start or 0)
    if s < 0:
        raise VideoError(f"Start time {start}s is negative: give a start of 0 or more seconds")
    e = dur if end is None else min(Fraction(end), dur)
    if s >= e:
        raise VideoError(
            f"Start {float(s):.3f}s is not before end {float(e):.3f}s (video lasts {float(dur):.3f}s): choose start < end"
        )
    n = max(1, math.floor((e - s) * fps_out + Fraction(1, 2)))
    return fps_out, s, n


def output_frame_count(info: VideoInfo, fps=None, start: float = 0.0, end: float | None = None) -> int:
    """Number of frames :func:`~lib_vid2vid.video_decode.iter_frames` yields for these settings: ``round((end - start) * fps_out)``."""
    return plan_output(info, fps, start, end)[2]


def output_times(info: VideoInfo, fps=None, start: float = 0.0, end: float | None = None) -> list[float]:
    """Source time (seconds from the first frame) at which each output frame is sampled: ``start + k / fps_out``."""
    fps_out, s, n = plan_output(info, fps, start, end)
    return [float(s + Fraction(k) / fps_out) for k in range(n)]
