"""Program text: parsing and printing of s-expressions.

A program::

    (fun ((x (vec n)) (w (vec n)))            ; parameters with types
      (ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) 0.0 (length x)))

Numbers with a dot, an exponent, ``inf`` or ``nan`` are reals (``Num``); plain integers are
``Int``.  ``(let ((x e) (y e2)) body)`` nests into ``Let`` nodes.  A head that is not a
core form but a registered library function (:mod:`eqsat_ad.lang.macros`) is expanded
while parsing.  Everything is iterative, so very deep programs parse and print.

The reader refuses, before any parsing work grows, texts longer than :data:`MAX_CHARS`
characters (4 Mi) and programs nested deeper than :data:`MAX_DEPTH` levels (10,000) with a
:class:`ParseError` naming the file, the line and the limit.  The depth is counted in the
same linear pass, as the expression depth the text will have (a ``lambda`` or a binding
list adds nothing, ``(+ a b c d)`` folds into three levels).  Both caps are generous for
real programs (the derivative programs the tool prints reach a few hundred KiB); change them
with :func:`set_parse_limits` or the ``max_chars``/``max_depth`` arguments of :func:`parse`.
Integer literals must fit in 64 bits.

>>> p = parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) 2.0))))")
>>> print(show_program(p))
(fun ((x (vec n)))
  (sum n (lambda (i) (* (get x i) 2.0))))
>>> parse(show_program(p)) == p
True
"""
from __future__ import annotations

import contextlib
import gc
import math
import re
from dataclasses import dataclass

from ..errors import ParseError
from .ast import (PRIM_ARITY, Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num,
                  Pair, Param, Prim, Program, Scan, Snd, Sum, Var)
from .types import BOOL, INDEX, REAL, SIZE, ArrayT, PairT, Type, show_type

__all__ = ["parse", "parse_expr", "parse_type", "show_expr", "show_program", "show_flat",
           "CORE_FORMS", "WIDTH", "MAX_CHARS", "MAX_DEPTH", "set_parse_limits"]

WIDTH = 90            # target line width of the pretty printer
_MAX_INDENT = 60      # beyond this column, sub-expressions are printed on one line

CORE_FORMS = frozenset(PRIM_ARITY) | {"if", "let", "build", "sum", "ifold", "scan", "get", "length",
                                      "pair", "fst", "snd", "lambda", "fun"}
_RESERVED = CORE_FORMS | {"true", "false", "inf", "nan", "-inf", "+inf"}

