"""Single-frame debug mode, one name for the whole of it: render one frame of the video (or a sweep of
settings on it) and nothing else. The code lives in one module per concern; this module re-exports their
public names so that ``from lib_vid2vid import debug; debug.render_single_frame(...)`` keeps working:

* :mod:`.debug_render`  one frame rendered with the job's own stages and loop code, exact or with a warm-up
* :mod:`.debug_sweep`   sweeps: the frame once per combination of up to two settings, as a labelled grid
* :mod:`.debug_labels`  the label tiles of the grid (text centred, shrunk to fit)
* :mod:`.debug_fdc`     the FDC debugger (renders; the panel image itself is :mod:`.debug_panels`)
"""

from __future__ import annotations

from .debug_fdc import fdc_debug
from .debug_labels import label_image
from .debug_render import (
    DEBUG_DIR,
    TIME_TOLERANCE,
    DebugResult,
    frame_at_time,
    reads_previous_output,
    render_plan,
    render_single_frame,
    save_debug_frame,
)
from .debug_sweep import (
    GAP,
    LABEL_H,
    LABEL_PAD,
    MAX_SWEEP_CELLS,
    MIN_ROW_W,
    SWEEP_GROUPS,
    TITLE_H,
    SweepCell,
    format_value,
    parse_sweep,
    preview,
    run_sweep,
    save_sweep,
    sweep_axes,
    sweep_paths,
    sweep_title,
)

__all__ = [
    "DEBUG_DIR",
    "GAP",
    "LABEL_H",
    "LABEL_PAD",
    "MAX_SWEEP_CELLS",
    "MIN_ROW_W",
    "SWEEP_GROUPS",
    "TIME_TOLERANCE",
    "TITLE_H",
    "DebugResult",
    "SweepCell",
    "fdc_debug",
    "format_value",
    "frame_at_time",
    "label_image",
    "parse_sweep",
    "preview",
    "reads_previous_output",
    "render_plan",
    "render_single_frame",
    "run_sweep",
    "save_debug_frame",
    "save_sweep",
    "sweep_axes",
    "sweep_paths",
    "sweep_title",
]
