"""Many videos in one go (lib_vid2vid/batch.py and the CLI): each video its own job, failures stay local,
batch.json, interrupt and rerun."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from lib_vid2vid import __main__ as cli_main
from lib_vid2vid import batch, params, video
from lib_vid2vid.proxy import ProxyRenderer
from tests.clips import make_clip, make_corrupt_clip
from tests.test_cli import cli


def _folder(root: Path) -> Path:
    """a_portrait.mp4 (64x96, 8 frames), b_landscape.video (96x64, 10 frames, a video only by its content),
    c_corrupt.mp4 (64x64, frames 3.. undecodable), and files that are not videos."""
    folder = root / "in"
    folder.mkdir()
    make_clip(folder / "a_portrait.mp4", n_frames=8, size=(64, 96), audio=False)
    make_clip(root / "b.mp4", n_frames=10, size=(96, 64))
    (root / "b.mp4").rename(folder / "b_landscape.video")
    make_corrupt_clip(folder / "c_corrupt.mp4", k=3, n_frames=8, size=(64, 64), audio=False)
    (folder / "notes.txt").write_text("not a video")
    import cv2

    cv2.imwrite(str(folder / "thumb.png"), np.zeros((16, 16, 3), np.uint8))
    return folder


FLAGS = ["--renderer", "proxy", "--prompt", "ink", "--seed", "7", "--width", "96", "--keyframe-mode", "off",
         "--init-mode", "previous_output", "--no-report", "--quiet"]


def test_folder_batch_sizes_failure_and_batch_json(tmp_path):
    folder = _folder(tmp_path)
    out = tmp_path / "out"
    r = cli(folder, *FLAGS, "--output-dir", out)
    assert r.returncode == 1, r.stderr  # not every video succeeded
    assert "Traceback" not in r.stderr
    data = json.loads((out / "batch.json").read_text())
    rows = data["videos"]
    assert [Path(v["video"]).name for v in rows] == ["a_portrait.mp4", "b_landscape.video", "c_corrupt.mp4"]
    assert [v["state"] for v in rows] == ["done", "done", "failed"] and data["status"] == "failed"
    assert data["counts"] == {"done": 2, "failed": 1}
    a, b, c = rows
    assert (a["width"], a["height"], a["frames"], a["total"]) == (64, 96, 8, 8)  # portrait, long side 96
    assert (b["width"], b["height"], b["frames"], b["total"]) == (96, 64, 10, 10)
    assert (c["width"], c["height"]) == (96, 96)  # square
    for row in (a, b):
        info = video.probe(row["output"])
        assert (info.width, info.height, info.frame_count) == (row["width"], row["height"], row["total"])
        assert Path(row["job_dir"]).parent == out and row["error"] is None
    assert a["job_dir"] != b["job_dir"]
    assert "\n" not in c["error"] and "c_corrupt.mp4" in c["error"] and "frame 3" in c["error"]
    assert c["frames"] == 3 and Path(c["job_dir"]).is_dir()  # its good frames are kept for a later run
    table = r.stdout.splitlines()
    assert table[0].split()[:4] == ["video", "frames", "seconds", "state"]
    assert table[1].split()[:2] == ["a_portrait.mp4", "8/8"] and " done " in table[1]
    assert " failed " in table[3] and "frame 3" in table[3]
    assert f"batch: {out / 'batch.json'}" in r.stdout


class _Counting(ProxyRenderer):
    """The proxy renderer; counts renders by init size and presses Ctrl-C at render number ``press_at``."""

    def __init__(self, press_at=None):
        super().__init__()
        self.sizes: list[tuple[int, int]] = []
        self.press_at = press_at

    def render(self, request):
        self.sizes.append(request.init.shape[:2])
        if len(self.sizes) == self.press_at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().render(request)


def _main(monkeypatch, renderer, *args):
    monkeypatch.setattr(cli_main, "_make_renderer", lambda a: renderer)
    return cli_main.main([str(a) for a in args])


def _frames(job_dir: str) -> list[bytes]:
    return [f.read_bytes() for f in sorted((Path(job_dir) / "frames" / "pass1").glob("*.png"))]


def test_interrupt_in_the_second_video_then_rerun_resumes(tmp_path, monkeypatch, capsys):
    folder = _folder(tmp_path)
    assert _main(monkeypatch, _Counting(), folder, *FLAGS, "--output-dir", tmp_path / "ref") == 1
    ref = json.loads((tmp_path / "ref" / "batch.json").read_text())["videos"]

    out = tmp_path / "out"
    first = _Counting(press_at=8 + 4)  # all of a_portrait, then Ctrl-C in b_landscape's fourth frame
    assert _main(monkeypatch, first, folder, *FLAGS, "--output-dir", out) == cli_main.EXIT_INTERRUPTED
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the CLI put pytest's handler back
    rows = json.loads((out / "batch.json").read_text())["videos"]
    assert [v["state"] for v in rows] == ["done", "interrupted", "pending"]
    assert rows[1]["frames"] == 4 and rows[2]["job_dir"] is None  # stopped after the current frame

    again = _Counting()
    assert _main(monkeypatch, again, folder, *FLAGS, "--output-dir", out) == 1
    rerun = json.loads((out / "batch.json").read_text())["videos"]
    assert [v["state"] for v in rerun] == ["skipped", "done", "failed"]
    assert rerun[0]["job_dir"] == rows[0]["job_dir"] and rerun[0]["frames"] == 8
    assert rerun[1]["job_dir"] == rows[1]["job_dir"]  # resumed, not started anew
    # (rows, columns) of each init: the finished portrait video was not rendered again, b_landscape only for
    # the frames it still lacked
    assert again.sizes.count((96, 64)) == 0 and again.sizes.count((64, 96)) == 10 - 4
    assert _frames(rerun[1]["job_dir"]) == _frames(ref[1]["job_dir"])  # byte-exact with an uninterrupted run
    assert "frame 3" in rerun[2]["error"]  # the third video ran
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        Path(v["job_dir"]).name for v in rerun)  # no extra job folders
    assert "skipped" in capsys.readouterr().out


def test_a_renderer_stopped_by_its_host_ends_the_batch(tmp_path):
    """The host's own Interrupt (the renderer raises Interrupted) stops the batch like Ctrl-C does."""
    from lib_vid2vid.errors import Interrupted

    class HostInterrupt(_Counting):
        def render(self, request):
            if len(self.sizes) == 10:
                raise Interrupted("interrupted in the WebUI")
            return super().render(request)

    folder = _folder(tmp_path)
    s = params.Settings().replace(prompt="ink", seed=7, width=96, report=False, output_dir=str(tmp_path / "out"),
                                  keyframe_mode="off")  # the 10th render is the second video's third frame
    result = batch.run_batch(s, HostInterrupt(), batch.find_videos([folder]))
    assert [i.state for i in result.items] == ["done", "interrupted", "pending"]
    assert result.status == "interrupted" and result.items[1].frames == 2


