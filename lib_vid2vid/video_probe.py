"""Probe a video file: size, rotation, frame rate, frame count, duration, audio streams (PyAV, no subprocess).

Times are seconds; ``VideoInfo.start_time`` is the first frame's timestamp on the container clock, and
every other time in this package is measured from it (so ``start=0`` is source frame 0). Frame rates are
:class:`fractions.Fraction` (frames per second) so 30000/1001 stays exact.

:func:`open_input` is the one way this package opens a media file for reading: a missing path, a folder, a
pipe or a device, or a file FFmpeg cannot open is a one-line :class:`~lib_vid2vid.errors.VideoError`.

What counts as a video (:func:`video_format_problem`)
----------------------------------------------------
FFmpeg opens far more than videos: a ``.txt`` file through its ``tty`` demuxer (an ANSI-art "video" of the
text), a photo through ``image2`` / ``png_pipe``, a playlist through ``hls`` (which would fetch other files or
URLs while opening). :func:`open_input` lets FFmpeg run only the demuxers of :data:`_OPENABLE`, so playlists
never run; and :func:`probe` accepts a file only when FFmpeg's demuxer is one of :data:`VIDEO_DEMUXERS` and its
first video stream's codec (FFmpeg's canonical name, whatever decoder runs it) is one of :data:`VIDEO_CODECS`;
anything else is a one-line VideoError saying what FFmpeg took the file for, what is accepted and what to do.
Decisions:

* accepted containers: MP4/MOV (and 3GP, MJ2), Matroska/WebM, AVI, MPEG-TS (ts, m2ts, mts), MPEG-PS (mpg,
  vob), FLV, Ogg (ogv), GIF (animated; a one-frame GIF is a one-frame video), ASF (wmv), MXF, NUT, YUV4MPEG
  (y4m), DV and IVF. All of them carry timestamps, so the frame rate and the audio sync are the file's own.
* refused: still images and image sequences (image2, ``*_pipe``, APNG, WebP): a photo is not a video;
  text and art formats (tty, bintext, xbin, idf, adf); raw elementary streams without a container (h264,
  hevc, mpegvideo, m4v, obu, rawvideo ...): they have no timestamps, so FFmpeg would guess 25 fps; wrap them
  first (``ffmpeg -framerate 30 -i in.h264 -c copy out.mp4``); playlists and network protocols (hls, dash,
  concat).
* codecs: the video codecs cameras, phones, editors and screen recorders write (H.264, HEVC, AV1, VP8/9,
  MPEG-1/2/4, ProRes, DNxHD, DV, Motion JPEG, Theora, WMV/VC-1, FFV1, HuffYUV, Ut Video, QuickTime
  Animation, raw video in AVI/MOV/y4m ...). Of the image codecs only those that cameras and editors put in
  movie files count (Motion JPEG, JPEG 2000, PNG, TIFF), and only inside one of the containers above
  (Motion JPEG in AVI, PNG in MOV), never as a file of their own; others (Targa, SGI, JPEG-LS ...) are refused
  with "re-encode it".
"""

from __future__ import annotations

import math
import stat
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import CorruptVideoError, VideoError

#: Packets demuxed (not decoded) by :func:`probe` to measure frame count, duration and pts regularity.
#: Past this many packets the container's frame count is trusted when it agrees with its duration.
PROBE_SCAN_LIMIT = 5000
#: FFmpeg demuxers (``container.format.name`` lists several, comma-separated) whose files are videos.
VIDEO_DEMUXERS = frozenset({
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "gif",
    "asf", "mxf", "nut", "yuv4mpegpipe", "dv", "ivf",
})
#: FFmpeg canonical codec names (``avcodec_get_name``) of the video codecs accepted in those containers.
VIDEO_CODECS = frozenset({
    "h264", "hevc", "vvc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "h261", "h263", "h263p",
    "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2", "wmv3", "vc1", "flv1", "vp6", "vp6f", "vp6a",
    "theora", "vp3", "prores", "dnxhd", "dvvideo", "cfhd", "hap", "dirac", "v210", "rawvideo", "ffv1", "huffyuv",
    "ffvhuff", "utvideo", "magicyuv", "qtrle", "cinepak", "svq1", "svq3", "rpza", "smc", "msrle", "msvideo1",
    "tscc2", "gif", "mjpeg", "mjpegb", "jpeg2000", "png", "tiff",
})
ACCEPTED_CONTAINERS = ("mp4/mov, mkv/webm, avi, mpeg-ts (ts, m2ts), mpeg-ps (mpg), flv, ogg/ogv, gif, asf/wmv, "
                       "mxf, nut, y4m, dv or ivf")
