"""One-off exhaustive check behind lib_vid2vid.blend's sRGB encode table: over every float32 value in [0, 1], the
uint8 that colour coherence's last step gives (lab_to_rgb's linear -> sRGB, then the frame's rounding) never
goes down as the value goes up, and equals the table lookup.

    python helpers/check_srgb_steps.py          # about a minute; prints the thresholds and "monotone: yes/no"
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from lib_vid2vid import blend

    one = int(np.float32(1.0).view(np.uint32))
    chunk = 1 << 24
    prev_last = -1
    drops = 0
    mismatches = 0
    t0 = time.perf_counter()
    for start in range(0, one + 1, chunk):
        bits = np.arange(start, min(start + chunk, one + 1), dtype=np.uint32)
        lin = bits.view(np.float32)
        want = blend._encode_uint8_plain(lin.copy())
        got = blend._encode_uint8(lin)
        mismatches += int(np.count_nonzero(want != got)) if got is not None else 0
        d = np.diff(want.astype(np.int16))
        drops += int(np.count_nonzero(d < 0)) + int(want[0] < prev_last)
        prev_last = int(want[-1])
    print(f"{one + 1} float32 values in [0, 1] in {time.perf_counter() - t0:.0f} s: monotone: "
          f"{'yes' if drops == 0 else f'no ({drops} drops)'}; table lookup differs at {mismatches} values")


if __name__ == "__main__":
    main()
