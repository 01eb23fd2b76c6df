"""The result area's HTML (lib_vid2vid/ui_result.py) and the job report for a person (report.report_reading)."""

import html
import json
import re

from lib_vid2vid import ui_result
from lib_vid2vid.report import report_reading


def _url(path):
    return "file=" + path


def _job(tmp_path, name, *, outputs=("video", "comparison"), report=True):
    root = tmp_path / name
    root.mkdir()
    files = {"video": f"{name}-vid2vid.mp4", "comparison": f"{name}-vid2vid-compare.mp4",
             "zip": f"{name}-vid2vid.zip"}
    wanted = {k: files[k] for k in outputs}
    for f in wanted.values():
        (root / f).write_bytes(b"x")
    (root / "manifest.json").write_text(json.dumps({"outputs": wanted}))
    if report:
        (root / "report.json").write_text("{}")
    return root


def test_extract_reads_only_vid2vid_results():
    info = json.dumps({"extra_generation_params": {"vid2vid_status": "done", "Steps": 20}})
    assert ui_result.extract(info) == {"status": "done"}
    assert ui_result.extract(json.dumps({"extra_generation_params": {"Steps": 20}})) is None
    assert ui_result.extract("") is None and ui_result.extract("not json") is None


def test_job_files_lists_what_exists(tmp_path):
    root = _job(tmp_path, "a", outputs=("video", "zip"))
    files = ui_result.job_files(root)
    assert set(files) == {"video", "zip", "report"} and files["video"] == str(root / "a-vid2vid.mp4")
    assert ui_result.job_files(tmp_path / "missing") == {}


def test_a_batch_lists_every_video_with_its_state_and_player(tmp_path):
    a, b = _job(tmp_path, "a"), _job(tmp_path, "b")
    result = {"status": "interrupted", "videos": [
        {"video": "/in/a.mp4", "state": "done", "job_dir": str(a), "frames_done": 4, "total": 4},
        {"video": "/in/b.mp4", "state": "interrupted", "job_dir": str(b), "frames_done": 2, "total": 4},
        {"video": "/in/c.mp4", "state": "failed", "job_dir": None, "error": "Cannot read c.mp4: not a video"},
        {"video": "/in/d.mp4", "state": "pending", "job_dir": None}]}
    page = ui_result.result_html(result, _url)
    jobs = re.findall(r'<div class="vid2vid-job" data-state="(\w+)">', page)
    assert jobs == ["done", "interrupted", "failed", "pending"]
    players = re.findall(r'<video[^>]*id="(vid2vid_player-\d)"[^>]*src="([^"]+)"', page)
    assert players == [("vid2vid_player-1", "file=" + str(a / "a-vid2vid.mp4")),
                       ("vid2vid_player-2", "file=" + str(b / "b-vid2vid.mp4"))]
    assert "1. a.mp4" in page and "4. d.mp4" in page and "2/4 frames" in page
    assert "Cannot read c.mp4: not a video" in page and 'role="alert"' in page
    assert "Press Generate again to resume the batch" in page


def test_files_that_cannot_be_served_show_their_path(tmp_path):
    root = _job(tmp_path, "a")
    page = ui_result.result_html({"status": "done", "job_dir": str(root)}, lambda path: None)
    assert "<video" not in page and html.escape(str(root / "a-vid2vid.mp4")) in page and "(on the server)" in page


def test_text_is_escaped(tmp_path):
    page = ui_result.result_html({"status": "error", "error": "<script>alert(1)</script>"}, _url)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_report_reading_gives_the_scale_and_a_verdict():
    rep = {"warp_error": 0.0009, "flicker": 0.004, "fidelity": 0.69, "frames": 48, "size": [256, 144],
           "complete": True}
    text = report_reading(rep)
    first = text.splitlines()[0]
    assert first.startswith("Reading: steady, keeps the source's layout") and "48 frames at 256x144" in first
    assert "Warp error: 0.0009 - steady (4.3x below per-frame img2img)" in text
    assert "Flicker: 0.004 - some flicker (8.0x below per-frame img2img)" in text
    bad = report_reading({**rep, "warp_error": 0.008, "fidelity": 0.3})
    assert bad.startswith("Reading: flickers like plain per-frame img2img, the layout is mostly lost")
    assert "2.1x above it" in bad
    assert "<table" in report_reading(rep, html=True)
    worst = report_reading({**rep, "worst_frames": [[17, 0.0045], [3, 0.0018]]})
    assert "Least steady frames: 17, 3 - 5.0x the mean, 2.0x the mean" in worst
    assert "Scene cuts" not in worst
    cuts = report_reading({**rep, "scene_cuts": list(range(10, 150, 10))})
    assert "Scene cuts: 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120 and 2 more - 14 found in the source" in cuts
