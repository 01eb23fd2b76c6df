"""Prompts that change per frame: from a text block of frame ranges, or from a folder of per-frame files.

Every schedule answers ``for_frame(i) -> (prompt, negative)`` for an output frame index ``i`` (from 0), and
``check(total)`` validates it for a job of ``total`` frames at job start. Frames no entry covers use the
job's base prompt and base negative prompt.

Negative prompts
----------------
In both forms the text ``prompt --neg negative`` carries a negative prompt: ``--neg`` must stand alone
(start of text or after a blank, followed by a blank or the end); everything after the first such
``--neg`` is the negative. Without ``--neg`` the base negative prompt is used.

Text block grammar (``PromptSchedule.from_text``)
-------------------------------------------------
One entry per line; blank lines and lines starting with ``#`` are ignored::

    line   := RANGE ":" PROMPT [ "--neg" NEGATIVE ]
    RANGE  := N          frames N .. (start of the next entry - 1), or to the end if it is the last
            | N "-" M    frames N .. M inclusive (M >= N)
            | N "-"      frames N .. end of the video
    N, M   := whole numbers >= 0 (output frame indices)

Example::

    0: a cat --neg blurry
    30-59: a dog
    90-: a bird

Frames 0..29 are "a cat" (negative "blurry"), 30..59 "a dog", 60..89 the base prompt, 90.. "a bird".
Two entries covering one frame, an empty prompt, or a malformed line is a ``SettingsError`` naming the line.

Folder of files (``PromptSchedule.from_folder``)
------------------------------------------------
``*.txt`` files whose name (before ``.txt``) ends in digits, e.g. ``00012.txt`` or ``frame_12.txt``; the
number minus ``first_number`` (default 0; use 1 for folders numbered from 1) is the frame. Other files are
ignored; two files for one frame are an error. Each file holds ``prompt --neg negative`` (UTF-8, may span
lines; surrounding blanks are stripped). ``check(total)`` reads every file the job uses once at job start,
and ``for_frame`` reads a frame's file again when it is asked for.

A frame without a file is handled by ``missing``:

* ``"error"`` (default) -- ``check(total)`` at job start (or ``for_frame`` later) raises an error naming the
  expected file, because a per-frame folder is meant to have one file per frame;
* ``"base"`` -- use the base prompt and negative;
* ``"hold"`` -- use the nearest earlier file (sparse "keyframe" prompts); frames before the first file use
  the base prompt.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError

__all__ = ["split_negative", "PromptRange", "PromptSchedule", "RangePrompts", "FolderPrompts", "MISSING_MODES"]

_NEG = re.compile(r"(?:^|(?<=\s))--neg(?=\s|$)")
_LINE = re.compile(r"^\s*(\d+)\s*(?:(-)\s*(\d+)?)?\s*:(.*)$", re.DOTALL)
_NUMBERED = re.compile(r"(\d+)$")
MISSING_MODES = ("error", "base", "hold")


def split_negative(text: str) -> tuple[str, str | None]:
    """``"a cat --neg blurry"`` -> ``("a cat", "blurry")``; no ``--neg`` -> ``(text.strip(), None)``."""
    m = _NEG.search(text)
    if m is None:
        return text.strip(), None
    return text[: m.start()].strip(), text[m.end() :].strip()


@dataclass(frozen=True)
class PromptRange:
    """Frames ``start .. end`` inclusive (``end=None``: to the end of the video) use this prompt."""

    start: int
    end: int | None
    prompt: str
    negative: str | None
    """None = the base negative prompt."""
    line: int
    """1-based line of the text block it came from (for error messages)."""


class PromptSchedule:
    """Base class and factory. ``for_frame(i) -> (prompt, negative)``; ``check(total)`` at job start."""

    def __init__(self, base_prompt: str = "", base_negative: str = ""):
        self.base_prompt = base_prompt
        self.base_negative = base_negative

    def for_frame(self, index: int) -> tuple[str, str]:
        """Prompt and negative prompt for output frame ``index`` (from 0)."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        return self.base_prompt, self.base_negative

    def check(self, total: int) -> None:
        """Raise a SettingsError now if any of the ``total`` frames would fail later."""

    @staticmethod
    def constant(base_prompt: str, base_negative: str = "") -> PromptSchedule:
        return PromptSchedule(base_prompt, base_negative)

    @staticmethod
    def from_text(
        text: str, base_prompt: str = "", base_negative: str = "", field: str = "prompt schedule"
    ) -> RangePrompts:
        return RangePrompts.parse(text, base_prompt, base_negative, field)

    @staticmethod
    def from_folder(
        folder: str | Path,
        base_prompt: str = "",
        base_negative: str = "",
        *,
        missing: str = "error",
        first_number: int = 0,
        field: str = "prompt folder",
    ) -> FolderPrompts:
        return FolderPrompts(folder, base_prompt, base_negative, missing=missing, first_number=first_number, field=field)


