"""The term vocabulary: transitions and predicates are written once, against these terms.

docs/design.md, point 3. A transition is an ordinary Python function that receives *terms* for the
state fields and the exporter's knobs and builds terms for the next state, the return value and
the events. It is run once per action instance (its parameters, such as ``buf=0``, are plain
Python integers, so indexing by them is static). The resulting term graph is then interpreted,
every interpretation being one :func:`fold` of the graph (each term's value computed once,
bottom-up, from its arguments' values) with a table of operations beside it:

* concretely, by :func:`compile_function`, which emits straight-line Python source for the graph
  and compiles it (docs/design.md: a naive interpreter is 8-11x slower; generated code is not);
  table ``_PY``, each operation's source from its arguments' sources;
* symbolically, by :func:`to_z3`, which builds the same graph as Z3 expressions (table ``_Z3``,
  filled when first used: only this interpretation imports z3);
* directly, by :func:`evaluate` (slow; used by tests to cross-check the other two), table ``_EVAL``;
* as terms again, by :func:`substitute`, which rebuilds the graph with variables replaced, each
  operation by its folding constructor (table ``_FOLD``), and by :func:`assume`, which rebuilds
  it with subterms known to be true or false replaced by constants (the same table);
* as the variables each term reads, by :func:`reads` (table ``_FIELDS``: a term reads what its
  arguments read), which the explicit engine's state-space reduction is derived from;
* over a batch of states, by ``properties.engines.vectorize`` (table ``_NP`` there: numpy source).

Terms refuse to be used as Python truth values (``if term:`` raises ``TypeError``): a model rule
that branches in Python on state would mean something different to Z3 than to Hypothesis.
Use :func:`ite`, :func:`and_`, :func:`or_` and :func:`not_` instead.

Terms are hash-consed (one object per distinct term) and folded as they are built, so that a
policy knob substituted by a constant removes whole branches before code is generated.
"""
from __future__ import annotations

from typing import Any, Callable, Container, Iterable, Mapping, Sequence

__all__ = [
    "Term", "lift", "const", "var", "ite", "and_", "or_", "not_", "implies",
    "eq", "ne", "lt", "le", "gt", "ge", "min_", "max_", "clamp", "select", "any_of", "all_of",
    "count", "fold", "substitute", "assume", "facts", "simplify", "reads", "evaluate", "compile_function", "to_z3", "free_vars",
    "postorder", "digest",
    "TRUE", "FALSE",
]

BOOL = "bool"
INT = "int"


class Term:
    """One node of the term graph. Build terms with the functions of this module."""

    __slots__ = ("op", "args", "sort", "uid")

    def __init__(self, op: str, args: tuple, sort: str, uid: int) -> None:
        self.op = op
        self.args = args
        self.sort = sort
        self.uid = uid

    def __bool__(self) -> bool:
        raise TypeError(
            "a model term has no Python truth value; write ite(c, a, b), and_(..), or_(..), "
            "not_(..) instead of if/and/or/not on state"
        )

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        if self.op == "const":
            return repr(self.args[0])
        if self.op == "var":
            return self.args[0]
        return f"{self.op}({', '.join(map(repr, self.args))})"

    # arithmetic and comparison build terms
    def __add__(self, o): return _add(self, lift(o))
    def __radd__(self, o): return _add(lift(o), self)
    def __sub__(self, o): return _sub(self, lift(o))
    def __rsub__(self, o): return _sub(lift(o), self)
    def __eq__(self, o): return eq(self, o)  # type: ignore[override]
    def __ne__(self, o): return ne(self, o)  # type: ignore[override]
    def __lt__(self, o): return lt(self, o)
    def __le__(self, o): return le(self, o)
    def __gt__(self, o): return gt(self, o)
    def __ge__(self, o): return ge(self, o)
    def __and__(self, o): return and_(self, o)
    def __rand__(self, o): return and_(o, self)
    def __or__(self, o): return or_(self, o)
    def __ror__(self, o): return or_(o, self)
    def __invert__(self): return not_(self)


_table: dict[tuple, Term] = {}


def _mk(op: str, args: tuple, sort: str) -> Term:
    key = (op, tuple(("t", a.uid) if isinstance(a, Term) else ("v", type(a).__name__, a) for a in args))
    t = _table.get(key)
    if t is None:
        t = Term(op, args, sort, len(_table))
        _table[key] = t
    return t


