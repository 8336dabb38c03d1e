"""Finding templates run sandboxed and bounded: no Python internals, no endless loops, no huge output.

Real Jinja2 throughout: hostile template files and hostile finding values (event fields
are whatever traced programs made them) either render within the bounds or fail that
one finding with a TemplateError.
"""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pytest
from conftest import tracee_rules
from hypothesis import given
from hypothesis import strategies as st
from pytracee.engine import Event, Finding, SignatureMetadata
from pytracee.engine.output import templates
from pytracee.engine.output.templates import (
    BUILTIN_TEMPLATES,
    FindingTemplate,
    RenderLimits,
    TemplateError,
)
from pytracee.engine.testing import make_event

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MAX_OUTPUT = RenderLimits().max_output
FAST = RenderLimits(max_seconds=0.3)


def finding(data: Any = None, **event: Any) -> Finding:
    raw = {"eventName": "ptrace", "processName": "strace", "hostName": "box", "returnValue": 0, **event}
    return Finding(
        data if data is not None else {"path": "/etc/shadow"}, Event(raw), SignatureMetadata(id="X-1", name="x")
    )


def render(source: str, data: Any = None, limits: RenderLimits = FAST) -> str:
    return FindingTemplate("t.j2", source, limits).render(finding(data))


# --- the sandbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
        "{{ namespace.__init__.__globals__['__builtins__']['__import__']('os').system('touch MARKER') }}",
        "{{ toJson.__globals__['orjson'] }}",
        "{{ finding.event.raw.__class__ }}",
        "{{ Data.update({'path': 'forged'}) }}{{ Data.path }}",
        "{{ finding.event.raw.clear() }}",
        "{% include '/etc/passwd' %}",
        "{% import 'os' as os %}",
        "{{ lipsum(10**6) }}",
    ],
)
def test_templates_cannot_reach_python(escape: str, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    source = escape.replace("MARKER", str(marker))
    f = finding()
    with pytest.raises(TemplateError, match=r"template t\.j2:1: "):
        FindingTemplate("t.j2", source).render(f)
    assert not marker.exists()
    assert f.data == {"path": "/etc/shadow"} and f.event.raw["processName"] == "strace"  # nothing changed


# --- bounds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "bound"),
    [
        ("{% for i in range(10**9) %}{% endfor %}", "range of 1000000000 items is over 100000"),
        ("{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}", "took over 0.3 s"),
        ("{% for c in Data.path * 50000 %}{% for d in Data.path * 50000 %}{% endfor %}{% endfor %}", "took over 0.3 s"),
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
            "took over 0.3 s",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", f"output over {MAX_OUTPUT} characters"),
        ("{{ 'x' * 10**9 }}", "a repetition would exceed"),
        ("{{ [Data] * 10**9 }}", "a repetition would exceed"),
        ("{{ 7 ** 1000000000 }}", "a power over 65536 bits"),
        ("{{ 'x'|center(10**9) }}", "center would exceed"),
        ("{{ 'x'.rjust(10**9) }}", "str.rjust would exceed"),
        ("{{ ('x' * 100000)|replace('', 'y' * 1000) }}", "a replace would exceed"),
        ("{{ range(100000)|join('y' * 100000) }}", "a join would exceed"),
        ("{{ 'y'.join(range(100000)|map('string')|map('center', 1000)) }}", "a join would exceed"),
        ("{{ ('x\n' * 100000)|indent(1000) }}", "indent would exceed"),
        ("{{ '%0999999999d' % 1 }}", "a %-format width would exceed"),
        ("{{ '%*d'|format(999999999, 1) }}", "a %-format width would exceed"),
        ("{{ '{:>999999999}'.format(1) }}", "format width 999999999 would exceed"),
        ("{{ '{0:{1}}'.format(1, 999999999) }}", "format width 999999999 would exceed"),
        ("{{ 'ab'.translate({97: 'z' * 1000000}) * 1 }}", "a translate would exceed"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "namespace value 's' would exceed",
        ),
        (
            "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('x', 40) }}",
            "an argument would exceed",
        ),
        ("{{ [[1] * 1000] * 1000|sum(start=[]) }}", "sum(start=...) must be a number"),
        ("{{ [1]|batch(10**9, 0)|list }}", "batch(1000000000) is over 100000"),
    ],
)
def test_rendering_is_bounded(source: str, bound: str) -> None:
    # Only the cases that test the deadline run with the short one: the others must be stopped by
    # their own bound, however slowly a busy machine renders.
    limits = FAST if bound.startswith("took over") else RenderLimits(max_seconds=30)
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(TemplateError, match=rf"^template t\.j2(:\d+)?: rendering stopped: .*{re.escape(bound)}"):
            render(source, limits=limits)
        took = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert took < 3, f"{took:.1f} s"
    assert peak < 64 << 20, f"peak {peak >> 20} MiB"


