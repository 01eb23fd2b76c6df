"""A batch of videos, and what a job says about the host, inside a real WebUI (A1111 and/or Forge) on the CPU.

The WebUI starts with a CodeFormer folder whose only model file is not a model, as when a download broke:
"Restore faces" then does nothing (the WebUI logs "Unable to load face-restoration model" and still writes
"Face restoration: CodeFormer" into every infotext), and the job must say so once. Nothing is downloaded: the
WebUI finds a file and never asks the network.
"""

from __future__ import annotations

import json
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
import requests

from lib_vid2vid import params, video
from lib_vid2vid.workspace import read_png_text

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def webui_args(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codeformer")
    (folder / "codeformer-v0.1.0.pth").write_bytes(b"not a model: the download broke off")
    return ["--codeformer-models-path", str(folder)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory, webui_host):
    """A folder with a portrait clip (3 frames), a landscape clip (the host's interrupt_frames) and a corrupt clip
    (frames 2.. undecodable), and the batch's long side: at least 96 so that portrait and landscape differ."""
    from tests.clips import make_clip, make_corrupt_clip

    folder = tmp_path_factory.mktemp("batch") / "shoot"
    folder.mkdir()
    make_clip(folder / "a_portrait.mp4", n_frames=3, size=(64, 96), fps=Fraction(12))
    make_clip(folder / "b_landscape.mp4", n_frames=webui_host.interrupt_frames, size=(96, 64), fps=Fraction(12))
    make_corrupt_clip(folder / "c_corrupt.mp4", k=2, n_frames=6, size=(64, 64), fps=Fraction(12), audio=False)
    return folder, max(96, webui_host.interrupt_size)


def _request(webui, source, out_dir, *, side, steps, **settings):
    s = params.Settings().replace(**{"keyframe_mode": "off", **settings, "input": ""})  # every frame rendered
    args = params.api_args(s)
    args[params.api_arg_names().index("input")] = source  # a folder on the server, or a list of videos
    return {
        "init_images": [], "prompt": "a watercolour painting", "negative_prompt": "", "steps": steps,
        "cfg_scale": 5, "width": side, "height": side, "denoising_strength": 0.5, "seed": 42,
        "sampler_name": "Euler", "script_name": "vid2vid", "script_args": args,
        "override_settings": {"vid2vid_output_dir": str(out_dir)}, "override_settings_restore_afterwards": True,
    }


def _post(webui, body, timeout=1200):
    r = requests.post(webui["url"] + "/sdapi/v1/img2img", json=body, timeout=timeout)
    assert r.status_code == 200, r.text[:2000]
    return json.loads(r.json()["info"])["extra_generation_params"]


def _frames(job_dir) -> list[bytes]:
    return [p.read_bytes() for p in sorted((Path(job_dir) / "frames" / "pass1").glob("*.png"))]


def _is_landscape(width, height) -> bool:
    return width > height


def test_batch_interrupt_in_the_second_video_then_generate_again_resumes_it(webui, clips):
    host = webui["host"]
    folder, side = clips
    n = host.interrupt_frames
    out = webui["tmp"] / "out_batch"
    body = _request(webui, str(folder), out, side=side, steps=host.interrupt_steps)

    # 1. Generate; Interrupt while the second video renders
    result, seen = {}, []
    t = threading.Thread(target=lambda: result.setdefault("reply", _post(webui, body)))
    t.start()
    deadline = time.time() + 600
    while time.time() < deadline and t.is_alive():
        prog = requests.get(webui["url"] + "/sdapi/v1/progress?skip_current_image=true", timeout=30).json()
        text = prog.get("textinfo") or ""
        seen.append(text)
        if "video 2/3 (b_landscape.mp4)" in text and prog["state"].get("job_no", 0) >= host.interrupt_after:
            break
        time.sleep(0.05)
    requests.post(webui["url"] + "/sdapi/v1/interrupt", timeout=30)
    t.join(timeout=1200)
    first = result["reply"]
    assert any(s.startswith("vid2vid video 2/3 (b_landscape.mp4), pass1: frame ") for s in seen), seen[-5:]
    assert first["vid2vid_status"] == "interrupted", first["vid2vid_info"]
    rows = first["vid2vid_videos"]
    assert [Path(r["video"]).name for r in rows] == ["a_portrait.mp4", "b_landscape.mp4", "c_corrupt.mp4"]
    assert [r["state"] for r in rows] == ["done", "interrupted", "pending"], first["vid2vid_info"]
    assert 1 <= rows[1]["frames_done"] < n and rows[2]["job_dir"] is None
    assert "press Generate again to resume the batch" in first["vid2vid_info"]
    portrait, landscape = rows[0], rows[1]
    assert max(portrait["width"], portrait["height"]) == max(landscape["width"], landscape["height"]) == side
    assert not _is_landscape(portrait["width"], portrait["height"])  # each keeps its own aspect ratio
    assert _is_landscape(landscape["width"], landscape["height"])
    probe = video.probe(portrait["output"])
    assert (probe.width, probe.height, probe.frame_count) == (portrait["width"], portrait["height"], 3)
    frames_before = _frames(landscape["job_dir"])
    assert len(frames_before) == landscape["frames_done"]

    # 2. Generate again, the same request: the first video is skipped, the second resumed, the third fails
    again = _post(webui, body)
    rows2 = again["vid2vid_videos"]
    assert [r["state"] for r in rows2] == ["skipped", "done", "failed"], again["vid2vid_info"]
    assert again["vid2vid_status"] == "failed"
    assert rows2[0]["job_dir"] == portrait["job_dir"] and rows2[0]["frames_done"] == 3
    assert rows2[1]["job_dir"] == landscape["job_dir"]  # resumed, not started anew
    assert rows2[1]["frames_done"] == rows2[1]["total"] == n
    probe = video.probe(rows2[1]["output"])
    assert (probe.width, probe.height, probe.frame_count) == (landscape["width"], landscape["height"], n)
    resumed = _frames(landscape["job_dir"])
    assert resumed[:len(frames_before)] == frames_before  # finished frames are never rewritten
    error = rows2[2]["error"]
    assert "\n" not in error and "c_corrupt.mp4" in error and "frame 2" in error, error
    failed_lines = [ln for ln in again["vid2vid_info"].splitlines() if "c_corrupt.mp4" in ln]
    assert len(failed_lines) == 1 and "failed" in failed_lines[0] and error in failed_lines[0]
    summary = json.loads((out / "batch.json").read_text())
    assert [v["state"] for v in summary["videos"]] == ["skipped", "done", "failed"]
    assert summary["counts"] == {"skipped": 1, "done": 1, "failed": 1}
    assert again["vid2vid_batch"] == str(out / "batch.json")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        Path(r["job_dir"]).name for r in rows2)  # one job folder per video, none extra

    # 3. byte for byte what an uninterrupted run of that video makes (a batch of one, in another folder)
    fresh = _post(webui, _request(webui, [str(folder / "b_landscape.mp4")], webui["tmp"] / "out_fresh", side=side,
                                  steps=host.interrupt_steps))
    (row,) = fresh["vid2vid_videos"]
    assert row["state"] == "done" and (row["width"], row["height"]) == (landscape["width"], landscape["height"])
    assert _frames(row["job_dir"]) == resumed and len(resumed) == n


