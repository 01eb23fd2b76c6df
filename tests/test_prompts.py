import pytest

from lib_vid2vid.errors import SettingsError
from lib_vid2vid.prompts import FolderPrompts, PromptSchedule, RangePrompts, split_negative

BASE = ("base prompt", "base negative")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a cat --neg blurry", ("a cat", "blurry")),
        ("a cat", ("a cat", None)),
        ("  a cat  ", ("a cat", None)),
        ("--neg blurry", ("", "blurry")),
        ("a cat --neg", ("a cat", "")),
        ("a cat\n--neg blurry, ugly\n", ("a cat", "blurry, ugly")),
        ("a--neg b", ("a--neg b", None)),  # --neg must stand alone
        ("a --negative b", ("a --negative b", None)),
        ("a --neg b --neg c", ("a", "b --neg c")),  # only the first --neg splits
    ],
)
def test_split_negative(text, expected):
    assert split_negative(text) == expected


def schedule(text):
    return PromptSchedule.from_text(text, *BASE)


def test_ranges_from_docstring_example():
    s = schedule("0: a cat --neg blurry\n30-59: a dog\n90-: a bird\n")
    assert s.for_frame(0) == ("a cat", "blurry")
    assert s.for_frame(29) == ("a cat", "blurry")
    assert s.for_frame(30) == ("a dog", "base negative")
    assert s.for_frame(59) == ("a dog", "base negative")
    assert s.for_frame(60) == BASE  # not covered
    assert s.for_frame(89) == BASE
    assert s.for_frame(90) == ("a bird", "base negative")
    assert s.for_frame(100000) == ("a bird", "base negative")


def test_single_starts_run_until_next_entry():
    s = schedule("0: a cat\n30: a dog")
    assert [s.for_frame(i)[0] for i in (0, 29, 30, 5000)] == ["a cat", "a cat", "a dog", "a dog"]
    # order of lines does not matter; frames before the first entry use the base prompt
    s = schedule("30: a dog\n10: a cat")
    assert [s.for_frame(i)[0] for i in (0, 9, 10, 29, 30)] == ["base prompt", "base prompt", "a cat", "a cat", "a dog"]


def test_comments_blanks_colons_and_empty_text():
    s = schedule("# intro\n\n  0 - 4 : style: anime, 1girl  \n")
    assert s.for_frame(4) == ("style: anime, 1girl", "base negative")
    assert s.for_frame(5) == BASE
    assert schedule("").for_frame(3) == BASE
    assert isinstance(s, RangePrompts)


@pytest.mark.parametrize(
    "text, words",
    [
        ("a cat", "line 1: expected 'FRAME: prompt'"),
        ("0: a cat\n\nfoo bar", "line 3: expected"),
        ("-5: x", "line 1: expected"),
        ("0: a\n10-5: b", "line 2: range 10-5 ends before it starts"),
        ("0-10: a\n5: b", "line 2: frame 5 is already covered by line 1"),
        ("0-: a\n50-60: b", "line 2: frame 50 is already covered by line 1"),
        ("0: a\n0: b", "line 2: frame 0 already starts an entry on line 1"),
        ("5: --neg x", "line 1: no prompt"),
        ("5:", "line 1: no prompt"),
    ],
)
def test_text_errors_name_the_line(text, words):
    with pytest.raises(SettingsError) as info:
        schedule(text)
    assert info.value.field == "prompt schedule"
    assert words in str(info.value)


def test_constant_schedule():
    s = PromptSchedule.constant("p", "n")
    assert s.for_frame(0) == ("p", "n") and s.for_frame(99) == ("p", "n")
    s.check(10)


# ------------------------------------------------------------------------------------------------ folders


def write(folder, name, text, encoding="utf-8"):
    (folder / name).write_bytes(text.encode(encoding))


@pytest.fixture
def folder(tmp_path):
    write(tmp_path, "00000.txt", "a cat --neg blurry\n")
    write(tmp_path, "00001.txt", "a dog")
    write(tmp_path, "00003.txt", "\ufeffa bird\n--neg dark")  # BOM and a negative on its own line
    write(tmp_path, "README.txt", "ignored: no number")
    write(tmp_path, "00002.md", "ignored: not .txt")
    return tmp_path


def test_folder_reads_files(folder):
    s = PromptSchedule.from_folder(folder, *BASE)
    assert isinstance(s, FolderPrompts)
    assert s.for_frame(0) == ("a cat", "blurry")
    assert s.for_frame(1) == ("a dog", "base negative")
    assert s.for_frame(3) == ("a bird", "dark")


def test_folder_missing_error_names_file(folder):
    s = PromptSchedule.from_folder(folder, *BASE)
    s.check(2)  # frames 0 and 1 exist
    with pytest.raises(SettingsError, match=r"no prompt file for frame 2 \(expected 00002.txt"):
        s.check(4)
    with pytest.raises(SettingsError, match="00002.txt"):
        s.for_frame(2)


def test_folder_missing_base_and_hold(folder):
    base = PromptSchedule.from_folder(folder, *BASE, missing="base")
    base.check(10)
    assert base.for_frame(2) == BASE and base.for_frame(9) == BASE
    hold = PromptSchedule.from_folder(folder, *BASE, missing="hold")
    assert hold.for_frame(2) == ("a dog", "base negative")
    assert hold.for_frame(50) == ("a bird", "dark")
    with pytest.raises(SettingsError, match="missing-file mode"):
        PromptSchedule.from_folder(folder, missing="skip")


def test_folder_hold_before_first_file_uses_base(tmp_path):
    write(tmp_path, "frame_0005.txt", "late")
    s = PromptSchedule.from_folder(tmp_path, *BASE, missing="hold")
    assert s.for_frame(4) == BASE and s.for_frame(5) == ("late", "base negative")
    strict = PromptSchedule.from_folder(tmp_path, *BASE)
    with pytest.raises(SettingsError, match="expected frame_0000.txt"):
        strict.check(1)


def test_folder_first_number(tmp_path):
    write(tmp_path, "0001.txt", "first")
    write(tmp_path, "0002.txt", "second")
    s = PromptSchedule.from_folder(tmp_path, *BASE, first_number=1)
    assert s.for_frame(0)[0] == "first" and s.for_frame(1)[0] == "second"
    with pytest.raises(SettingsError, match=r"frame 2 \(expected 0003.txt"):
        s.check(3)


@pytest.mark.parametrize(
    "files, words",
    [
        ({"1.txt": "a", "frame_001.txt": "b"}, "1.txt and frame_001.txt are both for frame 1"),
        ({"notes.txt": "x"}, "no numbered .txt files"),
        ({"0.txt": "   "}, "0.txt has no prompt"),
    ],
)
def test_folder_errors(tmp_path, files, words):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(SettingsError) as info:
        PromptSchedule.from_folder(tmp_path, *BASE).for_frame(0)
    assert info.value.field == "prompt folder"
    assert words in str(info.value)


def test_folder_not_utf8_and_not_a_folder(tmp_path):
    write(tmp_path, "0.txt", "caf\xe9", encoding="latin-1")
    with pytest.raises(SettingsError, match="0.txt is not UTF-8"):
        PromptSchedule.from_folder(tmp_path).for_frame(0)
    with pytest.raises(SettingsError, match="is not a folder"):
        PromptSchedule.from_folder(tmp_path / "nope")
