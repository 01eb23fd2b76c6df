"""What the WebUI shows of the keyframe strategy (pure functions; the gradio wiring is in :mod:`lib_vid2vid.ui`).

* **Before rendering** (:func:`preview`): the keyframes the job would choose for the uploaded video with the form's
  settings, as thumbnails captioned with frame number and reason, and a one-line summary (how many frames the
  host renders, the scene groups).
* **Candidates** (:func:`candidates_html`, :func:`record_picks`): after a job with ``keyframe_candidates`` N stops,
  each keyframe's N candidates side by side with one radio button per keyframe; the radios write the
  ``keyframe_picks`` box (``javascript/vid2vid_picks.js``), and "Propagate with these picks" records the picks in
  the job's stored settings, so resuming the job takes them (a pick already taken is kept, as with the CLI/API).
* **Flagged scene groups** (:func:`flagged_html`, :func:`redo_candidates`, :func:`suggested_additions`,
  :func:`retry_values`): the groups problem detection flagged; their keyframes can be rendered again with another
  seed in the same job (:func:`lib_vid2vid.keyrun.redo_keyframes`, then the job resumes), or the job's settings
  loaded into the form with keyframes added in the middle of each gap (a new job).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .keyframes import suggested_additions

REASON_WORDS = {"start": "start", "cut": "cut", "interval": "interval", "adaptive": "change",
                "max_gap": "max gap", "user": "user"}
"""A keyframe's reason (:class:`lib_vid2vid.keyframes.KeyframePlan.reasons`) in the captions' words."""

PREVIEW_HEIGHT = 96
"""Thumbnail height of the preview strip, pixels."""
PREVIEW_MAX = 60
"""Thumbnails shown at most (the first keyframes); the summary counts them all."""

FileUrl = Callable[[str], "str | None"]


def caption(frame: int, reason: str) -> str:
    """``"12: interval"`` (frame number: why it is a keyframe; short, so it fits under a thumbnail)."""
    return f"{frame}: {REASON_WORDS.get(reason, reason)}"


def summary(plan: Any, shown: int | None = None, folder: str = "") -> str:
    """One line: keyframes of frames (the share the host renders, or that comes from ``folder``: keyframes restyled
    elsewhere), scene groups with their ranges (up to 6), and how many thumbnails are shown when not all."""
    n, total, groups = len(plan.frames), plan.total, plan.groups
    share = 100.0 * n / total if total else 0.0
    made = f"({share:.0f}%) read from {folder}, none rendered" if folder else f"rendered ({share:.0f}%)"
    text = (f"{n} of {total} frames {made}, the others carried along the motion; "
            f"{len(groups)} scene group{'s' if len(groups) != 1 else ''}")
    if 1 < len(groups) <= 6:
        text += " (frames " + ", ".join(f"{a}-{b}" for a, b in groups) + ")"
    if shown is not None and shown < n:
        text += f"; the first {shown} shown"
    return text


def preview(settings: Any, height: int = PREVIEW_HEIGHT, max_keys: int = PREVIEW_MAX
            ) -> tuple[list[tuple[Any, str]], str]:
    """``([(thumbnail RGB uint8 HWC, caption)], summary)`` of the keyframes a job with ``settings`` would render.

    The plan is the job's own (frames decoded at the output size, streamed one at a time: the adaptive choice
    and the cut detection measure there); only the keyframes' thumbnails are kept."""
    from .keyrun import keyframe_thumbnails

    if settings.temporal.keyframe_mode == "off":
        return [], "Keyframes are off: every frame is rendered."
    plan, thumbs = keyframe_thumbnails(settings, height=height, max_keys=max_keys)
    items = [(thumb, caption(i, plan.reasons.get(i, "?"))) for i, thumb in thumbs]
    return items, summary(plan, len(items), settings.temporal.keyframe_folder.strip())


def form_settings(values: Mapping[str, Any], base: Any = None) -> Any:
    """Settings from the form's values ({setting name: value}, labels already ids), over ``base`` (the host's
    own values: size, seed ...). A cleared box keeps its default."""
    from . import params

    clean = {k: v for k, v in values.items() if k in params.SPEC_BY_NAME and v is not None
             and not (isinstance(v, str) and not v.strip() and params.SPEC_BY_NAME[k].type is not str)}
    return params.Settings.from_dict(clean, base=base)


