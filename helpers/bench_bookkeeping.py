"""Per-frame bookkeeping cost (issue 12, item 4). Prints its figures; asserts nothing.

    python helpers/bench_bookkeeping.py                  # 1k, 10k and 100k frames, ~1 minute
    python helpers/bench_bookkeeping.py --frames 1000 30000 --dir /mnt/slow-disk

What it costs to record one more finished frame in a job that already has N, side by side in one run:

* old: what vid2vid did before the journal -- the frame's record added to the manifest and the whole
  ``manifest.json`` (settings, plan, every frame's record) rewritten through a temporary file and a rename,
  no fsync (reproduced here as it was, so both run on the same machine and disk);
* new: ``Job.mark_done`` -- one line appended to ``journal.jsonl``, without fsync and with it (as jobs run).

Once per run: opening such a job (old: parsing the big manifest; new: the small manifest plus replaying the
journal, as a killed run leaves it and compacted as a run that ended leaves it) and the compaction at the end
of a run. And what the fsyncs cost per frame: the frame file's data and its folder entry (a 1024x576 PNG,
``atomic_write_bytes(durable=True)`` against ``durable=False``) plus the journal line's fsync. The timings go
to a temporary folder under ``--dir`` (default: the system's temporary folder; use a folder on the disk
that holds your outputs, fsync costs depend on it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import format_table, header, time_calls  # noqa: E402

from lib_vid2vid import workspace  # noqa: E402
from lib_vid2vid.params import Settings  # noqa: E402
from lib_vid2vid.workspace import JOURNAL, Job, atomic_write_bytes, encode_png  # noqa: E402

STAGE = "pass1"


def record(i: int) -> dict:
    """A frame's record as the pipeline writes it."""
    return {"seed": 1234, "subseed": -1, "subseed_strength": 0.0, "denoise": 0.45, "steps": 20, "cfg": 7.0}


def _create(folder: Path) -> Job:
    settings = Settings().replace(input=str(folder / "clip.mp4"), output_dir=str(folder)).to_dict()
    job = Job.create(folder, video_name="clip.mp4", settings=settings,
                     source={"width": 1920, "height": 1080, "fps": "30000/1001", "frames": 108000, "audio": True},
                     fingerprint={"path": str(folder / "clip.mp4"), "size": 123456789, "mtime": 1},
                     extra={"resolved_seed": 1234, "resolved_variation_seed": 99})
    job.manifest["plan"] = {"width": 1024, "height": 576, "fps": "30000/1001", "start": 0.0, "end": None,
                            "total": 200000}
    job.set_stage_total(STAGE, 200000)
    return job


class OldBookkeeping:
    """The manifest as vid2vid kept it before the journal: every frame's record inside manifest.json, the
    whole file rewritten (temporary file + rename, no fsync) after each frame."""

    def __init__(self, job: Job, n: int):
        self.root = job.root
        self.manifest = {k: v for k, v in job.manifest.items() if k != "frames"}
        self.manifest["format"] = 1
        self.manifest["stages"] = {STAGE: {"done": n, "total": 200000}}
        self.manifest["frames"] = {STAGE: [record(i) for i in range(n)]}

    def mark_done(self, index: int, rec: dict) -> None:
        st = self.manifest["stages"][STAGE]
        if index == st["done"]:
            st["done"] = index + 1
        self.manifest["frames"][STAGE].append(rec)
        atomic_write_bytes(self.root / "manifest.json", json.dumps(self.manifest, indent=1).encode("utf-8"))


def _next(start: int):
    state = {"i": start}

    def take() -> int:
        state["i"] += 1
        return state["i"] - 1

    return take


def old_way(folder: Path, n: int) -> tuple[float, float]:
    """(ms per frame at frame n, ms to open a job of n frames) the old way."""
    job = _create(folder)
    old = OldBookkeeping(job, n)
    take = _next(n)
    per = time_calls(lambda: old.mark_done(take(), record(0)), runs=50, warmup=1, max_seconds=4.0)
    job.close()
    t = time.perf_counter()
    Job.open(job.root).close()  # a format-1 manifest: parsed, nothing to replay (what opening did then)
    opened = time.perf_counter() - t
    return per["median"] * 1e3, opened * 1e3