"""The accepted containers in the words of the error messages."""
_IMAGE_DEMUXERS = ("image2", "_pipe", "apng", "webp")
_TEXT_DEMUXERS = ("tty", "bintext", "xbin", "idf", "adf")
_RAW_DEMUXERS = ("h264", "hevc", "vvc", "mpegvideo", "m4v", "obu", "rawvideo", "cavsvideo", "vc1", "dirac",
                 "h261", "h263", "ingenient", "avs2", "avs3")

_OPENABLE = frozenset(
    VIDEO_DEMUXERS | set(_TEXT_DEMUXERS) | set(_RAW_DEMUXERS) | {"image2", "apng", "mp3", "wav", "flac", "aac", "aiff"}
    | {name for name in av.formats_available if name.endswith("_pipe")}
)
"""Demuxers FFmpeg may run on a file at all (``format_whitelist``): the video containers, plus those whose
files are refused with a precise reason (text, images, raw streams, audio). Any other demuxer never runs, so
a playlist or a concat list (hls, dash, concat ...) cannot make FFmpeg open further files or URLs: such a file
is simply unreadable."""
_OPEN_OPTIONS = {"format_whitelist": ",".join(sorted(_OPENABLE))}

#: A stream is variable-frame-rate when its pts spacing varies by more than this fraction of the median
#: spacing (and by more than one time-base tick, so millisecond rounding in mkv is not called VFR).
_VFR_TOLERANCE = 0.05


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

    ``width`` x ``height`` is the display size in pixels (:func:`display_size`): the coded ``coded_width`` x
    ``coded_height`` picture mirrored left-right when ``mirror``, then turned ``rotation`` degrees clockwise
    (0/90/180/270), its pixels made square (``pixel_aspect``: FFmpeg's sample aspect ratio, the displayed width
    of one coded pixel over its height). ``mirror`` and ``pixel_aspect`` default to the plain picture, so a dict
    stored before they existed loads with the geometry it was decoded with then. ``fps`` is the rate the frames
    are made at: the constant rate; for a video whose frames sit on a regular grid with gaps, the grid's rate
    (every frame kept); else the average rate.
    ``is_vfr`` says whether the pts spacing varies. ``duration`` (seconds) runs from the first frame's
    timestamp ``start_time`` (container clock) to the end of the last frame; for constant-rate video it is
    ``frame_count / fps``. ``last_frame_time`` is the last frame's timestamp relative to ``start_time`` when
    all packets were scanned, else None.

    ``jitter`` (seconds): how far the frames' timestamps stray from the regular grid of ``fps`` (phones and
    browsers stamp frames a millisecond or so off; :func:`_grid_fit`), 0 when they sit on it; the decoder counts a
    frame that late as on time. ``before_grid``: when the grid changed what the probe said before December 2026 (the
    average rate of a variable-rate video), that ``fps``, ``is_vfr`` and ``duration`` (what the job's notice tells
    a user; a job begun before keeps the rate its stored plan names, ``pipeline._keep_rate``); else None.
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
    jitter: float = 0.0
    before_grid: dict | None = None
    mirror: bool = False
    pixel_aspect: Fraction = Fraction(1)

    def to_dict(self) -> dict:
        """JSON-ready dict; ``fps`` and ``pixel_aspect`` become strings "num/den"."""
        d = asdict(self)
        d["fps"] = _fraction_text(self.fps)
        d["pixel_aspect"] = _fraction_text(self.pixel_aspect)
        d["audio"] = [asdict(a) for a in self.audio]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VideoInfo:
        """Inverse of :meth:`to_dict` (for a manifest read back from disk)."""
        d = dict(d)
        d["fps"] = Fraction(d["fps"])
        if "pixel_aspect" in d:
            d["pixel_aspect"] = Fraction(d["pixel_aspect"])
        d["audio"] = tuple(AudioInfo(**a) for a in d.get("audio", ()))
        return cls(**d)


