import ast
import math
from pathlib import Path

import pytest

from lib_vid2vid import schedule
from lib_vid2vid.errors import SettingsError, Vid2VidError
from lib_vid2vid.schedule import MAX_MAGNITUDE, ScheduleError, compile_expr

# (text, variables, expected value)
ACCEPTED = [
    ("0.5", {}, 0.5),
    ("  0.5  ", {}, 0.5),
    ("1 + 2 * 3", {}, 7),
    ("(1 + 2) * 3", {}, 9),
    ("2 ** 10", {}, 1024),
    ("2 ** -1", {}, 0.5),
    ("7 / 2", {}, 3.5),
    ("7 // 2", {}, 3),
    ("-7 // 2", {}, -4),
    ("7 % 3", {}, 1),
    ("-7 % 3", {}, 2),
    ("-(3)", {}, -3),
    ("+3", {}, 3),
    ("1e-3 * 1000", {}, 1),
    ("True + 1", {}, 2),
    ("1 < 2", {}, 1),
    ("2 < 1", {}, 0),
    ("1 <= 1 < 2", {}, 1),
    ("3 > 2 > 2", {}, 0),
    ("1 == 1.0", {}, 1),
    ("1 != 1", {}, 0),
    ("0 or 5", {}, 5),
    ("2 and 3", {}, 3),
    ("0 and 3", {}, 0),
    ("not 0", {}, 1),
    ("not 2", {}, 0),
    ("1 if 0 else 2", {}, 2),
    ("pi", {}, math.pi),
    ("e", {}, math.e),
    ("tau / 2", {}, math.pi),
    ("sin(pi / 2)", {}, 1),
    ("cos(0) + tan(0)", {}, 1),
    ("abs(-2)", {}, 2),
    ("min(3, 1, 2)", {}, 1),
    ("max(3, 1, 2)", {}, 3),
    ("floor(2.7) + ceil(2.1)", {}, 5),
    ("trunc(-2.7)", {}, -2),
    ("round(2.5)", {}, 3),
    ("round(2.4)", {}, 2),
    ("round(1.25, 1)", {}, 1.3),
    ("sqrt(16)", {}, 4),
    ("exp(0)", {}, 1),
    ("log(e)", {}, 1),
    ("log(8, 2)", {}, 3),
    ("log2(8) + log10(1000)", {}, 6),
    ("pow(2, 3)", {}, 8),
    ("atan2(1, 1)", {}, math.pi / 4),
    ("hypot(3, 4)", {}, 5),
    ("degrees(pi)", {}, 180),
    ("fmod(7, 3)", {}, 1),
    ("sign(-3) + sign(0) + sign(2)", {}, 0),
    ("clamp(5, 0, 1)", {}, 1),
    ("clamp(-5, 0, 1)", {}, 0),
    ("lerp(10, 20, 0.25)", {}, 12.5),
    ("smoothstep(0, 1, 0.5)", {}, 0.5),
    ("smoothstep(0, 10, 20)", {}, 1),
    ("frame", {"frame": 5}, 5),
    ("i * 2", {"frame": 5}, 10),
    ("loop", {"loop": 2}, 2),
    ("t", {"frame": 30, "fps": 10}, 3),
    ("t", {"frame": 30, "fps": 10, "t": 1.5}, 1.5),
    ("total - frame", {"total": 100, "frame": 40}, 60),
    ("fps", {"fps": 24}, 24),
    ("0.5 + 0.25 * sin(2 * pi * t)", {"t": 0.25}, 0.75),
    ("0.7 if frame < 10 else 0.4", {"frame": 3}, 0.7),
    ("0.7 if frame < 10 else 0.4", {"frame": 12}, 0.4),
    ("0.4 + 0.1 * (frame % 2 == 0)", {"frame": 4}, 0.5),
    ("(1 +\n frame)", {"frame": 2}, 3),
    # keyframe lists
    ("0: 0.5, 30: 0.7", {"frame": 0}, 0.5),
    ("0: 0.5, 30: 0.7", {"frame": 15}, 0.6),
    ("0: 0.5, 30: 0.7", {"frame": 30}, 0.7),
    ("0: 0.5, 30: 0.7", {"frame": 45}, 0.7),
    ("30: 0.7, 0: 0.5", {"frame": 15}, 0.6),
    ("10: 1, 20: 3", {"frame": 0}, 1),
    ("10: 1, 20: 3", {"frame": 15}, 2),
    ("0: 0\n10: 10\n", {"frame": 5}, 5),
    ("0: 0,\n\n10: 10,", {"frame": 4}, 4),
    ("0: frame, 10: 2 * frame", {"frame": 5}, 7.5),  # v0 = 5, v1 = 10 at frame 5 -> 7.5
    ("0: max(1, 2), 10: 0", {"frame": 5}, 1),
    ("0:(0.65), 30:(0.5)", {"frame": 30}, 0.5),
]


