"""What the WebUI shows of the keyframe strategy: the plan before rendering, candidates with a radio per keyframe,
flagged scene groups (lib_vid2vid/keyframe_view.py and its wiring in lib_vid2vid/ui.py)."""

from __future__ import annotations

import html.parser
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib_vid2vid import keyframe_view as kv
from lib_vid2vid import keyrun, params, ui, video
from lib_vid2vid.errors import SettingsError, Vid2VidError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job
from tests.doubles import StopAfter
from tests.test_keyframes import _pan_clip, _settings
from tests.test_ui import FakeGradio


def test_preview_shows_the_jobs_own_keyframes_with_reasons(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4")  # a cut at frame 10
    s = _settings(clip, tmp_path / "o")
    items, text = kv.preview(s, height=32)
    assert [c for _t, c in items] == ["0: start", "4: interval", "8: interval", "10: cut", "14: interval"]
    assert text.startswith("5 of 16 frames rendered (31%)") and "2 scene groups (frames 0-9, 10-15)" in text
    _items, text = kv.preview(s.replace(keyframe_folder="/data/keys"), height=32)  # restyled elsewhere
    assert text.startswith("5 of 16 frames (31%) read from /data/keys, none rendered, the others carried")
    src = dict(video.iter_frames(clip, size=(96, 64)))
    for (thumb, _c), i in zip(items, (0, 4, 8, 10, 14)):
        assert thumb.shape == (32, 48, 3) and thumb.dtype == np.uint8
        assert np.abs(thumb.astype(int) - cv2.resize(src[i], (48, 32), interpolation=cv2.INTER_AREA)).mean() < 1
    # adaptive, with a user keyframe and a removed one: the same plan the job stores (decoded at output size)
    s = _settings(clip, tmp_path / "o", keyframe_mode="adaptive", keyframe_add="6", keyframe_remove="")
    items, _text = kv.preview(s, height=32)
    job_plan = keyrun.choose_for_settings(s)
    assert [int(c.split(":")[0]) for _t, c in items] == job_plan.frames
    assert "6: user" in [c for _t, c in items]
    assert not (tmp_path / "o").exists(), "a preview writes nothing"


def test_preview_keeps_only_the_first_thumbnails_and_says_so(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None)
    items, text = kv.preview(_settings(clip, tmp_path / "o", keyframe_interval=2), height=16, max_keys=3)
    assert len(items) == 3 and text.startswith("8 of 16 frames") and text.endswith("the first 3 shown")
    assert kv.preview(_settings(clip, tmp_path / "o", keyframe_mode="off"))[0] == []


def test_form_preview_reads_labels_and_the_hosts_size_and_never_raises(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None)
    seen = []

    def fake(settings):
        seen.append(settings)
        return kv.preview(settings, height=16)

    spec = params.SPEC_BY_NAME["keyframe_mode"]
    label = spec.choice_labels[spec.choices.index("interval")]
    items, text = ui.keyframe_preview({"input": f"{clip}\n/other.mp4", "keyframe_mode": label,
                                       "keyframe_interval": 8.0, "max_frames": None, "width": 100, "height": 64},
                                      fake)
    assert seen[-1].temporal.keyframe_mode == "interval" and seen[-1].video.input == str(clip)
    assert (seen[-1].video.width, seen[-1].video.height) == (96, 64)  # the host's size, multiple of 8
    assert [c for _t, c in items] == ["0: start", "8: interval"] and "first video of the batch" in text
    assert ui.keyframe_preview({"input": ""}) == ([], "Upload a video (Video tab) first.")
    items, text = ui.keyframe_preview({"input": str(tmp_path / "missing.mp4"), "keyframe_mode": "interval"})
    assert items == [] and text.startswith("cannot choose the keyframes:")


def test_preview_button_shows_only_while_a_keyframe_mode_applies():
    gr = FakeGradio()
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x)))
    parts = {c.kw["elem_id"]: c for c in gr.created
             if c.kw.get("elem_id") in ui.UI_SHOW_IF and c.kw["elem_id"].startswith("keyframe_")}
    assert set(parts) == {"keyframe_show", "keyframe_summary", "keyframe_strip"}
    assert all("visible" not in c.kw for c in parts.values())  # shown: keyframes (adaptive) by default
    assert parts["keyframe_strip"].kind == "Gallery"
    (event, kw), = [e for e in comps["keyframe_mode"].events if e[0] == "change"]
    outs = kw["outputs"]
    assert all(c in outs for c in parts.values())
    shown = kw["fn"]("adaptive")
    assert [shown[outs.index(c)] for c in parts.values()] == [{"visible": True}] * 3
    shown = kw["fn"]("off")
    assert [shown[outs.index(c)] for c in parts.values()] == [{"visible": False}] * 3
    click = next(k for e, k in parts["keyframe_show"].events if e == "click")
    assert click["outputs"] == [parts["keyframe_strip"], parts["keyframe_summary"]]
    assert click["inputs"][:len(comps)] == [comps[n] for n in params.api_arg_names()]
    # with keyframes off (the preset every_frame) the button is hidden from the start
    gr = FakeGradio()
    ui.build(gr, elem_id=lambda x: x, defaults={"keyframe_mode": "off"})
    assert next(c for c in gr.created if c.kw.get("elem_id") == "keyframe_show").kw.get("visible") is False


