"""The tabbed gradio UI of the vid2vid Script, built from :mod:`lib_vid2vid.params`.

``build(gr, ...)`` returns the components whose values become the Script's args, in
:func:`params.api_arg_names` order (so the UI and the API agree by construction). Everything else it creates
(preset picker, video upload, sigma preview, job list, prompt help) is UI-only and never part of the args.

Layout, all from the settings' specs: a strategy preset first (each with one line of what it does and costs);
then one tab per ``Spec.tab``, each setting under its ``Spec.section`` (an accordion; ``Spec.advanced``
sections start folded); a setting with ``Spec.show_if`` conditions is shown only while they hold
(:func:`params.applies`), re-checked whenever a setting it depends on changes.

Works with gradio 3.41 (A1111 1.10) and gradio 4 (Forge): only constructor arguments both accept are used.
Help texts become hover hints through ``javascript/vid2vid_hints.js`` (generated from the same specs by
``helpers/gen_hints.py``; a test keeps them in sync).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import params
from .params import Spec


def component_for(gr: Any, spec: Spec, value: Any, elem_id: str,
                  choices_from_host: dict[str, list[str]] | None = None, *, visible: bool = True) -> Any:
    """One gradio component for a setting: slider for bounded numbers, number box for unbounded ones,
    checkbox, radio/dropdown for choices (labelled in words, the ids as values), textbox for text."""
    choices_from_host = choices_from_host or {}
    label = spec.label()
    common = dict(label=label, value=value, elem_id=elem_id)
    if not visible:
        common["visible"] = False
    if spec.type is bool:
        return gr.Checkbox(**common)
    if spec.choices:
        if spec.widget == "radio":  # (label, value) pairs: gradio 3.41 and 4
            choices = list(zip(spec.choice_labels, spec.choices)) if spec.choice_labels else list(spec.choices)
            return gr.Radio(choices=choices, **common)
        return gr.Dropdown(choices=dropdown_choices(gr, list(zip(spec.choice_labels or spec.choices, spec.choices))),
                           **{**common, "value": ui_value(gr, spec, value)})
    if spec.type in (int, float):
        if spec.min is not None and spec.max is not None and spec.widget != "number":
            step = spec.step or (1 if spec.type is int else (0.01 if spec.max <= 1 else 0.05))
            return gr.Slider(minimum=spec.min, maximum=spec.max, step=step, **common)
        return gr.Number(precision=0 if spec.type is int else None, **common)
    if spec.name in choices_from_host:
        return gr.Dropdown(choices=choices_from_host[spec.name], allow_custom_value=True, **common)
    lines = 3 if spec.widget in ("textarea", "expr") else 2 if spec.widget == "video" else 1  # video: a batch
    return gr.Textbox(lines=lines, placeholder=_placeholder(spec.help), **common)


def pairs_supported(gr: Any) -> bool:
    """Whether gr.Dropdown shows (label, value) pairs: gradio 4 does; gradio 3.41's Dropdown shows the pair's
    text (its Radio handles pairs), so there a dropdown lists the labels and the value is the label."""
    return _gradio_major(gr) != 3


def dropdown_choices(gr: Any, pairs: list[tuple[str, Any]]) -> list:
    return list(pairs) if pairs_supported(gr) else [label for label, _value in pairs]


def from_label(value: Any, pairs: list[tuple[str, Any]]) -> Any:
    """A dropdown's value back to its id when it is one of the labels (gradio 3.41), else unchanged."""
    for label, v in pairs:
        if value == label:
            return v
    return value


def ui_value(gr: Any, spec: Spec, value: Any) -> Any:
    """What a setting's component holds for ``value`` (an id): the id, or its label in a gradio 3.41 dropdown."""
    if (spec.choices and spec.choice_labels and spec.widget != "radio" and not pairs_supported(gr)
            and value in spec.choices):
        return spec.choice_labels[spec.choices.index(value)]
    return value


def _ids(values: dict[str, Any]) -> dict[str, Any]:
    """Form values with choice labels turned back into their ids (settings only; others unchanged)."""
    out = dict(values)
    for name, value in values.items():
        spec = params.SPEC_BY_NAME.get(name)
        if spec is not None and spec.choice_labels and value in spec.choice_labels:
            out[name] = spec.choices[spec.choice_labels.index(value)]
    return out


def _placeholder(text: str, limit: int = 80) -> str:
    """The help text cut at a word boundary."""
    if len(text) <= limit:
        return text
    return text[: text.rfind(" ", 0, limit)].rstrip(",;:") + " ..."


def sections(specs: list[Spec]) -> list[tuple[str, bool, list[Spec]]]:
    """``(section title, folded, specs)``: settings without a section first (title ""), then the sections in
    the order they first appear, folded ones (all their settings advanced) last."""
    order: dict[str, list[Spec]] = {"": []}
    for spec in specs:
        order.setdefault(spec.section, []).append(spec)
    out = [(title, bool(group) and all(s.advanced for s in group), group) for title, group in order.items() if group]
    return [o for o in out if not o[1]] + [o for o in out if o[1]]


