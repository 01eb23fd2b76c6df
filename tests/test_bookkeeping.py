"""Per-frame bookkeeping: the append-only journal, crash safety (kill -9, torn lines, fsync order), old
manifests, damaged manifests, temporary files a killed run leaves, and how a run's end is recorded."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lib_vid2vid import workspace
from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import JOURNAL, MANIFEST, Job, find_unfinished, list_jobs
from tests.clips import make_two_shot_clip

ROOT = Path(__file__).resolve().parents[1]


def _job(tmp_path, name="clip.mp4"):
    return Job.create(tmp_path / "out", video_name=name, settings={"fps": 12.0}, source={"width": 64},
                      fingerprint={"path": str(tmp_path / name), "size": 1, "mtime": 1})


def _frame(v):
    return np.full((8, 8, 3), v, np.uint8)


def _settings(clip, out, **kw):
    base = dict(input=str(clip), output_dir=str(out), width=96, height=64, seed=1234, denoise=0.5,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _frames(job_dir, stage="pass1"):
    return {p.name: p.read_bytes() for p in sorted((job_dir / "frames" / stage).glob("*.png"))}


# ------------------------------------------------------------------------------------ flat cost

def test_a_finished_frame_appends_one_line_and_leaves_the_manifest_alone(tmp_path):
    """Frame 2000 costs what frame 10 costs: one journal line of the same size, no manifest rewrite."""
    job = _job(tmp_path)
    mf, journal = job.root / MANIFEST, job.root / JOURNAL
    growth = {}
    for i in range(2001):
        before_inode = mf.stat().st_ino
        before = journal.stat().st_size if journal.exists() else 0
        job.mark_done("pass1", i, {"seed": 7, "denoise": 0.5})
        if i in (10, 2000):
            growth[i] = journal.stat().st_size - before
            assert mf.stat().st_ino == before_inode, "manifest.json was rewritten for one frame"
    assert growth[10] > 0 and abs(growth[2000] - growth[10]) <= 4  # the frame number's digits only
    reopened = Job.open(job.root)
    assert reopened.manifest["stages"]["pass1"]["done"] == 2001
    assert reopened.manifest["frames"]["pass1"][2000] == {"seed": 7, "denoise": 0.5}


# ------------------------------------------------------------------------------------ crash safety

def test_a_torn_last_journal_line_is_ignored_and_cut_before_the_next_append(tmp_path):
    job = _job(tmp_path)
    for i in range(3):
        job.write_frame("pass1", i, _frame(i), {"seed": i})
    job.close()
    with open(job.root / JOURNAL, "ab") as fh:  # kill -9 in the middle of an append
        fh.write(b'{"stage":"pass1","frame":3,"rec')
    again = Job.open(job.root)
    assert again.frames_done("pass1") == 3 and len(again.manifest["frames"]["pass1"]) == 3
    again.write_frame("pass1", 3, _frame(3), {"seed": 3})
    again.close()
    final = Job.open(job.root)
    assert final.frames_done("pass1") == 4
    assert final.manifest["frames"]["pass1"] == [{"seed": i} for i in range(4)]
    lines = (job.root / JOURNAL).read_bytes().splitlines()
    assert len(lines) == 4 and all(json.loads(ln)["stage"] == "pass1" for ln in lines)


def test_journal_is_compacted_when_superseded_lines_outnumber_live_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(workspace, "COMPACT_SLACK", 4)
    job = _job(tmp_path)
    for i in range(3):
        job.write_frame("pass1", i, _frame(i), {"seed": i})
    for k in range(12):  # the same frame rewritten again and again
        job.write_frame("pass1", 1, _frame(100 + k), {"seed": 100 + k}, overwrite=True)
    lines = (job.root / JOURNAL).read_bytes().splitlines()
    assert len(lines) <= 2 * 3 + 4 + 1
    m = Job.open(job.root).manifest
    assert m["stages"]["pass1"]["done"] == 3
    assert m["frames"]["pass1"] == [{"seed": 0}, {"seed": 111}, {"seed": 2}]


def test_truncate_stage_survives_reopening(tmp_path):
    job = _job(tmp_path)
    for i in range(5):
        job.write_frame("pass1", i, _frame(i), {"seed": i})
    job.truncate_stage("pass1", 2)
    m = Job.open(job.root).manifest
    assert m["stages"]["pass1"]["done"] == 2 and m["frames"]["pass1"] == [{"seed": 0}, {"seed": 1}]


def _fd_path(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd{fd}"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name file descriptors")
def test_frame_reaches_the_disk_before_the_journal_line_that_names_it(tmp_path, monkeypatch):
    """After a power loss the journal must not name a frame that is not on the disk: the frame's data and
    its rename (the folder's entry) are flushed before the journal line is written, which is flushed too."""
    job = _job(tmp_path)
    job.write_frame("pass1", 0, _frame(0))
    events = []
    real_fsync, real_replace, real_write = os.fsync, os.replace, os.write

    def fsync(fd):
        events.append(("fsync", _fd_path(fd)))
        return real_fsync(fd)

    def replace(a, b, *args, **kw):
        events.append(("rename", str(b)))
        return real_replace(a, b, *args, **kw)

    def write(fd, data):
        events.append(("write", _fd_path(fd)))
        return real_write(fd, data)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "write", write)
    job.write_frame("pass1", 1, _frame(1), {"seed": 1})
    frame = str(job.frame_path("pass1", 1))
    folder = str(job.frame_path("pass1", 1).parent)
    journal = str(job.root / JOURNAL)

    def at(event):
        assert event in events, f"{event} missing from {events}"
        return events.index(event)

    data_synced = next(i for i, (k, p) in enumerate(events) if k == "fsync" and p.endswith(".tmp"))
    assert data_synced < at(("rename", frame)) < at(("fsync", folder)) < at(("write", journal))
    assert at(("write", journal)) < at(("fsync", journal))

    events.clear()
    job.set_status("running")
    mf = str(job.root / MANIFEST)
    synced = next(i for i, (k, p) in enumerate(events) if k == "fsync" and ".manifest.json." in p)
    assert synced < at(("rename", mf)) < at(("fsync", str(job.root)))


