"""The on-disk cache: survives processes, shared safely, corruption detected and recomputed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import fake_backend

from prompt_gym.backends.cache import CacheError, DiskCache, checksum

TESTS = Path(__file__).parent

WRITER = """
import json, sys
sys.path.insert(0, {tests!r})
from fakes import fake_backend
backend = fake_backend(cache_dir={cache!r})
prompts = [f"p{{i}}" for i in range({start}, {stop})]
for k in range(0, len(prompts), 50):
    chunk = prompts[k:k + 50]
    backend.score(chunk, [7] * len(chunk))
res = backend.score(prompts, [7] * len(prompts))
print(json.dumps({{"generated": backend.stats.images_generated, "embeds": res.image_embeds.tolist()}}))
"""


def run_writer(cache: Path, start: int, stop: int) -> subprocess.Popen:
    code = WRITER.format(tests=str(TESTS), cache=str(cache), start=start, stop=stop)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_new_process_reads_identical_values(tmp_path):
    here = fake_backend(cache_dir=str(tmp_path)).score([f"p{i}" for i in range(20)], [7] * 20)
    proc = run_writer(tmp_path, 0, 20)
    out = json.loads(proc.communicate(timeout=120)[0])
    assert out["generated"] == 0  # everything came from disk
    np.testing.assert_array_equal(np.array(out["embeds"], dtype=np.float32), here.image_embeds)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    a, b = run_writer(tmp_path, 0, 1500), run_writer(tmp_path, 500, 2000)  # 1000 overlap
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in (a, b)]
    assert all(p.returncode == 0 for p in (a, b))
    disk = DiskCache(tmp_path)
    assert len(disk) == 2000
    reference = fake_backend().score([f"p{i}" for i in range(2000)], [7] * 2000).image_embeds
    np.testing.assert_array_equal(np.array(outs[0]["embeds"], np.float32), reference[:1500])
    np.testing.assert_array_equal(np.array(outs[1]["embeds"], np.float32), reference[500:])
    reader = fake_backend(cache_dir=str(tmp_path))
    again = reader.score([f"p{i}" for i in range(2000)], [7] * 2000)
    assert again.cache_hit.all() and reader.stats.corrupt_entries == 0
    np.testing.assert_array_equal(again.image_embeds, reference)


def test_a_corrupt_entry_is_detected_and_recomputed(tmp_path):
    original = fake_backend(cache_dir=str(tmp_path)).score(["a", "b"], [1, 1])
    with sqlite3.connect(tmp_path / "scores.sqlite") as conn:
        key, value = conn.execute("SELECT key, value FROM entries LIMIT 1").fetchone()
        flipped = bytes([value[-1] ^ 0xFF])
        conn.execute("UPDATE entries SET value = ? WHERE key = ?", (value[:-1] + flipped, key))
        other = conn.execute("SELECT key, value FROM entries WHERE key != ?", (key,)).fetchone()
        conn.execute(
            "UPDATE entries SET value = ? WHERE key = ?", (other[1][:5], other[0])
        )  # truncated
    backend = fake_backend(cache_dir=str(tmp_path))
    again = backend.score(["a", "b"], [1, 1])
    assert backend.stats.corrupt_entries == 2 and backend.stats.images_generated == 2
    np.testing.assert_array_equal(again.image_embeds, original.image_embeds)
    healed = fake_backend(cache_dir=str(tmp_path))
    assert healed.score(["a", "b"], [1, 1]).cache_hit.all() and healed.stats.corrupt_entries == 0


def test_a_corrupt_entry_with_a_valid_checksum_but_wrong_size_is_recomputed(tmp_path):
    backend = fake_backend(cache_dir=str(tmp_path))
    original = backend.score(["a"], [1])
    bad = b"\x00" * 7
    with sqlite3.connect(tmp_path / "scores.sqlite") as conn:
        conn.execute("UPDATE entries SET value = ?, digest = ?", (bad, checksum(bad)))
    fresh = fake_backend(cache_dir=str(tmp_path))
    np.testing.assert_array_equal(fresh.score(["a"], [1]).image_embeds, original.image_embeds)
    assert fresh.stats.corrupt_entries == 1 and fresh.stats.images_generated == 1


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path):
    original = fake_backend(cache_dir=str(tmp_path)).score(["a"], [1])
    (tmp_path / "scores.sqlite").write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"scores.sqlite{suffix}").unlink(missing_ok=True)
    backend = fake_backend(cache_dir=str(tmp_path))
    with pytest.warns(RuntimeWarning, match="not a readable database"):
        again = backend.score(["a"], [1])
    np.testing.assert_array_equal(again.image_embeds, original.image_embeds)
    assert list(tmp_path.glob("scores.sqlite.corrupt-*"))
    assert fake_backend(cache_dir=str(tmp_path)).score(["a"], [1]).cache_hit.all()


def test_disk_cache_survives_pickling(tmp_path):
    import pickle

    cache = DiskCache(tmp_path)
    cache.put_many([(b"k", b"v")])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get_many([b"k", b"missing"]) == [b"v", None]


# ---------------------------------------------------------------- fault injection: the cache
# never discards good data; only real corruption is moved aside, and a run goes on after it.

PROMPTS = [f"p{i}" for i in range(2000)]
NEW = [f"q{i}" for i in range(35)]


def _fill(cache: Path) -> np.ndarray:
    """Score ``PROMPTS`` into a fresh cache file (checkpointed: no WAL left) and return them."""
    backend = fake_backend(cache_dir=str(cache))
    embeds = backend.score(PROMPTS, [7] * len(PROMPTS)).image_embeds
    backend.close()
    assert not (cache / "scores.sqlite-wal").exists()
    return embeds


def _entries(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


def test_a_locked_database_is_reported_in_one_line_and_kept(tmp_path):
    _fill(tmp_path)
    holder = sqlite3.connect(tmp_path / "scores.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        backend = fake_backend(cache_dir=str(tmp_path))
        backend._disk.timeout_s = 0.05
        assert backend.score(PROMPTS[:3], [7] * 3).cache_hit.all()  # WAL: readers still read
        with pytest.raises(CacheError, match=r"locked.*it is kept.*timeout") as info:
            backend.score(["new"], [7])
        assert "\n" not in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt-*")) and _entries(tmp_path / "scores.sqlite") == 2000
    assert backend.score(["new"], [7]).valid.all()  # the lock is gone: it works again


def test_a_database_locked_for_opening_is_kept(tmp_path):
    _fill(tmp_path)
    holder = sqlite3.connect(tmp_path / "scores.sqlite", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("COMMIT")  # keeps the exclusive lock: no other connection can open it
    try:
        cache = DiskCache(tmp_path, timeout_s=0.05)
        with pytest.raises(CacheError, match=r"cannot open the cache file.*locked"):
            cache.get_many([b"k"])
    finally:
        holder.close()
    assert not list(tmp_path.glob("*.corrupt-*")) and _entries(tmp_path / "scores.sqlite") == 2000


@pytest.mark.parametrize(
    "error",
    [
        "database or disk is full",
        "disk I/O error",
    ],
)
def test_an_io_error_on_write_is_reported_and_the_file_kept(tmp_path, monkeypatch, error):
    _fill(tmp_path)
    backend = fake_backend(cache_dir=str(tmp_path))

    def fail(rows):
        raise sqlite3.OperationalError(error)

    monkeypatch.setattr(backend._disk, "_put_many", fail)
    with pytest.raises(CacheError, match=f"cannot write the cache file.*{error}.*it is kept"):
        backend.score(["new"], [7])
    assert not list(tmp_path.glob("*.corrupt-*")) and _entries(tmp_path / "scores.sqlite") == 2000


def test_a_read_only_cache_serves_hits_and_skips_writes(tmp_path, monkeypatch):
    """Simulated with SQLite's ``mode=ro`` (chmod does not stop root; see the next test)."""
    expected = _fill(tmp_path)
    real_open = DiskCache._open
    monkeypatch.setattr(DiskCache, "_open", lambda self, mode: real_open(self, "ro"))
    backend = fake_backend(cache_dir=str(tmp_path))
    hits = backend.score(PROMPTS[:50], [7] * 50)
    assert hits.cache_hit.all() and backend.stats.images_generated == 0
    np.testing.assert_array_equal(hits.image_embeds, expected[:50])
    with pytest.warns(RuntimeWarning, match="read-only.*storing nothing") as warned:
        fresh = backend.score(["new", "newer"], [7, 7])
        backend.clear_memory()
        backend.score(["new", "also new"], [7, 7])  # warned once only
    assert len(warned) == 1 and backend._disk.read_only and fresh.valid.all()
    assert not list(tmp_path.glob("*.corrupt-*")) and _entries(tmp_path / "scores.sqlite") == 2000


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod does not make a directory read-only for root",
)
def test_a_read_only_directory_is_opened_read_only(tmp_path):
    expected = _fill(tmp_path)
    (tmp_path / "scores.sqlite").chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        backend = fake_backend(cache_dir=str(tmp_path))
        with pytest.warns(RuntimeWarning, match="read-only"):
            hits = backend.score(PROMPTS[:50], [7] * 50)
            backend.score(["new"], [7])
        np.testing.assert_array_equal(hits.image_embeds, expected[:50])
        assert backend._disk.read_only and hits.cache_hit.all()
    finally:
        tmp_path.chmod(0o755)
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_a_file_of_random_bytes_is_moved_aside_and_the_run_goes_on(tmp_path):
    expected = _fill(tmp_path)
    (tmp_path / "scores.sqlite").write_bytes(np.random.default_rng(0).bytes(64 * 1024))
    backend = fake_backend(cache_dir=str(tmp_path))
    with pytest.warns(RuntimeWarning, match="not a readable database"):
        again = backend.score(PROMPTS[:40], [7] * 40)
    np.testing.assert_array_equal(again.image_embeds, expected[:40])
    assert len(list(tmp_path.glob("scores.sqlite.corrupt-*"))) == 1