_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?((\d+\.\d*|\.\d+)([eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf|infinity|nan)$",
                       re.IGNORECASE)
_NUMBERISH = re.compile(r"^[+-]?\.?\d")
_I64_MAX = 2 ** 63 - 1

#: Longest text (characters) the reader accepts; see :func:`set_parse_limits`.
MAX_CHARS = 4 * 2 ** 20
#: Deepest nesting (expression levels) the reader accepts; see :func:`set_parse_limits`.
MAX_DEPTH = 10_000


def set_parse_limits(max_chars: int | None = None, max_depth: int | None = None) -> tuple[int, int]:
    """Change the reader's caps (``None`` keeps one); returns the old ``(max_chars, max_depth)``.

    >>> old = set_parse_limits(max_depth=50); _ = set_parse_limits(*old)
    >>> old == (MAX_CHARS, MAX_DEPTH)
    True
    """
    global MAX_CHARS, MAX_DEPTH
    old = (MAX_CHARS, MAX_DEPTH)
    for what, v in (("max_chars", max_chars), ("max_depth", max_depth)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{what} must be a positive integer, got {v!r}")
    if max_chars is not None:
        MAX_CHARS = max_chars
    if max_depth is not None:
        MAX_DEPTH = max_depth
    return old


# ======================================================================================
# reading: text -> s-expressions with positions
# ======================================================================================
@dataclass(slots=True)
class _Atom:
    text: str
    line: int
    col: int


@dataclass(slots=True)
class _List:
    items: list
    line: int
    col: int


# One token per match; together they cover every character of the text.
_TOKEN = re.compile(r"[ \t\r\f\v,]+|\n|;[^\n]*|[(\[]|[)\]]|[^ \t\r\n\f\v,;()\[\]]+")
_VARIADIC = frozenset({"+", "*", "and", "or"})
# roles of an open list (for the depth count)
_EXPR, _PARAMS, _BINDS, _BIND = 0, 1, 2, 3


def _too_deep(lst: _List, limit: int, file: str | None) -> ParseError:
    return ParseError(f"nesting deeper than {limit} levels: the program is too deep to read "
                      f"(the reader's limit; raise it with eqsat_ad.lang.syntax.set_parse_limits "
                      f"or --max-depth)", file, lst.line, lst.col)


def _read_all(text: str, file: str | None, max_chars: int | None = None,
              max_depth: int | None = None) -> list:
    """All top-level s-expressions of ``text`` (one linear, iterative pass).

    Refuses a text longer than ``max_chars`` before reading it, and a nesting deeper than
    ``max_depth`` expression levels as soon as it is reached (see the module docstring)."""
    max_chars = MAX_CHARS if max_chars is None else max_chars
    max_depth = MAX_DEPTH if max_depth is None else max_depth
    n = len(text)
    if n > max_chars:
        line = text.count("\n", 0, max_chars) + 1
        raise ParseError(f"the text is {n} characters long, more than the reader's limit of "
                         f"{max_chars} (reached on this line; raise it with "
                         f"eqsat_ad.lang.syntax.set_parse_limits or --max-program-bytes)",
                         file, line, None)
    with _gc_paused():
        return _read(text, file, max_depth)


@contextlib.contextmanager
def _gc_paused():
    """Reading and converting allocate one object per token and keep them all: the cyclic
    garbage collector would re-scan the growing structure again and again, for nothing."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _read(text: str, file: str | None, max_depth: int) -> list:
    top: list = []
    stack: list[_List] = []
    # per open list (parallel stacks of ints/strs): expression depth, role, head atom
    depths: list[int] = []
    roles: list[int] = []
    heads: list = []
    line, line_start = 1, 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        ch = tok[0]
        if ch == "\n":
            line, line_start = line + 1, m.end()
            continue
        if ch in " \t\r\f\v,;":
            continue
        col = m.start() - line_start + 1
        if ch == "(" or ch == "[":
            lst = _List([], line, col)
            if stack:
                parent = stack[-1]
                idx, phead, prole = len(parent.items), heads[-1], roles[-1]
                if prole == _BINDS:
                    role = _BIND
                elif idx == 1 and (phead == "lambda" or phead == "fun"):
                    role = _PARAMS
                elif idx == 1 and phead == "let":
                    role = _BINDS
                elif idx == 0 and (prole == _PARAMS or prole == _BIND):
                    role = _PARAMS
                else:
                    role = _EXPR
                parent.items.append(lst)
                if (idx >= 3 and phead in _VARIADIC) or (idx >= 1 and prole == _BINDS):
                    # (+ a b c) folds into nested (+ (+ a b) c); (let ((a e) (b e2)) ..) nests
                    depths[-1] += 1
                    if depths[-1] > max_depth:
                        raise _too_deep(parent, max_depth, file)
                depth = depths[-1]
            else:
                role, depth = _EXPR, 0
                top.append(lst)
            stack.append(lst)
            depths.append(depth)
            roles.append(role)
            heads.append(None)
            continue
        if ch == ")" or ch == "]":
            if not stack:
                raise ParseError(f"unexpected '{ch}' with no matching '('", file, line, col)
            done = stack.pop()
            depths.pop()
            heads.pop()
            if roles.pop() == _BINDS and stack and len(done.items) > 1:
                depths[-1] += len(done.items) - 1     # the let body is under every binding
                if depths[-1] > max_depth:
                    raise _too_deep(stack[-1], max_depth, file)
            continue
        atom = _Atom(tok, line, col)
        if stack:
            parent = stack[-1]
            idx = len(parent.items)
            parent.items.append(atom)
            if idx == 0:
                heads[-1] = tok
                if roles[-1] == _EXPR and tok != "lambda":
                    depths[-1] += 1
                    if depths[-1] > max_depth:
                        raise _too_deep(parent, max_depth, file)
            elif idx >= 3 and heads[-1] in _VARIADIC:
                depths[-1] += 1
                if depths[-1] > max_depth:
                    raise _too_deep(parent, max_depth, file)
        else:
            top.append(atom)
    if stack:
        open_ = stack[-1]
        more = f" ({len(stack)} unclosed in all)" if len(stack) > 1 else ""
        raise ParseError(f"unclosed '(' opened here: missing ')' before the end of the text{more}",
                         file, open_.line, open_.col)
    return top


# ======================================================================================
# s-expressions -> expressions
# ======================================================================================
def _err(sx, msg: str, file: str | None) -> ParseError:
    return ParseError(msg, file, sx.line, sx.col)


def _sx_text(sx, limit: int = 60) -> str:
    """Short text of an s-expression for messages."""
    parts: list[str] = []
    stack: list = [sx]
    total = 0
    while stack and total <= limit:
        it = stack.pop()
        if isinstance(it, str):
            parts.append(it)
        elif isinstance(it, _Atom):
            parts.append(it.text)
            if stack and stack[-1] != ")":
                parts.append(" ")
        else:
            parts.append("(")
            stack.append(") " if stack and stack[-1] != ")" else ")")
            for k, item in enumerate(reversed(it.items)):
                stack.append(item)
        total = sum(map(len, parts))
    s = "".join(parts).replace(" )", ")").strip()
    return s if len(s) <= limit else s[: limit - 3] + "..."


_FORM_SHAPES = {
    "build": "(build N (lambda (i) e))",
    "sum": "(sum N (lambda (i) e))",
    "ifold": "(ifold (lambda (acc i) e) init N)",
    "scan": "(scan (lambda (acc i) e) init N)",
    "let": "(let ((x e) ...) body)",
    "if": "(if c a b)",
    "get": "(get a i)",
    "length": "(length a)",
    "pair": "(pair a b)",
    "fst": "(fst p)",
    "snd": "(snd p)",
}


class _Converter:
    def __init__(self, file: str | None):
        self.file = file

    # -- atoms ---------------------------------------------------------------------------
    def atom(self, a: _Atom) -> Expr:
        t = a.text
        if _INT_RE.match(t):
            return Int(self.int_literal(a))
        if _FLOAT_RE.match(t):
            return Num(float(t))
        if t == "true":
            return BoolLit(True)
        if t == "false":
            return BoolLit(False)
        if _NUMBERISH.match(t):
            raise _err(a, f"bad number '{t}'", self.file)
        if t in CORE_FORMS:
            shape = _FORM_SHAPES.get(t)
            hint = f"; write {shape}" if shape else ""
            raise _err(a, f"'{t}' is a form, not a value{hint}", self.file)
        return Var(t)

    def int_literal(self, a: _Atom) -> int:
        """An integer literal; it must fit in 64 bits (checked before converting, so a
        10,000-digit literal is refused cheaply)."""
        t = a.text
        digits = t.lstrip("+-").lstrip("0")
        v = int(t) if len(digits) <= 19 else None
        if v is None or not -_I64_MAX - 1 <= v <= _I64_MAX:
            shown = t if len(t) <= 30 else f"{t[:12]}...{t[-6:]} ({len(digits)} digits)"
            raise _err(a, f"integer literal {shown} is out of range: integers must fit in 64 bits "
                          f"(write a real such as 1e30 for a large number)", self.file)
        return v

    def name(self, sx, what: str) -> str:
        if not isinstance(sx, _Atom):
            raise _err(sx, f"expected a {what} name, got {_sx_text(sx)}", self.file)
        t = sx.text
        if t in _RESERVED or _NUMBERISH.match(t) or _FLOAT_RE.match(t):
            raise _err(sx, f"'{t}' cannot be used as a {what} name", self.file)
        return t

    def lambda_(self, sx, nparams: int | None, shape: str) -> tuple[tuple[str, ...], object]:
        """Check ``(lambda (a ...) body)``; return (params, body s-expression)."""
        if not (isinstance(sx, _List) and len(sx.items) == 3 and isinstance(sx.items[0], _Atom)
                and sx.items[0].text == "lambda" and isinstance(sx.items[1], _List)):
            raise _err(sx, f"expected (lambda (...) body) in {shape}, got {_sx_text(sx)}", self.file)
        ps = sx.items[1]
        if nparams is not None and len(ps.items) != nparams:
            raise _err(ps, f"the lambda in {shape} takes {nparams} parameter"
                           f"{'s' if nparams != 1 else ''}, got {len(ps.items)}", self.file)
        names = tuple(self.name(p, "parameter") for p in ps.items)
        if len(set(names)) != len(names):
            raise _err(ps, f"repeated lambda parameter in {_sx_text(ps)}", self.file)
        return names, sx.items[2]

    # -- one level of a form: the sub-expressions to convert and how to assemble them ----
    def plan(self, sx: _List):
        f = self.file
        if not sx.items:
            raise _err(sx, "empty form '()'", f)
        head = sx.items[0]
        if not isinstance(head, _Atom):
            raise _err(sx, f"expected a form or function name after '(', got {_sx_text(head)}", f)
        h, args = head.text, sx.items[1:]
        n = len(args)

        def arity(k: int):
            if n != k:
                shape = _FORM_SHAPES.get(h)
                if shape:
                    raise _err(sx, f"'{h}' expects {shape}", f)
                raise _err(sx, f"'{h}' expects {k} argument{'s' if k != 1 else ''}, got {n}", f)

        if h in PRIM_ARITY:
            k = PRIM_ARITY[h]
            if h == "-" and n == 1:
                return args, lambda xs: Prim("neg", (xs[0],))
            if h in ("+", "*", "and", "or") and n > 2:
                def fold(xs, h=h):
                    acc = xs[0]
                    for x in xs[1:]:
                        acc = Prim(h, (acc, x))
                        hash(acc)
                    return acc
                return args, fold
            if n != k:
                raise _err(sx, f"'{h}' expects {k} argument{'s' if k != 1 else ''}, got {n}", f)
            return args, lambda xs, h=h: Prim(h, tuple(xs))
        if h == "if":
            arity(3)
            return args, lambda xs: If(xs[0], xs[1], xs[2])
        if h in ("build", "sum"):
            arity(2)
            (i,), body = self.lambda_(args[1], 1, _FORM_SHAPES[h])
            cls = Build if h == "build" else Sum
            return [args[0], body], lambda xs, cls=cls, i=i: cls(xs[0], i, xs[1])
        if h in ("ifold", "scan"):
            arity(3)
            (acc, i), body = self.lambda_(args[0], 2, _FORM_SHAPES[h])
            cls = IFold if h == "ifold" else Scan
            return [body, args[1], args[2]], lambda xs, cls=cls: cls(acc, i, xs[0], xs[1], xs[2])
        if h == "let":
            if n != 2 or not isinstance(args[0], _List):
                raise _err(sx, f"'let' expects {_FORM_SHAPES['let']}", f)
            names, values = [], []
            for b in args[0].items:
                if not (isinstance(b, _List) and len(b.items) == 2):
                    raise _err(b, f"bad let binding {_sx_text(b)}: expected (name expression)", f)
                names.append(self.name(b.items[0], "let"))
                values.append(b.items[1])
            if not names:
                raise _err(args[0], "'let' needs at least one binding", f)

            def mk_let(xs, names=names):
                body = xs[-1]
                for name, v in zip(reversed(names), reversed(xs[:-1])):
                    body = Let(name, v, body)
                    hash(body)
                return body
            return values + [args[1]], mk_let
        if h == "get":
            arity(2)
            return args, lambda xs: Get(xs[0], xs[1])
        if h == "length":
            arity(1)
            return args, lambda xs: Length(xs[0])
        if h == "pair":
            arity(2)
            return args, lambda xs: Pair(xs[0], xs[1])
        if h == "fst":
            arity(1)
            return args, lambda xs: Fst(xs[0])
        if h == "snd":
            arity(1)
            return args, lambda xs: Snd(xs[0])
        if h == "lambda":
            raise _err(sx, "'lambda' is only allowed as an argument of build, sum, ifold, scan or a "
                           "library function", f)
        if h == "fun":
            raise _err(sx, "'fun' is only allowed at the top of a program", f)
        return self.plan_macro(sx, h, args)

    def plan_macro(self, sx: _List, h: str, args: list):
        from . import macros
        _load_library()
        m = macros.lookup(h)
        if m is None:
            known = ", ".join(x.name for x in macros.registered())
            lib = f" (library functions: {known})" if known else ""
            raise _err(sx, f"unknown form '{h}': it is neither a core form nor a library "
                           f"function{lib}", self.file)
        if not m.accepts(len(args)):
            raise _err(sx, f"'{h}' expects {m.arity_text()}, got {len(args)}"
                           + (f": {m.doc}" if m.doc else ""), self.file)
        subs, kinds = [], []
        for a in args:
            if (isinstance(a, _List) and a.items and isinstance(a.items[0], _Atom)
                    and a.items[0].text == "lambda"):
                params, body = self.lambda_(a, None, f"({h} ...)")
                subs.append(body)
                kinds.append(params)
            else:
                subs.append(a)
                kinds.append(None)

        def expand(xs):
            from ..errors import EqsatError
            real_args = [x if k is None else macros.Lambda(k, x) for x, k in zip(xs, kinds)]
            try:
                out = m.fn(*real_args)
            except ParseError:
                raise
            except EqsatError as ex:
                raise _err(sx, f"in ({h} ...): {ex}", self.file) from None
            if not isinstance(out, Expr):
                raise _err(sx, f"library function '{h}' returned {type(out).__name__}, "
                               f"not an expression", self.file)
            return out
        return subs, expand

    def expr(self, root) -> Expr:
        """Convert an s-expression into an expression (iterative)."""
        out: list[Expr] = []
        stack: list[tuple] = [(0, root)]
        while stack:
            fr = stack.pop()
            if fr[0] == 0:
                sx = fr[1]
                if isinstance(sx, _Atom):
                    e = self.atom(sx)
                    hash(e)
                    out.append(e)
                    continue
                subs, build = self.plan(sx)
                stack.append((1, build, len(subs)))
                for s in reversed(subs):
                    stack.append((0, s))
            else:
                _, build, k = fr
                xs = out[len(out) - k:]
                del out[len(out) - k:]
                e = build(xs)
                hash(e)   # cache hashes bottom-up: hashing a deep term lazily would recurse
                out.append(e)
        return out[0]

    # -- types and programs ---------------------------------------------------------------
    def size(self, sx) -> "str | int | None":
        if not isinstance(sx, _Atom):
            raise _err(sx, f"bad size {_sx_text(sx)}: expected a name or an integer", self.file)
        t = sx.text
        if t == "?":
            return None
        if _INT_RE.match(t):
            v = self.int_literal(sx)
            if v < 0:
                raise _err(sx, f"bad size {t}: a size cannot be negative", self.file)
            return v
        return self.name(sx, "size")

    def type(self, sx) -> Type:
        f = self.file
        if isinstance(sx, _Atom):
            simple = {"real": REAL, "index": INDEX, "size": SIZE, "bool": BOOL}
            if sx.text in simple:
                return simple[sx.text]
            raise _err(sx, f"bad type '{sx.text}': expected real, index, size, bool, (vec N), "
                           f"(mat M N), (array T N) or (pair A B)", f)
        items = sx.items
        head = items[0].text if items and isinstance(items[0], _Atom) else None
        if head == "vec" and len(items) == 2:
            return ArrayT(REAL, self.size(items[1]))
        if head == "mat" and len(items) == 3:
            return ArrayT(ArrayT(REAL, self.size(items[2])), self.size(items[1]))
        if head == "array" and len(items) == 3:
            return ArrayT(self.type(items[1]), self.size(items[2]))
        if head == "pair" and len(items) == 3:
            return PairT(self.type(items[1]), self.type(items[2]))
        raise _err(sx, f"bad type {_sx_text(sx)}: expected (vec N), (mat M N), (array T N) "
                       f"or (pair A B)", f)

    def program(self, sx) -> Program:
        f = self.file
        shape = "(fun ((x type) ...) body)"
        if not (isinstance(sx, _List) and sx.items and isinstance(sx.items[0], _Atom)
                and sx.items[0].text == "fun"):
            raise _err(sx, f"expected a program {shape}, got {_sx_text(sx)}", f)
        if len(sx.items) != 3:
            raise _err(sx, f"'fun' expects {shape}", f)
        plist = sx.items[1]
        if not isinstance(plist, _List):
            raise _err(plist, f"bad parameter list {_sx_text(plist)}: expected ((x type) ...)", f)
        params, seen = [], set()
        for ps in plist.items:
            if not (isinstance(ps, _List) and len(ps.items) == 2):
                raise _err(ps, f"bad parameter {_sx_text(ps)}: expected (name type)", f)
            name = self.name(ps.items[0], "parameter")
            if name in seen:
                raise _err(ps, f"parameter '{name}' is declared twice", f)
            seen.add(name)
            params.append(Param(name, self.type(ps.items[1])))
        return Program(tuple(params), self.expr(sx.items[2]))


_library_loaded = False


def _load_library() -> None:
    """Import the standard library of macros once (it registers itself)."""
    global _library_loaded
    if _library_loaded:
        return
    _library_loaded = True
    try:
        import eqsat_ad.frontend.library  # noqa: F401
    except ImportError:
        pass


def _single(text: str, file: str | None, what: str, max_chars: int | None = None,
            max_depth: int | None = None):
    if not isinstance(text, str):
        raise TypeError(f"expected the {what} as a str, got {type(text).__name__}")
    sxs = _read_all(text, file, max_chars, max_depth)
    if not sxs:
        raise ParseError(f"expected {what}, got empty text", file, 1, 1)
    if len(sxs) > 1:
        extra = sxs[1]
        raise _err(extra, f"trailing text after the {what}: {_sx_text(extra)}", file)
    return sxs[0]


def parse(text: str, file: str | None = None, *, max_chars: int | None = None,
          max_depth: int | None = None) -> Program:
    """Parse a program ``(fun ((x type) ...) body)``.  Errors are :class:`ParseError` with
    file, line and column.  ``max_chars``/``max_depth`` override the reader's caps
    (:data:`MAX_CHARS`, :data:`MAX_DEPTH`) for this call.

    >>> p = parse("(fun ((x (vec n)) (w real)) (* w (get x 0)))")
    >>> [q.name for q in p.params], show_expr(p.body)
    (['x', 'w'], '(* w (get x 0))')
    """
    _load_library()
    with _gc_paused():
        return _Converter(file).program(_single(text, file, "program", max_chars, max_depth))


def parse_expr(text: str, file: str | None = None, *, max_chars: int | None = None,
               max_depth: int | None = None) -> Expr:
    """Parse one expression (``max_chars``/``max_depth``: as in :func:`parse`).

    >>> parse_expr("(let ((a 1.0) (b (+ a 2))) (* a b))")
    Let(name='a', value=Num(value=1.0), body=Let(name='b', value=Prim(op='+', args=(Var(name='a'), Int(value=2))), body=Prim(op='*', args=(Var(name='a'), Var(name='b')))))
    """
    _load_library()
    with _gc_paused():
        return _Converter(file).expr(_single(text, file, "expression", max_chars, max_depth))


def parse_type(text: str, file: str | None = None) -> Type:
    """Parse a type such as ``(mat m 3)``.

    >>> parse_type("(mat m 3)")
    ArrayT(elem=ArrayT(elem=RealT(), size=3), size='m')
    """
    return _Converter(file).type(_single(text, file, "type"))


# ======================================================================================
# printing
# ======================================================================================
def _float_text(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "nan"
    return repr(v)


def _form(e: Expr):
    """One level of the printed form of ``e``: an atom string, or a list whose items are
    atom strings, nested lists, or sub-expressions still to be printed."""
    if isinstance(e, Num):
        return _float_text(e.value)
    if isinstance(e, Int):
        return str(int(e.value))
    if isinstance(e, BoolLit):
        return "true" if e.value else "false"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Prim):
        return [e.op, *e.args]
    if isinstance(e, If):
        return ["if", e.cond, e.then, e.else_]
    if isinstance(e, Let):
        binds = []
        while True:
            binds.append([e.name, e.value])
            if not isinstance(e.body, Let):
                break
            e = e.body
        return ["let", binds, e.body]
    if isinstance(e, Build):
        return ["build", e.size, ["lambda", [e.var], e.body]]
    if isinstance(e, Sum):
        return ["sum", e.size, ["lambda", [e.var], e.body]]
    if isinstance(e, IFold):
        return ["ifold", ["lambda", [e.acc, e.var], e.body], e.init, e.size]
    if isinstance(e, Scan):
        return ["scan", ["lambda", [e.acc, e.var], e.body], e.init, e.size]
    if isinstance(e, Get):
        return ["get", e.array, e.index]
    if isinstance(e, Length):
        return ["length", e.array]
    if isinstance(e, Pair):
        return ["pair", e.fst, e.snd]
    if isinstance(e, Fst):
        return ["fst", e.pair]
    if isinstance(e, Snd):
        return ["snd", e.pair]
    raise TypeError(f"not an expression: {e!r}")


_CLOSE = object()


def show_flat(e: "Expr | list", limit: int | None = None) -> str:
    """``e`` on one line; with ``limit``, cut to at most ``limit`` characters (ending in
    ``...``).

    >>> show_flat(Prim("+", (Var("x"), Num(1.0))))
    '(+ x 1.0)'
    """
    parts: list[str] = []
    length = 0
    stack: list = [e]
    need_space = False
    while stack:
        it = stack.pop()
        if isinstance(it, Expr):
            it = _form(it)
        if it is _CLOSE:
            parts.append(")")
            length += 1
            need_space = True
        elif isinstance(it, str):
            if need_space:
                parts.append(" ")
                length += 1
            parts.append(it)
            length += len(it)
            need_space = True
        else:
            if need_space:
                parts.append(" ")
                length += 1
            parts.append("(")
            length += 1
            need_space = False
            stack.append(_CLOSE)
            stack.extend(reversed(it))
        if limit is not None and length > limit:
            return "".join(parts)[: max(limit - 3, 0)] + "..."
    return "".join(parts)


class _Doc:
    """A list node of the layout tree: items, layout style, flat width."""
    __slots__ = ("items", "keep", "indent", "width")

    def __init__(self, items: list, keep: int, indent: int | None):
        self.items = items      # str atoms or _Doc
        self.keep = keep        # items kept on the opening line
        self.indent = indent    # columns from '(' for the other items; None: align with item `keep-1`
        self.width = 0


def _layout_of(head) -> tuple[int, int | None]:
    if head in ("build", "sum", "lambda", "let", "fun"):
        return 2, 2
    if not isinstance(head, str):      # a list of bindings/parameters: one per line, aligned
        return 1, 1
    return 2, None                      # (op a b ...): b ... aligned under a


def _to_doc(root) -> "_Doc | str":
    """Build the layout tree of an expression (or form list) iteratively."""
    out: list = []
    stack: list = [(0, root)]
    while stack:
        tag, x = stack.pop()
        if tag == 0:
            if isinstance(x, Expr):
                x = _form(x)
            if isinstance(x, str):
                out.append(x)
                continue
            stack.append((1, len(x)))
            for it in reversed(x):
                stack.append((0, it))
        else:
            k = x
            items = out[len(out) - k:]
            del out[len(out) - k:]
            keep, indent = _layout_of(items[0] if items else None)
            d = _Doc(items, keep, indent)
            d.width = 1 + sum(len(i) if isinstance(i, str) else i.width for i in items) \
                + max(len(items) - 1, 0) + 1
            out.append(d)
    return out[0]


def _render(doc, start_col: int = 0, width: int = WIDTH, trail: int = 0) -> str:
    """Lay a document out in ``width`` columns (iteratively).  A list that does not fit
    (counting the closing parentheses that follow it on its last line) is broken: its first
    ``keep`` items stay on the opening line, the others go one per line."""
    parts: list[str] = []
    col = start_col
    # tasks: ("t", text) | ("nl", column) | ("d", doc, trailing chars on the same line)
    stack: list[tuple] = [("d", doc, trail)]
    while stack:
        task = stack.pop()
        kind, x = task[0], task[1]
        if kind == "t":
            parts.append(x)
            col += len(x)
        elif kind == "nl":
            parts.append("\n" + " " * x)
            col = x
        elif isinstance(x, str):
            parts.append(x)
            col += len(x)
        elif x.width + task[2] <= width - col or col > _MAX_INDENT:
            flat = _flat_doc(x)
            parts.append(flat)
            col += len(flat)
        else:
            trail = task[2]
            items = x.items
            if x.indent is None:
                head = items[0]
                rest_col = col + 1 + (len(head) if isinstance(head, str) else head.width) + 1
            else:
                rest_col = col + x.indent
            tasks: list[tuple] = [("t", "(")]
            last = len(items) - 1
            for k, it in enumerate(items):
                if k == 0:
                    pass
                elif k < x.keep:
                    tasks.append(("t", " "))
                else:
                    tasks.append(("nl", rest_col))
                tasks.append(("d", it, trail + 1 if k == last else 0))
            tasks.append(("t", ")"))
            stack.extend(reversed(tasks))
    return "".join(parts)


def _flat_doc(d) -> str:
    parts: list[str] = []
    stack: list = [d]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            parts.append(x)
        else:
            parts.append("(")
            stack.append(")")
            for k in range(len(x.items) - 1, -1, -1):
                stack.append(x.items[k])
                if k:
                    stack.append(" ")
    return "".join(parts)


def show_expr(e: Expr, width: int = WIDTH) -> str:
    """Print an expression in program-text syntax, indented to fit ``width`` columns where
    possible (``parse_expr(show_expr(e)) == e``).

    >>> print(show_expr(parse_expr("(let ((a 1.0) (b 2)) (+ a b))")))
    (let ((a 1.0) (b 2)) (+ a b))
    >>> print(show_expr(parse_expr("(build n (lambda (i) (+ (get x i) (get y i))))"), width=30))
    (build n
      (lambda (i)
        (+ (get x i) (get y i))))
    """
    return _render(_to_doc(e), 0, width)


def show_program(p: Program, width: int = WIDTH) -> str:
    """Print a program: ``(fun (params) body)`` with the body on its own line(s)
    (``parse(show_program(p)) == p``).

    >>> from eqsat_ad.lang.types import vec
    >>> print(show_program(Program((Param("x", vec("n")),), Length(Var("x")))))
    (fun ((x (vec n)))
      (length x))
    """
    params = "(" + " ".join(f"({q.name} {show_type(q.type)})" for q in p.params) + ")"
    if len(params) + 5 > width:
        params = "(" + ("\n      ".join(f"({q.name} {show_type(q.type)})" for q in p.params)) + ")"
    body = _render(_to_doc(p.body), 2, width, trail=1)
    return f"(fun {params}\n  {body})"