# ------------------------------------------------------------------------------------ old jobs

def _as_format_1(job_dir):
    """Rewrite a job folder as vid2vid wrote it before the journal: per-frame state inside manifest.json."""
    job = Job.open(job_dir)
    m = dict(job.manifest)
    m["format"] = 1
    (job_dir / MANIFEST).write_text(json.dumps(m, indent=1))
    (job_dir / JOURNAL).unlink()
    return m


def test_an_old_manifest_with_per_frame_state_opens_and_is_migrated_on_the_first_write(tmp_path):
    job = _job(tmp_path)
    for i in range(3):
        job.write_frame("pass1", i, _frame(i), {"seed": i})
    job.close()
    old = _as_format_1(job.root)
    opened = Job.open(job.root)
    assert opened.frames_done("pass1") == 3 and opened.manifest["frames"]["pass1"] == old["frames"]["pass1"]
    assert not (job.root / JOURNAL).exists(), "opening (e.g. to list jobs) must not write"
    opened.write_frame("pass1", 3, _frame(3), {"seed": 3})
    on_disk = json.loads((job.root / MANIFEST).read_text())
    assert on_disk["format"] == 2 and "frames" not in on_disk
    again = Job.open(job.root)
    assert again.frames_done("pass1") == 4 and again.manifest["frames"]["pass1"] == [{"seed": i} for i in range(4)]


def test_an_old_job_resumes_byte_exact(clip, tmp_path):
    full = run_job(_settings(clip, tmp_path / "a", max_frames=10), ProxyRenderer())
    s = _settings(clip, tmp_path / "b", max_frames=10)
    seen = {"n": 0}
    part = run_job(s, ProxyRenderer(), should_stop=lambda: seen["n"] >= 4, progress=lambda p: seen.update(n=p.done))
    assert part.status == "interrupted"
    _as_format_1(part.job_dir)
    r = ProxyRenderer()
    resumed = run_job(s, r)
    assert resumed.job_dir == part.job_dir and resumed.status == "done" and r.calls == 6
    assert _frames(resumed.job_dir) == _frames(full.job_dir)
    m = Job.open(resumed.job_dir).manifest
    assert len(m["frames"]["pass1"]) == 10 and m["format"] == 2