def _overwrite_a_middle_page(path: Path) -> None:
    page = 4096
    pages = path.stat().st_size // page
    assert pages > 10
    with path.open("r+b") as f:
        f.seek(page * (pages // 2))
        f.write(np.random.default_rng(1).bytes(page))


def test_a_malformed_page_is_detected_on_open_and_values_recomputed(tmp_path):
    expected = _fill(tmp_path)
    _overwrite_a_middle_page(tmp_path / "scores.sqlite")
    backend = fake_backend(cache_dir=str(tmp_path))
    with pytest.warns(RuntimeWarning, match="not a readable database"):
        again = backend.score(PROMPTS, [7] * len(PROMPTS))
    np.testing.assert_array_equal(again.image_embeds, expected)
    assert backend.stats.images_generated == len(PROMPTS)  # recomputed, not read
    assert len(list(tmp_path.glob("scores.sqlite.corrupt-*"))) == 1
    backend.close()
    assert _entries(tmp_path / "scores.sqlite") == len(PROMPTS)  # the fresh file holds them


def test_a_malformed_page_does_not_stop_env_step(tmp_path):
    import gymnasium as gym

    import prompt_gym  # noqa: F401
    from prompt_gym.backends import make_backend

    def rollout(cache_dir):
        backend = make_backend("shapes", cache_dir=cache_dir)
        env = gym.make("ImageInversion-Shapes-v1", backend=backend)
        env.reset(seed=0)
        rewards = [env.step(0)[1], env.step(1)[1]]
        backend.close()
        return rewards

    first = rollout(str(tmp_path))
    path = tmp_path / "scores.sqlite"
    path.write_bytes(path.read_bytes()[:4096] + np.random.default_rng(2).bytes(3 * 4096))
    with pytest.warns(RuntimeWarning, match="not a readable database"):
        assert rollout(str(tmp_path)) == first
    assert list(tmp_path.glob("scores.sqlite.corrupt-*"))


@pytest.mark.parametrize("stage", ["read", "write"])
def test_a_malformed_page_found_at_read_or_write_is_moved_aside(tmp_path, monkeypatch, stage):
    _fill(tmp_path)
    backend = fake_backend(cache_dir=str(tmp_path))
    backend.score(PROMPTS[:5], [7] * 5)  # opened, quick_check passed
    disk, method = backend._disk, {"read": "_get_many", "write": "_put_many"}[stage]
    real = getattr(disk, method)
    calls = []

    def fail_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(*args)

    monkeypatch.setattr(disk, method, fail_once)
    with pytest.warns(RuntimeWarning, match="moved it to"):
        again = backend.score(NEW, [7] * 35)
    np.testing.assert_array_equal(
        again.image_embeds, fake_backend().score(NEW, [7] * 35).image_embeds
    )
    assert len(list(tmp_path.glob("scores.sqlite.corrupt-*"))) == 1 and disk.moved_aside
    backend.close()
    assert _entries(tmp_path / "scores.sqlite") == 35  # the fresh file got the new values
