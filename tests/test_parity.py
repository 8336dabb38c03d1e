"""The same detection in Python, Rego and CEL gives the same findings on the same events.

PAR-1 is written three times (tests/fixtures/parity); the shipped rules that port a
Python built-in with the same logic (Rego TRC-2/TRC-4 of Tracee's v0.8 set, CEL-1xx)
are compared with it too. Each language is loaded the way users load it: a rules
file through ``load_signatures`` (so through the plugins), then run by the engine.
"""

from __future__ import annotations

import gzip

import orjson
import pytest
from conftest import FIXTURES, REPO
from pytracee.engine import Event
from pytracee.engine.testing import load_signatures, make_event, run_signature
from pytracee.signatures import BUILTIN_SIGNATURES

PARITY = FIXTURES / "parity"
DEMO = REPO / "examples" / "events" / "demo.jsonl"
DEMO_PARSED = REPO / "examples" / "events" / "demo-parse-arguments.jsonl.gz"


def shadow_events() -> list[Event]:
    """Reads and writes of the hash files, by tools and others, with raw and parsed flags."""
    events = []
    for path in ("/etc/shadow", "/etc/gshadow", "/etc/passwd", "/etc/shadow.bak"):
        for flags in (0, 0o100000, 2, 1, 0o101, "O_RDONLY|O_LARGEFILE", "O_RDWR", "O_WRONLY|O_TRUNC"):
            for comm, uid in (("cat", 1000), ("sshd", 0), ("python3", 0)):
                events.append(
                    make_event("security_file_open", {"pathname": path, "flags": flags}, processName=comm, userId=uid)
                )
    events.append(make_event("openat", {"pathname": "/etc/shadow", "flags": 0}))
    return events


def outcome(signature, events: list[Event]) -> list[tuple[int, dict | None]]:
    index = {id(e): n for n, e in enumerate(events)}
    return [(index[id(f.event)], f.data) for f in run_signature(signature, events)]


@pytest.mark.parametrize("rego_engine", ["regorus", "opa"])
@pytest.mark.parametrize("cel_engine", ["cel-expr-python", "cel-python"])
def test_one_detection_in_three_languages(rego_engine: str, cel_engine: str) -> None:
    (python,) = load_signatures(PARITY / "shadow_read.py")
    (rego,) = load_signatures(PARITY / "shadow_read.rego", rego_engine=rego_engine)
    (cel,) = load_signatures(PARITY / "shadow_read.yaml", cel_engine=cel_engine)
    assert (python.language, rego.language, cel.language) == ("python", "rego", "cel")
    events = shadow_events()
    expected = outcome(python, events)
    # 2 hash files x 5 reading flag values (0, O_LARGEFILE, O_RDWR, and the strings
    # "O_RDONLY|O_LARGEFILE", "O_RDWR") x 2 readers that are not password tools (cat, python3)
    assert len(expected) == 20
    assert outcome(rego, events) == expected
    assert outcome(cel, events) == expected
    metadata = {s.language: s.get_metadata() for s in (python, rego, cel)}
    assert {(m.id, m.name, m.event_name, m.properties["Severity"]) for m in metadata.values()} == {
        ("PAR-1", "Password hashes read", "shadow_read", 2)
    }


def demo_events() -> list[Event]:
    lines = DEMO.read_bytes().splitlines() + gzip.decompress(DEMO_PARSED.read_bytes()).splitlines()
    return [Event(orjson.loads(line)) for line in lines if line.strip()]


# (Python built-in, shipped Rego rule, shipped CEL rule) with the same detection logic
TRIPLES = [
    ("TRC-102", "anti_debugging_ptraceme.rego", "anti_debugging.yaml"),
    ("TRC-104", "dynamic_code_loading.rego", "dynamic_code_loading.yaml"),
]


@pytest.mark.parametrize(("builtin", "rego_file", "cel_file"), TRIPLES)
def test_shipped_rules_agree_with_the_python_builtins(builtin: str, rego_file: str, cel_file: str) -> None:
    python = next(cls() for cls in BUILTIN_SIGNATURES if cls.metadata.id == builtin)
    (rego,) = load_signatures(REPO / "rules" / "rego" / rego_file)
    (cel,) = load_signatures(REPO / "rules" / "cel" / cel_file)
    events = (
        demo_events()
        + [make_event("ptrace", {"request": request}) for request in (0, "PTRACE_TRACEME", 16, "PTRACE_ATTACH")]
        + [make_event("mem_prot_alert", {"alert": alert}) for alert in (4, "Protection changed from W+E to E!", 1, 2)]
    )
    expected = [index for index, _ in outcome(python, events)]
    assert len(expected) >= 4
    assert [index for index, _ in outcome(rego, events)] == expected
    assert [index for index, _ in outcome(cel, events)] == expected