def test_loading_a_template_runs_nothing() -> None:
    start = time.monotonic()
    template = FindingTemplate("t.j2", "{{ 'x'|center(999999999) }}")  # Jinja folds constant filters at compile time
    assert time.monotonic() - start < 0.5
    with pytest.raises(TemplateError, match="center would exceed"):
        template.render(finding())


def test_the_failing_line_is_named() -> None:
    with pytest.raises(TemplateError, match=r"^template t\.j2:3: rendering stopped: a repetition"):
        render("{{ SigMetadata.ID }}\n{{ Data.path }}\n{{ 'x' * 10**9 }}\n")


def test_within_the_bounds_everything_works() -> None:
    source = (
        "{{ SigMetadata.ID }} {{ Data.path|upper }} {% for k, v in Data.items() %}{{ k }}={{ v }}{% endfor %} "
        "{% for i in range(3) %}{{ loop.index }}/{{ loop.length }},{% endfor %} {{ range(3)|list }} "
        "{{ '%5s|%-3d|' % ('a', 7) }}{{ '{:>4}|{}'.format('b', Data.path|length) }} {{ 'ab' * 3 }} {{ 2 ** 10 }} "
        "{% set ns = namespace(total=0) %}{% for i in range(5) %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }} "
        "{{ Data|toJson }} {{ toPrettyJson(Data)|length }} {{ Data|go }} {{ date('2006-01-02', 1700000000 * 10**9) }} "
        "{{ dateInZone('15:04 MST', 1700000000 * 10**9, 'Europe/Paris') }} {{ Context.ProcessName }} {{ finding.event.origin }}"
    )
    assert render(source) == (
        "X-1 /ETC/SHADOW path=/etc/shadow 1/3,2/3,3/3, [0, 1, 2]     a|7  |   b|11 ababab 1024 10 "
        '{"path":"/etc/shadow"} 27 map[path:/etc/shadow] 2023-11-14 23:13 CET strace host'
    )


def test_a_template_over_a_bound_fails_its_finding_not_the_run(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(make_event("ptrace", {"request": 0, "pid": 0, "addr": 0, "data": 0}).raw) + "\n")
    endless = tmp_path / "endless.j2"
    endless.write_text(
        "{{ SigMetadata.ID }}\n{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}\n"
    )
    start = time.monotonic()
    result = tracee_rules("--input", str(events), "--output-template", str(endless))
    assert time.monotonic() - start < 10
    assert (
        f"finding of TRC-102 not printed: template {endless}:2: rendering stopped: rendering took over 1 s"
        in result.stderr
    )
    assert "findings not delivered: 1" in result.stderr and "1 events read" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.returncode == 1


def test_a_template_that_keeps_timing_out_is_disabled(tmp_path: Path) -> None:
    """Each time-out costs a second of detection; after three the template is no longer run."""
    ptrace = json.dumps(make_event("ptrace", {"request": 0, "pid": 0, "addr": 0, "data": 0}).raw)
    events = tmp_path / "events.jsonl"
    events.write_text((ptrace + "\n") * 20)
    endless = tmp_path / "endless.j2"
    endless.write_text("{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}\n")
    start = time.monotonic()
    result = tracee_rules("--input", str(events), "--output-template", str(endless))
    took = time.monotonic() - start
    assert took < 10, f"{took:.1f} s for 20 findings"
    assert "rendering took over 1 s (3 times): the template is disabled for this run" in result.stderr
    assert (
        f"the last: finding of TRC-102 not printed: template {endless} is disabled: 3 renders took over 1 s"
        in result.stderr
    )
    assert "20 events read" in result.stderr and "findings not delivered: 20" in result.stderr
    assert result.returncode == 1


