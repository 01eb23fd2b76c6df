"""Scene groups (issue 18 part 3): the shots of a job's source, the unit a sequential strategy renders in parallel.

With ``reset_at_cuts`` a strategy that reads the previous output (previous_output, flow_warp, temporal_merge,
frame delta correction, inpaint masks) starts each shot as it starts frame 0: no previous output. Then a shot
depends on nothing rendered in another shot, so the shots of a pass can render at the same time on several
backends, each shot one frame after another, and give the bytes a one-backend run gives.

Cuts: frame ``i > 0`` starts a shot when :class:`lib_vid2vid.scene_cuts.CutDetector` finds a cut between
``source[i-1]`` and ``source[i]`` (their luma histograms, or their motion, ``scene_cut_threshold`` and
``scene_cut_motion``): the test colour coherence uses for its reference. They are found once per job by decoding
the source at output size before the first frame and stored in the manifest (``scene_cuts``), so a resumed job
(on any number of backends) uses the same shots even if the thresholds were changed since.

Progress of a shot rendered out of order is journalled under its own stage name (:func:`group_stage`, frame 0 =
the shot's first frame) while its PNGs are written straight into the pass's folder; the pass's own journal takes
them in frame order as soon as every frame before them is there (one writer: the job's owner).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .scene_cuts import CutDetector

MANIFEST_KEY = "scene_cuts"


def find_cuts(frames: Iterable[tuple[int, np.ndarray]], detector: CutDetector) -> list[int]:
    """First frames of every shot but the first: indices ``i`` with a cut between ``f[i-1]`` and ``f[i]`` over
    (index, RGB uint8 HWC) pairs in order."""
    return [int(i) for i, rgb in frames if detector.step(rgb)]


def groups(cuts: Sequence[int], total: int) -> list[tuple[int, int]]:
    """Shots as (first, end) frame ranges, end exclusive, covering ``0 .. total-1`` in order."""
    starts = [0] + sorted(c for c in set(cuts) if 0 < c < total)
    return [(a, b) for a, b in zip(starts, starts[1:] + [total])]


def group_stage(stage: str, first: int) -> str:
    """The journal stage holding the progress of the shot starting at ``first`` in pass ``stage``."""
    return f"shot_{stage}_{first:06d}"


def is_group_stage(stage: str) -> bool:
    return stage.startswith("shot_")
