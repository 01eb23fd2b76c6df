"""The Script's UI is built from the settings model: one control per shown setting, in API order."""

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from lib_vid2vid import params, ui

ROOT = Path(__file__).resolve().parents[1]


class FakeComponent:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.kw = kw
        self.events = []

    def change(self, **kw):
        self.events.append(("change", kw))

    def click(self, **kw):
        self.events.append(("click", kw))


class FakeGradio:
    """Records the components ui.build creates (a stand-in for gradio 3.41 / 4)."""

    def __init__(self):
        self.created = []
        self.tabs = []

    def __getattr__(self, kind):
        def make(*args, **kw):
            comp = FakeComponent(kind, **kw)
            self.created.append(comp)
            return comp

        return make

    @contextmanager
    def Tabs(self, **kw):
        yield

    @contextmanager
    def Tab(self, title, **kw):
        self.tabs.append(title)
        yield

    @contextmanager
    def Row(self, **kw):
        yield

    def update(self, **kw):
        return kw


def test_one_control_per_setting_in_api_order():
    gr = FakeGradio()
    comps = ui.build(gr, elem_id=lambda x: f"script_vid2vid_{x}", defaults={"crf": 23})
    names = params.api_arg_names()
    assert [c.kw["elem_id"] for c in comps] == [f"script_vid2vid_{n}" for n in names]
    by_name = dict(zip(names, comps))
    assert by_name["denoise" if "denoise" in by_name else "loopback_alpha"].kind == "Slider"
    assert by_name["crf"].kw["value"] == 23 and by_name["crf"].kind == "Slider"
    assert by_name["keep_audio"].kind == "Checkbox"
    assert by_name["output_format"].kind == "Radio" and by_name["output_format"].kw["choices"] == ["mp4", "webm",
                                                                                                  "gif", "png"]
    for name, comp in by_name.items():
        spec = params.SPEC_BY_NAME[name]
        if comp.kind == "Slider":
            assert (comp.kw["minimum"], comp.kw["maximum"]) == (spec.min, spec.max)
    assert gr.tabs[0] == "Video" and gr.tabs[-1] == "Jobs"
    assert gr.tabs == [t for t, _ in params.iter_tabs()]


def test_upload_fills_the_path_argument():
    gr = FakeGradio()
    comps = ui.build(gr, elem_id=lambda x: x)
    upload = next(c for c in gr.created if c.kind == "Video")
    (event, kw), = upload.events
    assert kw["outputs"] == [comps[params.api_arg_names().index("input")]]
    assert kw["fn"]("/tmp/x.mp4") == "/tmp/x.mp4" and kw["fn"](None) == ""


def test_several_uploads_fill_the_path_argument_one_per_line():
    gr = FakeGradio()
    comps = ui.build(gr, elem_id=lambda x: x)
    uploads = next(c for c in gr.created if c.kind == "File")
    assert uploads.kw["file_count"] == "multiple" and uploads.do_not_save_to_config
    (event, kw), = uploads.events
    assert kw["outputs"] == [comps[params.api_arg_names().index("input")]]

    class TempFile:  # gradio 3.41 hands file objects, gradio 4 paths
        def __init__(self, name):
            self.name = name

    assert kw["fn"]([TempFile("/tmp/a.mp4"), TempFile("/tmp/b.mov")]) == "/tmp/a.mp4\n/tmp/b.mov"
    assert kw["fn"](["/tmp/a.mp4", "/tmp/b.mov"]) == "/tmp/a.mp4\n/tmp/b.mov" and kw["fn"](None) == ""
    assert comps[params.api_arg_names().index("input")].kw["lines"] > 1  # room for several paths


def test_host_widgets_are_not_script_args():
    gr = FakeGradio()
    host = {"list_jobs": lambda: ["job-a"], "sigmas_text": lambda v: "s", "suggest_prompt": lambda p: "tags"}
    comps = ui.build(gr, elem_id=lambda x: x, host=host)
    assert len(comps) == len(params.api_arg_names())
    extra = {c.kw.get("elem_id") for c in gr.created} - {c.kw.get("elem_id") for c in comps}
    assert {"upload", "uploads", "sigmas_used", "job_list", "suggest", "tags"} <= extra


def test_hints_file_is_generated_from_the_settings():
    r = subprocess.run([sys.executable, str(ROOT / "helpers" / "gen_hints.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout
    text = (ROOT / "javascript" / "vid2vid_hints.js").read_text()
    for name in params.api_arg_names():
        assert f'"{name}"' in text


def test_settings_reference_is_generated_from_the_settings():
    r = subprocess.run([sys.executable, str(ROOT / "helpers" / "gen_docs.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout


def test_strategy_preset_sets_the_controls_it_decides():
    gr = FakeGradio()
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x)))
    picker = next(c for c in gr.created if c.kw.get("elem_id") == "strategy")
    (_, kw), = picker.events
    outputs = kw["outputs"]
    assert comps["init_mode"] in outputs and comps["loopback_passes"] in outputs
    values = dict(zip([next(n for n, c in comps.items() if c is o) for o in outputs], kw["fn"]("flow_warp")))
    assert values["init_mode"] == {"value": "flow_warp"} and values["colour_coherence"] == {"value": False}


def test_cli_strategy_flag(tmp_path):
    from lib_vid2vid.__main__ import build_parser

    ns = build_parser().parse_args(["x.mp4", "--strategy", "loopback_temporal_blend", "--loopback-passes", "3"])
    s = params.settings_from_cli(ns, base=params.Settings().replace(**params.STRATEGIES[ns.strategy]))
    assert s.temporal.init_mode == "temporal_blend" and s.temporal.loopback_passes == 3