HOST_OWN = {"resize_mode"}
"""Settings the WebUI's img2img tab already has (its own "Resize mode"): hidden in the WebUI, where the
host's value applies; the API and CLI keep them."""

API_ONLY = {"redo_keyframes"}
"""Settings for the API alone, hidden in the form: the Jobs tab does the same with its own box and button
("Render them again with another seed"), at once, and a value left in a form field would apply again at every
later Generate."""


def build(gr: Any, *, elem_id: Callable[[str], str], defaults: dict[str, Any] | None = None,
          host: dict[str, Any] | None = None) -> list[Any]:
    """Create the preset picker and the tabs; return the arg components in API order.

    ``host`` holds callbacks and components from the host adapter (all optional): ``list_jobs() -> list``
    (job names, or ``(label, name)`` pairs), ``job_folder(name) -> str``, ``open_folder(name) -> str``,
    ``delete_job(name) -> str``, ``sigmas_text(values: dict) -> str``, ``suggest_prompt(video_path) -> str``,
    ``choices`` ({setting: host choices}), ``own_settings`` (settings the host's own tab supplies, hidden
    here), and the img2img tab's ``steps``, ``denoise``, ``sampler`` and ``scheduler`` components (for the
    sigma preview).
    """
    defaults = dict(defaults or {})
    host = host or {}
    base = params.Settings()
    values = {s.name: defaults.get(s.name, base.get(s.name)) for s in params.ui_specs()}
    hidden = set(host.get("own_settings", ())) | API_ONLY
    comps: dict[str, Any] = {}
    extra: dict[str, Any] = {}  # UI-only elements shown under settings' conditions (UI_SHOW_IF)
    late: list[Callable[[], None]] = []  # wiring that needs the components of every tab
    report = _strategy_picker(gr, elem_id)
    with gr.Tabs(elem_id=elem_id("tabs")):
        for tab, specs in params.iter_tabs():
            with gr.Tab(tab, elem_id=elem_id("tab_" + tab.lower().replace(" ", "_").replace("&", "and"))):
                if tab == "Video":
                    upload = _ui_only(gr.Video(label="Upload a video (or give a path on the server below)",
                                      elem_id=elem_id("upload")))
                    uploads = _ui_only(gr.File(label="Or several videos: a batch, each video its own job",
                                               file_count="multiple", file_types=["video"],
                                               elem_id=elem_id("uploads")))
                for title, folded, group in sections(specs):
                    if title.startswith("ControlNet"):
                        _ui_only(gr.Markdown(CONTROLNET_NOTE, elem_id=elem_id("controlnet_note")))
                    if title and (folded or len(group) > 1):  # one setting needs no box of its own
                        key = section_key(title)
                        shown = params.conditions_hold(UI_SHOW_IF[key], values) if key in UI_SHOW_IF else True
                        box = gr.Accordion(title, open=not folded, elem_id=elem_id(key), visible=shown)
                        if key in UI_SHOW_IF:
                            extra[key] = box
                        with box:
                            _controls(gr, group, values, hidden, comps, elem_id, host)
                            if title == "Sigma schedule" and "sigmas_text" in host:
                                _sigma_preview(gr, comps, host, values, elem_id)
                            if title == "Keyframes":
                                extra.update(_keyframe_preview(gr, values, elem_id))
                    else:
                        _controls(gr, group, values, hidden, comps, elem_id, host)
                if tab == "Video":
                    upload.change(fn=lambda path: path or "", inputs=[upload], outputs=[comps["input"]])
                    uploads.change(fn=batch_paths, inputs=[uploads], outputs=[comps["input"]])
                    if "suggest_prompt" in host:
                        with gr.Row():
                            suggest = _ui_only(gr.Button("Suggest prompt tags from the video", elem_id=elem_id("suggest")))
                        tags = _ui_only(gr.Textbox(label="Frequent tags (copy into the prompt)", interactive=False,
                                          elem_id=elem_id("tags")))
                        suggest.click(fn=host["suggest_prompt"], inputs=[comps["input"]], outputs=[tags])
                if tab == "Jobs" and "list_jobs" in host:
                    late.append(_job_picker(gr, comps, host, elem_id))
    for wire in late:
        wire()
    _wire_presets(gr, report, comps)
    if extra:
        _wire_keyframe_preview(gr, comps, extra, host)
    _wire_visibility(gr, comps, extra)
    return [comps[name] for name in params.api_arg_names()]


CONTROLNET_NOTE = (
    "**ControlNet**: every enabled unit of the img2img tab applies to each frame. A unit with an empty image "
    "gets the current source frame (e.g. a canny or depth unit follows the video); a unit with its own image "
    "keeps that image for every frame.")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


