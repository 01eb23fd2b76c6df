"""The FDC debugger: one frame's frame delta correction, rendered as the video would and laid out as a panel
(:func:`lib_vid2vid.debug_panels.fdc_debug_panel`) for the UI, the API and ``helpers/fdc_debug.py``.
"""

from __future__ import annotations

import numpy as np

from . import video_decode, video_probe
from .debug_render import DebugResult, render_single_frame
from .errors import SettingsError
from .params import Settings
from .pipeline import make_plan
from .renderer import Renderer


def fdc_debug(settings: Settings, renderer: Renderer, *, frame: int) -> tuple[np.ndarray, DebugResult]:
    """The FDC debugger panel of frame ``frame`` (>= 1) with the current settings.

    Renders frame ``frame - 1`` (the previous output A) and then ``frame`` with one warm-up frame, so A and
    the raw/corrected outputs are what a video job starting at ``frame - 1`` would produce. The panel shows
    the source, the source delta, the motion (combined) mask, the depth mask when depth is on, the raw
    output and the corrected output. Returns (panel RGB uint8, the frame's DebugResult).
    """
    from . import masks
    from .debug_panels import fdc_debug_panel

    if frame < 1:
        raise SettingsError("preview_frame", "the FDC debugger needs a previous frame: pick frame 1 or later")
    prev = render_single_frame(settings, renderer, frame=frame - 1, warmup=0)
    cur = render_single_frame(prev.settings, renderer, frame=frame, warmup=1)
    plan_w, plan_h = cur.output.shape[1], cur.output.shape[0]
    v = settings.video
    src = {}
    plan = make_plan(prev.settings, video_probe.probe(v.input))
    for idx, rgb in video_decode.iter_frames(v.input, fps=plan.fps if v.fps else None, start=plan.start,
                                             end=plan.end, size=(plan_w, plan_h), resize_mode=v.resize_mode,
                                             first_index=frame - 1):
        src[idx] = rgb
        if idx >= frame:
            break
    c = settings.correction
    motion = cur.combined_mask
    if motion is None:
        motion = masks.motion_mask(src[frame - 1], src[frame], low_cut=c.motion_low_cut,
                                   high_ext=c.motion_high_ext, soft=c.motion_soft)
    panel = fdc_debug_panel(src[frame - 1], src[frame], prev.output, cur.rendered, cur.output, motion,
                            None, titles={"corrected": f"corrected ({c.fdc_mode})"})
    return panel, cur