def const(value: bool | int) -> Term:
    if isinstance(value, bool):
        return _mk("const", (value,), BOOL)
    if isinstance(value, int):
        return _mk("const", (int(value),), INT)
    raise TypeError(f"not a model constant: {value!r}")


TRUE = const(True)
FALSE = const(False)


def var(name: str, sort: str = INT) -> Term:
    if sort not in (BOOL, INT):
        raise ValueError(f"unknown sort {sort!r}")
    return _mk("var", (name,), sort)


def lift(x: Any) -> Term:
    if isinstance(x, Term):
        return x
    return const(x)


def _is_const(t: Term) -> bool:
    return t.op == "const"


def _need(t: Term, sort: str, what: str) -> None:
    if t.sort != sort:
        raise TypeError(f"{what} needs a {sort} term, got {t.sort} {t!r}")


def not_(a: Any) -> Term:
    a = lift(a)
    _need(a, BOOL, "not_")
    if _is_const(a):
        return const(not a.args[0])
    if a.op == "not":
        return a.args[0]
    return _mk("not", (a,), BOOL)


def _flat(op: str, xs: Iterable[Any]) -> list[Term]:
    out: list[Term] = []
    seen: set[int] = set()
    for x in xs:
        x = lift(x)
        _need(x, BOOL, op)
        for y in (x.args if x.op == op else (x,)):
            if y.uid not in seen:
                seen.add(y.uid)
                out.append(y)
    return out


def and_(*xs: Any) -> Term:
    items = [x for x in _flat("and", xs) if x is not TRUE]
    if any(x is FALSE for x in items):
        return FALSE
    if not items:
        return TRUE
    if len(items) == 1:
        return items[0]
    return _mk("and", tuple(items), BOOL)


def or_(*xs: Any) -> Term:
    items = [x for x in _flat("or", xs) if x is not FALSE]
    if any(x is TRUE for x in items):
        return TRUE
    if not items:
        return FALSE
    if len(items) == 1:
        return items[0]
    return _mk("or", tuple(items), BOOL)


def implies(a: Any, b: Any) -> Term:
    return or_(not_(a), b)


def ite(c: Any, a: Any, b: Any) -> Term:
    c, a, b = lift(c), lift(a), lift(b)
    _need(c, BOOL, "ite condition")
    if a.sort != b.sort:
        raise TypeError(f"ite branches differ in sort: {a!r} ({a.sort}) vs {b!r} ({b.sort})")
    if _is_const(c):
        return a if c.args[0] else b
    if a is b:
        return a
    if a.sort == BOOL:
        if a is TRUE and b is FALSE:
            return c
        if a is FALSE and b is TRUE:
            return not_(c)
        if b is FALSE:
            return and_(c, a)
        if a is TRUE:
            return or_(c, b)
    if c.op == "not":
        return ite(c.args[0], b, a)
    return _mk("ite", (c, a, b), a.sort)


def eq(a: Any, b: Any) -> Term:
    a, b = lift(a), lift(b)
    if a.sort != b.sort:
        raise TypeError(f"eq compares {a.sort} with {b.sort}: {a!r} == {b!r}")
    if a is b:
        return TRUE
    if _is_const(a) and _is_const(b):
        return const(a.args[0] == b.args[0])
    if a.sort == BOOL:
        if _is_const(a):
            a, b = b, a
        if b is TRUE:
            return a
        if b is FALSE:
            return not_(a)
    if a.uid > b.uid:
        a, b = b, a
    return _mk("eq", (a, b), BOOL)


def ne(a: Any, b: Any) -> Term:
    return not_(eq(a, b))


def lt(a: Any, b: Any) -> Term:
    a, b = lift(a), lift(b)
    _need(a, INT, "<")
    _need(b, INT, "<")
    if _is_const(a) and _is_const(b):
        return const(a.args[0] < b.args[0])
    if a is b:
        return FALSE
    return _mk("lt", (a, b), BOOL)


