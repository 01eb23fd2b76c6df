"""The diffusers tests need the optional ``diffusers`` extra; CI installs it in its main leg only (the WebUI leg
keeps the WebUI's own pinned stack, whose transformers the extra's would replace), and allows this skip reason
in the WebUI leg alone."""

from __future__ import annotations

import pytest

SKIP_REASON = "the diffusers extra is not installed (pip install .[diffusers])"


def require_diffusers() -> None:
    """Skip the calling test module unless diffusers, transformers, accelerate, safetensors and peft import."""
    for name in ("diffusers", "transformers", "accelerate", "safetensors", "peft"):
        pytest.importorskip(name, reason=SKIP_REASON)