@pytest.mark.parametrize("text, env, expected", ACCEPTED)
def test_accepted(text, env, expected):
    expr = compile_expr("denoise", text)
    assert expr.evaluate(**env) == pytest.approx(expected, abs=1e-12)


def test_number_and_constant_fast_path():
    assert compile_expr("cfg", 7).constant == 7.0
    assert compile_expr("cfg", 0.25).evaluate(frame=3) == 0.25
    c = compile_expr("cfg", "2 * 3 + sqrt(4)")
    assert c.is_constant and c.constant == 8 and c.variables == frozenset()
    assert c.evaluate() == 8  # no variables needed
    k = compile_expr("cfg", "0: 2, 10: 2")
    assert k.is_constant and k.constant == 2
    v = compile_expr("cfg", "frame + t")
    assert not v.is_constant and v.variables == {"frame", "t"}
    assert compile_expr("cfg", "i").variables == {"frame"}


# (text, expected column, expected words in the message)
REJECTED = [
    ("().__class__", 3, "attribute access ('.__class__')"),
    ("frame.real", 6, "attribute access"),
    ("(1).__class__.__bases__[0].__subclasses__()", 27, "attribute access"),
    ("__import__('os')", 1, "names starting with '_'"),
    ("__builtins__", 1, "names starting with '_'"),
    ("1 + _x", 5, "names starting with '_'"),
    ("import os", 1, "import is not allowed"),
    ("from os import system", 1, "import is not allowed"),
    ("exec('1')", 1, "unknown function 'exec'"),
    ("eval('1')", 1, "unknown function 'eval'"),
    ("open('/etc/passwd')", 1, "unknown function 'open'"),
    ("globals()", 1, "unknown function"),
    ("os", 1, "unknown name 'os'"),
    ("9**9**9", 2, "exponent"),
    ("2 ** 2000", 3, "exponent"),
    ("10.0 ** 20 * 10.0 ** 20", 12, "out of range"),
    ("-10.0 ** 20 * 10.0 ** 20", 13, "out of range"),
    ("1 - 1e30 - 1e30", 10, "out of range"),
    ("1e400", 1, "out of range"),
    ("(-8) ** (1 / 3)", 6, "no real value"),
    ("1 / 0", 3, "division by zero"),
    ("sqrt(-1)", 1, "sqrt()"),
    ("lambda: 1", 1, "lambda"),
    ("[x for x in (1, 2)]", 1, "comprehensions"),
    ("max((x for x in (1, 2)), 0)", 5, "comprehensions"),
    ("frame[0]", 6, "subscripts"),
    ("(1, 2)", 1, "tuples"),
    ("[1]", 1, "lists"),
    ("{1: 2}", 1, "dicts"),
    ("'abc'", 1, "text is not allowed"),
    ("1 + 'a' * 3", 5, "text is not allowed"),
    ("b'x'", 1, "text is not allowed"),
    ("f'{frame}'", 1, "text is not allowed"),
    ("1j", 1, "literal 1j"),
    ("None", 1, "literal None"),
    ("sin(x=1)", 7, "keyword arguments"),
    ("max(*(1, 2))", 5, "'*' arguments"),
    ("(x := 3)", 2, "assignment"),
    ("1 & 2", 3, "operator is not allowed"),
    ("(frame) ** (1 / 0)", 15, "division by zero"),
    ("(1)  / (frame - frame) + 2 ** 9999", 28, "exponent"),
    ("~1", 1, "bit operators"),
    ("1 in 2", 1, "'is' and 'in'"),
    ("sin", 1, "is a function"),
    ("frame(1)", 1, "not a function"),
    ("sin(1, 2)", 1, "sin() takes 1 argument, got 2"),
    ("clamp(1)", 1, "clamp() takes 3 arguments"),
    ("max(1)", 1, "2 or more"),
    ("round(1.5, 0.5)", 1, "whole n"),
    ("", 1, "empty expression"),
    ("   ", 4, "empty expression"),
    ("1 +", None, "syntax error"),
    ("'é' + )", 7, "syntax error"),  # columns count characters, not UTF-8 bytes
    ("-" * 60 + "1", 41, "nested too deeply"),
    ("sin(" * 50 + "1" + ")" * 50, 161, "nested too deeply"),
    ("(" * 250 + "1" + ")" * 250, 201, "too many nested parentheses"),
    ("max(" + ",".join(["1"] * 450) + ")", None, "more than 400 parts"),
    ("1 + " * 300 + "1", 1001, "too long (more than 1000 characters)"),
    # keyframe lists: columns count from the start of the whole text
    ("0: 0.5, 30: foo", 13, "unknown name 'foo'"),
    ("0: 0.5, 0: 0.7", 9, "appears twice"),
    ("0: 0.5, x", 9, "FRAME: value"),
    ("0: , 30: 1", 2, "no value"),
    ("0: 1, 30: 1/0", 12, "division by zero"),
]