def new_way(folder: Path, n: int, fsync: bool) -> dict[str, float]:
    """With the journal, for a job of n frames, ms: ``frame`` (one more frame), ``open_lines`` (opening it
    after a killed run: n journal lines), ``compact`` (the rewrite at the end of a run) and ``open_compacted``
    (opening it after that)."""
    job = _create(folder)
    with open(job.root / JOURNAL, "wb") as fh:  # a job that has recorded n frames, then was killed
        for i in range(n):
            fh.write((json.dumps({"stage": STAGE, "frame": i, "record": record(i)}, separators=(",", ":"))
                      + "\n").encode())
    job.close()
    out = {}
    t = time.perf_counter()
    job = Job.open(job.root)
    out["open_lines"] = time.perf_counter() - t  # (its log file stays open: it is used below)
    assert job.manifest["stages"][STAGE]["done"] == n
    workspace.FSYNC = fsync
    try:
        job._appended = True  # time the appends, not the compaction a resumed run starts with
        take = _next(n)
        out["frame"] = time_calls(lambda: job.mark_done(STAGE, take(), record(0)), runs=300, warmup=3,
                                  max_seconds=3.0)["median"]
        t = time.perf_counter()
        job.set_status("interrupted")
        out["compact"] = time.perf_counter() - t
    finally:
        workspace.FSYNC = True
        job.close()
    t = time.perf_counter()
    Job.open(job.root).close()
    out["open_compacted"] = time.perf_counter() - t
    return {k: v * 1e3 for k, v in out.items()}


def frame_fsync(folder: Path) -> tuple[float, float]:
    """(ms per frame file without fsync, with fsync of its data and folder entry): a 1024x576 PNG, the two
    kinds of write taken in turn so that both see the same disk."""
    import statistics

    import numpy as np

    rgb = np.random.default_rng(0).integers(0, 256, (576, 1024, 3), dtype=np.uint8)
    rgb[:, :512] = 90  # half flat, half noise: about the size of a real frame
    data = encode_png(rgb)
    folder.mkdir(parents=True, exist_ok=True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(60):
        for durable in (False, True):
            t = time.perf_counter()
            atomic_write_bytes(folder / f"{i:06d}-{durable}.png", data, durable=durable)
            times[durable].append(time.perf_counter() - t)
    return statistics.median(times[False]) * 1e3, statistics.median(times[True]) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[1000, 10000, 100000], help="frames already done")
    ap.add_argument("--dir", default=None, help="folder for the temporary jobs (default: system temp)")
    args = ap.parse_args()
    header("vid2vid per-frame bookkeeping: old (whole manifest.json per frame) vs new (journal line)")
    base = Path(tempfile.mkdtemp(prefix="vid2vid-bench-bookkeeping-", dir=args.dir))
    print(f"folder: {base}")
    rows, opens = [], []
    try:
        for n in args.frames:
            old_ms, old_open = old_way(base / f"old-{n}", n)
            new = new_way(base / f"new-{n}", n, fsync=False)
            sync = new_way(base / f"sync-{n}", n, fsync=True)
            rows.append([f"{n:,}", f"{old_ms:.3f}", f"{new['frame']:.3f}", f"{sync['frame']:.3f}",
                         f"{old_ms / sync['frame']:,.0f}x"])
            opens.append([f"{n:,}", f"{old_open:.0f}", f"{sync['open_lines']:.0f}", f"{sync['compact']:.0f}",
                          f"{sync['open_compacted']:.0f}"])
            for d in base.iterdir():
                shutil.rmtree(d, ignore_errors=True)
        plain, durable = frame_fsync(base / "frames")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\nRecording one more finished frame, ms per frame (median):")
    print(format_table(["frames done", "old: rewrite manifest.json", "new: journal line",
                        "new: journal line + fsync", "old / new with fsync"], rows))
    print("\nOnce per run, ms: opening the job (resume, --list-jobs) and the compaction when a run ends:")
    print(format_table(["frames done", "old: open (parse manifest.json)", "new: open after kill -9 (n lines)",
                        "new: compaction at the end of a run", "new: open after it"], opens))
    journal_fsync = float(rows[-1][3]) - float(rows[-1][2])
    print("\nWhat fsync costs per frame, ms (median):")
    print(format_table(["what", "without fsync", "with fsync", "fsync costs"], [
        ["frame file (1024x576 PNG, data + folder entry)", f"{plain:.3f}", f"{durable:.3f}", f"{durable - plain:.3f}"],
        ["journal line (at the last N above)", rows[-1][2], rows[-1][3], f"{journal_fsync:.3f}"],
        ["together, per frame", "", "", f"{durable - plain + journal_fsync:.3f}"],
    ], align="lrrr"))
    print("(the pipeline's writer thread pays these while the host renders the next frame)")


if __name__ == "__main__":
    main()
