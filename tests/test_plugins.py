"""Plugin discovery (built-ins, rules directories), blocking, selection and the finding hooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pytracee.engine.plugins import RuleFileError
from pytracee.engine.session import ConfigError, Session, SessionConfig
from pytracee.engine.testing import make_event

SHADOW_RULE = """
from pytracee.engine import Event, Signature, SignatureMetadata, select, signature

class ShadowRead(Signature):
    metadata = SignatureMetadata(id="LOCAL-1", name="shadow read", event_name="shadow_read")
    selected_events = [select("security_file_open", pathname="/etc/shadow")]

    def on_event(self, event: Event) -> None:
        if event.is_file_read():
            self.emit(event, {"path": event.str_arg("pathname")})

class _Base(Signature):  # private helpers are not collected
    pass

@signature(id="LOCAL-2", name="tmp exec", events=[select("sched_process_exec", pathname="/tmp/*")])
def tmp_exec(event: Event) -> bool:
    return True
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def session_for(tmp_path: Path, **kwargs) -> Session:
    session = Session(SessionConfig(rules_dirs=[tmp_path], load_installed_plugins=False, **kwargs))
    session.load()
    return session


def ids(session: Session) -> set[str]:
    return {s.metadata.id for s in session.signatures}


def test_rules_dir_python_files_are_collected_like_pytest_collects_tests(tmp_path: Path) -> None:
    write(tmp_path, "shadow.py", SHADOW_RULE)
    write(tmp_path, "nested/more.py", SHADOW_RULE.replace("LOCAL-1", "LOCAL-3").replace("LOCAL-2", "LOCAL-4"))
    write(tmp_path, "test_shadow.py", "raise RuntimeError('tests are not rules')")
    write(tmp_path, "conftest.py", "raise RuntimeError('nor is conftest')")
    write(tmp_path, "notes.md", "# not a rule file")
    session = session_for(tmp_path)
    assert {"LOCAL-1", "LOCAL-2", "LOCAL-3", "LOCAL-4"} <= ids(session)
    assert "TRC-102" in ids(session)  # the built-ins still load
    assert session.load_errors() == []
    plugin_of = {s.metadata.id: s.plugin for s in session.signatures}
    assert plugin_of["LOCAL-1"] == "shadow" and plugin_of["TRC-102"] == "builtin-signatures"


def test_register_hook_and_module_signatures_load_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "registered.py",
        SHADOW_RULE
        + """
from pytracee.engine import hookimpl

@hookimpl
def tracee_register_signatures(register):
    register(ShadowRead)      # already collected: loads once
    register(tmp_exec)
""",
    )
    session = session_for(tmp_path)
    assert [s.metadata.id for s in session.signatures].count("LOCAL-1") == 1


def test_a_broken_rule_file_is_reported_with_its_line_and_the_rest_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "good.py", SHADOW_RULE)
    broken = write(tmp_path, "broken.py", "x = 1\ndef oops(:\n")
    raising = write(tmp_path, "raising.py", "import os\nraise ValueError('bad config')\n")
    session = session_for(tmp_path)
    assert "LOCAL-1" in ids(session)
    errors = [str(e) for e in session.load_errors()]
    assert f"{broken}:2: SyntaxError: invalid syntax" in errors
    assert f"{raising}:2: ValueError: bad config" in errors
    assert "not loaded:" in caplog.text


def test_strict_makes_broken_rule_files_fatal(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "def oops(:\n")
    with pytest.raises(ConfigError, match="failed to load"):
        session_for(tmp_path, strict=True)


def test_missing_rules_dir_is_reported(tmp_path: Path) -> None:
    session = session_for(tmp_path / "nope")
    assert "rules directory or file does not exist" in str(session.load_errors()[0])


def test_block_plugins_and_disable_signatures(tmp_path: Path) -> None:
    write(tmp_path, "shadow.py", SHADOW_RULE)
    session = session_for(tmp_path, disabled=["shadow", "TRC-102", "dynamic_code_loading"])
    assert not {"LOCAL-1", "LOCAL-2", "TRC-102", "TRC-104"} & ids(session)
    assert "TRC-103" in ids(session)
    session = session_for(tmp_path, disabled=["builtin-signatures"])
    assert ids(session) == {"LOCAL-1", "LOCAL-2"}


def test_rules_selects_by_id_or_event_name_and_enables_off_by_default_ones(tmp_path: Path) -> None:
    session = session_for(tmp_path, rules=["TRC-102,ld_preload", "TRC-108"])
    assert ids(session) == {"TRC-102", "TRC-107", "TRC-108"}
    assert "TRC-108" not in ids(session_for(tmp_path))  # off by default, as in Tracee v0.24.1
    with pytest.raises(ConfigError, match="no such signature: NOPE-1"):
        session_for(tmp_path, rules=["NOPE-1"])


def test_duplicate_ids_name_both_sources(tmp_path: Path) -> None:
    write(tmp_path, "dup.py", SHADOW_RULE.replace('"LOCAL-1"', '"TRC-102"'))
    with pytest.raises(ConfigError, match=r"duplicate signature ID 'TRC-102'.*plugin builtin-signatures.*plugin dup"):
        session_for(tmp_path)