@pytest.mark.parametrize("text, column, words", REJECTED)
def test_rejected_with_field_and_column(text, column, words):
    with pytest.raises(ScheduleError) as info:
        compile_expr("denoise", text)
    err = info.value
    assert isinstance(err, SettingsError) and isinstance(err, Vid2VidError)
    assert err.field == "denoise"
    assert words in str(err)
    if column is not None:
        assert err.position == column, str(err)
        assert f"column {column}" in str(err)
    assert str(err).startswith("denoise: ")
    assert "\n" not in str(err)


def test_magnitude_bound_holds_for_negative_values():
    assert compile_expr("cfg", -MAX_MAGNITUDE).constant == -MAX_MAGNITUDE
    with pytest.raises(ScheduleError, match="out of range"):
        compile_expr("cfg", -2 * MAX_MAGNITUDE)
    expr = compile_expr("cfg", "-1e29 * frame")
    assert expr.evaluate(frame=10) == pytest.approx(-1e30)
    with pytest.raises(ScheduleError, match="out of range"):
        expr.evaluate(frame=11)


def test_multiline_positions():
    with pytest.raises(ScheduleError) as info:
        compile_expr("cfg", "(1 +\n frame.x)")
    assert (info.value.line, info.value.position) == (2, 7)
    assert "line 2, column 7" in str(info.value)
    with pytest.raises(ScheduleError) as info:
        compile_expr("cfg", "0: 1\n30: foo")
    assert (info.value.line, info.value.position) == (2, 5)