def le(a: Any, b: Any) -> Term:
    a, b = lift(a), lift(b)
    _need(a, INT, "<=")
    _need(b, INT, "<=")
    if _is_const(a) and _is_const(b):
        return const(a.args[0] <= b.args[0])
    if a is b:
        return TRUE
    return _mk("le", (a, b), BOOL)


def gt(a: Any, b: Any) -> Term:
    return lt(b, a)


def ge(a: Any, b: Any) -> Term:
    return le(b, a)


def _add(a: Term, b: Term) -> Term:
    _need(a, INT, "+")
    _need(b, INT, "+")
    if _is_const(a) and _is_const(b):
        return const(a.args[0] + b.args[0])
    if _is_const(b) and b.args[0] == 0:
        return a
    if _is_const(a) and a.args[0] == 0:
        return b
    return _mk("add", (a, b), INT)


def _sub(a: Term, b: Term) -> Term:
    _need(a, INT, "-")
    _need(b, INT, "-")
    if _is_const(a) and _is_const(b):
        return const(a.args[0] - b.args[0])
    if _is_const(b) and b.args[0] == 0:
        return a
    if a is b:
        return const(0)
    return _mk("sub", (a, b), INT)


def min_(a: Any, b: Any) -> Term:
    return ite(le(a, b), a, b)


def max_(a: Any, b: Any) -> Term:
    return ite(le(a, b), b, a)


def clamp(x: Any, lo: int, hi: int) -> Term:
    """``x`` saturated into ``[lo, hi]``: bounded counters of a finite model."""
    return max_(min_(x, hi), lo)


def select(items: Sequence[Any], index: Any) -> Term:
    """``items[index]`` for a term index whose values are ``0 .. len(items)-1``."""
    if not items:
        raise ValueError("select from an empty sequence")
    index = lift(index)
    if _is_const(index):
        return lift(items[index.args[0]])
    out = lift(items[-1])
    for i in range(len(items) - 2, -1, -1):
        out = ite(eq(index, i), items[i], out)
    return out


def any_of(xs: Iterable[Any]) -> Term:
    return or_(*xs)


def all_of(xs: Iterable[Any]) -> Term:
    return and_(*xs)


def count(xs: Iterable[Any]) -> Term:
    """How many of the boolean terms ``xs`` are true."""
    total = const(0)
    for x in xs:
        total = total + ite(x, 1, 0)
    return total


# ---------------------------------------------------------------------------------------------
# Graph walking


def postorder(roots: Iterable[Term], cut: Container[int] = ()) -> list[Term]:
    """Every term reachable from ``roots``, each once, arguments before the terms using them.

    ``cut``: terms (by ``uid``) whose arguments are not walked; they are in the order, as leaves.
    """
    order: list[Term] = []
    seen: set[int] = set()
    for root in roots:
        if root.uid in seen:
            continue
        stack: list[tuple[Term, bool]] = [(root, False)]
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if t.uid in seen:
                continue
            seen.add(t.uid)
            stack.append((t, True))
            if cut and t.uid in cut:
                continue
            for a in t.args:
                if isinstance(a, Term) and a.uid not in seen:
                    stack.append((a, False))
    return order


class _Either:
    """The union of two containers of uids (a fold's memo and its cut)."""

    __slots__ = ("a", "b")

    def __init__(self, a: Container[int], b: Container[int]) -> None:
        self.a, self.b = a, b

    def __contains__(self, uid: object) -> bool:
        return uid in self.a or uid in self.b

    def __bool__(self) -> bool:
        return True


