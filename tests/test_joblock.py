"""One writer per job folder (lib_vid2vid/joblock.py): in one process, across processes, after kill -9."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib_vid2vid.joblock import LOCK_NAME, JobLock, JobRunning
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job
from tests.doubles import StopAfter
from tests.lock_worker import settings as worker_settings

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.skipif(os.name == "nt", reason="kill -9 and flock are POSIX")


def _unfinished(clip, out, frames=2):
    stop = StopAfter(frames)
    res = run_job(worker_settings(str(clip), str(out)), ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert res.status == "interrupted" and res.frames_done == frames
    return res.job_dir


def _hold_in_child(job_dir):
    """A child process that takes the lock, says "locked", and sleeps."""
    code = ("import sys, time; from lib_vid2vid.joblock import JobLock; held = JobLock.acquire(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(job_dir)], stdout=subprocess.PIPE, text=True,
                             env=ENV, cwd=ROOT)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_lock_is_exclusive_and_names_its_holder(tmp_path):
    lock = JobLock.acquire(tmp_path)
    with pytest.raises(JobRunning) as err:
        JobLock.acquire(tmp_path)  # a second tab in the same process
    text = str(err.value)
    assert f"PID {os.getpid()} on {socket.gethostname()}, started 20" in text and "--new" in text
    assert "\n" not in text
    lock.release()
    with JobLock.acquire(tmp_path):
        pass
    assert (tmp_path / LOCK_NAME).exists()  # the file stays; only the lock goes


def test_lock_held_by_another_process_then_kill_9_frees_it_at_once(tmp_path):
    child = _hold_in_child(tmp_path)
    try:
        with pytest.raises(JobRunning) as err:
            JobLock.acquire(tmp_path)
        assert f"PID {child.pid} on" in str(err.value)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    JobLock.acquire(tmp_path).release()  # no waiting, no stale lock


def test_a_running_job_is_not_resumed_twice_and_new_starts_another(clip, tmp_path):
    out = tmp_path / "out"
    job_dir = _unfinished(clip, out)
    s = worker_settings(str(clip), str(out))
    holder = JobLock.acquire(job_dir)
    try:
        with pytest.raises(JobRunning, match=f"Job {job_dir.name} is running"):
            run_job(s, ProxyRenderer())
        with pytest.raises(JobRunning):
            run_job(s, ProxyRenderer(), resume=job_dir.name)  # resuming a listed job respects the lock too
        other = run_job(s, ProxyRenderer(), new=True)
        assert other.status == "done" and other.job_dir != job_dir
    finally:
        holder.release()
    assert Job.open(job_dir).frames_done("pass1") == 2  # nobody wrote into it
    r = ProxyRenderer()
    res = run_job(s, r)
    assert res.job_dir == job_dir and res.frames_done == 8 and r.calls == 6
    JobLock.acquire(job_dir).release()  # run_job let go of it


def test_lock_is_released_when_a_run_fails(clip, tmp_path):
    from lib_vid2vid.errors import RendererError

    class Failing(ProxyRenderer):
        def render(self, request):
            raise RendererError("the WebUI went away")

    with pytest.raises(RendererError):
        run_job(worker_settings(str(clip), str(tmp_path / "out")), Failing())
    job_dir = next((tmp_path / "out").iterdir())
    JobLock.acquire(job_dir).release()


def test_cli_second_run_is_one_line_and_non_zero(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    out = tmp_path / "out"
    job_dir = _unfinished(clip, out)
    argv = [str(clip), "--renderer", "proxy", "--width", "96", "--height", "64", "--seed", "1234", "--denoise",
            "0.5", "--max-frames", "8", "--keyframe-mode", "off", "--output-dir", str(out), "--quiet"]
    with JobLock.acquire(job_dir):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: Job {job_dir.name} is running (PID {os.getpid()}") and "\n" not in err
        assert main([*argv, "--new"]) == 0
    assert len(list(out.iterdir())) == 2


def _workers(clip, out, count, n, delay, hold_at=None):
    go = out.parent / "go"
    hold = [] if hold_at is None else [str(hold_at)]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.lock_worker", str(clip), str(out), str(count), str(delay),
                               str(go), *hold], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                              cwd=ROOT)
             for _ in range(n)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    return procs


def test_two_processes_on_one_job_exactly_one_renders(clip, tmp_path):
    out = tmp_path / "out"
    job_dir = _unfinished(clip, out)
    count = tmp_path / "renders.txt"
    procs = _workers(clip, out, count, 2, delay=0.3)
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    winner = next(r for r, p in zip(results, procs) if r[0] == 0)
    loser, loser_proc = next((r, p) for r, p in zip(results, procs) if r[0] == 1)
    winner_pid = next(p.pid for r, p in zip(results, procs) if r[0] == 0)
    assert winner[1].strip() == str(job_dir)
    line = loser[2].strip()
    assert line.startswith(f"Job {job_dir.name} is running (PID {winner_pid} on ") and "\n" not in line
    assert count.read_text().split() == [str(i) for i in range(2, 8)]  # 6 renders for 6 missing frames
    assert [d.name for d in out.iterdir()] == [job_dir.name]
    assert Job.open(job_dir).status == "done"


def _frames_done(out) -> int:
    """Frames of pass1 the (only) job under ``out`` has, as a resume would count them: files named by a whole
    journal line (a frame's file is on the disk a moment before its line: the file alone does not count)."""
    dirs = list(out.iterdir()) if out.exists() else []
    if not dirs or not (dirs[0] / "manifest.json").is_file():
        return 0
    job = Job.open(dirs[0])
    try:
        return job.frames_done("pass1")
    finally:
        job.close()


def test_kill_9_mid_render_leaves_the_job_resumable_at_once(clip, tmp_path):
    out = tmp_path / "out"
    count = tmp_path / "renders.txt"
    (proc,) = _workers(clip, out, count, 1, delay=0.05, hold_at=2)  # frames 0 and 1 written, then stuck in 2
    deadline = time.monotonic() + 120  # a bound for a broken worker, not a timing: it waits for frame 2's render
    while _frames_done(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _frames_done(out) == 2 and proc.poll() is None, proc.poll() is not None and proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (job_dir,) = out.iterdir()
    assert (job_dir / LOCK_NAME).exists() and Job.open(job_dir).status == "running"
    JobLock.acquire(job_dir).release()  # the kernel dropped the dead run's lock: free at once, no stale-lock wait
    r = ProxyRenderer()
    res = run_job(worker_settings(str(clip), str(out)), r)
    assert res.job_dir == job_dir and res.status == "done" and res.frames_done == 8
    assert r.calls == 6  # only the missing frames: 2 (killed mid-render) to 7
    ref = run_job(worker_settings(str(clip), str(tmp_path / "ref")), ProxyRenderer())
    a = sorted((job_dir / "frames" / "pass1").glob("*.png"))
    b = sorted((ref.job_dir / "frames" / "pass1").glob("*.png"))
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]


def test_lock_is_released_when_a_resumed_job_cannot_start(clip, tmp_path):
    import shutil

    from lib_vid2vid.errors import Vid2VidError

    out = tmp_path / "out"
    job_dir = _unfinished(clip, out)
    shutil.move(clip, tmp_path / "moved.mp4")  # the source is gone: the resume fails after taking the lock
    with pytest.raises(Vid2VidError) as err:
        run_job(worker_settings(str(clip), str(out)), ProxyRenderer(), resume=job_dir.name)
    assert not isinstance(err.value, JobRunning)
    JobLock.acquire(job_dir).release()  # err still holds the failed run's frames: only an explicit release frees it


def test_registry_guards_where_flock_does_not_conflict_within_a_process(tmp_path, monkeypatch):
    """NFS emulates flock with POSIX locks, which never conflict within one process: the registry still does."""
    from lib_vid2vid import joblock

    monkeypatch.setattr(joblock, "_lock", lambda fd: None)
    with JobLock.acquire(tmp_path):
        with pytest.raises(JobRunning):
            JobLock.acquire(tmp_path)


def test_closing_a_job_frees_its_folder_even_while_it_is_referenced(tmp_path):
    job = Job.create(tmp_path, video_name="v.mp4", settings={}, source={}, fingerprint={"path": "v.mp4"}, lock=True)
    with pytest.raises(JobRunning):
        JobLock.acquire(job.root)  # locked from before its manifest existed
    job.close()
    JobLock.acquire(job.root).release()


def test_a_job_finished_by_another_run_meanwhile_is_not_resumed(clip, tmp_path, monkeypatch):
    from lib_vid2vid import pipeline

    out = tmp_path / "out"
    job_dir = _unfinished(clip, out)
    real = pipeline.find_unfinished

    def find_then_other_run_finishes(output_dir, key):
        found = real(output_dir, key)
        Job.open(found.root).set_status("done")  # between this run's look and its lock
        return found

    monkeypatch.setattr(pipeline, "find_unfinished", find_then_other_run_finishes)
    res = run_job(worker_settings(str(clip), str(out)), ProxyRenderer())
    assert res.job_dir != job_dir and res.frames_done == 8
    assert Job.open(job_dir).frames_done("pass1") == 2


def test_a_file_system_without_locks_runs_unprotected_and_says_so(clip, tmp_path, monkeypatch):
    import errno

    from lib_vid2vid import joblock

    def no_locks(fd):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(joblock, "_lock", no_locks)
    res = run_job(worker_settings(str(clip), str(tmp_path / "out")), ProxyRenderer())
    assert res.status == "done"
    warnings = Job.open(res.job_dir).manifest["warnings"]
    assert any(w.startswith("cannot lock ") and "no other run writes into this job" in w for w in warnings)


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_a_lock_taken_a_moment_ago_still_names_its_holder(tmp_path):
    # the holder locks first and writes its description just after: a second run that looks in between must wait
    # for the description instead of saying "holder not known yet"
    script = ("import fcntl, json, os, sys, time\n"
              "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
              "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
              "print('locked', flush=True)\n"
              "time.sleep(0.3)\n"
              "os.write(fd, json.dumps({'pid': os.getpid(), 'host': 'h', 'started': 's'}).encode())\n"
              "time.sleep(5)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "job.lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(JobRunning) as err:
            JobLock.acquire(tmp_path)
        assert f"(PID {holder.pid} on h" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def test_is_locked_tells_without_writing(tmp_path):
    """The Jobs tab asks whether a job is running: held by this process or another, free, or never locked;
    asking writes nothing into the job folder."""
    import textwrap

    from lib_vid2vid.joblock import JobLock, is_locked

    job = tmp_path / "job"
    job.mkdir()
    assert not is_locked(job) and not (job / "job.lock").exists()  # never locked: no file made
    lock = JobLock.acquire(job)
    assert is_locked(job)
    lock.release()
    before = (job / "job.lock").read_bytes()
    assert not is_locked(job) and (job / "job.lock").read_bytes() == before
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from lib_vid2vid.joblock import JobLock
        lock = JobLock.acquire({str(job)!r})
        print("locked", flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert is_locked(job)
    finally:
        holder.communicate("\n", timeout=30)
    assert not is_locked(job)
