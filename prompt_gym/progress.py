"""Progress bars for the long commands.

A command opens a bar with :func:`progress` around the work it starts (``eval`` over
episodes, ``bench`` over suite runs or batch sizes, ``invert --method reinforce`` over env
steps); the loops deep inside that work call :func:`advance` as units finish, without being
handed the bar. Outside a :func:`progress` block :func:`advance` does nothing, so the same
loops run silently inside training (whose own bar counts env steps) and in library use.

Bars are tqdm's and write to stderr, so the numbers a command prints on stdout stay clean.

>>> with progress(3, "demo") as bar:  # the bar itself goes to stderr
...     advance(2); advance(); advance(5, unit="run")
...     bar.n
3
>>> advance()  # no open bar: nothing happens
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm.auto import tqdm


class LazyBar:
    """A bar drawn from the first unit that finishes, so a command that fails before any
    work is done prints only its error line.

    Attributes:
        n: Units done so far.
    """

    def __init__(self, total: int, desc: str, unit: str, disable: bool) -> None:
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.n = 0
        self._bar: tqdm | None = None

    def update(self, n: int) -> None:
        """Count ``n`` more units (drawing the bar on the first)."""
        if self._bar is None:
            self._bar = bar(self.total, self.desc, self.unit, disable=self.disable)
        self._bar.update(n)
        self.n += n

    def close(self) -> None:
        """Close the bar, if it was drawn."""
        if self._bar is not None:
            self._bar.close()


_OPEN: ContextVar[LazyBar | None] = ContextVar("prompt_gym_progress", default=None)


def bar(total: int, desc: str, unit: str, initial: int = 0, disable: bool = False) -> tqdm:
    """A tqdm bar on stderr with the project's settings."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        dynamic_ncols=True,
        mininterval=0.5,
        file=sys.stderr,
        disable=disable,
    )


@contextmanager
def progress(
    total: int, desc: str, unit: str = "episode", disable: bool = False
) -> Iterator[LazyBar]:
    """Open a bar of ``total`` units that :func:`advance` moves until the block ends."""
    opened = LazyBar(total, desc, unit, disable)
    token = _OPEN.set(opened)
    try:
        yield opened
    finally:
        _OPEN.reset(token)
        opened.close()


def advance(n: int = 1, unit: str = "episode") -> None:
    """Move the open bar by ``n`` units if it counts ``unit`` (else nothing happens).

    The unit check keeps loops honest when work nests: episodes finishing inside a suite run
    do not move the suite's bar of runs.
    """
    opened = _OPEN.get()
    if opened is not None and n and opened.unit == unit:
        opened.update(n)
