"""Tiny deterministic test clips made with PyAV (no ffmpeg binary), shared by every test module.

Picture (``pattern="moving_square"``), for a frame of width W and height H, frame index i:

* background grey 40;
* top strip (rows ``0 .. H//4``): the index i in binary, ``bits`` cells of ``W // bits`` pixels, cell b
  (from the left) white (255) when bit b of i is set, black otherwise. :func:`frame_index` reads it back;
* a white square of side ``H // 4`` in the lower part, left edge at ``x = i * step`` with
  ``step = (W - side) // max(1, n_frames - 1)`` (a moving object for flow/masks tests).

Sound (``audio=True``): mono 48 kHz, silence except a 2 kHz tone burst of :data:`CLICK_LEN` seconds
(amplitude 0.5) starting at every multiple of :data:`CLICK_EVERY` seconds of the video timeline
(video frame 0 is t = 0). Audio lasts exactly ``n_frames / fps`` seconds. :func:`click_onsets` finds the
bursts in decoded audio, so tests can check that sound stays in sync with pictures.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 48000
CLICK_EVERY = 0.25  # seconds
CLICK_LEN = 0.02  # seconds
CLICK_FREQ = 2000.0  # Hz


def index_bits(n_frames: int) -> int:
    """Number of binary cells used to write frame indices 0..n_frames-1 (at least 8)."""
    return max(8, math.ceil(math.log2(max(2, n_frames))))


def draw_frame(i: int, size=(96, 64), n_frames: int = 24, pattern: str = "moving_square") -> np.ndarray:
    """The RGB uint8 HWC picture of frame ``i`` (see the module docstring)."""
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    if pattern == "moving_square":
        bits = index_bits(n_frames)
        cell = w // bits
        strip = max(1, h // 4)
        for b in range(bits):
            img[:strip, b * cell : (b + 1) * cell] = 255 if (i >> b) & 1 else 0
        side = max(2, h // 4)
        step = (w - side) // max(1, n_frames - 1)
        x = min(i * step, w - side)
        y = h // 2
        img[y : y + side, x : x + side] = 255
    elif pattern == "noise":
        img = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return img


def frame_index(rgb: np.ndarray, n_frames: int = 24) -> int:
    """Read back the index written in the top strip of an (upright, not cropped) frame."""
    h, w = rgb.shape[:2]
    bits = index_bits(n_frames)
    cell = w // bits
    strip = max(1, h // 4)
    i = 0
    for b in range(bits):
        x0, x1 = b * cell + cell // 4, (b + 1) * cell - cell // 4
        block = rgb[strip // 4 : max(strip // 4 + 1, 3 * strip // 4), max(x0, b * cell) : max(x1, x0 + 1)]
        if float(block.mean()) > 128:
            i |= 1 << b
    return i


def audio_track(n_samples: int, rate: int = AUDIO_RATE, offset: float = 0.0) -> np.ndarray:
    """Float32 mono samples (n,): tone bursts starting at each multiple of CLICK_EVERY s (shifted by ``offset`` s)."""
    t = np.arange(n_samples) / rate + offset
    phase = np.mod(t, CLICK_EVERY)
    on = phase < CLICK_LEN
    return np.where(on, 0.5 * np.sin(2 * np.pi * CLICK_FREQ * t), 0.0).astype(np.float32)


def click_onsets(samples: np.ndarray, rate: int, threshold: float = 0.2) -> list[float]:
    """Start times (s) of tone bursts in mono or (channels, n) samples: first sample of each loud run."""
    x = np.abs(samples if samples.ndim == 1 else samples.mean(axis=0))
    loud = np.flatnonzero(x > threshold)
    if loud.size == 0:
        return []
    starts = [loud[0]]
    gap = int(CLICK_LEN * rate * 2)
    for a, b in zip(loud[:-1], loud[1:]):
        if b - a > gap:
            starts.append(b)
    return [s / rate for s in starts]


def _container_format(path: Path) -> str | None:
    return {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi", ".m4a": "ipod"}.get(
        path.suffix.lower()
    )


def _audio_codec(path: Path) -> str:
    return "libopus" if path.suffix.lower() == ".webm" else "aac"


def _add_audio(c, path: Path):
    codec = _audio_codec(path)
    a = c.add_stream(codec, rate=AUDIO_RATE)
    a.layout = "mono"
    a.format = "flt" if codec == "libopus" else "fltp"
    return a


def _encode_audio(c, a, samples: np.ndarray):
    fs = a.codec_context.frame_size or 1024
    for pos in range(0, len(samples), fs):
        chunk = samples[pos : pos + fs].reshape(1, -1)
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=a.format.name, layout="mono")
        fr.sample_rate = AUDIO_RATE
        fr.pts = pos
        fr.time_base = Fraction(1, AUDIO_RATE)
        for p in a.encode(fr):
            c.mux(p)
    for p in a.encode(None):
        c.mux(p)


def make_clip(
    path,
    *,
    n_frames: int = 24,
    size=(96, 64),
    fps=Fraction(24),
    audio: bool = True,
    codec: str = "libx264",
    pattern: str = "moving_square",
    rotation: int = 0,
    hflip: bool = False,
    pixel_aspect: Fraction | None = None,
    options: dict | None = None,
    container_options: dict | None = None,
    pts_ms: list[int] | None = None,
) -> Path:
    """Write a clip of ``n_frames`` frames (coded size ``size`` = (width, height)) and return its path.

    ``rotation`` = clockwise degrees a player must turn the picture (display matrix), so the display size
    of a 90/270 clip is (height, width) while the pixels stored are the upright pattern above. ``hflip``: the
    display matrix also mirrors the picture left-right (FFmpeg's ``av_display_matrix_flip``), so players show
    the (turned) pattern mirrored. ``pixel_aspect`` (the sample aspect ratio, say 4/3): players show each pixel
    that many times as wide as tall, so the pattern is drawn at the display size (round(width * pixel_aspect),
    height) and squeezed into the coded ``size``.
    ``options`` are encoder options, ``container_options`` muxer options (e.g. movflags).
    ``pts_ms`` (optional) gives each frame's timestamp in milliseconds (variable frame rate).
    The container comes from the suffix (.mp4, .mkv, .webm, .mov, .avi).
    """
    path = Path(path)
    fps = Fraction(fps)
    w, h = size
    with av.open(str(path), "w", format=_container_format(path), options=container_options or {}) as c:
        v = c.add_stream(codec, rate=fps)
        v.width, v.height = w, h
        v.pix_fmt = "yuv420p" if codec != "mjpeg" else "yuvj420p"
        opts = {"crf": "12", "preset": "fast"} if codec == "libx264" else {}
        if codec == "libvpx-vp9":
            opts = {"crf": "20", "b": "0", "cpu-used": "8", "deadline": "realtime"}
        opts.update(options or {})
        v.options = opts
        if pts_ms is not None:
            v.codec_context.time_base = Fraction(1, 1000)
        patch_rotation = bool(rotation or hflip) and not hasattr(v, "set_display_rotation")  # PyAV < 16
        if (rotation or hflip) and not patch_rotation:
            v.set_display_rotation(-rotation, hflip=hflip)
        if pixel_aspect is not None:
            v.codec_context.sample_aspect_ratio = Fraction(pixel_aspect)
        a = _add_audio(c, path) if audio else None
        c.start_encoding()
        for i in range(n_frames):
            fr = av.VideoFrame.from_ndarray(_coded_picture(i, size, n_frames, pattern, pixel_aspect), format="rgb24")
            if pts_ms is not None:
                fr.pts, fr.time_base = pts_ms[i], Fraction(1, 1000)
            else:
                fr.pts, fr.time_base = i, 1 / fps
            for p in v.encode(fr):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            duration = (pts_ms[-1] / 1000 + 1 / float(fps)) if pts_ms is not None else n_frames / fps
            _encode_audio(c, a, audio_track(round(duration * AUDIO_RATE)))
    if patch_rotation:
        _write_mp4_rotation(path, rotation, hflip)
    return path


_STAMPED_AUDIO = {  # container -> (format, audio codec, its sample format)
    ".mkv": ("matroska", "aac", "fltp"),
    ".mp4": ("mp4", "aac", "fltp"),
    ".ts": ("mpegts", "mp2", "s16"),
}


def make_stamped_audio_clip(path, stamp, *, n_frames: int = 72, fps=Fraction(24), pcm_frame: int | None = None) -> Path:
    """A clip like :func:`make_clip` (video, mono 48 kHz click track of the video timeline) whose audio frames
    carry timestamps of the test's choosing, as after a dropout or a splice in a recording.

    ``stamp(t)`` gets the time (s) where an audio frame's sound belongs and returns the time (s) to stamp it
    with, or None to leave the frame out (a gap in the audio). ``.mkv``/``.mp4`` hold AAC (1024-sample frames),
    ``.ts`` MP2 (1152); ``pcm_frame`` (``.mkv`` only) writes float PCM in frames of that many samples instead,
    decoded bit-exactly. Timestamps in Matroska are whole milliseconds.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _STAMPED_AUDIO or (pcm_frame and suffix != ".mkv"):
        raise ValueError(f"make_stamped_audio_clip writes .mkv, .mp4 or .ts (float PCM: .mkv only), not {path.name}")
    fmt, codec, sample_fmt = _STAMPED_AUDIO[suffix]
    if pcm_frame:
        codec, sample_fmt = "pcm_f32le", "flt"
    fps = Fraction(fps)
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = c.add_stream(codec, rate=AUDIO_RATE)
        a.layout, a.format = "mono", sample_fmt
        c.start_encoding()
        for i in range(n_frames):
            fr = av.VideoFrame.from_ndarray(draw_frame(i, (96, 64), n_frames), format="rgb24")
            fr.pts, fr.time_base = i, 1 / fps
            for pkt in v.encode(fr):
                c.mux(pkt)
        for pkt in v.encode(None):
            c.mux(pkt)
        fs = pcm_frame or a.codec_context.frame_size
        sound = audio_track(round(n_frames / fps * AUDIO_RATE))
        for pos in range(0, len(sound) - fs + 1, fs):
            t = stamp(pos / AUDIO_RATE)
            if t is None:
                continue
            chunk = sound[pos : pos + fs].reshape(1, -1)
            if sample_fmt == "s16":
                chunk = np.round(chunk * 32767).astype(np.int16)
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=sample_fmt, layout="mono")
            fr.sample_rate, fr.time_base, fr.pts = AUDIO_RATE, Fraction(1, AUDIO_RATE), round(t * AUDIO_RATE)
            for pkt in a.encode(fr):
                c.mux(pkt)
        for pkt in a.encode(None):
            c.mux(pkt)
    return path