class _Radios(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.radios, self.images = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("type") == "radio":
            self.radios.append(a)
        if tag == "img":
            self.images.append(a["src"])


def _radios(text):
    p = _Radios()
    p.feed(text)
    return p


def _candidate_job(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=9)  # keyframes 0, 4, 8
    s = _settings(clip, tmp_path / "out", keyframe_candidates=2, colour_coherence=False)
    first = run_job(s, ProxyRenderer())
    assert first.status == "interrupted"
    return s, first.job_dir


def test_candidates_get_a_radio_per_keyframe_and_recorded_picks_survive_resume(tmp_path):
    s, job_dir = _candidate_job(tmp_path)
    job = Job.open(job_dir)
    page, picks = kv.candidates_html(job, lambda p: "/file=" + p, "script_vid2vid_keyframe_picks")
    parsed = _radios(page)
    assert [(r["data-frame"], r["value"]) for r in parsed.radios] == [
        ("0", "0"), ("0", "1"), ("4", "0"), ("4", "1"), ("8", "0"), ("8", "1")]
    assert {r["name"] for r in parsed.radios} == {"vid2vid-pick-0", "vid2vid-pick-4", "vid2vid-pick-8"}
    assert [r["data-frame"] for r in parsed.radios if "checked" in r] == ["0", "4", "8"]  # candidate 0 each
    assert all("vid2vidPick(this, 'script_vid2vid_keyframe_picks')" == r["onchange"] for r in parsed.radios)
    assert picks == "0:0, 4:0, 8:0"
    assert parsed.images[3] == "/file=" + str(job.frame_path("candidates", 3))  # keyframe 4, candidate 1
    assert Path(parsed.images[3][6:]).is_file()
    # the Propagate button: the picks go into the job, which then resumes (its own settings) and takes them
    with pytest.raises(Vid2VidError, match="does not exist"):
        kv.record_picks(job_dir, "4:2")
    with pytest.raises(Vid2VidError, match="frame 5 is not a keyframe"):
        kv.record_picks(job_dir, "5:1")
    assert "4:1" in kv.record_picks(job_dir, "4:1, 0:0")
    assert Job.open(job_dir).manifest["settings"]["keyframe_picks"] == "0:0, 4:1"
    page, picks = kv.candidates_html(Job.open(job_dir), lambda p: None, "x")
    assert picks == "0:0, 4:1, 8:0" and "Propagate" in page
    done = run_job(s.replace(keyframe_picks=""), ProxyRenderer(), resume=job_dir)
    assert done.status == "done" and done.job_dir == job_dir
    job = Job.open(job_dir)
    assert job.manifest["keyframes"]["picks"] == {"0": 0, "4": 1, "8": 0}
    assert np.array_equal(job.read_frame("keys", 1), job.read_frame("candidates", 3))  # keyframe 4's render
    # its output: that render, harmonized with keyframe 0's detail (keyframes.harmonize_keyframe), nearer to it than
    # to the candidate not picked
    out = job.read_frame("pass1", 4).astype(int)
    assert (np.abs(out - job.read_frame("candidates", 3)).mean()
            < np.abs(out - job.read_frame("candidates", 2)).mean() / 2)
    page, _ = kv.candidates_html(job, lambda p: None, "x")
    assert "Picks taken" in page and all("disabled" in r for r in _radios(page).radios)
    assert [r["value"] for r in _radios(page).radios if "checked" in r] == ["0", "1", "0"]


def test_picks_given_with_the_job_to_resume_win_over_its_stored_ones(tmp_path):
    s, job_dir = _candidate_job(tmp_path)
    done = run_job(s.replace(keyframe_picks="8:1"), ProxyRenderer(), resume=job_dir)
    assert done.status == "done"
    # a job without candidates resumes with picks in the form: they do not apply to it
    clip = _pan_clip(tmp_path / "plain.mp4", cut=None, n=9)
    plain = _settings(clip, tmp_path / "out2")
    stop = StopAfter(3, stage="pass1")
    part = run_job(plain, ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert run_job(s.replace(keyframe_picks="8:1"), ProxyRenderer(), resume=part.job_dir).status == "done"
    job = Job.open(done.job_dir)
    assert done.status == "done" and job.manifest["keyframes"]["picks"] == {"0": 0, "4": 0, "8": 1}
    assert job.manifest["settings"]["keyframe_picks"] == "8:1"


def test_picks_given_with_a_job_resumed_by_name_are_checked_against_its_own_candidates(tmp_path):
    """``--resume JOB --keyframe-picks 8:1``: the command's other settings are the defaults (one candidate), and the
    picks are the job's to check (it has two), not the defaults'."""
    s, job_dir = _candidate_job(tmp_path)
    command = Settings().replace(output_dir=s.job.output_dir, keyframe_picks="8:1")  # what the CLI builds
    done = run_job(command, ProxyRenderer(), resume=job_dir)
    assert done.status == "done" and Job.open(done.job_dir).manifest["keyframes"]["picks"] == {"0": 0, "4": 0, "8": 1}
    (tmp_path / "b").mkdir()
    _, other = _candidate_job(tmp_path / "b")
    with pytest.raises(SettingsError, match="candidate 2 does not exist"):
        run_job(command.replace(keyframe_picks="8:2"), ProxyRenderer(), resume=other)


def test_candidates_and_keyframes_from_a_folder_are_refused_together(tmp_path):
    with pytest.raises(SettingsError, match="either candidates or a keyframe folder"):
        Settings().replace(keyframe_candidates=2, colour_coherence=False, keyframe_folder=str(tmp_path))


def test_record_picks_refuses_a_job_without_candidates_or_while_it_runs(tmp_path):
    from lib_vid2vid.joblock import JobLock

    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=5)
    res = run_job(_settings(clip, tmp_path / "out"), ProxyRenderer())
    with pytest.raises(Vid2VidError, match="renders no candidates"):
        kv.record_picks(res.job_dir, "0:1")
    assert kv.candidates_html(Job.open(res.job_dir), lambda p: None, "x") == ("", "")
    lock = JobLock.acquire(res.job_dir)
    try:
        with pytest.raises(Vid2VidError):
            kv.record_picks(res.job_dir, "0:1")
    finally:
        lock.release()


def test_jobs_tab_shows_candidates_and_propagate_records_then_resumes(tmp_path):
    _s, job_dir = _candidate_job(tmp_path)
    gr = FakeGradio()
    host = {"list_jobs": lambda: [(job_dir.name, job_dir.name)], "job_root": lambda n: job_dir if n else None,
            "file_url": lambda p: "/file=" + p}
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: "v_" + x, host=host)))
    picker = next(c for c in gr.created if c.kw.get("elem_id") == "v_job_list")
    (_e, pick), = picker.events
    resume, _info, cands, propagate, picks, flagged, retry, redo_frames, redo = pick["fn"](job_dir.name)
    assert pick["outputs"][0] is comps["resume_job"] and pick["outputs"][4] is comps["keyframe_picks"]
    assert resume == job_dir.name and propagate == {"visible": True} and picks == "0:0, 4:0, 8:0"
    assert [r["onchange"] for r in _radios(cands).radios] == ["vid2vidPick(this, 'v_keyframe_picks')"] * 6
    assert flagged == "" and retry == {"visible": False} and redo == {"visible": False}
    button = next(c for c in gr.created if c.kw.get("elem_id") == "v_job_propagate")
    (_e, click), = button.events
    assert click["inputs"] == [picker, comps["keyframe_picks"]]
    message, token, resume = click["fn"](job_dir.name, "8:1")
    assert "Picks recorded" in message and token and resume == job_dir.name
    assert Job.open(job_dir).manifest["settings"]["keyframe_picks"] == "8:1"
    message, token, _ = click["fn"](job_dir.name, "8:5")
    assert "does not exist" in message and token == ""  # nothing resumes
    # a job without candidates: no radios, the button hidden, the picks box left alone
    _r, _i, cands, propagate, picks, _f, _retry, _rf, _redo = pick["fn"]("")
    assert cands == "" and propagate == {"visible": False} and picks == {}