# --- built-in templates: unchanged, and safe with any finding ------------------------------------------


def unsandboxed(name: str, f: Finding) -> str:
    """A built-in template rendered as before the sandbox: plain Jinja2, same names and helpers."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)  # noqa: S701 - text output
    env.globals.update(
        now=templates._now,
        dateInZone=templates._date_in_zone,
        date=templates._date,
        toJson=templates.to_json,
        toPrettyJson=templates.to_pretty_json,
    )
    env.filters.update(
        toJson=templates.to_json,
        toPrettyJson=templates.to_pretty_json,
        go=templates.go_format,
        csvField=templates.csv_field,
    )
    source = (Path(templates.__file__).parent / "templates" / f"{name}.j2").read_text()
    payload = templates.GoView(f.event.to_dict(), templates.GO_FIELD_NAMES)
    return env.from_string(source).render(
        finding=f,
        Data=templates.GoMap(f.data) if f.data is not None else templates.NIL_MAP,
        Event={"Payload": payload},
        Context=payload,
        SigMetadata=templates.GoView(f.sig_metadata.to_dict()),
    )


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | printable,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(printable, inner, max_size=4),
    max_leaves=12,
)


@given(data=st.dictionaries(printable, json_values, max_size=5), process=printable, host=printable)
def test_builtin_templates_render_as_before(data: dict[str, Any], process: str, host: str) -> None:
    f = finding(data, processName=process, hostName=host)
    for name in BUILTIN_TEMPLATES:
        assert TIME.sub("T", FindingTemplate.load(name).render(f)) == TIME.sub("T", unsandboxed(name, f)), name


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


hostile_text = st.one_of(
    st.text(),
    st.text(st.characters(max_codepoint=0x9F), max_size=50),  # C0, DEL, C1 controls
    st.sampled_from(
        [
            "\ud800",
            "a\udfffb",
            "\udc80\udcff",
            "\u202e\u2028\u2066",
            "\x1b[2J\x1b]0;x\x07",
            '"},{"x":"',
            "</a><b/>",
            ",\n*** Detection ***\n",
        ]
    ),
    st.integers(0, 3 * MAX_OUTPUT).map(lambda n: "x" * n),
)
hostile_keys = st.one_of(
    hostile_text,
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
)
hostile_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | hostile_text
    | st.binary(max_size=20)
    | st.integers(1, 3000).map(deep),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_keys, inner, max_size=3) | st.tuples(inner),
    max_leaves=8,
)


@given(
    data=st.one_of(st.none(), st.dictionaries(hostile_keys, hostile_values, max_size=4)),
    fields=st.dictionaries(
        st.sampled_from(["processName", "hostName", "returnValue", "eventId", "args", "container", "timestamp"]),
        hostile_values,
        max_size=4,
    ),
    sig_name=hostile_text,
)
def test_hostile_findings_through_every_builtin_template(data: Any, fields: dict[str, Any], sig_name: str) -> None:
    f = Finding(data, Event({"eventName": "ptrace", **fields}), SignatureMetadata(id="X-1", name=sig_name))
    for name in BUILTIN_TEMPLATES:
        try:
            text = FindingTemplate.load(name).render(f)
        except TemplateError as exc:
            message = str(exc)
            assert message.startswith(f"template {name}") and len(message) < 400
            assert not re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", message)  # safe for a log line
            continue
        assert len(text) <= MAX_OUTPUT
        if name == "rawjson":
            assert set(orjson.loads(text)) == {"Data", "Context", "SigMetadata"}  # one JSON object, nothing injected
