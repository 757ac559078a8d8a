"""The genetic-programming baseline: random edits of the program's syntax tree, the paper's comparison point.

Edit kinds: `constant` (perturb a number), `operator` (swap an operator for another of its family),
`duplicate` and `delete` (a statement), `rename` (a variable use to another name bound in scope). A child is
its parent with `edits_per_child` edits, written back with `ast.unparse`, so comments go and the layout is
normalised. Failures are outcomes: a parent that does not parse is NO_DIFF, an edit that changes nothing is
UNCHANGED.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from elm_core.errors import ConfigError
from elm_core.mutation._types import AST_LOCK, Child, MutationOutcome, Request, as_request

EDIT_KINDS = ("constant", "operator", "duplicate", "delete", "rename")
ENTRY_POINT = "make_walker"  # `delete` never removes this function (at module level) or its returns
RELATIVE_SIGMA = 0.3  # a perturbed constant is value * (1 + RELATIVE_SIGMA * N(0, 1))
REPLACE_PROBABILITY = 0.1  # ... or, this often, a fresh constant in [-SMALL_CONSTANT, SMALL_CONSTANT]
SMALL_CONSTANT = 10

_FAMILIES: tuple[dict[type[ast.AST], str], ...] = (
    {
        ast.Add: "+",
        ast.Sub: "-",
        ast.Mult: "*",
        ast.Div: "/",
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.Pow: "**",
    },
    {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"},
    {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="},
    {ast.Is: "is", ast.IsNot: "is not"},
    {ast.In: "in", ast.NotIn: "not in"},
    {ast.And: "and", ast.Or: "or"},
)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (*_FUNCTIONS, ast.ClassDef)
_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)  # what ast.parse raises on bad text

Edit = Callable[[np.random.Generator], str]  # applies one edit in place; returns its description


class GPMutator:
    """Implements `Mutator` with random syntax-tree edits; deterministic given the generator."""

    name = "gp"

    def __init__(self, *, edits_per_child: int = 1, edit_weights: Mapping[str, float] | None = None) -> None:
        if isinstance(edits_per_child, bool) or not isinstance(edits_per_child, int) or edits_per_child < 1:
            raise ConfigError(f"edits_per_child must be an int >= 1, got {edits_per_child!r}")
        self.edits_per_child = edits_per_child
        self.edit_weights = _checked_weights(edit_weights)

    def mutate(self, requests: Sequence[Request], rng: np.random.Generator) -> list[Child]:
        """One random edit of each request's parent; instructions and other programs are not for GP."""
        with AST_LOCK:
            return [self._child(as_request(request).parent, rng) for request in requests]

    def _child(self, parent: str, rng: np.random.Generator) -> Child:
        try:
            tree = ast.parse(parent)
        except _PARSE_ERRORS as e:
            return _gp_child(
                parent, MutationOutcome.NO_DIFF, detail=f"the parent has a syntax error: {_what(e)}"
            )
        try:
            before = ast.unparse(tree)
            edits = self._edit(tree, rng)
            source = ast.unparse(ast.fix_missing_locations(tree)) + "\n"
            ast.parse(source)
        except _PARSE_ERRORS as e:  # a tree too deep to copy or unparse, or an edit Python rejects
            return _gp_child(parent, MutationOutcome.NO_DIFF, detail=f"no usable child: {_what(e)}")
        style, description = "+".join(kind for kind, _ in edits), "; ".join(text for _, text in edits)
        if not edits or source.strip() == before.strip():
            detail = "the edits change nothing" if edits else "the parent has nothing these edits can change"
            return _gp_child(
                parent, MutationOutcome.UNCHANGED, style=style, raw_output=description, detail=detail
            )
        return _gp_child(parent, MutationOutcome.OK, source=source, style=style, raw_output=description)

    def _edit(self, tree: ast.Module, rng: np.random.Generator) -> list[tuple[str, str]]:
        """Up to `edits_per_child` (kind, description) edits, each on the tree the previous one left."""
        done = []
        for _ in range(self.edits_per_child):
            sites = {kind: _FINDERS[kind](tree) for kind, weight in self.edit_weights.items() if weight > 0}
            kinds = [kind for kind, found in sites.items() if found]
            if not kinds:
                break
            weights = np.array([self.edit_weights[kind] for kind in kinds])
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            done.append((kind, sites[kind][int(rng.integers(len(sites[kind])))](rng)))
        return done


