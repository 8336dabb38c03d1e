"""A small reader of BTF, the BPF Type Format, in pure Python.

It reads the ``.BTF`` section of a compiled BPF object (an ELF file) or a raw BTF file
(``/sys/kernel/btf/vmlinux``, ``bpftool gen min_core_btf`` output), and answers what the
wire-layout check (:func:`.wire.layout_mismatches`) asks: a struct by name, the offsets,
sizes and types of its members, the key and value types of a BTF-defined map. Format:
the kernel's Documentation/bpf/btf.rst (``struct btf_header``, ``struct btf_type`` and
the per-kind data that follows each type); both byte orders are read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["Btf", "BtfError", "Member", "Type", "parse", "read_btf"]

BTF_MAGIC: Final = 0xEB9F

# BTF_KIND_*
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = range(1, 12)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(12, 20)
KIND_NAMES: Final = {
    INT: "INT",
    PTR: "PTR",
    ARRAY: "ARRAY",
    STRUCT: "STRUCT",
    UNION: "UNION",
    ENUM: "ENUM",
    FWD: "FWD",
    TYPEDEF: "TYPEDEF",
    VOLATILE: "VOLATILE",
    CONST: "CONST",
    RESTRICT: "RESTRICT",
    FUNC: "FUNC",
    FUNC_PROTO: "FUNC_PROTO",
    VAR: "VAR",
    DATASEC: "DATASEC",
    FLOAT: "FLOAT",
    DECL_TAG: "DECL_TAG",
    TYPE_TAG: "TYPE_TAG",
    ENUM64: "ENUM64",
}
#: Kinds whose third word is a size (the others: a type id).
_SIZED: Final = frozenset({INT, STRUCT, UNION, ENUM, DATASEC, FLOAT, ENUM64})
#: Kinds that only qualify or rename another type.
_ALIASES: Final = frozenset({TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG})
INT_SIGNED, INT_CHAR, INT_BOOL = 0x1, 0x2, 0x4


class BtfError(ValueError):
    """Not readable as BTF (or as an ELF object with a .BTF section)."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a struct or union (``bitfield_size`` 0: not a bitfield)."""

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(slots=True)
class Type:
    """One BTF type. ``size`` for sized kinds, ``ref`` (a type id) for the others; ``members``
    for structs and unions, ``elem``/``nelems`` for arrays, ``encoding``/``bits`` for ints,
    ``vars`` ((type id, offset, size)) for a DATASEC, ``enum_signed`` for enums."""

    id: int
    kind: int
    name: str
    size: int = 0
    ref: int = 0
    members: tuple[Member, ...] = ()
    elem: int = 0
    nelems: int = 0
    encoding: int = 0
    bits: int = 0
    vars: tuple[tuple[int, int, int], ...] = ()
    enum_signed: bool = False

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, str(self.kind))