def test_restore_faces_that_does_nothing_is_said_once(webui, clips):
    folder, _ = clips
    body = _request(webui, "", webui["tmp"] / "out_faces", side=64, steps=2)
    body["script_args"][params.api_arg_names().index("input")] = str(folder / "a_portrait.mp4")
    body.update(restore_faces=True)
    body["override_settings"]["face_restoration_model"] = "CodeFormer"
    extra = _post(webui, body)
    info = extra["vid2vid_info"]
    assert extra["vid2vid_status"] == "done", info
    said = "could not load the CodeFormer model"
    notices = extra["vid2vid_notices"]
    assert len(notices) == 1 and said in notices[0] and '"Restore faces" is on' in notices[0], notices
    job_dir = Path(extra["vid2vid_job_dir"])
    assert info.count(said) == 1  # the result the UI shows
    assert (job_dir / "job.log").read_text().count(said) == 1  # once for the job, not once per frame
    assert json.loads((job_dir / "manifest.json").read_text())["warnings"] == notices
    assert "Unable to load face-restoration model" in webui["log"].read_text(errors="replace")
    # what the notice is about: the frame's own infotext claims a restoration that did not happen
    text = read_png_text(job_dir / "frames" / "pass1" / "000001.png")["parameters"]
    assert "Face restoration: CodeFormer" in text
    assert extra["vid2vid_frame_params"].get("Face restoration") == "CodeFormer"