# ---------------------------------------------------------------- candidates


def candidates(job: Any) -> list[dict[str, Any]]:
    """A job's keyframe candidates: ``[{"frame", "paths": [candidate images], "pick"}]`` in keyframe order, for
    every keyframe whose N candidates are all rendered; [] for a job without candidates. ``pick`` is the one
    taken (manifest ``keyframes.picks``), else the one the job's ``keyframe_picks`` names, else 0."""
    from .params import SettingsError, parse_picks

    settings = job.manifest.get("settings") or {}
    count = int(settings.get("keyframe_candidates") or 1)
    info = job.manifest.get("keyframes") or {}
    plan = info.get("plan") or {}
    if count <= 1 or not plan.get("frames"):
        return []
    done = job.frames_done("candidates")
    try:
        wanted = parse_picks(str(settings.get("keyframe_picks") or ""), count)
    except SettingsError:
        wanted = {}
    taken = {int(k): int(v) for k, v in (info.get("picks") or {}).items()}
    out = []
    for slot, frame in enumerate(int(f) for f in plan["frames"]):
        if (slot + 1) * count > done:
            break
        out.append({"frame": frame, "paths": [str(job.frame_path("candidates", slot * count + c)) for c in range(count)],
                    "pick": taken.get(frame, wanted.get(frame, 0)), "taken": frame in taken})
    return out


def picks_text(picks: Mapping[int, int]) -> str:
    """``{12: 2, 30: 1}`` -> ``"12:2, 30:1"`` (the keyframe_picks form), in frame order."""
    return ", ".join(f"{f}:{c}" for f, c in sorted(picks.items()))


def candidates_html(job: Any, file_url: FileUrl, picks_elem_id: str) -> tuple[str, str]:
    """(HTML, picks text) for the Jobs tab: each keyframe's candidates side by side, a radio button per candidate
    (one group per keyframe; choosing one writes every keyframe's pick into the box ``#picks_elem_id`` through
    ``vid2vidPick`` in javascript/vid2vid_picks.js), the current picks checked. ("", "") without candidates."""
    items = candidates(job)
    if not items:
        return "", ""
    e = html.escape
    count = len(items[0]["paths"])
    waiting = any(not it["taken"] for it in items)
    head = (f"<div><strong>{len(items)} keyframes, {count} candidates each</strong>: pick one per keyframe, then "
            f"press <em>Propagate with these picks</em>.</div>" if waiting else
            f"<div><strong>Picks taken</strong> ({len(items)} keyframes): the job propagated them; they are kept "
            f"when it resumes.</div>")
    rows = []
    for it in items:
        frame = it["frame"]
        cells = []
        for c, path in enumerate(it["paths"]):
            url = file_url(path)
            img = (f'<img src="{e(url)}" alt="frame {frame}, candidate {c}" loading="lazy">' if url
                   else f"<code>{e(path)}</code>")
            checked = " checked" if c == it["pick"] else ""
            disabled = " disabled" if it["taken"] else ""
            cells.append(f'<label class="vid2vid-candidate">{img}<span><input type="radio" '
                         f'name="vid2vid-pick-{frame}" value="{c}" data-frame="{frame}"{checked}{disabled} '
                         f'onchange="vid2vidPick(this, {e(repr(picks_elem_id))})"> candidate {c}</span></label>')
        rows.append(f'<div class="vid2vid-candidates-row" data-frame="{frame}"><div>frame {frame}'
                    f'{" (taken)" if it["taken"] else ""}</div>{"".join(cells)}</div>')
    text = picks_text({it["frame"]: it["pick"] for it in items})
    return f'<div class="vid2vid-candidates">{head}{"".join(rows)}</div>', text


