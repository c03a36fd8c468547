"""The expression language: rendered trees parse back to the same tree; garbage never crashes."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dci_bridge.protocol.codes import ExpOperator
from dci_bridge.records.expression import (
    MAX_DEPTH,
    ExpressionSyntaxError,
    RawValue,
    parse_expression,
)
from dci_bridge.records.query import And, Comparison, Expr, Not, Or, parse_attribute

NAMES = ["given_name", "surname", "sex", "birth_date", "YOB", "DOB", "birth_place", "is_deceased"]
SYMBOLS = {
    ExpOperator.EQ: "=",
    ExpOperator.LT: "<",
    ExpOperator.LE: "<=",
    ExpOperator.GT: ">",
    ExpOperator.GE: ">=",
}


def make(name: str, op: ExpOperator, value: RawValue | tuple[RawValue, ...]) -> Expr:
    attribute = parse_attribute(name)
    assert attribute is not None, name
    converted = tuple(value) if isinstance(value, tuple) else value
    return Comparison(attribute, op, converted)  # type: ignore[arg-type]


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
values = st.one_of(
    texts,
    st.integers(min_value=-(10**6), max_value=10**6),
    st.booleans(),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)).map(str),
)


def render_value(value: RawValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[:4].isdigit():
        return value
    assert isinstance(value, str)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[str, Expr]:
    name = draw(st.sampled_from(NAMES))
    if draw(st.booleans()):
        items = draw(st.lists(values, min_size=1, max_size=4))
        text = f"{name} in ({', '.join(render_value(v) for v in items)})"
        return text, make(name, ExpOperator.IN, tuple(items))
    op = draw(st.sampled_from(sorted(SYMBOLS)))
    value = draw(values)
    return f"{name} {SYMBOLS[op]} {render_value(value)}", make(name, op, value)


def trees() -> st.SearchStrategy[tuple[str, Expr]]:
    def extend(
        children: st.SearchStrategy[tuple[str, Expr]],
    ) -> st.SearchStrategy[tuple[str, Expr]]:
        def join(word: str, kind: type[And] | type[Or]) -> st.SearchStrategy[tuple[str, Expr]]:
            return st.lists(children, min_size=2, max_size=3).map(
                lambda parts: (
                    f" {word} ".join(f"({text})" for text, _ in parts),
                    kind(tuple(expr for _, expr in parts)),
                )
            )

        negated = children.map(lambda part: (f"not ({part[0]})", Not(part[1])))
        return st.one_of(join("and", And), join("or", Or), negated)

    return st.recursive(comparisons(), extend, max_leaves=8)


@given(trees())
@settings(max_examples=300)
def test_rendered_tree_parses_back_to_the_same_tree(case: tuple[str, Expr]) -> None:
    text, expected = case
    assert parse_expression(text, make) == expected


@given(st.text(max_size=200))
@settings(max_examples=500)
def test_arbitrary_text_parses_or_raises_syntax_error(text: str) -> None:
    def permissive(name: str, op: ExpOperator, value: object) -> Expr:
        attribute = parse_attribute(name) or parse_attribute("surname")
        assert attribute is not None
        return Comparison(attribute, op, "x")

    position = 0
    try:
        parse_expression(text, permissive)
    except ExpressionSyntaxError as exc:
        position = exc.position
    assert 0 <= position <= len(text)


def test_precedence_and_binds_tighter_than_or() -> None:
    expr = parse_expression("sex = 'male' or sex = 'female' and YOB = 1990", make)
    assert isinstance(expr, Or)
    assert isinstance(expr.items[1], And)


def test_not_equal_becomes_negated_equality() -> None:
    expr = parse_expression("sex != 'male'", make)
    assert expr == Not(make("sex", ExpOperator.EQ, "male"))


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 0),
        ("sex =", 5),
        ("sex = 'male' and", 16),
        ("(sex = 'male'", 13),
        ("sex ~ 'male'", 4),
        ("sex in 'male'", 7),
        ("and = 1", 0),
        ("sex = 'male' extra", 13),
    ],
)
def test_syntax_errors_point_at_the_problem(text: str, position: int) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression(text, make)
    assert info.value.position == position


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    text = "(" * (MAX_DEPTH + 5) + "sex = 'x'" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(ExpressionSyntaxError, match="nested too deeply"):
        parse_expression(text, make)
    with pytest.raises(ExpressionSyntaxError, match="nested too deeply"):
        parse_expression("not " * 200 + "sex = 'x'", make)