def _fraction_text(x: Fraction) -> str:
    return f"{x.numerator}/{x.denominator}"


def display_size(coded_width: int, coded_height: int, rotation: int, pixel_aspect: Fraction) -> tuple[int, int]:
    """(width, height) in pixels a coded picture is shown at: its width times ``pixel_aspect`` (rounded, at
    least 1), then both swapped when ``rotation`` (clockwise degrees) is 90 or 270. A mirror keeps the size."""
    width = max(1, round(coded_width * pixel_aspect))
    return (coded_height, width) if rotation in (90, 270) else (width, coded_height)


def display_orientation(matrix) -> tuple[int, bool]:
    """(clockwise rotation in degrees, mirror) that show a picture as FFmpeg's display ``matrix`` says.

    ``matrix`` is FFmpeg's 3x3 display matrix, 9 integers row by row, ``[a b u; c d v; x y w]`` (a..d in 16.16
    fixed point), which moves a coded pixel (p, q) to (a p + c q, b p + d q). The picture is mirrored when the
    determinant ``a d - b c`` is negative. ``theta = atan2(b, a)`` is the clockwise angle FFmpeg reports
    (``-av_display_rotation_get``). A clockwise turn r has a = cos r, b = sin r: r = theta. A left-right
    mirror followed by a turn r has a = -cos r, b = -sin r: r = theta + 180. Rounded to a multiple of 90
    degrees. The picture is the one FFmpeg's autorotate shows (its hflip, vflip and transpose filters):
    ``[-1 0; 0 1]`` is a mirror, not a half turn.
    """
    a, b, c, d = (float(v) for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    mirror = a * d - b * c < 0
    theta = math.degrees(math.atan2(b, a)) + (180 if mirror else 0)
    return int(round(theta / 90.0)) * 90 % 360, mirror


def with_stored_geometry(info: VideoInfo, stored: dict | None) -> VideoInfo:
    """``info`` (a fresh :func:`probe`) shown with the geometry of ``stored``, the :meth:`VideoInfo.to_dict` a
    job saved when it was made, so that a resumed job decodes its frames as it started them: one made before the
    mirror and the pixel aspect were read goes on without them. Unchanged when nothing is stored or the stored
    coded size differs (another picture)."""
    if not stored:
        return info
    old = VideoInfo.from_dict(stored)
    if (old.coded_width, old.coded_height) != (info.coded_width, info.coded_height):
        return info
    return replace(info, width=old.width, height=old.height, rotation=old.rotation, mirror=old.mirror,
                   pixel_aspect=old.pixel_aspect)


def display_name(path: Path) -> str:
    """The file name for messages (the whole path when it has no name part)."""
    return path.name or str(path)


def open_input(path) -> av.container.InputContainer:
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
        return av.open(str(p), mode="r", metadata_errors="ignore", container_options=_OPEN_OPTIONS)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        if p.stat().st_size == 0:
            raise VideoError(f"{display_name(p)} is empty (0 bytes): give a video file") from None
        if _container_head(p):  # begins as a video container does: most likely cut off or damaged
            raise VideoError(f"{display_name(p)} cannot be read ({ffmpeg_reason(e)}): the file is damaged or "
                             f"incomplete; download or export it again") from None
        raise VideoError(
            f"{display_name(p)} is not a video or cannot be read ({ffmpeg_reason(e)}): use a video file such as mp4, mkv, webm or mov"
        ) from None


def _container_head(p: Path) -> bool:
    """True when the file's first bytes are those of a video container (MP4/MOV ``ftyp``/``moov``/``mdat``/
    ``free``/``wide`` box, Matroska/WebM EBML, RIFF/AVI, MPEG-TS sync, MPEG-PS pack, Ogg, FLV, ASF)."""
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
            or head.startswith((b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba",
                                b"\x30\x26\xb2\x75"))
            or (len(head) > 0 and head[0] == 0x47 and p.suffix.lower() in (".ts", ".m2ts", ".mts")))


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


