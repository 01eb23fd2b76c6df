"""Video I/O (lib_vid2vid.video): probe, resampling, trimming, resizing, resume, encoding, audio, bad input.

Clips come from tests/clips.py: each frame carries its index in a binary strip (read by ``frame_index``)
and the audio has a tone burst at every multiple of 0.25 s of the video timeline.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clips import (  # noqa: E402
    AUDIO_RATE,
    CLICK_EVERY,
    audio_track,
    click_onsets,
    draw_frame,
    frame_index,
    make_audio_only,
    make_clip,
    make_corrupt_clip,
    make_stamped_audio_clip,
    make_vfr_clip,
    make_zero_frame_clip,
)

from lib_vid2vid import video as V  # noqa: E402
from lib_vid2vid import video_decode, video_probe  # noqa: E402
from lib_vid2vid.errors import CorruptVideoError, VideoError  # noqa: E402
from lib_vid2vid.video_audio import JUMP_TOLERANCE, AudioSource  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {
        "c24": make_clip(d / "c24.mp4"),  # 24 frames, 24 fps, 96x64, audio
        "c30": make_clip(d / "c30.mp4", n_frames=60, fps=30, options={"g": "6"}),  # 2 s, keyframe every 6
        "noaudio": make_clip(d / "noaudio.mp4", n_frames=12, audio=False),
        "rot90": make_clip(d / "rot90.mp4", rotation=90),
        "mirror": make_clip(d / "mirror.mp4", n_frames=6, hflip=True, audio=False),
        "sar43": make_clip(d / "sar43.mp4", n_frames=6, size=(96, 72), pixel_aspect=Fraction(4, 3), audio=False),
        "vfr": make_vfr_clip(d / "vfr.mp4"),
    }


def indices(path, n_frames, **kw) -> list[int]:
    return [frame_index(f, n_frames) for _, f in V.iter_frames(path, **kw)]


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------------------------------------- probe


def test_probe_fields(clips):
    info = V.probe(clips["c24"])
    assert (info.width, info.height, info.coded_width, info.coded_height) == (96, 64, 96, 64)
    assert info.rotation == 0 and info.fps == Fraction(24) and not info.is_vfr
    assert info.frame_count == 24 and info.duration == pytest.approx(1.0)
    assert info.codec == "h264" and info.start_time == 0.0
    assert len(info.audio) == 1
    a = info.audio[0]
    assert (a.codec, a.sample_rate, a.channels) == ("aac", 48000, 1)
    assert a.duration == pytest.approx(1.0, abs=0.03)
    d = json.loads(json.dumps(info.to_dict()))
    assert d["fps"] == "24/1" and d["audio"][0]["sample_rate"] == 48000
    assert V.VideoInfo.from_dict(d) == info
    assert V.probe(clips["noaudio"]).audio == ()


def test_probe_rotation_swaps_display_size_and_frames_are_upright(clips):
    info = V.probe(clips["rot90"])
    assert info.rotation == 90
    assert (info.coded_width, info.coded_height) == (96, 64)
    assert (info.width, info.height) == (64, 96)
    rotated = [f for _, f in V.iter_frames(clips["rot90"], info=info)]
    plain = [f for _, f in V.iter_frames(clips["c24"])]
    assert rotated[0].shape == (96, 64, 3)
    for r, p in zip(rotated, plain):
        # 90 degrees clockwise: the index strip at the top ends up on the right-hand side
        assert np.abs(r.astype(int) - np.rot90(p, -1).astype(int)).mean() < 1.0
    assert frame_index(np.rot90(rotated[5], 1)) == 5


def _ffmpeg_autorotate(img: np.ndarray, m: list[int]) -> np.ndarray:
    """What FFmpeg's autorotate (fftools, ffplay) shows for the display matrix ``m``: its filters in numpy."""
    theta = round(math.degrees(math.atan2(m[1], m[0])))  # get_rotation: -av_display_rotation_get
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    clock, cclock = np.rot90(img, -1), np.rot90(img, 1)
    if theta == 90:
        return img.transpose(1, 0, 2) if m[3] > 0 else clock  # transpose cclock_flip / clock
    if theta == 270:
        return clock[::-1] if m[3] < 0 else cclock  # transpose clock_flip / cclock
    if theta == 180:
        img = img[:, ::-1] if m[0] < 0 else img  # hflip
    return img[::-1] if m[4] < 0 else img  # vflip


