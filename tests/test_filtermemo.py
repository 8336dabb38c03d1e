"""The per-value memory of which signatures' data filters pass (engine.filtermemo)."""

from __future__ import annotations

from typing import Any

from pytracee.engine.envelope import guess_event_name
from pytracee.engine.filtermemo import MAX_VALUE_CHARS, MAX_VALUES, entry_picker, remembered
from pytracee.engine.selectors import accept_any_of, select


def _entries() -> tuple[tuple[str, str, Any], ...]:
    return (
        ("etc", "on_etc", accept_any_of([select("security_file_open", pathname="/etc/*")])),
        ("all", "on_all", None),
        ("shadow", "on_shadow", accept_any_of([select("security_file_open", pathname=["*/shadow", "/tmp/x"])])),
    )


def test_picks_the_accepting_entries_in_order_and_remembers_them() -> None:
    calls: list[str] = []
    entries = _entries()
    counted = tuple(
        (name, handler, None if accept is None else (lambda args, a=accept, n=name: calls.append(n) or a(args)))
        for name, handler, accept in entries
    )
    pick = entry_picker(counted, ["pathname", "pathname"])
    assert pick is not None
    assert pick({"pathname": "/etc/shadow"}) == (
        ("etc", "on_etc", None),
        ("all", "on_all", None),
        ("shadow", "on_shadow", None),
    )
    assert pick({"pathname": "/usr/lib/libc.so.6"}) == (("all", "on_all", None),)
    assert calls == ["etc", "shadow", "etc", "shadow"]
    # the same values again: answered from memory, no filter runs
    assert pick({"pathname": "/etc/shadow", "flags": 1})[0][0] == "etc"
    assert pick({"pathname": "/usr/lib/libc.so.6"}) == (("all", "on_all", None),)
    assert calls == ["etc", "shadow", "etc", "shadow"]


def test_values_it_cannot_remember_are_left_to_the_filters() -> None:
    pick = entry_picker(_entries(), ["pathname"])
    assert pick is not None
    assert pick({}) is None  # absent
    assert pick({"pathname": 7}) is None  # not a string
    assert pick({"pathname": ["/etc/shadow"]}) is None  # unhashable
    assert pick({"pathname": "/etc/" + "a" * MAX_VALUE_CHARS}) is None  # too long to keep


def test_memory_is_bounded() -> None:
    calls: list[str] = []
    accept = accept_any_of([select("security_file_open", pathname="/etc/*")])
    assert accept is not None
    pick = entry_picker((("etc", "h", lambda args: calls.append(args["pathname"]) or accept(args)),), ["pathname"])
    assert pick is not None
    for i in range(MAX_VALUES):
        assert pick({"pathname": f"/etc/{i}"}) == (("etc", "h", None),)
    assert pick({"pathname": "/etc/1"}) == (("etc", "h", None),)  # remembered: not tested again
    assert pick({"pathname": "/tmp/x"}) == ()  # one value more: memory starts afresh
    assert pick({"pathname": "/etc/0"}) == (("etc", "h", None),)  # forgotten, so tested again
    assert calls == [f"/etc/{i}" for i in range(MAX_VALUES)] + ["/tmp/x", "/etc/0"]


def test_not_used_when_no_filter_reads_an_argument() -> None:
    assert entry_picker((("all", "h", None),), []) is None


def test_filters_on_several_arguments_are_remembered_per_combination_of_values() -> None:
    calls: list[str] = []
    by_path = accept_any_of([select("sched_process_exec", pathname="*/crontab")])
    by_parent = accept_any_of([select("sched_process_exec", prev_comm=["nginx", "httpd"])])
    entries = (
        ("path", "h", lambda args: calls.append("path") or by_path(args)),
        ("all", "h", None),
        ("parent", "h", lambda args: calls.append("parent") or by_parent(args)),
    )
    pick = entry_picker(entries, ["pathname", "prev_comm", "pathname"])
    assert pick is not None
    shell_from_nginx = {"pathname": "/bin/sh", "prev_comm": "nginx"}
    assert [e[0] for e in pick(shell_from_nginx)] == ["all", "parent"]
    assert [e[0] for e in pick({"pathname": "/usr/bin/crontab", "prev_comm": "bash"})] == ["path", "all"]
    assert [e[0] for e in pick({"pathname": "/bin/sh", "prev_comm": "bash"})] == ["all"]
    assert len(calls) == 6
    assert [e[0] for e in pick(dict(shell_from_nginx))] == ["all", "parent"]  # from memory
    assert len(calls) == 6
    # what cannot be remembered is left to the filters, each time
    assert pick({"pathname": "/bin/sh"}) is None  # prev_comm absent
    assert pick({"pathname": "/bin/sh", "prev_comm": ["nginx"]}) is None  # unhashable
    assert pick({"pathname": "/bin/sh", "prev_comm": 7}) is None
    assert pick({"pathname": "/" + "a" * MAX_VALUE_CHARS, "prev_comm": "nginx"}) is None
    assert len(calls) == 6


def test_guessed_names_decoded_and_bounded() -> None:
    assert guess_event_name(b'{"eventName":"security_file_open","args":[]}') == "security_file_open"
    assert guess_event_name(b'{"eventName":"caf\xc3\xa9"}') == "caf\ufffd\ufffd"
    for i in range(5000):  # made-up names: decoded every time, memory bounded
        assert guess_event_name(b'{"eventName":"e%d"}' % i) == f"e{i}"
    from pytracee.engine import envelope

    assert len(envelope._GUESSED) <= envelope._MAX_GUESSED


def test_remembered_predicate_answers_as_the_test_and_runs_it_once_per_value() -> None:
    calls: list[Any] = []
    accept = accept_any_of([select("security_file_open", pathname=["/etc/*", "*/ld*"])])
    assert accept is not None
    test = remembered(lambda args: calls.append(args.get("pathname")) or accept(args), "pathname")
    values = ["/etc/passwd", "/usr/lib/ld-linux.so", "/tmp/x", "/etc/passwd", "/tmp/x", None, 5, "/x" * MAX_VALUE_CHARS]
    assert [test({"pathname": v}) for v in values] == [accept({"pathname": v}) for v in values]
    # strings up to MAX_VALUE_CHARS once each; anything else every time
    assert calls == ["/etc/passwd", "/usr/lib/ld-linux.so", "/tmp/x", None, 5, "/x" * MAX_VALUE_CHARS]