def test_rule_file_hook_lets_plugins_add_languages(tmp_path: Path) -> None:
    write(
        tmp_path,
        "toy_language.py",
        """
from pytracee.engine import hookimpl, signature
from pytracee.engine.plugins import RuleFileError

@hookimpl
def tracee_collect_rule_file(path, config):
    if path.suffix != ".toy":
        return None
    name, _, event = path.read_text().strip().partition(" ")
    if not event:
        raise RuleFileError(path, "expected 'ID EVENT'", line=1)
    return [signature(id=name, name=name, events=[event])(lambda e: True)()]
""",
    )
    write(tmp_path, "rules/one.toy", "TOY-1 ptrace")
    bad = write(tmp_path, "rules/two.toy", "TOY-2")
    session = session_for(tmp_path)
    assert "TOY-1" in ids(session)
    assert [str(e) for e in session.load_errors()] == [f"{bad}:1: expected 'ID EVENT'"]


def test_a_broken_installed_plugin_does_not_hide_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    write(site, "good_sigs.py", SHADOW_RULE)
    write(site, "bad_sigs.py", "raise ImportError('needs libfoo')\n")
    write(site, "acme_sigs-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: acme-sigs\nVersion: 1.0\n")
    write(site, "acme_sigs-1.0.dist-info/entry_points.txt", "[pytracee]\nbad = bad_sigs\ngood = good_sigs\n")
    monkeypatch.syspath_prepend(str(site))
    session = Session(SessionConfig())
    session.load()
    assert {"LOCAL-1", "LOCAL-2"} <= ids(session)
    assert [str(e) for e in session.load_errors()] == ["installed plugin bad (bad_sigs): ImportError: needs libfoo"]


def test_a_failing_filter_or_enrich_plugin_loses_the_finding_visibly(tmp_path: Path) -> None:
    write(
        tmp_path,
        "enricher.py",
        "from pytracee.engine import hookimpl\n@hookimpl\ndef tracee_finding_enrich(finding):\n    raise KeyError('ancestry')\n",
    )
    session = session_for(tmp_path)
    assert session.run([make_event("ptrace", {"request": 0})]) == 1
    assert session.output_failures == 1 and session.engine.stats.errors_by_signature == {}


def test_finding_hooks_filter_enrich_and_output_in_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pipeline.py",
        """
from pytracee.engine import hookimpl
seen = []

@hookimpl
def tracee_finding_filter(finding):
    if finding.event.process_name == "gdb":
        return "debugger allow-list"

@hookimpl
def tracee_finding_enrich(finding):
    finding.data = dict(finding.data or {}, team="blue")

@hookimpl
def tracee_finding_output(finding):
    seen.append((finding.sig_metadata.id, finding.data))

@hookimpl
def tracee_sessionfinish(session, exitstatus):
    seen.append(("finish", exitstatus))
""",
    )
    session = session_for(tmp_path)
    events = [make_event("ptrace", {"request": 0}, processName=name) for name in ("gdb", "malware", "gdb")]
    assert session.run(events) == 0
    plugin = session.pm.get_plugin("pipeline")
    assert plugin.seen == [("TRC-102", {"team": "blue"}), ("finish", 0)]
    assert session.suppressed == {"debugger allow-list": 2}
    assert "suppressed by plugins: debugger allow-list: 2" in session.summary()


def test_a_failing_output_plugin_is_counted_and_fails_the_run(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sink.py",
        "from pytracee.engine import hookimpl\n@hookimpl\ndef tracee_finding_output(finding):\n    raise IOError('disk full')\n",
    )
    session = session_for(tmp_path)
    assert session.run([make_event("ptrace", {"request": 0})]) == 1
    assert session.output_failures == 1


def test_signature_errors_reach_plugins(tmp_path: Path) -> None:
    write(
        tmp_path,
        "watch.py",
        """
from pytracee.engine import hookimpl, signature
errors = []

@signature(id="FRAGILE-1", name="fragile", events=["ptrace"])
def fragile(event):
    return event.int_arg("no_such_arg") == 0

@hookimpl
def tracee_signature_error(signature, event, error):
    errors.append((signature.get_metadata().id, event.name, type(error).__name__))
""",
    )
    session = session_for(tmp_path)
    session.run([make_event("ptrace", {"request": 0})])
    assert session.pm.get_plugin("watch").errors == [("FRAGILE-1", "ptrace", "ArgumentError")]
    assert "signature errors: FRAGILE-1: 1" in session.summary()


def test_misspelled_hooks_are_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        "typo.py",
        "from pytracee.engine import hookimpl\n@hookimpl\ndef tracee_finding_outptu(finding):\n    pass\n",
    )
    session = session_for(tmp_path)
    assert [str(e) for e in session.load_errors()] == [
        "plugin typo: unknown hook 'tracee_finding_outptu' (misspelled?)"
    ]


def test_rule_file_error_message() -> None:
    assert str(RuleFileError("a.rego", "bad", line=3)) == "a.rego:3: bad"
    assert str(RuleFileError("a.rego", "bad")) == "a.rego: bad"
