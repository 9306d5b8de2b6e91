"""The reward backend: dedupe, batch == single, cache == recompute, failures flagged, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import (
    CountingScorer,
    FakeCaptioner,
    FakeGenerator,
    FakeScorer,
    NoAestheticScorer,
    fake_backend,
)

from prompt_gym.backends import RewardBackend
from prompt_gym.backends.cache import MemoryLRU
from prompt_gym.backends.results import AestheticNotRequestedError


def assert_same(a, b):
    for field in ("image_embeds", "aesthetic", "valid", "nonfinite", "black", "prompt_tokens"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_duplicates_in_a_batch_are_generated_once():
    backend = fake_backend()
    result = backend.score(["a", "b", "a", "a"], [1, 1, 1, 2], aesthetic=True)
    assert sorted(backend.generator.calls[0]) == ["a", "a", "b"]  # (a,1), (b,1), (a,2)
    assert backend.stats.images_generated == 3
    assert backend.stats.unique_requests == 3 and backend.stats.requests == 4
    np.testing.assert_array_equal(result.image_embeds[0], result.image_embeds[2])
    assert not np.array_equal(result.image_embeds[0], result.image_embeds[3])


def test_batch_equals_single():
    prompts = ["red", "blue", "red", "green", "black"]
    seeds = [0, 0, 5, 1, 2]
    batched = fake_backend().score(prompts, seeds, aesthetic=True)
    for i, (p, s) in enumerate(zip(prompts, seeds, strict=True)):
        single = fake_backend().score([p], [s], aesthetic=True)
        np.testing.assert_array_equal(batched.image_embeds[i], single.image_embeds[0])
        assert batched.aesthetic[i] == single.aesthetic[0]
        assert batched.valid[i] == single.valid[0]


def test_memory_cache_hit_equals_recompute():
    backend = fake_backend()
    first = backend.score(["x", "y"], [3, 4], aesthetic=True)
    second = backend.score(["y", "x"], [4, 3], aesthetic=True)
    assert second.cache_hit.all() and not first.cache_hit.any()
    assert len(backend.generator.calls) == 1
    assert_same(second, fake_backend().score(["y", "x"], [4, 3], aesthetic=True))
    assert backend.stats.memory_hits == 2 and backend.stats.misses == 2
    assert backend.stats.cache_hit_rate == 0.5


def test_disk_cache_survives_a_new_backend(tmp_path):
    first = fake_backend(cache_dir=str(tmp_path)).score(["x", "y"], [3, 4], aesthetic=True)
    fresh = fake_backend(cache_dir=str(tmp_path))
    again = fresh.score(["x", "y"], [3, 4], aesthetic=True)
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
    fake_backend(cache_dir=str(tmp_path)).score(["black", "nan"], [0, 0], aesthetic=True)
    cached = fake_backend(cache_dir=str(tmp_path)).score(["black", "nan"], [0, 0], aesthetic=True)
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


def test_aesthetic_scores_come_only_when_asked_for():
    backend = RewardBackend(FakeGenerator(), CountingScorer(), FakeCaptioner())
    result = backend.score(["a", "b"], [0, 1])
    assert backend.scorer.counts == {"embed_images": 2, "aesthetic": 0}
    with pytest.raises(AestheticNotRequestedError, match="aesthetic=True"):
        _ = result.aesthetic
    with pytest.raises(AestheticNotRequestedError):
        _ = result.rows(0, 1).aesthetic


def test_asked_for_aesthetic_equals_recomputing_it():
    prompts, seeds = ["a", "b", "a", "black"], [0, 1, 0, 2]
    result = fake_backend().score(prompts, seeds, aesthetic=True)
    scorer, images = FakeScorer(), FakeGenerator().generate(prompts, seeds)
    np.testing.assert_array_equal(result.aesthetic, scorer.aesthetic(images))
    np.testing.assert_array_equal(result.rows(1, 3).aesthetic, scorer.aesthetic(images[1:3]))


def test_a_memory_entry_without_aesthetic_asked_for_one_is_a_miss_then_a_hit():
    backend = fake_backend()
    plain = backend.score(["x", "y"], [3, 4])
    asked = backend.score(["x", "y", "z"], [3, 4, 5], aesthetic=True)
    assert not asked.cache_hit.any() and backend.stats.images_generated == 5
    np.testing.assert_array_equal(asked.image_embeds[:2], plain.image_embeds)
    assert_same(asked, fake_backend().score(["x", "y", "z"], [3, 4, 5], aesthetic=True))
    again = backend.score(["x", "y", "z"], [3, 4, 5], aesthetic=True)
    assert again.cache_hit.all() and backend.stats.images_generated == 5
    assert_same(again, asked)
    assert backend.score(["x"], [3]).cache_hit.all()  # an entry with more than asked is a hit


def test_a_disk_entry_without_aesthetic_asked_for_one_is_a_miss_then_a_hit(tmp_path):
    fake_backend(cache_dir=str(tmp_path)).score(["x", "y"], [3, 4])
    reader = fake_backend(cache_dir=str(tmp_path))
    assert reader.score(["x", "y"], [3, 4]).cache_hit.all()  # no aesthetic asked: a hit
    reader.clear_memory()
    asked = reader.score(["x", "y"], [3, 4], aesthetic=True)
    assert not asked.cache_hit.any() and reader.stats.images_generated == 2
    third = fake_backend(cache_dir=str(tmp_path))
    again = third.score(["x", "y"], [3, 4], aesthetic=True)
    assert again.cache_hit.all() and third.stats.disk_hits == 2
    assert_same(again, asked)


def test_a_scorer_without_aesthetic_gives_nan_when_asked():
    backend = RewardBackend(FakeGenerator(), NoAestheticScorer(), FakeCaptioner())
    assert not backend.has_aesthetic
    first = backend.score(["a", "b"], [0, 1], aesthetic=True)
    assert np.isnan(first.aesthetic).all() and first.image_embeds.shape == (2, 8)
    again = backend.score(["a", "b"], [0, 1], aesthetic=True)
    assert again.cache_hit.all() and np.isnan(again.aesthetic).all()  # nothing to recompute


def test_components_must_implement_their_protocol():
    class Bare:
        def config(self):
            return {}

        def generate(self, prompts, seeds):
            return np.zeros((len(prompts), 8, 8, 3), np.uint8)

    with pytest.raises(ValueError, match=r"Generator protocol; subclass .*GeneratorBase"):
        RewardBackend(Bare(), FakeScorer(), FakeCaptioner())
    with pytest.raises(ValueError, match="Scorer protocol"):
        RewardBackend(FakeGenerator(), Bare(), FakeCaptioner())


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("bad", ["\ud800", "red \udfff circle", "ok\udc80"])
def test_a_lone_surrogate_is_rejected_with_or_without_a_cache(tmp_path, cached, bad):
    backend = fake_backend(cache_dir=str(tmp_path) if cached else None)
    generator = backend.generator
    with pytest.raises(ValueError, match=r"prompt 1 is not valid Unicode: lone surrogate"):
        backend.score(["a red circle", bad], [0, 1])
    assert generator.calls == []  # before any work
    with pytest.raises(ValueError, match=r"text 0 is not valid Unicode"):
        backend.embed_texts([bad])
    assert backend.score(["a red circle", "\U0001f600 ok"], [0, 1]).valid.all()  # valid Unicode