def _gp_child(
    parent: str,
    outcome: MutationOutcome,
    *,
    source: str | None = None,
    style: str = "",
    raw_output: str = "",
    detail: str = "",
) -> Child:
    return Child(parent=parent, source=source, outcome=outcome, operator=GPMutator.name, style=style,
                 raw_output=raw_output, detail=detail)  # fmt: skip


def _checked_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Weights per edit kind; kinds a given mapping leaves out are never chosen."""
    if weights is None:
        return dict.fromkeys(EDIT_KINDS, 1.0)
    unknown = sorted(set(weights) - set(EDIT_KINDS))
    if unknown:
        raise ConfigError(f"edit_weights keys must be among {EDIT_KINDS}, got unknown {unknown}")
    values = list(weights.values())
    if (
        not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values)
        or sum(values) <= 0
    ):
        raise ConfigError(
            f"edit_weights must be finite numbers >= 0 with a positive sum, got {dict(weights)}"
        )
    return {kind: float(weights[kind]) for kind in EDIT_KINDS if kind in weights}


# ---- constants -------------------------------------------------------------------------------------------


def _constant_sites(tree: ast.Module) -> list[Edit]:
    sites: list[Edit] = []
    for owner in ast.walk(tree):
        for field, value in ast.iter_fields(owner):
            children = enumerate(value) if isinstance(value, list) else [(None, value)]
            for index, child in children:
                number = child.value if isinstance(child, ast.Constant) else None
                if isinstance(number, int | float) and not isinstance(number, bool):
                    sites.append(_perturb(owner, field, index, child, number))
    return sites


def _perturb(owner: ast.AST, field: str, index: int | None, node: ast.Constant, value: int | float) -> Edit:
    def edit(rng: np.random.Generator) -> str:
        new = _new_number(value, rng)
        replacement: ast.expr = ast.Constant(new) if new >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-new))
        ast.copy_location(replacement, node)
        if index is None:
            setattr(owner, field, replacement)
        else:
            getattr(owner, field)[index] = replacement
        return f"constant {_short(value)} -> {_short(new)} at line {_line(node)}"

    return edit


def _new_number(value: int | float, rng: np.random.Generator) -> int | float:
    """A gaussian relative perturbation (ints stay ints and always move), sometimes a fresh small constant."""
    if isinstance(value, int):
        return _new_int(value, rng)
    if rng.random() < REPLACE_PROBABILITY:
        return round(float(rng.uniform(-SMALL_CONSTANT, SMALL_CONSTANT)), 2)
    noise = RELATIVE_SIGMA * float(rng.normal())
    new = float(f"{value * (1 + noise) if value else noise:.3g}")
    return new if math.isfinite(new) else round(float(rng.uniform(-SMALL_CONSTANT, SMALL_CONSTANT)), 2)


def _new_int(value: int, rng: np.random.Generator) -> int:
    if rng.random() < REPLACE_PROBABILITY:
        new = int(rng.integers(-SMALL_CONSTANT, SMALL_CONSTANT + 1))
    else:  # exact integer arithmetic, so huge literals cannot overflow a float
        new = value + value * round(float(rng.normal()) * RELATIVE_SIGMA * 1024) // 1024
    return new if new != value else value + int(rng.choice([-1, 1]))


# ---- operators -------------------------------------------------------------------------------------------


def _operator_sites(tree: ast.Module) -> list[Edit]:
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp | ast.AugAssign | ast.BoolOp) and _family(node.op):
            sites.append(_swap(node, node.op, functools.partial(setattr, node, "op")))
        elif isinstance(node, ast.Compare):
            put = node.ops.__setitem__
            sites.extend(
                _swap(node, op, functools.partial(put, i)) for i, op in enumerate(node.ops) if _family(op)
            )
    return sites


def _family(op: ast.AST) -> dict[type[ast.AST], str] | None:
    return next((family for family in _FAMILIES if type(op) in family), None)


def _swap(node: ast.AST, current: ast.AST, put: Callable[[ast.AST], None]) -> Edit:
    """Replaces `current`, an operator of `node`, through `put`."""

    def edit(rng: np.random.Generator) -> str:
        family = _family(current) or {}
        choices = [op for op in family if op is not type(current)]
        new = choices[int(rng.integers(len(choices)))]()
        put(new)
        return f"operator {family[type(current)]} -> {family[type(new)]} at line {_line(node)}"

    return edit


# ---- statements ------------------------------------------------------------------------------------------


def _statement_lists(tree: ast.Module) -> Iterator[list[ast.stmt]]:
    for node in ast.walk(tree):
        for _, value in ast.iter_fields(node):
            if isinstance(value, list) and value and all(isinstance(s, ast.stmt) for s in value):
                yield value


def _duplicate_sites(tree: ast.Module) -> list[Edit]:
    return [_duplicate(body, i) for body in _statement_lists(tree) for i in range(len(body))]


def _duplicate(body: list[ast.stmt], index: int) -> Edit:
    def edit(rng: np.random.Generator) -> str:
        body.insert(index + 1, copy.deepcopy(body[index]))
        return f"duplicate line {_line(body[index])}: {_first_line(body[index])}"

    return edit


def _delete_sites(tree: ast.Module) -> list[Edit]:
    protected = {id(s) for s in _entry_statements(tree)}
    return [
        _delete(body, i)
        for body in _statement_lists(tree)
        if len(body) > 1  # never leave a body empty
        for i in range(len(body))
        if id(body[i]) not in protected
    ]


def _entry_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == ENTRY_POINT:
            yield node
            yield from (s for s in node.body if isinstance(s, ast.Return))


def _delete(body: list[ast.stmt], index: int) -> Edit:
    def edit(rng: np.random.Generator) -> str:
        gone = body.pop(index)
        return f"delete line {_line(gone)}: {_first_line(gone)}"

    return edit


# ---- names -----------------------------------------------------------------------------------------------


def _rename_sites(tree: ast.Module) -> list[Edit]:
    """Every variable use, with the names bound in its own and the enclosing scopes as replacements."""
    sites = []
    scopes: deque[tuple[ast.AST, frozenset[str]]] = deque([(tree, frozenset())])
    while scopes:
        scope, outer = scopes.popleft()
        visible = outer | _bound_names(scope)
        for node in _scope_nodes(scope):
            if isinstance(node, _SCOPES):
                scopes.append((node, visible))
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and visible - {node.id}:
                sites.append(_rename(node, sorted(visible - {node.id})))
    return sites


def _scope_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes under `scope`, in breadth-first order, not descending into nested scopes."""
    pending = deque(ast.iter_child_nodes(scope))
    while pending:
        node = pending.popleft()
        yield node
        if not isinstance(node, _SCOPES):
            pending.extend(ast.iter_child_nodes(node))