def ffmpeg_reason(e: BaseException) -> str:
    """The human part of an FFmpeg / OS error, one line, for a message."""
    s = str(e).strip().splitlines()
    s = s[0] if s else type(e).__name__
    # PyAV appends "[Errno N] ... : 'path'"; keep the human part.
    if s.startswith("[Errno"):
        s = s.split("]", 1)[-1].strip()
    if ": '" in s:
        s = s.split(": '", 1)[0]
    return s or type(e).__name__


def first_video_stream(c, p: Path):
    """The first video stream of the open container ``c`` (file ``p``), or a one-line VideoError."""
    if not c.streams.video:
        kinds = sorted({s.type for s in c.streams}) or ["nothing"]
        raise VideoError(
            f"{display_name(p)} has no video stream (it contains {', '.join(kinds)}): give a file with a picture track"
        )
    return c.streams.video[0]


def _packet_time(pkt) -> int | None:
    return pkt.pts if pkt.pts is not None else pkt.dts


def _canonical_codec(stream) -> str:
    """FFmpeg's name of the stream's codec, not of the decoder that runs it (``av1``, never ``libdav1d``)."""
    cc = stream.codec_context
    codec = getattr(cc, "codec", None) if cc is not None else None
    return (getattr(codec, "canonical_name", None) or (cc.name if cc is not None else None) or "unknown").lower()


def video_format_problem(c) -> str | None:
    """None when the open container ``c`` is a video this package reads (see the module docstring), else
    what FFmpeg took it for, e.g. ``"FFmpeg reads it as a text file, tty demuxer"``. Looks at the demuxer
    and the first video stream's codec; call it on a container that has a video stream."""
    demuxer = (c.format.name or "") if c.format is not None else ""
    names = [n.strip() for n in demuxer.split(",") if n.strip()]
    if not any(n in VIDEO_DEMUXERS for n in names):
        if any(tag in demuxer for tag in _IMAGE_DEMUXERS):
            return f"FFmpeg reads it as an image, {demuxer} demuxer"
        if any(n in _TEXT_DEMUXERS for n in names):
            return f"FFmpeg reads it as a text file, {demuxer} demuxer"
        if any(n in _RAW_DEMUXERS for n in names):
            return f"FFmpeg reads it as a raw {demuxer} stream without a container, so without timestamps"
        return f"FFmpeg reads it with its {demuxer or 'unknown'} demuxer, which is not a video container"
    codec = _canonical_codec(c.streams.video[0])
    if codec not in VIDEO_CODECS:
        return f"its picture track is {codec}, not a video codec"
    return None


def _format_error(p: Path, problem: str) -> VideoError:
    """``<file> is not a video (<what FFmpeg took it for>): <what to do>; accepted: <containers and codecs>``."""
    name = display_name(p)
    if "without a container" in problem:
        todo = f"put it in a container first, e.g. ffmpeg -framerate 30 -i {name} -c copy out.mp4"
    elif "not a video codec" in problem:
        todo = "re-encode it to a video codec, e.g. H.264 in mp4"
    else:
        todo = "give a video file"
    return VideoError(f"{name} is not a video ({problem}): {todo}; accepted are {ACCEPTED_CONTAINERS} files with "
                      f"a video codec (H.264, HEVC, VP9, AV1, ProRes ...)")


