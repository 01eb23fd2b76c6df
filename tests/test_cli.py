"""The headless CLI as a user runs it: python -m lib_vid2vid ..."""

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from lib_vid2vid import video

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lib_vid2vid", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_headless_run_with_proxy_renderer(clip, tmp_path):
    r = cli(clip, "--renderer", "proxy", "--prompt", "watercolour", "--fps", "12", "--width", "96",
            "--height", "64", "--output-dir", tmp_path / "out", "--quiet")
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("done:")][0]
    path = Path(line.split("-> ", 1)[1])
    info = video.probe(path)
    assert info.frame_count == 12 and info.audio
    r = cli("--list-jobs", "--output-dir", tmp_path / "out")
    assert "done" in r.stdout and "pass1 12/12" in r.stdout


@pytest.mark.parametrize("flow", ["accurate", "fast"])
def test_a_banner_video_runs_the_default_job_to_the_end(tmp_path, flow):
    """A 16:1 video at the smallest height (64 px): its scene-cut test, keyframe choice, half-size flows and report
    all compute DIS flows of frames below the preset's limit, which crashed the process (OpenCV's DIS; a segmentation
    fault before the first render, nothing said)."""
    from tests.clips import make_clip

    src = make_clip(tmp_path / "banner.mp4", n_frames=12, size=(512, 32), audio=False)
    r = cli(src, "--renderer", "proxy", "--prompt", "x", "--width", "1024", "--keyframe-flow", flow,
            "--output-dir", tmp_path / "out", "--quiet")
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-400:]}"
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("done:")][0]
    info = video.probe(Path(line.split("-> ", 1)[1]))
    assert (info.width, info.height, info.frame_count) == (1024, 64, 12)


def test_a_default_run_says_it_renders_keyframes_only(clip, tmp_path):
    """The default renders keyframes: the CLI says how many before the first render, and how to render every
    frame; with keyframes off it has nothing to say."""
    args = [clip, "--renderer", "proxy", "--fps", "12", "--width", "96", "--height", "64", "--quiet"]
    r = cli(*args, "--output-dir", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("keyframes: ")]
    n = int(line.split()[1])
    assert 1 < n < 12 and f"{n} of 12 frames" in line and "keyframe_mode off renders every frame" in line
    r = cli(*args, "--keyframe-mode", "off", "--output-dir", tmp_path / "b")
    assert r.returncode == 0 and "keyframes" not in r.stderr, r.stderr


def _readme(path: Path) -> Path:
    """The project's README saved as ``path`` (FFmpeg's tty demuxer opens a .txt as ANSI-art frames)."""
    path.write_text((ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: (d / "notes.mp4").write_text("hello") and d / "notes.mp4", "not a video"),
        (lambda d: _readme(d / "README.txt"), "is not a video (ffmpeg reads it as a text file"),
    ],
    ids=["missing", "text-file", "readme-txt"],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, make, fragment):
    path = make(tmp_path)
    r = cli(path, "--renderer", "proxy", "--output-dir", tmp_path / "out")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0].lower()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_setting_names_the_flag(clip, tmp_path):
    r = cli(clip, "--renderer", "proxy", "--denoise", "2", "--output-dir", tmp_path / "out")
    assert r.returncode == 2 and "--denoise" in r.stderr and "denoise" in r.stderr and "maximum" in r.stderr and "Traceback" not in r.stderr


def test_size_limits_are_enforced(clip, tmp_path):
    r = cli(clip, "--renderer", "proxy", "--width", "8192", "--output-dir", tmp_path / "out")
    assert r.returncode == 2 and "width" in r.stderr and "4096" in r.stderr