def test_videos_by_container_glob_recursive_and_output_folder(tmp_path):
    folder = _folder(tmp_path)
    sub = folder / "more"
    sub.mkdir()
    make_clip(sub / "d.mkv", n_frames=2, size=(64, 64), audio=False)
    (sub / "d.mkv").rename(sub / "d_square")  # no extension at all
    (folder / "out").mkdir()
    make_clip(folder / "out" / "rendered.mp4", n_frames=2, audio=False)
    (folder / "broken.mov").write_text("a damaged video keeps its place in the batch")
    names = lambda found: [p.name for p in found]  # noqa: E731
    assert names(batch.find_videos([folder], exclude=[folder / "out"])) == [
        "a_portrait.mp4", "b_landscape.video", "broken.mov", "c_corrupt.mp4"]
    assert names(batch.find_videos([folder], recursive=True, exclude=[folder / "out"])) == [
        "a_portrait.mp4", "b_landscape.video", "broken.mov", "c_corrupt.mp4", "d_square"]
    assert names(batch.find_videos([folder], pattern="*.mp4", exclude=[folder / "out"])) == [
        "a_portrait.mp4", "c_corrupt.mp4"]
    assert names(batch.find_videos([str(folder / "*.video"), folder / "a_portrait.mp4",
                                    folder / "a_portrait.mp4"])) == ["b_landscape.video", "a_portrait.mp4"]
    assert not batch.is_video(folder / "thumb.png") and not batch.is_video(folder / "notes.txt")
    assert batch.is_video(sub / "d_square") and batch.is_video(folder / "b_landscape.video")
    assert batch.is_batch([folder]) and batch.is_batch(["a.mp4", "b.mp4"]) and batch.is_batch([str(folder / "*")])
    assert not batch.is_batch([folder / "a_portrait.mp4"])