def is_video(path) -> bool:
    """True when ``path`` is a video :func:`probe` accepts by container and codec (frames are not checked).
    Never raises: anything that cannot be opened is not a video."""
    p = Path(path)
    if _special_kind(p) or not p.is_file():
        return False
    try:
        with av.open(str(p), mode="r", metadata_errors="ignore", container_options=_OPEN_OPTIONS) as c:
            return bool(c.streams.video) and video_format_problem(c) is None
    except Exception:  # noqa: BLE001 - anything FFmpeg cannot open is not a video
        return False


def has_video(path) -> bool:
    """True when ``path`` has at least one video stream."""
    with open_input(path) as c:
        return bool(c.streams.video)


def probe(path) -> VideoInfo:
    """Read a video's size, rotation, frame rate, frame count, duration and audio streams.

    The frame count and duration come from demuxing packets (no decoding) when the file has at most
    :data:`PROBE_SCAN_LIMIT` of them, else from the container when its count agrees with its duration
    (else the whole file is demuxed). When the file holds fewer packets than its header promises (a
    truncated file), the promised count is reported so that :func:`~lib_vid2vid.video_decode.iter_frames` stops with a
    CorruptVideoError naming the first missing frame. The first frame is decoded to read the rotation and
    to check that the stream can be decoded at all. A file that is not a video by container and codec (a
    text file, a photo, a raw stream; see the module docstring) is a one-line VideoError.
    """
    p = Path(path)
    with open_input(p) as c:
        vs = first_video_stream(c, p)
        problem = video_format_problem(c)
        if problem is not None:
            raise _format_error(p, problem)
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
        guessed = vs.guessed_rate  # FFmpeg's nominal rate (r_frame_rate): a variable-rate video's grid
        stream_dur = float(vs.duration * tb) if vs.duration else (c.duration / 1e6 if c.duration else None)
        trusted = bool(
            container_frames > 0 and rate and stream_dur and abs(container_frames - stream_dur * rate) <= max(2, 0.01 * container_frames)
        )

        times: list[int] = []
        last_end = None  # max(pts + duration), ticks
        count = 0
        hidden = 0  # packets an edit list hides (a stream-copy cut keeps them for their reference frames)
        complete = True
        try:
            for pkt in c.demux(vs):
                if pkt.size == 0:
                    continue
                if getattr(pkt, "is_discard", False):  # never decoded into a frame (PyAV >= 12 has the flag)
                    hidden += 1
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
        raise VideoError(f"{display_name(p)} has a video stream but no frames: give a video that contains pictures")

    times.sort()
    diffs = np.diff(np.asarray(times, dtype=np.int64)) if len(times) > 1 else np.zeros(0, np.int64)
    diffs = diffs[diffs > 0]
    is_vfr = False
    if diffs.size:
        med = float(np.median(diffs))
        spread = float(diffs.max() - diffs.min())
        is_vfr = spread > 1 and spread > _VFR_TOLERANCE * med
    frame_count = count if complete else container_frames
    truncated = complete and container_frames - hidden - count > max(1, 0.01 * container_frames)
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
    start_ticks = times[0] if times else (vs.start_time or 0)
    start_time = float(start_ticks * tb)
    last_frame_time = float((times[-1] - start_ticks) * tb) if (times and complete) else None
    vfr_duration = None  # first frame to the end of the last, as the packets tell
    if complete and last_end is not None and times:
        tail = last_end - times[-1]
        if tail <= 0:
            tail = int(np.median(diffs)) if diffs.size else 0
        vfr_duration = float((times[-1] + tail - start_ticks) * tb)

    fit = _grid_fit(times, tb, (guessed, rate)) if (complete and is_vfr and vfr_duration) else None
    jitter, before_grid = 0.0, None
    if fit is not None:  # a constant rate with its timestamps a little off, or with frames left out: on the grid
        average = Fraction(frame_count / vfr_duration).limit_denominator(1001)  # the rate before December 2026
        before_grid = {"fps": f"{average.numerator}/{average.denominator}", "is_vfr": True, "duration": vfr_duration}
        rate, slots, jitter = fit
        is_vfr = slots > len(times)
    elif complete and not is_vfr and len(times) > 1 and times[-1] > times[0]:
        measured = Fraction(len(times) - 1) / ((times[-1] - times[0]) * tb)
        if abs(measured / rate - 1) > 0.01:  # e.g. a gif whose 1/100 s delays confuse FFmpeg's average
            rate = _nice_rate(measured)

    if not is_vfr:
        duration = float(Fraction(frame_count) / rate)
    elif vfr_duration is not None:
        duration = vfr_duration
    else:
        duration = stream_dur or float(Fraction(frame_count) / rate)
    if is_vfr and duration > 0 and fit is None:
        rate = Fraction(frame_count / duration).limit_denominator(1001)
    declared = _declared_duration(vs) if not container_frames else None  # containers that count frames: above
    if complete and declared is not None and declared - duration > max(1.5 / float(rate), 0.01 * declared):
        # the stream says it lasts longer than its packets do (a cut-off Matroska/WebM download): as for a
        # container's frame count, report the promised length so iter_frames names the first missing frame
        frame_count += round((declared - duration) * float(rate))
        duration, complete = declared, False

    g = _first_frame_geometry(p)
    width, height = display_size(g.coded_width, g.coded_height, g.rotation, g.pixel_aspect)
    return VideoInfo(
        path=str(p),
        width=width,
        height=height,
        coded_width=g.coded_width,
        coded_height=g.coded_height,
        rotation=g.rotation,
        mirror=g.mirror,
        pixel_aspect=g.pixel_aspect,
        fps=rate,
        is_vfr=bool(is_vfr),
        frame_count=int(frame_count),
        duration=float(duration),
        codec=codec,
        start_time=start_time,
        audio=audio,
        last_frame_time=last_frame_time if complete else None,
        jitter=float(jitter),
        before_grid=before_grid,
    )