def record_picks(job_root: str | Path, text: str) -> str:
    """Store ``text`` (keyframe_picks, "frame:candidate, ...") in a waiting job's settings, so that resuming it
    propagates with these picks. Checked first: the job has candidates, each candidate exists, each frame is a
    keyframe. Not while a run holds the job. Returns a line for the UI; raises Vid2VidError with what to do."""
    from .errors import Vid2VidError
    from .params import parse_picks
    from .workspace import Job

    job = Job.open_locked(job_root)  # JobRunning while a run holds it
    try:
        settings = job.manifest.get("settings") or {}
        count = int(settings.get("keyframe_candidates") or 1)
        if count <= 1:
            raise Vid2VidError(f"Job {job.root.name} renders no candidates (keyframe_candidates is 1): nothing to "
                               f"pick")
        picks = parse_picks(text, count)
        frames = [int(f) for f in ((job.manifest.get("keyframes") or {}).get("plan") or {}).get("frames", [])]
        unknown = sorted(set(picks) - set(frames))
        if unknown:
            raise Vid2VidError(f"keyframe_picks: frame {unknown[0]} is not a keyframe of {job.root.name} (they are "
                               f"{', '.join(map(str, frames))})")
        settings["keyframe_picks"] = picks_text(picks)
        job.manifest["settings"] = settings
        job.save()
        job.log(f"keyframe picks recorded from the UI: {settings['keyframe_picks'] or 'all candidate 0'}")
    finally:
        job.close()
    return f"Picks recorded for {job.root.name}: {settings['keyframe_picks'] or 'candidate 0 everywhere'}."


# ---------------------------------------------------------------- flagged scene groups


def flagged_groups(job: Any) -> list[dict[str, Any]]:
    """The scene groups problem detection flagged (manifest ``keyframes.groups``), in frame order."""
    return [g for g in ((job.manifest.get("keyframes") or {}).get("groups") or []) if g.get("flagged")]


def redo_candidates(job: Any) -> list[int]:
    """The keyframes of the flagged scene groups, to render again with another seed ([] when none is flagged
    or the job cannot: candidates, a grid, keyframes from a folder, warped noise; see
    :func:`lib_vid2vid.keyrun.redo_keyframes`)."""
    from .keyrun import redo_refusal
    from .params import Settings

    if redo_refusal(Settings.from_stored(job.manifest.get("settings") or {})) is not None:
        return []
    return sorted({int(k) for g in flagged_groups(job) for k in g.get("keyframes") or []})


def retry_values(job: Any) -> tuple[dict[str, Any], list[int]]:
    """The form's values to render a flagged job again with more keyframes: the job's own settings with the
    :func:`suggested_additions` added to ``keyframe_add`` and no job to resume (a new job: the host renders its
    keyframes again). Returns (values, the frames added)."""
    from .params import NO_NEUTRAL, SPEC_BY_NAME, parse_frame_list

    stored = job.manifest.get("settings") or {}
    values = {k: v for k, v in stored.items() if k in SPEC_BY_NAME}
    # settings added since the job was made: what it rendered with (their neutral values), as Settings.from_stored
    values.update({n: s.neutral for n, s in SPEC_BY_NAME.items() if n not in stored and s.neutral is not NO_NEUTRAL})
    had = parse_frame_list(str(values.get("keyframe_add") or ""), "keyframe_add")
    removed = set(parse_frame_list(str(values.get("keyframe_remove") or ""), "keyframe_remove"))
    added = [f for f in suggested_additions(flagged_groups(job)) if f not in had and f not in removed]
    values["keyframe_add"] = ", ".join(map(str, sorted(set(had) | set(added))))
    values["resume_job"] = ""
    values["keyframe_picks"] = ""
    return values, added


def flagged_html(job: Any) -> str:
    """The flagged groups of a job with why, and the keyframes :func:`suggested_additions` proposes; ""
    when none is flagged."""
    groups = flagged_groups(job)
    if not groups:
        return ""
    e = html.escape
    rows = "".join(f"<li>frames {g['first']}-{g['last']}: {e(str(g.get('why') or 'flagged'))} (keyframes "
                   f"{', '.join(map(str, g.get('keyframes') or []))})</li>" for g in groups)
    add = suggested_additions(groups)
    return (f'<div class="vid2vid-flagged"><strong>Scenes flagged by problem detection</strong><ul>{rows}</ul>'
            + (f"<div>Suggested keyframes to add: {', '.join(map(str, add))}</div>" if add else "") + "</div>")
