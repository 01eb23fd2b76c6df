"""Float pixels -> uint8: the one rounding rule every frame of the project goes through.

Rule: clip to the pixel range, then round **half up** on the 0..255 scale::

    u8 = floor(clip(x255, 0, 255) + 1/2)

so 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 and 254.5 -> 255 (``np.rint`` and OpenCV's conversions round half to even:
0.5 -> 0, 2.5 -> 2). It is computed exactly: a value just below a half rounds down, also where a float32
``x + 0.5`` would itself round up to the next whole number (0.49999997 -> 0).

Why half up: it is what the frame loop, the blends and finishing have always written, so frames made before
the rule was put in one place keep their bytes (resume stays byte-exact). Rounding to nearest rather than
truncating matters: truncation biases every frame by -0.5 level and the open-loop FDC modes accumulate
that into a visible darkening (see :mod:`lib_vid2vid.fdc`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_uint8", "to_uint8_255"]


def to_uint8_255(x255: np.ndarray) -> np.ndarray:
    """Float pixels on the 0..255 scale (any shape) -> uint8, by the module's rule (clip, round half up)."""
    y = np.clip(x255, 0.0, 255.0)
    # floor(y + 1/2), exactly: in float32, 0.49999997 + 0.5 rounds to 1.0. Adding the largest number below 1/2
    # instead gives floor(y + 1/2) for every float32 (and float64) y in 0..255 (checked for all float32 values).
    y += np.nextafter(y.dtype.type(0.5), y.dtype.type(0))
    return y.astype(np.uint8)  # truncation is floor here: y >= 0


def to_uint8(x01: np.ndarray) -> np.ndarray:
    """Float pixels on the 0..1 scale (RGB HWC or any shape) -> uint8: ``to_uint8_255(x01 * 255)``.

    The product is taken in the input's precision (float32 stays float32).
    """
    return to_uint8_255(x01 * 255.0)