def _grid_fit(times: list[int], tb: Fraction, candidates) -> tuple[Fraction, int, float] | None:
    """``(rate, slots, jitter)`` when the frames' timestamps (ticks of ``tb``, sorted) sit on the regular grid of
    a candidate rate (fps; the first that fits, each also snapped by :func:`_nice_rate` from the median spacing):
    with ``t_i`` seconds from the first frame, ``n_i = round(t_i * rate)`` and ``d_i = t_i - n_i / rate``, every
    ``|d_i| <= 1 / (4 rate)`` and every ``n_i`` its own. ``slots = n_last + 1`` (more than the frames: some were
    left out, e.g. a GIF's held frame or a phone's dropped ones), ``jitter = max |d_i|`` seconds. None: no grid
    (a video whose rate really varies), or too few frames to tell."""
    if len(times) < 3:
        return None
    t = (np.asarray(times, np.int64) - times[0]) * float(tb)
    spacing = np.diff(t)
    spacing = spacing[spacing > 0]
    rates = [Fraction(c) for c in candidates if c and 1 <= c <= _GRID_MAX_FPS]
    if spacing.size:
        rates.append(_nice_rate(Fraction(1.0 / float(np.median(spacing))).limit_denominator(100_000)))
    for rate in rates:
        if not 1 <= rate <= _GRID_MAX_FPS:
            continue
        r = float(rate)
        slots = np.rint(t * r)
        dev = np.abs(t - slots / r)
        if dev.max() <= 0.25 / r and (np.diff(slots) >= 1).all():
            return rate, int(slots[-1]) + 1, float(dev.max())
    return None