@pytest.mark.parametrize("src,expected", [((1920, 1080), (512, 288)), ((1080, 1920), (288, 512)),
                                          ((1000, 1000), (512, 512))])
def test_each_video_keeps_its_aspect_ratio_with_the_same_long_side(src, expected, tmp_path):
    info = video.VideoInfo.from_dict({**video.probe(make_clip(tmp_path / "x.mp4", n_frames=2, audio=False))
                                      .to_dict(), "width": src[0], "height": src[1]})
    for width, height in ((512, 512), (512, 0), (0, 512), (0, 0), (384, 512)):
        s = params.Settings().replace(width=width, height=height)
        vs = batch.video_settings(s, "v.mp4", info)
        assert (vs.video.width, vs.video.height) == expected, (width, height)


def test_a_video_wider_than_8_to_1_keeps_its_aspect_and_the_batch_says_so(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "strip.mp4", n_frames=2, size=(2000, 64), audio=False)
    make_clip(folder / "wide.mp4", n_frames=2, size=(96, 64), audio=False)
    s = params.Settings().replace(prompt="ink", seed=7, report=False, output_dir=str(tmp_path / "out"),
                                  keyframe_mode="off")
    notes = []
    result = batch.run_batch(s, ProxyRenderer(), batch.find_videos([folder]), notify=notes.append)
    assert [(i.name, i.width, i.height, i.state) for i in result.items] == [
        ("strip.mp4", 2000, 64, "done"), ("wide.mp4", 512, 344, "done")]
    assert [n for n in notes if "aspect ratio" in n] == [
        "strip.mp4: the 2000x64 source gets 2000x64: its short side at the 64 px minimum, the long side grows from "
        "512 to 2000 px to keep the aspect ratio"]


def test_a_readme_a_photo_and_a_raw_stream_in_the_folder_are_not_videos(tmp_path):
    """FFmpeg opens a README.txt (tty demuxer), a photo and a raw H.264 stream; only the real video counts."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "clip.mp4", n_frames=3, size=(64, 64), audio=False)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for name in ("README", "README.txt", "README.md", "notes.nfo"):
        (folder / name).write_text(readme, encoding="utf-8")
    import cv2

    cv2.imwrite(str(folder / "poster.jpg"), np.full((32, 32, 3), 200, np.uint8))
    make_clip(folder / "raw.h264", n_frames=3, size=(64, 64), audio=False)
    assert [p.name for p in batch.find_videos([folder])] == ["clip.mp4"]
    for name in ("README", "README.txt", "README.md", "notes.nfo", "poster.jpg", "raw.h264"):
        assert not batch.is_video(folder / name), name
    r = cli(folder, *FLAGS, "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "out" / "batch.json").read_text())["videos"]
    assert [Path(v["video"]).name for v in rows] == ["clip.mp4"] and rows[0]["state"] == "done"


def test_no_videos_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli(tmp_path / "empty", "--renderer", "proxy", "--output-dir", tmp_path / "out")
    assert r.returncode == 1 and "No videos found" in r.stderr and "Traceback" not in r.stderr


def test_a_setting_that_fails_every_video_fails_the_batch_once(tmp_path):
    folder = _folder(tmp_path)
    r = cli(folder, *FLAGS, "--upscaler", "NoSuchUpscaler", "--output-dir", tmp_path / "out")
    assert r.returncode == 1 and r.stderr.count("NoSuchUpscaler") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()  # no job folder, no batch.json


def test_one_video_only_flags_are_refused_for_a_batch(tmp_path):
    folder = _folder(tmp_path)
    r = cli(folder, "--resume", "x", "--output-dir", tmp_path / "out")
    assert r.returncode == 2 and "--resume takes one video" in r.stderr
