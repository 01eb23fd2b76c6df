"""Streaming decode: ``(output index, RGB uint8 HWC frame)`` at the output rate over a range of the video.

Frames are shown as players show them (the display matrix's mirror and rotation applied, non-square pixels made
square) and optionally resized (:mod:`.video_resize`); which source frame each output frame shows follows
:mod:`.video_resample`'s rule. A frame that cannot be produced raises
:class:`~lib_vid2vid.errors.CorruptVideoError` naming it, after every frame before it was yielded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import CorruptVideoError, VideoError
from .video_probe import (
    VideoInfo,
    display_name,
    display_size,
    ffmpeg_reason,
    first_video_stream,
    open_input,
    probe,
)
from .video_resample import exact_duration, plan_output
from .video_resize import RESIZE_MODES, resize_frame

#: Tolerance when comparing a source timestamp with an output time, seconds.
_EPS = Fraction(1, 1_000_000)


def _upright(rgb: np.ndarray, rotation: int, mirror: bool = False) -> np.ndarray:
    """An HWC array as displayed: mirrored left-right first when ``mirror``, then turned ``rotation`` degrees
    clockwise (:class:`~lib_vid2vid.video_probe.VideoInfo`)."""
    if rotation == 0 and not mirror:
        return rgb
    if mirror:
        rgb = rgb[:, ::-1]
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))


def _decoded(c, vs, start_ticks: int, t_first: Fraction, fallback_period: Fraction, tol: Fraction):
    """Yield ``(frame, t)`` in presentation order from a keyframe at or before ``t_first``.

    ``t`` is the frame time in seconds from the first source frame (exact Fraction). Seeks when
    ``t_first > 0``; if the demuxer lands after ``t_first`` it seeks earlier again (and finally rewinds).
    A decode error raises ``_DecodeFailure`` after the frames still held by the decoder are yielded.
    """
    tb = vs.time_base
    # Seek targets, tried in turn: the wanted time, then earlier, then the very start (None).
    targets = [t_first - m for m in (0, 1, 5, 30) if t_first - m > 0] + [None] if t_first > 0 else [None]
    for i, target in enumerate(targets):
        if target is not None:
            c.seek(start_ticks + math.floor(target / tb), stream=vs, backward=True, any_frame=False)
        elif i > 0:
            c.seek(0)
        gen = _decode_stream(c, vs, tb, start_ticks, fallback_period)
        first = next(gen, None)
        if first is None:
            return
        if target is not None and first[1] > t_first + tol:
            gen.close()
            continue  # landed after the wanted time: seek further back
        yield first
        yield from gen
        return


class _DecodeFailure(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _decode_stream(c, vs, tb, start_ticks, fallback_period):
    last_t = None
    failure = None
    try:
        for pkt in c.demux(vs):
            try:
                frames = vs.decode(pkt)
            except av.FFmpegError as e:
                failure = ffmpeg_reason(e)
                break
            for fr in frames:
                last_t = _frame_time(fr, tb, start_ticks, last_t, fallback_period)
                yield fr, last_t
    except av.FFmpegError as e:  # demuxer error (damaged container)
        failure = ffmpeg_reason(e)
    if failure is not None:
        try:  # frames the decoder still holds (reordering / threading delay) are fine: hand them out
            for fr in vs.decode(None):
                last_t = _frame_time(fr, tb, start_ticks, last_t, fallback_period)
                yield fr, last_t
        except av.FFmpegError:
            pass
        raise _DecodeFailure(failure)


def _frame_time(fr, tb, start_ticks, last_t, period) -> Fraction:
    if fr.pts is not None:
        return (fr.pts - start_ticks) * tb
    return Fraction(0) if last_t is None else last_t + period


def iter_frames(
    path,
    *,
    fps=None,
    start: float = 0.0,
    end: float | None = None,
    size: tuple[int, int] | None = None,
    resize_mode: str = "just_resize",
    first_index: int = 0,
    info: VideoInfo | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream ``(output index, RGB uint8 HWC frame)`` at ``fps`` over ``[start, end)`` seconds.

    Frames follow :mod:`.video_resample`'s rule and are shown as players show them, ``info.width`` x
    ``info.height`` pixels (the display matrix's mirror and rotation applied, pixels made square), or, when
    ``size`` = (width, height) is given, resized to it with ``resize_mode`` (laid out for the displayed shape).
    Memory is constant: one decoded frame is kept. ``first_index > 0`` seeks near that frame's time and decodes forward, yielding exactly the frames
    a full run yields from that index. Pass ``info`` (from :func:`probe`) to skip probing again.

    Raises CorruptVideoError(frame=k) when output frame k cannot be produced because the stream fails to
    decode or ends well before its probed length (frames before k are yielded first).
    """
    p = Path(path)
    if size is not None:
        if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
            raise VideoError(f"Output size {size!r} is invalid: give (width, height), each at least 1")
        if resize_mode not in RESIZE_MODES:
            raise VideoError(f"Unknown resize mode {resize_mode!r}: use one of {', '.join(RESIZE_MODES)}")
    info = info if info is not None else probe(p)
    fps_out, s, n = plan_output(info, fps, start, end)
    first_index = int(first_index)
    if first_index < 0:
        raise VideoError(f"first_index {first_index} is negative: give 0 or more")
    if first_index >= n:
        return
    src_period = Fraction(1) / info.fps

    def t_of(k: int) -> Fraction:
        return s + Fraction(k) / fps_out

    cache: list = [None, None]  # [frame object, converted array]

    def convert(frame) -> np.ndarray:
        if cache[0] is not frame:
            arr = _upright(frame.to_ndarray(format="rgb24"), info.rotation, info.mirror)
            shown = display_size(frame.width, frame.height, info.rotation, info.pixel_aspect)
            if size is not None:  # one resample, laid out for the displayed shape
                arr = resize_frame(arr, int(size[0]), int(size[1]), resize_mode, source_size=shown)
            elif shown != (arr.shape[1], arr.shape[0]):  # non-square pixels
                arr = resize_frame(arr, *shown)
            cache[0], cache[1] = frame, arr
        return cache[1]

    def corrupt(k: int, t: Fraction, why: str) -> CorruptVideoError:
        return CorruptVideoError(
            k,
            f"{display_name(p)}: {why} at output frame {k} (source time {float(t):.3f}s): frames before {k} are fine; "
            f"set end to {float(t):.2f}s or re-encode the video",
        )

    k = first_index
    prev = None  # (frame, t) = last decoded frame with t <= t_k
    c = open_input(p)
    try:
        vs = first_video_stream(c, p)
        vs.thread_type = "AUTO"
        start_ticks = round(Fraction(info.start_time) / vs.time_base)
        # Timestamps are rounded to the time base (1 ms in mkv/webm, 1/100 s in gif): allow one tick, and the
        # source's jitter (a phone stamps frames a millisecond or so off their grid: each is still on time).
        tol = min(max(_EPS, Fraction(vs.time_base)) + Fraction(info.jitter), src_period / 4)
        try:
            for frame, t in _decoded(c, vs, start_ticks, t_of(k), src_period, tol):
                while k < n and t > t_of(k) + tol:
                    if prev is None:  # cannot happen after a good seek; be safe
                        prev = (frame, t)
                        break
                    yield k, convert(prev[0])
                    k += 1
                if k >= n:
                    return
                prev = (frame, t)
        except _DecodeFailure as e:
            # Serve the outputs the last good frame legitimately covers, then stop naming the next one.
            limit = (prev[1] + src_period - _EPS) if prev is not None else None
            while prev is not None and k < n and t_of(k) < limit:
                yield k, convert(prev[0])
                k += 1
            if k < n:
                raise corrupt(k, t_of(k), f"the video stream cannot be decoded ({e.reason})") from None
            return
        if k >= n:
            return
        if prev is None:
            raise corrupt(k, t_of(k), "no frame could be decoded")
        # End of stream with outputs left: fine if the source really ends here, truncated if frames are missing.
        expected_last = (
            Fraction(info.last_frame_time) if info.last_frame_time is not None else exact_duration(info) - src_period
        )
        if expected_last - prev[1] > Fraction(3, 2) * src_period:
            limit = prev[1] + src_period - _EPS
            while k < n and t_of(k) < limit:
                yield k, convert(prev[0])
                k += 1
            if k < n:
                raise corrupt(
                    k, t_of(k), f"the video ends early (probed {info.frame_count} frames, {info.duration:.3f}s); the file is truncated or damaged"
                )
            return
        while k < n:
            yield k, convert(prev[0])
            k += 1
    finally:
        c.close()