def test_flagged_groups_are_listed_with_keyframes_to_add():
    class J:
        manifest = {"keyframes": {"groups": [
            {"first": 0, "last": 9, "keyframes": [0, 4, 8], "flagged": False},
            {"first": 10, "last": 30, "keyframes": [10, 18, 26], "flagged": True,
             "why": "changes 3.1x as much as the source"}]}}

    assert kv.suggested_additions(kv.flagged_groups(J())) == [14, 22, 28]
    text = kv.flagged_html(J())
    assert "frames 10-30: changes 3.1x as much as the source" in text and "14, 22, 28" in text
    assert "frames 0-9" not in text
    J.manifest = {"keyframes": {"groups": []}}
    assert kv.flagged_html(J()) == ""


def test_a_flagged_job_is_loaded_into_the_form_with_keyframes_added(tmp_path, unharmonized):
    clip = _pan_clip(tmp_path / "pan.mp4")  # keyframes 0, 4, 8 | 10, 14
    s = _settings(clip, tmp_path / "out", keyframe_problem_ratio=1.5, keyframe_remove="6")
    first = run_job(s.replace(keyframe_remove=""), ProxyRenderer())
    job_dir = first.job_dir
    assert [g["flagged"] for g in kv.flagged_groups(Job.open(job_dir))] == [True, True]
    gr = FakeGradio()
    host = {"list_jobs": lambda: [(job_dir.name, job_dir.name)], "job_root": lambda n: job_dir if n else None}
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x, host=host)))
    picker = next(c for c in gr.created if c.kw.get("elem_id") == "job_list")
    (_e, pick), = picker.events
    *_rest, picks, flagged, retry, redo_frames, redo = pick["fn"](job_dir.name)
    assert picks == "", "a job without candidates clears the picks box (stale picks would refuse a new job)"
    assert "frames 0-9: changes" in flagged and "Suggested keyframes to add: 2, 6, 9, 12, 15" in flagged
    assert retry == {"visible": True} and redo == {"visible": True}
    assert redo_frames == {"visible": True, "value": "0, 4, 8, 10, 14"}  # the flagged scenes' keyframes
    button = next(c for c in gr.created if c.kw.get("elem_id") == "job_retry")
    (_e, click), = button.events
    assert click["outputs"][1:] == [comps[n] for n in params.api_arg_names()]
    message, *updates = click["fn"](job_dir.name)
    form = {n: u["value"] for n, u in zip(params.api_arg_names(), updates)}
    assert "2, 6, 9, 12, 15 added" in message and form["keyframe_add"] == "2, 6, 9, 12, 15"
    assert form["resume_job"] == "" and form["input"] == str(clip) and form["keyframe_mode"] == "interval"
    # those values make a new job that renders the flagged scenes with the added keyframes
    r = ProxyRenderer()
    again = run_job(kv.form_settings(form, base=s), r)
    plan = Job.open(again.job_dir).manifest["keyframes"]["plan"]
    assert again.job_dir != job_dir and plan["frames"] == [0, 2, 4, 6, 8, 9, 10, 12, 14, 15] and r.calls == 10
    # a frame the job removed is not suggested back
    _values, added = kv.retry_values(Job.open(run_job(s, ProxyRenderer()).job_dir))
    assert 6 not in added


