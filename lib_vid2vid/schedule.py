"""Safe per-frame schedules: small arithmetic expressions over the frame index, evaluated without ``eval``.

Any numeric setting that may change per frame (denoise, steps, cfg, seed, variation strength, superimpose
alpha, temporal weights, ...) takes either a number or a text in one of two forms. Both are compiled once,
at job start, by :func:`compile_expr`; every mistake is reported there as a :class:`ScheduleError` naming
the field and the column, before any frame is rendered.

1. Expression
-------------
Python-like syntax, parsed with ``ast.parse(text, mode="eval")`` and then checked node by node against an
allow-list. Nothing is ever passed to ``eval``, ``exec`` or ``compile``; the checked tree is turned into
plain Python closures. Allowed:

* numbers (``3``, ``0.5``, ``1e-3``; ``True``/``False`` count as 1/0). All arithmetic is in float.
* ``+ - * / // %`` and ``**`` (``%`` and ``//`` follow Python: the result takes the divisor's sign), unary
  ``+ -``; comparisons ``< <= > >= == !=`` (chains such as ``10 <= frame < 20`` work) giving 1.0 or 0.0;
  ``and``, ``or``, ``not`` (Python semantics: ``a or b`` is ``a`` if ``a != 0`` else ``b``);
  ``x if cond else y``; parentheses.
* variables: ``frame`` (alias ``i``; output frame index from 0), ``loop`` (loopback pass from 0),
  ``t`` (seconds, ``frame / fps`` unless given), ``total`` (number of frames), ``fps``.
* constants ``pi``, ``e``, ``tau``.
* functions (positional arguments only): ``abs min max floor ceil trunc round sqrt exp log log2 log10 pow
  sin cos tan asin acos atan atan2 sinh cosh tanh hypot degrees radians fmod sign clamp lerp smoothstep``;
  ``round(x[, n])`` rounds half up (``round(2.5) == 3``), ``log(x[, base])``, ``clamp(x, lo, hi)``,
  ``lerp(a, b, w) = a + (b - a) * w``, ``smoothstep(e0, e1, x)`` is the cubic Hermite 0..1 ramp,
  ``sign(x)`` is -1, 0 or 1, ``min``/``max`` take two or more arguments.

Rejected with a clear error: attribute access (``x.y``), subscripts (``x[0]``), any name starting with
``_``, unknown names or functions, strings and other non-numeric literals, lambdas, comprehensions,
lists/tuples/dicts/sets, keyword or ``*`` arguments, assignment expressions, f-strings, bit operators,
``is``/``in``, statements such as ``import`` (a syntax error in an expression).

Bounds: at most :data:`MAX_SOURCE_CHARS` characters, :data:`MAX_NODES` syntax nodes and :data:`MAX_DEPTH`
levels of nesting (brackets, calls, unary operators; a flat chain such as ``a + b - c + ...`` or
``x if c else y if d else ...`` is one level however long); ``|exponent| <= MAX_EXPONENT`` for
``**``/``pow``; every intermediate value must be finite with ``|x| <= MAX_MAGNITUDE``. The evaluation budget
follows from the shape of the language: there are no loops, no recursion and no user functions, every
allowed function is O(1), so one evaluation runs each of the at most ``MAX_NODES`` nodes at most once.

Sub-expressions without variables are folded at compile time, so ``9**9**9`` or ``1/0`` fail at job start;
an expression without variables becomes a constant and :meth:`Expr.evaluate` just returns it.

2. Keyframe list
----------------
``"0: 0.5, 30: 0.7"`` -- entries ``FRAME: EXPRESSION`` separated by commas or new lines (commas inside
parentheses belong to the expression; empty entries are ignored). A text is a keyframe list exactly when it
starts with a whole number followed by ``:`` (no expression can). ``FRAME`` is a whole output-frame index
>= 0; frames must be distinct (order does not matter). At frame ``f`` with keyframes ``a <= f < b`` the value
is ``v_a + (v_b - v_a) * (f - a) / (b - a)`` (linear interpolation), before the first keyframe it is the
first value and after the last keyframe the last value. Each value is itself an expression evaluated at
the current frame, so ``"0: 0.3, 60: 0.3 + 0.1*sin(t)"`` is allowed.
"""

