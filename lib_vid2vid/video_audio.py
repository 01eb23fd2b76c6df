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


JUMP_TOLERANCE = Fraction(1, 100)
"""Seconds: how far an audio frame's timestamp may stray from the end of the frames before it and still follow
them back to back. Muxers round timestamps (Matroska/WebM/FLV to 1 ms) and recorders jitter by a few ms, so
placing every frame at its own timestamp would cut or pad a few samples here and there (clicks) and change
gap-free files; 10 ms is ten times that rounding, yet under half of a typical audio frame (AAC 1024 samples at
48 kHz = 21 ms, MP3 1152 at 44.1 kHz = 26 ms, Opus 20 ms), so even one lost packet is put back in place, and
sound never strays further than this from its picture (well inside the 40 ms lead EBU R37 allows)."""

_SILENCE_CHUNK = 1.0  # seconds: the longest run of zeros made at once, so a long gap never fills memory


def _nearest(samples: Fraction) -> int:
    """``samples`` rounded to the nearest whole sample (half up)."""
    return math.floor(samples + Fraction(1, 2))


class _Timeline:
    """Lays runs of resampled samples onto the output timeline (sample indices from output sample 0).

    A run starts at the index :meth:`start_run` is given and goes on back to back; samples at indices already
    handed out (or before 0) are dropped, and a hole between what was handed out and a sample is silence.
    """

    def __init__(self, channels: int, rate: int):
        self.channels = channels
        self.silence_chunk = max(1, round(_SILENCE_CHUNK * rate))  # samples
        self.next = 0  # output index of the next sample of the current run
        self.emitted = 0  # samples handed out: indices 0 .. emitted - 1

    def start_run(self, at: int):
        self.next = at

    def add(self, arr: np.ndarray) -> Iterator[np.ndarray]:
        """Place ``arr`` ``(channels, n)`` at the run's next index: yield the silence before it and what is new."""
        at = self.next
        self.next += arr.shape[1]
        skip = min(max(self.emitted - at, 0), arr.shape[1])
        arr, at = arr[:, skip:], at + skip
        if not arr.shape[1]:
            return
        yield from self._silence(at - self.emitted)
        yield arr
        self.emitted = at + arr.shape[1]

    def _silence(self, n: int) -> Iterator[np.ndarray]:
        while n > 0:
            k = min(n, self.silence_chunk)
            yield np.zeros((self.channels, k), np.float32)
            n -= k


class AudioSource:
    """Decode the source's first audio stream over ``[start, ...)`` seconds of the source *video* timeline,
    resampled to ``rate`` Hz / ``layout``, and hand out exactly the samples asked for.

    Sample ``j`` handed out is the source sound at video time ``start + j / rate``: samples before the
    source audio begins and after it ends are silence, so the output track starts at video frame 0. Each
    decoded frame goes where its timestamp says: a gap in the source audio (no packets for a while) becomes
    silence and an overlap is dropped, so the sound after it stays in sync; frames closer than
    :data:`JUMP_TOLERANCE` to the end of those before them just follow on, sample-exactly.
    """

    def __init__(self, path: Path, start: float, rate: int, layout: str):
        self.path = path
        self.rate = rate
        self.channels = 1 if layout == "mono" else 2
        self.layout = layout
        info = probe(path) if has_video(path) else None
        ref = Fraction(info.start_time) if info is not None else Fraction(0)
        self._origin = ref + Fraction(start or 0)  # container-clock time of output sample 0
        self._tolerance = JUMP_TOLERANCE * rate  # samples
        self._gen = self._chunks()
        self._buf: list[np.ndarray] = []
        self._buffered = 0

    def _position(self, fr: av.AudioFrame, time_base: Fraction) -> Fraction | None:
        """Output sample index (exact, may be negative) of the frame's first sample; None without a timestamp."""
        if fr.pts is None:
            return None
        return (fr.pts * time_base - self._origin) * self.rate

    def _chunks(self) -> Iterator[np.ndarray]:
        with open_input(self.path) as c:
            a = c.streams.audio[0]
            tb = a.time_base
            seek_to = self._origin - 1  # one second early: the decoder needs a run-in (MDCT overlap)
            if seek_to > 0:
                c.seek(math.floor(seek_to / tb), stream=a, backward=True, any_frame=False)
            line = _Timeline(self.channels, self.rate)
            rs = None
            expect = None  # output index (exact) where the next frame belongs if the audio runs on without a jump

            def place(frames) -> Iterator[np.ndarray]:
                for o in frames:
                    yield from line.add(o.to_ndarray().astype(np.float32, copy=False))

            try:
                for fr in c.decode(a):
                    at = self._position(fr, tb)
                    if expect is None and at is None:
                        at = (Fraction(a.start_time or 0) * tb - self._origin) * self.rate
                    if at is not None and (expect is None or abs(at - expect) > self._tolerance):
                        # the first frame, or a gap or an overlap: a new run at the frame's own time. Its own
                        # resampler, so the last run's delayed tail is flushed out before the jump, not after it
                        if rs is not None:
                            yield from place(rs.resample(None))
                        rs = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
                        expect = at
                        line.start_run(_nearest(at))
                    expect += Fraction(fr.samples * self.rate, fr.sample_rate)
                    yield from place(rs.resample(fr))
                if rs is not None:
                    yield from place(rs.resample(None))
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