def _pass1(job_dir):
    return [p.read_bytes() for p in sorted((Path(job_dir) / "frames" / "pass1").glob("*.png"))]


def test_a_flagged_keyframe_is_rendered_again_with_another_seed_and_only_its_frames_change(tmp_path):
    from lib_vid2vid.keyrun import RESEED_STEP, redo_keyframes

    clip = _pan_clip(tmp_path / "pan.mp4")  # keyframes 0, 4, 8 | 10, 14
    s = _settings(clip, tmp_path / "out", report=True, comparison_video=True)
    first = run_job(s, ProxyRenderer())
    job_dir = first.job_dir
    before = _pass1(job_dir)
    keys_before = [Job.open(job_dir).read_frame("keys", k) for k in range(5)]
    seed = Job.open(job_dir).manifest["frames"]["keys"][1]["seed"]
    video_before = first.video_path.read_bytes()
    line = redo_keyframes(job_dir, [4])
    assert "Keyframes 4" in line and "frames from 1 on" in line
    job = Job.open(job_dir)
    assert job.status == "interrupted" and job.frames_done("pass1") == 1
    assert job.manifest["keyframes"]["reseed"] == {"4": 1} and job.manifest["keyframes"]["redo"] == [1]
    r = ProxyRenderer()
    done = run_job(s, r, resume=job_dir)
    assert done.status == "done" and r.calls == 1, "only the keyframe is rendered again"
    job = Job.open(job_dir)
    assert job.manifest["frames"]["keys"][1]["seed"] == (seed + RESEED_STEP) % 2**32
    assert "redo" not in job.manifest["keyframes"] or job.manifest["keyframes"]["redo"] == []
    keys_after = [job.read_frame("keys", k) for k in range(5)]
    assert not np.array_equal(keys_after[1], keys_before[1])
    assert all(np.array_equal(keys_after[k], keys_before[k]) for k in (0, 2, 3, 4))
    after = _pass1(job_dir)
    # keyframe 8 takes keyframe 4's detail (harmonized), so its scene from frame 1 on is made again; the other
    # scene keeps its bytes
    assert after[0] == before[0] and after[10:] == before[10:], "frames not made from keyframe 4 keep their bytes"
    assert all(after[t] != before[t] for t in range(1, 10))
    assert np.array_equal(job.read_frame("pass1", 4), job.read_frame("keys_harmonized", 1))

    def low(img):
        return cv2.GaussianBlur(img.astype(np.float32), (0, 0), 4)

    shown = low(job.read_frame("pass1", 4))  # harmonized from the new render, not the old one
    assert np.abs(shown - low(keys_after[1])).mean() < np.abs(shown - low(keys_before[1])).mean() / 2
    assert done.video_path.read_bytes() != video_before and done.report is not None  # made again
    # again: the next seed; a frame that is not a keyframe is refused
    redo_keyframes(job_dir, [4])
    assert Job.open(job_dir).manifest["keyframes"]["reseed"] == {"4": 2}
    with pytest.raises(Exception, match="frame 5 is not a keyframe"):
        redo_keyframes(job_dir, [5])


