"""The "vid2vid" entry in the img2img tab's Script dropdown. Thin: everything lives in lib_vid2vid."""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from modules import scripts  # noqa: E402

from lib_vid2vid.host import a1111  # noqa: E402


class Script(scripts.Script):
    def title(self):
        return a1111.SCRIPT_TITLE

    def show(self, is_img2img):
        return is_img2img

    def after_component(self, component, **kwargs):
        a1111.remember_component(kwargs.get("elem_id"), component)

    def ui(self, is_img2img):
        return a1111.build_ui(self)

    def run(self, p, *args):
        return a1111.run_script(p, args, script=self)


a1111.register_settings()
a1111.register_postprocess()
