"""Bounds of rendering one finding with a template, and the budget that enforces them.

:class:`RenderLimits` says how much time and text one render may take;
:func:`render_budget` makes them apply to the renders of a block (the sandbox of
:mod:`pytracee.engine.output.sandbox` checks the budget at every step of a template).
Kept apart from the sandbox so that a run that renders no template (or only the built-in
default one, which has a Jinja2-free path) never imports Jinja2.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_LIMITS",
    "RenderLimitError",
    "RenderLimits",
    "RenderTimeoutError",
    "current_limits",
    "render_budget",
]


@dataclass(frozen=True)
class RenderLimits:
    """Bounds of rendering one finding."""

    #: Characters of rendered text, and the largest string or collection an operation may build.
    max_output: int = 1 << 20
    #: Wall-clock seconds.
    max_seconds: float = 1.0
    #: Items of a ``range()``.
    max_range: int = 100_000
    #: Bits of an integer computed with ``*`` or ``**``.
    max_int_bits: int = 1 << 16
    #: Renders over ``max_seconds`` after which the template is no longer run: each one
    #: cost ``max_seconds`` of detection time, so a template that keeps timing out would
    #: otherwise slow detection to one finding per ``max_seconds``.
    max_timeouts: int = 3


DEFAULT_LIMITS: Final = RenderLimits()


class RenderLimitError(Exception):
    """A template went over one of the :class:`RenderLimits` while rendering."""


class RenderTimeoutError(RenderLimitError):
    """A render went over :attr:`RenderLimits.max_seconds`."""


class _Budget:
    __slots__ = ("deadline", "limits")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds

    def check(self) -> RenderLimits:
        if time.monotonic() > self.deadline:
            raise RenderTimeoutError(f"rendering took over {self.limits.max_seconds:g} s")
        return self.limits


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("pytracee_render_budget", default=None)


@contextmanager
def render_budget(limits: RenderLimits = DEFAULT_LIMITS) -> Iterator[None]:
    """Apply ``limits`` (the deadline starts now) to templates rendered in this block and thread."""
    token = _BUDGET.set(_Budget(limits))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def current_limits() -> RenderLimits:
    """The limits of the render in progress in this thread (the defaults outside a budget);
    raises :class:`RenderTimeoutError` once its deadline has passed."""
    budget = _BUDGET.get()
    return budget.check() if budget is not None else DEFAULT_LIMITS