def fold(
    roots: Sequence[Term],
    ops: Mapping[str, Callable[..., Any]],
    const: Callable[[Term], Any],
    var: Callable[[Term], Any],
    memo: dict[int, Any] | None = None,
    *,
    order: Sequence[Term] | None = None,
    cut: Mapping[int, Any] | None = None,
    share: Callable[[Term, Any], Any] | None = None,
) -> list[Any]:
    """The one walk of the term graph that every interpretation is: the value of each term under
    ``roots`` computed once, bottom-up, from its arguments' values; returns the roots' values.

    An interpretation is a table ``ops`` (operation name -> function of the arguments' values:
    ``_FOLD``, ``_EVAL``, ``_PY``, ``_Z3``, the numpy emitter's ``_NP``) and what a leaf is worth:
    ``const(t)`` and ``var(t)`` of the ``const`` and ``var`` term ``t``.

    ``memo`` (by ``uid``) holds values already computed, by an earlier fold with the same
    interpretation; the walk does not enter them, and adds the values it computes. ``order``: the
    graph's :func:`postorder` when the caller has it (a caller folding many term sets under one
    graph walks it once). ``cut`` (by ``uid``): terms whose value is given, ``cut[uid]``, and
    whose arguments are not walked (the numpy emitter's reads of a memo computed elsewhere).
    ``share(t, value)``, when given, sees the value of every operation (and cut term) and returns
    the value to keep: an emitter names a shared subterm as a local there.
    """
    val: dict[int, Any] = {} if memo is None else memo
    if order is None:
        stop: Container[int] = (_Either(val, cut) if val and cut else val or cut or ())  # type: ignore[assignment]
        order = postorder(roots, stop)
    for t in order:
        uid = t.uid
        if uid in val:
            continue
        op = t.op
        if cut is not None and uid in cut:
            v = cut[uid]
        elif op == "const":
            val[uid] = const(t)
            continue
        elif op == "var":
            val[uid] = var(t)
            continue
        else:
            v = ops[op](*[val[a.uid] for a in t.args])
        val[uid] = v if share is None else share(t, v)
    return [val[r.uid] for r in roots]


def free_vars(roots: Iterable[Term]) -> set[str]:
    return {t.args[0] for t in postorder(roots) if t.op == "var"}


def digest(roots: Sequence[Term]) -> str:
    """A hex digest of the term graph under ``roots`` (in their order) that depends on its
    structure only: the same terms give the same digest in any process, whatever else it built
    and in whatever order (``uid`` numbers terms in the order the process built them, so it never
    enters the digest; it only memoises the walk).

    Each term is named by a hash of its operation, sort, constant values and the names of its
    arguments, computed in postorder (arguments first). A local postorder *numbering* would not
    do: ``eq`` orders its two arguments by ``uid``, so the order of a walk, and with it the
    numbers, would depend on the build order; ``eq``'s argument names are sorted instead, which
    makes the name canonical. Shared subterms are named once (the graph, not its tree unfolding).
    """
    import hashlib

    roots = list(roots)
    name: dict[int, bytes] = {}
    for t in postorder(roots):
        parts = [name[a.uid] if isinstance(a, Term) else repr((type(a).__name__, a)).encode() for a in t.args]
        if t.op == "eq":   # the one operation whose argument order is not structural
            parts.sort()
        h = hashlib.sha256(f"{t.op}:{t.sort}:{len(parts)}".encode())
        for part in parts:
            h.update(len(part).to_bytes(4, "little"))
            h.update(part)
        name[t.uid] = h.digest()
    out = hashlib.sha256(len(roots).to_bytes(8, "little"))
    for r in roots:
        out.update(name[r.uid])
    return out.hexdigest()


_FOLD: dict[str, Callable[..., Term]] = {
    "not": not_, "and": and_, "or": or_, "ite": ite, "eq": eq, "lt": lt, "le": le,
    "add": _add, "sub": _sub,
}


def _same(t: Term) -> Term:
    return t


def substitute(roots: Sequence[Term], mapping: Mapping[str, Any], order: Sequence[Term] | None = None) -> list[Term]:
    """Replace variables by terms or constants, folding as the graph is rebuilt (the table
    ``_FOLD``: each operation rebuilt by its folding constructor). ``order``: the graph's
    :func:`postorder`, when the caller has it."""
    def leaf(t: Term) -> Term:
        name = t.args[0]
        return lift(mapping[name]) if name in mapping else t

    return fold(roots, _FOLD, _same, leaf, order=order)


def facts(t: Term, value: bool) -> dict[int, Term]:
    """What follows, term by term (by ``uid``), from the boolean term ``t`` having ``value``:
    ``t`` itself; through ``not``; every conjunct of a true ``and``; every disjunct of a false
    ``or``; and ``x == c`` true for a variable ``x`` and a constant ``c`` gives ``x`` its value.
    (What follows from a true ``or`` is not one set of facts, so it stops there.)"""
    out: dict[int, Term] = {}
    stack = [(t, value)]
    while stack:
        t, v = stack.pop()
        if t.op == "const" or t.uid in out:
            continue
        out[t.uid] = const(v)
        if t.op == "not":
            stack.append((t.args[0], not v))
        elif (t.op == "and" and v) or (t.op == "or" and not v):
            stack.extend((a, v) for a in t.args)
        elif t.op == "eq" and v:
            a, b = t.args
            if a.op == "var" and b.op == "const":
                out.setdefault(a.uid, b)
            elif b.op == "var" and a.op == "const":
                out.setdefault(b.uid, a)
    return out