# ------------------------------------------------------------------------------------ damaged manifests

@pytest.mark.parametrize("text", ["[1, 2, 3]", "null", "7", '"job"', '{"stages": [1]}', '{"stages": {"pass1": 3}}'],
                         ids=["list", "null", "number", "string", "stages-list", "stage-number"])
def test_a_manifest_that_is_json_but_not_a_job_manifest(tmp_path, text, caplog):
    good = _job(tmp_path)
    bad = _job(tmp_path, "other.mp4")
    (bad.root / MANIFEST).write_text(text)
    with pytest.raises(Vid2VidError, match="damaged") as err:
        Job.open(bad.root)
    assert "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="lib_vid2vid"):
        jobs = list_jobs(tmp_path / "out")
    assert [j.root for j in jobs] == [good.root]
    assert any(bad.root.name in r.getMessage() for r in caplog.records)
    assert find_unfinished(tmp_path / "out", good.manifest["render_key"]).root == good.root


def test_cli_list_jobs_skips_a_manifest_that_is_not_an_object(tmp_path):
    good = _job(tmp_path)
    bad = _job(tmp_path, "other.mp4")
    (bad.root / MANIFEST).write_text("[1, 2, 3]")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "lib_vid2vid", "--list-jobs", "--output-dir", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert good.root.name in r.stdout and bad.root.name not in r.stdout
    assert "Traceback" not in r.stderr and bad.root.name in r.stderr


# ------------------------------------------------------------------------------------ temporary files

def test_only_our_own_temporary_names_are_removed(tmp_path):
    job = _job(tmp_path)
    ours = [job.root / ".clip-vid2vid.mp4.1a2b3c4d.part", job.root / ".clip-vid2vid-compare.mp4.00ff00ff.part",
            job.root / ".manifest.json.4242.tmp", job.root / ".clip-vid2vid.zip.tmp",
            job.stage_dir("pass1") / ".000003.png.977.tmp"]
    theirs = [job.root / "notes.part", job.root / ".hidden", job.root / ".x.mp4.zzzzzzzz.part",
              job.root / "keep.tmp", job.root / ".x.mp4.1a2b3c4d.part.bak"]
    for p in ours + theirs:
        p.write_bytes(b"x")
    png_seq = job.root / ".clip-vid2vid.0badc0de.part"  # a PNG-sequence output's temporary folder
    png_seq.mkdir()
    (png_seq / "000000.png").write_bytes(b"x")
    job.remove_temp_files()
    assert not [p for p in ours if p.exists()] and not png_seq.exists()
    assert all(p.exists() for p in theirs)
    assert (job.root / MANIFEST).is_file()


def _crash_script(settings: dict, kill_at: int) -> str:
    return textwrap.dedent(f"""
        import os, signal
        from lib_vid2vid.params import Settings
        from lib_vid2vid.pipeline import run_job
        from lib_vid2vid.proxy import ProxyRenderer

        class Killed(ProxyRenderer):
            def render(self, request):
                if request.frame_index == {kill_at}:
                    os.kill(os.getpid(), signal.SIGKILL)
                return super().render(request)

        run_job(Settings().replace(**{settings!r}), Killed())
    """)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_kill_9_then_resume_is_byte_exact_and_leaves_no_temporary_files(tmp_path):
    """A run killed at frame 9 (after the scene cut at 6 that colour coherence records) resumes to the same
    bytes as an uninterrupted run, and the half-written videos of the killed run are gone."""
    src = make_two_shot_clip(tmp_path / "cuts.mp4")
    base = dict(input=str(src), width=64, height=64, seed=1, denoise=0.3, colour_coherence=True,
                keyframe_mode="off")  # killed at the 9th render: frame 9
    full = run_job(Settings().replace(**base, output_dir=str(tmp_path / "a")), ProxyRenderer())
    settings = {**base, "output_dir": str(tmp_path / "b")}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", _crash_script(settings, kill_at=9)], env=env, timeout=120,
                       capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    (job_dir,) = (tmp_path / "b").iterdir()
    left = {p.name for p in job_dir.glob(".*.part")}
    assert left, "the streaming encoder's temporary videos should be there after kill -9"
    killed = Job.open(job_dir)
    assert killed.status == "running" and 0 < killed.frames_done("pass1") <= 9
    # a resumed run removes them when it starts, even if it is stopped again before the end
    again = run_job(Settings().replace(**settings), ProxyRenderer(), should_stop=lambda: True)
    assert again.status == "interrupted" and not left & {p.name for p in job_dir.iterdir()}
    resumed = run_job(Settings().replace(**settings), ProxyRenderer())
    assert resumed.job_dir == job_dir and resumed.status == "done"
    assert _frames(job_dir) == _frames(full.job_dir)
    assert not [p.name for p in job_dir.rglob(".*") if p.name.endswith((".part", ".tmp"))]


