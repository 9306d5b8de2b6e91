"""Content-addressed score cache: an in-memory LRU in front of an optional SQLite file.

Keys are bytes (a digest of everything that determines a value, see
:meth:`prompt_gym.backends.reward_backend.RewardBackend.cache_key`). Values are bytes. Every
value on disk is stored with a BLAKE2b checksum and verified on read: a corrupt or truncated
entry reads as a miss, so the caller recomputes it and the fresh value replaces the bad one.

The disk cache is one SQLite database in WAL mode, so several processes can share a
``cache_dir``: readers never block, writers are serialised by SQLite with a generous busy
timeout, and each ``put_many`` is one transaction. The cache never discards good data:

* only real corruption (a file that is not a database, a malformed page: SQLite's
  ``SQLITE_NOTADB`` / ``SQLITE_CORRUPT``, or a failed ``PRAGMA quick_check`` when the file is
  opened) moves the file aside (``*.corrupt-<time>``, with a warning); the cache goes on empty
  and every value is recomputed;
* a read-only file or directory is opened read-only, with one warning: hits are served, writes
  skipped;
* any other error (locked past the busy timeout, disk full, an I/O error) raises
  :class:`CacheError`, one line that says what to do, and the file is kept as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
import urllib.parse
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, value BLOB NOT NULL, digest BLOB NOT NULL)"
_BATCH = 500  # SQLite host-parameter limit is 999 on old builds; stay under it.


class CacheError(OSError):
    """The disk cache cannot be used as it is (locked, disk full, I/O error); the file is kept."""


def _is_corruption(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file itself is damaged (never a lock, I/O or permission error)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    if name:
        return name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT")
    text = str(err)
    return "file is not a database" in text or "malformed" in text


def _is_read_only(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite refused a write (or a read-write open) for lack of permission."""
    name = getattr(err, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"))


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
    travels to a worker process keeps working there. See the module docstring for what happens
    on a damaged, read-only or locked file.

    Args:
        cache_dir: Directory for the database file; created if missing.
        name: File stem, one database per cache namespace.
        timeout_s: How long a writer waits for another process's transaction.

    Attributes:
        read_only: Whether this cache serves hits only (the file or directory is not writable).
        corrupt_reads: Entries whose checksum did not match (each read as a miss).
        moved_aside: Damaged files moved aside by this object.
    """

    def __init__(
        self, cache_dir: str | os.PathLike[str], name: str = "scores", timeout_s: float = 60.0
    ):
        self.path = Path(cache_dir) / f"{name}.sqlite"
        self.timeout_s = timeout_s
        self.corrupt_reads = 0
        self.read_only = False
        self.moved_aside: list[Path] = []
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_conn"] = None
        state["_pid"] = -1
        return state

    # ------------------------------------------------------------------ opening
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(
                f"cannot create the cache directory {self.path.parent} ({err.strerror}); "
                "pass a writable cache_dir, or cache_dir=None for no disk cache"
            ) from err
        try:
            conn = self._open_checked()
        except sqlite3.DatabaseError as err:
            if not _is_corruption(err):
                raise self._error("open", err) from err
            self._move_aside(err)
            conn = self._open_checked()
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _open_checked(self) -> sqlite3.Connection:
        """Open read-write (read-only if that is refused), then ``PRAGMA quick_check``."""
        conn = None
        if not self.read_only:
            try:
                conn = self._open("rwc")
            except sqlite3.DatabaseError as err:
                if not _is_read_only(err) or not self.path.exists():
                    raise
                self._become_read_only(err)
        if conn is None:
            try:
                conn = self._open("ro")
            except sqlite3.OperationalError:  # a WAL file whose -shm cannot be created
                conn = self._open("ro&immutable=1")
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        if check is None or check[0] != "ok":
            conn.close()
            raise sqlite3.DatabaseError(f"database disk image is malformed (quick_check: {check})")
        return conn

    def _open(self, mode: str) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(self.path.absolute()))}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_s, isolation_level=None)
        try:
            if not mode.startswith("ro"):
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            conn.execute("SELECT count(*) FROM entries LIMIT 1").fetchone()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _move_aside(self, err: sqlite3.DatabaseError) -> None:
        """Rename a damaged file (and its WAL files) to ``*.corrupt-<time>``, with a warning."""
        self.close()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    src.rename(f"{aside}{suffix}")
        except OSError as move:
            raise CacheError(
                f"cache file {self.path} is damaged ({err}) and cannot be moved aside "
                f"({move.strerror}); delete it or pass another cache_dir"
            ) from move
        self.moved_aside.append(aside)
        warnings.warn(
            f"cache file {self.path} is not a readable database ({err}); moved it to {aside} "
            "and started an empty cache (values are recomputed)",
            RuntimeWarning,
            stacklevel=4,
        )

    def _become_read_only(self, err: sqlite3.DatabaseError) -> None:
        self.close()
        self.read_only = True
        warnings.warn(
            f"cache file {self.path} is read-only ({err}); serving hits from it and storing "
            "nothing (make it and its directory writable to cache new values)",
            RuntimeWarning,
            stacklevel=4,
        )

    def _error(self, doing: str, err: sqlite3.DatabaseError) -> CacheError:
        locked = (getattr(err, "sqlite_errorname", "") or "").startswith(
            ("SQLITE_BUSY", "SQLITE_LOCKED")
        )
        hint = (
            f"another process held it longer than timeout_s={self.timeout_s:g}; retry, or raise "
            "the timeout"
            if locked
            else "check the disk (space, permissions) and retry, or pass another cache_dir"
        )
        return CacheError(f"cannot {doing} the cache file {self.path} ({err}); it is kept; {hint}")

    # ------------------------------------------------------------------ reading and writing
    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Return the verified value for each key, or ``None`` for a miss or a corrupt entry.

        Raises:
            CacheError: If the file cannot be read (locked, I/O error); it is kept.
        """
        try:
            return self._get_many(keys)
        except sqlite3.DatabaseError as err:
            if not _is_corruption(err):
                raise self._error("read", err) from err
            self._move_aside(err)
            return [None] * len(keys)

    def _get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
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
        """Write all items in one transaction, replacing any existing (possibly corrupt) entry.

        Skipped on a read-only cache. A damaged file is moved aside and the items go to a fresh one.

        Raises:
            CacheError: If the file cannot be written (locked, disk full, I/O error); it is kept.
        """
        rows = [(key, value, checksum(value)) for key, value in items]
        if not rows or self.read_only:
            return
        try:
            self._put_many(rows)
        except sqlite3.DatabaseError as err:
            if _is_read_only(err):
                self._become_read_only(err)
                return
            if not _is_corruption(err):
                raise self._error("write", err) from err
            self._move_aside(err)
            try:
                self._put_many(rows)
            except sqlite3.DatabaseError as again:
                raise self._error("write", again) from again

    def _put_many(self, rows: list[tuple[bytes, bytes, bytes]]) -> None:
        conn = self._connect()
        if self.read_only:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return self._connect().execute("SELECT count(*) FROM entries").fetchone()[0]

    def close(self) -> None:
        """Close this process's connection (it is re-opened on next use)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
