import os

import pytest

# one thread per library: the CI machine has two cores and tests run beside other work
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def clip(tmp_path):
    """A small clip with audio: 24 frames, 96x64, 24 fps (one second)."""
    from fractions import Fraction

    from tests.clips import make_clip

    return make_clip(tmp_path / "clip.mp4", n_frames=24, size=(96, 64), fps=Fraction(24), audio=True)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """``get(kind)``: the folder of a tiny random-weight diffusers model ("sd", "sd_inpaint", "sdxl", "svd"),
    built on first use and kept for the session (tests/tiny_diffusers.py; needs the diffusers extra)."""
    root = tmp_path_factory.mktemp("tiny-models")
    built: dict = {}

    def get(kind: str):
        if kind not in built:
            from tests import tiny_diffusers as tiny

            make = {"sd": tiny.make_sd, "sd_inpaint": lambda p: tiny.make_sd(p, inpainting=True),
                    "sdxl": tiny.make_sdxl, "svd": tiny.make_svd}[kind]
            built[kind] = make(root / kind)
        return built[kind]

    return get


@pytest.fixture
def unharmonized(monkeypatch):
    """Keyframe jobs whose keyframes are their renders (``PropagationSettings.harmonize`` 0, as before December
    2026): for tests whose premise is each keyframe's own render, e.g. problem detection of renders that disagree
    (harmonized keyframes disagree less)."""
    import dataclasses

    from lib_vid2vid import keyframes

    made = keyframes.propagation_for
    monkeypatch.setattr(keyframes, "propagation_for", lambda flow: dataclasses.replace(made(flow), harmonize=0.0))
