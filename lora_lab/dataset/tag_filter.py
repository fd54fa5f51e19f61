"""Choosing captions by their tags: `1girl AND (smile OR grin) AND NOT hat`, or include/exclude lists.

In an expression the operators are the upper-case words AND, OR, NOT and parentheses; a tag is the
words between them (`long hair AND NOT hat`). A tag that itself contains parentheses or one of
the operator words is written in double quotes: `"ms. fortune (skullgirls)" OR "NOT"`.
Precedence: NOT, then AND, then OR. Tags compare by `tag_key` (case and underscores do not matter).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from .captions import tag_key

Test = Callable[[Collection[str]], bool]  # given the `tag_key`s of one caption

_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([()])|([^\s()"]+))')
_KEYWORDS = {"AND", "OR", "NOT"}


@dataclass(frozen=True)
class TagFilter:
    text: str  # how it reads, for messages
    keys: frozenset[str]  # `tag_key` of every tag it mentions (to warn about tags no caption has)
    test: Test

    def matches(self, keys: Collection[str]) -> bool:
        """`keys`: the `tag_key`s of a caption's tags, as a set."""
        return self.test(keys)

    def __and__(self, other: TagFilter) -> TagFilter:
        a, b = self.test, other.test
        return TagFilter(f"({self.text}) AND ({other.text})", self.keys | other.keys,
                         lambda t: a(t) and b(t))


class FilterSyntaxError(ValueError):
    pass


def tag_filter(include: Iterable[str] = (), exclude: Iterable[str] = (),
               any_of: bool = False) -> TagFilter:
    """Captions with all (or, with any_of, at least one) of `include` and none of `exclude`."""
    inc, exc = tuple(include), tuple(exclude)
    inc_keys = tuple(tag_key(t) for t in inc)
    exc_keys = frozenset(tag_key(t) for t in exc)

    def test(keys: Collection[str]) -> bool:
        if exc_keys and not exc_keys.isdisjoint(keys):
            return False
        if not inc_keys:
            return True
        return any(k in keys for k in inc_keys) if any_of else all(k in keys for k in inc_keys)

    parts = []
    if inc:
        joined = (" OR " if any_of else " AND ").join(_quote(t) for t in inc)
        parts.append(f"({joined})" if any_of and len(inc) > 1 and exc else joined)
    parts += [f"NOT {_quote(t)}" for t in exc]
    return TagFilter(" AND ".join(parts) or "all", frozenset(inc_keys) | exc_keys, test)


def _quote(tag: str) -> str:
    if re.search(r'[()"]', tag) or any(w in _KEYWORDS for w in tag.split()):
        return '"' + tag.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return tag


def parse_filter(text: str) -> TagFilter:
    tokens: list[tuple[str, str]] = []  # (kind, value): kind in tag/word/op/paren
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterSyntaxError(f"unbalanced quote in filter: {text!r}")
        quoted, paren, word = m.groups()
        if quoted is not None:
            tokens.append(("tag", re.sub(r"\\(.)", r"\1", quoted)))
        elif paren:
            tokens.append(("paren", paren))
        elif word in _KEYWORDS:
            tokens.append(("op", word))
        elif word:
            tokens.append(("word", word))
        pos = m.end()
    if not tokens:
        raise FilterSyntaxError("empty filter")
    parser = _Parser(tokens, text)
    test = parser.parse_or()
    if parser.i < len(tokens):
        raise FilterSyntaxError(f"unexpected {tokens[parser.i][1]!r} in filter {text!r}")
    return TagFilter(text, frozenset(parser.mentioned), test)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.i = 0
        self.mentioned: set[str] = set()

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse_or(self) -> Test:
        parts = [self.parse_and()]
        while self._peek() == ("op", "OR"):
            self.i += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda t: any(p(t) for p in parts))

    def parse_and(self) -> Test:
        parts = [self.parse_not()]
        while self._peek() == ("op", "AND"):
            self.i += 1
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else (lambda t: all(p(t) for p in parts))

    def parse_not(self) -> Test:
        if self._peek() == ("op", "NOT"):
            self.i += 1
            inner = self.parse_not()
            return lambda t: not inner(t)
        return self.parse_atom()

    def parse_atom(self) -> Test:
        token = self._peek()
        if token is None:
            raise FilterSyntaxError(f"filter ends where a tag was expected: {self.text!r}")
        kind, value = token
        if token == ("paren", "("):
            self.i += 1
            inner = self.parse_or()
            if self._peek() != ("paren", ")"):
                raise FilterSyntaxError(f"missing ')' in filter {self.text!r}")
            self.i += 1
            return inner
        if kind == "tag":
            self.i += 1
            return self._tag(value)
        if kind == "word":
            words = []
            while (tok := self._peek()) is not None and tok[0] == "word":
                words.append(tok[1])
                self.i += 1
            return self._tag(" ".join(words))
        raise FilterSyntaxError(f"unexpected {value!r} in filter {self.text!r} (a tag was expected; "
                                "quote tags that contain parentheses or AND/OR/NOT)")

    def _tag(self, tag: str) -> Test:
        key = tag_key(tag)
        self.mentioned.add(key)
        return lambda keys: key in keys