class RangePrompts(PromptSchedule):
    """Prompts by frame ranges (see the module docstring for the text grammar)."""

    def __init__(
        self,
        ranges: list[PromptRange],
        base_prompt: str = "",
        base_negative: str = "",
        field: str = "prompt schedule",
    ):
        super().__init__(base_prompt, base_negative)
        self.field = field
        self.ranges = sorted(ranges, key=lambda r: r.start)
        for a, b in zip(self.ranges, self.ranges[1:]):
            if a.end is None or a.end >= b.start:
                raise SettingsError(
                    field, f"line {b.line}: frame {b.start} is already covered by line {a.line}; ranges must not overlap"
                )
        self._starts = [r.start for r in self.ranges]

    @classmethod
    def parse(
        cls, text: str, base_prompt: str = "", base_negative: str = "", field: str = "prompt schedule"
    ) -> RangePrompts:
        """Parse a text block; a malformed line raises ``SettingsError(field, "line N: ...")``."""
        raw: list[tuple[int, int | None, bool, str, str | None, int]] = []  # start, end, open, prompt, neg, line
        for n, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            m = _LINE.match(s)
            if m is None:
                raise SettingsError(
                    field, f"line {n}: expected 'FRAME: prompt', 'FROM-TO: prompt' or 'FROM-: prompt', got {s[:40]!r}"
                )
            start = int(m.group(1))
            dash, end_s, body = m.group(2), m.group(3), m.group(4)
            end = int(end_s) if end_s is not None else None
            if end is not None and end < start:
                raise SettingsError(field, f"line {n}: range {start}-{end} ends before it starts")
            prompt, negative = split_negative(body)
            if not prompt:
                raise SettingsError(field, f"line {n}: no prompt after ':'")
            # single "N:" entries are closed later (until the next entry); "N-" runs to the end
            raw.append((start, end, dash is None, prompt, negative, n))
        starts = sorted(r[0] for r in raw)
        seen: dict[int, int] = {}
        for r in raw:
            if r[0] in seen:
                raise SettingsError(field, f"line {r[5]}: frame {r[0]} already starts an entry on line {seen[r[0]]}")
            seen[r[0]] = r[5]
        ranges = []
        for start, end, single, prompt, negative, n in raw:
            if single:
                k = bisect.bisect_right(starts, start)
                end = starts[k] - 1 if k < len(starts) else None
            ranges.append(PromptRange(start, end, prompt, negative, n))
        return cls(ranges, base_prompt, base_negative, field)

    def for_frame(self, index: int) -> tuple[str, str]:
        super().for_frame(index)
        k = bisect.bisect_right(self._starts, index) - 1
        if k >= 0:
            r = self.ranges[k]
            if r.end is None or index <= r.end:
                return r.prompt, self.base_negative if r.negative is None else r.negative
        return self.base_prompt, self.base_negative


class FolderPrompts(PromptSchedule):
    """Per-frame prompt files in a folder (see the module docstring)."""

    def __init__(
        self,
        folder: str | Path,
        base_prompt: str = "",
        base_negative: str = "",
        *,
        missing: str = "error",
        first_number: int = 0,
        field: str = "prompt folder",
    ):
        super().__init__(base_prompt, base_negative)
        self.field = field
        if missing not in MISSING_MODES:
            raise SettingsError(field, f"unknown missing-file mode {missing!r}; use one of {', '.join(MISSING_MODES)}")
        self.missing = missing
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SettingsError(field, f"{self.folder} is not a folder; give the folder holding the prompt .txt files")
        self.files: dict[int, Path] = {}
        for p in sorted(self.folder.iterdir()):
            if p.suffix.lower() != ".txt" or not p.is_file():
                continue
            m = _NUMBERED.search(p.stem)
            if m is None:
                continue
            frame = int(m.group(1)) - first_number
            if frame < 0:
                raise SettingsError(
                    field, f"{p.name} is numbered below first_number={first_number}; renumber it or lower first_number"
                )
            if frame in self.files:
                raise SettingsError(field, f"{self.files[frame].name} and {p.name} are both for frame {frame}; keep one")
            self.files[frame] = p
        if not self.files:
            raise SettingsError(field, f"no numbered .txt files (like 00000.txt) in {self.folder}")
        self._frames = sorted(self.files)
        sample = self.files[self._frames[0]].stem
        m = _NUMBERED.search(sample)
        self._prefix, self._width, self._first = sample[: m.start()], len(m.group(1)), first_number

    def expected_name(self, index: int) -> str:
        """The file name frame ``index`` would have, following the folder's first file's pattern."""
        return f"{self._prefix}{index + self._first:0{self._width}d}.txt"

    def _path(self, index: int) -> Path | None:
        if index in self.files:
            return self.files[index]
        if self.missing == "hold":
            k = bisect.bisect_right(self._frames, index) - 1
            return self.files[self._frames[k]] if k >= 0 else None
        if self.missing == "base":
            return None
        raise SettingsError(
            self.field,
            f"no prompt file for frame {index} (expected {self.expected_name(index)} in {self.folder}); "
            "add it or set missing files to 'base' or 'hold'",
        )

    def check(self, total: int) -> None:
        """Every frame has its file (or a fallback), and every file it uses is read once: UTF-8, a prompt."""
        used = {self._path(i) for i in range(total)}
        for path in sorted(p for p in used if p is not None):
            self._read(path)

    def for_frame(self, index: int) -> tuple[str, str]:
        super().for_frame(index)
        path = self._path(index)
        if path is None:
            return self.base_prompt, self.base_negative
        return self._read(path)

    def _read(self, path: Path) -> tuple[str, str]:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise SettingsError(self.field, f"{path.name} is not UTF-8 text; save it as UTF-8") from None
        except OSError as exc:
            raise SettingsError(self.field, f"cannot read {path}: {exc.strerror or exc}") from None
        prompt, negative = split_negative(text)
        if not prompt:
            raise SettingsError(self.field, f"{path.name} has no prompt (write 'prompt --neg negative')")
        return prompt, self.base_negative if negative is None else negative
