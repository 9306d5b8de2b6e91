"""Content-addressed score cache: an in-memory LRU in front of an optional SQLite file.

Keys are bytes (a digest of everything that determines a value, see
:meth:`prompt_gym.backends.reward_backend.RewardBackend.cache_key`). Values are bytes. Every
value on disk is stored with a BLAKE2b checksum and verified on read: a corrupt or truncated
entry reads as a miss, so the caller recomputes it and the fresh value replaces the bad one.

The disk cache is one SQLite database in WAL mode, so several processes can share a
``cache_dir``: readers never block, writers are serialised by SQLite with a generous busy
timeout, and each ``put_many`` is one transaction. A file that is not a database at all is moved
aside (``*.corrupt-<time>``) with a warning and a fresh database is started.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, value BLOB NOT NULL, digest BLOB NOT NULL)"
_BATCH = 500  # SQLite host-parameter limit is 999 on old builds; stay under it.


def checksum(value: bytes) -> bytes:
    """Return the 16-byte BLAKE2b digest used to verify cached values.

    >>> len(checksum(b"abc"))
    16
    """
    return hashlib.blake2b(value, digest_size=16).digest()


class MemoryLRU:
    """A bounded least-recently-used map.

    Args:
        capacity: Most entries kept; ``0`` disables the cache.

    >>> lru = MemoryLRU(2)
    >>> lru.put("a", 1); lru.put("b", 2); lru.get("a"); lru.put("c", 3)
    1
    >>> lru.get("b") is None, len(lru)
    (True, 2)
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> Any:
        """Return the value for ``key`` (marking it recently used) or ``None``."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def get_many(self, keys: Sequence[Hashable]) -> list[Any]:
        """:meth:`get` every key, in order (``None`` where absent).

        >>> lru = MemoryLRU(2)
        >>> lru.put("a", 1); lru.put("b", 2); lru.get_many(["a", "c"]), list(lru._data)
        ([1, None], ['b', 'a'])
        """
        data = self._data
        values = [data.get(key) for key in keys] if data else [None for _ in keys]
        refresh = data.move_to_end
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                refresh(key)
        return values

    def put(self, key: Hashable, value: Any) -> None:
        """Insert or refresh ``key``, evicting the least recently used entry when full."""
        if self.capacity == 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def put_many(self, items: Iterable[tuple[Hashable, Any]]) -> None:
        """:meth:`put` every ``(key, value)`` in order (evicting once, at the end).

        >>> lru = MemoryLRU(2)
        >>> lru.put_many([("a", 1), ("b", 2), ("c", 3)]); list(lru._data.items())
        [('b', 2), ('c', 3)]
        """
        if self.capacity == 0:
            return
        data = self._data
        refresh = data.move_to_end
        for key, value in items:
            data[key] = value
            refresh(key)
        while len(data) > self.capacity:
            data.popitem(last=False)

    def peek(self, key: Hashable) -> Any:
        """Return the value for ``key`` or ``None``, leaving the recency order alone.

        >>> lru = MemoryLRU(2)
        >>> lru.put("a", 1); lru.put("b", 2); lru.peek("a"), lru.peek("c"), list(lru._data)
        (1, None, ['a', 'b'])
        """
        return self._data.get(key)

    def clear(self) -> None:
        """Drop every entry."""
        self._data.clear()


class DiskCache:
    """A checksummed key-value store in ``cache_dir/<name>.sqlite``, safe across processes.

    The connection is opened lazily and re-opened after a fork or unpickling, so an object that
    travels to a worker process keeps working there.

    Args:
        cache_dir: Directory for the database file; created if missing.
        name: File stem, one database per cache namespace.
        timeout_s: How long a writer waits for another process's transaction.
    """

    def __init__(
        self, cache_dir: str | os.PathLike[str], name: str = "scores", timeout_s: float = 60.0
    ):
        self.path = Path(cache_dir) / f"{name}.sqlite"
        self.timeout_s = timeout_s
        self.corrupt_reads = 0
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_conn"] = None
        state["_pid"] = -1
        return state

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self._open()
        except sqlite3.DatabaseError as err:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
            warnings.warn(
                f"cache file {self.path} is not a readable database ({err}); moved it to {aside} "
                "and started an empty cache",
                RuntimeWarning,
                stacklevel=3,
            )
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    src.rename(f"{aside}{suffix}")
            conn = self._open()
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute("SELECT count(*) FROM entries LIMIT 1").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Return the verified value for each key, or ``None`` for a miss or a corrupt entry."""
        conn = self._connect()
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), _BATCH):
            chunk = list(keys[start : start + _BATCH])
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value, digest FROM entries WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, value, digest in rows:
                if checksum(value) == digest:
                    found[bytes(key)] = bytes(value)
                else:
                    self.corrupt_reads += 1
        return [found.get(key) for key in keys]

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Write all items in one transaction, replacing any existing (possibly corrupt) entry."""
        rows = [(key, value, checksum(value)) for key, value in items]
        if not rows:
            return
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def __len__(self) -> int:
        return self._connect().execute("SELECT count(*) FROM entries").fetchone()[0]

    def close(self) -> None:
        """Close this process's connection (it is re-opened on next use)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
