"""Sweeps: one frame rendered once per combination of up to two settings, as a labelled grid.

Grammar of a sweep (:func:`parse_sweep`)::

    sweep  := axis [ SEP axis ]            at most two axes; SEP is " x " (spaces around x) or "×"
    axis   := NAME "=" value { "," value } NAME: a setting name (dashes allowed: sigma-max)
    value  := text without ","             coerced and range-checked by the setting's spec

e.g. ``sigma_schedule=karras,exponential,host`` (one axis: one row of cells) or
``sigma_max=0.5,1,2 x denoise=0.3,0.5,0.7`` (first axis: rows, second axis: columns). Only settings of the
Sampling, Masks & correction and Temporal tabs can be swept (the video range, size, export and job settings
change which frames exist, not how one is rendered). At most :data:`MAX_SWEEP_CELLS` cells.

:func:`run_sweep` renders the frame once per cell (same resolved seed for all cells) and returns one
labelled grid image and a plot of the sigmas each cell really used. Grid layout, in pixels, for frames of
W x H, C columns and R rows (``GAP`` between cells, white background)::

    title bar            y 0 .. TITLE_H                   full width: "frame k (t s) | rows: A | columns: B"
    column labels        y TITLE_H .. TITLE_H + LABEL_H   above each column, the column's value
    row labels           x 0 .. row_w                     left of each row, the row's value (two axes only)
    cell (r, c)          x = row_w + c (W + GAP),  y = TITLE_H + LABEL_H + r (H + GAP)

``row_w`` is 0 for one axis, else the widest row label plus 2 x ``LABEL_PAD`` (at least ``MIN_ROW_W``).
Each cell holds the corrected output exactly (RGB uint8, no resampling). Every label is drawn by
:func:`label_image`, so the label of a cell can be checked pixel for pixel.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .debug_labels import label_image, widest_label
from .debug_render import (
    DebugResult,
    SourceFrames,
    pick_frame,
    prepare_dir,
    render_single_frame,
    resolved_seeds,
    write_png,
)
from .errors import SettingsError
from .params import SPEC_BY_NAME, Settings, check_range, coerce
from .renderer import Renderer

MAX_SWEEP_CELLS = 36
SWEEP_GROUPS = ("sampling", "correction", "temporal")
"""Setting groups a sweep may vary (see the module docstring)."""
_OVERRIDE_ONLY = ("sigma_min", "sigma_max", "rho")
"""Settings that act only through a sigma override (not with sigma_schedule host)."""

TITLE_H = 24
LABEL_H = 20
GAP = 2
LABEL_PAD = 6
MIN_ROW_W = 40


@dataclass
class SweepCell:
    """One cell of a sweep grid. Rectangles are (x0, y0, x1, y1) in grid pixels, x1/y1 exclusive."""

    values: dict[str, Any]
    """The settings this cell overrides, in axis order."""
    row: int
    col: int
    rect: tuple[int, int, int, int]
    col_label: str
    col_label_rect: tuple[int, int, int, int]
    row_label: str | None
    row_label_rect: tuple[int, int, int, int] | None
    result: DebugResult

    @property
    def name(self) -> str:
        """``"sigma_max=0.5, denoise=0.3"``: the legend entry of the schedule plot."""
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.values.items())


_SEP = re.compile(r"\s+[xX]\s+|\s*×\s*")


def format_value(value: Any) -> str:
    """Label text of a swept value: numbers with ``:g``, booleans on/off, text as is."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_sweep(text: str) -> list[dict[str, Any]]:
    """The cells of a sweep, row-major: one ``{name: value}`` dict per combination, in axis order.

    Grammar in the module docstring. Raises SettingsError (field "sweep") naming the axis for an unknown
    or unsweepable setting, a bad or out-of-range value, an empty or repeated value, more than two axes,
    the same setting twice, or more than :data:`MAX_SWEEP_CELLS` cells.
    """
    axes = sweep_axes(text)
    names = [n for n, _ in axes]
    return [dict(zip(names, combo)) for combo in itertools.product(*(vals for _, vals in axes))]


