"""Finding templates against tracee-rules' output goldens; writing findings to files and stdout."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, tracee_rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytracee.engine import Event, Finding, SignatureMetadata
from pytracee.engine.output import templates
from pytracee.engine.output.printer import OutputFile
from pytracee.engine.output.templates import FindingTemplate, TemplateError, go_format
from pytracee.engine.testing import make_event

GOLDENS = json.loads((FIXTURES / "tracee_rules_output_goldens.json").read_text())
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def golden_finding() -> Finding:
    source = GOLDENS["finding_input"]
    event = Event({"processName": "foobar.exe", "hostName": "foobar.local", "eventName": "execve"})
    meta = SignatureMetadata(**{k.lower(): v for k, v in source["SigMetadata"].items()})
    return Finding(dict(source["Data"]), event, meta)


@pytest.mark.parametrize(
    ("template", "golden"),
    [
        ("default", "expected_default_output"),
        ("simple", "expected_simple_tmpl_output"),
        ("falcosidekick", "expected_falcosidekick_tmpl_output"),
    ],
)
def test_builtin_templates_match_tracee_output(template: str, golden: str) -> None:
    rendered = FindingTemplate.load(template).render(golden_finding())
    assert TIME.search(rendered), "the time of output is printed"
    assert TIME.sub("2021-02-23T01:54:57Z", rendered) == GOLDENS[golden]


def rawjson(finding: Finding) -> dict:
    return json.loads(FindingTemplate.load("rawjson").render(finding))


def test_rawjson_matches_tracee_v0_24_1() -> None:
    golden = GOLDENS["rawjson_golden_v0.24.1"]
    event = Event(
        {
            "timestamp": 1321321,
            "processId": 21312,
            "containerId": "abbc123",
            "container": {"id": "abbc123"},
            "eventName": "execve",
            "syscall": "execve",
            "contextFlags": {"containerStarted": True, "isCompat": False},
            "executable": {"path": "/bin/test"},
        }
    )
    meta = golden["SigMetadata"]
    metadata = SignatureMetadata(
        id=meta["ID"],
        event_name=meta["EventName"],
        version=meta["Version"],
        name=meta["Name"],
        description=meta["Description"],
        tags=meta["Tags"],
        properties=meta["Properties"],
    )
    assert rawjson(Finding(golden["Data"], event, metadata)) == golden


def test_rawjson_matches_tracee_v0_8_3_for_v0_8_events() -> None:
    golden = GOLDENS["rawjson_golden_v0.8.3"]
    event = Event(  # flat container fields mark a v0.8 event
        {
            "timestamp": 1321321,
            "processId": 21312,
            "containerId": "abbc123",
            "containerImage": "",
            "eventName": "execve",
            "contextFlags": {"containerStarted": True},
        }
    )
    meta = golden["SigMetadata"]
    metadata = SignatureMetadata(
        id=meta["ID"],
        version=meta["Version"],
        name=meta["Name"],
        description=meta["Description"],
        tags=meta["Tags"],
        properties=meta["Properties"],
    )
    out = rawjson(Finding(golden["Data"], event, metadata))
    assert out["Context"] == golden["Context"] and out["Data"] == golden["Data"]
    assert out["SigMetadata"] == {**golden["SigMetadata"], "EventName": ""}  # v0.12+ added EventName


def test_findings_without_data_print_as_go_nil_maps() -> None:
    finding = Finding(None, Event({"eventName": "ptrace"}), SignatureMetadata(id="X-1", name="x"))
    assert "Data: map[]" in FindingTemplate.load("default").render(finding)
    assert rawjson(finding)["Data"] is None


def test_go_format() -> None:
    assert go_format({"b": [1, True], "a": {"x": None}}) == "map[a:map[x:<nil>] b:[1 true]]"
    # Go's %v of float64 values (fmt.Println output)
    floats = [1000000.0, 123456.0, 1234567.0, 0.0001, 0.00001, 1.5, -2.0, 0.0, 3.14159]
    assert [go_format(f) for f in floats] == [
        "1e+06",
        "123456",
        "1.234567e+06",
        "0.0001",
        "1e-05",
        "1.5",
        "-2",
        "0",
        "3.14159",
    ]


def test_user_templates_see_go_and_json_names(tmp_path) -> None:
    path = tmp_path / "mine.j2"
    path.write_text(
        "{{ SigMetadata.ID }} {{ Context.ProcessName }}={{ Context.processName }} "
        "{{ Data.path }} {{ finding.event.origin }} {{ Event.Payload.ContextFlags.ContainerStarted }} "
        "{{ date('2006-01-02', Event.Payload.Timestamp) }}"
    )
    finding = Finding(
        {"path": "/etc/shadow"},
        Event({"eventName": "x", "processName": "cat", "timestamp": 1700000000 * 10**9}),
        SignatureMetadata(id="X-1", name="x"),
    )
    assert FindingTemplate.load(str(path)).render(finding) == "X-1 cat=cat /etc/shadow host False 2023-11-14"


def test_template_errors_name_the_template_and_line(tmp_path) -> None:
    broken = tmp_path / "broken.j2"
    broken.write_text("line one\n{{ SigMetadata.ID \n")
    with pytest.raises(TemplateError, match=rf"template {broken}:2: "):
        FindingTemplate.load(str(broken))
    with pytest.raises(TemplateError, match="neither a file nor a built-in"):
        FindingTemplate.load("no-such-template")
    typo = tmp_path / "typo.j2"
    typo.write_text("{{ SigMetadata.Nmae }}")
    with pytest.raises(TemplateError, match="Nmae"):
        FindingTemplate.load(str(typo)).render(golden_finding())


# --- writing findings: a device that fails is counted, not a traceback ----------------------------------


def findings_input(tmp_path: Path) -> Path:
    """Two events raising TRC-102 and TRC-107."""
    events = [
        make_event("ptrace", {"request": 0, "pid": 0, "addr": 0, "data": 0}, processName="strace"),
        make_event("security_file_open", {"pathname": "/etc/ld.so.preload", "flags": "O_WRONLY|O_CREAT"}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e.raw) + "\n" for e in events))
    return path


def assert_failed_cleanly(returncode: int, stderr: str, where: str) -> None:
    assert returncode == 1, stderr
    assert f"finding of TRC-102 not written to {where}: No space left on device" in stderr
    assert "2 events read" in stderr and "findings not delivered: 2" in stderr  # the summary is printed
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_output_file_is_counted_not_a_traceback(tmp_path: Path) -> None:
    result = tracee_rules("--input", str(findings_input(tmp_path)), "--output", "/dev/full")
    assert_failed_cleanly(result.returncode, result.stderr, "/dev/full")
    assert result.stderr.count("No space left on device") == 2  # the first finding, then one line for the rest


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_counted_not_a_traceback(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "pytracee.engine.cli.tracee_rules", "--input", str(findings_input(tmp_path))],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert_failed_cleanly(result.returncode, result.stderr, "stdout")


def test_output_file_writes_each_finding_whole(tmp_path: Path) -> None:
    out = OutputFile(str(tmp_path / "findings.txt"))
    out.write("caf\u00e9 \ud800\n")  # a lone surrogate cannot be UTF-8: it is written as an escape
    out.close()
    out.close()  # twice is harmless
    assert (tmp_path / "findings.txt").read_bytes() == "caf\u00e9 \\ud800\n".encode()
    with pytest.raises(ValueError, match="is closed"):
        out.write("late\n")


def test_falcosidekick_output_stays_one_json_object_whatever_the_event_data() -> None:
    """Quotes, backslashes and control characters from the traced process are escaped, so
    they cannot close the JSON string and add fields of their own."""
    hostile = 'x","priority":"Emergency","rule":"forged\\\n\x1b[2J'
    event = Event({"processName": "sh", "hostName": "h", "eventName": "execve", "returnValue": 0})
    meta = SignatureMetadata(id="T-1", name="A rule", event_name="execve", version="1", description="")
    rendered = FindingTemplate.load("falcosidekick").render(Finding({"path": hostile}, event, meta))
    parsed = json.loads(rendered)
    assert sorted(parsed) == ["output", "output_fields", "rule", "time"]
    assert parsed["rule"] == "A rule"
    assert parsed["output"].startswith('Rule "A rule" detection:\n map[path:x","priority":"Emergency"')
    assert parsed["output_fields"] == {"value": 0}


def test_csv_and_xml_keep_hostile_process_and_host_names_inside_their_field() -> None:
    """A comm or a (container's) host name with separators or markup stays one CSV field and
    one XML text node."""
    import csv
    import io
    import xml.etree.ElementTree as ET

    event = Event({"processName": 'a,"b\n', "hostName": "h</hostname><x>,", "eventName": "execve"})
    meta = SignatureMetadata(id="T-1", name="A rule", event_name="execve", version="1", description="")
    finding = Finding({}, event, meta)
    (row,) = list(csv.reader(io.StringIO(FindingTemplate.load("csv").render(finding))))
    assert row[1:] == ['a,"b\n', "h</hostname><x>,"]
    root = ET.fromstring(FindingTemplate.load("xml").render(finding).split("?>", 1)[1])  # noqa: S314 - our own template's output
    assert root.findtext("processname") == 'a,"b\n'
    assert root.findtext("hostname") == "h</hostname><x>,"


# --- the default template without Jinja2 ---------------------------------------------------------

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_PROCESS = st.fixed_dictionaries({}, optional={"comm": _VALUES, "pid": _VALUES, "nsPid": st.integers(0, 9)})
_ANCESTRY = st.one_of(st.lists(_PROCESS, max_size=3), st.lists(_VALUES, max_size=2), _VALUES)


@st.composite
def _findings(draw: st.DrawFn) -> Finding:
    raw: dict = {"eventName": draw(st.sampled_from(["openat", "execve"]))}
    for key in ("processName", "hostName", "ProcessName", "hostname"):
        if draw(st.booleans()):
            raw[key] = draw(_VALUES)
    if draw(st.booleans()):
        raw[draw(st.sampled_from(["processAncestry", "ProcessAncestry"]))] = draw(_ANCESTRY)
    data = draw(st.one_of(st.none(), st.dictionaries(st.text(max_size=6), _VALUES, max_size=4), _VALUES))
    meta = SignatureMetadata(id=draw(st.text(max_size=6)), name=draw(st.text(max_size=6)))
    return Finding(data, Event(raw), meta)


def _by_jinja(finding: Finding) -> str | None:
    source = (Path(templates.__file__).parent / "templates" / "default.j2").read_text()
    try:
        return FindingTemplate("default", source).render(finding)  # no plain path: the template itself
    except TemplateError:
        return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_findings())
def test_the_default_text_without_jinja2_is_the_templates_text(finding: Finding) -> None:
    plain = templates.default_text(finding)
    if plain is not None:
        expected = _by_jinja(finding)
        assert expected is not None, "the template fails where the plain text does not"
        assert TIME.sub("T", plain) == TIME.sub("T", expected)


def test_the_default_text_is_built_without_jinja2_for_findings_as_signatures_make_them() -> None:
    event = make_event("openat", processName="cat", hostName="box", args={"pathname": "/etc/shadow"})
    event.raw["processAncestry"] = [{"pid": 7, "comm": "bash"}, {"pid": 1, "comm": "systemd"}]
    finding = Finding(
        {"path": "/etc/shadow", "flags": [1, 2.5, None, True]}, event, SignatureMetadata(id="X", name="n")
    )
    plain = templates.default_text(finding)
    assert plain is not None
    assert plain.endswith("Hostname: box\nAncestry: bash[7] < systemd[1]\n")
    assert "Data: map[flags:[1 2.5 <nil> true] path:/etc/shadow]\n" in plain
    assert TIME.sub("T", plain) == TIME.sub("T", _by_jinja(finding) or "")
