"""CEL expressions as a tree, for the load-time cost analysis (:mod:`.cost`).

The tree comes from cel-cpp's own parser (``cel-expr-python``, a required
dependency, so it is there whichever backend evaluates): an expression is
parsed without type checking and its ``cel.expr.ParsedExpr`` protocol buffer
(``Expression.serialize()``) is decoded here, with no protobuf runtime, into
the node classes below. Macros arrive expanded, as CEL defines them:
``l.exists(x, p)`` is a :class:`Comprehension` over ``l`` with an
accumulator, ``has(a.b)`` a test-only :class:`Select`.

Field numbers are those of ``cel/expr/syntax.proto`` (stable, part of the CEL
spec). :func:`parse` raises :class:`ParseTreeError` for an expression cel-cpp
does not parse or bytes it cannot decode.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias

__all__ = [
    "Call",
    "Comprehension",
    "Const",
    "CreateList",
    "CreateMap",
    "Ident",
    "Node",
    "ParseTreeError",
    "ParsedExpression",
    "Select",
    "parse",
]


class ParseTreeError(ValueError):
    """The expression does not parse, or its parse tree cannot be decoded."""


@dataclass(frozen=True, slots=True, eq=False)
class Const:
    """A literal: None, bool, int, float, str or bytes (``uint`` literals are ints with ``unsigned``)."""

    id: int
    value: Any
    unsigned: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Ident:
    """A name: ``event``, a comprehension variable, a type name ..."""

    id: int
    name: str


@dataclass(frozen=True, slots=True, eq=False)
class Select:
    """``operand.field``; ``test_only`` for ``has(operand.field)``."""

    id: int
    operand: Node
    field: str
    test_only: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Call:
    """A function or operator call (``_+_``, ``_[_]``, ``size`` ...); a method call has a ``target``."""

    id: int
    function: str
    args: tuple[Node, ...]
    target: Node | None = None

    @property
    def operands(self) -> tuple[Node, ...]:
        """The target (for a method call) followed by the arguments."""
        return self.args if self.target is None else (self.target, *self.args)


@dataclass(frozen=True, slots=True, eq=False)
class CreateList:
    """``[a, b, ...]``."""

    id: int
    elements: tuple[Node, ...]


@dataclass(frozen=True, slots=True, eq=False)
class CreateMap:
    """``{k: v, ...}`` (or a message literal, which the environment does not declare)."""

    id: int
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True, eq=False)
class Comprehension:
    """CEL's one loop: ``accu = accu_init; for iter_var in iter_range: if !loop_condition break;
    accu = loop_step``; the value is ``result``."""

    id: int
    iter_var: str
    iter_range: Node
    accu_var: str
    accu_init: Node
    loop_condition: Node
    loop_step: Node
    result: Node
    iter_var2: str = ""


Node: TypeAlias = Const | Ident | Select | Call | CreateList | CreateMap | Comprehension


@dataclass(frozen=True)
class ParsedExpression:
    """A parsed expression: its root, the source offset of each node and the macro each comprehension came from."""

    text: str
    root: Node
    offsets: dict[int, int] = field(default_factory=dict)
    macros: dict[int, str] = field(default_factory=dict)

    def where(self, node: Node) -> tuple[int, int]:
        """``(line, column)`` of ``node`` within the expression, both 1-based."""
        offset = min(max(self.offsets.get(node.id, 0), 0), len(self.text))
        before = self.text[:offset]
        line = before.count("\n") + 1
        return line, offset - (before.rfind("\n") + 1) + 1


def parse(text: str) -> ParsedExpression:
    """Parse ``text`` with cel-cpp (no type checking) into a :class:`ParsedExpression`.

    :raises ParseTreeError: when cel-cpp rejects it or the tree cannot be decoded.
    """
    env = _parser_env()
    try:
        serialized = env.compile(text, disable_check=True).serialize()
    except RuntimeError as exc:
        raise ParseTreeError(str(exc).strip().splitlines()[0]) from None
    try:
        any_message = _fields_by_number(serialized)
        parsed = _fields_by_number(any_message[2][0])
        root = _expr(parsed[2][0])
        offsets: dict[int, int] = {}
        macros: dict[int, str] = {}
        for info in parsed.get(3, ()):
            for number, value in _fields(info):
                if number == 4:  # positions: map<int64, int32>
                    entry = _fields_by_number(value)
                    offsets[_int(entry.get(1, [0])[0])] = _int(entry.get(2, [0])[0])
                elif number == 5:  # macro_calls: map<int64, Expr>
                    entry = _fields_by_number(value)
                    call = _expr(entry[2][0]) if 2 in entry else None
                    if isinstance(call, Call):
                        macros[_int(entry.get(1, [0])[0])] = call.function
    except (KeyError, IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ParseTreeError(f"cannot decode cel-cpp's parse tree: {exc}") from None
    return ParsedExpression(text, root, offsets, macros)


@lru_cache(maxsize=1)
def _parser_env() -> Any:
    from cel_expr_python import cel

    return cel.NewEnv()


# --- protocol buffer wire format -------------------------------------------------------------------

_WireValue: TypeAlias = int | bytes


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, _WireValue]]:
    """``(field number, value)`` of a message: ints for varints, bytes for the rest."""
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, value
        elif wire == 1:
            yield number, data[i : i + 8]
            i += 8
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > n:
                raise ValueError("truncated field")
            yield number, data[i : i + length]
            i += length
        elif wire == 5:
            yield number, data[i : i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _fields_by_number(data: _WireValue) -> dict[int, list[Any]]:
    if not isinstance(data, bytes):
        raise ValueError("expected a message")
    result: dict[int, list[Any]] = {}
    for number, value in _fields(data):
        result.setdefault(number, []).append(value)
    return result


def _int(value: _WireValue, signed: bool = True) -> int:
    if not isinstance(value, int):
        raise ValueError("expected a varint")
    return value - (1 << 64) if signed and value >= 1 << 63 else value


def _text(value: _WireValue) -> str:
    if not isinstance(value, bytes):
        raise ValueError("expected a string")
    return value.decode("utf-8")


def _expr(data: _WireValue) -> Node:
    """Decode one ``cel.expr.Expr``."""
    message = _fields_by_number(data)
    node_id = _int(message.get(2, [0])[0])
    if 3 in message:
        return _const(node_id, message[3][0])
    if 4 in message:
        return Ident(node_id, _text(_fields_by_number(message[4][0]).get(1, [b""])[0]))
    if 5 in message:
        select = _fields_by_number(message[5][0])
        return Select(node_id, _expr(select[1][0]), _text(select.get(2, [b""])[0]), bool(_int(select.get(3, [0])[0])))
    if 6 in message:
        call = _fields_by_number(message[6][0])
        target = _expr(call[1][0]) if 1 in call else None
        return Call(node_id, _text(call.get(2, [b""])[0]), tuple(_expr(a) for a in call.get(3, [])), target)
    if 7 in message:
        return CreateList(node_id, tuple(_expr(e) for e in _fields_by_number(message[7][0]).get(1, [])))
    if 8 in message:
        entries = []
        for entry_data in _fields_by_number(message[8][0]).get(2, []):
            entry = _fields_by_number(entry_data)
            key: Node = _expr(entry[3][0]) if 3 in entry else Const(node_id, _text(entry.get(2, [b""])[0]))
            entries.append((key, _expr(entry[4][0])))
        return CreateMap(node_id, tuple(entries))
    if 9 in message:
        c = _fields_by_number(message[9][0])
        return Comprehension(
            node_id,
            iter_var=_text(c.get(1, [b""])[0]),
            iter_range=_expr(c[2][0]),
            accu_var=_text(c.get(3, [b""])[0]),
            accu_init=_expr(c[4][0]),
            loop_condition=_expr(c[5][0]),
            loop_step=_expr(c[6][0]),
            result=_expr(c[7][0]),
            iter_var2=_text(c.get(8, [b""])[0]),
        )
    raise ValueError(f"expression {node_id} has no kind")


def _const(node_id: int, data: _WireValue) -> Const:
    """Decode a ``cel.expr.Constant``."""
    for number, value in _fields(data if isinstance(data, bytes) else b""):
        if number == 1:
            return Const(node_id, None)
        if number == 2:
            return Const(node_id, bool(value))
        if number == 3:
            return Const(node_id, _int(value))
        if number == 4:
            return Const(node_id, _int(value, signed=False), unsigned=True)
        if number == 5 and isinstance(value, bytes):
            return Const(node_id, struct.unpack("<d", value)[0])
        if number == 6:
            return Const(node_id, _text(value))
        if number == 7 and isinstance(value, bytes):
            return Const(node_id, value)
        return Const(node_id, None)  # durations and timestamps (deprecated forms): small values
    return Const(node_id, None)  # null_value = 0 is encoded as an empty message
