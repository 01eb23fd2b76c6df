"""The result area under the WebUI's output: the finished video in a player, download links, errors, a batch.

Pure HTML from the result the Script hands back (the ``vid2vid_*`` entries of ``extra_generation_params``,
which the WebUI carries in its generation info), so it works the same for gradio 3.41 and 4 and for a
result read back from the API. Files are linked through ``file_url(path) -> url or None``, which the host
adapter provides (the WebUI serves files at ``/file=<path>``); None means the file cannot be served and
only its path on the server is shown.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FileUrl = Callable[[str], "str | None"]

FILE_LABELS = {"video": "video", "comparison": "comparison video", "zip": "zip package",
               "report": "report (JSON)", "log": "job log", "contact_sheet": "contact sheet"}
"""What each downloadable file of a job is called in the result area, in the order they are listed."""

_PLAYABLE = {".mp4": "video/mp4", ".webm": "video/webm"}


def job_files(job_dir: str | Path) -> dict[str, str]:
    """{kind: path} of a finished job's result files that exist: the manifest's ``outputs`` (video,
    comparison, contact sheet, zip), ``report.json`` and ``job.log``."""
    root = Path(job_dir)
    out: dict[str, str] = {}
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    for kind, name in (manifest.get("outputs") or {}).items():
        if isinstance(name, str) and (root / name).exists():
            out[kind] = str(root / name)
    for kind, name in (("report", "report.json"), ("log", "job.log")):
        if (root / name).is_file():
            out[kind] = str(root / name)
    return out


def extract(generation_info: str | dict | None) -> dict[str, Any] | None:
    """The vid2vid result (keys without the ``vid2vid_`` prefix) from the WebUI's generation info JSON, or
    None when the last generation was not vid2vid's."""
    if not generation_info:
        return None
    try:
        data = json.loads(generation_info) if isinstance(generation_info, str) else generation_info
    except ValueError:
        return None
    extra = (data or {}).get("extra_generation_params") or {}
    found = {k[len("vid2vid_"):]: v for k, v in extra.items() if str(k).startswith("vid2vid_")}
    return found or None


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _player(path: str, file_url: FileUrl, elem: str) -> str:
    url = file_url(path)
    if url is None:
        return ""
    suffix = Path(path).suffix.lower()
    if suffix in _PLAYABLE:
        return (f'<video class="vid2vid-player" id="{_e(elem)}" controls preload="metadata" playsinline '
                f'src="{_e(url)}"></video>')
    if suffix == ".gif":
        return f'<img class="vid2vid-player" id="{_e(elem)}" src="{_e(url)}" alt="result">'
    return ""


def _links(files: dict[str, str], file_url: FileUrl) -> str:
    items = []
    for kind, label in FILE_LABELS.items():
        path = files.get(kind)
        if not path:
            continue
        url = file_url(path) if Path(path).is_file() else None
        if url:
            items.append(f'<a class="vid2vid-download" data-kind="{_e(kind)}" href="{_e(url)}" '
                         f'download="{_e(Path(path).name)}">{_e(label)}</a>')
        else:
            items.append(f'<span title="{_e(path)}">{_e(label)}: {_e(path)} (on the server)</span>')
    return " · ".join(items)


def _error_box(text: str) -> str:
    return (f'<div class="vid2vid-error" role="alert"><strong>vid2vid could not run.</strong> '
            f'{_e(text)}</div>')


def job_html(item: dict[str, Any], file_url: FileUrl, number: int | None = None) -> str:
    """One job: state, player(s), download links, report reading, notices."""
    from .report import report_reading

    files = dict(item.get("files") or {})
    if not files and item.get("job_dir"):
        files = job_files(item["job_dir"])
    if "video" not in files and isinstance(item.get("output"), str) and item["output"]:
        files["video"] = item["output"]  # a batch item names its result video "output"
    state = item.get("state") or item.get("status") or ""
    done, total = item.get("frames_done"), item.get("total")
    head = []
    if number is not None:
        head.append(f"{number}. {_e(Path(str(item.get('video') or '')).name or 'video')}")
    if state:
        head.append(f'<span class="vid2vid-state vid2vid-state-{_e(state)}">{_e(state)}</span>')
    if total:
        head.append(f"{_e(done)}/{_e(total)} frames")
    parts = [f'<div class="vid2vid-job" data-state="{_e(state)}">', f'<div>{" ".join(head)}</div>']
    if item.get("error"):
        parts.append(_error_box(item["error"]))
    suffix = f"-{number}" if number is not None else ""
    if files.get("video"):
        parts.append(_player(files["video"], file_url, f"vid2vid_player{suffix}"))
    if files.get("comparison"):
        compare = _player(files["comparison"], file_url, f"vid2vid_compare{suffix}")
        if compare:
            parts.append(f"<details><summary>Source and result side by side</summary>{compare}</details>")
    links = _links(files, file_url)
    if links:
        parts.append(f'<div class="vid2vid-links">Download: {links}</div>')
    if state == "interrupted":
        parts.append("<div>Interrupted: press Generate again to continue this job where it stopped.</div>")
    if item.get("report"):
        parts.append(f'<div class="vid2vid-report">{report_reading(item["report"], html=True)}</div>')
    for note in item.get("notices") or []:
        parts.append(f'<div class="vid2vid-notice">{_e(note)}</div>')
    if item.get("job_dir"):
        parts.append(f'<div class="vid2vid-path">Job folder on the server: <code>{_e(item["job_dir"])}</code></div>')
    parts.append("</div>")
    return "".join(p for p in parts if p)


def result_html(result: dict[str, Any] | None, file_url: FileUrl) -> str:
    """The whole result area for a vid2vid result; "" for none."""
    if not result:
        return ""
    status = result.get("status")
    if status == "error":
        return f'<div class="vid2vid-result">{_error_box(result.get("error") or "unknown error")}</div>'
    if status == "preview":
        return ""  # a one-frame preview is in the gallery
    if result.get("videos"):
        rows = [job_html(item, file_url, n) for n, item in enumerate(result["videos"], 1)]
        counts: dict[str, int] = {}
        for item in result["videos"]:
            counts[item.get("state", "?")] = counts.get(item.get("state", "?"), 0) + 1
        head = (f"<div><strong>Batch {_e(status)}</strong>: {len(rows)} videos ("
                + ", ".join(f"{n} {_e(k)}" for k, n in counts.items()) + ")</div>")
        if status == "interrupted":
            head += "<div>Press Generate again to resume the batch (finished videos are skipped).</div>"
        return f'<div class="vid2vid-result">{head}{"".join(rows)}</div>'
    return f'<div class="vid2vid-result">{job_html(result, file_url)}</div>'