def section_key(title: str) -> str:
    """A section's accordion: its element id (after the host's prefix) and its key in :data:`UI_SHOW_IF`."""
    return "sec_" + _slug(title)


def section_conditions(group: list[Spec]) -> tuple:
    """The ``show_if`` conditions every setting of a section shares: while one of them fails the section would
    be an empty box, so the box itself is hidden too. () when they share none."""
    common = set.intersection(*(set(s.show_if) for s in group)) if group else set()
    return tuple(c for c in group[0].show_if if c in common) if common else ()


def _is_number_box(spec: Spec) -> bool:
    return spec.type in (int, float) and not spec.choices and (
        spec.min is None or spec.max is None or spec.widget == "number")


def _controls(gr: Any, specs: list[Spec], values: dict[str, Any], hidden: set[str], comps: dict[str, Any],
              elem_id, host: dict[str, Any]) -> None:
    """The components of ``specs`` in order; neighbouring number boxes share a row."""
    runs: list[list[Spec]] = []
    for spec in specs:
        if runs and _is_number_box(spec) and _is_number_box(runs[-1][-1]):
            runs[-1].append(spec)
        else:
            runs.append([spec])
    for run in runs:
        if len(run) > 1:
            with gr.Row():
                for spec in run:
                    _control(gr, spec, values, hidden, comps, elem_id, host)
        else:
            _control(gr, run[0], values, hidden, comps, elem_id, host)


def _control(gr: Any, spec: Spec, values: dict[str, Any], hidden: set[str], comps: dict[str, Any], elem_id,
             host: dict[str, Any]) -> None:
    visible = spec.name not in hidden and params.applies(spec, values)
    comps[spec.name] = component_for(gr, spec, values[spec.name], elem_id(spec.name), host.get("choices", {}),
                                     visible=visible)
    if spec.name in hidden:
        comps[spec.name].vid2vid_host_own = True


def batch_paths(files: Any) -> str:
    """The video argument for several uploaded files: their paths on the server, one per line (gradio 3.41
    hands file objects with ``.name``, gradio 4 paths)."""
    return "\n".join(str(getattr(f, "name", f)) for f in files or [])


def _ui_only(component: Any) -> Any:
    """Mark a widget that is not a setting: A1111/Forge then keep it out of ui-config.json."""
    component.do_not_save_to_config = True
    return component


# ------------------------------------------------------------------ show a setting only while it applies

UI_SHOW_IF: dict[str, tuple] = {
    "keyframe_show": (("keyframe_mode", "!=", "off"),),
    "keyframe_summary": (("keyframe_mode", "!=", "off"),),
    "keyframe_strip": (("keyframe_mode", "!=", "off"),),
}
"""Elements of the UI that are not settings, shown only while settings' conditions hold (same rules, same
JavaScript as a setting's ``show_if``): the keyframe preview exists only while a keyframe mode applies, and a
section's box only while the conditions all its settings share hold (:func:`section_conditions`; e.g. the image
to video settings while that mode is ticked)."""
UI_SHOW_IF.update({section_key(title): conds for _tab, specs in params.iter_tabs()
                   for title, folded, group in sections(specs)
                   if title and (folded or len(group) > 1) and (conds := section_conditions(group))})


def rules(changed: str) -> list[tuple[str, tuple]]:
    """``(element, conditions)`` of everything whose conditions read ``changed``: dependent settings first (API
    order), then the UI-only elements of :data:`UI_SHOW_IF`."""
    out = [(spec.name, spec.show_if) for spec in params.dependents().get(changed, [])]
    out += [(name, conds) for name, conds in UI_SHOW_IF.items() if any(c == changed for c, _op, _v in conds)]
    return out


def controlling() -> list[str]:
    """The settings whose changes show or hide something (:func:`rules`)."""
    names = list(params.dependents())
    return names + [c for conds in UI_SHOW_IF.values() for c, _op, _v in conds if c not in names]


def visibility(changed: str, values: dict[str, Any], hidden: set[str] = frozenset()) -> dict[str, bool]:
    """{dependent setting or UI element: shown?} for everything whose conditions read ``changed``, under
    ``values``."""
    return {name: name not in hidden and params.conditions_hold(conds, values) for name, conds in rules(changed)}


