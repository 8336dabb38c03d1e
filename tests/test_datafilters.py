"""In-kernel data filters (bpf/datafilter.h, collector/datafilters.py).

Which events get a kernel filter and why not; the keys written for each kind of pattern;
and, live, that the kernel drops exactly the opens no pattern can match (never one that a
pattern matches, which the engine's own filters would then miss), counting what it drops.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from collector_support import Tracee, args, collect, require_bpf, run_child, start_collector
from pytracee.collector import datafilters, wire
from pytracee.collector.collector import KernelFilters
from pytracee.collector.datafilters import DF_ON, DF_PREFIX, DF_SUFFIX, plan
from pytracee.engine.selectors import ArgPattern, select
from pytracee.engine.session import Session, SessionConfig

OPEN = "security_file_open"


def test_the_default_signatures_filter_file_opens_in_the_kernel() -> None:
    session = Session(SessionConfig())
    session.load()
    assert session.engine is not None
    consumers = [(s.metadata.id, sel) for s in session.engine.signatures for sel in s.selectors]
    chosen = plan(consumers, printed=set())
    assert set(chosen.filters) == {OPEN}
    pattern = chosen.filters[OPEN]
    # a few of the signatures' patterns, of each kind, are in the union
    assert "/etc/sudoers" in pattern.exact and "/etc/kubernetes/pki/" in pattern.prefixes
    assert "/etc/ld.so.preload" in pattern.suffixes and "/ld" in pattern.contains
    assert not pattern.matches("/etc/hostname") and pattern.matches("/usr/lib64/ld-linux-x86-64.so.2")


def test_an_event_taken_whole_is_not_filtered_in_the_kernel() -> None:
    filtered = ("TRC-A", select(OPEN, pathname="/etc/shadow"))
    assert plan([filtered], printed={OPEN}).not_filtered == {OPEN: "printed: every event is wanted"}
    whole = ("TRC-B", select(OPEN))
    assert plan([filtered, whole], printed=()).not_filtered == {OPEN: "TRC-B takes it without a pathname filter"}
    other_arg = ("TRC-C", select(OPEN, flags="1"))
    assert "TRC-C" in plan([filtered, other_arg], printed=()).not_filtered[OPEN]
    every = ("TRC-D", select())
    assert plan([filtered, every], printed=()).not_filtered == {OPEN: "TRC-D selects every event"}
    assert plan([("TRC-E", select(OPEN, pathname="*"))], printed=()).not_filtered == {
        OPEN: "a pattern matches everything"
    }
    assert "longer than" in plan([("TRC-F", select(OPEN, pathname="/" + "x" * 300))], printed=()).not_filtered[OPEN]
    many = [f"*{i}x*" for i in range(wire.DF_CONTAINS_MAX + 1)]
    assert "substring" in plan([("TRC-G", select(OPEN, pathname=many))], printed=()).not_filtered[OPEN]
    assert plan([("TRC-H", select("openat", pathname="/x"))], printed=()).filters == {}  # not one the kernel tests


def test_more_patterns_than_the_kernel_maps_hold_stay_in_user_space() -> None:
    most = [f"/etc/f{i}" for i in range(datafilters.MAX_MAP_PATTERNS // 2)]
    most += [f"/var/d{i}/*" for i in range(datafilters.MAX_MAP_PATTERNS // 2)]
    assert set(plan([("TRC-A", select(OPEN, pathname=most))], printed=()).filters) == {OPEN}
    too_many = ("TRC-B", select(OPEN, pathname=[*most, "/etc/one-more"]))
    assert plan([too_many], printed=()).not_filtered == {OPEN: "more than 1024 exact and prefix patterns"}
    suffixes = [f"*.s{i}" for i in range(datafilters.MAX_MAP_PATTERNS + 1)]
    assert plan([("TRC-C", select(OPEN, pathname=suffixes))], printed=()).not_filtered == {
        OPEN: "more than 1024 suffix patterns"
    }


def test_filters_of_several_signatures_are_merged() -> None:
    chosen = plan(
        [("TRC-A", select(OPEN, pathname="/etc/shadow")), ("TRC-B", select(OPEN, origin="container", pathname="/x/*"))],
        printed=(),
    )
    assert chosen.filters[OPEN] == ArgPattern(frozenset({"/etc/shadow"}), ("/x/",))
    assert "security_file_open.pathname in the kernel" in chosen.describe()


def test_map_entries_of_each_kind_of_pattern() -> None:
    pattern = ArgPattern.parse(["/etc/shadow", "/etc/cron.d*", "*/mem", "*docker.sock*", "*/ld*"])
    value, prefix_keys, suffix_keys = datafilters.entries(732, pattern)
    # exact: the pattern and its NUL, so that only the whole path matches; prefix: as it is
    assert (32 + 8 * 12, 732, b"/etc/shadow\0") in prefix_keys
    assert (32 + 8 * 11, 732, b"/etc/cron.d") in prefix_keys
    assert suffix_keys == [(32 + 8 * 4, 732, b"mem/")]  # reversed
    flags, count, contains, masks = value
    assert flags == DF_ON | DF_PREFIX | DF_SUFFIX and count == 2
    assert contains[:2] == [int.from_bytes(b"docker.s", "little"), int.from_bytes(b"/ld", "little")]
    assert masks[:2] == [(1 << 64) - 1, (1 << 24) - 1] and contains[2:] == [0] * (wire.DF_CONTAINS_MAX - 2)
    for key in prefix_keys + suffix_keys:  # what the map takes
        wire.MAPS["df_prefix"].key.pack(*key)


def test_the_collector_refuses_filters_the_kernel_cannot_apply(bpf_object: Path) -> None:
    from pytracee.collector.collector import Collector

    with pytest.raises(ValueError, match="openat"):
        Collector(bpf_object, None, ["openat"], data_filters={"openat": ArgPattern.parse("/x")})


# --- live ---------------------------------------------------------------------------------

COMM = "pyt-datafilter"

#: Files the child opens, and whether the kernel must let the open through for the patterns
#: below; the engine's match (ArgPattern.matches) must imply the kernel's.
PATTERNS = ["{d}/exact-file", "{d}/pre/*", "*.suffix", "*needle*", "*/longer-substring-than-8*"]


def _layout(tmp: Path) -> dict[str, bool]:
    long_dir = tmp / ("d" * 200) / ("e" * 100)  # a path longer than the kernel compares
    return {
        f"{tmp}/exact-file": True,
        f"{tmp}/exact-file-not": False,
        f"{tmp}/pre/a": True,
        f"{tmp}/pre-not": False,
        f"{tmp}/x.suffix": True,
        f"{tmp}/x.suffix.not": False,
        f"{tmp}/a-needle-b": True,
        f"{tmp}/needl": False,
        f"{tmp}/the/longer-substring-than-8-bytes": True,
        f"{tmp}/the/longer-substrinG": True,  # a substring is tested on its first 8 bytes: looser
        f"{tmp}/the/longer_substring-than-8": False,
        f"{long_dir}/f.suffix": True,  # suffixes are compared on the path's end
        f"{long_dir}/plain": True,  # too long to scan for substrings: let through
        f"{tmp}/plain": False,
    }


def test_the_kernel_drops_exactly_the_opens_no_pattern_matches(bpf_object: Path, tmp_path: Path) -> None:
    require_bpf()
    tmp = tmp_path.resolve()
    layout = _layout(tmp)
    for path in layout:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("x")
    pattern = ArgPattern.parse([p.format(d=tmp) for p in PATTERNS])
    for path, passes in layout.items():  # the kernel may let through more than the patterns match, not less
        assert passes or not pattern.matches(path), path
    collector = start_collector(bpf_object, [OPEN], filters=KernelFilters(comms={COMM}), data_filters={OPEN: pattern})
    try:
        run_child(f"for p in {sorted(layout)!r}:\n    os.close(os.open(p, os.O_RDONLY))\n", comm=COMM)
        events = collect(collector, timeout=5.0)
        filtered = collector.filtered
    finally:
        collector.stop()
    opened = Counter(args(e)["pathname"] for e in events if e["eventName"] == OPEN)
    wanted = {path for path, passes in layout.items() if passes}
    assert set(opened) & set(layout) == wanted
    # the child's own start-up (its interpreter, libraries) also opened files: those that no
    # pattern matches were dropped too, and counted
    dropped_here = len(layout) - len(wanted)
    assert filtered >= dropped_here
    assert all(opened[path] == 1 for path in wanted)
    assert collector.filtered == filtered  # kept after the stop


SIGNATURE = """
from pytracee.engine import Event, Signature, SignatureMetadata, select