def _coded_picture(i: int, size, n_frames: int, pattern: str, pixel_aspect: Fraction | None) -> np.ndarray:
    """Frame ``i`` as stored: the pattern, drawn at the display width and squeezed when pixels are not square."""
    if pixel_aspect is None or pixel_aspect == 1:
        return draw_frame(i, size, n_frames, pattern)
    import cv2

    w, h = size
    shown = draw_frame(i, (round(w * Fraction(pixel_aspect)), h), n_frames, pattern)
    return cv2.resize(shown, (w, h), interpolation=cv2.INTER_AREA)


def _write_mp4_rotation(path: Path, rotation: int, hflip: bool = False) -> None:
    """Put a clockwise display ``rotation`` (multiple of 90 degrees) into an MP4/MOV's first track header.

    For PyAV < 16 (the range the WebUI's install.py allows), which has no ``set_display_rotation``: the
    ``tkhd`` matrix gets the bytes PyAV >= 16 writes there, FFmpeg's ``av_display_rotation_set(-rotation)``:
    a, b, c, d = cos, -sin, sin, cos of -rotation in 16.16 fixed point, w = 1 in 2.30; no translation.
    ``hflip`` negates a and c, as ``av_display_matrix_flip`` does to the matrix FFmpeg reads back.
    """
    if path.suffix.lower() not in (".mp4", ".mov") or rotation % 90:
        raise ValueError(f"a rotated test clip needs PyAV >= 16 unless it is .mp4/.mov by 90 degrees: {path}")
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd") - 4  # the video track's: make_clip adds the video stream first
    if box < 0 or data[box + 8] != 0:
        raise ValueError(f"{path}: no version-0 tkhd box to write the rotation into")
    angle = math.radians(-rotation)
    cos, sin = round(math.cos(angle)), round(math.sin(angle))
    flip = -1 if hflip else 1
    matrix = (flip * cos << 16, -sin << 16, 0, flip * sin << 16, cos << 16, 0, 0, 0, 1 << 30)
    data[box + 48 : box + 84] = struct.pack(">9i", *matrix)  # after header, times, ids, layer, volume
    path.write_bytes(bytes(data))


