"""sd-webui-vid2vid: video-to-video for Stable Diffusion hosts.

Everything outside ``lib_vid2vid.host`` is host-agnostic: it imports nothing from the WebUI.
"""

__version__ = "0.1.0"
