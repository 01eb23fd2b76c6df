"""Job folders: naming, manifest, atomic frame writes, resume bookkeeping, write errors."""

import errno
import json

import numpy as np
import pytest

from lib_vid2vid import workspace
from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.workspace import Job, find_unfinished, list_jobs, render_key


def _job(tmp_path, name="My clip (1).mp4", settings=None):
    return Job.create(tmp_path / "out", video_name=name, settings=settings or {"fps": 12.0},
                      source={"width": 64}, fingerprint={"path": str(tmp_path / name), "size": 1, "mtime": 1})


def _frame(v):
    return np.full((16, 24, 3), v, np.uint8)


def test_job_folder_name_and_manifest(tmp_path):
    job = _job(tmp_path)
    assert job.root.parent == tmp_path / "out"
    import re

    assert re.fullmatch(r"\d{8}-\d{6}-My_clip_1-[0-9a-f]{6}", job.root.name)
    m = json.loads((job.root / "manifest.json").read_text())
    assert m["settings"] == {"fps": 12.0} and m["source"] == {"width": 64}
    assert {"lib_vid2vid", "python", "numpy", "av", "opencv"} <= set(m["versions"])
    assert m["status"] == "created" and m["id"] in job.root.name


def test_two_jobs_never_share_a_folder(tmp_path):
    a, b = _job(tmp_path), _job(tmp_path)
    assert a.root != b.root
    a.write_frame("pass1", 0, _frame(1))
    assert not (b.root / "frames" / "pass1" / "000000.png").exists()


def test_frames_are_zero_padded_pngs_written_atomically(tmp_path):
    job = _job(tmp_path)
    p = job.write_frame("pass1", 0, _frame(7), {"seed": 3})
    assert p.name == "000000.png"
    assert np.array_equal(job.read_frame("pass1", 0), _frame(7))
    assert [f.name for f in p.parent.iterdir()] == ["000000.png"]  # no temporary left behind
    m = Job.open(job.root).manifest  # as a later run reads it back
    assert m["stages"]["pass1"]["done"] == 1 and m["frames"]["pass1"][0] == {"seed": 3}


def test_a_finished_frame_is_never_overwritten_unless_asked(tmp_path):
    job = _job(tmp_path)
    job.write_frame("pass1", 0, _frame(1))
    with pytest.raises(Vid2VidError, match="already finished"):
        job.write_frame("pass1", 0, _frame(2))
    assert np.array_equal(job.read_frame("pass1", 0), _frame(1))
    job.write_frame("pass1", 0, _frame(2), overwrite=True)
    assert np.array_equal(job.read_frame("pass1", 0), _frame(2))


def test_frames_done_counts_contiguous_frames_that_exist(tmp_path):
    job = _job(tmp_path)
    for i in range(4):
        job.write_frame("pass1", i, _frame(i))
    assert job.frames_done("pass1") == 4
    job.frame_path("pass1", 2).unlink()  # a frame lost on disk: resume must redo it
    assert job.frames_done("pass1") == 2
    reopened = Job.open(job.root)
    assert reopened.frames_done("pass1") == 2


def test_failed_write_keeps_earlier_frames_and_says_disk_full(tmp_path, monkeypatch):
    job = _job(tmp_path)
    job.write_frame("pass1", 0, _frame(5))

    real_open = open

    def full_disk(path, mode="r", *a, **kw):
        if "w" in mode and str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *a, **kw)

    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.raises(Vid2VidError) as err:
        job.write_frame("pass1", 1, _frame(6))
    monkeypatch.undo()
    msg = str(err.value)
    assert "No space left" in msg and "resume" in msg and "\n" not in msg
    assert np.array_equal(job.read_frame("pass1", 0), _frame(5))
    assert not job.frame_path("pass1", 1).exists()
    assert not [f for f in job.stage_dir("pass1").iterdir() if f.name.endswith(".tmp")]
    assert Job.open(job.root).frames_done("pass1") == 1


def test_output_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(Vid2VidError, match="choose another output folder"):
        Job.create(blocker / "sub", video_name="a.mp4", settings={}, source={},
                   fingerprint={"path": "a", "size": 1, "mtime": 1})


def test_find_unfinished_matches_render_settings_only(tmp_path):
    fp = {"path": "/v.mp4", "size": 10, "mtime": 5}
    s = {"denoise": 0.4, "crf": 18}
    job = Job.create(tmp_path, video_name="v.mp4", settings=s, source={}, fingerprint=fp)
    assert find_unfinished(tmp_path, render_key(s, fp)).root == job.root
    # export settings do not change the rendered frames: same job
    assert render_key({"denoise": 0.4, "crf": 30}, fp) == render_key(s, fp)
    assert render_key({"denoise": 0.5, "crf": 18}, fp) != render_key(s, fp)
    assert render_key(s, {**fp, "mtime": 6}) != render_key(s, fp)
    job.set_status("done")
    assert find_unfinished(tmp_path, render_key(s, fp)) is None


def test_resolve_by_name_id_or_path(tmp_path):
    job = _job(tmp_path)
    out = tmp_path / "out"
    assert Job.resolve(job.root, out).root == job.root
    assert Job.resolve(job.root.name, out).root == job.root
    assert Job.resolve(job.manifest["id"], out).root == job.root
    with pytest.raises(Vid2VidError, match="No job"):
        Job.resolve("nope", out)
    assert [j.root for j in list_jobs(out)] == [job.root]


def test_damaged_manifest_is_a_clear_error(tmp_path):
    job = _job(tmp_path)
    (job.root / "manifest.json").write_text("{not json")
    with pytest.raises(Vid2VidError, match="damaged"):
        Job.open(job.root)


def test_png_encoding_is_deterministic():
    img = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert workspace.encode_png(img) == workspace.encode_png(img.copy())


def test_truncate_stage_forgets_later_frames_and_lets_them_be_written_again(tmp_path):
    job = _job(tmp_path)
    for i in range(6):
        job.write_frame("pass1", i, _frame(i))
    job.truncate_stage("pass1", 3)
    # files 3..5 stay on disk but are no longer believed, also after reopening the job
    assert all(job.frame_path("pass1", i).is_file() for i in range(6))
    reopened = Job.open(job.root)
    assert reopened.frames_done("pass1") == 3
    assert [reopened.is_done("pass1", i) for i in range(6)] == [True] * 3 + [False] * 3
    # so a resume renders them again without being told to overwrite
    for i in range(3, 6):
        reopened.write_frame("pass1", i, _frame(10 + i))
    assert np.array_equal(reopened.read_frame("pass1", 4), _frame(14))
    assert Job.open(job.root).frames_done("pass1") == 6
    with pytest.raises(Vid2VidError, match="already finished"):
        reopened.write_frame("pass1", 1, _frame(0))


def test_frames_must_be_recorded_in_order(tmp_path):
    job = _job(tmp_path)
    job.write_frame("pass1", 0, _frame(0))
    with pytest.raises(ValueError, match="frame 2 of pass1 written before frame 1"):
        job.write_frame("pass1", 2, _frame(2))
    reopened = Job.open(job.root)
    assert reopened.frames_done("pass1") == 1 and not reopened.is_done("pass1", 2)
    job.write_frame("pass1", 1, _frame(1))
    job.write_frame("pass1", 2, _frame(2))
    assert Job.open(job.root).frames_done("pass1") == 3
