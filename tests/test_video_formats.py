"""What counts as a video (lib_vid2vid.video_probe): FFmpeg opens text files (tty demuxer), photos (image2,
png_pipe) and raw streams too; probe() and is_video() accept only the allow-listed containers and codecs, and
refuse the rest with one line that says what the file was taken for, what is accepted and what to do."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lib_vid2vid import video, video_probe
from lib_vid2vid.errors import VideoError
from tests.clips import draw_frame, make_clip

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _image_codec_clip(path: Path, codec: str) -> Path:
    """Three frames in ``path``'s container with an image codec as the picture track (e.g. Targa in MOV)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=12)
        s.width, s.height, s.pix_fmt = 96, 64, "bgr24"
        for i in range(3):
            fr = av.VideoFrame.from_ndarray(draw_frame(i), format="rgb24")
            fr.pts = i
            for pkt in s.encode(fr):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def _text(d: Path, name: str) -> Path:
    p = d / name
    p.write_text(README, encoding="utf-8")
    return p


def _photo(d: Path, name: str) -> Path:
    p = d / name
    assert cv2.imwrite(str(p), np.full((64, 96, 3), 128, np.uint8))
    return p


REFUSED = {
    # name: (maker, words the one-line error must hold)
    "readme-txt": (lambda d: _text(d, "README.txt"), ["README.txt", "text file", "tty"]),
    "nfo": (lambda d: _text(d, "release.nfo"), ["release.nfo", "text file"]),
    "png": (lambda d: _photo(d, "photo.png"), ["photo.png", "an image"]),
    "jpeg": (lambda d: _photo(d, "photo.jpg"), ["photo.jpg", "an image"]),
    "png-named-video": (lambda d: _photo(d, "photo.png").rename(d / "clip.video") and d / "clip.video",
                        ["clip.video", "an image"]),
    "raw-h264": (lambda d: make_clip(d / "raw.h264", n_frames=3, audio=False),
                 ["raw.h264", "without a container", "-c copy out.mp4"]),
    "targa-in-mov": (lambda d: _image_codec_clip(d / "frames.mov", "targa"),
                     ["frames.mov", "targa, not a video codec", "re-encode"]),
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_what_is_not_a_video_is_refused_in_one_line(tmp_path, kind):
    make, words = REFUSED[kind]
    path = make(tmp_path)
    with pytest.raises(VideoError) as e:
        video.probe(path)
    msg = str(e.value)
    assert "\n" not in msg and "not a video" in msg
    for w in words:
        assert w in msg, (w, msg)
    assert "accepted are mp4/mov, mkv/webm" in msg  # what is accepted
    assert not video_probe.is_video(path)


def test_a_text_file_named_mp4_is_refused(tmp_path):
    p = _text(tmp_path, "README.mp4")
    with pytest.raises(VideoError) as e:
        video.probe(p)
    assert "\n" not in str(e.value) and "README.mp4 is not a video" in str(e.value)
    assert not video_probe.is_video(p)


ACCEPTED = {
    "mp4": lambda d: make_clip(d / "a.mp4", n_frames=3, audio=False),
    "mkv": lambda d: make_clip(d / "a.mkv", n_frames=3, audio=False),
    "webm": lambda d: make_clip(d / "a.webm", n_frames=3, audio=False, codec="libvpx-vp9"),
    "mov-mjpeg": lambda d: make_clip(d / "a.mov", n_frames=3, audio=False, codec="mjpeg"),
    "avi-mpeg4": lambda d: make_clip(d / "a.avi", n_frames=3, audio=False, codec="mpeg4"),
    "mpeg-ps": lambda d: make_clip(d / "a.mpg", n_frames=3, audio=False, codec="mpeg2video"),
    "y4m": lambda d: make_clip(d / "a.y4m", n_frames=3, audio=False, codec="rawvideo"),
    "gif": lambda d: video.encode_frames([draw_frame(i) for i in range(3)], d / "a.gif", 12, fmt="gif"),
    "mp4-named-video": lambda d: make_clip(d / "a.mp4", n_frames=3, audio=False).rename(d / "a.video")
    and d / "a.video",
}


@pytest.mark.parametrize("kind", list(ACCEPTED))
def test_real_videos_are_accepted(tmp_path, kind):
    path = ACCEPTED[kind](tmp_path)
    info = video.probe(path)
    assert info.frame_count == 3 and (info.width, info.height) == (96, 64)
    assert video_probe.is_video(path)
    assert len(list(video.iter_frames(path, info=info))) == 3


def test_is_video_never_blocks_or_raises(tmp_path):
    import os

    assert not video_probe.is_video(tmp_path)  # a folder
    assert not video_probe.is_video(tmp_path / "missing.mp4")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.mp4")
        assert not video_probe.is_video(tmp_path / "pipe.mp4")  # not opened: FFmpeg would wait for a writer


def test_the_allow_lists_hold_what_the_writer_makes():
    """Every format VideoWriter writes is a video this package reads back (a job's output is a source too)."""
    assert {"mp4", "matroska", "webm", "gif"} <= video_probe.VIDEO_DEMUXERS
    assert {"h264", "vp9", "gif"} <= video_probe.VIDEO_CODECS
    assert not {"tty", "image2", "png_pipe", "hls", "concat", "h264"} & video_probe.VIDEO_DEMUXERS
    assert not {"ansi", "bintext", "xbin", "bmp", "targa"} & video_probe.VIDEO_CODECS


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs POSIX FIFOs")
def test_a_playlist_never_makes_ffmpeg_open_what_it_lists(tmp_path):
    """An HLS playlist is not opened as one: FFmpeg's hls demuxer would open every segment it lists (a local
    file or a URL) while the file is opened, before any check. The segment here is a FIFO with no writer: had
    FFmpeg opened it, probe would block."""
    import os
    import threading

    seg = tmp_path / "segment.ts"
    os.mkfifo(seg)
    playlist = tmp_path / "list.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{seg}\n#EXT-X-ENDLIST\n")
    box = {}

    def target():
        try:
            video.probe(playlist)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
        box["is_video"] = video_probe.is_video(playlist)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(20)
    if th.is_alive():
        os.close(os.open(seg, os.O_WRONLY | os.O_NONBLOCK))  # unblock FFmpeg
        th.join(10)
        pytest.fail("FFmpeg opened the segment a playlist lists")
    assert isinstance(box.get("error"), VideoError) and "list.m3u8 is not a video" in str(box["error"])
    assert box["is_video"] is False


def test_an_empty_or_cut_off_video_file_says_so(tmp_path):
    """A file named as a video that FFmpeg cannot open is most likely incomplete: the line says that, not
    "use a video file such as mp4" to someone who gave one."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    whole = make_clip(tmp_path / "whole.mp4", n_frames=24, audio=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # the index (moov) is at the end: lost
    for path, words in ((empty, "is empty (0 bytes)"), (cut, "damaged or incomplete; download or export it again")):
        with pytest.raises(VideoError) as e:
            video.probe(path)
        assert "\n" not in str(e.value) and words in str(e.value) and path.name in str(e.value)
