"""Write docs/SETTINGS.md (every setting: tab, CLI flag, API position, default, range, help) from params.py.

    python helpers/gen_docs.py          # rewrite
    python helpers/gen_docs.py --check  # exit 1 if out of date (the tests run this)
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = ROOT / "docs" / "SETTINGS.md"


def render() -> str:
    from lib_vid2vid import params

    api = {name: i for i, name in enumerate(params.api_arg_names())}
    lines = [
        "# Settings",
        "",
        "Generated from `lib_vid2vid/params.py` by `helpers/gen_docs.py`; do not edit by hand.",
        "",
        "- **CLI**: the flag of `python -m lib_vid2vid` (`-` when the WebUI or another flag supplies it).",
        "- **API**: the position in `script_args` of `/sdapi/v1/img2img` with `script_name: \"vid2vid\"` "
        "(`-` = taken from the img2img request itself: prompt, sampler, steps, seed, size ...). Send every "
        "position (`lib_vid2vid.params.api_args(settings)` builds the list; a list of another length is refused), "
        "or one dict of named values, `\"script_args\": [{\"input\": \"/data/clip.mp4\", \"fps\": 12}]`, "
        "which stays right when an update adds settings.",
        "",
    ]
    for group, cls in params.GROUPS:
        specs = [s for s in params.SPECS if s.group == group]
        lines += [f"## {cls.TAB} ({group})", "", "| setting | CLI | API | default | range | what it does |",
                  "|---|---|---|---|---|---|"]
        for s in specs:
            rng = ""
            if s.choices:
                rng = " / ".join(f"`{c}`" for c in s.choices)
            elif s.min is not None or s.max is not None:
                lo = "" if s.min is None else f"{s.min:g}"
                hi = "" if s.max is None else f"{s.max:g}"
                rng = f"{lo} .. {hi}" + (f" {s.unit}" if s.unit else "")
            elif s.unit:
                rng = s.unit
            flag = f"`{s.flag}`" if s.cli else "-"
            pos = str(api[s.name]) if s.name in api else "-"
            default = f"`{s.default!r}`"
            when = params.condition_text(s)
            text = s.help + (f" *Acts {when}.*" if when else "")
            lines.append(f"| `{s.name}` | {flag} | {pos} | {default} | {rng} | {text.replace('|', '/')} |")
        lines.append("")
    lines += ["## Image to video (`python -m lib_vid2vid.img2vid`)", "",
              "Its own settings (`lib_vid2vid.params.Img2VidSettings`), not part of a vid2vid job.", "",
              "| setting | CLI | default | range | what it does |", "|---|---|---|---|---|"]
    for s in params.IMG2VID_SPECS:
        rng = " / ".join(f"`{c}`" for c in s.choices) if s.choices else (
            f"{s.min:g} .. {s.max if s.max is None else format(s.max, 'g')}" + (f" {s.unit}" if s.unit else "")
            if s.min is not None else s.unit)
        lines.append(f"| `{s.name}` | `{s.flag}` | `{s.default!r}` | {rng} | {s.help.replace('|', '/')} |")
    lines.append("")
    lines += ["## Strategies", "", "Named presets (`lib_vid2vid.params.STRATEGIES`); the consistency benchmark "
              "runs each one.", ""]
    for name, values in params.STRATEGIES.items():
        lines.append(f"- `{name}`: {params.STRATEGY_NOTES[name]}. Sets " + ", ".join(f"{k}={v!r}" for k, v in values.items()))
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    from _generated import write_or_check

    return write_or_check(TARGET, render(), "python helpers/gen_docs.py", args.check)

if __name__ == "__main__":
    sys.exit(main())