def test_runtime_errors_name_field_column_and_frame():
    expr = compile_expr("steps", "1 / (frame - 3)")
    assert expr.evaluate(frame=4) == 1
    with pytest.raises(ScheduleError) as info:
        expr.evaluate(frame=3)
    assert info.value.field == "steps" and info.value.position == 3
    assert "division by zero" in str(info.value) and "frame 3" in str(info.value)

    with pytest.raises(ScheduleError, match=r"sqrt\(\).*frame 0"):
        compile_expr("cfg", "sqrt(frame - 5)").evaluate(frame=0)
    with pytest.raises(ScheduleError, match="'total' is not known"):
        compile_expr("cfg", "frame / total").evaluate(frame=1)
    with pytest.raises(ScheduleError, match="keyframe list needs it"):
        compile_expr("cfg", "0: 1, 10: 2").evaluate()
    with pytest.raises(ScheduleError) as info:
        compile_expr("cfg", "0: 1, 10: 1/(frame - 5)").evaluate(frame=5)
    assert info.value.position == 12  # the '/'



def test_values_and_check_range():
    expr = compile_expr("denoise", "frame / 10")
    assert expr.values(total=3, fps=10) == [0.0, 0.1, 0.2]
    expr.check_range(0, 1, total=11, fps=10)
    with pytest.raises(ScheduleError, match="gives 1.1 at frame 11; it must be between 0 and 1"):
        expr.check_range(0, 1, total=20, fps=10)
    with pytest.raises(ScheduleError, match="whole number"):
        compile_expr("steps", "frame / 2").check_range(1, 150, total=5, fps=10, integer=True)
    with pytest.raises(ScheduleError, match="loop 1"):
        compile_expr("alpha", "loop").check_range(0, 0.5, total=2, fps=10, loops=2)
    with pytest.raises(ScheduleError, match="gives 2; it must be <= 1"):
        compile_expr("alpha", "2").check_range(hi=1, total=5, fps=10)
    with pytest.raises(ScheduleError, match="division by zero"):
        compile_expr("alpha", "1 / (frame - 2)").check_range(total=5, fps=10)


def test_source_never_uses_eval_exec_compile():
    tree = ast.parse(Path(schedule.__file__).read_text(encoding="utf-8"))
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    plain = {f.id for f in calls if isinstance(f, ast.Name)}
    assert not plain & {"eval", "exec", "compile", "__import__"}
    attrs = {(getattr(f.value, "id", "?"), f.attr) for f in calls if isinstance(f, ast.Attribute)}
    assert not {a for _, a in attrs} & {"eval", "exec", "__import__"}
    assert {o for o, a in attrs if a == "compile"} <= {"re"}  # only regular expressions are compiled
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert not imported & {"os", "subprocess", "builtins", "importlib"}


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_long_flat_chains_are_not_nesting(op):
    # 150 terms of one operator: a flat chain, one level of nesting however long (the node limit bounds it)
    terms = ["frame"] + ["1"] * 149
    text = op.join(terms)
    expr = compile_expr("cfg", text)
    want = 7.0
    for _ in range(149):
        want = {"+": want + 1, "-": want - 1, "*": want * 1, "/": want / 1}[op]
    assert expr.evaluate(frame=7) == pytest.approx(want)


def test_flat_sum_of_terms_with_their_own_brackets():
    text = " + ".join(f"0.001*sin(frame+{k})" for k in range(45))
    expr = compile_expr("denoise", text)
    assert expr.evaluate(frame=3) == pytest.approx(sum(0.001 * math.sin(3 + k) for k in range(45)))


def test_chained_conditionals_are_not_nesting():
    text = " else ".join(f"{k} if frame < {k} " for k in range(1, 45)) + " else 99"
    expr = compile_expr("steps", text)
    assert expr.evaluate(frame=10) == 11 and expr.evaluate(frame=100) == 99


@pytest.mark.parametrize("text", [
    "(frame + " * 41 + "1" + ")" * 41,            # brackets: 41 real levels
    "frame * (1 + (2 * " * 21 + "1" + "))" * 21,  # alternating operators inside brackets
    "abs(" * 41 + "frame" + ")" * 41,             # calls
    "1 if (" * 41 + "frame" + ") else 2" * 41,    # conditions nested in the condition
])
def test_real_nesting_is_still_limited(text):
    with pytest.raises(ScheduleError, match="nested too deeply"):
        compile_expr("cfg", text)