def make_vfr_clip(path, *, n_frames: int = 24, size=(96, 64), audio: bool = False) -> Path:
    """A variable-frame-rate clip: frames alternate 20 ms and 60 ms apart (25 fps on average)."""
    pts = [0]
    for i in range(1, n_frames):
        pts.append(pts[-1] + (20 if i % 2 else 60))
    return make_clip(path, n_frames=n_frames, size=size, fps=Fraction(25), audio=audio, pts_ms=pts)


def make_corrupt_clip(path, *, k: int, n_frames: int = 24, mode: str = "garbage", **kw) -> Path:
    """A clip whose video frames k.. cannot be read.

    ``mode="garbage"`` overwrites the payload of every video packet of frame >= k with 0xA5 bytes (the
    container stays intact); ``mode="truncate"`` cuts the file where frame k's packet starts (moov atom
    first, so the header still promises ``n_frames``). No B-frames (``bf=0``), so decode order is display order.
    """
    path = Path(path)
    opts = {"bf": "0"} | kw.pop("options", {})
    make_clip(path, n_frames=n_frames, options=opts, container_options={"movflags": "+faststart"}, **kw)
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        pkts = sorted((p.pts, p.pos, p.size) for p in c.demux(vs) if p.size)
    data = bytearray(path.read_bytes())
    bad = [(pos, size) for pts, pos, size in pkts[k:]]
    if mode == "truncate":
        data = data[: bad[0][0]]
    elif mode == "garbage":
        for pos, size in bad:
            data[pos : pos + size] = b"\xa5" * size
    else:
        raise ValueError(mode)
    path.write_bytes(bytes(data))
    return path