def test_the_api_renders_keyframes_again_with_another_seed(tmp_path):
    """``redo_keyframes`` with ``resume_job`` (the API's script args, by name): the named keyframes of the job are
    rendered again with the next seed and the job resumes; each request is one more seed; without a job to resume,
    or with a frame that is no number, one line says what to give."""
    clip = _pan_clip(tmp_path / "pan.mp4")  # keyframes 0, 4, 8 | 10, 14
    s = _settings(clip, tmp_path / "out")
    job_dir = run_job(s, ProxyRenderer()).job_dir
    before = _pass1(job_dir)

    def request(**named):
        api = params.settings_from_api_args(params.api_args_from_named(named), base=s)  # the request's own: s
        r = ProxyRenderer()
        return run_job(api, r, resume=api.job.resume_job or None), r

    done, r = request(resume_job=job_dir.name, redo_keyframes="4")
    assert done.status == "done" and r.calls == 1, "only keyframe 4 is rendered again"
    assert Job.open(job_dir).manifest["keyframes"]["reseed"] == {"4": 1}
    after = _pass1(job_dir)
    assert after[0] == before[0] and after[10:] == before[10:] and after[4] != before[4]
    done, r = request(resume_job=job_dir.name, redo_keyframes="4")
    assert r.calls == 1 and Job.open(job_dir).manifest["keyframes"]["reseed"] == {"4": 2}
    assert Settings.from_stored(Job.open(job_dir).manifest["settings"]).job.redo_keyframes == "", \
        "a later resume does not render them again"
    with pytest.raises(SettingsError, match="resume_job"):
        request(redo_keyframes="4")
    with pytest.raises(SettingsError, match="redo_keyframes"):
        request(resume_job=job_dir.name, redo_keyframes="four")
    assert "redo_keyframes" in params.api_arg_names()


