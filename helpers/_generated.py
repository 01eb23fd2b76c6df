"""Write a generated file, or check that it is up to date (for helpers/gen_*.py)."""

from pathlib import Path


def write_or_check(target: Path, text: str, command: str, check: bool) -> int:
    """Exit status: 1 when ``check`` finds ``target`` stale (the message names ``command``), else 0."""
    if check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is out of date: run {command}")
            return 1
        return 0
    target.parent.mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0
