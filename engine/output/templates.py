"""Rendering findings with templates (Jinja2), using Tracee's template vocabulary.

Tracee's Go templates see a ``Finding`` as ``.Data``, ``.Event.Payload.<Go field>``
(``.Context.<Go field>`` in v0.24) and ``.SigMetadata.<Go field>``, with Sprig's
``toJson``, ``now`` and ``dateInZone``. Our templates are Jinja2 and see the same
names, so porting one is mostly a matter of syntax::

    Go:     {{ .SigMetadata.ID }} {{ dateInZone "2006-01-02T15:04:05Z" (now) "UTC" }}
    Jinja2: {{ SigMetadata.ID }} {{ dateInZone("2006-01-02T15:04:05Z", now(), "UTC") }}

``{{ Data }}`` prints Go's map syntax (``map[key:value]``) as Tracee's default
template does; ``{{ toJson(Data) }}`` prints JSON. Event fields answer to both
their Go names (``ProcessName``) and their JSON keys (``processName``). The
finding itself is ``finding`` (a :class:`~pytracee.engine.findings.Finding`).

Built-in templates are chosen by name (:data:`BUILTIN_TEMPLATES`), anything else
is a path to a template file. The built-in ``default`` one is rendered without Jinja2
where its text is plain (:func:`default_text`); Jinja2 is imported when a template is
first compiled, so a run that prints no template text does not load it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import functools
import math
import re
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from ..findings import Finding
from ..schema import GO_FIELD_NAMES
from .limits import DEFAULT_LIMITS, RenderLimitError, RenderLimits, RenderTimeoutError, render_budget

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "BUILTIN_TEMPLATES",
    "FindingTemplate",
    "RenderLimits",
    "TemplateDisabledError",
    "TemplateError",
    "default_text",
    "go_format",
]

#: Built-in template names (files ``<name>.j2`` in this package).
BUILTIN_TEMPLATES: Final = ("default", "rawjson", "simple", "csv", "xml", "falcosidekick", "sprig")


class TemplateError(Exception):
    """A template cannot be loaded or rendered; the message names the template and line."""


class TemplateDisabledError(TemplateError):
    """This render timed out once too often: the template is off for the rest of the run."""


# --- Go-compatible values ------------------------------------------------------------


def go_format(value: Any) -> str:
    """Format a value as Go's ``fmt`` ``%v`` prints decoded JSON: ``map[k:v]`` with sorted
    keys, ``[a b]``, ``<nil>``, and floats in ``%g`` style (``1e+06``)."""
    if isinstance(value, GoView):
        value = value.raw
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_format(item) for item in value) + "]"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    # Go's %v of a float64 is strconv's shortest 'g': the shortest round-trip digits, in
    # exponent form when the decimal exponent is < -4 or >= 6 (so 1e+06, but 123456).
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    if not any(digits):
        return "-0" if sign else "0"
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # position of the decimal point in the digit string
    power = point - 1
    minus = "-" if sign else ""
    if power < -4 or power >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return minus + text + "0" * (point - len(text))
    return f"{minus}{text[:point]}.{text[point:]}"


class GoView:
    """Read-only view of a JSON object answering to Go field names and JSON keys."""

    __slots__ = ("_aliases", "raw")

    def __init__(self, raw: Any, aliases: Mapping[str, str] | None = None) -> None:
        self.raw = raw
        self._aliases = aliases or {}

    def __getattr__(self, name: str) -> Any:
        raw = self.raw
        if isinstance(raw, Mapping):
            try:
                return _view(go_field(raw, name, self._aliases))
            except KeyError:
                pass
        raise AttributeError(name)

    def __getitem__(self, key: Any) -> Any:
        return _view(self.raw[key])

    def __iter__(self) -> Any:
        return iter(_view(item) for item in self.raw) if isinstance(self.raw, list) else iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __str__(self) -> str:
        return go_format(self.raw)


def go_field(raw: Mapping[str, Any], name: str, aliases: Mapping[str, str]) -> Any:
    """The value a template's ``.Name`` reads of a JSON object: under the Go name's alias, the
    name itself, with a lower-case first letter, or all lower-case; KeyError when none is there."""
    for key in (aliases.get(name), name, name[:1].lower() + name[1:], name.lower()):
        if key is not None and key in raw:
            return raw[key]
    raise KeyError(name)


class GoMap(dict):  # type: ignore[type-arg]
    """``Finding.Data`` for templates: a dict that prints like a Go map."""

    def __str__(self) -> str:
        return go_format(self)


class _NilMap(GoMap):
    """Go's nil map: prints ``map[]``, serializes as ``null`` (a finding without data)."""


