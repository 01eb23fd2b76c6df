"""Video I/O on PyAV: probe, streaming decode with fps resampling / trimming / resizing, streaming encode
with the source audio carried over in sync.

PyAV's wheel embeds FFmpeg; nothing here runs an external binary or a subprocess.

Conventions
-----------
* Frames are RGB uint8 arrays shaped (H, W, 3), already turned upright (rotation metadata applied).
* Times are seconds on the source video's timeline, measured from its first frame
  (``VideoInfo.start_time`` is subtracted from container timestamps), so ``start=0`` is source frame 0.
* Frame rates are :class:`fractions.Fraction` (frames per second) so 30000/1001 stays exact.

Resampling rule (``output_times``)
---------------------------------
Output frame ``k`` is shown at ``t_k = start + k / fps_out`` and takes the *last* source frame whose
timestamp is ``<= t_k`` (tolerance: one tick of the stream's time base, at most a quarter source frame,
since containers round timestamps, e.g. to 1 ms in webm). The number of output frames is
``N = floor((end - start) * fps_out + 1/2)`` (at least 1), so the output duration ``N / fps_out`` equals the
processed source range ``end - start`` within half an output frame. ``fps=None`` keeps the source rate.

Errors
------
Expected failures raise :class:`~lib_vid2vid.errors.VideoError` (or :class:`CorruptVideoError`, which names
the first output frame that could not be produced) with a one-line message that says what to do.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import CorruptVideoError, VideoError

__all__ = [
    "AudioInfo",
    "VideoInfo",
    "VideoWriter",
    "FORMATS",
    "RESIZE_MODES",
    "audio_duration",
    "decode_audio",
    "encode_frames",
    "has_audio",
    "iter_frames",
    "output_frame_count",
    "output_times",
    "plan_output",
    "probe",
    "resize_frame",
]

RESIZE_MODES = ("just_resize", "crop_and_resize", "resize_and_fill")
FORMATS = ("mp4", "webm", "gif", "png")

#: Packets demuxed (not decoded) by :func:`probe` to measure frame count, duration and pts regularity.
#: Past this many packets the container's frame count is trusted when it agrees with its duration.
PROBE_SCAN_LIMIT = 5000
#: Tolerance when comparing a source timestamp with an output time, seconds.
_EPS = Fraction(1, 1_000_000)
#: A stream is variable-frame-rate when its pts spacing varies by more than this fraction of the median
#: spacing (and by more than one time-base tick, so millisecond rounding in mkv is not called VFR).
_VFR_TOLERANCE = 0.05
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


# --------------------------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class AudioInfo:
    """One audio stream. ``start`` and ``duration`` are seconds on the container clock (None if unknown)."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    start: float
    duration: float | None


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video file.

    ``width`` x ``height`` is the display size, after ``rotation`` (clockwise degrees, 0/90/180/270) is
    applied to the coded ``coded_width`` x ``coded_height`` picture. ``fps`` is the average frame rate;
    ``is_vfr`` says whether the pts spacing varies. ``duration`` (seconds) runs from the first frame's
    timestamp ``start_time`` (container clock) to the end of the last frame; for constant-rate video it is
    ``frame_count / fps``. ``last_frame_time`` is the last frame's timestamp relative to ``start_time`` when
    all packets were scanned, else None.
    """

    path: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    fps: Fraction
    is_vfr: bool
    frame_count: int
    duration: float
    codec: str
    start_time: float
    audio: tuple[AudioInfo, ...]
    last_frame_time: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict; ``fps`` becomes the string "num/den"."""
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["audio"] = [asdict(a) for a in self.audio]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VideoInfo:
        """Inverse of :meth:`to_dict` (for a manifest read back from disk)."""
        d = dict(d)
        d["fps"] = Fraction(d["fps"])
        d["audio"] = tuple(AudioInfo(**a) for a in d.get("audio", ()))
        return cls(**d)


def _name(path: Path) -> str:
    return path.name or str(path)


def _open_input(path) -> av.container.InputContainer:
    """Open ``path`` for reading or raise a one-line VideoError (missing, a folder, not a media file)."""
    p = Path(path)
    if not p.exists():
        raise VideoError(f"Video not found: {p}: check the path")
    if p.is_dir():
        raise VideoError(f"{p} is a folder, not a video file: give the path of a video file")
    kind = _special_kind(p)
    if kind:  # FFmpeg would wait on a pipe with no writer, or read a device forever
        raise VideoError(f"{p} is {kind}, not a regular file: give a video file (copy the stream to a file first)")
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise VideoError(
            f"{_name(p)} is not a video or cannot be read ({_reason(e)}): use a video file such as mp4, mkv, webm or mov"
        ) from None