from __future__ import annotations

import ast
import bisect
import math
import re
import warnings
from collections.abc import Callable

from .errors import SettingsError

__all__ = [
    "ScheduleError",
    "Expr",
    "compile_expr",
    "VARIABLES",
    "FUNCTIONS",
    "MAX_SOURCE_CHARS",
    "MAX_NODES",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_MAGNITUDE",
]

MAX_SOURCE_CHARS = 1000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_EXPONENT = 1024.0
MAX_MAGNITUDE = 1e30

VARIABLES = ("frame", "i", "loop", "t", "total", "fps")
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


class ScheduleError(SettingsError):
    """A schedule text is invalid or failed to evaluate.

    ``field`` is the setting as the user knows it, ``position`` the 1-based column (character, not byte)
    in the line ``line`` (1-based; ``None`` when the text is a single line), ``reason`` the bare message.
    """

    def __init__(self, field: str, position: int, message: str, *, line: int | None = None):
        self.position = position
        self.line = line
        self.reason = message
        where = f"line {line}, column {position}" if line is not None else f"column {position}"
        super().__init__(field, f"{message} (at {where})")


# ---------------------------------------------------------------------------------------------- functions


def _round(x: float, n: float = 0.0) -> float:
    if n != int(n) or abs(n) > 15:
        raise ValueError("round(x, n) needs a whole n between -15 and 15")
    k = 10.0 ** int(n)
    return math.floor(x * k + 0.5) / k


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _pow(x: float, y: float) -> float:
    if abs(y) > MAX_EXPONENT:
        raise OverflowError(f"exponent {y:g} is too large (limit {MAX_EXPONENT:g})")
    r = x**y
    if isinstance(r, complex):
        raise ValueError("a negative number to a fractional power has no real value")
    return r


def _clamp(x: float, lo: float, hi: float) -> float:
    if lo > hi:
        raise ValueError(f"clamp(x, lo, hi) needs lo <= hi, got {lo:g} > {hi:g}")
    return min(max(x, lo), hi)


def _smoothstep(e0: float, e1: float, x: float) -> float:
    if e0 == e1:
        return 0.0 if x < e0 else 1.0
    u = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def _sign(x: float) -> float:
    return (x > 0) - (x < 0)


def _minmax(fn):
    return lambda *args: fn(args)


# name -> (callable, min args, max args or None for any)
FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    "abs": (abs, 1, 1),
    "min": (_minmax(min), 2, None),
    "max": (_minmax(max), 2, None),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "trunc": (math.trunc, 1, 1),
    "round": (_round, 1, 2),
    "sqrt": (math.sqrt, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (_log, 1, 2),
    "log2": (math.log2, 1, 1),
    "log10": (math.log10, 1, 1),
    "pow": (_pow, 2, 2),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "atan2": (math.atan2, 2, 2),
    "sinh": (math.sinh, 1, 1),
    "cosh": (math.cosh, 1, 1),
    "tanh": (math.tanh, 1, 1),
    "hypot": (math.hypot, 2, 2),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "fmod": (math.fmod, 2, 2),
    "sign": (_sign, 1, 1),
    "clamp": (_clamp, 3, 3),
    "lerp": (lambda a, b, w: a + (b - a) * w, 3, 3),
    "smoothstep": (_smoothstep, 3, 3),
}

_BINOPS: dict[type, tuple[str, Callable[[float, float], float]]] = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.FloorDiv: ("//", lambda a, b: a // b),
    ast.Mod: ("%", lambda a, b: a % b),
    ast.Pow: ("**", _pow),
}
_CMPOPS: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}

