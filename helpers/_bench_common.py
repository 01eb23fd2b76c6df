"""Shared pieces of the ``helpers/bench_*.py`` scripts: machine description, memory, timing, tables.

Nothing here asserts a target; the benchmarks print numbers for people to read (and the README to quote).
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("VID2VID_MEDIA") or ROOT.parent / "shared" / "media")
"""The sample clips (../shared/media beside the checkout; VID2VID_MEDIA names another folder, e.g. from a worktree)."""
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask; what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine() -> str:
    """One line: nproc, CPU model, RAM, OS, Python and the libraries that set the speed."""
    import cv2
    import numpy as np

    try:
        import av

        av_v = av.__version__
    except ImportError:  # pragma: no cover
        av_v = "-"
    ram = ""
    try:
        pages, page = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        ram = f", {pages * page / 2**30:.1f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    return (f"nproc {usable_cpus()}, {cpu_model()}{ram}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, numpy {np.__version__}, OpenCV {cv2.__version__}, PyAV {av_v}")


def load_average() -> str:
    """``/proc/loadavg``'s 1/5/15-minute load (other work on a shared machine skews timings)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def command_line() -> str:
    """The command that ran this benchmark, shell-quoted, with the interpreter shortened to ``python``."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).is_file():
        try:
            argv[0] = str(Path(argv[0]).resolve().relative_to(ROOT))
        except ValueError:
            pass
    return "python " + " ".join(shlex.quote(a) for a in argv)


def header(title: str) -> None:
    """Print the benchmark's title, command, machine and load."""
    print(title)
    print(f"command: {command_line()}")
    print(f"machine: {machine()}")
    print(f"load average at start: {load_average()}")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this program's own memory. Not
    ``ru_maxrss``: Linux carries that across ``execve``, so a child started by a big parent would report
    the parent's size. Elsewhere ``ru_maxrss`` (KiB on Linux/BSD, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def current_rss_mb() -> float:
    """Resident set size right now, MiB (from /proc/self/statm; falls back to the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def time_calls(fn: Callable[[], object], *, runs: int, warmup: int = 1, max_seconds: float | None = None) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then up to ``runs`` times timed (stopping early once
    ``max_seconds`` of timed calls have passed, after at least one). Returns seconds per call:
    ``median``, ``min``, ``mean`` and ``runs`` (timed calls made)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    t_start = time.perf_counter()
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if max_seconds is not None and time.perf_counter() - t_start >= max_seconds:
            break
    return {"median": statistics.median(times), "min": min(times), "mean": statistics.fmean(times),
            "runs": len(times)}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None) -> str:
    """A Markdown table (pipes), columns padded to line up in a terminal too.

    ``align``: one letter per column, "l" or "r" (default: first column left, the rest right).
    """
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1)) for w, a in zip(widths, align)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def fmt_seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{int(s) // 60} min {s % 60:.0f} s"
