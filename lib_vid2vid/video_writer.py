"""Streaming encode: RGB uint8 HWC frames -> mp4 / webm / gif / a PNG folder, with the source audio in sync.

Written to a hidden temporary name beside the target and renamed only when closed, so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import uuid
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import VideoError
from .video_audio import AudioSource, AudioTrack, has_audio
from .video_probe import ffmpeg_reason, open_input
from .video_resample import to_fraction

FORMATS = ("mp4", "webm", "gif", "png")
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


def _write_error(e: BaseException, target: Path) -> VideoError:
    code = getattr(e, "errno", None)
    if code == errno.ENOSPC or "No space left" in str(e):
        return VideoError(f"Disk full while writing {target}: free some space and run again (finished frames are kept)")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or isinstance(e, PermissionError):
        return VideoError(f"Cannot write {target}: permission denied; choose an output folder you can write to")
    if code in (errno.ENOTDIR, errno.ENOENT) or isinstance(e, (NotADirectoryError, FileNotFoundError)):
        return VideoError(f"Cannot write {target}: the output folder does not exist or is not a folder; choose another output folder")
    return VideoError(f"Cannot write {target} ({ffmpeg_reason(e)}): check the output folder and free disk space")


class VideoWriter:
    """Streaming encoder: ``write`` RGB uint8 HWC frames one by one, ``close`` finalises and returns the path.

    Formats: ``mp4`` (H.264 libx264, yuv420p, ``crf``, +faststart, AAC audio), ``webm`` (VP9 libvpx-vp9,
    constant-quality ``crf`` 0..63, Opus audio), ``gif`` (an adaptive 256-colour palette per frame, no audio;
    GIF stores delays in 1/100 s so its rate is approximate), ``png`` (a folder ``path`` of ``000001.png``...,
    ``png_digits`` digits, plus ``fps.txt`` holding the rate "num/den" and ``audio.m4a`` when there is audio).

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
                 audio_end: float | None = None, options: dict[str, str] | None = None, png_digits: int = 6):
        if fmt not in FORMATS:
            raise VideoError(f"Unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.fmt = fmt
        self.fps = to_fraction(fps, "Output frame rate")
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
        self.png_digits = int(png_digits)
        """fmt png: digits of the zero-padded frame numbers (000001.png ...)."""
        self.size: tuple[int, int] | None = None  # (width, height) as written
        self._closed = False
        self._container = None
        self._vstream = None
        self._audio: AudioTrack | None = None
        self._source: AudioSource | None = None
        parent = self.path.parent
        self._tmp = parent / f".{self.path.name}.{uuid.uuid4().hex[:8]}.part"
        if self.audio_from is not None and fmt != "gif" and has_audio(self.audio_from):
            rate = 48000
            layout = "stereo"
            with open_input(self.audio_from) as c:
                a = c.streams.audio[0].codec_context
                if a.channels == 1:
                    layout = "mono"
                if fmt in ("mp4", "png") and a.sample_rate in _AAC_RATES:
                    rate = int(a.sample_rate)
            self._source = AudioSource(self.audio_from, self.audio_start, rate, layout)
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
            self._audio = AudioTrack(c, "aac" if self.fmt == "mp4" else "libopus", self._source)
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
                target = self._tmp / f"{self.frames + 1:0{self.png_digits}d}.png"
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
            track = AudioTrack(c, "aac", self._source)
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
        if not (f.suffix == ".png" and f.stem.isdigit() and len(f.stem) >= 6):
            return False
    return True


def encode_frames(frames: Iterable[np.ndarray], path, fps, **writer_kwargs) -> Path:
    """Encode an iterable of RGB uint8 HWC frames with :class:`VideoWriter`; returns the output path."""
    with VideoWriter(path, fps, **writer_kwargs) as w:
        for f in frames:
            w.write(f)
    return w.path
