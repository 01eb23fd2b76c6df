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
        self.value = kw.get("value")
        self.events = []

    def change(self, **kw):
        self.events.append(("change", kw))

    def click(self, **kw):
        self.events.append(("click", kw))

    def input(self, **kw):
        self.events.append(("input", kw))


class FakeBox(FakeComponent):
    """A layout block: a component (it can be shown and hidden) used as a context manager."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class FakeGradio:
    """Records the components ui.build creates (a stand-in for gradio 3.41 / 4)."""

    def __init__(self):
        self.created = []
        self.tabs = []
        self.accordions = []

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

    def Accordion(self, label, **kw):
        self.accordions.append((label, kw.get("open", True)))
        box = FakeBox("Accordion", label=label, **kw)
        self.created.append(box)
        return box

    class Request:
        pass

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
    # labelled in words, the ids as values (what the Script receives)
    assert by_name["output_format"].kind == "Radio"
    assert [v for _label, v in by_name["output_format"].kw["choices"]] == ["mp4", "webm", "gif", "png"]
    assert by_name["output_format"].kw["choices"][0][0] == "MP4 (H.264)"
    for name, comp in by_name.items():
        spec = params.SPEC_BY_NAME[name]
        if comp.kind == "Slider":
            assert (comp.kw["minimum"], comp.kw["maximum"]) == (spec.min, spec.max)
    assert gr.tabs[0] == "Video" and gr.tabs[-2:] == ["Jobs", "Image to video"]
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


def _event(comp, kind="change"):
    (_, kw), = [e for e in comp.events if e[0] == kind]
    return kw


def test_strategy_preset_comes_first_and_says_what_it_changed():
    gr = FakeGradio()
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x)))
    picker = next(c for c in gr.created if c.kw.get("elem_id") == "strategy")
    assert gr.created.index(picker) < min(gr.created.index(c) for c in comps.values())  # before every tab
    # every preset listed with its one line of what it does and costs
    assert [v for _l, v in picker.kw["choices"]] == list(params.STRATEGIES)
    assert all(label == f"{v}: {params.STRATEGY_NOTES[v]}" and "render" in label for label, v in picker.kw["choices"])
    kw = _event(picker)
    names = [next(n for n, c in comps.items() if c is o) for o in kw["outputs"][:-1]]
    assert {"init_mode", "loopback_passes", "colour_coherence", "sigma_schedule"} <= set(names)
    report = kw["outputs"][-1]
    assert report.kw["elem_id"] == "strategy_changes"
    current = [params.Settings().get(n) for n in names]  # the form at its defaults
    out = kw["fn"]("flow_warp", *current)
    values = dict(zip(names, out[:-1]))
    assert values["init_mode"] == {"value": "flow_warp"} and values["colour_coherence"] == {"value": False}
    text = out[-1]
    assert text.startswith("**flow_warp**") and "Changed 3 fields:" in text
    assert "Init image of each frame (Temporal): The source frame → Previous output warped by the motion" in text
    assert "Keep the colours of the first frame (Temporal): on → off" in text  # the default has it on
    assert "Keyframes (Temporal): Where the picture has changed → Off: render every frame" in text
    assert "Sigma schedule" not in text  # host already: not reported as a change
    again = kw["fn"]("flow_warp", *[v["value"] for v in out[:-1]])[-1]
    assert "already had its value" in again
    assert kw["fn"](None, *current) == [{} for _ in names] + [{}]  # cleared: nothing changes


def test_sub_options_show_only_while_they_apply():
    gr = FakeGradio()
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x)))
    # at the defaults: motion mask off, host sigma schedule, source init
    for name in ("motion_low_cut", "motion_high_ext", "motion_soft", "sigma_min", "sigma_max", "rho",
                 "init_strength", "temporal_weights", "variation_seed", "loopback_alpha", "colour_key_noise"):
        assert comps[name].kw.get("visible") is False, name
    for name in ("motion_mask", "sigma_schedule", "init_mode", "seed_mode", "fdc_mode"):
        assert comps[name].kw.get("visible", True), name
    kw = _event(comps["motion_mask"])
    outs = [next(n for n, c in comps.items() if c is o) for o in kw["outputs"]]
    assert outs == ["motion_low_cut", "motion_high_ext", "motion_soft"]
    assert kw["fn"](True) == [{"visible": True}] * 3 and kw["fn"](False) == [{"visible": False}] * 3
    kw = _event(comps["sigma_schedule"])
    outs = [next(n for n, c in comps.items() if c is o) for o in kw["outputs"] if o in comps.values()]
    shown = dict(zip(outs, kw["fn"]("karras")))
    assert shown["sigma_min"] == shown["rho"] == {"visible": True}
    shown = dict(zip(outs, kw["fn"]("exponential")))
    assert shown["sigma_max"] == {"visible": True} and shown["rho"] == {"visible": False}
    # a setting with two conditions: the noise share needs the colour key on and the noise fill
    kw = _event(comps["colour_key_fill"])
    inputs = [next(n for n, c in comps.items() if c is o) for o in kw["inputs"]]
    outs = [next(n for n, c in comps.items() if c is o) for o in kw["outputs"]]
    values = {"colour_key": True, "colour_key_fill": "noise"}
    assert dict(zip(outs, kw["fn"](*[values[n] for n in inputs])))["colour_key_noise"] == {"visible": True}
    values["colour_key"] = False
    assert dict(zip(outs, kw["fn"](*[values[n] for n in inputs])))["colour_key_noise"] == {"visible": False}
    # a cleared number box counts as its default (passes 1: the loopback alpha stays hidden)
    assert _event(comps["loopback_passes"])["fn"](None) == [{"visible": False}] * 3


def test_settings_grouped_in_accordions_advanced_folded():
    gr = FakeGradio()
    ui.build(gr, elem_id=lambda x: x)
    folded = {label for label, is_open in gr.accordions if not is_open}
    opened = {label for label, is_open in gr.accordions if is_open}
    assert {"Per-frame schedules", "Prompts per frame", "Finishing and grading", "How the masks apply"} <= folded
    assert {"Motion mask", "Sigma schedule", "Init image", "Colour key", "Upscale"} <= opened
    for _tab, specs in params.iter_tabs():  # every section of a tab once, its settings together
        titles = [t for t, _f, _g in ui.sections(specs)]
        assert len(titles) == len(set(titles))


def test_host_own_resize_mode_is_hidden_but_still_an_arg():
    gr = FakeGradio()
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x, host={"own_settings": ["resize_mode"]})))
    assert comps["resize_mode"].kw["visible"] is False


def test_api_only_settings_are_args_but_not_in_the_form():
    """redo_keyframes renders keyframes again at every run that has it: the form does not keep one (the Jobs tab
    has its own box and button)."""
    comps = dict(zip(params.api_arg_names(), ui.build(FakeGradio(), elem_id=lambda x: x)))
    assert comps["redo_keyframes"].kw["visible"] is False
    assert comps["keyframe_picks"].kw.get("visible", True) is not False


def test_labels_are_words_not_ids():
    for spec in params.ui_specs():
        label = spec.label()
        assert "_" not in label and "vid2vid" not in label.lower(), label
        if spec.choices and spec.widget in ("radio", "") and spec.type is str:
            assert spec.choice_labels, f"{spec.name}: choices need labels in words"


def test_sigma_preview_is_filled_on_load_and_the_last_input_wins():
    gr = FakeGradio()
    seen = []

    def text(values):
        seen.append(values)
        return f"{values['sigma_schedule']} {values.get('steps')} {values.get('denoise')}"

    steps, denoise = FakeComponent("Slider", value=10), FakeComponent("Slider", value=0.3)
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x, host={
        "sigmas_text": text, "steps": steps, "denoise": denoise})))
    box = next(c for c in gr.created if c.kw.get("elem_id") == "sigmas_used")
    assert box.kw["value"]() == "host 10 0.3"  # on every page load, with the img2img tab's values
    kw = _event(steps)
    assert kw["inputs"][:4] == [comps[n] for n in ("sigma_schedule", "sigma_min", "sigma_max", "rho")]

    class Req:
        session_hash = "s1"

    assert kw["fn"](Req(), "karras", 0.03, 1.0, 7.0, 10, 0.3) == "karras 10 0.3"
    sampler = FakeComponent("Dropdown", value="Euler")
    ui.build(FakeGradio(), elem_id=lambda x: x, host={"sigmas_text": text, "sampler": sampler})
    # the WebUI sets its sampler while the page loads: only the user's choice ("input") asks for a preview
    assert [e for e, _kw in sampler.events] == ["input"]
    assert kw["fn"](Req(), "karras", None, 1.0, 7.0, None, 0.3) == "karras None 0.3"  # empty boxes reach the host


def test_latest_only_drops_a_result_overtaken_by_a_newer_input():
    import threading

    latest = ui.LatestOnly()
    first = latest.take("s")
    second = latest.take("s")
    other = latest.take("t")  # another browser session does not interfere
    assert not latest.is_newest("s", first) and latest.is_newest("s", second) and latest.is_newest("t", other)
    # two overlapping calls of the preview: the slow, older one (steps "1" while typing "10") is dropped
    gr = FakeGradio()
    release = threading.Event()

    def text(values):
        if values["steps"] == 1:
            release.wait(5)
        return f"steps {values['steps']}"

    steps = FakeComponent("Slider", value=20)
    ui.build(gr, elem_id=lambda x: x, host={"sigmas_text": text, "steps": steps})
    fn = _event(steps)["fn"]

    class Req:
        session_hash = "typing"

    results = {}
    slow = threading.Thread(target=lambda: results.setdefault("old", fn(Req(), "host", 0.03, 1, 7, 1)))
    slow.start()
    results["new"] = fn(Req(), "host", 0.03, 1, 7, 10)
    release.set()
    slow.join()
    assert results["new"] == "steps 10" and results["old"] == {}  # gr.update(): the box keeps "steps 10"


def test_sigma_preview_never_raises():
    gr = FakeGradio()
    steps = FakeComponent("Slider", value=20)

    def broken(values):
        raise TypeError("float() argument must be a string or a real number, not 'NoneType'")

    ui.build(gr, elem_id=lambda x: x, host={"sigmas_text": broken, "steps": steps})
    box = next(c for c in gr.created if c.kw.get("elem_id") == "sigmas_used")
    assert box.kw["value"]().startswith("cannot compute the schedule")


def test_jobs_tab_lists_states_and_deletes_with_confirmation():
    gr = FakeGradio()
    deleted = []
    jobs = [("job-a: done (pass1 3/3)", "job-a"), ("job-b: failed: no video", "job-b")]
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x, host={
        "list_jobs": lambda: list(jobs), "delete_job": lambda n: deleted.append(n) or f"Deleted {n}.",
        "resumable": lambda n: n != "job-a"})))
    picker = next(c for c in gr.created if c.kw.get("elem_id") == "job_list")
    assert picker.kw["choices"] == jobs
    pick = _event(picker)
    assert pick["outputs"][0] is comps["resume_job"] and pick["fn"]("job-b")[0] == "job-b"
    resume, text = pick["fn"]("job-a: done (pass1 3/3)")  # a finished job is not put in "Resume job"
    assert resume == "" and "nothing to resume" in text
    delete = next(c for c in gr.created if c.kw.get("elem_id") == "job_delete")
    kw = _event(delete, "click")
    assert kw["fn"]("job-a", False)[0].startswith("Tick") and deleted == []
    jobs.pop(0)
    text, listing, confirm = kw["fn"]("job-a", True)
    assert text == "Deleted job-a." and deleted == ["job-a"] and listing["choices"] == jobs and confirm is False


def test_controlnet_is_explained_in_the_video_tab():
    gr = FakeGradio()
    ui.build(gr, elem_id=lambda x: x)
    note = next(c for c in gr.created if c.kw.get("elem_id") == "controlnet_note")
    assert "empty image" in ui.CONTROLNET_NOTE and "own image" in ui.CONTROLNET_NOTE and note.kind == "Markdown"


def test_cli_strategy_flag(tmp_path):
    from lib_vid2vid.__main__ import build_parser

    ns = build_parser().parse_args(["x.mp4", "--strategy", "loopback_temporal_blend", "--loopback-passes", "3"])
    s = params.settings_from_cli(ns, base=params.Settings().replace(**params.STRATEGIES[ns.strategy]))
    assert s.temporal.init_mode == "temporal_blend" and s.temporal.loopback_passes == 3


def _real_gradio_ui(gr, host=None):
    """ui.build inside a real gradio Blocks (gradio 3.41 in A1111, 4 in Forge): the components by setting name,
    and {output component: event function} of every event."""
    with gr.Blocks() as demo:
        steps = gr.Slider(minimum=1, maximum=150, value=20, elem_id="img2img_steps")
        denoise = gr.Slider(minimum=0, maximum=1, value=0.45, elem_id="img2img_denoising_strength")
        comps = ui.build(gr, elem_id=lambda x: f"script_img2img_vid2vid_{x}",
                         host={"steps": steps, "denoise": denoise, **(host or {})})
    fns = list(demo.fns.values()) if isinstance(demo.fns, dict) else list(demo.fns)
    return demo, dict(zip(params.api_arg_names(), comps)), fns, steps


def test_the_ui_builds_in_real_gradio_and_requests_reach_the_preview():
    """In the gradio the WebUI brings: the form builds, hidden sub-options are hidden in the page config, and
    gradio hands the browser session to the sigma preview (its last-input-wins ticket)."""
    import pytest

    gr = pytest.importorskip("gradio")
    from gradio import helpers

    seen = []
    demo, comps, fns, steps = _real_gradio_ui(gr, {"sigmas_text": lambda v: seen.append(v) or f"steps {v['steps']}"})
    config = demo.get_config_file()
    by_id = {c["id"]: c for c in config["components"]}
    assert by_id[comps["motion_low_cut"]._id]["props"]["visible"] is False
    assert by_id[comps["motion_mask"]._id]["props"].get("visible", True) is not False
    preview = next(f for f in fns if f.inputs and f.inputs[0] is comps["sigma_schedule"] and len(f.outputs) == 1
                   and any(c is steps for c in f.inputs))
    request = gr.Request(session_hash="abc")
    assert preview.inputs[-1].elem_id.endswith("sigmas_event")  # the browser's event count, last
    assert any("vid2vidSigmaEvents" in (d.get("js") or "") for d in config["dependencies"])
    args, *_ = helpers.special_args(preview.fn, ["karras", 0.03, 1.0, 7.0, 10, 0.3, 1], request)
    assert args[0] is request and preview.fn(*args) == "steps 10"
    assert seen[-1] == {"sigma_schedule": "karras", "sigma_min": 0.03, "sigma_max": 1.0, "rho": 7.0, "steps": 10,
                        "denoise": 0.3}
    toggle = next(f for f in fns if len(f.inputs) == 1 and f.inputs[0] is comps["motion_mask"])
    dep = next(d for d in config["dependencies"] if d["inputs"] == [comps["motion_mask"]._id] and d.get("js"))
    assert toggle.fn is None and dep["backend_fn"] is False
    assert dep["js"] == ui.visibility_js(["motion_mask"], [
        (n, params.SPEC_BY_NAME[n].show_if) for n in ("motion_low_cut", "motion_high_ext", "motion_soft")])
    # a dropdown shows words in both gradios: pairs in gradio 4, the labels themselves in gradio 3.41 (whose
    # Dropdown would show a pair's text); the Script maps a label back to its id
    choices = by_id[comps["sigma_schedule"]._id]["props"]["choices"]
    assert "Karras" in [c[0] if isinstance(c, (list, tuple)) else c for c in choices]
    assert params.coerce(params.SPEC_BY_NAME["sigma_schedule"], "Karras") == "karras"


def _cases(needed):
    """Value combinations for the inputs of a visibility rule: ids, labels, cleared boxes, text with spaces."""
    import itertools

    options = []
    for name in needed:
        spec = params.SPEC_BY_NAME[name]
        if spec.type is bool:
            values = [True, False]
        elif spec.choices:
            values = list(spec.choices) + list(spec.choice_labels)
        elif spec.type in (int, float):
            values = [0, 1, 2, None]
        else:
            values = ["1", " 1 ", "2", "", None]
        options.append(values)
    return [dict(zip(needed, combo)) for combo in itertools.product(*options)]


def test_visibility_in_the_browser_follows_the_same_rules_as_python():
    """The JavaScript that shows and hides sub-options in the page agrees with params.applies on every rule,
    for ids, labels (gradio 3.41 dropdowns), cleared boxes and padded text (run in node)."""
    import json
    import shutil

    import pytest

    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("node is not installed (apt-get install nodejs) to run the UI's JavaScript")
    script, expected = [], []
    for name in ui.controlling():
        deps = ui.rules(name)
        needed = list(dict.fromkeys(c for _n, conds in deps for c, _op, _v in conds))
        js = ui.visibility_js(needed, deps)
        for case in _cases(needed):
            script.append(f"out.push(({js})(...{json.dumps([case[n] for n in needed])}).map(u => u.visible));")
            expected.append(list(ui.visibility(name, ui._coerce_values(case)).values()))
    code = "const out = [];\n" + "\n".join(script) + "\nconsole.log(JSON.stringify(out));"
    result = subprocess.run([node, "-"], input=code, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout)
    assert len(got) == len(expected) > 100
    assert got == expected


def test_latest_only_follows_the_browsers_order_not_the_arrival():
    """The WebUI runs queued events on many threads: the browser's count decides which input is the newest."""
    latest = ui.LatestOnly()
    newer = latest.take("s", 5)
    older = latest.take("s", 3)  # typed first, reached the server second
    assert latest.is_newest("s", newer) and not latest.is_newest("s", older)