def _special_kind(path: Path) -> str:
    """"" for a regular file (or one that cannot be stat'ed: opening it reports why), else what it is."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _reason(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    s = s[0] if s else type(e).__name__
    # PyAV appends "[Errno N] ... : 'path'"; keep the human part.
    if s.startswith("[Errno"):
        s = s.split("]", 1)[-1].strip()
    if ": '" in s:
        s = s.split(": '", 1)[0]
    return s or type(e).__name__


def _video_stream(c, p: Path):
    if not c.streams.video:
        kinds = sorted({s.type for s in c.streams}) or ["nothing"]
        raise VideoError(
            f"{_name(p)} has no video stream (it contains {', '.join(kinds)}): give a file with a picture track"
        )
    return c.streams.video[0]


def _packet_time(pkt) -> int | None:
    return pkt.pts if pkt.pts is not None else pkt.dts


def probe(path) -> VideoInfo:
    """Read a video's size, rotation, frame rate, frame count, duration and audio streams.

    The frame count and duration come from demuxing packets (no decoding) when the file has at most
    :data:`PROBE_SCAN_LIMIT` of them, else from the container when its count agrees with its duration
    (else the whole file is demuxed). When the file holds fewer packets than its header promises (a
    truncated file), the promised count is reported so that :func:`iter_frames` stops with a
    CorruptVideoError naming the first missing frame. The first frame is decoded to read the rotation and
    to check that the stream can be decoded at all.
    """
    p = Path(path)
    with _open_input(p) as c:
        vs = _video_stream(c, p)
        tb = vs.time_base or Fraction(1, 90000)
        codec = vs.codec_context.name if vs.codec_context else "unknown"
        audio = tuple(
            AudioInfo(
                index=a.index,
                codec=a.codec_context.name if a.codec_context else "unknown",
                sample_rate=int(a.codec_context.sample_rate or 0) if a.codec_context else 0,
                channels=int(a.codec_context.channels or 0) if a.codec_context else 0,
                start=float(a.start_time * a.time_base) if a.start_time is not None and a.time_base else 0.0,
                duration=float(a.duration * a.time_base) if a.duration and a.time_base else None,
            )
            for a in c.streams.audio
        )
        container_frames = int(vs.frames or 0)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        stream_dur = float(vs.duration * tb) if vs.duration else (c.duration / 1e6 if c.duration else None)
        trusted = bool(
            container_frames > 0 and rate and stream_dur and abs(container_frames - stream_dur * rate) <= max(2, 0.01 * container_frames)
        )

        times: list[int] = []
        last_end = None  # max(pts + duration), ticks
        count = 0
        complete = True
        try:
            for pkt in c.demux(vs):
                if pkt.size == 0:
                    continue
                count += 1
                t = _packet_time(pkt)
                if t is not None:
                    times.append(t)
                    end = t + (pkt.duration or 0)
                    last_end = end if last_end is None else max(last_end, end)
                if count >= PROBE_SCAN_LIMIT and trusted:
                    complete = False
                    break
        except av.FFmpegError:
            pass  # a damaged tail: count what could be demuxed; iter_frames reports the frame that fails

    if count == 0:
        raise VideoError(f"{_name(p)} has a video stream but no frames: give a video that contains pictures")

    times.sort()
    diffs = np.diff(np.asarray(times, dtype=np.int64)) if len(times) > 1 else np.zeros(0, np.int64)
    diffs = diffs[diffs > 0]
    is_vfr = False
    if diffs.size:
        med = float(np.median(diffs))
        spread = float(diffs.max() - diffs.min())
        is_vfr = spread > 1 and spread > _VFR_TOLERANCE * med
    frame_count = count if complete else container_frames
    truncated = complete and container_frames - count > max(1, 0.01 * container_frames)
    if truncated:
        # The header promises more frames than the file holds (a cut-off download, say). Report the promised
        # length so iter_frames names the first missing frame instead of quietly ending early.
        frame_count, complete = container_frames, False

    if not rate:
        if diffs.size:
            rate = Fraction(1) / (Fraction(int(np.median(diffs))) * tb)
        else:
            rate = Fraction(25)
    rate = Fraction(rate)
    if complete and not is_vfr and len(times) > 1 and times[-1] > times[0]:
        measured = Fraction(len(times) - 1) / ((times[-1] - times[0]) * tb)
        if abs(measured / rate - 1) > 0.01:  # e.g. a gif whose 1/100 s delays confuse FFmpeg's average
            rate = _nice_rate(measured)
    start_ticks = times[0] if times else (vs.start_time or 0)
    start_time = float(start_ticks * tb)
    last_frame_time = float((times[-1] - start_ticks) * tb) if (times and complete) else None

    if not is_vfr:
        duration = float(Fraction(frame_count) / rate)
    elif complete and last_end is not None and times:
        tail = last_end - times[-1]
        if tail <= 0:
            tail = int(np.median(diffs)) if diffs.size else 0
        duration = float((times[-1] + tail - start_ticks) * tb)
    else:
        duration = stream_dur or float(Fraction(frame_count) / rate)
    if is_vfr and duration > 0:
        rate = Fraction(frame_count / duration).limit_denominator(1001)

    rotation, coded_w, coded_h = _first_frame_geometry(p)
    if rotation in (90, 270):
        width, height = coded_h, coded_w
    else:
        width, height = coded_w, coded_h
    return VideoInfo(
        path=str(p),
        width=width,
        height=height,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        fps=rate,
        is_vfr=bool(is_vfr),
        frame_count=int(frame_count),
        duration=float(duration),
        codec=codec,
        start_time=start_time,
        audio=audio,
        last_frame_time=last_frame_time,
    )


def _nice_rate(measured: Fraction) -> Fraction:
    """Snap a measured frame rate to n or n*1000/1001 fps when within 0.5 %, else a small fraction."""
    for cand in (Fraction(round(measured)), Fraction(round(measured * Fraction(1001, 1000)) * 1000, 1001)):
        if cand > 0 and abs(measured / cand - 1) <= Fraction(1, 200):
            return cand
    return measured.limit_denominator(1001)


def _first_frame_geometry(p: Path) -> tuple[int, int, int]:
    """Decode the first frame: (clockwise display rotation, coded width, coded height)."""
    with _open_input(p) as c:
        vs = _video_stream(c, p)
        try:
            frame = next(iter(c.decode(vs)), None)
        except av.FFmpegError as e:
            raise CorruptVideoError(
                0, f"{_name(p)}: cannot decode the first video frame ({_reason(e)}): the file is damaged or the codec is unsupported; re-encode it"
            ) from None
        if frame is None:
            raise VideoError(f"{_name(p)} has a video stream but no decodable frames: give a video that contains pictures")
        ccw = frame.rotation  # counter-clockwise degrees of the display matrix, -180..180
        if not ccw:
            try:
                ccw = -int(float(vs.metadata.get("rotate", 0)))
            except ValueError:
                ccw = 0
        rotation = int(round(-ccw / 90.0)) * 90 % 360
        return rotation, int(frame.width), int(frame.height)


# --------------------------------------------------------------------------------------- resampling


def _fraction(x, what: str) -> Fraction:
    try:
        f = Fraction(x) if not isinstance(x, float) else Fraction(x).limit_denominator(1_000_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise VideoError(f"{what} {x!r} is not a number: give e.g. 12, 29.97 or 30000/1001") from None
    return f


def _exact_duration(info: VideoInfo) -> Fraction:
    if not info.is_vfr:
        return Fraction(info.frame_count) / info.fps
    return Fraction(info.duration)


def plan_output(info: VideoInfo, fps=None, start: float = 0.0, end: float | None = None) -> tuple[Fraction, Fraction, int]:
    """Validate a range and rate and return ``(fps_out, start, N)`` (see the module's resampling rule).

    ``start``/``end`` are seconds from the first source frame; ``end=None`` or past the end means the end.
    """
    fps_out = info.fps if fps is None else _fraction(fps, "Frame rate")
    if fps_out <= 0:
        raise VideoError(f"Frame rate must be positive, got {fps}: give e.g. 12 or 30000/1001")
    dur = _exact_duration(info)
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
    """Number of frames :func:`iter_frames` yields for these settings: ``round((end - start) * fps_out)``."""
    return plan_output(info, fps, start, end)[2]


def output_times(info: VideoInfo, fps=None, start: float = 0.0, end: float | None = None) -> list[float]:
    """Source time (seconds from the first frame) at which each output frame is sampled: ``start + k / fps_out``."""
    fps_out, s, n = plan_output(info, fps, start, end)
    return [float(s + Fraction(k) / fps_out) for k in range(n)]


# ------------------------------------------------------------------------------------------- resize


def _scale(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize to w x h: INTER_AREA when shrinking both sides, Lanczos otherwise."""
    H, W = img.shape[:2]
    if (W, H) == (w, h):
        return img
    interp = cv2.INTER_AREA if (w <= W and h <= H) else cv2.INTER_LANCZOS4
    return cv2.resize(img, (w, h), interpolation=interp)


def resize_frame(rgb: np.ndarray, width: int, height: int, mode: str = "just_resize") -> np.ndarray:
    """Resize an RGB uint8 HWC frame to ``width`` x ``height`` the way the WebUI's ``images.resize_image`` does.

    * ``just_resize``: stretch to the target size (aspect ratio not kept).
    * ``crop_and_resize``: scale so the frame covers the target, then centre-crop the overflow.
    * ``resize_and_fill``: scale so the frame fits inside the target, centre it, and fill the empty bands by
      repeating the nearest edge row (top/bottom bands) or column (left/right bands), as the WebUI
      stretches the edge rows. Unlike the WebUI, an odd leftover row is filled too.

    Scaled sizes use the WebUI's integer formulas, e.g. ``src_h = H * width // W``.
    """
    if mode not in RESIZE_MODES:
        raise VideoError(f"Unknown resize mode {mode!r}: use one of {', '.join(RESIZE_MODES)}")
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise VideoError(f"Target size {width}x{height} is empty: give a width and height of at least 1")
    H, W = rgb.shape[:2]
    if mode == "just_resize":
        return _scale(rgb, width, height)
    ratio = width / height
    src_ratio = W / H
    if mode == "crop_and_resize":
        sw = width if ratio > src_ratio else W * height // H
        sh = height if ratio <= src_ratio else H * width // W
        scaled = _scale(rgb, max(sw, 1), max(sh, 1))
        x0 = sw // 2 - width // 2
        y0 = sh // 2 - height // 2
        return np.ascontiguousarray(scaled[y0 : y0 + height, x0 : x0 + width])
    # resize_and_fill
    sw = width if ratio < src_ratio else W * height // H
    sh = height if ratio >= src_ratio else H * width // W
    sw, sh = max(sw, 1), max(sh, 1)
    scaled = _scale(rgb, sw, sh)
    out = np.empty((height, width, rgb.shape[2]), dtype=rgb.dtype)
    x0 = width // 2 - sw // 2
    y0 = height // 2 - sh // 2
    out[y0 : y0 + sh, x0 : x0 + sw] = scaled
    if y0 > 0:
        out[:y0, x0 : x0 + sw] = scaled[:1]
    if y0 + sh < height:
        out[y0 + sh :, x0 : x0 + sw] = scaled[-1:]
    if x0 > 0:
        out[:, :x0] = out[:, x0 : x0 + 1]
    if x0 + sw < width:
        out[:, x0 + sw :] = out[:, x0 + sw - 1 : x0 + sw]
    return out


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a clockwise display rotation (degrees) to an HWC array."""
    if rotation == 0:
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation // 90)))


# ------------------------------------------------------------------------------------------- decode


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
                failure = _reason(e)
                break
            for fr in frames:
                last_t = _frame_time(fr, tb, start_ticks, last_t, fallback_period)
                yield fr, last_t
    except av.FFmpegError as e:  # demuxer error (damaged container)
        failure = _reason(e)
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

    Frames follow the module's resampling rule, are turned upright (rotation metadata) and, when ``size``
    = (width, height) is given, resized with ``resize_mode``. Memory is constant: one decoded frame is
    kept. ``first_index > 0`` seeks near that frame's time and decodes forward, yielding exactly the frames
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
            arr = _upright(frame.to_ndarray(format="rgb24"), info.rotation)
            if size is not None:
                arr = resize_frame(arr, int(size[0]), int(size[1]), resize_mode)
            cache[0], cache[1] = frame, arr
        return cache[1]

    def corrupt(k: int, t: Fraction, why: str) -> CorruptVideoError:
        return CorruptVideoError(
            k,
            f"{_name(p)}: {why} at output frame {k} (source time {float(t):.3f}s): frames before {k} are fine; "
            f"set end to {float(t):.2f}s or re-encode the video",
        )

    k = first_index
    prev = None  # (frame, t) = last decoded frame with t <= t_k
    c = _open_input(p)
    try:
        vs = _video_stream(c, p)
        vs.thread_type = "AUTO"
        start_ticks = round(Fraction(info.start_time) / vs.time_base)
        # Timestamps are rounded to the time base (1 ms in mkv/webm, 1/100 s in gif): allow one tick.
        tol = min(max(_EPS, Fraction(vs.time_base)), src_period / 4)
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
            Fraction(info.last_frame_time) if info.last_frame_time is not None else _exact_duration(info) - src_period
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


# ------------------------------------------------------------------------------------------- audio


def has_audio(path) -> bool:
    """True when ``path`` has at least one audio stream."""
    with _open_input(path) as c:
        return bool(c.streams.audio)


def decode_audio(path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream to float32 planar samples ``(channels, n)`` in -1..1 and its rate (Hz).

    Samples start at the stream's first decoded sample (the encoder's priming is already removed by FFmpeg).
    Meant for tests and short clips (the whole track is held in memory).
    """
    with _open_input(path) as c:
        if not c.streams.audio:
            raise VideoError(f"{_name(Path(path))} has no audio stream")
        a = c.streams.audio[0]
        out_rate = int(rate or a.codec_context.sample_rate)
        layout = "mono" if a.codec_context.channels == 1 else "stereo"
        rs = av.AudioResampler(format="fltp", layout=layout, rate=out_rate)
        chunks = []
        for fr in c.decode(a):
            chunks.extend(o.to_ndarray() for o in rs.resample(fr))
        chunks.extend(o.to_ndarray() for o in rs.resample(None))
    ch = 1 if layout == "mono" else 2
    data = np.concatenate(chunks, axis=1) if chunks else np.zeros((ch, 0), np.float32)
    return data.astype(np.float32, copy=False), out_rate


def audio_duration(path) -> float | None:
    """Duration of the first audio stream in seconds, by decoding it (exact); None without audio."""
    if not has_audio(path):
        return None
    data, rate = decode_audio(path)
    return data.shape[1] / rate


class _AudioSource:
    """Decode the source's first audio stream over ``[start, ...)`` seconds of the source *video* timeline,
    resampled to ``rate`` Hz / ``layout``, and hand out exactly the samples asked for.

    Sample ``j`` handed out is the source sound at video time ``start + j / rate``: samples before the
    source audio begins and after it ends are silence, so the output track starts at video frame 0.
    """

    def __init__(self, path: Path, start: float, rate: int, layout: str):
        self.path = path
        self.rate = rate
        self.channels = 1 if layout == "mono" else 2
        self.layout = layout
        info = probe(path) if _has_video(path) else None
        ref = Fraction(info.start_time) if info is not None else Fraction(0)
        self._origin = ref + Fraction(start or 0)  # container-clock time of output sample 0
        self._gen = self._chunks()
        self._buf: list[np.ndarray] = []
        self._buffered = 0

    def _chunks(self) -> Iterator[np.ndarray]:
        with _open_input(self.path) as c:
            a = c.streams.audio[0]
            tb = a.time_base
            seek_to = self._origin - 1  # one second early: the decoder needs a run-in (MDCT overlap)
            if seek_to > 0:
                c.seek(math.floor(seek_to / tb), stream=a, backward=True, any_frame=False)
            rs = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
            pos = None  # index (relative to output sample 0) of the next resampled sample
            emitted = 0

            def emit(arr: np.ndarray):
                nonlocal pos, emitted
                n = arr.shape[1]
                if pos + n <= 0:
                    pos += n
                    return
                if pos < 0:
                    arr = arr[:, -pos:]
                    pos = 0
                if pos > emitted:  # the source audio starts after the output's t=0: silence first
                    yield np.zeros((self.channels, pos - emitted), np.float32)
                    emitted = pos
                yield arr
                pos += arr.shape[1]
                emitted = pos

            try:
                for fr in c.decode(a):
                    if pos is None:
                        t0 = fr.pts * tb if fr.pts is not None else Fraction(a.start_time or 0) * tb
                        pos = math.floor((t0 - self._origin) * self.rate + Fraction(1, 2))
                    for o in rs.resample(fr):
                        yield from emit(o.to_ndarray().astype(np.float32, copy=False))
                if pos is not None:
                    for o in rs.resample(None):
                        yield from emit(o.to_ndarray().astype(np.float32, copy=False))
            except av.FFmpegError:
                return  # damaged audio tail: the rest is silence

    def read(self, n: int) -> np.ndarray:
        """Exactly ``n`` samples ``(channels, n)`` float32 (silence past the end of the source audio)."""
        while self._buffered < n:
            chunk = next(self._gen, None)
            if chunk is None:
                break
            self._buf.append(chunk)
            self._buffered += chunk.shape[1]
        data = np.concatenate(self._buf, axis=1) if self._buf else np.zeros((self.channels, 0), np.float32)
        out, rest = data[:, :n], data[:, n:]
        self._buf = [rest] if rest.shape[1] else []
        self._buffered = rest.shape[1]
        if out.shape[1] < n:
            out = np.concatenate([out, np.zeros((self.channels, n - out.shape[1]), np.float32)], axis=1)
        return np.ascontiguousarray(out)

    def close(self):
        self._gen.close()


def _has_video(path) -> bool:
    with _open_input(path) as c:
        return bool(c.streams.video)


class _AudioTrack:
    """An audio output stream fed sample-exactly from an :class:`_AudioSource`."""

    def __init__(self, container, codec: str, source: _AudioSource):
        self.source = source
        self.stream = container.add_stream(codec, rate=source.rate)
        self.stream.layout = source.layout
        self.fmt = "fltp" if codec == "aac" else "flt"
        self.stream.format = self.fmt
        if codec == "aac":
            self.stream.bit_rate = 192_000 if source.channels == 2 else 128_000
        self.container = container
        self.written = 0  # samples sent to the encoder

    def feed_until(self, total: int, final: bool = False):
        """Encode samples up to ``total`` (whole encoder frames only unless ``final``)."""
        fs = self.stream.codec_context.frame_size or 1024
        while self.written < total:
            n = min(fs, total - self.written)
            if n < fs and not final:
                break
            data = self.source.read(n)
            if self.fmt == "flt":
                data = np.ascontiguousarray(data.T.reshape(1, -1))
            fr = av.AudioFrame.from_ndarray(data, format=self.fmt, layout=self.source.layout)
            fr.sample_rate = self.source.rate
            fr.pts = self.written
            fr.time_base = Fraction(1, self.source.rate)
            self.written += n
            for pkt in self.stream.encode(fr):
                self.container.mux(pkt)
        if final:
            for pkt in self.stream.encode(None):
                self.container.mux(pkt)


# ------------------------------------------------------------------------------------------- encode


def _write_error(e: BaseException, target: Path) -> VideoError:
    code = getattr(e, "errno", None)
    if code == errno.ENOSPC or "No space left" in str(e):
        return VideoError(f"Disk full while writing {target}: free some space and run again (finished frames are kept)")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or isinstance(e, PermissionError):
        return VideoError(f"Cannot write {target}: permission denied; choose an output folder you can write to")
    if code in (errno.ENOTDIR, errno.ENOENT) or isinstance(e, (NotADirectoryError, FileNotFoundError)):
        return VideoError(f"Cannot write {target}: the output folder does not exist or is not a folder; choose another output folder")
    return VideoError(f"Cannot write {target} ({_reason(e)}): check the output folder and free disk space")


class VideoWriter:
    """Streaming encoder: ``write`` RGB uint8 HWC frames one by one, ``close`` finalises and returns the path.

    Formats: ``mp4`` (H.264 libx264, yuv420p, ``crf``, +faststart, AAC audio), ``webm`` (VP9 libvpx-vp9,
    constant-quality ``crf`` 0..63, Opus audio), ``gif`` (an adaptive 256-colour palette per frame, no audio;
    GIF stores delays in 1/100 s so its rate is approximate), ``png`` (a folder ``path`` of ``000001.png``...,
    plus ``fps.txt`` holding the rate "num/den" and ``audio.m4a`` when there is audio).

    The frame size is taken from the first frame. mp4/webm need even sizes (yuv420p): an odd last row or
    column is cropped. The frame rate is exact (30000/1001 stays 30000/1001). Output goes to a hidden
    temporary name in the same folder and is renamed to ``path`` only by ``close``, so a crash never leaves
    a half-written file under the final name; leaving the ``with`` block by an exception discards it.

    Audio: with ``audio_from``, the source's first audio stream over ``[audio_start, audio_end)`` seconds
    of its video timeline is transcoded, trimmed sample-exactly and padded with silence where the source
    has none, so audio time 0 is video frame 0 and the track lasts ``min(audio_end - audio_start, n / fps)``
    seconds for n written frames (``audio_end=None``: exactly the video's duration).

    ``options``: encoder options over the defaults for mp4/webm (e.g. ``{"preset": "veryfast", "tune":
    "zerolatency"}`` for a preview that x264 encodes as frames arrive instead of holding back its lookahead).
    """

    def __init__(self, path, fps, *, fmt: str = "mp4", crf: int = 18, audio_from=None, audio_start: float = 0.0,
                 audio_end: float | None = None, options: dict[str, str] | None = None):
        if fmt not in FORMATS:
            raise VideoError(f"Unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.fmt = fmt
        self.fps = _fraction(fps, "Output frame rate")
        if self.fps <= 0:
            raise VideoError(f"Output frame rate must be positive, got {fps}")
        self.crf = int(crf)
        self.options = dict(options or {})
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_start = float(audio_start or 0.0)
        self.audio_end = None if audio_end is None else float(audio_end)
        if self.audio_end is not None and self.audio_end <= self.audio_start:
            raise VideoError(f"Audio range {self.audio_start}..{self.audio_end}s is empty: give audio_end > audio_start")
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height) as written
        self._closed = False
        self._container = None
        self._vstream = None
        self._audio: _AudioTrack | None = None
        self._source: _AudioSource | None = None
        parent = self.path.parent
        self._tmp = parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}.part"
        if self.audio_from is not None and fmt != "gif" and has_audio(self.audio_from):
            rate = 48000
            layout = "stereo"
            with _open_input(self.audio_from) as c:
                a = c.streams.audio[0].codec_context
                if a.channels == 1:
                    layout = "mono"
                if fmt in ("mp4", "png") and a.sample_rate in _AAC_RATES:
                    rate = int(a.sample_rate)
            self._source = _AudioSource(self.audio_from, self.audio_start, rate, layout)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if fmt == "png":
                self._tmp.mkdir()
            else:
                self._container = av.open(str(self._tmp), mode="w", format=fmt,
                                          options={"movflags": "+faststart"} if fmt == "mp4" else {})
        except (OSError, av.FFmpegError) as e:
            self._discard()
            if self._source is not None:
                self._source.close()
            raise _write_error(e, self.path) from None

    # -- context manager
    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def duration(self) -> Fraction:
        """Seconds of video written so far: frames / fps."""
        return Fraction(self.frames) / self.fps

    def _audio_samples(self, video_seconds: Fraction) -> int:
        limit = video_seconds
        if self.audio_end is not None:
            limit = min(limit, Fraction(self.audio_end) - Fraction(self.audio_start))
        return math.floor(limit * self._source.rate + Fraction(1, 2))

    def _setup(self, h: int, w: int):
        if self.fmt in ("mp4", "webm"):
            w, h = w - w % 2, h - h % 2
            if w < 2 or h < 2:
                raise VideoError(f"Frames of {w}x{h} pixels are too small for {self.fmt}: give frames at least 2x2")
        self.size = (w, h)
        if self.fmt == "png":
            (self._tmp / "fps.txt").write_text(f"{self.fps.numerator}/{self.fps.denominator}\n")
            return
        c = self._container
        if self.fmt == "mp4":
            s = c.add_stream("libx264", rate=self.fps)
            s.pix_fmt = "yuv420p"
            s.options = {"crf": str(self.crf), "preset": "medium"} | self.options
        elif self.fmt == "webm":
            s = c.add_stream("libvpx-vp9", rate=self.fps)
            s.pix_fmt = "yuv420p"
            s.options = {"crf": str(self.crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "2"} | self.options
        else:
            s = c.add_stream("gif", rate=self.fps)
            s.pix_fmt = "pal8"
        s.width, s.height = w, h
        s.codec_context.time_base = Fraction(1) / self.fps
        if self.fmt != "gif":  # BT.709, limited range, tagged, so players show the colours we encoded
            cc = s.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 1, 1, 1, 1
        self._vstream = s
        if self._source is not None:
            self._audio = _AudioTrack(c, "aac" if self.fmt == "mp4" else "libopus", self._source)
        c.start_encoding()

    def _to_av(self, rgb: np.ndarray):
        if self.fmt == "gif":
            from PIL import Image

            im = Image.fromarray(rgb, "RGB")
            pal = im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            idx = im.quantize(palette=pal, dither=Image.Dither.FLOYDSTEINBERG)
            p = np.zeros((256, 3), np.uint8)
            flat = np.asarray(pal.getpalette()[: 256 * 3], np.uint8).reshape(-1, 3)
            p[: len(flat)] = flat
            argb = np.ascontiguousarray(np.concatenate([np.full((256, 1), 255, np.uint8), p], axis=1))
            return av.VideoFrame.from_ndarray((np.asarray(idx, np.uint8), argb), format="pal8")
        fr = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        return fr.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 HWC frame (same size as the first; odd edges cropped for mp4/webm)."""
        if self._closed:
            raise VideoError(f"{self.path} is already closed: open a new VideoWriter")
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"write() takes RGB uint8 (H, W, 3) frames, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        try:
            if self.size is None:
                self._setup(h, w)
            W, H = self.size
            if self.fmt in ("mp4", "webm"):
                if (h - h % 2, w - w % 2) != (H, W):
                    raise VideoError(f"Frame {self.frames} is {w}x{h} but the video is {W}x{H}: all frames must have one size")
                rgb = np.ascontiguousarray(rgb[:H, :W])
            elif (h, w) != (H, W):
                raise VideoError(f"Frame {self.frames} is {w}x{h} but the video is {W}x{H}: all frames must have one size")
            if self.fmt == "png":
                target = self._tmp / f"{self.frames + 1:06d}.png"
                ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise OSError("PNG encoding failed")
                target.write_bytes(buf.tobytes())
            else:
                fr = self._to_av(rgb)
                fr.pts = self.frames
                fr.time_base = Fraction(1) / self.fps
                for pkt in self._vstream.encode(fr):
                    self._container.mux(pkt)
            self.frames += 1
            if self._audio is not None:
                self._audio.feed_until(self._audio_samples(self.duration))
        except VideoError:
            self.abort()
            raise
        except (OSError, av.FFmpegError) as e:
            self.abort()
            raise _write_error(e, self.path) from None

    def close(self) -> Path:
        """Flush the encoders, mux the remaining audio, and rename the result to ``path``. Idempotent."""
        if self._closed:
            return self.path
        if self.frames == 0:
            self.abort()
            raise VideoError(f"No frames were written to {self.path}: nothing to encode")
        try:
            if self.fmt == "png":
                if self._source is not None:
                    self._write_m4a(self._tmp / "audio.m4a")
            else:
                for pkt in self._vstream.encode(None):
                    self._container.mux(pkt)
                if self._audio is not None:
                    self._audio.feed_until(self._audio_samples(self.duration), final=True)
                self._container.close()
                self._container = None
            self._finalise()
        except VideoError:
            self.abort()
            raise
        except (OSError, av.FFmpegError) as e:
            self.abort()
            raise _write_error(e, self.path) from None
        finally:
            if self._source is not None:
                self._source.close()
        self._closed = True
        return self.path

    def _write_m4a(self, target: Path):
        with av.open(str(target), mode="w", format="ipod") as c:
            track = _AudioTrack(c, "aac", self._source)
            c.start_encoding()
            track.feed_until(self._audio_samples(self.duration), final=True)

    def _finalise(self):
        if self.fmt != "png":
            os.replace(self._tmp, self.path)
            return
        if self.path.exists():
            if not self.path.is_dir() or not _looks_like_our_png_folder(self.path):
                raise VideoError(f"{self.path} already exists and is not a PNG sequence from vid2vid: choose another output name")
            old = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(self.path, old)
            os.replace(self._tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop and delete the temporary output; the final name is left untouched."""
        self._closed = True
        if self._source is not None:
            self._source.close()
        self._discard()

    def _discard(self):
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - closing a broken container; the temp file is removed below
                pass
            self._container = None
        try:
            if self._tmp.is_dir():
                shutil.rmtree(self._tmp, ignore_errors=True)
            elif self._tmp.exists():
                self._tmp.unlink()
        except OSError:
            pass


def _looks_like_our_png_folder(folder: Path) -> bool:
    for f in folder.iterdir():
        if f.name in ("fps.txt", "audio.m4a"):
            continue
        if not (f.suffix == ".png" and f.stem.isdigit() and len(f.stem) == 6):
            return False
    return True


def encode_frames(frames: Iterable[np.ndarray], path, fps, **writer_kwargs) -> Path:
    """Encode an iterable of RGB uint8 HWC frames with :class:`VideoWriter`; returns the output path."""
    with VideoWriter(path, fps, **writer_kwargs) as w:
        for f in frames:
            w.write(f)
    return w.path