def sweep_axes(text: str) -> list[tuple[str, list[Any]]]:
    """The axes of a sweep: ``[(setting name, [values])]``, one or two of them (see :func:`parse_sweep`)."""
    if not isinstance(text, str) or not text.strip():
        raise SettingsError("sweep", "is empty: give e.g. 'sigma_schedule=karras,exponential' or "
                                     "'sigma_max=0.5,1,2 x denoise=0.3,0.5'")
    parts = _SEP.split(text.strip())
    if len(parts) > 2:
        raise SettingsError("sweep", f"{len(parts)} axes in {text.strip()!r}: a sweep has one or two axes "
                                     f"(rows x columns)")
    axes: list[tuple[str, list[Any]]] = []
    for n, part in enumerate(parts, 1):
        if "=" not in part:
            raise SettingsError("sweep", f"axis {n} {part.strip()!r}: write it as name=value1,value2,...")
        raw_name, raw_values = part.split("=", 1)
        name = raw_name.strip().lstrip("-").replace("-", "_")
        spec = SPEC_BY_NAME.get(name)
        if spec is None:
            raise SettingsError("sweep", f"axis {n}: unknown setting {raw_name.strip()!r}; --help lists them")
        if spec.group not in SWEEP_GROUPS:
            raise SettingsError("sweep", f"axis {name}: {name} cannot be swept (it changes which frames are "
                                         f"rendered, not how); sweep a sampling, mask/correction or temporal "
                                         f"setting")
        if any(name == a for a, _ in axes):
            raise SettingsError("sweep", f"axis {name}: the same setting is on both axes; use it once")
        values: list[Any] = []
        for raw in raw_values.split(","):
            if not raw.strip():
                raise SettingsError("sweep", f"axis {name}: empty value in {raw_values.strip()!r}; separate "
                                             f"values with single commas")
            try:
                value = coerce(spec, raw.strip())
                check_range(spec, value)
            except SettingsError as exc:
                raise SettingsError("sweep", f"axis {name}: {exc.args[0].split(': ', 1)[-1]}") from None
            if value in values:
                raise SettingsError("sweep", f"axis {name}: value {raw.strip()!r} is given twice")
            values.append(value)
        axes.append((name, values))
    cells = math.prod(len(v) for _, v in axes)
    if cells > MAX_SWEEP_CELLS:
        raise SettingsError("sweep", f"{cells} cells: at most {MAX_SWEEP_CELLS} (each cell renders the frame "
                                     f"once); use fewer values")
    return axes


def _axes_of_cells(cells: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    if not cells:
        raise SettingsError("sweep", "has no cells")
    names = list(cells[0])
    if not 1 <= len(names) <= 2:
        raise SettingsError("sweep", f"{len(names)} axes: a sweep has one or two axes")
    axes = []
    for n in names:
        vals: list[Any] = []
        for c in cells:
            if list(c) != names:
                raise SettingsError("sweep", "every cell must set the same settings, in the same order")
            if c[n] not in vals:
                vals.append(c[n])
        axes.append((n, vals))
    expected = [dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in axes))]
    if list(cells) != expected:
        raise SettingsError("sweep", "the cells do not form a full grid in row-major order: build them with "
                                     "parse_sweep")
    return axes


def sweep_title(frame: int, time_s: float, axes: Sequence[tuple[str, Sequence[Any]]]) -> str:
    """The grid's title line, e.g. ``"frame 12 (0.500 s) | rows: sigma_max | columns: denoise"``."""
    head = f"frame {frame} ({time_s:.3f} s)"
    if len(axes) == 1:
        return f"{head} | columns: {axes[0][0]}"
    return f"{head} | rows: {axes[0][0]} | columns: {axes[1][0]}"


def _row_width(labels: Sequence[str]) -> int:
    return max(MIN_ROW_W, widest_label(labels) + 2 * LABEL_PAD)