_GRID_MAX_FPS = 240
"""The highest grid rate :func:`_grid_fit` tries: a WebM's 1 ms time base makes FFmpeg guess 1000 fps."""


def _declared_duration(vs) -> float | None:
    """The video stream's duration (seconds) as a Matroska/WebM header states it (its ``DURATION`` tag,
    ``HH:MM:SS.fffffffff``); None when it states none."""
    tag = (vs.metadata or {}).get("DURATION")
    if not tag:
        return None
    try:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def probe_job_source(manifest: dict) -> VideoInfo:
    """The source video of a job (``manifest["source_file"]``) probed now, shown with the geometry the job was
    made with (``manifest["source"]``, :func:`with_stored_geometry`)."""
    return with_stored_geometry(probe(manifest["source_file"]["path"]), manifest.get("source"))


def _nice_rate(measured: Fraction) -> Fraction:
    """Snap a measured frame rate to n or n*1000/1001 fps when within 0.5 %, else a small fraction."""
    for cand in (Fraction(round(measured)), Fraction(round(measured * Fraction(1001, 1000)) * 1000, 1001)):
        if cand > 0 and abs(measured / cand - 1) <= Fraction(1, 200):
            return cand
    return measured.limit_denominator(1001)


@dataclass(frozen=True)
class _Geometry:
    """The first frame's coded size (pixels) and how it is shown (see :class:`VideoInfo`)."""

    coded_width: int
    coded_height: int
    rotation: int
    mirror: bool
    pixel_aspect: Fraction


def _first_frame_geometry(p: Path) -> _Geometry:
    """Decode the first frame: its coded size, display orientation and pixel aspect."""
    with open_input(p) as c:
        vs = first_video_stream(c, p)
        try:
            frame = next(iter(c.decode(vs)), None)
        except av.FFmpegError as e:
            raise CorruptVideoError(
                0, f"{display_name(p)}: cannot decode the first video frame ({ffmpeg_reason(e)}): the file is damaged or the codec is unsupported; re-encode it"
            ) from None
        if frame is None:
            raise VideoError(f"{display_name(p)} has a video stream but no decodable frames: give a video that contains pictures")
        matrix = _display_matrix(frame)
        rotation, mirror = display_orientation(matrix) if matrix is not None else (_rotation_tag(frame, vs), False)
        return _Geometry(int(frame.width), int(frame.height), rotation, mirror, _pixel_aspect(vs))


def _display_matrix(frame) -> np.ndarray | None:
    """The frame's display matrix (9 int32, see :func:`display_orientation`), None when it has none."""
    try:
        data = frame.side_data.get("DISPLAYMATRIX")
    except (AttributeError, KeyError, TypeError, ValueError):  # a PyAV without side data by name
        return None
    if data is None:
        return None
    matrix = np.frombuffer(bytes(data), dtype=np.int32)
    return matrix if matrix.size == 9 else None


def _rotation_tag(frame, vs) -> int:
    """Clockwise degrees from PyAV's ``frame.rotation`` or an old-style ``rotate`` tag, for files or PyAV builds
    whose frames carry no display matrix."""
    ccw = getattr(frame, "rotation", 0)  # counter-clockwise degrees, -180..180
    if not ccw:
        try:
            ccw = -int(float(vs.metadata.get("rotate", 0)))
        except ValueError:
            ccw = 0
    return int(round(-ccw / 90.0)) * 90 % 360


def _pixel_aspect(vs) -> Fraction:
    """FFmpeg's sample aspect ratio: the container's, else the codec's (read after a decode), else 1; as
    ``av_guess_sample_aspect_ratio`` picks it. 0/1 and other non-positive values mean unknown."""
    for owner in (vs, vs.codec_context):
        sar = getattr(owner, "sample_aspect_ratio", None)
        if sar is not None and sar.numerator > 0 and sar.denominator > 0:
            return Fraction(sar.numerator, sar.denominator)
    return Fraction(1)