def test_unwritable_output_folder(clip, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    r = cli(clip, "--renderer", "proxy", "--output-dir", blocker / "x")
    assert r.returncode == 1 and "output folder" in r.stderr and "Traceback" not in r.stderr


def test_help_lists_settings_by_tab():
    r = cli("--help")
    assert r.returncode == 0
    for text in ("Video:", "Sampling:", "--fps", "--init-mode", "--api-url", "--resume"):
        assert text in r.stdout


BAD_NUMBERS = [
    ("--denoise", "abc", "not a number"),
    ("--steps", "1e3", "not a whole number"),
    ("--width", "64.5", "not a whole number"),
    ("--fps", "nan", "not a number"),
    ("--start", "nan", "not a number"),
    ("--end", "inf", "not a number"),
    ("--max-frames", "x", "not a whole number"),
    ("--cfg-scale", "-inf", "not a number"),
    ("--denoise", "2", "above the maximum 1"),
    ("--timeout", "0", "above 0"),
    ("--timeout", "-1", "above 0"),
    ("--timeout", "nan", "above 0"),
    ("--timeout", "inf", "above 0"),
    ("--timeout", "soon", "not a number"),
]


@pytest.mark.parametrize("flag,value,fragment", BAD_NUMBERS, ids=[f"{f}={v}" for f, v, _ in BAD_NUMBERS])
def test_bad_number_flag_is_one_line_and_exit_2(tmp_path, capsys, flag, value, fragment):
    from lib_vid2vid.__main__ import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as ex:
        main([str(tmp_path / "clip.mp4"), "--renderer", "proxy", "--output-dir", str(out), f"{flag}={value}"])
    assert ex.value.code == 2
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("error: ") and flag in lines[0] and fragment in lines[0], lines[0]
    assert not out.exists()


def test_bad_number_flag_from_the_shell_has_no_traceback(tmp_path):
    r = cli(tmp_path / "clip.mp4", "--renderer", "proxy", "--steps", "1e3")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--steps" in r.stderr


@pytest.mark.parametrize("flag,value,fragment", [
    ("--denoise-schedule", "0.2-frame*0.1", "denoise_schedule: gives -0.1 at frame 3"),
    ("--prompt-folder", "nowhere", "prompt_folder: "),
])
def test_plan_dependent_errors_leave_no_job_folder(clip, tmp_path, flag, value, fragment):
    r = cli(clip, "--renderer", "proxy", "--max-frames", "8", "--output-dir", tmp_path / "out", flag, value,
            cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_input_is_refused_at_once(tmp_path):
    fifo = tmp_path / "input.mp4"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lib_vid2vid", str(fifo), "--renderer", "proxy",
                             "--output-dir", str(tmp_path / "out")], stderr=subprocess.PIPE, text=True, env=env)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the CLI blocked on a FIFO input")
    assert proc.returncode == 1 and err.strip().splitlines() == [err.strip()]
    assert "named pipe" in err and "not a regular file" in err
    assert not (tmp_path / "out").exists()


def test_a_job_puts_the_previous_ctrl_c_handler_back(tmp_path):
    """The CLI's Ctrl-C handler lives only while a job runs: a program (or test run) that calls main() keeps its own."""
    import signal

    from lib_vid2vid.__main__ import main
    from tests.clips import make_clip

    clip = make_clip(tmp_path / "in.mp4", n_frames=2)
    before = signal.getsignal(signal.SIGINT)
    assert main([str(clip), "--renderer", "proxy", "--prompt", "x", "--output-dir", str(tmp_path / "out"),
                 "--quiet", "--no-report", "--no-comparison-video"]) == 0
    assert signal.getsignal(signal.SIGINT) is before


def test_a_rate_may_be_given_as_a_fraction():
    """The messages suggest "30000/1001" for the exact NTSC rate: the flag takes it (and a bad one stays one line)."""
    from lib_vid2vid import params
    from lib_vid2vid.__main__ import build_parser
    from lib_vid2vid.video_resample import to_fraction

    s = params.settings_from_cli(build_parser().parse_args(["a.mp4", "--fps", "30000/1001"]))
    assert to_fraction(s.video.fps, "fps") == Fraction(30000, 1001)
    with pytest.raises(params.SettingsError, match="not a number"):
        params.Settings().replace(fps="30000/0")


def test_resume_says_which_setting_flags_it_ignores(tmp_path, capsys):
    """A job resumed by name runs with its own settings: flags that would change them are named, not dropped in
    silence (the picks of its candidates and the folder it is in are taken)."""
    from lib_vid2vid.__main__ import _ignored_with_resume, build_parser, main

    args = build_parser().parse_args(["--resume", "J", "--fps", "10", "--keyframe-picks", "4:1", "--output-dir", "o",
                                      "--prompt", "z", "--renderer", "proxy"])
    assert _ignored_with_resume(args) == ["--fps", "--prompt"]
    assert _ignored_with_resume(build_parser().parse_args(["--resume", "J", "--quiet"])) == []
    main(["--resume", str(tmp_path / "nowhere"), "--renderer", "proxy", "--output-dir", str(tmp_path), "--steps",
          "9"])
    assert "ignored: --steps" in capsys.readouterr().err
