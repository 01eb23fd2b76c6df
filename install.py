"""Run by the WebUI at startup: installs what vid2vid needs and the WebUI lacks.

Only missing modules are installed, each with a version range that has wheels for Python 3.10 and 3.11;
nothing the WebUI already has (torch, gradio, numpy, Pillow, OpenCV) is upgraded or downgraded.
"""

import importlib.util

import launch

# (module to import, pip requirement, extra pip flags)
REQUIREMENTS = [
    ("av", "av>=12,<16", "--no-deps"),  # PyAV wheels embed FFmpeg: no external binary
    ("cv2", "opencv-python-headless>=4.8,<4.11", ""),
    ("tqdm", "tqdm>=4.60,<5", ""),
    ("requests", "requests>=2.28,<3", ""),
]

for module, requirement, flags in REQUIREMENTS:
    if importlib.util.find_spec(module) is None:
        launch.run_pip(f'install {flags} "{requirement}"'.replace("  ", " "), f"vid2vid requirement: {requirement}")