# Friendly messages for node types that are not allowed (anything else gets a generic one).
_REJECT: dict[type, str] = {
    ast.Attribute: "attribute access ('.name') is not allowed",
    ast.Subscript: "subscripts ('[...]') are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples (a, b) are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
    ast.NamedExpr: "assignment (:=) is not allowed",
    ast.JoinedStr: "text is not allowed in a numeric expression",
    ast.Starred: "'*' arguments are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Slice: "slices are not allowed",
}


# ------------------------------------------------------------------------------------------- compilation


class _Fail(Exception):
    """Internal: an error at a 0-based character offset of the whole schedule text."""

    def __init__(self, offset: int, message: str):
        self.offset = offset
        self.message = message
        super().__init__(message)


class _Node:
    """A compiled sub-expression: ``run(env) -> float``; ``const`` is its value if it has no variables."""

    __slots__ = ("run", "const")

    def __init__(self, run: Callable[[dict], float], const: float | None = None):
        self.run = run
        self.const = const


def _checked(value, offset: int) -> float:
    if isinstance(value, complex):
        raise _Fail(offset, "the result has no real value")
    v = float(value)
    if not math.isfinite(v) or abs(v) > MAX_MAGNITUDE:
        raise _Fail(offset, f"value out of range (|x| must be at most {MAX_MAGNITUDE:g})")
    return v


def _guard(fn: Callable, args: tuple, offset: int, what: str) -> float:
    try:
        return _checked(fn(*args), offset)
    except _Fail:
        raise
    except ZeroDivisionError:
        raise _Fail(offset, f"division by zero in '{what}'") from None
    except OverflowError as exc:
        msg = str(exc) if "exponent" in str(exc) else "result too large"
        raise _Fail(offset, f"{msg} in '{what}'") from None
    except (ValueError, TypeError) as exc:
        raise _Fail(offset, f"{what}: {exc}") from None


def _const(value: float) -> _Node:
    return _Node(lambda env: value, value)


class _Source:
    """The schedule text; maps offsets to (column, line) and AST positions to offsets."""

    def __init__(self, text: str):
        self.text = text
        self.multiline = "\n" in text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, offset: int) -> tuple[int, int | None]:
        """0-based offset -> (1-based column, 1-based line or None for a one-line text)."""
        li = bisect.bisect_right(self.line_starts, offset) - 1
        return offset - self.line_starts[li] + 1, (li + 1 if self.multiline else None)

    def error(self, field: str, offset: int, message: str) -> ScheduleError:
        col, line = self.where(offset)
        return ScheduleError(field, col, message, line=line)


