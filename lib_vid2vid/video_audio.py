"""Audio: read a source's first audio stream, and feed it sample-exactly into an output video.

:class:`AudioSource` hands out the source sound on the *video* timeline (sample ``j`` is video time
``start + j / rate``, silence where the source has none); :class:`AudioTrack` encodes those samples into an
output container as the video frames arrive (:class:`~lib_vid2vid.video_writer.VideoWriter`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .errors import VideoError
from .video_probe import display_name, has_video, open_input, probe


def has_audio(path) -> bool:
    """True when ``path`` has at least one audio stream."""
    with open_input(path) as c:
        return bool(c.streams.audio)


def decode_audio(path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream to float32 planar samples ``(channels, n)`` in -1..1 and its rate (Hz).

    Samples start at the stream's first decoded sample (the encoder's priming is already removed by FFmpeg).
    Meant for tests and short clips (the whole track is held in memory).
    """
    with open_input(path) as c:
        if not c.streams.audio:
            raise VideoError(f"{display_name(Path(path))} has no audio stream")
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


class AudioSource:
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
        info = probe(path) if has_video(path) else None
        ref = Fraction(info.start_time) if info is not None else Fraction(0)
        self._origin = ref + Fraction(start or 0)  # container-clock time of output sample 0
        self._gen = self._chunks()
        self._buf: list[np.ndarray] = []
        self._buffered = 0

    def _chunks(self) -> Iterator[np.ndarray]:
        with open_input(self.path) as c:
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


class AudioTrack:
    """An audio output stream fed sample-exactly from an :class:`AudioSource`."""

    def __init__(self, container, codec: str, source: AudioSource):
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
