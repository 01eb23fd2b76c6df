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