@pytest.mark.parametrize("abcd", [(1, 0, 0, 1), (0, 1, -1, 0), (-1, 0, 0, -1), (0, -1, 1, 0),  # turns
                                  (-1, 0, 0, 1), (1, 0, 0, -1), (0, 1, 1, 0), (0, -1, -1, 0)])  # mirrors
def test_display_orientation_shows_what_ffmpeg_autorotate_shows(abcd):
    a, b, c, d = (v << 16 for v in abcd)
    matrix = [a, b, 0, c, d, 0, 0, 0, 1 << 30]
    img = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)  # no symmetry: every orientation differs
    rotation, mirror = video_probe.display_orientation(matrix)
    assert mirror == (abcd[0] * abcd[3] - abcd[1] * abcd[2] < 0)
    assert np.array_equal(video_decode._upright(img, rotation, mirror), _ffmpeg_autorotate(img, matrix))


def test_mirror_matrix_is_shown_mirrored_not_turned(clips):
    # FFmpeg reads this matrix, [-1 0; 0 1], as -180 degrees; it is a left-right mirror (what players show)
    mirrored = [f for _, f in V.iter_frames(clips["mirror"])]
    # frame 1 has only bit 0 set: its white cell, drawn at the top-left, is shown at the top-right
    cell, strip = 96 // 8, 64 // 4
    assert mirrored[1][:strip, -cell:].mean() > 200 and mirrored[1][:strip, :cell].mean() < 60
    for i, f in enumerate(mirrored):
        assert np.abs(f.astype(int) - draw_frame(i, n_frames=6)[:, ::-1].astype(int)).mean() < 2.0
        assert frame_index(f[:, ::-1], 6) == i
    info = V.probe(clips["mirror"])
    assert (info.rotation, info.mirror, info.width, info.height) == (0, True, 96, 64)


def test_video_info_stored_before_mirror_and_pixel_aspect_loads_and_decodes_as_before(clips):
    info = V.probe(clips["mirror"])
    d = json.loads(json.dumps(info.to_dict()))
    assert (d["mirror"], d["pixel_aspect"]) == (True, "1/1")
    assert V.VideoInfo.from_dict(d) == info
    # what the probe stored before: the mirror read as a half turn, no mirror or pixel aspect fields
    old = {k: v for k, v in d.items() if k not in ("mirror", "pixel_aspect")} | {"rotation": 180}
    legacy = V.VideoInfo.from_dict(old)
    assert (legacy.rotation, legacy.mirror, legacy.pixel_aspect) == (180, False, 1)
    turned = next(V.iter_frames(clips["mirror"], info=legacy))[1]
    assert np.abs(turned.astype(int) - np.rot90(draw_frame(0, n_frames=6), 2).astype(int)).mean() < 2.0
    # a job keeps the geometry it stored; another picture (coded size) is probed afresh
    assert video_probe.with_stored_geometry(info, old) == legacy
    assert video_probe.with_stored_geometry(info, d) == info and video_probe.with_stored_geometry(info, None) == info
    assert video_probe.with_stored_geometry(info, old | {"coded_width": 48}) == info


def test_non_square_pixels_are_shown_square(clips):
    # coded 96x72 (4:3) with pixels 4/3 as wide as tall: players show 128x72 (16:9)
    info = V.probe(clips["sar43"])
    assert (info.width, info.height, info.coded_width, info.coded_height) == (128, 72, 96, 72)
    assert info.pixel_aspect == Fraction(4, 3)
    frames = [f for _, f in V.iter_frames(clips["sar43"], info=info)]
    assert frames[0].shape == (72, 128, 3)
    for i, f in enumerate(frames):
        assert frame_index(f, 6) == i
        w, h = _square(f)
        assert (w, h) == (pytest.approx(18, abs=1), pytest.approx(18, abs=1))  # drawn 18x18 at 128x72
    # a crop to a square output keeps the square square: laid out for 128x72, not for the coded 96x72
    cropped = [f for _, f in V.iter_frames(clips["sar43"], size=(64, 64), resize_mode="crop_and_resize")]
    w, h = _square(cropped[3])  # the square near the middle, inside the crop
    assert abs(w - h) <= 1


