"""The on-disk cache: survives processes, shared safely, corruption detected and recomputed."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import fake_backend

from prompt_gym.backends.cache import DiskCache, checksum

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
