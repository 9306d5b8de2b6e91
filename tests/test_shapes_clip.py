"""shapes-clip: the shipped weights load offline and checked, infer deterministically, batch ==
single, and retrieve held-out scenes zero-shot (the shipped weights are never retrained here)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from prompt_gym import make_backend
from prompt_gym.backends.shapes import clip_model, train_clip

TOP1_FLOOR = 0.6
"""Held-out image -> caption top-1 among ~250 distinct captions (chance: 0.004; shipped: 0.71)."""


@pytest.fixture(scope="module")
def backend():
    torch.set_num_threads(1)
    return make_backend("shapes", scorer="shapes-clip")


def test_weights_load_offline_with_their_checksum_verified(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = clip_model.read_recipe()
    weights, _ = clip_model.recipe_files()
    assert clip_model.file_sha256(weights) == recipe["sha256"]
    assert weights.stat().st_size < 4 * 2**20  # "a few MB at most"
    model, tokenizer, info = clip_model.load_shapes_clip()
    assert info["sha256"] == recipe["sha256"] and not model.training
    assert tokenizer.vocab_size == model.token_embedding.weight.shape[0]
    # the recipe's vocabulary is what the code builds from the shapes world's words
    assert recipe["vocabulary"] == clip_model.build_vocabulary()
    assert recipe["config"] == clip_model.model_config(tokenizer.vocab_size)


def test_a_corrupt_or_missing_weights_file_is_one_clear_error(tmp_path):
    weights, recipe = clip_model.recipe_files()
    shutil.copy(recipe, tmp_path / recipe.name)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / weights.name).write_bytes(bytes(data))
    with pytest.raises(clip_model.ChecksumError, match="sha256"):
        clip_model.load_shapes_clip(*clip_model.recipe_files(tmp_path))
    with pytest.raises(FileNotFoundError, match="train_clip"):
        clip_model.load_shapes_clip(*clip_model.recipe_files(tmp_path / "nowhere"))


def test_it_is_a_scorer_preset_of_the_shapes_backend(backend):
    from prompt_gym.backends.real.clip import OpenClipScorer

    assert isinstance(backend.scorer, OpenClipScorer) and backend.scorer.dim == 64
    assert backend.scorer.config()["version"] == clip_model.read_recipe()["sha256"][:16]
    assert not backend.scorer.has_aesthetic
    assert backend.score(["a red circle", "a blue square"], [0, 0]).image_embeds.shape == (2, 64)
    # the default is unchanged: make_backend("shapes") keeps its procedural scorer
    assert type(make_backend("shapes").scorer).__name__ == "ShapesScorer"


def test_inference_is_deterministic_and_batch_equals_single(backend):
    scorer = backend.scorer
    texts = ["a red circle", "two large blue cubes on the left", "a green star, neon, 8k"]
    images = backend.generate(texts, [1, 2, 3])
    batch_t, batch_i = scorer.embed_texts(texts), scorer.embed_images(images)
    np.testing.assert_array_equal(batch_t, scorer.embed_texts(texts))
    np.testing.assert_array_equal(batch_i, scorer.embed_images(images))
    single_t = np.concatenate([scorer.embed_texts([t]) for t in texts])
    single_i = np.concatenate([scorer.embed_images(images[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(batch_t, single_t, atol=1e-5)
    np.testing.assert_allclose(batch_i, single_i, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch_i, axis=1), 1.0, atol=1e-5)


def test_zero_shot_retrieval_on_held_out_scenes_is_above_the_floor():
    torch.set_num_threads(1)
    model, tokenizer, recipe = clip_model.load_shapes_clip()
    report = train_clip.retrieval(
        model, tokenizer, train_clip.heldout_scenes(train_clip.TrainArgs())
    )
    assert report["top1"] >= TOP1_FLOOR and report["top5"] >= 0.9, report
    # the recorded figure (512 held-out scenes) is reproduced from the shipped weights
    assert report["top1"] == pytest.approx(recipe["zero_shot_heldout"]["top1"], abs=1e-6)


def test_matched_captions_score_above_mismatched_ones(backend):
    scorer = backend.scorer
    texts = ["a red circle", "a blue square", "a yellow star on a black background"]
    sims = scorer.embed_images(backend.generate(texts, [7, 7, 7])) @ scorer.embed_texts(texts).T
    assert (np.argmax(sims, axis=1) == np.arange(3)).all(), sims


def test_the_compact_tokenizer_keeps_clip_conventions():
    tok = clip_model.CompactTokenizer(clip_model.build_vocabulary())
    ids = tok(["a red sphere", "zebra"])
    assert ids.shape == (2, clip_model.CONTEXT_LENGTH)
    assert int(ids.max()) == tok.eot_token_id  # argmax pooling finds the end token
    assert tok.unk_token_id in ids[1].tolist()  # a word outside the shapes world
    assert tok.decode(ids[0].tolist()).split() == ["a", "red", "sphere"]
    assert int(tok(["red " * 50])[0, -1]) == tok.eot_token_id  # truncated, the end kept