def _square(rgb: np.ndarray) -> tuple[int, int]:
    """Width and height in pixels of the white square below the index strip of a clips.py frame."""
    below = rgb[rgb.shape[0] // 4 + 2 :, :, 0] > 128
    ys, xs = np.nonzero(below)
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_probe_vfr(clips):
    info = V.probe(clips["vfr"])
    # frames alternate 20 ms and 60 ms apart: pts 0, 20, 80, 100, 160, ...; last pts 900 ms, lasting 20 ms
    assert info.is_vfr and info.frame_count == 24
    assert info.duration == pytest.approx(0.92)
    # every timestamp is on a 20 ms grid: read at 50 fps, every frame kept (before December 2026: the average)
    assert info.fps == 50 and info.jitter == pytest.approx(0, abs=1e-9)
    assert float(Fraction(info.before_grid["fps"])) == pytest.approx(24 / 0.92, rel=1e-3)
    assert indices(clips["vfr"], 24) == [i for i in range(24) for _ in range(3 if i % 2 and i < 23 else 1)]
    assert not V.probe(clips["c24"]).is_vfr
    # resampled to 50 fps: output k at k*20 ms takes the last frame with pts <= k*20 ms
    pts = [0]
    for i in range(1, 24):
        pts.append(pts[-1] + (20 if i % 2 else 60))
    want = [max(i for i in range(24) if pts[i] <= 20 * k) for k in range(46)]  # N = round(0.92 * 50) = 46
    assert indices(clips["vfr"], 24, fps=50) == want


def test_jittered_timestamps_keep_every_frame_at_the_nominal_rate(tmp_path):
    """Phones and browsers stamp frames a millisecond or so off their grid: each frame is still shown once, at
    the nominal rate (before: the average rate, and a frame stamped late was dropped for its neighbour)."""
    rng = np.random.default_rng(3)
    nominal = [round(1000 * i / 30) for i in range(60)]
    pts = [0] + [t + int(rng.integers(-3, 4)) for t in nominal[1:]]  # up to 3 ms off, at 1 ms resolution
    p = make_clip(tmp_path / "jitter.mp4", n_frames=60, fps=Fraction(30), audio=False, pts_ms=pts)
    info = V.probe(p)
    assert info.fps == 30 and not info.is_vfr and info.frame_count == 60
    assert 0 < info.jitter <= 0.0035
    assert indices(p, 60) == list(range(60))
    assert indices(p, 60, fps=15) == list(range(0, 60, 2))


def test_a_really_variable_rate_keeps_its_average(tmp_path):
    rng = np.random.default_rng(4)
    pts = np.cumsum([0] + list(rng.integers(15, 80, 23))).tolist()  # on no grid
    p = make_clip(tmp_path / "vfr.mkv", n_frames=24, fps=Fraction(25), audio=False, pts_ms=pts)
    info = V.probe(p)
    assert info.is_vfr and info.before_grid is None and info.jitter == 0
    assert float(info.fps) == pytest.approx(24 / info.duration, rel=1e-3)


def test_frames_an_edit_list_hides_are_not_counted(tmp_path):
    """A stream-copy cut keeps the frames before its first keyframe and hides them with an edit list (negative
    timestamps): the video starts at its first shown frame, and has only the shown frames."""
    p = tmp_path / "cut.mp4"
    with av.open(str(p), "w") as c:
        v = c.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        for i in range(36):
            fr = av.VideoFrame.from_ndarray(draw_frame(i, (96, 64), 36), format="rgb24")
            fr.pts, fr.time_base = i - 12, Fraction(1, 24)  # the first 12 before zero: hidden
            for pkt in v.encode(fr):
                c.mux(pkt)
        for pkt in v.encode(None):
            c.mux(pkt)
    info = V.probe(p)
    assert info.frame_count == 24 and info.start_time == pytest.approx(0) and info.duration == pytest.approx(1.0)
    assert indices(p, 36) == list(range(12, 36))


def test_a_cut_off_matroska_file_fails_at_its_first_missing_frame(tmp_path):
    """Matroska counts no frames, but its header says how long the video lasts: a file cut off (an unfinished
    download) stops with the one-line error naming the first missing frame, as an MP4 does."""
    whole = make_clip(tmp_path / "whole.mkv", n_frames=96, audio=False)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    info = V.probe(cut)
    assert info.duration == pytest.approx(4.0, abs=0.05)
    with pytest.raises(CorruptVideoError, match="truncated or damaged") as e:
        list(V.iter_frames(cut))
    assert 24 < e.value.frame < 96
    assert V.probe(whole).frame_count == 96 and len(list(V.iter_frames(whole))) == 96


# ------------------------------------------------------------------------------ resampling, trimming


def test_fps_30_to_12_keeps_duration_and_picks_last_frame_at_or_before(clips):
    info = V.probe(clips["c30"])
    n = V.output_frame_count(info, fps=12)
    assert n == 24  # 2.0 s * 12 fps
    assert abs(n / 12 - info.duration) <= 1 / 12
    # output k at k/12 s; source j at j/30 s -> j = floor(30 k / 12) = floor(2.5 k)
    assert indices(clips["c30"], 60, fps=12) == [math.floor(2.5 * k) for k in range(24)]
    assert V.output_times(info, 12)[:3] == pytest.approx([0.0, 1 / 12, 2 / 12])


def test_fps_none_keeps_every_frame_and_ntsc_rate_is_exact(tmp_path, clips):
    assert indices(clips["c24"], 24) == list(range(24))
    p = make_clip(tmp_path / "ntsc.mp4", n_frames=30, fps=Fraction(30000, 1001), audio=False)
    info = V.probe(p)
    assert info.fps == Fraction(30000, 1001) and info.duration == pytest.approx(1.001)
    assert V.output_frame_count(info) == 30
    assert V.output_frame_count(info, fps=12) == 12  # round(1.001 * 12)


def test_trim_start_end(clips):
    info = V.probe(clips["c30"])
    assert indices(clips["c30"], 60, start=0.5, end=1.5) == list(range(15, 45))
    # 12 fps over [0.3, 1.7): N = round(1.4 * 12) = 17, source j = floor(30 * (0.3 + k/12)) = floor(9 + 2.5 k)
    assert V.output_frame_count(info, 12, 0.3, 1.7) == 17
    assert indices(clips["c30"], 60, fps=12, start=0.3, end=1.7) == [math.floor(9 + 2.5 * k) for k in range(17)]
    # end past the end of the video is clamped
    assert V.output_frame_count(info, None, 1.0, 99.0) == 30
    with pytest.raises(VideoError) as e:
        V.output_frame_count(info, None, 1.5, 1.0)
    assert "before end" in one_line(e.value)
    with pytest.raises(VideoError):
        V.output_frame_count(info, 0)


def test_resume_first_index_matches_full_run_and_seeks(clips, monkeypatch):
    full = list(V.iter_frames(clips["c30"], fps=12, start=0.2))
    calls = []
    real = video_decode._frame_time
    monkeypatch.setattr(video_decode, "_frame_time", lambda *a: calls.append(1) or real(*a))
    for first in (1, 7, 13, len(full) - 1):
        calls.clear()
        part = list(V.iter_frames(clips["c30"], fps=12, start=0.2, first_index=first))
        assert [k for k, _ in part] == list(range(first, len(full)))
        for (ka, a), (kb, b) in zip(full[first:], part):
            assert ka == kb and np.array_equal(a, b)
        if first >= 13:  # output 13 is at 0.2 + 13/12 s = source frame 38: a seek skips most of the clip
            assert len(calls) < 30
    assert list(V.iter_frames(clips["c30"], fps=12, first_index=len(full) + 5)) == []


# ------------------------------------------------------------------------------------------ resize


def _bands(w, h, top, middle, bottom, rows=2):
    img = np.full((h, w, 3), middle, np.uint8)
    img[:rows] = top
    img[-rows:] = bottom
    return img


def test_resize_just_resize_stretches():
    img = np.zeros((50, 100, 3), np.uint8)
    img[:, 50:] = 200
    out = V.resize_frame(img, 40, 40, "just_resize")
    assert out.shape == (40, 40, 3) and out.dtype == np.uint8
    assert out[:, :18].max() == 0 and out[:, 22:].min() == 200  # the split stays at half the width


def test_resize_crop_and_resize_fills_and_centre_crops():
    wide = np.zeros((100, 200, 3), np.uint8)  # 200x100: red | green | blue, 50 / 100 / 50 px
    wide[:, :50] = (255, 0, 0)
    wide[:, 50:150] = (0, 255, 0)
    wide[:, 150:] = (0, 0, 255)
    out = V.resize_frame(wide, 100, 100, "crop_and_resize")  # scaled 200x100, crop x 50..150
    assert out.shape == (100, 100, 3)
    assert (out == (0, 255, 0)).all()
    tall = np.swapaxes(wide, 0, 1).copy()  # 100x200: the same bands top to bottom
    out = V.resize_frame(tall, 50, 50, "crop_and_resize")  # scaled 50x100, crop y 25..75
    assert out.shape == (50, 50, 3) and (out == (0, 255, 0)).all()


def test_resize_and_fill_fits_and_stretches_edge_rows():
    # 200x100 into 100x100: scaled to 100x50 at rows 25..75; rows above copy the top row, below the bottom row
    img = _bands(200, 100, top=255, middle=128, bottom=0)
    out = V.resize_frame(img, 100, 100, "resize_and_fill")
    assert out.shape == (100, 100, 3)
    assert (out[:25] == 255).all() and (out[76:] == 0).all()
    assert (out[30:70] == 128).all()
    # tall into wide: columns left / right copy the edge columns
    tall = np.swapaxes(img, 0, 1).copy()  # 100 wide, 200 tall, left columns 255, right columns 0
    out = V.resize_frame(tall, 100, 100, "resize_and_fill")  # scaled 50x100 at columns 25..75
    assert (out[:, :25] == 255).all() and (out[:, 76:] == 0).all() and (out[:, 30:70] == 128).all()


def test_resize_in_iter_frames_and_bad_mode(clips):
    frames = [f for _, f in V.iter_frames(clips["c24"], size=(48, 48), resize_mode="crop_and_resize")]
    assert len(frames) == 24 and frames[0].shape == (48, 48, 3)
    with pytest.raises(VideoError) as e:
        next(V.iter_frames(clips["c24"], size=(48, 48), resize_mode="stretch"))
    assert "resize mode" in one_line(e.value)


# ------------------------------------------------------------------------------------------ encode

FORMAT_CASES = [("mp4", "out.mp4", Fraction(30000, 1001)), ("webm", "out.webm", Fraction(30000, 1001)),
                ("gif", "out.gif", Fraction(10)), ("png", "frames", Fraction(30000, 1001))]


@pytest.mark.parametrize("fmt,name,fps", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_encode_formats(tmp_path, fmt, name, fps):
    frames = [draw_frame(i) for i in range(24)]
    out = V.encode_frames(iter(frames), tmp_path / name, fps, fmt=fmt)
    assert out == tmp_path / name and out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left behind
    if fmt == "png":
        pngs = sorted(out.glob("*.png"))
        assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(1, 25)]
        assert (out / "fps.txt").read_text().strip() == "30000/1001"
        import cv2

        for i, p in enumerate(pngs):
            assert np.array_equal(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), frames[i])
        return
    info = V.probe(out)
    assert info.frame_count == 24 and (info.width, info.height) == (96, 64)
    assert info.fps == fps
    assert info.duration == pytest.approx(24 / fps, abs=0.011)
    assert indices(out, 24) == list(range(24))


