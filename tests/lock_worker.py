"""One run of a job in its own process, for the one-writer tests (tests/test_joblock.py).

    python -m tests.lock_worker INPUT OUTPUT_DIR COUNT_FILE DELAY [GO_FILE [HOLD_AT]]

Renders 8 frames with a ProxyRenderer that sleeps DELAY seconds per frame and appends one line per render to
COUNT_FILE. With GO_FILE it prints "ready" once imported and waits for that file before it starts (so two
workers start the job at the same moment). With HOLD_AT the render of that frame never returns (the process
waits to be killed mid-render, with the frames before it written). Prints the job folder; a Vid2VidError prints
its line, exit 1.
"""

import sys
import time
from pathlib import Path

from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer


def settings(input_path: str, output_dir: str) -> Settings:
    return Settings().replace(input=input_path, output_dir=output_dir, width=96, height=64, seed=1234,
                              denoise=0.5, max_frames=8, keyframe_mode="off")  # one render per frame


class CountingRenderer(ProxyRenderer):
    def __init__(self, count_file: Path, delay: float, hold_at: int | None = None):
        super().__init__()
        self.count_file = count_file
        self.delay = delay
        self.hold_at = hold_at

    def render(self, request):
        with open(self.count_file, "a", encoding="utf-8") as fh:
            fh.write(f"{request.frame_index}\n")
        while request.frame_index == self.hold_at:
            time.sleep(1)
        time.sleep(self.delay)
        return super().render(request)


def main(argv: list[str]) -> int:
    input_path, output_dir, count_file, delay = argv[:4]
    if len(argv) > 4:
        print("ready", flush=True)
        while not Path(argv[4]).exists():
            time.sleep(0.01)
    try:
        hold_at = int(argv[5]) if len(argv) > 5 else None
        res = run_job(settings(input_path, output_dir), CountingRenderer(Path(count_file), float(delay), hold_at))
    except Vid2VidError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(res.job_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