def test_redo_is_refused_where_a_seed_cannot_change_one_keyframe(tmp_path):
    from lib_vid2vid.keyrun import redo_keyframes

    s, job_dir = _candidate_job(tmp_path)
    with pytest.raises(Vid2VidError, match="pick another candidate"):
        redo_keyframes(job_dir, [4])


def test_jobs_tab_renders_a_flagged_keyframe_again_and_resumes(tmp_path):
    clip = _pan_clip(tmp_path / "pan.mp4")
    s = _settings(clip, tmp_path / "out", keyframe_problem_ratio=1.5)
    job_dir = run_job(s, ProxyRenderer()).job_dir
    gr = FakeGradio()
    host = {"list_jobs": lambda: [(job_dir.name, job_dir.name)], "job_root": lambda n: job_dir if n else None}
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x, host=host)))
    button = next(c for c in gr.created if c.kw.get("elem_id") == "job_redo")
    (_e, click), = button.events
    assert click["outputs"][2] is comps["resume_job"]
    message, token, resume = click["fn"](job_dir.name, "14")
    assert "Keyframes 14" in message and token and resume == job_dir.name
    message, token, _ = click["fn"](job_dir.name, "13")
    assert "frame 13 is not a keyframe" in message and token == ""
    r = ProxyRenderer()
    assert run_job(s, r, resume=resume).status == "done" and r.calls == 1
    assert Job.open(job_dir).manifest["keyframes"]["reseed"] == {"14": 1}


def test_cli_renders_a_keyframe_again_and_resumes(tmp_path):
    import subprocess
    import sys

    clip = _pan_clip(tmp_path / "pan.mp4", cut=None, n=9)
    job_dir = run_job(_settings(clip, tmp_path / "out"), ProxyRenderer()).job_dir
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "lib_vid2vid", "--resume", job_dir.name, "--output-dir", str(tmp_path / "out"),
           "--renderer", "proxy", "--quiet", "--redo-keyframes", "8"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Keyframes 8" in out.stderr and "frames from 5 on" in out.stderr
    job = Job.open(job_dir)
    assert job.status == "done" and job.manifest["keyframes"]["reseed"] == {"8": 1}
    out = subprocess.run(cmd[:-2] + ["--redo-keyframes", "7"], capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode != 0 and "frame 7 is not a keyframe" in out.stderr


def _half_pan_clip(path: Path, n: int = 16, size=(96, 64)) -> Path:
    """The left half holds still, the right half pans fast (6 px a frame); losslessly coded."""
    from fractions import Fraction

    import av

    from tests.clips import texture

    w, h = size
    still = texture(h, w, seed=1)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(12))
        s.width, s.height, s.pix_fmt = w, h, "yuv444p"
        s.options = {"crf": "0", "preset": "fast"}
        for i in range(n):
            img = still.copy()
            img[:, w // 2:] = texture(h, w // 2, dx=6.0 * i, seed=8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def test_with_a_mask_the_preview_dry_run_and_export_show_the_plan_the_job_uses(tmp_path):
    """The adaptive choice counts change only inside the user / colour-key mask; what is shown before rendering
    must count the same way, or the strip lies about what the job will render."""
    clip = _half_pan_clip(tmp_path / "half.mp4")
    mask = np.zeros((64, 96), np.uint8)
    mask[:, :40] = 255  # the still half
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    kw = dict(keyframe_mode="adaptive", keyframe_min_gap=2, keyframe_max_gap=12, keyframe_threshold=1.0)
    masked = _settings(clip, tmp_path / "o", user_mask_kind="image", user_mask_path=str(tmp_path / "mask.png"), **kw)
    res = run_job(masked, ProxyRenderer())
    job_plan = Job.open(res.job_dir).manifest["keyframes"]["plan"]["frames"]
    unmasked = keyrun.choose_for_settings(_settings(clip, tmp_path / "o", **kw)).frames
    assert job_plan != unmasked, "the mask must change this clip's plan, or this test proves nothing"
    items, _text = kv.preview(masked, height=16)
    assert [int(c.split(":")[0]) for _t, c in items] == job_plan
    assert keyrun.choose_for_settings(masked).frames == job_plan
    kplan, paths = keyrun.export_keyframes(masked, tmp_path / "keys")
    assert kplan.frames == job_plan and [int(p.stem) for p in paths] == job_plan