def assume(roots: Sequence[Term], known: Mapping[int, Term]) -> list[Term]:
    """Rebuild ``roots`` with each subterm of ``known`` (by ``uid``; e.g. :func:`facts`) replaced
    by its value, folding as the graph is rebuilt (the table ``_FOLD``): the roots as they are
    wherever those facts hold. Unlike :func:`substitute`, a fact may name any subterm."""
    return fold(roots, _FOLD, _same, _same, cut=known)


def simplify(t: Term, depth: int = 4) -> Term:
    """``t`` with what its own structure tells rewritten away, to ``depth`` levels of ``and``,
    ``or`` and ``ite``: an ``ite``'s branches assume its condition true or false, each item of an
    ``or`` (``and``) assumes the others false (true), one item at a time (each rewrite keeps the
    whole term's value, given the others as they are then). ``or(not(opened), ite(opened, d,
    x) == 2)`` becomes ``or(not(opened), d == 2)``: what the second item reads where it matters."""
    if depth <= 0 or t.op not in ("and", "or", "ite"):
        return t
    if t.op == "ite":
        c, a, b = t.args
        a = simplify(assume([a], facts(c, True))[0], depth - 1)
        b = simplify(assume([b], facts(c, False))[0], depth - 1)
        return ite(c, a, b)
    holds = t.op == "and"
    items = list(t.args)
    for j in range(len(items)):
        known: dict[int, Term] = {}
        for i, x in enumerate(items):
            if i != j:
                known.update(facts(x, holds))
        known.pop(items[j].uid, None)
        items[j] = simplify(assume([items[j]], known)[0], depth - 1)
    return and_(*items) if holds else or_(*items)


_FIELDS: dict[str, Callable[..., frozenset]] = {
    op: (lambda *xs: frozenset().union(*xs)) for op in ("not", "and", "or", "ite", "eq", "lt", "le", "add", "sub")
}
_NONE: frozenset = frozenset()


def reads(roots: Sequence[Term], memo: dict[int, frozenset] | None = None) -> list[frozenset]:
    """The names of the variables each root reads (the fold of the table ``_FIELDS``). Read
    after :func:`substitute` or :func:`assume`, it is what a term reads *where* the substituted
    values hold: a knob folded away takes the branches it switches off with it. ``memo``, as
    :func:`fold`'s, for many calls over one graph."""
    return fold(roots, _FIELDS, lambda t: _NONE, lambda t: frozenset((t.args[0],)), memo)


# ---------------------------------------------------------------------------------------------
# Interpretation 0: direct evaluation (slow, for cross-checks)

_EVAL: dict[str, Callable[..., Any]] = {
    "not": lambda a: not a,
    "and": lambda *xs: all(xs),
    "or": lambda *xs: any(xs),
    "ite": lambda c, a, b: a if c else b,
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
}


def _value(t: Term) -> Any:
    return t.args[0]


def evaluate(roots: Sequence[Term], env: Mapping[str, Any]) -> list[Any]:
    def leaf(t: Term) -> Any:
        try:
            return env[t.args[0]]
        except KeyError:
            raise KeyError(f"no value for model variable {t.args[0]!r}") from None

    return fold(roots, _EVAL, _value, leaf)


# ---------------------------------------------------------------------------------------------
# Interpretation 1: generated straight-line Python

_PY: dict[str, Callable[..., str]] = {
    "not": lambda a: f"(not {a})",
    "and": lambda *xs: "(" + " and ".join(xs) + ")",
    "or": lambda *xs: "(" + " or ".join(xs) + ")",
    "ite": lambda c, a, b: f"({a} if {c} else {b})",
    "eq": lambda a, b: f"({a} == {b})",
    "lt": lambda a, b: f"({a} < {b})",
    "le": lambda a, b: f"({a} <= {b})",
    "add": lambda a, b: f"({a} + {b})",
    "sub": lambda a, b: f"({a} - {b})",
}


