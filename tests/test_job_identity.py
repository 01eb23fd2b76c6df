"""A resumed job is the same job: the host identity is part of the render key (pipeline and workspace)."""

import hashlib
import json

import numpy as np
import pytest

from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import MANIFEST, Job, render_key
from tests.doubles import StopAfter


class HostRenderer(ProxyRenderer):
    """A renderer whose host hands over a setup (a ControlNet unit with an image of its own)."""

    def __init__(self, model="control_v11p_sd15_canny", image_value=7):
        super().__init__()
        self.model, self.image_value = model, image_value

    def host_identity(self):
        return {"renderer": "test", "controlnet": [{"model": self.model,
                                                    "image": np.full((4, 4, 3), self.image_value, np.uint8)}]}


def _settings(clip, tmp_path):
    # every frame rendered (the default renders keyframes only)
    return Settings().replace(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=5,
                              max_frames=6, keyframe_mode="off")


def _interrupted(s, renderer):
    stop = StopAfter(2)
    res = run_job(s, renderer, should_stop=stop, progress=stop.progress)
    assert res.status == "interrupted"
    return res.job_dir


def test_same_setup_resumes_other_setup_starts_a_new_job(clip, tmp_path):
    s = _settings(clip, tmp_path)
    part = _interrupted(s, HostRenderer())
    stored = json.loads((part / MANIFEST).read_text())["host"]
    assert stored["controlnet"][0]["image"]["shape"] == [4, 4, 3]  # hashed, never the pixels
    lines = []
    other = run_job(s, HostRenderer(image_value=8), notify=lines.append)
    assert other.job_dir != part and other.frames_done == 6
    was = stored["controlnet"][0]["image"]["sha256"][:10]
    now = hashlib.sha256(np.full((4, 4, 3), 8, np.uint8).tobytes()).hexdigest()[:10]
    assert lines == other.notices == [f"not resuming {part.name}: ControlNet unit 0 differs (image: was data "
                                      f"{was}, now data {now})"]
    assert lines[0] in (other.job_dir / "job.log").read_text()
    r = HostRenderer()
    res = run_job(s, r, notify=lines.append)
    assert res.job_dir == part and r.calls == 4 and res.notices == [] and len(lines) == 1


def test_explicit_resume_with_another_setup_is_one_clear_line(clip, tmp_path):
    s = _settings(clip, tmp_path)
    part = _interrupted(s, HostRenderer())
    with pytest.raises(Vid2VidError) as err:
        run_job(s, HostRenderer(model="control_v11f1p_sd15_depth"), resume=part.name)
    assert str(err.value) == (f"Job {part.name} was made with another setup: ControlNet unit 0 differs (was "
                              f"control_v11p_sd15_canny, now control_v11f1p_sd15_depth); restore that setup to "
                              f"resume it, or start a new job")
    assert run_job(s, HostRenderer(), resume=part.name).status == "done"


def test_job_made_before_host_identities_is_not_resumed_by_a_host_with_one(clip, tmp_path):
    s = _settings(clip, tmp_path)
    part = _interrupted(s, HostRenderer())
    m = json.loads((part / MANIFEST).read_text())
    m["render_key"] = m.pop("settings_key")  # what older versions wrote: no host, a settings-only key
    del m["host"]
    (part / MANIFEST).write_text(json.dumps(m))
    res = run_job(s, HostRenderer())
    assert res.job_dir != part
    assert res.notices == [f"not resuming {part.name}: the unfinished job was made before vid2vid recorded the "
                           f"host's setup"]
    r = ProxyRenderer()  # a renderer without a setup of its own ... still has one: the proxy's look
    assert run_job(s, r).job_dir != part


def test_renderer_without_identity_keeps_the_settings_key(clip, tmp_path):
    class Bare:
        def __init__(self):
            self.inner, self.calls = ProxyRenderer(), 0

        def render(self, request):
            self.calls += 1
            return self.inner.render(request)

    s = _settings(clip, tmp_path)
    part = _interrupted(s, Bare())
    m = Job.open(part).manifest
    assert m["host"] == {} and m["render_key"] == m["settings_key"]
    r = Bare()
    assert run_job(s, r).job_dir == part and r.calls == 4


def test_render_key_covers_the_host():
    fp = {"path": "/v.mp4", "size": 1, "mtime": 1}
    s = {"denoise": 0.4}
    a = render_key(s, fp, {"checkpoint": {"name": "a", "hash": "1"}})
    assert a == render_key(s, fp, {"checkpoint": {"hash": "1", "name": "a"}})
    assert a != render_key(s, fp, {"checkpoint": {"name": "b", "hash": "1"}}) and a != render_key(s, fp)


def test_a_job_resumed_under_other_libraries_says_its_frames_may_differ(clip, tmp_path, monkeypatch):
    """Frames are bit-exact across a resume only on one numpy / OpenCV build: a resume under another one is
    allowed (the frames differ in their last bits at most) but said, once, and recorded."""
    from lib_vid2vid import workspace

    s = _settings(clip, tmp_path)
    part = _interrupted(s, ProxyRenderer())
    first = json.loads((part / MANIFEST).read_text())["versions"]
    real = workspace.versions
    monkeypatch.setattr(workspace, "versions", lambda: {**real(), "opencv": "9.9.9", "python": "3.99"})
    stop = StopAfter(4)
    lines: list[str] = []
    res = run_job(s, ProxyRenderer(), should_stop=stop, progress=stop.progress, notify=lines.append)
    assert res.job_dir == part and res.status == "interrupted"
    want = (f"resuming {part.name} under other libraries than its frames so far (opencv {first['opencv']} -> "
            f"9.9.9): the frames made from here on may differ in their last bits from those of a run that never "
            f"stopped; start a new job for frames of one build")
    assert lines == res.notices == [want], "python is not a frame library; opencv is"
    assert want in (part / "job.log").read_text()
    m = json.loads((part / MANIFEST).read_text())
    assert m["versions"] == first and m["versions_last"]["opencv"] == "9.9.9"
    lines.clear()
    res = run_job(s, ProxyRenderer(), notify=lines.append)  # the same libraries as the last run: nothing to say
    assert res.status == "done" and lines == [] and res.notices == []
