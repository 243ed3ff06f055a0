"""Query nodes: ``match(ctx, candidates) -> set of slots`` (term-like nodes answer from the index's
term -> slots dictionary, the others scan the candidates) and ``test(doc) -> bool`` for per-document
evaluation (aggregation filters). Scores are simple: a matching scoring leaf contributes its boost
(``match`` on text: boost x matched terms), ``bool`` sums must + matching should clauses, filter
context scores 0. There is no BM25.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Pool = set[int]


class Ctx:
    """What a query needs about one index view: mapping, slot -> doc, visible slots, now."""

    def __init__(self, index: Any, docs: Any, visible: set[int], use_terms: bool, now: int):
        self.index = index
        self.mapping = index.mapping
        self.docs = docs
        self.visible = visible
        self.use_terms = use_terms
        self.now = now


class Node:
    boost = 1.0
    cost = 5  # evaluation order inside bool: cheap (indexed) clauses first

    def test(self, doc: Any) -> bool:
        raise NotImplementedError

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        pool = ctx.visible if cand is None else cand
        docs, t = ctx.docs, self.test
        return {s for s in pool if t(docs[s])}

    def score(self, doc: Any) -> float:
        return self.boost

    @property
    def const(self) -> float | None:
        return self.boost


class MatchAll(Node):
    cost = 0

    def __init__(self, boost: float = 1.0):
        self.boost = boost

    def test(self, doc: Any) -> bool:
        return True

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        return ctx.visible if cand is None else cand


class MatchNone(Node):
    cost = 0

    def test(self, doc: Any) -> bool:
        return False

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        return set()


class FieldPred(Node):
    """A predicate on every value of one field (a doc matches when any value matches)."""

    def __init__(self, path: str, pred: Callable[[Any], bool], boost: float = 1.0):
        self.path = path
        self.pred = pred
        self.boost = boost

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        pool = ctx.visible if cand is None else cand
        docs, path, pred = ctx.docs, self.path, self.pred
        out = []
        for s in pool:
            v = docs[s].fields.get(path)
            if v is not None and (any(map(pred, v)) if type(v) is list else pred(v)):
                out.append(s)
        return set(out)

    def test(self, doc: Any) -> bool:
        v = doc.fields.get(self.path)
        if v is None:
            return False
        if type(v) is list:
            return any(map(self.pred, v))
        return self.pred(v)


class Terms(Node):
    """term / terms: exact values, answered from the term dictionary."""

    cost = 1

    def __init__(self, path: str, values: list[Any], boost: float = 1.0, text: bool = False):
        self.path = path
        self.values = values
        self.vset = set(values)
        self.boost = boost
        self.text = text

    def test(self, doc: Any) -> bool:
        v = doc.fields.get(self.path)
        if v is None:
            return False
        t = type(v)
        if t is list or t is tuple:
            return not self.vset.isdisjoint(v)
        return v in self.vset

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        if not ctx.use_terms:
            return Node.match(self, ctx, cand)
        terms = ctx.index.terms(self.path)
        pool = ctx.visible if cand is None else cand
        if len(self.values) == 1:
            s = terms.get(self.values[0])
            return s & pool if s else set()
        out: set[int] = set()
        for v in self.vset:
            s = terms.get(v)
            if s:
                out |= s
        return out & pool


class TermScan(Node):
    """prefix / wildcard / regexp / case-insensitive term: a predicate over the field's terms."""

    cost = 2

    def __init__(self, path: str, pred: Callable[[str], bool], boost: float = 1.0):
        self.path = path
        self.pred = pred
        self.boost = boost

    def test(self, doc: Any) -> bool:
        v = doc.fields.get(self.path)
        if v is None:
            return False
        t = type(v)
        if t is list or t is tuple:
            return any(self.pred(x) for x in v if isinstance(x, str))
        return isinstance(v, str) and self.pred(v)

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        if not ctx.use_terms:
            return Node.match(self, ctx, cand)
        out: set[int] = set()
        for term, slots in ctx.index.terms(self.path).items():
            if isinstance(term, str) and self.pred(term):
                out |= slots
        return out & (ctx.visible if cand is None else cand)


class Exists(Node):
    def __init__(self, paths: list[str], boost: float = 1.0):
        self.paths = paths
        self.boost = boost

    def test(self, doc: Any) -> bool:
        f = doc.fields
        return any(p in f for p in self.paths)

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        if not self.paths:
            return set()
        pool = ctx.visible if cand is None else cand
        docs = ctx.docs
        if len(self.paths) == 1:
            p = self.paths[0]
            return {s for s in pool if p in docs[s].fields}
        return Node.match(self, ctx, cand)


class Ids(Node):
    cost = 1

    def __init__(self, ids: list[str], boost: float = 1.0):
        self.ids = set(str(i) for i in ids)
        self.boost = boost

    def test(self, doc: Any) -> bool:
        return doc.id in self.ids

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        pool = ctx.visible if cand is None else cand
        if ctx.use_terms and ctx.index.realtime:
            out = set()
            for i in self.ids:
                d = ctx.index.docs.get(i)
                if d is not None and d.slot in pool:
                    out.add(d.slot)
            return out
        return Node.match(self, ctx, cand)