def test_sigma_preview_sends_the_browsers_event_count_in_real_gradio():
    class Gradio3(FakeGradio):
        __version__ = "3.41.2"

    gr = Gradio3()
    steps = FakeComponent("Slider", value=10)
    ui.build(gr, elem_id=lambda x: x, host={"sigmas_text": lambda v: f"steps {v.get('steps')}", "steps": steps})
    kw = _event(steps)
    counter = next(c for c in gr.created if c.kw.get("elem_id") == "sigmas_event")
    assert kw["inputs"][-1] is counter and "vid2vidSigmaEvents" in kw["_js"]
    assert steps not in [c for c in gr.created if c.kw.get("elem_id") == "sigmas_event"]
    assert not any(e for e in counter.events)  # the hidden count itself triggers nothing

    class Req:
        session_hash = "s"

    args = ["karras", 0.03, 1.0, 7.0]
    assert kw["fn"](Req(), *args, 10, 2) == "steps 10"
    assert kw["fn"](Req(), *args, 1, 1) == {}  # an older event arriving late changes nothing


def test_keyframe_preview_and_candidates_build_in_real_gradio():
    """In the gradio the WebUI brings: the keyframe preview shows while a keyframe mode applies (the default's;
    in the browser, by the same rule as Python), its button fills a gallery and a summary, and the Jobs tab's
    Propagate button records the picks and then presses Generate in the page."""
    import pytest

    gr = pytest.importorskip("gradio")
    seen = []
    host = {"list_jobs": lambda: [], "job_root": lambda n: None, "file_url": lambda p: None,
            "generate_button": "#img2img_generate",
            "keyframe_preview": lambda s: seen.append(s) or ([], "3 of 12 frames rendered")}
    demo, comps, fns, _steps = _real_gradio_ui(gr, host)
    config = demo.get_config_file()
    by_elem = {c["props"].get("elem_id"): c for c in config["components"]}
    prefix = "script_img2img_vid2vid_"
    defaults = params.Settings().to_dict()
    for name, conds in ui.UI_SHOW_IF.items():
        assert by_elem[prefix + name]["props"]["visible"] is params.conditions_hold(conds, defaults), name
    assert by_elem[prefix + "keyframe_show"]["props"]["visible"] is True  # keyframes are the default
    assert by_elem[prefix + "keyframe_strip"]["type"] == "gallery"
    toggle = next(d for d in config["dependencies"] if d["inputs"][:1] == [comps["keyframe_mode"]._id] and d.get("js"))
    keyed = [n for n, conds in ui.UI_SHOW_IF.items() if any(c == "keyframe_mode" for c, _op, _v in conds)]
    assert {by_elem[prefix + n]["id"] for n in keyed} <= set(toggle["outputs"])
    needed = list(dict.fromkeys(c for _n, conds in ui.rules("keyframe_mode") for c, _op, _v in conds))
    assert toggle["js"] == ui.visibility_js(needed, ui.rules("keyframe_mode"))
    show = next(f for f in fns if f.fn is not None and [o.elem_id for o in f.outputs] == [
        prefix + "keyframe_strip", prefix + "keyframe_summary"])
    values = [None] * len(show.inputs)
    names = params.api_arg_names()
    values[names.index("input")] = "/v.mp4"
    values[names.index("keyframe_mode")] = "interval"
    assert show.fn(*values) == ([], "3 of 12 frames rendered")
    assert seen[-1].temporal.keyframe_mode == "interval" and seen[-1].video.input == "/v.mp4"
    go = next(d for d in config["dependencies"] if "#img2img_generate" in (d.get("js") or ""))
    assert go["backend_fn"] is False and go["inputs"] == [by_elem[prefix + "job_go"]["id"]]
    propagate = next(d for d in config["dependencies"] if by_elem[prefix + "job_propagate"]["id"] in
                     [t[0] if isinstance(t, (list, tuple)) else t for t in d.get("targets", [])])
    assert by_elem[prefix + "job_go"]["id"] in propagate["outputs"]