class _Emitter:
    """Names shared subterms as locals and inlines terms used once."""

    def __init__(self, var_expr: Mapping[str, str]) -> None:
        self.var_expr = var_expr
        self.lines: list[str] = []
        self.expr: dict[int, str] = {}
        self.uses: dict[int, int] = {}

    def count_uses(self, roots: Sequence[Term]) -> None:
        for t in postorder(roots):
            for a in t.args:
                if isinstance(a, Term):
                    self.uses[a.uid] = self.uses.get(a.uid, 0) + 1

    def emit(self, roots: Sequence[Term], indent: str = "    ") -> list[str]:
        # the fold of the table _PY; terms already emitted (by an earlier call) are in self.expr
        def leaf(t: Term) -> str:
            name = t.args[0]
            if name not in self.var_expr:
                raise KeyError(f"generated code has no input for model variable {name!r}")
            return self.var_expr[name]

        uses, lines = self.uses, self.lines

        def share(t: Term, code: str) -> str:
            if uses.get(t.uid, 0) > 1:
                local = f"t{t.uid}"
                lines.append(f"{indent}{local} = {code}")
                return local
            return code

        return fold(roots, _PY, _repr, leaf, self.expr, share=share)


def _repr(t: Term) -> str:
    return repr(t.args[0])


def compile_function(
    name: str,
    params: Sequence[str],
    var_expr: Mapping[str, str],
    outputs: Sequence[Term],
    guard: Term | None = None,
    result: Callable[[list[str]], str] | None = None,
) -> tuple[Callable[..., Any], str]:
    """Generate and compile ``def name(*params)`` computing ``outputs``.

    ``var_expr`` maps each model variable to the Python expression that reads it (for example
    ``"s[3]"``). With a ``guard``, the function returns ``None`` when the guard is false and
    computes the outputs only otherwise. ``result`` shapes the returned expression from the
    output expressions (default: a tuple). Returns the function and its source.
    """
    em = _Emitter(var_expr)
    em.count_uses(([guard] if guard is not None else []) + list(outputs))
    lines = [f"def {name}({', '.join(params)}):"]
    if guard is not None:
        (g,) = em.emit([guard])
        lines += em.lines
        em.lines = []
        lines.append(f"    if not {g}:")
        lines.append("        return None")
    outs = em.emit(list(outputs))
    lines += em.lines
    ret = result(outs) if result else "(" + "".join(o + ", " for o in outs) + ")"
    lines.append(f"    return {ret}")
    src = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(src, f"<model:{name}>", "exec"), namespace)  # noqa: S102 - generated from terms
    return namespace[name], src


# ---------------------------------------------------------------------------------------------
# Interpretation 2: Z3


_Z3: dict[str, Callable[..., Any]] = {}   # filled when first needed: only this interpretation imports z3


def _z3_table() -> dict[str, Callable[..., Any]]:
    if not _Z3:
        import z3  # heavy, and only this interpretation needs it (see _Z3)

        _Z3.update({
            "not": z3.Not,
            "and": z3.And,
            "or": z3.Or,
            "ite": z3.If,
            "eq": lambda a, b: a == b,
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
            "add": lambda a, b: a + b,
            "sub": lambda a, b: a - b,
        })
    return _Z3


def to_z3(roots: Sequence[Term], env: Mapping[str, Any], memo: dict[int, Any] | None = None) -> list[Any]:
    """Build Z3 expressions for ``roots``; ``env`` maps variable names to Z3 expressions.
    ``memo`` (by ``uid``) keeps the expressions built, for the next call over the same ``env``."""
    import z3  # only the symbolic interpretation needs z3

    def const_(t: Term) -> Any:
        v = t.args[0]
        return z3.BoolVal(v) if t.sort == BOOL else z3.IntVal(v)

    def leaf(t: Term) -> Any:
        try:
            return env[t.args[0]]
        except KeyError:
            raise KeyError(f"no Z3 value for model variable {t.args[0]!r}") from None

    return fold(roots, _z3_table(), const_, leaf, {} if memo is None else memo)
