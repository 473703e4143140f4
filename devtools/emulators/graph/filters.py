"""A small OData `$filter`: comparisons, and/or/not, parentheses, startswith()/endswith();
date-time literals compared as instants."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from devtools.emulators.graph.odata import _DATETIME, GraphError, _epoch

_TOKEN = re.compile(r"\s*(\(|\)|,|'(?:[^']|'')*'|[^\s(),]+)")
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
Getter = Callable[[str], Any]
Predicate = Callable[[Getter], bool]


class _FilterParser:
    """A small OData $filter parser: comparisons, and/or/not, parentheses, startswith()."""

    def __init__(self, text: str) -> None:
        self.tokens = _TOKEN.findall(text)
        self.pos = 0
        self.clauses: list[tuple[str, str, Any]] = []

    def parse(self) -> Predicate:
        if not self.tokens:
            raise self._error()
        pred = self._or()
        if self.pos != len(self.tokens):
            raise self._error()
        return pred

    def _error(self) -> GraphError:
        return GraphError(400, "BadRequest", "Invalid filter clause")

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise self._error()
        self.pos += 1
        return token

    def _or(self) -> Predicate:
        parts = [self._and()]
        while (self._peek() or "").lower() == "or":
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda g: any(p(g) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._factor()]
        while (self._peek() or "").lower() == "and":
            self.pos += 1
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else (lambda g: all(p(g) for p in parts))

    def _factor(self) -> Predicate:
        token = self._take()
        if token.lower() == "not":
            inner = self._factor()
            return lambda g: not inner(g)
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise self._error()
            return inner
        if token.lower() in ("startswith", "endswith") and self._peek() == "(":
            return self._function(token.lower())
        op = self._take().lower()
        if op not in _OPS:
            raise self._error()
        literal = _literal(self._take())
        self.clauses.append((token, op, literal))
        return _comparison(token, op, literal)

    def _function(self, name: str) -> Predicate:
        self._take()
        path = self._take()
        if self._take() != ",":
            raise self._error()
        literal = _literal(self._take())
        if self._take() != ")" or not isinstance(literal, str):
            raise self._error()
        needle = literal.lower()

        def pred(get: Getter) -> bool:
            value = get(path)
            if not isinstance(value, str):
                return False
            hay = value.lower()
            return hay.startswith(needle) if name == "startswith" else hay.endswith(needle)

        return pred


class _DateLiteral(float):
    """A DateTimeOffset literal, as epoch seconds."""


def _literal(token: str) -> Any:
    if token.startswith("'") and token.endswith("'") and len(token) >= 2:
        text = token[1:-1].replace("''", "'")
        epoch = _epoch(text) if _DATETIME.match(text) else None
        return _DateLiteral(epoch) if epoch is not None else text
    low = token.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _DATETIME.match(token):
        epoch = _epoch(token)
        if epoch is None:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: bad date '{token}'")
        return _DateLiteral(epoch)
    try:
        return float(token) if "." in token else int(token)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid filter clause near '{token}'") from exc


def _compare(value: Any, op: str, literal: Any) -> bool:
    if isinstance(literal, _DateLiteral):
        value = value if isinstance(value, float) else _epoch(value)
    elif isinstance(literal, str) and isinstance(value, str):
        value, literal = value.lower(), literal.lower()
    if op == "eq":
        return value == literal
    if op == "ne":
        return value != literal
    if value is None or literal is None:
        return False
    try:
        if op == "gt":
            return value > literal
        if op == "ge":
            return value >= literal
        if op == "lt":
            return value < literal
        return value <= literal
    except TypeError:
        return False


def _comparison(path: str, op: str, literal: Any) -> Predicate:
    return lambda get: _compare(get(path), op, literal)


def parse_filter(text: str) -> tuple[Predicate, list[tuple[str, str, Any]]]:
    parser = _FilterParser(text)
    return parser.parse(), parser.clauses