def _bound_names(scope: ast.AST) -> set[str]:
    names: set[str] = set()
    if isinstance(scope, _FUNCTIONS):
        a = scope.args
        names.update(arg.arg for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if arg)
    for node in _scope_nodes(scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias) and node.name != "*":
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _rename(node: ast.Name, others: list[str]) -> Edit:
    def edit(rng: np.random.Generator) -> str:
        old, node.id = node.id, others[int(rng.integers(len(others)))]
        return f"rename {old} -> {node.id} at line {_line(node)}"

    return edit


# ---- descriptions ----------------------------------------------------------------------------------------


def _line(node: ast.AST) -> str:
    return str(getattr(node, "lineno", "?"))


def _first_line(node: ast.AST) -> str:
    text = ast.unparse(node).split("\n", 1)[0]
    return text if len(text) <= 60 else text[:57] + "..."


def _short(value: int | float) -> str:
    if (
        isinstance(value, int) and abs(value) >= 10**30
    ):  # a huge repr is noise (and past 4300 digits, an error)
        return f"<{value.bit_length()}-bit int>"
    return repr(value)


def _what(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


_FINDERS: dict[str, Callable[[ast.Module], list[Edit]]] = {
    "constant": _constant_sites,
    "operator": _operator_sites,
    "duplicate": _duplicate_sites,
    "delete": _delete_sites,
    "rename": _rename_sites,
}
