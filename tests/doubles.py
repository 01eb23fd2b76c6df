"""Small test doubles shared by several test files."""

from __future__ import annotations


class StopAfter:
    """A job's ``should_stop`` (and ``progress``) that turns true once ``n`` frames have finished, counting the
    frames of ``stage`` only when one is named (e.g. "pass2"), else of whatever stage reports progress."""

    def __init__(self, n: int, stage: str | None = None):
        self.n, self.stage, self.seen = n, stage, 0

    def progress(self, p) -> None:
        if self.stage is None or p.stage == self.stage:
            self.seen = p.done

    def __call__(self) -> bool:
        return self.seen >= self.n
