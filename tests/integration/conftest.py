"""Defaults for what a test module can change in the WebUI that ``test_webui.webui`` starts for it.

A module overrides these fixtures (same name, module scope) to start the WebUI with its own checkpoint,
extra extensions or command-line arguments; see test_controlnet.py.
"""

import pytest


@pytest.fixture(scope="module")
def webui_checkpoint():
    """Path of the checkpoint the WebUI starts with; None: the tiny one make_tiny_sd.py writes."""
    return None


@pytest.fixture(scope="module")
def webui_extensions():
    """{folder name under extensions/: path} linked into the WebUI besides vid2vid, removed afterwards."""
    return {}


@pytest.fixture(scope="module")
def webui_args():
    """Extra command-line arguments for the WebUI."""
    return []