@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif", "png"])
def test_odd_sizes(tmp_path, fmt):
    img = np.full((65, 97, 3), 90, np.uint8)
    img[-1, :] = 255  # the last row and column would be cropped for yuv420p
    img[:, -1] = 255
    out = V.encode_frames([img, img], tmp_path / f"odd.{fmt}", 12, fmt=fmt)
    if fmt == "png":
        import cv2

        assert cv2.imread(str(out / "000001.png")).shape == (65, 97, 3)
        return
    info = V.probe(out)
    want = (96, 64) if fmt in ("mp4", "webm") else (97, 65)
    assert (info.width, info.height) == want and info.frame_count == 2
    frame = next(V.iter_frames(out))[1]
    if fmt in ("mp4", "webm"):
        assert abs(int(frame[32, 48, 0]) - 90) <= 3 and frame[-2:, :].mean() < 120  # white edge cropped away


def test_writer_rejects_mismatched_frame_size_and_leaves_nothing(tmp_path):
    with pytest.raises(VideoError) as e:
        with V.VideoWriter(tmp_path / "x.mp4", 12) as w:
            w.write(np.zeros((64, 96, 3), np.uint8))
            w.write(np.zeros((32, 48, 3), np.uint8))
    assert "one size" in one_line(e.value)
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_write_leaves_no_file_under_final_name(tmp_path):
    with pytest.raises(RuntimeError):
        with V.VideoWriter(tmp_path / "x.mp4", 12) as w:
            w.write(np.zeros((64, 96, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- audio


@pytest.mark.parametrize("fmt", ["mp4", "webm", "png"])
def test_audio_kept_in_sync_and_as_long_as_video(tmp_path, clips, fmt):
    src = clips["c30"]
    start, end, fps = 0.3, 1.7, Fraction(12)
    name = "frames" if fmt == "png" else f"out.{fmt}"
    frames = (f for _, f in V.iter_frames(src, fps=fps, start=start, end=end))
    out = V.encode_frames(frames, tmp_path / name, fps, fmt=fmt, audio_from=src, audio_start=start, audio_end=end)
    n = 17
    video_dur = n / fps
    if fmt == "png":
        assert len(list(out.glob("*.png"))) == n
        audio_file = out / "audio.m4a"
    else:
        info = V.probe(out)
        assert info.frame_count == n and len(info.audio) == 1
        assert info.audio[0].codec == ("aac" if fmt == "mp4" else "opus")
        assert indices(out, 60) == [math.floor(9 + 2.5 * k) for k in range(n)]
        audio_file = out
    samples, rate = V.decode_audio(audio_file)
    assert abs(samples.shape[1] / rate - float(video_dur)) <= 1 / float(fps)
    # bursts at source times 0.5, 0.75, ... 1.5 s must sound at (source time - start) in the output
    want = [t - start for t in np.arange(0, 2, CLICK_EVERY) if start <= t < end]
    got = click_onsets(samples, rate)
    assert len(got) == len(want)
    assert np.allclose(got, want, atol=0.003)


def test_audio_end_none_runs_to_video_end_and_no_audio_source_writes_none(tmp_path, clips):
    frames = [f for _, f in V.iter_frames(clips["c24"], fps=12)]  # 12 frames = 1.0 s
    out = V.encode_frames(frames, tmp_path / "a.mp4", 12, audio_from=clips["c24"])
    assert V.audio_duration(out) == pytest.approx(1.0, abs=1 / 12)
    onsets = click_onsets(*V.decode_audio(out))
    assert np.allclose(onsets, [0.0, 0.25, 0.5, 0.75], atol=0.003)
    out2 = V.encode_frames(frames, tmp_path / "b.mp4", 12, audio_from=clips["noaudio"])
    assert not V.has_audio(out2) and V.audio_duration(out2) is None
    out3 = V.encode_frames(frames, tmp_path / "c.gif", 12, fmt="gif", audio_from=clips["c24"])
    assert not V.has_audio(out3)


GAP = (1.05, 1.45)  # seconds: the audio frames that start here are left out of the gap tests' sources


def in_gap(t: float) -> bool:
    return GAP[0] <= t < GAP[1]


@pytest.mark.parametrize("suffix, start", [(".mkv", 0.0), (".mp4", 0.0), (".ts", 0.0), (".mkv", 1.3)])
def test_audio_after_a_gap_keeps_its_time(tmp_path, suffix, start):
    """No audio packets for 0.4 s (a dropout): the gap is silence and every click after it sounds at its own
    time, not 0.4 s early (the sound used to be closed up behind the gap)."""
    src = make_stamped_audio_clip(tmp_path / f"gap{suffix}", lambda t: None if in_gap(t) else t)
    frames = (f for _, f in V.iter_frames(src, start=start))
    out = V.encode_frames(frames, tmp_path / "out.mp4", 24, audio_from=src, audio_start=start)
    samples, rate = V.decode_audio(out)
    assert abs(samples.shape[1] / rate - (3.0 - start)) <= 1 / 24
    want = [t - start for t in np.arange(0, 3, CLICK_EVERY) if t >= start and not in_gap(t)]
    got = click_onsets(samples, rate)
    assert len(got) == len(want) and np.allclose(got, want, atol=0.003), got
    hole = samples[:, round(max(GAP[0] + 0.05 - start, 0) * rate) : round((GAP[1] - 0.05 - start) * rate)]
    assert np.abs(hole).max() < 0.01


def source_samples(path, n: int) -> np.ndarray:
    """The first ``n`` samples (mono float32) :class:`AudioSource` hands out for ``path`` from video time 0."""
    src = AudioSource(path, 0.0, AUDIO_RATE, "mono")
    try:
        return src.read(n)[0]
    finally:
        src.close()


def test_an_audio_gap_is_that_much_silence_sample_exactly(tmp_path):
    """Float PCM (decoded bit-exactly) in 50 ms frames, 0.4 s of them left out: exactly that much silence, and
    every other sample is the source's, at its own index."""
    n = 3 * AUDIO_RATE
    gap = make_stamped_audio_clip(tmp_path / "gap.mkv", lambda t: None if in_gap(t) else t, pcm_frame=2400)
    want = audio_track(n)
    want[round(GAP[0] * AUDIO_RATE) : round(GAP[1] * AUDIO_RATE)] = 0
    assert np.array_equal(source_samples(gap, n), want)


def test_overlapping_audio_is_dropped_sample_exactly(tmp_path):
    """Float PCM in 50 ms frames, those from 1.1 s on stamped 40 ms early (an overlap, as after a splice): the
    40 ms already handed out are dropped and the rest keeps its stamped time."""
    n, early = 3 * AUDIO_RATE, 0.04  # early: seconds, four times JUMP_TOLERANCE
    over = make_stamped_audio_clip(tmp_path / "over.mkv", lambda t: t - early if t >= 1.1 else t, pcm_frame=2400)
    sound = audio_track(n)
    cut, k = round(1.1 * AUDIO_RATE), round(early * AUDIO_RATE)
    want = np.concatenate([sound[:cut], sound[cut + k :], np.zeros(k, np.float32)])
    assert np.array_equal(source_samples(over, n), want)


def test_audio_timestamp_jitter_moves_no_sample(tmp_path):
    """Timestamps off by up to 4 ms (under JUMP_TOLERANCE, as muxers round and recorders jitter): the frames
    still follow each other back to back, so the samples are exactly those of the evenly stamped clip. (This
    passed before gaps were honoured too: it guards against cutting or padding a few samples at every frame.)"""
    assert JUMP_TOLERANCE > Fraction(4, 1000)
    rng = np.random.default_rng(1)
    even = make_stamped_audio_clip(tmp_path / "even.mkv", lambda t: t, pcm_frame=1024)
    jittery = make_stamped_audio_clip(tmp_path / "jitter.mkv", lambda t: t + rng.uniform(-0.004, 0.004) if t else t,
                                      pcm_frame=1024)
    n = 3 * AUDIO_RATE
    assert np.array_equal(source_samples(jittery, n), source_samples(even, n))


# --------------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(VideoError) as e:
        V.probe(tmp_path / "nope.mp4")
    assert "not found" in one_line(e.value) and "check the path" in str(e.value)


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError) as e:
        V.probe(p)
    assert "not a video" in one_line(e.value)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(VideoError) as e:
        V.probe(tmp_path)
    assert "folder" in one_line(e.value)


def _probe_bounded(path, seconds=20.0):
    """V.probe(path) on a thread: (exception or result). A probe that blocks (on a FIFO with no writer) fails the
    test after ``seconds``; the FIFO is then opened for writing once so the blocked reader returns."""
    import threading

    box = {}

    def target():
        try:
            box["result"] = V.probe(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["result"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    if th.is_alive():
        if Path(path).is_fifo():
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # unblock the reader
        th.join(10)
        pytest.fail(f"probe({path}) blocked for {seconds} s")
    return box["result"]


def _unix_socket(path):
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_non_regular_input_is_refused_before_opening(tmp_path, kind):
    path, keep = tmp_path / "input.mp4", None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path(os.devnull)
    else:
        path = tmp_path / "in.sock"  # AF_UNIX paths are short
        keep = _unix_socket(path)
    try:
        err = _probe_bounded(path)
    finally:
        if keep is not None:
            keep.close()
    assert isinstance(err, VideoError), err
    assert "not a regular file" in one_line(err) and "give a video file" in str(err)


def test_audio_only_file(tmp_path):
    with pytest.raises(VideoError) as e:
        V.probe(make_audio_only(tmp_path / "sound.m4a"))
    assert "no video stream" in one_line(e.value)


def test_zero_frames(tmp_path):
    with pytest.raises(VideoError) as e:
        V.probe(make_zero_frame_clip(tmp_path / "empty.mkv"))
    assert "no frames" in one_line(e.value)


@pytest.mark.parametrize("mode", ["garbage", "truncate"])
def test_corrupt_after_frame_k_names_k(tmp_path, mode):
    p = make_corrupt_clip(tmp_path / f"bad_{mode}.mp4", k=10, mode=mode)
    got = []
    with pytest.raises(CorruptVideoError) as e:
        for k, f in V.iter_frames(p):
            got.append((k, frame_index(f)))
    assert e.value.frame == 10
    assert "frame 10" in one_line(e.value)
    assert got == [(i, i) for i in range(10)]  # every good frame was handed out first
    # at 12 fps output k shows source 2k: output 5 needs source 10
    with pytest.raises(CorruptVideoError) as e:
        list(V.iter_frames(p, fps=12))
    assert e.value.frame == 5


def test_video_ending_early_names_first_missing_frame(clips):
    info = V.probe(clips["c24"])
    # pretend the header promised 48 frames (2 s) but only 24 are in the file
    longer = dataclasses.replace(info, frame_count=48, duration=2.0, last_frame_time=47 / 24)
    got = []
    with pytest.raises(CorruptVideoError) as e:
        for k, _ in V.iter_frames(clips["c24"], info=longer):
            got.append(k)
    assert e.value.frame == 24 and got == list(range(24))
    assert "ends early" in one_line(e.value)


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(VideoError) as e:
        V.VideoWriter(blocker / "sub" / "out.mp4", 12)
    assert "Cannot write" in one_line(e.value) and "output folder" in str(e.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(VideoError) as e:
            V.VideoWriter(ro / "out.mp4", 12)
        assert "permission denied" in one_line(e.value)
    finally:
        ro.chmod(0o700)


def test_disk_full_is_reported_and_leaves_no_file(tmp_path, monkeypatch):
    def full(self, rgb):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(V.VideoWriter, "_to_av", full)
    w = V.VideoWriter(tmp_path / "out.mp4", 12)
    with pytest.raises(VideoError) as e:
        w.write(np.zeros((64, 96, 3), np.uint8))
    assert "Disk full" in one_line(e.value)
    assert list(tmp_path.iterdir()) == []


def test_png_sequence_replaces_own_folder_but_not_a_foreign_one(tmp_path):
    a = [draw_frame(i) for i in range(3)]
    out = V.encode_frames(a, tmp_path / "seq", 12, fmt="png")
    V.encode_frames(a[:2], out, 12, fmt="png")  # a re-encode replaces the earlier sequence
    assert sorted(p.name for p in out.iterdir()) == ["000001.png", "000002.png", "fps.txt"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(VideoError) as e:
        V.encode_frames(a, foreign, 12, fmt="png")
    assert "choose another output name" in one_line(e.value)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "seq"]
