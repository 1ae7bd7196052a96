"""The term vocabulary: folding, the refusal of Python truth values, and agreement of the
generated Python with direct evaluation."""
import random

import pytest

from model.terms import (FALSE, TRUE, and_, assume, compile_function, const, eq, evaluate, facts, ite,
                         not_, or_, reads, select, simplify, substitute, var)


def test_terms_refuse_python_truth_values():
    x = var("x")
    with pytest.raises(TypeError, match="no Python truth value"):
        if x > 1:  # noqa: SIM108 - the point of the test
            pass


def test_folding_removes_constant_branches():
    x, y = var("x"), var("y")
    assert ite(TRUE, x, y) is x
    assert ite(FALSE, x, y) is y
    assert and_(TRUE, FALSE, x > 0) is FALSE
    assert or_(FALSE, x > 0) is (x > 0)
    assert not_(not_(x > 0)) is (x > 0)
    assert eq(x + 0, x) is TRUE
    assert (const(2) + 3).args == (5,)


def test_hash_consing_shares_identical_terms():
    assert (var("a") + 1) is (var("a") + 1)


def test_substitute_folds_knobs_away():
    k, x = var("k", "bool"), var("x")
    t = ite(k, x + 1, x - 1)
    (on,) = substitute([t], {"k": True})
    (off,) = substitute([t], {"k": False})
    assert evaluate([on], {"x": 5}) == [6] and evaluate([off], {"x": 5}) == [4]
    assert "k" not in repr(on)


def test_sort_errors_are_caught_when_building():
    with pytest.raises(TypeError):
        ite(var("c", "bool"), var("x"), var("b", "bool"))
    with pytest.raises(TypeError):
        and_(var("x"), TRUE)


def test_generated_python_agrees_with_evaluation_on_random_terms():
    rng = random.Random(7)
    ints = [var(f"i{n}") for n in range(4)]
    bools = [var(f"b{n}", "bool") for n in range(3)]

    def rand_int(d):
        if d == 0 or rng.random() < 0.3:
            return rng.choice(ints + [const(rng.randint(-2, 3))])
        c = rng.random()
        if c < 0.4:
            return ite(rand_bool(d - 1), rand_int(d - 1), rand_int(d - 1))
        if c < 0.7:
            return rand_int(d - 1) + rand_int(d - 1)
        if c < 0.85:
            return rand_int(d - 1) - rand_int(d - 1)
        return select([rand_int(d - 1) for _ in range(3)], ints[0])

    def rand_bool(d):
        if d == 0 or rng.random() < 0.3:
            return rng.choice(bools)
        c = rng.random()
        if c < 0.25:
            return and_(rand_bool(d - 1), rand_bool(d - 1))
        if c < 0.5:
            return or_(rand_bool(d - 1), rand_bool(d - 1))
        if c < 0.6:
            return not_(rand_bool(d - 1))
        return rand_int(d - 1) <= rand_int(d - 1)

    for _ in range(200):
        outs = [rand_int(4), rand_bool(4)]
        names = [t.args[0] for t in ints + bools]
        fn, _ = compile_function("f", ["e"], {n: f"e[{n!r}]" for n in names}, outs)
        for _ in range(5):
            env = {f"i{n}": rng.randint(0, 2) for n in range(4)}
            env.update({f"b{n}": rng.random() < 0.5 for n in range(3)})
            assert list(fn(env)) == evaluate(outs, env)
    # simplify keeps a term's value; assume keeps it wherever its facts hold; reads names
    # every variable the value can depend on
    for _ in range(300):
        t, c = rand_bool(5), rand_bool(2)
        s_t = simplify(t)
        (a_t,) = assume([t], facts(c, True))
        read = reads([s_t])[0]
        for _ in range(8):
            env = {f"i{n}": rng.randint(0, 2) for n in range(4)}
            env.update({f"b{n}": rng.random() < 0.5 for n in range(3)})
            assert evaluate([s_t], env) == evaluate([t], env)
            if evaluate([c], env)[0]:
                assert evaluate([a_t], env) == evaluate([t], env)
            other = dict(env)
            for n in set(env) - read:
                other[n] = not env[n] if n.startswith("b") else env[n] + 1
            assert evaluate([s_t], other) == evaluate([s_t], env)


_DIGEST_SCRIPT = """
import sys
from model.terms import and_, digest, eq, ite, var
names = ["dg.a", "dg.b", "dg.c"]
vs = {n: var(n) for n in (names if sys.argv[1] == "forward" else reversed(names))}
a, b, c = vs["dg.a"], vs["dg.b"], vs["dg.c"]
t = ite(and_(eq(a, b), a < c), a + 1, b - int(sys.argv[2]))
print(eq(a, b).args[0].args[0], digest([t, eq(b, c)]))
"""


def _digest_in_fresh_process(order: str, constant: int) -> tuple[str, str]:
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, order, str(constant)], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]).stdout.split()
    return out[0], out[1]


def test_digest_is_structural_whatever_the_build_order():
    """The same terms built in a different order (in fresh processes, so that their uids differ,
    and with them the order in which eq keeps its arguments) have the same digest; changing one
    constant changes it."""
    from model.terms import digest

    first_fwd, fwd = _digest_in_fresh_process("forward", 1)
    first_bwd, bwd = _digest_in_fresh_process("backward", 1)
    assert first_fwd != first_bwd          # eq really stored its arguments in another order
    assert fwd == bwd
    a, b, c = var("dg.a"), var("dg.b"), var("dg.c")
    here = digest([ite(and_(eq(a, b), a < c), a + 1, b - 1), eq(b, c)])
    assert here == fwd
    assert _digest_in_fresh_process("forward", 2)[1] != fwd
    assert digest([ite(and_(eq(a, b), a < c), a + 1, b - 2), eq(b, c)]) != here
    assert digest([eq(b, c), ite(and_(eq(a, b), a < c), a + 1, b - 1)]) != here   # the roots' order counts


def test_fold_computes_each_term_once_and_stops_at_its_memo_and_cut():
    """Every interpretation is one fold: each term's value once, from its arguments' values; a
    term in the memo (computed by an earlier fold) or in the cut is not entered."""
    from model.terms import _EVAL, fold, postorder

    x, y = var("fd.x"), var("fd.y")
    shared = x + y
    roots = [shared < 3, ite(shared < 3, shared, y - 1)]
    calls: list[str] = []
    ops = {op: (lambda op, f: lambda *a: (calls.append(op), f(*a))[1])(op, f) for op, f in _EVAL.items()}
    env = {"fd.x": 1, "fd.y": 5}
    leaf = lambda t: env[t.args[0]]  # noqa: E731
    value = lambda t: t.args[0]  # noqa: E731
    assert fold(roots, ops, value, leaf) == evaluate(roots, env) == [False, 4]
    assert calls.count("add") == 1                       # the shared sum, once
    memo: dict = {}
    fold([shared], ops, value, leaf, memo)
    calls.clear()
    seen: list[str] = []
    fold(roots, ops, value, lambda t: (seen.append(t.args[0]), leaf(t))[1], memo)
    assert "add" not in calls and "fd.x" not in seen     # in the memo: not walked again
    calls.clear()
    assert fold(roots, ops, value, leaf, cut={shared.uid: 10}) == [False, 4]
    assert "add" not in calls
    walked = {t.uid for t in postorder(roots, {shared.uid})}
    assert shared.uid in walked and x.uid not in walked
    # share sees every operation's value and keeps what it returns
    assert fold([shared + 1], ops, value, leaf, share=lambda t, v: v * 10) == [(6 * 10 + 1) * 10]
