"""CUDA out-of-memory recovery shared by the generator, the scorer and the captioner.

A batch that runs out of GPU memory is split in halves and each half retried, down to one item;
the largest size that had to be used is remembered, so later calls start from a size that fits.
Memory is freed outside the ``except`` block, because the traceback's frames pin the tensors of
the failed attempt (see FACTS.md).

>>> chunks = OomSplitter("demo", "use a smaller batch").map(5, 2, lambda a, b: (a, b))
>>> chunks
[(0, 2), (2, 4), (4, 5)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class OomSplitter:
    """Runs ``range(n)`` in chunks, halving a chunk that raises CUDA out-of-memory.

    Args:
        what: What one item is, for the error raised when a single item does not fit
            (e.g. ``"sd-turbo: a single 512x512 image"``).
        hint: What to do about it.

    Attributes:
        limit: The largest chunk known to fit since the first split (``None``: no split yet).
        splits: Batches split so far.
    """

    def __init__(self, what: str, hint: str) -> None:
        self.what, self.hint = what, hint
        self.limit: int | None = None
        self.splits = 0

    def map(self, n: int, batch_size: int | None, run: Callable[[int, int], T]) -> list[T]:
        """``run(start, stop)`` over consecutive chunks of ``range(n)``, results in order.

        Chunks are at most ``batch_size`` (``None``: everything at once) and at most
        :attr:`limit` items.

        Raises:
            torch.cuda.OutOfMemoryError: If a single item does not fit, saying what to do.
        """
        out: list[T] = []
        start = 0
        while start < n:
            size = min(x for x in (n - start, batch_size, self.limit) if x is not None)
            out += self._split(start, start + size, run)
            start += size
        return out

    def _split(self, start: int, stop: int, run: Callable[[int, int], T]) -> list[T]:
        import torch

        try:
            return [run(start, stop)]
        except torch.cuda.OutOfMemoryError as err:
            if stop - start == 1:
                raise torch.cuda.OutOfMemoryError(
                    f"{self.what} does not fit in GPU memory; {self.hint}"
                ) from err
        # Outside the except block, so the traceback and the tensors its frames hold are freed.
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.splits += 1
        half = (stop - start) // 2
        self.limit = half if self.limit is None else min(self.limit, half)
        return self._split(start, start + half, run) + self._split(start + half, stop, run)