def _wire_visibility(gr: Any, comps: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """When a setting that others depend on changes, show exactly the dependents (and the UI-only elements of
    ``extra``, by :data:`UI_SHOW_IF`) whose conditions hold.

    In a real gradio this runs in the browser (a JavaScript event, :func:`visibility_js`, the same rules as
    :func:`visibility`): instant, no request to the server, so gradio 4.40's client logs no "Too many arguments
    provided for the endpoint" for it. A stand-in gradio without a version gets the Python function."""
    hidden = {n for n, c in comps.items() if getattr(c, "vid2vid_host_own", False)}
    shown_by = {**comps, **(extra or {})}
    major = _gradio_major(gr)
    for name in dict.fromkeys(controlling()):
        if name not in comps:
            continue
        deps = [(n, conds) for n, conds in rules(name) if n in shown_by]
        if not deps:
            continue
        needed = list(dict.fromkeys(cond for _n, conds in deps for cond, _op, _v in conds))
        needed = [n for n in needed if n in comps]
        outputs = [shown_by[n] for n, _conds in deps]
        inputs = [comps[n] for n in needed]
        if major:
            js = visibility_js(needed, [(n, conds if n not in hidden else None) for n, conds in deps])
            comps[name].change(fn=None, inputs=inputs, outputs=outputs, **{("js" if major >= 4 else "_js"): js})
            continue

        def update(*current, _needed=tuple(needed), _name=name, _names=tuple(n for n, _c in deps)):
            shown = visibility(_name, _coerce_values(dict(zip(_needed, current))), hidden)
            return [gr.update(visible=shown[n]) for n in _names]

        comps[name].change(fn=update, inputs=inputs, outputs=outputs)


def _gradio_major(gr: Any) -> int:
    """gradio's major version (3 in A1111 1.10, 4 in Forge); 0 for a stand-in without one."""
    try:
        return int(str(gr.__version__).split(".")[0])
    except (AttributeError, ValueError):
        return 0


def visibility_js(inputs: list[str], deps: list[tuple[str, tuple | None]]) -> str:
    """A JavaScript function for a gradio event: gets the values of ``inputs`` (setting names, in order) and
    returns one ``{"__type__": "update", "visible": ...}`` per dependent, by the rules of
    :func:`params.applies` (a cleared box counts as its default, text compared trimmed). A dependent with
    conditions None (a setting the host's own tab supplies) stays hidden."""
    import json

    defaults = {n: params.SPEC_BY_NAME[n].default for n in inputs}
    labels = {n: dict(zip(params.SPEC_BY_NAME[n].choice_labels, params.SPEC_BY_NAME[n].choices))
              for n in inputs if params.SPEC_BY_NAME[n].choice_labels}  # a gradio 3.41 dropdown holds the label
    rules = [[name, None if conds is None else [[c, op, list(w) if isinstance(w, tuple) else w]
                                                 for c, op, w in conds]] for name, conds in deps]
    return ("(...vals) => { const names = " + json.dumps(inputs) + "; const defaults = " + json.dumps(defaults)
            + "; const labels = " + json.dumps(labels) + "; const rules = " + json.dumps(rules)
            + "; const v = {}; names.forEach((n, i) => { let x = vals[i];"
            " if (x === null || x === undefined || x === '') x = defaults[n];"
            " if (labels[n] && x in labels[n]) x = labels[n][x]; if (typeof x === 'string') x = x.trim();"
            " v[n] = x; });"
            " const holds = ([n, op, want]) => { const have = v[n];"
            " if (op === 'in') return want.includes(have); if (op === 'not in') return !want.includes(have);"
            " if (op === '==') return have === want; if (op === '!=') return have !== want;"
            " if (op === '>') return Number(have) > want; return true; };"
            " return rules.map(([name, conds]) => ({__type__: 'update', visible: conds !== null && conds.every(holds)})); }")


def _coerce_values(raw: dict[str, Any]) -> dict[str, Any]:
    """Form values as the settings' types (a cleared box counts as its default, a label as its id)."""
    out = {}
    for name, value in _ids(raw).items():
        spec = params.SPEC_BY_NAME[name]
        try:
            empty = value is None or (isinstance(value, str) and not value.strip())
            out[name] = spec.default if empty else params.coerce(spec, value)
        except params.SettingsError:
            out[name] = spec.default
    return out


# ------------------------------------------------------------------ strategy presets

def _strategy_picker(gr: Any, elem_id) -> dict[str, Any]:
    """The preset menu, first in the panel: each preset with its one line; a box says what applying changed."""
    pairs = [(f"{name}: {params.STRATEGY_NOTES.get(name, '')}", name) for name in params.STRATEGIES]
    picker = _ui_only(gr.Dropdown(label="Start from a strategy preset (sets the fields it names in every tab)",
                                  choices=dropdown_choices(gr, pairs), elem_id=elem_id("strategy")))
    changed = _ui_only(gr.Markdown("", elem_id=elem_id("strategy_changes")))
    return {"picker": picker, "changed": changed, "pairs": pairs}


def preset_changes(name: str, current: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """({setting: new value} of every setting the preset decides, a text naming the fields it changed)."""
    preset = params.STRATEGIES.get(name or "")
    if preset is None:
        return {}, ""
    base = params.Settings()
    new = {k: preset.get(k, base.get(k)) for k in dict.fromkeys(k for v in params.STRATEGIES.values() for k in v)}
    lines = []
    for key, value in new.items():
        spec = params.SPEC_BY_NAME[key]
        old = _coerce_values({key: current.get(key)})[key] if key in current else None
        if key in current and old != value:
            lines.append(f"- {spec.label()} ({spec.tab}): {_words(spec, old)} → {_words(spec, value)}")
    head = f"**{name}**: {params.STRATEGY_NOTES.get(name, '')}"
    if not lines:
        return new, head + "\n\nEvery field it sets already had its value."
    return new, head + f"\n\nChanged {len(lines)} field{'s' if len(lines) != 1 else ''}:\n" + "\n".join(lines)


def _words(spec: Spec, value: Any) -> str:
    if spec.type is bool:
        return "on" if value else "off"
    if spec.choices and spec.choice_labels and value in spec.choices:
        return spec.choice_labels[spec.choices.index(value)]
    return str(value)


def _wire_presets(gr: Any, report: dict[str, Any], comps: dict[str, Any]) -> None:
    keys = [k for k in dict.fromkeys(k for v in params.STRATEGIES.values() for k in v) if k in comps]

    def apply(name, *current):
        new, text = preset_changes(from_label(name, report["pairs"]), dict(zip(keys, current)))
        if not new:
            return [gr.update() for _ in keys] + [gr.update()]
        return [gr.update(value=ui_value(gr, params.SPEC_BY_NAME[k], new[k])) for k in keys] + [text]

    report["picker"].change(fn=apply, inputs=[report["picker"]] + [comps[k] for k in keys],
                            outputs=[comps[k] for k in keys] + [report["changed"]])


# ------------------------------------------------------------------ sigma preview

_SIGMA_INPUTS = ("sigma_schedule", "sigma_min", "sigma_max", "rho")
_HOST_SIGMA_INPUTS = ("steps", "denoise", "sampler", "scheduler")


class LatestOnly:
    """Last input wins: each call takes a ticket per session; a result whose ticket is no longer the newest of
    its session is dropped (the newer call shows its own), so a slow early call cannot overwrite a later one.

    The ticket is the browser's own count of its events when it sends one (``order``): the WebUI runs queued
    events on many threads, so the order in which calls reach :meth:`take` need not be the order the user typed
    in; without one, the order of arrival."""

    def __init__(self):
        self._lock = threading.Lock()
        self._newest: dict[str, int] = {}
        self._count = 0

    def take(self, session: str, order: int | None = None) -> int:
        with self._lock:
            if order is None:
                self._count += 1
                order = self._count
            if order > self._newest.get(session, -1):
                self._newest[session] = order
            if len(self._newest) > 1000:  # forget old sessions
                for key in list(self._newest)[:500]:
                    del self._newest[key]
            return order

    def is_newest(self, session: str, ticket: int) -> bool:
        with self._lock:
            return self._newest.get(session) == ticket


# the browser counts its sigma-preview events and sends the count as the last input (LatestOnly's order)
_COUNT_EVENTS_JS = ("(...values) => { window.vid2vidSigmaEvents = (window.vid2vidSigmaEvents || 0) + 1; "
                    "values[values.length - 1] = window.vid2vidSigmaEvents; return values; }")


def _session(request: Any) -> str:
    return str(getattr(request, "session_hash", None) or "")


def _sigma_preview(gr: Any, comps: dict[str, Any], host: dict[str, Any], values: dict[str, Any], elem_id) -> None:
    """The img2img tail the host will run, filled when the page loads and after every change of a setting
    or of the img2img tab's steps, denoise, sampler and schedule type."""
    extra = [(key, host[key]) for key in _HOST_SIGMA_INPUTS if host.get(key) is not None]
    first = {n: values[n] for n in _SIGMA_INPUTS}  # ids
    first.update({key: getattr(comp, "value", None) for key, comp in extra})
    # a function as the value: gradio fills the box on every page load (the model is loaded by then, so the
    # WebUI's own schedule can be shown), with no inputs and no request before the user acts
    box = _ui_only(gr.Textbox(label="Sigmas the WebUI will run (the img2img part of the schedule)",
                              value=lambda: _safe_text(host["sigmas_text"], first), interactive=False, lines=2,
                              elem_id=elem_id("sigmas_used")))
    names = list(_SIGMA_INPUTS) + [key for key, _ in extra]
    watched = [comps[n] for n in _SIGMA_INPUTS] + [comp for _, comp in extra]
    inputs = list(watched)
    latest = LatestOnly()
    major = _gradio_major(gr)
    js: dict[str, str] = {}
    if major:  # a real gradio: the browser numbers its events (a hidden box, last input)
        counter = _ui_only(gr.Number(value=0, visible=False, elem_id=elem_id("sigmas_event")))
        inputs = inputs + [counter]
        js = {("js" if major >= 4 else "_js"): _COUNT_EVENTS_JS}

    def update(request, *current):
        session = _session(request)
        order = None
        if major:
            *current, count = current
            order = int(count) if isinstance(count, (int, float)) else None
        ticket = latest.take(session, order)
        if not latest.is_newest(session, ticket):  # a newer input came first: nothing to show
            return gr.update()
        text = _safe_text(host["sigmas_text"], _ids(dict(zip(names, current))))
        return text if latest.is_newest(session, ticket) else gr.update()

    update.__annotations__ = {"request": gr.Request}  # gradio passes the request to a parameter typed so
    user_only = {id(comp) for key, comp in extra if key in ("sampler", "scheduler")}
    for comp in watched:
        # the WebUI sets its sampler and schedule dropdowns itself while the page loads (Forge): listening to
        # their changes would send a request before the user does anything; their user edits are "input"
        listen = comp.input if id(comp) in user_only else comp.change
        listen(fn=update, inputs=inputs, outputs=[box], **js)


def _safe_text(fn: Callable[[dict], str], values: dict[str, Any]) -> str:
    """``fn(values)``; an exception becomes one line in the box (never a traceback in the console)."""
    try:
        return fn(values)
    except Exception as exc:  # noqa: BLE001 - a preview must never break the page
        return f"cannot compute the schedule: {exc}"


# ------------------------------------------------------------------ keyframe preview

def _keyframe_preview(gr: Any, values: dict[str, Any], elem_id) -> dict[str, Any]:
    """The "Show keyframes" button, its one-line summary and the strip of keyframe thumbnails (captioned with
    frame number and reason), in the Keyframes section; shown only while a keyframe mode applies."""
    shown = params.conditions_hold(UI_SHOW_IF["keyframe_show"], values)
    hide = {} if shown else {"visible": False}
    button = _ui_only(gr.Button("Show keyframes", elem_id=elem_id("keyframe_show"), **hide))
    text = _ui_only(gr.Textbox(label="Keyframes of this video with these settings (before rendering)",
                               interactive=False, lines=1, elem_id=elem_id("keyframe_summary"), **hide))
    strip = _ui_only(gr.Gallery(label="Keyframes the host renders (frame: why)", columns=6, object_fit="contain",
                                elem_id=elem_id("keyframe_strip"), **hide))
    return {"keyframe_show": button, "keyframe_summary": text, "keyframe_strip": strip}


KEYFRAME_HOST_INPUTS = ("width", "height")
"""The host's own components the keyframe preview reads (the img2img tab's size: the output size)."""


def keyframe_preview(values: dict[str, Any], preview: Callable | None = None) -> tuple[list, str]:
    """(gallery items, summary line) for the form's ``values`` ({setting or host input: value}): the keyframes a
    job would render (:func:`lib_vid2vid.keyframe_view.preview`). Never raises: a problem is the summary line."""
    from . import keyframe_view

    preview = preview or keyframe_view.preview
    values = _ids(values)
    lines = [ln.strip() for ln in str(values.get("input") or "").splitlines() if ln.strip()]
    if not lines:
        return [], "Upload a video (Video tab) first."
    values["input"] = lines[0]
    base = params.Settings()
    size = {}
    for key in KEYFRAME_HOST_INPUTS:
        try:
            size[key] = int(float(values.pop(key))) // 8 * 8 if values.get(key) not in (None, "") else 0
        except (TypeError, ValueError):
            values.pop(key, None)
    if size:
        base = base.replace(**size)
    try:
        settings = keyframe_view.form_settings(values, base=base)
        items, text = preview(settings)
    except Exception as exc:  # noqa: BLE001 - a preview must never break the page
        return [], f"cannot choose the keyframes: {exc}"
    if len(lines) > 1:
        text += " (the first video of the batch)"
    return items, text


def _wire_keyframe_preview(gr: Any, comps: dict[str, Any], extra: dict[str, Any], host: dict[str, Any]) -> None:
    names = params.api_arg_names()
    host_inputs = [(key, host[key]) for key in KEYFRAME_HOST_INPUTS if host.get(key) is not None]

    def show(*current):
        values = dict(zip(names + [k for k, _ in host_inputs], current))
        return keyframe_preview(values, host.get("keyframe_preview"))

    extra["keyframe_show"].click(fn=show, inputs=[comps[n] for n in names] + [c for _, c in host_inputs],
                                 outputs=[extra["keyframe_strip"], extra["keyframe_summary"]])


# ------------------------------------------------------------------ jobs

def _job_picker(gr: Any, comps: dict[str, Any], host: dict[str, Any], elem_id) -> Callable[[], None]:
    """Every job in the output folder with its state; pick one to resume it, open or delete it."""
    with gr.Row():
        listing = {"pairs": _pairs(host["list_jobs"]())}
        jobs = _ui_only(gr.Dropdown(label="Jobs (state, progress)", choices=dropdown_choices(gr, listing["pairs"]),
                                    elem_id=elem_id("job_list")))
        refresh = _ui_only(gr.Button("Refresh", elem_id=elem_id("job_refresh")))
    info = _ui_only(gr.HTML("", elem_id=elem_id("job_info")))
    with gr.Row():
        if "open_folder" in host:
            opener = _ui_only(gr.Button("Open folder", elem_id=elem_id("job_open")))

            def open_folder(request, name):  # the request tells where the browser is
                return host["open_folder"](from_label(name, listing["pairs"]) or "", request)

            open_folder.__annotations__ = {"request": gr.Request}
            opener.click(fn=open_folder, inputs=[jobs], outputs=[info])
        if "delete_job" in host:
            confirm = _ui_only(gr.Checkbox(label="Yes, delete this job's folder", value=False,
                                           elem_id=elem_id("job_delete_confirm")))
            delete = _ui_only(gr.Button("Delete job", elem_id=elem_id("job_delete")))

            def remove(name, sure):
                name = from_label(name, listing["pairs"]) or ""
                text = host["delete_job"](name) if sure else "Tick \"Yes, delete\" first: deleting cannot be undone."
                return text, relist(), False

            delete.click(fn=remove, inputs=[jobs, confirm], outputs=[info, jobs, confirm])

    def relist():
        listing["pairs"] = _pairs(host["list_jobs"]())
        return gr.update(choices=dropdown_choices(gr, listing["pairs"]), value=None)

    def pick(name):
        """(value for "Resume job", HTML about the job). A job with nothing left to do is not put in "Resume
        job": the next Generate would only fail with "already finished"."""
        name = from_label(name, listing["pairs"]) or ""
        text = host.get("job_folder", lambda n: n)(name)
        if name and not host.get("resumable", lambda n: True)(name):
            return "", text + "<div>Finished: nothing to resume. Generate starts a new job.</div>"
        return name, text

    refresh.click(fn=relist, inputs=[], outputs=[jobs])
    if "job_root" not in host:
        jobs.change(fn=pick, inputs=[jobs], outputs=[comps["resume_job"], info])
        return lambda: None
    # keyframe candidates (a radio per keyframe) and flagged scene groups of the picked job
    cands = _ui_only(gr.HTML("", elem_id=elem_id("job_candidates")))
    propagate = _ui_only(gr.Button("Propagate with these picks", visible=False, elem_id=elem_id("job_propagate")))
    flagged = _ui_only(gr.HTML("", elem_id=elem_id("job_flagged")))
    with gr.Row():
        redo_frames = _ui_only(gr.Textbox(label="Keyframes to render again with another seed (frame numbers)",
                                          visible=False, elem_id=elem_id("job_redo_frames")))
        redo = _ui_only(gr.Button("Render them again with another seed and resume", visible=False,
                                  elem_id=elem_id("job_redo")))
    retry = _ui_only(gr.Button("Load this job's settings with the suggested keyframes added (a new job)",
                               visible=False, elem_id=elem_id("job_retry")))
    go = _ui_only(gr.Textbox(value="", visible=False, elem_id=elem_id("job_go")))
    picks_box = comps["keyframe_picks"]
    picks_id = elem_id("keyframe_picks")

    def pick_with_keyframes(label):
        resume, text = pick(label)
        name = from_label(label, listing["pairs"]) or ""
        view = job_keyframes(host, name, picks_id)
        return (resume, text, view["candidates"], gr.update(visible=view["waiting"]),
                view["picks"] if view["candidates"] or name else gr.update(), view["flagged"],
                gr.update(visible=bool(view["flagged"])), gr.update(visible=view["redo"], value=view["redo_frames"]),
                gr.update(visible=view["redo"]))

    jobs.change(fn=pick_with_keyframes, inputs=[jobs],
                outputs=[comps["resume_job"], info, cands, propagate, picks_box, flagged, retry, redo_frames, redo])

    names = params.api_arg_names()

    def load_retry(name):
        values, text = retry_form(host, from_label(name, listing["pairs"]) or "")
        if values is None:
            return [text] + [gr.update() for _ in names]
        return [text] + [gr.update(value=ui_value(gr, params.SPEC_BY_NAME[n], values[n])) if n in values
                         else gr.update() for n in names]

    def wire_retry() -> None:  # called once every tab is built: settings of later tabs (image to video) are outputs
        retry.click(fn=load_retry, inputs=[jobs], outputs=[info] + [comps[n] for n in names])

    def record(name, picks):
        message, token = record_job_picks(host, from_label(name, listing["pairs"]) or "", picks)
        return message, token, (from_label(name, listing["pairs"]) or "") if token else gr.update()

    def rerender(name, frames):
        name = from_label(name, listing["pairs"]) or ""
        message, token = redo_job_keyframes(host, name, frames)
        return message, token, name if token else gr.update()

    events = [propagate.click(fn=record, inputs=[jobs, picks_box], outputs=[info, go, comps["resume_job"]]),
              redo.click(fn=rerender, inputs=[jobs, redo_frames], outputs=[info, go, comps["resume_job"]])]
    major = _gradio_major(gr)
    if major and host.get("generate_button"):  # the job is ready: resume it (Generate) in the page
        js = ("(token) => { if (token) { const b = document.querySelector(" + repr(host["generate_button"])
              + "); if (b) b.click(); } return []; }")
        for event in events:
            event.then(fn=None, inputs=[go], outputs=[], **{("js" if major >= 4 else "_js"): js})
    return wire_retry


def job_keyframes(host: dict[str, Any], name: str, picks_elem_id: str) -> dict[str, Any]:
    """What the Jobs tab shows of a picked job's keyframes: ``candidates`` (HTML, radios), ``picks`` (their text),
    ``waiting`` (candidates still to be picked: the Propagate button shows), ``flagged`` (HTML of the flagged
    scene groups)."""
    from . import keyframe_view
    from .workspace import Job

    out = {"candidates": "", "picks": "", "waiting": False, "flagged": "", "redo": False, "redo_frames": ""}
    root = host["job_root"](name) if name else None
    if root is None:
        return out
    try:
        job = Job.open(root)
        out["candidates"], out["picks"] = keyframe_view.candidates_html(job, host.get("file_url", lambda p: None),
                                                                        picks_elem_id)
        out["waiting"] = any(not it["taken"] for it in keyframe_view.candidates(job))
        out["flagged"] = keyframe_view.flagged_html(job)
        frames = keyframe_view.redo_candidates(job)
        out["redo"], out["redo_frames"] = bool(frames), ", ".join(map(str, frames))
    except Exception as exc:  # noqa: BLE001 - a damaged job must not break the tab
        out["candidates"] = f"<div>Cannot read the job's keyframes: {exc}</div>"
    return out


def retry_form(host: dict[str, Any], name: str) -> tuple[dict[str, Any] | None, str]:
    """(the form's values for a new job of the flagged job ``name`` with keyframes added, or None; a line for the
    UI) (:func:`lib_vid2vid.keyframe_view.retry_values`)."""
    import html

    from . import keyframe_view
    from .workspace import Job

    root = host["job_root"](name) if name else None
    if root is None:
        return None, "Pick a job first."
    try:
        values, added = keyframe_view.retry_values(Job.open(root))
    except Exception as exc:  # noqa: BLE001 - said in the tab
        return None, html.escape(str(exc))
    if not added:
        return None, "No keyframe to add: every gap of the flagged scenes is a single frame."
    return values, (f"Loaded the settings of {html.escape(name)} into the form, with keyframes "
                    f"{', '.join(map(str, added))} added (Temporal tab, <em>Also keyframes</em>). Press Generate: a "
                    f"new job renders every keyframe again (the img2img tab's prompt, seed and size apply); "
                    f"{html.escape(name)} is kept.")


def redo_job_keyframes(host: dict[str, Any], name: str, frames: str) -> tuple[str, str]:
    """Mark keyframes of the job to be rendered again with another seed
    (:func:`lib_vid2vid.keyrun.redo_keyframes`): (a line for the UI, a token, non-empty when it can resume)."""
    import html
    import time

    from .keyrun import redo_keyframes

    root = host["job_root"](name) if name else None
    if root is None:
        return "Pick a job first.", ""
    try:
        line = redo_keyframes(root, params.parse_frame_list(frames or "", "keyframes"))
    except Exception as exc:  # noqa: BLE001 - said in the tab
        return html.escape(str(exc)), ""
    return html.escape(line) + " Resuming it (Generate) ...", f"{name}@{time.time():.3f}"


def record_job_picks(host: dict[str, Any], name: str, picks: str) -> tuple[str, str]:
    """Record the picks in the job (:func:`lib_vid2vid.keyframe_view.record_picks`): (a line for the UI, a token
    that is non-empty when the job can now be resumed)."""
    import html
    import time

    from . import keyframe_view

    root = host["job_root"](name) if name else None
    if root is None:
        return "Pick a job first.", ""
    try:
        line = keyframe_view.record_picks(root, picks or "")
    except Exception as exc:  # noqa: BLE001 - said in the tab
        return html.escape(str(exc)), ""
    return html.escape(line) + " Resuming it (Generate) ...", f"{name}@{time.time():.3f}"


def _pairs(items: list) -> list[tuple[str, str]]:
    """Job list entries as (label, name) pairs (a plain name is its own label)."""
    return [tuple(item) if isinstance(item, (list, tuple)) else (str(item), str(item)) for item in items]


def hints() -> dict[str, str]:
    """Setting name -> hover hint (help text with unit, range and when it applies), for javascript/vid2vid_hints.js."""
    out = {}
    for spec in params.ui_specs():
        extra = []
        if spec.unit:
            extra.append(spec.unit)
        if spec.min is not None and spec.max is not None:
            extra.append(f"{spec.min:g}..{spec.max:g}")
        when = params.condition_text(spec)
        out[spec.name] = spec.help + (f" [{', '.join(extra)}]" if extra else "") + (f" ({when})" if when else "")
    return out