@dataclass
class Btf:
    """The types of one BTF blob: ``types[id]`` (id 0 is void)."""

    types: list[Type]
    _by_name: dict[str, list[Type]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for t in self.types[1:]:
            if t.name:
                self._by_name.setdefault(t.name, []).append(t)

    def named(self, name: str, kind: int | None = None) -> list[Type]:
        """The types called ``name`` (of ``kind`` if given)."""
        return [t for t in self._by_name.get(name, []) if kind is None or t.kind == kind]

    def struct(self, name: str) -> Type | None:
        """The definition of ``struct name`` (not a forward declaration), None if absent."""
        found = self.named(name, STRUCT)
        return found[0] if found else None

    def resolve(self, type_id: int) -> Type:
        """The type behind typedefs, const, volatile, restrict and type tags."""
        t = self.types[type_id]
        for _ in range(64):
            if t.kind not in _ALIASES:
                return t
            t = self.types[t.ref]
        raise BtfError(f"type {type_id}: alias chain too long")

    def size_of(self, type_id: int) -> int:
        """sizeof the type, in bytes."""
        t = self.resolve(type_id)
        if t.kind == ARRAY:
            return t.nelems * self.size_of(t.elem)
        if t.kind == PTR:
            return 8
        if t.kind in _SIZED:
            return t.size
        raise BtfError(f"type {type_id} ({t.kind_name}) has no size")

    def shape(self, type_id: int) -> tuple[tuple[int, ...], Type]:
        """The array dimensions of a type (outermost first) and its element type."""
        dims: list[int] = []
        t = self.resolve(type_id)
        while t.kind == ARRAY:
            dims.append(t.nelems)
            t = self.resolve(t.elem)
        return tuple(dims), t

    def datasec(self, name: str) -> Type | None:
        found = self.named(name, DATASEC)
        return found[0] if found else None

    def section_vars(self, name: str) -> Iterator[Type]:
        """The VARs of data section ``name`` (``.maps``: one per BTF-defined map)."""
        sec = self.datasec(name)
        for type_id, _offset, _size in sec.vars if sec else ():
            yield self.types[type_id]


def parse(data: bytes) -> Btf:  # noqa: C901 - one branch per BTF kind, in the order the format lists them
    """Parse a raw BTF blob (``struct btf_header`` first)."""
    if len(data) < 24:
        raise BtfError("too short for a BTF header")
    if int.from_bytes(data[:2], "little") == BTF_MAGIC:
        bo = "<"
    elif int.from_bytes(data[:2], "big") == BTF_MAGIC:
        bo = ">"
    else:
        raise BtfError("no BTF magic")
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(bo + "5I", data, 4)
    types_start = hdr_len + type_off
    strings_start = hdr_len + str_off
    if types_start + type_len > len(data) or strings_start + str_len > len(data):
        raise BtfError("BTF sections past the end of the data")
    strings = data[strings_start : strings_start + str_len]

    def name_at(off: int) -> str:
        if off >= len(strings):
            raise BtfError(f"string offset {off} past the string section")
        return strings[off : strings.index(b"\0", off)].decode(errors="replace")

    u32x3 = struct.Struct(bo + "III")
    member = struct.Struct(bo + "III")
    types: list[Type] = [Type(0, 0, "void")]
    pos, end = types_start, types_start + type_len
    while pos < end:
        name_off, info, size_or_type = u32x3.unpack_from(data, pos)
        pos += 12
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        t = Type(len(types), kind, name_at(name_off))
        if kind in _SIZED:
            t.size = size_or_type
        else:
            t.ref = size_or_type
        if kind == INT:
            (word,) = struct.unpack_from(bo + "I", data, pos)
            t.encoding, t.bits = (word >> 24) & 0x0F, word & 0xFF
            pos += 4
        elif kind == ARRAY:
            t.elem, _index, t.nelems = u32x3.unpack_from(data, pos)
            pos += 12
        elif kind in (STRUCT, UNION):
            members = []
            for _ in range(vlen):
                m_name, m_type, m_off = member.unpack_from(data, pos)
                pos += 12
                if kind_flag:
                    members.append(Member(name_at(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24))
                else:
                    members.append(Member(name_at(m_name), m_type, m_off))
            t.members = tuple(members)
        elif kind == ENUM:
            t.enum_signed = kind_flag
            pos += 8 * vlen
        elif kind == ENUM64:
            t.enum_signed = kind_flag
            pos += 12 * vlen
        elif kind == FUNC_PROTO:
            pos += 8 * vlen
        elif kind in (VAR, DECL_TAG):
            pos += 4
        elif kind == DATASEC:
            t.vars = tuple(u32x3.unpack_from(data, pos + 12 * i) for i in range(vlen))
            pos += 12 * vlen
        elif kind not in (PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG):
            raise BtfError(f"type {t.id}: unknown BTF kind {kind}")
        types.append(t)
    if pos != end:
        raise BtfError("the last type runs past the type section")
    return Btf(types)


def _elf_section(data: bytes, wanted: bytes) -> bytes | None:
    """The contents of ELF section ``wanted`` (ELF64 or ELF32, either byte order)."""
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise BtfError("not an ELF file")
    is64 = data[4] == 2
    bo = "<" if data[5] == 1 else ">"
    if is64:
        (shoff,) = struct.unpack_from(bo + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(bo + "HHH", data, 0x3A)
        sh = struct.Struct(bo + "IIQQQQIIQQ")
    else:
        (shoff,) = struct.unpack_from(bo + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(bo + "HHH", data, 0x2E)
        sh = struct.Struct(bo + "IIIIIIIIII")
    if shoff + shnum * shentsize > len(data) or shstrndx >= shnum or shentsize < sh.size:
        raise BtfError("truncated ELF section headers")
    headers = [sh.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    names_off, names_size = headers[shstrndx][4], headers[shstrndx][5]
    names = data[names_off : names_off + names_size]
    for h in headers:
        name = names[h[0] : names.find(b"\0", h[0])]
        if name == wanted:
            offset, size = h[4], h[5]
            if offset + size > len(data):
                raise BtfError(f"ELF section {wanted.decode()} past the end of the file")
            return data[offset : offset + size]
    return None


def read_btf(path: str | Path) -> Btf:
    """The BTF of ``path``: an ELF object's .BTF section, or a raw BTF file.

    Raises :class:`BtfError` when the file has no BTF, OSError when it cannot be read."""
    data = Path(path).read_bytes()
    if data[:4] == b"\x7fELF":
        section = _elf_section(data, b".BTF")
        if section is None:
            raise BtfError(f"{path}: no .BTF section (built without -g?)")
        return parse(section)
    return parse(data)
