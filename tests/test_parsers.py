"""Tracee's parse-arguments values, in both directions."""

from __future__ import annotations

import base64

import pytest
from pytracee.engine import parsers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("O_RDONLY", 0),
        ("O_RDONLY|O_LARGEFILE", 0o100000),
        ("O_WRONLY|O_CREAT|O_TRUNC|O_LARGEFILE", 0o101101),
        ("o_rdwr", 2),  # Tracee's Rego tests use lower case
        ("O_RDONLY|O_CLOEXEC", 0o2000000),
        ("524288", 524288),
    ],
)
def test_open_flags_parse(text: str, value: int) -> None:
    assert parsers.open_flags(text) == value
    assert parsers.open_flags(value) == value


@pytest.mark.parametrize("flags", [0, 1, 2, 0o100000, 0o101101, 0o2000000, 0o4010002, 0o20200000])
def test_open_flags_format_round_trips(flags: int) -> None:
    text = parsers.format_open_flags(flags)
    assert parsers.open_flags(text) == flags


def test_open_flags_format_matches_tracee() -> None:
    assert parsers.format_open_flags(0o100000) == "O_RDONLY|O_LARGEFILE"
    assert parsers.format_open_flags(0o101101) == "O_WRONLY|O_CREAT|O_TRUNC|O_LARGEFILE"


def test_open_flags_rejects_nonsense() -> None:
    with pytest.raises(parsers.ArgumentValueError, match="unknown open flag 'O_BOGUS'"):
        parsers.open_flags("O_RDONLY|O_BOGUS")
    with pytest.raises(parsers.ArgumentValueError):
        parsers.open_flags(["O_RDONLY"])
    with pytest.raises(parsers.ArgumentValueError):
        parsers.open_flags("")


def test_access_mode_predicates() -> None:
    assert parsers.is_file_read(0) and not parsers.is_file_write(0)
    assert parsers.is_file_write(1) and not parsers.is_file_read(1)
    assert parsers.is_file_write(2) and parsers.is_file_read(2)


@pytest.mark.parametrize(("name", "number"), [("PTRACE_TRACEME", 0), ("PTRACE_POKETEXT", 4), ("PTRACE_SEIZE", 0x4206)])
def test_ptrace_requests(name: str, number: int) -> None:
    assert parsers.ptrace_request(name) == parsers.ptrace_request(number) == number
    assert parsers.format_ptrace_request(number) == name
    with pytest.raises(parsers.ArgumentValueError, match="unknown ptrace request"):
        parsers.ptrace_request("PTRACE_NOPE")


def test_mem_prot_alerts() -> None:
    assert parsers.mem_prot_alert("Protection changed from W+E to E!") == parsers.PROT_ALERT_MPROTECT_WX_TO_X == 4
    assert parsers.format_mem_prot_alert(1) == "Mmaped region with W+E permissions!"
    assert parsers.format_mem_prot_alert(99) == "Unknown alert"


def test_paths_and_contents() -> None:
    assert parsers.is_memory_path("memfd:payload") and parsers.is_memory_path("/dev/shm/x")
    assert not parsers.is_memory_path("/dev/shmx") and not parsers.is_memory_path("/tmp/memfd:")
    assert parsers.is_elf(parsers.decode_bytes(base64.b64encode(b"\x7fELF\x02").decode()))
    assert not parsers.is_elf(parsers.decode_bytes("AAAAAA=="))
    assert parsers.decode_bytes([127, 69, 76, 70]) == b"\x7fELF"
    with pytest.raises(parsers.ArgumentValueError, match="base64"):
        parsers.decode_bytes("not base64!")