NIL_MAP: Final = _NilMap()


def _view(value: Any) -> Any:
    return GoView(value) if isinstance(value, (Mapping, list)) else value


# --- template functions (Sprig names) -----------------------------------------------------------

_GO_LAYOUT: Final = [
    ("January", "%B"),
    ("Monday", "%A"),
    ("2006", "%Y"),
    ("-0700", "%z"),
    ("Z07:00", "%:z"),
    ("MST", "%Z"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("PM", "%p"),
    (".000000000", ".%f000"),
    (".000000", ".%f"),
    (".000", ".%3f"),
]
_GO_LAYOUT_RE: Final = re.compile("|".join(re.escape(token) for token, _ in _GO_LAYOUT))


def _go_strftime(layout: str, moment: _dt.datetime) -> str:
    table = dict(_GO_LAYOUT)

    def convert(match: re.Match[str]) -> str:
        spec = table[match.group(0)]
        if spec == "%:z":
            offset = moment.strftime("%z")
            return "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
        if spec == ".%3f":
            return f".{moment.microsecond // 1000:03d}"
        return moment.strftime(spec)

    return _GO_LAYOUT_RE.sub(convert, layout)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _date_in_zone(layout: str, moment: Any, zone: str) -> str:
    try:
        tz = _dt.UTC if zone.upper() == "UTC" else ZoneInfo(zone)
    except ZoneInfoNotFoundError:
        raise TemplateError(f"dateInZone: unknown time zone {zone!r}") from None
    if isinstance(moment, (int, float)):  # nanoseconds since the epoch, as in event timestamps
        moment = _dt.datetime.fromtimestamp(moment / 1e9, _dt.UTC)
    return _go_strftime(layout, moment.astimezone(tz))


def _date(layout: str, moment: Any) -> str:
    return _date_in_zone(layout, moment, "UTC")


def _json_default(value: Any) -> Any:
    if isinstance(value, GoView):
        return value.raw
    if isinstance(value, (bytes, bytearray, memoryview)):  # as Go's encoding/json writes []byte
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    """A copy of ``value`` with lone surrogates (which JSON cannot carry) replaced by U+FFFD."""
    if isinstance(value, GoView):
        value = value.raw
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_surrogates(item) for item in value]
    return value


def _dumps(value: Any, option: int) -> str:
    if value is NIL_MAP:
        return "null"
    option |= orjson.OPT_NON_STR_KEYS
    try:
        return orjson.dumps(value, default=_json_default, option=option).decode()
    except orjson.JSONEncodeError as exc:
        if "surrogates" not in str(exc):
            raise
        return orjson.dumps(_without_surrogates(value), default=_json_default, option=option).decode()


def to_json(value: Any) -> str:
    """Sprig's ``toJson``: compact JSON (lone surrogates become U+FFFD)."""
    return _dumps(value, 0)


def to_pretty_json(value: Any) -> str:
    """Sprig's ``toPrettyJson``: JSON indented by two spaces (Go uses the same)."""
    return _dumps(value, orjson.OPT_INDENT_2)


def csv_field(value: Any) -> str:
    """``value`` as one CSV field (RFC 4180): quoted, quotes doubled, when it holds a comma,
    a quote or a line break, so data from the traced process cannot add columns or rows."""
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