def test_a_section_whose_settings_all_wait_for_one_condition_is_hidden_with_them():
    """The image-to-video tab: while its mode is not ticked every SVD setting is hidden, and so is their box
    (an empty accordion otherwise); ticking it shows the box and the settings together."""
    key = ui.section_key("Stable Video Diffusion")
    assert ui.UI_SHOW_IF[key] == (("svd_mode", "==", True),)
    gr = FakeGradio()
    comps = dict(zip(params.api_arg_names(), ui.build(gr, elem_id=lambda x: x)))
    box = next(c for c in gr.created if c.kw.get("elem_id") == key)
    assert box.kind == "Accordion" and box.kw["visible"] is False
    (_event, kw), = [e for e in comps["svd_mode"].events if e[0] == "change"]
    assert box in kw["outputs"] and comps["svd_frames"] in kw["outputs"]
    for ticked in (True, False):
        updates = dict(zip(kw["outputs"], kw["fn"](ticked)))
        assert updates[box] == updates[comps["svd_frames"]] == {"visible": ticked}
    shown = ui.visibility("svd_mode", {"svd_mode": True})
    hidden = ui.visibility("svd_mode", {"svd_mode": False})
    assert shown[key] and shown["svd_frames"] and not hidden[key] and not hidden["svd_frames"]
    # sections whose settings show under different conditions keep their box
    assert not any(k.startswith("sec_keyframes") for k in ui.UI_SHOW_IF)
