"""The tabbed gradio UI of the vid2vid Script, built from :mod:`lib_vid2vid.params`.

``build(gr, ...)`` returns the components whose values become the Script's args, in
:func:`params.api_arg_names` order (so the UI and the API agree by construction). Everything else it creates
(video upload, sigma preview, job list, prompt help) is UI-only and never part of the args.

Works with gradio 3.41 (A1111 1.10) and gradio 4 (Forge): only constructor arguments both accept are used.
Help texts become hover hints through ``javascript/vid2vid_hints.js`` (generated from the same specs by
``helpers/gen_hints.py``; a test keeps them in sync).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import params
from .params import Spec


def component_for(gr: Any, spec: Spec, value: Any, elem_id: str,
                  choices_from_host: dict[str, list[str]] | None = None) -> Any:
    """One gradio component for a setting: slider for bounded numbers, number box for unbounded ones,
    checkbox, radio/dropdown for choices, textbox for text."""
    choices_from_host = choices_from_host or {}
    label = spec.label()
    common = dict(label=label, value=value, elem_id=elem_id)
    if spec.type is bool:
        return gr.Checkbox(**common)
    if spec.choices:
        if spec.widget == "radio":
            return gr.Radio(choices=list(spec.choices), **common)
        return gr.Dropdown(choices=list(spec.choices), **common)
    if spec.type in (int, float):
        if spec.min is not None and spec.max is not None and spec.widget != "number":
            step = spec.step or (1 if spec.type is int else (0.01 if spec.max <= 1 else 0.05))
            return gr.Slider(minimum=spec.min, maximum=spec.max, step=step, **common)
        return gr.Number(precision=0 if spec.type is int else None, **common)
    if spec.name in choices_from_host:
        return gr.Dropdown(choices=choices_from_host[spec.name], allow_custom_value=True, **common)
    lines = 3 if spec.widget in ("textarea", "expr") else 2 if spec.widget == "video" else 1  # video: a batch
    return gr.Textbox(lines=lines, placeholder=_placeholder(spec.help), **common)


def _placeholder(text: str, limit: int = 80) -> str:
    """The help text cut at a word boundary."""
    if len(text) <= limit:
        return text
    return text[: text.rfind(" ", 0, limit)].rstrip(",;:") + " ..."


def build(gr: Any, *, elem_id: Callable[[str], str], defaults: dict[str, Any] | None = None,
          host: dict[str, Any] | None = None) -> list[Any]:
    """Create the tabs; return the arg components in API order.

    ``host`` holds callbacks and components from the host adapter: ``list_jobs() -> list[str]``,
    ``sigmas_text(values: dict) -> str``, ``suggest_prompt(video_path) -> str``, and optionally the img2img
    tab's ``steps`` and ``denoise`` components (for the sigma preview).
    """
    defaults = dict(defaults or {})
    host = host or {}
    base = params.Settings()
    comps: dict[str, Any] = {}
    with gr.Tabs(elem_id=elem_id("tabs")):
        for tab, specs in params.iter_tabs():
            with gr.Tab(tab, elem_id=elem_id("tab_" + tab.lower().replace(" ", "_").replace("&", "and"))):
                if tab == "Video":
                    upload = _ui_only(gr.Video(label="Upload a video (or give a path on the server below)",
                                      elem_id=elem_id("upload")))
                    uploads = _ui_only(gr.File(label="Or several videos: a batch, each video its own job",
                                               file_count="multiple", file_types=["video"],
                                               elem_id=elem_id("uploads")))
                for spec in specs:
                    value = defaults.get(spec.name, base.get(spec.name))
                    comps[spec.name] = component_for(gr, spec, value, elem_id(spec.name),
                                                     host.get("choices", {}))
                if tab == "Video":
                    upload.change(fn=lambda path: path or "", inputs=[upload], outputs=[comps["input"]])
                    uploads.change(fn=batch_paths, inputs=[uploads], outputs=[comps["input"]])
                    if "suggest_prompt" in host:
                        with gr.Row():
                            suggest = _ui_only(gr.Button("Suggest prompt tags from the video", elem_id=elem_id("suggest")))
                        tags = _ui_only(gr.Textbox(label="Frequent tags (copy into the prompt)", interactive=False,
                                          elem_id=elem_id("tags")))
                        suggest.click(fn=host["suggest_prompt"], inputs=[comps["input"]], outputs=[tags])
                if tab == "Temporal":
                    _strategy_picker(gr, comps, elem_id)
                if tab == "Sampling" and "sigmas_text" in host:
                    _sigma_preview(gr, comps, host, elem_id)
                if tab == "Jobs" and "list_jobs" in host:
                    _job_picker(gr, comps, host, elem_id)
    return [comps[name] for name in params.api_arg_names()]


def batch_paths(files: Any) -> str:
    """The video argument for several uploaded files: their paths on the server, one per line (gradio 3.41
    hands file objects with ``.name``, gradio 4 paths)."""
    return "\n".join(str(getattr(f, "name", f)) for f in files or [])


def _ui_only(component: Any) -> Any:
    """Mark a widget that is not a setting: A1111/Forge then keep it out of ui-config.json."""
    component.do_not_save_to_config = True
    return component


def _strategy_picker(gr: Any, comps: dict[str, Any], elem_id) -> None:
    """A preset menu: picking one sets every control the presets decide (params.STRATEGIES)."""
    keys = [k for k in dict.fromkeys(k for v in params.STRATEGIES.values() for k in v) if k in comps]
    picker = _ui_only(gr.Dropdown(label="Apply a strategy preset", choices=list(params.STRATEGIES),
                                  elem_id=elem_id("strategy")))

    def apply(name):
        preset = params.STRATEGIES.get(name or "", {})
        base = params.Settings()
        return [gr.update(value=preset.get(k, base.get(k))) if name else gr.update() for k in keys]

    picker.change(fn=apply, inputs=[picker], outputs=[comps[k] for k in keys])


_SIGMA_INPUTS = ("sigma_schedule", "sigma_min", "sigma_max", "rho")


def _sigma_preview(gr: Any, comps: dict[str, Any], host: dict[str, Any], elem_id) -> None:
    box = _ui_only(gr.Textbox(label="Sigmas the host will really use (img2img tail)", interactive=False,
                     elem_id=elem_id("sigmas_used")))
    extra = [c for c in (host.get("steps"), host.get("denoise"), host.get("sampler")) if c is not None]
    inputs = [comps[n] for n in _SIGMA_INPUTS] + extra

    def update(*values):
        named = dict(zip(_SIGMA_INPUTS, values[: len(_SIGMA_INPUTS)]))
        rest = list(values[len(_SIGMA_INPUTS):])
        for key, comp in (("steps", host.get("steps")), ("denoise", host.get("denoise")),
                          ("sampler", host.get("sampler"))):
            if comp is not None:
                named[key] = rest.pop(0)
        return host["sigmas_text"](named)

    for comp in inputs:
        comp.change(fn=update, inputs=inputs, outputs=[box])


def _job_picker(gr: Any, comps: dict[str, Any], host: dict[str, Any], elem_id) -> None:
    with gr.Row():
        jobs = _ui_only(gr.Dropdown(label="Unfinished jobs", choices=host["list_jobs"](), elem_id=elem_id("job_list")))
        refresh = _ui_only(gr.Button("Refresh", elem_id=elem_id("job_refresh")))
    info = _ui_only(gr.Textbox(label="Job folder", interactive=False, elem_id=elem_id("job_info")))

    def pick(name):
        name = name or ""
        return name, host.get("job_folder", lambda n: n)(name)

    jobs.change(fn=pick, inputs=[jobs], outputs=[comps["resume_job"], info])
    if "open_folder" in host:
        opener = _ui_only(gr.Button("Open folder", elem_id=elem_id("job_open")))
        opener.click(fn=host["open_folder"], inputs=[jobs], outputs=[info])
    refresh.click(fn=lambda: gr.update(choices=host["list_jobs"]()), inputs=[], outputs=[jobs])


def hints() -> dict[str, str]:
    """Setting name -> hover hint (help text with unit and range), for javascript/vid2vid_hints.js."""
    out = {}
    for spec in params.ui_specs():
        extra = []
        if spec.unit:
            extra.append(spec.unit)
        if spec.min is not None and spec.max is not None:
            extra.append(f"{spec.min:g}..{spec.max:g}")
        out[spec.name] = spec.help + (f" [{', '.join(extra)}]" if extra else "")
    return out