def run_sweep(settings: Settings, renderer: Renderer, sweep: str | Sequence[dict[str, Any]], *,
              frame: int | None = None, time_s: float | None = None, out_dir: str | Path | None = None,
              warmup: int | None = None) -> tuple[np.ndarray, np.ndarray, list[SweepCell]]:
    """Render one frame once per sweep cell -> (grid RGB uint8, schedule plot RGB uint8, cells).

    ``sweep``: sweep text or :func:`parse_sweep`'s cells. Every cell is validated against ``settings``
    before anything renders (a bad combination names the cell). The seed is resolved once for all cells.
    With ``out_dir``, writes :func:`save_sweep`'s two PNGs. Nothing of the rest of the video is rendered.
    """
    from .plot import plot_schedules

    cells_values = parse_sweep(sweep) if isinstance(sweep, str) else [dict(c) for c in sweep]
    axes = _axes_of_cells(cells_values)
    for name, _ in axes:
        if SPEC_BY_NAME.get(name) is None or SPEC_BY_NAME[name].group not in SWEEP_GROUPS:
            raise SettingsError("sweep", f"axis {name}: not a setting that can be swept")
    base = resolved_seeds(settings)
    cell_settings = []
    for values in cells_values:
        try:
            cell_settings.append(base.replace(**values))
        except SettingsError as exc:
            label = ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
            raise SettingsError("sweep", f"cell {label}: {exc}") from None
    inert = [n for n, _ in axes if n in _OVERRIDE_ONLY]
    if inert and all(cs.sampling.sigma_schedule == "host" for cs in cell_settings):
        raise SettingsError("sweep", f"axis {inert[0]}: has no effect with sigma_schedule host (the host's own "
                                     f"schedule); set sigma_schedule, e.g. karras, or sweep it too")

    source = SourceFrames(base)
    k = pick_frame(source.plan, frame, time_s, base.preview.preview_frame)
    results = [render_single_frame(s, renderer, frame=k, warmup=warmup, _source=source) for s in cell_settings]

    w, h = source.plan.width, source.plan.height
    two = len(axes) == 2
    row_vals = axes[0][1] if two else [None]
    col_vals = axes[-1][1]
    row_labels = [format_value(v) for v in row_vals] if two else []
    row_w = _row_width(row_labels) if two else 0
    grid_w = row_w + len(col_vals) * w + (len(col_vals) - 1) * GAP
    grid_h = TITLE_H + LABEL_H + len(row_vals) * h + (len(row_vals) - 1) * GAP
    grid = np.full((grid_h, grid_w, 3), 255, np.uint8)
    title = sweep_title(k, results[0].time_s, axes)
    grid[:TITLE_H] = label_image(title, grid_w, TITLE_H)

    def paste(rect: tuple[int, int, int, int], img: np.ndarray) -> None:
        x0, y0, x1, y1 = rect
        grid[y0:y1, x0:x1] = img

    cells: list[SweepCell] = []
    for n, (values, result) in enumerate(zip(cells_values, results)):
        r, c = divmod(n, len(col_vals))
        x = row_w + c * (w + GAP)
        y = TITLE_H + LABEL_H + r * (h + GAP)
        rect = (x, y, x + w, y + h)
        col_label = format_value(values[axes[-1][0]])
        col_rect = (x, TITLE_H, x + w, TITLE_H + LABEL_H)
        row_label = format_value(values[axes[0][0]]) if two else None
        row_rect = (0, y, row_w, y + h) if two else None
        paste(rect, result.output)
        if r == 0:
            paste(col_rect, label_image(col_label, w, LABEL_H))
        if two and c == 0:
            paste(row_rect, label_image(row_label, row_w, h))
        cells.append(SweepCell(values=values, row=r, col=c, rect=rect, col_label=col_label,
                               col_label_rect=col_rect, row_label=row_label, row_label_rect=row_rect,
                               result=result))

    plot = plot_schedules({cell.name: cell.result.sigmas for cell in cells},
                          size=(640, max(400, 140 + 20 * len(cells))),
                          title=f"img2img sigmas used at frame {k}")
    if out_dir is not None:
        save_sweep(grid, plot, k, out_dir)
    return grid, plot, cells


def sweep_paths(out_dir: str | Path, frame: int) -> tuple[Path, Path]:
    """Where :func:`save_sweep` writes: ``sweep_NNNNNN_grid.png`` and ``sweep_NNNNNN_sigmas.png``."""
    d = Path(out_dir)
    return d / f"sweep_{frame:06d}_grid.png", d / f"sweep_{frame:06d}_sigmas.png"


def save_sweep(grid: np.ndarray, plot: np.ndarray, frame: int, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the sweep grid and the schedule plot (see :func:`sweep_paths`); returns their paths."""
    prepare_dir(out_dir)
    grid_path, plot_path = sweep_paths(out_dir, frame)
    return write_png(grid_path, grid), write_png(plot_path, plot)


def preview(settings: Settings, renderer: Renderer, *, out_dir: str | Path | None = None
            ) -> DebugResult | tuple[np.ndarray, np.ndarray, list[SweepCell]]:
    """The UI's preview modes: "frame" -> :func:`render_single_frame` at ``preview_frame``; "sweep" ->
    :func:`run_sweep` of ``preview_sweep`` at ``preview_frame``. Mode "video" is not a preview."""
    p = settings.preview
    if p.preview_mode == "frame":
        return render_single_frame(settings, renderer, frame=p.preview_frame, out_dir=out_dir)
    if p.preview_mode == "sweep":
        return run_sweep(settings, renderer, p.preview_sweep, frame=p.preview_frame, out_dir=out_dir)
    raise SettingsError("preview_mode", "is 'video': choose 'frame' or 'sweep' for a single-frame preview")
