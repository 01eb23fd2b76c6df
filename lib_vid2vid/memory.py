"""Give a finished job's memory back to the system.

Why: a job's frames, flows and scratch arrays are freed when it ends, but glibc's allocator keeps most of what
many threads freed in its arenas (large blocks too, once its mmap threshold has risen), so the process goes on
holding it. In the WebUI's process that is RAM the models need: after a 1920x1080 job of 24 frames the process
held 1.3-1.9 GB; after :func:`give_back` 0.18-0.28 GB (helpers/bench_pipeline.py's source, one job per process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys

from . import flow


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` (returns free heap memory to the system), or None elsewhere (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def give_back() -> None:
    """Let go of the DIS instances kept between flows (:func:`lib_vid2vid.flow.release_dis`), collect cycles, and
    have the C allocator return its free memory to the system (where it can)."""
    flow.release_dis()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