class OpenedHit(Signature):
    metadata = SignatureMetadata(
        id="TEST-DF", version="1", name="hit opened", event_name="hit_opened", description="a file called hit opened"
    )
    selected_events = [select("security_file_open", pathname="*/hit")]

    def on_event(self, event: Event) -> None:
        self.emit(event)
"""


def test_tracee_reports_what_its_kernel_filters_dropped(bpf_object: Path, tmp_path: Path) -> None:
    require_bpf()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hit.py").write_text(SIGNATURE)
    hit = tmp_path / "hit"
    hit.write_text("x")
    tracee = Tracee(
        "--rules-dir", str(rules), "--rules", "TEST-DF", "-s", f"comm={COMM}", "--output-template", "rawjson"
    )
    try:
        run_child(
            f"for i in range(50):\n    os.close(os.open('/etc/hostname', os.O_RDONLY))\n"
            f"os.close(os.open({str(hit)!r}, os.O_RDONLY))\n",
            comm=COMM,
        )
    finally:
        status, findings, err = tracee.stop()
    assert status == 0, err
    # the open of .../hit reached the signature; the 50 of /etc/hostname were dropped in the kernel
    assert [f["Context"]["args"][0]["value"] for f in findings if f["SigMetadata"]["ID"] == "TEST-DF"] == [str(hit)]
    summary = next(line for line in err.splitlines() if "events traced" in line)
    filtered = int(summary.split(" filtered in the kernel")[0].rsplit(" ", 1)[1])
    assert filtered >= 50, summary
