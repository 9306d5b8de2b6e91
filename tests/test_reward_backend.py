"""The reward backend: dedupe, batch == single, cache == recompute, failures flagged, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import fake_backend

from prompt_gym.backends.cache import MemoryLRU


def assert_same(a, b):
    for field in ("image_embeds", "aesthetic", "valid", "nonfinite", "black", "prompt_tokens"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_duplicates_in_a_batch_are_generated_once():
    backend = fake_backend()
    result = backend.score(["a", "b", "a", "a"], [1, 1, 1, 2])
    assert sorted(backend.generator.calls[0]) == ["a", "a", "b"]  # (a,1), (b,1), (a,2)
    assert backend.stats.images_generated == 3
    assert backend.stats.unique_requests == 3 and backend.stats.requests == 4
    np.testing.assert_array_equal(result.image_embeds[0], result.image_embeds[2])
    assert not np.array_equal(result.image_embeds[0], result.image_embeds[3])


def test_batch_equals_single():
    prompts = ["red", "blue", "red", "green", "black"]
    seeds = [0, 0, 5, 1, 2]
    batched = fake_backend().score(prompts, seeds)
    for i, (p, s) in enumerate(zip(prompts, seeds, strict=True)):
        single = fake_backend().score([p], [s])
        np.testing.assert_array_equal(batched.image_embeds[i], single.image_embeds[0])
        assert batched.aesthetic[i] == single.aesthetic[0]
        assert batched.valid[i] == single.valid[0]


def test_memory_cache_hit_equals_recompute():
    backend = fake_backend()
    first = backend.score(["x", "y"], [3, 4])
    second = backend.score(["y", "x"], [4, 3])
    assert second.cache_hit.all() and not first.cache_hit.any()
    assert len(backend.generator.calls) == 1
    assert_same(second, fake_backend().score(["y", "x"], [4, 3]))
    assert backend.stats.memory_hits == 2 and backend.stats.misses == 2
    assert backend.stats.cache_hit_rate == 0.5


def test_disk_cache_survives_a_new_backend(tmp_path):
    first = fake_backend(cache_dir=str(tmp_path)).score(["x", "y"], [3, 4])
    fresh = fake_backend(cache_dir=str(tmp_path))
    again = fresh.score(["x", "y"], [3, 4])
    assert again.cache_hit.all() and fresh.generator.calls == []
    assert fresh.stats.disk_hits == 2
    assert_same(first, again)


def test_cache_key_covers_every_parameter(tmp_path):
    a = fake_backend(cache_dir=str(tmp_path))
    a.score(["x"], [1])
    b = fake_backend(cache_dir=str(tmp_path))
    b.generator.resolution = 16  # a different generation parameter ...
    b.__init__(b.generator, b.scorer, b.captioner, name="fake", cache_dir=str(tmp_path))
    assert not b.score(["x"], [1]).cache_hit.any()  # ... is a different content address
    assert a.cache_key("x", 1) != a.cache_key("x", 2) != a.cache_key("y", 1)


def test_failed_images_are_flagged_not_scored_silently():
    result = fake_backend().score(["black", "nan", "ok"], [0, 0, 0])
    assert result.black.tolist() == [True, True, False]
    assert result.nonfinite.tolist() == [False, True, False]
    assert result.valid.tolist() == [False, False, True]


def test_failure_flags_survive_the_disk_cache(tmp_path):
    fake_backend(cache_dir=str(tmp_path)).score(["black", "nan"], [0, 0])
    cached = fake_backend(cache_dir=str(tmp_path)).score(["black", "nan"], [0, 0])
    assert cached.cache_hit.all()
    assert cached.valid.tolist() == [False, False] and cached.nonfinite.tolist() == [False, True]


def test_prompt_tokens_are_reported():
    assert fake_backend().score(["a b c"], [0]).prompt_tokens.tolist() == [5]


@pytest.mark.parametrize(
    ("prompts", "seeds", "message"),
    [
        ([1], [0], "prompt 0 must be a str"),
        (["a"], [-1], r"seed 0 must be in \[0, 2\*\*63\)"),
        (["a"], [1.5], "seed 0 must be an int"),
        (["a"], [True], "seed 0 must be an int"),
        (["a", "b"], [0], "got 2 prompts but 1 seeds"),
        ("abc", [0, 1, 2], "got a single string"),
    ],
)
def test_bad_input_raises_before_any_work(prompts, seeds, message):
    backend = fake_backend()
    with pytest.raises(ValueError, match=message):
        backend.score(prompts, seeds)
    assert backend.generator.calls == [] and backend.stats.requests == 0


def test_images_are_returned_on_request_and_kept():
    backend = fake_backend(keep_images=8)
    result = backend.score(["a", "b", "a"], [0, 0, 0], return_images=True)
    assert result.images.shape == (3, 8, 8, 3)
    np.testing.assert_array_equal(result.images[0], result.images[2])
    calls = len(backend.generator.calls)
    np.testing.assert_array_equal(backend.generate(["b"], [0])[0], result.images[1])
    assert len(backend.generator.calls) == calls  # served from the image LRU
    assert fake_backend().score(["a"], [0]).images is None


def test_text_embeddings_are_cached():
    backend = fake_backend()
    first = backend.embed_texts(["a", "b", "a"])
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(backend.embed_texts(["b"])[0], first[1])
    with pytest.raises(ValueError, match="text 0 must be a str"):
        backend.embed_texts([None])


def test_memory_lru_evicts_the_least_recently_used():
    lru = MemoryLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3
    with pytest.raises(ValueError):
        MemoryLRU(-1)


def test_stats_count_time_and_images():
    backend = fake_backend()
    backend.score(["a", "b"], [0, 0])
    stats = backend.stats.as_dict()
    assert stats["images_generated"] == 2
    assert stats["seconds_generate"] >= 0 and stats["images_per_s"] >= 0
    assert set(stats) >= {"cache_hit_rate", "images_per_s", "memory_hits", "disk_hits", "misses"}