class TextMatch(Node):
    """match on a text field: at least `required` of the analyzed query terms."""

    cost = 2

    def __init__(self, path: str, tokens: list[str], required: int, boost: float = 1.0):
        self.path = path
        self.tokens = list(dict.fromkeys(tokens))
        self.required = required
        self.boost = boost

    def _count(self, doc: Any) -> int:
        v = doc.fields.get(self.path)
        if not v:
            return 0
        return sum(1 for t in self.tokens if t in v)

    def test(self, doc: Any) -> bool:
        return self._count(doc) >= self.required

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        if not ctx.use_terms:
            return Node.match(self, ctx, cand)
        pool = ctx.visible if cand is None else cand
        terms = ctx.index.terms(self.path)
        if self.required <= 1:
            out: set[int] = set()
            for t in self.tokens:
                s = terms.get(t)
                if s:
                    out |= s
            return out & pool
        counts: dict[int, int] = {}
        for t in self.tokens:
            for s in terms.get(t, ()):
                if s in pool:
                    counts[s] = counts.get(s, 0) + 1
        return {s for s, c in counts.items() if c >= self.required}

    def score(self, doc: Any) -> float:
        return self.boost * self._count(doc)

    @property
    def const(self) -> float | None:
        return None


class Phrase(Node):
    def __init__(self, path: str, tokens: list[str], slop: int = 0, boost: float = 1.0):
        self.path = path
        self.tokens = tuple(tokens)
        self.boost = boost

    def test(self, doc: Any) -> bool:
        v = doc.fields.get(self.path)
        if not v or type(v) is not tuple:
            return False
        n = len(self.tokens)
        if n == 0:
            return False
        first = self.tokens[0]
        for i, t in enumerate(v):
            if t == first and v[i : i + n] == self.tokens:
                return True
        return False


class Bool(Node):
    def __init__(
        self, must: list[Node], filter_: list[Node], should: list[Node], must_not: list[Node], msm: int, boost: float
    ):
        self.must, self.filter, self.should, self.must_not = must, filter_, should, must_not
        self.msm = msm
        self.boost = boost
        self.cost = min([n.cost for n in must + filter_] or [5])

    def test(self, doc: Any) -> bool:
        for n in self.must:
            if not n.test(doc):
                return False
        for n in self.filter:
            if not n.test(doc):
                return False
        for n in self.must_not:
            if n.test(doc):
                return False
        if self.msm > 0:
            hits = 0
            for n in self.should:
                if n.test(doc):
                    hits += 1
                    if hits >= self.msm:
                        return True
            return False
        return True

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        pool: Pool = ctx.visible if cand is None else cand
        for n in sorted(self.must + self.filter, key=lambda n: n.cost):
            if not pool:
                return set()
            pool = n.match(ctx, pool)
        for n in self.must_not:
            if not pool:
                return set()
            pool = pool - n.match(ctx, pool)
        if self.msm > 0 and pool:
            if self.msm == 1:
                out: Pool = set()
                for n in self.should:
                    out |= n.match(ctx, pool)
                pool = out
            else:
                counts: dict[int, int] = {}
                for n in self.should:
                    for s in n.match(ctx, pool):
                        counts[s] = counts.get(s, 0) + 1
                pool = {s for s, c in counts.items() if c >= self.msm}
        return pool

    def score(self, doc: Any) -> float:
        total = 0.0
        for n in self.must:
            total += n.score(doc)
        for n in self.should:
            if n.test(doc):
                total += n.score(doc)
        return total * self.boost

    @property
    def const(self) -> float | None:
        if self.should:
            return None
        total = 0.0
        for n in self.must:
            c = n.const
            if c is None:
                return None
            total += c
        return total * self.boost


class Constant(Node):
    def __init__(self, inner: Node, boost: float):
        self.inner = inner
        self.boost = boost
        self.cost = inner.cost

    def test(self, doc: Any) -> bool:
        return self.inner.test(doc)

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        return self.inner.match(ctx, cand)


class DisMax(Node):
    def __init__(self, queries: list[Node], tie_breaker: float, boost: float):
        self.queries = queries
        self.tie = tie_breaker
        self.boost = boost

    def test(self, doc: Any) -> bool:
        return any(q.test(doc) for q in self.queries)

    def match(self, ctx: Ctx, cand: Pool | None) -> Pool:
        out: Pool = set()
        for q in self.queries:
            out |= q.match(ctx, cand)
        return out

    def score(self, doc: Any) -> float:
        scores = [q.score(doc) for q in self.queries if q.test(doc)]
        if not scores:
            return 0.0
        best = max(scores)
        return (best + self.tie * (sum(scores) - best)) * self.boost

    @property
    def const(self) -> float | None:
        return None
