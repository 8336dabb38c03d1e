"""Loading .rego files: v0/v1 detection, broken files, forbidden built-ins, Tracee's file conventions."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from conftest import FIXTURES, tracee_rules
from pytracee.engine.plugins import RuleFileError
from pytracee.engine.rego import policy
from pytracee.engine.rego.plugin import RegoCollector
from pytracee.engine.session import ConfigError, Session, SessionConfig
from pytracee.engine.testing import (
    assert_fires,
    assert_silent,
    load_signatures,
    make_event,
)

BACKENDS = ("regorus", "opa")
V0_FIXTURE = FIXTURES / "rego" / "v0" / "write_or_traceme_v0.rego"

HEADER = 'package tracee.{pkg}\n\nimport rego.v1\n\n__rego_metadoc__ := {{"id": "{id}", "name": "test"}}\n\n'
SELECT_PTRACE = 'tracee_selected_events contains {"source": "tracee", "name": "ptrace"}\n\n'
MATCH_TRACEME = 'tracee_match if {\n\tinput.eventName == "ptrace"\n\tinput.args[0].value == "PTRACE_TRACEME"\n}\n'
GOOD = HEADER.format(pkg="GOOD", id="GOOD-1") + SELECT_PTRACE + MATCH_TRACEME

TRACEME = make_event("ptrace", {"request": "PTRACE_TRACEME"})
ATTACH = make_event("ptrace", {"request": "PTRACE_ATTACH"})


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def collect_error(path: Path, backend: str) -> RuleFileError:
    with pytest.raises(RuleFileError) as info:
        RegoCollector(backend).tracee_collect_rule_file(path, None)
    assert info.value.path == path
    return info.value


def session_for(directory: Path, backend: str = "regorus", strict: bool = False) -> Session:
    config = SessionConfig(
        rules_dirs=[directory], strict=strict, load_builtin_rules=False, options=argparse.Namespace(rego_engine=backend)
    )
    return Session(config)


# --- v0 / v1 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_plain_v1_file_loads_as_v1_and_matches_only_what_it_should(tmp_path: Path, backend: str) -> None:
    """The pitfall: a v0-mode engine reads this file without error and then matches every event."""
    source = (
        'package tracee.PLAIN\n\nimport data.tracee.helpers\n\n__rego_metadoc__ := {"id": "PLAIN-1", "name": "plain v1"}\n\n'
        'tracee_selected_events contains {"source": "tracee", "name": "ptrace"}\n\n'
        'tracee_match if {\n\tinput.eventName == "ptrace"\n\thelpers.get_tracee_argument("request") == "PTRACE_TRACEME"\n}\n'
    )
    (signature,) = load_signatures(write(tmp_path, "plain.rego", source), rego_engine=backend)
    assert signature.syntax == "v1"
    assert_silent(signature, [ATTACH, make_event("ptrace", {})])
    assert_fires(signature, [TRACEME], count=1)


def test_v0_file_loads_unchanged_with_regorus() -> None:
    (signature,) = load_signatures(V0_FIXTURE)
    assert signature.syntax == "v0"
    assert signature.metadata.id == "TEST-V0"
    assert [(s.name, s.origin) for s in signature.selected_events] == [
        ("ptrace", "*"),
        ("security_file_open", "container"),
    ]
    assert assert_fires(signature, [TRACEME]).data is None
    assert_silent(signature, [ATTACH])
    write_etc = {"pathname": "/etc/shadow", "flags": "o_rdwr"}
    finding = assert_fires(signature, [make_event("security_file_open", write_etc, container=True)])
    assert finding.data == {"file flags": "o_rdwr", "file path": "/etc/shadow"}
    assert_silent(signature, [make_event("security_file_open", write_etc)])  # host: not selected
    assert_silent(
        signature, [make_event("security_file_open", {"pathname": "/etc/shadow", "flags": "O_RDONLY"}, container=True)]
    )


def test_v0_file_is_refused_clearly_by_opa() -> None:
    error = collect_error(V0_FIXTURE, "opa")
    assert error.line == 34  # the first rule body without `if`
    assert error.message == (
        "Rego v0 syntax is not supported by --rego-engine opa; use regorus or add `if`/`contains`/`import rego.v1`"
    )


def test_v0_and_v1_signatures_load_side_by_side(tmp_path: Path) -> None:
    write(tmp_path, "a_v0.rego", V0_FIXTURE.read_text())
    write(tmp_path, "b_v1.rego", GOOD)
    signatures = {s.metadata.id: s for s in load_signatures(tmp_path)}
    assert {k: s.syntax for k, s in signatures.items()} == {"TEST-V0": "v0", "GOOD-1": "v1"}
    for signature in signatures.values():
        assert_fires(signature, [TRACEME])
        assert_silent(signature, [ATTACH])


def test_v1_keywords_in_a_v0_file_are_refused(tmp_path: Path) -> None:
    source = (
        'package tracee.MIXED\n\n__rego_metadoc__ := {"id": "MIXED-1", "name": "mixed"}\n\n'
        'tracee_selected_events[s] {\n\ts := {"source": "tracee", "name": "ptrace"}\n}\n\n'
        'tracee_match if {\n\tinput.eventName == "nothing"\n}\n'
    )
    error = collect_error(write(tmp_path, "mixed.rego", source), "regorus")
    assert error.line == 9
    assert "`if` would be read as a rule name" in error.message
    assert "match every event" in error.message


def test_v0_parser_warnings_refuse_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the parser warns about in v0 mode (printed by Rust on stderr) refuses the file."""
    monkeypatch.setattr(policy, "_MISPARSED_RULE_NAMES", ())
    source = 'package tracee.WARN\n\nt {\n\ttrue\n}\n\ntracee_match if {\n\tinput.eventName == "x"\n}\n'
    with pytest.raises(RuleFileError) as info:
        policy.parse_module(write(tmp_path, "warn.rego", source))
    assert info.value.line == 7
    assert "`if` will be treated as identifier" in info.value.message


