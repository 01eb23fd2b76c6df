"""Always-on companion of the "vid2vid" Script: hands vid2vid's warped noise to the sampler of each frame.

A selectable Script (vid2vid) is not called at ``process_before_every_sampling``; always-on scripts are, with the
sampler's noise tensor (``noise=``), on A1111 1.10 and Forge alike. This one has no UI and no arguments, and does
nothing unless the ``p`` is one of vid2vid's frames with ``noise_mode = warped`` (lib_vid2vid/host/a1111.py,
``apply_frame_noise``).
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from modules import scripts  # noqa: E402

from lib_vid2vid.host import a1111  # noqa: E402


class Script(scripts.Script):
    def title(self):
        return a1111.NOISE_SCRIPT_TITLE

    def show(self, is_img2img):
        return scripts.AlwaysVisible if is_img2img else False

    def ui(self, is_img2img):
        return []

    def process_before_every_sampling(self, p, *args, **kwargs):
        a1111.apply_frame_noise(p, kwargs.get("noise"))
