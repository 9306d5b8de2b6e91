"""Append-safe Parquet recording: each process writes its own part files, atomically.

A dataset is a directory of ``part-<pid>-<uuid>.parquet`` files (schema in
:mod:`prompt_gym.export.schema`). A :class:`Recorder` buffers rows and, on :meth:`flush`
(when ``flush_every`` rows are buffered, on :meth:`close`, and at interpreter exit), writes
them to a hidden temporary name in that directory and renames it into place with
``os.replace``: the rename is atomic, so a reader never sees a partial file, and no two
writers ever share a file (the pid and a fresh uuid name it), so concurrent appends from
several processes lose nothing. The directory loads with
``datasets.load_dataset("parquet", data_files=f"{path}/*.parquet")`` or with
:func:`prompt_gym.export.reader.read_dataset` (which also checks the schema version).
"""

from __future__ import annotations

import atexit
import os
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prompt_gym.export.schema import NAMES, arrow_schema, check_row

PART_GLOB = "part-*.parquet"


class Recorder:
    """Buffers dataset rows and appends them to a dataset directory as Parquet part files.

    Args:
        path: The dataset directory (created if missing).
        flush_every: Rows buffered before a part file is written.

    Raises:
        ValueError: If ``flush_every`` is not a positive integer, or ``path`` is a file.
    """

    def __init__(self, path: str | Path, flush_every: int = 10_000) -> None:
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be a positive integer, got {flush_every!r}")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"record={str(path)!r} is a file; a dataset is a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self.rows_written = 0
        self.files: list[Path] = []
        self._buffer: list[dict[str, Any]] = []
        self._finalizer = weakref.finalize(self, _flush_rows, self.path, self._buffer, [])
        atexit.register(self._finalizer)

    def __reduce__(self) -> Any:  # a copy in another process appends its own part files
        return (Recorder, (str(self.path), self.flush_every))

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Buffer rows (dicts of :data:`~prompt_gym.export.schema.COLUMNS`; missing ones are null).

        Raises:
            ValueError: For an unknown column or a row without ``prompt`` or ``seed``.
        """
        for row in rows:
            check_row(row)
            self._buffer.append(row)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def add_requests(
        self,
        backend: str,
        version: str,
        prompts: list[str],
        seeds: list[int],
        aesthetic: Any,
        valid: Any,
        cache_hit: Any,
    ) -> None:
        """Buffer one ``"request"`` row per scored request (the backend's store-stage hook).

        Args:
            backend: The backend preset name.
            version: Its version.
            prompts: The prompts, in request order.
            seeds: Their seeds.
            aesthetic: ``(N,)`` aesthetic scores, or ``None`` when the call asked for none.
            valid: ``(N,)`` validity flags.
            cache_hit: ``(N,)`` whether each request was a cache hit.
        """
        aes = [None] * len(prompts) if aesthetic is None else [float(a) for a in aesthetic]
        self.add(
            {
                "kind": "request",
                "prompt": p,
                "seed": int(s),
                "backend": backend,
                "backend_version": version,
                "aesthetic": a,
                "valid": bool(v),
                "cache_hit": bool(h),
            }
            for p, s, a, v, h in zip(prompts, seeds, aes, valid, cache_hit, strict=True)
        )

    def flush(self) -> Path | None:
        """Write the buffered rows as one new part file; return it (``None`` if none were buffered)."""
        pending = len(self._buffer)
        written = _flush_rows(self.path, self._buffer, self.files)
        if written is not None:
            self.rows_written += pending
        return written

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flush_rows(path: Path, buffer: list[dict[str, Any]], files: list[Path]) -> Path | None:
    """Write ``buffer`` to a fresh part file in ``path`` (temp name, then atomic rename); empty it."""
    if not buffer:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, buffer[:] = list(buffer), []
    table = pa.Table.from_pydict(
        {name: [row.get(name) for row in rows] for name in NAMES}, schema=arrow_schema()
    )
    name = f"part-{os.getpid()}-{uuid.uuid4().hex}.parquet"
    tmp = path / f".{name}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path / name)
    files.append(path / name)
    return path / name