class _Compiler:
    """Checks an AST against the allow-list and turns it into closures.

    ``base`` is where the parsed sub-text starts in the whole text; AST columns are UTF-8 byte offsets
    within their line of the sub-text and are converted to character offsets of the whole text.
    """

    def __init__(self, sub: str, base: int, used: set[str]):
        self.sub = sub
        self.lines = sub.split("\n")
        self.line_off = [0]
        for ln in self.lines[:-1]:
            self.line_off.append(self.line_off[-1] + len(ln) + 1)
        self.base = base
        self.used = used

    def at(self, node: ast.AST) -> int:
        lineno = getattr(node, "lineno", 1)
        col_b = getattr(node, "col_offset", 0)
        line = self.lines[lineno - 1]
        col = len(line.encode("utf-8")[:col_b].decode("utf-8", errors="ignore"))
        return self.base + self.line_off[lineno - 1] + col

    def at_end(self, node: ast.AST) -> int:
        """Offset just after ``node`` (where a following '.', '[' or operator starts, modulo blanks)."""
        lineno = getattr(node, "end_lineno", None) or 1
        col_b = getattr(node, "end_col_offset", None) or 0
        line = self.lines[lineno - 1]
        col = len(line.encode("utf-8")[:col_b].decode("utf-8", errors="ignore"))
        return self.base + self.line_off[lineno - 1] + col

    def after(self, node: ast.AST, chars: str) -> int:
        """Offset of the first of ``chars`` after ``node`` (a '.', '[' or an operator), else the node start."""
        start = self.at_end(node) - self.base
        sub = self.sub
        for k in range(start, len(sub)):
            if sub[k] in chars:
                return self.base + k
        return self.at(node)

    def op_at(self, left: ast.AST) -> int:
        """Offset of the binary operator that follows ``left`` (skipping blanks and closing brackets)."""
        start = self.at_end(left) - self.base
        sub = self.sub
        for k in range(start, len(sub)):
            if not (sub[k].isspace() or sub[k] == ")"):
                return self.base + k
        return self.at(left)

    def build(self, node: ast.AST) -> _Node:
        kind = type(node)
        method = getattr(self, "_" + kind.__name__, None)
        if method is None:
            if kind is ast.Attribute:
                off = self.after(node.value, ".")
                raise _Fail(off, f"attribute access ('.{node.attr}') is not allowed")
            elif kind is ast.Subscript:
                off = self.after(node.value, "[")
            else:
                off = self.at(node)
            raise _Fail(off, _REJECT.get(kind, f"'{kind.__name__}' is not allowed in a schedule"))
        return method(node)

    def _Constant(self, node: ast.Constant) -> _Node:
        v = node.value
        if isinstance(v, (bool, int, float)):
            return _const(_checked(v, self.at(node)))
        if isinstance(v, (str, bytes)):
            raise _Fail(self.at(node), "text is not allowed in a numeric expression")
        raise _Fail(self.at(node), f"the literal {v!r} is not allowed; use a real number")

    def _Name(self, node: ast.Name) -> _Node:
        name, off = node.id, self.at(node)
        if name.startswith("_"):
            raise _Fail(off, f"names starting with '_' are not allowed ({name!r})")
        if name in _CONSTANTS:
            return _const(_CONSTANTS[name])
        if name in FUNCTIONS:
            raise _Fail(off, f"'{name}' is a function; call it like {name}(x)")
        if name not in VARIABLES:
            raise _Fail(
                off, f"unknown name {name!r}; variables are {', '.join(VARIABLES)}, constants {', '.join(_CONSTANTS)}"
            )
        key = "frame" if name == "i" else name
        self.used.add(key)

        def run(env: dict) -> float:
            v = env.get(key)
            if v is None:
                raise _Fail(off, f"'{name}' is not known for this job")
            return v

        return _Node(run)

    def _UnaryOp(self, node: ast.UnaryOp) -> _Node:
        if isinstance(node.op, ast.USub):
            fn = float.__neg__
        elif isinstance(node.op, ast.UAdd):
            fn = float.__pos__
        elif isinstance(node.op, ast.Not):
            fn = lambda a: 0.0 if a else 1.0  # noqa: E731
        else:
            raise _Fail(self.at(node), "bit operators (~) are not allowed")
        operand = self.build(node.operand)
        if operand.const is not None:
            return _const(fn(operand.const))
        run_o = operand.run
        return _Node(lambda env: fn(run_o(env)))

    def _BinOp(self, node: ast.BinOp) -> _Node:
        entry = _BINOPS.get(type(node.op))
        if entry is None:
            raise _Fail(self.op_at(node.left), "this operator is not allowed (use + - * / // % **)")
        sym, fn = entry
        left, right = self.build(node.left), self.build(node.right)
        off = self.op_at(node.left)
        if left.const is not None and right.const is not None:
            return _const(_guard(fn, (left.const, right.const), off, sym))
        rl, rr = left.run, right.run
        return _Node(lambda env: _guard(fn, (rl(env), rr(env)), off, sym))

    def _BoolOp(self, node: ast.BoolOp) -> _Node:
        parts = [self.build(v) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def run(env: dict) -> float:
            v = 0.0
            for p in parts:
                v = p.run(env)
                if (not v) if is_and else bool(v):
                    return v
            return v

        if all(p.const is not None for p in parts):
            return _const(run({}))
        return _Node(run)

    def _Compare(self, node: ast.Compare) -> _Node:
        ops = []
        for op in node.ops:
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise _Fail(self.at(node), "'is' and 'in' are not allowed; compare with < <= > >= == !=")
            ops.append(fn)
        operands = [self.build(node.left)] + [self.build(c) for c in node.comparators]

        def run(env: dict) -> float:
            a = operands[0].run(env)
            for fn, nxt in zip(ops, operands[1:]):
                b = nxt.run(env)
                if not fn(a, b):
                    return 0.0
                a = b
            return 1.0

        if all(p.const is not None for p in operands):
            return _const(run({}))
        return _Node(run)

    def _IfExp(self, node: ast.IfExp) -> _Node:
        test, body, orelse = self.build(node.test), self.build(node.body), self.build(node.orelse)
        if test.const is not None:
            return body if test.const else orelse
        rt, rb, ro = test.run, body.run, orelse.run
        return _Node(lambda env: rb(env) if rt(env) else ro(env))

    def _Call(self, node: ast.Call) -> _Node:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                raise _Fail(self.after(func.value, "."), f"attribute access ('.{func.attr}') is not allowed")
            raise _Fail(self.at(func), "only named functions can be called, like sin(x)")
        name, off = func.id, self.at(func)
        if name.startswith("_"):
            raise _Fail(off, f"names starting with '_' are not allowed ({name!r})")
        if name not in FUNCTIONS:
            if name in VARIABLES or name in _CONSTANTS:
                raise _Fail(off, f"'{name}' is not a function")
            raise _Fail(off, f"unknown function {name!r}; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise _Fail(self.at(node.keywords[0].value), f"keyword arguments are not allowed in {name}()")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _Fail(self.at(a), _REJECT[ast.Starred])
        fn, lo, hi = FUNCTIONS[name]
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else (f"{lo} or more" if hi is None else f"{lo} to {hi}")
            raise _Fail(off, f"{name}() takes {want} argument{'' if want == '1' else 's'}, got {n}")
        args = [self.build(a) for a in node.args]
        what = name + "()"
        if all(a.const is not None for a in args):
            return _const(_guard(fn, tuple(a.const for a in args), off, what))
        runs = [a.run for a in args]
        return _Node(lambda env: _guard(fn, tuple(r(env) for r in runs), off, what))

    def check_shape(self, tree: ast.AST) -> None:
        """Count nodes and measure depth without recursion (a hostile tree must not blow the stack)."""
        count = 0
        stack: list[tuple[ast.AST, int]] = [(tree, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)):
                continue
            count += 1
            if count > MAX_NODES:
                raise _Fail(self.at(node), f"expression is too long (more than {MAX_NODES} parts)")
            if depth > MAX_DEPTH:
                raise _Fail(self.at(node), f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
            for child in ast.iter_child_nodes(node):
                stack.append((child, depth if _continues_chain(node, child) else depth + 1))


_PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.FloorDiv: 2, ast.Mod: 2, ast.Pow: 3}


def _continues_chain(parent: ast.AST, child: ast.AST) -> bool:
    """True when ``child`` is the next link of a flat chain, not a nested level.

    ``a + b - c + d`` parses as ``((a + b) - c) + d``: each operator of the same precedence holds the chain so
    far as its left operand (``**`` as its right one); ``x if c else y if d else z`` holds the rest of the
    chain as its ``else``. Written without brackets these are one level however long (the node limit bounds
    them); brackets, calls, unary operators and a change of precedence each add a level.
    """
    if isinstance(parent, ast.BinOp) and isinstance(child, ast.BinOp):
        level = _PRECEDENCE.get(type(parent.op))
        if level is None or level != _PRECEDENCE.get(type(child.op)):
            return False
        return child is (parent.right if isinstance(parent.op, ast.Pow) else parent.left)
    return isinstance(parent, ast.IfExp) and isinstance(child, ast.IfExp) and child is parent.orelse


def _compile_span(field: str, src: _Source, start: int, end: int, used: set[str]) -> _Node:
    """Compile ``src.text[start:end]`` (no surrounding blanks) as one expression."""
    sub = src.text[start:end]
    if not sub:
        raise src.error(field, start, "empty expression; write a number or an expression")
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal" warnings would reach the console
            warnings.simplefilter("ignore")
            tree = ast.parse(sub, mode="eval")
    except SyntaxError as exc:
        lines = sub.split("\n")
        lineno = min(max(exc.lineno or 1, 1), len(lines))
        off = sum(len(x) + 1 for x in lines[: lineno - 1]) + max((exc.offset or 1) - 1, 0)
        msg = "import is not allowed" if re.match(r"(import|from)\b", sub) else f"syntax error: {exc.msg}"
        raise src.error(field, start + min(off, len(sub)), msg) from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise src.error(field, start, f"cannot parse: {exc}") from None
    comp = _Compiler(sub, start, used)
    try:
        comp.check_shape(tree.body)
        return comp.build(tree.body)
    except _Fail as f:
        raise src.error(field, f.offset, f.message) from None
    except RecursionError:
        raise src.error(field, start, f"expression is nested too deeply (more than {MAX_DEPTH} levels)") from None


# ------------------------------------------------------------------------------------------ public types


class Expr:
    """A compiled schedule; ``evaluate(frame=..., loop=..., t=..., total=..., fps=...) -> float``.

    ``constant`` is the value when the schedule does not depend on any variable (else ``None``; then
    :meth:`evaluate` returns it at once); ``variables`` the set of variables it reads (``i`` counts as
    ``frame``; a keyframe list always reads ``frame``).
    """

    __slots__ = ("field", "text", "constant", "variables", "_run", "_src")

    def __init__(self, field: str, text: str, src: _Source | None, run, constant, variables):
        self.field = field
        self.text = text
        self.constant = constant
        self.variables = frozenset(variables)
        self._run = run
        self._src = src

    @property
    def is_constant(self) -> bool:
        return self.constant is not None

    def evaluate(
        self,
        *,
        frame: float | None = None,
        loop: float = 0,
        t: float | None = None,
        total: float | None = None,
        fps: float | None = None,
    ) -> float:
        """Value for one frame. Variables the schedule does not read may be omitted.

        ``t`` defaults to ``frame / fps``. A runtime failure (division by zero, ``sqrt`` of a negative,
        a value out of range, a variable the job did not pass) raises :class:`ScheduleError` naming the
        column and the frame.
        """
        if self.constant is not None:
            return self.constant
        if t is None and frame is not None and fps:
            t = float(frame) / float(fps)
        env = {
            "frame": None if frame is None else float(frame),
            "loop": float(loop),
            "t": None if t is None else float(t),
            "total": None if total is None else float(total),
            "fps": None if fps is None else float(fps),
        }
        try:
            return self._run(env)
        except _Fail as f:
            at = "" if frame is None else f" at frame {frame:g}" + (f", loop {loop:g}" if loop else "")
            raise self._src.error(self.field, f.offset, f.message + at) from None

    def values(self, total: int, fps: float, loop: int = 0) -> list[float]:
        """Evaluate for frames ``0 .. total-1`` (plots, job-start checks)."""
        return [self.evaluate(frame=f, loop=loop, total=total, fps=fps) for f in range(total)]

    def check_range(
        self,
        lo: float | None = None,
        hi: float | None = None,
        *,
        total: int,
        fps: float,
        loops: int = 1,
        integer: bool = False,
    ) -> None:
        """Job-start check: evaluate every frame of every pass; raise on the first error or bad value.

        Values must lie in ``lo..hi`` (either may be ``None``), and be whole numbers if ``integer``.
        The error's position is column 1 (the whole schedule) and the message names the frame.
        """
        for loop in range(loops if not self.is_constant else 1):
            for f in range(total if not self.is_constant else 1):
                v = self.evaluate(frame=f, loop=loop, total=total, fps=fps)
                if (lo is not None and v < lo) or (hi is not None and v > hi) or (integer and v != int(v)):
                    if lo is not None and hi is not None:
                        want = f"between {lo:g} and {hi:g}"
                    elif lo is not None:
                        want = f">= {lo:g}"
                    elif hi is not None:
                        want = f"<= {hi:g}"
                    else:
                        want = "finite"
                    kind = "a whole number " if integer else ""
                    at = "" if self.is_constant else f" at frame {f}" + (f", loop {loop}" if loops > 1 else "")
                    raise ScheduleError(self.field, 1, f"gives {v:g}{at}; it must be {kind}{want}")

    def __repr__(self) -> str:
        return f"Expr({self.field!r}, {self.text!r})"


_KEYFRAME_START = re.compile(r"\s*\d+\s*:")
_KEYFRAME_ENTRY = re.compile(r"(\d+)\s*:")


def _split_entries(text: str) -> list[tuple[int, int]]:
    """(start, end) of each comma- or newline-separated entry at bracket depth 0."""
    spans, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch in ",\n" and depth == 0:
            spans.append((start, k))
            start = k + 1
    spans.append((start, len(text)))
    return spans


def _strip_span(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def compile_expr(field: str, text: str | int | float) -> Expr:
    """Validate and compile a schedule: a number, an expression or a keyframe list (module docstring).

    Raises :class:`ScheduleError` naming ``field`` and the column of the first problem.
    """
    if isinstance(text, (bool, int, float)):
        v = float(text)
        if not math.isfinite(v) or abs(v) > MAX_MAGNITUDE:
            raise ScheduleError(field, 1, f"value {text!r} is out of range (|x| must be at most {MAX_MAGNITUDE:g})")
        return Expr(field, str(text), None, None, v, ())
    if not isinstance(text, str):
        raise ScheduleError(field, 1, f"expected a number or a text, got {type(text).__name__}")
    src = _Source(text)
    if len(text) > MAX_SOURCE_CHARS:
        raise src.error(field, MAX_SOURCE_CHARS, f"schedule is too long (more than {MAX_SOURCE_CHARS} characters)")
    used: set[str] = set()
    if _KEYFRAME_START.match(text):
        return _compile_keyframes(field, src, used)
    a, b = _strip_span(text, 0, len(text))
    node = _compile_span(field, src, a, b, used)
    if node.const is not None:
        return Expr(field, text, src, None, node.const, ())
    return Expr(field, text, src, node.run, None, used)


def _compile_keyframes(field: str, src: _Source, used: set[str]) -> Expr:
    text = src.text
    entries: dict[int, _Node] = {}
    for a, b in _split_entries(text):
        a, b = _strip_span(text, a, b)
        if a == b:
            continue
        m = _KEYFRAME_ENTRY.match(text, a, b)
        if m is None:
            raise src.error(field, a, "expected 'FRAME: value' (keyframe list such as '0: 0.5, 30: 0.7')")
        key = int(m.group(1))
        if key in entries:
            raise src.error(field, a, f"frame {key} appears twice in the keyframe list")
        va, vb = _strip_span(text, m.end(), b)
        if va == vb:
            raise src.error(field, m.end() - 1, f"keyframe {key} has no value after ':'")
        entries[key] = _compile_span(field, src, va, vb, used)
    keys = sorted(entries)
    nodes = [entries[k] for k in keys]
    consts = {n.const for n in nodes}
    if None not in consts and len(consts) == 1:
        return Expr(field, text, src, None, nodes[0].const, ())
    key_off = next(m.start() for m in [_KEYFRAME_START.match(text)] if m)

    def run(env: dict) -> float:
        f = env.get("frame")
        if f is None:
            raise _Fail(key_off, "'frame' is not known for this job (a keyframe list needs it)")
        if f <= keys[0]:
            return nodes[0].run(env)
        if f >= keys[-1]:
            return nodes[-1].run(env)
        j = bisect.bisect_right(keys, f) - 1
        va, vb = nodes[j].run(env), nodes[j + 1].run(env)
        return va + (vb - va) * (f - keys[j]) / (keys[j + 1] - keys[j])

    return Expr(field, text, src, run, None, used | {"frame"})