# ------------------------------------------------------------------------------------ how a run ends

class _RaiseAt(ProxyRenderer):
    def __init__(self, index, exc):
        super().__init__()
        self.index, self.exc = index, exc

    def render(self, request):
        if request.frame_index == self.index:
            raise self.exc
        return super().render(request)


def test_a_failure_fixed_later_leaves_no_stale_error(clip, tmp_path):
    s = _settings(clip, tmp_path / "out", max_frames=6)
    with pytest.raises(Vid2VidError):
        run_job(s, _RaiseAt(3, Vid2VidError("No space left on the disk while writing x: free some space")))
    (job_dir,) = (tmp_path / "out").iterdir()
    assert "No space" in Job.open(job_dir).manifest["error"]
    res = run_job(s, ProxyRenderer())
    m = json.loads((job_dir / MANIFEST).read_text())
    assert res.job_dir == job_dir and m["status"] == "done" and "error" not in m


def test_ctrl_c_twice_records_an_interrupted_job_that_resumes(clip, tmp_path):
    full = run_job(_settings(clip, tmp_path / "a", max_frames=8), ProxyRenderer())
    s = _settings(clip, tmp_path / "b", max_frames=8)
    with pytest.raises(KeyboardInterrupt):
        run_job(s, _RaiseAt(4, KeyboardInterrupt()))
    (job_dir,) = (tmp_path / "b").iterdir()
    m = json.loads((job_dir / MANIFEST).read_text())
    assert m["status"] == "interrupted" and "error" not in m
    assert "resume" in (job_dir / "job.log").read_text()
    res = run_job(s, ProxyRenderer())
    assert res.job_dir == job_dir and res.status == "done"
    assert _frames(job_dir) == _frames(full.job_dir)


def test_a_run_that_ends_leaves_one_compacted_line_per_stage_and_more_frames_append_after_it(tmp_path):
    job = _job(tmp_path)
    for i in range(5):
        job.write_frame("pass1", i, _frame(i), {"seed": i})
    job.write_frame("finished", 0, _frame(9))  # a post stage: frames without records
    job.set_status("interrupted")
    lines = [json.loads(ln) for ln in (job.root / JOURNAL).read_bytes().splitlines()]
    assert lines == [{"stage": "pass1", "done": 5, "records": [{"seed": i} for i in range(5)]},
                     {"stage": "finished", "done": 1}]
    job.close()
    again = Job.open(job.root)
    again.truncate_stage("pass1", 4)
    again.write_frame("pass1", 4, _frame(40), {"seed": 40}, overwrite=True)
    again.write_frame("pass1", 5, _frame(5), {"seed": 5})
    again.close()
    m = Job.open(job.root).manifest
    assert m["stages"]["pass1"]["done"] == 6 and m["stages"]["finished"]["done"] == 1
    assert m["frames"]["pass1"] == [{"seed": i} for i in range(4)] + [{"seed": 40}, {"seed": 5}]
    assert "finished" not in m["frames"]