def test_v0_with_future_keywords_is_v0_and_correct(tmp_path: Path) -> None:
    source = (
        "package tracee.FUT\n\nimport future.keywords.if\nimport future.keywords.in\n\n"
        '__rego_metadoc__ := {"id": "FUT-1", "name": "future keywords"}\n\n'
        'tracee_selected_events[{"source": "tracee", "name": "ptrace"}]\n\n'
        'tracee_match if {\n\tsome arg in input.args\n\targ.value == "PTRACE_TRACEME"\n}\n\n'
        "old_style { true }\n"
    )
    (signature,) = load_signatures(write(tmp_path, "fut.rego", source))
    assert signature.syntax == "v0"
    assert_fires(signature, [TRACEME])
    assert_silent(signature, [ATTACH])


# --- broken files ----------------------------------------------------------------------------------------

BROKEN = {
    "syntax": (
        HEADER.format(pkg="S", id="S-1") + SELECT_PTRACE + "tracee_match if {\n\tinput.eventName ==\n}\n",
        11,
        "Rego syntax error",
    ),
    "no-package": ("import rego.v1\n\ntracee_match := true\n", 1, "syntax error"),
    "no-metadoc": ("package tracee.NM\n\nimport rego.v1\n\n" + SELECT_PTRACE + MATCH_TRACEME, 1, "no __rego_metadoc__"),
    "metadoc-no-id": (
        'package tracee.NI\n\nimport rego.v1\n\n__rego_metadoc__ := {"name": "x"}\n\n' + SELECT_PTRACE + MATCH_TRACEME,
        5,
        'has no "id"',
    ),
    "metadoc-not-object": (
        'package tracee.NO\n\nimport rego.v1\n\n__rego_metadoc__ := "TRC-1"\n\n' + SELECT_PTRACE + MATCH_TRACEME,
        5,
        "must be an object",
    ),
    "metadoc-bad-tags": (
        'package tracee.BT\n\nimport rego.v1\n\n__rego_metadoc__ := {"id": "BT-1", "tags": "x"}\n\n'
        + SELECT_PTRACE
        + MATCH_TRACEME,
        5,
        "tags must be a list",
    ),
    "no-selectors": (HEADER.format(pkg="NS", id="NS-1") + MATCH_TRACEME, 1, "no tracee_selected_events"),
    "empty-selectors": (
        HEADER.format(pkg="ES", id="ES-1")
        + "tracee_selected_events contains x if {\n\tsome x in []\n}\n\n"
        + MATCH_TRACEME,
        7,
        "empty or undefined",
    ),
    "selector-no-name": (
        HEADER.format(pkg="SN", id="SN-1") + 'tracee_selected_events contains {"source": "tracee"}\n\n' + MATCH_TRACEME,
        7,
        'has no event "name"',
    ),
    "selector-bad-origin": (
        HEADER.format(pkg="SO", id="SO-1")
        + 'tracee_selected_events contains {"name": "ptrace", "origin": "vm"}\n\n'
        + MATCH_TRACEME,
        7,
        "unknown origin 'vm'",
    ),
    "selector-unknown-key": (
        HEADER.format(pkg="SK", id="SK-1")
        + 'tracee_selected_events contains {"name": "ptrace", "orign": "host"}\n\n'
        + MATCH_TRACEME,
        7,
        "unknown keys ['orign']",
    ),
    "no-match": (HEADER.format(pkg="NMA", id="NMA-1") + SELECT_PTRACE, 1, "no tracee_match rule"),
    "unsafe": (HEADER.format(pkg="U", id="U-1") + SELECT_PTRACE + "tracee_match if {\n\tx == 1\n}\n", 10, "unsafe"),
    "helpers-package": (
        'package tracee.helpers\n\nimport rego.v1\n\n__rego_metadoc__ := {"id": "H-1"}\n\n'
        + SELECT_PTRACE
        + MATCH_TRACEME,
        1,
        "helpers' package",
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_names_file_and_line(tmp_path: Path, case: str, backend: str) -> None:
    source, line, message = BROKEN[case]
    error = collect_error(write(tmp_path, f"{case}.rego", source), backend)
    assert message in error.message
    assert error.line == line, error
    assert "Stack backtrace" not in error.message and "\n" not in error.message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_broken_file_leaves_the_others_working(tmp_path: Path, backend: str) -> None:
    """Engines compile lazily: a refused module must not stay behind and break the engine."""
    write(tmp_path, "a_good.rego", GOOD)
    write(tmp_path, "b_unsafe.rego", BROKEN["unsafe"][0])
    # a rule data.tracee.GOOD next to package tracee.GOOD: OPA refuses the pair at compile time
    clash = 'package tracee\n\nimport rego.v1\n\n__rego_metadoc__ := {"id": "CLASH-1"}\n\n' + SELECT_PTRACE
    write(tmp_path, "c_clash.rego", clash + "GOOD := 1\n\ntracee_match := false\n")
    write(tmp_path, "d_good.rego", GOOD.replace("GOOD", "GOOD2"))
    session = session_for(tmp_path, backend)
    session.load()
    errors = {error.where: error.message for error in session.load_errors()}
    assert errors.pop(f"{tmp_path / 'b_unsafe.rego'}:10").endswith("unsafe")
    if backend == "opa":
        assert "conflicts" in errors.pop(f"{tmp_path / 'c_clash.rego'}:9")
    assert errors == {}
    ids = sorted(
        s.metadata.id for s in session.signatures if s.signature.language == "rego" and "GOOD" in s.metadata.id
    )
    assert ids == ["GOOD-1", "GOOD2-1"]
    for loaded in session.signatures:
        if "GOOD" in loaded.metadata.id:
            assert_fires(loaded.signature, [TRACEME])
            assert_silent(loaded.signature, [ATTACH])


def test_strict_makes_a_broken_file_fatal(tmp_path: Path) -> None:
    write(tmp_path, "good.rego", GOOD)
    write(tmp_path, "bad.rego", BROKEN["syntax"][0])
    with pytest.raises(ConfigError, match="--strict"):
        session_for(tmp_path, strict=True).load()
    session = session_for(tmp_path)
    session.load()  # without --strict the good file loads
    assert [e.where for e in session.load_errors()] == [f"{tmp_path / 'bad.rego'}:11"]
    assert "GOOD-1" in {s.metadata.id for s in session.signatures}


def test_cli_reports_broken_files_and_strict_exits_2(tmp_path: Path) -> None:
    write(tmp_path, "good.rego", GOOD)
    write(tmp_path, "bad.rego", BROKEN["selector-bad-origin"][0])
    write(tmp_path, "worse.rego", BROKEN["syntax"][0])
    env = {**os.environ, "RUST_BACKTRACE": "1"}  # regorus would append Rust backtraces to its errors
    result = tracee_rules("--rules-dir", str(tmp_path), "--list", env=env)
    assert result.returncode == 0
    assert f"{tmp_path / 'worse.rego'}:11: Rego syntax error: expecting expression" in result.stderr
    assert "backtrace" not in result.stderr.lower()
    assert f"{tmp_path / 'bad.rego'}:7: tracee_selected_events: selector" in result.stderr
    assert "GOOD-1" in result.stdout
    strict = tracee_rules("--rules-dir", str(tmp_path), "--strict", "--list", env=env)
    assert strict.returncode == 2
    assert "bad.rego:7" in strict.stderr and "--strict" in strict.stderr


def test_load_signatures_raises_for_a_broken_file(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"bad\.rego:1: no tracee_match rule"):
        load_signatures(write(tmp_path, "bad.rego", BROKEN["no-match"][0]))


# --- the sandbox ---------------------------------------------------------------------------------------

FORBIDDEN = {
    "http.send": 'tracee_match if {\n\tinput.eventName == "ptrace"\n\thttp.send({"method": "get", "url": "http://example.com"})\n}\n',
    "net.lookup_ip_addr": 'tracee_match := {"ips": ips} if {\n\tips := net.lookup_ip_addr("example.com")\n}\n',
    "opa.runtime": 'tracee_match := {"env": opa.runtime().env} if {\n\tinput.eventName == "ptrace"\n}\n',
    "http.send as with": (
        'fake(_) := {"status_code": 200}\n\nsend_it := fake({})\n\n'
        "tracee_match if {\n\tsend_it with fake as http.send\n}\n"
    ),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(FORBIDDEN))
def test_builtins_reaching_out_are_refused_at_load(tmp_path: Path, case: str, backend: str) -> None:
    source = HEADER.format(pkg="NET", id="NET-1") + SELECT_PTRACE + FORBIDDEN[case]
    error = collect_error(write(tmp_path, "net.rego", source), backend)
    builtin = case.split(maxsplit=1)[0]
    assert error.message.startswith(f"{builtin} is not allowed: signatures may not reach")
    expected_line = next(i for i, text in enumerate(source.splitlines(), 1) if builtin in text)
    assert error.line == expected_line


@pytest.mark.parametrize("backend", BACKENDS)
def test_builtin_names_in_comments_and_strings_are_fine(tmp_path: Path, backend: str) -> None:
    source = (
        "package tracee.TALK\n\nimport rego.v1\n\n# we never call http.send or opa.runtime()\n"
        '__rego_metadoc__ := {"id": "TALK-1", "name": "mentions http.send(...)", "description": "net.lookup_ip_addr"}\n\n'
        + SELECT_PTRACE
        + 'tracee_match := {"note": "http.send"} if {\n\tinput.eventName == "ptrace"\n}\n'
    )
    (signature,) = load_signatures(write(tmp_path, "talk.rego", source), rego_engine=backend)
    assert assert_fires(signature, [ATTACH]).data == {"note": "http.send"}


# --- Tracee's file conventions --------------------------------------------------------------------------

USES_EXTRA_HELPER = (
    "package tracee.EXTRA\n\nimport rego.v1\n\nimport data.tracee.mine\n\n"
    '__rego_metadoc__ := {"id": "EXTRA-1", "name": "uses an extra helper"}\n\n'
    + SELECT_PTRACE
    + "tracee_match if {\n\tmine.is_traceme(input)\n}\n"
)
EXTRA_HELPER = (
    "package tracee.mine\n\nimport rego.v1\n\nimport data.tracee.helpers\n\n"
    'is_traceme(event) if {\n\tevent.eventName == "ptrace"\n\thelpers.get_tracee_argument("request") in {"PTRACE_TRACEME", 0}\n}\n'
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_extra_helper_files_are_loaded_for_every_signature(tmp_path: Path, backend: str) -> None:
    write(tmp_path, "a_signature.rego", USES_EXTRA_HELPER)
    write(tmp_path, "zz_helpers.rego", EXTRA_HELPER)  # visited after the signature: loaded first anyway
    (signature,) = load_signatures(tmp_path, rego_engine=backend)
    assert signature.metadata.id == "EXTRA-1"
    assert_fires(signature, [make_event("ptrace", {"request": 0})])
    assert_silent(signature, [ATTACH])


def test_a_v0_extra_helper_serves_v0_signatures(tmp_path: Path) -> None:
    write(
        tmp_path,
        "old_helpers.rego",
        'package tracee.old\n\nis_traceme(event) {\n\tevent.args[_].value == "PTRACE_TRACEME"\n}\n',
    )
    write(
        tmp_path,
        "old.rego",
        'package tracee.OLD\n\nimport data.tracee.old\n\n__rego_metadoc__ := {"id": "OLD-1", "name": "v0"}\n\n'
        'tracee_selected_events[{"source": "tracee", "name": "ptrace"}]\n\ntracee_match {\n\told.is_traceme(input)\n}\n',
    )
    (signature,) = load_signatures(tmp_path)
    assert_fires(signature, [TRACEME])
    assert_silent(signature, [ATTACH])


@pytest.mark.parametrize("backend", BACKENDS)
def test_helpers_rego_and_test_files_are_skipped(tmp_path: Path, backend: str) -> None:
    write(tmp_path, "helpers.rego", "this is not even Rego")  # Tracee's own helpers: the engine has its own
    write(tmp_path, "good_test.rego", "package tracee.GOOD\n\ntest_it { true }\n")  # opa test files
    write(tmp_path, "good.rego", GOOD)
    (signature,) = load_signatures(tmp_path, rego_engine=backend)
    assert signature.metadata.id == "GOOD-1"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_broken_extra_helper_is_reported_against_its_file(tmp_path: Path, backend: str) -> None:
    write(tmp_path, "bad_helpers.rego", "package tracee.mine\n\nimport rego.v1\n\nf(x) := x if {\n\tz == x\n}\n")
    write(tmp_path, "good.rego", GOOD)
    session = session_for(tmp_path, backend)
    session.load()
    assert [e.where for e in session.load_errors()] == [f"{tmp_path / 'bad_helpers.rego'}:6"]
    (loaded,) = [s for s in session.signatures if s.signature.language == "rego"]
    assert_fires(loaded.signature, [TRACEME])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_files_with_one_package_both_work(tmp_path: Path, backend: str) -> None:
    """Each Tracee signature compiled alone; copies of a package go to separate engines here."""
    write(tmp_path, "one.rego", GOOD.replace('"GOOD-1"', '"DUP-1"'))
    write(tmp_path, "two.rego", GOOD.replace('"GOOD-1"', '"DUP-2"').replace('"PTRACE_TRACEME"', '"PTRACE_ATTACH"'))
    signatures = {s.metadata.id: s for s in load_signatures(tmp_path, rego_engine=backend)}
    assert_fires(signatures["DUP-1"], [TRACEME])
    assert_silent(signatures["DUP-1"], [ATTACH])
    assert_fires(signatures["DUP-2"], [ATTACH])
    assert_silent(signatures["DUP-2"], [TRACEME])


def test_unknown_engine_for_embedded_use_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown Rego engine 'wasm'"):
        session_for(tmp_path, backend="wasm").load()


def test_a_missing_opa_package_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytracee.engine.rego import plugin

    real = plugin.importlib.util.find_spec
    monkeypatch.setattr(plugin.importlib.util, "find_spec", lambda name: None if name == "opa_bindings" else real(name))
    with pytest.raises(ConfigError, match="--rego-engine opa needs the opa-golib-python-bindings package"):
        session_for(tmp_path, backend="opa").load()


def test_metadata_fields(tmp_path: Path) -> None:
    source = (
        'package tracee.META\n\nimport rego.v1\n\n__rego_metadoc__ := {\n\t"id": "META-1",\n\t"version": 2,\n'
        '\t"name": "All fields",\n\t"eventName": "all_fields",\n\t"description": "d",\n\t"tags": ["a", "b"],\n'
        '\t"properties": {"Severity": 4, "MITRE ATT&CK": "x: y"}\n}\n\n' + SELECT_PTRACE + MATCH_TRACEME
    )
    (signature,) = load_signatures(write(tmp_path, "meta.rego", source))
    meta = signature.metadata
    assert (meta.id, meta.version, meta.name, meta.event_name, meta.description) == (
        "META-1",
        "2",
        "All fields",
        "all_fields",
        "d",
    )
    assert list(meta.tags) == ["a", "b"]
    assert meta.properties == {"Severity": 4, "MITRE ATT&CK": "x: y"}
    assert meta.severity == 4