def make_zero_frame_clip(path) -> Path:
    """An mkv with a video stream that holds no frames (and a short audio stream so the file is valid)."""
    path = Path(path)
    with av.open(str(path), "w", format="matroska") as c:
        v = c.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = _add_audio(c, path)
        c.start_encoding()
        _encode_audio(c, a, audio_track(AUDIO_RATE // 2))
    return path


def make_audio_only(path) -> Path:
    """An .m4a holding only the click track (0.5 s)."""
    path = Path(path)
    with av.open(str(path), "w", format="ipod") as c:
        a = _add_audio(c, path)
        c.start_encoding()
        _encode_audio(c, a, audio_track(AUDIO_RATE // 2))
    return path


def texture(h, w, dx=0.0, dy=0.0, seed=0):
    """RGB uint8 sum of oriented sinusoids (wavelengths 7..40 px) sampled at (x - dx, y - dy).

    ``texture(h, w, dx, dy)`` is ``texture(h, w)`` moved by (dx, dy) pixels, exactly, also for fractions.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = x - dx, y - dy
    img = np.zeros((h, w, 3))
    for _ in range(12):
        lam, th, ph = rng.uniform(7, 40), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi / lam * (np.cos(th) * x + np.sin(th) * y) + ph)
        img += wave[..., None] * rng.uniform(0.3, 1.0, 3)
    img /= 6.0
    return np.clip(np.rint(127.5 + 100 * img), 0, 255).astype(np.uint8)


def make_two_shot_clip(path: Path) -> Path:
    """Two shots, a red one then a blue one from frame 6, 12 frames of 64x64 at 12 fps (H.264 crf 10), a dark bar
    growing by one pixel a frame: colour coherence records a scene cut at frame 6."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(12))
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        s.options = {"crf": "10"}
        for i in range(12):
            img = np.zeros((64, 64, 3), np.uint8)
            img[..., 0 if i < 6 else 2] = 200
            img[:, : 8 + i] = 40
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def make_shots_clip(path: Path, *, shots: int = 4, frames_per_shot: int = 6, size=(96, 64),
                    fps: Fraction = Fraction(24)) -> Path:
    """``shots`` shots of ``frames_per_shot`` frames each (H.264 crf 10): shot k a texture moving one pixel a frame,
    its luma squeezed into a band of its own (``20 + 55 k`` .. ``60 + 55 k``), so the luma histograms of two shots
    share nothing (a scene cut at every ``frames_per_shot``-th frame) and those within a shot nearly everything."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "10"}
        for k in range(shots):
            for j in range(frames_per_shot):
                t = texture(h, w, dx=j, dy=0.5 * j, seed=k).astype(np.float32)
                img = np.clip(20 + 55 * k + t * (40 / 255), 0, 255).astype(np.uint8)
                for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def noise_canvas(h: int, w: int, seed: int) -> np.ndarray:
    """RGB uint8 picture of Gaussian-blurred noise at three scales (sigma 1.5, 4 and 10 px), mean 128, std about
    45: a texture without the repeating waves of :func:`texture`, which optical flow can follow over long moves."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma in (1.5, 4.0, 10.0):
        n = cv2.GaussianBlur(rng.normal(0.0, 1.0, (h, w, 3)).astype(np.float32), (0, 0), sigma)
        img += n / n.std()
    return np.clip(img / img.std() * 45 + 128, 0, 255).astype(np.uint8)


SAME_LIGHT_CUT = 6
"""The first frame of the second shot of :func:`make_same_light_cut_clip`."""


def same_light_cut_frames(size=(96, 64), n_frames: int = 12, step: int = 2) -> list[np.ndarray]:
    """Two shots of the same light: frames 0..5 pan ``step`` px a frame over :func:`noise_canvas` seed 1, frames
    6.. over seed 2. Their luma histograms differ by less than 0.2 (total variation; a cut by histograms takes 0.4):
    only the motion tells the cut at :data:`SAME_LIGHT_CUT`."""
    w, h = size
    shots = [noise_canvas(h, w + step * n_frames, seed) for seed in (1, 2)]
    return [shots[i >= SAME_LIGHT_CUT][:, step * i: step * i + w] for i in range(n_frames)]


def write_h264(path: Path, frames: list[np.ndarray], fps: Fraction, options: dict[str, str],
               pix_fmt: str = "yuv420p") -> Path:
    """RGB uint8 HWC frames (all one size) as an H.264 clip with these encoder ``options`` (e.g. crf)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.options = dict(options)
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return Path(path)


def make_same_light_cut_clip(path: Path, fps: Fraction = Fraction(12)) -> Path:
    """:func:`same_light_cut_frames` as an H.264 clip (crf 10)."""
    return write_h264(path, same_light_cut_frames(), fps, {"crf": "10"})