@functools.cache
def _environment() -> jinja2.Environment:
    """The sandboxed Jinja2 environment of every template (Jinja2 is imported here, once)."""
    import jinja2

    from .sandbox import bounded_environment

    return bounded_environment(
        globals={
            "now": _now,
            "dateInZone": _date_in_zone,
            "date": _date,
            "toJson": to_json,
            "toPrettyJson": to_pretty_json,
        },
        filters={"toJson": to_json, "toPrettyJson": to_pretty_json, "go": go_format, "csvField": csv_field},
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


# --- the built-in default template without Jinja2 ------------------------------------------------


def _printed(value: Any) -> str:
    # what {{ value }} prints of a value read through a GoView
    return go_format(value) if isinstance(value, (Mapping, list)) else str(value)


def default_text(finding: Finding, limits: RenderLimits = DEFAULT_LIMITS) -> str | None:
    """The text of the built-in ``default`` template for ``finding``, built without Jinja2; None
    when the template would do anything but print plain values (a field it reads is missing,
    the ancestry is not a list of processes, the text is over ``limits.max_output``, ...): the
    template itself then renders it (or says why it cannot). tests/test_output.py holds the two
    to the same text."""
    try:
        data = finding.data
        if data is not None and type(data) is not dict:
            return None
        payload = finding.event.to_dict()
        meta = finding.sig_metadata.to_dict()
        lines = [
            "",
            "*** Detection ***",
            "Time: " + _date_in_zone("2006-01-02T15:04:05Z", _now(), "UTC"),
            "Signature ID: " + _printed(go_field(meta, "ID", {})),
            "Signature: " + _printed(go_field(meta, "Name", {})),
            "Data: " + go_format(data if data is not None else {}),
            "Command: " + _printed(go_field(payload, "ProcessName", GO_FIELD_NAMES)),
            "Hostname: " + _printed(go_field(payload, "HostName", GO_FIELD_NAMES)),
        ]
        try:
            ancestry = go_field(payload, "ProcessAncestry", GO_FIELD_NAMES)
        except KeyError:
            ancestry = None  # {% if ... is defined %}: no line
        if ancestry:
            if type(ancestry) is not list or not all(isinstance(item, Mapping) for item in ancestry):
                return None
            lines.append(
                "Ancestry: "
                + " < ".join(
                    f"{_printed(go_field(item, 'comm', {}))}[{_printed(go_field(item, 'pid', {}))}]"
                    for item in ancestry
                )
            )
        text = "\n".join(lines) + "\n"
    except Exception:  # noqa: BLE001 - whatever it is, the template says it the way it does
        return None
    return text if len(text) <= limits.max_output else None


#: Characters a message on stderr must not carry raw (they come from event data).
_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MAX_MESSAGE: Final = 300


def _clean(message: str) -> str:
    """A message safe for a log line: unprintable characters escaped, at most 300 characters."""
    message = _UNPRINTABLE.sub(
        lambda m: m.group(0).encode("unicode_escape", "backslashreplace").decode("ascii"), message
    )
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _template_line(exc: BaseException) -> int | None:
    """The template line being rendered when ``exc`` was raised (Jinja rewrites tracebacks to it)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class FindingTemplate:
    """A loaded template: ``FindingTemplate.load("rawjson")`` or ``.load("/path/my.j2")``.

    Templates run in a sandbox (:mod:`pytracee.engine.output.sandbox`): no access to
    Python internals, and each render is bounded by ``limits`` (1 MiB of text, 1 s,
    ``range()`` of 100000 items by default).
    """

    def __init__(
        self,
        name: str,
        source: str,
        limits: RenderLimits = DEFAULT_LIMITS,
        *,
        plain: Callable[[Finding, RenderLimits], str | None] | None = None,
    ) -> None:
        self.name = name
        self.limits = limits
        #: Renders that went over the time limit; at ``limits.max_timeouts`` the template is off.
        self.timeouts = 0
        self._source = source
        #: The same text without Jinja2, where it can (``None``: the template renders it).
        self._plain = plain
        self._template: jinja2.Template | None = None
        if plain is None:
            self._template = self._compiled()

    def _compiled(self) -> jinja2.Template:
        if self._template is not None:
            return self._template
        import jinja2

        try:
            with render_budget(self.limits):
                self._template = _environment().from_string(self._source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {self.name}:{exc.lineno}: {_clean(exc.message or str(exc))}") from None
        except Exception as exc:  # noqa: BLE001 - e.g. a recursion too deep for the parser
            raise TemplateError(f"template {self.name}: {_clean(f'{type(exc).__name__}: {exc}')}") from None
        return self._template

    @classmethod
    def load(cls, name_or_path: str, limits: RenderLimits = DEFAULT_LIMITS) -> FindingTemplate:
        """A built-in template by name, or a template file by path."""
        if name_or_path in BUILTIN_TEMPLATES:
            # beside this module, as package data (importlib.resources would cost every start-up 3 ms)
            source = Path(__file__).with_name("templates").joinpath(f"{name_or_path}.j2").read_text("utf-8")
            return cls(name_or_path, source, limits, plain=default_text if name_or_path == "default" else None)
        path = Path(name_or_path)
        try:
            return cls(str(path), path.read_text("utf-8"), limits)
        except FileNotFoundError:
            raise TemplateError(
                f"template {name_or_path!r} is neither a file nor a built-in ({', '.join(BUILTIN_TEMPLATES)})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read template {name_or_path}: {exc}") from None

    def render(self, finding: Finding) -> str:
        """The text for one finding.

        :raises TemplateError: the template failed, or went over a bound (the message
            names the template, the line when known, and the bound).
        """
        max_output = self.limits.max_output
        if self.timeouts >= self.limits.max_timeouts:
            raise TemplateError(
                f"template {self.name} is disabled: {self.timeouts} renders took over {self.limits.max_seconds:g} s"
            )
        if self._plain is not None:
            text = self._plain(finding, self.limits)
            if text is not None:
                return text
        template = self._compiled()
        import jinja2

        try:
            with render_budget(self.limits):
                payload = GoView(finding.event.to_dict(), GO_FIELD_NAMES)
                context = {
                    "finding": finding,
                    "Data": GoMap(finding.data) if finding.data is not None else NIL_MAP,
                    "Event": {"Payload": payload},
                    "Context": payload,
                    "SigMetadata": GoView(finding.sig_metadata.to_dict()),
                }
                chunks = cast("Generator[str, None, None]", template.generate(context))  # a generator: closed below
                try:
                    parts: list[str] = []
                    size = 0
                    for chunk in chunks:
                        size += len(chunk)
                        if size > max_output:
                            raise RenderLimitError(f"output over {max_output} characters")
                        parts.append(chunk)
                finally:
                    chunks.close()
            return "".join(parts)
        except TemplateError as exc:
            raise TemplateError(f"{self._where(exc)}: {_clean(str(exc))}") from None
        except RenderLimitError as exc:
            message = f"{self._where(exc)}: rendering stopped: {exc}"
            if isinstance(exc, RenderTimeoutError):
                self.timeouts += 1
                if self.timeouts >= self.limits.max_timeouts:
                    message += f" ({self.timeouts} times): the template is disabled for this run"
                    raise TemplateDisabledError(message) from None
            raise TemplateError(message) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{self._where(exc)}: {_clean(str(exc))}") from None
        except Exception as exc:  # noqa: BLE001 - anything a value or a helper raised: this finding fails, not the run
            raise TemplateError(f"{self._where(exc)}: {_clean(f'{type(exc).__name__}: {exc}')}") from None

    def _where(self, exc: BaseException) -> str:
        line = _template_line(exc)
        return f"template {self.name}:{line}" if line is not None else f"template {self.name}"
