"""The `expression` query language: a small, documented filter syntax over person attributes.

The standard leaves the syntax of `query_type: expression` to the implementation. Ours:

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison
    comparison := NAME op value | NAME "in" "(" value ("," value)* ")"
    op         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
                | "eq" | "ne" | "lt" | "le" | "gt" | "ge"
    value      := 'text' | "text" | number | true | false | 2020-01-31 (a bare ISO date)

Keywords are case-insensitive; NAME is any attribute spelling of `query.ATTRIBUTE_ALIASES` or an
identifier type (`UIN`, `BRN`, ...). Example: `birth_date >= 2020-01-01 and sex = 'female'`.
The parser turns names and values into query nodes through a callback, so expressions and
predicates share one set of rules for attributes and value types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dci_bridge.protocol.codes import ExpOperator
from dci_bridge.records.query import And, Expr, Not, Or

MAX_LENGTH = 4000
MAX_DEPTH = 32

RawValue = str | int | float | bool
MakeCondition = Callable[[str, ExpOperator, "RawValue | tuple[RawValue, ...]"], Expr]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<date>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|==|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)

_WORD_OPS = {
    "eq": ExpOperator.EQ,
    "lt": ExpOperator.LT,
    "le": ExpOperator.LE,
    "gt": ExpOperator.GT,
    "ge": ExpOperator.GE,
}
_SYMBOL_OPS = {
    "=": ExpOperator.EQ,
    "==": ExpOperator.EQ,
    "<": ExpOperator.LT,
    "<=": ExpOperator.LE,
    ">": ExpOperator.GT,
    ">=": ExpOperator.GE,
}


class ExpressionSyntaxError(ValueError):
    """The expression does not follow the grammar; `position` is a character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position})")
        self.position = position


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            start = position + (len(text[position:]) - len(text[position:].lstrip()))
            raise ExpressionSyntaxError("unexpected character", start)
        kind = match.lastgroup
        assert kind is not None
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


def parse_expression(text: str, make: MakeCondition) -> Expr:
    """Parse `text` into a query tree; `make` builds each comparison (and may raise)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(f"expression longer than {MAX_LENGTH} characters", 0)
    parser = _Parser(_tokenize(text), make, len(text))
    if not parser.tokens:
        raise ExpressionSyntaxError("empty expression", 0)
    expr = parser.parse_or(0)
    if parser.index != len(parser.tokens):
        raise ExpressionSyntaxError("unexpected text", parser.tokens[parser.index].position)
    return expr


class _Parser:
    def __init__(self, tokens: list[_Token], make: MakeCondition, length: int) -> None:
        self.tokens = tokens
        self.index = 0
        self.make = make
        self.length = length

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise ExpressionSyntaxError(f"expected {expected}, got end of expression", self.length)
        self.index += 1
        return token

    def _is_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == "word" and token.text.lower() == word

    def parse_or(self, depth: int) -> Expr:
        items = [self.parse_and(depth)]
        while self._is_word("or"):
            self.index += 1
            items.append(self.parse_and(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self, depth: int) -> Expr:
        items = [self.parse_unary(depth)]
        while self._is_word("and"):
            self.index += 1
            items.append(self.parse_unary(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            token = self._peek()
            raise ExpressionSyntaxError(
                "expression nested too deeply", token.position if token else 0
            )
        if self._is_word("not"):
            self.index += 1
            return Not(self.parse_unary(depth + 1))
        token = self._peek()
        if token is not None and token.kind == "punct" and token.text == "(":
            self.index += 1
            inner = self.parse_or(depth + 1)
            self._expect_punct(")")
            return inner
        return self.parse_comparison()

    def _expect_punct(self, char: str) -> None:
        token = self._next(f"'{char}'")
        if token.kind != "punct" or token.text != char:
            raise ExpressionSyntaxError(f"expected '{char}'", token.position)

    def parse_comparison(self) -> Expr:
        name = self._next("an attribute name")
        if name.kind != "word" or name.text.lower() in {"and", "or", "not", "in"}:
            raise ExpressionSyntaxError("expected an attribute name", name.position)
        op_token = self._next("an operator")
        if op_token.kind == "word" and op_token.text.lower() == "in":
            return self.make(name.text, ExpOperator.IN, self._parse_list())
        negate = False
        if op_token.kind == "op" and op_token.text == "!=":
            op, negate = ExpOperator.EQ, True
        elif op_token.kind == "op":
            op = _SYMBOL_OPS[op_token.text]
        elif op_token.kind == "word" and op_token.text.lower() in _WORD_OPS:
            op = _WORD_OPS[op_token.text.lower()]
        elif op_token.kind == "word" and op_token.text.lower() == "ne":
            op, negate = ExpOperator.EQ, True
        else:
            raise ExpressionSyntaxError("expected an operator", op_token.position)
        condition = self.make(name.text, op, self._parse_value())
        return Not(condition) if negate else condition

    def _parse_list(self) -> tuple[RawValue, ...]:
        self._expect_punct("(")
        values = [self._parse_value()]
        while True:
            token = self._next("',' or ')'")
            if token.kind == "punct" and token.text == ")":
                return tuple(values)
            if token.kind != "punct" or token.text != ",":
                raise ExpressionSyntaxError("expected ',' or ')'", token.position)
            values.append(self._parse_value())

    def _parse_value(self) -> RawValue:
        token = self._next("a value")
        if token.kind == "string":
            body = token.text[1:-1]
            return re.sub(r"\\(.)", r"\1", body)
        if token.kind == "date":
            return token.text
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "word" and token.text.lower() in {"true", "false"}:
            return token.text.lower() == "true"
        raise ExpressionSyntaxError("expected a value", token.position)
