"""A sandboxed Jinja2 environment whose rendering is bounded in time, size and iterations.

Finding templates are files anyone can hand to ``--output-template``, and the values
they print come from traced programs. :func:`bounded_environment` builds an
:class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no ``__class__``, no
``__globals__``, no ``list.append`` or ``dict.update``) with these bounds, all in
:class:`RenderLimits` and enforced while :func:`render_budget` is active:

* **time**: every attribute and item lookup, call, filter, operator and ``for``-loop
  step checks a per-render deadline, so ``{% for i in range(10**5) %}{% for j in
  range(10**5) %}{% endfor %}{% endfor %}`` stops after ``max_seconds``;
* **size**: results of calls, filters and operators, and values stored in a
  ``namespace()``, may not exceed ``max_output`` items or characters; the operations
  that multiply their input (``*``, ``**``, ``%``, ``str.format``, ``center``,
  ``indent``, ``replace``, ``join``, ``wordwrap``, ``translate`` ...) are checked *before*
  they run, so ``'x' * 10**9`` or ``s|replace('', s)`` never allocates;
* **iterations**: ``range()`` is limited to ``max_range`` items (Jinja's ``MAX_RANGE``).

The caller bounds the text produced by the template itself (see
:meth:`pytracee.engine.output.templates.FindingTemplate.render`). A template that goes
over a bound raises :class:`RenderLimitError` (the bounds: :mod:`pytracee.engine.output.limits`).
Filters never run at compile time (Jinja folds constant filter calls otherwise), so loading a
template is bounded too.
``lipsum`` is removed; there is no loader, so ``include``/``import`` fail.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from jinja2 import nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace
from markupsafe import Markup

from .limits import DEFAULT_LIMITS, RenderLimitError, RenderLimits, RenderTimeoutError, render_budget
from .limits import current_limits as _check

__all__ = [
    "DEFAULT_LIMITS",
    "RenderLimitError",
    "RenderLimits",
    "RenderTimeoutError",
    "bounded_environment",
    "render_budget",
]


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)) else 0


def _over(limits: RenderLimits, size: int, what: str) -> None:
    if size > limits.max_output:
        raise RenderLimitError(f"{what} would exceed {limits.max_output} characters or items")


def _check_result(limits: RenderLimits, value: Any, what: str) -> Any:
    _over(limits, _size(value), what)
    return value


# --- prechecks of the operations that multiply their input --------------------------------------

_PRINTF_SPEC: Final = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER: Final = re.compile(r"\d+")


def _check_printf(limits: RenderLimits, fmt: Any, args: Any) -> None:
    if not isinstance(fmt, (str, bytes)):
        return
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    star = False
    for width, precision in _PRINTF_SPEC.findall(text):
        for number in (width, precision):
            if number == "*":
                star = True
            elif number and int(number) > limits.max_output:
                _over(limits, int(number), "a %-format width")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            if isinstance(value, int) and abs(value) > limits.max_output:
                _over(limits, abs(value), "a %-format width")


def _check_format_spec(limits: RenderLimits, spec: str) -> None:
    for number in _NUMBER.findall(spec):
        if len(number) > 12 or int(number) > limits.max_output:
            raise RenderLimitError(f"format width {number[:20]} would exceed {limits.max_output} characters")


def _check_binop(limits: RenderLimits, op: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if op == "*":
        if ints:
            if left.bit_length() + right.bit_length() > limits.max_int_bits:
                raise RenderLimitError(f"a product over {limits.max_int_bits} bits")
        elif isinstance(right, int):
            _over(limits, _size(left) * max(right, 0), "a repetition")
        elif isinstance(left, int):
            _over(limits, _size(right) * max(left, 0), "a repetition")
    elif op == "**" and ints and right > 0 and abs(left) > 1:
        if right > limits.max_int_bits or (abs(left).bit_length() - 1) * right > limits.max_int_bits:
            raise RenderLimitError(f"a power over {limits.max_int_bits} bits")
    elif op == "%":
        _check_printf(limits, left, right)


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes)) else len(str(value))


def _check_replace(limits: RenderLimits, s: Any, old: Any, new: Any, count: Any) -> None:
    if not isinstance(s, (str, bytes)) or not isinstance(old, type(s)) or not isinstance(new, type(s)):
        return
    hits = s.count(old) if old else len(s) + 1  # type: ignore[arg-type]  # old is of s's type
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _over(limits, len(s) + hits * max(len(new) - len(old), 0), "a replace")


def _joined(limits: RenderLimits, separator: Any, items: Any) -> list[Any]:
    """The items of a join as a list, stopping as soon as the joined text would be too long."""
    step = _text_len(separator)
    out: list[Any] = []
    total = -step
    for index, item in enumerate(items):
        if index & 63 == 0:
            _check()  # the deadline
        total += step + _text_len(item)
        _over(limits, total, "a join")
        out.append(item)
    return out


def _check_str_method(
    limits: RenderLimits, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Prechecks of ``str``/``bytes`` methods; returns the (possibly materialized) arguments."""
    owner = method.__self__
    name = method.__name__
    if name in ("center", "ljust", "rjust", "zfill"):
        width = _arg(args, kwargs, 0, "width", 0)
        if isinstance(width, int):
            _over(limits, width, f"str.{name}")
    elif name == "expandtabs":
        size = _arg(args, kwargs, 0, "tabsize", 8)
        if isinstance(size, int):
            _over(
                limits, len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * max(size, 0), "expandtabs"
            )
    elif name == "replace":
        _check_replace(
            limits,
            owner,
            _arg(args, kwargs, 0, "old", ""),
            _arg(args, kwargs, 1, "new", ""),
            _arg(args, kwargs, 2, "count", -1),
        )
    elif name == "join" and args:
        return (_joined(limits, owner, args[0]), *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((_text_len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        _over(limits, len(owner) * longest, "a translate")
    return args


def _precheck_filter(limits: RenderLimits, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Prechecks of Jinja's built-in filters that multiply their input; ``args[0]`` is the value."""
    value = args[0] if args else None
    if name == "center":
        width = _arg(args, kwargs, 1, "width", 80)
        if isinstance(width, int):
            _over(limits, width, "center")
    elif name == "indent":
        width = _arg(args, kwargs, 1, "width", 4)
        lines = str(value).count("\n") + 1
        _over(limits, _text_len(value) + lines * (width if isinstance(width, int) else _text_len(width)), "indent")
    elif name == "replace":
        _check_replace(
            limits,
            str(value),
            _arg(args, kwargs, 1, "old", ""),
            _arg(args, kwargs, 2, "new", ""),
            _arg(args, kwargs, 3, "count", None),
        )
    elif name == "join":
        return (_joined(limits, _arg(args, kwargs, 1, "d", ""), value), *args[1:])
    elif name == "wordwrap":
        width = _arg(args, kwargs, 1, "width", 79)
        wrap = _arg(args, kwargs, 4, "wrapstring", None)
        lines = _text_len(value) // max(width, 1) + str(value).count("\n") + 1 if isinstance(width, int) else 1
        _over(limits, _text_len(value) + lines * (_text_len(wrap) if wrap is not None else 1), "wordwrap")
    elif name == "format":
        _check_printf(limits, value, tuple(args[1:]) or tuple(kwargs.values()))
    elif name in ("batch", "slice"):
        count = _arg(args, kwargs, 1, "linecount" if name == "batch" else "slices", 1)
        if isinstance(count, int) and count > limits.max_range:
            raise RenderLimitError(f"{name}({count}) is over {limits.max_range}")
    elif name == "sum":
        start = _arg(args, kwargs, 2, "start", 0)
        if not isinstance(start, (int, float)):
            raise RenderLimitError("sum(start=...) must be a number")
    return args


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: deadline, prechecks, result size; never folded at compile time."""
    passes = getattr(getattr(func, "jinja_pass_arg", None), "name", None)

    @pass_context
    @functools.wraps(func)
    def guarded(context: Context, *args: Any, **kwargs: Any) -> Any:
        limits = _check()
        args = _precheck_filter(limits, name, args, kwargs)
        if passes == "context":
            result = func(context, *args, **kwargs)
        elif passes == "eval_context":
            result = func(context.eval_ctx, *args, **kwargs)
        elif passes == "environment":
            result = func(context.environment, *args, **kwargs)
        else:
            result = func(*args, **kwargs)
        return _check_result(limits, result, f"filter {name}")

    return guarded


class _BoundedIterable:
    """What a ``for`` loop iterates: the original iterable, checking the deadline as it goes."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        for index, item in enumerate(self._items):
            if index & 63 == 0:
                _check()  # the deadline
            yield item

    def __len__(self) -> int:
        return len(self._items)  # type: ignore[arg-type]  # TypeError for iterators: Jinja's LoopContext copes


_LOOP_FILTER: Final = "_pytracee_bounded_loop"


def _bounded_range(*args: int) -> range:
    limits = _check()
    items = range(*args)
    if len(items) > limits.max_range:
        raise RenderLimitError(f"range of {len(items)} items is over {limits.max_range}")
    return items


class BoundedNamespace(Namespace):
    """``namespace()``: values stored in it are bounded like any other result."""

    def __setitem__(self, name: str, value: Any) -> None:
        _check_result(_check(), value, f"namespace value {name!r}")
        super().__setitem__(name, value)


class _WidthCheck:
    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_format_spec(_check(), format_spec)
        return super().format_field(value, format_spec)  # type: ignore[misc]


class _BoundedFormatter(_WidthCheck, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_WidthCheck, SandboxedEscapeFormatter):
    pass


class BoundedSandboxedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with the deadline and size checks of this module."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno)
        return tree

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits = _check()
        _check_binop(limits, operator, left, right)
        return _check_result(limits, super().call_binop(context, operator, left, right), f"operator {operator}")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        limits = _check()
        for value in (*args, *kwargs.values()):  # e.g. a macro doubling its argument
            _check_result(limits, value, "an argument")
        if isinstance(getattr(obj, "__self__", None), (str, bytes)) and hasattr(obj, "__name__"):
            args = _check_str_method(limits, obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        return _check_result(limits, result, f"call of {getattr(obj, '__name__', type(obj).__name__)}")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None
        owner = value.__self__
        is_format_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter
        if isinstance(owner, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _BoundedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one positional argument")
                kwargs, args = args[0], ()
            result: str = type(owner)(formatter.vformat(owner, args, kwargs))
            return result

        return functools.update_wrapper(wrapper, value)


def bounded_environment(
    globals: Mapping[str, Any] | None = None,
    filters: Mapping[str, Callable[..., Any]] | None = None,
    **options: Any,
) -> BoundedSandboxedEnvironment:
    """A :class:`BoundedSandboxedEnvironment` with extra ``globals`` and ``filters`` (also guarded)."""
    env = BoundedSandboxedEnvironment(**options)
    env.globals.pop("lipsum", None)
    env.globals.update(range=_bounded_range, namespace=BoundedNamespace)
    env.globals.update(globals or {})
    env.filters.update(filters or {})
    env.filters = {name: _guard_filter(name, func) for name, func in env.filters.items()}
    env.filters[_LOOP_FILTER] = pass_context(lambda context, items: _BoundedIterable(items))
    return env
